package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

// filler sets every field of a value to something other than its zero
// value, each one different, so that a field a snapshot drops (or a field
// added later that the snapshot forgets) shows as a zero or a difference
// after a round trip.
type filler struct {
	t testing.TB
	n int
}

// fill fills the value p points to.
func (f *filler) fill(p any) {
	f.t.Helper()
	v := reflect.ValueOf(p)
	f.value(v.Elem(), v.Elem().Type().String())
}

var timeType = reflect.TypeFor[time.Time]()

func (f *filler) value(v reflect.Value, path string) {
	f.t.Helper()
	f.n++
	if v.Type() == timeType {
		// Nanoseconds, so that a format keeping only seconds shows.
		v.Set(reflect.ValueOf(t0.Add(time.Duration(f.n)*time.Hour + time.Duration(f.n))))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("%s-%d", path, f.n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.n) + 0.25)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		f.value(v.Index(0), path+"[0]")
	case reflect.Map:
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		f.value(k, path+".key")
		f.value(e, path+".value")
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(k, e)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		f.value(v.Elem(), path)
	case reflect.Struct:
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if !sf.IsExported() {
				f.t.Fatalf("%s.%s is unexported: a stored type's fields travel as JSON, which drops it", path, sf.Name)
			}
			f.value(v.Field(i), path+"."+sf.Name)
		}
	default:
		f.t.Fatalf("%s: fill does not know kind %s; teach it", path, v.Kind())
	}
}

// noZero reports every field reachable from v (exported or not) that holds
// its zero value, and every empty slice or map, except the paths skip names.
func noZero(t testing.TB, v any, path string, skip ...string) {
	t.Helper()
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		t.Helper()
		if skipped[path] {
			return
		}
		if v.IsZero() {
			t.Errorf("%s is zero after the round trip", path)
			return
		}
		if v.Type() == timeType {
			return
		}
		switch v.Kind() {
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Map:
			if v.Len() == 0 {
				t.Errorf("%s is empty after the round trip", path)
			}
			for it := v.MapRange(); it.Next(); {
				walk(it.Value(), fmt.Sprintf("%s[%v]", path, it.Key()))
			}
		case reflect.Pointer:
			walk(v.Elem(), path)
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		}
	}
	walk(reflect.ValueOf(v), path)
}

// fullState applies, through encoded commands, state in which every field
// of every stored type is set: a running request, a reservation, a closed
// and an open intent, a scale action and its cooldown, an estimate, a
// decision, the pause, the cluster ID, a server, a client agent and a
// stale series of each profile.
func fullState(t *testing.T) *FSM {
	t.Helper()
	fl := &filler{t: t}
	f := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
	var index uint64
	apply := func(c Command) Result {
		t.Helper()
		index++
		switch r := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: Encode(c)}).(type) {
		case Result:
			return r
		case error:
			t.Fatalf("apply %s: %v", c.Type(), r)
		}
		return Result{}
	}

	var req MigrationRequest
	fl.fill(&req)
	req.Resource.Kind, req.State, req.Priority = ResourceAllocation, RequestPending, 42
	id := apply(SubmitRequest{Request: req, Limit: 10}).ID
	req.ID, req.State = id, RequestRunning
	apply(UpdateRequest{Request: req, IfVersion: index})
	apply(RescoreRequests{At: at(time.Hour), Items: []Rescore{{ID: id, Score: 3.5}}})

	var rs Reservation
	fl.fill(&rs)
	rs.ID, rs.State = "", ReservationHeld
	apply(PutReservation{Reservation: rs})

	var closed, open Intent
	fl.fill(&closed)
	fl.fill(&open)
	apply(OpenIntent{Intent: closed})
	apply(CloseIntent{ID: closed.ID, Outcome: OutcomeDone, Error: "it failed once", At: at(2 * time.Hour)})
	apply(OpenIntent{Intent: open})

	var sa ScaleAction
	fl.fill(&sa)
	sa.ID, sa.Outcome = "", OutcomeDone
	apply(RecordScaleAction{Action: sa})

	var est Estimate
	fl.fill(&est)
	apply(SetEstimate{Estimate: est})
	var dec Decision
	fl.fill(&dec)
	apply(AppendDecisions{Decisions: []Decision{dec}})
	var pause SetQueuePaused
	fl.fill(&pause)
	apply(pause)
	apply(InitCluster{ID: "c-1"})

	var srv ServerMeta
	fl.fill(&srv)
	apply(PutServer{Server: srv})
	var cl ClientAgent
	fl.fill(&cl)
	apply(PutClient{Client: cl})

	keys := []Key{cpu, nodeCPU, nodeMem, groupCPU}
	for _, k := range keys {
		apply(AppendSamples{Step: time.Minute, Samples: []Sample{{k, at(3 * time.Hour), 7}, {k, at(3*time.Hour + time.Minute), 9}}})
	}
	apply(MarkStale{Keys: keys, Since: at(4 * time.Hour), Reason: "source gone"})
	return f
}

// TestSnapshotKeepsEveryField fills every field of every stored type
// through commands, persists and restores the state, and checks that the
// restored state equals the original (indexes included) and that no field
// came back zero. A field added to a stored type and forgotten by the
// commands or the snapshot fails here.
func TestSnapshotKeepsEveryField(t *testing.T) {
	src := fullState(t)
	snap := snapshotBytes(t, src)
	dst := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
	if err := dst.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}

	if diff := cmp.Diff(src.act, dst.act, cmp.AllowUnexported(actStore{})); diff != "" {
		t.Errorf("restored act state differs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(src.members, dst.members, cmp.AllowUnexported(membership{})); diff != "" {
		t.Errorf("restored membership differs (-want +got):\n%s", diff)
	}
	equalStores(t, src, dst)
	if !bytes.Equal(snapshotBytes(t, dst), snap) {
		t.Error("the restored state snapshots to other bytes")
	}

	// Every field of the act store, and of every record it holds, is set.
	// An open intent has no outcome yet.
	open := ""
	for id, in := range dst.act.open {
		open = fmt.Sprintf("act.intents[%s]", id)
		if _, ok := dst.act.intents[id]; !ok || dst.act.intents[id] != in {
			t.Errorf("open intent %s is not the intent kept", id)
		}
	}
	noZero(t, dst.act, "act", open+".Outcome", open+".Closed", open+".Error",
		"act.open", // the same records as intents; checked to be non-empty below
	)
	if len(dst.act.open) != 1 || len(dst.act.closed) != 1 {
		t.Errorf("restored %d open and %d closed intents; want 1 and 1", len(dst.act.open), len(dst.act.closed))
	}
	noZero(t, dst.members, "members")
	if len(dst.store.series) != 4 {
		t.Errorf("restored %d series; want 4", len(dst.store.series))
	}
	for k, sr := range dst.store.series {
		// gen is copy-on-write bookkeeping, 0 in a fresh store; the layout
		// comes from the configuration, not the snapshot.
		p := "series[" + k.String() + "]"
		noZero(t, sr, p, p+".gen", p+".layout")
	}
}

// TestActSnapshotIsPointInTime: Persist writes the act state and
// membership as they were at Snapshot while Apply goes on changing every
// part of them (cooldowns and estimates included, whose maps the snapshot
// section encodes as they are); the race detector checks that the capture
// shares nothing Apply writes.
func TestActSnapshotIsPointInTime(t *testing.T) {
	f := fullState(t)
	want := snapshotBytes(t, f)
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()

	act := f.Act()
	req := act.Requests[0]
	rs := act.Reservations[0]
	sa := act.ScaleActions[0]
	var later [][]byte
	for i := range 50 {
		at := at(time.Duration(10+i) * time.Hour)
		sa.At, sa.TookEffect = at, at
		req.Score, req.Reason = float64(i), fmt.Sprintf("pass %d", i)
		rs.Reason = req.Reason
		later = append(later,
			Encode(RecordScaleAction{Action: sa}),
			Encode(SetEstimate{Estimate: Estimate{Key: anyKey(act.Estimates), Mean: time.Duration(i) * time.Second, Samples: i}}),
			Encode(SetEstimate{Estimate: Estimate{Key: fmt.Sprintf("dc1>dc%d/8", i), Mean: time.Second}}),
			Encode(AppendDecisions{Decisions: []Decision{{Time: at, Kind: "wait", Reason: req.Reason}}}),
			Encode(SubmitRequest{Request: request(fmt.Sprintf("b%d", i))}),
			Encode(OpenIntent{Intent: Intent{ID: fmt.Sprintf("later%d", i), Kind: IntentStopAlloc, Object: "a", Opened: at}}),
			Encode(CloseIntent{ID: fmt.Sprintf("later%d", i), Outcome: OutcomeDone, At: at}),
			Encode(SetQueuePaused{Paused: i%2 == 0, At: at, By: "operator"}),
			Encode(PutServer{Server: ServerMeta{ID: fmt.Sprintf("s%d", i)}}),
			Encode(PutClient{Client: ClientAgent{NodeID: fmt.Sprintf("n%d", i), LastSeen: at}}),
		)
	}
	persistWhileApplying(t, f, s, want, func() {
		first := f.AppliedIndex() + 1
		for _, l := range logOf(first, later...) {
			if err, ok := f.Apply(l).(error); ok {
				t.Errorf("apply index %d: %v", l.Index, err)
			}
		}
		// Updates in place of what the capture holds.
		for i, in := range f.Intents() {
			if in.Open() {
				f.Apply(logOf(f.AppliedIndex()+1, Encode(CloseIntent{ID: in.ID, Outcome: OutcomeFailed, At: at(time.Duration(i) * time.Minute)}))[0])
			}
		}
		r, _ := f.Request(req.ID)
		r.State = RequestDone
		f.Apply(logOf(f.AppliedIndex()+1, Encode(UpdateRequest{Request: r, IfVersion: r.Version}))[0])
		f.Apply(logOf(f.AppliedIndex()+1, Encode(PruneRequests{IDs: []string{req.ID}}))[0])
	})
}

// anyKey returns a key of m, or "" when m is empty.
func anyKey[V any](m map[string]V) string {
	for k := range m {
		return k
	}
	return ""
}

// TestIDsAreNeverReused: once every request, reservation and scale action
// is forgotten, and again after a snapshot of that state restores, the
// next ones take IDs none had before.
func TestIDsAreNeverReused(t *testing.T) {
	l := local(t)
	for i := range 3 {
		id := mustApply(t, l, SubmitRequest{Request: request(fmt.Sprintf("a%d", i))}).ID
		rs := mustApply(t, l, PutReservation{Reservation: Reservation{Request: id, Policy: "p", Locality: "dc2", State: ReservationReleased}}).ID
		mustApply(t, l, CancelRequest{ID: id, At: at(time.Minute)})
		mustApply(t, l, DeleteReservation{ID: rs})
	}
	for range MaxScaleActions + 1 {
		mustApply(t, l, RecordScaleAction{Action: ScaleAction{Policy: "p", Scale: "s", At: at(0), Outcome: OutcomeFailed}})
	}
	mustApply(t, l, PruneRequests{FinishedBefore: at(time.Hour)})
	if act := l.FSM.Act(); len(act.Requests) != 0 || len(act.Reservations) != 0 {
		t.Fatalf("%d requests and %d reservations left; want none", len(act.Requests), len(act.Reservations))
	}
	restored := newFSM(t, smallTiers)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, l.FSM)))); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*FSM{l.FSM, restored} {
		l := &Local{FSM: f}
		want := []string{"mr-4", "rs-4", fmt.Sprintf("sa-%d", MaxScaleActions+2)}
		got := []string{
			mustApply(t, l, SubmitRequest{Request: request("b")}).ID,
			mustApply(t, l, PutReservation{Reservation: Reservation{Request: "mr-4", Policy: "p", Locality: "dc2", State: ReservationPlanned}}).ID,
			mustApply(t, l, RecordScaleAction{Action: ScaleAction{Policy: "p", Scale: "s", At: at(0)}}).ID,
		}
		if !slices.Equal(got, want) {
			t.Errorf("new IDs %v; want %v", got, want)
		}
	}
}

// TestRefusedCommandsChangeNothing: every act and membership command its
// rules refuse (missing IDs, unknown objects, bad states and transitions,
// out-of-range values, stale versions) is answered with an error that
// names what is wrong and leaves the state as it was, so every server,
// whichever state it restored from, refuses it alike.
func TestRefusedCommandsChangeNothing(t *testing.T) {
	src := fullState(t)
	act := src.Act()
	req, rs, sa := act.Requests[0], act.Reservations[0], act.ScaleActions[0]
	with := func(r MigrationRequest, f func(*MigrationRequest)) MigrationRequest {
		r = r.Clone()
		f(&r)
		return r
	}
	tests := []struct {
		cmd  Command
		want error
		says string
	}{
		{SubmitRequest{Request: with(req, func(r *MigrationRequest) { r.Resource.Kind = "rack" })}, ErrInvalid, `resource kind "rack"`},
		{SubmitRequest{Request: with(req, func(r *MigrationRequest) { r.Resource = Resource{Kind: ResourceGroup, Job: "j"} })}, ErrInvalid, "needs a job and a group"},
		{SubmitRequest{Request: with(req, func(r *MigrationRequest) { r.Resource.ID = "" })}, ErrInvalid, "needs an ID"},
		{SubmitRequest{Request: with(req, func(r *MigrationRequest) { r.Target = "" })}, ErrInvalid, "source and a target"},
		{SubmitRequest{Request: with(req, func(r *MigrationRequest) { r.Priority = 101 })}, ErrInvalid, "priority 101"},
		{SubmitRequest{Request: with(req, func(r *MigrationRequest) { r.State = "lost" })}, ErrInvalid, `state "lost"`},
		{SubmitRequest{Request: with(req, func(r *MigrationRequest) { r.State = RequestRunning })}, ErrInvalid, "a new request is running"},
		{SubmitRequest{Request: with(req, func(r *MigrationRequest) { r.Moves[0].Alloc = "" })}, ErrInvalid, "a move without an allocation"},
		{SubmitRequest{Request: with(req, func(r *MigrationRequest) { r.State = RequestPending })}, ErrConflict, "already queued as " + req.ID},
		{SubmitRequest{Request: request("new"), Limit: 1}, ErrQueueFull, "limit 1"},
		{UpdateRequest{Request: with(req, func(r *MigrationRequest) { r.ID = "" })}, ErrUnknownRequest, `""`},
		{UpdateRequest{Request: with(req, func(r *MigrationRequest) { r.ID = "mr-99" }), IfVersion: req.Version}, ErrUnknownRequest, `"mr-99"`},
		{UpdateRequest{Request: with(req, func(r *MigrationRequest) { r.State = RequestDone }), IfVersion: req.Version - 1}, ErrStaleVersion, "expected"},
		{UpdateRequest{Request: with(req, func(r *MigrationRequest) { r.State = RequestWaiting }), IfVersion: req.Version}, ErrBadTransition, "from running to waiting"},
		{UpdateRequest{Request: with(req, func(r *MigrationRequest) { r.Priority = -1 }), IfVersion: req.Version}, ErrInvalid, "priority -1"},
		{CancelRequest{ID: req.ID}, ErrBadTransition, "from running to cancelled"},
		{CancelRequest{ID: ""}, ErrUnknownRequest, `""`},
		{InitCluster{}, ErrInvalid, "empty cluster ID"},
		{PutReservation{Reservation: Reservation{Request: req.ID, State: ReservationHeld}}, ErrInvalid, "locality and a request"},
		{PutReservation{Reservation: Reservation{Request: req.ID, Locality: "dc2", State: "kept"}}, ErrInvalid, `reservation state "kept"`},
		{PutReservation{Reservation: Reservation{Request: req.ID, Locality: "dc2", State: ReservationHeld, Chunks: []Chunk{{Count: -1}}}}, ErrInvalid, "negative"},
		{PutReservation{Reservation: Reservation{Request: req.ID, Locality: "dc2", State: ReservationHeld}, IfVersion: 3}, ErrInvalid, "an update without an ID"},
		{PutReservation{Reservation: Reservation{ID: "rs-99", Request: req.ID, Locality: "dc2", State: ReservationHeld}}, ErrUnknownReservation, `"rs-99"`},
		{PutReservation{Reservation: rs, IfVersion: rs.Version - 1}, ErrStaleVersion, "expected"},
		{RecordScaleAction{Action: ScaleAction{Scale: "s"}}, ErrInvalid, "a policy and a scale"},
		{RecordScaleAction{Action: ScaleAction{ID: "sa-99", Policy: sa.Policy, Scale: sa.Scale}}, ErrInvalid, `"sa-99"`},
		{SetEstimate{Estimate: Estimate{Mean: time.Second}}, ErrInvalid, `estimate key ""`},
		{SetEstimate{Estimate: Estimate{Key: "k", Mean: -time.Second}}, ErrInvalid, "mean -1s"},
		{OpenIntent{Intent: Intent{Kind: IntentStopAlloc, Object: "a"}}, ErrInvalid, "an ID, a kind and an object"},
		{CloseIntent{ID: "nope", Outcome: OutcomeDone}, ErrInvalid, `no intent "nope"`},
		{CloseIntent{ID: act.OpenIntents[0].ID, Outcome: "maybe"}, ErrInvalid, `outcome "maybe"`},
		{PutServer{}, ErrMalformedPayload, "without an id"},
		{PutClient{}, ErrMalformedPayload, "without a node id"},
		{AppendSamples{Step: -time.Minute, Samples: []Sample{{cpu, at(0), 1}}}, nil, "step -1m0s is not positive"},
	}
	before := snapshotBytes(t, src)
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", i, tt.cmd.Type()), func(t *testing.T) {
			f := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
			if err := f.Restore(io.NopCloser(bytes.NewReader(before))); err != nil {
				t.Fatal(err)
			}
			index := f.AppliedIndex() + 1
			err, _ := f.Apply(logOf(index, Encode(tt.cmd))[0]).(error)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("%s: %v; want %v saying %q", tt.cmd.Type(), err, tt.want, tt.says)
			}
			// Nothing changed but the applied index.
			g := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
			if err := g.Restore(io.NopCloser(bytes.NewReader(before))); err != nil {
				t.Fatal(err)
			}
			g.Apply(&raft.Log{Index: index, Type: raft.LogNoop})
			if !bytes.Equal(snapshotBytes(t, f), snapshotBytes(t, g)) {
				t.Errorf("%s changed the state", tt.cmd.Type())
			}
		})
	}
}
