package sim

import (
	"encoding/binary"
	"encoding/hex"
	"maps"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Table names a group of objects with its own modify index, for blocking
// queries.
type Table int

// Tables with their own modify index.
const (
	TableNodes Table = iota
	TableAllocs
	TableJobs
	TableEvals
	TableDeployments
	TableScheduler
	// TableJobSummaries is Nomad's job_summary table: it moves when an
	// allocation is placed or its client status changes, or a job's
	// queued placements change, not with the allocation's other updates
	// (its health, a desired transition). A job list answers with it and
	// the jobs table's (TestFidelityJobTableIndex).
	TableJobSummaries
	numTables
)

// Allocation client and desired statuses, as Nomad spells them.
const (
	allocPending  = api.AllocClientStatusPending
	allocRunning  = api.AllocClientStatusRunning
	allocComplete = api.AllocClientStatusComplete
	allocFailed   = api.AllocClientStatusFailed
	allocLost     = api.AllocClientStatusLost
	// allocUnknown is an allocation on a disconnected node (its group's
	// disconnect.lost_after keeps it from being lost at once).
	allocUnknown = api.AllocClientStatusUnknown

	desiredRun   = api.AllocDesiredStatusRun
	desiredStop  = api.AllocDesiredStatusStop
	desiredEvict = api.AllocDesiredStatusEvict
)

// Replacement modes of a migrated allocation.
const (
	// BreakBeforeMake starts the replacement only once the old allocation
	// has finished stopping (its state has been moved).
	BreakBeforeMake = "break_before_make"
	// MakeBeforeBreak starts the replacement at once and keeps the old
	// allocation running until both the transfer is done and the
	// replacement runs.
	MakeBeforeBreak = "make_before_break"
)

// node is one simulated Nomad client.
// maxNodeEvents is how many events Nomad keeps per node
// (structs.MaxRetainedNodeEvents); the oldest are dropped.
const maxNodeEvents = 10

// Node event subsystems and messages, as Nomad's servers set them
// (nomad/node_endpoint.go, nomad/drainer/drainer.go).
const (
	nodeEventSubsystemCluster = "Cluster"
	nodeEventSubsystemDrain   = "Drain"

	nodeEventRegistered    = "Node registered"
	nodeEventIneligible    = "Node marked as ineligible for scheduling"
	nodeEventEligible      = "Node marked as eligible for scheduling"
	nodeEventDrainSet      = "Node drain strategy set"
	nodeEventDrainUpdated  = "Node drain strategy updated"
	nodeEventDrainDisabled = "Node drain disabled"
	nodeEventDrainComplete = "Node drain complete"

	nodeEventHeartbeatMissed = "Node heartbeat missed"
	nodeEventReregistered    = "Node reregistered by heartbeat"
)

// addEvent appends a node event at index idx, dropping the oldest past
// maxNodeEvents, as Nomad's state store does.
func (n *node) addEvent(now time.Time, subsystem, msg string, idx uint64) {
	n.events = append(n.events, &api.NodeEvent{Message: msg, Subsystem: subsystem, Timestamp: now, CreateIndex: idx})
	if over := len(n.events) - maxNodeEvents; over > 0 {
		n.events = append(n.events[:0:0], n.events[over:]...)
	}
}

type node struct {
	idx        int
	id, name   string
	dc, pool   string
	class      string
	meta       map[string]string
	drivers    []string // the task drivers it reports healthy
	cpu, mem   int64    // capacity: MHz, MB
	iops       int64
	cores      int
	noAllocMet bool   // its client does not publish allocation metrics (NodeGroupSpec.AllocMetricsOff)
	status     string // ready, down, disconnected, initializing
	eligible   bool
	drain      *api.DrainStrategy
	// drainHeld marks a running drain that only sysbatch allocations held
	// back at its last check: Nomad's drainer checks it again at its
	// deadline or when its strategy changes, not when they end (it
	// watches no sysbatch job: TestFidelitySysbatchDrain).
	drainHeld  bool
	lastDrain  *api.DrainMetadata
	events     []*api.NodeEvent // Nomad's node events, oldest first, at most maxNodeEvents
	statusAt   time.Time
	bootAt     time.Time // initializing → ready (nodes added at run time)
	faultDown  bool      // taken down by Faults.NodesDown
	missedAt   time.Time // its last missed heartbeat, while disconnected
	purged     bool      // deleted from the node table (purge); its client reports nothing more
	backAt     time.Time // when a purged node's client, still running, registers it again (zero: never)
	heard      bool      // the eligibility the client heard at its last heartbeat (Nomad's answer carries it)
	lost       []*alloc  // allocations the servers took as lost (the node went down or was purged): its client, heard again, reports them complete
	nextBeat   time.Time // the client's next heartbeat (zero: the scenario's clients do not heartbeat)
	createIdx  uint64
	modifyIdx  uint64
	resCPU     int64 // sum of requests of allocations holding capacity
	resMem     int64
	resIOPS    int64
	allocs     []*alloc // allocations placed here and not yet client-terminal
	history    []*alloc // every allocation ever placed here
	demCPU     float64  // demand this tick
	demMem     float64
	demIOPS    float64
	demReads   float64 // the part of demIOPS that is disk reads
	throttle   float64 // fraction of CPU demand not served this tick
	ioReads    float64 // cumulative disk reads served
	ioWrites   float64 // cumulative disk writes served
	surge      float64 // demand factor applied this tick
	services   int     // running service allocations with demand this tick
	minuteAcc  minuteAcc
	hostUptime time.Duration
}

// holds reports whether an allocation's resources count against node
// capacity for scheduling: Nomad frees capacity as soon as an allocation is
// desired to stop.
func (a *alloc) holds() bool {
	return a.desired == desiredRun && !a.clientTerminal()
}

// cpuOn is the CPU, in MHz, the group holds on n: its MHz plus its reserved
// cores at n's MHz per core.
func (g *group) cpuOn(n *node) int64 {
	if g.cores == 0 {
		return g.cpu
	}
	return g.cpu + g.cores*n.cpu/int64(n.cores)
}

// job is one registered job.
type job struct {
	id         string
	spec       *api.Job // canonicalised, with server fields set on output
	specSum    string   // fingerprint of the submitted spec
	typ        string
	priority   int
	groups     []*group
	version    uint64
	createIdx  uint64
	modifyIdx  uint64
	jobModIdx  uint64
	submitTime time.Time
	stopped    bool
	purged     bool
	allocs     []*alloc // every allocation of the job, oldest first
	deploys    []*deployment
	// stable is the spec of the latest version whose deployment
	// succeeded (stableVersion), what auto_revert rolls back to.
	stable        *api.Job
	stableVersion uint64
	scaleEvts     map[string][]api.ScalingEvent
	apiCache      *api.Job // last jobAPI answer, valid while modifyIdx is apiCacheIdx
	apiCacheIdx   uint64
}

// group is one task group of a job, with what the scheduler and the load
// model need.
type group struct {
	name     string
	count    int
	cpu, mem int64 // MHz, MB
	cores    int64 // reserved cores, worth the node's MHz per core each
	iops     int64
	tasks    []string
	drivers  []string // each task's driver, in tasks' order
	// kills are each task's kill_timeout as its client takes it (at
	// most max_kill_timeout), in tasks' order, and kill the longest: a
	// stop kills the allocation's tasks that long after its client hears
	// of it (tasks.go).
	kills []time.Duration
	kill  time.Duration
	// restart is the first task's restart policy (the group's unless it
	// sets its own), canonical: a failure's restarts (tasks.go).
	restart     api.RestartPolicy
	jobCons     int // how many of constraints, first, are the job's
	constraints []*api.Constraint
	affinities  []*api.Affinity
	spreads     []spreadBlock // the job's, then the group's
	migrate     api.MigrateStrategy
	resched     api.ReschedulePolicy // canonical: Nomad's defaults for the job type
	update      *api.UpdateStrategy
	load        groupLoad
	replacement string
	runFor      time.Duration
	specHash    string // resources and placement, to detect destructive updates
	// lostAfter is disconnect.lost_after: how long an allocation of the
	// group on a node that stopped heartbeating stays unknown, before it
	// is lost (zero: lost at once, and its node goes down).
	lostAfter time.Duration
	// keepReplacement is disconnect.reconcile = "keep_replacement": when
	// the node comes back, the replacement stays and the original stops.
	// Any other value keeps the original, as best_score did on the real
	// Nomad (its replacement's score was not better).
	keepReplacement bool
	// noReplace is disconnect.replace = false: no replacement while the
	// allocation is unknown.
	noReplace bool
	// stopAfter is disconnect.stop_on_client_after, and stopWait how long
	// after an allocation of the group is lost Nomad replaces it: that
	// plus the longest kill timeout of its tasks, 5 s at least (zero: at
	// once).
	stopAfter, stopWait time.Duration
	// idle marks a group that only holds capacity (every task sleeps,
	// runs a pause image or runs on mock_driver, with no load binding):
	// it demands nothing.
	idle bool
	// checks marks a group whose services (the group's or its tasks')
	// have checks. Those of an idle group never pass: nothing listens on
	// the port a check (tcp, http) reaches. Elsewhere the simulator's
	// checks pass at once (a group with a load binding is a modelled
	// workload, whatever its tasks run).
	checks bool
	// mock is the group's one task when it runs on Nomad's mock_driver
	// (mock.go): when it starts, fails, exits and restarts (nil: its
	// tasks run from the scenario's startup on until stopped).
	mock *mockTask
}

// checksHold reports whether health_check (an update or migrate block's:
// "checks", the default, "task_states" or "manual") keeps an allocation of
// g from turning healthy: its checks count and never pass.
func (g *group) checksHold(healthCheck *string) bool {
	return g.checks && g.idle && (healthCheck == nil || *healthCheck == "" || *healthCheck == "checks")
}

// spreadBlock is one spread block of a group or its job.
type spreadBlock struct {
	attr    string
	weight  int
	targets []api.SpreadTarget
	job     bool // a job-level block
}

// reschedEvent is one earlier attempt in an allocation's reschedule
// tracker: when it was replaced, and the allocation and its node.
type reschedEvent struct {
	at        time.Time
	prevAlloc string
	prevNode  *node
	delay     time.Duration // Nomad's delay for that attempt (the simulator does not wait it)
}

// alloc is one allocation.
type alloc struct {
	id, name     string
	index        int // the [n] of the name
	job          *job
	grp          *group
	jobVersion   uint64
	specHash     string
	node         *node
	reqCPU       int64 // MHz it holds on its node (cores included)
	evalID       string
	desired      string
	desiredDesc  string
	client       string
	clientDesc   string
	failReason   string // why FailAlloc failed it: its task's Terminated event
	migrate      bool
	holding      bool   // its request counts in node.res*
	summed       string // the client status its job's summary counts it as
	next, prev   string
	preemptedBy  string
	preempted    []string
	resched      []reschedEvent // Nomad's reschedule tracker: the earlier failed attempts it replaces
	deployID     string
	healthy      *bool
	healthAt     time.Time
	created      time.Time
	modified     time.Time
	startAt      time.Time // pending → running at this time (zero: waiting)
	runningSince time.Time
	failedAt     time.Time // when it failed on its client
	unknownAt    time.Time // when its node disconnected and it turned unknown
	// lostNow marks an allocation lost by the evaluation being reconciled:
	// only that evaluation links a replacement to it (Nomad's reconciler
	// drops stopped allocations before it links, and the loss stops it);
	// cleared when the reconciliation ends.
	lostNow bool
	// stopWaitUntil is when Nomad replaces the allocation, lost while
	// its group sets disconnect.stop_on_client_after (zero otherwise):
	// the evaluation that finds it lost places nothing for the group, and
	// the replacement names no previous allocation.
	stopWaitUntil time.Time
	// replaceDue marks an unknown allocation its reconciler replaces: its
	// reschedule delay has passed (set at the start of each reconciliation).
	replaceDue bool
	// followup is the evaluation Nomad's reconciler created to reschedule
	// a failed allocation once its delay has passed (FollowupEvalID).
	followup *eval
	// reschedule is DesiredTransition.Reschedule: the deployment watcher
	// lets an unhealthy allocation of an active deployment be rescheduled.
	reschedule bool
	stopAt     time.Time // client finishes stopping at this time (zero: not stopping or waiting for a migration)
	finishAt   time.Time // batch work completes at this time
	mig        *migration
	waitFor    *alloc // break-before-make: start only once this one stopped
	createIdx  uint64
	modifyIdx  uint64 // every change, the client's too
	// allocModIdx is the last change a server made (placement, desired
	// status or transition, follow-up, in-place update): Nomad's
	// AllocModifyIndex, which the client's updates leave alone.
	allocModIdx uint64
	phase       time.Duration // offset into the load traces
	cpu, mem    float64       // usage this tick: MHz, MB
	iops        float64
	served      float64 // CPU it got this tick, MHz (less than cpu when throttled)
	thrPeriods  float64 // cumulative throttled CFS periods
	thrNS       float64 // cumulative throttled time, ns
	// mock is the client's run of a mock_driver group's task (nil for
	// any other group).
	mock *mockRun
	// killAt is when its client was told to kill its tasks (a stop, a
	// migration, an eviction, or a stop it heard of once back): their
	// Killing event (tasks.go). Zero: never told.
	killAt time.Time
	// notes are the events its client adds to its tasks beside their run
	// (Reconnected, Alloc Unhealthy), shown among them by time; not a
	// mock_driver allocation's, which keeps its own (mockRun).
	notes []*api.TaskEvent
}

func (a *alloc) clientTerminal() bool {
	switch a.client {
	case allocComplete, allocFailed, allocLost:
		return true
	}
	return false
}

// terminal is Nomad's server-side terminal status: desired to stop or evict,
// or finished on the client.
func (a *alloc) terminal() bool {
	return a.desired != desiredRun || a.clientTerminal()
}

// eval is one evaluation.
type eval struct {
	id          string
	priority    int
	typ         string
	triggeredBy string
	jobID       string
	jobModIdx   uint64
	nodeID      string
	nodeModIdx  uint64
	deployID    string
	status      string
	statusDesc  string
	blockedEval string
	// blockedNode is, for a system or sysbatch job's evaluation, the
	// first node it could not place on: Nomad's system scheduler creates
	// the blocked evaluation for that node, and names it nowhere in this
	// one (BlockedEval stays empty).
	blockedNode string
	prevEval    string
	nextEval    string
	// waitUntil is when a follow-up evaluation (pending until then) runs.
	waitUntil time.Time
	failed    map[string]*api.AllocationMetric
	// filtered is, for a system or sysbatch group no node could take for
	// its constraints or drivers, the filtered nodes' metric, which the
	// evaluation names failed (allFiltered).
	filtered map[string]*api.AllocationMetric
	queued   map[string]int
	// conflict marks an evaluation whose plan Nomad's plan applier would
	// reject (a preemption that does not make room): it fails after its
	// attempts and leaves a blocked evaluation.
	conflict bool
	// stopWaits names the groups of the job this evaluation found an
	// allocation lost in that waits for disconnect.stop_on_client_after:
	// Nomad's reconciler places nothing for such a group in it.
	stopWaits map[string]bool
	createIdx uint64
	modifyIdx uint64
	created   time.Time
	modified  time.Time
}

// deployment tracks the rollout of one job version.
type deployment struct {
	id         string
	job        *job
	jobVersion uint64
	jobModIdx  uint64
	jobCreate  uint64
	status     string
	statusDesc string
	groups     map[string]*api.DeploymentState
	started    time.Time
	createIdx  uint64
	modifyIdx  uint64
	// succeeded is when the deployment completed successfully: the
	// evaluation that completes it still sees it running.
	succeeded time.Time
}

func (d *deployment) active() bool {
	switch d.status {
	case api.DeploymentStatusRunning, api.DeploymentStatusPaused,
		api.DeploymentStatusPending, api.DeploymentStatusBlocked, api.DeploymentStatusUnblocking:
		return true
	}
	return false
}

// locality is a network locality (a datacenter) whose bandwidth migrations
// share.
type locality struct {
	name      string
	bandwidth float64 // MB/s shared by concurrent migrations
	using     int     // transfers using it in the current segment
}

// newID returns a UUID-shaped identifier drawn from r.
func newID(r *rand.Rand) string {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], r.Uint64())
	binary.BigEndian.PutUint64(raw[8:], r.Uint64())
	var out [36]byte
	hex.Encode(out[0:8], raw[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], raw[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], raw[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], raw[8:10])
	out[23] = '-'
	hex.Encode(out[24:], raw[10:])
	return string(out[:])
}

// Job statuses, as Nomad spells them.
const (
	jobPending = "pending"
	jobRunning = "running"
	jobDead    = "dead"
)

// queuedShown is the evaluation's QueuedAllocations: none while it is
// blocked (Nomad blocks it again without them) or not yet run.
func (e *eval) queuedShown() map[string]int {
	if e.status == api.EvalStatusBlocked {
		return nil
	}
	return maps.Clone(e.queued)
}
