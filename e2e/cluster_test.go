package e2e

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
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/sim"
)

// writeLog records the mutating requests each server sends to Nomad: every
// server reaches the simulator through a proxy of its own.
type writeLog struct {
	mu     sync.Mutex
	writes []serverWrite
}

type serverWrite struct {
	server int
	at     time.Time
	method string
	path   string
}

func (l *writeLog) proxy(t *testing.T, server int, target string) string {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a killed server's requests end abruptly
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !strings.HasPrefix(r.URL.Path, "/v1/sim/") {
			l.mu.Lock()
			l.writes = append(l.writes, serverWrite{server: server, at: time.Now(), method: r.Method, path: r.URL.Path})
			l.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// leaderSample is one observation of a server's Raft state.
type leaderSample struct {
	at     time.Time
	server int
	term   uint64
	leader bool
	cycle  time.Time // the end of the server's last published cycle, when leading
}

// clusterRun is `foreshape sim serve`, three server processes and client
// agent processes on loopback.
type clusterRun struct {
	t       *testing.T
	simURL  string
	nomad   *nomadapi.Client
	writes  *writeLog
	cfgs    []string
	urls    []string
	data    []string // each server's data_dir
	bins    []string // the foreshape binary each server runs
	procs   []*exec.Cmd
	logs    []*syncbuf.Buffer
	allLogs []*syncbuf.Buffer // every server process's output, restarts included
	alive   []bool
	mu      sync.Mutex
	samples []leaderSample
	armed   []string // the soak's points held now, in the order of the simulator's holds
}

// startClusterRun starts the act scenario at speed, three servers with
// the policies in policyDir (and the lines serverExtra in their server
// blocks), and a client agent on each of the first clients nodes.
func startClusterRun(t *testing.T, speed float64, policyDir string, clients int, serverExtra string) *clusterRun {
	t.Helper()
	return startClusterRunOf(t, binary, speed, policyDir, clients, serverExtra)
}

// startClusterRunOf is startClusterRun with the servers running the
// foreshape binary at bin (startServer runs r.bins[i]).
func startClusterRunOf(t *testing.T, bin string, speed float64, policyDir string, clients int, serverExtra string) *clusterRun {
	t.Helper()
	simPort := freePort(t)
	r := &clusterRun{t: t, simURL: fmt.Sprintf("http://127.0.0.1:%d", simPort), writes: &writeLog{}}
	start(t, "sim", "sim", "serve", "-addr", fmt.Sprintf("127.0.0.1:%d", simPort), "-speed", fmt.Sprint(speed),
		"-scenario", "testdata/act/scenario.hcl", "-log-level", "warn")
	waitHTTP(t, r.simURL+"/v1/status/leader", 30*time.Second)
	var err error
	if r.nomad, err = nomadapi.NewClient(&nomadapi.Config{Address: r.simURL}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var raft []string
	for range 3 {
		raft = append(raft, fmt.Sprintf("%q", fmt.Sprintf("127.0.0.1:%d", freePort(t))))
	}
	for i := range 3 {
		httpPort := freePort(t)
		_, raftPort, _ := strings.Cut(strings.Trim(raft[i], `"`), ":")
		sdir := filepath.Join(dir, fmt.Sprintf("server-%d", i))
		cfg := fmt.Sprintf(`
name      = "server-%d"
data_dir  = %q
bind_addr = "127.0.0.1"
log_level = "info"
server {
  bootstrap_expect = 3
  retry_join       = [%s]
  raft_port        = %s
%s}
nomad {
  address = %q
}
http {
  address = "127.0.0.1:%d"
}
policies {
  dir = %q
}
reserve {
  driver = "raw_exec"
  config = {
    command = "/bin/sleep"
    args    = ["infinity"]
  }
}
`, i, filepath.Join(sdir, "data"), strings.Join(raft, ", "), raftPort, serverExtra, r.writes.proxy(t, i, r.simURL), httpPort, policyDir)
		path := filepath.Join(dir, fmt.Sprintf("server-%d.hcl", i))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		r.cfgs = append(r.cfgs, path)
		r.urls = append(r.urls, fmt.Sprintf("http://127.0.0.1:%d", httpPort))
		r.data = append(r.data, filepath.Join(sdir, "data"))
		r.bins = append(r.bins, bin)
		r.procs, r.logs, r.alive = append(r.procs, nil), append(r.logs, nil), append(r.alive, false)
	}
	for i := range 3 {
		r.startServer(i)
	}
	nodes, _, err := r.nomad.Nodes().List(nil)
	if err != nil || len(nodes) < clients {
		t.Fatalf("nodes: %v, %v", nodes, err)
	}
	for i, n := range nodes[:clients] {
		cfg := fmt.Sprintf(`
name = "client-%d"
server {
  enabled    = false
  retry_join = [%s]
}
nomad {
  address = %q
  node_id = %q
}
http {
  address = "127.0.0.1:%d"
}
`, i, strings.Join(raft, ", "), r.simURL, n.ID, freePort(t))
		path := filepath.Join(dir, fmt.Sprintf("client-%d.hcl", i))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		start(t, fmt.Sprintf("client-%d", i), "agent", "-config", path, "-sim-clock")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.watch(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if t.Failed() {
			for i, l := range r.logs {
				t.Logf("server-%d output:\n%s", i, tail(l.String(), 40))
			}
		}
	})
	return r
}

// startServer starts server i (again, on the same data directory).
func (r *clusterRun) startServer(i int) {
	r.t.Helper()
	log := &syncbuf.Buffer{}
	cmd := exec.Command(r.bins[i], "agent", "-config", r.cfgs[i], "-sim-clock")
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.procs[i], r.logs[i], r.alive[i] = cmd, log, true
	r.allLogs = append(r.allLogs, log)
	r.mu.Unlock()
	r.t.Cleanup(func() {
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
	waitHTTP(r.t, r.urls[i]+"/v1/health", 30*time.Second)
}

// kill stops server i with SIGKILL.
func (r *clusterRun) kill(i int) {
	r.t.Helper()
	r.mu.Lock()
	cmd := r.procs[i]
	r.alive[i] = false
	r.mu.Unlock()
	if err := cmd.Process.Kill(); err != nil {
		r.t.Fatal(err)
	}
	_ = cmd.Wait()
}

// watch samples every live server's Raft state every 25ms.
func (r *clusterRun) watch(ctx context.Context) {
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	for ctx.Err() == nil {
		for i, u := range r.urls {
			r.mu.Lock()
			alive := r.alive[i]
			r.mu.Unlock()
			if !alive {
				continue
			}
			st, err := (&api.Client{Address: u, HTTP: hc}).Status(ctx)
			if err != nil {
				continue
			}
			s := leaderSample{at: time.Now(), server: i, term: st.Term, leader: st.IsLeader}
			if st.IsLeader && st.LastCycle != nil {
				s.cycle = st.LastCycle.Started.Add(st.LastCycle.Duration)
			}
			r.mu.Lock()
			r.samples = append(r.samples, s)
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// leader waits for a leading server other than skip and returns it and
// when it was first seen leading.
func (r *clusterRun) leader(skip int, since time.Time) (int, time.Time) {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, s := range r.samples {
			if s.leader && s.server != skip && s.at.After(since) && r.alive[s.server] {
				r.mu.Unlock()
				return s.server, s.at
			}
		}
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("no leader other than server-%d within 60s", skip)
	return -1, time.Time{}
}

func (r *clusterRun) client(i int) *api.Client { return &api.Client{Address: r.urls[i]} }

// queue is server i's queue.
func (r *clusterRun) queue(i int) (api.Queue, error) {
	return r.client(i).Queue(context.Background(), nil)
}

// submitMove asks server via to move a running allocation of the job app
// that no unfinished request moves yet to the other datacenter.
func (r *clusterRun) submitMove(via int) error {
	allocs, _, err := r.nomad.Jobs().Allocations("app", false, nil)
	if err != nil {
		return err
	}
	nodes, _, err := r.nomad.Nodes().List(nil)
	if err != nil {
		return err
	}
	dc := map[string]string{}
	for _, n := range nodes {
		dc[n.ID] = n.Datacenter
	}
	q, err := r.queue(via)
	if err != nil {
		return err
	}
	busy := map[string]bool{}
	for _, mr := range q.Requests {
		if !api.Finished(mr.State) {
			busy[mr.Resource] = true
		}
	}
	sort.Slice(allocs, func(i, j int) bool { return allocs[i].ID < allocs[j].ID })
	for _, a := range allocs {
		if a.ClientStatus != "running" || a.DesiredStatus != "run" || busy["alloc/"+a.ID] {
			continue
		}
		target := "dc2"
		if dc[a.NodeID] == "dc2" {
			target = "dc1"
		}
		_, err := r.client(via).Submit(context.Background(), api.Submission{Allocation: a.ID, Target: target, Priority: 50, Reason: "e2e: leader kills"})
		return err
	}
	return errors.New("no allocation free to move")
}

// TestClusterKillLeaderMidMigration runs three servers and two client
// agents as separate processes on loopback against the simulator and kills
// the leader with SIGKILL while a migration is in flight, again and again
// (3 times, or FORESHAPE_E2E_KILLS): each time another server is elected
// and resumes; the killed one restarts and catches up. Every other round
// (the second, fourth, …) the kill lands inside an open stop intent: the
// simulator holds the leader's next stop call, taking effect in every
// other such round, and the new leader must reconcile exactly that intent.
// The other rounds kill wherever the move happens to be, and the test logs
// how many open intents the new leader found. Afterwards the simulator's
// request log shows no allocation stopped twice and every write made by the
// server leading at the time, and the queue, reservations and decisions are
// identical on every server.
func TestClusterKillLeaderMidMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	kills := 3
	if n, err := strconv.Atoi(os.Getenv("FORESHAPE_E2E_KILLS")); err == nil && n > 0 {
		kills = n
	}
	r := startClusterRun(t, 20, "testdata/cluster", 2, "")
	leader, _ := r.leader(-1, time.Time{})
	var elections, gaps []time.Duration
	var inside []string
	reconciled := map[string]bool{} // reconcile decisions seen after earlier kills
	// Requests running at an earlier kill: a round waits for a move of its
	// own, as one that outlasts its round (a move retried after the new
	// leader reconciled its stop) has its allocation stopped already.
	killedMidway := map[string]bool{}
	for round := range kills {
		// Rounds 2, 4, …: hold the leader's next stop call, alternately
		// not taking effect and taking effect.
		held := round%2 == 1
		apply := round%4 == 3
		if held {
			setHolds(t, r.simURL, sim.Hold{Path: "/v1/allocation/*/stop", Apply: apply, Count: 1})
		}
		// A migration in flight: submit moves until one runs (until its
		// stop is held).
		deadline := time.Now().Add(90 * time.Second)
		for {
			q, err := r.queue(leader)
			var running []string
			for _, mr := range q.Requests {
				if mr.State == api.StateRunning && !killedMidway[mr.ID] {
					running = append(running, mr.ID)
				}
			}
			if err == nil && !held && len(running) > 0 || held && caught(t, r.simURL) > 0 {
				for _, id := range running {
					killedMidway[id] = true
				}
				break
			}
			if err == nil && len(unfinished(q)) < 2 {
				if err := r.submitMove((leader + 1 + round) % 3); err != nil {
					t.Logf("round %d: submit: %v", round, err)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no migration running within 90s", round)
			}
			time.Sleep(200 * time.Millisecond)
		}
		lastCycle := r.lastCycle(leader)
		killedAt := time.Now()
		r.kill(leader)
		if held {
			setHolds(t, r.simURL) // the held call ended with its caller
		}
		next, electedAt := r.leader(leader, killedAt)
		elections = append(elections, electedAt.Sub(killedAt))
		first := r.firstCycle(next, killedAt)
		gaps = append(gaps, first.Sub(lastCycle))
		t.Logf("round %d: killed server-%d, server-%d leads %.2fs later; its first cycle ends %.2fs after the kill, %.2fs after the killed leader's last",
			round+1, leader, next, electedAt.Sub(killedAt).Seconds(), first.Sub(killedAt).Seconds(), first.Sub(lastCycle).Seconds())
		// The new leader reconciles at its term's start, in its act
		// half, beside its first cycle (not before it, which the
		// forecasts no longer wait for): a held stop's intent is
		// waited for, up to 30 s; an unaimed round reads what the first
		// 5 s reconciled.
		var found []string
		wait := 5 * time.Second
		if held {
			wait = 30 * time.Second
		}
		for until := time.Now().Add(wait); ; {
			ds, err := r.client(next).Decisions(context.Background(), api.DecisionFilter{Kind: "reconcile"})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if key := d.Time.String() + d.Reason; !reconciled[key] {
					reconciled[key] = true
					found = append(found, d.Reason)
				}
			}
			if held && len(found) > 0 || time.Now().After(until) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		inside = append(inside, fmt.Sprintf("round %d (%s): %d", round+1, map[bool]string{false: "unaimed", true: "stop held"}[held], len(found)))
		if held {
			want := "no sign of its effect"
			if apply {
				want = "its effect is there"
			}
			if len(found) != 1 || !strings.Contains(found[0], "intent stop_alloc/") || !strings.Contains(found[0], want) {
				t.Errorf("round %d: the new leader reconciled %q; want the one stop_alloc intent, %q", round+1, found, want)
			}
		}
		t.Logf("round %d: the new leader reconciled %d open intents: %s", round+1, len(found), strings.Join(found, " | "))
		r.startServer(leader)
		leader = next
	}

	// Every request finishes under the last leader.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		q, err := r.queue(leader)
		if err == nil && len(unfinished(q)) == 0 && len(q.Requests) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests still unfinished: %+v (%v)", unfinished(q), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	stops := r.stoppedOnce(t)
	if len(stops) < kills {
		t.Errorf("%d allocations stopped for %d rounds with a migration in flight", len(stops), kills)
	}
	r.checkWriters()

	// Every server holds the same queue, reservations and decisions.
	r.converged(leader)

	slices.Sort(elections)
	slices.Sort(gaps)
	med := func(d []time.Duration) time.Duration { return d[len(d)/2] }
	t.Logf("figures: open intents the new leader reconciled after each kill: %s", strings.Join(inside, "; "))
	t.Logf("figures: %d leader kills mid-migration; election after a kill: median %.2fs, max %.2fs; forecast gap (last cycle of the killed leader to the first of the new one): median %.2fs, max %.2fs; %d allocations stopped, each once; %d writes to Nomad, each by the leader of the moment",
		kills, med(elections).Seconds(), elections[len(elections)-1].Seconds(), med(gaps).Seconds(), gaps[len(gaps)-1].Seconds(), len(stops), len(r.writes.writes))
	if med(elections) > 5*time.Second {
		t.Errorf("median election time %v; the goal is under 5s", med(elections))
	}
}

func unfinished(q api.Queue) []api.MigrationRequest {
	var out []api.MigrationRequest
	for _, mr := range q.Requests {
		if !api.Finished(mr.State) {
			out = append(out, mr)
		}
	}
	return out
}

// lastCycle is when server i's last published cycle ended, as sampled.
func (r *clusterRun) lastCycle(i int) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	for _, s := range r.samples {
		if s.server == i && s.cycle.After(last) {
			last = s.cycle
		}
	}
	return last
}

// firstCycle waits for server i's first cycle ending after since.
func (r *clusterRun) firstCycle(i int, since time.Time) time.Time {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, s := range r.samples {
			if s.server == i && s.cycle.After(since) {
				r.mu.Unlock()
				return s.cycle
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("server-%d published no cycle within 60s of leading", i)
	return time.Time{}
}

// stoppedOnce returns how many times Nomad (the simulator) stopped each
// allocation, and fails the test for any stopped more than once.
func (r *clusterRun) stoppedOnce(t *testing.T) map[string]int {
	t.Helper()
	var tr sim.Truth
	getJSON(t, r.simURL+"/v1/sim/truth", &tr)
	stops := map[string]int{}
	for _, q := range tr.Requests {
		if strings.HasSuffix(q.Path, "/stop") && strings.HasPrefix(q.Path, "/v1/allocation/") && q.Succeeded() {
			stops[q.Path]++
		}
	}
	for p, n := range stops {
		if n > 1 {
			t.Errorf("%s: %d stops", p, n)
		}
	}
	return stops
}

// checkWriters: every write reached Nomad from a server seen leading
// around then, and never from one whose term had been overtaken: at the
// write's time a newer term's leader had not been seen yet.
func (r *clusterRun) checkWriters() {
	r.t.Helper()
	const slack = 250 * time.Millisecond
	r.mu.Lock()
	samples := slices.Clone(r.samples)
	r.mu.Unlock()
	r.writes.mu.Lock()
	writes := slices.Clone(r.writes.writes)
	r.writes.mu.Unlock()
	for _, w := range writes {
		var led uint64    // the newest term w.server was seen leading by w.at+slack
		var newest uint64 // the newest term anyone was seen leading by w.at-slack
		for _, s := range samples {
			if !s.leader {
				continue
			}
			if s.server == w.server && !s.at.After(w.at.Add(slack)) && s.term > led {
				led = s.term
			}
			if !s.at.After(w.at.Add(-slack)) && s.term > newest {
				newest = s.term
			}
		}
		if led == 0 {
			r.t.Errorf("server-%d wrote %s %s at %s without having been seen leading", w.server, w.method, w.path, w.at.Format("15:04:05.000"))
		} else if led < newest {
			r.t.Errorf("server-%d wrote %s %s at %s as leader of term %d after term %d had a leader", w.server, w.method, w.path, w.at.Format("15:04:05.000"), led, newest)
		}
	}
}

// converged waits up to a minute for every server to hold the same queue,
// reservations and decisions as the leader, and fails the test otherwise.
func (r *clusterRun) converged(leader int) {
	t := r.t
	t.Helper()
	type view struct {
		Queue        api.Queue
		Reservations []api.Reservation
		Decisions    []api.Decision
	}
	read := func(i int) (view, error) {
		var v view
		var err error
		c := r.client(i)
		ctx := context.Background()
		if v.Queue, err = c.Queue(ctx, nil); err != nil {
			return v, err
		}
		if v.Reservations, err = c.Reservations(ctx, nil); err != nil {
			return v, err
		}
		v.Decisions, err = c.Decisions(ctx, api.DecisionFilter{})
		return v, err
	}
	var diff string
	deadline := time.Now().Add(60 * time.Second)
	for {
		want, err := read(leader)
		diff = ""
		for i := range 3 {
			if i == leader || err != nil {
				continue
			}
			got, err := read(i)
			if err != nil {
				diff = err.Error()
				break
			}
			if d := cmp.Diff(want, got); d != "" {
				diff = fmt.Sprintf("server-%d differs from the leader server-%d:\n%s", i, leader, d)
				break
			}
		}
		if err == nil && diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the servers' replicated state does not converge: %v %s", err, diff)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
