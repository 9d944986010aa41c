package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/config"
)

// hangingNomad is a Nomad that takes the requests whose path is in hang
// and answers them only when the test ends; every other path is a 404.
// entered is closed on the first held request.
func hangingNomad(t *testing.T, hang ...string) (url string, entered <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	in := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range hang {
			if r.URL.Path == p {
				once.Do(func() { close(in) })
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv.URL, in
}

// TestClientStopDoesNotWaitOnNomad: a client agent without nomad.node_id
// asks its local Nomad agent for its node; stopped while that Nomad takes
// the call and does not answer, it stops at once. Before, the call was
// made without the agent's context, so Run returned only once the call
// timed out (30 s), past the client agent's ClientStopWait and Nomad's
// default kill_timeout of 5 s.
func TestClientStopDoesNotWaitOnNomad(t *testing.T) {
	nomad, entered := hangingNomad(t, "/v1/agent/self")
	cfg, _ := lonelyClientConfig(t, "stopping")
	cfg.Nomad.Address = nomad
	cfg.Nomad.NodeID = ""
	c, err := NewClient(cfg, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { c.Close() })
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the client agent did not ask Nomad for its node")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(ClientStopWait):
		t.Fatalf("Run still runs %s after its stop, waiting on Nomad", ClientStopWait)
	}
}

// fastClock is the wall clock at a speed: a policy step of speed seconds
// is a second of the leader's wait between cycles.
type fastClock struct{ speed float64 }

func (c fastClock) Now(context.Context) (time.Time, error) { return time.Now().UTC(), nil }
func (c fastClock) Speed() float64                         { return c.speed }

// stepPolicy is a policy of dc1 forecasting every step.
func stepPolicy(step string) string {
	return `shaping "dc1" {
  locality {
    datacenter = "dc1"
  }
  forecast {
    horizon = "6h"
    step    = "` + step + `"
    history = "1d"
  }
}
`
}

// TestReloadShortensTheWaitForTheNextCycle: a reload whose policies
// forecast every minute instead of every hour takes effect at once: the
// leader's next cycle comes a minute (of data time) after its last, not
// an hour. Before, the leader slept the wait it computed from the
// policies of its last cycle, so the reloaded policies (logged
// "reloaded") ran only an hour of data time later.
func TestReloadShortensTheWaitForTheNextCycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "dc1.hcl")
	write(t, file, stepPolicy("1h"))
	cfg := config.DevDefault()
	cfg.Name = "reload-wait"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	cfg.Policies.Dir = dir
	// An hour of data time is 60 s of wall time, a minute is a second.
	a, err := New(cfg, Options{Logger: testLogger(t), Clock: fastClock{speed: 60}})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, a.Run, a.Close)
	eventually(t, 30*time.Second, "the first cycle", func() bool { return a.latest.Load() != nil })
	write(t, file, stepPolicy("1m"))
	reloaded := time.Now()
	if err := a.Reload(nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a cycle of the reloaded policies", func() bool {
		l := a.latest.Load()
		return l != nil && l.cycle.Started.After(reloaded)
	})
}

// failingClock is a data clock that fails while fail is set, as a
// simulator's clock does while the simulator does not answer.
type failingClock struct{ fail atomic.Bool }

func (c *failingClock) Now(context.Context) (time.Time, error) {
	if c.fail.Load() {
		return time.Time{}, errors.New("sim clock: Get \"http://127.0.0.1:4646/v1/sim/clock\": connection refused")
	}
	return time.Now().UTC(), nil
}
func (c *failingClock) Speed() float64 { return 1 }

// TestNoDataTimeLoggedOnce: while the data clock fails, cycle after
// cycle, the skipped cycles are logged once (a failing.Streak), not a
// line a cycle, and /v1/status's last cycle says why each was skipped;
// when the clock answers again, that is said once.
func TestNoDataTimeLoggedOnce(t *testing.T) {
	t.Parallel()
	clock := &failingClock{}
	clock.fail.Store(true)
	var logs syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Name: "clock", Level: hclog.Info, Output: io.MultiWriter(&logs, testWriter{t})})
	cfg := serverConfig(t, t.TempDir())
	a, stop := runAgentWith(t, cfg, Options{Logger: log, Clock: clock, CycleInterval: 50 * time.Millisecond})
	t.Cleanup(stop)
	eventually(t, 30*time.Second, "a cycle skipped for want of a data time", func() bool {
		l := a.latest.Load()
		return l != nil && strings.Contains(l.cycle.Error, "connection refused")
	})
	time.Sleep(time.Second) // twenty cycles more
	if got := logs.count("cycle skipped: no data time"); got != 1 {
		t.Errorf("the failing clock logged %d times; want once (a streak)", got)
	}
	clock.fail.Store(false)
	eventually(t, 10*time.Second, "the log to say the clock answers again", func() bool {
		return logs.count("data time again") == 1
	})
}

// TestClientReportFailuresSayWhatChanged: a client agent whose reports
// fail says so once, and again at once when the failure changes (its
// Nomad, which first had no leader, now refuses its token), not only at
// debug level; the same failure again is not a line a try. Before, every
// failure after the first was logged at debug level: the log kept naming
// the first cause after another had taken its place.
func TestClientReportFailuresSayWhatChanged(t *testing.T) {
	t.Parallel()
	var answer atomic.Value
	answer.Store("500 No cluster leader")
	nomad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, msg, _ := strings.Cut(answer.Load().(string), " ")
		status := map[string]int{"500": 500, "403": 403}[code]
		http.Error(w, msg, status)
	}))
	t.Cleanup(nomad.Close)
	cfg, _ := lonelyClientConfig(t, "failing")
	cfg.Nomad.Address = nomad.URL
	var logs syncBuffer
	c, err := NewClient(cfg, Options{Logger: hclog.New(&hclog.LoggerOptions{Name: "failing", Level: hclog.Info,
		Output: io.MultiWriter(&logs, testWriter{t})})})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, c.Run, c.Close)
	eventually(t, 10*time.Second, "the first failure logged", func() bool {
		return logs.count("No cluster leader") > 0
	})
	answer.Store("403 Permission denied")
	eventually(t, 15*time.Second, "the changed failure logged", func() bool {
		return logs.count("Permission denied") > 0
	})
	time.Sleep(4 * time.Second) // two tries more, or three
	if n := logs.count("report failed"); n != 2 {
		t.Errorf("%d lines say the report failed; want 2, one per cause:\n%s", n, logs.String())
	}
}

// TestLeaderViewFailureLoggedOnce: a server that cannot read the
// leader's last cycle (here no leader is known: its cluster waits for
// servers that never come) logs it once while it stays the same, not at
// each read of the forecasts, hotspots or anomalies (one a second at
// most, per reader); the /v1 answers keep saying why. Before, each failed
// read was a warning.
func TestLeaderViewFailureLoggedOnce(t *testing.T) {
	cfg := serverConfig(t, t.TempDir())
	cfg.Server.BootstrapExpect = 3
	cfg.Server.RetryJoin = []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))} // nobody there
	var logs syncBuffer
	a, err := New(cfg, Options{Policies: devPolicies(t), Logger: hclog.New(&hclog.LoggerOptions{Name: "alone", Level: hclog.Info,
		Output: io.MultiWriter(&logs, testWriter{t})})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	for range 5 {
		a.leaderCache.mu.Lock()
		a.leaderCache.view = nil // as if a second had passed
		a.leaderCache.mu.Unlock()
		v, ok := a.fromLeader(context.Background())
		if !ok || v.err == nil || !strings.Contains(v.err.Error(), "no leader is known") {
			t.Fatalf("the read without a leader: ok %v, %v; want the error that no leader is known", ok, v)
		}
	}
	if n := logs.count("cannot read the leader's last cycle"); n != 1 {
		t.Errorf("5 failed reads logged %d times; want once (a streak)", n)
	}
}

// TestForecastsWhileNomadHoldsTheActsWrites: a Nomad that answers reads
// but takes the act half's writes (a move's stop of an allocation, a
// placeholder's registration) and does not answer them leaves the
// leader's cycle alone: it goes on collecting and publishing forecasts
// every interval while the act pass waits on Nomad, and the agent stops
// at once all the same. Before, the act pass ran inside the cycle,
// between the forecast and its publication: each held write (30 s, the
// Nomad client's bound) held the cycle, and no cycle was published for
// the 90 s the dev policies' three placeholder registrations took.
//
// It runs on webScenario with its one policy, and the act half's first
// write is the stop of a web allocation an operator asked to move: on the
// default scenario with the dev policies it was the rack maintenance's
// first placeholder, 1h44m into the scenario, some 10 s of wall time at
// 600x.
func TestForecastsWhileNomadHoldsTheActsWrites(t *testing.T) {
	t.Parallel()
	d := startScenario(t, webScenario(t), 600)
	target, err := url.Parse(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // calls cut off by the agent's stop
	held := make(chan string, 100)
	release := make(chan struct{})
	nomad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			// Read whole, so that the server sees the client go.
			_, _ = io.Copy(io.Discard, r.Body)
			held <- r.Method + " " + r.URL.Path
			select {
			case <-r.Context().Done(): // the client's bound, or the agent's stop
			case <-release:
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(nomad.Close)
	t.Cleanup(func() { close(release) })
	cfg := serverConfig(t, t.TempDir())
	cfg.Nomad.Address = nomad.URL
	a, stop := runAgentWith(t, cfg, Options{Logger: testLogger(t), Clock: d, Policies: webPolicies(t)})
	t.Cleanup(stop)
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: d.URL})
	if err != nil {
		t.Fatal(err)
	}
	alloc := runningAlloc(t, nc, "web")
	c := &api.Client{Address: "http://" + a.HTTPAddr()}
	eventually(t, 30*time.Second, "the move of a web allocation queued", func() bool {
		_, err := submitAway(context.Background(), c, alloc)
		return err == nil
	})
	select {
	case call := <-held:
		t.Logf("Nomad holds %s", call)
	case <-time.After(60 * time.Second):
		t.Fatal("the act half made no write to Nomad in 60 s")
	}
	first := a.latest.Load()
	cycles := 0
	for last := first; cycles < 3; {
		eventually(t, 10*time.Second, "the leader's next cycle while Nomad holds a write", func() bool {
			l := a.latest.Load()
			return l != nil && l != last && l.cycle.Forecasts > 0
		})
		last = a.latest.Load()
		cycles++
	}
	began := time.Now()
	stop()
	if took := time.Since(began); took > StopWait {
		t.Errorf("the agent took %s to stop while Nomad held a write; want under StopWait (%s)", took, StopWait)
	}
}
