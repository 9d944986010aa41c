package proof

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/sim"
)

func TestScore(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	node := func(m int, name string, cpu, mem, congested, slo, ready, boot float64) sim.NodeMinute {
		return sim.NodeMinute{Minute: at(m), Node: name, Datacenter: "dc1", CPUDemandMHz: cpu, CPUCapacityMHz: 1000,
			MemDemandMB: mem, MemCapacityMB: 1000, CongestedSeconds: congested, SLOViolationSeconds: slo,
			ReadySeconds: ready, BootingSeconds: boot}
	}
	tr := sim.Truth{
		NodeMinutes: []sim.NodeMinute{
			node(-1, "n1", 2000, 0, 60, 600, 60, 0), // before the window: ignored
			node(0, "n1", 1200, 100, 30, 120, 60, 0),
			node(0, "n2", 500, 900, 0, 0, 60, 0), // memory over the 80% line
			node(1, "n1", 700, 100, 0, 0, 60, 0),
			node(1, "n2", 100, 100, 0, 0, 60, 0),
			node(1, "n3", 0, 0, 0, 0, 0, 60),      // booting: costs, holds nothing
			node(2, "n1", 2000, 0, 60, 60, 60, 0), // after the window
		},
		JobMinutes: []sim.JobMinute{
			{Minute: at(0), JobID: PlaceholderPrefix + "mr-1", Datacenter: "dc1", AllocatedCPUMHz: 400, AllocatedMemMB: 100},
			{Minute: at(1), JobID: PlaceholderPrefix + "mr-1", Datacenter: "dc1", AllocatedCPUMHz: 200, AllocatedMemMB: 100},
			{Minute: at(0), JobID: "web", Queued: 2},
			{Minute: at(1), JobID: "web", Queued: 1},
			{Minute: at(1), JobID: PlaceholderPrefix + "mr-2", Queued: 5}, // a reservation that does not fit
		},
		Migrations: []sim.MigrationRecord{
			{Start: at(0), End: at(0).Add(10 * time.Second)},
			{Start: at(0), End: at(0).Add(20 * time.Second)},
			{Start: at(0), End: at(1).Add(30 * time.Second)},
			{Start: at(1), End: at(3)}, // ends after the window
		},
		Requests: []sim.RequestRecord{
			{Time: at(0), Method: "PUT", Path: "/v1/sim/nodes", Status: 200},
			{Time: at(0), Method: "PUT", Path: "/v1/sim/nodes", Status: 409},
			{Time: at(1), Method: "POST", Path: "/v1/job/web/scale", Status: 200, Body: `{"Count":4,"Target":{"Group":"g"}}`},
			{Time: at(1), Method: "POST", Path: "/v1/job/" + PlaceholderPrefix + "mr-1/scale", Status: 200, Body: `{"Count":1}`},
			{Time: at(1), Method: "POST", Path: "/v1/allocation/x/stop", Status: 200},
		},
	}
	got := Score(tr, at(0), at(2), DefaultParams())
	want := Metrics{
		CongestionNodeMinutes: 0.5,
		OverloadNodeMinutes:   2,
		UnplacedAllocMinutes:  3,
		MigrationsCompleted:   3,
		MigrationP50S:         20,
		MigrationP95S:         90,
		SLOViolationMinutes:   2,
		ReservedIdlePct:       15, // CPU: 600 of 4000 MHz-minutes; memory 200 of 4000
		ScaleActions:          2,
		NodeHours:             round(5.0 / 60),
	}
	if got != want {
		t.Errorf("Score =\n%+v\nwant\n%+v", got, want)
	}
}

func TestChecks(t *testing.T) {
	mk := func(m map[string]Metrics) *Result {
		res := &Result{}
		for _, n := range order {
			if v, ok := m[n]; ok {
				res.Runs = append(res.Runs, Run{Controller: n, Metrics: v})
			}
		}
		return res
	}
	for _, tc := range []struct {
		name string
		runs map[string]Metrics
		miss []string // checks that must fail
	}{
		{"all goals", map[string]Metrics{
			"none": {CongestionNodeMinutes: 100}, "throttle": {CongestionNodeMinutes: 80, MigrationP95S: 60},
			"reactive": {CongestionNodeMinutes: 60}, "foreshape": {CongestionNodeMinutes: 20, MigrationP95S: 50, ReservedIdlePct: 4},
			"oracle": {CongestionNodeMinutes: 15},
		}, nil},
		{"every miss", map[string]Metrics{
			"none": {CongestionNodeMinutes: 10}, "throttle": {CongestionNodeMinutes: 20, MigrationP95S: 60},
			"reactive": {CongestionNodeMinutes: 20}, "foreshape": {CongestionNodeMinutes: 12, MigrationP95S: 61, ReservedIdlePct: 11},
			"oracle": {CongestionNodeMinutes: 13},
		}, []string{"congestion ≤ 50% of throttle", "congestion ≤ 50% of reactive", "reserved_idle_pct ≤ 10",
			"migration_p95_s ≤ throttle's", "oracle no worse than foreshape on congestion", "foreshape no worse than none on congestion"}},
		{"nothing to beat", map[string]Metrics{
			"throttle": {}, "foreshape": {CongestionNodeMinutes: 1}, "oracle": {},
		}, []string{"congestion ≤ 50% of throttle", "congestion ≤ 1.5× of oracle"}},
		{"zero everywhere holds", map[string]Metrics{
			"throttle": {}, "reactive": {}, "foreshape": {}, "oracle": {},
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var missed []string
			for _, c := range Checks(mk(tc.runs)) {
				if !c.Holds {
					missed = append(missed, c.Name)
					if !strings.Contains(c.Detail, "missed by") && !c.Warning && !strings.Contains(c.Detail, "had none") {
						t.Errorf("%s: detail %q does not say by how much", c.Name, c.Detail)
					}
				}
			}
			if strings.Join(missed, "|") != strings.Join(tc.miss, "|") {
				t.Errorf("missed %q, want %q", missed, tc.miss)
			}
		})
	}
	if Checks(mk(map[string]Metrics{"none": {}, "throttle": {}})) != nil {
		t.Error("checks without foreshape")
	}
}

func TestCloud(t *testing.T) {
	sc, err := sim.ParseScenario([]byte(twoDCs), "two.hcl")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := sim.New(sc, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCloud(sc, cl.Handler(), Params{MaxScaleOut: 1.5})
	post := func(p target.Payload) (int, string) {
		b, _ := json.Marshal(p)
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/scale", bytes.NewReader(b)))
		return rec.Code, rec.Body.String()
	}
	if code, body := post(target.Payload{Locality: "dc2", Direction: target.Up, Amount: 2}); code != 200 || !strings.Contains(body, `"added":2`) {
		t.Errorf("add 2: %d %s", code, body)
	}
	if code, body := post(target.Payload{Locality: "dc2", Direction: target.Up, Amount: 2}); code != 200 || !strings.Contains(body, `"added":1`) {
		t.Errorf("add 2 more with 1 left: %d %s", code, body)
	}
	// docs/proof.md quotes this answer, and the report reads it from
	// foreshape's decisions (report.refusedAt).
	if code, body := post(target.Payload{Locality: "dc2", Direction: target.Up, Amount: 1}); code != http.StatusConflict ||
		!strings.Contains(body, `datacenter "dc2" has no capacity left to add`) {
		t.Errorf("add past the limit: %d %s", code, body)
	}
	if code, body := post(target.Payload{Locality: "dc1", Direction: target.Down, Amount: 1}); code != http.StatusConflict || !strings.Contains(body, "not supported") {
		t.Errorf("scale down: %d %s", code, body)
	}
	if code, _ := post(target.Payload{Locality: "dc9", Direction: target.Up, Amount: 1}); code != http.StatusBadRequest {
		t.Errorf("unknown datacenter: %d", code)
	}
	nodes := 0
	for _, p := range cl.Project(nil) {
		if p.Datacenter == "dc2" {
			nodes++
		}
	}
	if nodes != 5 {
		t.Errorf("dc2 has %d nodes, want 2 declared + 3 added", nodes)
	}
	var adds int
	for _, r := range cl.Truth().Requests {
		if r.Path == "/v1/sim/nodes" && r.Status == 200 {
			adds++
		}
	}
	if adds != 2 {
		t.Errorf("%d add-node requests in the ground truth, want 2", adds)
	}
}

func TestNodeRecords(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	tr := sim.Truth{NodeMinutes: []sim.NodeMinute{
		{Minute: at(-1), Node: "b-1", Datacenter: "b", CongestedSeconds: 60}, // before the window
		{Minute: at(0), Node: "b-1", Datacenter: "b", CongestedSeconds: 30, ReadySeconds: 60},
		{Minute: at(1), Node: "b-1", Datacenter: "b", CongestedSeconds: 15, ReadySeconds: 60},
		{Minute: at(1), Node: "b-2", Datacenter: "b", BootingSeconds: 40, ReadySeconds: 20},
		{Minute: at(2), Node: "b-2", Datacenter: "b", ReadySeconds: 60, CongestedSeconds: 6},
		{Minute: at(0), Node: "a-1", Datacenter: "a", ReadySeconds: 60},
	}}
	got := nodeRecords(tr, at(0), at(3))
	want := []NodeRecord{
		{Node: "a-1", Datacenter: "a"},
		{Node: "b-1", Datacenter: "b", CongestedMinutes: 0.75},
		{Node: "b-2", Datacenter: "b", Added: true, CongestedMinutes: 0.1},
	}
	if len(got) != len(want) {
		t.Fatalf("nodeRecords = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// The placeholders reserved_idle_pct counts are the jobs foreshape
// registers.
func TestPlaceholderPrefixIsTheAgents(t *testing.T) {
	if PlaceholderPrefix != state.PlaceholderPrefix {
		t.Errorf("proof counts %q jobs as placeholders; the agent registers %q", PlaceholderPrefix, state.PlaceholderPrefix)
	}
}
