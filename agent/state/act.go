package state

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// This file holds the act half's replicated types: migration requests, the
// reservations that hold capacity for them, intents (every side effect the
// leader performs, written before it is done and closed after), scale
// actions and cooldowns, learned move durations and the bounded decision
// log. They are plain data; actstore.go applies the commands that change
// them.

// RequestState is where a migration request stands.
//
//	pending → waiting (with why) → reserving → running → done | failed | cancelled
//
// A request may go back from waiting to pending, skip reserving when no
// reservation is needed, and return from running to pending to be retried.
type RequestState string

// The request states.
const (
	RequestPending   RequestState = "pending"
	RequestWaiting   RequestState = "waiting"
	RequestReserving RequestState = "reserving"
	RequestRunning   RequestState = "running"
	RequestDone      RequestState = "done"
	RequestFailed    RequestState = "failed"
	RequestCancelled RequestState = "cancelled"
)

// RequestStates lists every state in lifecycle order.
var RequestStates = []RequestState{RequestPending, RequestWaiting, RequestReserving, RequestRunning, RequestDone, RequestFailed, RequestCancelled}

// Terminal reports whether a request in s is finished.
func (s RequestState) Terminal() bool {
	return s == RequestDone || s == RequestFailed || s == RequestCancelled
}

// Queued reports whether a request in s has not started.
func (s RequestState) Queued() bool {
	return s == RequestPending || s == RequestWaiting || s == RequestReserving
}

// validTransition reports whether a request may go from one state to
// another in one update. Staying in a state is always allowed.
func validTransition(from, to RequestState) bool {
	if from == to {
		return !from.Terminal()
	}
	switch from {
	case RequestPending, RequestWaiting, RequestReserving:
		return to != RequestDone
	case RequestRunning:
		return to == RequestDone || to == RequestFailed || to == RequestPending
	}
	return false
}

// ResourceKind is what a migration request moves.
type ResourceKind string

// The resource kinds.
const (
	// ResourceAllocation is one allocation.
	ResourceAllocation ResourceKind = "allocation"
	// ResourceGroup is every allocation of a job's task group in the source
	// locality.
	ResourceGroup ResourceKind = "group"
	// ResourceNode is every allocation on one node (a drain).
	ResourceNode ResourceKind = "node"
)

// Resource names what a request moves.
type Resource struct {
	Kind ResourceKind `json:"kind"`
	// ID is the allocation or node ID; empty for a group.
	ID string `json:"id,omitempty"`
	// Name is the allocation's or node's name, for people.
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Job       string `json:"job,omitempty"`
	Group     string `json:"group,omitempty"`
}

// Key identifies the resource across requests: two unfinished requests
// never share one.
func (r Resource) Key() string {
	switch r.Kind {
	case ResourceGroup:
		return "group/" + r.Namespace + "/" + r.Job + "/" + r.Group
	default:
		return string(r.Kind) + "/" + r.ID
	}
}

// String is the resource for people: "allocation web.frontend[3] (0a1b2c3d)",
// "group default/web/frontend", "node dc1-rack-a-1".
func (r Resource) String() string {
	switch r.Kind {
	case ResourceGroup:
		return "group " + r.Namespace + "/" + r.Job + "/" + r.Group
	case ResourceAllocation:
		if r.Name != "" {
			return fmt.Sprintf("allocation %s (%s)", r.Name, short(r.ID))
		}
		return "allocation " + r.ID
	case ResourceNode:
		if r.Name != "" {
			return "node " + r.Name
		}
		return "node " + r.ID
	}
	return string(r.Kind) + " " + r.ID
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Resources are amounts of capacity: CPU in MHz, memory in MiB, IOPS.
type Resources struct {
	CPU      int64 `json:"cpu"`
	MemoryMB int64 `json:"memory_mb"`
	IOPS     int64 `json:"iops,omitempty"`
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{CPU: r.CPU + o.CPU, MemoryMB: r.MemoryMB + o.MemoryMB, IOPS: r.IOPS + o.IOPS}
}

// Sub returns r − o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{CPU: r.CPU - o.CPU, MemoryMB: r.MemoryMB - o.MemoryMB, IOPS: r.IOPS - o.IOPS}
}

// IsZero reports whether r holds nothing.
func (r Resources) IsZero() bool { return r == Resources{} }

func (r Resources) String() string {
	s := fmt.Sprintf("%d MHz / %d MiB", r.CPU, r.MemoryMB)
	if r.IOPS != 0 {
		s += fmt.Sprintf(" / %d IOPS", r.IOPS)
	}
	return s
}

// Move is one allocation of a request being moved.
type Move struct {
	Alloc     string    `json:"alloc"`
	Name      string    `json:"name,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	Job       string    `json:"job"`
	Group     string    `json:"group"`
	Node      string    `json:"node"`
	Size      Resources `json:"size"`
	// Replacement is the allocation Nomad placed instead, once known, and
	// TargetNode and Landed (its locality path) where it runs.
	Replacement string `json:"replacement,omitempty"`
	TargetNode  string `json:"target_node,omitempty"`
	Landed      string `json:"landed,omitempty"`
	// Stopped is when the stop (or drain) was issued; Running when the
	// replacement ran (and was healthy where the job has checks).
	Stopped time.Time `json:"stopped,omitzero"`
	Running time.Time `json:"running,omitzero"`
	Done    bool      `json:"done,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// MigrationRequest is one entry of the migration queue.
type MigrationRequest struct {
	// ID is assigned by the state machine when the request is submitted:
	// "mr-1", "mr-2", …
	ID       string   `json:"id"`
	Resource Resource `json:"resource"`
	// Source and Target are locality paths ("dc1/*/web").
	Source string `json:"source"`
	Target string `json:"target"`
	// Policy governs the source locality: its max_parallel, strategy and
	// weights apply.
	Policy   string `json:"policy,omitempty"`
	Strategy string `json:"strategy"`
	// Origin is who asked: "operator", "schedule" or "planner"; OriginKey
	// identifies a schedule window or rebalance so it creates a request only
	// once.
	Origin    string `json:"origin"`
	OriginKey string `json:"origin_key,omitempty"`
	// Moved is the total size of the allocations moved, as Nomad allocated
	// them.
	Moved Resources `json:"moved"`
	// Moves are the allocations moved, known at submission and refreshed
	// when the move starts.
	Moves []Move `json:"moves,omitempty"`
	// Priority is the operator's (0–100); Score the planner's latest.
	Priority  int           `json:"priority"`
	Score     float64       `json:"score"`
	Estimated time.Duration `json:"estimated"`
	State     RequestState  `json:"state"`
	Reason    string        `json:"reason,omitempty"`
	// NotBefore is the earliest start; Deadline when the move must be done
	// (a maintenance window's start). Zero means none.
	NotBefore time.Time `json:"not_before,omitzero"`
	Deadline  time.Time `json:"deadline,omitzero"`
	// Exclude are nodes the moved work must not land on: a drain window's
	// nodes, all taken out of scheduling when the window's first move
	// starts.
	Exclude  []string  `json:"exclude,omitempty"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// OutWait is when the running request's moves began waiting for a
	// node to leave scheduling before their first stop; zero when they
	// do not wait.
	OutWait  time.Time `json:"out_wait,omitzero"`
	Attempts int       `json:"attempts,omitempty"`
	// Version is the log index of the request's last change, for
	// compare-and-set updates.
	Version uint64 `json:"version"`
}

// Clone returns a deep copy.
func (r MigrationRequest) Clone() MigrationRequest {
	r.Moves = slices.Clone(r.Moves)
	r.Exclude = slices.Clone(r.Exclude)
	return r
}

// ReservationState is where a reservation stands.
type ReservationState string

// The reservation states.
const (
	// ReservationPlanned is decided but its placeholder is not registered.
	ReservationPlanned ReservationState = "planned"
	// ReservationHeld has a registered placeholder job.
	ReservationHeld ReservationState = "held"
	// ReservationReleased is given back; it is removed once its placeholder
	// is gone.
	ReservationReleased ReservationState = "released"
)

// Chunk is one size of placeholder allocation and how many of it are held.
type Chunk struct {
	Size  Resources `json:"size"`
	Count int       `json:"count"`
}

// Reservation is capacity held in a locality for a migration request by a
// low-priority placeholder job.
type Reservation struct {
	// ID is assigned by the state machine: "rs-1", …
	ID       string `json:"id"`
	Request  string `json:"request"`
	Policy   string `json:"policy"`
	Locality string `json:"locality"`
	// Job is the placeholder's Nomad job ID.
	Job string `json:"job"`
	// Chunks are the placeholder's task groups, one per allocation size,
	// so that a hand-over shrinks it by exactly one moved allocation; Size
	// is what they held when placed.
	Chunks []Chunk   `json:"chunks"`
	Size   Resources `json:"size"`
	// From is when the capacity is needed (the move's planned start),
	// Until its planned end until it is released (nothing releases it
	// then) and when it was released after, Expires when it must be
	// (placement plus the policy's ttl; no placeholder outlives it).
	From    time.Time `json:"from"`
	Until   time.Time `json:"until"`
	Expires time.Time `json:"expires"`
	Placed  time.Time `json:"placed,omitzero"`
	// Unplaced is how many of its placeholder allocations Nomad had not
	// placed on a node when the leader last looked (no room found yet):
	// all of them from the registration until they are seen placed.
	Unplaced int `json:"unplaced,omitempty"`
	// Exclude are nodes of the locality the placeholder must not use.
	Exclude []string         `json:"exclude,omitempty"`
	State   ReservationState `json:"state"`
	Reason  string           `json:"reason,omitempty"`
	Version uint64           `json:"version"`
}

// Total is what the reservation holds now.
func (r Reservation) Total() Resources {
	var t Resources
	for _, c := range r.Chunks {
		t.CPU += c.Size.CPU * int64(c.Count)
		t.MemoryMB += c.Size.MemoryMB * int64(c.Count)
		t.IOPS += c.Size.IOPS * int64(c.Count)
	}
	return t
}

// Clone returns a deep copy.
func (r Reservation) Clone() Reservation {
	r.Chunks = slices.Clone(r.Chunks)
	r.Exclude = slices.Clone(r.Exclude)
	return r
}

// IntentKind is the side effect an intent announces.
type IntentKind string

// The intent kinds: every mutating call the coordinator makes to Nomad or a
// scale target.
const (
	IntentStopAlloc       IntentKind = "stop_alloc"
	IntentDrainNode       IntentKind = "drain_node"
	IntentNodeEligibility IntentKind = "node_eligibility"
	IntentUpdateJob       IntentKind = "update_job"
	IntentRegisterHold    IntentKind = "register_placeholder"
	IntentScaleHold       IntentKind = "scale_placeholder"
	IntentDeregisterHold  IntentKind = "deregister_placeholder"
	IntentScaleTarget     IntentKind = "scale_target"
)

// IntentOutcome is how an intent ended.
type IntentOutcome string

// The outcomes. An open intent has none.
const (
	// OutcomeDone: the call succeeded (or reconciliation found its effect).
	OutcomeDone IntentOutcome = "done"
	// OutcomeFailed: the call failed; the effect did not happen.
	OutcomeFailed IntentOutcome = "failed"
	// OutcomeNotDone: reconciliation found no sign of the effect; the
	// leader that opened it died before (or while) calling.
	OutcomeNotDone IntentOutcome = "not_done"
)

// Intent is a side effect written to the log before it is performed and
// closed with its outcome after. Its ID is chosen by the leader and is
// unique: opening an ID twice changes nothing, so a retried Apply cannot
// announce an effect twice, and an effect is only performed by the leader
// whose Apply opened it.
type Intent struct {
	ID          string     `json:"id"`
	Kind        IntentKind `json:"kind"`
	Request     string     `json:"request,omitempty"`
	Reservation string     `json:"reservation,omitempty"`
	// Object is what the call acts on: an allocation, node or job ID, or a
	// scale target ("policy/scale").
	Object string `json:"object"`
	// Detail is the call's argument for people and reconciliation: a
	// count, an eligibility, a job version.
	Detail string `json:"detail,omitempty"`
	// Before is what the object was just before the call, where giving
	// the effect back depends on it: for a node's drain, the node's
	// scheduling then (NodeWasEligible, NodeWasIneligible,
	// NodeWasDraining); for a node's give-back, NodeWasPurged when Nomad
	// no longer listed it. Empty in intents written before it was
	// recorded, and in other give-backs.
	Before string `json:"before,omitempty"`
	// NodeCreated is, for a call taking a node out of scheduling (its
	// eligibility, its drain) or giving it back, the node's CreateIndex
	// in Nomad read just before: a node purged and registered again since
	// (its client came back with the eligibility it last heard) has a
	// later one. 0 in intents written before it was recorded, and in a
	// give-back that found its node purged.
	NodeCreated uint64        `json:"node_created,omitempty"`
	Leader      string        `json:"leader,omitempty"`
	Term        uint64        `json:"term,omitempty"`
	Opened      time.Time     `json:"opened"`
	Closed      time.Time     `json:"closed,omitzero"`
	Outcome     IntentOutcome `json:"outcome,omitempty"`
	Error       string        `json:"error,omitempty"`
}

// A node's scheduling before a call (Intent.Before): eligible, out of
// scheduling without a drain (an operator's cordon, or foreshape's own),
// or draining.
const (
	NodeWasEligible   = "eligible"
	NodeWasIneligible = "ineligible"
	NodeWasDraining   = "draining"
	// NodeWasPurged is, for a give-back, a node Nomad no longer listed:
	// purged while foreshape held it out of scheduling. Its client, if it
	// still runs, registers it again out of scheduling, as it last heard.
	NodeWasPurged = "purged"
)

// Open reports whether the intent has no outcome yet.
func (i Intent) Open() bool { return i.Outcome == "" }

// ScaleAction is one scale request sent to a policy's scale target.
type ScaleAction struct {
	ID        string `json:"id"`
	Policy    string `json:"policy"`
	Scale     string `json:"scale"`
	Plugin    string `json:"plugin"`
	Locality  string `json:"locality"`
	Direction string `json:"direction"` // "up" or "down"
	Amount    int    `json:"amount"`
	// Count is the count the action asked the target to reach.
	Count   int       `json:"count,omitempty"`
	Reason  string    `json:"reason"`
	Request string    `json:"request,omitempty"`
	At      time.Time `json:"at"`
	// NeededBy is when the capacity must be there.
	NeededBy time.Time `json:"needed_by,omitzero"`
	// Finished is when the target answered; Outcome and Error say how.
	Finished time.Time     `json:"finished,omitzero"`
	Outcome  IntentOutcome `json:"outcome,omitempty"`
	Error    string        `json:"error,omitempty"`
	// TookEffect is when the scale took effect: when the target accepted
	// the new count, after any retry (a nomad-job target refused during a
	// deployment tries again once it ends). Set with OutcomeDone only; the
	// scale block's cooldown runs from it. Records written before it
	// existed have none, and their cooldown runs from At.
	TookEffect time.Time `json:"took_effect,omitzero"`
	// Attempts counts the target's tries (a refusal during a deployment is
	// retried after it).
	Attempts int `json:"attempts,omitempty"`
}

// CooldownFrom is when the cooldown the action starts begins, and false
// when it starts none: a failed action (or one found not done) starts
// none; one that took effect, from the time it did, as Nomad Autoscaler's
// cooldown runs; one still in flight (or recorded before TookEffect
// existed) from its decision time At, so its block stays quiet meanwhile.
func (a ScaleAction) CooldownFrom() (time.Time, bool) {
	switch {
	case a.Outcome == OutcomeFailed || a.Outcome == OutcomeNotDone:
		return time.Time{}, false
	case !a.TookEffect.IsZero():
		return a.TookEffect, true
	}
	return a.At, true
}

// CooldownKey names a scale block: "policy/scale".
func CooldownKey(policy, scale string) string { return policy + "/" + scale }

// Estimate is a learned move duration for one pair of localities and size
// class.
type Estimate struct {
	Key     string        `json:"key"`
	Mean    time.Duration `json:"mean"`
	Samples int           `json:"samples"`
	// Last is the most recent measured duration.
	Last time.Duration `json:"last"`
}

// Decision is one entry of the bounded decision log: what the planner or
// coordinator decided and why, with numbers.
type Decision struct {
	Time        time.Time `json:"time"`
	Policy      string    `json:"policy,omitempty"`
	Kind        string    `json:"kind"`
	Locality    string    `json:"locality,omitempty"`
	Request     string    `json:"request,omitempty"`
	Reservation string    `json:"reservation,omitempty"`
	Reason      string    `json:"reason"`
	// DryRun marks plans recorded under forecast_only, never carried out.
	DryRun bool `json:"dry_run,omitempty"`
}

// Bounds of the act state, part of the replicated contract.
const (
	// MaxDecisions is the size of the decision ring.
	MaxDecisions = 1000
	// MaxClosedIntents is how many closed intents are kept for audit,
	// the oldest forgotten first; those of a request the queue still holds
	// are kept beyond it.
	MaxClosedIntents = 1000
	// MaxScaleActions is how many scale actions are kept.
	MaxScaleActions = 200
	// MaxReason bounds reasons and errors, in bytes.
	MaxReason = 1024
)

// Errors the act commands return (as Apply's response value). Each leaves
// the state unchanged.
var (
	// ErrQueueFull: the queue holds its limit of unfinished requests.
	ErrQueueFull = errors.New("state: migration queue is full")
	// ErrUnknownRequest: no request has that ID.
	ErrUnknownRequest = errors.New("state: unknown migration request")
	// ErrUnknownReservation: no reservation has that ID.
	ErrUnknownReservation = errors.New("state: unknown reservation")
	// ErrStaleVersion: a compare-and-set update lost to another change.
	ErrStaleVersion = errors.New("state: the object changed since it was read")
	// ErrBadTransition: the state change is not allowed.
	ErrBadTransition = errors.New("state: state change not allowed")
	// ErrInvalid: the command's content is invalid.
	ErrInvalid = errors.New("state: invalid act command")
	// ErrConflict is wrapped by *ConflictError.
	ErrConflict = errors.New("state: already queued")
)

// ConflictError refuses a request for a resource that an unfinished request
// already moves (or that a schedule window already asked for).
type ConflictError struct {
	Resource string
	Existing string
	State    RequestState
	// Alloc and Holds, when the two requests share an allocation rather
	// than the resource: the allocation ("web.frontend[0] (01b8b0d4)")
	// and what the existing request moves ("group default/web/frontend").
	Alloc, Holds string
}

func (e *ConflictError) Error() string {
	if e.Alloc != "" {
		return fmt.Sprintf("%s moves allocation %s, which %s (%s) already moves: it is queued for %s", e.Resource, e.Alloc, e.Existing, e.State, e.Holds)
	}
	return fmt.Sprintf("%s is already queued as %s (%s)", e.Resource, e.Existing, e.State)
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// TransitionError refuses a state change.
type TransitionError struct {
	ID       string
	From, To RequestState
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("%s: request %s cannot go from %s to %s", ErrBadTransition, e.ID, e.From, e.To)
}

// Is makes errors.Is(err, ErrBadTransition) hold.
func (e *TransitionError) Is(target error) bool { return target == ErrBadTransition }

// resumes checks a resume that names the pause it lifts against the
// queue's pause: one paused again since (by a restore, which pauses the
// restored queue for review, or by another operator) is not lifted.
func (s *actStore) resumes(c SetQueuePaused) error {
	if c.Paused || !s.paused || c.IfPausedAt.IsZero() && c.IfPausedBy == "" {
		return nil
	}
	if s.pausedAt.Equal(c.IfPausedAt) && s.pausedBy == c.IfPausedBy {
		return nil
	}
	return &PausedAgainError{By: s.pausedBy, At: s.pausedAt, WasBy: c.IfPausedBy, WasAt: c.IfPausedAt}
}

// PausedAgainError refuses a resume of the queue sent for a pause that
// has been replaced since: the queue was paused again, By at At, after
// the resume was sent for the pause by WasBy at WasAt.
type PausedAgainError struct {
	By, WasBy string
	At, WasAt time.Time
}

func (e *PausedAgainError) Error() string {
	return fmt.Sprintf("the queue was paused again by %s at %s after this resume was sent for its pause by %s at %s: it stays paused; review the queue and resume it again",
		cmp.Or(e.By, "an unnamed writer"), e.At.UTC().Format(time.RFC3339), cmp.Or(e.WasBy, "an unnamed writer"), e.WasAt.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrBadTransition) hold.
func (e *PausedAgainError) Is(target error) bool { return target == ErrBadTransition }

// bound cuts s to MaxReason bytes on a rune boundary.
func bound(s string) string {
	if len(s) <= MaxReason {
		return s
	}
	cut := MaxReason
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}
