package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const smallRunScenario = `
name     = "tiny"
seed     = 9
start    = "2026-03-02T00:00:00Z"
duration = "1h"

datacenter "dc1" {
  bandwidth = 50
}

datacenter "dc2" {
  bandwidth = 50
}

nodes "a" {
  datacenter = "dc1"
  count      = 2
  cpu        = 8000
  memory     = 16384
}

nodes "b" {
  datacenter = "dc2"
  count      = 2
  cpu        = 8000
  memory     = 16384
}

job "svc" {
  datacenters = ["dc1", "dc2"]
  group "svc" {
    count  = 4
    cpu    = 1000
    memory = 1024
  }
}

event "maint" {
  kind       = "drain"
  at         = "10m"
  datacenter = "dc1"
  deadline   = "30m"
  target     = "dc2"
}
`

func TestSimRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tiny.hcl")
	if err := os.WriteFile(file, []byte(smallRunScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "sim", "run", "-scenario", file, "-controllers", "none,throttle", "-format", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got struct {
		Scenario    string                        `json:"scenario"`
		Seed        int                           `json:"seed"`
		Controllers map[string]map[string]float64 `json:"controllers"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Scenario != "tiny" || got.Seed != 9 || len(got.Controllers) != 2 || got.Controllers["none"]["migrations_completed"] == 0 {
		t.Errorf("json = %s", out)
	}
	_, again, _ := runCLI(t, "sim", "run", "-scenario", file, "-controllers", "none,throttle", "-format", "json")
	if again != out {
		t.Errorf("second run differs:\n%s\n%s", out, again)
	}
	// -seed 0 keeps the scenario's own seed (docs/proof.md's "seed 0").
	if _, zero, _ := runCLI(t, "sim", "run", "-scenario", file, "-controllers", "none,throttle", "-seed", "0", "-format", "json"); zero != out {
		t.Errorf("-seed 0 differs from the scenario's own seed:\n%s\n%s", out, zero)
	}
	// Spreading by use, foreshape reads allocation stats: the same bytes
	// twice still. The scenario runs 45 minutes here, past the drain's
	// deadline (10m + 30m), not the hour: foreshape's forecasts cost more
	// the longer it runs, and under -race the test took 9.2 s of CPU with
	// the hour, 6.7 s with 45 minutes.
	byUseFile := filepath.Join(dir, "tiny45m.hcl")
	shorter := strings.Replace(smallRunScenario, `duration = "1h"`, `duration = "45m"`, 1)
	if shorter == smallRunScenario {
		t.Fatal("smallRunScenario no longer says duration = \"1h\"")
	}
	if err := os.WriteFile(byUseFile, []byte(shorter), 0o644); err != nil {
		t.Fatal(err)
	}
	byUse := func() string {
		code, out, errs := runCLI(t, "sim", "run", "-scenario", byUseFile, "-controllers", "foreshape", "-spread-by-use", "-format", "json")
		if code != ExitOK {
			t.Fatalf("-spread-by-use: exit %d: %s", code, errs)
		}
		return out
	}
	if a, b := byUse(), byUse(); a != b || !strings.Contains(a, `"foreshape"`) {
		t.Errorf("-spread-by-use runs differ or lack foreshape:\n%s\n%s", a, b)
	}

	report := filepath.Join(dir, "report")
	prof := filepath.Join(dir, "cpu.prof")
	code, out, errs = runCLI(t, "sim", "run", "-scenario", file, "-controllers", "throttle", "-seed", "4", "-report", report, "-cpuprofile", prof)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"scenario tiny (seed 4): 1h0m0s of virtual time, 2 move requests", "congestion_node_minutes", "throttle"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(report, "report.html")); err != nil {
		t.Errorf("no report: %v", err)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("no CPU profile: %v", err)
	}
}

func TestSimRunUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sim", "run"}, ExitUsage, "-scenario is required"},
		{[]string{"sim", "run", "-scenario", "surge-wave", "-format", "yaml"}, ExitUsage, `-format "yaml"`},
		{[]string{"sim", "run", "-scenario", "surge-wave", "-controllers", "none,magic"}, ExitUsage, `unknown controller "magic"`},
		{[]string{"sim", "run", "-scenario", "no-such-scenario"}, ExitInvalid, "no-such-scenario"},
		{[]string{"sim", "run", "-scenario", "surge-wave", "-data", "/no/such/dir"}, ExitInvalid, "-data /no/such/dir is not a directory"},
		{[]string{"sim", "run", "-scenario", "surge-wave", "-cpuprofile", "/no/such/dir/cpu.prof"}, ExitInvalid, "-cpuprofile"},
	} {
		code, _, errs := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}
