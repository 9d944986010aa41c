// Package target is the runtime interface of foreshape's scale targets:
// what the coordinator calls to add or remove capacity ahead of a forecast
// need, and the registry that builds a target from a policy's validated
// settings under the plugin's name ("nomad-job", "webhook", "exec").
//
// A target does one scale action when asked and reports what it did or
// why it could not; it holds no policy of its own (when, by how much, how
// often: that is the shaper's and the coordinator's) and keeps no state
// between calls that a new leader would need. Errors are *Error values of
// one of three kinds, so the coordinator can tell a refusal (the target
// answered no), a timeout (the outcome is unknown: read Status before
// trying again) and a failure (the action did not happen) apart.
//
// Settings are decoded and validated by each plugin's policies.TargetSpec
// when a policy loads; this package must never perform I/O while a target
// is built.
package target

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Direction is which way an action scales.
type Direction string

// The directions.
const (
	Up   Direction = "up"
	Down Direction = "down"
)

// Action is one scale action. Its ID is chosen by the leader and stays the
// same across retries of the action, so targets pass it on as an
// idempotency key (the Idempotency-Key header of a webhook, the meta of a
// Nomad scaling event, FORESHAPE_REQUEST_ID for a command).
type Action struct {
	// ID identifies the action (the scale intent's id). Required.
	ID string
	// Policy and Scale name the policy and its scale block.
	Policy string
	Scale  string
	// Locality is the locality the capacity is for, in path form ("dc2").
	Locality string
	// Direction and Amount say by how much the count changes: Amount > 0.
	Direction Direction
	Amount    int
	// Count is the count to reach, within the scale block's Min and Max:
	// the current count plus or minus Amount. Targets that set a count
	// (nomad-job) use it, so repeating an action does not scale twice.
	Count int
	// Min and Max are the scale block's bounds, for targets that pass
	// them on.
	Min, Max int
	// Reason says why, with numbers (`scale "asg" up by 2 for */batch
	// (needed by 12:20, target lead 5m0s): reservation does not fit: …`).
	Reason string
	// Time is when the leader decided the action (data time).
	Time time.Time
}

// ErrInvalidAction is wrapped by the Refused error a target returns for an
// action that fails Validate; the target performs no I/O for it.
var ErrInvalidAction = errors.New("invalid scale action")

// Validate checks the action's fields.
func (a Action) Validate() error {
	switch {
	case a.ID == "":
		return fmt.Errorf("%w: no id", ErrInvalidAction)
	case a.Direction != Up && a.Direction != Down:
		return fmt.Errorf("%w: direction %q is neither %q nor %q", ErrInvalidAction, a.Direction, Up, Down)
	case a.Amount <= 0:
		return fmt.Errorf("%w: amount %d is not positive", ErrInvalidAction, a.Amount)
	case a.Count < 0:
		return fmt.Errorf("%w: count %d is negative", ErrInvalidAction, a.Count)
	case a.Max > 0 && (a.Count < a.Min || a.Count > a.Max):
		return fmt.Errorf("%w: count %d is outside [%d, %d]", ErrInvalidAction, a.Count, a.Min, a.Max)
	}
	return nil
}

// Status is what a target can tell about the capacity it scales.
type Status struct {
	// Count is the current count, when CountKnown (nomad-job reads it from
	// Nomad; webhook and exec cannot).
	Count      int
	CountKnown bool
	// Ready is false while an earlier change is still taking effect (a
	// Nomad deployment is running); Reason says why.
	Ready  bool
	Reason string
}

// Result is what a successful Scale did.
type Result struct {
	// Count is the count the target reached or was asked to reach.
	Count int
	// Attempts counts the requests or runs made, retries included.
	Attempts int
	// Waited is how long the target waited before it could act (for an
	// active Nomad deployment to finish).
	Waited time.Duration
	// Notes record, in order, why the target waited or retried.
	Notes []string
}

// Target is a scale target's runtime.
type Target interface {
	// Status reports the target's count (when it can tell) and readiness.
	Status(ctx context.Context) (Status, error)
	// Scale performs a. It returns once the target accepted the action (a
	// nomad-job once Nomad registered the new count, not once the new
	// allocations run), or an *Error.
	Scale(ctx context.Context, a Action) (Result, error)
}

// Kind is the class of a scale error.
type Kind int

// The kinds of Error.
const (
	// Refused: the target answered and declined (Nomad refused the count,
	// the webhook answered 4xx, the command exited with ExitRefused, a
	// deployment stayed active past the wait). Trying again unchanged will
	// not help.
	Refused Kind = iota + 1
	// Timeout: no answer in time. The action may or may not have taken
	// effect; read Status before trying again.
	Timeout
	// Failed: the action did not happen (connection refused, 5xx after
	// the retries, the command failed).
	Failed
)

func (k Kind) String() string {
	switch k {
	case Refused:
		return "refused"
	case Timeout:
		return "timed out"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Sentinels for errors.Is on an *Error, one per Kind.
var (
	ErrRefused = errors.New("scale refused")
	ErrTimeout = errors.New("scale timed out")
	ErrFailed  = errors.New("scale failed")
)

// Error is a failed scale action or status read.
type Error struct {
	Plugin string // "nomad-job", "webhook", "exec"
	Kind   Kind
	// Reason says what happened, for the decision log.
	Reason string
	// Attempts counts the requests or runs made.
	Attempts int
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s target: %s: %s", e.Plugin, e.Kind, e.Reason)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of e's Kind.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrRefused:
		return e.Kind == Refused
	case ErrTimeout:
		return e.Kind == Timeout
	case ErrFailed:
		return e.Kind == Failed
	}
	return false
}

// KindOf returns the kind of err's *Error, or 0 when it has none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Env is what the agent lends a target when it builds one.
type Env struct {
	// Nomad is the agent's Nomad client (its address, region, namespace
	// and token), shared by every Nomad caller in the agent.
	Nomad *nomadapi.Client
	// HTTP is the client webhooks send with; nil means a fresh one.
	HTTP *http.Client
	// Logger is named by the caller ("target").
	Logger hclog.Logger
	// Sleep waits d or until ctx ends, for retry back-off; nil means a
	// timer. Tests make it instant.
	Sleep func(ctx context.Context, d time.Duration) error
}

// SleepFunc returns e.Sleep or a timer-based sleep.
func (e Env) SleepFunc() func(ctx context.Context, d time.Duration) error {
	if e.Sleep != nil {
		return e.Sleep
	}
	return func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
}

// Log returns e.Logger or a null logger.
func (e Env) Log() hclog.Logger {
	if e.Logger == nil {
		return hclog.NewNullLogger()
	}
	return e.Logger
}

// Factory builds a target from the settings its policies.TargetSpec
// decoded (such as *nomadjob.Config). It performs no I/O.
type Factory func(settings any, env Env) (Target, error)

var factories = struct {
	sync.RWMutex
	m map[string]Factory
}{m: map[string]Factory{}}

// Register makes a target runtime known under the plugin name policies
// use. It is called from init; registering a name twice panics.
func Register(name string, f Factory) {
	if name == "" || f == nil {
		panic("target: Register with an empty name or nil factory")
	}
	factories.Lock()
	defer factories.Unlock()
	if _, dup := factories.m[name]; dup {
		panic(fmt.Sprintf("target: plugin %q registered twice", name))
	}
	factories.m[name] = f
}

// New builds the target of plugin name from its decoded settings.
func New(name string, settings any, env Env) (Target, error) {
	factories.RLock()
	f, ok := factories.m[name]
	factories.RUnlock()
	if !ok {
		return nil, fmt.Errorf("target: no runtime for plugin %q (known: %v)", name, Names())
	}
	t, err := f(settings, env)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", name, err)
	}
	return t, nil
}

// Names returns the registered plugin names, sorted.
func Names() []string {
	factories.RLock()
	defer factories.RUnlock()
	out := make([]string, 0, len(factories.m))
	for n := range factories.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
