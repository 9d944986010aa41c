package nab_test

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/foreshape/foreshape/agent/forecast/anomaly"
	"github.com/foreshape/foreshape/agent/forecast/nab"
)

// TestARTimeFollowsPublishedARTime checks foreshape's ARTime against NAB's
// published ARTime outputs on every labelled file of NAB's corpus (the
// checkout's labels/combined_windows.json; the tuning files when it has
// none): given what NAB's harness gives ARTime (the file's minimum and
// maximum, and a probationary period of 15% of the file, at most 750
// rows), every row's score must be the published one.
// FORESHAPE_NAB_PUBLISHED names a NAB checkout's root (results/); skipped
// without it.
func TestARTimeFollowsPublishedARTime(t *testing.T) {
	root := publishedRoot(t)
	keys := nab.Tuning
	if f, err := os.Open(filepath.Join(root, "labels", "combined_windows.json")); err == nil {
		windows, err := nab.ReadWindows(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		keys = nil
		for k := range windows {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	var rows, events int
	for _, key := range keys {
		pub, values, lo, hi := publishedRun(t, root, "ARTime", key)
		probation := min(int(math.Floor(0.15*float64(len(values)))), 750)
		a := anomaly.NewARTime(anomaly.ARTimeOptions{Range: &[2]float64{lo, hi}, Probation: probation})
		for i, v := range values {
			got := a.Score(v)
			if math.Abs(got-pub.Scores[i]) > 1e-9 {
				t.Fatalf("%s row %d: %v, NAB's ARTime published %v", key, i, got, pub.Scores[i])
			}
			if got > 0 {
				events++
			}
		}
		rows += len(values)
	}
	t.Logf("%d files, %d rows, %d events, all equal to NAB's published ARTime", len(keys), rows, events)
	if events == 0 {
		t.Error("no events")
	}
}

// publishedRun reads NAB's published output of detector on the labelled
// file key under root (a NAB checkout) and returns it, the file's values
// publishedRoot is the NAB checkout FORESHAPE_NAB_PUBLISHED names (its
// results/ and labels/); the test is skipped without it.
func publishedRoot(t *testing.T) string {
	t.Helper()
	root := os.Getenv("FORESHAPE_NAB_PUBLISHED")
	if root == "" {
		t.Skip("FORESHAPE_NAB_PUBLISHED (a NAB checkout with results/) is not set")
	}
	return root
}

// and their minimum and maximum (what NAB's harness gives its detectors).
func publishedRun(t *testing.T, root, detector, key string) (pub nab.Series, values []float64, lo, hi float64) {
	t.Helper()
	path := filepath.Join(root, "results", filepath.FromSlash(nab.ResultPath(detector, key)))
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, err = nab.ReadResult(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, values, _, err = nab.ReadData(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	lo, hi = values[0], values[0]
	for _, v := range values {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return pub, values, lo, hi
}
