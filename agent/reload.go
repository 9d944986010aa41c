package agent

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/collect"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/plugins/source"
	promsource "github.com/foreshape/foreshape/plugins/source/prometheus"
	"github.com/foreshape/foreshape/policies"
)

// Reload applies a new configuration (nil: keep the current one) and
// re-reads the policies, all or nothing: everything that can fail (the
// policies, the ACL token file, the policies' Prometheus queries, the
// series bound) is checked first, and when anything fails the agent keeps
// its previous configuration and policies whole and Reload returns why.
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
	pols := a.opts.Policies
	if pols == nil {
		var err error
		if pols, err = loadPolicies(cfg.Policies.Dir); err != nil {
			return fmt.Errorf("%s: %w", keep, err)
		}
	}
	toks, err := readTokens(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", keep, err)
	}
	if err := checkSeriesBudget(pols, a.prom != nil, a.opts.MaxSeries); err != nil {
		return fmt.Errorf("%s: %w", keep, err)
	}
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

// readTokens reads the API tokens acl.token_file holds (none when ACLs are
// off), one a line; '#' starts a comment line.
func readTokens(cfg *config.Config) ([]string, error) {
	if !cfg.ACL.Enabled {
		return []string{}, nil
	}
	b, err := os.ReadFile(cfg.ACL.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("agent: acl.token_file: %w", err)
	}
	var toks []string
	for _, line := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			toks = append(toks, t)
		}
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("agent: acl.token_file %s holds no token; every request would be refused", cfg.ACL.TokenFile)
	}
	return toks, nil
}

// checkSeriesBudget refuses policies whose localities alone need more
// series than the leader stores (max; zero means collect.DefaultMaxSeries):
// each locality has Nomad's four metrics, with a Prometheus source the
// metrics of its default queries (IOPS, reads and writes), and the metrics
// of the policies' own queries.
func checkSeriesBudget(pols []*policies.Policy, prometheus bool, max int) error {
	if max <= 0 {
		max = collect.DefaultMaxSeries
	}
	metrics := map[string]map[string]bool{} // locality → metrics
	add := func(l source.Locality, ms ...string) {
		if metrics[l.String()] == nil {
			metrics[l.String()] = map[string]bool{}
		}
		for _, m := range ms {
			metrics[l.String()][m] = true
		}
	}
	n := 0
	for _, l := range localities(pols) {
		add(l, source.CPUPercent, source.MemoryPercent, source.CPUMHz, source.MemoryMB)
		if prometheus {
			for m := range promsource.DefaultQueries() {
				add(l, m)
			}
		}
	}
	for _, p := range pols {
		for m := range p.Forecast.Queries {
			add(p.Locality, m)
		}
	}
	for _, ms := range metrics {
		n += len(ms)
	}
	if n > max {
		return fmt.Errorf("agent: the policies' %d localities need %d series, more than the %d the series store holds; shape fewer localities", len(metrics), n, max)
	}
	return nil
}
