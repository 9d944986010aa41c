package nab_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/anomaly"
	"github.com/foreshape/foreshape/agent/forecast/nab"
	"github.com/foreshape/foreshape/internal/tracefile"
	"github.com/foreshape/foreshape/traces"
)

// detectorScores runs foreshape's detector over every series under root
// in fsys and returns them as NAB series with the detector's onset scores.
func detectorScores(t *testing.T, fsys fs.FS, root string) []nab.Series {
	t.Helper()
	data, err := tracefile.ReadDir(context.Background(), fsys, root, "data", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var out []nab.Series
	for _, s := range data.Series {
		pts, _ := anomaly.Detect(s.Values, anomaly.Options{})
		ns := nab.Series{File: s.File, Times: make([]time.Time, len(pts)), Scores: make([]float64, len(pts))}
		for i, p := range pts {
			ns.Times[i], ns.Scores[i] = s.Time(i), p.Onset
		}
		out = append(out, ns)
	}
	return out
}

func readWindows(t *testing.T, b []byte) map[string][]nab.Window {
	t.Helper()
	w, err := nab.ReadWindows(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestDetectorOnBundledNAB scores the anomaly detector on the seven NAB
// series bundled with foreshape and holds it to the scores it reached when
// this test was written, less a small margin, so that a change to the
// detector that makes it worse fails here.
func TestDetectorOnBundledNAB(t *testing.T) {
	sub, err := fs.Sub(traces.FS(), "nab")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := traces.ReadFile("nab/labels/combined_windows.json")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := nab.Evaluate(detectorScores(t, sub, "data"), readWindows(t, lb), nab.DefaultProfiles())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 7 || len(rep.Missing) != 0 {
		t.Fatalf("scored %d files, missing %v; want the 7 bundled", rep.Files, rep.Missing)
	}
	floors := map[string]float64{nab.Standard: bundledFloorStandard, nab.RewardLowFPRate: bundledFloorLowFP, nab.RewardLowFNRate: bundledFloorLowFN}
	for name, floor := range floors {
		got := rep.Profiles[name]
		t.Logf("%-20s %6.1f (hill climb %.1f), threshold %.4f, tp %d fp %d fn %d", name, got.Normalized, got.HillClimb, got.Threshold, got.TP, got.FP, got.FN)
		if got.Normalized < floor {
			t.Errorf("%s: NAB score %.1f on the bundled series, below the floor %.1f", name, got.Normalized, floor)
		}
	}
}

// TestDetectorOnSharedNAB scores the detector on a whole NAB data directory
// (the shared set, outside the repository) when FORESHAPE_NAB_DIR points at
// it, and holds it to a floor as TestDetectorOnBundledNAB does:
//
//	FORESHAPE_NAB_DIR=../shared/data/nab go test -run SharedNAB -v ./agent/forecast/nab/
func TestDetectorOnSharedNAB(t *testing.T) {
	dir := os.Getenv("FORESHAPE_NAB_DIR")
	if dir == "" {
		t.Skip("FORESHAPE_NAB_DIR not set")
	}
	lb, err := os.ReadFile(filepath.Join(dir, "labels", "combined_windows.json"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := nab.Evaluate(detectorScores(t, os.DirFS(dir), "data"), readWindows(t, lb), nab.DefaultProfiles())
	if err != nil {
		t.Fatal(err)
	}
	got := rep.Profiles[nab.Standard]
	t.Logf("%d files: standard %.1f (hill climb %.1f), low FP %.1f, low FN %.1f", rep.Files, got.Normalized, got.HillClimb,
		rep.Profiles[nab.RewardLowFPRate].Normalized, rep.Profiles[nab.RewardLowFNRate].Normalized)
	if got.Normalized < sharedFloorStandard {
		t.Errorf("standard NAB score %.1f, below the floor %.1f", got.Normalized, sharedFloorStandard)
	}
}

// Floors: the scores measured when these tests were written, rounded down
// and less about two points.
const (
	bundledFloorStandard = 52.0
	bundledFloorLowFP    = 42.0
	bundledFloorLowFN    = 59.0
	sharedFloorStandard  = 51.5
)
