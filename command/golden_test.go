package command

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/foreshape/foreshape/internal/testpki"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// run runs the CLI as main does and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// validateRuns holds the validate commands runValidate ran, by their
// arguments.
var validateRuns = struct {
	sync.Mutex
	m map[string]*validateRun
}{m: map[string]*validateRun{}}

type validateRun struct {
	once      sync.Once
	code      int
	out, errs string
}

// runValidate runs a validate command once per test binary and returns
// the same result to every test that asks for the same arguments. The
// policies that need too many series (generateInputs) take seconds under
// -race to load, and TestGolden, TestAgentAndValidateAgree and
// TestPolicyValidateSeriesBudget each assert something of the same runs.
// It is for commands whose output depends only on their arguments and on
// files no test changes: validate reads the environment only with -env.
func runValidate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	if slices.Contains(args, "-env") {
		t.Fatalf("runValidate %q: with -env the output depends on the environment", args)
	}
	key := strings.Join(args, "\x00")
	validateRuns.Lock()
	r := validateRuns.m[key]
	if r == nil {
		r = &validateRun{}
		validateRuns.m[key] = r
	}
	validateRuns.Unlock()
	r.once.Do(func() {
		var out, errb bytes.Buffer
		r.code = Run(context.Background(), args, &out, &errb)
		r.out, r.errs = out.String(), errb.String()
	})
	return r.code, r.out, r.errs
}

// wants reads the "# want: TEXT" lines at the top of a golden input: text
// the diagnostics must contain besides FILE:LINE.
func wants(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(src), "\n") {
		if w, ok := strings.CutPrefix(line, "# want: "); ok {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no '# want:' line naming the field its diagnostic must mention", path)
	}
	return out
}

// flags reads the "# flags: ARGS" line of a golden input: options its
// command takes before the input's path (policy validate's -config).
func flags(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(src), "\n") {
		if f, ok := strings.CutPrefix(line, "# flags: "); ok {
			return strings.Fields(f)
		}
	}
	return nil
}

// generatedDir holds golden inputs too big to keep in git (it is ignored):
// generateInputs writes them.
const generatedDir = "testdata/golden/config/files/generated"

var generateMu sync.Mutex

// generateInputs writes the generated golden inputs: a policy whose drain
// schedule names 25,000 localities, which with its own need 100,004
// series, four more than the series store holds; and a certificate and
// its key (agent.pem, agent-key.pem), made once.
func generateInputs(t *testing.T) {
	t.Helper()
	// Tests that call it may run at once: one writes, the others find the
	// files written.
	generateMu.Lock()
	defer generateMu.Unlock()
	if err := os.MkdirAll(generatedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(generatedDir, "agent-key.pem")); err != nil {
		ca := testpki.NewCA(t, "golden")
		testpki.WriteFiles(t, generatedDir, "agent", ca, ca.Issue(t, "agent"))
	}
	var b strings.Builder
	b.WriteString("# Written by the command package's tests (generateInputs).\n")
	b.WriteString("shaping \"many\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n")
	b.WriteString("  schedule \"everywhere\" {\n    cron       = \"0 2 * * 0\"\n    duration   = \"1h\"\n    action     = \"drain\"\n    localities = [\n")
	for i := range 25_000 {
		fmt.Fprintf(&b, "      \"d%d\",\n", i)
	}
	b.WriteString("    ]\n  }\n}\n")
	path := filepath.Join(generatedDir, "many.hcl")
	if old, err := os.ReadFile(path); err == nil && string(old) == b.String() {
		return
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestGolden runs `policy validate` and `config validate` on every invalid
// input under testdata/golden and checks the exit code, that the output
// locates the problem as FILE:LINE (in the input, or in a policy or file
// under its directory's files/) and names the field, and that it matches
// the .golden file. `go test ./command -run Golden -update` rewrites them.
func TestGolden(t *testing.T) {
	t.Parallel()
	generateInputs(t)
	for _, tc := range []struct {
		dir  string
		args []string
		min  int
	}{
		{dir: "testdata/golden/policy", args: []string{"policy", "validate"}, min: 12},
		{dir: "testdata/golden/config", args: []string{"config", "validate"}, min: 6},
	} {
		inputs, err := filepath.Glob(filepath.Join(tc.dir, "*.hcl"))
		if err != nil {
			t.Fatal(err)
		}
		if len(inputs) < tc.min {
			t.Fatalf("%s holds %d cases, want at least %d", tc.dir, len(inputs), tc.min)
		}
		for _, path := range inputs {
			t.Run(path, func(t *testing.T) {
				t.Parallel()
				args := append(append(append([]string(nil), tc.args...), flags(t, path)...), path)
				code, stdout, stderr := runValidate(t, args...)
				if code != ExitInvalid {
					t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitInvalid, stdout, stderr)
				}
				if stdout != "" {
					t.Errorf("stdout is not empty on failure:\n%s", stdout)
				}
				loc := regexp.MustCompile(`(` + regexp.QuoteMeta(path) + `|` + regexp.QuoteMeta(tc.dir) + `/files/[^:]+):\d+`)
				if !loc.MatchString(stderr) {
					t.Errorf("stderr does not locate the problem as %s:LINE:\n%s", path, stderr)
				}
				for _, w := range wants(t, path) {
					if !strings.Contains(stderr, w) {
						t.Errorf("stderr does not mention %q:\n%s", w, stderr)
					}
				}
				golden := strings.TrimSuffix(path, ".hcl") + ".golden"
				if *update {
					if err := os.WriteFile(golden, []byte(stderr), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./command -run Golden -update)", err)
				}
				if stderr != string(want) {
					t.Errorf("stderr differs from %s:\n--- got\n%s\n--- want\n%s", golden, stderr, want)
				}
			})
		}
	}
}
