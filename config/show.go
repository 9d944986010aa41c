package config

import (
	"bytes"
	"encoding/json"
	"fmt"

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
// every setting spelled out and every secret redacted, for `foreshape
// config show`. dev_mode appears as a comment: it is a flag, not a
// setting.
func (c *Config) HCL() []byte {
	f := hclwrite.NewEmptyFile()
	root := f.Body()
	if c.DevMode {
		root.AppendUnstructuredTokens(hclwrite.Tokens{
			{Type: hclsyntax.TokenComment, Bytes: []byte("# dev mode (-dev): in-memory state, single self-bootstrapping server\n")},
		})
	}
	str := func(b *hclwrite.Body, name, v string) { b.SetAttributeValue(name, cty.StringVal(v)) }
	boolean := func(b *hclwrite.Body, name string, v bool) { b.SetAttributeValue(name, cty.BoolVal(v)) }
	num := func(b *hclwrite.Body, name string, v int) { b.SetAttributeValue(name, cty.NumberIntVal(int64(v))) }
	list := func(b *hclwrite.Body, name string, v []string) {
		vals := make([]cty.Value, len(v))
		for i, s := range v {
			vals[i] = cty.StringVal(s)
		}
		if len(vals) == 0 {
			b.SetAttributeValue(name, cty.ListValEmpty(cty.String))
			return
		}
		b.SetAttributeValue(name, cty.ListVal(vals))
	}
	block := func(name string) *hclwrite.Body {
		root.AppendNewline()
		return root.AppendNewBlock(name, nil).Body()
	}

	str(root, "name", c.Name)
	str(root, "data_dir", c.DataDir)
	str(root, "bind_addr", c.BindAddr)
	str(root, "advertise_addr", c.AdvertiseAddr)
	str(root, "log_level", c.LogLevel)
	boolean(root, "log_json", c.LogJSON)

	b := block("server")
	boolean(b, "enabled", c.Server.Enabled)
	if c.Server.BootstrapExpect > 0 {
		num(b, "bootstrap_expect", c.Server.BootstrapExpect)
	}
	list(b, "retry_join", c.Server.RetryJoin)
	num(b, "raft_port", c.Server.RaftPort)
	if c.Server.Enabled {
		// Server-only settings; a client agent refuses them.
		boolean(b, "voter", c.Server.Voter)
		num(b, "voters", c.Server.EffectiveVoters())
		str(b, "promote_after", hclfield.FormatDuration(c.Server.PromoteAfter))
		str(b, "remove_after", hclfield.FormatDuration(c.Server.RemoveAfter))
		num(b, "raft_snapshot_threshold", c.Server.RaftSnapshotThreshold)
		str(b, "raft_snapshot_interval", hclfield.FormatDuration(c.Server.RaftSnapshotInterval))
		num(b, "raft_trailing_logs", c.Server.RaftTrailingLogs)
	}

	b = block("nomad")
	str(b, "address", c.Nomad.Address)
	str(b, "region", c.Nomad.Region)
	str(b, "namespace", c.Nomad.Namespace)
	str(b, "token", c.Nomad.Token.String())
	str(b, "ca_file", c.Nomad.CAFile)
	str(b, "cert_file", c.Nomad.CertFile)
	str(b, "key_file", c.Nomad.KeyFile)
	str(b, "tls_server_name", c.Nomad.TLSServerName)
	boolean(b, "skip_verify", c.Nomad.SkipVerify)
	if c.Nomad.NodeID != "" {
		str(b, "node_id", c.Nomad.NodeID)
	}

	b = block("consul")
	boolean(b, "enabled", c.Consul.Enabled)
	str(b, "address", c.Consul.Address)
	str(b, "token", c.Consul.Token.String())
	str(b, "service_name", c.Consul.ServiceName)
	list(b, "tags", c.Consul.Tags)

	b = block("prometheus")
	str(b, "address", c.Prometheus.Address)
	str(b, "iops_query", c.Prometheus.IOPSQuery)

	b = block("http")
	str(b, "address", c.HTTP.Address)

	b = block("tls")
	str(b, "ca_file", c.TLS.CAFile)
	str(b, "cert_file", c.TLS.CertFile)
	str(b, "key_file", c.TLS.KeyFile)
	boolean(b, "verify_incoming", c.TLS.VerifyIncoming)

	b = block("acl")
	boolean(b, "enabled", c.ACL.Enabled)
	str(b, "token_file", c.ACL.TokenFile)

	b = block("policies")
	str(b, "dir", c.Policies.Dir)

	b = block("telemetry")
	boolean(b, "prometheus_metrics", c.Telemetry.PrometheusMetrics)

	root.AppendNewline()
	boolean(root, "forecast_only", c.ForecastOnly)

	b = block("reserve")
	str(b, "driver", c.Reserve.Driver)
	if v, err := anyToCty(c.Reserve.Config); err == nil {
		b.SetAttributeValue("config", v)
	}

	b = block("queue")
	num(b, "max_requests", c.Queue.MaxRequests)
	num(b, "max_parallel", c.Queue.MaxParallel)
	str(b, "keep_finished", hclfield.FormatDuration(c.Queue.KeepFinished))

	return hclwrite.Format(f.Bytes())
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
