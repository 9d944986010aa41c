// Package nomad is the metric source that reads Nomad: the node list (kept
// current with blocking queries), per-node host stats and, optionally,
// per-allocation stats, aggregated to every node (keyed by node ID) and to
// every locality the policies name: CPU and memory as percent of
// allocatable capacity, and as absolute MHz and MB.
//
// It only reads from Nomad. A node whose stats cannot be read this cycle is
// reported stale and left out of its localities' aggregates; its last value
// is never reused. A locality's absolute use (MHz, MB) is published only
// when every one of its ready nodes answered: a partial sum would look like
// a drop in demand, so it is reported stale instead; its percent use is the
// answering nodes' use over their own capacity. A task group's series are
// stale when one of its allocations' stats cannot be read, and all of them
// when the allocations cannot be listed: then Collect returns the nodes'
// and localities' samples with the listing's error.
package nomad

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/backoff"
	"github.com/foreshape/foreshape/internal/blocking"
	"github.com/foreshape/foreshape/internal/failing"
	"github.com/foreshape/foreshape/plugins/source"
)

// Config configures the source.
type Config struct {
	// Client is a configured Nomad API client.
	Client *nomadapi.Client
	// Concurrency bounds the stats requests in flight; zero means 32.
	Concurrency int
	// NodeSeries adds per-node series ("node/<node ID>:cpu", …); NodeNames
	// maps the IDs to names.
	NodeSeries bool
	// AllocStats reads every running allocation's stats and adds per task
	// group series ("group/<namespace>/<job>/<group>:cpu_mhz", :memory_mb,
	// and :allocs, how many running allocations the sums cover). It costs
	// one request per allocation and cycle (none for allocations whose
	// node's client agent reports them). A group with an allocation its
	// Nomad client did not measure (ErrUnmeasured: the client lacks
	// telemetry's publish_allocation_metrics) is reported stale.
	AllocStats bool
	// StatsTimeout bounds each stats request; zero means 5s.
	StatsTimeout time.Duration
	// ReadsTimeout bounds one collection's stats reads, nodes' and
	// allocations' together: what is not read by then is stale, saying
	// so (a Nomad whose clients do not answer would otherwise hold the
	// cycle for StatsTimeout per Concurrency reads). Zero means the
	// request's step or twice StatsTimeout, whichever is longer; a
	// negative one, no bound (the proof's runs, whose figures must not
	// depend on the machine's speed).
	ReadsTimeout time.Duration
	// Reports, when set, holds what client agents reported about their own
	// nodes: the source asks Nomad only for the nodes (and allocations)
	// without a fresh report.
	Reports Reports
}

// Reports is usage that client agents read from their local Nomad client
// and sent to the leader.
type Reports interface {
	// NodeReport returns the report of the node with this ID that is fresh
	// at now, or false.
	NodeReport(nodeID string, now time.Time) (Report, bool)
}

// Report is one node's usage as its client agent read it (ReadReport).
type Report struct {
	CPUMHz   float64 `json:"cpu_mhz"`
	MemoryMB float64 `json:"memory_mb"`
	// Allocs maps each running allocation's ID to its usage; nil when
	// allocation stats were not read.
	Allocs map[string]AllocUsage `json:"allocs,omitempty"`
}

// AllocUsage is one allocation's usage.
type AllocUsage struct {
	CPUMHz   float64 `json:"cpu_mhz"`
	MemoryMB float64 `json:"memory_mb"`
	// Unmeasured says its Nomad client has not measured it
	// (ErrUnmeasured): its usage is unknown, and the leader need not ask
	// Nomad again. A leader of a build before it reads the zeros.
	Unmeasured bool `json:"unmeasured,omitempty"`
}

// Source reads Nomad.
type Source struct {
	cfg Config
	log hclog.Logger
	// wait is the wait of a watch's blocking query, and margin what its
	// request gets beyond the longest Nomad holds it (blocking.Bound);
	// tests shorten them.
	wait, margin time.Duration

	mu sync.Mutex
	// watching counts the Watch calls running: while one runs, Collect
	// reads the node list it keeps current; else Collect lists the nodes
	// itself when the node table's index moved, so a node added since the
	// last collection is read too.
	watching   int
	nodes      []*nomadapi.NodeListStub // sorted by ID; nil until first listed
	nodeIndex  uint64
	allocs     []*nomadapi.AllocationListStub // nil until first listed
	allocIndex uint64
	// groups are the task group scopes of the last allocation stats read,
	// reported stale when the allocations cannot be listed.
	groups []string
}

var _ source.Source = (*Source)(nil)

// New returns a Nomad source.
func New(cfg Config, log hclog.Logger) (*Source, error) {
	if cfg.Client == nil {
		return nil, errors.New("nomad source: no client")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.StatsTimeout <= 0 {
		cfg.StatsTimeout = 5 * time.Second
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Source{cfg: cfg, log: log.Named("nomad"), wait: blocking.MaxWait, margin: blocking.Margin}, nil
}

// Name implements source.Source.
func (s *Source) Name() string { return "nomad" }

// Watch keeps the node list (and, with AllocStats, the allocation list)
// current with blocking queries until ctx ends, so that Collect sees
// changes without listing every cycle (without a Watch running, Collect
// asks for the node table's index each time and lists the nodes when it
// moved). Errors are logged and retried with backoff.
func (s *Source) Watch(ctx context.Context) {
	s.mu.Lock()
	s.watching++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.watching--
		s.mu.Unlock()
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.watch(ctx, "nodes", func(q *nomadapi.QueryOptions) (uint64, error) {
			q.Params = map[string]string{"resources": "true"}
			nodes, meta, err := s.cfg.Client.Nodes().List(q)
			if err != nil {
				return 0, err
			}
			s.setNodes(nodes, meta.LastIndex)
			return meta.LastIndex, nil
		}, func() uint64 { s.mu.Lock(); defer s.mu.Unlock(); return s.nodeIndex })
	}()
	if s.cfg.AllocStats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.watch(ctx, "allocations", func(q *nomadapi.QueryOptions) (uint64, error) {
				q.Namespace = "*"
				allocs, meta, err := s.cfg.Client.Allocations().List(q)
				if err != nil {
					return 0, err
				}
				s.mu.Lock()
				s.allocs, s.allocIndex = allocs, meta.LastIndex
				s.mu.Unlock()
				return meta.LastIndex, nil
			}, func() uint64 { s.mu.Lock(); defer s.mu.Unlock(); return s.allocIndex })
		}()
	}
	wg.Wait()
}

// watch runs one blocking-query loop: list with the last index seen, wait
// for a change, repeat. Each request ends a little after Nomad must have
// answered it (blocking.Bound), so that one whose connection went silent
// fails instead of freezing the list for the watch's life. Its failures
// are retried with backoff and logged as a failing.Streak: the first at
// once, the same again every failing.RemindEvery, and the first answer
// after them once.
func (s *Source) watch(ctx context.Context, what string, list func(*nomadapi.QueryOptions) (uint64, error), index func() uint64) {
	var (
		retry time.Duration // after a failure; zero after a success
		fails failing.Streak
	)
	for ctx.Err() == nil {
		q, end := blocking.Bound(ctx, &nomadapi.QueryOptions{WaitIndex: index(), WaitTime: s.wait}, s.margin)
		_, err := list(q)
		if err = end(err); err != nil {
			if ctx.Err() != nil {
				return
			}
			retry = backoff.Next(retry)
			fails.Fail(s.log, time.Now(), "watch failed; retrying", err, "what", what, "backoff", retry)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			continue
		}
		retry = 0
		fails.OK(s.log, time.Now(), "watch answers again", "what", what)
	}
}

func (s *Source) setNodes(nodes []*nomadapi.NodeListStub, index uint64) {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	s.mu.Lock()
	defer s.mu.Unlock()
	if index != s.nodeIndex || s.nodes == nil {
		s.log.Debug("node list changed", "nodes", len(nodes), "index", index)
	}
	s.nodes, s.nodeIndex = nodes, index
}

// NodeNames maps the ID of every node in the last node list to its name,
// for showing node series ("node/<ID>:cpu") to operators.
func (s *Source) NodeNames() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.nodes))
	for _, n := range s.nodes {
		out[n.ID] = n.Name
	}
	return out
}

// Unmatched returns the localities of ls that no ready node of the last
// node list is in, and the datacenters its ready nodes are in, sorted;
// known is false before a node list was read. A policy naming such a
// locality (a datacenter, pool or class spelt wrong, or gone) gets no
// samples for it.
func (s *Source) Unmatched(ls []source.Locality) (unmatched []source.Locality, datacenters []string, known bool) {
	s.mu.Lock()
	nodes := s.nodes
	s.mu.Unlock()
	if nodes == nil {
		return nil, nil, false
	}
	dcs := map[string]bool{}
	for _, n := range nodes {
		if n.Status == "ready" {
			dcs[n.Datacenter] = true
		}
	}
	for _, l := range ls {
		found := false
		for _, n := range nodes {
			if n.Status == "ready" && l.Matches(n.Datacenter, n.NodePool, n.NodeClass) {
				found = true
				break
			}
		}
		if !found {
			unmatched = append(unmatched, l)
		}
	}
	for dc := range dcs {
		datacenters = append(datacenters, dc)
	}
	sort.Strings(datacenters)
	return unmatched, datacenters, true
}

// noMatch is an ID prefix no node has: a node list with it answers with
// the node table's index alone.
const noMatch = "ffffffff-ffff-ffff-ffff-ffffffffffff"

// listNodes returns the watched node list, or lists now when no Watch runs
// or none has filled it yet. Without a Watch, the last list is kept while
// the node table's index has not moved (every change to a node, one added
// included, moves it), so an unchanged cluster costs an empty answer, not
// every node's resources.
func (s *Source) listNodes(ctx context.Context) ([]*nomadapi.NodeListStub, error) {
	s.mu.Lock()
	nodes, index, watched := s.nodes, s.nodeIndex, s.watching > 0
	s.mu.Unlock()
	if nodes != nil && watched {
		return nodes, nil
	}
	if nodes != nil {
		_, meta, err := s.cfg.Client.Nodes().List((&nomadapi.QueryOptions{Prefix: noMatch}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("nomad source: node index: %w", err)
		}
		if meta.LastIndex == index {
			return nodes, nil
		}
	}
	q := (&nomadapi.QueryOptions{Params: map[string]string{"resources": "true"}}).WithContext(ctx)
	nodes, meta, err := s.cfg.Client.Nodes().List(q)
	if err != nil {
		return nil, fmt.Errorf("nomad source: list nodes: %w", err)
	}
	s.setNodes(nodes, meta.LastIndex)
	return nodes, nil
}

// cutOff is the error of a stats read the collection's bound cut off or
// never began (Config.ReadsTimeout).
func cutOff(limit time.Duration) error {
	return fmt.Errorf("not read within the collection's %s for its stats reads", limit)
}

// usage is what one node reported.
type usage struct {
	cpuMHz, memMB    float64 // used
	cpuCap, memCapMB float64 // allocatable
	err              error
}

// Collect implements source.Source.
func (s *Source) Collect(ctx context.Context, req source.Request) (source.Result, error) {
	if err := ctx.Err(); err != nil {
		return source.Result{}, err
	}
	all, err := s.listNodes(ctx)
	if err != nil {
		return source.Result{}, err
	}
	var nodes []*nomadapi.NodeListStub
	for _, n := range all {
		if n.Status != "ready" || n.NodeResources == nil {
			continue
		}
		if s.cfg.NodeSeries || matchesAny(req.Localities, n) {
			nodes = append(nodes, n)
		}
	}
	limit := s.cfg.ReadsTimeout
	if limit == 0 {
		limit = max(req.Step, 2*s.cfg.StatsTimeout)
	}
	var (
		rctx   context.Context
		cancel context.CancelFunc
	)
	if limit > 0 {
		rctx, cancel = context.WithTimeout(ctx, limit)
	} else {
		rctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	usages := make([]usage, len(nodes))
	cut := func(i int) error { return fmt.Errorf("node %s stats: %w", nodes[i].Name, cutOff(limit)) }
	for i := range usages {
		usages[i].err = cut(i)
	}
	s.forEach(rctx, len(nodes), func(ctx context.Context, i int) {
		usages[i] = s.nodeUsage(ctx, nodes[i], req.Now)
		if usages[i].err != nil && rctx.Err() != nil {
			usages[i].err = cut(i)
		}
	})
	if err := ctx.Err(); err != nil {
		return source.Result{}, err
	}

	t := req.Now
	var res source.Result
	failed := 0
	for i, n := range nodes {
		u := usages[i]
		if u.err != nil {
			failed++
		}
		if !s.cfg.NodeSeries {
			continue
		}
		scope := source.NodeScope + n.ID
		if u.err != nil {
			for _, m := range []string{source.CPUPercent, source.MemoryPercent, source.CPUMHz, source.MemoryMB} {
				res.Stale = append(res.Stale, source.Stale{Series: source.SeriesName(scope, m), Reason: u.err.Error()})
			}
			continue
		}
		res.Samples = append(res.Samples, percentAndAbsolute(scope, t, u)...)
	}
	for _, l := range req.Localities {
		var sum usage
		members, fresh := 0, 0
		for i, n := range nodes {
			if !l.Matches(n.Datacenter, n.NodePool, n.NodeClass) {
				continue
			}
			members++
			if usages[i].err != nil {
				continue
			}
			fresh++
			sum.cpuMHz += usages[i].cpuMHz
			sum.memMB += usages[i].memMB
			sum.cpuCap += usages[i].cpuCap
			sum.memCapMB += usages[i].memCapMB
		}
		scope := l.String()
		switch {
		case members == 0:
			// No ready node: the locality has no capacity to report on.
		case fresh == 0:
			for _, m := range []string{source.CPUPercent, source.MemoryPercent, source.CPUMHz, source.MemoryMB} {
				res.Stale = append(res.Stale, source.Stale{Series: source.SeriesName(scope, m),
					Reason: fmt.Sprintf("none of the locality's %d nodes answered", members)})
			}
		case fresh < members:
			// The percent of the answering nodes' capacity still estimates
			// the locality's; their absolute sum would understate it.
			reason := fmt.Sprintf("%d of the locality's %d nodes answered; a partial sum would understate its demand", fresh, members)
			for _, smp := range percentAndAbsolute(scope, t, sum) {
				if _, m, _ := source.SplitSeries(smp.Series); m == source.CPUMHz || m == source.MemoryMB {
					res.Stale = append(res.Stale, source.Stale{Series: smp.Series, Reason: reason})
					continue
				}
				res.Samples = append(res.Samples, smp)
			}
		default:
			res.Samples = append(res.Samples, percentAndAbsolute(scope, t, sum)...)
		}
	}
	if len(nodes) > 0 && failed == len(nodes) {
		// Nothing was collected; the stale entries still say which series
		// could not be refreshed, and why.
		res.Sort()
		return source.Result{Stale: res.Stale}, fmt.Errorf("nomad source: no node's stats could be read: %w", firstErr(usages))
	}
	var failure error
	if s.cfg.AllocStats {
		samples, stale, err := s.allocSamples(ctx, rctx, t, limit)
		if err != nil {
			if ctx.Err() != nil {
				return source.Result{}, ctx.Err()
			}
			// The nodes' and localities' series stand, returned with the
			// error; the task groups' series known so far are stale.
			failure, stale = err, s.groupsStale(err)
		}
		res.Samples = append(res.Samples, samples...)
		res.Stale = append(res.Stale, stale...)
	}
	res.Sort()
	if failure != nil && len(res.Samples) == 0 {
		return source.Result{Stale: res.Stale}, failure
	}
	return res, failure
}

func percentAndAbsolute(scope string, t time.Time, u usage) []source.Sample {
	out := []source.Sample{
		{Series: source.SeriesName(scope, source.CPUMHz), Time: t, Value: u.cpuMHz},
		{Series: source.SeriesName(scope, source.MemoryMB), Time: t, Value: u.memMB},
	}
	if u.cpuCap > 0 {
		out = append(out, source.Sample{Series: source.SeriesName(scope, source.CPUPercent), Time: t, Value: 100 * u.cpuMHz / u.cpuCap})
	}
	if u.memCapMB > 0 {
		out = append(out, source.Sample{Series: source.SeriesName(scope, source.MemoryPercent), Time: t, Value: 100 * u.memMB / u.memCapMB})
	}
	return out
}

func firstErr(us []usage) error {
	for _, u := range us {
		if u.err != nil {
			return u.err
		}
	}
	return nil
}

func matchesAny(ls []source.Locality, n *nomadapi.NodeListStub) bool {
	for _, l := range ls {
		if l.Matches(n.Datacenter, n.NodePool, n.NodeClass) {
			return true
		}
	}
	return false
}

// nodeUsage reads one node's host stats: its client agent's fresh report,
// or else from Nomad.
func (s *Source) nodeUsage(ctx context.Context, n *nomadapi.NodeListStub, now time.Time) usage {
	var u usage
	if r, ok := s.report(n.ID, now); ok {
		u.cpuMHz, u.memMB = r.CPUMHz, r.MemoryMB
	} else {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.StatsTimeout)
		defer cancel()
		st, err := s.cfg.Client.Nodes().Stats(n.ID, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return usage{err: fmt.Errorf("node %s stats: %w", n.Name, err)}
		}
		u.cpuMHz, u.memMB = hostUsage(st)
	}
	u.cpuCap, u.memCapMB = allocatable(n)
	return u
}

// allocatable is a node's capacity a locality's percentages are of: its
// resources less what it reserves.
func allocatable(n *nomadapi.NodeListStub) (cpuMHz, memMB float64) {
	cpuMHz = float64(n.NodeResources.Cpu.CpuShares)
	memMB = float64(n.NodeResources.Memory.MemoryMB)
	if r := n.ReservedResources; r != nil {
		cpuMHz -= float64(r.Cpu.CpuShares)
		memMB -= float64(r.Memory.MemoryMB)
	}
	return cpuMHz, memMB
}

// Capacity is one node of the node list with what Collect reads its
// localities' percentages over.
type Capacity struct {
	Name                            string
	Datacenter, NodePool, NodeClass string
	// Ready is status "ready": Collect measures a locality over its ready
	// nodes, whatever their scheduling eligibility or drain (an
	// ineligible or drained node's capacity stays in the percentages'
	// base until it goes down).
	Ready bool
	// CPUMHz and MemoryMB are its allocatable capacity (allocatable).
	CPUMHz, MemoryMB float64
}

// Capacities lists the nodes of the last node list that report their
// resources, in ID order; known is false before a node list was read.
func (s *Source) Capacities() (nodes []Capacity, known bool) {
	s.mu.Lock()
	list := s.nodes
	s.mu.Unlock()
	if list == nil {
		return nil, false
	}
	for _, n := range list {
		if n.NodeResources == nil {
			continue
		}
		c := Capacity{Name: n.Name, Datacenter: n.Datacenter, NodePool: n.NodePool, NodeClass: n.NodeClass, Ready: n.Status == "ready"}
		c.CPUMHz, c.MemoryMB = allocatable(n)
		nodes = append(nodes, c)
	}
	return nodes, true
}

// allocSamples reads every running allocation's stats and sums them per
// task group: the list under ctx, the stats under reads, which the
// collection's deadline limit ends.
func (s *Source) allocSamples(ctx, reads context.Context, t time.Time, limit time.Duration) ([]source.Sample, []source.Stale, error) {
	s.mu.Lock()
	allocs := s.allocs
	s.mu.Unlock()
	if allocs == nil {
		q := (&nomadapi.QueryOptions{Namespace: "*"}).WithContext(ctx)
		var err error
		if allocs, _, err = s.cfg.Client.Allocations().List(q); err != nil {
			return nil, nil, fmt.Errorf("nomad source: list allocations: %w", err)
		}
	}
	var running []*nomadapi.AllocationListStub
	for _, a := range allocs {
		if a.ClientStatus == "running" {
			running = append(running, a)
		}
	}
	type au struct {
		cpu, mem float64
		err      error
	}
	out := make([]au, len(running))
	for i := range out {
		out[i].err = cutOff(limit)
	}
	s.forEach(reads, len(running), func(ctx context.Context, i int) {
		if r, ok := s.report(running[i].NodeID, t); ok && r.Allocs != nil {
			if a, ok := r.Allocs[running[i].ID]; ok {
				out[i].cpu, out[i].mem = a.CPUMHz, a.MemoryMB
				if a.Unmeasured {
					out[i].err = fmt.Errorf("client agent's report: %w", ErrUnmeasured)
				}
				return
			}
		}
		ctx, cancel := context.WithTimeout(ctx, s.cfg.StatsTimeout)
		defer cancel()
		st, err := s.cfg.Client.Allocations().Stats(&nomadapi.Allocation{ID: running[i].ID}, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err == nil {
			out[i].cpu, out[i].mem, err = allocUsage(st, running[i].TaskStates)
		}
		if err != nil && reads.Err() != nil {
			err = cutOff(limit)
		}
		out[i].err = err
	})
	type group struct {
		cpu, mem float64
		n        int
		failed   string
	}
	groups := map[string]*group{}
	for i, a := range running {
		scope := "group/" + a.Namespace + "/" + a.JobID + "/" + a.TaskGroup
		g := groups[scope]
		if g == nil {
			g = &group{}
			groups[scope] = g
		}
		if out[i].err != nil {
			g.failed = fmt.Sprintf("allocation %s stats: %v", a.ID, out[i].err)
			continue
		}
		g.cpu += out[i].cpu
		g.mem += out[i].mem
		g.n++
	}
	var samples []source.Sample
	var stale []source.Stale
	scopes := make([]string, 0, len(groups))
	for scope := range groups {
		scopes = append(scopes, scope)
	}
	sort.Strings(scopes)
	s.mu.Lock()
	s.groups = scopes
	s.mu.Unlock()
	for scope, g := range groups {
		if g.failed != "" {
			// A partial sum would look like a drop in demand: report it stale.
			stale = append(stale, source.Stale{Series: source.SeriesName(scope, source.CPUMHz), Reason: g.failed},
				source.Stale{Series: source.SeriesName(scope, source.MemoryMB), Reason: g.failed},
				source.Stale{Series: source.SeriesName(scope, source.Allocs), Reason: g.failed})
			continue
		}
		samples = append(samples, source.Sample{Series: source.SeriesName(scope, source.CPUMHz), Time: t, Value: g.cpu},
			source.Sample{Series: source.SeriesName(scope, source.MemoryMB), Time: t, Value: g.mem},
			source.Sample{Series: source.SeriesName(scope, source.Allocs), Time: t, Value: float64(g.n)})
	}
	return samples, stale, nil
}

// groupsStale returns the task group series of the last allocation stats
// read, stale with err.
func (s *Source) groupsStale(err error) []source.Stale {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []source.Stale
	for _, scope := range s.groups {
		for _, m := range []string{source.CPUMHz, source.MemoryMB, source.Allocs} {
			out = append(out, source.Stale{Series: source.SeriesName(scope, m), Reason: err.Error()})
		}
	}
	return out
}

func (s *Source) report(nodeID string, now time.Time) (Report, bool) {
	if s.cfg.Reports == nil {
		return Report{}, false
	}
	return s.cfg.Reports.NodeReport(nodeID, now)
}

// hostUsage is a node's CPU (MHz) and memory (MB) in use.
func hostUsage(st *nomadapi.HostStats) (cpuMHz, memMB float64) {
	cpuMHz = st.CPUTicksConsumed
	if st.Memory != nil {
		memMB = float64(st.Memory.Used) / (1 << 20)
	}
	return cpuMHz, memMB
}

// ErrUnmeasured is the error of an allocation whose client has not
// measured every one of its running tasks: Nomad answers its stats with
// the measured tasks alone, and with none (no task, zero usage, a zero
// Timestamp) when the client never measures allocations, which is a
// client's default: it measures them only with telemetry {
// publish_allocation_metrics = true }. An allocation that stopped since it
// was listed answers a zero usage and Timestamp too. Its usage is unknown,
// not zero.
var ErrUnmeasured = errors.New("not measured by its Nomad client (a client measures allocations only with telemetry { publish_allocation_metrics = true }; a task just started has no measure before its first collection interval, an allocation stopped since it was listed none at all)")

// allocUsage is an allocation's CPU (MHz) and memory (MB, RSS or else
// usage) in use, or ErrUnmeasured when st lacks a task that tasks (the
// allocation's task states, nil when unknown) says runs, or holds no
// measurement at all.
func allocUsage(st *nomadapi.AllocResourceUsage, tasks map[string]*nomadapi.TaskState) (cpuMHz, memMB float64, err error) {
	rs := st.ResourceUsage
	if st.Timestamp == 0 || len(st.Tasks) == 0 || rs == nil {
		return 0, 0, ErrUnmeasured
	}
	var missing []string
	for name, ts := range tasks {
		if ts != nil && ts.State == "running" && st.Tasks[name] == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return 0, 0, fmt.Errorf("task %s %w", strings.Join(missing, ", "), ErrUnmeasured)
	}
	if rs.CpuStats != nil {
		cpuMHz = rs.CpuStats.TotalTicks
	}
	if rs.MemoryStats != nil {
		memMB = float64(rs.MemoryStats.RSS) / (1 << 20)
		if rs.MemoryStats.RSS == 0 {
			memMB = float64(rs.MemoryStats.Usage) / (1 << 20)
		}
	}
	return cpuMHz, memMB, nil
}

// ReadReport reads one node's usage from Nomad, as a client agent does on
// its own node: the host stats, and with allocs the stats of each of its
// running allocations. An allocation whose stats cannot be read is left
// out (the leader then reads it itself); one its client has not measured
// (ErrUnmeasured) is reported Unmeasured.
func ReadReport(ctx context.Context, client *nomadapi.Client, nodeID string, allocs bool) (Report, error) {
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	st, err := client.Nodes().Stats(nodeID, q)
	if err != nil {
		return Report{}, fmt.Errorf("nomad: node %s stats: %w", nodeID, err)
	}
	var r Report
	r.CPUMHz, r.MemoryMB = hostUsage(st)
	if !allocs {
		return r, nil
	}
	list, _, err := client.Nodes().Allocations(nodeID, q)
	if err != nil {
		return Report{}, fmt.Errorf("nomad: node %s allocations: %w", nodeID, err)
	}
	r.Allocs = map[string]AllocUsage{}
	for _, a := range list {
		if a.ClientStatus != "running" {
			continue
		}
		st, err := client.Allocations().Stats(&nomadapi.Allocation{ID: a.ID}, q)
		if err != nil {
			continue
		}
		var u AllocUsage
		if u.CPUMHz, u.MemoryMB, err = allocUsage(st, a.TaskStates); err != nil {
			u = AllocUsage{Unmeasured: true} // not idle
		}
		r.Allocs[a.ID] = u
	}
	return r, nil
}

// forEach runs f for 0..n-1 with bounded concurrency.
func (s *Source) forEach(ctx context.Context, n int, f func(context.Context, int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	workers := min(s.cfg.Concurrency, n)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(ctx, i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
}
