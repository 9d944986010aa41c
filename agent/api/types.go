package api

import "time"

// Health is the answer of GET /v1/health and GET /v1/ready.
type Health struct {
	Status string `json:"status"` // "ok"; "not ready" from /v1/ready
	Node   string `json:"node"`
	// Error says why /v1/ready answered "not ready" (with 503); under
	// this name clients read it as any error answer's message.
	Error string `json:"error,omitempty"`
}

// Peer is one member of the agents' Raft configuration.
type Peer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"` // "voter" or "nonvoter"
	Leader   bool   `json:"leader"`
	// Name, HTTPAddress and Version are what the leader last heard from
	// the server, as the replicated membership holds them; before that
	// replicates, the leader's last check of it or, for the answering
	// server itself, its own.
	Name        string `json:"name,omitempty"`
	HTTPAddress string `json:"http_address,omitempty"`
	Version     string `json:"version,omitempty"`
	// Healthy is whether the server answered the leader's last check and
	// said in it that it can write to its data_dir (list-peers says why
	// not); set only in the leader's answer.
	Healthy *bool `json:"healthy,omitempty"`
	// DataDirError is why the server cannot write to its data_dir, from
	// its last answer to the leader; set only in the leader's answer.
	DataDirError string `json:"data_dir_error,omitempty"`
}

// ClientAgent is a client agent reporting its Nomad node's stats to the
// servers.
type ClientAgent struct {
	NodeID   string    `json:"node_id"`
	NodeName string    `json:"node_name"`
	Name     string    `json:"name"`
	Address  string    `json:"address"`
	Version  string    `json:"version"`
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
	// Reporting is false once the agent has been silent for longer than
	// the leader waits before polling its node itself.
	Reporting bool `json:"reporting"`
}

// Cycle describes the last collect + forecast cycle run by the leader.
type Cycle struct {
	// DataTime is the time of the newest sample the cycle saw; on a
	// simulated cluster it is the simulation's clock.
	DataTime time.Time `json:"data_time"`
	// Started and Duration are wall-clock.
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	Collected int           `json:"collected_samples"`
	Forecasts int           `json:"forecasts"`
	Hotspots  int           `json:"hotspots"`
	Error     string        `json:"error,omitempty"`
}

// StaleSeries is a series the leader could not refresh.
type StaleSeries struct {
	Series string    `json:"series"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
}

// PendingForecast is a policy's series without a forecast this cycle.
type PendingForecast struct {
	Policy string `json:"policy"`
	Series string `json:"series"`
	Status string `json:"status"`
	Note   string `json:"note"`
}

// Status is the answer of GET /v1/status.
type Status struct {
	Node     string `json:"node"`
	Version  string `json:"version"`
	State    string `json:"state"` // raft state: Leader, Follower, Candidate
	Leader   string `json:"leader"`
	IsLeader bool   `json:"is_leader"`
	// NoLeader says why this server knows no leader (not part of a
	// cluster yet, or no quorum of voters to elect one); empty while it
	// knows one.
	NoLeader string `json:"no_leader,omitempty"`
	// ClusterID names the Raft cluster whose state this server holds;
	// a server with another cluster's state is refused when it joins.
	ClusterID string `json:"cluster_id,omitempty"`
	// Halted, when set, says that this server's state stopped applying the
	// cluster's log at an entry or snapshot section its release does not
	// know (a newer server wrote it): the server is older than the
	// cluster's log and must be upgraded; it does not lead meanwhile.
	Halted string `json:"halted,omitempty"`
	// DataDirError, when set, says that this server cannot write to its
	// data_dir (the disk is full, read-only or failing) and since when: it
	// takes no new entries and cannot lead until it can.
	DataDirError string `json:"data_dir_error,omitempty"`
	// Superseded, when set, says that this server's cluster was recovered
	// from a lost quorum as another, when and by which servers: it no
	// longer leads or votes, and its data_dir is to be moved aside.
	Superseded string `json:"superseded,omitempty"`
	// BesideOther, when set, says that a server this one is configured to
	// join (server.retry_join) belongs to another cluster, which runs its
	// own leader beside this one's, and what to do.
	BesideOther string `json:"beside_other,omitempty"`
	// Term is the Raft term this server is in.
	Term      uint64        `json:"term"`
	Peers     []Peer        `json:"peers"`
	Clients   []ClientAgent `json:"clients"`
	LastCycle *Cycle        `json:"last_cycle,omitempty"`
	// NotActing, on the leader, says why its act half carries out no plan
	// (the start of its term's reconciliation, or its last plan and act
	// pass, failed: Nomad unreachable, refusing the token) while the cycle
	// goes on forecasting; NotActingSince is when that began. Both are
	// empty while it acts, and on a follower.
	NotActing      string     `json:"not_acting,omitempty"`
	NotActingSince *time.Time `json:"not_acting_since,omitempty"`
	// Now is the agent's clock when it answered: the answer's times
	// (last_cycle.started, not_acting_since) are its clock's, so their
	// ages are read against it, not against the reader's clock.
	Now    time.Time     `json:"now,omitzero"`
	Series int           `json:"series"`
	Stale  []StaleSeries `json:"stale"`
	// Pending lists the policies' series the last cycle did not forecast
	// (warming up, stale, without data), with why.
	Pending  []PendingForecast `json:"pending"`
	Sources  []string          `json:"sources"`
	Policies int               `json:"policies"`
}

// Policy summarises one loaded shaping policy.
type Policy struct {
	Name      string   `json:"name"`
	File      string   `json:"file"`
	Locality  string   `json:"locality"`
	Model     string   `json:"model"`
	Horizon   string   `json:"horizon"`
	Step      string   `json:"step"`
	Quantile  float64  `json:"quantile"`
	Headroom  Headroom `json:"headroom"`
	Schedules []string `json:"schedules,omitempty"`
}

// Headroom is the percent of capacity a policy keeps free, per metric.
type Headroom struct {
	CPU    float64 `json:"cpu"`
	Memory float64 `json:"memory"`
}

// Series describes one stored series.
type Series struct {
	Series string `json:"series"`
	// Node is the name of the node a node series ("node/<ID>:cpu") belongs
	// to, while the node is in Nomad's node list.
	Node string `json:"node,omitempty"`
	// Points is how many points the series' finest tier holds (1-minute
	// points, at most a day's for locality series and six hours' for node
	// series); First is the start of the oldest point held in any tier.
	Points      int       `json:"points"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
	LastValue   float64   `json:"last_value"`
	Stale       bool      `json:"stale"`
	StaleReason string    `json:"stale_reason,omitempty"`
}

// Point is one (time, value) pair.
type Point struct {
	Time  time.Time `json:"t"`
	Value float64   `json:"v"`
}

// Forecast states: a forecast is "ready" with its bands, or one of the
// others without them.
const (
	ForecastReady     = "ready"
	ForecastNoData    = "no_data"
	ForecastWarmingUp = "warming_up"
	ForecastStale     = "stale"
	ForecastFailed    = "failed"
)

// Forecast is the forecast of one metric of one locality: quantile bands
// over the horizon, with the model that produced them and why. A policy's
// series that has no forecast this cycle is listed too, with its Status
// (warming_up, stale, no_data, failed), a Note saying why, and no bands.
type Forecast struct {
	Policy   string `json:"policy"`
	Locality string `json:"locality"`
	Metric   string `json:"metric"`
	Series   string `json:"series"`
	Status   string `json:"status"`
	// Note says why a forecast is not ready: "warming up: 5 of 12 points,
	// first forecast at 2026-01-05T06:12:00Z", "stale since …".
	Note string `json:"note,omitempty"`
	// Warmup counts the history of a series still warming up.
	Warmup *Warmup `json:"warmup,omitempty"`
	// Workload characterises the locality's demand.
	Workload *Workload `json:"workload,omitempty"`
	// Origin to Line are a ready forecast's; a forecast that is not ready
	// has none of them in its JSON.
	Origin time.Time `json:"origin,omitzero"` // time of the last observation used
	Step   string    `json:"step,omitempty"`
	Model  string    `json:"model,omitempty"`
	Reason string    `json:"reason,omitempty"`
	// Times[i] is the time of step i+1 after Origin.
	Times []time.Time `json:"times,omitempty"`
	Mean  []float64   `json:"mean,omitempty"`
	// Quantiles are the levels of Bands, ascending; Bands[i][t] is the
	// Quantiles[i] quantile at Times[t].
	Quantiles []float64   `json:"quantiles,omitempty"`
	Bands     [][]float64 `json:"bands,omitempty"`
	// PlanningQuantile is the policy's quantile; Line is the value it must
	// stay under (100 minus the headroom, for percent metrics; absent when
	// the metric has no capacity).
	PlanningQuantile float64  `json:"planning_quantile,omitempty"`
	Line             *float64 `json:"line,omitempty"`
	// Events are the policy's scheduled events applied to this forecast,
	// as text; EventWindows are the same, structured.
	Events       []string      `json:"events,omitempty"`
	EventWindows []EventWindow `json:"event_windows,omitempty"`
	// Published is when the leader's cycle that made the forecast
	// finished; AgeSeconds is how long before the answer that was. Any
	// server answers with the leader's last cycle.
	Published  time.Time `json:"published,omitzero"`
	AgeSeconds float64   `json:"age_seconds"`
	// History is the recent past the forecast starts from, for charts.
	History []Point  `json:"history,omitempty"`
	Hotspot *Hotspot `json:"hotspot,omitempty"`
}

// Ready reports whether the forecast has bands.
func (f Forecast) Ready() bool {
	return f.Status == ForecastReady || (f.Status == "" && len(f.Times) > 0)
}

// Warmup is how far a series is from its first forecast.
type Warmup struct {
	Points int `json:"points"`
	Needed int `json:"needed"`
	// FirstForecast is the data time at which the first forecast is due.
	FirstForecast time.Time `json:"first_forecast"`
}

// Workload characterises a locality's demand.
type Workload struct {
	// Kind is "diurnal", "bursty" or "flat".
	Kind             string  `json:"kind"`
	SeasonalStrength float64 `json:"seasonal_strength"`
	Spikiness        float64 `json:"spikiness"`
	// Bound is "cpu-bound", "memory-bound" or "balanced".
	Bound string `json:"bound"`
	// IO is "read-heavy", "write-heavy" or "balanced"; absent when reads
	// and writes are not collected apart.
	IO     string    `json:"io,omitempty"`
	From   time.Time `json:"from"`
	Points int       `json:"points"`
}

// EventWindow is one scheduled event applied to a forecast.
type EventWindow struct {
	Kind     string    `json:"kind"` // "peak" or "drain"
	Schedule string    `json:"schedule"`
	From     string    `json:"from,omitempty"` // the drained locality whose demand moves here
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
}

// Band returns the band for quantile q, or nil.
func (f *Forecast) Band(q float64) []float64 {
	for i, l := range f.Quantiles {
		if l > q-1e-9 && l < q+1e-9 {
			return f.Bands[i]
		}
	}
	return nil
}

// Hotspot is a locality whose planning quantile crosses its headroom line
// within the horizon.
type Hotspot struct {
	Policy      string    `json:"policy"`
	Locality    string    `json:"locality"`
	Metric      string    `json:"metric"`
	At          time.Time `json:"at"`          // first step at which the planning quantile crosses the line
	Probability float64   `json:"probability"` // probability that demand crosses the line within the horizon
	Quantile    float64   `json:"quantile"`
	Line        float64   `json:"line"`
	Peak        float64   `json:"peak"` // highest planning-quantile value over the horizon, as the hotspot reads it
	Detected    time.Time `json:"detected"`
	// Detail says what a hotspot read on the nodes of the locality that
	// stay while a drain of some of them runs read: "on the nodes of
	// dc1/*/web that stay while dc1-rack-a-* are drained: p90 48.0% ×2.00
	// = 96.0% over the 75% line"; absent for others.
	Detail string `json:"detail,omitempty"`
}

// Anomaly is a detected anomalous stretch of one series.
type Anomaly struct {
	Series string    `json:"series"`
	Kind   string    `json:"kind"` // "spike" or "level_shift"
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Score is the highest anomaly score of its points, from 0 to 1; P is
	// the smallest p-value: how rare the stretch is on this series (0.001:
	// rarer than all but one in a thousand of its stretches).
	Score float64 `json:"score"`
	P     float64 `json:"p"`
	// Alarm is the anomaly detector's own score where it raised an alarm
	// on the stretch (the agent's detector, ARTime, alarms at 0.62 and
	// above), 0 when it raised none: a stretch can be rare (small P) and
	// kept out of the forecasts without alarming.
	Alarm float64 `json:"alarm"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
