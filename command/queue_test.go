package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/cli"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/policies/hclfield"
)

// actAgent serves the fake act backend (and the stub forecast backend).
func actAgent(t *testing.T, act *apitest.Act, tokens ...string) string {
	t.Helper()
	s, err := api.NewServer(stubBackend{}, api.Options{Act: act, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestQueueCommands(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)

	code, out, errOut := runCLI(t, "queue", "submit", "-address", addr, "-node", "n1", "-target", "dc2", "-priority", "70", "-reason", "rack a maintenance")
	if code != ExitOK || out != "Queued mr-1\n" {
		t.Fatalf("submit: exit %d, out %q, err %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, "queue", "submit", "-address", addr, "-json", "-job", "web", "-group", "frontend", "-target", "dc3")
	var sub api.Submitted
	if code != ExitOK || json.Unmarshal([]byte(out), &sub) != nil || sub.ID != "mr-2" {
		t.Fatalf("submit -json: exit %d, out %q", code, out)
	}
	act.Update("mr-1", func(r *api.MigrationRequest) { r.State, r.Score = api.StateRunning, 2.41 })

	code, out, errOut = runCLI(t, "queue", "list", "-address", addr)
	if code != ExitOK {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"Queue: running", "mr-1  running  node/n1", "dc1     dc2     70        2.41   1m0s      rack a maintenance",
		"job/web/frontend"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "queue", "list", "-address", addr, "-state", "pending")
	if code != ExitOK || strings.Contains(out, "mr-1") || !strings.Contains(out, "mr-2") {
		t.Errorf("list -state pending: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "queue", "list", "-address", addr, "-json")
	var q api.Queue
	if code != ExitOK || json.Unmarshal([]byte(out), &q) != nil || len(q.Requests) != 2 || !strings.Contains(out, `"paused": false`) {
		t.Errorf("list -json: exit %d, %s", code, out)
	}

	code, out, _ = runCLI(t, "queue", "show", "-address", addr, "mr-1")
	for _, want := range []string{"Resource  node/n1", "State     running", "Reason    rack a maintenance", "Started   -", "Duration  - (estimated 1m0s)"} {
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("show lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	code, out, _ = runCLI(t, "queue", "show", "-address", addr, "-json", "mr-2")
	var mr api.MigrationRequest
	if code != ExitOK || json.Unmarshal([]byte(out), &mr) != nil || mr.Resource != "job/web/frontend" {
		t.Errorf("show -json: exit %d, %s", code, out)
	}

	if code, out, _ := runCLI(t, "queue", "priority", "-address", addr, "mr-2", "90"); code != ExitOK || out != "Priority of mr-2 set to 90; the leader scores it again at its next pass.\n" {
		t.Errorf("priority: exit %d, %q", code, out)
	}
	code, out, _ = runCLI(t, "queue", "priority", "-address", addr, "-json", "mr-2", "85")
	if code != ExitOK || json.Unmarshal([]byte(out), &mr) != nil || mr.Priority != 85 {
		t.Errorf("priority -json: exit %d, %s", code, out)
	}
	if code, out, _ := runCLI(t, "queue", "cancel", "-address", addr, "mr-2"); code != ExitOK || out != "Cancelled mr-2\n" {
		t.Errorf("cancel: exit %d, %q", code, out)
	}
	if code, out, _ := runCLI(t, "queue", "pause", "-address", addr); code != ExitOK || !strings.Contains(out, "Queue paused") {
		t.Errorf("pause: exit %d, %q", code, out)
	}
	if _, out, _ := runCLI(t, "queue", "list", "-address", addr); !strings.Contains(out, "Queue: paused") {
		t.Errorf("list after pause:\n%s", out)
	}
	code, out, _ = runCLI(t, "queue", "resume", "-address", addr, "-json")
	if code != ExitOK || json.Unmarshal([]byte(out), &q) != nil || q.Paused {
		t.Errorf("resume -json: exit %d, %s", code, out)
	}
}

func TestQueueCommandErrors(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)
	if code, _, _ := runCLI(t, "queue", "submit", "-address", addr, "-alloc", "a1", "-target", "dc2"); code != ExitOK {
		t.Fatalf("first submit: exit %d", code)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing to move", []string{"queue", "submit", "-address", "@", "-target", "dc2"}, ExitUsage, "-alloc: name what to move"},
		// An empty flag is named, not taken for a missing one.
		{"empty node", []string{"queue", "submit", "-address", "@", "-node", "", "-target", "dc2"}, ExitUsage, "-node is empty"},
		{"empty target", []string{"queue", "submit", "-address", "@", "-alloc", "a1", "-target", ""}, ExitUsage, "-target is empty"},
		{"two things", []string{"queue", "submit", "-address", "@", "-alloc", "a1", "-node", "n1", "-target", "dc2"}, ExitUsage, "only one"},
		{"job without group", []string{"queue", "submit", "-address", "@", "-job", "web", "-target", "dc2"}, ExitUsage, "-group"},
		{"no target", []string{"queue", "submit", "-address", "@", "-node", "n1"}, ExitUsage, "-target: required"},
		{"priority", []string{"queue", "submit", "-address", "@", "-node", "n1", "-target", "dc2", "-priority", "500"}, ExitUsage, "-priority"},
		{"argument", []string{"queue", "submit", "-address", "@", "n1"}, ExitUsage, "takes no arguments"},
		{"unknown node", []string{"queue", "submit", "-address", "@", "-node", "n9", "-target", "dc2"}, ExitInvalid, `400 Bad Request: node: no node "n9"`},
		{"already queued", []string{"queue", "submit", "-address", "@", "-alloc", "a1", "-target", "dc3"}, ExitInvalid, "409 Conflict: alloc/a1 is already queued as mr-1 (pending)"},
		{"show nothing", []string{"queue", "show", "-address", "@"}, ExitUsage, "exactly one request ID"},
		{"show flags after", []string{"queue", "show", "-address", "@", "mr-1", "-json"}, ExitUsage, "options come before the request ID"},
		{"show unknown", []string{"queue", "show", "-address", "@", "mr-9"}, ExitInvalid, "404"},
		{"cancel unknown", []string{"queue", "cancel", "-address", "@", "mr-9"}, ExitInvalid, "404"},
		{"priority unknown", []string{"queue", "priority", "-address", "@", "mr-9", "50"}, ExitInvalid, "404"},
		{"priority missing", []string{"queue", "priority", "-address", "@", "mr-1"}, ExitUsage, "takes a request ID and a priority (1 to 100)"},
		{"priority out of range", []string{"queue", "priority", "-address", "@", "mr-1", "101"}, ExitUsage, `the priority "101" is not a whole number from 1 to 100`},
		{"priority not a number", []string{"queue", "priority", "-address", "@", "mr-1", "high"}, ExitUsage, `the priority "high" is not a whole number`},
		{"priority flags after", []string{"queue", "priority", "-address", "@", "mr-1", "50", "-json"}, ExitUsage, "options come before the request ID"},
		{"priority empty id", []string{"queue", "priority", "-address", "@", "", "50"}, ExitUsage, "the request ID is empty"},
		{"list bad state", []string{"queue", "list", "-address", "@", "-state", "lost"}, ExitUsage, `-state: "lost"`},
		{"pause argument", []string{"queue", "pause", "-address", "@", "now"}, ExitUsage, "takes no arguments"},
		{"decisions since", []string{"decisions", "-address", "@", "-since", "yesterday"}, ExitUsage, "-since"},
		{"decisions limit", []string{"decisions", "-address", "@", "-limit", "-1"}, ExitUsage, "-limit"},
		{"decisions bad kind", []string{"decisions", "-address", "@", "-kind", "reserved"}, ExitUsage, `-kind: "reserved" is not one of submit, reserve, extend, release, reap, scale, wait, start, done, cancel, priority, hold, restore, reconcile, retry, fail`},
		{"reservations bad state", []string{"reservations", "-address", "@", "-state", "hold"}, ExitUsage, `-state: "hold" is not one of planned, placed, held, handing_over, released`},
		{"reservations argument", []string{"reservations", "-address", "@", "dc2"}, ExitUsage, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{}, tc.args...)
			for i, a := range args {
				if a == "@" {
					args[i] = addr
				}
			}
			code, out, errOut := runCLI(t, args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, errOut, tc.code, tc.want)
			}
			if out != "" {
				t.Errorf("stdout on failure: %q", out)
			}
		})
	}
	// The queue did not change.
	q, _ := act.Queue(context.Background())
	if len(q.Requests) != 1 {
		t.Errorf("refused commands changed the queue: %+v", q.Requests)
	}
}

// Mutating commands need the token when the agent has ACLs on.
func TestQueueCommandsNeedToken(t *testing.T) {
	addr := actAgent(t, apitest.New(), "s3cret")
	for _, args := range [][]string{
		{"queue", "submit", "-node", "n1", "-target", "dc2"},
		{"queue", "priority", "mr-1", "50"},
		{"queue", "cancel", "mr-1"},
		{"queue", "pause"},
		{"queue", "resume"},
		{"queue", "list"},
		{"reservations"},
		{"decisions"},
	} {
		withAddr := insertFlags(args, "-address", addr)
		if code, _, errOut := runCLI(t, withAddr...); code != ExitInvalid || !strings.Contains(errOut, "403") {
			t.Errorf("%v without a token: exit %d, %q", args, code, errOut)
		}
		if code, _, errOut := runCLI(t, insertFlags(withAddr, "-token", "s3cret")...); code != ExitOK {
			t.Errorf("%v with the token: exit %d, %q", args, code, errOut)
		}
	}
}

// insertFlags puts flags after the command words and before positional
// arguments (mr-1).
func insertFlags(args []string, flags ...string) []string {
	n := 1
	if args[0] == "queue" {
		n = 2
	}
	return append(append(append([]string{}, args[:n]...), flags...), args[n:]...)
}

func TestReservationsAndDecisionsCommands(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)
	if code, out, _ := runCLI(t, "reservations", "-address", addr); code != ExitOK || out != "No reservations.\n" {
		t.Errorf("empty reservations: exit %d %q", code, out)
	}
	if code, out, _ := runCLI(t, "reservations", "-address", addr, "-json"); code != ExitOK || strings.TrimSpace(out) != "{\n  \"reservations\": []\n}" {
		t.Errorf("empty reservations -json: exit %d %q", code, out)
	}
	from := act.Start.Add(50 * time.Minute)
	act.AddReservation(api.Reservation{ID: "res-1", Request: "mr-3", Policy: "web", Locality: "dc2", CPU: 4000, Memory: 8192,
		From: from, Until: from.Add(time.Hour), Job: "foreshape-reserve-mr-3-a", State: api.ReservationHeld})
	act.AddReservation(api.Reservation{ID: "res-2", Policy: "batch", Locality: "*/batch", CPU: 1000, Memory: 512, IOPS: 150,
		From: from, Until: from.Add(time.Hour), State: api.ReservationPlanned})
	code, out, _ := runCLI(t, "reservations", "-address", addr, "-locality", "dc2")
	if code != ExitOK || !strings.Contains(out, "res-1  mr-3     web     dc2       4000  8192    0     2026-01-05T09:50:00Z  2026-01-05T10:50:00Z  foreshape-reserve-mr-3-a  held") ||
		strings.Contains(out, "res-2") {
		t.Errorf("reservations -locality dc2: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "reservations", "-address", addr, "-json", "-policy", "batch")
	var rs api.Reservations
	if code != ExitOK || json.Unmarshal([]byte(out), &rs) != nil || len(rs.Reservations) != 1 || rs.Reservations[0].IOPS != 150 {
		t.Errorf("reservations -json: exit %d\n%s", code, out)
	}

	for i := 0; i < 60; i++ {
		act.AddDecision(api.Decision{Time: act.Start.Add(time.Duration(i) * time.Minute), Policy: "web", Kind: api.DecisionWait,
			Locality: "dc2", Request: "mr-4", Reason: "dc2 is predicted congested\n12:10-12:40"})
	}
	act.AddDecision(api.Decision{Time: act.Start.Add(2 * time.Hour), Policy: "web", Kind: api.DecisionReserve, Locality: "dc2",
		Request: "mr-3", Reason: "reserve 4000 MHz / 8 GiB in dc2"})
	code, out, _ = runCLI(t, "decisions", "-address", addr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != ExitOK || len(lines) != 51 || !strings.Contains(lines[1], "reserve  dc2       mr-3     reserve 4000 MHz / 8 GiB in dc2") ||
		!strings.Contains(lines[2], "dc2 is predicted congested 12:10-12:40") {
		t.Errorf("decisions: exit %d, %d lines (want a header and the default 50)\n%s", code, len(lines), out)
	}
	code, out, _ = runCLI(t, "decisions", "-address", addr, "-kind", "reserve", "-json")
	var ds api.Decisions
	if code != ExitOK || json.Unmarshal([]byte(out), &ds) != nil || len(ds.Decisions) != 1 || ds.Decisions[0].Request != "mr-3" {
		t.Errorf("decisions -kind reserve -json: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "decisions", "-address", addr, "-since", "2026-01-05T09:58:00Z", "-limit", "0")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != ExitOK || len(lines) != 4 {
		t.Errorf("decisions -since: exit %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "decisions", "-address", addr, "-request", "mr-9"); code != ExitOK || out != "No decisions.\n" {
		t.Errorf("no decisions: exit %d %q", code, out)
	}
}

// waitFor waits until the output contains want (the watch runs in another
// goroutine and follows changes as they come).
func waitFor(t *testing.T, out *syncbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never showed %q:\n%s", want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runWatch runs `queue watch` until the test cancels it, or ends. It
// stops at the test's cleanup, before the agent servers the test started
// earlier are closed: a test that fails before it cancels the watch (a
// waitFor) would otherwise leave its blocking query open, and the
// server's Close waiting on it for good.
func runWatch(t *testing.T, terminal bool, args ...string) (*syncbuf.Buffer, *syncbuf.Buffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	m := Meta{Ctx: ctx, UI: &cli.BasicUi{Writer: out, ErrorWriter: errb}, Out: out, Err: errb}
	cmd := &QueueWatchCommand{Meta: m, terminal: func(io.Writer) bool { return terminal }}
	done := make(chan int, 1)
	go func() { done <- cmd.Run(args) }()
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Error("queue watch did not stop when cancelled")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return out, errb, stop
}

func TestQueueWatchLines(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)
	id, _ := act.Submit(context.Background(), api.Submission{Node: "n1", Target: "dc2", Reason: "rack a maintenance"})
	out, _, stop := runWatch(t, false, "-address", addr)
	waitFor(t, out, "mr-1 pending node/n1 dc1 -> dc2 priority 50 score 0.00: rack a maintenance")
	act.Update(id, func(r *api.MigrationRequest) {
		r.State, r.Reason = api.StateWaiting, "dc2 is predicted congested until 12:40"
	})
	waitFor(t, out, "mr-1 waiting node/n1 dc1 -> dc2 priority 50 score 0.00: dc2 is predicted congested until 12:40")
	_ = act.SetPaused(context.Background(), true)
	waitFor(t, out, "queue paused")
	id2, _ := act.Submit(context.Background(), api.Submission{Allocation: "a2", Target: "dc3"})
	waitFor(t, out, id2+" pending alloc/a2 dc2 -> dc3")
	if code := stop(); code != ExitOK {
		t.Errorf("exit %d after Ctrl-C", code)
	}
	text := out.String()
	if strings.Contains(text, "\x1b[") {
		t.Errorf("escape sequences in plain output:\n%q", text)
	}
	// Each change is printed once: the pause did not repeat the requests.
	if n := strings.Count(text, "mr-1 "); n != 2 {
		t.Errorf("mr-1 printed %d times, want 2 (pending, waiting):\n%s", n, text)
	}
}

func TestQueueWatchRedrawsOnATerminal(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)
	id, _ := act.Submit(context.Background(), api.Submission{Node: "n1", Target: "dc2"})
	out, _, stop := runWatch(t, true, "-address", addr)
	waitFor(t, out, "pending")
	act.Update(id, func(r *api.MigrationRequest) { r.State = api.StateRunning })
	waitFor(t, out, "running  node/n1")
	stop()
	frames := strings.Split(out.String(), "\x1b[H\x1b[2J")
	if len(frames) != 3 || frames[0] != "" || !strings.Contains(frames[1], "Queue: running") || !strings.Contains(frames[2], "mr-1  running") {
		t.Errorf("frames = %q, want two full redraws", frames)
	}
}

func TestQueueWatchJSON(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)
	out, _, stop := runWatch(t, true, "-address", addr, "-json")
	waitFor(t, out, `"requests":[]`)
	_, _ = act.Submit(context.Background(), api.Submission{Node: "n1", Target: "dc2"})
	waitFor(t, out, `"id":"mr-1"`)
	stop()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var q api.Queue
		if err := json.Unmarshal([]byte(line), &q); err != nil {
			t.Errorf("not one JSON queue per line: %q", line)
		}
	}
}

// With a filter, a change the filter hides prints nothing: one JSON line
// per change of what the watch shows.
func TestQueueWatchJSONPrintsChangesOnly(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)
	out, _, stop := runWatch(t, false, "-address", addr, "-json", "-state", "running")
	waitFor(t, out, `"requests":[]`)
	// Each change apart, so that the watch answers each by itself (a
	// blocking query returns at the first change).
	id, _ := act.Submit(context.Background(), api.Submission{Node: "n1", Target: "dc2"})
	time.Sleep(200 * time.Millisecond)
	_, _ = act.Submit(context.Background(), api.Submission{Allocation: "a2", Target: "dc3"})
	time.Sleep(200 * time.Millisecond)
	act.Update(id, func(r *api.MigrationRequest) { r.State = api.StateRunning })
	waitFor(t, out, `"id":"mr-1"`)
	stop()
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 {
		t.Errorf("%d lines, want 2 (the empty view, then mr-1 running):\n%s", len(lines), out)
	}
}

// An agent that cannot be reached is reported and tried again; a refusal
// (403) ends the watch.
func TestQueueWatchErrors(t *testing.T) {
	out, errb, stop := runWatch(t, false, "-address", "127.0.0.1:1", "-retry", "10ms")
	waitFor(t, errb, "(trying again in 10ms)")
	waitFor(t, errb, "connection refused")
	if code := stop(); code != ExitOK {
		t.Errorf("exit %d", code)
	}
	if out.String() != "" {
		t.Errorf("stdout = %q", out.String())
	}
	addr := actAgent(t, apitest.New(), "s3cret")
	code, _, errOut := runCLI(t, "queue", "watch", "-address", addr)
	if code != ExitInvalid || !strings.Contains(errOut, "403") {
		t.Errorf("watch without a token: exit %d, %q", code, errOut)
	}
}

// dataTimeBackend is stubBackend whose last cycle saw data up to dataTime
// (a simulator's or a replay's clock, far from the wall clock).
type dataTimeBackend struct {
	stubBackend
	dataTime time.Time
}

func (b dataTimeBackend) Status(ctx context.Context) api.Status {
	st := b.stubBackend.Status(ctx)
	st.LastCycle = &api.Cycle{DataTime: b.dataTime}
	return st
}

// TestDecisionsSinceADuration: -since 30m counts back from the agent's
// data time, which decisions are stamped with, not from the wall clock:
// against a dev agent (a simulator's clock) the wall clock finds nothing.
func TestDecisionsSinceADuration(t *testing.T) {
	act := apitest.New()
	for i := 0; i < 60; i++ {
		act.AddDecision(api.Decision{Time: act.Start.Add(time.Duration(i) * time.Minute), Policy: "web", Kind: api.DecisionWait,
			Locality: "dc2", Request: "mr-4", Reason: "wait"})
	}
	act.AddDecision(api.Decision{Time: act.Start.Add(2 * time.Hour), Policy: "web", Kind: api.DecisionReserve, Locality: "dc2",
		Request: "mr-3", Reason: "reserve 4000 MHz / 8192 MiB in dc2"})
	s, err := api.NewServer(dataTimeBackend{dataTime: act.Start.Add(2 * time.Hour)}, api.Options{Act: act})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	code, out, errOut := runCLI(t, "decisions", "-address", srv.URL, "-since", "30m")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != ExitOK || len(lines) != 2 || !strings.Contains(lines[1], "mr-3") {
		t.Errorf("decisions -since 30m: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "decisions", "-address", srv.URL, "-since", "90m", "-limit", "0")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != ExitOK || len(lines) != 1+1+30 {
		t.Errorf("decisions -since 90m: exit %d, %d lines; want the reserve and the last 30 waits\n%s", code, len(lines), out)
	}
}

// policiesBackend is stubBackend with two policies.
type policiesBackend struct{ stubBackend }

func (policiesBackend) Policies(context.Context) []api.Policy {
	return []api.Policy{{Name: "web", Locality: "dc1/*/web"}, {Name: "batch", Locality: "*/batch"}}
}

// TestEmptyResultNamesUnknownPolicy: decisions and reservations filtered
// by a policy the agent does not have say so beside "No …" (a typo read
// as "nothing happened"); a policy it has, with nothing to show, is not
// remarked on.
func TestEmptyResultNamesUnknownPolicy(t *testing.T) {
	s, err := api.NewServer(policiesBackend{}, api.Options{Act: apitest.New()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, cmd := range []string{"decisions", "reservations"} {
		code, out, errOut := runCLI(t, cmd, "-address", srv.URL, "-policy", "wbe")
		if code != ExitOK || !strings.HasPrefix(out, "No ") || !strings.Contains(errOut, `note: the agent has no policy "wbe" (its policies: web, batch).`) {
			t.Errorf("%s -policy wbe: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
		}
		if code, out, errOut := runCLI(t, cmd, "-address", srv.URL, "-policy", "batch", "-locality", "dc1"); code != ExitOK || !strings.HasPrefix(out, "No ") || errOut != "" {
			t.Errorf("%s -policy batch: exit %d, stdout %q, stderr %q; want no note", cmd, code, out, errOut)
		}
	}
}

// TestQueueHelpSaysFinishedRequestsAreForgotten: queue list and queue show
// say that a finished request goes from the queue after
// queue.keep_finished, with its default as the configuration has it.
func TestQueueHelpSaysFinishedRequestsAreForgotten(t *testing.T) {
	def := "(default " + hclfield.FormatDuration(config.DefaultKeepFinished) + ")"
	if help := (&QueueListCommand{}).Help(); !strings.Contains(help, "queue.keep_finished\n  "+def) {
		t.Errorf("queue list -help does not say a finished request stays listed at least queue.keep_finished %s:\n%s", def, help)
	}
	if help := (&QueueShowCommand{}).Help(); !strings.Contains(help, "queue.keep_finished") {
		t.Errorf("queue show -help does not say a forgotten request is not found:\n%s", help)
	}
}

// TestLocalityFilterNamesKnownLocalities: queue list -locality lists the
// requests from or to a locality within the one named ("dc1" holds the
// dc1/*/web of a policy on node class web); one that holds no locality the
// agent knows (its policies', its requests') lists nothing and says so on
// stderr, naming what the path means and the known ones — "dc1/web" is
// node pool web, the usual slip for class web; so do reservations and
// decisions. A malformed path is a usage error naming -locality.
func TestLocalityFilterNamesKnownLocalities(t *testing.T) {
	act := apitest.New()
	s, err := api.NewServer(policiesBackend{}, api.Options{Act: act})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	if code, out, errOut := runCLI(t, "queue", "submit", "-address", srv.URL, "-node", "n1", "-target", "dc2"); code != ExitOK {
		t.Fatalf("submit: exit %d, %s %s", code, out, errOut)
	}
	act.Update("mr-1", func(r *api.MigrationRequest) { r.Source = "dc1/*/web" })
	for _, filter := range []string{"dc1", "dc1/*/web", "dc2"} {
		code, out, errOut := runCLI(t, "queue", "list", "-address", srv.URL, "-locality", filter)
		if code != ExitOK || !strings.Contains(out, "mr-1") || errOut != "" {
			t.Errorf("queue list -locality %s: exit %d, stdout %q, stderr %q; want mr-1", filter, code, out, errOut)
		}
	}
	want := `note: no policy or request of the agent is in locality "dc1/web" (datacenter dc1, node pool web); ` +
		`the localities it knows: */batch, dc1/*/web, dc2.`
	code, out, errOut := runCLI(t, "queue", "list", "-address", srv.URL, "-locality", "dc1/web")
	if code != ExitOK || !strings.Contains(out, "No migration requests.") || strings.TrimSpace(errOut) != want {
		t.Errorf("queue list -locality dc1/web: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	// A known locality without requests is not remarked on.
	if code, out, errOut := runCLI(t, "queue", "list", "-address", srv.URL, "-locality", "*/batch"); code != ExitOK || !strings.Contains(out, "No migration requests.") || errOut != "" {
		t.Errorf("queue list -locality */batch: exit %d, stdout %q, stderr %q; want no note", code, out, errOut)
	}
	for _, cmd := range []string{"reservations", "decisions"} {
		code, out, errOut := runCLI(t, cmd, "-address", srv.URL, "-locality", "dc3/*/web")
		want := `note: no policy or ` + strings.TrimSuffix(cmd, "s") + ` of the agent is in locality "dc3/*/web" (datacenter dc3, node class web); ` +
			`the localities it knows: */batch, dc1/*/web.`
		if code != ExitOK || !strings.HasPrefix(out, "No ") || strings.TrimSpace(errOut) != want {
			t.Errorf("%s -locality dc3/*/web: exit %d, stdout %q, stderr %q; want %q", cmd, code, out, errOut, want)
		}
	}
	for _, cmd := range [][]string{{"queue", "list"}, {"queue", "watch"}, {"reservations"}, {"decisions"}} {
		args := append(append([]string{}, cmd...), "-address", srv.URL, "-locality", "dc1//web")
		code, _, errOut := runCLI(t, args...)
		if code != ExitUsage || !strings.Contains(errOut, `: -locality "dc1//web" has an empty part`) {
			t.Errorf("%v -locality dc1//web: exit %d, stderr %q; want a usage error naming -locality", cmd, code, errOut)
		}
	}
}

// nomadRefusing is an act backend whose Nomad refuses the agent's token
// the calls a submission needs, as the agent answers it (502).
type nomadRefusing struct{ *apitest.Act }

func (nomadRefusing) Submit(context.Context, api.Submission) (string, error) {
	return "", fmt.Errorf("migrate: nodes index: Unexpected response code: 403 (Permission denied; Nomad refused GET /v1/nodes "+
		"with the agent's token: check nomad.token or NOMAD_TOKEN, and that its ACL policy grants what "+
		"deploy/foreshape-acl.hcl does): %w", api.ErrNomadRefused)
}

// TestQueueSubmitNomadRefused: when Nomad refuses the agent's own token a
// call the submission needs, queue submit says the agent's answer (502,
// the refused call and Nomad's reason) and that it is the agent's Nomad
// token, not the command's, that needs the grants; nothing is queued.
func TestQueueSubmitNomadRefused(t *testing.T) {
	act := apitest.New()
	s, err := api.NewServer(stubBackend{}, api.Options{Act: nomadRefusing{act}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	code, out, errOut := runCLI(t, "queue", "submit", "-address", srv.URL, "-node", "n1", "-target", "dc2")
	for _, want := range []string{
		"error: agent answered 502 Bad Gateway: migrate: nodes index: Unexpected response code: 403 (Permission denied; " +
			"Nomad refused GET /v1/nodes with the agent's token: check nomad.token or NOMAD_TOKEN",
		"Nomad refused the agent's own Nomad token (its nomad.token, NOMAD_TOKEN or nomad.token_file), not this command's",
		"The request changed nothing.",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q; want it to say %q", errOut, want)
		}
	}
	if code != ExitInvalid || out != "" || strings.Contains(errOut, api.ErrNomadRefused.Error()) {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d, nothing on stdout, the sentinel's words not repeated", code, out, errOut, ExitInvalid)
	}
	if q, _ := act.Queue(context.Background()); len(q.Requests) != 0 {
		t.Errorf("queued %+v", q.Requests)
	}
}

// TestQueueListHelpSaysTheOrder: queue list -help gives the order the
// agent lists requests in (agent's sortQueue, TestQueueOrder,
// docs/api.md): running first, then queued by score, then finished,
// newest first. It said "(highest score first)", which a running request
// of a lower score, listed first, contradicted.
func TestQueueListHelpSaysTheOrder(t *testing.T) {
	code, out, _ := runCLI(t, "queue", "list", "-help")
	help := strings.Join(strings.Fields(out), " ")
	if code != ExitOK || !strings.Contains(help, "in the order it runs them: running requests first, then queued ones by score, highest first, then finished ones, newest first.") ||
		strings.Contains(help, "(highest score first)") {
		t.Errorf("exit %d, help:\n%s", code, out)
	}
}
