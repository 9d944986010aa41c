package command

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docExample is a `foreshape policy validate` run docs/policies.md shows:
// the policy files shown before it (each an ```hcl block whose first line
// is "# FILE"), the command, and the output shown after it.
type docExample struct {
	line  int
	files map[string]string
	args  []string
	want  string
}

// policyDocExamples reads docs/policies.md's examples. Every policy file
// it shows is read by the run that follows it.
func policyDocExamples(t *testing.T) []docExample {
	t.Helper()
	doc, err := os.ReadFile("../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []docExample
		pending = map[string]string{}
		block   []string
		lang    string
		start   int
		in      bool
	)
	for i, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "```") {
			if in {
				block = append(block, line)
			}
			continue
		}
		if !in {
			in, lang, block, start = true, strings.TrimPrefix(line, "```"), nil, i+2
			continue
		}
		in = false
		switch {
		case lang == "hcl":
			name, ok := strings.CutPrefix(block[0], "# ")
			if !ok || strings.ContainsAny(name, " /") {
				t.Fatalf("docs/policies.md:%d: a policy file shown starts with %q, not \"# FILE\"", start, block[0])
			}
			pending[name] = strings.Join(block, "\n") + "\n"
		case len(block) > 0 && strings.HasPrefix(block[0], "$ foreshape policy validate "):
			out = append(out, docExample{line: start, files: pending,
				args: strings.Fields(strings.TrimPrefix(block[0], "$ foreshape ")),
				want: strings.Join(block[1:], "\n")})
			pending = map[string]string{}
		}
	}
	if len(pending) > 0 {
		t.Errorf("docs/policies.md shows policy files no `foreshape policy validate` reads: %v", slices.Sorted(func(yield func(string) bool) {
			for k := range pending {
				if !yield(k) {
					return
				}
			}
		}))
	}
	return out
}

// trimLines drops trailing spaces and the blank lines around text.
func trimLines(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// TestPolicyDocsExamplesValidate: every policy file docs/policies.md
// shows is read by the `foreshape policy validate` run shown after it,
// which gives exactly the output shown: "N policies valid" for those
// accepted, the diagnostics (file, line, setting and words) for those
// refused.
func TestPolicyDocsExamplesValidate(t *testing.T) {
	examples := policyDocExamples(t)
	if len(examples) < 5 {
		t.Fatalf("docs/policies.md shows %d policy validate runs: the scan is broken", len(examples))
	}
	for _, ex := range examples {
		dir := t.TempDir()
		for name, src := range ex.files {
			copyFile(t, "", filepath.Join(dir, name), src)
		}
		args := slices.Clone(ex.args)
		for i, a := range args[2:] {
			if !strings.HasPrefix(a, "-") {
				args[i+2] = filepath.Join(dir, a)
			}
		}
		_, stdout, stderr := run(t, args...)
		got := trimLines(strings.ReplaceAll(stderr+stdout, dir+string(filepath.Separator), ""))
		if want := trimLines(ex.want); got != want {
			t.Errorf("docs/policies.md:%d: foreshape %s gives\n%s\n\nthe page shows\n%s", ex.line, strings.Join(ex.args, " "), got, want)
		}
	}
}

// TestPolicyDocsListTheFailureModes: docs/policies.md's table of what
// goes wrong in a policies.dir is failureModes, the cases
// TestPolicyValidateAndAgentAgreeOnFailureModes runs: the same names, in
// the same order, with the same errors ("runs" for those accepted).
func TestPolicyDocsListTheFailureModes(t *testing.T) {
	doc, err := os.ReadFile("../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "| what went wrong | what foreshape says |\n|---|---|\n")
	if !ok {
		t.Fatal("docs/policies.md has no table of what goes wrong")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	row := regexp.MustCompile("^\\| (.+) \\| (?:`(.+)`|(runs)) \\|$")
	var got, want []string
	for _, line := range strings.Split(table, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("docs/policies.md: a row not of the table's form: %q", line)
			continue
		}
		got = append(got, m[1]+": "+m[2]+m[3])
	}
	for _, fm := range failureModes {
		says := "runs"
		if fm.want != nil {
			says = strings.Join(fm.want, "; ")
		}
		want = append(want, fm.name+": "+says)
	}
	if !slices.Equal(got, want) {
		t.Errorf("docs/policies.md's table:\n%s\nwant, as failureModes:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
