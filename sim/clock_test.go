package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// fakeWall is a wall clock the test moves by hand.
type fakeWall struct {
	mu sync.Mutex
	t  time.Time
}

func (w *fakeWall) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.t
}

func (w *fakeWall) add(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = w.t.Add(d)
}

func TestRunTiedToWallClock(t *testing.T) {
	wall := &fakeWall{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	c, err := New(mustScenario(t, smallScenario), Options{Logger: testLogger(t), Wall: wall.now})
	if err != nil {
		t.Fatal(err)
	}
	start := c.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 60) }()
	for !c.Running() {
		time.Sleep(time.Millisecond)
	}
	if err := c.Step(time.Minute); !errors.Is(err, ErrClockRunning) {
		t.Errorf("Step while running: %v, want ErrClockRunning", err)
	}
	if err := c.Run(ctx, 60); err == nil {
		t.Error("a second Run was accepted")
	}
	// One wall second at 60× is one virtual minute, in whole 10 s ticks.
	wall.add(time.Second)
	want := start.Add(time.Minute)
	for !c.Now().Equal(want) {
		if c.Now().After(want) {
			t.Fatalf("clock ran past %v to %v", want, c.Now())
		}
		time.Sleep(time.Millisecond)
	}
	// Half a tick of wall time later, the clock has not moved a partial tick.
	wall.add(80 * time.Millisecond) // 4.8 virtual seconds
	time.Sleep(250 * time.Millisecond)
	if !c.Now().Equal(want) {
		t.Errorf("clock at %v, want still %v", c.Now(), want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	if c.Running() {
		t.Error("still running after cancel")
	}
	if err := c.Step(time.Minute); err != nil {
		t.Errorf("Step after Run: %v", err)
	}
	if err := c.Run(context.Background(), 0); err == nil {
		t.Error("speed 0 accepted")
	}
}

func TestStepRefusedOverHTTPWhileRunning(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = c.Run(ctx, 1) }()
	for !c.Running() {
		time.Sleep(time.Millisecond)
	}
	resp, err := http.Post(client.Address()+"/v1/sim/step?d=1m", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("step while running: %d, want 409", resp.StatusCode)
	}
}

func TestScenarioFaultsApply(t *testing.T) {
	c := newTestCluster(t, `
fault {
  latency           = "1ms"
  stats_unreachable = ["a-1"]
}
`)
	client := newTestAPI(t, c, "")
	if _, err := client.Nodes().Stats(c.findNode("a-1").id, nil); statusOf(err) != http.StatusInternalServerError {
		t.Errorf("a-1 stats: err %v, want 500", err)
	}
	if _, err := client.Nodes().Stats(c.findNode("a-2").id, nil); err != nil {
		t.Errorf("a-2 stats: %v", err)
	}
	if f := c.Faults(); time.Duration(f.Latency) != time.Millisecond {
		t.Errorf("faults = %+v", f)
	}
}

func TestWrongMethodIs405(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	req, _ := http.NewRequest(http.MethodDelete, client.Address()+"/v1/nodes", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /v1/nodes: %d, want 405", resp.StatusCode)
	}
}

// TestConcurrentClientsWhileRunning drives the API from several goroutines
// while the clock runs, for the race detector.
func TestConcurrentClientsWhileRunning(t *testing.T) {
	c, err := New(DefaultScenario(), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	client := newTestAPI(t, c, "")
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx, 3600) }()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				allocs, _, err := client.Allocations().List(nil)
				if err != nil {
					errs <- err
					return
				}
				for _, a := range allocs[:min(3, len(allocs))] {
					if a.ClientStatus == "running" {
						_, _ = client.Allocations().Stats(&api.Allocation{ID: a.ID}, nil)
					}
				}
				if _, _, err := client.Nodes().List(&api.QueryOptions{Params: map[string]string{"resources": "true"}}); err != nil {
					errs <- err
					return
				}
				if w == 0 && i%2 == 0 && len(allocs) > 0 {
					_, _ = client.Allocations().Stop(&api.Allocation{ID: allocs[len(allocs)-1].ID}, nil)
				}
				if w == 1 {
					_, _ = client.Operator().Metrics(&api.QueryOptions{Params: map[string]string{"format": "prometheus"}})
				}
				if w == 2 {
					_, _, _ = client.Jobs().Scale("web", "frontend", new(12+i%2), "", false, nil, nil)
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !c.Now().After(c.sc.Start) {
		t.Error("the clock did not move")
	}
}

func TestDurationJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{`"250ms"`, 250 * time.Millisecond, false},
		{`"1h30m"`, 90 * time.Minute, false},
		{`1000000`, time.Millisecond, false},
		{`"soon"`, 0, true},
		{`true`, 0, true},
	} {
		var d Duration
		err := json.Unmarshal([]byte(tc.in), &d)
		if (err != nil) != tc.err || (!tc.err && time.Duration(d) != tc.want) {
			t.Errorf("%s: %v, %v; want %v, error %v", tc.in, time.Duration(d), err, tc.want, tc.err)
		}
	}
	b, _ := json.Marshal(Faults{Latency: Duration(2 * time.Second)})
	if string(b) != `{"Latency":"2s"}` {
		t.Errorf("faults JSON = %s", b)
	}
}

// TestRunCatchesUpTickByTick: a clock that has fallen far behind its wall
// time (a busy machine, a high speed) holds the cluster's lock for one tick
// at a time, so a caller is answered while it catches up, and a cancel stops
// the catch-up at the next tick rather than after the whole of it.
func TestRunCatchesUpTickByTick(t *testing.T) {
	wall := &fakeWall{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	c, err := New(mustScenario(t, smallScenario), Options{Logger: testLogger(t), Wall: wall.now, SkipNodeMinutes: true})
	if err != nil {
		t.Fatal(err)
	}
	start := c.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 1) }()
	for !c.Running() {
		time.Sleep(time.Millisecond)
	}
	// A year behind at 1×: three million ten-second ticks to catch up.
	behind := 365 * 24 * time.Hour
	wall.add(behind)
	var seen time.Time
	for seen = c.Now(); !seen.After(start); seen = c.Now() {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if !seen.Before(start.Add(behind)) {
		t.Errorf("a caller was first answered at %v, after the whole catch-up to %v", seen, start.Add(behind))
	}
	if end := c.Now(); !end.Before(start.Add(behind)) {
		t.Errorf("the cancel stopped the catch-up at %v, its end; want a tick or so after %v", end, seen)
	}
	if d := c.Now().Sub(start); d%(10*time.Second) != 0 {
		t.Errorf("clock moved %v, not whole 10 s ticks", d)
	}
}
