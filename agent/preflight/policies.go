package preflight

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/collect"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/plugins/source"
	promsource "github.com/foreshape/foreshape/plugins/source/prometheus"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/plugins/target/nomadjob"
	"github.com/foreshape/foreshape/policies"
)

// Policies checks loaded policies for what the agent refuses in them
// beyond the policy language (policies.Loader): with cfg, against that
// agent configuration, as Check does; with cfg nil, only what the agent
// refuses under any configuration.
//
// What needs cfg: a policy's forecast.queries need prometheus.address, and
// the series the policies need count Prometheus's metrics when it is set.
// What holds under any configuration: the policies need no more series
// than the store holds even without Prometheus, and every scale target has
// a runtime.
func Policies(cfg *config.Config, pols []*policies.Policy, opts Options) hcl.Diagnostics {
	// The scale targets are built as the agent builds them, which performs
	// no I/O; this client is never called.
	nomad, err := nomadapi.NewClient(&nomadapi.Config{Address: config.DefaultNomadAddress})
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot check scale targets", Detail: err.Error()}}
	}
	return checkPolicies(cfg, pols, opts, nomad)
}

// checkPolicies is Policies with the Nomad client scale targets are built
// with (nil: the agent acts on nothing, so builds none).
func checkPolicies(cfg *config.Config, pols []*policies.Policy, opts Options, nomad *nomadapi.Client) hcl.Diagnostics {
	var diags hcl.Diagnostics
	first := map[string]*policies.Policy{}
	for _, p := range pols {
		loc := p.Locality.String()
		f, seen := first[loc]
		if !seen {
			first[loc] = p
			continue
		}
		diags = append(diags, diagAt(hcl.DiagError, p.DeclRange, "Two policies shape one locality",
			"Policies %q (%s) and %q both shape %s. The planner plans a locality by one policy (its forecast, headroom line and the room held for moves into it), so half of what the second says would be ignored: merge them into one policy, or give each its own locality.",
			f.Name, f.DeclRange.String(), p.Name, loc))
	}
	prometheus := false
	if cfg != nil && !opts.Sources {
		prometheus = cfg.Prometheus.Address != ""
		if !prometheus {
			for _, p := range pols {
				if len(p.Forecast.Queries) == 0 {
					continue
				}
				diags = append(diags, diagAt(hcl.DiagError, p.Forecast.QueriesRange, "Missing prometheus.address",
					"Policy %q names Prometheus queries (forecast.queries), but the agent configuration sets no prometheus.address to run them against: set it, or remove the queries.",
					p.Name))
			}
		}
	}
	if d := seriesBudget(cfg, pols, prometheus, opts); d != nil {
		diags = append(diags, d)
	}
	diags = append(diags, nested(pols)...)
	diags = append(diags, drainsAtOnce(pols)...)
	diags = append(diags, sharedQueries(pols)...)
	diags = append(diags, sameGroupScaled(cfg, pols)...)
	if !opts.Now.IsZero() {
		diags = append(diags, pastSchedules(pols, opts.Now)...)
	}
	if nomad != nil {
		diags = append(diags, targets(pols, nomad)...)
	}
	return diags
}

// nested warns of a policy whose locality holds every node of another's
// (dc1 and dc1/default/web): those nodes count in both localities'
// forecasts and capacity, so their demand is planned for twice. Localities
// that only may share nodes (dc1/*/web and dc1/batch) are not: nothing in
// the policies says they do.
func nested(pols []*policies.Policy) hcl.Diagnostics {
	var diags hcl.Diagnostics
	holds := func(a, b policies.Locality) bool {
		in := func(x, y string) bool { return x == "" || x == y }
		return a != b && in(a.Datacenter, b.Datacenter) && in(a.NodePool, b.NodePool) && in(a.NodeClass, b.NodeClass)
	}
	for i, p := range pols {
		for _, q := range pols[:i] {
			outer, inner := p, q
			if !holds(outer.Locality, inner.Locality) {
				outer, inner = q, p
				if !holds(outer.Locality, inner.Locality) {
					continue
				}
			}
			diags = append(diags, diagAt(hcl.DiagWarning, p.DeclRange, "Nested localities",
				"Policy %q shapes %s, which holds every node of policy %q's %s (%s): those nodes count in both localities' forecasts and capacity, so their demand is planned for twice. Shape localities that share no node.",
				outer.Name, outer.Locality, inner.Name, inner.Locality, q.DeclRange))
		}
	}
	return diags
}

// drainsAtOnce warns of drain schedules of two policies that take some
// nodes in windows that overlap (policies.DrainsOverlap; the loader
// warns of two such in one policy). The planner moves each of those
// nodes' allocations once, for the drain whose lead time reaches it
// first, due by the earlier window's start; a drain of another locality
// without nodes or migrate.targets adds that work to the forecast of
// each policy that declares one, each planning as if it alone received
// it. A warning, as for nested localities: nothing is done twice, and
// two teams' maintenance windows that meet must not stop either's
// policies from loading.
func drainsAtOnce(pols []*policies.Policy) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for i, p := range pols {
		for si := range p.Schedules {
			b := &p.Schedules[si]
			if b.Action != policies.ActionDrain {
				continue
			}
		earlier:
			for _, q := range pols[:i] {
				for sj := range q.Schedules {
					a := &q.Schedules[sj]
					o, ok := policies.DrainsOverlap(a, b)
					if !ok {
						continue
					}
					wa, wb := o.Windows()
					diags = append(diags, diagAt(hcl.DiagWarning, b.DeclRange, "Drains of shared nodes at once",
						"Policy %q, schedule %q and policy %q, schedule %q (%s) both drain the nodes of %s (%q in %q, %q in %q) in windows that overlap: %q's of %s and %q's of %s, the first pair that does from 2000-01-01, where this check reads the crons from. "+
							"The planner moves each of those nodes' allocations once, for the drain whose lead time reaches it first, due by the earlier window's start; a drain of another locality without nodes or migrate.targets adds their work to the forecast of the policy that declares it, so each of the two would plan as if it alone received it. "+
							"Drain them in one policy's schedule, or move a window so that the two do not overlap.",
						p.Name, b.Name, q.Name, a.Name, a.DeclRange, o.SharedNodes(a, b), o.B.String(), p.Name, o.A.String(), q.Name, a.Name, wa, b.Name, wb))
					break earlier // one warning a schedule: the first policy it clashes with
				}
			}
		}
	}
	return diags
}

// sharedQueries warns of a forecast query two policies of different
// localities name with the same text and no {{.Matchers}} or
// {{.Locality}}: it reads the same series for both, so neither forecast is
// its locality's.
func sharedQueries(pols []*policies.Policy) hcl.Diagnostics {
	var diags hcl.Diagnostics
	type use struct {
		pol    *policies.Policy
		metric string
	}
	first := map[string]use{}
	for _, p := range pols {
		for _, metric := range slices.Sorted(maps.Keys(p.Forecast.Queries)) {
			q := p.Forecast.Queries[metric]
			if strings.Contains(q, ".Matchers") || strings.Contains(q, ".Locality") {
				continue
			}
			f, seen := first[q]
			if !seen {
				first[q] = use{p, metric}
				continue
			}
			if f.pol.Locality == p.Locality {
				continue
			}
			diags = append(diags, diagAt(hcl.DiagWarning, p.Forecast.QueriesRange, "One query for two localities",
				"Policy %q's forecast.queries.%s and policy %q's forecast.queries.%s (%s) are the same query, %q, and it selects no locality ({{.Matchers}}, {{.Locality}}): %s and %s both read its one series, so neither forecast is its locality's. Add {{.Matchers}} to its selector.",
				p.Name, metric, f.pol.Name, f.metric, f.pol.Forecast.QueriesRange, q, p.Locality, f.pol.Locality))
		}
	}
	return diags
}

// pastSchedules warns of schedules whose cron names only past times (a
// one-off maintenance window, "0 2 14 3 * 2026", once it is over): they
// do nothing any more. A warning, not an error: a window that passed must
// not stop the agent from starting again.
func pastSchedules(pols []*policies.Policy, now time.Time) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, p := range pols {
		for _, s := range p.Schedules {
			if s.Expr == nil || !s.Next(now.Add(-s.Duration)).IsZero() {
				continue
			}
			diags = append(diags, diagAt(hcl.DiagWarning, s.DeclRange, "Schedule over",
				"Policy %q, schedule %q: cron %q names no time whose window ends after now (%s UTC), so the schedule does nothing any more; remove it.",
				p.Name, s.Name, s.Cron, now.UTC().Format("2006-01-02 15:04")))
		}
	}
	return diags
}

// sameGroupScaled refuses two scale blocks whose nomad-job targets set the
// count of one task group: each would act on its own forecast and cooldown,
// undoing the other's changes. An unset namespace or region is the agent's
// (nomad.namespace, else Nomad's "default"; nomad.region), so with cfg
// nil only equal settings match: an unset namespace beside "default" is
// one group only in an agent whose namespace is the default one. With cfg
// and neither the target nor nomad.region naming a region, the target's
// region is that of the Nomad agent foreshape talks to, which no file
// says: it matches every region, and the error asks for the region in
// both.
func sameGroupScaled(cfg *config.Config, pols []*policies.Policy) hcl.Diagnostics {
	type where struct {
		region        string
		policy, scale string
		rng           hcl.Range
	}
	var diags hcl.Diagnostics
	seen := map[[3]string][]where{} // namespace, job, group → scale blocks
	for _, p := range pols {
		for _, sc := range p.Scales {
			nj, ok := sc.Target.Config.(*nomadjob.Config)
			if !ok {
				continue
			}
			ns, region := nj.Namespace, nj.Region
			if cfg != nil {
				ns, region = cmp.Or(ns, cfg.Nomad.Namespace, "default"), cmp.Or(region, cfg.Nomad.Region)
			}
			key := [3]string{ns, nj.Job, nj.Group}
			i := slices.IndexFunc(seen[key], func(f where) bool {
				return f.region == region || (cfg != nil && (f.region == "" || region == ""))
			})
			if i < 0 {
				seen[key] = append(seen[key], where{region, p.Name, sc.Name, sc.DeclRange})
				continue
			}
			f := seen[key][i]
			why := ""
			if f.region != region {
				named, namer, other := region, sc.Name, f.scale
				if f.region != "" {
					named, namer, other = f.region, f.scale, sc.Name
				}
				why = fmt.Sprintf(" Scale %q names region %q and scale %q names none, nor does nomad.region: its region is that of the Nomad agent foreshape talks to, which may be %q. If the two regions differ, name the region in both.",
					namer, named, other, named)
			}
			diags = append(diags, diagAt(hcl.DiagError, sc.DeclRange, "Two scale blocks scale one task group",
				"Policy %q, scale %q and policy %q, scale %q (%s) both set the count of group %q of job %q: each would undo the other's changes. Keep one.%s",
				p.Name, sc.Name, f.policy, f.scale, f.rng, nj.Group, nj.Job, why))
		}
	}
	return diags
}

// seriesBudget refuses policies whose localities alone need more series
// than the leader stores (opts.MaxSeries; zero means
// collect.DefaultMaxSeries): each locality has Nomad's four metrics, with a
// Prometheus source the metrics of its default queries (IOPS, reads and
// writes), and the metrics of the policies' own queries. The error is at
// the policy whose locality takes them past the bound, in the policies'
// order.
func seriesBudget(cfg *config.Config, pols []*policies.Policy, prometheus bool, opts Options) *hcl.Diagnostic {
	max := opts.MaxSeries
	if max <= 0 {
		max = collect.DefaultMaxSeries
	}
	metrics := map[string]map[string]bool{} // locality → metrics
	n := 0                                  // series: the metrics of every locality
	add := func(l policies.Locality, ms ...string) {
		if metrics[l.String()] == nil {
			metrics[l.String()] = map[string]bool{}
		}
		for _, m := range ms {
			if !metrics[l.String()][m] {
				metrics[l.String()][m] = true
				n++
			}
		}
	}
	base := func(l policies.Locality) {
		add(l, source.CPUPercent, source.MemoryPercent, source.CPUMHz, source.MemoryMB)
		if prometheus {
			for m := range promsource.DefaultQueries() {
				add(l, m)
			}
		}
	}
	// In the policies' order, so that the error can name the policy at
	// which they pass the bound.
	var over *policies.Policy
	for _, p := range pols {
		base(p.Locality)
		for _, s := range p.Schedules {
			if s.Action == policies.ActionDrain {
				for _, l := range s.Localities {
					base(l)
				}
			}
		}
		for m := range p.Forecast.Queries {
			add(p.Locality, m)
		}
		if n > max && over == nil {
			over = p
		}
	}
	if n <= max {
		return nil
	}
	d := &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Too many series",
		Detail: fmt.Sprintf("The policies' %d localities need %d series, more than the %d the series store holds; shape fewer localities. They pass it at policy %q.",
			len(metrics), n, max, over.Name),
		Subject: over.DeclRange.Ptr(),
	}
	if cfg != nil && opts.Policies == nil {
		d.Detail += fmt.Sprintf(" (The policies are policies.dir's, %s.)", cfg.Policies.Dir)
		cfg.At(d, "policies.dir")
	}
	return d
}

// targets builds every scale block's target as the agent does when it
// first scales, so that a target without a runtime is refused at start
// rather than when it is needed.
func targets(pols []*policies.Policy, nomad *nomadapi.Client) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, p := range pols {
		for _, sc := range p.Scales {
			if _, err := target.New(sc.Target.Plugin, sc.Target.Config, target.Env{Nomad: nomad}); err != nil {
				diags = append(diags, diagAt(hcl.DiagError, sc.DeclRange, "Invalid scale target",
					"Policy %q, scale %q: the agent cannot run its %s target: %v.", p.Name, sc.Name, sc.Target.Plugin, err))
			}
		}
	}
	return diags
}

// diagAt is a diagnostic of severity sev about the block at rng.
func diagAt(sev hcl.DiagnosticSeverity, rng hcl.Range, summary, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: &rng}
}
