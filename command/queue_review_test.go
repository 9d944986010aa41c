package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/cli"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

// TestEmptyRequestIDIsAUsageError: queue show and queue cancel given an
// empty request ID (a script's unset variable: foreshape queue cancel
// "$ID") say so, as a usage error. The ID went into the path as it
// stood, and the agent answered "404 no such endpoint: DELETE
// /v1/queue/", exit 1, which named neither the ID nor the mistake.
func TestEmptyRequestIDIsAUsageError(t *testing.T) {
	addr := actAgent(t, apitest.New())
	for _, cmd := range []string{"show", "cancel"} {
		code, out, errOut := runCLI(t, "queue", cmd, "-address", addr, "")
		if code != ExitUsage || out != "" || !strings.Contains(errOut, "error: the request ID is empty: queue "+cmd+" takes a request's ID, such as mr-4") {
			t.Errorf("queue %s \"\": exit %d, stdout %q, stderr %q; want %d naming the empty ID", cmd, code, out, errOut, ExitUsage)
		}
	}
}

// TestReservationsTableShowsIOPSInFull: the IOPS column gives the figure
// as the agent holds it, as -json does. It was printed with %.4g, so
// 12000 IOPS read "1.2e+04" and 12345 read "1.234e+04", a figure off by
// 5.
func TestReservationsTableShowsIOPSInFull(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)
	from := act.Start.Add(50 * time.Minute)
	for i, iops := range []float64{12000, 12345, 150.5, 0} {
		act.AddReservation(api.Reservation{ID: "rs-" + string(rune('1'+i)), Request: "mr-1", Policy: "db", Locality: "dc2", CPU: 1000, Memory: 1024,
			IOPS: iops, From: from, Until: from.Add(time.Hour), Job: "foreshape-reserve-rs", State: api.ReservationHeld})
	}
	code, out, errOut := runCLI(t, "reservations", "-address", addr)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"1000  1024    12000 ", "1000  1024    12345 ", "1000  1024    150.5 ", "1000  1024    0     "} {
		if !strings.Contains(out, want) {
			t.Errorf("reservations lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "e+") {
		t.Errorf("IOPS in exponent notation:\n%s", out)
	}
}

// TestDecisionsSinceKeepsFractionsOfASecond: -since keeps decisions at or
// after the time given to the nanosecond, as -help says. The client sent
// it to the agent cut to the second, so decisions up to a second before
// it came back too (with -since 30m too, which counts back from a data
// time that has fractions of a second outside a simulator).
func TestDecisionsSinceKeepsFractionsOfASecond(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)
	at := act.Start
	act.AddDecision(api.Decision{Time: at.Add(200 * time.Millisecond), Policy: "web", Kind: api.DecisionWait, Locality: "dc2", Request: "mr-1", Reason: "before"})
	act.AddDecision(api.Decision{Time: at.Add(700 * time.Millisecond), Policy: "web", Kind: api.DecisionStart, Locality: "dc2", Request: "mr-1", Reason: "after"})
	code, out, errOut := runCLI(t, "decisions", "-address", addr, "-since", "2026-01-05T09:00:00.5Z")
	if code != ExitOK || !strings.Contains(out, "after") || strings.Contains(out, "before") {
		t.Errorf("decisions -since 09:00:00.5: exit %d, stdout\n%s%s\nwant the decision at 09:00:00.7 alone", code, out, errOut)
	}
}

// TestQueueWatchFitsTheTerminal: on a terminal, queue watch redraws the
// top of the queue (the queue's state, the header, running requests, then
// queued ones by score) within the terminal's height, each line cut to its
// width, and says how many requests it left out. It wrote the whole
// table: a queue longer than the screen (finished requests stay listed a
// day) scrolled its top away at every redraw, leaving the oldest finished
// requests in view and the running ones out of it; and a long reason
// wrapped, pushing more of it off.
func TestQueueWatchFitsTheTerminal(t *testing.T) {
	act := apitest.New()
	for i := range 30 {
		act.Allocs[fmt.Sprintf("x%02d", i)] = "dc1"
	}
	addr := actAgent(t, act)
	for i := range 30 {
		id, err := act.Submit(context.Background(), api.Submission{Allocation: fmt.Sprintf("x%02d", i), Target: "dc2",
			Reason: "rack maintenance " + strings.Repeat("and a long story ", 10)})
		if err != nil {
			t.Fatal(err)
		}
		act.Update(id, func(r *api.MigrationRequest) { r.Score = float64(100 - i) })
	}
	act.Update("mr-30", func(r *api.MigrationRequest) { r.State, r.Score = api.StateRunning, 200 })
	const width, height = 100, 12
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	cmd := &QueueWatchCommand{Meta: Meta{Ctx: ctx, UI: &cli.BasicUi{Writer: out, ErrorWriter: errb}, Out: out, Err: errb},
		terminal: func(io.Writer) bool { return true }, size: func(io.Writer) (int, int) { return width, height }}
	done := make(chan int, 1)
	go func() { done <- cmd.Run([]string{"-address", addr}) }()
	waitFor(t, out, "Queue: running")
	time.Sleep(100 * time.Millisecond)
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb)
	}
	frames := strings.Split(out.String(), "\x1b[H\x1b[2J")
	frame := frames[len(frames)-1]
	lines := strings.Split(strings.TrimSuffix(frame, "\n"), "\n")
	if len(lines) > height-1 {
		t.Errorf("%d lines on a terminal %d lines high (the cursor takes the last):\n%s", len(lines), height, frame)
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > width {
			t.Errorf("a line of %d characters on a terminal %d wide: %q", n, width, l)
		}
	}
	for _, want := range []string{"Queue: running", "ID     State", "mr-30  running", "mr-1   pending", "… and 24 more requests: 'foreshape queue list' lists them all"} {
		if !strings.Contains(frame, want) {
			t.Errorf("the frame lacks %q:\n%s", want, frame)
		}
	}
}

// TestTerminalSizeOfNoTerminal: what is not a terminal has no size, and
// queue watch's frames are then written whole.
func TestTerminalSizeOfNoTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []io.Writer{&syncbuf.Buffer{}, f} {
		if wd, h := terminalSize(w); wd != 0 || h != 0 {
			t.Errorf("terminalSize(%T) = %d, %d; want 0, 0", w, wd, h)
		}
	}
	if got := fitScreen("a\nb\n", 0, 0, 0); got != "a\nb\n" {
		t.Errorf("fitScreen without a size = %q", got)
	}
}

// TestQueueSubmitReasonTooLong: queue submit refuses a -reason over
// api.MaxReason bytes before sending it, naming -reason (usage error);
// the agent cut such a reason without a word.
func TestQueueSubmitReasonTooLong(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)
	code, out, errOut := runCLI(t, "queue", "submit", "-address", addr, "-node", "n1", "-target", "dc2", "-reason", strings.Repeat("x", api.MaxReason+1))
	if code != ExitUsage || out != "" || !strings.Contains(errOut, "error: -reason: 513 bytes; at most 512") {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d naming -reason", code, out, errOut, ExitUsage)
	}
	if q, _ := act.Queue(context.Background()); len(q.Requests) != 0 {
		t.Errorf("queued %+v", q.Requests)
	}
}

// answerLost serves act as actAgent does, but for a request that changes
// something (POST, DELETE) it carries the request out and then closes the
// connection without an answer: the agent's answer lost after it acted
// (a leader lost mid-request, a proxy's or the client's timeout).
func answerLost(t *testing.T, act *apitest.Act) string {
	t.Helper()
	s, err := api.NewServer(stubBackend{}, api.Options{Act: act})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			s.ServeHTTP(w, r)
			return
		}
		s.ServeHTTP(httptest.NewRecorder(), r)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestLostAnswerSaysHowToCheck: when the answer to queue submit, cancel,
// pause or resume, or operator raft remove-peer, is lost after the
// request went out, the command says
// the agent may have made the change and how to see whether it did,
// besides the error (exit 1). It printed "EOF" alone, and an operator who
// took that for "nothing happened" could queue again or think a request
// still queued. A 502 "forwarding to the leader at …" (a follower that
// lost the leader mid-request) is one too, unless the follower could not
// connect at all; a refused connection to the agent is not.
func TestLostAnswerSaysHowToCheck(t *testing.T) {
	act := apitest.New()
	addr := answerLost(t, act)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"queue", "submit", "-node", "n1", "-target", "dc2"}, "The agent may have queued it before its answer was lost: 'foreshape queue list' shows whether it did (a resource already queued is refused, naming its request)."},
		{[]string{"queue", "cancel", "mr-1"}, "The agent may have cancelled mr-1 before its answer was lost: 'foreshape queue show mr-1' shows whether it did."},
		{[]string{"queue", "priority", "mr-1", "50"}, "The agent may have set it before its answer was lost: 'foreshape queue show mr-1' shows its priority."},
		{[]string{"queue", "pause"}, "The agent may have paused the queue before its answer was lost: 'foreshape queue list' shows whether it did."},
		{[]string{"queue", "resume"}, "The agent may have resumed the queue before its answer was lost: 'foreshape queue list' shows whether it did."},
	} {
		code, out, errOut := runCLI(t, insertFlags(tc.args, "-address", addr)...)
		if code != ExitInvalid || out != "" || !strings.Contains(errOut, "EOF") || !strings.HasSuffix(strings.TrimSpace(errOut), tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, the error and %q", tc.args, code, out, errOut, ExitInvalid, tc.want)
		}
	}
	code, _, errOut := runCLI(t, "operator", "raft", "remove-peer", "-address", addr, "-id", "fs-2")
	if want := "The agent may have removed the server before its answer was lost: 'foreshape operator raft list-peers' shows whether it did."; code != ExitInvalid || !strings.HasSuffix(strings.TrimSpace(errOut), want) {
		t.Errorf("remove-peer: exit %d, stderr %q; want 1 and %q", code, errOut, want)
	}
	if code, out, _ := runCLI(t, "queue", "show", "-address", addr, "mr-1"); code != ExitOK || !strings.Contains(out, "cancelled") {
		t.Errorf("queue show mr-1 after the lost answers: exit %d\n%s", code, out)
	}

	for _, tc := range []struct {
		msg    string
		unsure bool
	}{
		{"forwarding to the leader at 10.0.0.11:7575: EOF", true},
		{"forwarding to the leader at 10.0.0.11:7575: read tcp 10.0.0.12:50000->10.0.0.11:7575: read: connection reset by peer", true},
		{"forwarding to the leader at 10.0.0.11:7575: dial tcp 10.0.0.11:7575: connect: connection refused", false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			_ = json.NewEncoder(w).Encode(api.Error{Error: tc.msg})
		}))
		code, _, errOut := runCLI(t, "queue", "submit", "-address", srv.URL, "-node", "n1", "-target", "dc2")
		if code != ExitInvalid || strings.Contains(errOut, "may have queued it") != tc.unsure {
			t.Errorf("502 %q: exit %d, stderr %q; want 1, saying the agent may have queued it: %v", tc.msg, code, errOut, tc.unsure)
		}
		srv.Close()
	}
	if code, _, errOut := runCLI(t, "queue", "submit", "-address", freeAddr(t), "-node", "n1", "-target", "dc2"); code != ExitInvalid || strings.Contains(errOut, "may have") {
		t.Errorf("no agent: exit %d, stderr %q; want 1 and no word of a change that may have been made", code, errOut)
	}
}

// TestLostAnswerOnATimeout: an answer that did not come within the
// client's timeout is lost as one cut off is (the agent may have acted);
// a connection that could not be made is not.
func TestLostAnswerOnATimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c := &api.Client{Address: srv.URL, HTTP: &http.Client{Timeout: 50 * time.Millisecond}}
	_, err := c.Submit(context.Background(), api.Submission{Node: "n1", Target: "dc2"})
	if err == nil || !lostAnswer(err) {
		t.Errorf("a timeout: %v; lostAnswer = false, want true", err)
	}
	c = &api.Client{Address: freeAddr(t)}
	if _, err := c.Submit(context.Background(), api.Submission{Node: "n1", Target: "dc2"}); err == nil || lostAnswer(err) {
		t.Errorf("no agent: %v; lostAnswer = true, want false", err)
	}
}

// racedPause is the fake act backend where another operator resumes the
// queue right after each pause is applied, before the pausing request
// reads the queue back (and pauses it right after each resume).
type racedPause struct{ *apitest.Act }

func (r racedPause) SetPaused(ctx context.Context, paused bool) error {
	if err := r.Act.SetPaused(ctx, paused); err != nil {
		return err
	}
	return r.Act.SetPaused(ctx, !paused)
}

// TestPauseUndoneByAnotherOperator: queue pause whose pause another
// operator undid before the agent answered says so, on stderr, and exits
// 1: the queue runs. It printed "Queue resumed." and exited 0, as if the
// pause had resumed the queue; so did queue resume the other way round.
func TestPauseUndoneByAnotherOperator(t *testing.T) {
	s, err := api.NewServer(stubBackend{}, api.Options{Act: racedPause{apitest.New()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, tc := range []struct{ cmd, want string }{
		{"pause", "error: the queue was paused, but it runs now: another change (an operator, the dashboard) resumed it before the agent answered"},
		{"resume", "error: the queue was resumed, but it is paused now: another change (an operator, the dashboard) paused it before the agent answered"},
	} {
		code, out, errOut := runCLI(t, "queue", tc.cmd, "-address", srv.URL)
		if code != ExitInvalid || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("queue %s: exit %d, stdout %q, stderr %q; want %d and %q", tc.cmd, code, out, errOut, ExitInvalid, tc.want)
		}
	}
	// With -json the agent's answer is printed as it is, and the exit
	// code says the queue is not as asked.
	code, out, errOut := runCLI(t, "queue", "pause", "-address", srv.URL, "-json")
	var q api.Queue
	if code != ExitInvalid || json.Unmarshal([]byte(out), &q) != nil || q.Paused || !strings.Contains(errOut, "resumed it before the agent answered") {
		t.Errorf("queue pause -json: exit %d, stdout %q, stderr %q; want 1, the queue running, and the error", code, out, errOut)
	}
}

// TestQueueWatchSaysARequestLeftTheFilters: in lines, a request that
// leaves what the filters show (-state pending, and it runs) gets a line
// saying it is no longer listed, as -help says.
func TestQueueWatchSaysARequestLeftTheFilters(t *testing.T) {
	act := apitest.New()
	addr := actAgent(t, act)
	id, _ := act.Submit(context.Background(), api.Submission{Node: "n1", Target: "dc2"})
	out, _, stop := runWatch(t, false, "-address", addr, "-state", "pending")
	waitFor(t, out, id+" pending")
	act.Update(id, func(r *api.MigrationRequest) { r.State = api.StateRunning })
	waitFor(t, out, id+" no longer listed")
	stop()
}

// TestQueueWatchSaysTheIndexWentBackAfterTheRedraw: on a terminal, the
// line saying the queue's index went back comes after the redraw it
// explains; printed before it, the redraw's clearing of the screen wiped
// it at once.
func TestQueueWatchSaysTheIndexWentBackAfterTheRedraw(t *testing.T) {
	a := newIndexAgent(100, "mr-1")
	srv := serveIndexAgent(t, "", a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	both := &syncbuf.Buffer{} // the terminal: standard output and error
	cmd := &QueueWatchCommand{Meta: Meta{Ctx: ctx, UI: &cli.BasicUi{Writer: both, ErrorWriter: both}, Out: both, Err: both},
		terminal: func(io.Writer) bool { return true }}
	done := make(chan int, 1)
	go func() { done <- cmd.Run([]string{"-address", srv.URL, "-retry", "10ms"}) }()
	waitFor(t, both, "mr-1  pending")
	a.awaitWaiting(t)
	a.change(func() { a.lower = true })
	a.set(3, "mr-9")
	waitFor(t, both, "the queue's index went back from 100 to 3")
	cancel()
	<-done
	text := both.String()
	if last, msg := strings.LastIndex(text, "\x1b[H\x1b[2J"), strings.Index(text, "the queue's index went back"); msg < last {
		t.Errorf("the index's going back was said before the last redraw, which cleared it:\n%q", text)
	}
}
