package proof

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/foreshape/foreshape/sim"
)

// PlaceholderPrefix starts the job ID of every placeholder foreshape
// registers to hold capacity.
const PlaceholderPrefix = "foreshape-reserve-"

// Metrics score one controller's run, from the simulator's ground truth
// over the scenario's duration.
type Metrics struct {
	// CongestionNodeMinutes: node-minutes with demand over capacity (CPU,
	// memory or IOPS), counted to the second.
	CongestionNodeMinutes float64 `json:"congestion_node_minutes"`
	// OverloadNodeMinutes: node-minutes whose mean CPU or memory demand
	// was over the headroom line.
	OverloadNodeMinutes float64 `json:"overload_node_minutes"`
	// UnplacedAllocMinutes: allocation-minutes of workloads (placeholders
	// excluded) waiting in a blocked evaluation.
	UnplacedAllocMinutes float64 `json:"unplaced_alloc_minutes"`
	// MigrationsCompleted counts finished transfers; MigrationP50S and
	// MigrationP95S are their durations' percentiles (nearest rank).
	MigrationsCompleted int     `json:"migrations_completed"`
	MigrationP50S       float64 `json:"migration_p50_s"`
	MigrationP95S       float64 `json:"migration_p95_s"`
	// SLOViolationMinutes: service allocation-minutes beyond the
	// scenario's latency objective (the simulator's latency model).
	SLOViolationMinutes float64 `json:"slo_violation_minutes"`
	// ReservedIdlePct: capacity held by placeholders, which no workload
	// uses, as a percent of the cluster's ready capacity over the run
	// (the larger of CPU and memory).
	ReservedIdlePct float64 `json:"reserved_idle_pct"`
	// ScaleActions counts accepted scale requests: nodes added, job counts
	// changed (placeholders' own excepted).
	ScaleActions int `json:"scale_actions"`
	// NodeHours: node time ready or booting.
	NodeHours float64 `json:"node_hours"`
}

// MetricNames lists the metrics in the order of the JSON and the report.
var MetricNames = []string{
	"congestion_node_minutes", "overload_node_minutes", "unplaced_alloc_minutes",
	"migrations_completed", "migration_p50_s", "migration_p95_s", "slo_violation_minutes",
	"reserved_idle_pct", "scale_actions", "node_hours",
}

// Value returns the named metric.
func (m Metrics) Value(name string) float64 {
	switch name {
	case "congestion_node_minutes":
		return m.CongestionNodeMinutes
	case "overload_node_minutes":
		return m.OverloadNodeMinutes
	case "unplaced_alloc_minutes":
		return m.UnplacedAllocMinutes
	case "migrations_completed":
		return float64(m.MigrationsCompleted)
	case "migration_p50_s":
		return m.MigrationP50S
	case "migration_p95_s":
		return m.MigrationP95S
	case "slo_violation_minutes":
		return m.SLOViolationMinutes
	case "reserved_idle_pct":
		return m.ReservedIdlePct
	case "scale_actions":
		return float64(m.ScaleActions)
	case "node_hours":
		return m.NodeHours
	}
	return math.NaN()
}

// Score computes the metrics of the ground truth recorded in [start, end).
func Score(tr sim.Truth, start, end time.Time, p Params) Metrics {
	in := func(t time.Time) bool { return !t.Before(start) && t.Before(end) }
	line := p.Line()
	var m Metrics
	var capCPU, capMem float64
	for _, nm := range tr.NodeMinutes {
		if !in(nm.Minute) {
			continue
		}
		m.CongestionNodeMinutes += nm.CongestedSeconds / 60
		if nm.ReadySeconds > 0 && (nm.CPUDemandMHz > line*nm.CPUCapacityMHz || nm.MemDemandMB > line*nm.MemCapacityMB) {
			m.OverloadNodeMinutes++
		}
		m.SLOViolationMinutes += nm.SLOViolationSeconds / 60
		m.NodeHours += (nm.ReadySeconds + nm.BootingSeconds) / 3600
		capCPU += nm.CPUCapacityMHz * nm.ReadySeconds / 60
		capMem += nm.MemCapacityMB * nm.ReadySeconds / 60
	}
	var resCPU, resMem float64
	for _, jm := range tr.JobMinutes {
		if !in(jm.Minute) {
			continue
		}
		if strings.HasPrefix(jm.JobID, PlaceholderPrefix) {
			resCPU += jm.AllocatedCPUMHz
			resMem += jm.AllocatedMemMB
			continue
		}
		m.UnplacedAllocMinutes += float64(jm.Queued)
	}
	if capCPU > 0 && capMem > 0 {
		m.ReservedIdlePct = 100 * max(resCPU/capCPU, resMem/capMem)
	}
	var durs []float64
	for _, mg := range tr.Migrations {
		if in(mg.End) {
			durs = append(durs, mg.Duration().Seconds())
		}
	}
	m.MigrationsCompleted = len(durs)
	m.MigrationP50S = percentile(durs, 0.50)
	m.MigrationP95S = percentile(durs, 0.95)
	for _, r := range tr.Requests {
		if in(r.Time) && r.Status < 300 && isScale(r) {
			m.ScaleActions++
		}
	}
	m.CongestionNodeMinutes = round(m.CongestionNodeMinutes)
	m.UnplacedAllocMinutes = round(m.UnplacedAllocMinutes)
	m.MigrationP50S = round(m.MigrationP50S)
	m.MigrationP95S = round(m.MigrationP95S)
	m.SLOViolationMinutes = round(m.SLOViolationMinutes)
	m.ReservedIdlePct = round(m.ReservedIdlePct)
	m.NodeHours = round(m.NodeHours)
	return m
}

// isScale reports whether a mutating request changed capacity: nodes
// added, or a job's count set (placeholders excepted).
func isScale(r sim.RequestRecord) bool {
	if r.Method != "PUT" && r.Method != "POST" {
		return false
	}
	p, _, _ := strings.Cut(r.Path, "?")
	if p == "/v1/sim/nodes" {
		return true
	}
	id, ok := strings.CutPrefix(p, "/v1/job/")
	if !ok {
		return false
	}
	id, ok = strings.CutSuffix(id, "/scale")
	return ok && !strings.HasPrefix(id, PlaceholderPrefix) && strings.Contains(r.Body, `"Count"`) && !strings.Contains(r.Body, `"Count":null`)
}

// percentile is the nearest-rank q-quantile of xs (0 when empty).
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	k := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// round keeps three decimals, so figures read cleanly and compare exactly.
func round(x float64) float64 { return math.Round(x*1000) / 1000 }

// LocalitySeries is one datacenter's minute-by-minute record, for plots.
type LocalitySeries struct {
	Datacenter string
	Minutes    []time.Time
	// CPU and memory demand against ready capacity, MHz and MB.
	CPUDemand, CPUCapacity []float64
	MemDemand, MemCapacity []float64
	// Reserved is the CPU placeholders hold, MHz.
	Reserved []float64
	// Congested counts the node-minutes over capacity in the minute.
	Congested []float64
}

// localitySeries folds the ground truth into per-datacenter series over
// [start, end), one point a minute.
func localitySeries(tr sim.Truth, start, end time.Time) []LocalitySeries {
	n := int(end.Sub(start) / time.Minute)
	byDC := map[string]*LocalitySeries{}
	get := func(dc string) *LocalitySeries {
		s := byDC[dc]
		if s == nil {
			s = &LocalitySeries{Datacenter: dc, Minutes: make([]time.Time, n),
				CPUDemand: make([]float64, n), CPUCapacity: make([]float64, n),
				MemDemand: make([]float64, n), MemCapacity: make([]float64, n),
				Reserved: make([]float64, n), Congested: make([]float64, n)}
			for i := range s.Minutes {
				s.Minutes[i] = start.Add(time.Duration(i) * time.Minute)
			}
			byDC[dc] = s
		}
		return s
	}
	idx := func(t time.Time) int {
		if t.Before(start) || !t.Before(end) {
			return -1
		}
		return int(t.Sub(start) / time.Minute)
	}
	for _, nm := range tr.NodeMinutes {
		i := idx(nm.Minute)
		if i < 0 {
			continue
		}
		s := get(nm.Datacenter)
		s.CPUDemand[i] += nm.CPUDemandMHz
		s.MemDemand[i] += nm.MemDemandMB
		s.CPUCapacity[i] += nm.CPUCapacityMHz * nm.ReadySeconds / 60
		s.MemCapacity[i] += nm.MemCapacityMB * nm.ReadySeconds / 60
		s.Congested[i] += nm.CongestedSeconds / 60
	}
	for _, jm := range tr.JobMinutes {
		i := idx(jm.Minute)
		if i < 0 || jm.Datacenter == "" || !strings.HasPrefix(jm.JobID, PlaceholderPrefix) {
			continue
		}
		get(jm.Datacenter).Reserved[i] += jm.AllocatedCPUMHz
	}
	out := make([]LocalitySeries, 0, len(byDC))
	for _, s := range byDC {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Datacenter < out[k].Datacenter })
	return out
}

// NodeRecord is one node's part in a run, for explaining where two
// controllers' congestion differs.
type NodeRecord struct {
	Node       string
	Datacenter string
	// Added is true for a node a scale action added during the run.
	Added bool
	// CongestedMinutes is how long the node's demand was over its
	// capacity, in minutes.
	CongestedMinutes float64
}

// nodeRecords folds the ground truth into one record per node seen over
// [start, end), by datacenter then name.
func nodeRecords(tr sim.Truth, start, end time.Time) []NodeRecord {
	byNode := map[string]*NodeRecord{}
	for _, nm := range tr.NodeMinutes {
		if nm.Minute.Before(start) || !nm.Minute.Before(end) {
			continue
		}
		r := byNode[nm.Node]
		if r == nil {
			r = &NodeRecord{Node: nm.Node, Datacenter: nm.Datacenter}
			byNode[nm.Node] = r
		}
		r.Added = r.Added || nm.BootingSeconds > 0
		r.CongestedMinutes += nm.CongestedSeconds / 60
	}
	out := make([]NodeRecord, 0, len(byNode))
	for _, r := range byNode {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, k int) bool {
		if out[i].Datacenter != out[k].Datacenter {
			return out[i].Datacenter < out[k].Datacenter
		}
		return out[i].Node < out[k].Node
	})
	return out
}
