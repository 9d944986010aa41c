package policies_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/policies"
)

// drainPolicy is a policy of dc1 with the schedule blocks given, each
// "NAME|CRON|DURATION|LOCALITIES|NODES" (LOCALITIES and NODES left out
// when empty).
func drainPolicy(schedules ...string) string {
	var b strings.Builder
	b.WriteString("shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n")
	for _, s := range schedules {
		f := strings.Split(s, "|")
		fmt.Fprintf(&b, "  schedule %q {\n    cron     = %q\n    duration = %q\n    action   = \"drain\"\n", f[0], f[1], f[2])
		if f[3] != "" {
			fmt.Fprintf(&b, "    localities = [%s]\n", f[3])
		}
		if f[4] != "" {
			fmt.Fprintf(&b, "    nodes    = %q\n", f[4])
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// TestDrainsOfSharedNodesAtOnceInOnePolicyWarned: two drain schedules of
// one policy that take some nodes in windows that overlap load, warned
// of at the later one, naming the field, both schedules, the nodes they
// share, how each lists them, and the first windows that overlap; two
// that share no node, or whose windows never overlap, load without a
// word.
func TestDrainsOfSharedNodesAtOnceInOnePolicyWarned(t *testing.T) {
	for _, tc := range []struct {
		name      string
		schedules []string
		field     string // "" when the policy is valid
		want      string // in the error's detail
	}{
		{"one within another, in hours that overlap", []string{
			`a|0 8 * * *|2h|"dc2"|`, `b|0 9 * * *|1h|"dc3", "dc2/*/batch"|`},
			"schedule.b.localities[1]",
			`schedules "b" and "a" (test.hcl:5,3-15) both drain the nodes of dc2/*/batch ("dc2/*/batch" in "b", "dc2" in "a") in windows that overlap: "a"'s of Sat 2000-01-01 08:00–10:00 UTC and "b"'s of 09:00–10:00 UTC, the first pair that does from 2000-01-01, where this check reads the crons from. ` +
				`The planner moves each of those nodes' allocations once, for the window whose lead time reaches it first, due by the earlier start, and the forecast takes their work once: one of the two drains them for the other. ` +
				`If that is not meant, drain them in one schedule, move a window so that the two do not overlap, or list localities or nodes the two do not share.`},
		{"one locality, a weekly window inside a daily one", []string{
			`daily|0 1 * * *|4h|"dc2"|`, `weekly|0 3 * * 0|1h|"dc2"|`},
			"schedule.weekly.localities[0]", `(both list "dc2") in windows that overlap: "daily"'s of Sun 2000-01-02 01:00–05:00 UTC and "weekly"'s of 03:00–04:00 UTC`},
		{"a window over midnight", []string{
			`late|0 23 * * *|3h|"*/*/batch"|`, `early|30 0 * * *|1h|"dc2/web"|`},
			"schedule.early.localities[0]", `both drain the nodes of dc2/web/batch ("dc2/web" in "early", "*/*/batch" in "late") in windows that overlap: "late"'s of Sat 2000-01-01 23:00–Sun 2000-01-02 02:00 UTC and "early"'s of Sun 2000-01-02 00:30–01:30 UTC`},
		{"the policy's own locality", []string{
			`a|0 8 * * *|2h||`, `b|0 9 * * *|1h||dc1-rack-a-*`},
			"schedule.b.cron", `both drain the nodes of dc1 matching "dc1-rack-a-*" (both list "dc1", the policy's own) in windows that overlap`},
		{"globs some name matches both", []string{
			`a|0 8 * * *|2h|"dc2"|dc2-*`, `b|0 9 * * *|1h|"dc2"|*-rack-[ab]-?`},
			"schedule.b.localities[0]", `the nodes of dc2 matching "dc2-*" and "*-rack-[ab]-?"`},
		{"one-off windows in a later year", []string{
			`a|0 8 1 6 * 2027|2h|"dc2"|`, `b|0 9 1 6 * 2027|2h|"dc2"|`},
			"schedule.b.localities[0]", `"a"'s of Tue 2027-06-01 08:00–10:00 UTC and "b"'s of 09:00–11:00 UTC`},
		{"globs no name matches both", []string{`a|0 8 * * *|2h|"dc2"|dc2-rack-a-*`, `b|0 9 * * *|1h|"dc2"|dc2-rack-b-*`}, "", ""},
		{"a class against a literal", []string{`a|0 8 * * *|2h|"dc2"|dc2-[ab]-*`, `b|0 9 * * *|1h|"dc2"|dc2-c-*`}, "", ""},
		{"localities that share no node", []string{`a|0 8 * * *|2h|"dc2/web"|`, `b|0 9 * * *|1h|"dc2/batch", "dc3"|`}, "", ""},
		{"windows one after the other", []string{`a|0 8 * * *|1h|"dc2"|`, `b|0 9 * * *|1h|"dc2"|`}, "", ""},
		{"on days apart", []string{`a|0 8 * * 1|4h|"dc2"|`, `b|0 9 * * 2|1h|"dc2"|`}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := drainPolicy(tc.schedules...)
			ps, diags := policies.Parse("test.hcl", []byte(src))
			if diags.HasErrors() || len(ps) != 1 {
				t.Fatalf("diagnostics %v; want the policy loaded\nsource:\n%s", diags, src)
			}
			// The policy is dc1's: a drain of "*/*/batch" from it is
			// warned of as well (TestDrainSharingSomeOwnNodesWarned).
			diags = slices.DeleteFunc(diags, func(d *hcl.Diagnostic) bool { return d.Summary == "Drain of some of the policy's own nodes" })
			if tc.field == "" {
				if len(diags) != 0 {
					t.Fatalf("diagnostics %v; want none\nsource:\n%s", diags, src)
				}
				return
			}
			if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != "Drains of shared nodes at once" ||
				!strings.HasPrefix(diags[0].Detail, tc.field+": ") || !strings.Contains(diags[0].Detail, tc.want) {
				t.Fatalf("diagnostics %v; want one warning on %s saying\n%s\nsource:\n%s", diags, tc.field, tc.want, src)
			}
			if want := lineOf(t, src, "schedule \""+strings.SplitN(tc.schedules[1], "|", 2)[0]); diags[0].Subject.Start.Line <= want {
				t.Errorf("warning at line %d; want it in the later schedule, after line %d", diags[0].Subject.Start.Line, want)
			}
		})
	}
}

// TestDrainsOverlapAcrossPolicies: DrainsOverlap answers for schedules of
// two policies as within one, peaks and drains of nodes apart aside.
func TestDrainsOverlapAcrossPolicies(t *testing.T) {
	pols, diags := policies.Parse("two.hcl", []byte(strings.Replace(drainPolicy(`a|0 8 * * *|2h|"dc2"|`), `"web"`, `"a"`, 1)+
		strings.Replace(strings.Replace(drainPolicy(`b|0 9 * * *|1h|"dc2/*/batch"|`, `c|0 7 * * *|2h|"dc2/*/batch"|other-*`), `"web"`, `"b"`, 1), `"dc1"`, `"dc4"`, 1)))
	if diags.HasErrors() || len(pols) != 2 {
		t.Fatal(diags)
	}
	o, ok := policies.DrainsOverlap(&pols[0].Schedules[0], &pols[1].Schedules[0])
	if wa, wb := o.Windows(); !ok || o.Shared.String() != "dc2/*/batch" || wa != "Sat 2000-01-01 08:00–10:00 UTC" || wb != "09:00–10:00 UTC" {
		t.Errorf("overlap %+v, %v", o, ok)
	}
	if _, ok := policies.DrainsOverlap(&pols[0].Schedules[0], &pols[1].Schedules[1]); !ok {
		t.Errorf("a drain of all of dc2 and one of its nodes other-*: no overlap found")
	}
	// Long lists are looked up through an index: the same answer.
	var many []string
	for i := range 70 {
		many = append(many, fmt.Sprintf(`"dc%d"`, 10+i))
	}
	pols, diags = policies.Parse("many.hcl", []byte(strings.Replace(drainPolicy(`a|0 8 * * *|2h|`+strings.Join(many, ", ")+`|`), `"web"`, `"a"`, 1)+
		strings.Replace(strings.Replace(drainPolicy(`b|0 9 * * *|1h|"dc3", "dc50/*/batch", "dc51/web"|`), `"web"`, `"b"`, 1), `"dc1"`, `"dc4"`, 1)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if o, ok := policies.DrainsOverlap(&pols[0].Schedules[0], &pols[1].Schedules[0]); !ok || o.A.String() != "dc50" || o.B.String() != "dc50/*/batch" || o.Shared.String() != "dc50/*/batch" {
		t.Errorf("overlap %+v, %v; want dc50 and dc50/*/batch", o, ok)
	}
}
