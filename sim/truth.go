package sim

import (
	"sort"
	"time"
)

// Truth is what really happened in the simulated cluster, for tests and
// evaluations to assert on. Every slice is in the order things happened.
type Truth struct {
	NodeMinutes []NodeMinute
	JobMinutes  []JobMinute
	Migrations  []MigrationRecord
	Requests    []RequestRecord
	Events      []EventRecord
}

// NodeMinute is one node's demand, capacity and congestion over one minute.
// Demand figures are time-weighted means over the minute; peaks are the
// highest tick.
type NodeMinute struct {
	Minute         time.Time
	NodeID         string
	Node           string
	Datacenter     string
	NodePool       string
	NodeClass      string
	CPUDemandMHz   float64
	CPUPeakMHz     float64
	CPUCapacityMHz float64
	MemDemandMB    float64
	MemPeakMB      float64
	MemCapacityMB  float64
	IOPSDemand     float64
	IOPSPeak       float64
	IOPSCapacity   float64
	// CPUThrottledSeconds is how long CPU demand exceeded capacity;
	// CPUUnservedMHzSeconds how much demand went unserved.
	CPUThrottledSeconds   float64
	CPUUnservedMHzSeconds float64
	// MemPressureSeconds is how long memory demand exceeded capacity.
	MemPressureSeconds float64
	// IOPSOverSeconds is how long IOPS demand exceeded capacity.
	IOPSOverSeconds float64
	// Congested is true when any of the three was over capacity;
	// CongestedSeconds is how long any of them was.
	Congested        bool
	CongestedSeconds float64
	// LatencyFactor is the time-weighted mean of the latency model's
	// factor over the unloaded latency, 1/(1-ρ) for CPU utilisation ρ
	// (capped at MaxLatencyFactor); SLOViolationSeconds sums, over the
	// node's running service allocations, the seconds each spent beyond
	// the scenario's SLO (the factor at or over its latency_factor, or
	// memory pressure).
	LatencyFactor       float64
	SLOViolationSeconds float64
	// ReadySeconds and BootingSeconds are how long the node was ready, and
	// initializing (added at run time, not yet schedulable), in the minute.
	ReadySeconds   float64
	BootingSeconds float64
}

// MaxLatencyFactor caps the latency model's factor: at or over capacity
// the queue grows without bound, recorded as this.
const MaxLatencyFactor = 100

// latencyFactor is the CPU queueing delay factor 1/(1-ρ) of an M/M/1
// queue at utilisation rho, capped at MaxLatencyFactor.
func latencyFactor(rho float64) float64 {
	if rho >= 1-1.0/MaxLatencyFactor {
		return MaxLatencyFactor
	}
	return 1 / (1 - max(rho, 0))
}

// JobMinute is what one job held in one datacenter, or waited for, at the
// end of one minute: the resources its allocations hold on the
// datacenter's nodes (requests, as the scheduler counts them) and how many
// of them run; and, in the record without a datacenter, how many wait in a
// blocked evaluation because nothing fits. Only non-zero records are kept.
type JobMinute struct {
	Minute          time.Time
	JobID           string
	Datacenter      string
	Type            string
	Priority        int
	AllocatedCPUMHz float64
	AllocatedMemMB  float64
	Running         int
	Queued          int
}

// MigrationRecord is one finished migration transfer.
type MigrationRecord struct {
	AllocID        string
	ReplacementID  string
	JobID          string
	Group          string
	SourceNode     string
	TargetNode     string
	SourceLocality string
	TargetLocality string
	Start          time.Time
	End            time.Time
	Bytes          int64
	Mode           string
	Reason         string
}

// Duration is how long the transfer took.
func (m MigrationRecord) Duration() time.Duration { return m.End.Sub(m.Start) }

// RequestRecord is one mutating API request the sim received, whether it
// was served, refused (a bad token, a bad request) or met an injected fault.
type RequestRecord struct {
	Time   time.Time
	Method string
	Path   string
	// Status is the answer's HTTP status; 0 when the sim never answered
	// (the client gave up during injected latency, a timeout or a hold
	// fault).
	Status int
	Body   string // the first bytes of the request body
	// Held is true when a hold fault caught the request.
	Held bool `json:",omitempty"`
	// Applied is the status a request caught by a hold with Apply took
	// effect with, its answer lost (0 otherwise).
	Applied int `json:",omitempty"`
}

// Succeeded reports whether the request took effect: answered with a 2xx
// status, or applied by a hold fault with one.
func (r RequestRecord) Succeeded() bool {
	code := r.Status
	if r.Applied != 0 {
		code = r.Applied
	}
	return code >= 200 && code < 300
}

// EventRecord is one scenario event as it was applied.
type EventRecord struct {
	Time   time.Time
	Name   string
	Kind   string
	Detail string
}

// minuteAcc accumulates one node's current minute.
type minuteAcc struct {
	secs             float64
	cpu, mem, iops   float64
	cpuPeak, memPeak float64
	iopsPeak         float64
	throttledSecs    float64
	unservedCPU      float64
	memPressureSecs  float64
	iopsOverSecs     float64
	congestedSecs    float64
	latency          float64 // factor × seconds
	sloSecs          float64
	readySecs        float64
	bootSecs         float64
}

// flushMinutes writes the accumulated minute of every node once virtual
// time has entered a new minute (or unconditionally with force).
func (c *Cluster) flushMinutes(force bool) {
	cur := c.now.Truncate(time.Minute)
	if !force && !cur.After(c.lastMinute) {
		return
	}
	if !c.opts.SkipNodeMinutes {
		if cap(c.truth.NodeMinutes) == 0 && c.sc.Duration > 0 {
			// A run of known length records a minute per node and minute:
			// reserve that once (up to 2M records) rather than copy the
			// records each time the slice grows.
			span := min(c.sc.Duration, 31*24*time.Hour)
			if w := c.opts.TruthWindow; w > 0 {
				span = min(span, w)
			}
			mins := int(span/time.Minute) + 1
			c.truth.NodeMinutes = make([]NodeMinute, 0, min(mins*len(c.nodes), 1<<21))
		}
		for _, n := range c.nodes {
			m := &n.minuteAcc
			if m.secs == 0 {
				continue
			}
			rec := NodeMinute{
				Minute: c.lastMinute, NodeID: n.id, Node: n.name,
				Datacenter: n.dc, NodePool: n.pool, NodeClass: n.class,
				CPUDemandMHz: m.cpu / m.secs, CPUPeakMHz: m.cpuPeak, CPUCapacityMHz: float64(n.cpu),
				MemDemandMB: m.mem / m.secs, MemPeakMB: m.memPeak, MemCapacityMB: float64(n.mem),
				IOPSDemand: m.iops / m.secs, IOPSPeak: m.iopsPeak, IOPSCapacity: float64(n.iops),
				CPUThrottledSeconds: m.throttledSecs, CPUUnservedMHzSeconds: m.unservedCPU,
				MemPressureSeconds: m.memPressureSecs, IOPSOverSeconds: m.iopsOverSecs,
				CongestedSeconds: m.congestedSecs, LatencyFactor: m.latency / m.secs,
				SLOViolationSeconds: m.sloSecs, ReadySeconds: m.readySecs, BootingSeconds: m.bootSecs,
			}
			rec.Congested = m.throttledSecs > 0 || m.memPressureSecs > 0 || m.iopsOverSecs > 0
			c.truth.NodeMinutes = append(c.truth.NodeMinutes, rec)
			*m = minuteAcc{}
		}
	}
	c.flushJobMinutes()
	if w := c.opts.TruthWindow; w > 0 {
		cut := cur.Add(-w)
		c.truth.NodeMinutes = dropBefore(c.truth.NodeMinutes, cut, func(r *NodeMinute) time.Time { return r.Minute })
		c.truth.JobMinutes = dropBefore(c.truth.JobMinutes, cut, func(r *JobMinute) time.Time { return r.Minute })
	}
	c.lastMinute = cur
}

// dropBefore drops the records of s (in time order) whose time, at, is
// before cut. It reslices, zeroing what it drops: once the backing array
// is full, append copies only the records kept into a new one, and the
// old one is freed.
func dropBefore[T any](s []T, cut time.Time, at func(*T) time.Time) []T {
	i := 0
	for i < len(s) && at(&s[i]).Before(cut) {
		i++
	}
	clear(s[:i])
	return s[i:]
}

// flushJobMinutes records what every job holds and waits for as the
// minute ends.
func (c *Cluster) flushJobMinutes() {
	queued := map[string]int{}
	for _, b := range c.blocked {
		for _, q := range b.queued {
			queued[b.jobID] += q
		}
	}
	for _, j := range c.sortedJobs() {
		var recs []*JobMinute // by datacenter, in first-seen order
		byDC := map[string]*JobMinute{}
		for _, a := range j.allocs {
			if !a.holding && a.client != allocRunning {
				continue
			}
			dc := a.node.dc
			rec := byDC[dc]
			if rec == nil {
				rec = &JobMinute{Minute: c.lastMinute, JobID: j.id, Datacenter: dc, Type: j.typ, Priority: j.priority}
				byDC[dc] = rec
				recs = append(recs, rec)
			}
			if a.holding {
				rec.AllocatedCPUMHz += float64(a.reqCPU)
				rec.AllocatedMemMB += float64(a.grp.mem)
			}
			if a.client == allocRunning {
				rec.Running++
			}
		}
		sort.Slice(recs, func(i, k int) bool { return recs[i].Datacenter < recs[k].Datacenter })
		if q := queued[j.id]; q > 0 {
			recs = append([]*JobMinute{{Minute: c.lastMinute, JobID: j.id, Type: j.typ, Priority: j.priority, Queued: q}}, recs...)
		}
		for _, rec := range recs {
			c.truth.JobMinutes = append(c.truth.JobMinutes, *rec)
		}
	}
}

// Truth returns a copy of the ground truth recorded so far.
func (c *Cluster) Truth() Truth {
	c.mu.Lock()
	defer c.unlock()
	return Truth{
		NodeMinutes: append([]NodeMinute(nil), c.truth.NodeMinutes...),
		JobMinutes:  append([]JobMinute(nil), c.truth.JobMinutes...),
		Migrations:  append([]MigrationRecord(nil), c.truth.Migrations...),
		Requests:    append([]RequestRecord(nil), c.truth.Requests...),
		Events:      append([]EventRecord(nil), c.truth.Events...),
	}
}

// TruthSince returns the ground truth recorded at or after t (by minute,
// start, request or event time), for polling consumers.
func (c *Cluster) TruthSince(t time.Time) Truth {
	all := c.Truth()
	var out Truth
	for _, r := range all.NodeMinutes {
		if !r.Minute.Before(t) {
			out.NodeMinutes = append(out.NodeMinutes, r)
		}
	}
	for _, r := range all.JobMinutes {
		if !r.Minute.Before(t) {
			out.JobMinutes = append(out.JobMinutes, r)
		}
	}
	for _, r := range all.Migrations {
		if !r.End.Before(t) {
			out.Migrations = append(out.Migrations, r)
		}
	}
	for _, r := range all.Requests {
		if !r.Time.Before(t) {
			out.Requests = append(out.Requests, r)
		}
	}
	for _, r := range all.Events {
		if !r.Time.Before(t) {
			out.Events = append(out.Events, r)
		}
	}
	return out
}

// LocalitySummary totals the ground truth of one datacenter (or of the
// whole cluster when Datacenter is empty).
type LocalitySummary struct {
	Datacenter            string
	NodeMinutes           int
	CongestedNodeMinutes  int
	CPUThrottledSeconds   float64
	CPUUnservedMHzSeconds float64
	MemPressureSeconds    float64
	IOPSOverSeconds       float64
	// Migrations counts the transfers out of the locality.
	Migrations           int
	MigrationSeconds     float64 // total transfer time
	MaxMigrationSeconds  float64
	MeanMigrationSeconds float64
}

// Summary is the ground truth reduced to per-locality totals, the figures
// an evaluation compares between policies.
type Summary struct {
	Localities []LocalitySummary // by datacenter name
	Total      LocalitySummary
}

// Summarize totals the ground truth per datacenter and overall.
func (t Truth) Summarize() Summary {
	byDC := map[string]*LocalitySummary{}
	get := func(dc string) *LocalitySummary {
		s := byDC[dc]
		if s == nil {
			s = &LocalitySummary{Datacenter: dc}
			byDC[dc] = s
		}
		return s
	}
	var total LocalitySummary
	for _, m := range t.NodeMinutes {
		for _, s := range []*LocalitySummary{get(m.Datacenter), &total} {
			s.NodeMinutes++
			if m.Congested {
				s.CongestedNodeMinutes++
			}
			s.CPUThrottledSeconds += m.CPUThrottledSeconds
			s.CPUUnservedMHzSeconds += m.CPUUnservedMHzSeconds
			s.MemPressureSeconds += m.MemPressureSeconds
			s.IOPSOverSeconds += m.IOPSOverSeconds
		}
	}
	for _, m := range t.Migrations {
		d := m.Duration().Seconds()
		for _, s := range []*LocalitySummary{get(m.SourceLocality), &total} {
			s.Migrations++
			s.MigrationSeconds += d
			s.MaxMigrationSeconds = max(s.MaxMigrationSeconds, d)
		}
	}
	out := Summary{Total: total}
	for _, s := range byDC {
		out.Localities = append(out.Localities, *s)
	}
	sort.Slice(out.Localities, func(i, k int) bool { return out.Localities[i].Datacenter < out.Localities[k].Datacenter })
	for i := range out.Localities {
		out.Localities[i].finish()
	}
	out.Total.finish()
	return out
}

func (s *LocalitySummary) finish() {
	if s.Migrations > 0 {
		s.MeanMigrationSeconds = s.MigrationSeconds / float64(s.Migrations)
	}
}
