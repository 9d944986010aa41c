package report

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/proof"
	"github.com/foreshape/foreshape/sim"
)

func TestWrite(t *testing.T) {
	sc := sim.DefaultScenario()
	sc.Duration = 3*time.Hour + 30*time.Minute // into the dc2 surge
	res, err := proof.RunComparison(context.Background(), proof.Config{Scenario: sc, Controllers: []string{"none", "throttle"}})
	if err != nil {
		t.Fatal(err)
	}
	// A forecast band, as foreshape's notes carry one.
	tr := proof.ForecastTrack{Datacenter: "dc2", Lead: 30 * time.Minute}
	for i := 0; i < 120; i++ {
		tr.Times = append(tr.Times, res.Start.Add(time.Duration(i)*time.Minute))
		v := 12000.0
		if i < 10 {
			v = math.NaN()
		}
		tr.P10, tr.P50, tr.P90 = append(tr.P10, v*0.9), append(tr.P50, v), append(tr.P90, v*1.1)
	}
	res.Runs[1].Notes.Forecasts = []proof.ForecastTrack{tr}
	dir := t.TempDir()
	if err := Write(dir, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "report.html", "metrics.png", "metrics.svg",
		"locality-dc1.png", "locality-dc1.svg", "locality-dc2.png", "locality-dc2.svg", "locality-dc3.png", "locality-dc3.svg"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	png, _ := os.ReadFile(filepath.Join(dir, "metrics.png"))
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Error("metrics.png is not a PNG")
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{
		"# foreshape against reactive controllers: default",
		"| metric | none | throttle |",
		"| congestion_node_minutes |",
		"![dc2: CPU demand against capacity](locality-dc2.png)",
		"node-minutes in dc2 between",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	html, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if !strings.Contains(string(html), "data:image/svg+xml;base64,") || !strings.Contains(string(html), "<td>congestion_node_minutes</td>") {
		t.Error("report.html lacks its inline figures or table")
	}
	// Offline: nothing is fetched.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`).Find(html); m != nil {
		t.Errorf("report.html fetches %s", m)
	}
}

func TestExplainMissedGoals(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	series := func(cong float64) []proof.LocalitySeries {
		s := proof.LocalitySeries{Datacenter: "west"}
		for i := 0; i < 60; i++ {
			s.Minutes = append(s.Minutes, t0.Add(time.Duration(i)*time.Minute))
			c := 0.0
			if i >= 30 && i < 40 {
				c = cong
			}
			s.Congested = append(s.Congested, c)
			s.CPUDemand = append(s.CPUDemand, 1000)
			s.CPUCapacity, s.MemDemand, s.MemCapacity, s.Reserved = append(s.CPUCapacity, 900), append(s.MemDemand, 0), append(s.MemCapacity, 1), append(s.Reserved, 0)
		}
		return s2(s)
	}
	fs := proof.Run{Controller: "foreshape", Metrics: proof.Metrics{CongestionNodeMinutes: 20}, Localities: series(2)}
	fs.Notes.Forecasts = []proof.ForecastTrack{{Datacenter: "west", Lead: time.Hour, Times: fs.Localities[0].Minutes,
		P10: constant(60, 600), P50: constant(60, 700), P90: constant(60, 800)}}
	res := &proof.Result{Scenario: "s", Start: t0, End: t0.Add(time.Hour), Params: proof.DefaultParams(), Runs: []proof.Run{
		{Controller: "throttle", Metrics: proof.Metrics{CongestionNodeMinutes: 10}, Localities: series(1)}, fs,
	}}
	s := build(res)
	if len(s.Why) != 1 {
		t.Fatalf("why = %q", s.Why)
	}
	for _, want := range []string{
		"congestion ≤ 50% of throttle", "missed by 15.0",
		"foreshape: 20.0 node-minutes in west between +0h30m and +0h40m (at most 2.0 nodes at once, at +0h30m) with the datacenter's CPU demand at 111% of its ready capacity",
		"throttle: 10.0 node-minutes in west",
		"its p90 CPU forecast made 1h0m0s ahead was 20% below demand",
	} {
		if !strings.Contains(s.Why[0], want) {
			t.Errorf("why lacks %q: %s", want, s.Why[0])
		}
	}
}

func s2(s proof.LocalitySeries) []proof.LocalitySeries { return []proof.LocalitySeries{s} }

func constant(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestExplainOracleWorseNodeByNode(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	move := func(node string) sim.MigrationRecord {
		return sim.MigrationRecord{TargetLocality: "new", TargetNode: node, Start: t0, End: t0.Add(time.Minute)}
	}
	nodes := func(c1, c2 float64) []proof.NodeRecord {
		return []proof.NodeRecord{
			{Node: "new-1", Datacenter: "new", CongestedMinutes: c1},
			{Node: "new-2", Datacenter: "new", CongestedMinutes: c2},
			{Node: "new-3", Datacenter: "new", Added: true},
			{Node: "old-1", Datacenter: "old"},
		}
	}
	tests := []struct {
		name      string
		oracleOn  []string
		want, not []string
	}{
		{
			name:     "same capacity and placement counts: pairing",
			oracleOn: []string{"new-2", "new-3"},
			want: []string{
				"in new, foreshape added 1 nodes and oracle 1",
				"foreshape landed 1 of 2 on its nodes from the start, oracle 1 of 2",
				"differ most on new-2 (0.0, 4.0), new-1 (3.0, 1.0)",
				"which allocations the scheduler placed together on which nodes",
			},
		},
		{
			name:     "oracle put more beside the work already there",
			oracleOn: []string{"new-1", "new-2"},
			want:     []string{"oracle 2 of 2"},
			not:      []string{"which allocations the scheduler placed together"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := proof.Run{Controller: "foreshape", Metrics: proof.Metrics{CongestionNodeMinutes: 3},
				Nodes: nodes(3, 0), Moves: []sim.MigrationRecord{move("new-1"), move("new-3")}}
			or := proof.Run{Controller: "oracle", Metrics: proof.Metrics{CongestionNodeMinutes: 5}, Nodes: nodes(1, 4)}
			for _, n := range tt.oracleOn {
				or.Moves = append(or.Moves, move(n))
			}
			res := &proof.Result{Scenario: "s", Start: t0, End: t0.Add(time.Hour), Params: proof.DefaultParams(),
				Runs: []proof.Run{fs, or}}
			s := build(res)
			if len(s.Why) != 1 || !strings.Contains(s.Why[0], "oracle no worse than foreshape") {
				t.Fatalf("why = %q", s.Why)
			}
			for _, want := range tt.want {
				if !strings.Contains(s.Why[0], want) {
					t.Errorf("why lacks %q: %s", want, s.Why[0])
				}
			}
			for _, not := range tt.not {
				if strings.Contains(s.Why[0], not) {
					t.Errorf("why says %q: %s", not, s.Why[0])
				}
			}
		})
	}
}

func TestExplainSaysWhatBoundsAMiss(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	refused := `01:10 scale new : scale "nodes" failed: webhook target: refused: answered 409 Conflict: datacenter "new" has no capacity left to add`
	tests := []struct {
		name      string
		oracle    float64
		decisions []string
		want, not []string
	}{
		{
			name: "oracle misses too, cloud at its limit", oracle: 18, decisions: []string{refused, refused, "01:12 start old mr-1: …"},
			want: []string{
				"oracle, planning with the true future, misses it too (18.0 node-minutes, 60% of reactive's)",
				"foreshape reached the cloud's limit (50% more nodes than the scenario declares) in new (2 decisions)",
			},
		},
		{
			name: "oracle meets it", oracle: 10,
			not: []string{"misses it too", "cloud's limit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := proof.Run{Controller: "foreshape", Metrics: proof.Metrics{CongestionNodeMinutes: 20}}
			fs.Notes.Decisions = tt.decisions
			res := &proof.Result{Scenario: "s", Start: t0, End: t0.Add(time.Hour), Params: proof.DefaultParams(), Runs: []proof.Run{
				{Controller: "reactive", Metrics: proof.Metrics{CongestionNodeMinutes: 30}}, fs,
				{Controller: "oracle", Metrics: proof.Metrics{CongestionNodeMinutes: tt.oracle}},
			}}
			var why string
			for _, w := range build(res).Why {
				if strings.Contains(w, "congestion ≤ 50% of reactive") {
					why = w
				}
			}
			if why == "" {
				t.Fatalf("no explanation of the miss: %q", build(res).Why)
			}
			for _, want := range tt.want {
				if !strings.Contains(why, want) {
					t.Errorf("why lacks %q: %s", want, why)
				}
			}
			for _, not := range tt.not {
				if strings.Contains(why, not) {
					t.Errorf("why says %q: %s", not, why)
				}
			}
		})
	}
}
