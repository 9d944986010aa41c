package command

import (
	"context"
	"fmt"
	"io"
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
