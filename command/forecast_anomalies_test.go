package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestForecastAnomaliesCommand(t *testing.T) {
	root := writeTraceFixture(t)
	nabDir := filepath.Join(root, "nab")
	labels := filepath.Join(nabDir, "labels", "combined_windows.json")
	code, out, errOut := runForecastCLI(t, "forecast", "anomalies", "-data", nabDir, "-labels", labels, "-format", "json", "-max-p", "1")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res struct {
		Series int `json:"series"`
		Events []struct {
			Series, Start, End, Kind string
			Score, P, Z              float64
		} `json:"events"`
		NAB map[string]struct {
			Score, Threshold float64
			TP, FP, FN       int
			Files            map[string]float64
		} `json:"nab"`
		Published map[string]map[string]float64 `json:"published"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if res.Series != 1 {
		t.Errorf("series %d, want 1", res.Series)
	}
	var spike bool
	for _, e := range res.Events {
		if e.Start == "2014-02-16 10:20:00" && e.Kind == "spike" { // point 700
			spike = true
		}
	}
	if !spike {
		t.Errorf("the injected spike at 2014-02-16 10:20 is not an event: %+v", res.Events)
	}
	// The profiles file beside the labels holds only the standard profile.
	std, ok := res.NAB["standard"]
	if !ok || len(res.NAB) != 1 {
		t.Fatalf("NAB scores %+v, want the standard profile only", res.NAB)
	}
	// The spike sits inside the labelled window: detected, and the score is
	// well above the null detector's 0.
	if std.TP != 1 || std.FN != 0 || std.Score <= 50 || std.Score > 100 {
		t.Errorf("standard %+v, want the window detected and a score in (50, 100]", std)
	}
	if raw, ok := std.Files["realAWSCloudwatch/cpu.csv"]; !ok || raw <= 0 {
		t.Errorf("per-file raw scores %v, want a positive score for cpu.csv", std.Files)
	}
	if res.Published["windowedGaussian"]["standard"] != 39.6 {
		t.Errorf("published %v", res.Published)
	}

	code, out, errOut = runForecastCLI(t, "forecast", "anomalies", "-data", nabDir, "-labels", labels)
	if code != ExitOK {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"SERIES", "spike", "standard", "Raw standard-profile score per file", "windowedGaussian (published, full corpus)", "foreshape (these series)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// -max-p keeps only the rarest events. p-values are calibrated on the
	// series' own history: over 864 points none can be below 1/865.
	for _, tc := range []struct {
		max  string
		some bool
	}{{"0.01", true}, {"0.001", false}} {
		code, out, _ = runForecastCLI(t, "forecast", "anomalies", "-data", nabDir, "-format", "json", "-max-p", tc.max)
		var got struct {
			Events []struct{ P float64 } `json:"events"`
		}
		if code != ExitOK || json.Unmarshal([]byte(out), &got) != nil {
			t.Fatalf("-max-p %s: exit %d, output %s", tc.max, code, out)
		}
		if (len(got.Events) > 0) != tc.some || len(got.Events) > len(res.Events) {
			t.Errorf("-max-p %s kept %d of %d events", tc.max, len(got.Events), len(res.Events))
		}
		for _, e := range got.Events {
			if e.P > 0.01 {
				t.Errorf("-max-p %s printed an event with p %v", tc.max, e.P)
			}
		}
	}

	// Without labels: events only.
	code, out, _ = runForecastCLI(t, "forecast", "anomalies", "-data", root, "-format", "json")
	if code != ExitOK || strings.Contains(out, `"nab"`) {
		t.Errorf("without labels: exit %d, output %s", code, out)
	}

	bad := filepath.Join(root, "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, ExitUsage},
		{[]string{"-data", nabDir, "-format", "xml"}, ExitUsage},
		{[]string{"-data", nabDir, "-threshold", "0"}, ExitUsage},
		{[]string{"-data", nabDir, "-max-p", "0"}, ExitUsage},
		{[]string{"-data", nabDir, "-profiles", labels}, ExitUsage},
		{[]string{"-data", nabDir, "-labels", bad}, ExitInvalid},
		{[]string{"-data", nabDir, "-labels", filepath.Join(root, "none.json")}, ExitInvalid},
		{[]string{"-data", filepath.Join(root, "agg"), "-labels", labels}, ExitInvalid}, // nothing labelled
	} {
		args := append([]string{"forecast", "anomalies"}, tc.args...)
		if code, _, errOut := runForecastCLI(t, args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errOut)
		}
	}
}
