package command

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
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
