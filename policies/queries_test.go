package policies

import (
	"strings"
	"testing"
)

func TestForecastQueries(t *testing.T) {
	const head = "shaping \"p\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n  forecast {\n    queries = {\n"
	const tail = "    }\n  }\n}\n"
	cases := []struct {
		items string
		want  map[string]string
		err   string
	}{
		{`      queue_depth = "sum(q{ {{.Matchers}} })"` + "\n", map[string]string{"queue_depth": "sum(q{ {{.Matchers}} })"}, ""},
		{`      iops = "sum(x{ {{.Matchers}} })"` + "\n", map[string]string{"iops": "sum(x{ {{.Matchers}} })"}, ""},
		{`      memory = "x"` + "\n", nil, "f.hcl:7,7-19: Invalid forecast.queries.memory"},
		{`      "Queue" = "x"` + "\n", nil, "forecast.queries.Queue"},
		{`      "Queue" = "x"` + "\n", nil, "use lower-case letters, digits and '_', starting with a letter, at most 63 characters"},
		{`      ` + strings.Repeat("q", 63) + ` = "x{ {{.Matchers}} }"` + "\n", map[string]string{strings.Repeat("q", 63): "x{ {{.Matchers}} }"}, ""},
		{`      ` + strings.Repeat("q", 64) + ` = "x{ {{.Matchers}} }"` + "\n", nil, "forecast.queries." + strings.Repeat("q", 64)},
		{`      broken = "{{.Matchers"` + "\n", nil, "forecast.queries.broken"},
		{`      empty = " "` + "\n", nil, "the query is empty"},
		// HCL keeps the later of two values of one key, without a word.
		{`      conns = "sum(a{ {{.Matchers}} })"` + "\n" + `      conns = "sum(b{ {{.Matchers}} })"` + "\n", nil, `f.hcl:8,7-12: Invalid forecast.queries; The key "conns" is written twice`},
		{`      typo = "sum(x{ {{.Matcher}} })"` + "\n", nil, `executing "typo" at <.Matcher>: map has no entry for key "Matcher" (a query may use {{.Matchers}} and {{.Locality}})`},
	}
	for _, c := range cases {
		ps, diags := Parse("f.hcl", []byte(head+c.items+tail))
		if c.err == "" && len(diags) > 0 {
			t.Errorf("%s: diags %v, want none", strings.TrimSpace(c.items), diags)
		}
		if c.err != "" {
			if !diags.HasErrors() || !strings.Contains(diags.Error(), c.err) {
				t.Errorf("%s: diags %v, want %q", strings.TrimSpace(c.items), diags, c.err)
			}
			continue
		}
		if diags.HasErrors() {
			t.Errorf("%s: %v", strings.TrimSpace(c.items), diags)
			continue
		}
		for k, v := range c.want {
			if ps[0].Forecast.Queries[k] != v {
				t.Errorf("queries = %v, want %v", ps[0].Forecast.Queries, c.want)
			}
		}
	}
}

// TestForecastQueryNotPromQL: a query that Prometheus's PromQL parser
// refuses, or that renders a range vector, is kept with a warning at its
// item that says why (another dialect may take it), not refused.
func TestForecastQueryNotPromQL(t *testing.T) {
	src := "shaping \"p\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n  forecast {\n    queries = {\n" +
		"      conns = \"sum(rate(conns_total{ {{.Matchers}} }[5m])\"\n" +
		"      window = \"conns_total{ {{.Matchers}} }[5m]\"\n" +
		"      ok = \"sum(rate(ok_total{ {{.Matchers}} }[5m]))\"\n" +
		"    }\n  }\n}\n"
	ps, diags := Parse("f.hcl", []byte(src))
	if diags.HasErrors() || len(ps) != 1 {
		t.Fatalf("%d policies, %v", len(ps), diags)
	}
	if got := len(ps[0].Forecast.Queries); got != 3 {
		t.Errorf("%d queries kept, want the 3", got)
	}
	want := []string{
		`f.hcl:7,7-59: Questionable forecast.queries.conns; 1:46: parse error: unclosed left parenthesis, in sum(rate(conns_total{ datacenter="dc1" }[5m]). Prometheus refuses the query`,
		`f.hcl:8,7-50: Questionable forecast.queries.window; conns_total{ datacenter="dc1" }[5m] is a range vector, where a range query takes an instant vector or a scalar`,
	}
	if len(diags) != len(want) {
		t.Fatalf("diags %v, want %d warnings", diags, len(want))
	}
	for i, w := range want {
		if !strings.Contains(diags[i].Error(), w) {
			t.Errorf("warning %d: %s\nwant one holding %s", i, diags[i].Error(), w)
		}
	}
}
