package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/foreshape/foreshape/policies/hclfield"
)

// JSON returns the configuration as indented JSON with every secret
// redacted.
func (c *Config) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("config: encoding JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// HCL returns the effective configuration in the agent's own HCL syntax,
// for `foreshape config show`: every setting spelled out, those that no
// file set as comments with their default value or the environment
// variable they came from, and the tokens (and prometheus.headers, by
// name) as comments saying whether they are set, so that the output loads
// back as the same configuration less its tokens, headers and what the
// environment set (a
// default written out would count as set: some are refused when set
// beside a setting that disables them). dev_mode is a comment too: it is
// a flag, not a setting.
func (c *Config) HCL() []byte {
	f := hclwrite.NewEmptyFile()
	root := f.Body()
	if c.DevMode {
		comment(root, "dev mode (-dev): in-memory state, single self-bootstrapping server")
	}
	// put writes the setting name of block (root when "") as an
	// attribute, or as a comment when it is at its default.
	put := func(b *hclwrite.Body, block, name string, v cty.Value) {
		field := name
		if block != "" {
			field = block + "." + name
		}
		src := c.Source(field)
		if src != "default" && !strings.HasPrefix(src, "environment variable ") {
			b.SetAttributeValue(name, v)
			return
		}
		// One line: an object's attributes side by side.
		text := oneLine.ReplaceAllString(string(hclwrite.TokensForValue(v).Bytes()), " ")
		if src != "default" {
			// In a file, some are refused where the environment's are
			// taken as unused (CONSUL_HTTP_ADDR without Consul).
			comment(b, name+" = "+text+" (from "+src+")")
			return
		}
		comment(b, name+" = "+text+" (default)")
	}
	str := func(b *hclwrite.Body, block, name, v string) { put(b, block, name, cty.StringVal(v)) }
	boolean := func(b *hclwrite.Body, block, name string, v bool) { put(b, block, name, cty.BoolVal(v)) }
	num := func(b *hclwrite.Body, block, name string, v int) { put(b, block, name, cty.NumberIntVal(int64(v))) }
	dur := func(b *hclwrite.Body, block, name string, v time.Duration) {
		put(b, block, name, cty.StringVal(hclfield.FormatDuration(v)))
	}
	list := func(b *hclwrite.Body, block, name string, v []string) {
		if len(v) == 0 {
			put(b, block, name, cty.ListValEmpty(cty.String))
			return
		}
		vals := make([]cty.Value, len(v))
		for i, s := range v {
			vals[i] = cty.StringVal(s)
		}
		put(b, block, name, cty.ListVal(vals))
	}
	secret := func(b *hclwrite.Body, name string, v Secret) {
		if v.IsSet() {
			comment(b, name+" = "+Redacted+" (set; not shown)")
			return
		}
		comment(b, name+" is not set")
	}
	block := func(name string) *hclwrite.Body {
		root.AppendNewline()
		return root.AppendNewBlock(name, nil).Body()
	}

	str(root, "", "name", c.Name)
	str(root, "", "data_dir", c.DataDir)
	str(root, "", "bind_addr", c.BindAddr)
	str(root, "", "advertise_addr", c.AdvertiseAddr)
	str(root, "", "log_level", c.LogLevel)
	boolean(root, "", "log_json", c.LogJSON)

	b := block("server")
	boolean(b, "server", "enabled", c.Server.Enabled)
	if c.Server.BootstrapExpect > 0 {
		num(b, "server", "bootstrap_expect", c.Server.BootstrapExpect)
	}
	list(b, "server", "retry_join", c.Server.RetryJoin)
	num(b, "server", "raft_port", c.Server.RaftPort)
	if c.Server.Enabled {
		// Server-only settings; a client agent refuses them.
		boolean(b, "server", "voter", c.Server.Voter)
		num(b, "server", "voters", c.Server.EffectiveVoters())
		dur(b, "server", "promote_after", c.Server.PromoteAfter)
		dur(b, "server", "remove_after", c.Server.RemoveAfter)
		num(b, "server", "raft_snapshot_threshold", c.Server.RaftSnapshotThreshold)
		dur(b, "server", "raft_snapshot_interval", c.Server.RaftSnapshotInterval)
		num(b, "server", "raft_trailing_logs", c.Server.RaftTrailingLogs)
	}

	b = block("nomad")
	str(b, "nomad", "address", c.Nomad.Address)
	str(b, "nomad", "region", c.Nomad.Region)
	str(b, "nomad", "namespace", c.Nomad.Namespace)
	secret(b, "token", c.Nomad.Token)
	str(b, "nomad", "token_file", c.Nomad.TokenFile)
	str(b, "nomad", "ca_file", c.Nomad.CAFile)
	str(b, "nomad", "cert_file", c.Nomad.CertFile)
	str(b, "nomad", "key_file", c.Nomad.KeyFile)
	str(b, "nomad", "tls_server_name", c.Nomad.TLSServerName)
	boolean(b, "nomad", "skip_verify", c.Nomad.SkipVerify)
	if c.Nomad.NodeID != "" {
		str(b, "nomad", "node_id", c.Nomad.NodeID)
	}

	b = block("consul")
	boolean(b, "consul", "enabled", c.Consul.Enabled)
	str(b, "consul", "address", c.Consul.Address)
	secret(b, "token", c.Consul.Token)
	str(b, "consul", "service_name", c.Consul.ServiceName)
	list(b, "consul", "tags", c.Consul.Tags)

	b = block("prometheus")
	pr := c.Prometheus
	str(b, "prometheus", "address", pr.Address)
	str(b, "prometheus", "ca_file", pr.CAFile)
	str(b, "prometheus", "cert_file", pr.CertFile)
	str(b, "prometheus", "key_file", pr.KeyFile)
	str(b, "prometheus", "tls_server_name", pr.TLSServerName)
	boolean(b, "prometheus", "skip_verify", pr.SkipVerify)
	str(b, "prometheus", "token_file", pr.TokenFile)
	str(b, "prometheus", "username", pr.Username)
	str(b, "prometheus", "password_file", pr.PasswordFile)
	if len(pr.Headers) > 0 {
		// The names, not the values: a header may carry an API key.
		var shown []string
		for _, k := range slices.Sorted(maps.Keys(pr.Headers)) {
			shown = append(shown, fmt.Sprintf("%q = %s", k, Redacted))
		}
		comment(b, "headers = { "+strings.Join(shown, ", ")+" } (set; values not shown)")
	} else {
		put(b, "prometheus", "headers", cty.EmptyObjectVal)
	}
	str(b, "prometheus", "iops_query", pr.IOPSQuery)

	b = block("http")
	str(b, "http", "address", c.HTTP.Address)

	b = block("tls")
	str(b, "tls", "ca_file", c.TLS.CAFile)
	str(b, "tls", "cert_file", c.TLS.CertFile)
	str(b, "tls", "key_file", c.TLS.KeyFile)
	boolean(b, "tls", "verify_incoming", c.TLS.VerifyIncoming)

	b = block("acl")
	boolean(b, "acl", "enabled", c.ACL.Enabled)
	str(b, "acl", "token_file", c.ACL.TokenFile)
	str(b, "acl", "read_token_file", c.ACL.ReadTokenFile)

	b = block("policies")
	str(b, "policies", "dir", c.Policies.Dir)

	b = block("telemetry")
	boolean(b, "telemetry", "prometheus_metrics", c.Telemetry.PrometheusMetrics)

	root.AppendNewline()
	boolean(root, "", "forecast_only", c.ForecastOnly)

	b = block("reserve")
	str(b, "reserve", "driver", c.Reserve.Driver)
	if v, err := anyToCty(c.Reserve.Config); err == nil {
		put(b, "reserve", "config", v)
	}

	b = block("queue")
	num(b, "queue", "max_requests", c.Queue.MaxRequests)
	num(b, "queue", "max_parallel", c.Queue.MaxParallel)
	dur(b, "queue", "keep_finished", c.Queue.KeepFinished)

	return hclwrite.Format(f.Bytes())
}

// oneLine matches a line break and the indentation after it.
var oneLine = regexp.MustCompile(`\n\s*`)

// comment appends "# text" as a line of b.
func comment(b *hclwrite.Body, text string) {
	b.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte("# " + text + "\n")}})
}

// anyToCty turns a decoded driver config back into a cty value for HCL.
func anyToCty(m map[string]any) (cty.Value, error) {
	if len(m) == 0 {
		return cty.EmptyObjectVal, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return cty.NilVal, err
	}
	t, err := ctyjson.ImpliedType(b)
	if err != nil {
		return cty.NilVal, err
	}
	return ctyjson.Unmarshal(b, t)
}
