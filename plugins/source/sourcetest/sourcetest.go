// Package sourcetest is the conformance suite that every source.Source
// implementation runs, so that the collect loop can rely on the same
// behaviour from all of them.
//
// It is test support only: it must never be imported by non-test code.
package sourcetest

import (
	"context"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/foreshape/foreshape/plugins/source"
)

// Fixture is one source under test with a request it has data for.
type Fixture struct {
	Source source.Source
	// Request must make the source return at least the WantSeries.
	Request source.Request
	// WantSeries must all appear in the first collection's samples.
	WantSeries []string
	// Advance, when set, moves the world forward by d (for example steps a
	// simulated clock) so that a later collection has new data.
	Advance func(d time.Duration)
}

// Run runs the conformance suite. setup is called once per subtest and must
// return a fresh fixture.
func Run(t *testing.T, setup func(t *testing.T) Fixture) {
	t.Run("Name", func(t *testing.T) {
		f := setup(t)
		if f.Source.Name() == "" {
			t.Error("Name() is empty")
		}
	})

	t.Run("Collect", func(t *testing.T) {
		f := setup(t)
		res, err := f.Source.Collect(context.Background(), f.Request)
		if err != nil {
			t.Fatalf("Collect: %v", err)
		}
		checkResult(t, f.Request, res)
		seen := map[string]bool{}
		for _, s := range res.Samples {
			seen[s.Series] = true
		}
		for _, want := range f.WantSeries {
			if !seen[want] {
				t.Errorf("series %q missing from the result (have %d series)", want, len(seen))
			}
		}
	})

	t.Run("SinceExcludesCollected", func(t *testing.T) {
		f := setup(t)
		first, err := f.Source.Collect(context.Background(), f.Request)
		if err != nil {
			t.Fatalf("Collect: %v", err)
		}
		var last time.Time
		for _, s := range first.Samples {
			if s.Time.After(last) {
				last = s.Time
			}
		}
		req := f.Request
		req.Since = last
		if f.Advance != nil {
			step := req.Step
			if step <= 0 {
				step = time.Minute
			}
			f.Advance(2 * step)
			req.Now = req.Now.Add(2 * step)
		}
		second, err := f.Source.Collect(context.Background(), req)
		if err != nil {
			t.Fatalf("second Collect: %v", err)
		}
		checkResult(t, req, second)
	})

	t.Run("CancelledContext", func(t *testing.T) {
		f := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := f.Source.Collect(ctx, f.Request); err == nil {
			t.Error("Collect with a cancelled context returned no error")
		}
	})
}

// checkResult asserts what every result must satisfy.
func checkResult(t *testing.T, req source.Request, res source.Result) {
	t.Helper()
	if !sort.SliceIsSorted(res.Samples, func(i, j int) bool {
		a, b := res.Samples[i], res.Samples[j]
		if a.Series != b.Series {
			return a.Series < b.Series
		}
		return a.Time.Before(b.Time)
	}) {
		t.Error("samples are not sorted by series, then time")
	}
	stale := map[string]bool{}
	for _, s := range res.Stale {
		stale[s.Series] = true
		if s.Reason == "" {
			t.Errorf("stale series %q has no reason", s.Series)
		}
	}
	for _, s := range res.Samples {
		if _, _, ok := source.SplitSeries(s.Series); !ok {
			t.Errorf("malformed series name %q", s.Series)
		}
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			t.Errorf("%s at %v: value %v is not finite", s.Series, s.Time, s.Value)
		}
		if s.Time.After(req.Now) {
			t.Errorf("%s: sample at %v is after Now %v", s.Series, s.Time, req.Now)
		}
		if !req.Since.IsZero() && !s.Time.After(req.Since) {
			t.Errorf("%s: sample at %v is not after Since %v", s.Series, s.Time, req.Since)
		}
		if stale[s.Series] {
			t.Errorf("%s is both stale and sampled", s.Series)
		}
	}
}
