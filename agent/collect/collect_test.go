package collect

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/source"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestAggregate(t *testing.T) {
	got, err := Aggregate([]source.Sample{
		{Series: "dc1/web:cpu", Time: t0.Add(10 * time.Second), Value: 10},
		{Series: "dc1/web:cpu", Time: t0.Add(50 * time.Second), Value: 30},
		{Series: "dc1/web:cpu", Time: t0.Add(70 * time.Second), Value: 5},
		{Series: "dc1/batch/*:cpu", Time: t0, Value: 1},
		{Series: "dc1/batch/*:cpu", Time: t0, Value: nan()},
	}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := []state.Sample{
		{Key: state.Key{Locality: "dc1/batch/*", Metric: "cpu"}, Time: t0, Value: 1},
		{Key: state.Key{Locality: "dc1/web", Metric: "cpu"}, Time: t0, Value: 20},
		{Key: state.Key{Locality: "dc1/web", Metric: "cpu"}, Time: t0.Add(time.Minute), Value: 5},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("sample %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := Aggregate([]source.Sample{{Series: "nometric", Time: t0, Value: 1}}, time.Minute); err == nil {
		t.Error("malformed series accepted")
	}
}

func nan() float64 { var z float64; return z / z }

// fakeSource returns canned results.
type fakeSource struct {
	name string
	res  source.Result
	err  error
	reqs []source.Request
}

func (f *fakeSource) Name() string { return f.name }
func (f *fakeSource) Collect(_ context.Context, r source.Request) (source.Result, error) {
	f.reqs = append(f.reqs, r)
	return f.res, f.err
}

// recorder applies commands to a real FSM's store semantics by keeping them.
type recorder struct{ cmds []state.Command }

func (r *recorder) Apply(_ context.Context, c state.Command) (state.Result, error) {
	r.cmds = append(r.cmds, c)
	return state.Result{}, nil
}

func TestRunOnceCommitsAndMarksStale(t *testing.T) {
	good := &fakeSource{name: "nomad", res: source.Result{
		Samples: []source.Sample{{Series: "dc1/web:cpu", Time: t0, Value: 42}},
		Stale:   []source.Stale{{Series: "node/n3:cpu", Reason: "stats unreachable"}},
	}}
	bad := &fakeSource{name: "prometheus", err: errors.New("connection refused")}
	rec := &recorder{}
	c := New([]source.Source{good, bad}, rec, time.Minute, time.Hour, nil)

	st, err := c.RunOnce(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Samples != 1 || st.Stale != 1 || len(st.Failures) != 1 || !st.Newest.Equal(t0) {
		t.Errorf("stats = %+v", st)
	}
	if len(rec.cmds) != 2 {
		t.Fatalf("commands = %d, want AppendSamples + MarkStale", len(rec.cmds))
	}
	if ms, ok := rec.cmds[1].(state.MarkStale); !ok || ms.Reason != "stats unreachable" || ms.Keys[0].Locality != "node/n3" {
		t.Errorf("second command = %#v", rec.cmds[1])
	}

	// The same stale report is not committed again; Since advances.
	if _, err := c.RunOnce(context.Background(), t0.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if len(rec.cmds) != 3 {
		t.Errorf("commands after second cycle = %d, want 3 (no repeated MarkStale)", len(rec.cmds))
	}
	if got := good.reqs[1].Since; !got.Equal(t0) {
		t.Errorf("second request Since = %v, want %v", got, t0)
	}
}

func TestRunOnceAllSourcesFail(t *testing.T) {
	bad := &fakeSource{name: "nomad", err: errors.New("timeout")}
	c := New([]source.Source{bad}, &recorder{}, time.Minute, time.Hour, nil)
	if _, err := c.RunOnce(context.Background(), t0, nil); err == nil {
		t.Error("no error when every source failed")
	}
}
