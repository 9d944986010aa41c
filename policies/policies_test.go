package policies_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/cronexpr"
	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/plugins/target/exec"
	"github.com/foreshape/foreshape/plugins/target/nomadjob"
	"github.com/foreshape/foreshape/plugins/target/webhook"
	"github.com/foreshape/foreshape/policies"

	_ "github.com/foreshape/foreshape/plugins/target/builtin"
)

// builder holds the bodies of a policy's blocks; build renders them. The
// zero tweak renders a valid policy that sets every block.
type builder struct {
	name     string
	locality string
	forecast string
	headroom string
	reserve  string
	scale    string // whole scale blocks
	migrate  string
	schedule string // whole schedule blocks
	extra    string // anything else inside the shaping block
}

func validBuilder() *builder {
	return &builder{
		name:     "web",
		locality: `datacenter = "dc1"`,
		forecast: `
    model       = "auto"
    horizon     = "1h"
    step        = "5m"
    history     = "14d"
    seasonality = ["1d", "7d"]
    quantile    = 0.9`,
		headroom: `cpu = 20`,
		reserve: `
    enabled    = true
    max_cpu    = 1000
    max_memory = 2048`,
		scale: `
  scale "frontend" {
    min = 1
    max = 5
    target "nomad-job" {
      job   = "web"
      group = "frontend"
    }
  }`,
		migrate: `max_parallel = 2`,
		schedule: `
  schedule "patch" {
    cron     = "0 2 * * 0"
    duration = "3h"
    action   = "drain"
  }`,
	}
}

func (b *builder) build() string {
	var s strings.Builder
	fmt.Fprintf(&s, "shaping %q {\n", b.name)
	block := func(name, body string) {
		if body != "-" {
			fmt.Fprintf(&s, "  %s {\n    %s\n  }\n", name, strings.TrimSpace(body))
		}
	}
	block("locality", b.locality)
	block("forecast", b.forecast)
	block("headroom", b.headroom)
	block("reserve", b.reserve)
	block("migrate", b.migrate)
	s.WriteString(b.scale + "\n")
	s.WriteString(b.schedule + "\n")
	s.WriteString(b.extra + "\n")
	s.WriteString("}\n")
	return s.String()
}

func parse(t *testing.T, apply func(*builder)) ([]*policies.Policy, hcl.Diagnostics, string) {
	t.Helper()
	b := validBuilder()
	if apply != nil {
		apply(b)
	}
	src := b.build()
	ps, diags := policies.Parse("test.hcl", []byte(src))
	return ps, diags, src
}

// lineOf returns the 1-based line of the first occurrence of needle.
func lineOf(t *testing.T, src, needle string) int {
	t.Helper()
	i := strings.Index(src, needle)
	if i < 0 {
		t.Fatalf("%q not in source", needle)
	}
	return strings.Count(src[:i], "\n") + 1
}

// TestScheduleLocalitiesThatOverlap: a schedule's localities that share
// nodes without either holding the other are refused at the later one,
// naming both, the locality they share and what to list instead; one
// within another keeps its own message; localities that share no node
// are kept.
func TestScheduleLocalitiesThatOverlap(t *testing.T) {
	for _, tc := range []struct {
		list  string
		field string // "" when the list is valid
		want  string // the error's detail
	}{
		{`"dc2/web", "dc3/*/gpu", "*/*/batch"`, "schedule.patch.localities[2]",
			`"*/*/batch" and "dc2/web", listed already, overlap: the nodes of dc2/web/batch are in both and would be taken twice. List localities that share no node instead: keep "*/*/batch" and replace "dc2/web" by "dc2/web/NODE_CLASS" for each node class but batch.`},
		// Of two it overlaps, the first listed is named.
		{`"dc3", "dc2/web", "*/*/batch"`, "schedule.patch.localities[2]",
			`"*/*/batch" and "dc3", listed already, overlap`},
		{`"dc2/web", "dc3", "*/*/batch"`, "schedule.patch.localities[2]",
			`"*/*/batch" and "dc2/web", listed already, overlap`},
		// One within another is named before an overlap listed earlier.
		{`"*/*/batch", "dc3/web/gpu", "dc3/web"`, "schedule.patch.localities[2]",
			`"dc3/web" and "dc3/web/gpu", listed already, are one within the other`},
		// A node pool is named rather than a class, which a node may lack.
		{`"dc2/web", "dc2/*/batch"`, "schedule.patch.localities[1]",
			`"dc2/*/batch" and "dc2/web", listed already, overlap: the nodes of dc2/web/batch are in both and would be taken twice. List localities that share no node instead: keep "dc2/web" and replace "dc2/*/batch" by "dc2/NODE_POOL/batch" for each node pool but web.`},
		{`"dc2", "*/web/batch"`, "schedule.patch.localities[1]",
			`"*/web/batch" and "dc2", listed already, overlap: the nodes of dc2/web/batch are in both and would be taken twice. List localities that share no node instead: keep "dc2" and replace "*/web/batch" by "DATACENTER/web/batch" for each datacenter but dc2.`},
		{`"*/web", "*/*/batch"`, "schedule.patch.localities[1]",
			`"*/*/batch" and "*/web", listed already, overlap: the nodes of */web/batch are in both and would be taken twice. List localities that share no node instead: keep "*/web" and replace "*/*/batch" by "*/NODE_POOL/batch" for each node pool but web.`},
		{`"*/web", "dc3"`, "schedule.patch.localities[1]",
			`"dc3" and "*/web", listed already, overlap: the nodes of dc3/web are in both and would be taken twice. List localities that share no node instead: keep "*/web" and replace "dc3" by "dc3/NODE_POOL" for each node pool but web.`},
		{`"*/*/batch", "dc3/default/batch"`, "schedule.patch.localities[1]",
			`"dc3/default/batch" and "*/*/batch", listed already, are one within the other: the nodes of dc3/default/batch would be taken twice. List */*/batch alone.`},
		// One refused is not listed: dc3/db/batch, which shares nodes
		// with it alone, is kept.
		{`"dc2/web", "*/*/batch", "dc3/db/batch"`, "schedule.patch.localities[1]", `the nodes of dc2/web/batch are in both`},
		{`"dc2/web", "dc2/db", "dc3/*/batch", "*/api/gpu", "dc4/web/batch"`, "", ""},
	} {
		t.Run(tc.list, func(t *testing.T) {
			ps, diags, src := parse(t, func(b *builder) {
				b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = ["+tc.list+"]", 1)
			})
			if tc.field == "" {
				if diags.HasErrors() || len(ps) != 1 || len(ps[0].Schedules[0].Localities) != strings.Count(tc.list, ",")+1 {
					t.Fatalf("diagnostics %v; want every locality kept\nsource:\n%s", diags, src)
				}
				return
			}
			// The builder's policy is dc1's: a drain of "*/*/batch" from it
			// is warned of as well (TestDrainSharingSomeOwnNodesWarned).
			diags = slices.DeleteFunc(diags, func(d *hcl.Diagnostic) bool { return d.Summary == "Drain of some of the policy's own nodes" })
			if len(diags) != 1 || !strings.Contains(diags[0].Summary, tc.field) || !strings.Contains(diags[0].Detail, tc.want) {
				t.Fatalf("diagnostics %v; want one on %s saying %s", diags, tc.field, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		apply   func(*builder)
		summary string // the error's summary contains it
		at      string // the error's subject starts on the line holding it
	}{
		{"unknown model", func(b *builder) { b.forecast = `model = "prophet"` }, "Invalid forecast.model", `"prophet"`},
		{"model wrong type", func(b *builder) { b.forecast = `model = 3` }, "Invalid forecast.model", `model = 3`},
		{"zero horizon", func(b *builder) { b.forecast = `horizon = "0s"` }, "Invalid forecast.horizon", `"0s"`},
		{"negative horizon", func(b *builder) { b.forecast = `horizon = "-1h"` }, "Invalid forecast.horizon", `"-1h"`},
		{"horizon number", func(b *builder) { b.forecast = `horizon = 3600` }, "Invalid forecast.horizon", `3600`},
		{"step over horizon", func(b *builder) { b.forecast = `step = "2h"` }, "Invalid forecast.step", `"2h"`},
		{"horizon off grid", func(b *builder) {
			b.forecast = `
    horizon = "1h"
    step    = "7m"`
		}, "Invalid forecast.horizon", `"1h"`},
		{"horizon beyond the store at 1m", func(b *builder) {
			b.forecast = `
    horizon = "10d"
    history = "30d"
    step    = "1m"`
		}, "Invalid forecast.horizon", `"10d"`},
		{"horizon beyond the store at 5m", func(b *builder) {
			b.forecast = `
    horizon = "15d"
    step    = "5m"`
		}, "Invalid forecast.horizon", `"15d"`},
		{"history shorter than horizon", func(b *builder) {
			b.forecast = `
    horizon = "2h"
    history = "1h"`
		}, "Invalid forecast.history", `"1h"`},
		{"step off the store's tiers", func(b *builder) { b.forecast = `step = "30s"` }, "Invalid forecast.step", `"30s"`},
		{"step of 90s", func(b *builder) {
			b.forecast = `
    step    = "90s"
    horizon = "3h"`
		}, "Invalid forecast.step", `"90s"`},
		{"history beyond the store at 1m", func(b *builder) {
			b.forecast = `
    step    = "1m"
    history = "14d"`
		}, "Invalid forecast.history", `"14d"`},
		// 7m is no multiple of 5m: it reads the 1m points, a day of them.
		{"history beyond the store at 7m", func(b *builder) {
			b.forecast = `
    step    = "7m"
    horizon = "7h"
    history = "7d"`
		}, "Invalid forecast.history", `"7d"`},
		{"history beyond the store at 5m", func(b *builder) {
			b.forecast = `
    step    = "5m"
    history = "28d"`
		}, "Invalid forecast.history", `"28d"`},
		// No history at 1m reaches 2d: the horizon is what to change.
		{"horizon at 1m beyond any history", func(b *builder) {
			b.forecast = `
    step    = "1m"
    horizon = "2d"`
		}, "Invalid forecast.horizon", `"2d"`},
		{"history off grid", func(b *builder) {
			b.forecast = `
    step    = "5m"
    history = "14d2m"`
		}, "Invalid forecast.history", `"14d2m"`},
		{"quantile zero", func(b *builder) { b.forecast = `quantile = 0` }, "Invalid forecast.quantile", `quantile = 0`},
		{"quantile one", func(b *builder) { b.forecast = `quantile = 1` }, "Invalid forecast.quantile", `quantile = 1`},
		{"quantile string", func(b *builder) { b.forecast = `quantile = "0.9"` }, "Invalid forecast.quantile", `"0.9"`},
		{"quantile variable", func(b *builder) { b.forecast = `quantile = var.q` }, "Variables not allowed", `var.q`},
		{"function call", func(b *builder) { b.forecast = `horizon = upper("1h")` }, "Function calls not allowed", `upper`},
		{"seasonality variable", func(b *builder) { b.forecast = `seasonality = var.s` }, "(in forecast.seasonality)", `var.s`},
		{"seasonality word", func(b *builder) { b.forecast = `seasonality = "daily"` }, "Invalid forecast.seasonality", `"daily"`},
		{"seasonality empty", func(b *builder) { b.forecast = `seasonality = []` }, "Invalid forecast.seasonality", `[]`},
		{"seasonality twice", func(b *builder) { b.forecast = `seasonality = ["1d", "24h"]` }, "Invalid forecast.seasonality[1]", `"24h"`},
		{"seasonality number", func(b *builder) { b.forecast = `seasonality = [86400]` }, "Invalid forecast.seasonality[0]", `86400`},
		{"season of one step", func(b *builder) { b.forecast = `seasonality = ["1m"]` }, "Invalid forecast.seasonality[0]", `"1m"`},
		{"unknown forecast attribute", func(b *builder) { b.forecast = `models = "auto"` }, "Unsupported argument forecast.models", `models`},
		{"unknown priority attribute", func(b *builder) { b.migrate = "priority {\n agee = 1\n }" }, "Unsupported argument migrate.priority.agee", `agee`},
		{"unknown policy attribute", func(b *builder) { b.extra = `forecast_onyl = true` }, "Unsupported argument forecast_onyl", `forecast_onyl`},
		{"headroom 100", func(b *builder) { b.headroom = `cpu = 100` }, "Invalid headroom.cpu", `cpu = 100`},
		{"headroom negative", func(b *builder) { b.headroom = `memory = -1` }, "Invalid headroom.memory", `memory = -1`},
		{"headroom bool", func(b *builder) { b.headroom = `cpu = true` }, "Invalid headroom.cpu", `cpu = true`},
		{"headroom iops", func(b *builder) { b.headroom = `iops = 20` }, "Invalid headroom.iops", `iops = 20`},
		{"reserve priority 0", func(b *builder) { b.reserve = `priority = 0` }, "Invalid reserve.priority", `priority = 0`},
		{"reserve priority 101", func(b *builder) { b.reserve = `priority = 101` }, "Invalid reserve.priority", `priority = 101`},
		{"reserve enabled string", func(b *builder) { b.reserve = `enabled = "yes"` }, "Invalid reserve.enabled", `"yes"`},
		{"reserve enabled quoted true", func(b *builder) { b.reserve = `enabled = "true"` }, "Invalid reserve.enabled", `"true"`},
		{"reserve bad lead time", func(b *builder) { b.reserve = `lead_time = "soon"` }, "Invalid reserve.lead_time", `"soon"`},
		{"ttl below lead time", func(b *builder) { b.reserve = `ttl = "5m"` }, "Invalid reserve.ttl", `ttl = "5m"`},
		{"ttl below lead time default ttl", func(b *builder) {
			b.reserve = "enabled = true\n max_cpu = 1000\n max_memory = 2048\n lead_time = \"2h\""
		}, "Invalid reserve.ttl", `reserve {`},
		{"max_cpu zero", func(b *builder) { b.reserve = `max_cpu = 0` }, "Invalid reserve.max_cpu", `max_cpu = 0`},
		{"max_memory fraction", func(b *builder) { b.reserve = `max_memory = 1.5` }, "Invalid reserve.max_memory", `1.5`},
		{"enabled without caps", func(b *builder) { b.reserve = `enabled = true` }, "Missing reserve.max_cpu", `reserve {`},
		{"max_parallel zero", func(b *builder) { b.migrate = `max_parallel = 0` }, "Invalid migrate.max_parallel", `max_parallel = 0`},
		{"bad strategy", func(b *builder) { b.migrate = `strategy = "move"` }, "Invalid migrate.strategy", `"move"`},
		// Seasons the model does not read would do nothing.
		{"naive with seasons", func(b *builder) { b.forecast = "model = \"naive\"\n seasonality = [\"1d\"]" },
			"Invalid forecast.seasonality", `["1d"]`},
		{"seasonal-naive with a weekly season", func(b *builder) {
			b.forecast = "model = \"seasonal-naive\"\n step = \"5m\"\n history = \"14d\"\n seasonality = [\"7d\"]"
		}, "Invalid forecast.seasonality", `["7d"]`},
		{"weights all zero", func(b *builder) {
			b.migrate = `
    priority {
      relieve_hotspot = 0
      critical        = 0
      age             = 0
    }`
		}, "Invalid migrate.priority", `priority {`},
		{"weight negative", func(b *builder) { b.migrate = "priority {\n age = -1\n }" }, "Invalid migrate.priority.age", `age = -1`},
		{"migrate lead_time zero", func(b *builder) { b.migrate = `lead_time = "0s"` }, "Invalid migrate.lead_time", `"0s"`},
		{"migrate lead_time not a duration", func(b *builder) { b.migrate = `lead_time = "soon"` }, "Invalid migrate.lead_time", `"soon"`},
		{"rebalance not a bool", func(b *builder) { b.migrate = `rebalance = "yes please"` }, "Invalid migrate.rebalance", `"yes please"`},
		{"spread not a bool", func(b *builder) { b.migrate = `spread = 3` }, "Invalid migrate.spread", `3`},
		{"spread_by_use not a bool", func(b *builder) { b.migrate = "spread = true\n spread_by_use = \"sure\"" }, "Invalid migrate.spread_by_use", `"sure"`},
		{"spread_by_use without spreading", func(b *builder) { b.migrate = `spread_by_use = true` }, "Invalid migrate.spread_by_use", `spread_by_use = true`},
		{"target is not a locality", func(b *builder) { b.migrate = `targets = ["dc2", "a/b/c/d"]` }, "Invalid migrate.targets[1]", `"a/b/c/d"`},
		{"target is the policy's own locality", func(b *builder) { b.migrate = `targets = ["dc1"]` }, "Invalid migrate.targets[0]", `targets = ["dc1"]`},
		{"target within the policy's own locality", func(b *builder) { b.migrate = `targets = ["dc2", "dc1/*/web"]` }, "Invalid migrate.targets[1]", `"dc1/*/web"]`},
		{"target sharing nodes with the policy's own locality", func(b *builder) { b.migrate = `targets = ["*/*/batch"]` }, "Invalid migrate.targets[0]", `"*/*/batch"]`},
		{"target twice", func(b *builder) { b.migrate = `targets = ["dc2", "dc2"]` }, "Invalid migrate.targets[1]", `"dc2"]`},
		{"target written twice", func(b *builder) { b.migrate = "targets = [\"dc2\",\n \"dc2/*\"]" }, "Invalid migrate.targets[1]", `"dc2/*"]`},
		{"no targets", func(b *builder) { b.migrate = `targets = []` }, "Invalid migrate.targets", `targets = []`},
		{"forecast_only not a bool", func(b *builder) { b.extra = `forecast_only = 3` }, "Invalid forecast_only", `forecast_only = 3`},
		{"nodes glob malformed", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    nodes = \"rack-[\"", 1)
		}, "Invalid schedule.patch.nodes", `nodes = "rack-["`},
		{"a peak of another locality", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"peak\"\n    localities = [\"dc1\", \"dc7\"]", 1)
		}, "Invalid schedule.patch.localities[1]", `"dc7"`},
		{"reserve settings with reserve disabled", func(b *builder) {
			b.reserve = "enabled  = false\n    ttl = \"4h\""
		}, "Invalid reserve.ttl", `ttl = "4h"`},
		{"reserve caps without enabling it", func(b *builder) { b.reserve = "max_cpu = 1000" }, "Invalid reserve.max_cpu", `max_cpu = 1000`},
		{"nodes on a peak", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"peak\"\n    nodes = \"rack-a-*\"", 1)
		}, "Invalid schedule.patch.nodes", `nodes = "rack-a-*"`},
		{"scale max zero", func(b *builder) {
			b.scale = strings.Replace(b.scale, "max = 5", "max = 0", 1)
		}, "Invalid scale.frontend.max", `max = 0`},
		{"scale min negative", func(b *builder) {
			b.scale = strings.Replace(b.scale, "min = 1", "min = -1", 1)
		}, "Invalid scale.frontend.min", `min = -1`},
		{"scale min over max", func(b *builder) {
			b.scale = strings.Replace(b.scale, "min = 1", "min = 9", 1)
		}, "Invalid scale.frontend.min", `min = 9`},
		{"scale missing max", func(b *builder) {
			b.scale = strings.Replace(b.scale, "max = 5", "", 1)
		}, "Missing scale.frontend.max", `scale "frontend"`},
		{"scale bad cooldown", func(b *builder) {
			b.scale = strings.Replace(b.scale, "min = 1", "min = 1\n    cooldown = \"1y\"", 1)
		}, "Invalid scale.frontend.cooldown", `"1y"`},
		{"scale zero cooldown", func(b *builder) {
			b.scale = strings.Replace(b.scale, "min = 1", "min = 1\n    cooldown = \"0s\"", 1)
		}, "Invalid scale.frontend.cooldown", `"0s"`},
		{"scale without target", func(b *builder) { b.scale = "scale \"x\" {\n min = 0\n max = 1\n }" }, "Missing target block", `scale "x"`},
		{"scale with two targets", func(b *builder) {
			b.scale = strings.Replace(b.scale, "target \"nomad-job\"", "target \"exec\" {\n command = [\"a\"]\n }\n target \"nomad-job\"", 1)
		}, "Duplicate target block", `target "nomad-job"`},
		{"unknown plugin", func(b *builder) {
			b.scale = "scale \"x\" {\n min = 0\n max = 1\n target \"lambda\" {}\n }"
		}, `Unknown scale.x.target plugin "lambda"`, `target "lambda"`},
		{"plugin setting", func(b *builder) {
			b.scale = strings.Replace(b.scale, `job   = "web"`, `job   = "web"`+"\n      count = 3", 1)
		}, "Unsupported argument scale.frontend.target.nomad-job.count", `count = 3`},
		{"duplicate scale", func(b *builder) { b.scale += strings.Replace(b.scale, "min = 1", "min = 2", 1) }, `Duplicate scale "frontend"`, `scale "frontend"`},
		{"bad cron", func(b *builder) { b.schedule = strings.Replace(b.schedule, "0 2 * * 0", "0 2 * * 8", 1) }, "Invalid schedule.patch.cron", `"0 2 * * 8"`},
		{"cron never fires", func(b *builder) { b.schedule = strings.Replace(b.schedule, "0 2 * * 0", "0 0 30 2 *", 1) }, "Invalid schedule.patch.cron", `"0 0 30 2 *"`},
		{"empty cron", func(b *builder) { b.schedule = strings.Replace(b.schedule, "0 2 * * 0", " ", 1) }, "Invalid schedule.patch.cron", `cron`},
		{"schedule zero duration", func(b *builder) { b.schedule = strings.Replace(b.schedule, `"3h"`, `"0s"`, 1) }, "Invalid schedule.patch.duration", `"0s"`},
		{"schedule bad action", func(b *builder) { b.schedule = strings.Replace(b.schedule, `"drain"`, `"pause"`, 1) }, "Invalid schedule.patch.action", `"pause"`},
		{"schedule missing action", func(b *builder) { b.schedule = strings.Replace(b.schedule, `action   = "drain"`, ``, 1) }, "Missing schedule.patch.action", `schedule "patch"`},
		{"schedule bad locality", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = [\"dc1\", \"dc1//web\"]", 1)
		}, "Invalid schedule.patch.localities[1]", `"dc1//web"`},
		{"schedule locality twice", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = [\"dc2\",\n \"dc3\", \"dc2\"]", 1)
		}, "Invalid schedule.patch.localities[2]", `"dc3", "dc2"]`},
		{"schedule locality within another", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = [\"dc2/web\",\n \"dc3\", \"dc2\"]", 1)
		}, "Invalid schedule.patch.localities[2]", `"dc3", "dc2"]`},
		{"schedule locality within another, wildcards", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = [\"*/*/batch\",\n \"dc3/default/batch\"]", 1)
		}, "Invalid schedule.patch.localities[1]", `"dc3/default/batch"]`},
		{"schedule localities overlapping", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = [\"dc2/web\",\n \"*/*/batch\"]", 1)
		}, "Invalid schedule.patch.localities[1]", `"*/*/batch"]`},
		{"schedule localities overlapping, one of three", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = [\"dc2/*/web\", \"dc3\",\n \"*/batch\"]", 1)
		}, "Invalid schedule.patch.localities[2]", `"*/batch"]`},
		{"peak of its own locality written twice", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"peak\"\n    localities = [\"dc1\",\n \"dc1/*\"]", 1)
		}, "Invalid schedule.patch.localities[1]", `"dc1/*"]`},
		{"schedule localities not a list", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = \"dc1\"", 1)
		}, "Invalid schedule.patch.localities", `localities = "dc1"`},
		{"duplicate schedule", func(b *builder) { b.schedule += strings.Replace(b.schedule, `"3h"`, `"4h"`, 1) }, `Duplicate schedule "patch"`, `schedule "patch"`},
		{"bad policy name", func(b *builder) { b.name = "web tier" }, "Invalid policy name", `shaping "web tier"`},
		{"policy name of 64", func(b *builder) { b.name = strings.Repeat("w", 64) }, "Invalid policy name", `shaping "w`},
		{"policy name starting with a dot", func(b *builder) { b.name = ".web" }, "Invalid policy name", `shaping ".web"`},
		{"bad scale name", func(b *builder) { b.scale = strings.Replace(b.scale, `scale "frontend"`, `scale "front end"`, 1) }, "Invalid scale name", `scale "front end"`},
		{"bad schedule name", func(b *builder) { b.schedule = strings.Replace(b.schedule, `schedule "patch"`, `schedule "-patch"`, 1) }, "Invalid schedule name", `schedule "-patch"`},
		{"locality wildcard only", func(b *builder) { b.locality = `datacenter = "*"` }, "Invalid locality", `locality {`},
		{"locality slash", func(b *builder) { b.locality = `node_pool = "a/b"` }, "Invalid locality.node_pool", `"a/b"`},
		{"locality empty", func(b *builder) { b.locality = `node_class = ""` }, "Invalid locality.node_class", `node_class = ""`},
		// Whitespace of any kind, not only spaces, tabs and newlines.
		{"locality carriage return", func(b *builder) { b.locality = `datacenter = "dc1\rb"` }, "Invalid locality.datacenter", `"dc1\rb"`},
		{"locality no-break space", func(b *builder) { b.locality = "node_class = \"web\u00a0a\"" }, "Invalid locality.node_class", "\"web\u00a0a\""},
		{"target with a no-break space", func(b *builder) { b.migrate = "targets = [\"dc2/*/web\u00a0a\"]" }, "Invalid migrate.targets[0]", "\"dc2/*/web\u00a0a\""},
		{"missing locality", func(b *builder) { b.locality = "-" }, "Missing locality block", `shaping "web"`},
		// Nomad's built-in pool "all" holds no node: a locality of it
		// would match nothing.
		{"node pool all", func(b *builder) { b.locality = "datacenter = \"dc1\"\n node_pool = \"all\"" }, "Invalid locality.node_pool", `"all"`},
		{"target in node pool all", func(b *builder) { b.migrate = `targets = ["dc2", "dc2/all"]` }, "Invalid migrate.targets[1]", `"dc2/all"`},
		{"drain of node pool all", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = [\"*/all/web\"]", 1)
		}, "Invalid schedule.patch.localities[0]", `"*/all/web"`},
		// Nomad refuses a node whose datacenter holds '*' or whose node
		// pool is not [A-Za-z0-9_-]{1,128}: such a locality matches none.
		{"datacenter glob", func(b *builder) { b.locality = `datacenter = "us-east-*"` }, "Invalid locality.datacenter", `"us-east-*"`},
		{"node pool no Nomad name", func(b *builder) { b.locality = "datacenter = \"dc1\"\n node_pool = \"web.tier\"" }, "Invalid locality.node_pool", `"web.tier"`},
		{"target datacenter glob", func(b *builder) { b.migrate = `targets = ["dc2-*"]` }, "Invalid migrate.targets[0]", `"dc2-*"`},
		{"drain of a datacenter glob", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = [\"dc1\", \"dc*/web\"]", 1)
		}, "Invalid schedule.patch.localities[1]", `"dc*/web"`},
		// A datacenter named as the store's node or group scope, narrowed
		// by pool or class, would make node/… or group/… series.
		{"locality in the node scope", func(b *builder) { b.locality = "datacenter = \"node\"\n node_pool = \"web\"" }, "Invalid locality.datacenter", `"node"`},
		{"locality in the group scope", func(b *builder) { b.locality = "datacenter = \"group\"\n node_class = \"gpu\"" }, "Invalid locality.datacenter", `"group"`},
		{"drained locality in the node scope", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = [\"dc1\", \"node/web\"]", 1)
		}, "Invalid schedule.patch.localities[1]", `"node/web"`},
		{"target in the group scope", func(b *builder) { b.migrate = `targets = ["group/batch"]` }, "Invalid migrate.targets[0]", `targets = ["group/batch"]`},
		{"unknown block", func(b *builder) { b.extra = "limits {\n}" }, "Unsupported block type limits", `limits {`},
		// HCL's own words name only the attribute: which block's?
		{"attribute set twice", func(b *builder) { b.reserve += "\n    max_cpu = 2000" }, "Attribute redefined reserve.max_cpu", `max_cpu = 2000`},
		{"attribute set twice in a target", func(b *builder) {
			b.scale = strings.Replace(b.scale, `job   = "web"`, `job   = "web"`+"\n      job = \"api\"", 1)
		}, "Attribute redefined scale.frontend.target.nomad-job.job", `job = "api"`},
		{"unknown block in migrate", func(b *builder) { b.migrate = "priorty {\n age = 1\n }" }, "Unsupported block type migrate.priorty", `priorty {`},
		{"two forecast blocks", func(b *builder) { b.extra = "forecast {\n}" }, "Duplicate forecast block", `forecast {`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, diags, src := parse(t, tc.apply)
			if !diags.HasErrors() {
				t.Fatalf("no error; source:\n%s", src)
			}
			if ps != nil {
				t.Errorf("policies returned despite errors")
			}
			var found *hcl.Diagnostic
			for _, d := range diags {
				if d.Severity == hcl.DiagError && strings.Contains(d.Summary, tc.summary) {
					found = d
					break
				}
			}
			if found == nil {
				t.Fatalf("no error with summary %q in:\n%s\nsource:\n%s", tc.summary, diags.Error(), src)
			}
			if found.Subject == nil {
				t.Fatalf("%q has no source range", found.Summary)
			}
			// A duplicate is reported on the repeated (last) occurrence.
			want := lineOf(t, src, tc.at)
			if strings.HasPrefix(tc.summary, "Duplicate") {
				want = strings.Count(src[:strings.LastIndex(src, tc.at)], "\n") + 1
			}
			if l := found.Subject.Start.Line; l != want {
				t.Errorf("%q at line %d, want %d (the line holding %q)\nsource:\n%s", found.Summary, l, want, tc.at, src)
			}
			if found.Subject.Filename != "test.hcl" {
				t.Errorf("filename %q, want test.hcl", found.Subject.Filename)
			}
		})
	}
}

// ignore drops what cmp cannot or need not compare.
var ignore = cmp.Options{
	cmpopts.IgnoreFields(policies.Policy{}, "DeclRange"),
	cmpopts.IgnoreFields(policies.Scale{}, "DeclRange"),
	cmpopts.IgnoreFields(policies.Schedule{}, "DeclRange", "Expr"),
	cmpopts.IgnoreFields(webhook.Config{}, "Body"),
	cmpopts.EquateEmpty(),
}

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(*builder)
		check func(t *testing.T, p *policies.Policy)
	}{
		{"every block", nil, func(t *testing.T, p *policies.Policy) {
			want := &policies.Policy{
				Name:     "web",
				Locality: policies.Locality{Datacenter: "dc1"},
				Forecast: policies.Forecast{
					Model: "auto", Horizon: time.Hour, Step: 5 * time.Minute, History: 14 * 24 * time.Hour,
					Seasonality: []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}, Quantile: 0.9,
				},
				Headroom: policies.Headroom{CPU: 20, Memory: 20},
				Reserve: policies.Reserve{Enabled: true, Priority: 10, LeadTime: 15 * time.Minute,
					TTL: time.Hour, MaxCPU: 1000, MaxMemory: 2048},
				Migrate: policies.Migrate{MaxParallel: 2, Strategy: policies.StrategyReschedule, LeadTime: 15 * time.Minute,
					Priority: policies.PriorityWeights{RelieveHotspot: 2, Critical: 3, Age: 1}},
				Scales: []policies.Scale{{Name: "frontend", Min: 1, Max: 5, Cooldown: 5 * time.Minute,
					Target: policies.Target{Plugin: "nomad-job", Config: &nomadjob.Config{Job: "web", Group: "frontend", DeploymentWait: nomadjob.DefaultDeploymentWait}}}},
				Schedules: []policies.Schedule{{Name: "patch", Cron: "0 2 * * 0", Duration: 3 * time.Hour,
					Action: policies.ActionDrain, Localities: []policies.Locality{{Datacenter: "dc1"}}}},
			}
			if diff := cmp.Diff(want, p, ignore); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
		}},
		{"defaults", func(b *builder) {
			b.forecast, b.headroom, b.reserve, b.migrate, b.scale, b.schedule = "-", "-", "-", "-", "", ""
		}, func(t *testing.T, p *policies.Policy) {
			want := &policies.Policy{
				Name:     "web",
				Locality: policies.Locality{Datacenter: "dc1"},
				Forecast: policies.Forecast{Model: "auto", Horizon: time.Hour, Step: time.Minute,
					History: 24 * time.Hour, AutoSeasonality: true, Quantile: 0.9},
				Headroom: policies.Headroom{CPU: 20, Memory: 20},
				Reserve:  policies.Reserve{Priority: 10, LeadTime: 15 * time.Minute, TTL: time.Hour},
				Migrate: policies.Migrate{MaxParallel: 2, Strategy: policies.StrategyReschedule, LeadTime: 15 * time.Minute,
					Priority: policies.PriorityWeights{RelieveHotspot: 2, Critical: 3, Age: 1}},
			}
			if diff := cmp.Diff(want, p, ignore); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
		}},
		{"default history at 5m", func(b *builder) { b.forecast = `step = "5m"` }, func(t *testing.T, p *policies.Policy) {
			if p.Forecast.History != 14*24*time.Hour {
				t.Errorf("history = %v, want 14d (the default, which the store keeps at 5m)", p.Forecast.History)
			}
		}},
		{"default history at 1h", func(b *builder) { b.forecast = "step = \"1h\"\n horizon = \"1d\"" }, func(t *testing.T, p *policies.Policy) {
			if p.Forecast.History != 14*24*time.Hour {
				t.Errorf("history = %v, want 14d", p.Forecast.History)
			}
		}},
		// A step that does not divide what the store keeps (1d at 7m,
		// 14d at 25m) takes the most whole steps that fit in it: the
		// history left out is never the error.
		{"default history at 7m", func(b *builder) { b.forecast = "step = \"7m\"\n horizon = \"7h\"" }, func(t *testing.T, p *policies.Policy) {
			if want := 205 * 7 * time.Minute; p.Forecast.History != want {
				t.Errorf("history = %v, want %v (205 steps of 7m, the most in 1d)", p.Forecast.History, want)
			}
		}},
		{"default history at 25m", func(b *builder) { b.forecast = "step = \"25m\"\n horizon = \"50m\"" }, func(t *testing.T, p *policies.Policy) {
			if want := 806 * 25 * time.Minute; p.Forecast.History != want {
				t.Errorf("history = %v, want %v (806 steps of 25m, the most in 14d)", p.Forecast.History, want)
			}
		}},
		{"history the store keeps at 1h", func(b *builder) { b.forecast = "step = \"1h\"\n horizon = \"1d\"\n history = \"90d\"" }, func(t *testing.T, p *policies.Policy) {
			if p.Forecast.History != 90*24*time.Hour {
				t.Errorf("history = %v, want 90d", p.Forecast.History)
			}
		}},
		{"auto seasonality", func(b *builder) { b.forecast = `seasonality = "auto"` }, func(t *testing.T, p *policies.Policy) {
			if !p.Forecast.AutoSeasonality || len(p.Forecast.Seasonality) != 0 {
				t.Errorf("seasonality = %v auto=%v, want auto", p.Forecast.Seasonality, p.Forecast.AutoSeasonality)
			}
		}},
		{"seasons sorted", func(b *builder) {
			b.forecast = `seasonality = ["7d", "12h", "1d"]` + "\n step = \"5m\"\n history = \"14d\""
		}, func(t *testing.T, p *policies.Policy) {
			want := []time.Duration{12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
			if diff := cmp.Diff(want, p.Forecast.Seasonality); diff != "" {
				t.Errorf("seasons (-want +got):\n%s", diff)
			}
		}},
		{"act settings", func(b *builder) {
			b.extra = `forecast_only = true`
			b.migrate = "lead_time = \"45m\"\n rebalance = true\n spread = true\n spread_by_use = true\n targets = [\"dc2\", \"dc3/*/web\"]"
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    nodes = \"dc1-rack-a-*\"", 1)
		}, func(t *testing.T, p *policies.Policy) {
			m := p.Migrate
			if !p.ForecastOnly || m.LeadTime != 45*time.Minute || !m.Rebalance || !m.Spread || !m.SpreadByUse {
				t.Errorf("forecast_only %v, migrate %+v", p.ForecastOnly, m)
			}
			if diff := cmp.Diff([]policies.Locality{{Datacenter: "dc2"}, {Datacenter: "dc3", NodeClass: "web"}}, m.Targets); diff != "" {
				t.Errorf("targets (-want +got):\n%s", diff)
			}
			if p.Schedules[0].Nodes != "dc1-rack-a-*" {
				t.Errorf("nodes = %q", p.Schedules[0].Nodes)
			}
		}},
		{"migrate lead_time follows reserve lead_time", func(b *builder) {
			b.reserve = "lead_time = \"40m\""
		}, func(t *testing.T, p *policies.Policy) {
			if p.Migrate.LeadTime != 40*time.Minute {
				t.Errorf("migrate.lead_time %v; want reserve.lead_time 40m", p.Migrate.LeadTime)
			}
		}},
		{"seasonal-naive with its own season", func(b *builder) {
			b.forecast = "model = \"seasonal-naive\"\n step = \"5m\"\n history = \"14d\"\n seasonality = [\"1d\"]"
		}, func(t *testing.T, p *policies.Policy) {
			if p.Forecast.Model != "seasonal-naive" || len(p.Forecast.Seasonality) != 1 || p.Forecast.Seasonality[0] != 24*time.Hour {
				t.Errorf("forecast %+v", p.Forecast)
			}
		}},
		{"lead_time past the default ttl without reservations", func(b *builder) {
			// ttl is refused without reservations, so it cannot bound lead_time.
			b.reserve = "lead_time = \"2h\""
		}, func(t *testing.T, p *policies.Policy) {
			if p.Reserve.Enabled || p.Reserve.LeadTime != 2*time.Hour || p.Migrate.LeadTime != 2*time.Hour {
				t.Errorf("reserve %+v, migrate.lead_time %v; want reservations off and both lead times 2h", p.Reserve, p.Migrate.LeadTime)
			}
		}},
		// Names start with a letter or digit and hold letters, digits,
		// '-', '_' and '.', at most 63.
		{"names at their longest", func(b *builder) {
			b.name = "9" + strings.Repeat("w.-_", 15) + "ab"
			b.scale = strings.Replace(b.scale, `scale "frontend"`, `scale "0.a-b_c"`, 1)
		}, func(t *testing.T, p *policies.Policy) {
			if len(p.Name) != 63 || p.Scales[0].Name != "0.a-b_c" {
				t.Errorf("name %q (%d), scale %q", p.Name, len(p.Name), p.Scales[0].Name)
			}
		}},
		{"wildcards", func(b *builder) { b.locality = "datacenter = \"*\"\n node_pool = \"batch\"" }, func(t *testing.T, p *policies.Policy) {
			if p.Locality != (policies.Locality{NodePool: "batch"}) {
				t.Errorf("locality = %+v", p.Locality)
			}
		}},
		{"datacenter named node, whole", func(b *builder) { b.locality = `datacenter = "node"` }, func(t *testing.T, p *policies.Policy) {
			if p.Locality != (policies.Locality{Datacenter: "node"}) || p.Locality.String() != "node" {
				t.Errorf("locality = %+v (%s)", p.Locality, p.Locality)
			}
		}},
		{"datacenter named nodes, with a pool", func(b *builder) { b.locality = "datacenter = \"nodes\"\n node_pool = \"web\"" }, func(t *testing.T, p *policies.Policy) {
			if p.Locality.String() != "nodes/web" {
				t.Errorf("locality = %s", p.Locality)
			}
		}},
		{"schedule localities", func(b *builder) {
			b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = [\"dc1/*/web\", \"dc2\"]", 1)
		}, func(t *testing.T, p *policies.Policy) {
			want := []policies.Locality{{Datacenter: "dc1", NodeClass: "web"}, {Datacenter: "dc2"}}
			if diff := cmp.Diff(want, p.Schedules[0].Localities); diff != "" {
				t.Errorf("localities (-want +got):\n%s", diff)
			}
			if p.Schedules[0].Action != policies.ActionDrain {
				t.Errorf("action = %q", p.Schedules[0].Action)
			}
		}},
		{"two policies' worth of scales", func(b *builder) {
			b.scale += `
  scale "hook" {
    min = 0
    max = 3
    cooldown = "90s"
    target "webhook" {
      url = "https://example.com/scale"
      method = "patch"
      headers = { "x-token-header" = "a" }
    }
  }
  scale "cmd" {
    min = 0
    max = 1
    target "exec" {
      command = ["/bin/scale", "up"]
    }
  }`
		}, func(t *testing.T, p *policies.Policy) {
			if len(p.Scales) != 3 {
				t.Fatalf("%d scales, want 3", len(p.Scales))
			}
			wh := p.Scales[1].Target.Config.(*webhook.Config)
			if wh.Method != "PATCH" || wh.Headers["X-Token-Header"] != "a" || wh.Timeout != webhook.DefaultTimeout || p.Scales[1].Cooldown != 90*time.Second {
				t.Errorf("webhook = %+v cooldown %v", wh, p.Scales[1].Cooldown)
			}
			ex := p.Scales[2].Target.Config.(*exec.Config)
			if diff := cmp.Diff([]string{"/bin/scale", "up"}, ex.Command); diff != "" || ex.Timeout != exec.DefaultTimeout {
				t.Errorf("exec = %+v", ex)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, diags, src := parse(t, tc.apply)
			if diags.HasErrors() {
				t.Fatalf("errors: %s\nsource:\n%s", diags.Error(), src)
			}
			if len(ps) != 1 {
				t.Fatalf("%d policies, want 1", len(ps))
			}
			tc.check(t, ps[0])
		})
	}
}

// TestDefaultHistoryShorterThanHorizonSaysSo: a horizon longer than the
// default history (14d at a step of 1h, which reads 90d) is refused at
// the forecast block, saying that the history left out is the default and
// how long it may be set; a history set too short is told as set.
func TestDefaultHistoryShorterThanHorizonSaysSo(t *testing.T) {
	for _, tc := range []struct {
		forecast, want string
	}{
		{"step = \"1h\"\n horizon = \"30d\"", "The history left out is 14d at a step of 1h, shorter than the horizon 30d; models cannot forecast further than they have seen. Set forecast.history to at least the horizon (at most 90d at this step)."},
		{"step = \"1h\"\n horizon = \"30d\"\n history = \"20d\"", "The history 20d is shorter than the horizon 30d; models cannot forecast further than they have seen."},
	} {
		ps, diags, src := parse(t, func(b *builder) { b.forecast = tc.forecast })
		if !diags.HasErrors() || len(ps) != 0 || len(diags) != 1 || diags[0].Summary != "Invalid forecast.history" || diags[0].Detail != tc.want {
			t.Errorf("%s: %v; want Invalid forecast.history, %q", tc.forecast, diags, tc.want)
			continue
		}
		at := `"20d"`
		if !strings.Contains(tc.forecast, "history") {
			at = "forecast {"
		}
		if l := diags[0].Subject.Start.Line; l != lineOf(t, src, at) {
			t.Errorf("%s: at line %d, want the line of %s", tc.forecast, l, at)
		}
	}
}

func TestSeasonLongerThanHalfHistoryWarns(t *testing.T) {
	ps, diags, _ := parse(t, func(b *builder) { b.forecast = "step = \"5m\"\n history = \"7d\"\n seasonality = [\"1d\", \"7d\"]" })
	if diags.HasErrors() || len(ps) != 1 {
		t.Fatalf("want a valid policy, got %s", diags.Error())
	}
	if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || !strings.Contains(diags[0].Summary, "forecast.seasonality[1]") {
		t.Fatalf("want one warning on forecast.seasonality[1], got %v", diags)
	}
}

func TestExamples(t *testing.T) {
	ps, diags := policies.LoadDir("examples")
	if len(diags) != 0 {
		t.Fatalf("examples are not clean: %s", diags.Error())
	}
	var names []string
	blocks := map[string]bool{}
	for _, p := range ps {
		names = append(names, p.Name)
		if p.Reserve.Enabled {
			blocks["reserve.enabled"] = true
		}
		if p.Forecast.AutoSeasonality {
			blocks["seasonality auto"] = true
		} else {
			blocks["seasonality list"] = true
		}
		for _, s := range p.Scales {
			blocks["target "+s.Target.Plugin] = true
		}
		for _, s := range p.Schedules {
			blocks["action "+string(s.Action)] = true
		}
		blocks["strategy "+string(p.Migrate.Strategy)] = true
	}
	if diff := cmp.Diff([]string{"batch-pool", "storage-maintenance", "web-daily-peak"}, names); diff != "" {
		t.Errorf("names, alphabetical by file (-want +got):\n%s", diff)
	}
	for _, want := range []string{"reserve.enabled", "seasonality auto", "seasonality list", "target nomad-job",
		"target webhook", "target exec", "action drain", "action peak", "strategy reschedule", "strategy drain", "strategy affinity"} {
		if !blocks[want] {
			t.Errorf("no example covers %s", want)
		}
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDuplicateAcrossFiles(t *testing.T) {
	one := "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n}\n"
	dir := writeFiles(t, map[string]string{"a.hcl": one, "b.hcl": "\n\n" + one})
	a, b := filepath.Join(dir, "a.hcl"), filepath.Join(dir, "b.hcl")
	_, diags := policies.LoadFiles(a, b)
	if !diags.HasErrors() || len(diags) != 1 {
		t.Fatalf("want one error, got %v", diags)
	}
	d := diags[0]
	if d.Subject == nil || d.Subject.Filename != b || d.Subject.Start.Line != 3 {
		t.Errorf("error at %v, want %s line 3", d.Subject, b)
	}
	if !strings.Contains(d.Detail, a+":1,") {
		t.Errorf("detail %q does not name the first definition %s:1", d.Detail, a)
	}
}

func TestLoadDir(t *testing.T) {
	p := func(name string) string {
		return fmt.Sprintf("shaping %q {\n  locality {\n    node_pool = %q\n  }\n}\n", name, name)
	}
	dir := writeFiles(t, map[string]string{
		"20-b.hcl":  p("b"),
		"10-a.hcl":  p("a") + p("c"),
		"notes.txt": "not a policy",
	})
	if err := os.Mkdir(filepath.Join(dir, "sub.hcl"), 0o700); err != nil {
		t.Fatal(err)
	}
	ps, diags := policies.LoadDir(dir)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff([]string{"a", "c", "b"}, names); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}

	// A file named twice (a glob beside its directory, ./ or not, through
	// a link or another directory's name for it) is read once: its
	// policies are not duplicates of themselves.
	link := filepath.Join(t.TempDir(), "policies")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	ps, diags = policies.NewLoader().LoadPaths(filepath.Join(dir, "20-b.hcl"), dir, dir+"/./20-b.hcl", filepath.Join(link, "10-a.hcl"))
	names = names[:0]
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if diags.HasErrors() || fmt.Sprint(names) != "[b a c]" {
		t.Errorf("a file named twice: %v, %v; want b a c without errors", names, diags)
	}

	if _, diags := policies.LoadDir(filepath.Join(dir, "missing")); !diags.HasErrors() {
		t.Errorf("a missing directory is not an error")
	}
	if _, diags := policies.LoadFiles(filepath.Join(dir, "missing.hcl")); !diags.HasErrors() {
		t.Errorf("a missing file is not an error")
	}
}

func TestEmptyFileWarns(t *testing.T) {
	ps, diags := policies.Parse("empty.hcl", []byte("# nothing\n"))
	if diags.HasErrors() || len(ps) != 0 || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning {
		t.Fatalf("want one warning and no policy, got %v %v", ps, diags)
	}
}

func TestParseLocality(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    policies.Locality
		wantErr bool
	}{
		{in: "dc1", want: policies.Locality{Datacenter: "dc1"}},
		{in: "dc1/web", want: policies.Locality{Datacenter: "dc1", NodePool: "web"}},
		{in: "dc1/*/gpu", want: policies.Locality{Datacenter: "dc1", NodeClass: "gpu"}},
		{in: "*/batch", want: policies.Locality{NodePool: "batch"}},
		{in: "*", wantErr: true},
		{in: "*/*/*", wantErr: true},
		{in: "", wantErr: true},
		{in: "dc1//x", wantErr: true},
		{in: "a/b/c/d", wantErr: true},
		{in: " dc1", wantErr: true},
		{in: "dc 1", wantErr: true},
		{in: "dc\u00a01", wantErr: true},
		{in: "dc1/web\rx", wantErr: true},
		// The store's per-node and per-group series scopes.
		{in: "node/web", wantErr: true},
		{in: "group/*/gpu", wantErr: true},
		{in: "node", want: policies.Locality{Datacenter: "node"}},
		{in: "*/node", want: policies.Locality{NodePool: "node"}},
		{in: "nodes/web", want: policies.Locality{Datacenter: "nodes", NodePool: "web"}},
	} {
		got, err := policies.ParseLocality(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseLocality(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != tc.want {
			t.Errorf("ParseLocality(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		back, err := policies.ParseLocality(got.String())
		if err != nil || back != got {
			t.Errorf("round trip of %q through %q = %+v, %v", tc.in, got.String(), back, err)
		}
	}
}

func TestLocalityMatches(t *testing.T) {
	l := policies.Locality{Datacenter: "dc1", NodeClass: "web"}
	for _, tc := range []struct {
		dc, pool, class string
		want            bool
	}{
		{"dc1", "default", "web", true},
		{"dc1", "", "web", true},
		{"dc2", "default", "web", false},
		{"dc1", "default", "db", false},
	} {
		if got := l.Matches(tc.dc, tc.pool, tc.class); got != tc.want {
			t.Errorf("Matches(%q, %q, %q) = %v, want %v", tc.dc, tc.pool, tc.class, got, tc.want)
		}
	}
}

func TestScheduleWindows(t *testing.T) {
	ps, diags, _ := parse(t, nil) // "0 2 * * 0" for 3h: Sundays 02:00-05:00 UTC
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	s := ps[0].Schedules[0]
	sun := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC) // a Sunday
	at := func(d time.Duration) time.Time { return sun.Add(d) }
	week := 7 * 24 * time.Hour
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     []policies.Window
	}{
		{"before", at(0), at(2 * time.Hour), nil},
		{"starts inside", at(time.Hour), at(3 * time.Hour), []policies.Window{{at(2 * time.Hour), at(5 * time.Hour)}}},
		{"already running", at(4 * time.Hour), at(6 * time.Hour), []policies.Window{{at(2 * time.Hour), at(5 * time.Hour)}}},
		{"just ended", at(5 * time.Hour), at(6 * time.Hour), nil},
		{"two weeks", at(0), at(2 * week), []policies.Window{
			{at(2 * time.Hour), at(5 * time.Hour)},
			{at(week + 2*time.Hour), at(week + 5*time.Hour)},
		}},
		{"empty range", at(3 * time.Hour), at(3 * time.Hour), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Windows(tc.from, tc.to)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("windows (-want +got):\n%s", diff)
			}
		})
	}
}

// TestScheduleWindowsConcurrent: one schedule's windows read from several
// goroutines at once (the forecast and the act half do) are each what a
// lone reader gets; under the race detector, the cron expression's Next,
// which writes into the expression, raced before Windows serialised it.
func TestScheduleWindowsConcurrent(t *testing.T) {
	ps, diags, _ := parse(t, nil)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	s := &ps[0].Schedules[0]
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	want := s.Windows(from, from.AddDate(0, 3, 0))
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				// Months apart, so each reader works out other days of
				// the month than the others.
				f := from.AddDate(0, (g+i)%12, 0)
				got := s.Windows(f, f.AddDate(0, 3, 0))
				if f.Equal(from) && !slices.Equal(got, want) {
					errs <- fmt.Sprintf("goroutine %d: %d windows, want %d", g, len(got), len(want))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestForecastSteps(t *testing.T) {
	f := policies.Forecast{Horizon: time.Hour, Step: 5 * time.Minute}
	if got := f.Steps(); got != 12 {
		t.Errorf("Steps() = %d, want 12", got)
	}
	if got := (policies.Forecast{Horizon: time.Hour}).Steps(); got != 0 {
		t.Errorf("Steps() with no step = %d, want 0", got)
	}
}

func TestLoadEmptyDirWarns(t *testing.T) {
	ps, diags := policies.LoadDir(t.TempDir())
	if diags.HasErrors() || len(ps) != 0 || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning {
		t.Errorf("want one warning for an empty directory, got %v", diags)
	}
}

func TestScheduleWindowsBounded(t *testing.T) {
	ps, diags, _ := parse(t, func(b *builder) {
		b.schedule = strings.Replace(b.schedule, "0 2 * * 0", "* * * * *", 1)
	})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := ps[0].Schedules[0].Windows(from, from.AddDate(1, 0, 0))
	if len(got) != policies.MaxWindows {
		t.Errorf("%d windows, want the cap %d", len(got), policies.MaxWindows)
	}
}

// TestTwoLocalityBlocksAreNotAMissingOne: a second locality block is
// reported as the duplicate it is, and the policy it is in (but not a
// later policy without one) is not also told it has no locality block.
func TestTwoLocalityBlocksAreNotAMissingOne(t *testing.T) {
	src := "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n  locality {\n    datacenter = \"dc2\"\n  }\n}\n" +
		"shaping \"batch\" {\n  headroom {\n    cpu = 20\n  }\n}\n"
	_, diags := policies.Parse("test.hcl", []byte(src))
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%s at line %d", d.Summary, d.Subject.Start.Line))
	}
	want := []string{"Duplicate locality block at line 5", "Missing locality block at line 9"}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics %q, want %q", got, want)
	}
}

// TestAgentSettingsInAPolicyFile: an agent configuration read as a policy
// file (policies.dir pointed at the configuration's directory) is refused
// naming each setting, and saying that a policy file holds shaping blocks
// only; a typo of shaping is told as a typo.
func TestAgentSettingsInAPolicyFile(t *testing.T) {
	_, diags := policies.Parse("agent.hcl", []byte("log_level = \"info\"\nserver {\n  enabled = true\n}\n"))
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%s at line %d", d.Summary, d.Subject.Start.Line))
		if !strings.Contains(d.Detail, `holds shaping "NAME" { ... } blocks and nothing else`) {
			t.Errorf("%s: detail %q does not say what a policy file holds", d.Summary, d.Detail)
		}
	}
	want := []string{"Unsupported argument log_level at line 1", "Unsupported block type server at line 2"}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics %q, want %q", got, want)
	}
	// A typo of shaping is told as one, without the rest.
	_, diags = policies.Parse("typo.hcl", []byte("shapping \"web\" {\n}\n"))
	if len(diags) != 1 || diags[0].Summary != "Unsupported block type shapping" || !strings.Contains(diags[0].Detail, `Did you mean "shaping"?`) ||
		strings.Contains(diags[0].Detail, "policies.dir") {
		t.Errorf("a typo of shaping: %v", diags)
	}
}

// TestOverlappingWindowsWarn: a schedule whose windows last longer than
// the time between two of its starts (duration "25h" on weekdays, "2h"
// every hour) is warned of at its duration, as its windows overlap; one
// whose windows end as the next starts is not.
func TestOverlappingWindowsWarn(t *testing.T) {
	for _, tc := range []struct {
		cron, duration string
		warn           string
	}{
		{"0 2 * * 1-5", "25h", `Each window lasts 1d1h, but cron "0 2 * * 1-5" starts one as little as 1d after another`},
		{"0 * * * *", "2h", `Each window lasts 2h, but cron "0 * * * *" starts one as little as 1h after another`},
		{"0 2 * * 1-5", "1d", ""},
		{"0 0 14 3 * 2027", "30d", ""}, // once
	} {
		ps, diags, src := parse(t, func(b *builder) {
			b.schedule = strings.NewReplacer("0 2 * * 0", tc.cron, `"3h"`, fmt.Sprintf("%q", tc.duration)).Replace(b.schedule)
		})
		if diags.HasErrors() || len(ps) != 1 {
			t.Errorf("%s for %s: %v", tc.cron, tc.duration, diags)
			continue
		}
		if tc.warn == "" {
			if len(diags) != 0 {
				t.Errorf("%s for %s: %v; want no warning", tc.cron, tc.duration, diags)
			}
			continue
		}
		if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != "Questionable schedule.patch.duration" ||
			!strings.HasPrefix(diags[0].Detail, tc.warn) || diags[0].Subject.Start.Line != lineOf(t, src, "duration =") {
			t.Errorf("%s for %s: %v; want a warning at the duration, %q", tc.cron, tc.duration, diags, tc.warn)
		}
	}
}

// TestLoadDirWarnsOfSubdirectories: policies sorted into a subdirectory
// of the directory read are not read, with a warning naming it; a hidden
// subdirectory (a Kubernetes ConfigMap's, whose files the directory
// links to) and one without *.hcl files are passed in silence.
func TestLoadDirWarnsOfSubdirectories(t *testing.T) {
	p := func(name string) string {
		return fmt.Sprintf("shaping %q {\n  locality {\n    node_pool = %q\n  }\n}\n", name, name)
	}
	dir := writeFiles(t, map[string]string{"web.hcl": p("web")})
	for name, src := range map[string]string{"teams/batch.hcl": p("batch"), "..2026_01_05/web.hcl": p("web"), "notes/README.md": "x"} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ps, diags := policies.LoadDir(dir)
	if diags.HasErrors() || len(ps) != 1 || ps[0].Name != "web" {
		t.Fatalf("policies %v, diagnostics %v; want web alone", ps, diags)
	}
	want := filepath.Join(dir, "teams") + " holds *.hcl files (batch.hcl), which are not read: only the files directly in " + dir + " are."
	if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || !strings.HasPrefix(diags[0].Detail, want) {
		t.Errorf("diagnostics %v; want one warning, %q", diags, want)
	}
}

// TestCronForms: a cron that restricts both the day of the month and the
// day of the week is warned of at the cron, since it starts a window on
// days matching either (hashicorp/cronexpr, as any cron, reads "0 0 13 * 5"
// as every 13th and every Friday); a seven-field cron, whose first field
// is seconds, is refused; cronexpr's shorthands ("@daily") are taken, and
// other crons' ("@every 6h", "@reboot", "@midnight"), of which cronexpr
// says only "missing field(s)", are refused naming the ones it takes.
func TestCronForms(t *testing.T) {
	// What the warning says, shown by the parser itself.
	e, err := cronexpr.Parse("0 0 13 * 5")
	if err != nil {
		t.Fatal(err)
	}
	got := e.NextN(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 3)
	want := []time.Time{time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 11, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 13, 0, 0, 0, 0, time.UTC)}
	if !slices.Equal(got, want) {
		t.Errorf(`"0 0 13 * 5" starts at %v, want Fridays and the 13th: %v`, got, want)
	}
	// The shorthands stand for their five fields, as the docs say.
	for short, long := range map[string]string{"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"} {
		from := time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC)
		if a, b := cronexpr.MustParse(short).NextN(from, 3), cronexpr.MustParse(long).NextN(from, 3); !slices.Equal(a, b) {
			t.Errorf("%s starts at %v, %q at %v", short, a, long, b)
		}
	}
	for _, tc := range []struct {
		cron       string
		warn, fail string
	}{
		{"0 0 13 * 5", `Cron "0 0 13 * 5" restricts both the day of the month (13) and the day of the week (5)`, ""},
		{"0 0 1-7 * MON 2027", `restricts both the day of the month (1-7) and the day of the week (MON)`, ""},
		{"0 0 13 * *", "", ""},
		{"0 0 * * 5", "", ""},
		{"0 0 ? * 5", "", ""},
		{"0 0 0 13 * 5 2027", "", "its seven fields start with seconds"},
		// All past, but not never: the start checks warn of it, as of a
		// window of last year.
		{"0 0 1 1 * 1999", "", ""},
		{"@daily", "", ""},
		{"@weekly", "", ""},
		{"@every 6h", "", `@every is not one of the shorthands a schedule takes (@yearly, @annually, @monthly, @weekly, @daily, @hourly)`},
		{"@midnight", "", `@midnight is not one of the shorthands`},
		{"@reboot", "", `@reboot is not one of the shorthands`},
		// cronexpr reads no field past the seventh, and a shorthand as its
		// seven: what follows would be dropped without a word.
		{"0 0 2 * * 0 2027 extra", "", "it has 8 fields: give five"},
		{"@weekly 2027", "", `@weekly stands for five fields and takes nothing after it; for a window in one year only, give the five fields and a sixth for the year ("0 0 * * 0 2027")`},
		{"0 0 * * @daily", "", "a shorthand (@yearly, @annually, @monthly, @weekly, @daily, @hourly) stands alone"},
	} {
		ps, diags, src := parse(t, func(b *builder) {
			b.schedule = strings.Replace(b.schedule, "0 2 * * 0", tc.cron, 1)
		})
		switch {
		case tc.fail != "":
			if !diags.HasErrors() || len(ps) != 0 || diags[0].Summary != "Invalid schedule.patch.cron" || !strings.Contains(diags[0].Detail, tc.fail) ||
				diags[0].Subject.Start.Line != lineOf(t, src, "cron") {
				t.Errorf("%s: %v; want it refused at the cron, saying %q", tc.cron, diags, tc.fail)
			}
		case tc.warn != "":
			if diags.HasErrors() || len(ps) != 1 || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != "Questionable schedule.patch.cron" ||
				!strings.Contains(diags[0].Detail, tc.warn) || diags[0].Subject.Start.Line != lineOf(t, src, "cron") {
				t.Errorf("%s: %v; want one warning at the cron, %q", tc.cron, diags, tc.warn)
			}
		default:
			if len(diags) != 0 || len(ps) != 1 {
				t.Errorf("%s: %v; want it taken without a word", tc.cron, diags)
			}
		}
	}
}

// TestTargetSharingNodesWithTheOwnLocalityNamesThem: a migrate target
// that shares nodes with the policy's own locality is refused naming the
// nodes they share: a move there could land back where it left.
func TestTargetSharingNodesWithTheOwnLocalityNamesThem(t *testing.T) {
	b := validBuilder()
	b.migrate = `targets = ["dc2", "*/*/batch"]`
	_, err := policies.Parse("p.hcl", []byte(b.build()))
	want := `"*/*/batch" shares the nodes of dc1/*/batch with the policy's own locality, dc1: a move out of it could land back on the nodes it leaves`
	if !err.HasErrors() || !strings.Contains(err.Error(), want) {
		t.Fatalf("targets sharing nodes with dc1: %v; want %q", err, want)
	}
}

// TestDrainSharingSomeOwnNodesWarned: a drain, declared by the policy of
// dc1, of a locality that shares some of dc1's nodes without holding
// them all loads, warned of, naming the nodes shared; one of a locality
// holding dc1, or sharing none of its nodes, is not.
func TestDrainSharingSomeOwnNodesWarned(t *testing.T) {
	for _, tc := range []struct {
		list, want string
	}{
		{`"*/*/batch"`, `schedule.patch.localities[0]: "*/*/batch" shares the nodes of dc1/*/batch with the policy's own locality, dc1, without holding all of them`},
		{`"dc2", "dc1/*/web"`, `schedule.patch.localities[1]: "dc1/*/web" shares the nodes of dc1/*/web`},
		{`"*/web"`, `schedule.patch.localities[0]: "*/web" shares the nodes of dc1/web`},
		{`"dc2", "dc3/*/batch"`, ""},
	} {
		t.Run(tc.list, func(t *testing.T) {
			ps, diags, src := parse(t, func(b *builder) {
				b.schedule = strings.Replace(b.schedule, `action   = "drain"`, "action   = \"drain\"\n    localities = ["+tc.list+"]", 1)
			})
			if diags.HasErrors() || len(ps) != 1 {
				t.Fatalf("diagnostics %v; want the policy loaded\nsource:\n%s", diags, src)
			}
			if tc.want == "" {
				if len(diags) != 0 {
					t.Fatalf("diagnostics %v; want none", diags)
				}
				return
			}
			if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != "Drain of some of the policy's own nodes" || !strings.Contains(diags[0].Detail, tc.want) {
				t.Fatalf("diagnostics %v; want one warning saying %s", diags, tc.want)
			}
		})
	}
}
