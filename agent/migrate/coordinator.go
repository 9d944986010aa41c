package migrate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
)

// Log keys.
const (
	logKeyRequest     = "request"
	logKeyReservation = "reservation"
	logKeyIntent      = "intent"
	logKeyError       = "error"
	logKeyPolicy      = "policy"
)

// Applier commits a command to the replicated state: the Raft leader, or a
// state.Local in a single process.
type Applier interface {
	Apply(ctx context.Context, cmd state.Command) (state.Result, error)
}

// Reader reads the replicated state; *state.FSM implements it. Besides
// the whole act view it reads single items as the view has them, without
// copying the rest.
type Reader interface {
	Act() state.ActView
	Intent(id string) (state.Intent, bool)
	ClusterID() string
	QueuePaused() bool
	Request(id string) (state.MigrationRequest, bool)
	ReservationFor(request string) (state.Reservation, bool)
	Estimate(key string) (state.Estimate, bool)
}

// Leader confirms, right before each side effect, that this node still
// leads in the term ctx belongs to (cluster.Leadership's VerifyLeader).
type Leader interface {
	VerifyLeader(ctx context.Context) error
}

// alwaysLeader leads forever: a single process without Raft.
type alwaysLeader struct{}

func (alwaysLeader) VerifyLeader(ctx context.Context) error { return ctx.Err() }

// Placeholder is how placeholder tasks run: the agent's reserve block.
type Placeholder struct {
	// Driver is the task driver ("docker", "raw_exec", "exec").
	Driver string
	// Config is the task's driver config.
	Config map[string]any
}

// TargetBuilder builds a policy scale block's runtime target.
type TargetBuilder func(pol *policies.Policy, sc *policies.Scale) (target.Target, error)

// Config is what a Coordinator works with.
type Config struct {
	// Nomad is the agent's shared client.
	Nomad *nomadapi.Client
	// Namespace is the namespace placeholders are registered in; empty
	// means the client's.
	Namespace string
	Apply     Applier
	State     Reader
	// Leader nil means this process always leads (no Raft).
	Leader Leader
	// Node names this agent in intents.
	Node        string
	Placeholder Placeholder
	// Targets builds scale targets; nil builds them with target.New and
	// TargetEnv.
	Targets   TargetBuilder
	TargetEnv target.Env
	// SyncScale makes scale actions run inside RunOnce instead of in the
	// background (the proof harness's virtual time needs it).
	SyncScale bool
	Limits    shape.Limits
	// MaxQueue bounds the unfinished requests; 0 means DefaultMaxQueue.
	MaxQueue int
	// KeepFinished is how long a finished request stays in the queue at
	// least (see forget); 0 means DefaultKeepFinished.
	KeepFinished time.Duration
	// ForecastOnly makes every plan a dry run.
	ForecastOnly bool
	// Clock, when set, gives the data time the follower settles moves at
	// after a pass has acted (a pass may take a while of data time on a
	// fast simulated clock); nil settles them at the pass's now.
	Clock   func(context.Context) (time.Time, error)
	Metrics *Metrics
	Logger  hclog.Logger
}

// DefaultMaxQueue is the default bound of the migration queue.
const DefaultMaxQueue = 1000

// MaxAttempts is how many times a move is tried before its request fails.
const MaxAttempts = 3

// Coordinator carries out plans. RunOnce, Follow and Begin serialise on
// one lock: one act at a time.
type Coordinator struct {
	cfg   Config
	log   hclog.Logger
	nomad *nomadapi.Client
	// triggers are the TriggeredBy of the follow-up evaluations of
	// unknown allocations read so far (see keptWhileDisconnected), by
	// evaluation ID: it never changes.
	triggers map[string]string

	mu   sync.Mutex
	view *viewCache
	// smu guards what background scale actions share: targets, leads.
	smu     sync.Mutex
	targets map[string]builtTarget
	// recent suppresses repeats of dry-run decisions and of coordinator
	// notes: key → data time recorded.
	recent map[string]time.Time
	// refused are the requests whose last placeholder Nomad refused: the
	// next is placed only after a backoff (placeBackoff), and the
	// request's reason says why it waits.
	refused map[string]refusal
	// unfitLogged are the localities and filter reasons of placeholders no
	// node can take that the agent's log has said so of (see
	// readUnplaceable): once while it lasts.
	unfitLogged map[string]bool
	// notRunningLogged are the reservations whose placeholder is placed
	// but whose task does not run that the agent's log has said so of
	// (see notRunning): once while it lasts.
	notRunningLogged map[string]bool
	// failedEvents are, by reservation, the last task events read of a
	// placeholder whose task fails on its nodes (taskFails), read again
	// when its decision is due.
	failedEvents map[string]string
	// atMax are the scale blocks (state.CooldownKey) whose target last
	// reported a count at or over the block's max, with that count: the
	// planner passes them over for the policy's next block (see
	// shape.Input.AtMax), until a read of the target finds it below
	// (readAtMax).
	atMax map[string]int
	// tellsCount are the scale blocks whose target's last status told its
	// count (nomad-job), with that target's plugin: readAtMax need not
	// read one for its last action asking its max, which only a target
	// that cannot tell is passed over for, while the block keeps that
	// plugin.
	tellsCount map[string]string
	// leads are scale actions whose capacity is not ready yet: action ID →
	// policy/scale and start.
	leads map[string]leadWatch
	// touched are the holds and give-backs again (againID) not to be:
	// the node's eligibility changed after Nomad registered it again
	// (asRegistered), so no pass within touchedFor of when that was found
	// reads it afresh again for them.
	touched map[string]time.Time
	// unreadScales are the scale calls a previous leader left open that
	// Begin left for the term's first pass to read back (settleUnread),
	// by intent ID: reading a target's count needs its policy.
	unreadScales map[string]bool
	// pols are the policies of the last pass, for the follower; planned
	// says a pass has run in this term, so pols are known (a term's
	// follower pass may come before its first pass, and a process that
	// leads again has a term-old pols: Begin clears planned).
	pols    []*policies.Policy
	planned bool
	// open are the drain windows of pols under way at a pass's now
	// (openWindows), read once a pass.
	open struct {
		read    bool
		at      time.Time
		pols    []*policies.Policy
		windows []openWindow
	}
	// dry is plannedDry of dryPols, built again only when pols change:
	// heldNodes and holdRequestHold ask it for request after request.
	dry     func(state.MigrationRequest) bool
	dryPols []*policies.Policy
	// joined are joinedNodes by window key at joinedAt (a pass's now), read
	// once a window and pass: each request of a window asks for the same.
	joined   map[string][]string
	joinedAt time.Time
	// offRead is calledOffWindows of the view last asked about.
	offRead calledOffRead
	// watchMargin is what each request of Watch's blocking query gets
	// beyond Nomad's wait and jitter (blocking.Margin; tests shorten it).
	watchMargin time.Duration
	// last is the last plan, for the API and tests.
	last shape.Plan
	// unclosed are the intents this leader opened, or may have (the
	// open's Apply failed: it may still commit), and could not close,
	// by ID: the close it knows is true (see leftOpen). umu guards it:
	// background scale actions add to it.
	umu      sync.Mutex
	unclosed map[string]leftOpen

	bg sync.WaitGroup
}

type leadWatch struct {
	pol, scale string
	at         time.Time
}

// New returns a coordinator.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Nomad == nil || cfg.Apply == nil || cfg.State == nil {
		return nil, errors.New("migrate: a coordinator needs a Nomad client, an applier and the state")
	}
	if cfg.Leader == nil {
		cfg.Leader = alwaysLeader{}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.Placeholder.Driver == "" {
		cfg.Placeholder = DefaultPlaceholder()
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger.Named("migrate"), nomad: cfg.Nomad, view: newViewCache(),
		targets: map[string]builtTarget{}, recent: map[string]time.Time{}, refused: map[string]refusal{}, unfitLogged: map[string]bool{}, notRunningLogged: map[string]bool{}, failedEvents: map[string]string{}, atMax: map[string]int{}, tellsCount: map[string]string{}, leads: map[string]leadWatch{}, touched: map[string]time.Time{}, unreadScales: map[string]bool{}, unclosed: map[string]leftOpen{}}
	return c, nil
}

// DefaultPlaceholder runs placeholders as the pause container.
func DefaultPlaceholder() Placeholder {
	return Placeholder{Driver: "docker", Config: map[string]any{"image": "registry.k8s.io/pause:3.10"}}
}

// Wait waits for scale actions running in the background.
func (c *Coordinator) Wait() { c.bg.Wait() }

// LastPlan returns the plan of the last pass.
func (c *Coordinator) LastPlan() shape.Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// apply commits a command, bounded in time.
func (c *Coordinator) apply(ctx context.Context, cmd state.Command) (state.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return c.cfg.Apply.Apply(ctx, cmd)
}

// errAnnounced is returned by do for an intent another leader (or an
// earlier attempt) opened already: its effect must not be made again.
var errAnnounced = errors.New("migrate: the intent was announced before; not repeating its effect")

// maxRedos bounds how many times one effect is announced again after
// reconciliations found it not done.
const maxRedos = 10

// redoID names the n-th announcement (n ≥ 2) of an effect whose earlier
// announcements ended without it: ID~n.
func redoID(id string, n int) string {
	if n <= 1 {
		return id
	}
	return id + "~" + strconv.Itoa(n)
}

// again reports whether an effect announced by a closed intent may be
// announced again under its next ID: a reconciliation read Nomad and
// found no sign of it, or the call failed and repeating it cannot double
// anything (setting an eligibility, removing a placeholder, setting a
// placeholder group's count).
func again(in state.Intent) bool {
	switch in.Outcome {
	case state.OutcomeNotDone:
		return true
	case state.OutcomeFailed:
		switch in.Kind {
		case state.IntentNodeEligibility, state.IntentDeregisterHold, state.IntentScaleHold:
			return true
		}
	}
	return false
}

// latestIntent returns the last announcement of the effect intent id
// names, following its redos; false if it was never announced (or is
// forgotten).
func (c *Coordinator) latestIntent(id string) (state.Intent, bool) {
	in, ok := c.cfg.State.Intent(id)
	for n := 2; ok && again(in) && n <= maxRedos; n++ {
		next, found := c.cfg.State.Intent(redoID(id, n))
		if !found {
			break
		}
		in = next
	}
	return in, ok
}

// announced reports whether the effect intent id names was announced and
// not found missing: it is done or may still be under way.
func (c *Coordinator) announced(id string) bool {
	in, ok := c.latestIntent(id)
	return ok && !again(in)
}

// do is the door: it opens the intent, confirms leadership, makes the call
// and closes the intent with its outcome. An intent ID opens once: when it
// is open or done already, do returns errAnnounced and makes no call; when
// it ended without its effect (see again), do announces the effect anew
// under the next redo ID, so a call a killed leader never made is made
// once, and a call that was made is never made twice. An intent it
// cannot close (see leaveOpen) the leader's next pass closes.
func (c *Coordinator) do(ctx context.Context, now time.Time, in state.Intent, call func(ctx context.Context) error) error {
	return c.doUnless(ctx, now, in, nil, call)
}

// errWithheld is returned by doUnless for a call its check withheld.
var errWithheld = errors.New("migrate: call withheld")

// doUnless is do with a last check, stop, made right before the call: on
// the state as of the intent at least (its open has been applied), after
// leadership is confirmed. When stop says why the call must not be made,
// it is not: the intent closes not done with that reason (so it may be
// announced again later, see again) and doUnless returns errWithheld. A
// nil stop is do.
func (c *Coordinator) doUnless(ctx context.Context, now time.Time, in state.Intent, stop func() string, call func(ctx context.Context) error) error {
	in.Opened, in.Leader = now, c.cfg.Node
	base := in.ID
	for n := 2; ; n++ {
		res, err := c.apply(ctx, state.OpenIntent{Intent: in})
		if err != nil {
			// It may commit all the same: no call was made.
			c.leaveOpen(in, state.OutcomeNotDone, "its open could not be confirmed: "+err.Error())
			return fmt.Errorf("migrate: open intent %s: %w", in.ID, err)
		}
		if res.Applied > 0 {
			c.umu.Lock()
			delete(c.unclosed, in.ID) // opened by this call: its own close is due
			c.umu.Unlock()
			break
		}
		prev, ok := c.cfg.State.Intent(in.ID)
		if !ok || !again(prev) || n > maxRedos {
			return errAnnounced
		}
		in.ID = redoID(base, n)
	}
	if err := c.cfg.Leader.VerifyLeader(ctx); err != nil {
		// A deposed leader writes nothing more; the next one reconciles.
		// A leader whose check failed (no quorum answered in time) may
		// lead on: its next pass closes the intent, the call not made.
		c.leaveOpen(in, state.OutcomeNotDone, "leadership not confirmed before the call, which was not made: "+err.Error())
		return fmt.Errorf("migrate: %s: %w", in.ID, err)
	}
	if stop != nil {
		if why := stop(); why != "" {
			if _, err := c.apply(ctx, state.CloseIntent{ID: in.ID, Outcome: state.OutcomeNotDone, At: now, Error: why}); err != nil {
				c.log.Warn("could not record a withheld call; the next pass (or leader) closes it", logKeyIntent, in.ID, logKeyError, err)
				c.leaveOpen(in, state.OutcomeNotDone, why)
			}
			return fmt.Errorf("%w: %s: %s", errWithheld, in.ID, why)
		}
	}
	callErr := call(ctx)
	out := state.CloseIntent{ID: in.ID, Outcome: state.OutcomeDone, At: now}
	if callErr != nil && unanswered(callErr) && readBack(in) && ctx.Err() == nil {
		// Nomad may have made the change and lost its answer (a 500 when
		// its leader changed as it committed, a timeout): read back, as a
		// new leader's reconciliation would. Recorded failed, a made
		// change was left dangling (a node taken out, never given back)
		// or made again (a placeholder released, reaped and registered
		// anew; a stop costing the move an attempt).
		if ok, err := c.happened(ctx, in); err == nil && ok {
			c.log.Warn("Nomad answered a call with an error, yet its effect is there: recorded as done", logKeyIntent, in.ID, logKeyError, callErr)
			out.Error = fmt.Sprintf("%s: %v", answerLostNote, callErr)
			callErr = nil
		}
	}
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.calls.WithLabelValues(string(in.Kind), outcomeLabel(callErr)).Inc()
	}
	if callErr != nil {
		out.Outcome, out.Error = state.OutcomeFailed, callErr.Error()
	}
	if _, err := c.apply(ctx, out); err != nil {
		c.log.Warn("could not record an intent's outcome; the next pass (or leader) records it", logKeyIntent, in.ID, logKeyError, err)
		c.leaveOpen(in, out.Outcome, out.Error)
	}
	if callErr != nil {
		return fmt.Errorf("migrate: %s: %w", in.ID, callErr)
	}
	return nil
}

// leftOpen is an intent this leader opened (or may have) and could not
// close, with the close it knows is true: not done when its call was
// not made (the open's Apply failed, the leadership check failed, a check
// withheld it), else the outcome its call had.
type leftOpen struct {
	opened  time.Time
	outcome state.IntentOutcome
	err     string
}

// leftOpenNote begins the error of an intent closed by a later pass of
// the leader that opened it (closeLeftOpen).
const leftOpenNote = "closed by a later pass of the leader that opened it"

// leaveOpen remembers an intent doUnless could not close, for
// closeLeftOpen.
func (c *Coordinator) leaveOpen(in state.Intent, outcome state.IntentOutcome, why string) {
	c.umu.Lock()
	defer c.umu.Unlock()
	c.unclosed[in.ID] = leftOpen{opened: in.Opened, outcome: outcome, err: why}
}

// closeLeftOpen closes the intents this leader left open (leaveOpen),
// each with the outcome it knows, as a new term's Begin would close them
// after reading Nomad, so that within the term none reads as under way:
// left open, a scale block's call showed in flight and the block scaled
// no more, and an allocation's hand-over was taken as made, never made,
// for as long as the leader led (TestScaleLeftOpenWithinATermScalesAgain,
// TestHandOverLeftOpenWithinATermIsMade). A call that was not made closes
// not done, to be announced again under its next redo ID where it is
// still wanted; one that was made closes with its outcome and is never
// made again. Only an intent still open as this leader opened it is
// closed: one closed since (by Begin, which reconciles every open
// intent) or opened by another is left alone. One whose open is not in
// the state is looked for again at the next pass, for leftOpenFor: a
// timed-out Apply may still commit.
func (c *Coordinator) closeLeftOpen(ctx context.Context, now time.Time) {
	c.umu.Lock()
	left := maps.Clone(c.unclosed)
	c.umu.Unlock()
	for id, lo := range left {
		in, ok := c.cfg.State.Intent(id)
		switch {
		case !ok && now.Sub(lo.opened) <= leftOpenFor:
			continue
		case ok && in.Open() && in.Leader == c.cfg.Node && in.Opened.Equal(lo.opened):
			why := leftOpenNote
			if lo.err != "" {
				why += ": " + lo.err
			}
			if _, err := c.apply(ctx, state.CloseIntent{ID: id, Outcome: lo.outcome, At: now, Error: why}); err != nil {
				c.log.Warn("could not close an intent left open; tried again at the next pass", logKeyIntent, id, logKeyError, err)
				continue
			}
			c.log.Info("closed an intent left open in this term", logKeyIntent, id, "outcome", lo.outcome)
		}
		c.umu.Lock()
		if cur, ok := c.unclosed[id]; ok && cur == lo {
			delete(c.unclosed, id)
		}
		c.umu.Unlock()
	}
}

// leftOpenFor is how long closeLeftOpen looks for the open of an intent
// whose Apply failed: it commits within it, if ever, in this term.
const leftOpenFor = 10 * time.Minute

// answerLostNote begins the error of an intent closed done although
// Nomad answered its call with an error: the effect was read back.
const answerLostNote = "Nomad answered with an error, yet the effect is there"

// unanswered reports whether a call's error leaves open whether Nomad
// made the change: no answer (a timeout, a dropped connection) or a 5xx.
// A 4xx is Nomad's refusal: nothing was made.
func unanswered(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ue nomadapi.UnexpectedResponseError
	if errors.As(err, &ue) {
		return ue.StatusCode() >= 500
	}
	return true
}

// readBack reports whether an intent's effect can be read back from Nomad
// (happened) when its call failed: not a scale target's (happened counts
// it done unread), nor the give-back that keeps an operator's cordon or
// drain (keptOut: happened counts one of them done unread).
func readBack(in state.Intent) bool {
	switch {
	case in.Kind == state.IntentScaleTarget:
		return false
	case in.Kind == state.IntentNodeEligibility && keptOut(in.Detail):
		return false
	}
	return true
}

func outcomeLabel(err error) string {
	if err != nil {
		return "failed"
	}
	return "done"
}

// intentID names an intent: kind/object/request/attempt.
func intentID(kind state.IntentKind, object, request string, attempt int) string {
	id := string(kind) + "/" + object
	if request != "" {
		id += "/" + request
	}
	return id + "#" + strconv.Itoa(attempt)
}

// note records a coordinator decision once per key and ten minutes of
// data time.
func (c *Coordinator) note(ds *[]state.Decision, now time.Time, key string, d state.Decision) {
	if c.noted(now, key) {
		return
	}
	c.recent[key] = now
	d.Time = now
	*ds = append(*ds, d)
}

// noted reports whether a decision under key was noted within the last
// ten minutes (note), so that what would only build it can be skipped.
func (c *Coordinator) noted(now time.Time, key string) bool {
	t, ok := c.recent[key]
	return ok && now.Sub(t) < 10*time.Minute && now.Sub(t) >= 0
}

// placeholderNamespace is the namespace placeholders are registered in
// (placeholderJob): Config.Namespace, else Nomad's default.
func (c *Coordinator) placeholderNamespace() string {
	if c.cfg.Namespace != "" {
		return c.cfg.Namespace
	}
	return nomadapi.DefaultNamespace
}

// taskEvents reads an allocation's tasks' last two events
// (lastTaskEvents), or says none were read.
func (c *Coordinator) taskEvents(ctx context.Context, alloc string) string {
	full, _, err := c.nomad.Allocations().Info(alloc, c.qo(ctx))
	if err != nil {
		c.log.Debug("cannot read a placeholder allocation's task events", "alloc", alloc, logKeyError, err)
		return "none read"
	}
	if ev := lastTaskEvents(full, 2); ev != "" {
		return ev
	}
	return "none read"
}

// record appends decisions to the replicated log.
func (c *Coordinator) record(ctx context.Context, ds []state.Decision) {
	if len(ds) == 0 {
		return
	}
	for i := range ds {
		ds[i].Time = ds[i].Time.UTC()
		logDecision(c.log, ds[i])
	}
	if _, err := c.apply(ctx, state.AppendDecisions{Decisions: ds}); err != nil {
		c.log.Warn("could not record decisions", logKeyError, err)
	}
}

// logDecision logs a decision at info level with its reason, leaving out
// the fields it does not have: the agent's log says what the coordinator
// and the planner decided and why, as the decision log does.
func logDecision(log hclog.Logger, d state.Decision) {
	args := []any{"kind", d.Kind}
	for _, kv := range [][2]string{{"policy", d.Policy}, {"locality", d.Locality}, {logKeyRequest, d.Request}, {"reservation", d.Reservation}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	if d.DryRun {
		args = append(args, "dry_run", true)
	}
	log.Info("decision", append(args, "reason", d.Reason)...)
}

// wq is the WriteOptions of a call under ctx.
func (c *Coordinator) wq(ctx context.Context) *nomadapi.WriteOptions {
	q := &nomadapi.WriteOptions{}
	if c.cfg.Namespace != "" {
		q.Namespace = c.cfg.Namespace
	}
	return q.WithContext(ctx)
}

// qo is the QueryOptions of a read under ctx.
func (c *Coordinator) qo(ctx context.Context) *nomadapi.QueryOptions {
	q := &nomadapi.QueryOptions{}
	if c.cfg.Namespace != "" {
		q.Namespace = c.cfg.Namespace
	}
	return q.WithContext(ctx)
}
