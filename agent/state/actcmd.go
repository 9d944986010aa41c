package state

import (
	"encoding/json"
	"fmt"
	"time"
)

// Act commands. They are few and small next to sample batches, so their
// payload is one length-prefixed JSON document (encoding/json writes struct
// fields in declaration order and map keys sorted, so the same command
// always encodes to the same bytes). Times are UTC.

// Migration queue commands (16–31).
const (
	TypeSubmitRequest   CommandType = 16
	TypeUpdateRequest   CommandType = 17
	TypeCancelRequest   CommandType = 18
	TypeRescoreRequests CommandType = 19
	TypeSetQueuePaused  CommandType = 20
	TypePruneRequests   CommandType = 21
	TypeInitCluster     CommandType = 22
)

// Reservation and scale commands (32–47).
const (
	TypePutReservation    CommandType = 32
	TypeDeleteReservation CommandType = 33
	TypeRecordScaleAction CommandType = 34
	TypeSetEstimate       CommandType = 35
)

// Decision and intent commands (48–63).
const (
	TypeAppendDecisions CommandType = 48
	TypeOpenIntent      CommandType = 49
	TypeCloseIntent     CommandType = 50
)

var actTypeNames = map[CommandType]string{
	TypeSubmitRequest:     "submit_request",
	TypeUpdateRequest:     "update_request",
	TypeCancelRequest:     "cancel_request",
	TypeRescoreRequests:   "rescore_requests",
	TypeSetQueuePaused:    "set_queue_paused",
	TypePruneRequests:     "prune_requests",
	TypeInitCluster:       "init_cluster",
	TypePutReservation:    "put_reservation",
	TypeDeleteReservation: "delete_reservation",
	TypeRecordScaleAction: "record_scale_action",
	TypeSetEstimate:       "set_estimate",
	TypeAppendDecisions:   "append_decisions",
	TypeOpenIntent:        "open_intent",
	TypeCloseIntent:       "close_intent",
}

// SubmitRequest adds a migration request to the queue. The state machine
// assigns its ID (returned in Result.ID) and refuses it with a
// *ConflictError when an unfinished request already moves the resource or
// one of its allocations, or came from the same OriginKey, and with
// ErrQueueFull when Limit (> 0) unfinished requests are queued.
type SubmitRequest struct {
	Request MigrationRequest `json:"request"`
	Limit   int              `json:"limit,omitempty"`
}

// UpdateRequest replaces a request whose Version is still IfVersion
// (ErrStaleVersion otherwise), if the state change is allowed. Its ID,
// resource, origin and creation time never change.
type UpdateRequest struct {
	Request   MigrationRequest `json:"request"`
	IfVersion uint64           `json:"if_version"`
}

// CancelRequest cancels a request that has not started.
type CancelRequest struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Rescore is the planner's verdict on one queued request.
type Rescore struct {
	ID    string  `json:"id"`
	Score float64 `json:"score"`
	// State, when set, is pending, waiting or reserving.
	State     RequestState  `json:"state,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Estimated time.Duration `json:"estimated,omitempty"`
}

// RescoreRequests records the planner's scores and wait reasons. Items for
// requests that are gone or have started are skipped (Result.Rejected).
type RescoreRequests struct {
	At    time.Time `json:"at"`
	Items []Rescore `json:"items"`
}

// SetQueuePaused pauses or resumes the queue: a paused queue starts no new
// move (running ones finish).
//
// A resume may name the pause it lifts (IfPausedAt and IfPausedBy, as its
// sender read them): when the queue has been paused again since, it is
// refused (ErrBadTransition) and the queue stays paused. A restore of a
// backup pauses the restored queue so that an operator reviews it first;
// a resume sent just before the restore and applied after it must not
// lift that pause unseen. A resume naming none lifts any pause.
type SetQueuePaused struct {
	Paused     bool      `json:"paused"`
	At         time.Time `json:"at"`
	By         string    `json:"by,omitempty"`
	IfPausedAt time.Time `json:"if_paused_at,omitzero"`
	IfPausedBy string    `json:"if_paused_by,omitempty"`
}

// PruneRequests forgets finished requests: the ones IDs lists or, when it
// lists none, every one that finished before FinishedBefore. A request an
// open intent names is kept whatever the command says. The closed intents
// of a forgotten request and its released reservations go with it.
type PruneRequests struct {
	FinishedBefore time.Time `json:"finished_before"`
	IDs            []string  `json:"ids,omitempty"`
}

// InitCluster records the foreshape cluster's identity, chosen once by the
// first leader; later ones change nothing.
type InitCluster struct {
	ID string `json:"id"`
}

// PutReservation creates a reservation (empty ID; the state machine assigns
// one, returned in Result.ID) or replaces one whose Version is IfVersion.
type PutReservation struct {
	Reservation Reservation `json:"reservation"`
	IfVersion   uint64      `json:"if_version,omitempty"`
}

// DeleteReservation forgets a reservation whose placeholder is gone.
type DeleteReservation struct {
	ID string `json:"id"`
}

// RecordScaleAction adds a scale action (empty ID; Result.ID) or replaces
// one. The cooldown of its scale block runs from the latest time one of its
// actions took effect, or was decided while still in flight
// (ScaleAction.CooldownFrom); a failed action starts none.
type RecordScaleAction struct {
	Action ScaleAction `json:"action"`
}

// SetEstimate stores a learned duration; the leader computes it.
type SetEstimate struct {
	Estimate Estimate `json:"estimate"`
}

// AppendDecisions adds entries to the bounded decision log.
type AppendDecisions struct {
	Decisions []Decision `json:"decisions"`
}

// OpenIntent announces a side effect before it is performed. An intent
// whose ID exists already changes nothing (Result.Applied 0): its effect
// was announced before, and must not be performed again.
type OpenIntent struct {
	Intent Intent `json:"intent"`
}

// CloseIntent records an intent's outcome; closing a closed intent changes
// nothing.
type CloseIntent struct {
	ID      string        `json:"id"`
	Outcome IntentOutcome `json:"outcome"`
	Error   string        `json:"error,omitempty"`
	At      time.Time     `json:"at"`
}

// Type implements Command.
func (SubmitRequest) Type() CommandType     { return TypeSubmitRequest }
func (UpdateRequest) Type() CommandType     { return TypeUpdateRequest }
func (CancelRequest) Type() CommandType     { return TypeCancelRequest }
func (RescoreRequests) Type() CommandType   { return TypeRescoreRequests }
func (SetQueuePaused) Type() CommandType    { return TypeSetQueuePaused }
func (PruneRequests) Type() CommandType     { return TypePruneRequests }
func (InitCluster) Type() CommandType       { return TypeInitCluster }
func (PutReservation) Type() CommandType    { return TypePutReservation }
func (DeleteReservation) Type() CommandType { return TypeDeleteReservation }
func (RecordScaleAction) Type() CommandType { return TypeRecordScaleAction }
func (SetEstimate) Type() CommandType       { return TypeSetEstimate }
func (AppendDecisions) Type() CommandType   { return TypeAppendDecisions }
func (OpenIntent) Type() CommandType        { return TypeOpenIntent }
func (CloseIntent) Type() CommandType       { return TypeCloseIntent }

func (c SubmitRequest) encode(e *encoder)     { encodeJSON(e, c) }
func (c UpdateRequest) encode(e *encoder)     { encodeJSON(e, c) }
func (c CancelRequest) encode(e *encoder)     { encodeJSON(e, c) }
func (c RescoreRequests) encode(e *encoder)   { encodeJSON(e, c) }
func (c SetQueuePaused) encode(e *encoder)    { encodeJSON(e, c) }
func (c PruneRequests) encode(e *encoder)     { encodeJSON(e, c) }
func (c InitCluster) encode(e *encoder)       { encodeJSON(e, c) }
func (c PutReservation) encode(e *encoder)    { encodeJSON(e, c) }
func (c DeleteReservation) encode(e *encoder) { encodeJSON(e, c) }
func (c RecordScaleAction) encode(e *encoder) { encodeJSON(e, c) }
func (c SetEstimate) encode(e *encoder)       { encodeJSON(e, c) }
func (c AppendDecisions) encode(e *encoder)   { encodeJSON(e, c) }
func (c OpenIntent) encode(e *encoder)        { encodeJSON(e, c) }
func (c CloseIntent) encode(e *encoder)       { encodeJSON(e, c) }

func encodeJSON(e *encoder, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every act command is plain data; one that does not encode
		// carries a number JSON cannot hold (a NaN score): a bug
		// upstream, which fails this write (Marshal) rather than the
		// server.
		if e.err == nil {
			e.err = fmt.Errorf("state: encode %T: %w", v, err)
		}
		return
	}
	e.str(string(b))
}

func decodeJSON[T any](d *decoder) T {
	var v T
	s := d.str()
	if d.err != nil {
		return v
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		d.fail(err)
	}
	return v
}

// decodeAct decodes the payload of an act command type, or reports that t
// is not one.
func decodeAct(t CommandType, d *decoder) (Command, bool) {
	switch t {
	case TypeSubmitRequest:
		return decodeJSON[SubmitRequest](d), true
	case TypeUpdateRequest:
		return decodeJSON[UpdateRequest](d), true
	case TypeCancelRequest:
		return decodeJSON[CancelRequest](d), true
	case TypeRescoreRequests:
		return decodeJSON[RescoreRequests](d), true
	case TypeSetQueuePaused:
		return decodeJSON[SetQueuePaused](d), true
	case TypePruneRequests:
		return decodeJSON[PruneRequests](d), true
	case TypeInitCluster:
		return decodeJSON[InitCluster](d), true
	case TypePutReservation:
		return decodeJSON[PutReservation](d), true
	case TypeDeleteReservation:
		return decodeJSON[DeleteReservation](d), true
	case TypeRecordScaleAction:
		return decodeJSON[RecordScaleAction](d), true
	case TypeSetEstimate:
		return decodeJSON[SetEstimate](d), true
	case TypeAppendDecisions:
		return decodeJSON[AppendDecisions](d), true
	case TypeOpenIntent:
		return decodeJSON[OpenIntent](d), true
	case TypeCloseIntent:
		return decodeJSON[CloseIntent](d), true
	}
	return nil, false
}

// applyAct applies an act command to the act store.
func (s *actStore) apply(cmd Command, index uint64) (res Result, err error, ok bool) {
	defer func() {
		if ok && err == nil && (res.Applied > 0 || res.Rejected == 0) {
			s.modified = index
		}
	}()
	res = Result{Index: index, Type: cmd.Type()}
	switch c := cmd.(type) {
	case SubmitRequest:
		res.ID, err = s.submit(c, index)
	case UpdateRequest:
		err = s.update(c, index)
		res.ID = c.Request.ID
	case CancelRequest:
		err = s.cancel(c, index)
		res.ID = c.ID
	case RescoreRequests:
		res.Applied, res.Rejected = s.rescore(c, index)
		return res, nil, true
	case SetQueuePaused:
		if err = s.resumes(c); err == nil {
			s.paused, s.pausedAt, s.pausedBy = c.Paused, c.At, bound(c.By)
		}
	case PruneRequests:
		res.Applied = s.prune(c)
		return res, nil, true
	case InitCluster:
		if c.ID == "" {
			err = fmt.Errorf("%w: empty cluster ID", ErrInvalid)
		} else if s.clusterID == "" {
			s.clusterID = c.ID
		} else {
			return res, nil, true
		}
		res.ID = s.clusterID
	case PutReservation:
		res.ID, err = s.putReservation(c, index)
	case DeleteReservation:
		if _, ok := s.reservations[c.ID]; !ok {
			res.Rejected = 1
			return res, nil, true
		}
		delete(s.reservations, c.ID)
		res.ID = c.ID
	case RecordScaleAction:
		res.ID, err = s.recordScale(c)
	case SetEstimate:
		if c.Estimate.Key == "" || c.Estimate.Mean < 0 {
			err = fmt.Errorf("%w: estimate key %q, mean %v", ErrInvalid, c.Estimate.Key, c.Estimate.Mean)
		} else {
			s.estimates[c.Estimate.Key] = c.Estimate
		}
	case AppendDecisions:
		s.appendDecisions(c.Decisions)
		res.Applied = len(c.Decisions)
		return res, nil, true
	case OpenIntent:
		res.ID = c.Intent.ID
		res.Applied, err = s.openIntent(c)
		if err == nil && res.Applied == 0 {
			res.Rejected = 1
		}
		return res, err, true
	case CloseIntent:
		res.ID = c.ID
		res.Applied, err = s.closeIntent(c)
		if err == nil && res.Applied == 0 {
			res.Rejected = 1
		}
		return res, err, true
	default:
		return res, nil, false
	}
	if err == nil {
		res.Applied = 1
	}
	return res, err, true
}
