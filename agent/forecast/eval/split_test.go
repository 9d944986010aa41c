package eval

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/forecast/nab"
	"github.com/foreshape/foreshape/internal/tracefile"
	"github.com/foreshape/foreshape/traces"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, file, column string
		want                  bool
	}{
		{"planetlab/20110303/*", "planetlab/20110303/host_1", "", true},
		{"planetlab/20110303/*", "data/planetlab/20110303/host_1", "", true},
		{"planetlab/20110303/*", "planetlab/20110306/host_1", "", false},
		{"planetlab/20110303/*", "xplanetlab/20110303/host_1", "", false},
		{`bitbrains_rnd/*/*.csv:CPU usage \[%\]`, "bitbrains_rnd/2013-8/7.csv", "CPU usage [%]", true},
		{`bitbrains_rnd/*/*.csv:CPU usage \[%\]`, "bitbrains_rnd/2013-8/7.csv", "CPU cores", false},
		{"alibaba2018/*.csv:*", "datacenter_aggregates/alibaba2018/m.csv", "net_in", true},
		{"a/b/c.csv", "b/c.csv", "", false},
	} {
		if got := Match(tc.pattern, tc.file, tc.column); got != tc.want {
			t.Errorf("Match(%q, %q, %q) = %v, want %v", tc.pattern, tc.file, tc.column, got, tc.want)
		}
	}
	if _, err := ReadSplit(strings.NewReader(`{"tuning": ["a/[b"]}`)); err == nil {
		t.Error("a bad pattern was accepted")
	}
}

// TestBundledTracesTune: everything bundled in traces/ (and so anything a
// model may learn from in a fresh clone) is in the tuning part.
func TestBundledTracesTune(t *testing.T) {
	sp := DefaultSplit()
	d, err := tracefile.ReadDir(context.Background(), traces.FS(), ".", "traces", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Series) < 30 {
		t.Fatalf("%d bundled series", len(d.Series))
	}
	for _, s := range d.Series {
		if p := sp.Part(s); p != Tuning {
			t.Errorf("bundled %s (%s) is in part %q, want tuning", s.Name, s.Path, p)
		}
	}
}

// TestSplitCoversSharedData: with FORESHAPE_DATA pointing at the shared
// data (../shared/data), every series of it belongs to exactly one part,
// NAB's parts are the anomaly detector's, and the declared ranges hold.
func TestSplitCoversSharedData(t *testing.T) {
	dir := os.Getenv("FORESHAPE_DATA")
	if dir == "" {
		t.Skip("FORESHAPE_DATA not set")
	}
	sp := DefaultSplit()
	count := map[string]int{}
	for _, folder := range []string{"nab", "planetlab", "bitbrains_rnd", "datacenter_aggregates", "alibaba_v2018_sample"} {
		d, err := tracefile.ReadDir(context.Background(), os.DirFS(dir+"/"+folder), ".", folder, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range d.Series {
			p := sp.Part(s)
			if p == "" {
				t.Errorf("%s (%s) is in no part, or in both", s.Name, s.Path)
			}
			count[folder+"/"+p]++
			if folder == "nab" {
				want := map[string]string{"tuning": Tuning, "held-out": Check}[nab.Part(s.File)]
				if p != want {
					t.Errorf("%s: part %q, the detector's split says %q", s.Path, p, want)
				}
			}
			r, ok := sp.Range(s)
			if !ok {
				r = NonNegativeRange(s, s.Values)
			}
			for _, v := range s.Values {
				if r != (forecast.Range{}) && (v < r.Min || v > r.Max) {
					t.Errorf("%s: value %v outside its range %+v", s.Name, v, r)
					break
				}
			}
		}
	}
	t.Logf("series per part: %v", count)
	for _, k := range []string{"nab/tuning", "nab/check", "bitbrains_rnd/tuning", "bitbrains_rnd/check", "datacenter_aggregates/tuning", "datacenter_aggregates/check", "planetlab/tuning", "planetlab/check"} {
		if count[k] == 0 {
			t.Errorf("no series in %s", k)
		}
	}
}
