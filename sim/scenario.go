package sim

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/nomad/api"
	"github.com/zclconf/go-cty/cty"
)

//go:embed scenarios/*.hcl
var bundled embed.FS

// Scenarios returns the bundled scenarios (rooted so that names look like
// "default.hcl").
func Scenarios() fs.FS {
	sub, err := fs.Sub(bundled, "scenarios")
	if err != nil {
		panic("sim: bundled scenarios: " + err.Error())
	}
	return sub
}

// DefaultScenario returns the bundled default scenario, the one `make dev`
// and `foreshape sim serve` use when no scenario is given.
func DefaultScenario() *Scenario {
	sc, err := LoadScenario(Scenarios(), "default.hcl")
	if err != nil {
		panic("sim: bundled default scenario: " + err.Error())
	}
	return sc
}

// Scenario is a decoded, validated simulation scenario.
type Scenario struct {
	Name     string
	Seed     uint64
	Start    time.Time     // virtual time at which the run starts
	Duration time.Duration // how long an evaluation runs; zero means open-ended
	Tick     time.Duration // model step
	Startup  time.Duration // pending → running delay of a new allocation
	NodeBoot time.Duration // initializing → ready delay of a node added at run time
	// Reregister is the clients' heartbeat interval (Nomad's heartbeat
	// TTL, 10 to 20 s on a small cluster): a node purged while its client
	// still runs is registered again at the client's next heartbeat, at
	// most this long after the purge, with the eligibility the client
	// heard at its last one. Negative ("never"): clients stop with a
	// purge, as when an operator decommissions a node, and a purged node
	// stays gone.
	Reregister time.Duration
	Tokens     []string          // ACL management tokens; with no Policies, empty disables token checks
	Policies   map[string]Policy // ACL tokens with a policy (not management tokens)
	Scheduler  api.SchedulerConfiguration
	Localities []LocalitySpec
	NodeGroups []NodeGroupSpec
	Traces     map[string]TraceSpec
	Jobs       []JobSpec
	Events     []EventSpec
	// Migrations are declared waves of moves. The sim does not perform
	// them: they are work for a controller (foreshape sim run hands them,
	// with the drain events, to every controller it compares).
	Migrations []MigrationSpec
	// SLO is the latency objective the ground truth measures services by.
	SLO SLOSpec
	// ObserveEvery is how often controllers that drive the cluster read
	// its utilisation (foreshape sim run; zero means every minute). The
	// sim itself ignores it.
	ObserveEvery time.Duration
	Faults       Faults
	// PublishAllocationMetrics adds per-allocation gauges to /v1/metrics,
	// as Nomad's telemetry setting of that name does (default true).
	PublishAllocationMetrics bool
}

// LocalitySpec is one datacenter and its migration bandwidth.
type LocalitySpec struct {
	Name          string
	BandwidthMBps float64
}

// NodeGroupSpec describes Count identical nodes.
type NodeGroupSpec struct {
	Name       string
	Datacenter string
	NodePool   string
	NodeClass  string
	Count      int
	CPU        int64 // MHz
	MemoryMB   int64
	IOPS       int64
	Cores      int
	Meta       map[string]string
	// Drivers are the task drivers the nodes report healthy; a task of
	// another driver does not run on them (Nomad filters such a node:
	// "missing drivers"). DefaultDrivers when empty.
	Drivers []string
	// AllocMetricsOff makes the nodes' clients run as a Nomad client does
	// without telemetry's publish_allocation_metrics (its default outside
	// -dev): they never measure their allocations, whose stats answer
	// with no task and a zero Timestamp, and /v1/metrics has no gauges of
	// them (the scenario's PublishAllocationMetrics only drops the gauges).
	AllocMetricsOff bool
}

// TraceSpec names a trace file and how to read it.
type TraceSpec struct {
	Name   string
	File   string
	Column string
	Unit   string
	Step   time.Duration
	// History names files read the same way that stand for the periods
	// before the run's start, most recent first, repeating: the day
	// before the start is History[0] (for a one-day trace), the day
	// before that History[1], and so on. Empty means the trace itself
	// repeats backwards.
	History []string
}

// JobSpec is a job registered when the run starts, with the sim-only
// settings of its groups.
type JobSpec struct {
	Job    *api.Job
	Groups map[string]GroupSimSpec
}

// GroupSimSpec holds what a Nomad job cannot say: the group's load binding,
// its replacement mode, and (batch) how long its work runs.
type GroupSimSpec struct {
	CPU, Memory, IOPS LoadSpec
	// ReadShare is the fraction of the group's IOPS that are disk reads
	// in node_exporter's counters (the rest are writes), 0 to 1; nil
	// means DefaultReadShare.
	ReadShare   *float64
	Jitter      time.Duration
	Replacement string
	RunFor      time.Duration
}

// LoadSpec binds one resource to a trace (by scenario trace name, or a file
// path). An empty Trace with a Scale is a constant fraction of the request.
type LoadSpec struct {
	Trace  string
	Scale  float64
	Offset time.Duration
	Set    bool
}

// Event kinds.
const (
	EventDrain    = "drain"     // drain the matching nodes with a deadline
	EventSurge    = "surge"     // multiply demand in the matching locality for a while
	EventNodeDown = "node_down" // the matching nodes go down
	EventNodeUp   = "node_up"   // the matching nodes come back
	EventScale    = "scale"     // set a group's count
	EventAddNodes = "add_nodes" // add Count nodes like those of node group Nodes
)

// EventSpec is one scheduled event. Selectors (datacenter, node pool, node
// class, node name) narrow the nodes it applies to.
type EventSpec struct {
	Name       string
	Kind       string
	At         time.Duration // from the start of the run
	Duration   time.Duration // surge length
	Deadline   time.Duration // drain deadline
	Factor     float64       // surge factor
	Datacenter string
	NodePool   string
	NodeClass  string
	Node       string
	Job        string
	Group      string
	Count      int
	Nodes      string // node group to clone (add_nodes)
	// Target is the datacenter a drain's work is meant to move to. The sim
	// lets Nomad's scheduler decide; controllers that move the work
	// themselves (foreshape sim run) read it.
	Target string
	// Announced marks a surge operators know of ahead (a campaign, a
	// launch): the sim applies it like any other, and controllers that
	// plan may be told of it (foreshape sim run declares it in foreshape's
	// policies as a peak schedule).
	Announced bool
}

// MigrationSpec is a declared wave of moves: Count allocations (all that
// match when zero) of a job (and group), running on nodes that match the
// selectors, requested to move from datacenter From to datacenter To. The
// requests arrive At the given offset, or one every Every from then on;
// each should have started within Deadline of its arrival.
type MigrationSpec struct {
	Name      string
	At        time.Duration
	Every     time.Duration
	Deadline  time.Duration
	Job       string
	Group     string
	From      string
	NodePool  string
	NodeClass string
	Node      string
	To        string
	Count     int
}

// SLOSpec is the services' latency objective. The sim models a running
// allocation's latency as its node's CPU queueing delay, 1/(1-ρ) times the
// unloaded latency for CPU utilisation ρ (unbounded at or over capacity);
// a service allocation violates the objective while that factor reaches
// LatencyFactor or its node is under memory pressure.
type SLOSpec struct {
	// LatencyFactor is the highest tolerated multiple of the unloaded
	// latency, > 1; zero means DefaultSLOLatencyFactor (10: 90% CPU
	// utilisation).
	LatencyFactor float64
}

// factor returns the latency factor in force.
func (s SLOSpec) factor() float64 {
	if s.LatencyFactor == 0 {
		return DefaultSLOLatencyFactor
	}
	return s.LatencyFactor
}

// DefaultSLOLatencyFactor is SLOSpec.LatencyFactor's default.
const DefaultSLOLatencyFactor = 10

// LoadScenario reads and decodes the scenario file name from fsys.
func LoadScenario(fsys fs.FS, name string) (*Scenario, error) {
	src, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	return ParseScenario(src, name)
}

// ParseScenario decodes scenario HCL. Errors carry file positions.
func ParseScenario(src []byte, filename string) (*Scenario, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse scenario: %w", diags)
	}
	var raw rawScenario
	if d := gohcl.DecodeBody(f.Body, nil, &raw); d.HasErrors() {
		return nil, fmt.Errorf("decode scenario: %w", d)
	}
	sc, d := raw.translate()
	if d.HasErrors() {
		return nil, fmt.Errorf("decode scenario: %w", d)
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", filename, err)
	}
	return sc, nil
}

// Validate checks references between the parts of a scenario.
func (sc *Scenario) Validate() error {
	dcs := map[string]bool{}
	for _, l := range sc.Localities {
		if l.BandwidthMBps <= 0 {
			return fmt.Errorf("datacenter %q: bandwidth must be positive", l.Name)
		}
		dcs[l.Name] = true
	}
	names := map[string]bool{}
	for _, g := range sc.NodeGroups {
		if !dcs[g.Datacenter] {
			return fmt.Errorf("nodes %q: datacenter %q is not declared", g.Name, g.Datacenter)
		}
		if g.Count < 0 || g.CPU <= 0 || g.MemoryMB <= 0 {
			return fmt.Errorf("nodes %q: count must be ≥ 0 and cpu, memory positive", g.Name)
		}
		if g.Drivers != nil && len(g.Drivers) == 0 || slices.Contains(g.Drivers, "") {
			return fmt.Errorf("nodes %q: drivers must name each driver the nodes have, at least one (unset: %s)", g.Name, strings.Join(DefaultDrivers, ", "))
		}
		if names[g.Name] {
			return fmt.Errorf("nodes %q: declared twice", g.Name)
		}
		names[g.Name] = true
	}
	jobs := map[string]*api.Job{}
	for _, j := range sc.Jobs {
		id := *j.Job.ID
		if jobs[id] != nil {
			return fmt.Errorf("job %q: declared twice", id)
		}
		jobs[id] = j.Job
		for gname, g := range j.Groups {
			for _, l := range []LoadSpec{g.CPU, g.Memory, g.IOPS} {
				if l.Trace != "" {
					if _, ok := sc.Traces[l.Trace]; !ok && !strings.Contains(l.Trace, "/") {
						return fmt.Errorf("job %q group %q: trace %q is not declared", id, gname, l.Trace)
					}
				}
			}
			if s := g.ReadShare; s != nil && !(*s >= 0 && *s <= 1) {
				return fmt.Errorf("job %q group %q: iops read_share %v is not between 0 and 1", id, gname, *s)
			}
			switch g.Replacement {
			case "", BreakBeforeMake, MakeBeforeBreak:
			default:
				return fmt.Errorf("job %q group %q: replacement %q (want %s or %s)", id, gname, g.Replacement, BreakBeforeMake, MakeBeforeBreak)
			}
		}
	}
	for _, e := range sc.Events {
		switch e.Kind {
		case EventDrain, EventNodeDown, EventNodeUp:
		case EventSurge:
			if e.Factor <= 0 || e.Duration <= 0 {
				return fmt.Errorf("event %q: a surge needs a positive factor and duration", e.Name)
			}
		case EventAddNodes:
			if !names[e.Nodes] || e.Count <= 0 {
				return fmt.Errorf("event %q: add_nodes needs a declared node group (nodes) and a positive count", e.Name)
			}
		case EventScale:
			j := jobs[e.Job]
			if j == nil || j.LookupTaskGroup(e.Group) == nil {
				return fmt.Errorf("event %q: job %q group %q not declared", e.Name, e.Job, e.Group)
			}
		default:
			return fmt.Errorf("event %q: unknown kind %q", e.Name, e.Kind)
		}
		if e.Datacenter != "" && !dcs[e.Datacenter] {
			return fmt.Errorf("event %q: datacenter %q is not declared", e.Name, e.Datacenter)
		}
		if e.Target != "" && (e.Kind != EventDrain || !dcs[e.Target]) {
			return fmt.Errorf("event %q: target %q must be a declared datacenter, on a drain", e.Name, e.Target)
		}
		if e.Announced && e.Kind != EventSurge {
			return fmt.Errorf("event %q: only a surge can be announced", e.Name)
		}
	}
	for _, m := range sc.Migrations {
		if !dcs[m.From] || !dcs[m.To] {
			return fmt.Errorf("migration %q: from %q and to %q must be declared datacenters", m.Name, m.From, m.To)
		}
		if m.From == m.To {
			return fmt.Errorf("migration %q: from and to are both %q", m.Name, m.From)
		}
		if m.Count < 0 {
			return fmt.Errorf("migration %q: count must not be negative", m.Name)
		}
		if m.Job != "" {
			j := jobs[m.Job]
			if j == nil || (m.Group != "" && j.LookupTaskGroup(m.Group) == nil) {
				return fmt.Errorf("migration %q: job %q group %q not declared", m.Name, m.Job, m.Group)
			}
		} else if m.Group != "" {
			return fmt.Errorf("migration %q: a group needs its job", m.Name)
		}
	}
	if sc.SLO.LatencyFactor != 0 && sc.SLO.LatencyFactor <= 1 {
		return fmt.Errorf("slo: latency_factor must be greater than 1")
	}
	if sc.Tick <= 0 {
		return fmt.Errorf("tick must be positive")
	}
	if err := sc.Faults.validate(); err != nil {
		return fmt.Errorf("fault: %w", err)
	}
	return nil
}

// The HCL-shaped decode structs, kept apart from the Scenario type.
type rawScenario struct {
	Name         string         `hcl:"name"`
	Seed         *int64         `hcl:"seed,optional"`
	Start        *string        `hcl:"start,optional"`
	Duration     hcl.Expression `hcl:"duration,optional"`
	Tick         hcl.Expression `hcl:"tick,optional"`
	Startup      hcl.Expression `hcl:"startup,optional"`
	AllocMetrics *bool          `hcl:"publish_allocation_metrics,optional"`
	NodeBoot     hcl.Expression `hcl:"node_boot,optional"`
	Reregister   hcl.Expression `hcl:"reregister,optional"`
	ACL          *rawACL        `hcl:"acl,block"`
	Scheduler    *rawScheduler  `hcl:"scheduler,block"`
	Localities   []rawLocality  `hcl:"datacenter,block"`
	Nodes        []rawNodes     `hcl:"nodes,block"`
	Traces       []rawTrace     `hcl:"trace,block"`
	Jobs         []rawJob       `hcl:"job,block"`
	Events       []rawEvent     `hcl:"event,block"`
	Migrations   []rawMigration `hcl:"migration,block"`
	ObserveEvery hcl.Expression `hcl:"observe_every,optional"`
	SLO          *rawSLO        `hcl:"slo,block"`
	Fault        *rawFault      `hcl:"fault,block"`
}

type rawMigration struct {
	Name      string         `hcl:"name,label"`
	At        hcl.Expression `hcl:"at"`
	Every     hcl.Expression `hcl:"every,optional"`
	Deadline  hcl.Expression `hcl:"deadline,optional"`
	Job       *string        `hcl:"job,optional"`
	Group     *string        `hcl:"group,optional"`
	From      string         `hcl:"from"`
	NodePool  *string        `hcl:"node_pool,optional"`
	NodeClass *string        `hcl:"node_class,optional"`
	Node      *string        `hcl:"node,optional"`
	To        string         `hcl:"to"`
	Count     *int           `hcl:"count,optional"`
}

type rawSLO struct {
	LatencyFactor *float64 `hcl:"latency_factor,optional"`
}

type rawACL struct {
	Tokens   []string         `hcl:"tokens,optional"`
	Policies []rawTokenPolicy `hcl:"token,block"`
}

// rawTokenPolicy is a token with an ACL policy: token "SECRET" { ... }.
type rawTokenPolicy struct {
	Secret       string    `hcl:"secret,label"`
	Capabilities []string  `hcl:"capabilities,optional"`
	Node         *string   `hcl:"node,optional"`
	Agent        *string   `hcl:"agent,optional"`
	Operator     *string   `hcl:"operator,optional"`
	DefRange     hcl.Range `hcl:",def_range"`
}

type rawScheduler struct {
	Algorithm      *string `hcl:"algorithm,optional"`
	PreemptService *bool   `hcl:"preempt_service,optional"`
	PreemptBatch   *bool   `hcl:"preempt_batch,optional"`
	PreemptSystem  *bool   `hcl:"preempt_system,optional"`
}

type rawLocality struct {
	Name      string  `hcl:"name,label"`
	Bandwidth float64 `hcl:"bandwidth"`
}

type rawNodes struct {
	Name       string            `hcl:"name,label"`
	Datacenter string            `hcl:"datacenter"`
	Count      int               `hcl:"count"`
	NodePool   *string           `hcl:"node_pool,optional"`
	NodeClass  *string           `hcl:"node_class,optional"`
	CPU        int64             `hcl:"cpu"`
	Memory     int64             `hcl:"memory"`
	IOPS       *int64            `hcl:"iops,optional"`
	Cores      *int              `hcl:"cores,optional"`
	Meta       map[string]string `hcl:"meta,optional"`
	Drivers    []string          `hcl:"drivers,optional"`
	// AllocMetrics is the clients' telemetry publish_allocation_metrics
	// (NodeGroupSpec.AllocMetricsOff); true when unset, as on a Nomad dev
	// agent.
	AllocMetrics *bool `hcl:"publish_allocation_metrics,optional"`
}

type rawTrace struct {
	Name    string         `hcl:"name,label"`
	File    string         `hcl:"file"`
	Column  *string        `hcl:"column,optional"`
	Unit    *string        `hcl:"unit,optional"`
	Step    hcl.Expression `hcl:"step,optional"`
	History []string       `hcl:"history,optional"`
}

// Constraint and affinity targets are expressions, so that Nomad's
// "${node.class}" reads as it does in a job file.
type rawConstraint struct {
	Attribute hcl.Expression `hcl:"attribute,optional"`
	Operator  *string        `hcl:"operator,optional"`
	Value     hcl.Expression `hcl:"value,optional"`
}

type rawAffinity struct {
	Attribute hcl.Expression `hcl:"attribute"`
	Operator  *string        `hcl:"operator,optional"`
	Value     hcl.Expression `hcl:"value"`
	Weight    *int           `hcl:"weight,optional"`
}

type rawUpdate struct {
	MaxParallel      *int           `hcl:"max_parallel,optional"`
	MinHealthyTime   hcl.Expression `hcl:"min_healthy_time,optional"`
	HealthyDeadline  hcl.Expression `hcl:"healthy_deadline,optional"`
	ProgressDeadline hcl.Expression `hcl:"progress_deadline,optional"`
}

type rawMigrate struct {
	MaxParallel     *int           `hcl:"max_parallel,optional"`
	MinHealthyTime  hcl.Expression `hcl:"min_healthy_time,optional"`
	HealthyDeadline hcl.Expression `hcl:"healthy_deadline,optional"`
}

type rawLoadOne struct {
	Trace  *string        `hcl:"trace,optional"`
	Scale  *float64       `hcl:"scale,optional"`
	Offset hcl.Expression `hcl:"offset,optional"`
}

// rawLoadIOPS is the iops binding, which also says how the IOPS split into
// disk reads and writes.
type rawLoadIOPS struct {
	Trace     *string        `hcl:"trace,optional"`
	Scale     *float64       `hcl:"scale,optional"`
	Offset    hcl.Expression `hcl:"offset,optional"`
	ReadShare *float64       `hcl:"read_share,optional"`
}

type rawLoad struct {
	Jitter hcl.Expression `hcl:"jitter,optional"`
	CPU    *rawLoadOne    `hcl:"cpu,block"`
	Memory *rawLoadOne    `hcl:"memory,block"`
	IOPS   *rawLoadIOPS   `hcl:"iops,block"`
}

type rawGroup struct {
	Name        string            `hcl:"name,label"`
	Count       *int              `hcl:"count,optional"`
	CPU         int               `hcl:"cpu"`
	Memory      int               `hcl:"memory"`
	IOPS        *int              `hcl:"iops,optional"`
	Replacement *string           `hcl:"replacement,optional"`
	RunFor      hcl.Expression    `hcl:"run_for,optional"`
	Meta        map[string]string `hcl:"meta,optional"`
	Constraints []rawConstraint   `hcl:"constraint,block"`
	Affinities  []rawAffinity     `hcl:"affinity,block"`
	Migrate     *rawMigrate       `hcl:"migrate,block"`
	Update      *rawUpdate        `hcl:"update,block"`
	Load        *rawLoad          `hcl:"load,block"`
}

type rawJob struct {
	Name        string          `hcl:"name,label"`
	Type        *string         `hcl:"type,optional"`
	Priority    *int            `hcl:"priority,optional"`
	Datacenters []string        `hcl:"datacenters,optional"`
	NodePool    *string         `hcl:"node_pool,optional"`
	Constraints []rawConstraint `hcl:"constraint,block"`
	Affinities  []rawAffinity   `hcl:"affinity,block"`
	Update      *rawUpdate      `hcl:"update,block"`
	Groups      []rawGroup      `hcl:"group,block"`
}

type rawEvent struct {
	Name       string         `hcl:"name,label"`
	Kind       string         `hcl:"kind"`
	At         hcl.Expression `hcl:"at"`
	Duration   hcl.Expression `hcl:"duration,optional"`
	Deadline   hcl.Expression `hcl:"deadline,optional"`
	Factor     *float64       `hcl:"factor,optional"`
	Datacenter *string        `hcl:"datacenter,optional"`
	NodePool   *string        `hcl:"node_pool,optional"`
	NodeClass  *string        `hcl:"node_class,optional"`
	Node       *string        `hcl:"node,optional"`
	Job        *string        `hcl:"job,optional"`
	Group      *string        `hcl:"group,optional"`
	Count      *int           `hcl:"count,optional"`
	Nodes      *string        `hcl:"nodes,optional"`
	Target     *string        `hcl:"target,optional"`
	Announced  *bool          `hcl:"announced,optional"`
}

type rawFault struct {
	Latency          hcl.Expression `hcl:"latency,optional"`
	ErrorRate        *float64       `hcl:"error_rate,optional"`
	TimeoutRate      *float64       `hcl:"timeout_rate,optional"`
	StatsUnreachable []string       `hcl:"stats_unreachable,optional"`
	PathPrefix       *string        `hcl:"path_prefix,optional"`
	NodesDown        []string       `hcl:"nodes_down,optional"`
	Holds            []rawHold      `hcl:"hold,block"`
}

type rawHold struct {
	Method *string `hcl:"method,optional"`
	Path   string  `hcl:"path"`
	Apply  *bool   `hcl:"apply,optional"`
	Count  *int    `hcl:"count,optional"`
}

// duration evaluates an optional duration expression ("90s", "1h30m"),
// reporting a diagnostic at the expression's range when it is not one.
func duration(expr hcl.Expression, def time.Duration, diags *hcl.Diagnostics) time.Duration {
	if expr == nil {
		return def
	}
	v, d := expr.Value(nil)
	if d.HasErrors() {
		*diags = append(*diags, d...)
		return def
	}
	if v.IsNull() {
		return def
	}
	if v.Type() != cty.String {
		*diags = append(*diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid duration",
			Detail: "A duration is a string such as \"90s\" or \"1h30m\".", Subject: expr.Range().Ptr(),
		})
		return def
	}
	dur, err := time.ParseDuration(v.AsString())
	if err != nil || dur < 0 {
		*diags = append(*diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid duration",
			Detail: fmt.Sprintf("%q is not a non-negative duration such as \"90s\" or \"1h30m\".", v.AsString()), Subject: expr.Range().Ptr(),
		})
		return def
	}
	return dur
}

// DefaultReregister is the clients' heartbeat interval by default: the
// middle of Nomad's 10 to 20 s heartbeat TTL on a small cluster (a real
// dev agent's purged node came back 1.5 to 20 s after the purge: at the
// next heartbeat, so anywhere within one).
const DefaultReregister = 15 * time.Second

// reregister decodes the scenario's reregister: a duration, or "never"
// (-1).
func reregister(expr hcl.Expression, diags *hcl.Diagnostics) time.Duration {
	if expr != nil {
		if v, d := expr.Value(nil); !d.HasErrors() && !v.IsNull() && v.Type() == cty.String && v.AsString() == "never" {
			return -1
		}
	}
	return duration(expr, DefaultReregister, diags)
}

func str(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

// target turns "node.class" or "${node.class}" into Nomad's "${node.class}".
func target(s string) string {
	if s == "" || strings.HasPrefix(s, "${") {
		return s
	}
	for _, p := range []string{"node.", "meta.", "attr."} {
		if strings.HasPrefix(s, p) {
			return "${" + s + "}"
		}
	}
	return s
}

func (r rawScenario) translate() (*Scenario, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	sc := &Scenario{
		Name:       r.Name,
		Seed:       1,
		Start:      time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC),
		Duration:   duration(r.Duration, 0, &diags),
		Tick:       duration(r.Tick, 10*time.Second, &diags),
		Startup:    duration(r.Startup, 5*time.Second, &diags),
		NodeBoot:   duration(r.NodeBoot, 2*time.Minute, &diags),
		Reregister: reregister(r.Reregister, &diags),
		Traces:     map[string]TraceSpec{},
		Scheduler: api.SchedulerConfiguration{
			SchedulerAlgorithm: api.SchedulerAlgorithmBinpack,
			PreemptionConfig:   api.PreemptionConfig{SystemSchedulerEnabled: true},
		},
	}
	if r.Seed != nil {
		sc.Seed = uint64(*r.Seed)
	}
	sc.PublishAllocationMetrics = r.AllocMetrics == nil || *r.AllocMetrics
	if r.Start != nil {
		t, err := time.Parse(time.RFC3339, *r.Start)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid start", Detail: err.Error()})
		}
		sc.Start = t.UTC()
	}
	if r.ACL != nil {
		sc.Tokens = append([]string(nil), r.ACL.Tokens...)
		for _, t := range r.ACL.Policies {
			p := Policy{Capabilities: append([]string(nil), t.Capabilities...)}
			for _, v := range []struct {
				dst *string
				src *string
			}{{&p.Node, t.Node}, {&p.Agent, t.Agent}, {&p.Operator, t.Operator}} {
				if v.src != nil {
					*v.dst = *v.src
				}
			}
			var err error
			if _, dup := sc.Policies[t.Secret]; dup || slices.Contains(sc.Tokens, t.Secret) {
				err = errors.New("the token is set twice")
			} else if t.Secret == "" {
				err = errors.New("empty secret")
			} else {
				err = p.validate()
			}
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid ACL token", Detail: fmt.Sprintf("token %q: %v", t.Secret, err), Subject: t.DefRange.Ptr()})
				continue
			}
			if sc.Policies == nil {
				sc.Policies = map[string]Policy{}
			}
			sc.Policies[t.Secret] = p
		}
	}
	if s := r.Scheduler; s != nil {
		if s.Algorithm != nil {
			switch a := api.SchedulerAlgorithm(*s.Algorithm); a {
			case api.SchedulerAlgorithmBinpack, api.SchedulerAlgorithmSpread:
				sc.Scheduler.SchedulerAlgorithm = a
			default:
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid scheduler algorithm", Detail: fmt.Sprintf("%q: want binpack or spread", *s.Algorithm)})
			}
		}
		pc := &sc.Scheduler.PreemptionConfig
		if s.PreemptService != nil {
			pc.ServiceSchedulerEnabled = *s.PreemptService
		}
		if s.PreemptBatch != nil {
			pc.BatchSchedulerEnabled = *s.PreemptBatch
		}
		if s.PreemptSystem != nil {
			pc.SystemSchedulerEnabled = *s.PreemptSystem
		}
	}
	for _, l := range r.Localities {
		sc.Localities = append(sc.Localities, LocalitySpec{Name: l.Name, BandwidthMBps: l.Bandwidth})
	}
	for _, n := range r.Nodes {
		g := NodeGroupSpec{
			Name: n.Name, Datacenter: n.Datacenter, Count: n.Count,
			NodePool: str(n.NodePool, "default"), NodeClass: str(n.NodeClass, ""),
			CPU: n.CPU, MemoryMB: n.Memory, Meta: n.Meta, Drivers: n.Drivers,
		}
		if n.IOPS != nil {
			g.IOPS = *n.IOPS
		}
		if n.Cores != nil {
			g.Cores = *n.Cores
		}
		g.AllocMetricsOff = n.AllocMetrics != nil && !*n.AllocMetrics
		sc.NodeGroups = append(sc.NodeGroups, g)
	}
	for _, t := range r.Traces {
		sc.Traces[t.Name] = TraceSpec{
			Name: t.Name, File: t.File, Column: str(t.Column, ""), Unit: str(t.Unit, UnitAuto),
			Step: duration(t.Step, 5*time.Minute, &diags), History: t.History,
		}
	}
	for _, j := range r.Jobs {
		sc.Jobs = append(sc.Jobs, translateJob(j, &diags))
	}
	for _, e := range r.Events {
		ev := EventSpec{
			Name: e.Name, Kind: e.Kind,
			At:         duration(e.At, 0, &diags),
			Duration:   duration(e.Duration, 0, &diags),
			Deadline:   duration(e.Deadline, time.Hour, &diags),
			Datacenter: str(e.Datacenter, ""), NodePool: str(e.NodePool, ""),
			NodeClass: str(e.NodeClass, ""), Node: str(e.Node, ""),
			Job: str(e.Job, ""), Group: str(e.Group, ""), Nodes: str(e.Nodes, ""),
			Target: str(e.Target, ""), Announced: e.Announced != nil && *e.Announced,
		}
		if e.Factor != nil {
			ev.Factor = *e.Factor
		}
		if e.Count != nil {
			ev.Count = *e.Count
		}
		sc.Events = append(sc.Events, ev)
	}
	sort.SliceStable(sc.Events, func(i, k int) bool { return sc.Events[i].At < sc.Events[k].At })
	for _, m := range r.Migrations {
		ms := MigrationSpec{
			Name: m.Name, At: duration(m.At, 0, &diags), Every: duration(m.Every, 0, &diags),
			Deadline: duration(m.Deadline, time.Hour, &diags),
			Job:      str(m.Job, ""), Group: str(m.Group, ""), From: m.From, To: m.To,
			NodePool: str(m.NodePool, ""), NodeClass: str(m.NodeClass, ""), Node: str(m.Node, ""),
		}
		if m.Count != nil {
			ms.Count = *m.Count
		}
		sc.Migrations = append(sc.Migrations, ms)
	}
	sc.ObserveEvery = duration(r.ObserveEvery, 0, &diags)
	sc.SLO.LatencyFactor = DefaultSLOLatencyFactor
	if r.SLO != nil && r.SLO.LatencyFactor != nil {
		sc.SLO.LatencyFactor = *r.SLO.LatencyFactor
	}
	if f := r.Fault; f != nil {
		sc.Faults.Latency = Duration(duration(f.Latency, 0, &diags))
		if f.ErrorRate != nil {
			sc.Faults.ErrorRate = *f.ErrorRate
		}
		if f.TimeoutRate != nil {
			sc.Faults.TimeoutRate = *f.TimeoutRate
		}
		sc.Faults.StatsUnreachable = append([]string(nil), f.StatsUnreachable...)
		sc.Faults.PathPrefix = str(f.PathPrefix, "")
		sc.Faults.NodesDown = append([]string(nil), f.NodesDown...)
		for _, h := range f.Holds {
			hold := Hold{Method: str(h.Method, ""), Path: h.Path}
			if h.Apply != nil {
				hold.Apply = *h.Apply
			}
			if h.Count != nil {
				hold.Count = *h.Count
			}
			sc.Faults.Holds = append(sc.Faults.Holds, hold)
		}
	}
	return sc, diags
}

// targetExpr reads a constraint target: a literal string ("web",
// "node.class"), Nomad's interpolation "${node.class}", or a bare
// traversal node.class. Interpolations come back as Nomad spells them.
func targetExpr(expr hcl.Expression, diags *hcl.Diagnostics) string {
	if expr == nil {
		return ""
	}
	inner := expr
	if w, ok := expr.(*hclsyntax.TemplateWrapExpr); ok {
		inner = w.Wrapped
	}
	if tr, d := hcl.AbsTraversalForExpr(inner); !d.HasErrors() {
		parts := []string{tr.RootName()}
		for _, step := range tr[1:] {
			switch s := step.(type) {
			case hcl.TraverseAttr:
				parts = append(parts, s.Name)
			case hcl.TraverseIndex:
				if s.Key.Type() == cty.String {
					parts = append(parts, s.Key.AsString())
				}
			}
		}
		return "${" + strings.Join(parts, ".") + "}"
	}
	v, d := expr.Value(nil)
	if d.HasErrors() {
		*diags = append(*diags, d...)
		return ""
	}
	if v.IsNull() {
		return ""
	}
	if v.Type() == cty.Number {
		return v.AsBigFloat().Text('f', -1)
	}
	if v.Type() != cty.String {
		*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid constraint target",
			Detail: "A constraint target is a string such as \"${node.class}\" or \"web\".", Subject: expr.Range().Ptr()})
		return ""
	}
	return target(v.AsString())
}

func translateConstraints(rs []rawConstraint, diags *hcl.Diagnostics) []*api.Constraint {
	var out []*api.Constraint
	for _, c := range rs {
		out = append(out, &api.Constraint{LTarget: targetExpr(c.Attribute, diags), RTarget: targetExpr(c.Value, diags), Operand: str(c.Operator, "=")})
	}
	return out
}

func translateAffinities(rs []rawAffinity, diags *hcl.Diagnostics) []*api.Affinity {
	var out []*api.Affinity
	for _, a := range rs {
		w := int8(50)
		if a.Weight != nil {
			w = int8(*a.Weight)
		}
		out = append(out, &api.Affinity{LTarget: targetExpr(a.Attribute, diags), RTarget: targetExpr(a.Value, diags), Operand: str(a.Operator, "="), Weight: &w})
	}
	return out
}

func translateUpdate(u *rawUpdate, diags *hcl.Diagnostics) *api.UpdateStrategy {
	if u == nil {
		return nil
	}
	out := api.DefaultUpdateStrategy()
	if u.MaxParallel != nil {
		out.MaxParallel = u.MaxParallel
	}
	mh := duration(u.MinHealthyTime, *out.MinHealthyTime, diags)
	hd := duration(u.HealthyDeadline, *out.HealthyDeadline, diags)
	pd := duration(u.ProgressDeadline, *out.ProgressDeadline, diags)
	out.MinHealthyTime, out.HealthyDeadline, out.ProgressDeadline = &mh, &hd, &pd
	return out
}

func translateLoad(r *rawLoadOne, diags *hcl.Diagnostics) LoadSpec {
	if r == nil {
		return LoadSpec{}
	}
	l := LoadSpec{Trace: str(r.Trace, ""), Scale: 1, Offset: duration(r.Offset, 0, diags), Set: true}
	if r.Scale != nil {
		l.Scale = *r.Scale
	}
	return l
}

func translateJob(r rawJob, diags *hcl.Diagnostics) JobSpec {
	j := &api.Job{
		ID: new(r.Name), Name: new(r.Name),
		Type:        new(str(r.Type, api.JobTypeService)),
		Datacenters: r.Datacenters,
		Constraints: translateConstraints(r.Constraints, diags),
		Affinities:  translateAffinities(r.Affinities, diags),
		Update:      translateUpdate(r.Update, diags),
	}
	if len(j.Datacenters) == 0 {
		j.Datacenters = []string{"*"}
	}
	if r.Priority != nil {
		j.Priority = new(*r.Priority)
	}
	if r.NodePool != nil {
		j.NodePool = new(*r.NodePool)
	}
	spec := JobSpec{Job: j, Groups: map[string]GroupSimSpec{}}
	for _, g := range r.Groups {
		count := 1
		if g.Count != nil {
			count = *g.Count
		}
		res := &api.Resources{CPU: new(g.CPU), MemoryMB: new(g.Memory)}
		if g.IOPS != nil {
			res.IOPS = new(*g.IOPS)
		}
		tg := &api.TaskGroup{
			Name: new(g.Name), Count: new(count),
			Constraints: translateConstraints(g.Constraints, diags),
			Affinities:  translateAffinities(g.Affinities, diags),
			Update:      translateUpdate(g.Update, diags),
			Meta:        g.Meta,
			Tasks: []*api.Task{{
				Name: g.Name, Driver: "exec",
				Config:    map[string]any{"command": "/bin/sleep", "args": []string{"infinity"}},
				Resources: res,
			}},
		}
		if m := g.Migrate; m != nil {
			ms := api.DefaultMigrateStrategy()
			if m.MaxParallel != nil {
				ms.MaxParallel = m.MaxParallel
			}
			mh := duration(m.MinHealthyTime, *ms.MinHealthyTime, diags)
			hd := duration(m.HealthyDeadline, *ms.HealthyDeadline, diags)
			ms.MinHealthyTime, ms.HealthyDeadline = &mh, &hd
			tg.Migrate = ms
		}
		j.TaskGroups = append(j.TaskGroups, tg)
		gs := GroupSimSpec{Replacement: str(g.Replacement, ""), RunFor: duration(g.RunFor, 0, diags)}
		if g.Load != nil {
			gs.Jitter = duration(g.Load.Jitter, 0, diags)
			gs.CPU = translateLoad(g.Load.CPU, diags)
			gs.Memory = translateLoad(g.Load.Memory, diags)
			if io := g.Load.IOPS; io != nil {
				gs.IOPS = translateLoad(&rawLoadOne{Trace: io.Trace, Scale: io.Scale, Offset: io.Offset}, diags)
				gs.ReadShare = io.ReadShare
			}
		}
		spec.Groups[g.Name] = gs
	}
	return spec
}
