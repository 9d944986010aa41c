package migrate

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// Metrics are the act half's Prometheus metrics. The queue and reservation
// gauges are read from the replicated state when scraped, so every agent
// serves them; the counters and the duration histogram count what this
// agent's coordinator did while it led.
type Metrics struct {
	started  prometheus.Counter
	finished *prometheus.CounterVec
	duration prometheus.Histogram
	scales   *prometheus.CounterVec
	calls    *prometheus.CounterVec
}

// NewMetrics registers the act metrics on reg, reading gauges from st.
func NewMetrics(reg prometheus.Registerer, st Reader) (*Metrics, error) {
	m := &Metrics{
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foreshape_moves_started_total", Help: "Migration requests whose move this agent started.",
		}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foreshape_moves_finished_total", Help: "Migration requests this agent saw finish, by outcome (done, failed).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "foreshape_move_duration_seconds", Help: "Data time from a move's start until every replacement ran.",
			Buckets: prometheus.ExponentialBuckets(5, 2, 12),
		}),
		scales: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foreshape_scale_actions_total", Help: "Scale actions sent to scale targets, by policy, scale block and outcome.",
		}, []string{"policy", "scale", "outcome"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foreshape_mutating_calls_total", Help: "Changes made to Nomad and scale targets, by intent kind and outcome.",
		}, []string{"kind", "outcome"}),
	}
	// The counters' label values that are known in advance exist from
	// the start, at 0, so that the first failure is an increase
	// Prometheus sees, not a series appearing at 1.
	for _, o := range outcomes {
		m.finished.WithLabelValues(o)
		for _, k := range intentKinds {
			m.calls.WithLabelValues(string(k), o)
		}
	}
	for _, c := range []prometheus.Collector{m.started, m.finished, m.duration, m.scales, m.calls, &stateCollector{st: st}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// outcomes are the outcome label's values: state.OutcomeDone and
// state.OutcomeFailed.
var outcomes = []string{string(state.OutcomeDone), string(state.OutcomeFailed)}

// intentKinds are the kinds of intent a mutating call is made for (the
// kind label of foreshape_mutating_calls_total).
var intentKinds = []state.IntentKind{
	state.IntentStopAlloc, state.IntentDrainNode, state.IntentNodeEligibility, state.IntentUpdateJob,
	state.IntentRegisterHold, state.IntentScaleHold, state.IntentDeregisterHold, state.IntentScaleTarget,
}

// KnowPolicies makes the scale action counters of every scale block of
// pols exist, at 0, before the block's first action.
func (m *Metrics) KnowPolicies(pols []*policies.Policy) {
	if m == nil {
		return
	}
	for _, p := range pols {
		for _, sc := range p.Scales {
			for _, o := range outcomes {
				m.scales.WithLabelValues(p.Name, sc.Name, o)
			}
		}
	}
}

var (
	queueDesc = prometheus.NewDesc("foreshape_queue_requests", "Migration requests in the replicated queue, by state.", []string{"state"}, nil)
	heldDesc  = prometheus.NewDesc("foreshape_reservations_held", "Reservations whose placeholder is registered.", nil, nil)
	heldCPU   = prometheus.NewDesc("foreshape_reserved_cpu_mhz", "CPU of the reservations whose placeholder is registered (placed, held or handing_over), MHz, by locality.", []string{"locality"}, nil)
	heldMem   = prometheus.NewDesc("foreshape_reserved_memory_mib", "Memory of the reservations whose placeholder is registered (placed, held or handing_over), MiB, by locality.", []string{"locality"}, nil)
	pausedD   = prometheus.NewDesc("foreshape_queue_paused", "1 while the migration queue is paused.", nil, nil)
)

// stateCollector reads the gauges from the replicated state at scrape time.
type stateCollector struct{ st Reader }

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDesc
	ch <- heldDesc
	ch <- heldCPU
	ch <- heldMem
	ch <- pausedD
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	v := s.st.Act()
	counts := map[state.RequestState]int{}
	for _, r := range v.Requests {
		counts[r.State]++
	}
	for _, st := range state.RequestStates {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	held := 0
	cpu, mem := map[string]int64{}, map[string]int64{}
	for _, r := range v.Reservations {
		if r.State != state.ReservationHeld {
			continue
		}
		held++
		t := r.Total()
		cpu[r.Locality] += t.CPU
		mem[r.Locality] += t.MemoryMB
	}
	ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(held))
	for loc := range cpu {
		ch <- prometheus.MustNewConstMetric(heldCPU, prometheus.GaugeValue, float64(cpu[loc]), loc)
		ch <- prometheus.MustNewConstMetric(heldMem, prometheus.GaugeValue, float64(mem[loc]), loc)
	}
	p := 0.0
	if v.Paused {
		p = 1
	}
	ch <- prometheus.MustNewConstMetric(pausedD, prometheus.GaugeValue, p)
}
