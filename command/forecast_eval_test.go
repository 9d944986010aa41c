package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runForecastCLI runs the CLI with args and returns the exit code, stdout
// and stderr.
func runForecastCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeTraceFixture writes a tiny trace directory: a NAB-style file with a
// daily cycle, a spike and a bad row, a two-column header CSV and a
// one-value-per-line file, plus NAB labels, profiles and published results
// in NAB's layout. It returns the data directory.
func writeTraceFixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	mk := func(rel, text string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Date(2014, 2, 14, 0, 0, 0, 0, time.UTC)
	var nabCSV, agg, one strings.Builder
	nabCSV.WriteString("timestamp,value\n")
	agg.WriteString("avg_cpu,avg_mem\n")
	n := 3 * 288
	for i := 0; i < n; i++ {
		day := math.Sin(2 * math.Pi * float64(i) / 288)
		v := 50 + 20*day + 2*math.Sin(float64(i)*1.7)
		if i == 700 {
			v = 400
		}
		fmt.Fprintf(&nabCSV, "%s,%.3f\n", start.Add(time.Duration(i)*5*time.Minute).Format("2006-01-02 15:04:05"), v)
		fmt.Fprintf(&agg, "%.4f,%.4f\n", 0.5+0.2*day+0.01*math.Sin(float64(i)*0.9), 0.7+0.01*math.Cos(float64(i)))
		fmt.Fprintf(&one, "%d\n", 10+i%7)
	}
	nabCSV.WriteString("2014-02-17 00:00:00,oops\n")
	mk("nab/data/realAWSCloudwatch/cpu.csv", nabCSV.String())
	mk("nab/labels/combined_windows.json", `{"realAWSCloudwatch/cpu.csv": [["2014-02-16 08:00:00.000000", "2014-02-16 12:00:00.000000"]]}`)
	mk("nab/config/profiles.json", `{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}}}`)
	mk("nab/results/final_results.json", `{"windowedGaussian": {"standard": 39.6}, "null": {"standard": 0.0}}`)
	mk("agg/cluster.csv", agg.String())
	mk("planetlab/vm_a", one.String())
	return root
}

func TestForecastEvalCommand(t *testing.T) {
	root := writeTraceFixture(t)
	code, out, errOut := runForecastCLI(t, "forecast", "eval", "-data", root, "-horizon", "12",
		"-models", "naive,seasonal-naive", "-format", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("JSON output is not one line/object:\n%s", out)
	}
	var rep struct {
		Horizon     int                             `json:"horizon"`
		Series      int                             `json:"series"`
		SkippedRows int                             `json:"skipped_rows"`
		Models      map[string]map[string]*float64  `json:"models"`
		Folders     map[string]struct{ Series int } `json:"folders"`
		Excluded    map[string]int                  `json:"excluded_series"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	// NAB file, two aggregate columns, the PlanetLab file; the JSON files
	// of the NAB layout are ignored.
	if rep.Horizon != 12 || rep.Series != 4 || rep.SkippedRows != 1 {
		t.Errorf("horizon %d series %d skipped %d, want 12, 4, 1", rep.Horizon, rep.Series, rep.SkippedRows)
	}
	for _, m := range []string{"naive", "seasonal-naive"} {
		fig, ok := rep.Models[m]
		if !ok {
			t.Fatalf("no %s in %v", m, rep.Models)
		}
		for _, k := range []string{"rel_mase", "rel_crps", "mase", "smape", "crps", "coverage80", "coverage95", "coverage80_varying", "coverage95_varying", "fit_ms_per_series"} {
			if v, ok := fig[k]; !ok || v == nil {
				t.Errorf("%s lacks %s: %v", m, k, fig)
			}
		}
	}
	if v := *rep.Models["seasonal-naive"]["rel_mase"]; v != 1 {
		t.Errorf("seasonal-naive rel_mase %v, want 1", v)
	}
	if rep.Folders["nab"].Series != 1 || rep.Folders["agg"].Series != 2 || rep.Folders["planetlab"].Series != 1 {
		t.Errorf("folders %+v", rep.Folders)
	}
	if !strings.Contains(errOut, "nab/labels/combined_windows.json: not a trace file") {
		t.Errorf("stderr does not list ignored files: %q", errOut)
	}

	// The table, with per-folder tables.
	code, out, errOut = runForecastCLI(t, "forecast", "eval", "-data", root, "-horizon", "6", "-models", "naive", "-by-folder")
	if code != ExitOK {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"rel_mase", "vs_best_baseline", "seasonal-naive", "naive", "nab (1 series)", "agg (2 series)", "1 skipped rows"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runForecastCLI(t, "forecast", "eval", "-data", root, "-horizon", "6", "-models", "naive", "-per-series")
	if code != ExitOK || !strings.Contains(out, "naive: worst series against seasonal naive") || !strings.Contains(out, "planetlab/vm_a") {
		t.Errorf("-per-series: exit %d, output\n%s\n%s", code, out, errOut)
	}
	// No progress bar when stderr is not a terminal.
	if strings.Contains(errOut, "series") && strings.Contains(errOut, "%") {
		t.Errorf("progress bar on a non-terminal: %q", errOut)
	}

	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"-horizon", "12"}, ExitUsage},
		{[]string{"-data", root}, ExitUsage},
		{[]string{"-data", root, "-horizon", "0"}, ExitUsage},
		{[]string{"-data", root, "-horizon", "12", "-models", "nope"}, ExitUsage},
		{[]string{"-data", root, "-horizon", "12", "-format", "xml"}, ExitUsage},
		{[]string{"-data", root, "-horizon", "12", "-quantiles", "0.5,1.5"}, ExitUsage},
		{[]string{"-data", root, "-horizon", "12", "extra"}, ExitUsage},
		{[]string{"-data", filepath.Join(root, "missing"), "-horizon", "12"}, ExitInvalid},
		{[]string{"-data", filepath.Join(root, "nab", "labels"), "-horizon", "12"}, ExitInvalid}, // no series
		{[]string{"-data", root, "-horizon", "12", "-part", "both"}, ExitUsage},
		{[]string{"-data", root, "-horizon", "12", "-holdout", "1"}, ExitUsage},
		{[]string{"-data", root, "-horizon", "12", "-holdout", "0"}, ExitUsage},
		{[]string{"-data", root, "-horizon", "12", "-detector", "nope"}, ExitUsage},
		{[]string{"-data", root, "-horizon", "12", "-split", filepath.Join(root, "missing.json")}, ExitInvalid},
	} {
		args := append([]string{"forecast", "eval"}, tc.args...)
		if code, _, errOut := runForecastCLI(t, args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errOut)
		}
	}
}

// TestForecastEvalHoldout: -holdout forecasts a larger share of every
// series, from more origins.
func TestForecastEvalHoldout(t *testing.T) {
	root := writeTraceFixture(t)
	origins := func(holdout string) int {
		t.Helper()
		code, out, errOut := runForecastCLI(t, "forecast", "eval", "-data", root, "-horizon", "12", "-models", "naive",
			"-format", "json", "-holdout", holdout)
		if code != ExitOK {
			t.Fatalf("-holdout %s: exit %d: %s", holdout, code, errOut)
		}
		var rep struct{ Origins int }
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.Origins
	}
	if a, b := origins("0.2"), origins("0.6"); !(b > 2*a) || a == 0 {
		t.Errorf("origins with -holdout 0.2: %d, with 0.6: %d; want about three times as many", a, b)
	}
}

// TestForecastEvalParts: -part keeps the series of one part of a -split
// declaration; series it does not name are in neither part.
func TestForecastEvalParts(t *testing.T) {
	root := writeTraceFixture(t)
	split := filepath.Join(t.TempDir(), "split.json")
	decl := `{"tuning": ["nab/data/*/*.csv", "planetlab/*"], "check": ["agg/cluster.csv"], "ranges": {"fraction": ["agg/*.csv:avg_*"]}}`
	if err := os.WriteFile(split, []byte(decl), 0o644); err != nil {
		t.Fatal(err)
	}
	series := func(part string) (int, string) {
		t.Helper()
		code, out, errOut := runForecastCLI(t, "forecast", "eval", "-data", root, "-horizon", "12", "-models", "naive",
			"-split", split, "-part", part)
		if code != ExitOK {
			t.Fatalf("-part %s: exit %d: %s", part, code, errOut)
		}
		var n int
		if _, err := fmt.Sscanf(out[strings.Index(out, "),")+2:], "%d series", &n); err != nil {
			t.Fatalf("-part %s: %v in %q", part, err, out)
		}
		return n, out
	}
	if n, out := series("tuning"); n != 2 || !strings.HasPrefix(out, "tuning part:") {
		t.Errorf("tuning: %d series\n%s", n, out)
	}
	if n, out := series("check"); n != 2 || !strings.HasPrefix(out, "check part:") {
		t.Errorf("check: %d series\n%s", n, out)
	}
	if n, _ := series("all"); n != 4 {
		t.Errorf("all: %d series", n)
	}
	if code, _, _ := runForecastCLI(t, "forecast", "eval", "-data", filepath.Join(root, "planetlab"), "-horizon", "12",
		"-split", split, "-part", "check"); code != ExitInvalid {
		t.Errorf("a part without series: exit %d, want %d", code, ExitInvalid)
	}
}

// TestForecastEvalForecastsFile: -forecasts writes every scored forecast
// as a JSON line that carries what the coverage figures are made of (the
// report's coverage80 of seasonal naive is recomputed from the lines); a
// file that cannot be written is an error naming it.
func TestForecastEvalForecastsFile(t *testing.T) {
	root := writeTraceFixture(t)
	path := filepath.Join(t.TempDir(), "forecasts.jsonl")
	code, out, errOut := runForecastCLI(t, "forecast", "eval", "-data", root, "-horizon", "12", "-models", "naive",
		"-format", "json", "-forecasts", path)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Origins int                           `json:"origins"`
		Models  map[string]map[string]float64 `json:"models"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2*rep.Origins { // naive and seasonal naive at every origin
		t.Fatalf("%d lines, want %d (two models × %d origins)", len(lines), 2*rep.Origins, rep.Origins)
	}
	in, n := 0, 0
	for _, l := range lines {
		var r struct {
			Series, Folder, Model, Label, Reason string
			Origin                               int
			Time                                 *time.Time
			Actual, Mean                         []*float64
			Quantiles                            []float64
			Bands                                [][]*float64
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if r.Series == "" || r.Folder == "" || r.Label == "" || len(r.Actual) != 12 || len(r.Mean) != 12 ||
			len(r.Bands) != len(r.Quantiles) || r.Origin < 12 {
			t.Fatalf("incomplete line: %s", l)
		}
		if (r.Time != nil) != (r.Folder == "nab") {
			t.Errorf("%s: time %v (only the NAB file has times)", r.Series, r.Time)
		}
		if r.Model != "seasonal-naive" {
			continue
		}
		lo, hi := -1, -1
		for i, q := range r.Quantiles {
			switch q {
			case 0.1:
				lo = i
			case 0.9:
				hi = i
			}
		}
		if lo < 0 || hi < 0 {
			t.Fatalf("no 0.1 and 0.9 bands: %v", r.Quantiles)
		}
		for j, a := range r.Actual {
			if a == nil {
				continue
			}
			n++
			if *a >= *r.Bands[lo][j] && *a <= *r.Bands[hi][j] {
				in++
			}
		}
	}
	if got, want := float64(in)/float64(n), rep.Models["seasonal-naive"]["coverage80"]; math.Abs(got-want) > 1e-6 {
		t.Errorf("coverage80 from the lines %v, report %v", got, want)
	}

	code, _, errOut = runForecastCLI(t, "forecast", "eval", "-data", root, "-horizon", "12", "-models", "naive",
		"-forecasts", filepath.Join(root, "missing", "f.jsonl"))
	if code != ExitInvalid || !strings.Contains(errOut, "-forecasts:") || !strings.Contains(errOut, filepath.Join(root, "missing", "f.jsonl")) {
		t.Errorf("unwritable -forecasts: exit %d, %q", code, errOut)
	}
}
