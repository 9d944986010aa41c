// Package collect is the leader's collection step: it asks every metric
// source for what happened since the last cycle, aggregates the samples per
// series and step, and commits them to the replicated series store as one
// AppendSamples command, with MarkStale for series a source could not
// refresh.
//
// It never forecasts and never talks to Nomad itself (sources do); it writes
// replicated state only through the Applier it is given, so every node sees
// the same samples in the same order.
package collect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/source"
)

// Applier commits a command to the replicated state (the Raft leader).
type Applier interface {
	Apply(ctx context.Context, cmd state.Command) (state.Result, error)
}

// Collector runs collection cycles. It is used from one goroutine (the
// leader loop) and is not safe for concurrent use.
type Collector struct {
	sources  []source.Source
	apply    Applier
	step     time.Duration
	lookback time.Duration
	log      hclog.Logger

	since map[string]time.Time // per source: newest sample committed
	stale map[string]string    // series marked stale by this leader → reason
}

// New returns a collector that stores samples at step resolution. lookback
// bounds how much history sources that keep it (Prometheus, replay) return
// on the first cycle.
func New(sources []source.Source, apply Applier, step, lookback time.Duration, log hclog.Logger) *Collector {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Collector{
		sources: sources, apply: apply, step: step, lookback: lookback,
		log:   log.Named("collect"),
		since: map[string]time.Time{}, stale: map[string]string{},
	}
}

// Stats summarise one cycle.
type Stats struct {
	Samples  int       // samples committed
	Series   int       // distinct series in the batch
	Stale    int       // series newly marked stale
	Newest   time.Time // newest sample time committed
	Failures []string  // sources that returned an error
}

// RunOnce collects from every source at now and commits the result. A
// source that fails is logged and reported in Stats.Failures; the cycle
// goes on with the others. It returns an error only when nothing could be
// committed.
func (c *Collector) RunOnce(ctx context.Context, now time.Time, localities []source.Locality) (Stats, error) {
	var (
		st      Stats
		samples []source.Sample
		stale   []source.Stale
	)
	for _, src := range c.sources {
		res, err := src.Collect(ctx, source.Request{
			Now: now, Since: c.since[src.Name()], Lookback: c.lookback, Step: c.step, Localities: localities,
		})
		if err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			c.log.Warn("source failed; its series get no samples this cycle", "source", src.Name(), "error", err)
			st.Failures = append(st.Failures, fmt.Sprintf("%s: %v", src.Name(), err))
			continue
		}
		samples = append(samples, res.Samples...)
		stale = append(stale, res.Stale...)
	}
	if len(st.Failures) == len(c.sources) && len(c.sources) > 0 {
		return st, fmt.Errorf("collect: every source failed: %s", strings.Join(st.Failures, "; "))
	}

	batch, err := Aggregate(samples, c.step)
	if err != nil {
		return st, err
	}
	if len(batch) > 0 {
		if _, err := c.apply.Apply(ctx, state.AppendSamples{Step: c.step, Samples: batch}); err != nil {
			return st, fmt.Errorf("collect: commit %d samples: %w", len(batch), err)
		}
		st.Samples = len(batch)
		seen := map[state.Key]bool{}
		for _, s := range batch {
			seen[s.Key] = true
			if s.Time.After(st.Newest) {
				st.Newest = s.Time
			}
			delete(c.stale, s.Key.String()) // the store clears the mark on a newer sample
		}
		st.Series = len(seen)
		c.advance(samples)
	}

	if n, err := c.markStale(ctx, now, stale); err != nil {
		return st, err
	} else {
		st.Stale = n
	}
	return st, nil
}

// advance records, per source, the newest sample committed, so the next
// request asks only for what is new.
func (c *Collector) advance(samples []source.Sample) {
	// Samples are not tagged with their source; sources that honour Since
	// (history readers) are advanced to the newest sample overall, which is
	// correct because all of them are asked for the same window.
	var newest time.Time
	for _, s := range samples {
		if s.Time.After(newest) {
			newest = s.Time
		}
	}
	for _, src := range c.sources {
		if newest.After(c.since[src.Name()]) {
			c.since[src.Name()] = newest
		}
	}
}

// markStale commits MarkStale for series that became stale, one command per
// reason, and returns how many series it marked.
func (c *Collector) markStale(ctx context.Context, now time.Time, stale []source.Stale) (int, error) {
	byReason := map[string][]state.Key{}
	for _, s := range stale {
		if c.stale[s.Series] == s.Reason {
			continue // already marked for this reason
		}
		k, err := state.ParseKey(s.Series)
		if err != nil {
			c.log.Warn("source reported a malformed stale series", "series", s.Series, "error", err)
			continue
		}
		byReason[s.Reason] = append(byReason[s.Reason], k)
	}
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	n := 0
	for _, r := range reasons {
		keys := byReason[r]
		if _, err := c.apply.Apply(ctx, state.MarkStale{Keys: keys, Since: now, Reason: r}); err != nil {
			return n, fmt.Errorf("collect: mark %d series stale: %w", len(keys), err)
		}
		for _, k := range keys {
			c.stale[k.String()] = r
			c.log.Warn("series stale", "series", k.String(), "reason", r)
		}
		n += len(keys)
	}
	return n, nil
}

// Aggregate turns raw samples into one sample per series and step bucket:
// the mean of the bucket's samples, stamped with the bucket's start. The
// result is sorted by series, then time. Non-finite values are dropped.
func Aggregate(samples []source.Sample, step time.Duration) ([]state.Sample, error) {
	if step <= 0 {
		return nil, errors.New("collect: step must be positive")
	}
	type bucket struct {
		key state.Key
		t   time.Time
	}
	type acc struct {
		sum float64
		n   int
	}
	sums := map[bucket]*acc{}
	keys := map[string]state.Key{}
	for _, s := range samples {
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		k, ok := keys[s.Series]
		if !ok {
			var err error
			if k, err = state.ParseKey(s.Series); err != nil {
				return nil, fmt.Errorf("collect: %w", err)
			}
			keys[s.Series] = k
		}
		b := bucket{k, s.Time.Truncate(step).UTC()}
		a := sums[b]
		if a == nil {
			a = &acc{}
			sums[b] = a
		}
		a.sum += s.Value
		a.n++
	}
	out := make([]state.Sample, 0, len(sums))
	for b, a := range sums {
		out = append(out, state.Sample{Key: b.key, Time: b.t, Value: a.sum / float64(a.n)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key.String() < out[j].Key.String()
		}
		return out[i].Time.Before(out[j].Time)
	})
	return out, nil
}
