package nab_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/foreshape/foreshape/agent/forecast/anomaly"
	"github.com/foreshape/foreshape/agent/forecast/nab"
)

// TestContextualFollowsPublishedContextOSE checks foreshape's contextual
// detector against NAB's published contextOSE outputs on the tuning files.
// Given what NAB's harness gives contextOSE (the file's minimum and maximum,
// and a fifth of the probationary period as the rest period), it must score
// as contextOSE's published rows do under every profile, to 0.2. The rows
// themselves agree on about half the steps only: where more contexts are
// active than join the next step, NAB's edition breaks ties by Python's
// hash of the facts, which this one does not reproduce, and from there the
// contexts learnt differ. FORESHAPE_NAB_PUBLISHED names a NAB checkout's
// root (results/ and labels/); skipped without it.
func TestContextualFollowsPublishedContextOSE(t *testing.T) {
	root := publishedRoot(t)
	var rows, same int
	var mine, theirs []nab.Series
	for _, key := range nab.Tuning {
		pub, values, lo, hi := publishedRun(t, root, "contextOSE", key)
		probation := min(int(math.Floor(0.15*float64(len(values)))), 750)
		cad := anomaly.NewContextual(anomaly.ContextOptions{Range: &[2]float64{lo, hi}, Rest: int(float64(probation) / 5)})
		fileSame := 0
		ms := nab.Series{File: key, Times: pub.Times, Scores: make([]float64, len(values))}
		pub.File = key
		mine, theirs = append(mine, ms), append(theirs, pub)
		for i, v := range values {
			_, got := cad.Score(v)
			ms.Scores[i] = got
			if math.Abs(got-pub.Scores[i]) < 1e-9 {
				fileSame++
			}
		}
		held, _ := cad.Contexts()
		t.Logf("%s: %d of %d rows equal, %d contexts", key, fileSame, len(values), held)
		rows += len(values)
		same += fileSame
	}
	lb, err := os.ReadFile(filepath.Join(root, "labels", "combined_windows.json"))
	if err != nil {
		t.Fatal(err)
	}
	windows, err := nab.ReadWindows(bytes.NewReader(lb))
	if err != nil {
		t.Fatal(err)
	}
	var reps [2]nab.Report
	for i, s := range [][]nab.Series{mine, theirs} {
		if reps[i], err = nab.Evaluate(s, windows, nab.DefaultProfiles()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d of %d rows equal to NAB's contextOSE", same, rows)
	for name := range nab.DefaultProfiles() {
		got, want := reps[0].Profiles[name].Normalized, reps[1].Profiles[name].Normalized
		t.Logf("%-20s foreshape's %.2f, published contextOSE %.2f", name, got, want)
		if math.Abs(got-want) > 0.2 {
			t.Errorf("%s: %.2f, published contextOSE rows score %.2f", name, got, want)
		}
	}
}
