package querytmpl

import (
	"bytes"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: `sum(rate(x{ {{.Matchers}} }[5m]))`, want: `sum(rate(x{ datacenter="dc1" }[5m]))`},
		{in: `sum(x{locality="{{.Locality}}"})`, want: `sum(x{locality="dc1"})`},
		{in: `sum(x)`, want: `sum(x)`},
		{in: `sum(x{ {{.Matcher}} })`, err: `map has no entry for key "Matcher"`},
		{in: `sum(x{ {{.Matchers.Foo}} })`, err: "{{.Matchers}} and {{.Locality}}"},
		{in: `sum(x{ {{.Matchers} })`, err: "bad character"},
		{in: `  `, err: "empty"},
	} {
		tmpl, err := Parse("q", tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, Data(`datacenter="dc1"`, "dc1")); err != nil || b.String() != tc.want {
			t.Errorf("Parse(%q) renders %q, %v; want %q", tc.in, b.String(), err, tc.want)
		}
	}
}
