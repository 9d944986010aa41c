package sim

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Duration is a time.Duration that reads and writes JSON as "1.5s".
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1.5s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string such as \"250ms\" or nanoseconds")
	}
	*d = Duration(n)
	return nil
}

// Faults are injected failures, set in the scenario or at run time through
// PUT /v1/sim/faults. Latency, errors and timeouts apply to the Nomad API
// (not to /v1/sim/), optionally only under PathPrefix.
type Faults struct {
	// Latency is added (in wall time) before every API response.
	Latency Duration `json:",omitempty"`
	// ErrorRate is the fraction of API requests answered with HTTP 500.
	ErrorRate float64 `json:",omitempty"`
	// TimeoutRate is the fraction of API requests that hang until the
	// client gives up.
	TimeoutRate float64 `json:",omitempty"`
	// PathPrefix restricts latency, errors and timeouts to matching paths.
	PathPrefix string `json:",omitempty"`
	// StatsUnreachable lists nodes (ID or name) whose client stats endpoint,
	// and their allocations' stats, answer 500 as if the client could not
	// be reached.
	StatsUnreachable []string `json:",omitempty"`
	// NodesDown lists nodes (ID or name) that are down: their allocations
	// are lost and replaced. Removing a node from the list brings it back.
	NodesDown []string `json:",omitempty"`
	// Holds catch matching API requests and never answer them, as a Nomad
	// server that stops answering in the middle of a call: the client
	// waits until it gives up (or dies). Each hold says whether the call
	// takes effect before the answer is lost. They apply whatever
	// PathPrefix says.
	Holds []Hold `json:",omitempty"`
}

// Hold is a fault that holds API requests without an answer: a call in
// flight whose caller cannot know whether it happened. A held request is
// answered only if the client still waits after maxWait (10 minutes of
// wall time).
type Hold struct {
	// Method is the HTTP method to catch ("PUT", "POST", "DELETE"); empty
	// catches any.
	Method string `json:",omitempty"`
	// Path is the request path to catch; a "*" segment matches any one
	// segment: "/v1/allocation/*/stop".
	Path string
	// Apply makes a caught request take effect before it is held (the
	// call happened, its answer is lost); without it the request never
	// takes effect (it is dropped when the client gives up).
	Apply bool `json:",omitempty"`
	// Count is how many requests the hold catches; 0 catches every
	// matching one. Requests after the Count-th pass untouched.
	Count int `json:",omitempty"`
	// Caught is how many requests the hold has caught so far (set by the
	// sim; a test polls GET /v1/sim/faults for it to learn that a call is
	// held).
	Caught int `json:",omitempty"`
}

// matches reports whether the hold catches a request.
func (h Hold) matches(method, path string) bool {
	if h.Method != "" && !strings.EqualFold(h.Method, method) {
		return false
	}
	want, got := strings.Split(h.Path, "/"), strings.Split(path, "/")
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if want[i] != got[i] && (want[i] != "*" || got[i] == "") {
			return false
		}
	}
	return true
}

func (f Faults) validate() error {
	if f.ErrorRate < 0 || f.ErrorRate > 1 || f.TimeoutRate < 0 || f.TimeoutRate > 1 {
		return badRequest("faults: error_rate and timeout_rate must be between 0 and 1")
	}
	if f.Latency < 0 {
		return badRequest("faults: latency must not be negative")
	}
	for _, h := range f.Holds {
		if !strings.HasPrefix(h.Path, "/") {
			return badRequest("faults: a hold's path must begin with /: %q", h.Path)
		}
		if h.Count < 0 {
			return badRequest("faults: a hold's count must not be negative")
		}
	}
	return nil
}

// Faults returns the faults in force.
func (c *Cluster) Faults() Faults {
	c.mu.Lock()
	defer c.unlock()
	return c.faults.clone()
}

func (f Faults) clone() Faults {
	f.StatsUnreachable = append([]string(nil), f.StatsUnreachable...)
	f.NodesDown = append([]string(nil), f.NodesDown...)
	f.Holds = append([]Hold(nil), f.Holds...)
	return f
}

// SetFaults replaces the faults in force. Nodes named in NodesDown go down;
// nodes no longer named come back.
func (c *Cluster) SetFaults(f Faults) error {
	c.mu.Lock()
	defer c.unlock()
	return c.setFaults(f)
}

func (c *Cluster) setFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	for _, key := range append(append([]string(nil), f.NodesDown...), f.StatsUnreachable...) {
		if c.findNode(key) == nil {
			return notFound("node %q not found", key)
		}
	}
	c.faults = f.clone()
	c.applyFaultNodes()
	return nil
}

// applyFaultNodes brings node status in line with Faults.NodesDown.
func (c *Cluster) applyFaultNodes() {
	down := map[*node]bool{}
	for _, key := range c.faults.NodesDown {
		if n := c.findNode(key); n != nil {
			down[n] = true
		}
	}
	for _, n := range c.nodes {
		switch {
		case down[n] && n.status != api.NodeStatusDown:
			n.faultDown = true
			c.setNodeStatus(n, true)
		case !down[n] && n.faultDown:
			n.faultDown = false
			c.setNodeStatus(n, false)
		}
	}
	c.retryBlocked()
}

// statsUnreachable reports whether n's client stats endpoint is faulted.
func (c *Cluster) statsUnreachable(n *node) bool {
	for _, key := range c.faults.StatsUnreachable {
		if key == n.id || key == n.name {
			return true
		}
	}
	return false
}

// faultFor draws the fault, if any, for one API request: "", "error",
// "timeout", "hold" or "hold-apply", and the latency to add.
func (c *Cluster) faultFor(method, path string) (kind string, latency time.Duration) {
	c.mu.Lock()
	defer c.unlock()
	f := c.faults
	if strings.HasPrefix(path, "/v1/sim/") {
		return "", 0
	}
	for i := range f.Holds {
		h := &f.Holds[i]
		if h.matches(method, path) && (h.Count == 0 || h.Caught < h.Count) {
			h.Caught++
			if h.Apply {
				return "hold-apply", 0
			}
			return "hold", 0
		}
	}
	if f.PathPrefix != "" && !strings.HasPrefix(path, f.PathPrefix) {
		return "", 0
	}
	latency = time.Duration(f.Latency)
	if f.TimeoutRate > 0 && c.faultR.Float64() < f.TimeoutRate {
		return "timeout", latency
	}
	if f.ErrorRate > 0 && c.faultR.Float64() < f.ErrorRate {
		return "error", latency
	}
	return "", latency
}

func sortJobs(js []*job) {
	sort.Slice(js, func(i, k int) bool { return js[i].id < js[k].id })
}

// FailAlloc makes an allocation fail on its client, as a crashing task
// would: it turns failed ("Failed tasks"), its first task exits ("exit
// N" as reason: with code N; any other: code 1, reason its exit message)
// and is not restarted again, after the restarts its policy allows
// (tasks.go), and its job places a replacement when its
// reschedule policy allows (Nomad's default for service jobs: 30 s later,
// through a follow-up evaluation), once the deployment watcher lets it
// when it belongs to an active deployment.
func (c *Cluster) FailAlloc(id, reason string) error {
	c.mu.Lock()
	defer c.unlock()
	return c.failAlloc(id, reason)
}

func (c *Cluster) failAlloc(id, reason string) error {
	a := c.allocByID[id]
	if a == nil {
		return notFound("alloc not found")
	}
	if a.clientTerminal() {
		return badRequest("allocation %q is already %s", id, a.client)
	}
	if reason == "" {
		reason = "simulated task failure"
	}
	if a.mig != nil && !a.mig.transferred {
		c.dropTransfer(a.mig)
	}
	// Nomad's client describes a failed allocation so whatever failed
	// its task; the why is the task's Terminated event (measured:
	// TestFidelitySysbatchFailed).
	a.client, a.clientDesc, a.failReason = allocFailed, "Failed tasks", reason
	a.failedAt = c.now
	c.touchByClient(a)
	if rescheduleAllowed(a, c.now) {
		c.failEval[a.job] = true
	}
	c.markDirty(a.job, triggerAllocFail)
	c.log.Info("allocation failed", logKeyAlloc, a.id, logKeyJob, a.job.id, logKeyDetail, reason)
	return nil
}
