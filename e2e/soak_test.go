package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/sim"
)

// soakPoints are the calls a soak kill can be aimed at: every kind of
// Nomad write a maintenance run makes.
var soakPoints = append(slices.Clone(killPoints),
	killPoint{"eligibility", "node_eligibility", sim.Hold{Path: "/v1/node/*/eligibility"}},
	killPoint{"drain", "node_drain", sim.Hold{Path: "/v1/node/*/drain"}},
)

// soakKill is one kill of the leader.
type soakKill struct {
	at       time.Time // wall time of the kill
	data     time.Time // the simulator's time then
	server   int       // the server killed
	point    string    // where it landed
	next     int       // the server that led next
	election time.Duration
	cycle    time.Duration // kill to the new leader's first published cycle
	restored bool          // the killed server's restart restored its state from a snapshot
	downLong bool          // the killed server stayed down until the new leader had snapshotted twice
	flapped  bool          // the first new leader stepped down before its first cycle
}

// soakFigures gathers every run's kills.
type soakFigures struct {
	runs, failed int
	kills        []soakKill
	acts         []time.Duration // kill to the new leader's first Nomad write, where it made one before the next kill
	reconciled   int             // open intents the new leaders reconciled
	snapshots    int             // snapshots the servers completed
	installs     int             // snapshots a leader sent a lagging server, which installed them
	leftovers    int             // snapshots left half-written (NAME.tmp) by a kill, at the run's end
	// leftOut are the nodes left out of scheduling after a run because a
	// new leader found their cordon in effect without seeing it made (a
	// "hold" decision names each: it may be an operator's cordon).
	leftOut int
	// transferErrors are the errors logged sending or receiving a
	// snapshot whose other end was killed.
	transferErrors int
}

// soakTransferErrors are raft's errors for a snapshot transfer cut off by
// a kill at the other end.
var soakTransferErrors = []string{
	"failed to send snapshot to", "failed to install snapshot", "failed to copy snapshot", "failed to receive whole snapshot",
}

// TestClusterCrashSoak runs the act scenario's maintenance (dc1 drained at
// 07:00 for 30 minutes, its 8 allocations moved to dc2 ahead of it into
// placeholders) on three server processes over real Raft on loopback, and
// kills the leader with SIGKILL again and again from the first election
// until the window has ended: at a random moment, or aimed at a Nomad write
// in flight (a placeholder's registration, a hand-over, a stop, a release,
// an eligibility change or a drain; held by the simulator, taking effect or
// not) or at a snapshot being written on the leader. Each killed server is
// started again on its data dir and waited for until ready before the next
// kill. Each run then checks: every request done, each allocation stopped
// once after one hand-over, no placeholder registered twice or left
// running, no node left draining nor ineligible (but those a "hold"
// decision says are left out of scheduling: a cordon a new leader found in
// effect without seeing it made, counted), every write made by the
// leader of the moment, and the queue, reservations and decisions identical
// on every server. It logs the figures: kills by point, elections, the
// time until the new leader's first Nomad write and first cycle.
//
// It is long (about 10 minutes a run): FORESHAPE_SOAK_RUNS=N runs it (make
// soak-cluster), FORESHAPE_SOAK_SEED repeats its random choices
// (the machine's timing still varies).
func TestClusterCrashSoak(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("FORESHAPE_SOAK_RUNS"))
	if runs <= 0 {
		t.Skip("the crash soak runs with FORESHAPE_SOAK_RUNS=N (make soak-cluster)")
	}
	seed := time.Now().UnixNano()
	if s, err := strconv.ParseInt(os.Getenv("FORESHAPE_SOAK_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("FORESHAPE_SOAK_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	var f soakFigures
	for run := range runs {
		f.runs++
		// Odd runs aim at the window's give-back calls, even runs at its
		// cordons (see soakRun).
		giveBack := run%2 == 0
		if !t.Run(fmt.Sprintf("run-%d", run+1), func(t *testing.T) { soakRun(t, rng, &f, giveBack) }) {
			f.failed++
		}
	}
	f.log(t)
}

// soakSpeed is the simulator's speed in the soak: 10× gives the moves
// (06:38 to about 06:55) some 100 seconds, room for a dozen kills.
const soakSpeed = 10

// soakRaft makes the soak's servers snapshot every few seconds (8 entries,
// checked every 1 to 2 seconds) and keep only 4 entries behind a snapshot,
// so that kills land during and after snapshots, a restarted server
// restores its state from one, and one that fell behind is sent the
// leader's.
const soakRaft = `  raft_snapshot_threshold = 8
  raft_snapshot_interval  = "1s"
  raft_trailing_logs      = 4
`

func soakRun(t *testing.T, rng *rand.Rand, f *soakFigures, giveBack bool) {
	r := startClusterRun(t, soakSpeed, writePolicies(t, t.TempDir(), "testdata/soak/policies.hcl"), 0, soakRaft)
	leader, _ := r.leader(-1, time.Time{})
	defer func() {
		if t.Failed() {
			(&actRun{t: t, simURL: r.simURL, agentURL: r.urls[leader]}).logAct()
		}
	}()
	day := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	windowEnd := day.Add(7*time.Hour + 30*time.Minute)
	moves := [2]time.Time{day.Add(6*time.Hour + 37*time.Minute), day.Add(7 * time.Hour)}
	// Aim every kill while the moves run and as the window ends (the
	// nodes made eligible again), a third of them elsewhere. Half the
	// aimed kills set their holds as soon as a leader is elected, so that
	// they land in its term's first steps: the reconciliation of what the
	// killed leader left open, and its first pass; the others once the
	// killed server is back and a random wait under 3s has passed, so
	// that leaders also get on with the moves.
	//
	// While a dc1 node is still in scheduling from 06:30 (the window's
	// first move takes them out) or out of it in the window's last
	// minute (its end gives them back), every kill aims at the
	// eligibility calls alone, set as the leader is elected (the new
	// leader's first pass makes the calls its predecessor did not finish),
	// two in three taking effect, and waits longer for one (40s): those
	// calls are a few a run among dozens of others, and a kill between an
	// eligibility call and its answer is what leaves a cordon the next
	// leader finds in effect without seeing it made.
	//
	// A run aimed at the give-back (giveBack: odd runs) aims only its
	// kills in the window's last three minutes and after at the
	// eligibility calls: the cordons are made as in any run (so the
	// window's end has the dc1 nodes to give back: a cordon a kill left
	// unconfirmed keeps its node out), and those kills land on the
	// give-back's calls. The other runs aim at both (at the give-back
	// from the window's last minute), and most of their nodes are left
	// out.
	aim := func() *soakAim {
		now := r.now()
		if p := r.eligibilityPhase(now, moves[0], windowEnd, giveBack); p != "" && (p == "back" || !giveBack) {
			a := &soakAim{apply: rng.IntN(3) != 0, early: true, only: "eligibility", patience: 40 * time.Second, phase: p}
			r.arm(a)
			return a
		}
		busy := !now.Before(moves[0]) && now.Before(moves[1]) || !now.Before(windowEnd.Add(-2*time.Minute))
		if !busy && rng.IntN(3) != 0 {
			return nil
		}
		a := &soakAim{apply: rng.IntN(2) == 0, early: rng.IntN(2) == 0}
		if a.early {
			r.arm(a)
		}
		return a
	}
	var kills []soakKill
	downLong := 0
	next := aim()
	// Kills go on until two minutes after the window's end, and, while
	// the next kill aims at the give-back's calls (a dc1 node still out),
	// until five: the give-back comes in the first pass after the end, and
	// a kill and restart take up to a minute of the simulator's time.
	for r.now().Before(windowEnd.Add(2*time.Minute)) || next != nil && next.phase == "back" && r.now().Before(windowEnd.Add(5*time.Minute)) {
		// The aim is chosen as a new leader is elected; a restart can
		// take a minute of the simulator's time. If the window's last
		// minutes came meanwhile, the next kill aims at the give-back
		// (before: a kill shortly before them left the give-back unaimed),
		// unless an aim set at the election holds a call already.
		if giveBack && (next == nil || next.phase != "back") && r.eligibilityPhase(r.now(), moves[0], windowEnd, giveBack) == "back" &&
			(next == nil || !next.early || r.caughtAny() == "") {
			next = aim()
		}
		k := r.killOnce(rng, leader, next)
		next = aim()
		// In a run aimed at the give-back, no killed server is kept down
		// from six minutes before the window's end (up to 20 s, over three
		// minutes of the simulator's): the give-back would come unaimed.
		if rng.IntN(4) == 0 && !(giveBack && !r.now().Before(windowEnd.Add(-6*time.Minute))) {
			// Keep the killed server down until the new leader has
			// snapshotted twice: the log it lacks is gone from the
			// leader's, which sends it the snapshot instead.
			k.downLong = r.awaitSnapshots(k.next, 2, 20*time.Second)
		}
		r.startServer(k.server)
		// The new leader's first cycle, unless a held call of its own
		// holds it up. On a loaded machine the new leader may lose its
		// quorum's lease before its first cycle (raft steps it down): the
		// next leader's cycle counts then.
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if c := r.cycleAfter(k.next, k.at); !c.IsZero() {
				k.cycle = c.Sub(k.at)
				break
			}
			if other, ok := r.ledAfter(k.next, k.at); ok {
				t.Logf("server-%d stepped down before its first cycle; server-%d leads", k.next, other)
				k.next, k.flapped = other, true
				deadline = time.Now().Add(60 * time.Second)
				continue
			}
			if next != nil && r.caughtAny() != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server-%d published no cycle within 60s of leading", k.next)
			}
		}
		cycle := "held up by a held call"
		if k.cycle > 0 {
			cycle = fmt.Sprintf("%.2fs after the kill", k.cycle.Seconds())
		}
		down := ""
		if k.downLong {
			down = ", kept down until the new leader had snapshotted twice"
		}
		t.Logf("kill at %s (%s): server-%d killed%s, server-%d leads %.2fs later, its first cycle %s",
			k.data.Format("15:04:05"), k.point, k.server, down, k.next, k.election.Seconds(), cycle)
		r.ready(k.server)
		k.restored = strings.Contains(r.logs[k.server].String(), "restored from snapshot")
		if k.downLong {
			downLong++
		}
		kills = append(kills, k)
		leader = k.next
	}
	setHolds(t, r.simURL)

	// Every request finishes, the placeholders go and dc1's nodes come
	// back once the window has ended.
	var why string
	for deadline := windowEnd.Add(45 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		if why = r.settled(leader); why == "" {
			break
		}
		if now := r.now(); now.After(deadline) {
			t.Fatalf("not settled by %s (now %s): %s", deadline.Format("15:04"), now.Format("15:04"), why)
		}
	}
	q, err := r.queue(leader)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Requests) != 8 {
		t.Errorf("%d requests; want one per allocation of app (6) and db (2) in dc1", len(q.Requests))
	}
	for _, mr := range q.Requests {
		if mr.State != api.StateDone {
			t.Errorf("%s %s: %s", mr.ID, mr.State, mr.Reason)
		}
	}
	rs, err := r.client(leader).Reservations(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var tr sim.Truth
	getJSON(t, r.simURL+"/v1/sim/truth", &tr)
	checkExactlyOnce(t, tr, rs)
	r.checkWriters()
	r.converged(leader)
	ds, err := r.client(leader).Decisions(context.Background(), api.DecisionFilter{Kind: "reconcile"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		t.Logf("reconciled at %s: %s", d.Time.Format("15:04:05"), d.Reason)
	}
	f.reconciled += len(ds)
	left, err := r.leftOut(leader)
	if err != nil {
		t.Fatal(err)
	}
	for id, why := range left {
		t.Logf("node %s left out of scheduling: its cordon was found in effect, not seen made; decision: %s", id, why)
	}
	f.leftOut += len(left)

	// The new leader's first write after each kill, before the next one.
	r.writes.mu.Lock()
	writes := slices.Clone(r.writes.writes)
	r.writes.mu.Unlock()
	for i, k := range kills {
		until := time.Now()
		if i+1 < len(kills) {
			until = kills[i+1].at
		}
		for _, w := range writes {
			if w.server == k.next && w.at.After(k.at) && w.at.Before(until) {
				f.acts = append(f.acts, w.at.Sub(k.at))
				break
			}
		}
	}
	f.kills = append(f.kills, kills...)
	t.Logf("run: %d kills, %d writes to Nomad", len(kills), len(writes))

	// Snapshots: every one a server began it finished or was killed in;
	// every restore worked.
	restored := 0
	for _, k := range kills {
		if k.restored {
			restored++
		}
	}
	for i, l := range r.allLogs {
		out := l.String()
		f.snapshots += strings.Count(out, "snapshot complete up to")
		f.installs += strings.Count(out, "Installed remote snapshot")
		for _, line := range strings.Split(out, "\n") {
			switch {
			case !strings.Contains(line, "[ERROR]"):
			case strings.Contains(line, "nothing new to snapshot"):
				// raft compares the log's last index, not the applied one
			case slices.ContainsFunc(soakTransferErrors, func(e string) bool { return strings.Contains(line, e) }):
				f.transferErrors++ // the other end of a snapshot's transfer was killed
			case strings.Contains(line, "snapshot") || strings.Contains(line, "restore"):
				t.Errorf("server process %d: %s", i, line)
			}
		}
	}
	for _, d := range r.data {
		es, _ := os.ReadDir(filepath.Join(d, "snapshots"))
		for _, e := range es {
			if strings.HasSuffix(e.Name(), ".tmp") {
				f.leftovers++
			}
		}
	}
	if restored == 0 {
		t.Errorf("no restart restored a snapshot: the run says nothing about them")
	}
	t.Logf("run: %d restarts restored a snapshot; %d killed servers kept down until the new leader had snapshotted twice", restored, downLong)
}

// soakAim is a kill aimed at the Nomad writes the simulator holds: the
// held calls take effect (apply) or not; the holds are set as the leader
// is elected (early) or later; only names the one point held, when not
// every one; patience is how long the kill waits for a call (8s when
// zero).
type soakAim struct {
	apply, early bool
	only         string
	patience     time.Duration
	// phase is, for an aim at the eligibility calls, which are to come:
	// "out" (the window's cordons) or "back" (its give-back).
	phase string
}

// arm sets the holds of an aim.
func (r *clusterRun) arm(a *soakAim) {
	var holds []sim.Hold
	r.armed = r.armed[:0]
	for _, p := range soakPoints {
		if a.only != "" && p.name != a.only {
			continue
		}
		h := p.hold
		h.Apply, h.Count = a.apply, 1
		holds = append(holds, h)
		r.armed = append(r.armed, p.name)
	}
	setHolds(r.t, r.simURL, holds...)
}

// caughtAny names the points whose holds caught a call, "" when none.
func (r *clusterRun) caughtAny() string {
	var fs sim.Faults
	getJSON(r.t, r.simURL+"/v1/sim/faults", &fs)
	var caught []string
	for i, h := range fs.Holds {
		if h.Caught > 0 && i < len(r.armed) {
			caught = append(caught, r.armed[i])
		}
	}
	return strings.Join(caught, "+")
}

// eligibilityPhase says whether eligibility calls are to come: "out"
// while a dc1 node is still in scheduling from 06:30 until the window
// begins at 07:00 (its first move, which takes them out, comes at about
// 06:47), "back" while one is out of it in the window's last minute (its
// last three in a run aimed at the give-back) and after; "" otherwise.
func (r *clusterRun) eligibilityPhase(now, firstMoves, windowEnd time.Time, giveBack bool) string {
	var phase string
	last := -time.Minute
	if giveBack {
		last = -3 * time.Minute
	}
	switch {
	case !now.Before(firstMoves.Add(-7*time.Minute)) && now.Before(firstMoves.Add(23*time.Minute)):
		phase = "out"
	case !now.Before(windowEnd.Add(last)) && now.Before(windowEnd.Add(3*time.Minute)):
		phase = "back"
	default:
		return ""
	}
	nodes, _, err := r.nomad.Nodes().List(nil)
	if err != nil {
		return ""
	}
	for _, n := range nodes {
		if n.Datacenter != "dc1" {
			continue
		}
		if (phase == "out") == (n.SchedulingEligibility == "eligible") {
			return phase
		}
	}
	return ""
}

// killOnce kills the leader: aimed at a Nomad write, once a held call is
// caught (within 8s, else anywhere); otherwise half the time as soon as a
// snapshot is being written in its data dir (within 10s, else anywhere),
// else after a random wait under 3s. It clears the holds and waits for
// the next leader.
func (r *clusterRun) killOnce(rng *rand.Rand, leader int, aim *soakAim) soakKill {
	t := r.t
	t.Helper()
	wait := time.Duration(rng.IntN(3000)) * time.Millisecond
	point := "anywhere"
	atSnapshot := aim == nil && rng.IntN(2) == 0
	if atSnapshot {
		wait = 10 * time.Second
		point = "anywhere (aimed at a snapshot; none within 10s)"
	}
	if aim != nil {
		if !aim.early {
			time.Sleep(wait)
			r.arm(aim)
		}
		wait = 8 * time.Second
		if aim.patience > 0 {
			wait = aim.patience
		}
		point = fmt.Sprintf("anywhere (aimed; no call within %s)", wait)
	}
	began := time.Now()
	snaps := filepath.Join(r.data[leader], "snapshots")
	lastPoll := time.Time{}
	for time.Since(began) < wait {
		if atSnapshot && snapshotting(snaps) {
			point = "snapshot"
			break
		}
		if aim != nil && time.Since(lastPoll) > 50*time.Millisecond {
			lastPoll = time.Now()
			if c := r.caughtAny(); c != "" {
				point = c
				if aim.phase == "back" {
					point = strings.ReplaceAll(point, "eligibility", "give-back eligibility")
				}
				if aim.early {
					point += ", term start"
				}
				if aim.apply {
					point += " (took effect)"
				}
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	k := soakKill{at: time.Now(), data: r.now(), server: leader, point: point}
	r.kill(leader)
	if aim != nil {
		setHolds(t, r.simURL) // the held calls ended with their caller
	}
	var electedAt time.Time
	k.next, electedAt = r.leader(leader, k.at)
	k.election = electedAt.Sub(k.at)
	return k
}

// ledAfter reports a server other than i, alive, seen leading after
// since in a later term than any i was seen leading in: leadership moved
// on from i.
func (r *clusterRun) ledAfter(i int, since time.Time) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var term uint64
	for _, s := range r.samples {
		if s.server == i && s.leader && s.term > term {
			term = s.term
		}
	}
	for _, s := range r.samples {
		if s.leader && s.server != i && s.at.After(since) && s.term > term && r.alive[s.server] {
			return s.server, true
		}
	}
	return 0, false
}

// cycleAfter is the end of server i's first published cycle seen after
// since, zero when none yet.
func (r *clusterRun) cycleAfter(i int, since time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.samples {
		if s.server == i && s.cycle.After(since) {
			return s.cycle
		}
	}
	return time.Time{}
}

// awaitSnapshots waits (at most d) until server i has completed n
// snapshots it did not have when called, and reports whether it did.
func (r *clusterRun) awaitSnapshots(i, n int, d time.Duration) bool {
	return r.awaitSnapshotsSince(i, r.snapshots(i), n, d)
}

// snapshots are the names of server i's completed snapshots now.
func (r *clusterRun) snapshots(i int) []string {
	return snapshotNames(filepath.Join(r.data[i], "snapshots"))
}

// awaitSnapshotsSince is awaitSnapshots counting the snapshots not in
// before, the names r.snapshots(i) listed earlier.
func (r *clusterRun) awaitSnapshotsSince(i int, before []string, n int, d time.Duration) bool {
	dir := filepath.Join(r.data[i], "snapshots")
	had := map[string]bool{}
	for _, s := range before {
		had[s] = true
	}
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		seen := 0
		for _, s := range snapshotNames(dir) {
			if !had[s] {
				seen++
			}
		}
		// The store keeps two: a second new one may already have
		// replaced the first.
		if seen >= n || seen >= 2 {
			return true
		}
	}
	return false
}

// snapshotNames lists the completed snapshots in dir.
func snapshotNames(dir string) []string {
	es, _ := os.ReadDir(dir)
	var out []string
	for _, e := range es {
		if e.IsDir() && !strings.HasSuffix(e.Name(), ".tmp") {
			out = append(out, e.Name())
		}
	}
	return out
}

// snapshotting reports whether a snapshot is being written in dir (raft's
// file snapshot store writes each into NAME.tmp and renames it).
func snapshotting(dir string) bool {
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".tmp") {
			return true
		}
	}
	return false
}

// now is the simulator's data time.
func (r *clusterRun) now() time.Time {
	r.t.Helper()
	var st struct{ Now time.Time }
	getJSON(r.t, r.simURL+"/v1/sim/clock", &st)
	return st.Now
}

// ready waits for server i's /v1/ready.
func (r *clusterRun) ready(i int) {
	r.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(r.urls[i] + "/v1/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("server-%d not ready within 90s of its restart (%v)", i, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settled says what is still unfinished after a run: a request, a
// placeholder, a node ineligible or draining; "" when nothing is.
func (r *clusterRun) settled(leader int) string {
	q, err := r.queue(leader)
	if err != nil {
		return err.Error()
	}
	if len(q.Requests) == 0 {
		return "no requests"
	}
	if u := unfinished(q); len(u) > 0 {
		return fmt.Sprintf("%s %s", u[0].ID, u[0].State)
	}
	jobs, _, err := r.nomad.Jobs().PrefixList("foreshape-reserve-")
	if err != nil {
		return err.Error()
	}
	for _, j := range jobs {
		if !j.Stop && j.Status != "dead" {
			return "placeholder " + j.ID + " " + j.Status
		}
	}
	nodes, _, err := r.nomad.Nodes().List(nil)
	if err != nil {
		return err.Error()
	}
	left, err := r.leftOut(leader)
	if err != nil {
		return err.Error()
	}
	for _, n := range nodes {
		if n.Drain || (n.SchedulingEligibility != "eligible" && left[n.ID] == "") {
			return fmt.Sprintf("node %s (%s) %s, drain %v", n.Name, n.Datacenter, n.SchedulingEligibility, n.Drain)
		}
	}
	return ""
}

// leftOut are the nodes foreshape leaves out of scheduling on purpose: a
// new leader found the node's cordon in effect after the leader making it
// was killed before it saw its call answered, and since an operator may
// have cordoned the node in between, a "hold" decision says it will not
// be given back. Exactly those may stay ineligible after a run.
func (r *clusterRun) leftOut(leader int) (map[string]string, error) {
	ds, err := r.client(leader).Decisions(context.Background(), api.DecisionFilter{Kind: "hold"})
	if err != nil {
		return nil, err
	}
	left := map[string]string{}
	for _, d := range ds {
		rest, ok := strings.CutPrefix(d.Reason, "node ")
		if !ok || !strings.Contains(rest, "will be left out of scheduling") {
			continue
		}
		if id, _, ok := strings.Cut(rest, " is out of scheduling, but the leader"); ok {
			left[id] = d.Reason
		}
	}
	return left, nil
}

func (f *soakFigures) log(t *testing.T) {
	if len(f.kills) == 0 {
		return
	}
	points := map[string]int{}
	var elections, cycles, snapElections, snapCycles []time.Duration
	restored, flapped := 0, 0
	for _, k := range f.kills {
		if k.restored {
			restored++
		}
		if k.flapped {
			flapped++
		}
		if strings.HasPrefix(k.point, "snapshot") {
			snapElections = append(snapElections, k.election)
			if k.cycle > 0 {
				snapCycles = append(snapCycles, k.cycle)
			}
		}
		p, _, _ := strings.Cut(k.point, " (")
		p, _, _ = strings.Cut(p, ", ")
		for _, one := range strings.Split(p, "+") {
			points[one]++
		}
		elections = append(elections, k.election)
		if k.cycle > 0 {
			cycles = append(cycles, k.cycle)
		}
	}
	var byPoint []string
	for p, n := range points {
		byPoint = append(byPoint, fmt.Sprintf("%s %d", p, n))
	}
	slices.Sort(byPoint)
	q := func(d []time.Duration) string {
		if len(d) == 0 {
			return "none"
		}
		slices.Sort(d)
		return fmt.Sprintf("median %.2fs, p90 %.2fs, max %.2fs (%d)", d[len(d)/2].Seconds(), d[len(d)*9/10].Seconds(), d[len(d)-1].Seconds(), len(d))
	}
	t.Logf("figures: %d runs, %d failed; %d leader kills (by point: %s); %d open intents reconciled by the new leaders; %d nodes left out of scheduling (cordon found in effect, not seen made)",
		f.runs, f.failed, len(f.kills), strings.Join(byPoint, ", "), f.reconciled, f.leftOut)
	t.Logf("figures: kill to a new leader: %s; kill to its first published cycle (unless a held call held it up): %s; kill to its first Nomad write (when it made one before the next kill): %s; %d new leaders stepped down before their first cycle (the next one's counts)",
		q(elections), q(cycles), q(f.acts), flapped)
	t.Logf("figures: snapshots: %d completed, %d installed from a leader (%d transfers cut off by a kill); %d of %d restarts restored one; %d left half-written by a kill; kills during a snapshot: to a new leader %s, to its first cycle %s",
		f.snapshots, f.installs, f.transferErrors, restored, len(f.kills), f.leftovers, q(snapElections), q(snapCycles))
}
