package querytmpl_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/promtest"
	"github.com/foreshape/foreshape/internal/querytmpl"
	"github.com/foreshape/foreshape/plugins/source/prometheus"
)

// promqlCases are query templates and a part of what PromQLProblem says
// of them ("" for nothing).
var promqlCases = []struct{ query, problem string }{
	{prometheus.DefaultIOPSQuery, ""},
	{`sum(rate(node_cpu_seconds_total{ {{.Matchers}} }[5m]))`, ""},
	{`sum(x{locality="{{.Locality}}"}) / 100`, ""},
	{`1 + 2`, ""},
	{`sum(rate(x{ {{.Matchers}} }[5m])`, `unclosed left parenthesis, in sum(rate(x{ datacenter="dc1" }[5m])`},
	{`sum by (instance (x{ {{.Matchers}} })`, "parse error"},
	{`rate(x{ {{.Matchers}} })`, "expected type range vector"},
	{`rollup_rate(x{ {{.Matchers}} })`, `unknown function with name "rollup_rate"`},
	{`x{ {{.Matchers}} }[5m]`, "is a range vector, where a range query takes an instant vector or a scalar"},
	{`"text"`, "is a string, where a range query takes"},
}

// TestPromQLProblem: Prometheus's parser finds a syntax error, a function
// it does not know or given the wrong type, and an expression of a type a
// range query refuses, in the query a template renders; nothing in
// queries a range query takes, the default IOPS query among them.
func TestPromQLProblem(t *testing.T) {
	for _, tc := range promqlCases {
		tmpl, err := querytmpl.Parse("q", tc.query)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.query, err)
		}
		got := querytmpl.PromQLProblem(tmpl)
		if (tc.problem == "") != (got == "") || !strings.Contains(got, tc.problem) {
			t.Errorf("PromQLProblem(%q) = %q; want one containing %q", tc.query, got, tc.problem)
		}
	}
}

// TestPromQLProblemAgreesWithPrometheus: a real Prometheus server refuses
// a range query (400) of exactly the rendered queries PromQLProblem finds
// a problem in, and answers the others.
func TestPromQLProblemAgreesWithPrometheus(t *testing.T) {
	srv := promtest.Start(t, promtest.Options{})
	end := time.Now()
	for _, tc := range promqlCases {
		tmpl, err := querytmpl.Parse("q", tc.query)
		if err != nil {
			t.Fatal(err)
		}
		var q strings.Builder
		if err := tmpl.Execute(&q, querytmpl.Data(`datacenter="dc1"`, "dc1")); err != nil {
			t.Fatal(err)
		}
		v := url.Values{"query": {q.String()}, "start": {end.Add(-time.Hour).Format(time.RFC3339)},
			"end": {end.Format(time.RFC3339)}, "step": {"60"}}
		resp, err := http.Get(srv.URL + "/api/v1/query_range?" + v.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Status, Error string
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		refused := resp.StatusCode == http.StatusBadRequest
		if refused != (tc.problem != "") || (!refused && resp.StatusCode != http.StatusOK) {
			t.Errorf("Prometheus answered %s (%s) for %s; PromQLProblem found %q", resp.Status, body.Error, q.String(), tc.problem)
		}
	}
}
