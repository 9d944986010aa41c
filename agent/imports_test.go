package agent

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentDoesNotImportTheSimulator keeps dev-mode wiring out of the
// daemon: the embedded simulator and its clocks belong to the CLI.
func TestAgentDoesNotImportTheSimulator(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "github.com/foreshape/foreshape/sim" || strings.HasPrefix(p, "github.com/foreshape/foreshape/sim/") {
			t.Errorf("package agent depends on %s; dev-mode wiring belongs in command/", p)
		}
	}
}
