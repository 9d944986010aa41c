// Package failing keeps a failure that repeats cycle after cycle (a Nomad
// that does not answer, a pass that cannot act) from being a log line
// every cycle: the first failure is logged at once with its error, the
// same failure again only every RemindEvery with since when and over how
// many cycles it has failed, a different error at once, and the first
// success after failures once, with how long it failed.
package failing

import (
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
)

// RemindEvery is how often a failure that stays the same is logged again.
const RemindEvery = 10 * time.Minute

// Streak is one recurring step's failures. The zero value is a step that
// has not failed. It reads no clock: callers pass the wall time. It is not
// safe for concurrent use.
type Streak struct {
	since  time.Time // the first failure of the current streak; zero when none
	cycles int       // failures in the streak
	said   string    // the error last logged
	saidAt time.Time // when it was logged
}

// Failing reports whether the last call was Fail.
func (s *Streak) Failing() bool { return !s.since.IsZero() }

// Fail records a failure at now and logs msg at warn level with args and
// the error when it starts a streak, when its error differs from the one
// last logged, or when the last line is RemindEvery old; otherwise it
// logs nothing. Lines after the first carry failing_since and
// failing_cycles.
func (s *Streak) Fail(log hclog.Logger, now time.Time, msg string, err error, args ...any) {
	s.cycles++
	text := err.Error()
	switch {
	case s.since.IsZero():
		s.since = now
		log.Warn(msg, slices.Concat(args, []any{"error", err})...)
	case text != s.said:
		log.Warn(msg, slices.Concat(args, []any{"error", err, "failing_since", s.stamp(), "failing_cycles", s.cycles})...)
	case now.Sub(s.saidAt) >= RemindEvery:
		log.Warn(msg+" (still failing)", slices.Concat(args, []any{"error", err, "failing_since", s.stamp(), "failing_cycles", s.cycles})...)
	default:
		return
	}
	s.said, s.saidAt = text, now
}

// OK records a success at now. After failures it logs msg at info level
// with args, how long the step failed and over how many cycles, and
// forgets the streak; otherwise it logs nothing.
func (s *Streak) OK(log hclog.Logger, now time.Time, msg string, args ...any) {
	if s.since.IsZero() {
		return
	}
	log.Info(msg, slices.Concat(args, []any{"failed_for", now.Sub(s.since).Round(time.Second).String(),
		"failing_since", s.stamp(), "failing_cycles", s.cycles})...)
	*s = Streak{}
}

func (s *Streak) stamp() string { return s.since.UTC().Format(time.RFC3339) }
