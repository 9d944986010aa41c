package policies

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// settingNames are the dotted names of every setting of the policy
// language, walked from the decode structs' hcl tags: blocks nest, a
// block's labels are its label names in capitals ("scale.NAME.min"), and
// a block whose body its plugin decodes is one setting
// ("scale.NAME.target.PLUGIN").
func settingNames() []string {
	var out []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		var labels []string
		for i := range t.NumField() {
			name, kind, _ := strings.Cut(t.Field(i).Tag.Get("hcl"), ",")
			if kind == "label" {
				labels = append(labels, strings.ToUpper(name))
			}
		}
		if len(labels) > 0 {
			prefix += strings.Join(labels, ".") + "."
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, kind, _ := strings.Cut(f.Tag.Get("hcl"), ",")
			switch kind {
			case "optional", "attr":
				out = append(out, prefix+name)
			case "block":
				et := f.Type
				for et.Kind() == reflect.Pointer || et.Kind() == reflect.Slice {
					et = et.Elem()
				}
				walk(prefix+name+".", et)
			case "remain":
				out = append(out, strings.TrimSuffix(prefix, "."))
			}
		}
	}
	walk("", reflect.TypeFor[shapingHCL]())
	// The shaping block's label is the policy's name, not a prefix.
	for i, n := range out {
		out[i] = strings.TrimPrefix(n, "NAME.")
	}
	return out
}

// documentedSettings are the settings docs/policies.md gives a row:
// the first cell of a table row, a name in backquotes.
func documentedSettings(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-zA-Z_.A-Z]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestPolicyDocsNameEverySetting: docs/policies.md gives every setting of
// the policy language a row, and no row to a setting the language lacks,
// so that a setting added to the decode structs without its
// documentation fails.
func TestPolicyDocsNameEverySetting(t *testing.T) {
	names := settingNames()
	if len(names) < 40 || !slices.Contains(names, "migrate.priority.age") || !slices.Contains(names, "scale.NAME.target.PLUGIN") {
		t.Fatalf("the walk found %d settings: it is broken (%v)", len(names), names)
	}
	t.Logf("%d settings: %v", len(names), names)
	documented := documentedSettings(t)
	for _, n := range names {
		if !slices.Contains(documented, n) {
			t.Errorf("docs/policies.md gives %s no row", n)
		}
	}
	for _, d := range documented {
		if !slices.Contains(names, d) {
			t.Errorf("docs/policies.md gives a row to %s, which is no setting of a policy", d)
		}
	}
	if n := len(documented); n != len(slices.Compact(slices.Sorted(slices.Values(documented)))) {
		t.Errorf("docs/policies.md gives a setting two rows: %v", documented)
	}
}

// TestPolicyDocComment: the package comment sends the reader to
// docs/policies.md, which exists.
func TestPolicyDocComment(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "docs/policies.md") {
		t.Error("doc.go does not name docs/policies.md")
	}
	if _, err := os.Stat("../docs/policies.md"); err != nil {
		t.Error(err)
	}
}
