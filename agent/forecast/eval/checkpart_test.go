package eval

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/tracefile"
)

// sharedCheckPart reads the check part of the folders make eval scores
// from the shared data (FORESHAPE_DATA, or ../shared/data beside the
// repository, the Makefile's DATA), each folder named as forecast eval
// names it when given several -data directories.
func sharedCheckPart(t *testing.T) tracefile.Data {
	t.Helper()
	dir := os.Getenv("FORESHAPE_DATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared", "data")
	}
	if _, err := os.Stat(filepath.Join(dir, "SOURCES.md")); err != nil {
		t.Skipf("shared trace set not found at %s", dir)
	}
	sp := DefaultSplit()
	var data tracefile.Data
	for _, folder := range []string{"nab", "bitbrains_rnd", "datacenter_aggregates"} {
		d, err := tracefile.ReadDir(context.Background(), os.DirFS(filepath.Join(dir, folder)), ".", folder, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range d.Series {
			if sp.Part(s) == Check {
				s.Folder = folder
				data.Series = append(data.Series, s)
			}
		}
	}
	return data
}

// TestCheckPartBaselines holds the check part as docs/forecasting.md
// ("Measured on the check part") describes it: 82 series scored (6 NAB,
// 65 Bitbrains, 11 datacenter aggregates) and 15 more Bitbrains series
// left out because their in-sample seasonal-naive error is zero; and the
// baselines' figures its tables quote, which depend on nothing tuned.
func TestCheckPartBaselines(t *testing.T) {
	if testing.Short() {
		t.Skip("evaluates the check part twice")
	}
	data := sharedCheckPart(t)
	type figures struct{ relMASE, crps float64 }
	for _, tc := range []struct {
		h     int
		naive map[string]figures
		snaiv map[string]float64 // seasonal naive's crps
	}{
		{12,
			map[string]figures{"nab": {0.525, 0.2043}, "bitbrains_rnd": {0.335, 9.4253}, "datacenter_aggregates": {0.366, 0.0980}},
			map[string]float64{"nab": 0.2596, "bitbrains_rnd": 9.6148, "datacenter_aggregates": 0.1696}},
		{288,
			map[string]figures{"nab": {0.739, 0.1945}, "bitbrains_rnd": {0.497, 69.0279}, "datacenter_aggregates": {0.897, 0.1653}},
			map[string]float64{"nab": 0.2511, "bitbrains_rnd": 69.0930, "datacenter_aggregates": 0.1731}},
	} {
		t.Run(fmt.Sprintf("H=%d", tc.h), func(t *testing.T) {
			rep, err := Evaluate(context.Background(), data, Config{
				Horizon: tc.h, Step: 5 * time.Minute, Models: []string{"naive"},
				Range: DefaultSplit().RangeFunc(), Workers: 2,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Series != 82 || rep.Excluded["zero scale"] != 15 || len(rep.Excluded) != 1 {
				t.Errorf("%d series scored, excluded %v; want 82, 15 zero scale", rep.Series, rep.Excluded)
			}
			for folder, want := range map[string]int{"nab": 6, "bitbrains_rnd": 65, "datacenter_aggregates": 11} {
				if got := rep.Folders[folder].Series; got != want {
					t.Errorf("%s: %d series scored, want %d", folder, got, want)
				}
			}
			round := func(v Num, digits float64) float64 {
				p := math.Pow(10, digits)
				return math.Round(float64(v)*p) / p
			}
			for folder, want := range tc.naive {
				m := rep.Folders[folder].Models["naive"]
				if got := (figures{round(m.RelMASE, 3), round(m.CRPS, 4)}); got != want {
					t.Errorf("%s: naive rel_mase %v crps %v, want %v", folder, m.RelMASE, m.CRPS, want)
				}
				s := rep.Folders[folder].Models["seasonal-naive"]
				if got := round(s.CRPS, 4); got != tc.snaiv[folder] {
					t.Errorf("%s: seasonal naive crps %v, want %v", folder, s.CRPS, tc.snaiv[folder])
				}
			}
		})
	}
}
