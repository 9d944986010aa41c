package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/internal/querytmpl"
	"github.com/foreshape/foreshape/policies/hclfield"
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
		diags = append(diags, c.At(d, strings.Split(fields, ",")...))
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

	s := c.Server
	// peers: this agent talks to other agents (a cluster of servers, or a
	// client agent reporting to servers).
	peers := !s.Enabled || s.BootstrapExpect > 1 || len(s.RetryJoin) > 0

	if c.DataDir == "" && !c.DevMode && s.Enabled {
		invalid("data_dir", "The data_dir must be set: Raft logs and snapshots live there. Only dev mode (-dev) keeps state in memory.")
	}

	switch {
	case !s.Enabled && s.BootstrapExpect != 0:
		invalid("server.bootstrap_expect", "bootstrap_expect = %d is set but server.enabled is false: only servers take part in the Raft bootstrap. Set server.enabled = true or remove bootstrap_expect.", s.BootstrapExpect)
	case s.Enabled && len(s.RetryJoin) > 0 && s.BootstrapExpect < 1 && !c.DevMode:
		missing("server.retry_join", "server.bootstrap_expect", "A server that joins others (server.retry_join) must set server.bootstrap_expect: the number of voting servers that bootstrap the cluster together (3 or 5), the same on every server, also on one that joins an existing cluster later.")
	case s.Enabled && !s.Voter && s.Alone() && !c.DevMode:
		invalid("server.voter", "voter = false, but this server has no server.retry_join: it bootstraps a cluster of its own, where it must vote to lead. List the servers it joins in server.retry_join (with bootstrap_expect), or remove voter = false.")
	case s.Enabled && !s.Voter && s.BootstrapExpect > 0 && c.isSet("server.voter") && c.isSet("server.bootstrap_expect"):
		warn("server.voter", "voter = false with bootstrap_expect = %d: a non-voter does not count towards the bootstrap, so it waits for %d voters to form the cluster and then joins it.", s.BootstrapExpect, s.BootstrapExpect)
	}
	// Settings that act only with another one: without it they would be
	// accepted and do nothing.
	namedLookup := false // a retry_join lookup in Consul under consul.service_name
	for _, e := range s.RetryJoin {
		if p, err := ParseJoinProvider(e); err == nil && strings.Contains(e, "provider=") && p.Service == "" {
			namedLookup = true
		}
	}
	for _, dep := range []struct {
		field string
		idle  bool
		why   string
	}{
		{"acl.token_file", !c.ACL.Enabled, "acl.enabled is false, so no token is checked. Set acl.enabled = true, or remove it"},
		{"acl.read_token_file", !c.ACL.Enabled, "acl.enabled is false, so no token is checked. Set acl.enabled = true, or remove it"},
		{"prometheus.iops_query", s.Enabled && c.Prometheus.Address == "", "prometheus.address is not set, so no IOPS are read from Prometheus. Set prometheus.address, or remove it"},
		{"consul.tags", !c.Consul.Enabled, "consul.enabled is false, so the agent registers no service to tag. Set consul.enabled = true, or remove them"},
		{"consul.service_name", !c.Consul.Enabled && !namedLookup, "consul.enabled is false and no server.retry_join entry looks servers up in Consul under it (provider=consul without service=). Set consul.enabled = true, or remove it"},
	} {
		if dep.idle && c.isSet(dep.field) {
			invalid(dep.field, "%s is set but %s.", dep.field, dep.why)
		}
	}
	// The rest of the prometheus block is how to reach the Prometheus
	// that prometheus.address names.
	if s.Enabled && c.Prometheus.Address == "" {
		for _, f := range prometheusAccess {
			if c.isSet(f) {
				invalid(f, "%s is set but prometheus.address is not set, so the agent reads no Prometheus. Set prometheus.address, or remove it.", f)
			}
		}
	}
	if p := c.Prometheus; p.Address != "" {
		if p.CertFile != "" && p.KeyFile == "" {
			missing("prometheus.cert_file", "prometheus.key_file", "prometheus.cert_file is set but prometheus.key_file is not: a client certificate needs its key.")
		}
		if p.KeyFile != "" && p.CertFile == "" {
			missing("prometheus.key_file", "prometheus.cert_file", "prometheus.key_file is set but prometheus.cert_file is not: a client key needs its certificate.")
		}
		if p.Username != "" && p.PasswordFile == "" {
			missing("prometheus.username", "prometheus.password_file", "prometheus.username is set but prometheus.password_file is not: basic auth sends the user's password, read from that file.")
		}
		if p.PasswordFile != "" && p.Username == "" {
			missing("prometheus.password_file", "prometheus.username", "prometheus.password_file is set but prometheus.username is not: basic auth sends the password with its user's name.")
		}
		if p.TokenFile != "" && (p.Username != "" || p.PasswordFile != "") {
			invalidAt("prometheus.token_file,prometheus.username,prometheus.password_file", "prometheus.token_file",
				"prometheus.token_file and basic auth (prometheus.username, prometheus.password_file) are both set: each is sent as the Authorization header, which a request has one of. Keep the one Prometheus (or the proxy in front of it) checks.")
		}
		if cred := p.credentialSetting(); cred != "" && !p.UsesTLS() {
			if u, err := url.Parse(p.Address); err == nil && !IsLoopback(u.Hostname()) {
				warn(cred, "%s's credential will cross the network in clear text to %s: use an https:// address.", cred, u.Host)
			}
		}
		if p.IOPSQuery != "" && (c.NoNomad == nil || !c.NoNomad.Replay) {
			// A template that does not parse is refused where it is read.
			if tmpl, err := querytmpl.Parse("iops", p.IOPSQuery); err == nil {
				if why := querytmpl.PromQLProblem(tmpl); why != "" {
					warn("prometheus.iops_query", "%s. Prometheus refuses the query at every collection, so no IOPS are read; a server of another dialect, such as VictoriaMetrics (MetricsQL), may take it.", why)
				}
			}
		}
		if p.SkipVerify && p.UsesTLS() && (c.NoNomad == nil || !c.NoNomad.Replay) {
			warn("prometheus.skip_verify", "skip_verify disables verification of Prometheus's TLS certificate; anyone on the path can impersonate Prometheus, feed the agent's forecasts and read its credentials.")
		}
	}
	if s.Enabled && c.isSet("nomad.node_id") {
		invalid("nomad.node_id", "nomad.node_id is set but this agent is a server: only a client agent (server.enabled = false) reports on one Nomad node; the leader reads every node. Remove it, or set server.enabled = false.")
	}
	if !s.Enabled && !c.DevMode {
		for _, f := range serverOnly {
			if c.isSet(f) {
				invalid(f, "%s is set but server.enabled is false: it only applies to servers (a client agent keeps no state, runs no policies and reads only its own node). Set server.enabled = true or remove it.", f)
			}
		}
		// A client agent binds no Raft port: raft_port is only the port of
		// the retry_join addresses that name none (a Consul lookup gives
		// the servers' own).
		if c.isSet("server.raft_port") && len(s.RetryJoin) > 0 && !slices.ContainsFunc(s.RetryJoin, joinWithoutPort) {
			invalid("server.raft_port", "server.raft_port is set but this client agent binds no Raft port, and every server.retry_join entry names its servers' port (or looks them up in Consul, which gives it), so it would be used by nothing. Remove it, or leave the port out of the retry_join addresses that should take it.")
		}
		if len(s.RetryJoin) == 0 {
			missing("server.enabled", "server.retry_join", "This agent is a client agent (server.enabled = false): it reports its Nomad node's stats to the servers listed in server.retry_join. List them there (their addresses, or \"provider=consul\").")
		}
	}
	if c.DevMode {
		for _, f := range notInDev {
			if c.isSet(f) {
				invalid(f, "%s is set, but a dev or replay agent (-dev, -replay) runs one in-memory server on an in-process transport: it keeps no data_dir, binds no Raft port and has no other server to vote with, so %s would do nothing. Remove it, or run the agent without -dev or -replay.", f, f)
			}
		}
	}
	// advertise_addr is where peers reach a server's Raft port, and where
	// an HTTP API listening on every interface is reached; a client agent
	// or a dev agent binds no Raft port (a dev agent's is in-process), so
	// with http.address on an IP (reached there) it does nothing.
	if c.isSet("advertise_addr") && (!s.Enabled || c.DevMode) {
		if host, _, err := net.SplitHostPort(c.HTTP.Address); err == nil {
			if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
				who := "this client agent binds no Raft port"
				if c.DevMode {
					who = "a dev or replay agent (-dev, -replay) runs its Raft on an in-process transport"
				}
				invalidAt("advertise_addr,http.address", "advertise_addr", "advertise_addr is set, but %s, and its HTTP API listens at %s, where it is reached: advertise_addr is used only for an HTTP API that listens on every interface (0.0.0.0). Remove it, or set http.address to \"0.0.0.0:PORT\".", who, c.HTTP.Address)
			}
		}
	}
	if c.DevMode && (s.BootstrapExpect > 1 || len(s.RetryJoin) > 0 || !s.Enabled) {
		invalidAt("server.bootstrap_expect,server.retry_join,server.enabled", "server", "Dev mode runs one in-memory server that bootstraps alone: it takes no bootstrap_expect above 1, no retry_join and no server.enabled = false.")
	}
	if s.Enabled && s.BootstrapExpect > 1 && len(s.RetryJoin) == 0 {
		missing("server.bootstrap_expect", "server.retry_join", "bootstrap_expect = %d: the servers find each other through server.retry_join (their addresses, or \"provider=consul\"); list the other servers there.", s.BootstrapExpect)
	}
	if s.Enabled {
		switch v := s.EffectiveVoters(); {
		case v != 1 && v != 3 && v != 5:
			invalidAt("server.voters,server.bootstrap_expect", "server.voters", "The leader keeps server.voters voters (default bootstrap_expect = %d); that must be 1, 3 or 5, so that a majority survives one or two failures. Set server.voters.", s.BootstrapExpect)
		case s.BootstrapExpect > v:
			invalidAt("server.bootstrap_expect,server.voters", "server.bootstrap_expect", "bootstrap_expect = %d is more than the %d voters the leader keeps (server.voters): every server that bootstraps the cluster votes.", s.BootstrapExpect, v)
		}
		if s.RemoveAfter <= s.PromoteAfter {
			invalidAt("server.remove_after,server.promote_after", "server.remove_after", "remove_after (%s) must be longer than promote_after (%s): a silent voter is replaced by a spare before it is removed.", hclfield.FormatDuration(s.RemoveAfter), hclfield.FormatDuration(s.PromoteAfter))
		}
	}
	if s.Enabled && !c.DevMode {
		// Peers dial the advertised address (advertise_addr, else
		// bind_addr): a loopback one reaches only this host, whichever
		// field set it. A static address elsewhere in retry_join is a
		// peer that cannot reach it; with provider=consul alone the
		// servers may all be on this host (the lookup finds out).
		bindLoop, advLoop := IsLoopback(c.BindAddr), IsLoopback(c.AdvertiseAddr)
		far := remoteJoin(s.RetryJoin)
		switch {
		case bindLoop && far != "":
			invalidAt("bind_addr,server.retry_join", "bind_addr", "bind_addr %s is a loopback address, but this server expects peers elsewhere (retry_join %q) that cannot reach it there. Set bind_addr to this host's cluster address, or 0.0.0.0 with advertise_addr.", c.BindAddr, far)
		case advLoop && far != "":
			invalidAt("advertise_addr,server.retry_join", "advertise_addr", "advertise_addr %s is a loopback address, but this server expects peers elsewhere (retry_join %q) that cannot reach it there. Set advertise_addr to this host's cluster address.", c.AdvertiseAddr, far)
		case bindLoop && c.AdvertiseAddr != "" && !advLoop && len(s.RetryJoin) > 0:
			invalidAt("bind_addr,advertise_addr", "bind_addr", "bind_addr %s is a loopback address, but advertise_addr %s is not: peers dial %s, where the Raft port does not listen. Set bind_addr to %s, or 0.0.0.0.", c.BindAddr, c.AdvertiseAddr, c.AdvertiseAddr, c.AdvertiseAddr)
		}
		// Followers pass what changes something to the leader's HTTP API
		// and read its last cycle there, at the address it advertises
		// (httpAdvertise): a loopback listener advertises itself.
		if host, port, err := net.SplitHostPort(c.HTTP.Address); err == nil && IsLoopback(host) && far != "" {
			fix := "this host's address"
			if ip := net.ParseIP(c.BindAddr); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
				fix = fmt.Sprintf("%q", net.JoinHostPort(c.BindAddr, port))
			}
			invalidAt("http.address,server.retry_join", "http.address", "http.address %s is a loopback address, but this server expects peers elsewhere (retry_join %q): the other servers pass API calls that change something to the leader's HTTP API and read its forecasts there, and cannot reach it. Set http.address to %s, or to \"0.0.0.0:%s\" with advertise_addr.", c.HTTP.Address, far, fix, port)
		}
		if ip := net.ParseIP(c.BindAddr); ip != nil && ip.IsUnspecified() && c.AdvertiseAddr == "" {
			missing("bind_addr", "advertise_addr", "bind_addr %s listens on every interface, so the Raft port has no address its peers can dial: set advertise_addr to this host's cluster address.", c.BindAddr)
		}
	}
	if host, _, err := net.SplitHostPort(c.HTTP.Address); err == nil && (peers || c.Consul.Enabled) && !c.DevMode {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && c.AdvertiseAddr == "" {
			why := "other agents forward API calls to it"
			if c.Consul.Enabled {
				why = "Consul registers it and checks its health"
			}
			missing("http.address", "advertise_addr", "http.address %s listens on every interface, but %s: set advertise_addr to the address they reach this host at.", c.HTTP.Address, why)
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
	// Both would be sent as the one X-Nomad-Token header.
	if n.TokenFile != "" && n.Token != "" {
		invalidAt("nomad.token_file,nomad.token", "nomad.token_file",
			"nomad.token_file and nomad.token are both set: a request to Nomad carries one token. Keep nomad.token_file (a workload identity's token file, read for every request) and unset nomad.token (and NOMAD_TOKEN), or remove nomad.token_file.")
	}
	// The agent registers its placeholder jobs and scales jobs in
	// nomad.namespace; Nomad's wildcard only reads every namespace (an
	// operator's NOMAD_NAMESPACE for the nomad CLI, say), and Nomad
	// refuses a job in it. An agent that uses no Nomad takes it as unused.
	if n.Namespace == "*" && c.NoNomad == nil {
		invalid("nomad.namespace", "\"*\" is Nomad's wildcard for reading every namespace, not a namespace: the agent registers its placeholder jobs and scales jobs in nomad.namespace, and Nomad refuses a job in namespace \"*\". Name one namespace, or leave it unset for the Nomad agent's.")
	}
	if n.SkipVerify && n.UsesTLS() && c.NoNomad == nil {
		warn("nomad.skip_verify", "skip_verify disables verification of Nomad's TLS certificate; anyone on the path can impersonate Nomad and read the token.")
	}
	// Settings no client of the agent's uses: refused from a file, as the
	// settings without their switch above; from the environment (an
	// operator's NOMAD_CACERT or CONSUL_HTTP_ADDR, kept for the nomad and
	// consul CLIs) accepted, and named by Unused.
	for _, u := range c.unused() {
		if c.inFile(u.Field) {
			fields := u.Field
			if u.because != "" {
				fields += "," + u.because
			}
			invalidAt(fields, u.Field, "%s is set but %s. %s.", u.Field, u.Reason, u.fix)
		}
	}

	t := c.TLS
	if t.CertFile != "" && t.KeyFile == "" {
		missing("tls.cert_file", "tls.key_file", "tls.cert_file is set but tls.key_file is not: the agent's certificate needs its key.")
	}
	if t.KeyFile != "" && t.CertFile == "" {
		missing("tls.key_file", "tls.cert_file", "tls.key_file is set but tls.cert_file is not: the agent's key needs its certificate.")
	}
	if t.CAFile != "" && t.CertFile == "" && t.KeyFile == "" && !t.VerifyIncoming {
		missing("tls.ca_file", "tls.cert_file", "tls.ca_file is set but TLS is off (no tls.cert_file and tls.key_file): the agent checks its peers' certificates against tls.ca_file only when it serves TLS itself, so it would be read by nothing. Set tls.cert_file and tls.key_file, or remove tls.ca_file.")
	}
	if t.VerifyIncoming && t.CAFile == "" {
		missing("tls.verify_incoming", "tls.ca_file", "tls.verify_incoming needs tls.ca_file to verify client certificates against.")
	}
	if t.VerifyIncoming && t.CertFile == "" {
		missing("tls.verify_incoming", "tls.cert_file", "tls.verify_incoming needs TLS enabled (tls.cert_file and tls.key_file).")
	}
	if t.Enabled() && t.CAFile == "" && peers && !c.DevMode {
		missing("tls.cert_file", "tls.ca_file", "With TLS on, the Raft port and the calls agents make to each other use mutual TLS: every agent presents its certificate and checks its peer's against tls.ca_file. Set tls.ca_file.")
	}

	if c.ACL.Enabled && c.ACL.TokenFile == "" {
		missing("acl.enabled", "acl.token_file", "acl.enabled needs acl.token_file, the file of tokens the HTTP API accepts.")
	}
	if c.ACL.Enabled && !t.Enabled() {
		if host, _, err := net.SplitHostPort(c.HTTP.Address); err == nil && !IsLoopback(host) {
			warn("acl.enabled", "ACL tokens will cross the network in clear text on %s: configure the tls block.", c.HTTP.Address)
		}
	}

	// blank is a config value that names nothing: missing, or a string
	// of spaces only.
	blank := func(v any) bool {
		s, ok := v.(string)
		return v == nil || ok && strings.TrimSpace(s) == ""
	}
	// notString says what a config value the driver reads as a string is
	// instead ("a number"), or "" for a string: the task's driver decodes
	// its config on the Nomad client, so a list or object would fail
	// every placeholder there, and a number would name image "5".
	notString := func(v any) string {
		switch v.(type) {
		case string, nil:
			return ""
		case bool:
			return "a bool"
		case float64:
			return "a number"
		case []any:
			return "a list"
		}
		return "an object"
	}
	switch r := c.Reserve; {
	case len(r.Config) == 0:
		// Pointed at the driver a file set (another driver drops the
		// config before it), else at the empty config a file set.
		missing("reserve.driver,reserve.config", "reserve.config", "The placeholder task of driver %q needs a config: for docker, config = { image = %q }; for raw_exec, config = { command = \"/bin/sleep\", args = [\"infinity\"] }.", r.Driver, DefaultPauseImage)
	case r.Driver == "docker" && notString(r.Config["image"]) != "":
		invalidAt("reserve.config,reserve.driver", "reserve.config", "A docker placeholder's image is a string, such as %q, not %s.", DefaultPauseImage, notString(r.Config["image"]))
	case (r.Driver == "raw_exec" || r.Driver == "exec") && notString(r.Config["command"]) != "":
		invalidAt("reserve.config,reserve.driver", "reserve.config", "A %s placeholder's command is a string, such as \"/bin/sleep\" (with args [\"infinity\"]), not %s.", r.Driver, notString(r.Config["command"]))
	case r.Driver == "docker" && blank(r.Config["image"]):
		invalidAt("reserve.config,reserve.driver", "reserve.config", "A docker placeholder needs an image, such as %q.", DefaultPauseImage)
	case (r.Driver == "raw_exec" || r.Driver == "exec") && blank(r.Config["command"]):
		invalidAt("reserve.config,reserve.driver", "reserve.config", "A %s placeholder needs a command, such as \"/bin/sleep\" with args [\"infinity\"].", r.Driver)
	}

	if c.Consul.Enabled && c.Consul.ServiceName == "" {
		missing("consul.enabled", "consul.service_name", "Registering in Consul needs consul.service_name.")
	}
	// The name Prometheus finds the agents under, NAME-metrics, is a DNS
	// label too: longer than 63, Consul registers it, and its DNS
	// (NAME-metrics.service.consul) never answers for it.
	if n := c.Consul.ServiceName + ConsulMetricsSuffix; c.Consul.Enabled && c.Consul.ServiceName != "" && len(n) > 63 {
		invalidAt("consul.service_name,consul.enabled", "consul.service_name",
			"With consul.enabled, every agent also registers the service %s, which Prometheus finds the agents through by DNS, and a DNS name is at most 63 characters: it has %d. Use a service_name of at most %d.",
			n, len(n), 63-len(ConsulMetricsSuffix))
	}
	return diags
}

// At points d at the first of fields (dotted names, "acl.token_file")
// that a file set: d's Subject becomes that attribute's expression. d's
// detail names the environment variables or flags that set any of them,
// which no file shows. It returns d, for checks outside this package that
// are about settings (the files they name, say).
func (c *Config) At(d *hcl.Diagnostic, fields ...string) *hcl.Diagnostic {
	var from []string
	for _, f := range fields {
		o, ok := c.origins[f]
		switch {
		case ok && o.rng != nil && d.Subject == nil:
			d.Subject = o.rng
		case ok && o.rng == nil:
			from = append(from, fmt.Sprintf("%s is set by %s", f, o.desc))
		}
	}
	if len(from) > 0 {
		d.Detail += " (" + strings.Join(from, "; ") + ".)"
	}
	return d
}

// Unused is a setting the environment (or a flag) set that the agent
// accepts but does not use, and why; the agent logs it when it starts.
type Unused struct {
	Field  string // "nomad.ca_file"
	Source string // "environment variable NOMAD_CACERT"
	Reason string // why no client uses it
	// because is the setting that makes it unused, fix what to do.
	because, fix string
}

// Unused lists the settings that the environment or flags set and that
// the agent does not use (a file setting them is refused by Validate):
// nomad's TLS settings when nomad.address is not an https:// URL;
// consul.address and consul.token when the agent neither registers in
// Consul nor looks its servers up there; with NoNomad, every nomad
// setting, and in a replay also what reads Prometheus or acts.
func (c *Config) Unused() []Unused {
	var out []Unused
	for _, u := range c.unused() {
		if !c.inFile(u.Field) {
			u.Source = c.Source(u.Field)
			out = append(out, u)
		}
	}
	return out
}

// setting is a field and whether it holds anything worth refusing
// (a non-empty string, true).
type setting struct {
	field string
	set   bool
}

// unused lists every set setting no client of the agent uses.
func (c *Config) unused() []Unused {
	var out []Unused
	// add lists those of settings that a file or the environment set, as
	// unused for reason; because is the setting that makes them so (""
	// when a flag does), fix what to do, before "or remove FIELD".
	add := func(reason, because, fix string, settings ...setting) {
		for _, s := range settings {
			if s.set && c.isSet(s.field) {
				out = append(out, Unused{Field: s.field, Reason: reason, because: because, fix: fix + ", or remove " + s.field})
			}
		}
	}
	n := c.Nomad
	tlsSettings := []setting{{"nomad.ca_file", n.CAFile != ""}, {"nomad.cert_file", n.CertFile != ""}, {"nomad.key_file", n.KeyFile != ""},
		{"nomad.tls_server_name", n.TLSServerName != ""}, {"nomad.skip_verify", n.SkipVerify}}
	switch {
	case c.NoNomad != nil:
		add(c.NoNomad.Why+", so no nomad setting is used", "", c.NoNomad.Fix, append([]setting{{"nomad.address", true},
			{"nomad.region", n.Region != ""}, {"nomad.namespace", n.Namespace != ""}, {"nomad.token", n.Token != ""}, {"nomad.token_file", n.TokenFile != ""}}, tlsSettings...)...)
		if c.NoNomad.Replay {
			add("a replay (-replay) reads recorded series and acts on nothing, so it does nothing", "", c.NoNomad.Fix,
				// iops_query without an address is refused above.
				setting{"prometheus.address", true}, setting{"prometheus.iops_query", c.Prometheus.Address != ""},
				setting{"prometheus.ca_file", c.Prometheus.Address != ""}, setting{"prometheus.cert_file", c.Prometheus.Address != ""},
				setting{"prometheus.key_file", c.Prometheus.Address != ""}, setting{"prometheus.tls_server_name", c.Prometheus.Address != ""},
				setting{"prometheus.skip_verify", c.Prometheus.Address != ""}, setting{"prometheus.token_file", c.Prometheus.Address != ""},
				setting{"prometheus.username", c.Prometheus.Address != ""}, setting{"prometheus.password_file", c.Prometheus.Address != ""},
				setting{"prometheus.headers", c.Prometheus.Address != ""},
				setting{"forecast_only", c.ForecastOnly}, setting{"reserve.driver", true}, setting{"reserve.config", true},
				setting{"queue.max_requests", true}, setting{"queue.max_parallel", true}, setting{"queue.keep_finished", true})
		}
	case !n.UsesTLS():
		add(fmt.Sprintf("nomad.address %q is not an https:// URL, so the agent talks to Nomad without TLS", n.Address),
			"nomad.address", "Set nomad.address to Nomad's https:// URL", tlsSettings...)
	}
	if p := c.Prometheus; p.Address != "" && !p.UsesTLS() && (c.NoNomad == nil || !c.NoNomad.Replay) {
		add(fmt.Sprintf("prometheus.address %q is not an https:// URL, so the agent talks to Prometheus without TLS", p.Address),
			"prometheus.address", "Set prometheus.address to Prometheus's https:// URL",
			setting{"prometheus.ca_file", p.CAFile != ""}, setting{"prometheus.cert_file", p.CertFile != ""}, setting{"prometheus.key_file", p.KeyFile != ""},
			setting{"prometheus.tls_server_name", p.TLSServerName != ""}, setting{"prometheus.skip_verify", p.SkipVerify})
	}
	if !c.ConsulUsed() {
		add("consul.enabled is false and no server.retry_join entry is provider=consul, so the agent never calls Consul",
			"consul.enabled", "Set consul.enabled = true",
			setting{"consul.address", true}, setting{"consul.token", c.Consul.Token != ""})
	}
	return out
}

// ConsulUsed reports whether the agent calls Consul: to register its
// HTTP API (consul.enabled) or to look its servers up (a provider=consul
// server.retry_join entry).
func (c *Config) ConsulUsed() bool {
	if c.Consul.Enabled {
		return true
	}
	for _, e := range c.Server.RetryJoin {
		if strings.Contains(e, "provider=") {
			return true
		}
	}
	return false
}

// notInDev are the settings dev mode refuses: its one in-memory server
// would ignore them.
var notInDev = []string{
	"data_dir", "bind_addr", "server.raft_port", "server.voter", "server.voters", "server.promote_after", "server.remove_after",
}

// prometheusAccess are the settings of how to reach the Prometheus that
// prometheus.address names: each needs it.
var prometheusAccess = []string{
	"prometheus.ca_file", "prometheus.cert_file", "prometheus.key_file", "prometheus.tls_server_name", "prometheus.skip_verify",
	"prometheus.token_file", "prometheus.username", "prometheus.password_file", "prometheus.headers",
}

// serverOnly are the settings a client agent refuses.
var serverOnly = []string{
	"data_dir", "bind_addr", "server.voter", "server.voters", "server.promote_after", "server.remove_after",
	"server.raft_snapshot_threshold", "server.raft_snapshot_interval", "server.raft_trailing_logs",
	"prometheus.address", "prometheus.iops_query", "prometheus.ca_file", "prometheus.cert_file", "prometheus.key_file",
	"prometheus.tls_server_name", "prometheus.skip_verify", "prometheus.token_file", "prometheus.username",
	"prometheus.password_file", "prometheus.headers", "policies.dir", "telemetry.prometheus_metrics",
	// The act half runs on the leader: a client agent plans and moves nothing.
	"forecast_only", "reserve.driver", "reserve.config", "queue.max_requests", "queue.max_parallel",
	"queue.keep_finished",
}

// joinWithoutPort reports whether a retry_join entry is an address
// without a port (which takes raft_port's).
func joinWithoutPort(e string) bool {
	if strings.Contains(e, "provider=") {
		return false
	}
	_, _, err := net.SplitHostPort(e)
	return err != nil
}

// remoteJoin returns the first retry_join address that is not a loopback
// address, or "". A provider lookup does not count: the servers it finds
// may all be on this host.
func remoteJoin(entries []string) string {
	for _, e := range entries {
		if strings.Contains(e, "provider=") {
			continue
		}
		host := e
		if h, _, err := net.SplitHostPort(e); err == nil {
			host = h
		}
		if !IsLoopback(strings.Trim(host, "[]")) {
			return e
		}
	}
	return ""
}

// isSet reports whether field was set by a file or the environment.
func (c *Config) isSet(field string) bool {
	_, ok := c.origins[field]
	return ok
}

// inFile reports whether field's value came from a file (not the
// environment, a flag or the default).
func (c *Config) inFile(field string) bool {
	o, ok := c.origins[field]
	return ok && o.rng != nil
}

// IsLoopback reports whether host is "localhost" or a loopback IP.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameHost reports whether two listeners on host a and b could collide:
// the same address, either on every interface (an unspecified address or
// none), or the same name; "localhost" is the loopback address it binds.
func sameHost(a, b string) bool {
	ip := func(h string) net.IP {
		switch h {
		case "":
			return net.IPv4zero
		case "localhost":
			return net.IPv4(127, 0, 0, 1)
		}
		return net.ParseIP(h)
	}
	ia, ib := ip(a), ip(b)
	if ia != nil && ia.IsUnspecified() || ib != nil && ib.IsUnspecified() {
		return true
	}
	if ia == nil || ib == nil {
		return a == b
	}
	return ia.Equal(ib)
}
