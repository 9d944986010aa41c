package policies

import (
	"fmt"
	"math/bits"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // schedule.time_zone on hosts without a zone database

	"github.com/hashicorp/cronexpr"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/querytmpl"
	"github.com/foreshape/foreshape/policies/hclfield"
)

// The decode structs mirror the HCL text. Every setting stays an
// hcl.Expression so translation can point at it; absent attributes decode
// to a null expression and keep their default. gohcl cannot require an
// expression attribute, so all are tagged optional and translation checks
// the required ones with hclfield.Required.

type fileHCL struct {
	Shaping []*shapingHCL `hcl:"shaping,block"`
}

type shapingHCL struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Locality  *localityHCL   `hcl:"locality,block"`
	Forecast  *forecastHCL   `hcl:"forecast,block"`
	Headroom  *headroomHCL   `hcl:"headroom,block"`
	Reserve   *reserveHCL    `hcl:"reserve,block"`
	Scales    []*scaleHCL    `hcl:"scale,block"`
	Migrate   *migrateHCL    `hcl:"migrate,block"`
	Schedules []*scheduleHCL `hcl:"schedule,block"`
	DeclRange hcl.Range      `hcl:",def_range"`

	ForecastOnly hcl.Expression `hcl:"forecast_only,optional"`

	// twoLocalities says the decode found a second locality block (and
	// reported it): Locality is nil then, but not missing.
	twoLocalities bool
}

type localityHCL struct {
	Datacenter hcl.Expression `hcl:"datacenter,optional"`
	NodePool   hcl.Expression `hcl:"node_pool,optional"`
	NodeClass  hcl.Expression `hcl:"node_class,optional"`
	DeclRange  hcl.Range      `hcl:",def_range"`
}

type forecastHCL struct {
	Model       hcl.Expression `hcl:"model,optional"`
	Horizon     hcl.Expression `hcl:"horizon,optional"`
	Step        hcl.Expression `hcl:"step,optional"`
	History     hcl.Expression `hcl:"history,optional"`
	Seasonality hcl.Expression `hcl:"seasonality,optional"`
	Quantile    hcl.Expression `hcl:"quantile,optional"`
	Queries     hcl.Expression `hcl:"queries,optional"`
	DeclRange   hcl.Range      `hcl:",def_range"`
}

type headroomHCL struct {
	CPU    hcl.Expression `hcl:"cpu,optional"`
	Memory hcl.Expression `hcl:"memory,optional"`
	IOPS   hcl.Expression `hcl:"iops,optional"`
}

type reserveHCL struct {
	Enabled   hcl.Expression `hcl:"enabled,optional"`
	Priority  hcl.Expression `hcl:"priority,optional"`
	LeadTime  hcl.Expression `hcl:"lead_time,optional"`
	TTL       hcl.Expression `hcl:"ttl,optional"`
	MaxCPU    hcl.Expression `hcl:"max_cpu,optional"`
	MaxMemory hcl.Expression `hcl:"max_memory,optional"`
	DeclRange hcl.Range      `hcl:",def_range"`
}

type scaleHCL struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Min       hcl.Expression `hcl:"min,optional"`
	Max       hcl.Expression `hcl:"max,optional"`
	Cooldown  hcl.Expression `hcl:"cooldown,optional"`
	Targets   []*targetHCL   `hcl:"target,block"`
	DeclRange hcl.Range      `hcl:",def_range"`
}

type targetHCL struct {
	Plugin      string    `hcl:"plugin,label"`
	PluginRange hcl.Range `hcl:"plugin,label_range"`
	Body        hcl.Body  `hcl:",remain"`
	DeclRange   hcl.Range `hcl:",def_range"`
}

type migrateHCL struct {
	MaxParallel hcl.Expression `hcl:"max_parallel,optional"`
	Strategy    hcl.Expression `hcl:"strategy,optional"`
	LeadTime    hcl.Expression `hcl:"lead_time,optional"`
	Rebalance   hcl.Expression `hcl:"rebalance,optional"`
	Spread      hcl.Expression `hcl:"spread,optional"`
	SpreadByUse hcl.Expression `hcl:"spread_by_use,optional"`
	Targets     hcl.Expression `hcl:"targets,optional"`
	Priority    *priorityHCL   `hcl:"priority,block"`
}

type priorityHCL struct {
	RelieveHotspot hcl.Expression `hcl:"relieve_hotspot,optional"`
	Critical       hcl.Expression `hcl:"critical,optional"`
	Age            hcl.Expression `hcl:"age,optional"`
	DeclRange      hcl.Range      `hcl:",def_range"`
}

type scheduleHCL struct {
	Name       string         `hcl:"name,label"`
	NameRange  hcl.Range      `hcl:"name,label_range"`
	Cron       hcl.Expression `hcl:"cron,optional"`
	Duration   hcl.Expression `hcl:"duration,optional"`
	Action     hcl.Expression `hcl:"action,optional"`
	Localities hcl.Expression `hcl:"localities,optional"`
	Nodes      hcl.Expression `hcl:"nodes,optional"`
	Factor     hcl.Expression `hcl:"factor,optional"`
	TimeZone   hcl.Expression `hcl:"time_zone,optional"`
	DeclRange  hcl.Range      `hcl:",def_range"`
}

// nomadNameProblem says why a locality's datacenter or node pool (field
// "datacenter" or "node_pool", v not "*") can be no Nomad node's, so that
// the policy would match no node: "" when it can. Nomad refuses a client
// whose datacenter holds '*' (a job's datacenters may be globs, a node's
// are not), and a node pool name outside [A-Za-z0-9_-]{1,128} or "all"
// (its built-in pool that a job names to run on every node, which no
// client may join).
func nomadNameProblem(field, v string) string {
	switch {
	case field == "datacenter" && strings.Contains(v, "*"):
		return fmt.Sprintf(`datacenter %q is not a glob: a locality names one datacenter, or "*" for any, and no Nomad datacenter's name holds '*' (a job's datacenters may be globs, a node's are not), so it matches no node`, v)
	case field == "node_pool" && v == "all":
		return `node pool "all" is Nomad's built-in pool that a job names to run on every node, and no node is in it (a client cannot join it), so it matches no node; leave node_pool out, or use "*", for every pool`
	case field == "node_pool" && !nodePoolRE.MatchString(v):
		return fmt.Sprintf(`node pool %q is no Nomad node pool's name (letters, digits, '-' and '_', at most 128), so it matches no node`, v)
	}
	return ""
}

// nodePoolRE is what Nomad's node pool names look like.
var nodePoolRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

// localityNameProblem is nomadNameProblem for l's datacenter and node
// pool.
func localityNameProblem(l Locality) string {
	if l.Datacenter != "" {
		if p := nomadNameProblem("datacenter", l.Datacenter); p != "" {
			return p
		}
	}
	if l.NodePool != "" {
		return nomadNameProblem("node_pool", l.NodePool)
	}
	return ""
}

// nameRE is what policy, scale and schedule names may look like: they
// appear in logs, metrics labels and the CLI.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func checkName(kind, name string, rng hcl.Range) hcl.Diagnostics {
	if nameRE.MatchString(name) {
		return nil
	}
	return hcl.Diagnostics{hclfield.Invalid(rng, kind+" name",
		"%q must start with a letter or digit and hold only letters, digits, '-', '_' or '.' (at most 63).", name)}
}

// translate validates one decoded shaping block and turns it into a Policy.
func translate(s *shapingHCL) (*Policy, hcl.Diagnostics) {
	p := defaultPolicy(s.Name)
	p.DeclRange = s.DeclRange
	diags := checkName("policy", s.Name, s.NameRange)

	diags = append(diags, translateLocality(s, p)...)
	if v, ok, d := hclfield.Bool(s.ForecastOnly, "forecast_only"); ok {
		p.ForecastOnly = v
	} else {
		diags = append(diags, d...)
	}
	if s.Forecast != nil {
		diags = append(diags, translateForecast(s.Forecast, &p.Forecast)...)
	}
	if s.Headroom != nil {
		diags = append(diags, translateHeadroom(s.Headroom, &p.Headroom)...)
	}
	if s.Reserve != nil {
		diags = append(diags, translateReserve(s.Reserve, &p.Reserve)...)
	}
	if s.Migrate != nil {
		diags = append(diags, translateMigrate(s.Migrate, &p.Migrate, p.Locality)...)
	}
	if p.Migrate.LeadTime == 0 {
		p.Migrate.LeadTime = p.Reserve.LeadTime
	}
	seen := map[string]hcl.Range{}
	for _, sc := range s.Scales {
		if prev, dup := seen[sc.Name]; dup {
			diags = append(diags, duplicate("scale", sc.Name, sc.NameRange, prev))
			continue
		}
		seen[sc.Name] = sc.NameRange
		scale, d := translateScale(sc)
		diags = append(diags, d...)
		if scale != nil {
			p.Scales = append(p.Scales, *scale)
		}
	}
	seen = map[string]hcl.Range{}
	var decoded []*scheduleHCL // each of p.Schedules's block
	for _, sh := range s.Schedules {
		if prev, dup := seen[sh.Name]; dup {
			diags = append(diags, duplicate("schedule", sh.Name, sh.NameRange, prev))
			continue
		}
		seen[sh.Name] = sh.NameRange
		sched, d := translateSchedule(sh, p.Locality)
		diags = append(diags, d...)
		if sched != nil {
			p.Schedules = append(p.Schedules, *sched)
			decoded = append(decoded, sh)
		}
	}
	if !diags.HasErrors() {
		diags = append(diags, drainsAtOnce(p, decoded)...)
	}
	return p, diags
}

// drainsAtOnce warns of two drain schedules of p that take some nodes in
// windows that overlap (DrainsOverlap), at the later one: the planner
// moves each of those nodes' allocations once, for the window whose lead
// time reaches it first (to its targets, off its nodes), due by the
// earlier window's start, and the forecast adds their work once (see
// predict's takeOnce), so one of the two drains them for the other. A
// warning, not a refusal, as for two policies (preflight): nothing is
// done twice, and a weekly maintenance that meets a daily one is what an
// operator may well mean. decoded holds each schedule's block, for the
// place of its locality.
func drainsAtOnce(p *Policy, decoded []*scheduleHCL) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for j := range p.Schedules {
		b := &p.Schedules[j]
		for i := range p.Schedules[:j] {
			a := &p.Schedules[i]
			o, ok := DrainsOverlap(a, b)
			if !ok {
				continue
			}
			sh := decoded[j]
			field, rng := "schedule."+b.Name+".cron", sh.Cron.Range()
			if hclfield.IsSet(sh.Localities) {
				field, rng = "schedule."+b.Name+".localities", sh.Localities.Range()
				if elems, ok := hclfield.ListElements(sh.Localities); ok {
					if k := slices.Index(b.Localities, o.B); k >= 0 && k < len(elems) {
						field, rng = fmt.Sprintf("schedule.%s.localities[%d]", b.Name, k), elems[k].Range()
					}
				}
			}
			as, bs := listedAs(o.A, a, p.Locality), listedAs(o.B, b, p.Locality)
			where := fmt.Sprintf("%s in %q, %s in %q", bs, b.Name, as, a.Name)
			if o.A == o.B {
				where = "both list " + bs
			}
			wa, wb := o.Windows()
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Drains of shared nodes at once", Subject: rng.Ptr(),
				Detail: fmt.Sprintf("%s: schedules %q and %q (%s) both drain the nodes of %s (%s) in windows that overlap: %q's of %s and %q's of %s, the first pair that does from 2000-01-01, where this check reads the crons from. "+
					"The planner moves each of those nodes' allocations once, for the window whose lead time reaches it first, due by the earlier start, and the forecast takes their work once: one of the two drains them for the other. "+
					"If that is not meant, drain them in one schedule, move a window so that the two do not overlap, or list localities or nodes the two do not share.",
					field, b.Name, a.Name, a.DeclRange, o.SharedNodes(a, b), where, a.Name, wa, b.Name, wb)})
		}
	}
	return diags
}

// listedAs names locality l as schedule s lists it: quoted, or, when s
// lists none, as the policy's own.
func listedAs(l Locality, s *Schedule, own Locality) string {
	if len(s.Localities) == 1 && l == own {
		return fmt.Sprintf("%q, the policy's own", l.String())
	}
	return fmt.Sprintf("%q", l.String())
}

func duplicate(kind, name string, rng, prev hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Duplicate %s %q", kind, name),
		Detail:   fmt.Sprintf("A %s named %q was already defined at %s. Names must be unique.", kind, name, prev),
		Subject:  rng.Ptr(),
	}
}

func translateLocality(s *shapingHCL, p *Policy) hcl.Diagnostics {
	if s.Locality == nil && s.twoLocalities {
		return nil
	}
	if s.Locality == nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Missing locality block",
			Detail:   fmt.Sprintf("Policy %q must say which capacity it shapes with a locality block naming a datacenter, node_pool or node_class.", s.Name),
			Subject:  s.NameRange.Ptr(),
		}}
	}
	l := s.Locality
	var diags hcl.Diagnostics
	for _, f := range []struct {
		expr hcl.Expression
		name string
		dst  *string
	}{
		{l.Datacenter, "locality.datacenter", &p.Locality.Datacenter},
		{l.NodePool, "locality.node_pool", &p.Locality.NodePool},
		{l.NodeClass, "locality.node_class", &p.Locality.NodeClass},
	} {
		v, ok, d := hclfield.NonEmptyString(f.expr, f.name)
		diags = append(diags, d...)
		if !ok {
			continue
		}
		if strings.Contains(v, "/") || hasSpace(v) {
			diags = append(diags, hclfield.Invalid(f.expr.Range(), f.name, "%q must not contain '/' or whitespace.", v))
			continue
		}
		if problem := nomadNameProblem(strings.TrimPrefix(f.name, "locality."), v); v != "*" && problem != "" {
			diags = append(diags, hclfield.Invalid(f.expr.Range(), f.name, "%s.", upperFirst(problem)))
			continue
		}
		if v != "*" {
			*f.dst = v
		}
	}
	if !diags.HasErrors() && p.Locality == (Locality{}) {
		diags = append(diags, hclfield.Invalid(l.DeclRange, "locality",
			"The locality block must name at least one of datacenter, node_pool or node_class."))
	}
	if !diags.HasErrors() {
		if err := p.Locality.checkScope(); err != nil {
			diags = append(diags, hclfield.Invalid(l.Datacenter.Range(), "locality.datacenter", "%s.", err))
		}
	}
	return diags
}

func translateForecast(f *forecastHCL, out *Forecast) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if v, ok, d := hclfield.Enum(f.Model, "forecast.model", Models); ok {
		out.Model = v
	} else {
		diags = append(diags, d...)
	}
	durations := []struct {
		expr hcl.Expression
		name string
		dst  *time.Duration
	}{
		{f.Horizon, "forecast.horizon", &out.Horizon},
		{f.Step, "forecast.step", &out.Step},
		{f.History, "forecast.history", &out.History},
	}
	bad := false
	for _, dd := range durations {
		v, ok, d := hclfield.Duration(dd.expr, dd.name)
		diags = append(diags, d...)
		if d.HasErrors() {
			bad = true
		}
		if !ok {
			continue
		}
		if v <= 0 {
			diags = append(diags, hclfield.Invalid(dd.expr.Range(), dd.name, "The duration must be positive."))
			bad = true
			continue
		}
		*dd.dst = v
	}
	if v, ok, d := hclfield.Number(f.Quantile, "forecast.quantile"); ok {
		if v <= 0 || v >= 1 {
			diags = append(diags, hclfield.Invalid(f.Quantile.Range(), "forecast.quantile",
				"%s is outside (0,1): the planning quantile must be strictly between 0 and 1, such as 0.9.", fmtNum(v)))
		} else {
			out.Quantile = v
		}
	} else {
		diags = append(diags, d...)
	}
	if q, ok, d := hclfield.StringMap(f.Queries, "forecast.queries"); ok {
		for _, name := range sortedKeys(q) {
			field := "forecast.queries." + name
			rng := itemRange(f.Queries, name)
			switch {
			case !metricRE.MatchString(name):
				diags = append(diags, hclfield.Invalid(rng, field,
					"%q is not a metric name: use lower-case letters, digits and '_', starting with a letter, at most 63 characters.", name))
			case builtinMetric[name]:
				diags = append(diags, hclfield.Invalid(rng, field,
					"%q is collected from Nomad; name the query's metric something else.", name))
			default:
				tmpl, err := querytmpl.Parse(name, q[name])
				if err != nil {
					diags = append(diags, hclfield.Invalid(rng, field,
						"Not a PromQL template (Go template syntax over {{.Matchers}}): %v.", err))
					continue
				}
				if why := querytmpl.PromQLProblem(tmpl); why != "" {
					diags = append(diags, hclfield.Warning(rng, field, "%s. %s.", why, promQLRefused))
				}
				if out.Queries == nil {
					out.Queries = map[string]string{}
					out.QueriesRange = f.Queries.Range()
				}
				out.Queries[name] = q[name]
			}
		}
	} else {
		diags = append(diags, d...)
	}
	if !bad && !hclfield.IsSet(f.History) {
		// The default history is what the series store keeps at the step,
		// at most DefaultHistory.
		out.History = defaultHistory(out.Step)
	}
	if !bad {
		diags = append(diags, checkGrid(f, out)...)
	}
	sd := translateSeasonality(f, out, !bad)
	diags = append(diags, sd...)
	if !sd.HasErrors() {
		diags = append(diags, checkModelSeasons(f, out)...)
	}
	return diags
}

// checkModelSeasons refuses a list of seasons the chosen model does not
// read: naive uses none, and seasonal-naive always repeats the value one
// day earlier (agent/forecast), so the list would do nothing.
func checkModelSeasons(f *forecastHCL, out *Forecast) hcl.Diagnostics {
	if out.AutoSeasonality || len(out.Seasonality) == 0 {
		return nil
	}
	const others = `"auto", "ets", "arima", "theta" or "mstl"`
	switch {
	case out.Model == "naive":
		return hcl.Diagnostics{hclfield.Invalid(f.Seasonality.Range(), "forecast.seasonality",
			"Model \"naive\" forecasts the last value and reads no season, so the seasons listed would do nothing. Remove seasonality, or choose a model that reads them: %s.", others)}
	case out.Model == "seasonal-naive" && !(len(out.Seasonality) == 1 && out.Seasonality[0] == 24*time.Hour):
		var list []string
		for _, d := range out.Seasonality {
			list = append(list, hclfield.FormatDuration(d))
		}
		return hcl.Diagnostics{hclfield.Invalid(f.Seasonality.Range(), "forecast.seasonality",
			"Model \"seasonal-naive\" repeats the value one day earlier whatever seasonality lists, so [%s] would do nothing. List [\"1d\"] or remove seasonality, or choose a model that reads the seasons listed: %s.",
			strings.Join(list, ", "), others)}
	}
	return nil
}

// promQLRefused is what follows a query that Prometheus's parser refuses
// (querytmpl.PromQLProblem): a warning, as another dialect may take it.
const promQLRefused = "Prometheus refuses the query at every collection, so the metric is never forecast; a server of another dialect, such as VictoriaMetrics (MetricsQL), may take it"

// metricRE is what a query's metric name may look like; it becomes part of
// series names ("dc1/web:queue_depth") and Prometheus labels.
var metricRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// builtinMetric are the metrics the Nomad source collects; a policy query
// cannot reuse their names ("iops" it can: Nomad reports none).
var builtinMetric = map[string]bool{"cpu": true, "memory": true, "cpu_mhz": true, "memory_mb": true}

// itemRange is the range of key's item in an object constructor, or the
// whole expression's when it is not one.
func itemRange(expr hcl.Expression, key string) hcl.Range {
	if oc, ok := expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, it := range oc.Items {
			k, d := it.KeyExpr.Value(nil)
			if !d.HasErrors() && k.Type() == cty.String && k.AsString() == key {
				return hcl.RangeBetween(it.KeyExpr.Range(), it.ValueExpr.Range())
			}
		}
	}
	return expr.Range()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkGrid checks that horizon and history sit on the step grid.
func checkGrid(f *forecastHCL, out *Forecast) hcl.Diagnostics {
	var diags hcl.Diagnostics
	at := func(expr hcl.Expression) hcl.Range {
		if hclfield.IsSet(expr) {
			return expr.Range()
		}
		return f.DeclRange
	}
	if out.Step > out.Horizon {
		return append(diags, hclfield.Invalid(at(f.Step), "forecast.step",
			"The step %s is longer than the horizon %s.", hclfield.FormatDuration(out.Step), hclfield.FormatDuration(out.Horizon)))
	}
	reach, ok := StoreReach(out.Step)
	if !ok {
		return append(diags, hclfield.Invalid(at(f.Step), "forecast.step",
			"The series store keeps points every %s; a step must be a whole multiple of one of them, such as %s.",
			storeSteps(), hclfield.FormatDuration(state.DefaultTiers()[0].Step)))
	}
	if out.Horizon%out.Step != 0 {
		diags = append(diags, hclfield.Invalid(at(f.Horizon), "forecast.horizon",
			"The horizon %s is not a whole number of steps of %s.", hclfield.FormatDuration(out.Horizon), hclfield.FormatDuration(out.Step)))
	} else if out.Horizon > reach {
		// Models forecast no further than their history, which the
		// store bounds: said here, at the horizon, rather than as a
		// history too short that no history at this step can mend.
		return append(diags, hclfield.Invalid(at(f.Horizon), "forecast.horizon",
			"At a step of %s the series store keeps %s of history, and models forecast no further than their history, so a horizon of %s cannot be forecast. Shorten the horizon to at most %s, or lengthen the step (%s).",
			hclfield.FormatDuration(out.Step), hclfield.FormatDuration(reach), hclfield.FormatDuration(out.Horizon),
			hclfield.FormatDuration(reach), storeReaches()))
	}
	if out.History < out.Horizon && !hclfield.IsSet(f.History) {
		// The operator wrote no history: say it is the default, and what
		// to set.
		diags = append(diags, hclfield.Invalid(at(f.History), "forecast.history",
			"The history left out is %s at a step of %s, shorter than the horizon %s; models cannot forecast further than they have seen. Set forecast.history to at least the horizon (at most %s at this step).",
			hclfield.FormatDuration(out.History), hclfield.FormatDuration(out.Step), hclfield.FormatDuration(out.Horizon), hclfield.FormatDuration(reach)))
	} else if out.History < out.Horizon {
		diags = append(diags, hclfield.Invalid(at(f.History), "forecast.history",
			"The history %s is shorter than the horizon %s; models cannot forecast further than they have seen.", hclfield.FormatDuration(out.History), hclfield.FormatDuration(out.Horizon)))
	} else if out.History%out.Step != 0 {
		diags = append(diags, hclfield.Invalid(at(f.History), "forecast.history",
			"The history %s is not a whole number of steps of %s.", hclfield.FormatDuration(out.History), hclfield.FormatDuration(out.Step)))
	} else if out.History > reach {
		diags = append(diags, hclfield.Invalid(at(f.History), "forecast.history",
			"At a step of %s the series store keeps %s of history, so a history of %s is never read. Shorten the history to at most %s, or lengthen the step (%s).",
			hclfield.FormatDuration(out.Step), hclfield.FormatDuration(reach), hclfield.FormatDuration(out.History),
			hclfield.FormatDuration(reach), storeReaches()))
	}
	return diags
}

// StoreReach is how much history the agent's series store serves at step:
// the longest retention among the tiers (state.DefaultTiers) whose step
// divides it. It is false when no tier's step divides it, so the store
// cannot serve that step at all.
func StoreReach(step time.Duration) (time.Duration, bool) {
	var reach time.Duration
	ok := false
	for _, t := range state.DefaultTiers() {
		if step > 0 && step%t.Step == 0 {
			reach, ok = max(reach, t.Retention()), true
		}
	}
	return reach, ok
}

// storeSteps lists the tiers' steps: "1m, 5m or 1h".
func storeSteps() string {
	var out []string
	for _, t := range state.DefaultTiers() {
		out = append(out, hclfield.FormatDuration(t.Step))
	}
	return orList(out)
}

// storeReaches says how much history each tier's step can read:
// "5m keeps 14d, 1h keeps 90d".
func storeReaches() string {
	var out []string
	for _, t := range state.DefaultTiers() {
		r, _ := StoreReach(t.Step)
		out = append(out, fmt.Sprintf("a step of %s reads up to %s", hclfield.FormatDuration(t.Step), hclfield.FormatDuration(r)))
	}
	return strings.Join(out, ", ")
}

func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// translateSeasonality reads `seasonality = "auto"` or a list of durations.
// gridOK says whether step and history are valid to check seasons against.
func translateSeasonality(f *forecastHCL, out *Forecast, gridOK bool) hcl.Diagnostics {
	const field = "forecast.seasonality"
	if !hclfield.IsSet(f.Seasonality) {
		return nil
	}
	v, ok, diags := hclfield.Value(f.Seasonality, field)
	if !ok {
		return diags
	}
	if v.Type() == cty.String {
		if v.AsString() != "auto" {
			return hcl.Diagnostics{hclfield.Invalid(f.Seasonality.Range(), field,
				`%q is not valid: use "auto" or a list of durations such as ["1d", "7d"].`, v.AsString())}
		}
		out.AutoSeasonality = true
		out.Seasonality = nil
		return nil
	}
	elems, ok := hclfield.ListElements(f.Seasonality)
	if !ok {
		return hcl.Diagnostics{hclfield.Invalid(f.Seasonality.Range(), field,
			`Use "auto" or a list of durations such as ["1d", "7d"].`)}
	}
	out.AutoSeasonality = false
	out.Seasonality = nil
	seen := map[time.Duration]bool{}
	for i, e := range elems {
		name := fmt.Sprintf("%s[%d]", field, i)
		d, ok, dd := hclfield.Duration(e, name)
		diags = append(diags, dd...)
		if !ok {
			if !dd.HasErrors() {
				diags = append(diags, hclfield.Invalid(e.Range(), name, "A season must not be null."))
			}
			continue
		}
		switch {
		case d <= 0:
			diags = append(diags, hclfield.Invalid(e.Range(), name, "A season must be positive."))
			continue
		case seen[d]:
			diags = append(diags, hclfield.Invalid(e.Range(), name, "The season %s is listed twice.", hclfield.FormatDuration(d)))
			continue
		}
		seen[d] = true
		if gridOK {
			if d%out.Step != 0 || d < 2*out.Step {
				diags = append(diags, hclfield.Invalid(e.Range(), name,
					"The season %s must be a whole number of steps of %s, and at least two.", hclfield.FormatDuration(d), hclfield.FormatDuration(out.Step)))
				continue
			}
			if out.History < 2*d {
				diags = append(diags, hclfield.Warning(e.Range(), name,
					"The history %s holds fewer than two seasons of %s; seasonal models will fall back until enough history exists.", hclfield.FormatDuration(out.History), hclfield.FormatDuration(d)))
			}
		}
		out.Seasonality = append(out.Seasonality, d)
	}
	if len(elems) == 0 {
		diags = append(diags, hclfield.Invalid(f.Seasonality.Range(), field,
			`The list is empty; use "auto" to detect seasons, or name at least one such as ["1d"].`))
	}
	slices.Sort(out.Seasonality)
	return diags
}

func translateHeadroom(h *headroomHCL, out *Headroom) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if hclfield.IsSet(h.IOPS) {
		diags = append(diags, hclfield.Invalid(h.IOPS.Range(), "headroom.iops",
			"headroom.iops is not a setting: Nomad reports no IOPS capacity to keep a share of free, so foreshape forecasts IOPS and shows it but draws no headroom line for it and predicts no IOPS hotspot. Remove it."))
	}
	for _, f := range []struct {
		expr hcl.Expression
		name string
		dst  *float64
	}{
		{h.CPU, "headroom.cpu", &out.CPU},
		{h.Memory, "headroom.memory", &out.Memory},
	} {
		v, ok, d := hclfield.Number(f.expr, f.name)
		diags = append(diags, d...)
		if !ok {
			continue
		}
		if v < 0 || v >= 100 {
			diags = append(diags, hclfield.Invalid(f.expr.Range(), f.name,
				"%s is outside [0,100): headroom is the percent of capacity kept free.", fmtNum(v)))
			continue
		}
		*f.dst = v
	}
	return diags
}

func translateReserve(r *reserveHCL, out *Reserve) hcl.Diagnostics {
	var diags hcl.Diagnostics
	enabledOK := true
	if v, ok, d := hclfield.Bool(r.Enabled, "reserve.enabled"); ok {
		out.Enabled = v
	} else {
		diags = append(diags, d...)
		enabledOK = !d.HasErrors()
	}
	if enabledOK && !out.Enabled {
		// Without reservations these hold nothing (lead_time still times
		// scale actions ahead of a move).
		for _, f := range []struct {
			expr hcl.Expression
			name string
		}{{r.Priority, "reserve.priority"}, {r.TTL, "reserve.ttl"}, {r.MaxCPU, "reserve.max_cpu"}, {r.MaxMemory, "reserve.max_memory"}} {
			if hclfield.IsSet(f.expr) {
				diags = append(diags, hclfield.Invalid(f.expr.Range(), f.name,
					"%s is set but reserve.enabled is false (the default): no placeholder is placed, so it would do nothing. Set enabled = true, or remove it.", f.name))
			}
		}
		if diags.HasErrors() {
			return diags
		}
	}
	if v, ok, d := hclfield.Int(r.Priority, "reserve.priority"); ok {
		if v < 1 || v > 100 {
			diags = append(diags, hclfield.Invalid(r.Priority.Range(), "reserve.priority",
				"%d is outside Nomad's job priorities 1-100.", v))
		} else {
			out.Priority = v
		}
	} else {
		diags = append(diags, d...)
	}
	durOK := true
	for _, f := range []struct {
		expr hcl.Expression
		name string
		dst  *time.Duration
	}{
		{r.LeadTime, "reserve.lead_time", &out.LeadTime},
		{r.TTL, "reserve.ttl", &out.TTL},
	} {
		v, ok, d := hclfield.Duration(f.expr, f.name)
		diags = append(diags, d...)
		if d.HasErrors() {
			durOK = false
		}
		if !ok {
			continue
		}
		if v <= 0 {
			diags = append(diags, hclfield.Invalid(f.expr.Range(), f.name, "The duration must be positive."))
			durOK = false
			continue
		}
		*f.dst = v
	}
	// Without reservations no placeholder expires, and ttl cannot be set:
	// lead_time alone (it also times scale actions) may be any length.
	if durOK && out.Enabled && out.TTL < out.LeadTime {
		rng := r.DeclRange
		if hclfield.IsSet(r.TTL) {
			rng = r.TTL.Range()
		}
		diags = append(diags, hclfield.Invalid(rng, "reserve.ttl",
			"The ttl %s is shorter than the lead_time %s: a reservation would expire before it is needed.",
			hclfield.FormatDuration(out.TTL), hclfield.FormatDuration(out.LeadTime)))
	}
	for _, f := range []struct {
		expr hcl.Expression
		name string
		unit string
		dst  *int
	}{
		{r.MaxCPU, "reserve.max_cpu", "MHz", &out.MaxCPU},
		{r.MaxMemory, "reserve.max_memory", "MB", &out.MaxMemory},
	} {
		v, ok, d := hclfield.Int(f.expr, f.name)
		diags = append(diags, d...)
		if ok && v <= 0 {
			diags = append(diags, hclfield.Invalid(f.expr.Range(), f.name, "The cap must be a positive number of %s.", f.unit))
			continue
		}
		if ok {
			*f.dst = v
		} else if !d.HasErrors() && out.Enabled {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing " + f.name,
				Detail:   fmt.Sprintf("When reservations are enabled, %s (%s) must cap how much capacity placeholders may hold.", f.name, f.unit),
				Subject:  r.DeclRange.Ptr(),
			})
		}
	}
	return diags
}

func translateMigrate(m *migrateHCL, out *Migrate, own Locality) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if v, ok, d := hclfield.Duration(m.LeadTime, "migrate.lead_time"); ok {
		if v <= 0 {
			diags = append(diags, hclfield.Invalid(m.LeadTime.Range(), "migrate.lead_time", "The duration must be positive."))
		} else {
			out.LeadTime = v
		}
	} else {
		diags = append(diags, d...)
	}
	if v, ok, d := hclfield.Bool(m.Rebalance, "migrate.rebalance"); ok {
		out.Rebalance = v
	} else {
		diags = append(diags, d...)
	}
	if v, ok, d := hclfield.Bool(m.Spread, "migrate.spread"); ok {
		out.Spread = v
	} else {
		diags = append(diags, d...)
	}
	if v, ok, d := hclfield.Bool(m.SpreadByUse, "migrate.spread_by_use"); ok {
		out.SpreadByUse = v
		if v && !out.Spread {
			diags = append(diags, hclfield.Invalid(m.SpreadByUse.Range(), "migrate.spread_by_use",
				"It changes how spreading reads a node's demand, and this policy does not spread: set migrate.spread = true, or remove it."))
		}
	} else {
		diags = append(diags, d...)
	}
	if list, ok, d := hclfield.StringList(m.Targets, "migrate.targets"); ok {
		elems, _ := hclfield.ListElements(m.Targets)
		seen := map[Locality]string{}
		// A target that shares nodes with the policy's own locality
		// ("dc1" for own "dc1/*/web") lets a move out land back on the
		// nodes it leaves, relieving nothing.
		var ownNodes nesting
		if own != (Locality{}) {
			ownNodes.add(own)
		}
		for i, item := range list {
			rng := m.Targets.Range()
			if i < len(elems) {
				rng = elems[i].Range()
			}
			field := fmt.Sprintf("migrate.targets[%d]", i)
			l, err := ParseLocality(item)
			switch {
			case err != nil:
				diags = append(diags, hclfield.Invalid(rng, field, "%s.", err))
			case localityNameProblem(l) != "":
				diags = append(diags, hclfield.Invalid(rng, field, "%q: %s.", item, localityNameProblem(l)))
			case l == own:
				diags = append(diags, hclfield.Invalid(rng, field, "%q is the policy's own locality; a move must leave it.", item))
			case seen[l] != "":
				diags = append(diags, hclfield.Invalid(rng, field, "%s.", listedTwice(item, seen[l])))
			case sharesNodes(&ownNodes, l):
				diags = append(diags, hclfield.Invalid(rng, field,
					"%q shares the nodes of %s with the policy's own locality, %s: a move out of it could land back on the nodes it leaves. List localities that share no node with %s.",
					item, meet(l, own), own, own))
			default:
				seen[l] = item
				out.Targets = append(out.Targets, l)
			}
		}
		if len(list) == 0 {
			diags = append(diags, hclfield.Invalid(m.Targets.Range(), "migrate.targets",
				"The list is empty; omit it to let moves go to any other policy's locality."))
		}
	} else {
		diags = append(diags, d...)
	}
	if v, ok, d := hclfield.Int(m.MaxParallel, "migrate.max_parallel"); ok {
		if v < 1 {
			diags = append(diags, hclfield.Invalid(m.MaxParallel.Range(), "migrate.max_parallel",
				"%d is not allowed: at least one migration must be able to run.", v))
		} else {
			out.MaxParallel = v
		}
	} else {
		diags = append(diags, d...)
	}
	if v, ok, d := hclfield.Enum(m.Strategy, "migrate.strategy", Strategies); ok {
		out.Strategy = Strategy(v)
	} else {
		diags = append(diags, d...)
	}
	if m.Priority == nil {
		return diags
	}
	p := m.Priority
	var pd hcl.Diagnostics
	for _, f := range []struct {
		expr hcl.Expression
		name string
		dst  *float64
	}{
		{p.RelieveHotspot, "migrate.priority.relieve_hotspot", &out.Priority.RelieveHotspot},
		{p.Critical, "migrate.priority.critical", &out.Priority.Critical},
		{p.Age, "migrate.priority.age", &out.Priority.Age},
	} {
		v, ok, d := hclfield.Number(f.expr, f.name)
		pd = append(pd, d...)
		if !ok {
			continue
		}
		if v < 0 {
			pd = append(pd, hclfield.Invalid(f.expr.Range(), f.name, "%s is negative: weights are zero or more.", fmtNum(v)))
			continue
		}
		*f.dst = v
	}
	w := out.Priority
	if !pd.HasErrors() && w.RelieveHotspot == 0 && w.Critical == 0 && w.Age == 0 {
		pd = append(pd, hclfield.Invalid(p.DeclRange, "migrate.priority",
			"Every weight is zero, so the queue would have no order; give at least one weight a positive value."))
	}
	return append(diags, pd...)
}

func translateScale(s *scaleHCL) (*Scale, hcl.Diagnostics) {
	prefix := "scale." + s.Name
	out := &Scale{Name: s.Name, Cooldown: DefaultCooldown, DeclRange: s.DeclRange}
	diags := checkName("scale", s.Name, s.NameRange)
	diags = append(diags, hclfield.Required(s.Min, prefix+".min")...)
	diags = append(diags, hclfield.Required(s.Max, prefix+".max")...)
	minV, minOK, d := hclfield.Int(s.Min, prefix+".min")
	diags = append(diags, d...)
	maxV, maxOK, d := hclfield.Int(s.Max, prefix+".max")
	diags = append(diags, d...)
	if minOK && minV < 0 {
		diags = append(diags, hclfield.Invalid(s.Min.Range(), prefix+".min", "%d is negative.", minV))
		minOK = false
	}
	if maxOK && maxV < 1 {
		diags = append(diags, hclfield.Invalid(s.Max.Range(), prefix+".max", "%d is below 1: a target that may never run cannot relieve anything.", maxV))
		maxOK = false
	}
	if minOK && maxOK && minV > maxV {
		diags = append(diags, hclfield.Invalid(s.Min.Range(), prefix+".min", "min %d is greater than max %d.", minV, maxV))
	}
	out.Min, out.Max = minV, maxV
	if v, ok, d := hclfield.Duration(s.Cooldown, prefix+".cooldown"); ok && v <= 0 {
		diags = append(diags, hclfield.Invalid(s.Cooldown.Range(), prefix+".cooldown",
			"The cooldown must be longer than 0: without one, the next cycle acts again before the last action shows in the metrics (the default is %s).", hclfield.FormatDuration(DefaultCooldown)))
	} else if ok {
		out.Cooldown = v
	} else {
		diags = append(diags, d...)
	}
	switch len(s.Targets) {
	case 0:
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing target block",
			Detail:   fmt.Sprintf("Scale %q needs one target \"PLUGIN\" { ... } block; known plugins: %s.", s.Name, knownTargets()),
			Subject:  s.DeclRange.Ptr(),
		})
		return out, diags
	case 1:
	default:
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Duplicate target block",
			Detail:   fmt.Sprintf("Scale %q has %d target blocks; exactly one is allowed (the first is at %s).", s.Name, len(s.Targets), s.Targets[0].DeclRange),
			Subject:  s.Targets[1].DeclRange.Ptr(),
		})
		return out, diags
	}
	t := s.Targets[0]
	spec, ok := LookupTarget(t.Plugin)
	if !ok {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Unknown %s.target plugin %q", prefix, t.Plugin),
			Detail:   fmt.Sprintf("Known target plugins: %s.", knownTargets()),
			Subject:  t.PluginRange.Ptr(),
		})
		return out, diags
	}
	cfg, d := spec.Decode(t.Body, prefix+".target."+t.Plugin)
	diags = append(diags, d...)
	out.Target = Target{Plugin: t.Plugin, Config: cfg}
	return out, diags
}

func knownTargets() string {
	names := Targets()
	if len(names) == 0 {
		return "none (no target plugin is registered in this build)"
	}
	return hclfield.QuoteList(names)
}

func translateSchedule(s *scheduleHCL, own Locality) (*Schedule, hcl.Diagnostics) {
	prefix := "schedule." + s.Name
	out := &Schedule{Name: s.Name, DeclRange: s.DeclRange}
	diags := checkName("schedule", s.Name, s.NameRange)
	diags = append(diags, hclfield.Required(s.Cron, prefix+".cron")...)
	diags = append(diags, hclfield.Required(s.Duration, prefix+".duration")...)
	diags = append(diags, hclfield.Required(s.Action, prefix+".action")...)
	if hclfield.IsSet(s.TimeZone) {
		if name, ok, d := hclfield.NonEmptyString(s.TimeZone, prefix+".time_zone"); ok {
			loc, err := loadZone(name)
			if err != nil {
				diags = append(diags, hclfield.Invalid(s.TimeZone.Range(), prefix+".time_zone", "%s.", err))
			} else if loc != time.UTC {
				out.Location = loc // nil stands for UTC, the default
			}
		} else {
			diags = append(diags, d...)
		}
	}
	if src, ok, d := hclfield.NonEmptyString(s.Cron, prefix+".cron"); ok {
		expr, err := parseCron(src)
		if err != nil {
			diags = append(diags, hclfield.Invalid(s.Cron.Range(), prefix+".cron", "%q is not a cron expression: %s.", src, err))
		} else {
			out.Cron, out.Expr = src, expr
			if dom, dow, both := bothDays(src); both {
				diags = append(diags, hclfield.Warning(s.Cron.Range(), prefix+".cron",
					"Cron %q restricts both the day of the month (%s) and the day of the week (%s): as in any cron, a window starts on each day that matches either, not only on the days that match both (\"0 0 13 * 5\" starts one on every 13th and on every Friday). To mean one of them, leave the other \"*\".",
					src, dom, dow))
			}
		}
	} else {
		diags = append(diags, d...)
	}
	if v, ok, d := hclfield.Duration(s.Duration, prefix+".duration"); ok {
		if v <= 0 {
			diags = append(diags, hclfield.Invalid(s.Duration.Range(), prefix+".duration", "The duration must be positive."))
		} else {
			out.Duration = v
		}
	} else {
		diags = append(diags, d...)
	}
	if out.Expr != nil && out.Duration > 0 {
		if gap, ok := shortestGap(out.Expr, out.Location); ok && gap < out.Duration {
			diags = append(diags, hclfield.Warning(s.Duration.Range(), prefix+".duration",
				"Each window lasts %s, but cron %q starts one as little as %s after another, so windows overlap: a window starts before the last one ends. Shorten the duration, or let the cron fire less often.",
				hclfield.FormatDuration(out.Duration), out.Cron, hclfield.FormatDuration(gap)))
		}
	}
	if v, ok, d := hclfield.Enum(s.Action, prefix+".action", Actions); ok {
		out.Action = Action(v)
	} else {
		diags = append(diags, d...)
	}
	if v, ok, d := hclfield.Number(s.Factor, prefix+".factor"); ok {
		switch {
		case out.Action != "" && out.Action != ActionPeak:
			diags = append(diags, hclfield.Invalid(s.Factor.Range(), prefix+".factor",
				"A factor sizes a peak; action %q takes none.", out.Action))
		case v <= 0 || v > 100:
			diags = append(diags, hclfield.Invalid(s.Factor.Range(), prefix+".factor",
				"%s is outside (0,100]: the factor multiplies demand during the window, such as 1.5.", fmtNum(v)))
		default:
			out.Factor = v
		}
	} else {
		diags = append(diags, d...)
	}
	if list, ok, d := hclfield.StringList(s.Localities, prefix+".localities"); ok {
		elems, _ := hclfield.ListElements(s.Localities)
		// A locality listed twice was taken once per listing: a drain's
		// window was planned twice, and the work it moves out of another
		// locality added twice to this policy's forecast. Refused, as in
		// migrate.targets.
		seen := map[Locality]string{}
		var nested, ownNodes nesting
		if own != (Locality{}) {
			ownNodes.add(own)
		}
		for i, item := range list {
			rng := s.Localities.Range()
			if i < len(elems) {
				rng = elems[i].Range()
			}
			l, err := ParseLocality(item)
			if err != nil {
				diags = append(diags, hclfield.Invalid(rng, fmt.Sprintf("%s.localities[%d]", prefix, i), "%s.", err))
				continue
			}
			if problem := localityNameProblem(l); problem != "" {
				diags = append(diags, hclfield.Invalid(rng, fmt.Sprintf("%s.localities[%d]", prefix, i), "%q: %s.", item, problem))
				continue
			}
			if out.Action == ActionPeak && own != (Locality{}) && l != own {
				diags = append(diags, hclfield.Invalid(rng, fmt.Sprintf("%s.localities[%d]", prefix, i),
					"A peak lifts this policy's forecast of its own locality, %s; %s is another, so the peak would do nothing there. Declare it in the policy of %s, or leave localities out.", own, l, l))
				continue
			}
			if first, dup := seen[l]; dup {
				diags = append(diags, hclfield.Invalid(rng, fmt.Sprintf("%s.localities[%d]", prefix, i), "%s.", listedTwice(item, first)))
				continue
			}
			// Two that share nodes take them twice as well: their nodes
			// in the drain of both, their work moved here added twice. So one
			// within another ("dc2/web" and "dc2"), and two that overlap
			// without either holding the other ("dc1/web" and "*/*/batch",
			// both taking dc1/web/batch): refused whether or not such a
			// node is up today, as one may join before the window opens.
			if other, within, ok := nested.find(l); ok {
				field := fmt.Sprintf("%s.localities[%d]", prefix, i)
				if within {
					diags = append(diags, hclfield.Invalid(rng, field,
						"%q and %q, listed already, are one within the other: the nodes of %s would be taken twice. List %s alone.",
						item, seen[other], narrower(l, other), wider(l, other)))
				} else {
					diags = append(diags, hclfield.Invalid(rng, field,
						"%q and %q, listed already, overlap: the nodes of %s are in both and would be taken twice. %s",
						item, seen[other], meet(l, other), apart(item, l, seen[other], other)))
				}
				continue
			}
			// A drained locality that shares some nodes with the policy's
			// own without holding all of them ("dc1/*/web" or "*/*/batch"
			// for a policy of dc1) is neither this locality's drain (it
			// is emptied when one holds it) nor only another's whose work
			// moves here: its whole demand, partly measured here already,
			// is added to this forecast, and the hotspots here are not
			// read on the nodes that stay. Warned of: a cluster-wide drain
			// of a node class has no policy whose locality shares no node
			// with it when every policy is a datacenter's.
			if out.Action == ActionDrain && own != (Locality{}) && l != own && !contains(l, own) && sharesNodes(&ownNodes, l) {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Drain of some of the policy's own nodes", Subject: rng.Ptr(),
					Detail: fmt.Sprintf("%s.localities[%d]: %q shares the nodes of %s with the policy's own locality, %s, without holding all of them: the forecast of %s adds %s's whole demand inside its windows, some of it measured here already, and does not read its hotspots on the nodes that stay. "+
						"For an exact forecast, list only localities that hold %s or share none of its nodes, and drain the nodes of %s in a schedule of their own that names them (nodes = \"GLOB\").",
						prefix, i, item, meet(l, own), own, own, item, own, meet(l, own))})
			}
			seen[l] = item
			nested.add(l)
			out.Localities = append(out.Localities, l)
		}
		if len(list) == 0 {
			diags = append(diags, hclfield.Invalid(s.Localities.Range(), prefix+".localities",
				"The list is empty; omit it to mean the policy's own locality."))
		}
	} else {
		diags = append(diags, d...)
	}
	if len(out.Localities) == 0 && own != (Locality{}) {
		out.Localities = []Locality{own}
	}
	if v, ok, d := hclfield.NonEmptyString(s.Nodes, prefix+".nodes"); ok {
		if _, err := path.Match(v, ""); err != nil {
			diags = append(diags, hclfield.Invalid(s.Nodes.Range(), prefix+".nodes", "%q is not a glob of node names: %s.", v, err))
		} else if out.Action != "" && out.Action != ActionDrain {
			diags = append(diags, hclfield.Invalid(s.Nodes.Range(), prefix+".nodes", "Only a drain names the nodes it takes down; action %q affects whole localities.", out.Action))
		} else {
			out.Nodes = v
		}
	} else {
		diags = append(diags, d...)
	}
	return out, diags
}

// nesting finds, among the localities added, one that shares nodes with
// a locality, in constant time a locality: a list may hold thousands.
//
// Two localities share nodes (overlap) when no part that both name holds
// two values. So an added o whose named parts are F overlaps l when o,
// kept to the parts of F that l names too (the others made wildcards),
// is l kept to them. Each o is indexed by F and each way to keep some
// of F (one to eight entries), and l looks up, for each F among those
// added (at most seven), itself kept to the parts of F it names.
type nesting struct {
	// named has bit F set when a locality naming the parts F was added.
	named uint8
	// kept maps each added locality, by the parts it names and kept to
	// some of them, to the first in added that reads so.
	kept  map[keptParts]int
	added []Locality
}

// keptParts is a canonical locality naming the parts named (bit 0 the
// datacenter, 1 the node pool, 2 the node class), with some of them made
// wildcards.
type keptParts struct {
	named uint8
	l     Locality
}

func (n *nesting) add(l Locality) {
	if n.kept == nil {
		n.kept = map[keptParts]int{}
	}
	c := canonical(l)
	f := fixed(c)
	n.named |= 1 << f
	for some := range uint8(8) {
		if some&^f != 0 {
			continue // not a subset of the parts c names
		}
		k := keptParts{f, keep(c, some)}
		if _, ok := n.kept[k]; !ok {
			n.kept[k] = len(n.added)
		}
	}
	n.added = append(n.added, l)
}

// find returns the first added locality that shares nodes with l, one
// within the other ("dc2/web" and "dc2") before any other, and whether
// it is; else, ok, the first that holds some of l's nodes and l some of
// its ("dc1/web" and "*/*/batch", which share dc1/web/batch).
func (n *nesting) find(l Locality) (o Locality, within, ok bool) {
	c := canonical(l)
	fl := fixed(c)
	first := -1
	for f := range uint8(8) {
		if n.named&(1<<f) == 0 {
			continue
		}
		both := f & fl
		at, hit := n.kept[keptParts{f, keep(c, both)}]
		if !hit {
			continue
		}
		// It reads as l on the parts both name: l is within it when it
		// names no other part, it within l when l names no other.
		nested := both == f || both == fl
		if first < 0 || nested && !within || nested == within && at < first {
			first, within = at, nested
		}
	}
	if first < 0 {
		return Locality{}, false, false
	}
	return n.added[first], within, true
}

// sharesNodes reports whether l shares nodes with a locality added to n.
func sharesNodes(n *nesting, l Locality) bool {
	_, _, ok := n.find(l)
	return ok
}

// canonical writes every wildcard part of l as "".
func canonical(l Locality) Locality {
	for _, p := range []*string{&l.Datacenter, &l.NodePool, &l.NodeClass} {
		if *p == "*" {
			*p = ""
		}
	}
	return l
}

// fixed is the mask of the parts a canonical l names.
func fixed(l Locality) uint8 {
	var mask uint8
	for i, p := range []string{l.Datacenter, l.NodePool, l.NodeClass} {
		if p != "" {
			mask |= 1 << i
		}
	}
	return mask
}

// keep returns a canonical l with the parts outside mask made wildcards.
func keep(l Locality, mask uint8) Locality {
	if mask&1 == 0 {
		l.Datacenter = ""
	}
	if mask&2 == 0 {
		l.NodePool = ""
	}
	if mask&4 == 0 {
		l.NodeClass = ""
	}
	return l
}

// contains reports whether every node of inner belongs to outer: each part
// of outer is a wildcard or inner's.
func contains(outer, inner Locality) bool {
	part := func(o, i string) bool { return o == "" || o == "*" || o == i }
	return part(outer.Datacenter, inner.Datacenter) && part(outer.NodePool, inner.NodePool) && part(outer.NodeClass, inner.NodeClass)
}

// narrower and wider name the inner and the outer of two localities one
// of which is within the other.
func narrower(a, b Locality) string {
	if contains(a, b) {
		return b.String()
	}
	return a.String()
}

func wider(a, b Locality) string {
	if contains(a, b) {
		return a.String()
	}
	return b.String()
}

// meet is the locality whose nodes both a and b hold, for two that
// overlap: each part the one of them that names it.
func meet(a, b Locality) Locality {
	a, b = canonical(a), canonical(b)
	pick := func(x, y string) string {
		if x != "" {
			return x
		}
		return y
	}
	return Locality{pick(a.Datacenter, b.Datacenter), pick(a.NodePool, b.NodePool), pick(a.NodeClass, b.NodeClass)}
}

// apart says what to list in place of a (written aItem) and b (bItem),
// two localities that overlap without either holding the other: keep
// one, and replace the other by itself with the one part it leaves open
// and the kept one names written out, once for each value of that part
// but the shared one ("dc1/web/NODE_CLASS" for each node class but
// batch, beside "*/*/batch"). One of the two always leaves a single such
// part open: each names a part the other leaves open, of three. A
// datacenter or node pool is written out before a node class, which a
// node may lack and so be in no "…/NODE_CLASS"; else a before b.
func apart(aItem string, a Locality, bItem string, b Locality) string {
	m := fixed(meet(a, b))
	type choice struct {
		keep, split string
		l           Locality
		open        uint8
	}
	var best *choice
	for _, c := range []choice{{bItem, aItem, a, m &^ fixed(canonical(a))}, {aItem, bItem, b, m &^ fixed(canonical(b))}} {
		if bits.OnesCount8(c.open) != 1 || (best != nil && (best.open != 4 || c.open == 4)) {
			continue
		}
		best = &c
	}
	if best == nil {
		// Not reached for two that overlap without nesting.
		return fmt.Sprintf("List localities that share no node in place of %q and %q.", aItem, bItem)
	}
	narrowed, shared := canonical(best.l), meet(a, b)
	var what, value string
	switch best.open {
	case 1:
		narrowed.Datacenter, what, value = "DATACENTER", "datacenter", shared.Datacenter
	case 2:
		narrowed.NodePool, what, value = "NODE_POOL", "node pool", shared.NodePool
	default:
		narrowed.NodeClass, what, value = "NODE_CLASS", "node class", shared.NodeClass
	}
	return fmt.Sprintf("List localities that share no node instead: keep %q and replace %q by %q for each %s but %s.",
		best.keep, best.split, narrowed.String(), what, value)
}

// listedTwice says that locality item of a list names the same locality
// as first, listed before it: "\"dc2\" is listed twice", or, written
// another way, "\"dc2/*\" is \"dc2\", listed already".
func listedTwice(item, first string) string {
	if item == first {
		return fmt.Sprintf("%q is listed twice", item)
	}
	return fmt.Sprintf("%q is %q, listed already", item, first)
}

// parseCron parses a cron line, turning a panic inside the parser on
// hostile input into an error.
func parseCron(src string) (expr *cronexpr.Expression, err error) {
	defer func() {
		if r := recover(); r != nil {
			expr, err = nil, fmt.Errorf("unparseable (%v)", r)
		}
	}()
	f := strings.Fields(src)
	if len(f) > 0 && strings.HasPrefix(f[0], "@") && !slices.Contains(cronMacros, f[0]) {
		// cronexpr says only "missing field(s)" of these.
		return nil, fmt.Errorf("%s is not one of the shorthands a schedule takes (%s); for a fixed interval give five fields, \"0 */6 * * *\" for every six hours", f[0], strings.Join(cronMacros, ", "))
	}
	if len(f) > 0 && strings.HasPrefix(f[0], "@") && len(f) > 1 {
		// cronexpr replaces the shorthand by seven fields and reads no
		// field past the seventh: "@weekly 2027" would be every year's.
		return nil, fmt.Errorf("%s stands for five fields and takes nothing after it; for a window in one year only, give the five fields and a sixth for the year (%q)", f[0], cronMacroFields[f[0]]+" 2027")
	}
	if len(f) > 1 && strings.Contains(src, "@") {
		// cronexpr would replace a shorthand inside the line by its fields.
		return nil, fmt.Errorf("a shorthand (%s) stands alone, not among other fields", strings.Join(cronMacros, ", "))
	}
	switch {
	case len(f) == 7:
		// cronexpr reads seven fields as seconds, the five, and a year.
		return nil, fmt.Errorf("its seven fields start with seconds, which a schedule on a one-minute grid cannot keep: give five fields (minute, hour, day of month, month, day of week) and, for a window in one year only, a sixth for the year")
	case len(f) > 7:
		// cronexpr would read the first seven, seconds first, and drop
		// the rest.
		return nil, fmt.Errorf("it has %d fields: give five (minute, hour, day of month, month, day of week) and, for a window in one year only, a sixth for the year", len(f))
	}
	expr, err = cronexpr.Parse(src)
	if err != nil {
		return nil, err
	}
	// An expression with no future occurrence would silently never fire.
	if expr.Next(cronEpoch).IsZero() {
		return nil, fmt.Errorf("it never fires")
	}
	return expr, nil
}

// cronMacros are the shorthands hashicorp/cronexpr reads, each for a
// five-field line ("@daily" is "0 0 * * *"); "@every", "@reboot" and
// "@midnight", which other crons take, it does not.
var cronMacros = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"}

// cronMacroFields are the five fields each shorthand stands for.
var cronMacroFields = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@hourly": "0 * * * *",
}

// bothDays reports whether a five- or six-field cron line restricts both
// its day of the month and its day of the week, and the two fields.
func bothDays(src string) (dom, dow string, both bool) {
	f := strings.Fields(src)
	if len(f) < 5 || len(f) > 6 {
		return "", "", false
	}
	every := func(s string) bool { return s == "*" || s == "?" }
	return f[2], f[4], !every(f[2]) && !every(f[4])
}

// shortestGap is the shortest time between two starts of expr, read in
// loc (UTC when nil), among its first gapProbes after cronProbe; false
// when it starts once at most. In a zone with daylight saving time, a
// start in the hour clocks repeat happens twice, an hour apart.
func shortestGap(expr *cronexpr.Expression, loc *time.Location) (time.Duration, bool) {
	if loc == nil {
		loc = time.UTC
	}
	var gap time.Duration
	prev := expr.Next(cronProbe.In(loc))
	if prev.IsZero() {
		return 0, false // its starts are all before cronProbe
	}
	for range gapProbes {
		next := expr.Next(prev)
		if next.IsZero() {
			break
		}
		if g := next.Sub(prev); gap == 0 || g < gap {
			gap = g
		}
		prev = next
	}
	return gap, gap > 0
}

// loadZone is the IANA time zone name names, from the database the
// binary embeds (time/tzdata) when the host has none. "Local" is refused:
// the servers that lead in turn may not share their local time, and the
// windows must be the same whichever leads.
func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, fmt.Errorf("\"Local\" is the time zone of whichever server leads, which servers may not share; name the zone, such as \"Europe/Berlin\" or \"America/New_York\" (\"UTC\" is the default)")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not a time zone of the IANA database, such as \"Europe/Berlin\" or \"America/New_York\" (\"UTC\" is the default)", name)
	}
	return loc, nil
}

// gapProbes is how many starts shortestGap reads: a year of weekdays, a
// decade of months.
const gapProbes = 400

// cronEpoch is the first instant hashicorp/cronexpr reads (its years run
// from 1970): a cron with no start after it never fires, while one whose
// starts are all past ("0 0 1 1 * 1999") is only warned of, by the start
// checks, as one of last year is.
var cronEpoch = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// cronProbe is the fixed instant shortestGap reads a cron's starts from
// (a year of daylight saving time where zones keep it now); it is not a
// clock reading.
var cronProbe = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// upperFirst is s with its first letter in capitals, to start a sentence.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func fmtNum(v float64) string { return fmt.Sprintf("%g", v) }

// decodeFile decodes one parsed file's shaping blocks.
func decodeFile(file *hcl.File) ([]*shapingHCL, hcl.Diagnostics) {
	var f fileHCL
	diags := gohcl.DecodeBody(file.Body, nil, &f)
	// A second locality block leaves Locality nil: mark the shaping block
	// it is in (the blocks come in source order) so that translation does
	// not also call the locality missing.
	for _, d := range diags {
		if d.Summary != "Duplicate locality block" || d.Subject == nil {
			continue
		}
		for i, b := range f.Shaping {
			after := d.Subject.Start.Byte > b.DeclRange.Start.Byte
			beforeNext := i+1 == len(f.Shaping) || d.Subject.Start.Byte < f.Shaping[i+1].DeclRange.Start.Byte
			if after && beforeNext {
				b.twoLocalities = true
			}
		}
	}
	return f.Shaping, diags
}
