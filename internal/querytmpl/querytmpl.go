// Package querytmpl parses the PromQL query templates of the agent's
// configuration (prometheus.iops_query) and of the policies
// (forecast.queries) the way the Prometheus source renders them, so that
// what the validators accept the agent can run, and checks the query a
// template renders with Prometheus's own PromQL parser (PromQLProblem).
package querytmpl

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/prometheus/prometheus/promql/parser"
)

// Data is what a query is rendered with for one locality: Matchers, the
// label matchers that select its nodes (`datacenter="dc1",node_pool="web"`),
// and Locality, its path form ("dc1/web").
func Data(matchers, locality string) map[string]any {
	return map[string]any{"Matchers": matchers, "Locality": locality}
}

// Parse parses a query template and renders it once for a sample locality,
// so that a template that parses but cannot render (a field that does not
// exist, such as {{.Matcher}}) is refused here rather than failing at every
// collection.
func Parse(name, s string) (*template.Template, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("the query is empty")
	}
	t, err := template.New(name).Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, err
	}
	if err := t.Execute(&bytes.Buffer{}, sample); err != nil {
		return nil, fmt.Errorf("%v (a query may use {{.Matchers}} and {{.Locality}})", err)
	}
	return t, nil
}

// sample is the locality a template is rendered for to check it.
var sample = Data(`datacenter="dc1"`, "dc1")

// promql parses as the Prometheus server does, its experimental functions
// included (a server may enable them).
var promql = parser.NewParser(parser.Options{EnableExperimentalFunctions: true})

// PromQLProblem renders t (which Parse returned) for a sample locality
// and says what Prometheus's PromQL parser finds wrong with the query:
// a syntax error, a function it does not know or given the wrong type,
// or an expression of a type a range query refuses (a range vector, such
// as x[5m], or a string); "" when it finds nothing. The validators warn
// of it rather than refuse it: a server of another dialect (VictoriaMetrics'
// MetricsQL, a superset of PromQL) may take the query.
func PromQLProblem(t *template.Template) string {
	var b strings.Builder
	if err := t.Execute(&b, sample); err != nil {
		return err.Error()
	}
	q := b.String()
	e, err := promql.ParseExpr(q)
	if err != nil {
		return fmt.Sprintf("%v, in %s", err, q)
	}
	switch e.Type() {
	case parser.ValueTypeVector, parser.ValueTypeScalar:
		return ""
	}
	return fmt.Sprintf("%s is a %s, where a range query takes an instant vector or a scalar (such as sum(rate(...[5m])))", q, parser.DocumentedType(e.Type()))
}
