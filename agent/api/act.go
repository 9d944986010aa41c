package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/foreshape/foreshape/policies"
)

// This file holds what the act half's endpoints exchange: the migration
// queue (/v1/queue), the reservations held by placeholder jobs
// (/v1/reservations) and the bounded log of the shaper's decisions
// (/v1/decisions). The JSON shapes are part of foreshape's interface:
// scripts rely on them, so fields are only ever added.

// ActBackend is what the queue, reservation and decision endpoints need
// from the agent. Every method takes the request's context and must return
// when it ends. Errors the handlers answer with a 4xx wrap one of
// ErrInvalid (400), ErrNotFound (404), ErrConflict (409) or ErrQueueFull
// (429); ErrUnavailable (a follower that cannot reach the leader, a state
// that is not ready yet) is a 503; ErrNomadRefused (Nomad's ACLs refused
// the agent's token a call the request needed) a 502; anything else is a
// 500.
type ActBackend interface {
	// Queue returns the migration queue: every request not yet collected,
	// in score order, and whether the queue is paused. Queue.Index grows
	// with every change of the queue.
	Queue(ctx context.Context) (Queue, error)
	// Request returns one migration request, or an error wrapping
	// ErrNotFound.
	Request(ctx context.Context, id string) (MigrationRequest, error)
	// Submit validates and queues an operator's migration request and
	// returns its id. A refused submission changes nothing.
	Submit(ctx context.Context, s Submission) (string, error)
	// Cancel cancels a request that has not started (pending, waiting,
	// reserving): ErrNotFound for an unknown id, ErrConflict for one that
	// runs (a stop already happened) or has finished.
	Cancel(ctx context.Context, id string) error
	// SetPriority sets the priority (1–100) of a request that has not
	// started, as Cancel finds it: ErrNotFound, or ErrConflict for one
	// that runs or has finished. The leader scores it again at its next
	// act pass.
	SetPriority(ctx context.Context, id string, priority int) error
	// SetPaused pauses (true) or resumes (false) the queue: a paused queue
	// starts no new move; moves already running continue. Pausing a paused
	// queue is not an error.
	SetPaused(ctx context.Context, paused bool) error
	// Reservations returns every reservation the agent holds or has
	// recently released.
	Reservations(ctx context.Context) ([]Reservation, error)
	// Decisions returns the newest decisions first that match f, at most
	// f.Limit of them (all the ring holds when it is 0).
	Decisions(ctx context.Context, f DecisionFilter) ([]Decision, error)
	// WaitIndex blocks until the act state's index (Queue.Index) is greater
	// than index, or ctx ends, and returns the index it saw last. It is how
	// GET /v1/queue?index=N answers a blocking query; on ctx's end it
	// returns the current index and no error. An index greater than the
	// state's that the state will not reach (one of a state a snapshot
	// restore replaced, or of another agent) returns at once, with the
	// state's lower index; a server behind it (a follower the entry has
	// not reached yet) may wait to catch up.
	WaitIndex(ctx context.Context, index uint64) (uint64, error)
}

// Errors an ActBackend wraps so the handlers can answer the right status.
// ErrNotFound (404) is declared with the server.
var (
	// ErrInvalid is a request the backend refuses as it stands (unknown
	// allocation, job or node; an unknown target or one equal to the
	// source; a target the job's constraints forbid): 400.
	ErrInvalid = errors.New("invalid request")
	// ErrConflict is a request that contradicts the state: the resource is
	// already queued, the request has finished: 409.
	ErrConflict = errors.New("conflict")
	// ErrQueueFull is a submission to a queue at its bound: 429.
	ErrQueueFull = errors.New("queue full")
	// ErrUnavailable is a state the agent cannot serve now (no leader): 503.
	ErrUnavailable = errors.New("unavailable")
	// ErrNomadRefused is a request the agent could not serve because
	// Nomad's ACLs refused a call it made for it with the agent's own Nomad
	// token: 502. Not 403, which is the agent refusing the caller's token,
	// nor 500: the agent works, its upstream refused it.
	//lint:ignore ST1005 Nomad is a name.
	ErrNomadRefused = errors.New("Nomad refused the agent's call")
)

// InvalidError is a refused submission naming the field at fault. It
// wraps ErrInvalid.
type InvalidError struct {
	Field  string // "allocation", "job", "group", "node", "target", "priority", ...
	Reason string // what is wrong, without the field name
}

func (e *InvalidError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// ConflictError is a submission for a resource that is already queued; it
// names the existing request once: "node dc1-a-1 is already queued as mr-3
// (pending)". It wraps ErrConflict.
type ConflictError struct {
	Existing string // the id of the request that holds the resource
	Resource string // what is queued, as the queue names it; "" when not known
	State    string // the existing request's state; "" when not known
	// Alloc and Holds, when the two requests share an allocation rather
	// than the resource: the allocation and what the existing request
	// moves.
	Alloc, Holds string
}

func (e *ConflictError) Error() string {
	if e.Alloc != "" {
		return fmt.Sprintf("%s moves allocation %s, which %s (%s) already moves: it is queued for %s", e.Resource, e.Alloc, e.Existing, e.State, e.Holds)
	}
	msg := "already queued as " + e.Existing
	if e.Resource != "" {
		msg = e.Resource + " is " + msg
	}
	if e.State != "" {
		msg += " (" + e.State + ")"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Migration request states. A request moves pending → waiting (with why) →
// reserving → running → done | failed | cancelled; waiting and reserving
// may be skipped, and a request can be cancelled or fail in any state
// before done.
const (
	StatePending   = "pending"
	StateWaiting   = "waiting"
	StateReserving = "reserving"
	StateRunning   = "running"
	StateDone      = "done"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// States lists the request states in their order.
var States = []string{StatePending, StateWaiting, StateReserving, StateRunning, StateDone, StateFailed, StateCancelled}

// Finished reports whether a request in state s has reached an end.
func Finished(s string) bool {
	return s == StateDone || s == StateFailed || s == StateCancelled
}

// Queue is the answer of GET /v1/queue.
type Queue struct {
	Paused bool `json:"paused"`
	// PausedBy and PausedAt say, while the queue is paused, who or what
	// paused it ("operator": foreshape queue pause or the dashboard; a
	// snapshot restore naming its backup) and when.
	PausedBy string             `json:"paused_by,omitempty"`
	PausedAt *time.Time         `json:"paused_at,omitempty"`
	Requests []MigrationRequest `json:"requests"`
	// Index is the act state's index this view was read at; it is sent as
	// the X-Foreshape-Index header, not in the body.
	Index uint64 `json:"-"`
}

// MigrationRequest is one request in the migration queue.
type MigrationRequest struct {
	ID string `json:"id"`
	// Resource is what moves: "alloc/ID", "job/JOB/GROUP" or "node/NODE".
	Resource string `json:"resource"`
	// Source and Target are localities in path form ("dc1/web").
	Source string `json:"source"`
	Target string `json:"target"`
	State  string `json:"state"`
	// Priority is the request's priority, 1–100 (higher first).
	Priority int `json:"priority"`
	// Score is the shaper's ordering score (higher runs first), to two
	// decimals.
	Score float64 `json:"score"`
	// Reason says why the request exists, or, while waiting or after a
	// failure, why it waits or failed.
	Reason             string    `json:"reason"`
	EstimatedDurationS float64   `json:"estimated_duration_s"`
	Created            time.Time `json:"created"`
	// Started and Finished are null until the move starts and ends.
	Started  *time.Time `json:"started"`
	Finished *time.Time `json:"finished"`
}

// AllocResource names an allocation in MigrationRequest.Resource.
func AllocResource(id string) string { return "alloc/" + id }

// JobResource names a job's task group in MigrationRequest.Resource.
func JobResource(job, group string) string { return "job/" + job + "/" + group }

// NodeResource names a whole node in MigrationRequest.Resource.
func NodeResource(node string) string { return "node/" + node }

// MaxReason bounds a submission's reason, in bytes: the agent keeps 1 KiB
// of a reason (state.MaxReason), in the queue and in the submit decision,
// which says what is queued before it.
const MaxReason = 512

// Submission is the body of POST /v1/queue: exactly one of Allocation,
// Job with Group, or Node, and a Target.
type Submission struct {
	Allocation string `json:"allocation,omitempty"`
	Job        string `json:"job,omitempty"`
	Group      string `json:"group,omitempty"`
	Node       string `json:"node,omitempty"`
	// Target is the locality to move to, in path form ("dc2").
	Target string `json:"target"`
	// Priority is 1–100; 0 or absent lets the agent choose (from the job's
	// priority).
	Priority int    `json:"priority,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Check refuses a submission whose shape is wrong, before the backend sees
// it: not exactly one resource, a group without a job, no target, a
// priority outside 0–100, a reason over MaxReason bytes.
func (s Submission) Check() error {
	n := 0
	for _, set := range []bool{s.Allocation != "", s.Job != "" || s.Group != "", s.Node != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return &InvalidError{Field: "allocation", Reason: `name what to move: "allocation", "job" with "group", or "node"`}
	case n > 1:
		return &InvalidError{Field: "allocation", Reason: `give only one of "allocation", "job" with "group", or "node"`}
	case s.Job != "" && s.Group == "":
		return &InvalidError{Field: "group", Reason: `"job" needs "group": the task group to move`}
	case s.Group != "" && s.Job == "":
		return &InvalidError{Field: "job", Reason: `"group" needs "job"`}
	case s.Target == "":
		return &InvalidError{Field: "target", Reason: `required: the locality to move to, such as "dc2" or "dc2/web"`}
	case s.Priority < 0 || s.Priority > 100:
		return &InvalidError{Field: "priority", Reason: fmt.Sprintf("%d is outside 1–100 (0 lets the agent choose)", s.Priority)}
	case len(s.Reason) > MaxReason:
		return &InvalidError{Field: "reason", Reason: fmt.Sprintf("%d bytes; at most %d (the queue and the decision log keep no more)", len(s.Reason), MaxReason)}
	}
	return nil
}

// PriorityChange is the body of PATCH /v1/queue/{id}: the request's new
// priority, 1–100.
type PriorityChange struct {
	Priority int `json:"priority"`
}

// Check refuses a priority outside 1–100.
func (p PriorityChange) Check() error {
	if p.Priority < 1 || p.Priority > 100 {
		return &InvalidError{Field: "priority", Reason: fmt.Sprintf("%d is outside 1–100", p.Priority)}
	}
	return nil
}

// Submitted is the answer of POST /v1/queue.
type Submitted struct {
	ID string `json:"id"`
}

// Reservation states.
const (
	// ReservationPlanned: decided, the placeholder is not registered yet.
	ReservationPlanned = "planned"
	// ReservationPlaced: the placeholder job is registered and some of
	// its allocations are not placed on a node yet (Nomad found no room
	// for them so far, or the leader has not seen them placed since).
	ReservationPlaced = "placed"
	// ReservationHeld: every allocation of the placeholder job is placed
	// on a node: the room is held.
	ReservationHeld = "held"
	// ReservationHandingOver: a move is taking the capacity over.
	ReservationHandingOver = "handing_over"
	// ReservationReleased: the placeholder is gone (handed over, expired
	// or no longer needed).
	ReservationReleased = "released"
)

// ReservationStates are the states a reservation can be in, in order.
var ReservationStates = []string{ReservationPlanned, ReservationPlaced, ReservationHeld, ReservationHandingOver, ReservationReleased}

// Reservations is the answer of GET /v1/reservations.
type Reservations struct {
	Reservations []Reservation `json:"reservations"`
}

// Reservation is capacity held in a locality by a placeholder job.
type Reservation struct {
	ID string `json:"id"`
	// Request is the migration request the capacity is held for (every
	// reservation has one).
	Request  string `json:"request"`
	Policy   string `json:"policy"`
	Locality string `json:"locality"`
	// CPU in MHz, Memory in MiB, IOPS in operations per second.
	CPU    int     `json:"cpu"`
	Memory int     `json:"memory"`
	IOPS   float64 `json:"iops"`
	// From is when the capacity must be held from. Until is when the
	// reservation ends: while it is not released, its expiry (placement
	// plus the policy's reserve.ttl), which no placeholder outlives (it
	// is released earlier when its request ends); once released, when it
	// was.
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	// Job is the placeholder's Nomad job ID ("foreshape-reserve-…").
	Job   string `json:"job"`
	State string `json:"state"`
}

// Decision kinds the shaper and the coordinator record.
const (
	DecisionSubmit    = "submit"    // a request was queued (by an operator, a drain schedule, the planner)
	DecisionReserve   = "reserve"   // capacity reserved ahead of a move or a peak
	DecisionExtend    = "extend"    // a reservation's planned end moved while its move overran (older releases: its end is reserve.ttl from placement)
	DecisionRelease   = "release"   // a reservation released
	DecisionReap      = "reap"      // an expired or orphaned placeholder removed
	DecisionScale     = "scale"     // a scale action
	DecisionWait      = "wait"      // a request held back, with why
	DecisionStart     = "start"     // a move started
	DecisionDone      = "done"      // a move finished
	DecisionCancel    = "cancel"    // a request cancelled
	DecisionPriority  = "priority"  // a queued request's priority set by an operator
	DecisionHold      = "hold"      // a node kept out of scheduling, or one that cannot be given back
	DecisionRestore   = "restore"   // a node given back to scheduling
	DecisionReconcile = "reconcile" // a new leader settled what the last one left open
	DecisionRetry     = "retry"     // a failed or unfinished move queued again
	DecisionFail      = "fail"      // a move that failed for good (no attempt left)
)

// DecisionKinds are every kind a decision has, in the order -help lists
// them; GET /v1/decisions refuses a ?kind= outside them (a typo would
// otherwise answer "no decisions").
var DecisionKinds = []string{DecisionSubmit, DecisionReserve, DecisionExtend, DecisionRelease, DecisionReap, DecisionScale,
	DecisionWait, DecisionStart, DecisionDone, DecisionCancel, DecisionPriority, DecisionHold, DecisionRestore, DecisionReconcile,
	DecisionRetry, DecisionFail}

// Decisions is the answer of GET /v1/decisions.
type Decisions struct {
	Decisions []Decision `json:"decisions"`
}

// Decision is one entry of the bounded decision log: what the shaper or
// the coordinator decided and why, with numbers.
type Decision struct {
	Time     time.Time `json:"time"`
	Policy   string    `json:"policy"`
	Kind     string    `json:"kind"`
	Locality string    `json:"locality"`
	// Request is the migration request the decision concerns, if any.
	Request string `json:"request"`
	Reason  string `json:"reason"`
}

// DecisionFilter selects decisions; empty fields match everything.
type DecisionFilter struct {
	Policy   string
	Locality string
	Kind     string
	Request  string
	// Since keeps decisions at or after it when not zero.
	Since time.Time
	// Limit caps the answer (newest first); 0 means no cap.
	Limit int
}

// Match reports whether d passes f's field filters (not Limit).
func (f DecisionFilter) Match(d Decision) bool {
	return (f.Policy == "" || d.Policy == f.Policy) &&
		(f.Locality == "" || InLocality(d.Locality, f.Locality)) &&
		(f.Kind == "" || d.Kind == f.Kind) &&
		(f.Request == "" || d.Request == f.Request) &&
		(f.Since.IsZero() || !d.Time.Before(f.Since))
}

// InLocality reports whether the locality path loc lies within the locality
// path filter: every part filter names (DATACENTER/NODE_POOL/NODE_CLASS, "*"
// or an omitted trailing part for any) is loc's. "dc1" holds "dc1/*/web"
// and "dc1"; "dc1/*/web" holds itself, not "dc1" nor "dc1/web" (node pool
// web). Paths that do not parse match only when equal.
func InLocality(loc, filter string) bool {
	if loc == filter {
		return true
	}
	f, err := policies.ParseLocality(filter)
	if err != nil {
		return false
	}
	l, err := policies.ParseLocality(loc)
	if err != nil {
		return false
	}
	return f.Matches(l.Datacenter, l.NodePool, l.NodeClass)
}

// CheckLocality checks a -locality filter's form: nil for "" and for a
// locality path ParseLocality reads. Its error begins `locality "VALUE"`,
// so callers name the field by prefixing "-" (a flag) or nothing (the
// query parameter), not by repeating the word.
func CheckLocality(filter string) error {
	if filter == "" {
		return nil
	}
	_, err := policies.ParseLocality(filter)
	return err
}
