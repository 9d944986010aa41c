package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/foreshape/foreshape/internal/querytmpl"
	"github.com/foreshape/foreshape/policies/hclfield"
)

// The decode structs mirror the HCL text; every setting stays an
// hcl.Expression so that errors point at it, and an absent attribute
// (a null expression) leaves the value underneath untouched.

type fileHCL struct {
	Name       hcl.Expression `hcl:"name,optional"`
	DataDir    hcl.Expression `hcl:"data_dir,optional"`
	BindAddr   hcl.Expression `hcl:"bind_addr,optional"`
	Advertise  hcl.Expression `hcl:"advertise_addr,optional"`
	LogLevel   hcl.Expression `hcl:"log_level,optional"`
	LogJSON    hcl.Expression `hcl:"log_json,optional"`
	Server     *serverHCL     `hcl:"server,block"`
	Nomad      *nomadHCL      `hcl:"nomad,block"`
	Consul     *consulHCL     `hcl:"consul,block"`
	Prometheus *prometheusHCL `hcl:"prometheus,block"`
	HTTP       *httpHCL       `hcl:"http,block"`
	TLS        *tlsHCL        `hcl:"tls,block"`
	ACL        *aclHCL        `hcl:"acl,block"`
	Policies   *policiesHCL   `hcl:"policies,block"`
	Telemetry  *telemetryHCL  `hcl:"telemetry,block"`

	// The act half's settings.
	ForecastOnly hcl.Expression `hcl:"forecast_only,optional"`
	Reserve      *reserveHCL    `hcl:"reserve,block"`
	Queue        *queueHCL      `hcl:"queue,block"`
}

type reserveHCL struct {
	Driver hcl.Expression `hcl:"driver,optional"`
	Config hcl.Expression `hcl:"config,optional"`
}

type queueHCL struct {
	MaxRequests  hcl.Expression `hcl:"max_requests,optional"`
	MaxParallel  hcl.Expression `hcl:"max_parallel,optional"`
	KeepFinished hcl.Expression `hcl:"keep_finished,optional"`
}

type serverHCL struct {
	Enabled         hcl.Expression `hcl:"enabled,optional"`
	BootstrapExpect hcl.Expression `hcl:"bootstrap_expect,optional"`
	RetryJoin       hcl.Expression `hcl:"retry_join,optional"`
	RaftPort        hcl.Expression `hcl:"raft_port,optional"`
	Voter           hcl.Expression `hcl:"voter,optional"`
	Voters          hcl.Expression `hcl:"voters,optional"`
	PromoteAfter    hcl.Expression `hcl:"promote_after,optional"`
	RemoveAfter     hcl.Expression `hcl:"remove_after,optional"`

	RaftSnapshotThreshold hcl.Expression `hcl:"raft_snapshot_threshold,optional"`
	RaftSnapshotInterval  hcl.Expression `hcl:"raft_snapshot_interval,optional"`
	RaftTrailingLogs      hcl.Expression `hcl:"raft_trailing_logs,optional"`
}

type nomadHCL struct {
	Address       hcl.Expression `hcl:"address,optional"`
	Region        hcl.Expression `hcl:"region,optional"`
	Namespace     hcl.Expression `hcl:"namespace,optional"`
	Token         hcl.Expression `hcl:"token,optional"`
	TokenFile     hcl.Expression `hcl:"token_file,optional"`
	CAFile        hcl.Expression `hcl:"ca_file,optional"`
	CertFile      hcl.Expression `hcl:"cert_file,optional"`
	KeyFile       hcl.Expression `hcl:"key_file,optional"`
	TLSServerName hcl.Expression `hcl:"tls_server_name,optional"`
	SkipVerify    hcl.Expression `hcl:"skip_verify,optional"`
	NodeID        hcl.Expression `hcl:"node_id,optional"`
}

type consulHCL struct {
	Enabled     hcl.Expression `hcl:"enabled,optional"`
	Address     hcl.Expression `hcl:"address,optional"`
	Token       hcl.Expression `hcl:"token,optional"`
	ServiceName hcl.Expression `hcl:"service_name,optional"`
	Tags        hcl.Expression `hcl:"tags,optional"`
}

type prometheusHCL struct {
	Address       hcl.Expression `hcl:"address,optional"`
	IOPSQuery     hcl.Expression `hcl:"iops_query,optional"`
	CAFile        hcl.Expression `hcl:"ca_file,optional"`
	CertFile      hcl.Expression `hcl:"cert_file,optional"`
	KeyFile       hcl.Expression `hcl:"key_file,optional"`
	TLSServerName hcl.Expression `hcl:"tls_server_name,optional"`
	SkipVerify    hcl.Expression `hcl:"skip_verify,optional"`
	TokenFile     hcl.Expression `hcl:"token_file,optional"`
	Username      hcl.Expression `hcl:"username,optional"`
	PasswordFile  hcl.Expression `hcl:"password_file,optional"`
	Headers       hcl.Expression `hcl:"headers,optional"`
}

type httpHCL struct {
	Address hcl.Expression `hcl:"address,optional"`
}

type tlsHCL struct {
	CAFile         hcl.Expression `hcl:"ca_file,optional"`
	CertFile       hcl.Expression `hcl:"cert_file,optional"`
	KeyFile        hcl.Expression `hcl:"key_file,optional"`
	VerifyIncoming hcl.Expression `hcl:"verify_incoming,optional"`
}

type aclHCL struct {
	Enabled       hcl.Expression `hcl:"enabled,optional"`
	TokenFile     hcl.Expression `hcl:"token_file,optional"`
	ReadTokenFile hcl.Expression `hcl:"read_token_file,optional"`
}

type policiesHCL struct {
	Dir hcl.Expression `hcl:"dir,optional"`
}

type telemetryHCL struct {
	PrometheusMetrics hcl.Expression `hcl:"prometheus_metrics,optional"`
}

// fileDecoder validates one file's settings and writes the valid ones
// into cfg, recording where each came from.
type fileDecoder struct {
	cfg   *Config
	diags hcl.Diagnostics
}

func (d *fileDecoder) invalid(expr hcl.Expression, field string, err error) {
	d.diags = append(d.diags, hclfield.Invalid(expr.Range(), field, "%s.", capitalise(err.Error())))
}

func (d *fileDecoder) set(expr hcl.Expression, field string) {
	rng := expr.Range()
	d.cfg.setOrigin(field, origin{rng: &rng})
}

func (d *fileDecoder) str(expr hcl.Expression, field string, dst *string, check func(string) (string, error)) {
	v, ok, diags := hclfield.String(expr, field)
	d.diags = append(d.diags, diags...)
	if !ok {
		return
	}
	v, err := check(v)
	if err != nil {
		d.invalid(expr, field, err)
		return
	}
	*dst = v
	d.set(expr, field)
}

// checkQueryTemplate accepts a PromQL template: Go text/template syntax
// over .Matchers (the locality's label matchers) and .Locality.
func checkQueryTemplate(s string) (string, error) {
	if _, err := querytmpl.Parse("q", s); err != nil {
		if strings.TrimSpace(s) == "" {
			return "", err
		}
		return "", fmt.Errorf("not a valid query template: %v", err)
	}
	return s, nil
}

// secret is str for credentials. Its diagnostics carry the position in
// their text rather than as a Subject, so that no diagnostic printer shows
// the source line holding the credential.
func (d *fileDecoder) secret(expr hcl.Expression, field string, dst *Secret) {
	v, ok, diags := hclfield.String(expr, field)
	for _, diag := range diags {
		d.diags = append(d.diags, hideSubject(diag))
	}
	if !ok {
		return
	}
	if _, err := checkToken(v); err != nil {
		d.diags = append(d.diags, hideSubject(hclfield.Invalid(expr.Range(), field, "%s.", capitalise(err.Error()))))
		return
	}
	*dst = Secret(v)
	d.set(expr, field)
}

// hideSubject moves a diagnostic's position into its detail.
func hideSubject(diag *hcl.Diagnostic) *hcl.Diagnostic {
	out := *diag
	if out.Subject != nil {
		out.Detail = fmt.Sprintf("At %s: %s (The line is not shown because it holds a credential.)", out.Subject, out.Detail)
		out.Summary = fmt.Sprintf("%s (%s)", out.Summary, out.Subject)
	}
	out.Subject, out.Context, out.Expression = nil, nil, nil
	return &out
}

func (d *fileDecoder) boolean(expr hcl.Expression, field string, dst *bool) {
	v, ok, diags := hclfield.Bool(expr, field)
	d.diags = append(d.diags, diags...)
	if ok {
		*dst = v
		d.set(expr, field)
	}
}

func (d *fileDecoder) integer(expr hcl.Expression, field string, dst *int, check func(int) error) {
	v, ok, diags := hclfield.Int(expr, field)
	d.diags = append(d.diags, diags...)
	if !ok {
		return
	}
	if err := check(v); err != nil {
		d.invalid(expr, field, err)
		return
	}
	*dst = v
	d.set(expr, field)
}

func (d *fileDecoder) duration(expr hcl.Expression, field string, dst *time.Duration, check func(time.Duration) error) {
	v, ok, diags := hclfield.Duration(expr, field)
	d.diags = append(d.diags, diags...)
	if !ok {
		return
	}
	if err := check(v); err != nil {
		d.invalid(expr, field, err)
		return
	}
	*dst = v
	d.set(expr, field)
}

func (d *fileDecoder) list(expr hcl.Expression, field string, dst *[]string, check func(string) (string, error)) {
	v, ok, diags := hclfield.StringList(expr, field)
	d.diags = append(d.diags, diags...)
	if !ok {
		return
	}
	elems, _ := hclfield.ListElements(expr)
	out := make([]string, 0, len(v))
	bad := false
	first := map[string]int{} // where each value was listed first
	for i, s := range v {
		n, err := check(s)
		if j, twice := first[n]; err == nil && twice {
			err = fmt.Errorf("%q is listed already, as %s[%d]; list it once", s, field, j)
		}
		if err != nil {
			e := expr
			if i < len(elems) {
				e = elems[i]
			}
			d.invalid(e, fmt.Sprintf("%s[%d]", field, i), err)
			bad = true
			continue
		}
		first[n] = i
		out = append(out, n)
	}
	if !bad {
		*dst = out
		d.set(expr, field)
	}
}

// object decodes an HCL object (a driver config) into plain Go values.
func (d *fileDecoder) object(expr hcl.Expression, field string, dst *map[string]any) {
	v, ok, diags := hclfield.Value(expr, field)
	d.diags = append(d.diags, diags...)
	if !ok {
		return
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		d.diags = append(d.diags, hclfield.Invalid(expr.Range(), field, "An object is required, such as { image = \"registry.k8s.io/pause:3.10\" }."))
		return
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		d.invalid(expr, field, err)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		d.invalid(expr, field, err)
		return
	}
	*dst = m
	d.set(expr, field)
}

// headers decodes a map of HTTP headers sent with every request. A
// diagnostic about one header points at its key, and never quotes a
// value: header values may be credentials (RedactSource hides them in
// the snippet too).
func (d *fileDecoder) headers(expr hcl.Expression, field string, dst *map[string]Secret) {
	m, ok, diags := hclfield.StringMap(expr, field)
	d.diags = append(d.diags, diags...)
	if !ok {
		return
	}
	// Where each key is written, for its diagnostic.
	at := map[string]hcl.Range{}
	if obj, isObj := expr.(*hclsyntax.ObjectConsExpr); isObj {
		for _, item := range obj.Items {
			if k, kd := item.KeyExpr.Value(nil); !kd.HasErrors() && k.Type() == cty.String && k.IsKnown() && !k.IsNull() {
				at[k.AsString()] = item.KeyExpr.Range()
			}
		}
	}
	out := make(map[string]Secret, len(m))
	first := map[string]string{} // canonical name: the key that set it
	bad := false
	for _, k := range slices.Sorted(maps.Keys(m)) {
		rng, found := at[k]
		if !found {
			rng = expr.Range()
		}
		canon := textproto.CanonicalMIMEHeaderKey(k)
		err := checkHeader(k, m[k])
		if other, twice := first[canon]; err == nil && twice {
			err = fmt.Errorf("%q and %q are the same header (names are not case-sensitive); set it once", other, k)
		}
		if err != nil {
			d.diags = append(d.diags, hclfield.Invalid(rng, field, "%s.", capitalise(err.Error())))
			bad = true
			continue
		}
		first[canon] = k
		out[k] = Secret(m[k])
	}
	if !bad {
		*dst = out
		d.set(expr, field)
	}
}

// checkDriver accepts a Nomad task driver name.
func checkDriver(s string) (string, error) {
	if s == "" || strings.ContainsAny(s, " \t/") {
		return "", fmt.Errorf("%q is not a task driver name (docker, raw_exec, exec, podman, …)", s)
	}
	return s, nil
}

func checkPositiveInt(v int) error {
	if v < 1 {
		return fmt.Errorf("%d is not positive", v)
	}
	return nil
}

func checkNonNegative(v int) error {
	if v < 0 {
		return fmt.Errorf("%d is negative", v)
	}
	return nil
}

// decodeFile validates one parsed file and merges its settings into cfg.
func decodeFile(file *hcl.File, cfg *Config) hcl.Diagnostics {
	var f fileHCL
	diags := gohcl.DecodeBody(file.Body, nil, &f)
	if diags.HasErrors() {
		return diags
	}
	d := &fileDecoder{cfg: cfg, diags: diags}
	d.str(f.Name, "name", &cfg.Name, checkName)
	d.str(f.DataDir, "data_dir", &cfg.DataDir, checkDataDir)
	d.str(f.BindAddr, "bind_addr", &cfg.BindAddr, checkIP)
	d.str(f.Advertise, "advertise_addr", &cfg.AdvertiseAddr, checkAdvertise)
	d.str(f.LogLevel, "log_level", &cfg.LogLevel, checkLogLevel)
	d.boolean(f.LogJSON, "log_json", &cfg.LogJSON)
	if s := f.Server; s != nil {
		d.boolean(s.Enabled, "server.enabled", &cfg.Server.Enabled)
		d.integer(s.BootstrapExpect, "server.bootstrap_expect", &cfg.Server.BootstrapExpect, checkBootstrapExpect)
		d.list(s.RetryJoin, "server.retry_join", &cfg.Server.RetryJoin, checkJoin)
		d.integer(s.RaftPort, "server.raft_port", &cfg.Server.RaftPort, checkPort)
		d.boolean(s.Voter, "server.voter", &cfg.Server.Voter)
		d.integer(s.Voters, "server.voters", &cfg.Server.Voters, checkVoters)
		d.duration(s.PromoteAfter, "server.promote_after", &cfg.Server.PromoteAfter, checkSilence)
		d.duration(s.RemoveAfter, "server.remove_after", &cfg.Server.RemoveAfter, checkSilence)
		d.integer(s.RaftSnapshotThreshold, "server.raft_snapshot_threshold", &cfg.Server.RaftSnapshotThreshold, checkRaftEntries)
		d.duration(s.RaftSnapshotInterval, "server.raft_snapshot_interval", &cfg.Server.RaftSnapshotInterval, checkSnapshotInterval)
		d.integer(s.RaftTrailingLogs, "server.raft_trailing_logs", &cfg.Server.RaftTrailingLogs, checkRaftEntries)
	}
	if n := f.Nomad; n != nil {
		d.str(n.Address, "nomad.address", &cfg.Nomad.Address, checkNomadAddress)
		d.str(n.Region, "nomad.region", &cfg.Nomad.Region, checkIdent)
		d.str(n.Namespace, "nomad.namespace", &cfg.Nomad.Namespace, checkIdent)
		d.secret(n.Token, "nomad.token", &cfg.Nomad.Token)
		d.str(n.TokenFile, "nomad.token_file", &cfg.Nomad.TokenFile, checkPath)
		d.str(n.CAFile, "nomad.ca_file", &cfg.Nomad.CAFile, checkPath)
		d.str(n.CertFile, "nomad.cert_file", &cfg.Nomad.CertFile, checkPath)
		d.str(n.KeyFile, "nomad.key_file", &cfg.Nomad.KeyFile, checkPath)
		d.str(n.TLSServerName, "nomad.tls_server_name", &cfg.Nomad.TLSServerName, checkServerName)
		d.boolean(n.SkipVerify, "nomad.skip_verify", &cfg.Nomad.SkipVerify)
		d.str(n.NodeID, "nomad.node_id", &cfg.Nomad.NodeID, checkNodeID)
	}
	if c := f.Consul; c != nil {
		d.boolean(c.Enabled, "consul.enabled", &cfg.Consul.Enabled)
		d.str(c.Address, "consul.address", &cfg.Consul.Address, checkConsulAddress)
		d.secret(c.Token, "consul.token", &cfg.Consul.Token)
		d.str(c.ServiceName, "consul.service_name", &cfg.Consul.ServiceName, checkServiceName)
		d.list(c.Tags, "consul.tags", &cfg.Consul.Tags, checkTag)
	}
	if p := f.Prometheus; p != nil {
		d.str(p.Address, "prometheus.address", &cfg.Prometheus.Address, checkPrometheusAddress)
		d.str(p.IOPSQuery, "prometheus.iops_query", &cfg.Prometheus.IOPSQuery, checkQueryTemplate)
		d.str(p.CAFile, "prometheus.ca_file", &cfg.Prometheus.CAFile, checkPath)
		d.str(p.CertFile, "prometheus.cert_file", &cfg.Prometheus.CertFile, checkPath)
		d.str(p.KeyFile, "prometheus.key_file", &cfg.Prometheus.KeyFile, checkPath)
		d.str(p.TLSServerName, "prometheus.tls_server_name", &cfg.Prometheus.TLSServerName, checkServerName)
		d.boolean(p.SkipVerify, "prometheus.skip_verify", &cfg.Prometheus.SkipVerify)
		d.str(p.TokenFile, "prometheus.token_file", &cfg.Prometheus.TokenFile, checkPath)
		d.str(p.Username, "prometheus.username", &cfg.Prometheus.Username, checkUsername)
		d.str(p.PasswordFile, "prometheus.password_file", &cfg.Prometheus.PasswordFile, checkPath)
		d.headers(p.Headers, "prometheus.headers", &cfg.Prometheus.Headers)
	}
	if h := f.HTTP; h != nil {
		d.str(h.Address, "http.address", &cfg.HTTP.Address, checkListen)
	}
	if t := f.TLS; t != nil {
		d.str(t.CAFile, "tls.ca_file", &cfg.TLS.CAFile, checkPath)
		d.str(t.CertFile, "tls.cert_file", &cfg.TLS.CertFile, checkPath)
		d.str(t.KeyFile, "tls.key_file", &cfg.TLS.KeyFile, checkPath)
		d.boolean(t.VerifyIncoming, "tls.verify_incoming", &cfg.TLS.VerifyIncoming)
	}
	if a := f.ACL; a != nil {
		d.boolean(a.Enabled, "acl.enabled", &cfg.ACL.Enabled)
		d.str(a.TokenFile, "acl.token_file", &cfg.ACL.TokenFile, checkPath)
		d.str(a.ReadTokenFile, "acl.read_token_file", &cfg.ACL.ReadTokenFile, checkPath)
	}
	if p := f.Policies; p != nil {
		d.str(p.Dir, "policies.dir", &cfg.Policies.Dir, checkPath)
	}
	if t := f.Telemetry; t != nil {
		d.boolean(t.PrometheusMetrics, "telemetry.prometheus_metrics", &cfg.Telemetry.PrometheusMetrics)
	}
	d.boolean(f.ForecastOnly, "forecast_only", &cfg.ForecastOnly)
	if r := f.Reserve; r != nil {
		was := cfg.Reserve.Driver
		d.str(r.Driver, "reserve.driver", &cfg.Reserve.Driver, checkDriver)
		if hclfield.IsSet(r.Config) {
			d.object(r.Config, "reserve.config", &cfg.Reserve.Config)
		} else if cfg.Reserve.Driver != was {
			// Another driver does not inherit the config of the one
			// before it (the default's, or an earlier file's); the same
			// driver restated keeps it.
			cfg.Reserve.Config = nil
		}
	}
	if q := f.Queue; q != nil {
		d.integer(q.MaxRequests, "queue.max_requests", &cfg.Queue.MaxRequests, checkPositiveInt)
		d.integer(q.MaxParallel, "queue.max_parallel", &cfg.Queue.MaxParallel, checkNonNegative)
		d.duration(q.KeepFinished, "queue.keep_finished", &cfg.Queue.KeepFinished, checkKeepFinished)
	}
	return d.diags
}

// capitalise upper-cases the first letter of a message.
func capitalise(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
