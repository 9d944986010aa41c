package command

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/config"
)

// failureModes are the ways a policies.dir goes wrong as an operator meets
// them, each with its files (a name ending in "->" makes a symbolic link
// to what follows; "->" alone makes policies.dir one) and the diagnostic's place and words it must give: ""
// when the agent runs it.
var failureModes = []struct {
	name  string
	files map[string]string
	want  []string // FILE:LINE: error: SUMMARY, FILE relative to policies.dir
}{
	{"malformed HCL", map[string]string{"web.hcl": "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n\n}\n"},
		[]string{"web.hcl:1: error: Unclosed configuration block"}},
	{"a wrong type", map[string]string{"web.hcl": policyWith("headroom {\n    cpu = \"20%\"\n  }")},
		[]string{"web.hcl:6: error: Invalid headroom.cpu"}},
	{"an unknown attribute", map[string]string{"web.hcl": policyWith("headroom {\n    cpus = 20\n  }")},
		[]string{"web.hcl:6: error: Unsupported argument headroom.cpus"}},
	{"an unknown block", map[string]string{"web.hcl": policyWith("headrom {\n    cpu = 20\n  }")},
		[]string{"web.hcl:5: error: Unsupported block type headrom"}},
	{"out of range", map[string]string{"web.hcl": policyWith("forecast {\n    quantile = 1.5\n  }")},
		[]string{"web.hcl:6: error: Invalid forecast.quantile"}},
	{"a duration without unit", map[string]string{"web.hcl": policyWith("forecast {\n    horizon = \"60\"\n  }")},
		[]string{"web.hcl:6: error: Invalid forecast.horizon"}},
	{"a cron that never fires", map[string]string{"web.hcl": policyWith("schedule \"leap\" {\n    cron     = \"0 0 30 2 *\"\n    duration = \"1h\"\n    action   = \"peak\"\n  }")},
		[]string{"web.hcl:6: error: Invalid schedule.leap.cron"}},
	{"one name in two files", map[string]string{"a.hcl": policyWith(""), "b.hcl": strings.Replace(policyWith(""), "dc1", "dc2", 1)},
		[]string{`b.hcl:1: error: Duplicate policy "web"`}},
	{"one locality in two policies", map[string]string{"a.hcl": policyWith(""), "b.hcl": strings.Replace(policyWith(""), `"web"`, `"web2"`, 1)},
		[]string{"b.hcl:1: error: Two policies shape one locality"}},
	{"an unknown scale target plugin", map[string]string{"web.hcl": policyWith("scale \"more\" {\n    min = 1\n    max = 4\n    target \"nomad-jobs\" {\n      job = \"web\"\n    }\n  }")},
		[]string{`web.hcl:8: error: Unknown scale.more.target plugin "nomad-jobs"`}},
	{"an unreadable file", map[string]string{"web.hcl": policyWith(""), "batch.hcl->": "gone.hcl"},
		[]string{"batch.hcl:1: error: Cannot read policy file"}},
	{"an empty file", map[string]string{"web.hcl": policyWith(""), "empty.hcl": ""}, nil},
	{"no policy at all", map[string]string{"README.md": "Policies go here.\n"}, nil},
	{"files not named *.hcl", map[string]string{"web.hcl": policyWith(""), "README.md": "# not HCL {", "batch.hcl.disabled": "shaping {"}, nil},
	{"a directory of links (a Kubernetes ConfigMap)", map[string]string{
		"..2026_01_05_12_00_00.1/web.hcl": policyWith(""),
		"..data->":                        "..2026_01_05_12_00_00.1",
		"web.hcl->":                       "..data/web.hcl",
	}, nil},
	// policies.dir is a link to the directory that holds the files (a
	// template's or a volume's rendered directory).
	{"policies.dir a link", map[string]string{"../rendered/web.hcl": policyWith(""), "->": "rendered"}, nil},
	{"an error through a linked policies.dir", map[string]string{"../rendered/web.hcl": policyWith("headroom {\n    cpu = 100\n  }"), "->": "rendered"},
		[]string{"web.hcl:6: error: Invalid headroom.cpu"}},
}

// policyWith is a valid policy "web" of dc1 with body added to its block.
func policyWith(body string) string {
	return "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n  " + body + "\n}\n"
}

// writeFailureMode writes files into dir.
func writeFailureMode(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		if link, ok := strings.CutSuffix(name, "->"); ok {
			at := filepath.Join(dir, link)
			if link == "" {
				at = dir
				src = filepath.Join(filepath.Dir(dir), src)
			} else if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(src, at); err != nil {
				t.Fatal(err)
			}
			continue
		}
		copyFile(t, "", filepath.Join(dir, name), src)
	}
}

// errorLines are the "FILE:LINE: error: SUMMARY" of the diagnostics in
// out, FILE relative to dir, sorted.
func errorLines(out, dir string) []string {
	var lines []string
	for _, m := range regexp.MustCompile(`(?m)^(\S+):(\d+),\d+-\d+: error: (.*)$`).FindAllStringSubmatch(out, -1) {
		file, _ := filepath.Rel(dir, m[1])
		lines = append(lines, fmt.Sprintf("%s:%s: error: %s", file, m[2], m[3]))
	}
	slices.Sort(lines)
	return slices.Compact(lines)
}

// TestPolicyValidateAndAgentAgreeOnFailureModes: for each way a
// policies.dir goes wrong (failureModes), `policy validate DIR` and the
// agent started with that policies.dir refuse it alike, with the same
// errors at the same file and line naming the setting; or both accept it,
// and the agent serves its API.
func TestPolicyValidateAndAgentAgreeOnFailureModes(t *testing.T) {
	for _, name := range config.EnvVarNames() {
		t.Setenv(name, "")
	}
	for _, tc := range failureModes {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pdir := filepath.Join(dir, "policies")
			writeFailureMode(t, pdir, tc.files)
			cfg := filepath.Join(dir, "agent.hcl")
			ports := freeTCPPorts(t, 2)
			copyFile(t, "", cfg, fmt.Sprintf("data_dir = %q\nhttp {\n  address = \"127.0.0.1:%d\"\n}\nserver {\n  raft_port = %d\n}\nnomad {\n  address = \"http://127.0.0.1:1\"\n}\npolicies {\n  dir = %q\n}\n",
				filepath.Join(dir, "data"), ports[0], ports[1], pdir))
			code, stdout, stderr := run(t, "policy", "validate", pdir)
			got := errorLines(stderr, pdir)
			if tc.want == nil {
				if code != ExitOK || len(got) > 0 {
					t.Fatalf("policy validate refuses it: exit %d\n%s%s", code, stdout, stderr)
				}
				if code, _, stderr := run(t, "config", "validate", cfg); code != ExitOK {
					t.Fatalf("the agent's checks refuse it: exit %d\n%s", code, stderr)
				}
				logs, stop := startAgentCommand(t, "-config", cfg)
				addr := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
				eventuallyT(t, 30*time.Second, "the agent's API", logs, func() bool {
					_, err := (&api.Client{Address: addr}).Status(context.Background())
					return err == nil
				})
				if c := stop(); c != ExitOK {
					t.Errorf("the agent exited %d\n%s", c, tailLines(logs.String(), 20))
				}
				return
			}
			if code != ExitInvalid || !slices.Equal(got, tc.want) {
				t.Errorf("policy validate: exit %d, errors %q; want %d and %q\n%s", code, got, ExitInvalid, tc.want, stderr)
			}
			acode, aerr := runAgent(t, "-config", cfg)
			if agot := errorLines(aerr, pdir); acode != code || !slices.Equal(agot, got) {
				t.Errorf("the agent: exit %d, errors %q; policy validate: exit %d, errors %q\n%s", acode, agot, code, got, aerr)
			}
		})
	}
}
