package exec

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func decode(t *testing.T, src string) (*Config, hcl.Diagnostics) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	v, diags := Decode(f.Body, "target.exec")
	c, _ := v.(*Config)
	return c, diags
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string
		want    *Config
		wantErr string
	}{
		{"minimal", `command = ["/bin/scale"]`, &Config{Command: []string{"/bin/scale"}, Timeout: DefaultTimeout}, ""},
		{"all", "command = [\"scale\", \"--up\"]\ntimeout = \"1m\"\nenv = { SITE = \"lab\" }",
			&Config{Command: []string{"scale", "--up"}, Timeout: time.Minute, Env: map[string]string{"SITE": "lab"}}, ""},
		{"missing", `timeout = "1m"`, nil, "Missing target.exec.command"},
		{"empty", `command = []`, nil, "command is empty"},
		{"empty program", `command = ["", "x"]`, nil, "program name"},
		{"string not list", `command = "/bin/scale up"`, nil, "list of strings"},
		{"number element", `command = ["/bin/scale", 3]`, nil, "Element 1 must be a string"},
		{"timeout", "command = [\"x\"]\ntimeout = \"2h\"", nil, "Invalid target.exec.timeout"},
		{"env name", "command = [\"x\"]\nenv = { \"1BAD\" = \"v\" }", nil, "not a valid environment variable name"},
		{"env of an action's field", "command = [\"x\"]\nenv = { FORESHAPE_COUNT = \"3\" }", nil, "foreshape sets the FORESHAPE_* variables"},
		{"unknown", "command = [\"x\"]\nshell = true", nil, "Unsupported argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, diags := decode(t, tc.src)
			if tc.wantErr != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.wantErr) {
					t.Fatalf("diags = %v, want %q", diags, tc.wantErr)
				}
				if got != nil {
					t.Errorf("config returned with errors")
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRelativeProgramWarns: a program given as a relative path
// ("./scale.sh") is run from the agent's working directory, not the
// policy file's: the policy loads with a warning saying so. An absolute
// path or a bare name (looked up in the agent's PATH) loads without one.
func TestRelativeProgramWarns(t *testing.T) {
	for _, tc := range []struct {
		program string
		warns   bool
	}{
		{"./scale.sh", true},
		{"bin/scale", true},
		{"../scale", true},
		{"/usr/local/bin/scale", false},
		{"scale", false},
	} {
		c, diags := decode(t, `command = ["`+tc.program+`"]`)
		if diags.HasErrors() || c == nil {
			t.Fatalf("%s: %v", tc.program, diags)
		}
		warned := len(diags) == 1 && diags[0].Severity == hcl.DiagWarning &&
			strings.Contains(diags[0].Detail, "relative path") && diags[0].Subject != nil
		if warned != tc.warns || (!tc.warns && len(diags) != 0) {
			t.Errorf("%s: diagnostics %v; want a warning %v", tc.program, diags, tc.warns)
		}
	}
}
