package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/source"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestAggregate(t *testing.T) {
	got, rejected := Aggregate([]source.Sample{
		{Series: "dc1/web:cpu", Time: t0.Add(10 * time.Second), Value: 10},
		{Series: "dc1/web:cpu", Time: t0.Add(50 * time.Second), Value: 30},
		{Series: "dc1/web:cpu", Time: t0.Add(70 * time.Second), Value: 5},
		{Series: "dc1/batch/*:cpu", Time: t0, Value: 1},
		{Series: "dc1/batch/*:cpu", Time: t0, Value: nan()},
		{Series: "nometric", Time: t0, Value: 1},
		{Series: "nometric", Time: t0.Add(time.Minute), Value: 2},
	}, time.Minute)
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
	if len(rejected) != 1 || !strings.Contains(rejected[0], "nometric") {
		t.Errorf("rejected = %q, want the malformed series once", rejected)
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

// recorder applies commands to a real state machine and keeps them.
type recorder struct {
	*state.Local
	cmds []state.Command
	fail error // when set, Apply fails
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	l, err := state.NewLocal(state.Config{Profiles: state.DefaultProfiles()})
	if err != nil {
		t.Fatal(err)
	}
	return &recorder{Local: l}
}

func (r *recorder) Apply(ctx context.Context, c state.Command) (state.Result, error) {
	if r.fail != nil {
		return state.Result{}, r.fail
	}
	r.cmds = append(r.cmds, c)
	return r.Local.Apply(ctx, c)
}

func (r *recorder) Infos() []state.Info  { return r.FSM.Infos() }
func (r *recorder) Config() state.Config { return r.FSM.Config() }
func (r *recorder) info(series string) state.Info {
	k, _ := state.ParseKey(series)
	in, _ := r.FSM.Info(k)
	return in
}

// of returns the commands of type T.
func of[T state.Command](r *recorder) []T {
	var out []T
	for _, c := range r.cmds {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func newCollector(t *testing.T, rec *recorder, srcs ...source.Source) *Collector {
	t.Helper()
	c, err := New(Config{Sources: srcs, Apply: rec, Store: rec, Step: time.Minute, Lookback: time.Hour, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: testWriter{t}})
}

func TestRunOnceCommitsAndMarksStale(t *testing.T) {
	good := &fakeSource{name: "nomad", res: source.Result{
		Samples: []source.Sample{
			{Series: "dc1/web:cpu", Time: t0, Value: 42},
			{Series: "node/n3:cpu", Time: t0, Value: 1},
		},
	}}
	bad := &fakeSource{name: "prometheus", err: errors.New("connection refused")}
	rec := newRecorder(t)
	c := newCollector(t, rec, good, bad)

	st, err := c.RunOnce(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Samples != 2 || st.Stale != 0 || len(st.Failures) != 1 || !st.Newest.Equal(t0) ||
		!slices.Equal(st.Failed, []string{"prometheus"}) {
		t.Errorf("stats = %+v", st)
	}
	// n3 stops answering: the source reports it stale.
	good.res = source.Result{
		Samples: []source.Sample{{Series: "dc1/web:cpu", Time: t0.Add(time.Minute), Value: 43}},
		Stale:   []source.Stale{{Series: "node/n3:cpu", Reason: "stats unreachable"}},
	}
	if st, err = c.RunOnce(context.Background(), t0.Add(time.Minute), nil); err != nil || st.Stale != 1 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	if in := rec.info("node/n3:cpu"); !in.Stale || in.StaleReason != "stats unreachable" {
		t.Errorf("node/n3:cpu = %+v, want stale for the source's reason", in)
	}
	// The same report is not committed again, even by a new collector
	// (a new leader): the mark is in the replicated store.
	n := len(of[state.MarkStale](rec))
	for _, c := range []*Collector{c, newCollector(t, rec, good, bad)} {
		if _, err := c.RunOnce(context.Background(), t0.Add(time.Minute+10*time.Second), nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(of[state.MarkStale](rec)); got != n {
		t.Errorf("%d MarkStale commands after repeating the report, want %d", got, n)
	}
}

func TestRunOnceAllSourcesFail(t *testing.T) {
	bad := &fakeSource{name: "nomad", err: errors.New("timeout")}
	c := newCollector(t, newRecorder(t), bad)
	if _, err := c.RunOnce(context.Background(), t0, nil); err == nil {
		t.Error("no error when every source failed")
	}
}

// history is a source that keeps history and honours Since, like
// Prometheus or a replay: one sample per minute up to Now.
type history struct {
	name, series string
	err          error
	reqs         []source.Request
}

func (h *history) Name() string { return h.name }
func (h *history) Collect(_ context.Context, r source.Request) (source.Result, error) {
	h.reqs = append(h.reqs, r)
	if h.err != nil {
		return source.Result{}, h.err
	}
	from := r.Since
	if from.IsZero() {
		from = r.Now.Add(-r.Lookback)
	}
	var res source.Result
	for at := from.Truncate(time.Minute).Add(time.Minute); !at.After(r.Now); at = at.Add(time.Minute) {
		res.Samples = append(res.Samples, source.Sample{Series: h.series, Time: at, Value: float64(at.Minute())})
	}
	return res, nil
}

func TestEachSourceKeepsItsOwnProgress(t *testing.T) {
	a := &history{name: "a", series: "dc1:a"}
	b := &history{name: "b", series: "dc1:b"}
	rec := newRecorder(t)
	c := newCollector(t, rec, a, b)
	ctx := context.Background()
	if _, err := c.RunOnce(ctx, t0, nil); err != nil {
		t.Fatal(err)
	}
	// b fails for two cycles; a goes on.
	b.err = errors.New("timeout")
	for i := 1; i <= 2; i++ {
		if _, err := c.RunOnce(ctx, t0.Add(time.Duration(i)*time.Minute), nil); err != nil {
			t.Fatal(err)
		}
	}
	b.err = nil
	if _, err := c.RunOnce(ctx, t0.Add(3*time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if got := b.reqs[len(b.reqs)-1].Since; !got.Equal(t0) {
		t.Errorf("b was asked for samples since %v, want %v (its own newest, not a's)", got, t0)
	}
	if got := a.reqs[len(a.reqs)-1].Since; !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("a was asked since %v, want %v", got, t0.Add(2*time.Minute))
	}
	// b's missed minutes were read when it came back.
	g, err := rec.FSM.Range(state.Key{Locality: "dc1", Metric: "b"}, time.Minute, t0, t0.Add(4*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for i, cnt := range g.Count {
		if cnt != 1 {
			t.Errorf("b at %v holds %d samples, want 1", g.Time(i), cnt)
		}
	}
}

func TestNewCollectorDoesNotCountHistoryTwice(t *testing.T) {
	h := &history{name: "prometheus", series: "dc1:iops"}
	rec := newRecorder(t)
	ctx := context.Background()
	if _, err := newCollector(t, rec, h).RunOnce(ctx, t0, nil); err != nil {
		t.Fatal(err)
	}
	// A new leader's collector re-reads the lookback; what the store holds
	// is left out.
	st, err := newCollector(t, rec, h).RunOnce(ctx, t0.Add(time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Samples != 1 {
		t.Errorf("%d samples committed by the new collector, want only the new minute", st.Samples)
	}
	g, err := rec.FSM.Range(state.Key{Locality: "dc1", Metric: "iops"}, time.Minute, t0.Add(-time.Hour+time.Minute), t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for i, cnt := range g.Count {
		if cnt != 1 {
			t.Fatalf("point %v holds %d samples, want 1", g.Time(i), cnt)
		}
	}
}

func TestMalformedSeriesIsRejectedAlone(t *testing.T) {
	src := &fakeSource{name: "prometheus", res: source.Result{Samples: []source.Sample{
		{Series: "dc1:iops", Time: t0, Value: 5},
		{Series: "dc1:", Time: t0, Value: 7},
		{Series: "dc1:", Time: t0.Add(time.Minute), Value: 8},
	}}}
	rec := newRecorder(t)
	st, err := newCollector(t, rec, src).RunOnce(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Samples != 1 || len(st.Rejected) != 1 || !strings.Contains(st.Rejected[0], `"dc1:"`) {
		t.Errorf("stats = %+v, want the good sample committed and the bad series rejected", st)
	}
	if !strings.Contains(st.Problems(), "malformed") {
		t.Errorf("Problems() = %q, want the rejection", st.Problems())
	}
}

func TestSeriesWithoutSamplesGoStale(t *testing.T) {
	// Every node of dc3 stops reporting: the source returns nothing for
	// dc3, and reports nothing stale either.
	src := &fakeSource{name: "nomad", res: source.Result{Samples: []source.Sample{
		{Series: "dc3:cpu", Time: t0, Value: 40},
		{Series: "dc1:cpu", Time: t0, Value: 20},
	}}}
	rec := newRecorder(t)
	c := newCollector(t, rec, src)
	ctx := context.Background()
	for i := range 6 {
		now := t0.Add(time.Duration(i) * time.Minute)
		if i > 0 {
			src.res.Samples = []source.Sample{{Series: "dc1:cpu", Time: now, Value: 20}}
		}
		st, err := c.RunOnce(ctx, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		in := rec.info("dc3:cpu")
		switch {
		case i <= 3 && in.Stale:
			t.Errorf("dc3:cpu stale %v after its last sample; want three steps of grace", now.Sub(t0))
		case i > 3 && !in.Stale:
			t.Errorf("dc3:cpu not stale %v after its last sample", now.Sub(t0))
		case i == 4 && (st.Stale != 1 || !strings.Contains(in.StaleReason, "no sample for more than 3 steps")):
			t.Errorf("at +4m: stats %+v, reason %q", st, in.StaleReason)
		}
		if rec.info("dc1:cpu").Stale {
			t.Errorf("dc1:cpu stale at %v though it reports", now)
		}
	}
	// A fresh sample clears the mark.
	now := t0.Add(7 * time.Minute)
	src.res.Samples = []source.Sample{{Series: "dc3:cpu", Time: now, Value: 41}}
	if _, err := c.RunOnce(ctx, now, nil); err != nil {
		t.Fatal(err)
	}
	if rec.info("dc3:cpu").Stale {
		t.Error("dc3:cpu still stale after a fresh sample")
	}
}

func TestEverySourceFailingStillMarksStale(t *testing.T) {
	src := &fakeSource{name: "nomad", res: source.Result{Samples: []source.Sample{{Series: "dc1:cpu", Time: t0, Value: 20}}}}
	rec := newRecorder(t)
	c := newCollector(t, rec, src)
	ctx := context.Background()
	if _, err := c.RunOnce(ctx, t0, nil); err != nil {
		t.Fatal(err)
	}
	src.res, src.err = source.Result{}, errors.New("nomad: context deadline exceeded")
	if _, err := c.RunOnce(ctx, t0.Add(5*time.Minute), nil); err == nil {
		t.Error("no error with every source failing")
	}
	if !rec.info("dc1:cpu").Stale {
		t.Error("dc1:cpu not stale after five minutes with Nomad unreachable")
	}
}

func TestNodeSeriesDroppedAfterRetention(t *testing.T) {
	src := &fakeSource{name: "nomad", res: source.Result{Samples: []source.Sample{
		{Series: "node/gone:cpu", Time: t0, Value: 1},
		{Series: "dc1:cpu", Time: t0, Value: 20},
	}}}
	rec := newRecorder(t)
	c := newCollector(t, rec, src)
	ctx := context.Background()
	if _, err := c.RunOnce(ctx, t0, nil); err != nil {
		t.Fatal(err)
	}
	// The node leaves; dc1 goes on for six hours (the node profile's
	// retention) and a minute.
	for _, d := range []time.Duration{time.Hour, 6 * time.Hour, 6*time.Hour + time.Minute} {
		now := t0.Add(d)
		src.res.Samples = []source.Sample{{Series: "dc1:cpu", Time: now, Value: 20}}
		st, err := c.RunOnce(ctx, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, held := rec.FSM.Info(state.Key{Locality: "node/gone", Metric: "cpu"})
		if gone := d > 6*time.Hour; held == gone || (gone && st.Dropped != 1) {
			t.Errorf("at +%v: series held %v, dropped %d", d, held, st.Dropped)
		}
	}
	if len(of[state.DropSeries](rec)) != 1 {
		t.Errorf("%d DropSeries commands, want 1", len(of[state.DropSeries](rec)))
	}
	if _, held := rec.FSM.Info(state.Key{Locality: "dc1", Metric: "cpu"}); !held {
		t.Error("a reporting series was dropped")
	}
}

func TestSeriesLimitAdmitsPolicyLocalitiesFirst(t *testing.T) {
	var samples []source.Sample
	for i := range 5 {
		samples = append(samples, source.Sample{Series: fmt.Sprintf("node/n%d:cpu", i), Time: t0, Value: 1})
	}
	samples = append(samples, source.Sample{Series: "dc2:cpu", Time: t0, Value: 50})
	src := &fakeSource{name: "nomad", res: source.Result{Samples: samples}}
	rec := newRecorder(t)
	c, err := New(Config{Sources: []source.Source{src}, Apply: rec, Store: rec, Step: time.Minute, MaxSeries: 4, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.RunOnce(context.Background(), t0, []source.Locality{{Datacenter: "dc2"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := rec.FSM.Len(); n != 4 {
		t.Errorf("%d series stored, want the limit 4", n)
	}
	if _, ok := rec.FSM.Info(state.Key{Locality: "dc2", Metric: "cpu"}); !ok {
		t.Error("the policy's locality series was refused")
	}
	if st.Refused != 2 || !strings.Contains(st.Problems(), "series limit reached: 2 new series refused") {
		t.Errorf("stats %+v, problems %q", st, st.Problems())
	}
}

func TestFailedCommitKeepsProgress(t *testing.T) {
	h := &history{name: "prometheus", series: "dc1:iops"}
	rec := newRecorder(t)
	c := newCollector(t, rec, h)
	ctx := context.Background()
	if _, err := c.RunOnce(ctx, t0, nil); err != nil {
		t.Fatal(err)
	}
	rec.fail = errors.New("not the leader")
	if _, err := c.RunOnce(ctx, t0.Add(time.Minute), nil); err == nil {
		t.Fatal("no error from a failed commit")
	}
	rec.fail = nil
	if _, err := c.RunOnce(ctx, t0.Add(2*time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if got := h.reqs[2].Since; !got.Equal(t0) {
		t.Errorf("after a failed commit the source was asked since %v, want %v", got, t0)
	}
}

func TestFailedSourceStaleEntriesAreMarked(t *testing.T) {
	src := &fakeSource{name: "nomad", res: source.Result{Samples: []source.Sample{{Series: "dc1:cpu", Time: t0, Value: 20}}}}
	rec := newRecorder(t)
	c := newCollector(t, rec, src)
	ctx := context.Background()
	if _, err := c.RunOnce(ctx, t0, nil); err != nil {
		t.Fatal(err)
	}
	// Every node's stats fail: the source errs, and says which series.
	src.err = errors.New("no node's stats could be read")
	src.res = source.Result{Stale: []source.Stale{{Series: "dc1:cpu", Reason: "none of the locality's 3 nodes answered"}}}
	if _, err := c.RunOnce(ctx, t0.Add(time.Minute), nil); err == nil {
		t.Error("no error with every source failing")
	}
	if in := rec.info("dc1:cpu"); !in.Stale || !strings.Contains(in.StaleReason, "none of the locality's") {
		t.Errorf("dc1:cpu = %+v, want stale at once with the source's reason", in)
	}
}

// TestEndedTaskGroupAgesQuietly: a task group's series stop when its job
// or allocations end (a placeholder released, a batch job done), which is
// no problem worth a warning; a locality that stops reporting is.
func TestEndedTaskGroupAgesQuietly(t *testing.T) {
	src := &fakeSource{name: "nomad", res: source.Result{Samples: []source.Sample{
		{Series: "dc3:cpu", Time: t0, Value: 40},
		{Series: "group/default/foreshape-reserve-rs-1/hold:cpu_mhz", Time: t0, Value: 0},
	}}}
	rec, logs := sampledOnceThenSilent(t, src)
	if !rec.info("group/default/foreshape-reserve-rs-1/hold:cpu_mhz").Stale || !rec.info("dc3:cpu").Stale {
		t.Fatal("both series should be marked stale")
	}
	if !strings.Contains(logs.String(), "series stale: series=dc3:cpu") {
		t.Errorf("no warning for dc3:cpu:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "group/") {
		t.Errorf("an ended task group's series is logged at info level or above:\n%s", logs.String())
	}
}

// sampledOnceThenSilent runs six one-minute cycles on src, whose samples
// come at the first only, and returns what was recorded and logged (at
// info): every series of src is stale by the last.
func sampledOnceThenSilent(t *testing.T, src *fakeSource) (*recorder, *bytes.Buffer) {
	t.Helper()
	rec := newRecorder(t)
	logs := &bytes.Buffer{}
	c, err := New(Config{Sources: []source.Source{src}, Apply: rec, Store: rec, Step: time.Minute, Lookback: time.Hour,
		Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if i > 0 {
			src.res.Samples = nil
		}
		if _, err := c.RunOnce(context.Background(), t0.Add(time.Duration(i)*time.Minute), nil); err != nil {
			t.Fatal(err)
		}
	}
	return rec, logs
}

// TestStaleSeriesLoggedTogether: series that go stale together for one
// reason (a Nomad that stops answering stales every node's at once) are
// one warning naming the first five and how many, not a line each.
func TestStaleSeriesLoggedTogether(t *testing.T) {
	var samples []source.Sample
	for i := range 12 {
		samples = append(samples, source.Sample{Series: fmt.Sprintf("dc%02d:cpu", i), Time: t0, Value: 40})
	}
	src := &fakeSource{name: "nomad", res: source.Result{Samples: samples}}
	rec, logs := sampledOnceThenSilent(t, src)
	for i := range 12 {
		if !rec.info(fmt.Sprintf("dc%02d:cpu", i)).Stale {
			t.Fatalf("dc%02d:cpu not marked stale", i)
		}
	}
	if n := strings.Count(logs.String(), "series stale"); n != 1 {
		t.Errorf("%d stale lines for 12 series gone stale together, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `series stale: series="dc00:cpu, dc01:cpu, dc02:cpu, dc03:cpu, dc04:cpu and 7 more" count=12`) {
		t.Errorf("the stale line does not name the first five and count the rest:\n%s", logs.String())
	}
}

// TestSourceFailingInPartKeepsItsSamples: a source that returns samples
// with an error (the Nomad source when the allocations cannot be listed:
// the localities' series read, the task groups' stale) has its samples
// committed and its stale entries marked; the error is in Stats.Failures,
// so the cycle's status names it, without failing the cycle; it is logged
// once while it repeats, and its end once.
func TestSourceFailingInPartKeepsItsSamples(t *testing.T) {
	src := &fakeSource{name: "nomad", res: source.Result{Samples: []source.Sample{
		{Series: "dc1:cpu", Time: t0, Value: 20},
		{Series: "group/default/web/frontend:cpu_mhz", Time: t0, Value: 300},
	}}}
	rec := newRecorder(t)
	var logs bytes.Buffer
	c, err := New(Config{Sources: []source.Source{src}, Apply: rec, Store: rec, Step: time.Minute,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.RunOnce(ctx, t0, nil); err != nil {
		t.Fatal(err)
	}
	const refused = "nomad source: list allocations: Unexpected response code: 403 (Permission denied)"
	src.err = errors.New(refused)
	for i := 1; i <= 3; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		src.res = source.Result{
			Samples: []source.Sample{{Series: "dc1:cpu", Time: at, Value: 20 + float64(i)}},
			Stale:   []source.Stale{{Series: "group/default/web/frontend:cpu_mhz", Reason: refused}},
		}
		st, err := c.RunOnce(ctx, at, nil)
		if err != nil {
			t.Fatalf("cycle %d failed: %v", i, err)
		}
		if st.Samples != 1 || len(st.Failures) != 1 || !strings.Contains(st.Problems(), refused) || !slices.Equal(st.Failed, []string{"nomad"}) {
			t.Errorf("cycle %d: %+v, problems %q; want its sample committed and the failure named", i, st, st.Problems())
		}
		if in := rec.info("dc1:cpu"); !in.LastSample.Equal(at) || in.Stale {
			t.Errorf("cycle %d: dc1:cpu = %+v, want its sample at %v", i, in, at)
		}
		if in := rec.info("group/default/web/frontend:cpu_mhz"); !in.Stale || in.StaleReason != refused {
			t.Errorf("cycle %d: the group's series = %+v, want stale with the error", i, in)
		}
	}
	src.err = nil
	if _, err := c.RunOnce(ctx, t0.Add(4*time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if n, m := strings.Count(logs.String(), "source failed in part"), strings.Count(logs.String(), "source answers again"); n != 1 || m != 1 {
		t.Errorf("three failures logged %d times, the recovery %d; want once each:\n%s", n, m, logs.String())
	}
}
