package command

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDecisionsHelpNamesEveryKind: every kind of decision the planner, the
// coordinator and the agent record is one decisions -kind names, so that
// an operator can filter on it.
func TestDecisionsHelpNamesEveryKind(t *testing.T) {
	_, stdout, stderr := run(t, "decisions", "-help")
	help := strings.Join(strings.Fields(stdout+stderr), " ")
	i := strings.Index(help, "-kind=KIND")
	if i < 0 {
		t.Fatalf("decisions -help has no -kind:\n%s", help)
	}
	help = help[i:]
	if j := strings.Index(help, "-request="); j > 0 {
		help = help[:j]
	}
	kinds := map[string]string{}
	lit := regexp.MustCompile(`(?:Kind:\s*|kind\s*=\s*|Kind[A-Z][A-Za-z]*\s*=\s*|Decision[A-Z][A-Za-z]*\s*=\s*)"([a-z_]+)"`)
	for _, dir := range []string{"../agent/migrate", "../agent/shape", "../agent", "../agent/api"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
				kinds[m[1]] = f
			}
		}
	}
	if len(kinds) < 12 {
		t.Fatalf("found only %d decision kinds in the code (%v): the scan is broken", len(kinds), kinds)
	}
	t.Logf("decision kinds in the code: %v", kinds)
	for k, f := range kinds {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(k) + `\b`).MatchString(help) {
			t.Errorf("%s records decisions of kind %q, which decisions -kind does not name:\n%s", f, k, help)
		}
	}
}
