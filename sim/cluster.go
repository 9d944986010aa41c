package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/foreshape/foreshape/traces"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"
)

// Log keys.
const (
	logKeyJob      = "job_id"
	logKeyGroup    = "group"
	logKeyNode     = "node"
	logKeyAlloc    = "alloc_id"
	logKeyEval     = "eval_id"
	logKeyEvent    = "event"
	logKeyKind     = "kind"
	logKeyDetail   = "detail"
	logKeyStatus   = "status"
	logKeyEligible = "eligibility"
	logKeyQueued   = "queued"
	logKeyVersion  = "version"
	logKeyCount    = "count"
	logKeyLocality = "locality"
	logKeySizeMB   = "size_mb"
	logKeyDuration = "duration"
	logKeyMethod   = "method"
	logKeyPath     = "path"
	logKeyCode     = "code"
)

// Errors the model returns; the HTTP layer maps them to Nomad's status codes.
var (
	ErrNotFound   = errors.New("not found")
	ErrBadRequest = errors.New("bad request")
	// ErrUnreachable is a Nomad client the servers cannot reach (a down
	// node, or a stats fault); Nomad answers it with a 500.
	ErrUnreachable = errors.New("unreachable")
	// ErrForbidden is a request the configuration forbids (403).
	ErrForbidden = errors.New("forbidden")
)

// codedError carries Nomad's message for an error class.
type codedError struct {
	kind error
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.kind }

func notFound(format string, args ...any) error {
	return &codedError{kind: ErrNotFound, msg: fmt.Sprintf(format, args...)}
}

// rpcError is an error Nomad's servers return without a status code,
// which its HTTP API answers with a 500 (drain and eligibility refusals,
// unknown nodes on node updates).
func rpcError(format string, args ...any) error {
	return &codedError{kind: errRPC, msg: fmt.Sprintf(format, args...)}
}

var errRPC = errors.New("rpc error")

func badRequest(format string, args ...any) error {
	return &codedError{kind: ErrBadRequest, msg: fmt.Sprintf(format, args...)}
}

// Options configure a Cluster.
type Options struct {
	// Seed overrides the scenario's seed when non-zero.
	Seed uint64
	// Logger receives the sim's logs; nil discards them.
	Logger hclog.Logger
	// Traces finds trace files; a zero value uses the bundled samples.
	Traces TraceSource
	// Wall is the wall clock used by Run only; nil is time.Now.
	Wall func() time.Time
	// SkipNodeMinutes turns off per node and minute ground truth (for very
	// long or very large runs that only need the other records).
	SkipNodeMinutes bool
	// TruthWindow, when positive, keeps only the minute records of the
	// ground truth (NodeMinutes, JobMinutes) of the last TruthWindow of
	// virtual time, dropping older ones as new ones come: an open-ended
	// run's memory then stays bounded (the default scenario records
	// about 11 MB a virtual day). Zero keeps them all.
	TruthWindow time.Duration
}

// Cluster is a simulated Nomad cluster. It is safe for concurrent use: every
// method and HTTP request takes one lock.
type Cluster struct {
	mu     sync.Mutex
	log    hclog.Logger
	sc     *Scenario
	rng    *rand.Rand // every model decision
	faultR *rand.Rand // HTTP fault draws only, so clients cannot perturb the model
	opts   Options

	now     time.Time
	running bool // Run owns the clock
	index   uint64
	tables  [numTables]uint64
	notify  chan struct{}
	changed bool

	nodes      []*node
	nodeByID   map[string]*node
	nodeByName map[string]*node
	jobs       map[string]*job
	allocByID  map[string]*alloc
	live       []*alloc // allocations that are not client-terminal, in creation order
	timers     timers   // when allocations change state on their own
	timerSeq   uint64
	evals      []*eval
	evalByID   map[string]*eval
	blocked    []*eval
	followups  []*eval // pending follow-up evaluations, until their WaitUntil
	deployByID map[string]*deployment
	localities map[string]*locality
	locOrder   []*locality
	migs       []*migration // transfers in progress, in start order
	traces     map[string]*Trace
	schedCfg   api.SchedulerConfiguration
	schedIdx   [2]uint64 // create, modify

	nextEvent  int
	surges     []activeSurge
	dirty      map[*job]string // jobs to reconcile at the end of the tick, with the trigger
	failEval   map[*job]bool   // dirty jobs Nomad evaluates whatever changes (an allocation failed that may be rescheduled)
	placeTries int             // placements tried, for an evaluation's QueuedAllocations
	capFreed   bool            // since blocked evals were last retried, a client finished an allocation or a node became ready or eligible (what Nomad unblocks them on)
	lastMinute time.Time
	groupSize  map[string]int // nodes created per node group, for naming added ones
	booting    []*node        // nodes added at run time, not ready yet
	lastGC     time.Time
	faults     Faults
	truth      Truth
	tokens     map[string]*Policy // nil: a management token

	// purgedNodes are the nodes purged from the node table, by ID: Nomad
	// still lists their allocations under it.
	purgedNodes map[string]*node
	// returning are the purged nodes whose client still runs, in purge
	// order: each registers its node again at its backAt.
	returning []*node
}

type activeSurge struct {
	ev    EventSpec
	until time.Time
}

// New builds a cluster from a scenario: its nodes, its jobs registered and
// placed at the scenario's start time.
func New(sc *Scenario, opts Options) (*Cluster, error) {
	if sc == nil {
		return nil, fmt.Errorf("sim: no scenario")
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	seed := sc.Seed
	if opts.Seed != 0 {
		seed = opts.Seed
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Traces.Embedded == nil {
		opts.Traces.Embedded = traces.FS()
	}
	c := &Cluster{
		log:        opts.Logger,
		sc:         sc,
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		faultR:     rand.New(rand.NewPCG(seed^0x5bd1e995, seed)),
		opts:       opts,
		now:        sc.Start,
		lastMinute: sc.Start.Truncate(time.Minute),
		notify:     make(chan struct{}),
		nodeByID:   map[string]*node{},
		nodeByName: map[string]*node{},
		jobs:       map[string]*job{},
		allocByID:  map[string]*alloc{},
		evalByID:   map[string]*eval{},
		deployByID: map[string]*deployment{},
		localities: map[string]*locality{},
		traces:     map[string]*Trace{},
		dirty:      map[*job]string{},
		failEval:   map[*job]bool{},
		schedCfg:   sc.Scheduler,
		faults:     sc.Faults,
		tokens:     aclTokens(sc.Tokens, sc.Policies),
		groupSize:  map[string]int{},
	}
	c.index = 1
	c.schedIdx = [2]uint64{1, 1}
	names := make([]string, 0, len(sc.Traces))
	for name := range sc.Traces {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := c.loadTrace(name); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
	}
	for _, l := range sc.Localities {
		loc := &locality{name: l.Name, bandwidth: l.BandwidthMBps}
		c.localities[l.Name] = loc
		c.locOrder = append(c.locOrder, loc)
	}
	for _, g := range sc.NodeGroups {
		for i := 0; i < g.Count; i++ {
			c.addNode(g, fmt.Sprintf("%s-%d", g.Name, i+1))
		}
		c.groupSize[g.Name] = g.Count
	}
	for _, js := range sc.Jobs {
		if _, err := c.register(copyJob(js.Job), js.Groups, "job-register"); err != nil {
			return nil, fmt.Errorf("sim: register job %s: %w", *js.Job.ID, err)
		}
	}
	c.applyFaultNodes()
	c.fireEvents()
	c.computeLoad(0)
	return c, nil
}

// loadTrace returns a scenario trace by name, or a file path bound directly.
func (c *Cluster) loadTrace(name string) (*Trace, error) {
	if t, ok := c.traces[name]; ok {
		return t, nil
	}
	spec, ok := c.sc.Traces[name]
	if !ok {
		spec = TraceSpec{Name: name, File: name, Unit: UnitAuto, Step: 5 * time.Minute}
	}
	b, err := c.opts.Traces.ReadFile(spec.File)
	if err != nil {
		return nil, err
	}
	t, err := ParseTrace(spec.Name, b, spec.Column, spec.Unit, spec.Step)
	if err != nil {
		return nil, err
	}
	for _, f := range spec.History {
		b, err := c.opts.Traces.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("trace %s history: %w", spec.Name, err)
		}
		h, err := ParseTrace(spec.Name+" before", b, spec.Column, spec.Unit, spec.Step)
		if err != nil {
			return nil, fmt.Errorf("trace %s history %s: %w", spec.Name, f, err)
		}
		t.Before = append(t.Before, h)
	}
	c.traces[name] = t
	return t, nil
}

func (c *Cluster) addNode(g NodeGroupSpec, name string) *node {
	cores := g.Cores
	if cores <= 0 {
		cores = int(max(1, g.CPU/2500))
	}
	n := &node{
		idx: len(c.nodes), id: newID(c.rng), name: name,
		dc: g.Datacenter, pool: g.NodePool, class: g.NodeClass, meta: map[string]string{},
		cpu: g.CPU, mem: g.MemoryMB, iops: g.IOPS, cores: cores, noAllocMet: g.AllocMetricsOff, drivers: g.Drivers,
		status: api.NodeStatusReady, eligible: true, statusAt: c.now, surge: 1,
	}
	for k, v := range g.Meta {
		n.meta[k] = v
	}
	if len(n.drivers) == 0 {
		n.drivers = DefaultDrivers
	}
	idx := c.bump(TableNodes)
	n.createIdx, n.modifyIdx = idx, idx
	n.addEvent(c.now, nodeEventSubsystemCluster, nodeEventRegistered, 0) // Nomad answers 0 for it
	n.heard = true
	if c.sc.Reregister > 0 {
		n.nextBeat = c.now.Add(c.sc.Reregister)
	}
	c.nodes = append(c.nodes, n)
	c.nodeByID[n.id] = n
	c.nodeByName[n.name] = n
	if _, ok := c.localities[n.dc]; !ok {
		loc := &locality{name: n.dc, bandwidth: 125}
		c.localities[n.dc] = loc
		c.locOrder = append(c.locOrder, loc)
	}
	c.capFreed = true
	return n
}

// bump advances the raft-like index, marks table t modified and wakes
// blocking queries.
func (c *Cluster) bump(t Table) uint64 {
	c.index++
	c.tables[t] = c.index
	c.changed = true
	return c.index
}

// unlock releases the lock, first waking blocking queries if anything
// changed while it was held.
func (c *Cluster) unlock() {
	if c.changed {
		c.changed = false
		close(c.notify)
		c.notify = make(chan struct{})
	}
	c.mu.Unlock()
}

// Now returns the virtual time.
func (c *Cluster) Now() time.Time {
	c.mu.Lock()
	defer c.unlock()
	return c.now
}

// Scenario returns the scenario the cluster runs; callers must not modify it.
func (c *Cluster) Scenario() *Scenario { return c.sc }

// Index returns the modify index of a table.
func (c *Cluster) Index(t Table) uint64 {
	c.mu.Lock()
	defer c.unlock()
	return c.tables[t]
}

// lookupFailed is Nomad's answer to an ID that is not a UUID: its state
// store indexes IDs as 36-character UUIDs (names and prefixes are not IDs).
func lookupFailed(what string) error {
	return rpcError("%s lookup failed: index error: UUID must be 36 characters", what)
}

// apiNode resolves a node ID from Nomad's API: nil when no node has it, an
// error when it is not a UUID.
func (c *Cluster) apiNode(id string) (*node, error) {
	if len(id) != 36 {
		return nil, lookupFailed("node")
	}
	return c.nodeByID[id], nil
}

// findNode resolves a node by ID or name (scenario events, sim endpoints).
func (c *Cluster) findNode(key string) *node {
	if n := c.nodeByID[key]; n != nil {
		return n
	}
	if n := c.nodeByName[key]; n != nil {
		return n
	}
	return nil
}

// copyJob deep-copies an api.Job through its JSON shape.
func copyJob(j *api.Job) *api.Job {
	out := *j
	out.TaskGroups = nil
	for _, tg := range j.TaskGroups {
		g := *tg
		g.Tasks = nil
		for _, t := range tg.Tasks {
			tt := *t
			if t.Resources != nil {
				r := *t.Resources
				tt.Resources = &r
			}
			g.Tasks = append(g.Tasks, &tt)
		}
		if tg.Count != nil {
			g.Count = new(*tg.Count)
		}
		out.TaskGroups = append(out.TaskGroups, &g)
	}
	return &out
}

// allocName returns Nomad's allocation name "job.group[index]".
func allocName(jobID, grp string, index int) string {
	return jobID + "." + grp + "[" + strconv.Itoa(index) + "]"
}

// matchNode reports whether n matches the event's selectors.
func (e EventSpec) matchNode(n *node) bool {
	if e.Datacenter != "" && n.dc != e.Datacenter {
		return false
	}
	if e.NodePool != "" && n.pool != e.NodePool {
		return false
	}
	if e.NodeClass != "" && n.class != e.NodeClass {
		return false
	}
	if e.Node != "" && n.id != e.Node {
		if ok, _ := path.Match(e.Node, n.name); !ok {
			return false
		}
	}
	return true
}

// AddNodes adds count nodes shaped like the scenario's node group, as a
// cluster autoscaler would. They start initializing and turn ready (and
// schedulable) after the scenario's node_boot. It returns their IDs.
func (c *Cluster) AddNodes(group string, count int) ([]string, error) {
	c.mu.Lock()
	defer c.unlock()
	return c.addNodes(group, count)
}

func (c *Cluster) addNodes(group string, count int) ([]string, error) {
	var spec *NodeGroupSpec
	for i := range c.sc.NodeGroups {
		if c.sc.NodeGroups[i].Name == group {
			spec = &c.sc.NodeGroups[i]
		}
	}
	if spec == nil {
		return nil, notFound("node group %q not found", group)
	}
	if count <= 0 || count > 10000 {
		return nil, badRequest("count must be between 1 and 10000")
	}
	var ids []string
	for range count {
		c.groupSize[group]++
		n := c.addNode(*spec, fmt.Sprintf("%s-%d", group, c.groupSize[group]))
		n.status, n.bootAt = api.NodeStatusInit, c.now.Add(c.sc.NodeBoot)
		c.booting = append(c.booting, n)
		ids = append(ids, n.id)
	}
	c.log.Info("nodes added", logKeyNode, group, logKeyCount, count)
	return ids, nil
}

// bootNodes turns added nodes ready once they have booted; system jobs
// then place on them and blocked evaluations may fit.
func (c *Cluster) bootNodes() {
	kept := c.booting[:0]
	for _, n := range c.booting {
		if n.status != api.NodeStatusInit || n.purged {
			continue // taken down or purged meanwhile
		}
		if c.now.Before(n.bootAt) {
			kept = append(kept, n)
			continue
		}
		c.setNodeStatus(n, false)
	}
	clear(c.booting[len(kept):])
	c.booting = kept
}
