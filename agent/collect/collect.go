// Package collect is the leader's collection step: it asks every metric
// source for what happened since the last cycle, aggregates the samples per
// series and step, and commits them to the replicated series store as one
// AppendSamples command. It also keeps the store honest: MarkStale for
// series a source could not refresh or that have had no sample for a few
// steps, DropSeries for series with nothing left inside their retention
// (the nodes that left the cluster), and a bound on the number of series.
//
// It never forecasts and never talks to Nomad itself (sources do); it writes
// replicated state only through the Applier it is given, so every node sees
// the same samples in the same order. A Collector lives for one leadership
// term: what it remembers (each source's progress) is a cache of what the
// replicated store already says, so a new leader starts a fresh one.
package collect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/failing"
	"github.com/foreshape/foreshape/plugins/source"
)

// Applier commits a command to the replicated state (the Raft leader).
type Applier interface {
	Apply(ctx context.Context, cmd state.Command) (state.Result, error)
}

// Store is the part of the replicated series store the collector reads.
type Store interface {
	// Infos returns every series' freshness and staleness.
	Infos() []state.Info
	// Config returns the store's tiers and profiles.
	Config() state.Config
}

// Defaults of Config.
const (
	// DefaultMaxSeries bounds the series the store holds: 100,000 is 25,000
	// nodes' four series each, or, at the default profiles' 6.3 KiB a node
	// series, about 600 MiB.
	DefaultMaxSeries = 100_000
	// DefaultStaleSteps is how many steps a series may go without a sample
	// before it is marked stale.
	DefaultStaleSteps = 3
)

// groupScope is the prefix of a task group's series
// ("group/NAMESPACE/JOB/GROUP:metric").
const groupScope = "group/"

// Config configures a Collector.
type Config struct {
	Sources []source.Source
	Apply   Applier
	Store   Store
	// Step is the resolution samples are aggregated and stored at.
	Step time.Duration
	// Lookback bounds how much history sources that keep it (Prometheus,
	// replay) return on a source's first cycle.
	Lookback time.Duration
	// MaxSeries bounds the number of series in the store; zero means
	// DefaultMaxSeries. When new series would exceed it, locality series
	// are admitted before node and group series and the rest are refused.
	MaxSeries int
	// StaleSteps is how many of its steps a series may go without a sample
	// before it is marked stale; zero means DefaultStaleSteps.
	StaleSteps int
	Logger     hclog.Logger
	// Wall returns the wall time a source's failures are logged by (the
	// first at once, the same again every failing.RemindEvery, the
	// recovery once); nil means time.Now.
	Wall func() time.Time
}

// Collector runs collection cycles. It is used from one goroutine (the
// leader loop) and is not safe for concurrent use.
type Collector struct {
	cfg Config
	log hclog.Logger

	since     map[string]time.Time       // per source: newest sample committed from it
	malformed map[string]bool            // series keys already logged as malformed
	failures  map[string]*failing.Streak // per source: its failures, for the log
}

// New returns a collector.
func New(cfg Config) (*Collector, error) {
	switch {
	case cfg.Apply == nil || cfg.Store == nil:
		return nil, errors.New("collect: an applier and a store are required")
	case cfg.Step <= 0:
		return nil, fmt.Errorf("collect: step %v is not positive", cfg.Step)
	}
	if cfg.MaxSeries <= 0 {
		cfg.MaxSeries = DefaultMaxSeries
	}
	if cfg.StaleSteps <= 0 {
		cfg.StaleSteps = DefaultStaleSteps
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Wall == nil {
		cfg.Wall = time.Now
	}
	return &Collector{
		cfg: cfg, log: cfg.Logger.Named("collect"),
		since: map[string]time.Time{}, malformed: map[string]bool{}, failures: map[string]*failing.Streak{},
	}, nil
}

// Stats summarise one cycle.
type Stats struct {
	Samples  int       // samples committed
	Series   int       // distinct series in the batch
	Stale    int       // series newly marked stale
	Dropped  int       // series dropped: nothing left inside their retention
	Newest   time.Time // newest sample time committed
	Failures []string  // sources that returned an error
	// Failed names the sources (Source.Name) that returned an error,
	// outright or in part, in the order they were asked.
	Failed []string
	// Rejected lists series whose samples were dropped because their name
	// is malformed, as "source: series: why".
	Rejected []string
	// Refused counts new series refused because the store holds MaxSeries.
	Refused int
}

// Problems describes what went wrong in the cycle, for status and logs;
// empty when nothing did.
func (st Stats) Problems() string {
	var out []string
	out = append(out, st.Failures...)
	if n := len(st.Rejected); n > 0 {
		out = append(out, fmt.Sprintf("%d malformed series rejected (first: %s)", n, st.Rejected[0]))
	}
	if st.Refused > 0 {
		out = append(out, fmt.Sprintf("series limit reached: %d new series refused", st.Refused))
	}
	return strings.Join(out, "; ")
}

// RunOnce collects from every source at now and commits the result, then
// marks and drops series by age. A source that fails is reported in
// Stats.Failures and the cycle goes on with the others; one that fails
// in part (an error with samples) has its samples committed all the same.
// A failure is logged as failing.Streak says (not every cycle), and so is
// its recovery. It returns an error when every source failed outright or
// a command could not be committed.
func (c *Collector) RunOnce(ctx context.Context, now time.Time, localities []source.Locality) (Stats, error) {
	var st Stats
	known := map[state.Key]state.Info{}
	for _, in := range c.cfg.Store.Infos() {
		known[in.Key] = in
	}

	// Collect, keeping each source's samples apart for its progress, and
	// leaving out what the store already holds (a new leader re-reads
	// history sources from their lookback).
	var (
		parts  []part
		stale  []source.Stale
		failed int // sources that collected nothing
	)
	for _, src := range c.cfg.Sources {
		res, err := src.Collect(ctx, source.Request{
			Now: now, Since: c.since[src.Name()], Lookback: c.cfg.Lookback, Step: c.cfg.Step, Localities: localities,
		})
		fails := c.failures[src.Name()]
		if fails == nil {
			fails = &failing.Streak{}
			c.failures[src.Name()] = fails
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return st, ctx.Err()
		case err != nil && len(res.Samples) == 0:
			fails.Fail(c.log, c.cfg.Wall(), "source failed; its series get no samples while it fails", err, "source", src.Name())
			st.Failures = append(st.Failures, fmt.Sprintf("%s: %v", src.Name(), err))
			st.Failed = append(st.Failed, src.Name())
			stale = append(stale, res.Stale...) // what it knows it could not refresh
			failed++
			continue
		case err != nil:
			// What it collected stands; the rest is in its stale entries.
			fails.Fail(c.log, c.cfg.Wall(), "source failed in part; the series it could not refresh are stale", err, "source", src.Name())
			st.Failures = append(st.Failures, fmt.Sprintf("%s: %v", src.Name(), err))
			st.Failed = append(st.Failed, src.Name())
		default:
			fails.OK(c.log, c.cfg.Wall(), "source answers again", "source", src.Name())
		}
		p := part{source: src.Name()}
		for _, smp := range res.Samples {
			k, err := state.ParseKey(smp.Series)
			if err != nil {
				c.reject(&st, src.Name(), smp.Series, err)
				continue
			}
			if in, ok := known[k]; ok && !smp.Time.After(in.LastSample) {
				continue
			}
			p.samples = append(p.samples, keyed{k, smp})
		}
		parts = append(parts, p)
		stale = append(stale, res.Stale...)
	}
	var errs []error
	if n := len(c.cfg.Sources); n > 0 && failed == n {
		errs = append(errs, fmt.Errorf("collect: every source failed: %s", strings.Join(st.Failures, "; ")))
	}

	c.admit(&st, parts, known, localities)
	if err := c.commit(ctx, &st, parts); err != nil {
		return st, errors.Join(append(errs, err)...)
	}
	if err := c.age(ctx, &st, now, stale); err != nil {
		return st, errors.Join(append(errs, err)...)
	}
	return st, errors.Join(errs...)
}

// part is what one source returned this cycle, with parsed keys.
type part struct {
	source  string
	samples []keyed
}

type keyed struct {
	key state.Key
	source.Sample
}

// reject records a malformed series once per cycle and logs it once per
// collector.
func (c *Collector) reject(st *Stats, src, series string, err error) {
	entry := fmt.Sprintf("%s: %q: %v", src, series, err)
	if !slices.Contains(st.Rejected, entry) {
		st.Rejected = append(st.Rejected, entry)
	}
	if !c.malformed[series] {
		c.malformed[series] = true
		c.log.Warn("source returned a malformed series; its samples are dropped", "source", src, "series", series, "error", err)
	}
}

// admit keeps the number of series within MaxSeries: new series are
// admitted in order (the policies' localities first, then by key) while
// there is room, and the samples of the others are left out.
func (c *Collector) admit(st *Stats, parts []part, known map[state.Key]state.Info, localities []source.Locality) {
	fresh := map[state.Key]bool{}
	for _, p := range parts {
		for _, s := range p.samples {
			if _, ok := known[s.key]; !ok {
				fresh[s.key] = true
			}
		}
	}
	room := c.cfg.MaxSeries - len(known)
	if len(fresh) <= room {
		return
	}
	policy := map[string]bool{}
	for _, l := range localities {
		policy[l.String()] = true
	}
	keys := make([]state.Key, 0, len(fresh))
	for k := range fresh {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		pi, pj := policy[keys[i].Locality], policy[keys[j].Locality]
		if pi != pj {
			return pi
		}
		return keys[i].String() < keys[j].String()
	})
	refused := map[state.Key]bool{}
	for i, k := range keys {
		if i >= max(room, 0) {
			refused[k] = true
		}
	}
	for i := range parts {
		kept := parts[i].samples[:0]
		for _, s := range parts[i].samples {
			if !refused[s.key] {
				kept = append(kept, s)
			}
		}
		parts[i].samples = kept
	}
	st.Refused = len(refused)
	c.log.Error("series limit reached: new series are refused until series are dropped",
		"series", len(known), "limit", c.cfg.MaxSeries, "refused", len(refused), "first_refused", keys[max(room, 0)].String())
}

// commit aggregates the parts and appends them in one command, then
// advances each source's progress to the newest sample it contributed.
func (c *Collector) commit(ctx context.Context, st *Stats, parts []part) error {
	var all []source.Sample
	for _, p := range parts {
		for _, s := range p.samples {
			all = append(all, s.Sample)
		}
	}
	batch, _ := Aggregate(all, c.cfg.Step) // keys were checked above
	if len(batch) == 0 {
		return nil
	}
	if _, err := c.cfg.Apply.Apply(ctx, state.AppendSamples{Step: c.cfg.Step, Samples: batch}); err != nil {
		return fmt.Errorf("collect: commit %d samples: %w", len(batch), err)
	}
	st.Samples = len(batch)
	seen := map[state.Key]bool{}
	for _, s := range batch {
		seen[s.Key] = true
		if s.Time.After(st.Newest) {
			st.Newest = s.Time
		}
	}
	st.Series = len(seen)
	for _, p := range parts {
		for _, s := range p.samples {
			if s.Time.After(c.since[p.source]) {
				c.since[p.source] = s.Time
			}
		}
	}
	return nil
}

// age marks series stale, those the sources reported and those without a
// sample for StaleSteps of their step, and drops series whose newest
// sample is older than their retention.
func (c *Collector) age(ctx context.Context, st *Stats, now time.Time, reported []source.Stale) error {
	infos := c.cfg.Store.Infos() // after this cycle's samples
	byKey := make(map[state.Key]state.Info, len(infos))
	for _, in := range infos {
		byKey[in.Key] = in
	}
	marks := map[string][]state.Key{} // reason → keys
	marked := map[state.Key]bool{}
	for _, s := range reported {
		k, err := state.ParseKey(s.Series)
		if err != nil {
			c.log.Warn("source reported a malformed stale series", "series", s.Series, "error", err)
			continue
		}
		if in, ok := byKey[k]; !ok || marked[k] || (in.Stale && in.StaleReason == s.Reason) {
			continue // unknown to the store, or already marked for this reason
		}
		marks[s.Reason] = append(marks[s.Reason], k)
		marked[k] = true
	}
	retention := newRetentions(c.cfg.Store.Config())
	var drop []state.Key
	for _, in := range infos {
		if in.LastSample.IsZero() {
			continue
		}
		keep := retention.of(in.Key.Locality)
		if now.Sub(in.LastSample) > keep {
			drop = append(drop, in.Key)
			continue
		}
		step := max(in.Step, c.cfg.Step)
		limit := time.Duration(c.cfg.StaleSteps) * step
		if !in.Stale && !marked[in.Key] && now.Sub(in.LastSample) > limit {
			r := fmt.Sprintf("no sample for more than %d steps of %s", c.cfg.StaleSteps, step)
			marks[r] = append(marks[r], in.Key)
		}
	}
	reasons := make([]string, 0, len(marks))
	for r := range marks {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		keys := marks[r]
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		if _, err := c.cfg.Apply.Apply(ctx, state.MarkStale{Keys: keys, Since: now, Reason: r}); err != nil {
			return fmt.Errorf("collect: mark %d series stale: %w", len(keys), err)
		}
		// One line per reason, not per series: a Nomad that stops
		// answering stales every node's series at once (112 lines for
		// 28 nodes). A task group's series stop when its job or its
		// allocations end (a placeholder released, a batch job done):
		// expected, not worth a warning.
		var warn, quiet []string
		for _, k := range keys {
			if strings.HasPrefix(k.Locality, groupScope) {
				quiet = append(quiet, k.String())
			} else {
				warn = append(warn, k.String())
			}
		}
		if len(warn) > 0 {
			c.log.Warn("series stale", "series", namedSeries(warn), "count", len(warn), "reason", r)
		}
		if len(quiet) > 0 {
			c.log.Debug("series stale", "series", namedSeries(quiet), "count", len(quiet), "reason", r)
		}
		st.Stale += len(keys)
	}
	if len(drop) > 0 {
		sort.Slice(drop, func(i, j int) bool { return drop[i].String() < drop[j].String() })
		if _, err := c.cfg.Apply.Apply(ctx, state.DropSeries{Keys: drop}); err != nil {
			return fmt.Errorf("collect: drop %d series: %w", len(drop), err)
		}
		st.Dropped = len(drop)
		c.log.Info("dropped series with no sample inside their retention (nodes that left the cluster, sources that stopped)",
			"series", len(drop), "first", drop[0].String())
	}
	return nil
}

// maxNamedSeries is how many series a log line names; the rest it counts.
const maxNamedSeries = 5

// namedSeries names the first maxNamedSeries of series (sorted) and says
// how many more there are; the API's status lists them all.
func namedSeries(series []string) string {
	if len(series) <= maxNamedSeries {
		return strings.Join(series, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(series[:maxNamedSeries], ", "), len(series)-maxNamedSeries)
}

// retentions says how far back each series' longest tier reaches: its
// profile's (the longest matching prefix), or the default tiers'.
type retentions struct {
	def      time.Duration
	prefixes []string
	keep     []time.Duration
}

func newRetentions(cfg state.Config) retentions {
	longest := func(tiers []state.Tier) time.Duration {
		var r time.Duration
		for _, t := range tiers {
			r = max(r, t.Retention())
		}
		return r
	}
	r := retentions{def: longest(cfg.Tiers)}
	for _, p := range cfg.Profiles {
		r.prefixes = append(r.prefixes, p.Prefix)
		r.keep = append(r.keep, longest(p.Tiers))
	}
	return r
}

func (r retentions) of(locality string) time.Duration {
	keep, best := r.def, -1
	for i, p := range r.prefixes {
		if strings.HasPrefix(locality, p) && len(p) > best {
			keep, best = r.keep[i], len(p)
		}
	}
	return keep
}

// Aggregate turns raw samples into one sample per series and step bucket:
// the mean of the bucket's samples, stamped with the bucket's start. The
// result is sorted by series, then time. Non-finite values are dropped, and
// so are the samples of a malformed series name, which are listed in
// rejected with why (one entry per series).
func Aggregate(samples []source.Sample, step time.Duration) (out []state.Sample, rejected []string) {
	if step <= 0 {
		return nil, []string{fmt.Sprintf("step %v is not positive", step)}
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
	bad := map[string]bool{}
	for _, s := range samples {
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) || bad[s.Series] {
			continue
		}
		k, ok := keys[s.Series]
		if !ok {
			var err error
			if k, err = state.ParseKey(s.Series); err != nil {
				bad[s.Series] = true
				rejected = append(rejected, fmt.Sprintf("%q: %v", s.Series, err))
				continue
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
	out = make([]state.Sample, 0, len(sums))
	for b, a := range sums {
		out = append(out, state.Sample{Key: b.key, Time: b.t, Value: a.sum / float64(a.n)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key.String() < out[j].Key.String()
		}
		return out[i].Time.Before(out[j].Time)
	})
	return out, rejected
}
