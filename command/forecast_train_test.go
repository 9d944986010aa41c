package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestForecastTrainCommand trains the smallest run of every network on a
// tiny trace directory, writes the weights and describes them; usage errors
// exit 2.
func TestForecastTrainCommand(t *testing.T) {
	root := writeTraceFixture(t)
	split := filepath.Join(t.TempDir(), "split.json")
	if err := os.WriteFile(split, []byte(`{"tuning": ["nab/data/*/*.csv", "planetlab/*"], "check": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, stdout, stderr := runForecastCLI(t, "forecast", "train", "-data", root, "-out", out, "-split", split,
		"-steps", "3", "-batch", "4", "-workers", "1")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "no datacenter_aggregates under") {
		t.Errorf("stderr does not say what was left out: %q", stderr)
	}
	// The NAB file is the one shippable tuning series (the PlanetLab file
	// sits outside a day folder); the 1-minute networks also train on its
	// jittered sum.
	for _, name := range shapeNames() {
		want := name + ": 1 series"
		if strings.HasSuffix(name, "-1m") {
			want = name + ": 2 series"
		}
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in:\n%s", want, stdout)
		}
		if _, err := os.Stat(filepath.Join(out, name+".fsgm")); err != nil {
			t.Error(err)
		}
	}
	code, stdout, stderr = runForecastCLI(t, "forecast", "train", "-describe", filepath.Join(out, "nbeats-5m.fsgm"))
	if code != ExitOK {
		t.Fatalf("describe: exit %d: %s", code, stderr)
	}
	var d struct {
		Config struct {
			Name string `json:"name"`
		} `json:"config"`
		Provenance struct {
			Data  []string `json:"data"`
			Steps int      `json:"steps"`
			Seed  uint64   `json:"seed"`
		} `json:"provenance"`
		Parameters int `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("describe output: %v\n%s", err, stdout)
	}
	if d.Config.Name != "nbeats-5m" || d.Provenance.Steps != 3 || d.Provenance.Seed != 1 || d.Parameters == 0 ||
		len(d.Provenance.Data) == 0 || !strings.Contains(d.Provenance.Data[0], "MIT") {
		t.Errorf("describe: %+v", d)
	}
	for _, args := range [][]string{
		{"-data", root},
		{"-data", root, "-out", out, "-models", "gpt"},
		{"-data", root, "-out", out, "-steps", "0"},
	} {
		if code, _, _ := runForecastCLI(t, append([]string{"forecast", "train"}, args...)...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}
