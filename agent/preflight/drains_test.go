package preflight_test

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/policies"
)

// TestDrainsOfSharedNodesAtOnceWarned: drain schedules of two policies
// that take some nodes in windows that overlap are warned of at the later
// one, naming both policies and schedules, the nodes and the first
// windows that overlap; drains of nodes apart, or at other hours, are
// not. The loader warns of two such in one policy.
func TestDrainsOfSharedNodesAtOnceWarned(t *testing.T) {
	pol := func(name, dc, cron, localities string) string {
		return `shaping "` + name + `" {
  locality {
    datacenter = "` + dc + `"
  }
  schedule "` + name + `-down" {
    cron       = "` + cron + `"
    duration   = "1h"
    action     = "drain"
    localities = [` + localities + `]
  }
}
`
	}
	for _, tc := range []struct {
		name, src string
		want      string // "" when nothing is warned of
	}{
		{"overlap", pol("a", "dc1", "0 8 * * *", `"dc2"`) + pol("b", "dc3", "30 8 * * *", `"dc4", "dc2/*/batch"`),
			`Policy "b", schedule "b-down" and policy "a", schedule "a-down" (n.hcl:5,3-20) both drain the nodes of dc2/*/batch ("dc2/*/batch" in "b", "dc2" in "a") in windows that overlap: "a-down"'s of Sat 2000-01-01 08:00–09:00 UTC and "b-down"'s of 08:30–09:30 UTC`},
		{"one after the other", pol("a", "dc1", "0 8 * * *", `"dc2"`) + pol("b", "dc3", "0 9 * * *", `"dc2/*/batch"`), ""},
		{"nodes apart", pol("a", "dc1", "0 8 * * *", `"dc2/web"`) + pol("b", "dc3", "30 8 * * *", `"dc2/batch"`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pols, diags := policies.Parse("n.hcl", []byte(tc.src))
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			var got []*hcl.Diagnostic
			for _, d := range preflight.Policies(nil, pols, preflight.Options{}) {
				if d.Summary == "Drains of shared nodes at once" {
					got = append(got, d)
				}
			}
			if tc.want == "" {
				if len(got) != 0 {
					t.Errorf("warned %v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != hcl.DiagWarning || !strings.HasPrefix(got[0].Detail, tc.want) || got[0].Subject.Start.Line != 16 {
				t.Errorf("warnings %v; want one at line 16 saying\n%s", got, tc.want)
			}
		})
	}
}
