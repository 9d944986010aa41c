package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/sim"
)

// actRun is a `foreshape sim serve` process and a `foreshape agent`
// process acting on it, with what a test needs to stop the agent hard and
// start it again on the same data directory.
type actRun struct {
	t        *testing.T
	simURL   string
	agentURL string
	cfgPath  string
	agent    *exec.Cmd
	agentLog *syncbuf.Buffer
	client   *api.Client
	nomad    *nomadapi.Client
	// started counts the agent processes started.
	started int
	// explain, when set, logs what a test needs to see when a wait
	// fails, while the agent still runs.
	explain func()
}

// startAct starts the scenario at speed and an agent with the policies and
// extra configuration.
func startAct(t *testing.T, scenario, policyFile string, speed float64, extra string) *actRun {
	t.Helper()
	simPort, httpPort, raftPort := freePort(t), freePort(t), freePort(t)
	r := &actRun{t: t, simURL: fmt.Sprintf("http://127.0.0.1:%d", simPort), agentURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort)}
	start(t, "sim", "sim", "serve", "-addr", fmt.Sprintf("127.0.0.1:%d", simPort), "-speed", fmt.Sprint(speed),
		"-scenario", scenario, "-log-level", "warn")
	waitHTTP(t, r.simURL+"/v1/status/leader", 30*time.Second)
	dir := t.TempDir()
	polDir := writePolicies(t, dir, policyFile)
	cfg := actConfig("act-e2e", dir, polDir, r.simURL, httpPort, raftPort, extra)
	r.cfgPath = filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.client = &api.Client{Address: r.agentURL}
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: r.simURL})
	if err != nil {
		t.Fatal(err)
	}
	r.nomad = nc
	r.startAgent()
	return r
}

// startAgent starts the agent process (again) and waits for its API.
func (r *actRun) startAgent() {
	r.t.Helper()
	r.agentLog = &syncbuf.Buffer{}
	cmd := exec.Command(binary, "agent", "-config", r.cfgPath, "-sim-clock")
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = r.agentLog, r.agentLog
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.agent = cmd
	r.started++
	n, out := r.started, r.agentLog
	r.t.Cleanup(func() {
		if r.t.Failed() {
			// Every process's output, a killed one's too; the
			// forecast loop's hotspot lines left out.
			var lines []string
			for _, l := range strings.Split(out.String(), "\n") {
				if !strings.Contains(l, "hotspot predicted") {
					lines = append(lines, l)
				}
			}
			r.t.Logf("agent output (process %d):\n%s", n, tail(strings.Join(lines, "\n"), 80))
		}
		if cmd.ProcessState != nil {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	waitHTTP(r.t, r.agentURL+"/v1/health", 30*time.Second)
}

// kill stops the agent with SIGKILL: nothing of it runs afterwards.
func (r *actRun) kill() {
	r.t.Helper()
	if err := r.agent.Process.Kill(); err != nil {
		r.t.Fatal(err)
	}
	_ = r.agent.Wait()
}

// now is the simulator's data time.
func (r *actRun) now() time.Time {
	r.t.Helper()
	var st struct{ Now time.Time }
	getJSON(r.t, r.simURL+"/v1/sim/clock", &st)
	return st.Now
}

// until polls every interval until cond holds or the data time passes
// limit; it fails the test then.
func (r *actRun) until(limit time.Time, what string, cond func() bool) {
	r.t.Helper()
	for {
		if cond() {
			return
		}
		if now := r.now(); now.After(limit) {
			if r.explain != nil {
				r.explain()
			}
			r.t.Fatalf("%s: not by data time %s (now %s)", what, limit.Format("15:04"), now.Format("15:04"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *actRun) queue() api.Queue {
	r.t.Helper()
	var q api.Queue
	getJSON(r.t, r.agentURL+"/v1/queue", &q)
	return q
}

func (r *actRun) decisions() []api.Decision {
	r.t.Helper()
	var d api.Decisions
	getJSON(r.t, r.agentURL+"/v1/decisions", &d)
	sort.SliceStable(d.Decisions, func(i, j int) bool { return d.Decisions[i].Time.Before(d.Decisions[j].Time) })
	return d.Decisions
}

func (r *actRun) reservations() []api.Reservation {
	r.t.Helper()
	var rs api.Reservations
	getJSON(r.t, r.agentURL+"/v1/reservations", &rs)
	return rs.Reservations
}

func (r *actRun) truth() sim.Truth {
	r.t.Helper()
	var tr sim.Truth
	getJSON(r.t, r.simURL+"/v1/sim/truth", &tr)
	return tr
}

// placeholders lists the placeholder jobs Nomad still runs.
func (r *actRun) placeholders() []string {
	r.t.Helper()
	jobs, _, err := r.nomad.Jobs().PrefixList("foreshape-reserve-")
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, j := range jobs {
		if !j.Stop && j.Status != "dead" {
			out = append(out, j.ID)
		}
	}
	return out
}

// logAct logs the queue, the reservations and the latest decisions, for a
// failed test.
func (r *actRun) logAct() {
	var q api.Queue
	if err := get(r.agentURL+"/v1/queue", &q); err != nil {
		r.t.Logf("queue: %v", err)
		return
	}
	for i, mr := range q.Requests {
		if i >= 40 {
			r.t.Logf("… %d requests in all", len(q.Requests))
			break
		}
		r.t.Logf("%s %s %s→%s %s: %s", mr.ID, mr.Resource, mr.Source, mr.Target, mr.State, mr.Reason)
	}
	var tr sim.Truth
	if get(r.simURL+"/v1/sim/truth", &tr) == nil {
		for _, q := range mutating(tr) {
			if strings.HasPrefix(q.Path, "/v1/node/") || strings.HasPrefix(q.Path, "/v1/allocation/") || strings.HasPrefix(q.Path, "/v1/job") {
				r.t.Logf("nomad %s %s %s → %d (held %v, applied %d): %.120s", q.Time.Format("15:04:05"), q.Method, q.Path, q.Status, q.Held, q.Applied, q.Body)
			}
		}
	}
	var rs api.Reservations
	if get(r.agentURL+"/v1/reservations", &rs) == nil {
		for _, x := range rs.Reservations {
			r.t.Logf("%s %s %s %s", x.ID, x.Request, x.Job, x.State)
		}
	}
	var d api.Decisions
	if get(r.agentURL+"/v1/decisions", &d) == nil {
		sort.SliceStable(d.Decisions, func(i, j int) bool { return d.Decisions[i].Time.Before(d.Decisions[j].Time) })
		for i, x := range d.Decisions {
			if i == 100 && len(d.Decisions) > 160 {
				r.t.Logf("… %d decisions left out", len(d.Decisions)-160)
			}
			if i >= 100 && i < len(d.Decisions)-60 {
				continue
			}
			r.t.Logf("decision %s %s %s: %s", x.Time.Format("15:04:05"), x.Kind, x.Request, x.Reason)
		}
	}
}

// mutating returns the mutating requests the simulator received, its own
// /v1/sim/ endpoints left out.
func mutating(tr sim.Truth) []sim.RequestRecord {
	var out []sim.RequestRecord
	for _, q := range tr.Requests {
		if !strings.HasPrefix(q.Path, "/v1/sim/") {
			out = append(out, q)
		}
	}
	return out
}

// stopsPerAlloc counts the stop calls that took effect on each allocation
// (answered with success, or applied by a hold fault whose answer was
// lost).
func stopsPerAlloc(tr sim.Truth) map[string]int {
	re := regexp.MustCompile(`^/v1/allocation/([^/?]+)/stop(\?|$)`)
	out := map[string]int{}
	for _, q := range mutating(tr) {
		if m := re.FindStringSubmatch(q.Path); m != nil && q.Succeeded() {
			out[m[1]]++
		}
	}
	return out
}

// maxOverlap is the most requests whose [started, finished) overlap, among
// those that touch locality loc.
func maxOverlap(reqs []api.MigrationRequest, loc string) int {
	type ev struct {
		at time.Time
		d  int
	}
	var evs []ev
	for _, q := range reqs {
		if q.Started == nil || (q.Source != loc && q.Target != loc) {
			continue
		}
		end := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		if q.Finished != nil {
			end = *q.Finished
		}
		evs = append(evs, ev{*q.Started, 1}, ev{end, -1})
	}
	sort.Slice(evs, func(i, j int) bool {
		if !evs[i].at.Equal(evs[j].at) {
			return evs[i].at.Before(evs[j].at)
		}
		return evs[i].d < evs[j].d
	})
	cur, best := 0, 0
	for _, e := range evs {
		cur += e.d
		best = max(best, cur)
	}
	return best
}

// peakUtilisation is the highest CPU demand over capacity of a
// datacenter, and of one of its nodes, over the minutes in [from, to).
func peakUtilisation(tr sim.Truth, dc string, from, to time.Time) (locality, node float64, congested int) {
	demand, capacity := map[time.Time]float64{}, map[time.Time]float64{}
	for _, m := range tr.NodeMinutes {
		if m.Datacenter != dc || m.Minute.Before(from) || !m.Minute.Before(to) {
			continue
		}
		demand[m.Minute] += m.CPUDemandMHz
		capacity[m.Minute] += m.CPUCapacityMHz
		node = max(node, 100*m.CPUPeakMHz/m.CPUCapacityMHz)
		if m.Congested {
			congested++
		}
	}
	for t, d := range demand {
		locality = max(locality, 100*d/capacity[t])
	}
	return locality, node, congested
}

var sizeRE = regexp.MustCompile(`^reserve (\d+) MHz / (\d+) MiB in (\S+) from \S+ for (mr-\d+)`)

// TestActMaintenanceDrain: a maintenance drain of datacenter A at 07:00
// while B climbs to its daily peak. foreshape queues A's allocations
// migrate.lead_time (20m) ahead, holds room in B for each of them before
// 06:45 (reserve.lead_time ahead of the window), moves them in score order
// (the db service, priority 80, before the app) never more than two at a
// time in A or B, and leaves no placeholder behind; the simulator's ground
// truth shows no node of B over capacity while the work arrives.
func TestActMaintenanceDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	r := startAct(t, "testdata/act/scenario.hcl", "testdata/act/policies.hcl", 120, "")
	runMaintenance(t, r, true, maintenance{window: time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC), lead: 20 * time.Minute})
}

// maintenance is when a run's drain window of A starts and how long ahead
// its requests are queued (migrate.lead_time).
type maintenance struct {
	window time.Time
	lead   time.Duration
}

// peakFigures is what a maintenance run did to B: its peak CPU utilisation
// (the locality's and the hottest node's, percent) and its congested
// node-minutes, from the requests' queueing to an hour after the window.
type peakFigures struct {
	locality, node float64
	congested      int
}

// runMaintenance checks a maintenance run and logs its figures; strict
// asserts foreshape's guarantees (the FCFS baseline only reports).
func runMaintenance(t *testing.T, r *actRun, strict bool, m maintenance) peakFigures {
	// On failure, the planner's reasons: the queue, the reservations and
	// the decisions, with the forecast figures each check read.
	defer func() {
		if t.Failed() {
			r.logAct()
		}
	}()
	window := m.window
	end := window.Add(90 * time.Minute)
	reservedAt := map[string]time.Time{}
	r.until(end, "every request done", func() bool {
		q := r.queue()
		done := len(q.Requests) > 0
		for _, mr := range q.Requests {
			if !api.Finished(mr.State) {
				done = false
			}
		}
		return done && r.now().After(window.Add(5*time.Minute))
	})
	q := r.queue()
	ds := r.decisions()
	tr := r.truth()
	if len(q.Requests) != 8 {
		for _, mr := range q.Requests {
			t.Logf("%s %s %s: %s", mr.ID, mr.Resource, mr.State, mr.Reason)
		}
		t.Fatalf("%d requests; want one per allocation of app (6) and db (2) in A", len(q.Requests))
	}
	byID := map[string]api.MigrationRequest{}
	for _, mr := range q.Requests {
		byID[mr.ID] = mr
		if mr.State != api.StateDone || mr.Source != "dc1" || mr.Target != "dc2" {
			t.Errorf("request %+v", mr)
		}
		if mr.Finished == nil || !mr.Finished.Before(window) {
			t.Errorf("%s finished at %v, after the window at %s", mr.ID, mr.Finished, window.Format("15:04"))
		}
	}
	// Reservations: one per request, sized to its allocation, placed by
	// 06:45.
	reserved := map[string]string{}
	for _, d := range ds {
		if d.Kind != "reserve" {
			continue
		}
		m := sizeRE.FindStringSubmatch(d.Reason)
		if m == nil {
			continue
		}
		reservedAt[m[4]] = d.Time
		reserved[m[4]] = m[1] + "/" + m[2]
		if m[3] != "dc2" {
			t.Errorf("reservation in %s: %s", m[3], d.Reason)
		}
	}
	if strict {
		for id := range byID {
			at, ok := reservedAt[id]
			if !ok || at.After(window.Add(-15*time.Minute)) {
				t.Errorf("%s: reserved at %v; want by 06:45", id, at)
			}
		}
	}
	// Score order: both db moves start before any app move.
	var dbLast, appFirst, lastDone time.Time
	var estErr []string
	for _, mr := range q.Requests {
		if mr.Started == nil {
			continue
		}
		isDB := mr.Priority == 80
		if isDB && mr.Started.After(dbLast) {
			dbLast = *mr.Started
		}
		if !isDB && (appFirst.IsZero() || mr.Started.Before(appFirst)) {
			appFirst = *mr.Started
		}
		if mr.Finished != nil {
			estErr = append(estErr, fmt.Sprintf("%s %s/%.0fs", mr.ID, mr.Finished.Sub(*mr.Started), mr.EstimatedDurationS))
			if mr.Finished.After(lastDone) {
				lastDone = *mr.Finished
			}
		}
	}
	if strict && dbLast.After(appFirst) {
		t.Errorf("a db move started at %s, after the first app move at %s", dbLast.Format("15:04:05"), appFirst.Format("15:04:05"))
	}
	for _, loc := range []string{"dc1", "dc2"} {
		if n := maxOverlap(q.Requests, loc); strict && n > 2 {
			t.Errorf("%d moves at once in %s; max_parallel is 2", n, loc)
		}
	}
	// Every allocation stopped once, every placeholder gone.
	for alloc, n := range stopsPerAlloc(tr) {
		if n > 1 {
			t.Errorf("allocation %s stopped %d times", alloc, n)
		}
	}
	r.until(end.Add(30*time.Minute), "placeholders gone", func() bool { return len(r.placeholders()) == 0 })
	// The work landed in B.
	allocs, _, err := r.nomad.Allocations().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := r.nomad.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	dcOf := map[string]string{}
	for _, n := range nodes {
		dcOf[n.ID] = n.Datacenter
	}
	for _, a := range allocs {
		if (a.JobID == "app" || a.JobID == "db") && a.DesiredStatus == "run" && a.ClientStatus == "running" && dcOf[a.NodeID] != "dc2" {
			t.Errorf("%s runs in %s during A's maintenance", a.Name, dcOf[a.NodeID])
		}
	}
	// The act metrics count what happened.
	if strict {
		resp, err := http.Get(r.agentURL + "/v1/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`foreshape_queue_requests{state="done"} 8`, `foreshape_moves_started_total 8`,
			`foreshape_moves_finished_total{outcome="done"} 8`, `foreshape_move_duration_seconds_count 8`,
			`foreshape_reservations_held 0`, `foreshape_mutating_calls_total{kind="stop_alloc",outcome="done"} 8`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/v1/metrics lacks %s", want)
			}
		}
	}
	locPeak, nodePeak, congested := peakUtilisation(tr, "dc2", window.Add(-m.lead), window.Add(time.Hour))
	if strict && congested > 0 {
		t.Errorf("%d node-minutes of B over capacity while the work arrived", congested)
	}
	var leads []string
	for id, at := range reservedAt {
		leads = append(leads, fmt.Sprintf("%s %s", id, window.Sub(at)))
	}
	sort.Strings(leads)
	sort.Strings(estErr)
	t.Logf("figures: reservations' lead before the window: %s", strings.Join(leads, ", "))
	t.Logf("figures: reservation sizes (MHz/MiB): %v", reserved)
	t.Logf("figures: moves %d, durations actual/estimated: %s", len(q.Requests), strings.Join(estErr, ", "))
	t.Logf("figures: B's peak CPU utilisation %s–%s: locality %.1f%%, hottest node %.1f%%, congested node-minutes %d",
		window.Add(-m.lead).Format("15:04"), window.Add(time.Hour).Format("15:04"), locPeak, nodePeak, congested)
	t.Logf("figures: last db start %s, first app start %s, last move done %s (%s before the window), mutating calls %d",
		dbLast.Format("15:04:05"), appFirst.Format("15:04:05"), lastDone.Format("15:04:05"), window.Sub(lastDone), len(mutating(tr)))
	return peakFigures{locality: locPeak, node: nodePeak, congested: congested}
}

// TestActFCFSBaseline compares foreshape with a first come, first served
// queue under the same caps (no reservations, the order by age alone, no
// waiting for a congested target) on a maintenance whose moved work decides
// B's peak: A's 09:00 window queues A's busy app and db two hours ahead, at
// 07:00, as B's daily peak begins, and B has room for that work after its
// peak (08:00) but not during it. B's peak is the one its policy declares,
// so foreshape's forecast shows B at its line for the whole hour: no move
// fits into it, whenever the passes fall and whatever the reservations
// hold. foreshape must keep B uncongested (the guarantees
// TestActMaintenanceDrain asserts); the baseline, moving at once into the
// peak, must congest B, or the scenario would not tell the two apart. Both
// runs log their figures.
func TestActFCFSBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	m := maintenance{window: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), lead: 2 * time.Hour}
	var foreshape, fcfs peakFigures
	t.Run("runs", func(t *testing.T) {
		t.Run("foreshape", func(t *testing.T) {
			t.Parallel()
			r := startAct(t, "testdata/act/peak-scenario.hcl", "testdata/act/policies-peak.hcl", 300, "")
			foreshape = runMaintenance(t, r, true, m)
		})
		t.Run("fcfs", func(t *testing.T) {
			t.Parallel()
			r := startAct(t, "testdata/act/peak-scenario.hcl", "testdata/act/policies-peak-fcfs.hcl", 300, "")
			fcfs = runMaintenance(t, r, false, m)
		})
	})
	if t.Failed() {
		return
	}
	if fcfs.congested == 0 {
		t.Errorf("first come, first served left B uncongested (peak %.1f%%, hottest node %.1f%%): the moved work does not decide B's peak", fcfs.locality, fcfs.node)
	}
	t.Logf("figures: B 07:00–10:00, foreshape vs first come, first served: locality peak %.1f%% vs %.1f%%, hottest node %.1f%% vs %.1f%%, congested node-minutes %d vs %d",
		foreshape.locality, fcfs.locality, foreshape.node, fcfs.node, foreshape.congested, fcfs.congested)
}

// TestActDryRun runs the maintenance forecast_only: the simulator sees no
// mutating call while /v1/decisions shows what foreshape would do.
func TestActDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	r := startAct(t, "testdata/act/scenario.hcl", "testdata/act/policies.hcl", 300, "forecast_only = true")
	window := time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)
	r.until(window.Add(10*time.Minute), "past the window", func() bool { return r.now().After(window) })
	tr := r.truth()
	if m := mutating(tr); len(m) != 0 {
		t.Errorf("dry run: %d mutating calls, first %+v", len(m), m[0])
	}
	kinds := map[string]int{}
	for _, d := range r.decisions() {
		if strings.HasPrefix(d.Reason, "dry run (forecast_only): ") {
			kinds[d.Kind]++
		}
	}
	for _, k := range []string{"submit", "reserve", "start"} {
		if kinds[k] == 0 {
			t.Errorf("no dry-run %q decision; dry-run decisions by kind %v", k, kinds)
		}
	}
	q := r.queue()
	if len(q.Requests) != 8 {
		t.Errorf("%d requests queued; want the 8 the window needs", len(q.Requests))
	}
	for _, mr := range q.Requests {
		if mr.State == api.StateRunning || mr.State == api.StateDone {
			t.Errorf("dry run moved %s: %s", mr.ID, mr.State)
		}
	}
	t.Logf("figures: dry run decisions by kind %v, mutating calls 0", kinds)
}

// TestActDevWithin90s runs `foreshape agent -dev` as `make dev` does and
// checks that within 90 s it shows reservations and completed migrations,
// and what README's make dev paragraph says of them in the demo's data
// time (command/dev-policies.hcl): rack a's allocations move before its
// maintenance window opens at 08:00 and land in dc1's web nodes, where
// their room was held, and the api service in dc2 scales out for the
// hotspot before the surge at 09:00. The wall-clock times README gives
// are logged as figures.
func TestActDevWithin90s(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	port := freePort(t)
	out := start(t, "agent -dev", "agent", "-dev", "-http-addr", fmt.Sprintf("127.0.0.1:%d", port))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	started := time.Now()
	waitHTTP(t, base+"/v1/health", 30*time.Second)
	var sawReservation, sawDone, sawHotspot, sawScale time.Duration
	for time.Since(started) < 90*time.Second && (sawReservation == 0 || sawDone == 0 || sawScale == 0) {
		var rs api.Reservations
		if get(base+"/v1/reservations", &rs) == nil && len(rs.Reservations) > 0 && sawReservation == 0 {
			sawReservation = time.Since(started)
		}
		var q api.Queue
		if get(base+"/v1/queue", &q) == nil && sawDone == 0 {
			for _, mr := range q.Requests {
				if mr.State == api.StateDone {
					sawDone = time.Since(started)
				}
			}
		}
		var hs []api.Hotspot
		if sawHotspot == 0 && get(base+"/v1/hotspots", &hs) == nil {
			for _, h := range hs {
				if h.Locality == "dc2" {
					sawHotspot = time.Since(started)
				}
			}
		}
		var d api.Decisions
		if sawScale == 0 && get(base+"/v1/decisions?kind=scale", &d) == nil && len(d.Decisions) > 0 {
			sawScale = time.Since(started)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if sawReservation == 0 || sawDone == 0 {
		t.Fatalf("within 90 s: reservation seen after %v, completed migration after %v (0: never)\n%s", sawReservation, sawDone, tail(out.String(), 40))
	}
	var d api.Decisions
	if err := get(base+"/v1/decisions", &d); err != nil {
		t.Fatal(err)
	}
	window := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	surge := window.Add(time.Hour)
	submitted, done := 0, 0 // a submit decision names no request yet
	var queuedAt time.Time
	var scaled []api.Decision
	for _, dec := range d.Decisions {
		switch dec.Kind {
		case "submit":
			if strings.Contains(dec.Reason, `drain "rack-a-maintenance"`) {
				submitted++
				queuedAt = dec.Time
			}
		case "done":
			done++
			if !dec.Time.Before(window) || !strings.Contains(dec.Reason, "to dc1/*/web") || strings.Contains(dec.Reason, "outside") {
				t.Errorf("%s done at %s: %q; want it in dc1/*/web before the window at 08:00", dec.Request, dec.Time.Format("15:04:05"), dec.Reason)
			}
		case "scale":
			scaled = append(scaled, dec)
		}
	}
	if submitted == 0 || done < submitted {
		t.Errorf("%d requests queued for rack a's maintenance, %d done; decisions %+v", submitted, done, d.Decisions)
	}
	// The README: queued at 07:40 data time, the drain's lead time before
	// its 08:00 window (a cycle later under load).
	if lead := window.Add(-20 * time.Minute); queuedAt.Before(lead) || !queuedAt.Before(lead.Add(2*time.Minute)) {
		t.Errorf("rack a's requests queued at %s data time; want 07:40 (or the minute after), as the README says", queuedAt.Format("15:04:05"))
	}
	if len(scaled) == 0 || scaled[0].Policy != "dc2-web" || !scaled[0].Time.Before(surge) || !strings.Contains(scaled[0].Reason, `scale "api" up`) || !strings.Contains(scaled[0].Reason, "hotspot") {
		t.Errorf("scale decisions %+v; want dc2-web's api scaled up for the hotspot before the surge at 09:00", scaled)
	}
	t.Logf("figures: make dev: %d requests for rack a queued at %s data time; first reservation after %s, first completed migration after %s, dc2 hotspot after %s, scale after %s (wall clock from the agent's start)",
		submitted, queuedAt.Format("15:04"), sawReservation.Round(100*time.Millisecond), sawDone.Round(100*time.Millisecond),
		sawHotspot.Round(100*time.Millisecond), sawScale.Round(100*time.Millisecond))
}

// get decodes a GET answer, or says why it could not.
func get(url string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// childEnv is the environment of a child process: ours without NOMAD_* and
// CONSUL_HTTP_* (the configuration says which Nomad), as start does.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOMAD_") && !strings.HasPrefix(kv, "CONSUL_HTTP_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestActScaleBeforeTheWindow: B is full, so the room A's work needs at
// 07:00 cannot be reserved; B's policy scales its "local" service through
// the nomad-job target before the window. A new version of "local" rolled
// out at 06:30 keeps a deployment active (two allocations, eight minutes
// healthy each), which Nomad answers with 400
// "job scaling blocked due to active deployment": the scale is retried after
// the deployment and, once done, not again inside the 30-minute cooldown.
func TestActScaleBeforeTheWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	r := startAct(t, "testdata/act/scale-scenario.hcl", "testdata/act/scale-policies.hcl", 120, "")
	window := time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)
	// At 06:30 roll out a new version of "local": its deployment lasts
	// min_healthy_time (20m) past its allocations' start.
	r.until(window, "06:30", func() bool { return !r.now().Before(window.Add(-30 * time.Minute)) })
	job, _, err := r.nomad.Jobs().Info("local", nil)
	if err != nil {
		t.Fatal(err)
	}
	cpu := 7400 // a destructive change: the deployment replaces both allocations, one at a time
	job.TaskGroups[0].Tasks[0].Resources.CPU = &cpu
	if _, _, err := r.nomad.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	r.until(window.Add(30*time.Minute), "07:25", func() bool { return r.now().After(window.Add(25 * time.Minute)) })
	type call struct {
		at     time.Time
		status int
	}
	var calls []call
	for _, q := range mutating(r.truth()) {
		if q.Path == "/v1/job/local/scale" {
			calls = append(calls, call{q.Time, q.Status})
		}
	}
	var refused, done []call
	for _, c := range calls {
		if c.status == http.StatusBadRequest {
			refused = append(refused, c)
		} else if c.status < 300 {
			done = append(done, c)
		}
	}
	if len(refused) == 0 {
		t.Errorf("no scale refused during the deployment; calls %+v", calls)
		for _, d := range r.decisions() {
			t.Logf("decision %s %s %s: %s", d.Time.Format("15:04:05"), d.Kind, d.Request, d.Reason)
		}
	}
	if len(done) == 0 {
		t.Fatalf("no scale call succeeded; calls %+v", calls)
	}
	// The cooldown runs from when a scale took effect: the call Nomad
	// accepted, after a refusal during a deployment the retry that
	// succeeded, not the decision or the refused call.
	for i := 1; i < len(done); i++ {
		if done[i].at.Before(done[i-1].at.Add(30 * time.Minute)) {
			t.Errorf("scaled again at %s, inside the 30m cooldown of the scale that took effect at %s",
				done[i].at.Format("15:04:05"), done[i-1].at.Format("15:04:05"))
		}
	}
	// What the planner says while the block cools down names the end of
	// the cooldown from the effect (to the minute; the agent reads its
	// clock once Nomad answered, a few seconds of data time later).
	ends := done[0].at.Add(30 * time.Minute).Truncate(time.Minute)
	var cooling []string
	for _, d := range r.decisions() {
		const says = `scale "local" cools down until `
		i := strings.Index(d.Reason, says)
		if i < 0 || d.Time.After(ends) {
			continue
		}
		until, err := time.Parse("15:04", d.Reason[i+len(says):][:5])
		if err != nil {
			t.Errorf("decision %q: %v", d.Reason, err)
			continue
		}
		cooling = append(cooling, d.Time.Format("15:04:05")+" until "+until.Format("15:04"))
		if h, m := until.Hour()*60+until.Minute(), ends.Hour()*60+ends.Minute(); h < m || h > m+1 {
			t.Errorf("at %s the planner said %q; the cooldown of the scale that took effect at %s ends at %s",
				d.Time.Format("15:04:05"), d.Reason, done[0].at.Format("15:04:05"), done[0].at.Add(30*time.Minute).Format("15:04:05"))
		}
	}
	if !done[0].at.Before(window) {
		t.Errorf("the scale took effect at %s, not before the window at 07:00", done[0].at.Format("15:04:05"))
	}
	if len(refused) > 0 && !refused[0].at.Before(done[0].at) {
		t.Errorf("the refusal at %s came after the scale at %s", refused[0].at, done[0].at)
	}
	var scaleDecisions []string
	for _, d := range r.decisions() {
		if d.Kind == "scale" {
			scaleDecisions = append(scaleDecisions, d.Time.Format("15:04:05")+" "+d.Reason)
		}
	}
	var shown []string
	for _, c := range calls {
		shown = append(shown, fmt.Sprintf("%s %d", c.at.Format("15:04:05"), c.status))
	}
	t.Logf("figures: PUT /v1/job/local/scale at %s; scale decisions %q; cooling %q", strings.Join(shown, ", "), scaleDecisions, cooling)
}

// writePolicies copies policyFile into a policies directory under dir and
// returns that directory.
func writePolicies(t *testing.T, dir, policyFile string) string {
	t.Helper()
	polDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(polDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(polDir, "policies.hcl"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	return polDir
}

// actConfig is serverConfig for the act tests: raw_exec sleep
// placeholders, and extra appended.
func actConfig(name, dir, polDir, nomadAddr string, httpPort, raftPort int, extra string) string {
	return serverConfig(name, dir, polDir, nomadAddr, httpPort, raftPort, `
reserve {
  driver = "raw_exec"
  config = {
    command = "/bin/sleep"
    args    = ["infinity"]
  }
}
`+extra)
}

// serverConfig is a single-server agent's configuration: data under dir,
// the policies in polDir, Nomad at nomadAddr, and extra appended.
func serverConfig(name, dir, polDir, nomadAddr string, httpPort, raftPort int, extra string) string {
	return fmt.Sprintf(`
name      = %q
data_dir  = %q
bind_addr = "127.0.0.1"
log_level = "info"
server {
  enabled          = true
  bootstrap_expect = 1
  raft_port        = %d
}
nomad {
  address = %q
}
http {
  address = "127.0.0.1:%d"
}
policies {
  dir = %q
}
%s
`, name, filepath.Join(dir, "data"), raftPort, nomadAddr, httpPort, polDir, extra)
}
