package failing

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// lines returns the logged lines, without their time stamps.
func lines(buf *bytes.Buffer) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		_, rest, _ := strings.Cut(l, " [")
		out = append(out, "["+rest)
	}
	buf.Reset()
	return out
}

// TestStreak: a failure repeated every minute for 100 minutes is 10 lines
// (the first, then every 10 minutes with since when and how many cycles),
// not 100; a different error is said at once; the recovery once, with how
// long it failed; a success without failures says nothing.
func TestStreak(t *testing.T) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &buf})
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	var s Streak
	s.OK(log, t0, "answers again")
	if got := lines(&buf); len(got) != 0 || s.Failing() {
		t.Fatalf("a success without failures logged %q", got)
	}
	down := errors.New("connection refused")
	for i := range 100 {
		s.Fail(log, t0.Add(time.Duration(i)*time.Minute), "source failed", down, "source", "nomad")
	}
	got := lines(&buf)
	if len(got) != 10 {
		t.Fatalf("100 failing cycles a minute apart logged %d lines, want 10:\n%s", len(got), strings.Join(got, "\n"))
	}
	if want := "[WARN]  source failed: source=nomad error=\"connection refused\""; got[0] != want {
		t.Errorf("first line %q, want %q", got[0], want)
	}
	if want := "[WARN]  source failed (still failing): source=nomad error=\"connection refused\" failing_since=2026-12-02T03:00:00Z failing_cycles=11"; got[1] != want {
		t.Errorf("second line %q, want %q", got[1], want)
	}
	if !strings.HasSuffix(got[9], "failing_cycles=91") {
		t.Errorf("last line %q, want failing_cycles=91", got[9])
	}
	// Another error is said at once, then kept quiet like the first.
	timeout := errors.New("Nomad at 10.0.0.1:4646 did not answer within 30s")
	s.Fail(log, t0.Add(100*time.Minute), "source failed", timeout, "source", "nomad")
	s.Fail(log, t0.Add(101*time.Minute), "source failed", timeout, "source", "nomad")
	got = lines(&buf)
	if want := "[WARN]  source failed: source=nomad error=\"Nomad at 10.0.0.1:4646 did not answer within 30s\" failing_since=2026-12-02T03:00:00Z failing_cycles=101"; len(got) != 1 || got[0] != want {
		t.Errorf("a changed error logged %q, want [%q]", got, want)
	}
	s.OK(log, t0.Add(102*time.Minute+30*time.Second), "source answers again", "source", "nomad")
	s.OK(log, t0.Add(103*time.Minute), "source answers again", "source", "nomad")
	got = lines(&buf)
	if want := "[INFO]  source answers again: source=nomad failed_for=1h42m30s failing_since=2026-12-02T03:00:00Z failing_cycles=102"; len(got) != 1 || got[0] != want {
		t.Errorf("recovery logged %q, want [%q]", got, want)
	}
	// A new streak starts afresh.
	s.Fail(log, t0.Add(104*time.Minute), "source failed", down, "source", "nomad")
	got = lines(&buf)
	if want := "[WARN]  source failed: source=nomad error=\"connection refused\""; len(got) != 1 || got[0] != want || !s.Failing() {
		t.Errorf("a new streak logged %q, want [%q]", got, want)
	}
}
