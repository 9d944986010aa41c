package nab

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestResultPath(t *testing.T) {
	for _, tc := range []struct{ det, file, want string }{
		{"numenta", "realKnownCause/machine_temperature_system_failure.csv", "numenta/realKnownCause/numenta_machine_temperature_system_failure.csv"},
		{"ARTime", "realAWSCloudwatch/grok_asg_anomaly.csv", "ARTime/realAWSCloudwatch/ARTime_grok_asg_anomaly.csv"},
	} {
		if got := ResultPath(tc.det, tc.file); got != tc.want {
			t.Errorf("ResultPath(%s, %s) = %s, want %s", tc.det, tc.file, got, tc.want)
		}
	}
}

func TestReadResultAndData(t *testing.T) {
	s, err := ReadResult(strings.NewReader("timestamp,value,anomaly_score,raw_score,label\n2014-02-14 14:30:00,0.132,0.03,1.0,0\n2014-02-14 14:35:00,0.134,0.5,1.0,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Times) != 2 || s.Scores[1] != 0.5 || s.Times[1] != s.Times[0].Add(5*60e9) {
		t.Errorf("result %+v", s)
	}
	if _, err := ReadResult(strings.NewReader("timestamp,value\n2014-02-14 14:30:00,1\n")); !errors.Is(err, ErrNotResult) {
		t.Errorf("no anomaly_score column: err %v", err)
	}
	if _, err := ReadResult(strings.NewReader("timestamp,anomaly_score\n2014-02-14 14:30:00,x\n")); err == nil {
		t.Error("a result with a bad score accepted")
	}
	times, values, skipped, err := ReadData(strings.NewReader("timestamp,value\n2014-02-14 14:30:00,1.5\nnot a time,2\n2014-02-14 14:35:00,oops\n2014-02-14 14:30:00,3\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Rows in file order, whatever their times; bad rows counted.
	if len(times) != 2 || values[0] != 1.5 || values[1] != 3 || skipped != 2 || !times[0].Equal(times[1]) {
		t.Errorf("data %v %v skipped %d", times, values, skipped)
	}
}

func TestReadThresholds(t *testing.T) {
	th, err := ReadThresholds(strings.NewReader(`{"numenta": {"standard": {"score": 1.5, "threshold": 0.54}, "reward_low_FP_rate": {"score": 2, "threshold": 0.57}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if th["numenta"][Standard] != 0.54 || th["numenta"][RewardLowFPRate] != 0.57 {
		t.Errorf("thresholds %v", th)
	}
	if _, err := ReadThresholds(strings.NewReader(`{"x": {"standard": {"score": 1}}}`)); err == nil {
		t.Error("a profile without a threshold accepted")
	}
}

// TestScoreFixedAndTune: scores 0.9 at both window starts, 0.8 at a point
// far from windows, 0.3 everywhere else. The best thresholds keep only the
// 0.9 detections: any in (0.8, 0.9]; Tune takes the middle, 0.85.
func TestScoreFixedAndTune(t *testing.T) {
	a, b := file("a"), file("b")
	for i := range a.Scores {
		a.Scores[i], b.Scores[i] = 0.3, 0.3
	}
	a.Scores[50], b.Scores[50] = 0.9, 0.9
	a.Scores[30] = 0.8
	std := DefaultProfiles()[Standard]
	th, err := Tune([]File{a, b}, map[string]CostMatrix{Standard: std})
	if err != nil {
		t.Fatal(err)
	}
	if !near(th[Standard], 0.85) {
		t.Errorf("tuned threshold %v, want 0.85", th[Standard])
	}
	for _, tc := range []struct {
		th         float64
		want       float64
		tp, fp, fn int
	}{
		{0.85, 100, 2, 0, 0},
		{0.8, 100 * (2 - 0.11 + 2) / 4, 2, 1, 0}, // one FP far from windows
		{0.95, 0, 0, 0, 2},
		{0.3, 0, 2, 2 * (85 - 10), 0}, // every scored point outside the windows
	} {
		r, err := ScoreFixed([]File{a, b}, std, tc.th, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.TP != tc.tp || r.FP != tc.fp || r.FN != tc.fn || r.Threshold != tc.th {
			t.Errorf("at %v: %+v, want tp %d fp %d fn %d", tc.th, r, tc.tp, tc.fp, tc.fn)
		}
		if tc.th != 0.3 && !near(r.Normalized, tc.want) {
			t.Errorf("at %v: normalised %v, want %v", tc.th, r.Normalized, tc.want)
		}
	}
	// Leave one file out: b at the threshold chosen on a (0.85) finds its
	// window; a at the one chosen on b, whose only high score is 0.9 (the
	// middle of (0.3, 0.9]: 0.6), also takes the 0.8 false positive:
	// raw 1 + 0.89, normalised 100·(1.89+2)/4.
	cv, err := CrossValidate([]File{a, b}, std)
	if err != nil || !near(cv, 97.25) {
		t.Errorf("cross-validated %v (%v), want 97.25", cv, err)
	}
	// Nothing helps: detect nothing.
	c := file("c")
	for i := range c.Scores {
		c.Scores[i] = 0.5
	}
	th, _ = Tune([]File{c}, map[string]CostMatrix{Standard: std})
	if !math.IsInf(th[Standard], 1) {
		t.Errorf("threshold %v where every detection costs, want +Inf", th[Standard])
	}
	rep, err := EvaluateFixed([]Series{{File: "a", Times: a.Timestamps, Scores: a.Scores}}, map[string][]Window{"a": a.Windows}, DefaultProfiles(), map[string]float64{Standard: 0.8})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Profiles[Standard].Fixed == nil || rep.Profiles[RewardLowFNRate].Fixed != nil || rep.Profiles[Standard].Fixed.FP != 1 {
		t.Errorf("fixed results %+v", rep.Profiles)
	}
}

// TestReproducesPublishedScores scores NAB's published detectors on NAB's
// whole corpus at NAB's thresholds and finds the scores NAB published, when
// FORESHAPE_NAB_PUBLISHED points at a checkout of NAB's repository (its
// results/, labels/ and config/ at the commit ../shared/data/SOURCES.md
// names):
//
//	FORESHAPE_NAB_PUBLISHED=/path/to/NAB go test -run Reproduces ./agent/forecast/nab/
func TestReproducesPublishedScores(t *testing.T) {
	dir := os.Getenv("FORESHAPE_NAB_PUBLISHED")
	if dir == "" {
		t.Skip("FORESHAPE_NAB_PUBLISHED not set")
	}
	open := func(p string) *os.File {
		f, err := os.Open(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	windows, err := ReadWindows(open("labels/combined_windows.json"))
	if err != nil {
		t.Fatal(err)
	}
	thresholds, err := ReadThresholds(open("config/thresholds.json"))
	if err != nil {
		t.Fatal(err)
	}
	published, err := ReadPublished(open("results/final_results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range windows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, det := range []string{"numenta", "ARTime", "windowedGaussian"} {
		var files []File
		for _, k := range keys {
			s, err := ReadResult(open(filepath.Join("results", ResultPath(det, k))))
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, File{Name: k, Timestamps: s.Times, Scores: s.Scores, Windows: windows[k]})
		}
		for profile, cm := range DefaultProfiles() {
			r, err := ScoreFixed(files, cm, thresholds[det][profile], Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := published[det][profile]
			t.Logf("%s %s: %.3f, published %.3f", det, profile, r.Normalized, want)
			if math.Abs(r.Normalized-want) > 0.1 {
				t.Errorf("%s %s: %.3f, NAB published %.3f", det, profile, r.Normalized, want)
			}
		}
	}
}
