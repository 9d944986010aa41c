package api

import "time"

// Health is the answer of GET /v1/health.
type Health struct {
	Status string `json:"status"` // "ok"
	Node   string `json:"node"`
}

// Peer is one member of the agents' Raft configuration.
type Peer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"` // "voter" or "nonvoter"
	Leader   bool   `json:"leader"`
	// Name, HTTPAddress and Version are what the leader last heard from
	// the server.
	Name        string `json:"name,omitempty"`
	HTTPAddress string `json:"http_address,omitempty"`
	Version     string `json:"version,omitempty"`
	// Healthy is whether the server answered the leader's last check; set
	// only in the leader's answer.
	Healthy *bool `json:"healthy,omitempty"`
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

// Status is the answer of GET /v1/status.
type Status struct {
	Node      string        `json:"node"`
	Version   string        `json:"version"`
	State     string        `json:"state"` // raft state: Leader, Follower, Candidate
	Leader    string        `json:"leader"`
	IsLeader  bool          `json:"is_leader"`
	Peers     []Peer        `json:"peers"`
	Clients   []ClientAgent `json:"clients"`
	LastCycle *Cycle        `json:"last_cycle,omitempty"`
	Series    int           `json:"series"`
	Stale     []StaleSeries `json:"stale"`
	Sources   []string      `json:"sources"`
	Policies  int           `json:"policies"`
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
	IOPS   float64 `json:"iops"`
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

// Forecast is the forecast of one metric of one locality: quantile bands
// over the horizon, with the model that produced them and why.
type Forecast struct {
	Policy   string    `json:"policy"`
	Locality string    `json:"locality"`
	Metric   string    `json:"metric"`
	Series   string    `json:"series"`
	Origin   time.Time `json:"origin"` // time of the last observation used
	Step     string    `json:"step"`
	Model    string    `json:"model"`
	Reason   string    `json:"reason"`
	// Times[i] is the time of step i+1 after Origin.
	Times []time.Time `json:"times"`
	Mean  []float64   `json:"mean"`
	// Quantiles are the levels of Bands, ascending; Bands[i][t] is the
	// Quantiles[i] quantile at Times[t].
	Quantiles []float64   `json:"quantiles"`
	Bands     [][]float64 `json:"bands"`
	// PlanningQuantile is the policy's quantile; Line is the value it must
	// stay under (100 minus the headroom, for percent metrics; absent when
	// the metric has no capacity).
	PlanningQuantile float64  `json:"planning_quantile"`
	Line             *float64 `json:"line,omitempty"`
	// Events are the policy's scheduled events applied to this forecast.
	Events []string `json:"events,omitempty"`
	// Published is when the leader's cycle that made the forecast
	// finished; AgeSeconds is how long before the answer that was. Any
	// server answers with the leader's last cycle.
	Published  time.Time `json:"published,omitzero"`
	AgeSeconds float64   `json:"age_seconds"`
	// History is the recent past the forecast starts from, for charts.
	History []Point  `json:"history,omitempty"`
	Hotspot *Hotspot `json:"hotspot,omitempty"`
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
	Peak        float64   `json:"peak"` // highest planning-quantile value over the horizon
	Detected    time.Time `json:"detected"`
}

// Anomaly is a detected anomalous stretch of one series.
type Anomaly struct {
	Series string    `json:"series"`
	Kind   string    `json:"kind"` // "spike" or "level_shift"
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Score  float64   `json:"score"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
