package command

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeNamesTheDevPolicies: README.md's Usage names make dev's
// policies and their localities, which its examples (forecast show dc2,
// decisions -policy dc1-web) ask the dev agent about; they are
// dev-policies.hcl's, in its order.
func TestReadmeNamesTheDevPolicies(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(readme)), " ")
	m := regexp.MustCompile("`make dev`'s, whose policies are (.*?), of the localities (.*?)\\.").FindStringSubmatch(text)
	if m == nil {
		t.Fatal("README.md no longer names make dev's policies")
	}
	list := func(s string) []string {
		var out []string
		for _, w := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(s, -1) {
			out = append(out, w[1])
		}
		return out
	}
	pols, err := devPolicies()
	if err != nil {
		t.Fatal(err)
	}
	var names, locs []string
	for _, p := range pols {
		names = append(names, p.Name)
		locs = append(locs, p.Locality.String())
	}
	if got := list(m[1]); strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("README.md names the policies %v; make dev's are %v", got, names)
	}
	if got := list(m[2]); strings.Join(got, ",") != strings.Join(locs, ",") {
		t.Errorf("README.md names the localities %v; make dev's policies' are %v", got, locs)
	}
	for _, ex := range []string{"forecast show -metric cpu dc2 ", "decisions -policy dc1-web "} {
		if !strings.Contains(string(readme), ex) {
			t.Errorf("README.md's Usage no longer shows %q", ex)
		}
	}
}
