package policies_test

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/foreshape/foreshape/policies"
)

// docDefaults are the defaults docs/policies.md's setting tables give as
// a value (`"1h"`, `0.9`, `false`), by setting.
func docDefaults(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-zA-Z_.]+)` \\| [^|]* \\| `(\"[^\"`]*\"|-?[0-9.]+|true|false)` \\|")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// defaultContext is what a setting needs beside it to be read at all,
// inside the shaping block, with %s where the setting goes: its block,
// and the settings that block requires or that the setting needs.
func defaultContext(setting string) string {
	switch {
	case setting == "reserve.enabled":
		return "reserve {\n%s\n}"
	case strings.HasPrefix(setting, "reserve."):
		return "reserve {\nenabled = true\nmax_cpu = 1000\nmax_memory = 1000\n%s\n}"
	case strings.HasPrefix(setting, "migrate.priority."):
		return "migrate {\npriority {\n%s\n}\n}"
	case strings.HasPrefix(setting, "scale.NAME."):
		return "scale \"s\" {\nmin = 0\nmax = 1\n%s\ntarget \"exec\" {\ncommand = [\"true\"]\n}\n}"
	case strings.HasPrefix(setting, "schedule.NAME."):
		return "schedule \"s\" {\ncron = \"0 2 * * 0\"\nduration = \"1h\"\naction = \"drain\"\n%s\n}"
	case strings.Contains(setting, "."):
		block, _, _ := strings.Cut(setting, ".")
		return block + " {\n%s\n}"
	}
	return "%s"
}

// TestPolicyDocsDefaultsAreTheDefaults: each default docs/policies.md
// gives as a value is the policy language's: a policy that sets it so
// reads the same as one that leaves it out.
func TestPolicyDocsDefaultsAreTheDefaults(t *testing.T) {
	defaults := docDefaults(t)
	if len(defaults) < 25 {
		t.Fatalf("docs/policies.md gives %d defaults as values: the scan is broken (%v)", len(defaults), defaults)
	}
	t.Logf("docs/policies.md gives %d defaults as values", len(defaults))
	opts := cmp.Options{
		cmpopts.IgnoreFields(policies.Policy{}, "DeclRange"),
		cmpopts.IgnoreFields(policies.Scale{}, "DeclRange"),
		cmpopts.IgnoreFields(policies.Schedule{}, "DeclRange", "Expr"),
		cmpopts.IgnoreFields(policies.Forecast{}, "QueriesRange"),
		cmp.Comparer(func(a, b policies.Target) bool { return a.Plugin == b.Plugin && reflect.DeepEqual(a.Config, b.Config) }),
	}
	for setting, value := range defaults {
		locality := "datacenter = \"dc1\""
		if setting == "locality.datacenter" {
			locality = "node_pool = \"web\""
		}
		attr := setting[strings.LastIndex(setting, ".")+1:]
		read := func(set string) (*policies.Policy, error) {
			body := fmt.Sprintf(defaultContext(setting), set)
			if strings.HasPrefix(setting, "locality.") {
				locality, body = locality+"\n"+set, ""
			}
			src := fmt.Sprintf("shaping \"p\" {\nlocality {\n%s\n}\n%s\n}\n", locality, body)
			ps, diags := policies.Parse("p.hcl", []byte(src))
			if diags.HasErrors() {
				return nil, fmt.Errorf("%s\n%s", diags.Error(), src)
			}
			return ps[0], nil
		}
		without, err := read("")
		if err != nil {
			t.Errorf("%s: the policy without it: %v", setting, err)
			continue
		}
		with, err := read(attr + " = " + value)
		if err != nil {
			t.Errorf("%s = %s (docs/policies.md's default): %v", setting, value, err)
			continue
		}
		if diff := cmp.Diff(without, with, opts); diff != "" {
			t.Errorf("docs/policies.md gives %s's default as %s, which is not the policy language's (-default +documented):\n%s", setting, value, diff)
		}
	}
}
