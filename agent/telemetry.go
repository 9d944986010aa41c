package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/collect"
	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/agent/state"
)

// The outcomes of a cycle (foreshape_cycles_total's outcome label).
const (
	// cycleOK: collected from every source and forecast, nothing refused.
	cycleOK = "ok"
	// cyclePartial: collected and forecast, but a source failed (outright
	// or in part), or series were rejected or refused.
	cyclePartial = "partial"
	// cycleError: skipped (no data time) or its collection failed (every
	// source failed, or the samples could not be committed).
	cycleError = "error"
)

var cycleOutcomes = []string{cycleOK, cyclePartial, cycleError}

// telemetry is foreshape's own metrics, served on /v1/metrics beside the
// forecast gauges (agent/api) and the act metrics (agent/migrate).
// docs/telemetry.md describes each; TestTelemetryDocumented holds the page
// to the registry.
type telemetry struct {
	cycles       *prometheus.CounterVec
	cycleSeconds prometheus.Histogram
	lastSuccess  prometheus.Gauge
	sources      *prometheus.GaugeVec
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
			Name: "foreshape_cycles_total", Help: "Collect and forecast cycles run by this agent as leader, by outcome (ok, partial, error).",
		}, []string{"outcome"}),
		cycleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "foreshape_cycle_duration_seconds", Help: "Wall time of one collect and forecast cycle.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "foreshape_cycle_last_success_timestamp_seconds",
			Help: "Unix time at which the last cycle this agent ran as leader with outcome ok or partial ended; 0 before any.",
		}),
		sources: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "foreshape_source_up", Help: "1 when the metric source's last collection returned no error, 0 when it failed outright or in part; leader only.",
		}, []string{"source"}),
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
			Name: "foreshape_series_skipped", Help: "Policy series not forecast by the last cycle (no data, warming up, stale, or its read, fit or forecast failed).",
		}),
		anomalies: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "foreshape_anomalies", Help: "Recent anomaly events across forecast series.",
		}),
	}
	// Every outcome exists from the start, at 0, so that the first failed
	// cycle is an increase Prometheus sees, not a series appearing at 1.
	for _, o := range cycleOutcomes {
		t.cycles.WithLabelValues(o)
	}
	reg.MustRegister(t.cycles, t.cycleSeconds, t.lastSuccess, t.sources, t.samples, t.stale, t.dropped, t.refused,
		t.forecasts, t.hotspots, t.skipped, t.anomalies)
	return t
}

// cycleOutcome is the outcome of a cycle whose collection returned
// collectErr and st.
func cycleOutcome(st collect.Stats, collectErr error) string {
	switch {
	case collectErr != nil:
		return cycleError
	case st.Problems() != "":
		return cyclePartial
	}
	return cycleOK
}

// observe records a cycle that collected (outcome from cycleOutcome) and
// forecast, ending at end; sources are the names of the agent's sources.
func (t telemetry) observe(c api.Cycle, outcome string, st collect.Stats, res predict.Result, sources []string, end time.Time) {
	t.cycles.WithLabelValues(outcome).Inc()
	t.cycleSeconds.Observe(c.Duration.Seconds())
	if outcome != cycleError {
		t.lastSuccess.Set(float64(end.UnixNano()) / 1e9)
	}
	for _, name := range sources {
		up := 1.0
		for _, f := range st.Failed {
			if f == name {
				up = 0
			}
		}
		t.sources.WithLabelValues(name).Set(up)
	}
	t.samples.Add(float64(st.Samples))
	t.stale.Add(float64(st.Stale))
	t.dropped.Add(float64(st.Dropped))
	t.refused.Add(float64(st.Refused))
	t.forecasts.Set(float64(len(res.Forecasts)))
	t.hotspots.Set(float64(len(res.Hotspots)))
	t.skipped.Set(float64(len(res.Pending)))
	t.anomalies.Set(float64(len(res.Anomalies)))
}

// skippedCycle records a cycle that could not collect at all (no
// collector, no data time).
func (t telemetry) skippedCycle() { t.cycles.WithLabelValues(cycleError).Inc() }

// reset zeroes the gauges of the last cycle and withdraws the sources'
// state, when this agent stops leading.
func (t telemetry) reset() {
	t.forecasts.Set(0)
	t.hotspots.Set(0)
	t.skipped.Set(0)
	t.anomalies.Set(0)
	t.sources.Reset()
}

// serverState is what serverCollector reads from the agent at each
// scrape.
type serverState interface {
	Status() (cluster.Status, error)
	DataDirError() error
}

// serverCollector exports this server's Raft and disk state, whether its
// act half acts, and the series store's size, read when scraped: every
// server serves them, each its own view.
type serverCollector struct {
	node serverState
	// notActing says why the act half does not act ("" while it acts or
	// this server does not lead).
	notActing func() string
	series    func() []state.Info
	now       func() time.Time
}

var (
	leaderDesc = prometheus.NewDesc("foreshape_leader",
		"1 while this server is the Raft leader, else 0.", nil, nil)
	leaderKnownDesc = prometheus.NewDesc("foreshape_raft_leader_known",
		"1 while this server knows a Raft leader (itself or another), else 0.", nil, nil)
	termDesc = prometheus.NewDesc("foreshape_raft_term",
		"This server's current Raft term.", nil, nil)
	lastIndexDesc = prometheus.NewDesc("foreshape_raft_last_index",
		"Index of the last entry of this server's Raft log (stored, not necessarily committed).", nil, nil)
	commitIndexDesc = prometheus.NewDesc("foreshape_raft_commit_index",
		"Index of the last Raft log entry this server knows to be committed.", nil, nil)
	appliedIndexDesc = prometheus.NewDesc("foreshape_raft_applied_index",
		"Index of the last Raft log entry this server's state machine applied.", nil, nil)
	lastContactDesc = prometheus.NewDesc("foreshape_raft_last_contact_seconds",
		"Seconds since this follower last heard from the leader; 0 on the leader; absent on a follower that never heard from one.", nil, nil)
	serversDesc = prometheus.NewDesc("foreshape_raft_servers",
		"Servers in the Raft configuration as this server knows it, by suffrage (voter, nonvoter).", []string{"suffrage"}, nil)
	haltedDesc = prometheus.NewDesc("foreshape_state_halted",
		"1 while this server's state machine has stopped applying the log (its build is older than the cluster's log), else 0.", nil, nil)
	dataDirDesc = prometheus.NewDesc("foreshape_data_dir_failing",
		"1 while this server's writes to its data_dir fail (a full, read-only or failing disk), else 0.", nil, nil)
	supersededDesc = prometheus.NewDesc("foreshape_cluster_superseded",
		"1 once this server's cluster was recovered from a lost quorum as another and it no longer leads or votes (its data_dir is to be moved aside), else 0.", nil, nil)
	actFailingDesc = prometheus.NewDesc("foreshape_act_failing",
		"1 while the leader's act half carries out no plan because its start-of-term reconciliation or its plan and act pass fails, else 0.", nil, nil)
	seriesDesc = prometheus.NewDesc("foreshape_series",
		"Series in this server's copy of the replicated series store.", nil, nil)
	seriesStaleDesc = prometheus.NewDesc("foreshape_series_stale",
		"Series of the store marked stale now (their source could not refresh them).", nil, nil)
)

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{leaderDesc, leaderKnownDesc, termDesc, lastIndexDesc, commitIndexDesc, appliedIndexDesc,
		lastContactDesc, serversDesc, haltedDesc, dataDirDesc, supersededDesc, actFailingDesc, seriesDesc, seriesStaleDesc} {
		ch <- d
	}
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	flag := func(d *prometheus.Desc, on bool) {
		v := 0.0
		if on {
			v = 1
		}
		gauge(d, v)
	}
	// Status fails only at the configuration (raft shutting down); what
	// it read before stands.
	st, err := c.node.Status()
	leader := st.State == "Leader"
	flag(leaderDesc, leader)
	flag(leaderKnownDesc, st.LeaderID != "" || st.LeaderAddress != "")
	gauge(termDesc, float64(st.Term))
	gauge(lastIndexDesc, float64(st.LastIndex))
	gauge(commitIndexDesc, float64(st.CommitIndex))
	gauge(appliedIndexDesc, float64(st.AppliedIndex))
	switch {
	case leader:
		gauge(lastContactDesc, 0)
	case !st.LastContact.IsZero():
		gauge(lastContactDesc, max(c.now().Sub(st.LastContact).Seconds(), 0))
	}
	if err == nil {
		voters, nonvoters := 0, 0
		for _, s := range st.Servers {
			if s.Voter {
				voters++
			} else {
				nonvoters++
			}
		}
		gauge(serversDesc, float64(voters), "voter")
		gauge(serversDesc, float64(nonvoters), "nonvoter")
	}
	flag(haltedDesc, st.Halted != "")
	flag(dataDirDesc, c.node.DataDirError() != nil)
	flag(supersededDesc, st.Superseded != "")
	flag(actFailingDesc, c.notActing() != "")
	infos := c.series()
	stale := 0
	for _, in := range infos {
		if in.Stale {
			stale++
		}
	}
	gauge(seriesDesc, float64(len(infos)))
	gauge(seriesStaleDesc, float64(stale))
}

// clientTelemetry is a client agent's own metrics, which it serves on
// /v1/metrics itself (every other request it forwards to the leader).
type clientTelemetry struct {
	reports    *prometheus.CounterVec
	lastReport prometheus.Gauge
}

// The outcomes of a client agent's report.
const (
	reportOK     = "ok"
	reportFailed = "failed"
)

func newClientTelemetry(reg prometheus.Registerer) clientTelemetry {
	t := clientTelemetry{
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foreshape_client_reports_total", Help: "Reports of its node's stats this client agent made, by outcome (ok: a server took it; failed).",
		}, []string{"outcome"}),
		lastReport: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "foreshape_client_last_report_timestamp_seconds", Help: "Unix time at which a server last took this client agent's report; 0 before any.",
		}),
	}
	t.reports.WithLabelValues(reportOK)
	t.reports.WithLabelValues(reportFailed)
	reg.MustRegister(t.reports, t.lastReport, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return t
}

// reported records a report's outcome at now.
func (t clientTelemetry) reported(err error, now time.Time) {
	if err != nil {
		t.reports.WithLabelValues(reportFailed).Inc()
		return
	}
	t.reports.WithLabelValues(reportOK).Inc()
	t.lastReport.Set(float64(now.UnixNano()) / 1e9)
}
