package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/collect"
	"github.com/foreshape/foreshape/agent/predict"
)

// telemetry is foreshape's own metrics, served on /v1/metrics beside the
// forecast gauges.
type telemetry struct {
	cycles       *prometheus.CounterVec
	cycleSeconds prometheus.Histogram
	samples      prometheus.Counter
	stale        prometheus.Counter
	dropped      prometheus.Counter
	refused      prometheus.Counter
	forecasts    prometheus.Gauge
	hotspots     prometheus.Gauge
	skipped      prometheus.Gauge
	anomalies    prometheus.Gauge
}

func newTelemetry(reg prometheus.Registerer) telemetry {
	t := telemetry{
		cycles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foreshape_cycles_total", Help: "Collect and forecast cycles run by this agent as leader, by outcome.",
		}, []string{"outcome"}),
		cycleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "foreshape_cycle_duration_seconds", Help: "Wall time of one collect and forecast cycle.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foreshape_samples_committed_total", Help: "Samples committed to the replicated series store.",
		}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foreshape_series_marked_stale_total", Help: "Series marked stale because their source could not refresh them.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foreshape_series_dropped_total", Help: "Series dropped because they had no sample inside their retention (nodes that left the cluster).",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foreshape_series_refused_total", Help: "New series refused because the store held its maximum number of series.",
		}),
		forecasts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "foreshape_forecasts", Help: "Forecasts produced by the last cycle.",
		}),
		hotspots: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "foreshape_hotspots", Help: "Hotspots predicted by the last cycle.",
		}),
		skipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "foreshape_series_skipped", Help: "Policy series not forecast by the last cycle (no data, warming up, stale).",
		}),
		anomalies: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "foreshape_anomalies", Help: "Recent anomaly events across forecast series.",
		}),
	}
	reg.MustRegister(t.cycles, t.cycleSeconds, t.samples, t.stale, t.dropped, t.refused, t.forecasts, t.hotspots, t.skipped, t.anomalies)
	return t
}

func (t telemetry) observe(c api.Cycle, st collect.Stats, res predict.Result) {
	outcome := "ok"
	if c.Error != "" {
		outcome = "error"
	}
	t.cycles.WithLabelValues(outcome).Inc()
	t.cycleSeconds.Observe(c.Duration.Seconds())
	t.samples.Add(float64(st.Samples))
	t.stale.Add(float64(st.Stale))
	t.dropped.Add(float64(st.Dropped))
	t.refused.Add(float64(st.Refused))
	t.forecasts.Set(float64(len(res.Forecasts)))
	t.hotspots.Set(float64(len(res.Hotspots)))
	t.skipped.Set(float64(len(res.Pending)))
	t.anomalies.Set(float64(len(res.Anomalies)))
}

// reset zeroes the gauges of the last cycle, when this agent stops leading.
func (t telemetry) reset() {
	t.forecasts.Set(0)
	t.hotspots.Set(0)
	t.skipped.Set(0)
	t.anomalies.Set(0)
}
