// Package querytmpl parses the PromQL query templates of the agent's
// configuration (prometheus.iops_query) and of the policies
// (forecast.queries) the way the Prometheus source renders them, so that
// what the validators accept the agent can run.
package querytmpl

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
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
	if err := t.Execute(&bytes.Buffer{}, Data(`datacenter="dc1"`, "dc1")); err != nil {
		return nil, fmt.Errorf("%v (a query may use {{.Matchers}} and {{.Locality}})", err)
	}
	return t, nil
}
