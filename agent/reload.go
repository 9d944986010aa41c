package agent

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/policies"
)

// Reload applies a new configuration (nil: keep the current one) and
// re-reads the policies, all or nothing: the new configuration must pass
// every check the agent makes at start (preflight.Check: the policies, the
// ACL token file, the files the configuration names, the series bound), as
// the agent's next start would run it, and so must what the agent runs
// after the reload (config.Reloaded: the new live settings over the running
// others; a new server.enabled = false, say, waits for the restart, and the
// policies are read as the running server reads them); the policies'
// Prometheus queries must suit the running Prometheus source, and a policy
// that spreads by use needs the allocation stats the agent reads only when
// it started with one (checkAllocStats). When anything fails the agent keeps its previous configuration and policies whole and
// Reload returns why.
//
// A reload that would leave a server running policies with none is
// refused (restart the agent for that).
//
// The log level, the ACL tokens and the policies change at run time (the
// leader's next cycle comes an interval of the new policies after its
// last, not of the old ones), and so do the TLS certificate, key and CA
// when their files changed in place (rotateTLS); every
// other setting that differs from what runs, secrets included, needs a
// restart and is logged by name (never by value) at each reload until then,
// as is a setting whose other file (Nomad's or Consul's certificates)
// changed in place.
func (a *Agent) Reload(cfg *config.Config) error {
	a.cfgMu.RLock()
	old := a.cfg
	a.cfgMu.RUnlock()
	if cfg == nil {
		cfg = old
	}
	run, start, err := checkReload(old, cfg, a.opts.preflight())
	if err != nil {
		return err
	}
	pols, toks := a.opts.orFallback(a.log, run, start.Policies), start.Tokens
	a.cfgMu.RLock()
	had := len(a.pols)
	a.cfgMu.RUnlock()
	if len(pols) == 0 && had > 0 {
		// An emptied, unmounted or half-synced directory looks the same
		// as one meant to be empty: a reload never drops every policy.
		return fmt.Errorf("%s: policies.dir %s holds no policy now, and the agent runs %d: a reload keeps them rather than stop shaping every locality; restart the agent to run without policies", keepRunning, cfg.Policies.Dir, had)
	}
	if err := a.checkAllocStats(pols); err != nil {
		return fmt.Errorf("%s: %w", keepRunning, err)
	}
	// The last step that can fail changes nothing when it does.
	if err := a.setPolicyQueries(pols); err != nil {
		return fmt.Errorf("%s: %w", keepRunning, err)
	}
	a.tokens.Store(&toks)
	a.readTokens.Store(&start.ReadTokens)
	applyLogSettings(a.log, old, run, cfg)
	rotateTLS(a.log, a.tls, a.read, start)
	logChangedFiles(a.log, a.read, start.Read)
	a.cfgMu.Lock()
	a.cfg, a.pols = run, pols
	a.cfgMu.Unlock()
	select {
	case a.reloaded <- struct{}{}:
	default: // the leader loop has one to read already
	}
	if a.opts.Policies != nil {
		a.log.Info("reloaded; the agent runs the policies it started with (a replay's), which a reload does not read again: restart it to run changed ones", logKeyPolicies, len(pols))
		return nil
	}
	a.log.Info("reloaded", logKeyPolicies, len(pols))
	return nil
}

// checkAllocStats refuses policies that spread by use
// (migrate.spread_by_use) when the agent started without reading
// allocation stats, which its Nomad source and its client agents' reports
// take up only at a start: the planner would read what the allocations
// hold instead, without a word.
func (a *Agent) checkAllocStats(pols []*policies.Policy) error {
	if a.allocStats || a.nomad == nil {
		return nil
	}
	for _, p := range pols {
		if p.Migrate.SpreadByUse {
			return fmt.Errorf("policy %q sets migrate.spread_by_use, which reads each allocation's stats from Nomad; this agent started without a policy that does and reads them only after a restart", p.Name)
		}
	}
	return nil
}

const keepRunning = "reload: keeping the previous configuration and policies"

// checkReload checks a reload from the running configuration to next as
// Reload says: next whole, as the next start would run it, then what runs
// after the reload (returned with its start checks).
func checkReload(running, next *config.Config, opts preflight.Options) (*config.Config, *preflight.Start, error) {
	if _, diags := preflight.Check(next, opts); diags.HasErrors() {
		return nil, nil, fmt.Errorf("%s: %w", keepRunning, preflight.Err(diags))
	}
	run := config.Reloaded(running, next)
	start, diags := preflight.Check(run, opts)
	if err := preflight.Err(diags); err != nil {
		if waiting := restartOnly(running, next); len(waiting) > 0 {
			return nil, nil, fmt.Errorf("%s: %w (until a restart the agent runs as before with %s)", keepRunning, err, strings.Join(waiting, ", "))
		}
		return nil, nil, fmt.Errorf("%s: %w", keepRunning, err)
	}
	return run, start, nil
}

// applyLogSettings sets the log level run asks for, and logs every setting
// of next that differs from what runs and waits for a restart.
func applyLogSettings(log hclog.Logger, old, run, next *config.Config) {
	if run.LogLevel != old.LogLevel {
		log.SetLevel(hclog.LevelFromString(run.LogLevel))
	}
	for _, f := range restartOnly(old, next) {
		log.Warn("setting changed; it takes effect after a restart", "field", f)
	}
}

// tlsFiles are the settings whose files a reload reads again and rotates
// into the TLS the agent serves and dials with.
var tlsFiles = []string{"tls.cert_file", "tls.key_file", "tls.ca_file"}

// rotateTLS makes the handshakes after a reload, on the HTTP API and the
// Raft port, use the certificate, key and CA files as they are now, when
// any of them changed in place since last read (a certificate renewed
// before it expires, by Vault's PKI or a template re-rendered with
// SIGHUP). start is the reload's checks, which read the files and refused
// the reload if they are not a certificate and its key, or not PEM; read
// holds the digests last read, updated here. Connections already made
// keep what they were made with. Without TLS at the start (t nil) there
// is nothing to rotate: turning TLS on or off needs a restart.
func rotateTLS(log hclog.Logger, t *cluster.TLS, read map[string][sha256.Size]byte, start *preflight.Start) {
	if t == nil || start.TLS == nil {
		return
	}
	var changed []string
	for _, f := range tlsFiles {
		if now, ok := start.Read[f]; ok && read[f] != now {
			changed = append(changed, f)
		}
	}
	if len(changed) == 0 {
		return
	}
	t.Rotate(start.TLS.Certificate, start.TLS.CAs)
	for _, f := range tlsFiles {
		if now, ok := start.Read[f]; ok {
			read[f] = now
		}
	}
	args := []any{"changed", strings.Join(changed, ", ")}
	if leaf := start.TLS.Certificate.Leaf; leaf != nil {
		args = append(args, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	log.Info("TLS certificate rotated; new connections use it", args...)
}

// logChangedFiles logs each setting whose file (a certificate, key or CA)
// holds something else now than at the agent's start, at the same path: a
// certificate rotated in place is read at the next start, so the agent
// still serves and presents the one it started with. (A setting naming
// another file is logged by applyLogSettings.)
func logChangedFiles(log hclog.Logger, started, now map[string][sha256.Size]byte) {
	for _, f := range slices.Sorted(maps.Keys(now)) {
		if was, ok := started[f]; ok && was != now[f] {
			log.Warn("setting's file changed; it is read again after a restart, and the agent uses what it read at its start until then", "field", f)
		}
	}
}

// restartOnly names, by their configuration paths ("nomad.token"), the
// settings that differ between old and cfg and only apply at start. It
// compares values, secrets included, not their redacted forms.
func restartOnly(old, cfg *config.Config) []string {
	var out []string
	var walk func(prefix string, a, b reflect.Value)
	walk = func(prefix string, a, b reflect.Value) {
		t := a.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			path := prefix + name
			if prefix == "" && (slices.Contains(config.LiveSettings, name) || name == "dev_mode") {
				continue
			}
			av, bv := a.Field(i), b.Field(i)
			if f.Type.Kind() == reflect.Struct {
				walk(path+".", av, bv)
				continue
			}
			if !reflect.DeepEqual(av.Interface(), bv.Interface()) {
				out = append(out, path)
			}
		}
	}
	walk("", reflect.ValueOf(*old), reflect.ValueOf(*cfg))
	return out
}
