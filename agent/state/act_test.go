package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// request builds a pending allocation request; apply tweaks it.
func request(alloc string, apply ...func(*MigrationRequest)) MigrationRequest {
	r := MigrationRequest{
		Resource: Resource{Kind: ResourceAllocation, ID: alloc, Job: "web", Group: "frontend", Namespace: "default"},
		Source:   "dc1", Target: "dc2", Strategy: "reschedule", Origin: "operator",
		Moved:   Resources{CPU: 500, MemoryMB: 256},
		Moves:   []Move{{Alloc: alloc, Job: "web", Group: "frontend", Node: "n1", Size: Resources{CPU: 500, MemoryMB: 256}}},
		Created: at(0),
	}
	for _, f := range apply {
		f(&r)
	}
	return r
}

func local(t testing.TB) *Local {
	t.Helper()
	l, err := NewLocal(Config{Tiers: smallTiers})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustApply(t testing.TB, l *Local, c Command) Result {
	t.Helper()
	r, err := l.Apply(context.Background(), c)
	if err != nil {
		t.Fatalf("apply %s: %v", c.Type(), err)
	}
	return r
}

func TestSubmitRequest(t *testing.T) {
	tests := []struct {
		name    string
		before  []SubmitRequest
		submit  SubmitRequest
		wantID  string
		wantErr error
		// conflictWith is the request a conflict must name.
		conflictWith string
	}{
		{name: "first", submit: SubmitRequest{Request: request("a1")}, wantID: "mr-1"},
		{name: "second gets the next id", before: []SubmitRequest{{Request: request("a1")}},
			submit: SubmitRequest{Request: request("a2")}, wantID: "mr-2"},
		{name: "same allocation", before: []SubmitRequest{{Request: request("a1")}},
			submit: SubmitRequest{Request: request("a1")}, wantErr: ErrConflict, conflictWith: "mr-1"},
		{name: "node holding a queued allocation", before: []SubmitRequest{{Request: request("a1")}},
			submit: SubmitRequest{Request: request("n1", func(r *MigrationRequest) {
				r.Resource = Resource{Kind: ResourceNode, ID: "n1"}
				r.Moves = []Move{{Alloc: "a0", Job: "j", Group: "g", Node: "n1"}, {Alloc: "a1", Job: "web", Group: "frontend", Node: "n1"}}
			})}, wantErr: ErrConflict, conflictWith: "mr-1"},
		{name: "same origin key", before: []SubmitRequest{{Request: request("a1", func(r *MigrationRequest) { r.OriginKey = "w1" })}},
			submit: SubmitRequest{Request: request("a2", func(r *MigrationRequest) { r.OriginKey = "w1" })}, wantErr: ErrConflict, conflictWith: "mr-1"},
		{name: "queue full", before: []SubmitRequest{{Request: request("a1")}, {Request: request("a2")}},
			submit: SubmitRequest{Request: request("a3"), Limit: 2}, wantErr: ErrQueueFull},
		{name: "room under the limit", before: []SubmitRequest{{Request: request("a1")}},
			submit: SubmitRequest{Request: request("a3"), Limit: 2}, wantID: "mr-2"},
		{name: "unknown kind", submit: SubmitRequest{Request: request("a1", func(r *MigrationRequest) { r.Resource.Kind = "pod" })}, wantErr: ErrInvalid},
		{name: "no target", submit: SubmitRequest{Request: request("a1", func(r *MigrationRequest) { r.Target = "" })}, wantErr: ErrInvalid},
		{name: "priority above 100", submit: SubmitRequest{Request: request("a1", func(r *MigrationRequest) { r.Priority = 101 })}, wantErr: ErrInvalid},
		{name: "group without job", submit: SubmitRequest{Request: request("", func(r *MigrationRequest) {
			r.Resource = Resource{Kind: ResourceGroup, Group: "g"}
			r.Moves = nil
		})}, wantErr: ErrInvalid},
		{name: "born running", submit: SubmitRequest{Request: request("a1", func(r *MigrationRequest) { r.State = RequestRunning })}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := local(t)
			for _, b := range tt.before {
				mustApply(t, l, b)
			}
			before := l.FSM.Act()
			res, err := l.Apply(context.Background(), tt.submit)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v; want %v", err, tt.wantErr)
				}
				var ce *ConflictError
				if tt.conflictWith != "" && (!errors.As(err, &ce) || ce.Existing != tt.conflictWith) {
					t.Errorf("conflict %v does not name %s", err, tt.conflictWith)
				}
				// A refused command changes nothing but the applied index.
				after := l.FSM.Act()
				before.Index, after.Index = 0, 0
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("a refused submission changed the state:\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.ID != tt.wantID {
				t.Errorf("id %q; want %q", res.ID, tt.wantID)
			}
			got, ok := l.FSM.Act().Request(res.ID)
			if !ok || got.State != RequestPending || got.Version != res.Index {
				t.Errorf("stored %+v", got)
			}
		})
	}
}

func TestConflictMessageNamesTheRequest(t *testing.T) {
	l := local(t)
	mustApply(t, l, SubmitRequest{Request: request("0123456789abcdef", func(r *MigrationRequest) { r.Resource.Name = "web.frontend[3]" })})
	_, err := l.Apply(context.Background(), SubmitRequest{Request: request("0123456789abcdef")})
	if err == nil || !strings.Contains(err.Error(), "mr-1") || !strings.Contains(err.Error(), "0123456789abcdef") {
		t.Errorf("conflict %q should name the allocation and mr-1", err)
	}
}

// A node whose allocation another request (for its group) already moves
// is refused naming the allocation and that request's resource, not as if
// the node itself were queued.
func TestConflictThroughASharedAllocation(t *testing.T) {
	l := local(t)
	mustApply(t, l, SubmitRequest{Request: request("a1", func(r *MigrationRequest) {
		r.Resource = Resource{Kind: ResourceGroup, Namespace: "default", Job: "web", Group: "frontend"}
		r.Moves[0].Name = "web.frontend[0]"
	})})
	_, err := l.Apply(context.Background(), SubmitRequest{Request: request("n1", func(r *MigrationRequest) {
		r.Resource = Resource{Kind: ResourceNode, ID: "n1", Name: "dc1-rack-b-1"}
		r.Moves = []Move{{Alloc: "a0", Job: "j", Group: "g", Node: "n1"}, {Alloc: "a1", Name: "web.frontend[0]", Job: "web", Group: "frontend", Node: "n1"}}
	})})
	want := "node dc1-rack-b-1 moves allocation web.frontend[0] (a1), which mr-1 (pending) already moves: it is queued for group default/web/frontend"
	if err == nil || !strings.HasSuffix(err.Error(), ": "+want) {
		t.Errorf("conflict %q, want one ending %q", err, want)
	}
}

func TestUpdateRequest(t *testing.T) {
	setup := func(t *testing.T) (*Local, MigrationRequest) {
		l := local(t)
		id := mustApply(t, l, SubmitRequest{Request: request("a1")}).ID
		r, _ := l.FSM.Act().Request(id)
		return l, r
	}
	tests := []struct {
		name    string
		change  func(r *MigrationRequest) uint64 // returns IfVersion
		wantErr error
		check   func(t *testing.T, r MigrationRequest)
	}{
		{name: "start", change: func(r *MigrationRequest) uint64 {
			v := r.Version
			r.State, r.Started = RequestRunning, at(time.Minute)
			return v
		}, check: func(t *testing.T, r MigrationRequest) {
			if r.State != RequestRunning || !r.Started.Equal(at(time.Minute)) {
				t.Errorf("%+v", r)
			}
		}},
		{name: "stale version", change: func(r *MigrationRequest) uint64 {
			r.State = RequestWaiting
			return r.Version - 1
		}, wantErr: ErrStaleVersion},
		{name: "pending to done", change: func(r *MigrationRequest) uint64 {
			r.State = RequestDone
			return r.Version
		}, wantErr: ErrBadTransition},
		{name: "identity is kept", change: func(r *MigrationRequest) uint64 {
			r.Resource.ID, r.Origin, r.Created = "other", "planner", at(time.Hour)
			r.Reason = strings.Repeat("x", 2*MaxReason)
			return r.Version
		}, check: func(t *testing.T, r MigrationRequest) {
			if r.Resource.ID != "a1" || r.Origin != "operator" || !r.Created.Equal(at(0)) {
				t.Errorf("identity changed: %+v", r)
			}
			if len(r.Reason) != MaxReason {
				t.Errorf("reason of %d bytes kept; want it bounded to %d", len(r.Reason), MaxReason)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, r := setup(t)
			if_ := tt.change(&r)
			_, err := l.Apply(context.Background(), UpdateRequest{Request: r, IfVersion: if_})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v; want %v", err, tt.wantErr)
			}
			got, _ := l.FSM.Act().Request(r.ID)
			if tt.wantErr != nil {
				if got.State != RequestPending {
					t.Errorf("refused update changed the request: %+v", got)
				}
				return
			}
			tt.check(t, got)
		})
	}
}

func TestFinishedRequestFreesItsResource(t *testing.T) {
	l := local(t)
	id := mustApply(t, l, SubmitRequest{Request: request("a1")}).ID
	r, _ := l.FSM.Act().Request(id)
	r.State = RequestRunning
	mustApply(t, l, UpdateRequest{Request: r, IfVersion: r.Version})
	r, _ = l.FSM.Act().Request(id)
	if _, err := l.Apply(context.Background(), CancelRequest{ID: id, At: at(time.Minute)}); !errors.Is(err, ErrBadTransition) {
		t.Errorf("cancel of a running request: %v; want ErrBadTransition", err)
	}
	r.State, r.Finished = RequestDone, at(time.Minute)
	mustApply(t, l, UpdateRequest{Request: r, IfVersion: r.Version})
	if _, err := l.Apply(context.Background(), SubmitRequest{Request: request("a1")}); err != nil {
		t.Errorf("resubmitting a moved allocation: %v", err)
	}
	// Pruning forgets the finished one but keeps the new one.
	res := mustApply(t, l, PruneRequests{FinishedBefore: at(2 * time.Minute)})
	if res.Applied != 1 || len(l.FSM.Act().Requests) != 1 {
		t.Errorf("prune: %+v, %d left", res, len(l.FSM.Act().Requests))
	}
}

func TestCancelAndRescore(t *testing.T) {
	l := local(t)
	a := mustApply(t, l, SubmitRequest{Request: request("a1")}).ID
	b := mustApply(t, l, SubmitRequest{Request: request("a2")}).ID
	c := mustApply(t, l, SubmitRequest{Request: request("a3")}).ID
	mustApply(t, l, CancelRequest{ID: b, At: at(time.Minute), Reason: "operator"})
	rb, _ := l.FSM.Act().Request(b)
	if rb.State != RequestCancelled || !rb.Finished.Equal(at(time.Minute)) {
		t.Errorf("cancelled: %+v", rb)
	}
	if _, err := l.Apply(context.Background(), CancelRequest{ID: b}); !errors.Is(err, ErrBadTransition) {
		t.Errorf("second cancel: %v", err)
	}
	if _, err := l.Apply(context.Background(), CancelRequest{ID: "mr-99"}); !errors.Is(err, ErrUnknownRequest) {
		t.Errorf("unknown cancel: %v", err)
	}
	res := mustApply(t, l, RescoreRequests{At: at(2 * time.Minute), Items: []Rescore{
		{ID: a, Score: 3.5, State: RequestWaiting, Reason: "dc2 congested"},
		{ID: b, Score: 1},                        // cancelled: skipped
		{ID: c, Score: 2, State: RequestRunning}, // not the planner's to set
		{ID: "mr-99", Score: 1},
	}})
	if res.Applied != 1 || res.Rejected != 3 {
		t.Errorf("rescore: %+v; want 1 applied, 3 rejected", res)
	}
	ra, _ := l.FSM.Act().Request(a)
	if ra.Score != 3.5 || ra.State != RequestWaiting || ra.Reason != "dc2 congested" {
		t.Errorf("rescored: %+v", ra)
	}
}

func TestIntentsDeduplicate(t *testing.T) {
	l := local(t)
	in := Intent{ID: "stop/a1#1", Kind: IntentStopAlloc, Object: "a1", Request: "mr-1", Opened: at(0)}
	if r := mustApply(t, l, OpenIntent{Intent: in}); r.Applied != 1 {
		t.Fatalf("first open: %+v", r)
	}
	// A retried Apply of the same intent announces nothing new.
	if r := mustApply(t, l, OpenIntent{Intent: in}); r.Applied != 0 || r.Rejected != 1 {
		t.Errorf("second open: %+v; want nothing applied", r)
	}
	if got := l.FSM.Act().OpenIntents; len(got) != 1 || got[0].ID != in.ID {
		t.Errorf("open intents %+v", got)
	}
	mustApply(t, l, CloseIntent{ID: in.ID, Outcome: OutcomeDone, At: at(time.Second)})
	if r := mustApply(t, l, CloseIntent{ID: in.ID, Outcome: OutcomeFailed, At: at(2 * time.Second)}); r.Applied != 0 {
		t.Errorf("closing twice changed it: %+v", r)
	}
	got, _ := l.FSM.Intent(in.ID)
	if got.Outcome != OutcomeDone || !got.Closed.Equal(at(time.Second)) {
		t.Errorf("closed intent %+v", got)
	}
	// Reopening a closed intent's ID is refused as well: its effect
	// happened.
	if r := mustApply(t, l, OpenIntent{Intent: in}); r.Applied != 0 {
		t.Errorf("reopen after close: %+v", r)
	}
	if _, err := l.Apply(context.Background(), CloseIntent{ID: "nope", Outcome: OutcomeDone}); !errors.Is(err, ErrInvalid) {
		t.Errorf("close of an unknown intent: %v", err)
	}
	// Closed intents are kept up to a bound.
	for i := range MaxClosedIntents + 5 {
		id := fmt.Sprintf("x%d", i)
		mustApply(t, l, OpenIntent{Intent: Intent{ID: id, Kind: IntentStopAlloc, Object: id}})
		mustApply(t, l, CloseIntent{ID: id, Outcome: OutcomeDone})
	}
	if n := len(l.FSM.Intents()); n != MaxClosedIntents {
		t.Errorf("%d intents kept; want %d", n, MaxClosedIntents)
	}
}

func TestScaleCooldown(t *testing.T) {
	l := local(t)
	key := CooldownKey("web", "frontend")
	id := mustApply(t, l, RecordScaleAction{Action: ScaleAction{Policy: "web", Scale: "frontend", At: at(time.Minute), Direction: "up", Amount: 2}}).ID
	if got := l.FSM.Act().Cooldowns[key]; !got.Equal(at(time.Minute)) {
		t.Errorf("cooldown from %v; want the open action's time", got)
	}
	// A failed action starts no cooldown.
	mustApply(t, l, RecordScaleAction{Action: ScaleAction{ID: id, Policy: "web", Scale: "frontend", At: at(time.Minute), Outcome: OutcomeFailed, Error: "timeout"}})
	if _, ok := l.FSM.Act().Cooldowns[key]; ok {
		t.Errorf("a failed action keeps a cooldown")
	}
	// A done action recorded without TookEffect (by a leader before it
	// existed) starts its cooldown at its decision time.
	mustApply(t, l, RecordScaleAction{Action: ScaleAction{Policy: "web", Scale: "frontend", At: at(3 * time.Minute), Outcome: OutcomeDone}})
	if got := l.FSM.Act().Cooldowns[key]; !got.Equal(at(3 * time.Minute)) {
		t.Errorf("cooldown from %v", got)
	}
}

// A scale refused during a deployment and retried by its target takes
// effect after its decision: the cooldown runs from the effect, as Nomad
// Autoscaler's does, not from the decision.
func TestScaleCooldownRunsFromTheEffect(t *testing.T) {
	key := CooldownKey("web", "frontend")
	decided := ScaleAction{Policy: "web", Scale: "frontend", At: at(10 * time.Minute), Direction: "up", Amount: 1, Count: 3}
	tests := []struct {
		name    string
		outcome func(a *ScaleAction)
		want    time.Time // zero: no cooldown
	}{
		{"in flight: from the decision", func(a *ScaleAction) {}, at(10 * time.Minute)},
		{"accepted at once", func(a *ScaleAction) {
			a.Outcome, a.Finished, a.TookEffect, a.Attempts = OutcomeDone, at(10*time.Minute), at(10*time.Minute), 1
		}, at(10 * time.Minute)},
		{"refused during a deployment, retried after it", func(a *ScaleAction) {
			a.Outcome, a.Finished, a.TookEffect, a.Attempts = OutcomeDone, at(15*time.Minute+10*time.Second), at(15*time.Minute+10*time.Second), 2
		}, at(15*time.Minute + 10*time.Second)},
		{"refused after the wait", func(a *ScaleAction) {
			a.Outcome, a.Finished, a.Error, a.Attempts = OutcomeFailed, at(20*time.Minute), "deployment still active", 2
		}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := local(t)
			a := decided
			a.ID = mustApply(t, l, RecordScaleAction{Action: a}).ID
			tt.outcome(&a)
			mustApply(t, l, RecordScaleAction{Action: a})
			got, ok := l.FSM.Act().Cooldowns[key]
			if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Errorf("cooldown from %v (%v); want %v", got, ok, tt.want)
			}
			// The cooldown survives a snapshot and restore.
			b := newFSM(t, smallTiers)
			if err := b.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, l.FSM)))); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(l.FSM.Act(), b.Act()); diff != "" {
				t.Errorf("restored act state differs (-want +got):\n%s", diff)
			}
		})
	}
	// A later action that took effect earlier than the latest one does not
	// shorten the cooldown.
	l := local(t)
	first := decided
	first.Outcome, first.TookEffect = OutcomeDone, at(30*time.Minute)
	mustApply(t, l, RecordScaleAction{Action: first})
	second := decided
	second.At, second.Outcome, second.TookEffect = at(20*time.Minute), OutcomeDone, at(25*time.Minute)
	mustApply(t, l, RecordScaleAction{Action: second})
	if got := l.FSM.Act().Cooldowns[key]; !got.Equal(at(30 * time.Minute)) {
		t.Errorf("cooldown from %v; want the latest effect, %v", got, at(30*time.Minute))
	}
}

// Snapshots written before scale actions recorded when they took effect
// still restore: the record has no took_effect, and a record without one
// encodes to the same bytes as before.
func TestScaleSnapshotWithoutTookEffect(t *testing.T) {
	old := `{"id":"sa-4","policy":"web","scale":"frontend","plugin":"nomad-job","locality":"dc2","direction":"up","amount":1,` +
		`"count":3,"reason":"r","at":"2026-01-05T06:41:10Z","finished":"2026-01-05T06:41:10Z","outcome":"done","attempts":2}`
	var a ScaleAction
	if err := json.Unmarshal([]byte(old), &a); err != nil {
		t.Fatal(err)
	}
	if !a.TookEffect.IsZero() {
		t.Errorf("took effect %v", a.TookEffect)
	}
	if from, ok := a.CooldownFrom(); !ok || !from.Equal(a.At) {
		t.Errorf("an old record's cooldown from %v (%v); want its decision time", from, ok)
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != old {
		t.Errorf("re-encoded as\n%s\nwant\n%s", b, old)
	}
}

func TestDecisionRingIsBounded(t *testing.T) {
	l := local(t)
	for i := range MaxDecisions + 10 {
		mustApply(t, l, AppendDecisions{Decisions: []Decision{{Time: at(time.Duration(i) * time.Second), Kind: "wait", Reason: fmt.Sprint(i)}}})
	}
	ds := l.FSM.Decisions()
	if len(ds) != MaxDecisions || ds[0].Reason != "10" || ds[len(ds)-1].Reason != fmt.Sprint(MaxDecisions+9) {
		t.Errorf("%d decisions from %q to %q", len(ds), ds[0].Reason, ds[len(ds)-1].Reason)
	}
}

func TestReservations(t *testing.T) {
	l := local(t)
	res := Reservation{Request: "mr-1", Policy: "p", Locality: "dc2", State: ReservationPlanned,
		Chunks: []Chunk{{Size: Resources{CPU: 500, MemoryMB: 256}, Count: 2}, {Size: Resources{CPU: 1000, MemoryMB: 1024}, Count: 1}}}
	r := mustApply(t, l, PutReservation{Reservation: res})
	if r.ID != "rs-1" {
		t.Fatalf("id %q", r.ID)
	}
	got := l.FSM.Act().Reservations[0]
	if got.Job != PlaceholderPrefix+"rs-1" || got.Total() != (Resources{CPU: 2000, MemoryMB: 1536}) {
		t.Errorf("reservation %+v total %v", got, got.Total())
	}
	got.Chunks[0].Count = 1
	got.State = ReservationHeld
	if _, err := l.Apply(context.Background(), PutReservation{Reservation: got, IfVersion: got.Version + 1}); !errors.Is(err, ErrStaleVersion) {
		t.Errorf("stale update: %v", err)
	}
	mustApply(t, l, PutReservation{Reservation: got, IfVersion: got.Version})
	if h, ok := l.FSM.Act().ReservationFor("mr-1"); !ok || h.Total().CPU != 1500 || h.State != ReservationHeld {
		t.Errorf("after hand-over: %+v", h)
	}
	if r := mustApply(t, l, DeleteReservation{ID: "rs-1"}); r.Applied != 1 {
		t.Errorf("delete: %+v", r)
	}
	if r := mustApply(t, l, DeleteReservation{ID: "rs-1"}); r.Applied != 0 || r.Rejected != 1 {
		t.Errorf("second delete: %+v", r)
	}
}

// actLog is a log touching every act command.
func actLog() [][]byte {
	req := request("a1")
	req2 := request("a2", func(r *MigrationRequest) { r.OriginKey = "drain/p/s/1" })
	upd := req
	upd.ID, upd.State, upd.Started, upd.Version = "mr-1", RequestRunning, at(time.Minute), 2
	return [][]byte{
		Encode(InitCluster{ID: "c-1"}),
		Encode(SubmitRequest{Request: req}),
		Encode(SubmitRequest{Request: req2, Limit: 10}),
		Encode(UpdateRequest{Request: upd, IfVersion: 2}),
		Encode(RescoreRequests{At: at(time.Minute), Items: []Rescore{{ID: "mr-2", Score: 1.25, State: RequestWaiting, Reason: "why"}}}),
		Encode(SetQueuePaused{Paused: true, At: at(2 * time.Minute), By: "operator"}),
		Encode(PutReservation{Reservation: Reservation{Request: "mr-2", Policy: "p", Locality: "dc2", State: ReservationHeld,
			Chunks: []Chunk{{Size: Resources{CPU: 500, MemoryMB: 256}, Count: 1}}, From: at(time.Hour), Until: at(2 * time.Hour), Expires: at(3 * time.Hour)}}),
		Encode(RecordScaleAction{Action: ScaleAction{Policy: "p", Scale: "s", Plugin: "nomad-job", At: at(time.Minute), Direction: "up", Amount: 1}}),
		Encode(RecordScaleAction{Action: ScaleAction{Policy: "p", Scale: "s", Plugin: "nomad-job", At: at(2 * time.Minute), Direction: "up", Amount: 1,
			Outcome: OutcomeDone, Finished: at(4 * time.Minute), TookEffect: at(4 * time.Minute), Attempts: 2}}),
		Encode(SetEstimate{Estimate: Estimate{Key: "dc1>dc2/8", Mean: 40 * time.Second, Samples: 3, Last: 35 * time.Second}}),
		Encode(AppendDecisions{Decisions: []Decision{{Time: at(time.Minute), Kind: "reserve", Locality: "dc2", Request: "mr-2", Reason: "because"}}}),
		Encode(OpenIntent{Intent: Intent{ID: "i1", Kind: IntentStopAlloc, Object: "a1", Opened: at(time.Minute)}}),
		Encode(OpenIntent{Intent: Intent{ID: "i2", Kind: IntentRegisterHold, Object: "foreshape-reserve-rs-1", Opened: at(time.Minute)}}),
		Encode(CloseIntent{ID: "i1", Outcome: OutcomeDone, At: at(2 * time.Minute)}),
		Encode(OpenIntent{Intent: Intent{ID: "i3", Kind: IntentDrainNode, Object: "n1", Detail: "deadline 1h0m0s", Before: NodeWasIneligible, Opened: at(time.Minute)}}),
		Encode(CloseIntent{ID: "i3", Outcome: OutcomeDone, At: at(2 * time.Minute)}),
		Encode(CancelRequest{ID: "mr-2", At: at(3 * time.Minute)}),
	}
}

func TestActCommandsRoundTrip(t *testing.T) {
	for _, b := range actLog() {
		c, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %x: %v", b[:2], err)
		}
		if !bytes.Equal(Encode(c), b) {
			t.Errorf("%s does not re-encode to the same bytes", c.Type())
		}
		if strings.HasPrefix(c.Type().String(), "command(") {
			t.Errorf("type %d has no name", c.Type())
		}
		// A broken payload is refused, not half applied.
		for _, payload := range []string{"{not json", "[1,2]"} {
			e := &encoder{buf: []byte{b[0], b[1]}}
			e.str(payload)
			if _, err := Decode(e.buf); !errors.Is(err, ErrMalformedPayload) {
				t.Errorf("%s: payload %q: %v; want ErrMalformedPayload", c.Type(), payload, err)
			}
		}
		if _, err := Decode(b[:len(b)-1]); !errors.Is(err, ErrMalformedPayload) {
			t.Errorf("%s: truncated payload: %v; want ErrMalformedPayload", c.Type(), err)
		}
	}
}

func TestActSnapshotRoundTrip(t *testing.T) {
	a := local(t)
	for _, l := range logOf(1, actLog()...) {
		if err, ok := a.FSM.Apply(l).(error); ok {
			t.Fatalf("apply index %d: %v", l.Index, err)
		}
	}
	snap := snapshotBytes(t, a.FSM)
	b := newFSM(t, smallTiers)
	if err := b.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a.FSM.Act(), b.Act()); diff != "" {
		t.Errorf("restored act state differs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(a.FSM.Intents(), b.Intents()); diff != "" {
		t.Errorf("restored intents differ:\n%s", diff)
	}
	// What a node was before a drain survives a snapshot (a window's end
	// on a new leader reads it).
	if in, ok := b.Intent("i3"); !ok || in.Before != NodeWasIneligible || in.Outcome != OutcomeDone {
		t.Errorf("restored drain intent %+v; want done, before %q", in, NodeWasIneligible)
	}
	if diff := cmp.Diff(a.FSM.Decisions(), b.Decisions()); diff != "" {
		t.Errorf("restored decisions differ:\n%s", diff)
	}
	if !bytes.Equal(snapshotBytes(t, b), snap) {
		t.Error("the restored state snapshots to other bytes")
	}
	// The restored indexes work: the allocation of the running request is
	// still taken, and IDs continue.
	lb := &Local{FSM: b}
	if _, err := lb.Apply(context.Background(), SubmitRequest{Request: request("a1")}); !errors.Is(err, ErrConflict) {
		t.Errorf("after restore, a1 is not known as queued: %v", err)
	}
	if r := mustApply(t, lb, SubmitRequest{Request: request("a9")}); r.ID != "mr-3" {
		t.Errorf("after restore the next id is %s; want mr-3", r.ID)
	}
}

func TestActApplyDeterministic(t *testing.T) {
	entries := logOf(1, append(actLog(), randomLog(3, 50)...)...)
	a, b := newFSM(t, smallTiers), newFSM(t, smallTiers)
	for _, l := range entries {
		a.Apply(l)
	}
	for i := 0; i < len(entries); i += 3 {
		b.ApplyBatch(entries[i:min(i+3, len(entries))])
		s, _ := b.Snapshot()
		s.Release()
	}
	if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
		t.Error("equal logs gave different snapshots")
	}
}

func TestSnapshotSkipsDecisionsButNotTheQueue(t *testing.T) {
	// The decision log is marked skippable; the queue is not.
	a := local(t)
	mustApply(t, a, AppendDecisions{Decisions: []Decision{{Kind: "wait", Reason: "r"}}})
	mustApply(t, a, SubmitRequest{Request: request("a1")})
	var flags = map[string]byte{}
	for _, sec := range a.FSM.act.sections() {
		flags[sec.name] = sec.flags
	}
	if flags[sectionDecisions]&flagSkippable == 0 || flags[sectionQueue]&flagSkippable != 0 {
		t.Errorf("section flags %v", flags)
	}
}

func TestLocalApplierHonoursContext(t *testing.T) {
	l := local(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Apply(ctx, InitCluster{ID: "x"}); err == nil {
		t.Error("apply with a cancelled context succeeded")
	}
	if l.FSM.AppliedIndex() != 0 {
		t.Error("the cancelled apply reached the FSM")
	}
}

// TestRequestsIntentsLiveWithIt: the closed intents of a request the queue
// holds outlive MaxClosedIntents (what they say is read until the request
// goes); forgetting the request takes them, and its released reservations,
// with it; a request an open intent names, or one unfinished, is kept.
func TestRequestsIntentsLiveWithIt(t *testing.T) {
	l := local(t)
	id := mustApply(t, l, SubmitRequest{Request: request("a1")}).ID
	other := mustApply(t, l, SubmitRequest{Request: request("a2")}).ID
	own := Intent{ID: "node_eligibility/n1/" + id + "#0", Kind: IntentNodeEligibility, Request: id, Object: "n1", Detail: "ineligible"}
	mustApply(t, l, OpenIntent{Intent: own})
	mustApply(t, l, CloseIntent{ID: own.ID, Outcome: OutcomeDone, At: at(time.Minute)})
	held := mustApply(t, l, PutReservation{Reservation: Reservation{Request: id, Policy: "p", Locality: "dc2", State: ReservationHeld}}).ID
	gone := mustApply(t, l, PutReservation{Reservation: Reservation{Request: id, Policy: "p", Locality: "dc2", State: ReservationReleased}}).ID
	for i := range MaxClosedIntents + 5 {
		x := fmt.Sprintf("x%d", i)
		mustApply(t, l, OpenIntent{Intent: Intent{ID: x, Kind: IntentStopAlloc, Object: x}})
		mustApply(t, l, CloseIntent{ID: x, Outcome: OutcomeDone})
	}
	if _, ok := l.FSM.Intent(own.ID); !ok {
		t.Fatalf("the queued %s's cordon intent was pruned with the oldest", id)
	}
	if n := len(l.FSM.Intents()); n != MaxClosedIntents {
		t.Errorf("%d intents kept; want %d (%s's and the newest others)", n, MaxClosedIntents, id)
	}
	// Unfinished: kept.
	if res := mustApply(t, l, PruneRequests{IDs: []string{id}}); res.Applied != 0 {
		t.Errorf("an unfinished request was forgotten: %+v", res)
	}
	for _, x := range []string{id, other} {
		mustApply(t, l, CancelRequest{ID: x, At: at(2 * time.Minute)})
	}
	// Named by an open intent: kept.
	open := Intent{ID: "stop_alloc/a2/" + other + "#0", Kind: IntentStopAlloc, Request: other, Object: "a2"}
	mustApply(t, l, OpenIntent{Intent: open})
	if res := mustApply(t, l, PruneRequests{IDs: []string{id, other}}); res.Applied != 1 {
		t.Errorf("forgot %d; want 1 (%s, not %s whose intent is open)", res.Applied, id, other)
	}
	if _, ok := l.FSM.Act().Request(id); ok {
		t.Errorf("%s still queued", id)
	}
	if _, ok := l.FSM.Act().Request(other); !ok {
		t.Errorf("%s forgotten while an intent of it is open", other)
	}
	if _, ok := l.FSM.Intent(own.ID); ok {
		t.Errorf("%s's intent outlived it", id)
	}
	var left []string
	for _, rs := range l.FSM.Act().Reservations {
		left = append(left, rs.ID)
	}
	if !slices.Equal(left, []string{held}) {
		t.Errorf("reservations %v; want only the held %s (the released %s goes with its request)", left, held, gone)
	}
	// The same origin may queue again once its request is forgotten.
	if _, err := l.Apply(context.Background(), SubmitRequest{Request: request("a1")}); err != nil {
		t.Errorf("resubmitting after forgetting: %v", err)
	}
}

// TestOpenIntentsAreTheOpenOnes: the view's open intents are, after every
// change (opening, closing, the bound on closed ones, forgetting a
// request, a snapshot's restore), exactly the kept intents with no
// outcome, by ID.
func TestOpenIntentsAreTheOpenOnes(t *testing.T) {
	l := local(t)
	r := rand.New(rand.NewPCG(7, 11))
	check := func(when string) {
		t.Helper()
		var want []Intent
		for _, in := range l.FSM.Intents() {
			if in.Open() {
				want = append(want, in)
			}
		}
		if diff := cmp.Diff(want, l.FSM.Act().OpenIntents); diff != "" {
			t.Fatalf("%s: open intents (-want +got):\n%s", when, diff)
		}
	}
	var reqs, opened []string
	for i := range 400 {
		switch p := r.IntN(10); {
		case p < 2:
			reqs = append(reqs, mustApply(t, l, SubmitRequest{Request: request(fmt.Sprintf("a%d", i))}).ID)
		case p < 6 && len(reqs) > 0:
			id := fmt.Sprintf("in-%d", i)
			mustApply(t, l, OpenIntent{Intent: Intent{ID: id, Kind: IntentStopAlloc, Object: id, Request: reqs[r.IntN(len(reqs))]}})
			opened = append(opened, id)
		case p < 9 && len(opened) > 0:
			// An intent forgotten with its request is no longer known.
			if _, err := l.Apply(context.Background(), CloseIntent{ID: opened[r.IntN(len(opened))], Outcome: OutcomeDone, At: at(time.Duration(i) * time.Second)}); err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatal(err)
			}
		case len(reqs) > 0:
			id := reqs[r.IntN(len(reqs))]
			if _, err := l.Apply(context.Background(), CancelRequest{ID: id, At: at(time.Duration(i) * time.Second)}); err != nil && !errors.Is(err, ErrUnknownRequest) && !errors.As(err, new(*TransitionError)) {
				t.Fatal(err)
			}
			mustApply(t, l, PruneRequests{IDs: []string{id}})
		}
		check(fmt.Sprintf("step %d", i))
	}
	b := newFSM(t, smallTiers)
	if err := b.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, l.FSM)))); err != nil {
		t.Fatal(err)
	}
	l = &Local{FSM: b}
	check("after a restore")
	for _, id := range opened {
		if _, err := l.Apply(context.Background(), CloseIntent{ID: id, Outcome: OutcomeFailed, At: at(time.Hour)}); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatal(err)
		}
	}
	check("all closed after a restore")
}

// TestPointReadsMatchTheView: the FSM's single-item reads (ClusterID,
// QueuePaused, Request, ReservationFor, Estimate) answer what the same
// read of the whole view answers, the first unreleased reservation in
// creation order included when a request has several (rs-9 before rs-10,
// which sorts first as a string).
func TestPointReadsMatchTheView(t *testing.T) {
	l := local(t)
	for _, e := range logOf(1, actLog()...) {
		if err, ok := l.FSM.Apply(e).(error); ok {
			t.Fatalf("apply index %d: %v", e.Index, err)
		}
	}
	// actLog holds rs-1 (mr-2's); rs-2 to rs-8 are mr-9's, released, and
	// rs-9 and rs-10 mr-9's, held.
	for i := 2; i <= 10; i++ {
		st := ReservationReleased
		if i >= 9 {
			st = ReservationHeld
		}
		mustApply(t, l, PutReservation{Reservation: Reservation{Request: "mr-9", Policy: "p", Locality: "dc2", State: st}})
	}
	v := l.FSM.Act()
	if got := l.FSM.ClusterID(); got != v.ClusterID || got == "" {
		t.Errorf("cluster ID %q, the view's %q", got, v.ClusterID)
	}
	if got := l.FSM.QueuePaused(); got != v.Paused || !got {
		t.Errorf("paused %v, the view's %v", got, v.Paused)
	}
	for _, id := range []string{"mr-1", "mr-2", "mr-3", "mr-9"} {
		got, ok := l.FSM.Request(id)
		want, wok := v.Request(id)
		if ok != wok || !cmp.Equal(got, want) {
			t.Errorf("request %s: %v %+v, the view's %v %+v", id, ok, got, wok, want)
		}
		gr, ok := l.FSM.ReservationFor(id)
		wr, wok := v.ReservationFor(id)
		if ok != wok || !cmp.Equal(gr, wr) {
			t.Errorf("reservation for %s: %v %s, the view's %v %s", id, ok, gr.ID, wok, wr.ID)
		}
	}
	if r, _ := l.FSM.ReservationFor("mr-9"); r.ID != "rs-9" {
		t.Errorf("mr-9's reservation %s; want rs-9", r.ID)
	}
	for _, key := range []string{"dc1>dc2/8", "none"} {
		got, ok := l.FSM.Estimate(key)
		want, wok := v.Estimates[key]
		if ok != wok || got != want {
			t.Errorf("estimate %s: %v %+v, the view's %v %+v", key, ok, got, wok, want)
		}
	}
}

// TestActViewsAreIndependent: a view's requests share nothing with the
// state or with each other: a move changed in one view, or appended to
// one request's moves, changes neither the next request nor a later view.
func TestActViewsAreIndependent(t *testing.T) {
	l := local(t)
	for _, a := range []string{"a1", "a2", "a3"} {
		mustApply(t, l, SubmitRequest{Request: request(a)})
	}
	v := l.FSM.Act()
	v.Requests[0].Moves = append(v.Requests[0].Moves, Move{Alloc: "extra", Node: "n9"})
	v.Requests[1].Moves[0].Node = "changed"
	if got := v.Requests[1].Moves; len(got) != 1 || got[0].Alloc != "a2" || got[0].Node != "changed" {
		t.Errorf("the second request's moves after an append to the first's: %+v", got)
	}
	if got := v.Requests[2].Moves; len(got) != 1 || got[0].Alloc != "a3" || got[0].Node != "n1" {
		t.Errorf("the third request's moves: %+v", got)
	}
	again := l.FSM.Act()
	for i, r := range again.Requests {
		if len(r.Moves) != 1 || r.Moves[0].Node != "n1" || r.Moves[0].Alloc != fmt.Sprintf("a%d", i+1) {
			t.Errorf("a later view's %s moves: %+v", r.ID, r.Moves)
		}
	}
}

// A command JSON cannot hold (a NaN or infinite score from a bug upstream)
// fails its own write with an error naming it, before it reaches the log;
// Encode panicked, which stopped the leader's act pass and the server with
// it, and a leader elected after it met the same score.
func TestUnencodableCommandFailsItsWrite(t *testing.T) {
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		l := local(t)
		id := mustApply(t, l, SubmitRequest{Request: request("a1")}).ID
		before := l.FSM.AppliedIndex()
		_, err := l.Apply(context.Background(), RescoreRequests{At: at(1), Items: []Rescore{{ID: id, Score: bad}}})
		if err == nil || !strings.Contains(err.Error(), "RescoreRequests") || !strings.Contains(err.Error(), "unsupported value") {
			t.Errorf("score %v: %v; want an error naming the command and the value", bad, err)
		}
		if got := l.FSM.AppliedIndex(); got != before {
			t.Errorf("score %v: applied index %d, want %d: nothing written", bad, got, before)
		}
		if _, err := Marshal(RescoreRequests{At: at(1), Items: []Rescore{{ID: id, Score: 1}}}); err != nil {
			t.Errorf("a finite score: %v", err)
		}
	}
}

// TestScaleActionsKeepEachBlocksLastCount: past MaxScaleActions the
// oldest actions are forgotten, but not a scale block's latest successful
// one (with a count), which a target that cannot tell its count goes on
// from; a snapshot restores the same list.
func TestScaleActionsKeepEachBlocksLastCount(t *testing.T) {
	l := local(t)
	mustApply(t, l, RecordScaleAction{Action: ScaleAction{Policy: "web", Scale: "old", At: at(0), Outcome: OutcomeDone, Count: 4}})
	mustApply(t, l, RecordScaleAction{Action: ScaleAction{Policy: "web", Scale: "blind", At: at(0), Outcome: OutcomeDone, Count: 6}})
	last := mustApply(t, l, RecordScaleAction{Action: ScaleAction{Policy: "web", Scale: "blind", At: at(time.Minute), Outcome: OutcomeDone, Count: 8}}).ID
	mustApply(t, l, RecordScaleAction{Action: ScaleAction{Policy: "web", Scale: "blind", At: at(2 * time.Minute), Outcome: OutcomeFailed, Count: 10}})
	for i := range MaxScaleActions + 50 {
		mustApply(t, l, RecordScaleAction{Action: ScaleAction{Policy: "db", Scale: "s", At: at(time.Duration(i) * time.Second), Outcome: OutcomeDone, Count: i + 1}})
	}
	restored := newFSM(t, smallTiers)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, l.FSM)))); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*FSM{"applied": l.FSM, "restored": restored} {
		acts := f.Act().ScaleActions
		if len(acts) != MaxScaleActions {
			t.Fatalf("%s: %d scale actions kept; want %d", name, len(acts), MaxScaleActions)
		}
		if acts[0].Scale != "old" || acts[0].Count != 4 || acts[1].ID != last || acts[1].Count != 8 {
			t.Errorf("%s: the oldest kept %+v, %+v; want old's count 4, then blind's last count 8 (%s)", name, acts[0], acts[1], last)
		}
		if acts[len(acts)-1].Count != MaxScaleActions+50 || acts[2].Count != 53 {
			t.Errorf("%s: db's actions kept run from count %d to %d; want the newest, 53 to %d", name, acts[2].Count, acts[len(acts)-1].Count, MaxScaleActions+50)
		}
	}
}

// TestResumeLiftsOnlyThePauseItWasSentFor: a resume naming the pause it
// lifts is refused once the queue has been paused again (a restore of a
// backup pauses the restored queue for review), and the queue stays
// paused; one naming the current pause, or none, lifts it.
func TestResumeLiftsOnlyThePauseItWasSentFor(t *testing.T) {
	l := local(t)
	mustApply(t, l, SetQueuePaused{Paused: true, At: at(0), By: "operator"})
	mustApply(t, l, SetQueuePaused{Paused: true, At: at(time.Minute), By: "snapshot restore"})
	_, err := l.Apply(context.Background(), SetQueuePaused{At: at(2 * time.Minute), By: "operator", IfPausedAt: at(0), IfPausedBy: "operator"})
	var pa *PausedAgainError
	if !errors.Is(err, ErrBadTransition) || !errors.As(err, &pa) || pa.By != "snapshot restore" || !pa.At.Equal(at(time.Minute)) {
		t.Fatalf("a resume sent for the operator's pause, after a restore paused the queue again: %v; want a PausedAgainError naming the restore's pause", err)
	}
	if v := l.FSM.Act(); !v.Paused || v.PausedBy != "snapshot restore" {
		t.Errorf("after the refused resume: paused %v by %q; want still paused by the restore", v.Paused, v.PausedBy)
	}
	mustApply(t, l, SetQueuePaused{At: at(3 * time.Minute), By: "operator", IfPausedAt: at(time.Minute), IfPausedBy: "snapshot restore"})
	if l.FSM.Act().Paused {
		t.Error("a resume naming the current pause left the queue paused")
	}
	mustApply(t, l, SetQueuePaused{Paused: true, At: at(4 * time.Minute), By: "operator"})
	mustApply(t, l, SetQueuePaused{At: at(5 * time.Minute), By: "operator"})
	if l.FSM.Act().Paused {
		t.Error("a resume naming no pause left the queue paused")
	}
}
