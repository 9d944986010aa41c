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
		{`      broken = "{{.Matchers"` + "\n", nil, "forecast.queries.broken"},
		{`      empty = " "` + "\n", nil, "the query is empty"},
		{`      typo = "sum(x{ {{.Matcher}} })"` + "\n", nil, `executing "typo" at <.Matcher>: map has no entry for key "Matcher" (a query may use {{.Matchers}} and {{.Locality}})`},
	}
	for _, c := range cases {
		ps, diags := Parse("f.hcl", []byte(head+c.items+tail))
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
