package config

import (
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Config is the agent's effective configuration. Load builds it; consumers
// treat it as read-only.
type Config struct {
	// Name identifies the agent in the cluster; empty means the host name,
	// resolved by the agent at start.
	Name string `json:"name"`
	// DataDir holds Raft logs and snapshots. Empty only in dev mode, where
	// state lives in memory. Default /var/lib/foreshape.
	DataDir string `json:"data_dir"`
	// BindAddr is the IP address the Raft transport binds to. Default
	// 127.0.0.1, so nothing is exposed until an operator chooses an
	// interface; clustering across hosts needs a routable address.
	BindAddr string `json:"bind_addr"`
	// AdvertiseAddr is the IP address other agents and Consul reach this
	// agent at: its Raft port (raft_port), and its HTTP API (at
	// http.address's port) when http.address listens on every interface;
	// an http.address with an IP is reached at that IP. Empty means
	// bind_addr; required when either binds every interface (0.0.0.0) and
	// the address is needed. A client or dev agent, which binds no Raft
	// port, refuses it unless http.address listens on every interface.
	AdvertiseAddr string `json:"advertise_addr"`
	// LogLevel is one of trace, debug, info, warn, error. Default info.
	LogLevel string `json:"log_level"`
	// LogJSON switches logs to JSON lines. Default false.
	LogJSON bool `json:"log_json"`
	// DevMode is set by the -dev flag, never by a file: a single in-memory
	// server that bootstraps itself, for trying foreshape out.
	DevMode bool `json:"dev_mode"`
	// NoNomad, set by the command line and never by a file, says why this
	// agent talks to no Nomad of its configuration's (dev mode's embedded
	// simulated cluster, a replay's recorded series) and how to use one:
	// its nomad settings would do nothing.
	NoNomad *NoNomad `json:"-"`

	Server     Server     `json:"server"`
	Nomad      Nomad      `json:"nomad"`
	Consul     Consul     `json:"consul"`
	Prometheus Prometheus `json:"prometheus"`
	HTTP       HTTP       `json:"http"`
	TLS        TLS        `json:"tls"`
	ACL        ACL        `json:"acl"`
	Policies   Policies   `json:"policies"`
	Telemetry  Telemetry  `json:"telemetry"`

	// ForecastOnly makes the agent a dry run: it forecasts, plans and
	// records its plans, and makes no change to Nomad and no scale action.
	// Default false.
	ForecastOnly bool    `json:"forecast_only"`
	Reserve      Reserve `json:"reserve"`
	Queue        Queue   `json:"queue"`

	// origins records where each field set by a file or the environment
	// came from, keyed by its dotted name ("server.raft_port"), so that
	// Validate can point at it.
	origins map[string]origin
}

// Server configures the agent's part in the Raft cluster.
type Server struct {
	// Enabled makes the agent a Raft server. Default true. false makes a
	// client agent, which reads its own Nomad node's stats and reports
	// them to the servers in RetryJoin.
	Enabled bool `json:"enabled"`
	// BootstrapExpect is how many voting servers must find each other
	// before they bootstrap a new cluster. Zero (the default) means a
	// single server that bootstraps alone; a server with RetryJoin must
	// set it.
	BootstrapExpect int `json:"bootstrap_expect"`
	// RetryJoin lists the servers to join (a server) or report to (a
	// client agent): HOST or HOST:PORT of their Raft port (the port
	// defaults to RaftPort), or "provider=consul [service=NAME]" to look
	// the servers up in Consul's catalog (NAME defaults to
	// consul.service_name).
	RetryJoin []string `json:"retry_join"`
	// RaftPort is the Raft transport's port. Default 7576. A client agent
	// binds none: there it is only the port of the RetryJoin addresses
	// that name none.
	RaftPort int `json:"raft_port"`
	// Voter false joins as a non-voter that is never promoted. Default
	// true.
	Voter bool `json:"voter"`
	// Voters is how many voters the leader keeps: 1, 3 or 5. Default
	// BootstrapExpect.
	Voters int `json:"voters"`
	// PromoteAfter: a voter silent this long is replaced by a healthy
	// non-voter. Default 30s.
	PromoteAfter time.Duration `json:"promote_after"`
	// RemoveAfter: a server silent this long leaves the configuration.
	// Default 10m.
	RemoveAfter time.Duration `json:"remove_after"`
	// RaftSnapshotThreshold is how many log entries since the last
	// snapshot make the server take one, when it next checks (every
	// RaftSnapshotInterval to twice that). Default 256.
	RaftSnapshotThreshold int `json:"raft_snapshot_threshold"`
	// RaftSnapshotInterval is how often (at random between it and twice
	// it) the server checks whether to snapshot. Default 2m.
	RaftSnapshotInterval time.Duration `json:"raft_snapshot_interval"`
	// RaftTrailingLogs is how many log entries a snapshot leaves in the
	// log, so that a follower that far behind catches up from the log
	// rather than by receiving the whole snapshot. Default 256.
	RaftTrailingLogs int `json:"raft_trailing_logs"`
}

// Nomad configures the Nomad API client.
type Nomad struct {
	// Address is Nomad's HTTP API. Default http://127.0.0.1:4646.
	Address string `json:"address"`
	// Region and Namespace default to the Nomad agent's own. Namespace is
	// where placeholder jobs are registered (and scale targets' jobs are
	// by default): one namespace, not Nomad's wildcard "*".
	Region    string `json:"region"`
	Namespace string `json:"namespace"`
	Token     Secret `json:"token"`
	// TokenFile holds the token instead of Token (not with it), read again
	// for every request: a Nomad workload identity's token file
	// (${NOMAD_SECRETS_DIR}/nomad_token), which Nomad may write anew while
	// the agent runs.
	TokenFile string `json:"token_file"`
	// CAFile, CertFile and KeyFile configure TLS to Nomad; CertFile and
	// KeyFile come together.
	CAFile        string `json:"ca_file"`
	CertFile      string `json:"cert_file"`
	KeyFile       string `json:"key_file"`
	TLSServerName string `json:"tls_server_name"`
	// SkipVerify disables TLS verification; never use it in production.
	SkipVerify bool `json:"skip_verify"`
	// NodeID is the ID (a UUID) of the Nomad client node a client agent
	// reports on. Empty asks the local Nomad agent (/v1/agent/self) at
	// start.
	NodeID string `json:"node_id"`
}

// NoNomad says why an agent uses no Nomad of its configuration's.
type NoNomad struct {
	Why string // "-dev runs against its embedded simulated Nomad cluster"
	Fix string // "Run -dev with -dev-sim=false to use it"
	// Replay: the agent reads recorded series, so it reads no Prometheus
	// either and acts on nothing (no placeholders, queue or moves).
	Replay bool
}

// UsesTLS reports whether the agent speaks TLS to Nomad: Address is an
// https:// URL. Over http:// or a unix:// socket the TLS settings are
// not used (Validate refuses them from a file).
func (n Nomad) UsesTLS() bool {
	u, err := url.Parse(n.Address)
	return err == nil && u.Scheme == "https"
}

// Consul configures service registration in Consul.
type Consul struct {
	// Enabled registers the agent's HTTP API as a Consul service.
	// Default false.
	Enabled bool `json:"enabled"`
	// Address is Consul's HTTP API, HOST:PORT or a URL. Default
	// 127.0.0.1:8500.
	Address string `json:"address"`
	Token   Secret `json:"token"`
	// ServiceName is the Consul service name. Default "foreshape".
	ServiceName string   `json:"service_name"`
	Tags        []string `json:"tags"`
}

// Prometheus configures an optional Prometheus server as a metric source
// (IOPS, which Nomad does not report, comes from node_exporter there).
type Prometheus struct {
	// Address is Prometheus's HTTP API; empty disables the source.
	Address string `json:"address"`
	// IOPSQuery is the PromQL template that reads a locality's IOPS; it
	// sees {{.Matchers}}, the locality's label matchers
	// (datacenter="dc1",node_pool="web"). Empty means node_exporter's
	// disk read and write counters summed over the locality.
	IOPSQuery string `json:"iops_query"`
	// CAFile, CertFile and KeyFile configure TLS to an https:// Address:
	// the CAs its certificate is checked against (default: the host's),
	// and a client certificate and its key, which come together.
	// TLSServerName is the name its certificate is checked for (default:
	// Address's host). All are read at the agent's start.
	CAFile        string `json:"ca_file"`
	CertFile      string `json:"cert_file"`
	KeyFile       string `json:"key_file"`
	TLSServerName string `json:"tls_server_name"`
	// SkipVerify disables TLS verification; never use it in production.
	SkipVerify bool `json:"skip_verify"`
	// TokenFile holds a bearer token sent with every query; it is read
	// again for each request, so a token rotated in the file is used
	// without a restart.
	TokenFile string `json:"token_file"`
	// Username and PasswordFile are HTTP basic auth sent with every
	// query, the password read again for each request. They come
	// together, and not with TokenFile.
	Username     string `json:"username"`
	PasswordFile string `json:"password_file"`
	// Headers are sent with every query (X-Scope-OrgID for a tenant of
	// Mimir, Cortex or Thanos), keys as written (no two the same but for
	// case). Their values are printed as secrets are: redacted.
	Headers map[string]Secret `json:"headers"`
}

// credentialSetting names the setting whose credential every query sends
// (prometheus.token_file, or prometheus.password_file for basic auth), or
// is empty when queries carry none.
func (p Prometheus) credentialSetting() string {
	switch {
	case p.TokenFile != "":
		return "prometheus.token_file"
	case p.PasswordFile != "":
		return "prometheus.password_file"
	}
	return ""
}

// UsesTLS reports whether the agent speaks TLS to Prometheus: Address is
// an https:// URL. Over http:// the TLS settings would not be used
// (Validate refuses them).
func (p Prometheus) UsesTLS() bool {
	u, err := url.Parse(p.Address)
	return err == nil && u.Scheme == "https"
}

// HTTP configures the agent's HTTP API.
type HTTP struct {
	// Address is HOST:PORT to listen on. Default 127.0.0.1:7575.
	Address string `json:"address"`
}

// TLS configures TLS for the agent's own HTTP API, its Raft port and the
// calls agents make to each other. With CAFile set, the Raft port and
// agent-to-agent calls use mutual TLS (both sides present a certificate
// signed by CAFile).
type TLS struct {
	CAFile   string `json:"ca_file"`
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// VerifyIncoming requires clients to present a certificate signed by
	// CAFile.
	VerifyIncoming bool `json:"verify_incoming"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// ACL configures token checks on the agent's HTTP API.
type ACL struct {
	// Enabled requires a token on every API request but /v1/health and
	// /v1/ready. Default false.
	Enabled bool `json:"enabled"`
	// TokenFile holds the accepted tokens, one a line. Required when
	// Enabled.
	TokenFile string `json:"token_file"`
	// ReadTokenFile holds tokens that may only read (GET and HEAD, but
	// not a backup), one a line: for dashboards and monitoring that must
	// not pause the queue. Optional; a token in both files is refused.
	ReadTokenFile string `json:"read_token_file"`
}

// Policies says where shaping policies are read from.
type Policies struct {
	// Dir is a directory of *.hcl policy files (hidden ones are not
	// read). Default
	// /etc/foreshape/policies.d.
	Dir string `json:"dir"`
}

// Telemetry configures the agent's own metrics.
type Telemetry struct {
	// PrometheusMetrics serves metrics in Prometheus format on the HTTP
	// API. Default true.
	PrometheusMetrics bool `json:"prometheus_metrics"`
}

// Reserve says how the placeholder jobs that hold reservations run: their
// task's driver and its config. Policies say where, when and how much; the
// agent's configuration alone says what runs.
type Reserve struct {
	// Driver is the placeholder task's driver. Default "docker".
	Driver string `json:"driver"`
	// Config is the task's driver config. Default, for docker, the pause
	// image; required for any other driver (raw_exec: a command such as
	// /bin/sleep with args ["infinity"]).
	Config map[string]any `json:"config"`
}

// Queue bounds the migration queue.
type Queue struct {
	// MaxRequests bounds the unfinished migration requests; a submission
	// beyond it is refused. Default 1000.
	MaxRequests int `json:"max_requests"`
	// MaxParallel caps the moves running across the cluster; 0 leaves only
	// each policy's migrate.max_parallel. Default 0.
	MaxParallel int `json:"max_parallel"`
	// KeepFinished is how long a finished request stays in the queue at
	// least before the leader forgets it. Default 24h.
	KeepFinished time.Duration `json:"keep_finished"`
}

// Defaults.
const (
	DefaultDataDir       = "/var/lib/foreshape"
	DefaultBindAddr      = "127.0.0.1"
	DefaultLogLevel      = "info"
	DefaultRaftPort      = 7576
	DefaultPromoteAfter  = 30 * time.Second
	DefaultRemoveAfter   = 10 * time.Minute
	DefaultNomadAddress  = "http://127.0.0.1:4646"
	DefaultConsulAddress = "127.0.0.1:8500"
	DefaultServiceName   = "foreshape"
	DefaultHTTPAddress   = "127.0.0.1:7575"
	DefaultPoliciesDir   = "/etc/foreshape/policies.d"
	DefaultReserveDriver = "docker"
	DefaultPauseImage    = "registry.k8s.io/pause:3.10"
	DefaultMaxRequests   = 1000
	DefaultKeepFinished  = 24 * time.Hour
	// Bounds of queue.keep_finished.
	MinKeepFinished = time.Hour
	MaxKeepFinished = 366 * 24 * time.Hour
)

const (
	// Raft snapshots: the server snapshots once this many entries have come
	// since the last, checked every interval (to twice that), and keeps
	// DefaultRaftTrailingLogs entries behind each snapshot. A sample batch
	// of a large cluster is hundreds of kilobytes, hence far fewer entries
	// than hashicorp/raft's defaults (8192, 120s, 10240).
	DefaultRaftSnapshotThreshold = 256
	DefaultRaftSnapshotInterval  = 2 * time.Minute
	DefaultRaftTrailingLogs      = 256
	// The ranges the raft_* settings are refused outside of.
	MinRaftSnapshotInterval = time.Second
	MaxRaftSnapshotInterval = 24 * time.Hour
	MaxRaftLogEntries       = 1_000_000
)

// LogLevels are the accepted log levels, quietest last.
var LogLevels = []string{"trace", "debug", "info", "warn", "error"}

// Default returns the production defaults.
func Default() *Config {
	return &Config{
		DataDir:  DefaultDataDir,
		BindAddr: DefaultBindAddr,
		LogLevel: DefaultLogLevel,
		Server: Server{
			Enabled:      true,
			RaftPort:     DefaultRaftPort,
			Voter:        true,
			PromoteAfter: DefaultPromoteAfter,
			RemoveAfter:  DefaultRemoveAfter,

			RaftSnapshotThreshold: DefaultRaftSnapshotThreshold,
			RaftSnapshotInterval:  DefaultRaftSnapshotInterval,
			RaftTrailingLogs:      DefaultRaftTrailingLogs,
		},
		Nomad:     Nomad{Address: DefaultNomadAddress},
		Consul:    Consul{Address: DefaultConsulAddress, ServiceName: DefaultServiceName},
		HTTP:      HTTP{Address: DefaultHTTPAddress},
		Policies:  Policies{Dir: DefaultPoliciesDir},
		Telemetry: Telemetry{PrometheusMetrics: true},
		Reserve:   Reserve{Driver: DefaultReserveDriver, Config: map[string]any{"image": DefaultPauseImage}},
		Queue:     Queue{MaxRequests: DefaultMaxRequests, KeepFinished: DefaultKeepFinished},
	}
}

// DevDefault returns the defaults of dev mode (the -dev flag): one
// in-memory server that bootstraps alone and logs at debug. Files loaded
// over it still override each setting.
func DevDefault() *Config {
	c := Default()
	c.DevMode = true
	c.DataDir = ""
	c.LogLevel = "debug"
	return c
}

// EffectiveVoters is the number of voters the leader keeps: server.voters,
// or else bootstrap_expect, or else 1.
func (s Server) EffectiveVoters() int {
	switch {
	case s.Voters > 0:
		return s.Voters
	case s.BootstrapExpect > 0:
		return s.BootstrapExpect
	}
	return 1
}

// Alone reports whether the server bootstraps by itself: no
// bootstrap_expect and no servers to join.
func (s Server) Alone() bool { return s.BootstrapExpect <= 1 && len(s.RetryJoin) == 0 }

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	out := *c
	out.Server.RetryJoin = slices.Clone(c.Server.RetryJoin)
	out.Consul.Tags = slices.Clone(c.Consul.Tags)
	out.Prometheus.Headers = maps.Clone(c.Prometheus.Headers)
	out.Reserve.Config = cloneAny(c.Reserve.Config).(map[string]any)
	out.origins = maps.Clone(c.origins)
	return &out
}

// LiveSettings are the top-level settings a running agent applies when it
// reloads its configuration (SIGHUP); every other setting takes effect at
// its next start.
var LiveSettings = []string{"log_level", "acl", "policies"}

// live reports whether the dotted field ("acl.token_file") is part of a
// live setting.
func live(field string) bool {
	top, _, _ := strings.Cut(field, ".")
	return slices.Contains(LiveSettings, top)
}

// Reloaded is the configuration an agent running running runs once it has
// reloaded next: next's live settings (LiveSettings) and running's every
// other, which wait for a restart. Its fields point at the files that set
// what it holds: next's for the live settings, running's for the rest.
func Reloaded(running, next *Config) *Config {
	out := running.Clone()
	ov, nv := reflect.ValueOf(out).Elem(), reflect.ValueOf(next).Elem()
	for i := range ov.NumField() {
		name, _, _ := strings.Cut(ov.Type().Field(i).Tag.Get("json"), ",")
		if slices.Contains(LiveSettings, name) {
			ov.Field(i).Set(nv.Field(i))
		}
	}
	for f := range out.origins {
		if live(f) {
			delete(out.origins, f)
		}
	}
	for f, o := range next.origins {
		if live(f) {
			out.setOrigin(f, o)
		}
	}
	return out
}

// origin is where a setting came from: a file attribute or an
// environment variable.
type origin struct {
	rng  *hcl.Range // the attribute's expression, when from a file
	desc string     // otherwise: "environment variable NOMAD_ADDR", "flag -http-addr"
}

// setOrigin records that field was last set at rng.
func (c *Config) setOrigin(field string, o origin) {
	if c.origins == nil {
		c.origins = map[string]origin{}
	}
	c.origins[field] = o
}

// Source describes where field's value came from: "file.hcl:3,15-20",
// "environment variable NOMAD_ADDR", "flag -http-addr", or "default".
func (c *Config) Source(field string) string {
	o, ok := c.origins[field]
	switch {
	case !ok:
		return "default"
	case o.rng != nil:
		return o.rng.String()
	default:
		return o.desc
	}
}

// cloneAny deep-copies the maps and slices of a decoded driver config.
func cloneAny(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return map[string]any(nil)
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = cloneAny(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneAny(e)
		}
		return out
	}
	return v
}
