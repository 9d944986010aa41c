// Package source defines how foreshape reads the world's load: the Source
// interface that every metric source implements, the samples it returns,
// and the localities and metric names samples are keyed by.
//
// Built-in sources live in sub-packages: nomad (Nomad's allocation and node
// stats), prometheus (range queries against a Prometheus server) and replay
// (trace files, for backtests). A source only reads: it must never change
// the cluster, write replicated state, or keep samples between calls beyond
// what it needs to avoid returning a point twice.
package source

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/foreshape/foreshape/policies"
)

// Metric names shared by every source, the series store and the forecaster.
const (
	CPUPercent    = "cpu"        // CPU used, percent of the locality's allocatable CPU
	MemoryPercent = "memory"     // memory used, percent of the locality's allocatable memory
	IOPS          = "iops"       // disk operations per second (reads + writes)
	IOPSRead      = "iops_read"  // disk reads per second
	IOPSWrite     = "iops_write" // disk writes per second
	CPUMHz        = "cpu_mhz"    // CPU used, absolute MHz
	MemoryMB      = "memory_mb"  // memory used, absolute MB
	Allocs        = "allocs"     // a task group's running allocations whose stats make up its sums
)

// Locality selects a set of Nomad nodes; it is the policies' locality, so
// sources, the store and policies share one naming. Its String form,
// "dc1/web" ("*" for any, trailing wildcards dropped), is the scope of
// locality series.
type Locality = policies.Locality

// NodeScope is the prefix of series that belong to one node rather than to
// a locality: "node/<node ID>". Node IDs, unlike names, are unique and
// never reused.
const NodeScope = "node/"

// SeriesName joins a scope (a locality name, or NodeScope+node ID) and a
// metric into a series name: "dc1/web:cpu".
func SeriesName(scope, metric string) string { return scope + ":" + metric }

// SplitSeries splits a series name into its scope and metric.
func SplitSeries(series string) (scope, metric string, ok bool) {
	i := strings.LastIndexByte(series, ':')
	if i <= 0 || i == len(series)-1 {
		return "", "", false
	}
	return series[:i], series[i+1:], true
}

// Sample is one observation of one series.
type Sample struct {
	Series string
	Time   time.Time
	Value  float64
}

// Stale names a series that could not be refreshed in this collection, and why.
type Stale struct {
	Series string
	Reason string
}

// Request says what to collect.
type Request struct {
	// Now is the collection time; no sample is later than Now.
	Now time.Time
	// Since is the time of the last sample already collected; sources that
	// read history (prometheus, replay) return only samples after Since.
	// Zero means "as much recent history as the source has, up to Lookback".
	Since time.Time
	// Lookback bounds how far back a source reads when Since is zero.
	Lookback time.Duration
	// Step is the resolution the caller stores at; sources that read history
	// return at most one sample per series and Step.
	Step time.Duration
	// Localities are the localities the policies name; sources aggregate
	// node metrics to each of them.
	Localities []Locality
}

// Result is what one collection returned.
type Result struct {
	// Samples sorted by series, then time.
	Samples []Sample
	// Stale lists series that exist but could not be refreshed, sorted by
	// series. Their samples are absent from Samples: a stale value is never
	// reused as if it were fresh.
	Stale []Stale
}

// Source is a metric source.
type Source interface {
	// Name identifies the source in logs and status ("nomad", "prometheus").
	Name() string
	// Collect returns the samples observed up to req.Now. It returns an error
	// when nothing could be collected, with Stale entries (and no samples)
	// for the series it knows it could not refresh; or when a part of its
	// reads failed that its status should name (a refused call), with the
	// samples it did collect and the rest as Stale entries. Other partial
	// failures are Stale entries alone.
	Collect(ctx context.Context, req Request) (Result, error)
}

// Sort orders samples by series then time, and stale entries by series, so
// that results are deterministic whatever order they were gathered in.
func (r *Result) Sort() {
	sort.SliceStable(r.Samples, func(i, j int) bool {
		a, b := r.Samples[i], r.Samples[j]
		if a.Series != b.Series {
			return a.Series < b.Series
		}
		return a.Time.Before(b.Time)
	})
	sort.Slice(r.Stale, func(i, j int) bool { return r.Stale[i].Series < r.Stale[j].Series })
}
