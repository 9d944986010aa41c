package shape

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// Forecast is one metric's forecast of one locality, as the planner reads
// it. CPU and memory are percent of the locality's allocatable capacity.
type Forecast struct {
	Policy   string
	Locality string // path form, "dc2" or "dc1/*/web"
	Metric   string // "cpu", "memory"; other metrics are not planned on
	// Times[i] is the time of point i, ascending and evenly stepped;
	// Planning[i] is the policy's planning quantile there.
	Times    []time.Time
	Planning []float64
	// Demand, when set, is the planning quantile of the absolute use behind
	// the metric (MHz for cpu, MiB for memory), point for point. A hotspot
	// (a crossing no request relieves) is read on Demand over the capacity
	// of the locality's ready nodes now (and, as every check of room, on
	// those that take new work: see placeable): Planning repeats shares of
	// the capacity its history was measured against, so after a scale-out it
	// keeps the old shares and would scale again every cooldown, adding
	// nodes nothing moves onto. Checks of moves keep reading Planning: the
	// work that runs stays on the nodes it runs on (Nomad never moves it
	// onto new ones), and Planning is closer to their share.
	Demand []float64
	// DrainAdded, when set, is, point for point, the part of Planning that
	// the drains of all of other localities its policy declares add
	// inside their windows (predict adds the drained demand to the
	// declaring policy's forecast, as far as it fits under its line;
	// predict.Forecast.DrainAdded), and
	// DemandDrainAdded the same part of Demand. That work comes only as
	// the planner sends the window's moves here, and it counts each move
	// where it sends it (here first, while it fits): every reading of the
	// forecast takes these parts off, so that work sent elsewhere is not
	// read here and work sent here is read once. A part predict did not
	// add (the drained demand unknown) is not there to take off.
	DrainAdded       []float64
	DemandDrainAdded []float64
	Quantile         float64
	// Line is the value the planning quantile must stay under (100 minus
	// the headroom); HasLine is false for metrics without a capacity.
	Line    float64
	HasLine bool
	// Group, when set ("namespace/job/group"), makes this the forecast of
	// one allocation of that task group rather than of a locality:
	// Planning is its use in absolute units (MHz for cpu, MiB for memory)
	// and Locality, Line and Demand are unused. Spreading reads a node's
	// demand as the sum of its allocations' own forecasts (see spread).
	Group string
}

// GroupKey is the Group of a task group's forecast.
func GroupKey(namespace, job, group string) string { return namespace + "/" + job + "/" + group }

// Input is everything one planning pass sees.
type Input struct {
	// Now is the data time the plan is for.
	Now       time.Time
	Policies  []*policies.Policy
	Forecasts []Forecast
	Cluster   *Cluster
	// State is the replicated act state at one applied index.
	State state.ActView
	// Limits are the agent-wide caps.
	Limits Limits
	// ForecastOnly makes every decision a dry run (the agent's
	// forecast_only).
	ForecastOnly bool
	// Unplaceable says, by reservation ID, why no node of its locality
	// can take a held reservation's placeholder whatever its size, as
	// the coordinator read it from Nomad's evaluations of the
	// placeholder once PlaceholderLate (every node Nomad evaluated was
	// filtered out, by a task driver the nodes lack and not by the
	// placeholder's own constraints, which a node added passes, and none
	// was short of room; or every one not holding its room failed on its
	// node for good, which a node added would fail alike). The planner
	// scales for none of them (nodes added would not take them either),
	// its request's reason says why, and its chunks hold no room (see
	// holdUnplaced).
	Unplaceable map[string]string
	// Rescheduling says, by reservation ID, how Nomad places anew a held
	// reservation's placeholder whose allocations failed on one node
	// only, as the coordinator read it once PlaceholderLate: Nomad's
	// reschedule tries another node should one have room, or a scale
	// action asked for since brings one. The planner does not scale for
	// it meanwhile, and its request waits, its reason saying why.
	Rescheduling map[string]string
	// AtMax are the scale blocks (state.CooldownKey) whose target reports
	// a count at or over the block's max, with that count, as the
	// coordinator last read them: the planner passes them over for the
	// policy's next block, as it does a block cooling down.
	AtMax map[string]int
	// MaxAsked are the scale blocks (state.CooldownKey) whose target
	// cannot tell its count (webhook, exec) and whose latest action
	// asked the block's max and succeeded, its hold not ended (AskedMax),
	// with that action, as the coordinator found them: the planner passes
	// them over for the policy's next block, as it does AtMax, and that
	// block's scale reason says so.
	MaxAsked map[string]state.ScaleAction
	// Requeue names, by ID, requests the queue keeps though a reload
	// cancelled them before they started, in drain windows a later reload
	// put back before their end (the coordinator's readded): one in whose
	// name a node of its window was taken out stays for the window's
	// give-back, which reads its intents (the state forgets a request's
	// intents with it). Its origin key stays taken (the state takes one
	// request per key), so the planner queues its work again under a key
	// of its own (windowOriginKey).
	Requeue map[string]bool
}

// Limits are agent-wide caps on what runs at once.
type Limits struct {
	// MaxParallel caps the moves running across the cluster; 0 means only
	// the per-locality caps apply.
	MaxParallel int
}

// Plan is what one pass decides. The coordinator carries it out in the
// order of the fields.
type Plan struct {
	Now time.Time
	// Submit are new migration requests from drain schedules and
	// rebalancing.
	Submit []Submission
	// Cancel are queued requests whose reason to exist ended (a drain
	// window that closed before they could start).
	Cancel []Cancel
	// Release are reservations to give back.
	Release []Release
	// Rescore are the queued requests' new scores, states and reasons.
	Rescore []state.Rescore
	// Reserve are placeholders to place.
	Reserve []Reserve
	// Scale are scale actions to issue.
	Scale []Scale
	// Start are moves to start now, in score order.
	Start []Start
	// Decisions record every decision above and every wait, with reasons.
	Decisions []state.Decision
}

// Submission is a request the planner creates.
type Submission struct {
	Request state.MigrationRequest
	DryRun  bool
}

// Cancel ends a queued request.
type Cancel struct {
	Request string
	Reason  string
	DryRun  bool
}

// Release gives a reservation back.
type Release struct {
	Reservation string
	Request     string
	Reason      string
	DryRun      bool
}

// Reserve places a reservation for a request.
type Reserve struct {
	Request  string
	Policy   string
	Locality string
	Chunks   []state.Chunk
	// Exclude are nodes the placeholder must not use.
	Exclude []string
	// Priority is the placeholder job's priority (reserve.priority).
	Priority int
	// From is the move's planned start, Until when the reservation may be
	// released (its planned end plus the lead time), Expires its hard end
	// (placement plus reserve.ttl).
	From, Until, Expires time.Time
	Reason               string
	DryRun               bool
}

// Scale is a scale action through a policy's scale block.
type Scale struct {
	Policy, Scale, Plugin string
	Locality              string
	Direction             string // "up"
	// Amount is how many of the target's units to add: the shortfall over
	// the locality's mean node capacity, rounded up.
	Amount   int
	Min, Max int
	// NeededBy is when the capacity must be ready.
	NeededBy time.Time
	Request  string
	Reason   string
	DryRun   bool
}

// Start starts a request's move now.
type Start struct {
	Request string
	Reason  string
	DryRun  bool
}

// Decision kinds the planner records.
const (
	KindSubmit  = "submit"
	KindReserve = "reserve"
	KindRelease = "release"
	KindScale   = "scale"
	KindStart   = "start"
	KindWait    = "wait"
	KindCancel  = "cancel"
)

// Defaults the planner falls back on.
const (
	// DefaultBandwidthMBps is the transfer rate assumed for a move until
	// foreshape has measured moves between the two localities.
	DefaultBandwidthMBps = 100.0
	// DefaultMoveOverhead is the fixed part of a move's estimate (stop,
	// schedule, start).
	DefaultMoveOverhead = 30 * time.Second
	// DefaultScaleLead is a scale target's lead time (from the action to
	// the capacity being ready) until one has been observed.
	DefaultScaleLead = 5 * time.Minute
	// PlaceholderGrace is how long a placeholder may take to run before
	// the planner treats its reservation as one that does not fit.
	PlaceholderGrace = 2 * time.Minute
	// SpreadCordonLag is how long after a spread ends the planner still
	// reads the nodes it moved work off, which the coordinator held out of
	// scheduling while it ran, as taking new work: the coordinator gives
	// them back once it sees the spread end, in the pass it does or the
	// next, and a pass may plan on a view of the cluster read before.
	SpreadCordonLag = 5 * time.Minute
)

// EstimateKey names the learned duration of moves of a size between two
// datacenters: "dc1>dc2/12" (size class: bits of the memory size in MiB).
func EstimateKey(fromDC, toDC string, size state.Resources) string {
	return fmt.Sprintf("%s>%s/%d", fromDC, toDC, bits.Len64(uint64(max(size.MemoryMB, 0))))
}

// ScaleLeadKey names the observed lead time of a scale block.
func ScaleLeadKey(policy, scale string) string { return "scale:" + state.CooldownKey(policy, scale) }

// MoveEstimate is the expected duration of one allocation's move: the
// learned mean for its localities and size, or the default transfer of its
// memory at DefaultBandwidthMBps plus DefaultMoveOverhead.
func MoveEstimate(est map[string]state.Estimate, fromDC, toDC string, size state.Resources) time.Duration {
	if e, ok := est[EstimateKey(fromDC, toDC, size)]; ok && e.Samples > 0 && e.Mean > 0 {
		return e.Mean
	}
	transfer := time.Duration(float64(size.MemoryMB) / DefaultBandwidthMBps * float64(time.Second))
	return DefaultMoveOverhead + transfer.Round(time.Second)
}

// dcOf returns a locality path's datacenter part ("*" when any).
func dcOf(loc string) string {
	l, err := policies.ParseLocality(loc)
	if err != nil || l.Datacenter == "" {
		return "*"
	}
	return l.Datacenter
}

// RequestEstimate is a request's expected duration: its moves share their
// datacenter's bandwidth, so their estimates add up.
func RequestEstimate(est map[string]state.Estimate, r *state.MigrationRequest) time.Duration {
	from, to := dcOf(r.Source), dcOf(r.Target)
	if len(r.Moves) == 0 {
		return MoveEstimate(est, from, to, r.Moved)
	}
	var d time.Duration
	for _, m := range r.Moves {
		d += MoveEstimate(est, from, to, m.Size)
	}
	return d
}

// PlaceholderLate reports whether a reservation's placeholder has had
// PlaceholderGrace to run since Nomad accepted it: from then on, while
// Nomad has not placed all its allocations, the planner treats the
// reservation as one that does not fit (and scales for it, unless
// Input.Unplaceable says no node could take it).
func PlaceholderLate(res state.Reservation, now time.Time) bool {
	return res.State == state.ReservationHeld && now.Sub(res.Placed) >= PlaceholderGrace
}
