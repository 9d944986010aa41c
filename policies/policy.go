package policies

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/hashicorp/cronexpr"
	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies/hclfield"
)

// Policy tells foreshape how to shape the capacity of one locality. It is
// immutable once loaded: consumers must not modify it.
type Policy struct {
	// Name is the label of the shaping block, unique across all loaded files.
	Name string
	// DeclRange is the shaping block's header, for messages about the policy.
	DeclRange hcl.Range

	Locality  Locality
	Forecast  Forecast
	Headroom  Headroom
	Reserve   Reserve
	Migrate   Migrate
	Scales    []Scale    // in file order; names are unique within the policy
	Schedules []Schedule // in file order; names are unique within the policy

	// ForecastOnly makes the policy a dry run: its plans are computed,
	// recorded and shown, and foreshape makes no change to Nomad for it.
	ForecastOnly bool
}

// Locality selects the Nomad capacity a policy shapes. An empty field
// matches any value; at least one field is set.
type Locality struct {
	Datacenter string
	NodePool   string
	NodeClass  string
}

// Localities are the distinct localities pols name, in order: their own
// and those their drain schedules move demand from. They are what the
// agent collects series for.
func Localities(pols []*Policy) []Locality {
	seen := map[string]bool{}
	var out []Locality
	add := func(l Locality) {
		if !seen[l.String()] {
			seen[l.String()] = true
			out = append(out, l)
		}
	}
	for _, p := range pols {
		add(p.Locality)
		for _, s := range p.Schedules {
			if s.Action == ActionDrain {
				for _, l := range s.Localities {
					add(l)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Matches reports whether a node in datacenter dc, node pool pool and node
// class class belongs to l.
func (l Locality) Matches(dc, pool, class string) bool {
	return match(l.Datacenter, dc) && match(l.NodePool, pool) && match(l.NodeClass, class)
}

func match(want, got string) bool { return want == "" || want == "*" || want == got }

// String prints l in the path form ParseLocality reads:
// "DATACENTER/NODE_POOL/NODE_CLASS", with "*" for any and trailing wildcards
// dropped: "dc1/web", "*/batch", "dc1".
func (l Locality) String() string {
	parts := []string{star(l.Datacenter), star(l.NodePool), star(l.NodeClass)}
	for len(parts) > 1 && parts[len(parts)-1] == "*" {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, "/")
}

func star(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// ParseLocality reads the path form of a locality:
// "DATACENTER[/NODE_POOL[/NODE_CLASS]]", where "*" (or an omitted trailing
// part) matches any value. "*" alone is refused: a locality selects
// something.
func ParseLocality(s string) (Locality, error) {
	if strings.TrimSpace(s) != s || s == "" {
		return Locality{}, fmt.Errorf("locality %q must be DATACENTER[/NODE_POOL[/NODE_CLASS]] without spaces", s)
	}
	parts := strings.Split(s, "/")
	if len(parts) > 3 {
		return Locality{}, fmt.Errorf("locality %q has more than three parts (DATACENTER/NODE_POOL/NODE_CLASS)", s)
	}
	for _, p := range parts {
		if p == "" {
			return Locality{}, fmt.Errorf("locality %q has an empty part; use \"*\" for any", s)
		}
		if hasSpace(p) {
			return Locality{}, fmt.Errorf("locality %q contains whitespace", s)
		}
	}
	var l Locality
	fields := []*string{&l.Datacenter, &l.NodePool, &l.NodeClass}
	for i, p := range parts {
		if p != "*" {
			*fields[i] = p
		}
	}
	if l == (Locality{}) {
		return Locality{}, fmt.Errorf("locality %q matches everything; name at least a datacenter, node pool or node class", s)
	}
	if err := l.checkScope(); err != nil {
		return Locality{}, err
	}
	return l, nil
}

// hasSpace reports whether s holds whitespace of any kind: a carriage
// return or a no-break space pasted into a name is as much no Nomad
// node's as a space.
func hasSpace(s string) bool { return strings.IndexFunc(s, unicode.IsSpace) >= 0 }

// checkScope refuses a locality whose path begins with the scope of the
// series store's per-node or per-allocation-group series ("node/<node ID>",
// "group/<namespace>/<job>/<group>"): a datacenter named "node" or "group"
// with a node pool or class. Its series would share their name space, be
// kept as briefly as one node's, and be listed as a node's. The datacenter
// alone ("node") or the pool or class in every datacenter ("*/web") is
// unambiguous.
func (l Locality) checkScope() error {
	path := l.String()
	for _, p := range state.DefaultProfiles() {
		if !strings.HasPrefix(path, p.Prefix) {
			continue
		}
		return fmt.Errorf("locality %q begins with %q, the scope of foreshape's series of single nodes and allocation groups "+
			"(kept %s, not a locality's %s); a datacenter named %q can be shaped whole (%q) or by node pool or class in every datacenter (%q), not by both",
			path, p.Prefix, hclfield.FormatDuration(retention(p.Tiers)), hclfield.FormatDuration(retention(state.DefaultTiers())),
			l.Datacenter, l.Datacenter, Locality{NodePool: l.NodePool, NodeClass: l.NodeClass}.String())
	}
	return nil
}

// retention is how far back the longest of tiers reaches.
func retention(tiers []state.Tier) time.Duration {
	var keep time.Duration
	for _, t := range tiers {
		keep = max(keep, t.Retention())
	}
	return keep
}

// Forecast says how demand is forecast for the policy's locality.
type Forecast struct {
	// Model is one of Models; "auto" lets the engine select per series by
	// backtest. Default "auto".
	Model string
	// Horizon is how far ahead forecasts reach. Default 1h.
	Horizon time.Duration
	// Step is the forecast grid and the sample aggregation step. Horizon,
	// History and every season are whole multiples of it, and it is a
	// whole multiple of a step the series store keeps (1m, 5m or 1h).
	// Default 1m.
	Step time.Duration
	// History is how much past demand models are fitted on. Default 14d,
	// two weeks so a weekly season is seen twice, or less when the series
	// store keeps less at Step (StoreReach: 1d at a step of 1m), cut to a
	// whole number of steps; a longer history than the store keeps is
	// refused.
	History time.Duration
	// Seasonality lists the seasonal periods to model, longest last.
	// Empty with AutoSeasonality set means the engine detects them.
	Seasonality []time.Duration
	// AutoSeasonality is true when seasonality = "auto" (the default).
	AutoSeasonality bool
	// Quantile is the planning quantile in (0,1): headroom is kept at this
	// quantile of the forecast. Default 0.9.
	Quantile float64
	// Queries are further metrics this policy forecasts, read from
	// Prometheus: metric name → PromQL template over {{.Matchers}}, the
	// locality's label matchers. "iops" here replaces the agent's IOPS query
	// for this locality.
	Queries map[string]string
	// QueriesRange is where queries is set, for messages about them.
	QueriesRange hcl.Range
}

// Steps returns the number of forecast points over the horizon.
func (f Forecast) Steps() int {
	if f.Step <= 0 {
		return 0
	}
	return int(f.Horizon / f.Step)
}

// Headroom is the percent of each resource kept free at the planning
// quantile, in [0,100). Defaults: 20% CPU, 20% memory. IOPS has none:
// Nomad reports no IOPS capacity to keep a share of, so IOPS is forecast
// and shown but draws no headroom line (headroom.iops is refused).
type Headroom struct {
	CPU    float64
	Memory float64
}

// Reserve says whether and how capacity is held ahead of migrations with
// low-priority placeholder jobs. Disabled by default.
type Reserve struct {
	Enabled bool
	// Priority is the Nomad job priority of placeholder jobs, 1–100. It
	// should sit at least 10 below the workloads' so Nomad can preempt
	// across the gap. Default 10.
	Priority int
	// LeadTime is how long before a move's planned start its reservation
	// is placed, and, reservations or not, how much earlier than the
	// target's own lead a scale action comes. Default 15m.
	LeadTime time.Duration
	// TTL bounds a reservation's life from its placement: it is released
	// then, even while its move runs; at least LeadTime. Default 1h.
	TTL time.Duration
	// MaxCPU (MHz) and MaxMemory (MB) cap one policy's total reservations
	// in its locality. Required when Enabled.
	MaxCPU    int
	MaxMemory int
}

// Scale is a dynamic scaling hook, triggered early when the locality
// lacks capacity: a forecast hotspot no move relieves, a move into it
// that its room cannot take, or a reservation that does not fit.
type Scale struct {
	Name string
	// Min and Max bound the target's count; 0 ≤ Min ≤ Max, Max ≥ 1.
	Min, Max int
	// Cooldown is the quiet time after an action, from when it took effect
	// (the target accepted the count, after any retry). Default 5m.
	Cooldown time.Duration
	Target   Target
	// DeclRange is the scale block's header.
	DeclRange hcl.Range
}

// Target is a scale block's target plugin and its validated settings.
type Target struct {
	// Plugin is the registered plugin name ("nomad-job", "webhook", "exec").
	Plugin string
	// Config is the value the plugin's TargetSpec.Decode returned, such as
	// *nomadjob.Config; the plugin's runtime type-asserts it.
	Config any
}

// Strategy is how a migration moves an allocation.
type Strategy string

// The migration strategies.
const (
	// StrategyReschedule stops the allocation so Nomad reschedules it, with
	// the destination steered by released reservations.
	StrategyReschedule Strategy = "reschedule"
	// StrategyDrain drains whole nodes, honouring each job's migrate block.
	StrategyDrain Strategy = "drain"
	// StrategyAffinity steers the replacement with a job affinity update.
	StrategyAffinity Strategy = "affinity"
)

// Strategies lists the valid strategies.
var Strategies = []string{string(StrategyReschedule), string(StrategyDrain), string(StrategyAffinity)}

// Migrate governs the migration queue for the policy's locality.
type Migrate struct {
	// MaxParallel is the per-locality cap on concurrent migrations, kept as
	// a safety floor whatever the forecast says. Default 2.
	MaxParallel int
	// Strategy defaults to StrategyReschedule.
	Strategy Strategy
	// Priority weighs the queue's ordering.
	Priority PriorityWeights
	// LeadTime is how long before a drain schedule's window its migration
	// requests are created. Default: Reserve.LeadTime.
	LeadTime time.Duration
	// Rebalance lets the planner create requests that move the smallest set
	// of allocations out of this locality when its forecast crosses the
	// headroom line and a target has room. Default false.
	Rebalance bool
	// Spread lets the planner create requests that move the fewest
	// allocations off the locality's nodes forecast over the headroom line
	// onto its nodes with room (often nodes a scale-out just added, which
	// Nomad never moves placed work onto), within the locality. A node's
	// demand is read as the locality's forecast demand shared among its
	// nodes in proportion to what their allocations hold. Default false.
	Spread bool
	// SpreadByUse makes spreading read a node's demand also as the sum of
	// its allocations' own use, forecast per task group from allocation
	// stats (which the agent then reads: one request per allocation and
	// cycle where no client agent reports them), besides what they hold:
	// a node is as hot as the hotter reading says, and a move must suit
	// both. Needs Spread. Default false.
	SpreadByUse bool
	// Targets are the localities work may move to from this one (drain
	// schedules, rebalancing). Empty means every other policy's locality
	// that shares no node with the locality the work leaves (the loader
	// refuses a listed one that shares nodes with this policy's) and
	// whose nodes the job's constraints allow.
	Targets []Locality
}

// PriorityWeights are the non-negative weights of the migration queue's
// score; at least one is positive. Defaults: RelieveHotspot 2, Critical 3,
// Age 1.
type PriorityWeights struct {
	// RelieveHotspot weighs moves that take load off a forecast hotspot.
	RelieveHotspot float64
	// Critical weighs requests for critical (high-priority) workloads.
	Critical float64
	// Age weighs how long a request has waited.
	Age float64
}

// Action is what a schedule announces.
type Action string

// The schedule actions.
const (
	// ActionDrain: the localities lose their capacity for the window
	// (maintenance); work must be moved out before it starts.
	ActionDrain Action = "drain"
	// ActionPeak: the localities see a known peak for the window; the
	// forecaster plans at the peak rather than learning it late.
	ActionPeak Action = "peak"
)

// Actions lists the valid schedule actions.
var Actions = []string{string(ActionDrain), string(ActionPeak)}

// Schedule is a known future event the forecaster takes as given.
type Schedule struct {
	Name string
	// Cron is the source expression; Expr is it parsed. It is read in
	// Location: UTC when nil (no time_zone).
	Cron     string
	Expr     *cronexpr.Expression
	Location *time.Location
	// Duration is how long each occurrence lasts.
	Duration time.Duration
	Action   Action
	// Factor, for a peak, is the demand during each window as a multiple
	// of the demand before it (2 doubles it). Zero means it is learned from
	// the peak's past occurrences in the history. Once a window under way
	// has shown its level, the forecast follows that instead (see
	// docs/forecasting.md).
	Factor float64
	// Localities are the localities the event affects; when the block
	// names none, the policy's own locality.
	Localities []Locality
	// Nodes, for a drain, narrows it to the nodes of Localities whose name
	// matches this glob (path.Match syntax: "dc1-rack-a-*"). Empty means
	// every node.
	Nodes string
	// DeclRange is the schedule block's header.
	DeclRange hcl.Range
}

// Window is one occurrence of a schedule: [Start, End).
type Window struct {
	Start, End time.Time
}

// MaxWindows bounds how many occurrences Windows returns, so a frequent
// schedule over a long range cannot exhaust memory.
const MaxWindows = 10000

// cronMu serialises the cron expressions' Next: it writes into its
// expression (the days of the month it last worked out), and a schedule's
// windows are read by the forecast and by the act half at the same time.
var cronMu sync.Mutex

// Windows returns the occurrences of s that overlap [from, to), in order,
// including one already running at from, at most MaxWindows, their times
// in UTC. The cron is read in s's time zone, as Nomad reads a periodic
// job's in its time_zone (hashicorp/cronexpr): a start in the hour clocks
// skip in spring does not happen that day, one in the hour they repeat in
// autumn happens twice. It reads no clock, and is safe for concurrent use.
func (s *Schedule) Windows(from, to time.Time) []Window {
	if s.Expr == nil || s.Duration <= 0 || !from.Before(to) {
		return nil
	}
	cronMu.Lock()
	defer cronMu.Unlock()
	var out []Window
	// An occurrence that started up to Duration before from still runs.
	// cronexpr.Next is strictly after its argument, so step back one
	// nanosecond more.
	t := s.Expr.Next(from.Add(-s.Duration - time.Nanosecond).In(s.location()))
	for !t.IsZero() && t.Before(to) && len(out) < MaxWindows {
		w := Window{Start: t.UTC(), End: t.Add(s.Duration).UTC()}
		if w.End.After(from) {
			out = append(out, w)
		}
		t = s.Expr.Next(t)
	}
	return out
}

// Next is the first start of s strictly after t, in UTC; zero when the
// cron starts no window after t. Safe for concurrent use.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.Expr == nil {
		return time.Time{}
	}
	cronMu.Lock()
	defer cronMu.Unlock()
	return s.Expr.Next(t.In(s.location())).UTC()
}

// Fires reports whether s starts a window at t: its cron fires then, read
// in its time zone. Safe for concurrent use.
func (s *Schedule) Fires(t time.Time) bool {
	return !t.IsZero() && s.Next(t.Add(-time.Nanosecond)).Equal(t)
}

// location is the time zone s's cron is read in.
func (s *Schedule) location() *time.Location {
	if s.Location == nil {
		return time.UTC
	}
	return s.Location
}

// Models are the forecast model names a policy may choose. The forecast
// engine's registry must provide each of them.
var Models = []string{"auto", "naive", "seasonal-naive", "ets", "arima", "theta", "mstl"}

// Defaults for omitted settings. Each is documented on its field.
const (
	DefaultModel          = "auto"
	DefaultHorizon        = time.Hour
	DefaultStep           = time.Minute
	DefaultHistory        = 14 * 24 * time.Hour
	DefaultQuantile       = 0.9
	DefaultHeadroom       = 20.0
	DefaultReservePrio    = 10
	DefaultLeadTime       = 15 * time.Minute
	DefaultReserveTTL     = time.Hour
	DefaultCooldown       = 5 * time.Minute
	DefaultMaxParallel    = 2
	DefaultStrategy       = StrategyReschedule
	DefaultWeightHotspot  = 2.0
	DefaultWeightCritical = 3.0
	DefaultWeightAge      = 1.0
)

// defaultHistory is DefaultHistory, or what the series store keeps at
// step when that is less, cut to a whole number of steps: a step that
// divides neither (7m in the 1d kept at 1m, 25m in 14d) must not make the
// history the policy left out an error.
func defaultHistory(step time.Duration) time.Duration {
	h := DefaultHistory
	if reach, ok := StoreReach(step); ok {
		h = min(h, reach)
	}
	if step > 0 {
		h -= h % step
	}
	return h
}

// defaultPolicy returns a policy with every default filled in.
func defaultPolicy(name string) *Policy {
	return &Policy{
		Name: name,
		Forecast: Forecast{
			Model:           DefaultModel,
			Horizon:         DefaultHorizon,
			Step:            DefaultStep,
			History:         defaultHistory(DefaultStep),
			AutoSeasonality: true,
			Quantile:        DefaultQuantile,
		},
		Headroom: Headroom{CPU: DefaultHeadroom, Memory: DefaultHeadroom},
		Reserve: Reserve{
			Priority: DefaultReservePrio,
			LeadTime: DefaultLeadTime,
			TTL:      DefaultReserveTTL,
		},
		Migrate: Migrate{
			MaxParallel: DefaultMaxParallel,
			Strategy:    DefaultStrategy,
			Priority: PriorityWeights{
				RelieveHotspot: DefaultWeightHotspot,
				Critical:       DefaultWeightCritical,
				Age:            DefaultWeightAge,
			},
		},
	}
}
