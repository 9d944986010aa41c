package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Validate checks the rules that span settings, on the merged
// configuration (after files, the environment and flags). Each diagnostic
// points at the file attribute that set the field it names, or names the
// environment variable or "default" it came from. Settings that are wrong
// on their own were already refused by Load and ApplyEnv.
func (c *Config) Validate() hcl.Diagnostics {
	var diags hcl.Diagnostics
	// add points the diagnostic at the first of fields that a file set,
	// else names the first that the environment or a flag set.
	add := func(sev hcl.DiagnosticSeverity, fields, summary, format string, args ...any) {
		d := &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: fmt.Sprintf(format, args...)}
		var from []string
		for _, f := range strings.Split(fields, ",") {
			o, ok := c.origins[f]
			switch {
			case ok && o.rng != nil && d.Subject == nil:
				d.Subject = o.rng
			case ok && o.rng == nil:
				from = append(from, fmt.Sprintf("%s is set by %s", f, o.desc))
			}
		}
		if d.Subject == nil && len(from) > 0 {
			d.Detail += " (" + strings.Join(from, "; ") + ".)"
		}
		diags = append(diags, d)
	}
	invalid := func(field, format string, args ...any) {
		add(hcl.DiagError, field, "Invalid "+field, format, args...)
	}
	// invalidAt is invalid pointing at the first set of fields.
	invalidAt := func(fields, field, format string, args ...any) {
		add(hcl.DiagError, fields, "Invalid "+field, format, args...)
	}
	missing := func(at, field, format string, args ...any) {
		add(hcl.DiagError, at, "Missing "+field, format, args...)
	}
	warn := func(field, format string, args ...any) {
		add(hcl.DiagWarning, field, "Questionable "+field, format, args...)
	}

	if c.DataDir == "" && !c.DevMode {
		invalid("data_dir", "The data_dir must be set: Raft logs and snapshots live there. Only dev mode (-dev) keeps state in memory.")
	}

	s := c.Server
	switch {
	case !s.Enabled && s.BootstrapExpect != 0:
		invalid("server.bootstrap_expect", "bootstrap_expect = %d is set but server.enabled is false: only servers take part in the Raft bootstrap. Set server.enabled = true or remove bootstrap_expect.", s.BootstrapExpect)
	case s.Enabled && s.BootstrapExpect < 1:
		missing("server.enabled", "server.bootstrap_expect", "A server needs server.bootstrap_expect (1 for a single server, 3 or 5 for a cluster) so it knows when to bootstrap.")
	case s.Enabled && !s.Voter && s.BootstrapExpect > 0 && c.isSet("server.voter") && c.isSet("server.bootstrap_expect"):
		warn("server.voter", "voter = false with bootstrap_expect = %d: a non-voter does not count towards the bootstrap, so it waits for %d voters to join.", s.BootstrapExpect, s.BootstrapExpect)
	}
	if s.Enabled && (s.BootstrapExpect > 1 || len(s.RetryJoin) > 0) {
		if ip := net.ParseIP(c.BindAddr); ip != nil && ip.IsLoopback() {
			invalidAt("bind_addr,server.retry_join,server.bootstrap_expect", "bind_addr", "bind_addr %s is a loopback address, but this server expects peers (bootstrap_expect = %d, %d retry_join entries) that cannot reach it there. Set bind_addr to this host's cluster address, or 0.0.0.0.", c.BindAddr, s.BootstrapExpect, len(s.RetryJoin))
		}
	}
	if host, port, err := net.SplitHostPort(c.HTTP.Address); err == nil && s.Enabled {
		if p, _ := strconv.Atoi(port); p == s.RaftPort && sameHost(host, c.BindAddr) {
			invalidAt("server.raft_port,http.address", "server.raft_port", "raft_port %d is also the HTTP API's port (http.address = %q); they need different ports.", p, c.HTTP.Address)
		}
	}

	n := c.Nomad
	if n.CertFile != "" && n.KeyFile == "" {
		missing("nomad.cert_file", "nomad.key_file", "nomad.cert_file is set but nomad.key_file is not: a client certificate needs its key.")
	}
	if n.KeyFile != "" && n.CertFile == "" {
		missing("nomad.key_file", "nomad.cert_file", "nomad.key_file is set but nomad.cert_file is not: a client key needs its certificate.")
	}
	if n.SkipVerify {
		warn("nomad.skip_verify", "skip_verify disables verification of Nomad's TLS certificate; anyone on the path can impersonate Nomad and read the token.")
	}

	t := c.TLS
	if t.CertFile != "" && t.KeyFile == "" {
		missing("tls.cert_file", "tls.key_file", "tls.cert_file is set but tls.key_file is not: the agent's certificate needs its key.")
	}
	if t.KeyFile != "" && t.CertFile == "" {
		missing("tls.key_file", "tls.cert_file", "tls.key_file is set but tls.cert_file is not: the agent's key needs its certificate.")
	}
	if t.VerifyIncoming && t.CAFile == "" {
		missing("tls.verify_incoming", "tls.ca_file", "tls.verify_incoming needs tls.ca_file to verify client certificates against.")
	}
	if t.VerifyIncoming && t.CertFile == "" {
		missing("tls.verify_incoming", "tls.cert_file", "tls.verify_incoming needs TLS enabled (tls.cert_file and tls.key_file).")
	}

	if c.ACL.Enabled && c.ACL.TokenFile == "" {
		missing("acl.enabled", "acl.token_file", "acl.enabled needs acl.token_file, the file of tokens the HTTP API accepts.")
	}
	if c.ACL.Enabled && !t.Enabled() {
		if host, _, err := net.SplitHostPort(c.HTTP.Address); err == nil && !isLoopback(host) {
			warn("acl.enabled", "ACL tokens will cross the network in clear text on %s: configure the tls block.", c.HTTP.Address)
		}
	}

	if c.Consul.Enabled && c.Consul.ServiceName == "" {
		missing("consul.enabled", "consul.service_name", "Registering in Consul needs consul.service_name.")
	}
	return diags
}

// isSet reports whether field was set by a file or the environment.
func (c *Config) isSet(field string) bool {
	_, ok := c.origins[field]
	return ok
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameHost reports whether two listeners on host a and b could collide.
func sameHost(a, b string) bool {
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	if ia == nil || ib == nil {
		return a == b
	}
	return ia.Equal(ib) || ia.IsUnspecified() || ib.IsUnspecified()
}
