package state

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/raft"
)

// randomActCmd returns a random act command against f's state, often one
// its rules refuse (a conflict, a stale version, a bad transition), or nil
// when the draw needs an object f does not hold.
func randomActCmd(r *rand.Rand, f *FSM) Command {
	act := f.Act()
	allocs := []string{"a1", "a2", "a3", "a4", "a5"}
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	states := RequestStates
	switch r.IntN(14) {
	case 0, 1:
		q := request(pick(allocs), func(m *MigrationRequest) {
			if r.IntN(3) == 0 {
				m.OriginKey = pick([]string{"w1", "w2"})
			}
			if r.IntN(3) == 0 {
				m.Resource = Resource{Kind: ResourceNode, ID: pick([]string{"n1", "n2"})}
				m.Moves = append(m.Moves, Move{Alloc: pick(allocs)})
			}
		})
		return SubmitRequest{Request: q, Limit: 4}
	case 2, 3:
		if len(act.Requests) == 0 {
			return nil
		}
		q := act.Requests[r.IntN(len(act.Requests))]
		v := q.Version
		q.State = states[r.IntN(len(states))]
		q.Finished = at(time.Duration(r.IntN(100)) * time.Minute)
		if r.IntN(3) == 0 {
			q.Moves = append(q.Moves, Move{Alloc: pick(allocs)})
		}
		return UpdateRequest{Request: q, IfVersion: v}
	case 4:
		if len(act.Requests) == 0 {
			return nil
		}
		return CancelRequest{ID: act.Requests[r.IntN(len(act.Requests))].ID, At: at(time.Duration(r.IntN(100)) * time.Minute)}
	case 5:
		var items []Rescore
		for _, q := range act.Requests {
			items = append(items, Rescore{ID: q.ID, Score: float64(r.IntN(10)), State: []RequestState{"", RequestWaiting, RequestPending}[r.IntN(3)]})
		}
		return RescoreRequests{Items: items}
	case 6:
		if r.IntN(2) == 0 && len(act.Requests) > 0 {
			return PruneRequests{IDs: []string{act.Requests[r.IntN(len(act.Requests))].ID}}
		}
		return PruneRequests{FinishedBefore: at(time.Duration(r.IntN(100)) * time.Minute)}
	case 7:
		if len(act.Reservations) > 0 && r.IntN(2) == 0 {
			rs := act.Reservations[r.IntN(len(act.Reservations))]
			v := rs.Version
			rs.State = []ReservationState{ReservationHeld, ReservationReleased}[r.IntN(2)]
			return PutReservation{Reservation: rs, IfVersion: v}
		}
		req := "mr-1"
		if len(act.Requests) > 0 {
			req = act.Requests[r.IntN(len(act.Requests))].ID
		}
		return PutReservation{Reservation: Reservation{Request: req, Locality: "dc2", State: ReservationPlanned}}
	case 8:
		if len(act.Reservations) == 0 {
			return nil
		}
		return DeleteReservation{ID: act.Reservations[r.IntN(len(act.Reservations))].ID}
	case 9:
		a := ScaleAction{Policy: "p", Scale: pick([]string{"s", "t"}), At: at(time.Duration(r.IntN(100)) * time.Minute)}
		if len(act.ScaleActions) > 0 && r.IntN(2) == 0 {
			a = act.ScaleActions[r.IntN(len(act.ScaleActions))]
			a.Outcome = []IntentOutcome{OutcomeDone, OutcomeFailed}[r.IntN(2)]
			a.TookEffect = at(time.Duration(r.IntN(100)) * time.Minute)
		}
		return RecordScaleAction{Action: a}
	case 10, 11:
		req := ""
		if len(act.Requests) > 0 && r.IntN(2) == 0 {
			req = act.Requests[r.IntN(len(act.Requests))].ID
		}
		return OpenIntent{Intent: Intent{ID: fmt.Sprintf("i%d", r.IntN(40)), Kind: IntentStopAlloc, Object: "x", Request: req}}
	case 12:
		return CloseIntent{ID: fmt.Sprintf("i%d", r.IntN(40)), Outcome: OutcomeDone, At: at(time.Minute)}
	default:
		return SetQueuePaused{Paused: r.IntN(2) == 0}
	}
}

// TestActRestoreMidLog applies random act logs to two FSMs, one of which
// is now and then replaced by a restore of its own snapshot: every answer
// and the final state agree, a restore rebuilds the act store exactly
// (indexes included), and the indexes always match the requests and
// intents they index.
func TestActRestoreMidLog(t *testing.T) {
	for seed := range uint64(12) {
		r := rand.New(rand.NewPCG(seed, 7))
		a := newFSM(t, smallTiers)
		b := newFSM(t, smallTiers)
		var idx uint64
		for step := 0; step < 250; step++ {
			c := randomActCmd(r, a)
			if c == nil {
				continue
			}
			idx++
			l := &raft.Log{Index: idx, Type: raft.LogCommand, Data: Encode(c)}
			ra := a.Apply(l)
			rb := b.Apply(l)
			checkInvariants(t, a.act, fmt.Sprintf("seed %d step %d after %s", seed, step, c.Type()))
			if fmt.Sprint(ra) != fmt.Sprint(rb) {
				t.Fatalf("seed %d step %d %s: %v vs %v", seed, step, c.Type(), ra, rb)
			}
			if r.IntN(10) == 0 {
				nb := newFSM(t, smallTiers)
				if err := nb.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, b)))); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(b.act, nb.act, cmp.AllowUnexported(actStore{}), cmpopts.EquateEmpty()); d != "" {
					t.Fatalf("seed %d step %d: restore differs:\n%s", seed, step, d)
				}
				b = nb
			}
		}
		if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
			t.Fatalf("seed %d: final differs", seed)
		}
	}
}

// checkInvariants checks the act store's indexes against what they index:
// no two unfinished requests share a resource or an allocation, byResource
// and byAlloc index exactly the unfinished ones, byOrigin every kept
// request with an origin key, and open and closed the intents by outcome.
func checkInvariants(t *testing.T, s *actStore, where string) {
	t.Helper()
	res, alloc, origin := map[string]string{}, map[string]string{}, map[string]string{}
	for id, r := range s.requests {
		if r.ID != id {
			t.Fatalf("%s: id %s holds %s", where, id, r.ID)
		}
		if r.OriginKey != "" {
			origin[r.OriginKey] = id
		}
		if r.State.Terminal() {
			continue
		}
		if o, ok := res[r.Resource.Key()]; ok {
			t.Fatalf("%s: %s and %s share %s", where, o, id, r.Resource.Key())
		}
		res[r.Resource.Key()] = id
		for _, m := range r.Moves {
			if o, ok := alloc[m.Alloc]; ok && o != id {
				t.Fatalf("%s: %s and %s share alloc %s", where, o, id, m.Alloc)
			}
			alloc[m.Alloc] = id
		}
	}
	if d := cmp.Diff(res, s.byResource, cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("%s: byResource:\n%s", where, d)
	}
	if d := cmp.Diff(alloc, s.byAlloc, cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("%s: byAlloc:\n%s", where, d)
	}
	if d := cmp.Diff(origin, s.byOrigin, cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("%s: byOrigin:\n%s", where, d)
	}
	nOpen := 0
	for id, in := range s.intents {
		if in.Open() {
			nOpen++
			if s.open[id] != in {
				t.Fatalf("%s: open intent %s not in open", where, id)
			}
		}
	}
	if nOpen != len(s.open) || nOpen+len(s.closed) != len(s.intents) {
		t.Fatalf("%s: %d open, %d in open, %d closed, %d intents", where, nOpen, len(s.open), len(s.closed), len(s.intents))
	}
}
