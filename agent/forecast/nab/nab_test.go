package nab

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/traces"
)

var t0 = time.Date(2014, 2, 14, 0, 0, 0, 0, time.UTC)

// file builds a 100-point file at 5-minute steps with one window over
// points [50, 59] (width 10) and detections (score 1) at the given indices.
// The probationary period is the first 15 points.
func file(name string, detections ...int) File {
	f := File{Name: name, Timestamps: make([]time.Time, 100), Scores: make([]float64, 100)}
	for i := range f.Timestamps {
		f.Timestamps[i] = t0.Add(time.Duration(i) * 5 * time.Minute)
	}
	for _, d := range detections {
		f.Scores[d] = 1
	}
	f.Windows = []Window{{Start: f.Timestamps[50], End: f.Timestamps[59]}}
	return f
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestScaledSigmoid(t *testing.T) {
	// Values worked out by hand: 2·sigmoid(-5x) − 1 = −tanh(5x/2).
	cases := []struct{ pos, want float64 }{
		{-1, 0.9866142981514303},   // tanh(2.5): window's left edge
		{-0.5, 0.8482836399575129}, // tanh(1.25)
		{-0.1, 0.24491866240370913},
		{0, 0},
		{1, -0.9866142981514303},
		{2.999, -0.9999994},
		{3, -0.9999994},
		{3.001, -1},
		{10, -1},
	}
	for _, tc := range cases {
		got := ScaledSigmoid(tc.pos)
		tol := 1e-12
		if tc.pos == 2.999 || tc.pos == 3 {
			tol = 1e-6
		}
		if math.Abs(got-tc.want) > tol {
			t.Errorf("ScaledSigmoid(%v) = %.12f, want %.12f", tc.pos, got, tc.want)
		}
	}
}

// TestHandComputed checks single-file raw scores, standard profile, at a
// fixed threshold of 0.5, against values computed by hand:
//
//   - detection at the window's first point: position −(59−50+1)/10 = −1,
//     reward tanh(2.5)/tanh(2.5) = 1;
//   - at its last point: position −1/10, reward tanh(0.25)/tanh(2.5) =
//     0.24824154977542992;
//   - right after it (point 60): distance 1/(10−1), cost
//     0.11·(−tanh(5/18)) = −0.029793183036839352, plus the missed window −1;
//   - before any window: the full cost −0.11, plus the missed window −1;
//   - no detection: −1 (FN);
//   - several detections in a window: only the earliest counts.
func TestHandComputed(t *testing.T) {
	std := DefaultProfiles()[Standard]
	cases := []struct {
		name       string
		f          File
		want       float64
		tp, fp, fn int
	}{
		{"TP at window start", file("a", 50), 1, 1, 0, 0},
		{"TP at window end", file("a", 59), 0.24824154977542992, 1, 0, 0},
		{"TP mid window", file("a", 55), 0.8482836399575129 / 0.9866142981514303, 1, 0, 0},
		{"FP right after window", file("a", 60), -1 - 0.029793183036839352, 0, 1, 1},
		{"FP before any window", file("a", 20), -1.11, 0, 1, 1},
		{"FN", file("a"), -1, 0, 0, 1},
		{"only the first detection counts", file("a", 52, 50, 59), 1, 1, 0, 0},
		{"detection in probation ignored", file("a", 10), -1, 0, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ScoreAt([]File{tc.f}, std, 0.5, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !near(got.Score, tc.want) || got.TP != tc.tp || got.FP != tc.fp || got.FN != tc.fn {
				t.Errorf("got score %.12f tp %d fp %d fn %d, want %.12f tp %d fp %d fn %d",
					got.Score, got.TP, got.FP, got.FN, tc.want, tc.tp, tc.fp, tc.fn)
			}
		})
	}
}

func TestFPDecaysAfterWindow(t *testing.T) {
	std := DefaultProfiles()[Standard]
	prev := 0.0
	for _, at := range []int{60, 62, 65, 70, 80} {
		got, err := ScoreAt([]File{file("a", at)}, std, 0.5, Options{})
		if err != nil {
			t.Fatal(err)
		}
		cost := got.Score + 1 // remove the FN
		// Position |59−at|/9; from 3 on the cost is the full 0.11.
		want := 0.11 * ScaledSigmoid(float64(at-59)/9)
		if !near(cost, want) {
			t.Errorf("FP at %d: cost %v, want %v", at, cost, want)
		}
		if cost > prev {
			t.Errorf("FP at %d: cost %v should not be smaller than the earlier %v", at, cost, prev)
		}
		prev = cost
	}
	got, _ := ScoreAt([]File{file("a", 90)}, std, 0.5, Options{})
	if !near(got.Score, -1.11) {
		t.Errorf("FP 31 points after window: %v, want -1.11", got.Score)
	}
}

func TestNormalisation(t *testing.T) {
	std := DefaultProfiles()[Standard]
	perfect := []File{file("a", 50), file("b", 50)}
	null := []File{file("a"), file("b")}
	// The null detector's own scores are all 0.5 internally; a detector that
	// never fires scores the same.
	for _, tc := range []struct {
		name  string
		files []File
		want  float64
	}{
		{"perfect", perfect, 100},
		{"null", null, 0},
		// One window found at its start, one missed: raw 1 − 1 = 0, null −2,
		// perfect 2: 100·(0+2)/(2+2) = 50.
		{"half", []File{file("a", 50), file("b")}, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Score(tc.files, std, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !near(res.Normalized, tc.want) {
				t.Errorf("normalised %v (raw %v null %v perfect %v), want %v", res.Normalized, res.Raw, res.Null, res.Perfect, tc.want)
			}
			if !near(res.Null, -2) || !near(res.Perfect, 2) {
				t.Errorf("null %v perfect %v, want -2 and 2", res.Null, res.Perfect)
			}
		})
	}
}

// TestThresholdOptimised: scores 0.9 at both window starts, 0.8 at a point
// far from windows, 0.3 everywhere else. The best threshold keeps only the
// two 0.9 detections.
func TestThresholdOptimised(t *testing.T) {
	a, b := file("a"), file("b")
	for i := range a.Scores {
		a.Scores[i], b.Scores[i] = 0.3, 0.3
	}
	a.Scores[50], b.Scores[50] = 0.9, 0.9
	a.Scores[30] = 0.8
	res, err := Score([]File{a, b}, DefaultProfiles()[Standard], Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Threshold != 0.9 || !near(res.Raw, 2) || res.TP != 2 || res.FP != 0 {
		t.Errorf("threshold %v raw %v tp %d fp %d, want 0.9, 2, 2, 0", res.Threshold, res.Raw, res.TP, res.FP)
	}
	if !near(res.Files["a"], 1) || !near(res.Files["b"], 1) {
		t.Errorf("per-file %v, want 1 each", res.Files)
	}
	// Under reward_low_FN_rate the same choice holds; the null score doubles.
	res, err = Score([]File{a, b}, DefaultProfiles()[RewardLowFNRate], Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !near(res.Null, -4) || !near(res.Normalized, 100) {
		t.Errorf("low-FN profile: null %v normalised %v, want -4 and 100", res.Null, res.Normalized)
	}
}

func TestReadProfilesAndWindows(t *testing.T) {
	prof, err := ReadProfiles(strings.NewReader(`{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if prof[Standard] != DefaultProfiles()[Standard] {
		t.Errorf("standard = %+v", prof[Standard])
	}
	if _, err := ReadProfiles(strings.NewReader(`{"x": {}}`)); err == nil {
		t.Error("profile without CostMatrix accepted")
	}
	ws, err := ReadWindows(strings.NewReader(`{"d/f.csv": [["2014-02-19 10:50:00.000000", "2014-02-20 03:30:00.000000"]], "d/g.csv": []}`))
	if err != nil {
		t.Fatal(err)
	}
	w := ws["d/f.csv"][0]
	if w.Start != time.Date(2014, 2, 19, 10, 50, 0, 0, time.UTC) || w.End != time.Date(2014, 2, 20, 3, 30, 0, 0, time.UTC) {
		t.Errorf("window = %+v", w)
	}
	if len(ws["d/g.csv"]) != 0 {
		t.Errorf("g windows = %v", ws["d/g.csv"])
	}
	for _, bad := range []string{`{"f": [["2014-02-19 10:50:00"]]}`, `{"f": [["x", "y"]]}`, `{"f": [["2014-02-20 00:00:00", "2014-02-19 00:00:00"]]}`, `[`} {
		if _, err := ReadWindows(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadWindows(%s) accepted", bad)
		}
	}
}

// TestBundledFiles decodes the profiles and windows shipped with the
// bundled NAB sample.
func TestBundledFiles(t *testing.T) {
	b, err := traces.ReadFile("nab/config/profiles.json")
	if err != nil {
		t.Fatal(err)
	}
	prof, err := ReadProfiles(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range DefaultProfiles() {
		if prof[name] != want {
			t.Errorf("%s = %+v, want %+v", name, prof[name], want)
		}
	}
	b, err = traces.ReadFile("nab/labels/combined_windows.json")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := ReadWindows(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(ws["realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv"]); got != 2 {
		t.Errorf("53ea38 has %d windows, want 2", got)
	}
}

func TestMismatchedLengths(t *testing.T) {
	f := file("a")
	f.Scores = f.Scores[:10]
	if _, err := Score([]File{f}, DefaultProfiles()[Standard], Options{}); err == nil {
		t.Error("mismatched lengths accepted")
	}
}

func TestProbationLength(t *testing.T) {
	for _, tc := range []struct {
		n    int
		p    float64
		want int
	}{
		{100, 0, 0}, {100, 1, 100}, {100, 0.15, 15}, {4032, 0.15, 604},
		{5000, 0.15, 750}, {22695, 0.15, 750}, {6000, 0.1, 500},
	} {
		if got := probationLength(tc.n, tc.p); got != tc.want {
			t.Errorf("probationLength(%d, %v) = %d, want %d", tc.n, tc.p, got, tc.want)
		}
	}
}

// TestByThreshold walks the threshold sweep on hand-made points: a window
// keeps −FN until detected, then its best detection's weight; detections
// outside windows add their weights.
func TestByThreshold(t *testing.T) {
	const a, b = 0, 1
	pts := []point{
		{score: 0.0, weight: -2, window: outside},
		{score: 0.25, weight: 18, window: a}, // replaces A's 9 once the threshold reaches 0.25
		{score: 0.35, weight: 9, window: a},
		{score: 0.6, weight: 6, window: b},
		{score: 0.6, weight: -2, window: outside},
	}
	got := byThreshold(pts, CostMatrix{TP: 1, FP: 1, FN: 4})
	want := []ThresholdScore{
		{Threshold: math.Inf(1), Score: -8, FN: 2},
		{Threshold: 0.6, Score: 6 - 2 - 4, TP: 1, FP: 1, FN: 1},
		{Threshold: 0.35, Score: 6 - 2 + 9, TP: 2, FP: 1},
		{Threshold: 0.25, Score: 6 - 2 + 18, TP: 2, FP: 1},
		{Threshold: 0, Score: 6 - 2 + 18 - 2, TP: 2, FP: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if best := bestOf(got); best.Threshold != 0.25 || best.Score != 22 {
		t.Errorf("best = %+v, want threshold 0.25 score 22", best)
	}
}

// TestSweepWindowSigns: with every point a detection, points inside windows
// earn positive weights and all others negative ones, and probation is
// left out.
func TestSweepWindowSigns(t *testing.T) {
	f := file("a")
	for i := range f.Scores {
		f.Scores[i] = 1
	}
	f.Windows = append(f.Windows, Window{Start: f.Timestamps[75], End: f.Timestamps[95]})
	pts, nw, err := sweep(f, DefaultProfiles()[Standard], 0.1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if nw != 2 || len(pts) != 90 {
		t.Fatalf("windows %d points %d, want 2 and 90", nw, len(pts))
	}
	in := 0
	for i, p := range pts {
		if p.window >= 0 {
			in++
			if p.weight <= 0 {
				t.Errorf("point %d in window %d has weight %v", i+10, p.window, p.weight)
			}
		} else if p.weight >= 0 {
			t.Errorf("point %d outside windows has weight %v", i+10, p.weight)
		}
	}
	if in != 10+21 {
		t.Errorf("%d points in windows, want 31", in)
	}
}

// TestHillClimb: NAB's runner climbs from 0.5. A false positive scored
// 0.45 makes every step below 0.5 look worse, so it never reaches the
// window's detection at 0.2; the sweep does: +1 − 0.11.
func TestHillClimb(t *testing.T) {
	f := file("a")
	f.Scores[50] = 0.2
	f.Scores[30] = 0.45
	std := DefaultProfiles()[Standard]
	sweep, err := Score([]File{f}, std, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sweep.Threshold != 0.2 || !near(sweep.Raw, 0.89) || !near(sweep.Normalized, 94.5) {
		t.Errorf("sweep: %+v, want threshold 0.2, raw 0.89, normalised 94.5", sweep)
	}
	climb, err := Score([]File{f}, std, Options{HillClimb: true})
	if err != nil {
		t.Fatal(err)
	}
	if climb.Threshold < 0.45 || !near(climb.Raw, -1) || !near(climb.Normalized, 0) {
		t.Errorf("hill climb: %+v, want a threshold above 0.45 and raw -1", climb)
	}
	// On an easy case both agree.
	easy := file("a", 50)
	a, _ := Score([]File{easy}, std, Options{})
	b, _ := Score([]File{easy}, std, Options{HillClimb: true})
	if !near(a.Normalized, 100) || !near(b.Normalized, 100) {
		t.Errorf("easy case: sweep %v, hill climb %v, want 100 and 100", a.Normalized, b.Normalized)
	}
}

// TestSweepIgnoresMonotoneRescaling: the swept score depends only on the
// order of the anomaly scores, so any increasing transform of them scores
// the same.
func TestSweepIgnoresMonotoneRescaling(t *testing.T) {
	a, b := file("a"), file("b")
	for i := range a.Scores {
		// A deterministic jumble in [0, 1).
		a.Scores[i] = math.Mod(float64(i)*0.6180339887, 1)
		b.Scores[i] = math.Mod(float64(i)*0.4142135623+0.3, 1)
	}
	a.Scores[52], b.Scores[57] = 0.999, 0.9995
	cube := func(f File) File {
		g := f
		g.Scores = make([]float64, len(f.Scores))
		for i, s := range f.Scores {
			g.Scores[i] = s * s * s
		}
		return g
	}
	for name, costs := range DefaultProfiles() {
		x, err := Score([]File{a, b}, costs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		y, err := Score([]File{cube(a), cube(b)}, costs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !near(x.Normalized, y.Normalized) || x.TP != y.TP || x.FP != y.FP || !near(y.Threshold, x.Threshold*x.Threshold*x.Threshold) {
			t.Errorf("%s: %+v vs cubed %+v", name, x, y)
		}
		if x.Normalized <= 0 {
			t.Errorf("%s: the early detections should beat the null detector: %v", name, x.Normalized)
		}
	}
}

func TestMatchLabelAndEvaluate(t *testing.T) {
	windows := map[string][]Window{"realAWSCloudwatch/a.csv": file("a").Windows, "realAWSCloudwatch/b.csv": file("b").Windows}
	for _, tc := range []struct {
		file, want string
		ok         bool
	}{
		{"realAWSCloudwatch/a.csv", "realAWSCloudwatch/a.csv", true},
		{"data/realAWSCloudwatch/b.csv", "realAWSCloudwatch/b.csv", true},
		{"data/xrealAWSCloudwatch/b.csv", "", false},
		{"c.csv", "", false},
	} {
		if got, ok := MatchLabel(tc.file, windows); got != tc.want || ok != tc.ok {
			t.Errorf("MatchLabel(%q) = %q %v, want %q %v", tc.file, got, ok, tc.want, tc.ok)
		}
	}
	a := file("a", 52)
	rep, err := Evaluate([]Series{{File: "data/realAWSCloudwatch/a.csv", Times: a.Timestamps, Scores: a.Scores}, {File: "other.csv"}}, windows, DefaultProfiles())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 1 || len(rep.Missing) != 1 || rep.Missing[0] != "realAWSCloudwatch/b.csv" {
		t.Errorf("files %d, missing %v; want 1 and b.csv", rep.Files, rep.Missing)
	}
	if s := rep.Profiles[Standard]; s.TP != 1 || s.FP != 0 || s.HillClimb > s.Normalized {
		t.Errorf("standard %+v", s)
	}
	if _, err := Evaluate([]Series{{File: "other.csv"}}, windows, DefaultProfiles()); !errors.Is(err, ErrNoLabelledSeries) {
		t.Errorf("no labelled series: err %v", err)
	}
	dup := []Series{{File: "x/realAWSCloudwatch/a.csv", Times: a.Timestamps, Scores: a.Scores}, {File: "y/realAWSCloudwatch/a.csv", Times: a.Timestamps, Scores: a.Scores}}
	if _, err := Evaluate(dup, windows, DefaultProfiles()); err == nil {
		t.Error("two series for one labelled file accepted")
	}
}

func TestSplitPart(t *testing.T) {
	cases := map[string]string{
		"realAWSCloudwatch/grok_asg_anomaly.csv":                            "tuning",
		"data/realAWSCloudwatch/grok_asg_anomaly.csv":                       "tuning",
		"/x/nab/data/realKnownCause/machine_temperature_system_failure.csv": "held-out",
		"realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv":                  "held-out",
		"xrealAWSCloudwatch/grok_asg_anomaly.csv":                           "",
		"realKnownCause/nyc_taxi.csv":                                       "",
	}
	for file, want := range cases {
		if got := Part(file); got != want {
			t.Errorf("Part(%q) = %q, want %q", file, got, want)
		}
	}
	// The tuning part is what foreshape bundles: the split is declared,
	// not drawn.
	lb, err := traces.ReadFile("nab/labels/combined_windows.json")
	if err != nil {
		t.Fatal(err)
	}
	w, err := ReadWindows(bytes.NewReader(lb))
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != len(Tuning) {
		t.Fatalf("%d bundled files, %d tuning files", len(w), len(Tuning))
	}
	windows := 0
	for k := range w {
		if Part(k) != "tuning" {
			t.Errorf("bundled file %s is not in the tuning part", k)
		}
		windows += len(w[k])
	}
	if windows != 12 {
		t.Errorf("the tuning part holds %d labelled windows, want 12 (as the held-out part)", windows)
	}
}
