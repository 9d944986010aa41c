package agent

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
)

// Reload applies a new configuration (nil: keep the current one) and
// re-reads the policies, all or nothing: the new configuration and
// policies must pass every check the agent makes at start (preflight.Check:
// the policies, the ACL token file, the files the configuration names, the
// series bound), and the policies' Prometheus queries must suit the running
// Prometheus source; when anything fails the agent keeps its previous
// configuration and policies whole and Reload returns why.
//
// The log level, the ACL tokens and the policies change at run time; every
// other changed setting, secrets included, needs a restart and is logged by
// name (never by value).
func (a *Agent) Reload(cfg *config.Config) error {
	a.cfgMu.RLock()
	old := a.cfg
	a.cfgMu.RUnlock()
	if cfg == nil {
		cfg = old
	}
	const keep = "reload: keeping the previous configuration and policies"
	start, diags := preflight.Check(cfg, a.opts.preflight())
	if err := preflight.Err(diags); err != nil {
		return fmt.Errorf("%s: %w", keep, err)
	}
	pols, toks := start.Policies, start.Tokens
	// The last step that can fail changes nothing when it does.
	if err := a.setPolicyQueries(pols); err != nil {
		return fmt.Errorf("%s: %w", keep, err)
	}
	a.tokens.Store(&toks)
	if cfg.LogLevel != old.LogLevel {
		a.log.SetLevel(hclog.LevelFromString(cfg.LogLevel))
	}
	for _, f := range restartOnly(old, cfg) {
		a.log.Warn("setting changed; it takes effect after a restart", "field", f)
	}
	a.cfgMu.Lock()
	a.cfg, a.pols = cfg, pols
	a.cfgMu.Unlock()
	a.log.Info("reloaded", logKeyPolicies, len(pols))
	return nil
}

// liveSettings change on reload; every other setting needs a restart.
var liveSettings = map[string]bool{"log_level": true, "acl": true, "policies": true}

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
			if prefix == "" && (liveSettings[name] || name == "dev_mode") {
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
