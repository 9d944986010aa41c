// Package e2e runs foreshape as operators do: separate processes talking
// over the network. The agent runs against `foreshape sim serve` through the
// real nomad/api client, and, when NOMAD_ADDR is set, against a real Nomad.
//
// These tests build the binary once and must never reach anything but
// loopback addresses (and NOMAD_ADDR and CONSUL_HTTP_ADDR when an operator
// sets them, and the servers TestServersRollingUpdateOnRealNomad runs on
// NOMAD_ADDR's nodes, which fetch its artifacts from
// FORESHAPE_E2E_ARTIFACT_HOST).
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/internal/testparallel"
	"github.com/foreshape/foreshape/internal/testport"

	// The binary the tests run is main.go over this package: importing it
	// puts the binary's sources in go test's cache key, so a cached e2e
	// result is never one of an older binary.
	_ "github.com/foreshape/foreshape/command"
	"github.com/foreshape/foreshape/sim"
)

var binary string

// e2eParallel is how many of the tests marked parallel run at once when
// go test's -parallel does not say. Each waits on a simulator running in
// data time (a maintenance's three hours at 120x-300x) and on processes
// that compute little meanwhile, so go test's default (GOMAXPROCS, two on
// a 2-core CI machine) left the CPU mostly idle while the package took
// four minutes. At six, the tests queued for a slot: the 14 that run
// without a real Nomad (subtests counted) took 85 s after the build at a
// load of 24 under -race; at eight, 65-73 s in three runs at a load of 14
// to 27. TestAgentForecastsAgainstSimServe's mean MASE / naive was
// 0.74-0.90 there (0.72-0.85 at six), each locality scored at 5 or 6
// origins (6 at six; it wants at least 3). More would gain little:
// TestActDevWithin90s runs the demo at its own pace, about 55 s.
const e2eParallel = 8

func TestMain(m *testing.M) {
	testparallel.Default("e2e", e2eParallel)
	dir, err := os.MkdirTemp("", "foreshape-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "foreshape")
	build := exec.Command("go", "build", "-o", binary, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// start runs the binary with args until the test ends (SIGINT, then kill).
// The process does not inherit NOMAD_* or CONSUL_HTTP_* variables: they
// override the configuration, and each test writes the configuration it
// means (NOMAD_ADDR included, when a test runs against a real Nomad).
func start(t *testing.T, name string, args ...string) *syncbuf.Buffer {
	t.Helper()
	out := &syncbuf.Buffer{}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOMAD_") && !strings.HasPrefix(kv, "CONSUL_HTTP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && !t.Failed() {
				t.Errorf("%s exited with %v\n%s", name, err, out.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop within 15s of SIGINT", name)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(out.String(), 60))
		}
	})
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a TCP port free on loopback, held for this test until it
// ends: not from the ephemeral range, where another package's outgoing
// connections took an agent's Raft port between its pick and its bind (see
// internal/testport).
func freePort(t *testing.T) int {
	t.Helper()
	return testport.Get(t)
}

func waitHTTP(t *testing.T, url string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within %v", url, d)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// cluster is a `sim serve` process and an agent process watching it.
type cluster struct {
	simURL string
	agent  *api.Client
	log    *syncbuf.Buffer
}

// startClusterWith starts `sim serve` at speed with simArgs and an agent
// with the policies of policyFile; extra is appended to the agent's
// configuration.
func startClusterWith(t *testing.T, speed float64, policyFile string, simArgs []string, extra ...string) cluster {
	t.Helper()
	simPort, httpPort, raftPort := freePort(t), freePort(t), freePort(t)
	simURL := fmt.Sprintf("http://127.0.0.1:%d", simPort)
	start(t, "sim", append([]string{"sim", "serve", "-addr", fmt.Sprintf("127.0.0.1:%d", simPort), "-speed", fmt.Sprint(speed)}, simArgs...)...)
	waitHTTP(t, simURL+"/v1/status/leader", 30*time.Second)

	dir := t.TempDir()
	polDir := writePolicies(t, dir, policyFile)
	cfg := serverConfig("e2e-1", dir, polDir, simURL, httpPort, raftPort, strings.Join(extra, "\n"))
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log := start(t, "agent", "agent", "-config", cfgPath, "-sim-clock")
	agentURL := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, agentURL+"/v1/health", 30*time.Second)
	return cluster{simURL: simURL, agent: &api.Client{Address: agentURL}, log: log}
}

// localityCPU is the ground truth CPU demand of a locality, percent of its
// capacity, per minute.
func localityCPU(truth sim.Truth, match func(dc, pool, class string) bool) map[time.Time]float64 {
	demand, capacity := map[time.Time]float64{}, map[time.Time]float64{}
	for _, nm := range truth.NodeMinutes {
		if match(nm.Datacenter, nm.NodePool, nm.NodeClass) {
			demand[nm.Minute] += math.Min(nm.CPUDemandMHz, nm.CPUCapacityMHz)
			capacity[nm.Minute] += nm.CPUCapacityMHz
		}
	}
	out := map[time.Time]float64{}
	for m, d := range demand {
		if capacity[m] > 0 {
			out[m] = 100 * d / capacity[m]
		}
	}
	return out
}

// accuracySeeds are the simulator seeds the forecast accuracy is checked
// on: the default scenario's own and two more.
var accuracySeeds = []uint64{7, 8, 9}

// The p50's MASE over the next hour, as a multiple of naive's, for the
// forecasts made with two virtual hours of history, at origins about
// scoreEvery apart over scoreSpan (the first at or after each multiple of
// scoreEvery past two hours): on average over each locality's origins at
// most maxLocalityMASERatio, and over every origin of the dev localities
// of a run at most maxMeanMASERatio. These bounds catch a broken forecast
// path (a lagged, stale or mis-scaled forecast scores several times
// naive's), not the accuracy goal, which the docs report: a single forecast
// scores one hour of one locality, a small sample, and which model forecasts
// a locality turns on a backtest of about one horizon. In process the ratios
// of single forecasts range 0.3 to 1.6 on these seeds, their means per
// locality over seven origins 0.58 to 1.01 (TestDevScenarioAccuracy in
// agent/forecast/eval holds the engine to those). In the agent, whose history
// lags the simulator by a few samples under load, dc1/batch (seed 7: a level
// that moves by tenths of a percent, where naive's error is small) averaged
// 0.86-0.94 where the network forecast it, but 1.20 and 1.72 in two runs
// where its backtest chose mstl-arima (+ mstl-ets) instead, single
// forecasts up to 3.46; that run's mean over the dev localities was 0.99.
const (
	maxMeanMASERatio     = 1.25
	maxLocalityMASERatio = 2.5
	scoreEvery           = 5 * time.Minute
	scoreSpan            = 30 * time.Minute
)

func TestAgentForecastsAgainstSimServe(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	for _, seed := range accuracySeeds {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			agentForecasts(t, seed)
		})
	}
}

// agentForecasts runs the agent against `sim serve` with the bundled
// default scenario and seed, and checks the dc2 hotspot is reported before
// the declared surge and that the p50 of the dev localities' CPU forecasts
// made from two virtual hours of history on do as well as naive (see
// maxMeanMASERatio).
func agentForecasts(t *testing.T, seed uint64) {
	// The forecasts are measured against the simulator's ground truth, which
	// must not change under them: the agent plans but does not act.
	c := startClusterWith(t, 600, "../command/dev-policies.hcl", []string{"-seed", fmt.Sprint(seed)}, "forecast_only = true")
	ctx := context.Background()
	began := time.Now()

	// Watch for the hotspot the declared dc2 surge must raise before it
	// begins.
	type sighting struct{ detected, at time.Time }
	firstHot := make(chan sighting, 1)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		for watchCtx.Err() == nil {
			hs, err := c.agent.Hotspots(watchCtx)
			for _, h := range hs {
				if err == nil && h.Locality == "dc2" && h.Metric == "cpu" {
					firstHot <- sighting{h.Detected, h.At}
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	want := []string{"dc1/*/web:cpu", "dc2:cpu", "dc1/batch:cpu", "dc3:cpu"}
	var fcs []api.Forecast
	for {
		var err error
		fcs, err = c.agent.Forecasts(ctx)
		have := map[string]bool{}
		for _, f := range fcs {
			if len(f.Bands) > 0 && len(f.Times) == 60 {
				have[f.Series] = true
			}
		}
		all := err == nil
		for _, w := range want {
			all = all && have[w]
		}
		if all {
			break
		}
		if time.Since(began) > 60*time.Second {
			t.Fatalf("no bands for every locality within 60s (have %d forecasts, err %v)", len(fcs), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("bands for every locality %.1fs after start", time.Since(began).Seconds())

	// Score forecasts made with two virtual hours of history and up to
	// scoreSpan more, one every scoreEvery per series: record them as they
	// come, then let the hour the last one covers pass.
	var clock sim.ClockState
	getJSON(t, c.simURL+"/v1/sim/clock", &clock)
	scoreFrom := clock.Start.Add(2 * time.Hour)
	next := map[string]time.Time{}
	for _, w := range want {
		next[w] = scoreFrom
	}
	fcs = fcs[:0]
	for {
		var all []api.Forecast
		getJSON(t, c.agent.Address+"/v1/forecasts?history=true", &all)
		for _, f := range all {
			at, ok := next[f.Series]
			if f.Ready() && ok && !f.Origin.Before(at) && !f.Origin.After(scoreFrom.Add(scoreSpan)) {
				fcs = append(fcs, f)
				for !at.After(f.Origin) {
					at = at.Add(scoreEvery)
				}
				next[f.Series] = at
			}
		}
		getJSON(t, c.simURL+"/v1/sim/clock", &clock)
		if clock.Now.After(scoreFrom.Add(scoreSpan + scoreEvery)) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var latest time.Time
	for _, f := range fcs {
		if end := f.Times[len(f.Times)-1]; end.After(latest) {
			latest = end
		}
	}
	for {
		getJSON(t, c.simURL+"/v1/sim/clock", &clock)
		if clock.Now.After(latest.Add(2 * time.Minute)) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var truth sim.Truth
	getJSON(t, c.simURL+"/v1/sim/truth", &truth)

	var surge time.Time
	for _, ev := range truth.Events {
		if ev.Name == "dc2-surge" {
			surge = ev.Time
		}
	}
	if surge.IsZero() {
		t.Fatal("the ground truth has no dc2-surge event")
	}
	select {
	case s := <-firstHot:
		t.Logf("dc2 cpu hotspot first reported at data time %s for %s; the surge began at %s",
			s.detected.Format("15:04"), s.at.Format("15:04"), surge.Format("15:04"))
		if !s.detected.Before(surge) {
			t.Errorf("the dc2 hotspot was reported at %s, not before the surge at %s", s.detected, surge)
		}
	default:
		t.Errorf("no dc2 cpu hotspot reported before %s (surge at %s)", latest, surge)
	}
	ratios := map[string][]float64{}
	var all []float64
	for _, f := range fcs {
		if f.Metric != "cpu" {
			continue
		}
		loc := f.Locality
		actual := localityCPU(truth, func(dc, pool, class string) bool {
			parts := strings.Split(loc+"/*/*", "/")
			ok := func(want, got string) bool { return want == "*" || want == got }
			return ok(parts[0], dc) && ok(parts[1], pool) && ok(parts[2], class)
		})
		// MASE: mean absolute error over the hour, scaled by the one-step
		// naive error of the truth in the three hours before the origin;
		// the same for the naive forecast (the last observed value), as
		// the bar to clear.
		last := f.History[len(f.History)-1].Value
		var errSum, naiveErr, scale float64
		var n, nn int
		p50 := f.Band(0.5)
		for i, at := range f.Times {
			if a, ok := actual[at]; ok {
				errSum += math.Abs(p50[i] - a)
				naiveErr += math.Abs(last - a)
				n++
			}
		}
		for m := f.Origin.Add(-3 * time.Hour); m.Before(f.Origin); m = m.Add(time.Minute) {
			a, ok1 := actual[m]
			b, ok2 := actual[m.Add(time.Minute)]
			if ok1 && ok2 {
				scale += math.Abs(b - a)
				nn++
			}
		}
		if n < 50 || nn < 10 || scale == 0 {
			t.Errorf("%s: too little ground truth to score (%d forecast points, %d history points)", f.Series, n, nn)
			continue
		}
		scale /= float64(nn)
		mase, naive := errSum/float64(n)/scale, naiveErr/float64(n)/scale
		t.Logf("%s: origin %s, model %s: MASE of p50 against ground truth over the next hour %.2f (naive %.2f)",
			f.Series, f.Origin.Format("15:04"), f.Model, mase, naive)
		if os.Getenv("FORESHAPE_E2E_DEBUG") != "" {
			var hist, acts []string
			for _, h := range f.History {
				hist = append(hist, fmt.Sprintf("%s %.2f/%.2f", h.Time.Format("15:04:05"), h.Value, actual[h.Time]))
			}
			for i, at := range f.Times {
				acts = append(acts, fmt.Sprintf("%.1f/%.1f", p50[i], actual[at]))
			}
			t.Logf("history %v\np50/actual %v", hist, acts)
		}
		if math.IsNaN(mase) || naive == 0 {
			t.Errorf("%s at %s: MASE %.2f against naive %.2f: no ratio", f.Series, f.Origin.Format("15:04"), mase, naive)
			continue
		}
		ratios[f.Series] = append(ratios[f.Series], mase/naive)
		all = append(all, mase/naive)
	}
	for _, w := range want {
		rs := ratios[w]
		if len(rs) < 3 {
			t.Errorf("%s: %d forecasts scored between %s and %s, want at least 3", w, len(rs),
				scoreFrom.Format("15:04"), scoreFrom.Add(scoreSpan).Format("15:04"))
			continue
		}
		m := meanOf(rs)
		t.Logf("seed %d %-14s MASE / naive at %d origins: %.2f, mean %.2f", seed, w, len(rs), rs, m)
		if m > maxLocalityMASERatio {
			t.Errorf("%s: the p50's MASE is %.2f times naive's on average over %d origins, more than %.2f", w, m, len(rs), maxLocalityMASERatio)
		}
	}
	if len(all) == 0 {
		t.Fatal("no forecast scored")
	}
	mean := meanOf(all)
	t.Logf("seed %d: mean MASE / naive over %d forecasts of the dev localities %.2f", seed, len(all), mean)
	if mean > maxMeanMASERatio {
		t.Errorf("seed %d: the p50's MASE is %.2f times naive's on average over the dev localities, more than %.2f", seed, mean, maxMeanMASERatio)
	}
}

func meanOf(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v / float64(len(x))
	}
	return s
}
