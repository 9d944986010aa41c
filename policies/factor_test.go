package policies

import (
	"strings"
	"testing"
)

func TestScheduleFactor(t *testing.T) {
	const tmpl = `
shaping "p" {
  locality {
    datacenter = "dc1"
  }
  schedule "s" {
    cron     = "0 9 * * *"
    duration = "1h"
    action   = %q
    %s
  }
}
`
	cases := []struct {
		action, attr string
		want         float64
		err          string
	}{
		{"peak", "", 0, ""},
		{"peak", "factor = 2", 2, ""},
		{"peak", "factor = 0.5", 0.5, ""},
		{"peak", "factor = 0", 0, "schedule.s.factor"},
		{"peak", "factor = 101", 0, "outside (0,100]"},
		{"drain", "factor = 2", 0, `action "drain" takes none`},
		{"peak", `factor = "x"`, 0, "schedule.s.factor"},
	}
	for _, c := range cases {
		src := strings.Replace(strings.Replace(tmpl, "%q", `"`+c.action+`"`, 1), "%s", c.attr, 1)
		ps, diags := Parse("f.hcl", []byte(src))
		if c.err != "" {
			if !diags.HasErrors() || !strings.Contains(diags.Error(), c.err) {
				t.Errorf("%s %s: diags %v, want %q", c.action, c.attr, diags, c.err)
			}
			continue
		}
		if diags.HasErrors() {
			t.Errorf("%s %s: %v", c.action, c.attr, diags)
			continue
		}
		if got := ps[0].Schedules[0].Factor; got != c.want {
			t.Errorf("%s %s: factor %v, want %v", c.action, c.attr, got, c.want)
		}
	}
}
