package shape

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// homeDrainFixture is baseFixture with ops (opsOfDC3, plus pol, appended
// inside its block) draining all of dc1 from 08:30 to 09:30 without
// migrate.targets: dc3 has four nodes of 4,000 MHz and 8 GiB, and ops's
// forecasts of dc3 are at cpu and memory percent before the window and,
// inside it, carry dc1's work as predict adds it: its 4,500 MHz (+28.125
// points of dc3's 16,000) and 6,144 MiB (+18.75 of 32,768), which their
// DrainAdded says. dc1's own rack-a drain is off; now is 06:40, in ops's
// 2h lead time.
func homeDrainFixture(t *testing.T, cpu, memory float64, pol string) *fixture {
	t.Helper()
	f := baseFixture(t, "reschedule")
	src := strings.Replace(opsOfDC3, "\n  schedule ", "\n"+pol+"\n  schedule ", 1)
	f.pols = append(f.pols, parsePolicies(t, src)...)
	f.pols[0].Schedules = nil
	for i := 1; i <= 4; i++ {
		name := "dc3-" + strconv.Itoa(i)
		f.nodes = append(f.nodes, Node{ID: "id-" + name, Name: name, Datacenter: "dc3", NodePool: "default", NodeClass: "web",
			CPU: 4000, MemoryMB: 8192, Ready: true, Eligible: true})
	}
	f.jobs[0].Datacenters = append(f.jobs[0].Datacenters, "dc3")
	for metric, v := range map[string]float64{"cpu": cpu, "memory": memory} {
		fc := flat("dc3", metric, v, 80)
		fc.Policy = "ops"
		add := map[string]float64{"cpu": 28.125, "memory": 18.75}[metric]
		fc.DrainAdded = make([]float64, len(fc.Times))
		for i, tt := range fc.Times {
			if !tt.Before(at(150*time.Minute)) && tt.Before(at(210*time.Minute)) {
				fc.Planning[i] += add
				fc.DrainAdded[i] = add
			}
		}
		f.fcs = append(f.fcs, fc)
	}
	f.now = at(40 * time.Minute)
	return f
}

// queuedTargets lists a plan's submissions that move something, as
// "allocation>target", sorted, and their reasons by allocation.
func queuedTargets(plan Plan) ([]string, map[string]string) {
	var out []string
	why := map[string]string{}
	for _, s := range plan.Submit {
		if r := s.Request; !WindowHold(&r) {
			out = append(out, r.Resource.ID+">"+r.Target)
			why[r.Resource.ID] = r.Reason
		}
	}
	slices.Sort(out)
	return out, why
}

// TestDrainOfAnotherLocalityGoesHomeFirst: ops, of dc3, drains all of
// dc1 without migrate.targets, and its forecast of dc3 carries dc1's work
// inside the window (predict adds it). dc3 is at 50% before the window
// and 78% inside it; dc2, at 40% CPU, 30% memory, has more room. Every
// move goes to dc3, which stays under its 80% line with all of them: 75%
// before the window, 50 + 25 inside it, the forecast less dc1's work
// plus the moves. Before, each went to the target with the most room,
// dc2, whose forecast shows no drain, while ops's forecast of dc3 showed
// the work arriving there.
func TestDrainOfAnotherLocalityGoesHomeFirst(t *testing.T) {
	f := homeDrainFixture(t, 50, 30, "")
	plan := Run(f.input())
	queued, why := queuedTargets(plan)
	if want := []string{"web-0>dc3", "web-1>dc3", "web-2>dc3", "web-3>dc3"}; !slices.Equal(queued, want) {
		t.Fatalf("queued %v; want %v", queued, want)
	}
	// 50 + 4 × 6.25 before the window: 5 points under the line.
	if r := why["web-3"]; !strings.Contains(r, "to dc3, the policy's own locality, first: it stays under its line through the window's end at 09:30 with the window's moves queued there, 5% below") {
		t.Errorf("web-3's reason %q; want dc3 taken first, 5%% below its line", r)
	}
}

// TestDrainOfAnotherLocalityGoesHomeWhileItFits: as
// TestDrainOfAnotherLocalityGoesHomeFirst with dc3 at 60% CPU: three
// moves fit there (60 + 3 × 6.25 = 78.75, and as much inside the window),
// the fourth would take it to 85%, so it goes to the allowed target with
// the most room, dc2, and its reason says why dc3 did not take it.
// Before, all four went to dc2.
func TestDrainOfAnotherLocalityGoesHomeWhileItFits(t *testing.T) {
	f := homeDrainFixture(t, 60, 30, "")
	plan := Run(f.input())
	queued, why := queuedTargets(plan)
	if want := []string{"web-0>dc3", "web-1>dc3", "web-2>dc3", "web-3>dc2"}; !slices.Equal(queued, want) {
		t.Fatalf("queued %v; want %v", queued, want)
	}
	if r := why["web-3"]; !strings.Contains(r, "to dc2: the allowed target with the most room, 34% below its line") ||
		!strings.Contains(r, "(dc3, the policy's own locality, tried first, would be 5% over its line by the window's end at 09:30 with the window's moves queued there)") {
		t.Errorf("web-3's reason %q; want dc2 for its room, dc3 5%% over", r)
	}
}

// TestDrainOfAnotherLocalityQueuedHomeReadsItsWorkOnce: the four moves of
// ops's drain of dc1 are queued into dc3, as
// TestDrainOfAnotherLocalityGoesHomeFirst queued them, and ops may scale
// dc3. The queue reads dc3 after each move to the forecast's end: inside
// the window its forecast carries dc1's work (78%) and the moves
// arrive (+25 points); counted both ways it crossed the 80% line (84% at
// the first move) and ops scaled dc3 for work that comes once. Now inside
// the window the forecast is read less dc1's work, the moves counted as
// they arrive: 75% at most, no scale, no congestion.
func TestDrainOfAnotherLocalityQueuedHomeReadsItsWorkOnce(t *testing.T) {
	f := homeDrainFixture(t, 50, 30, opsScale)
	start := at(150 * time.Minute)
	for i := range 4 {
		r := f.allocRequest("web-" + strconv.Itoa(i))
		r.Target, r.Policy, r.Origin, r.Deadline = "dc3", "ops", "schedule", start
		r.OriginKey = fmt.Sprintf("schedule/ops/dc1-all/%d/%s", start.Unix(), r.Resource.Key())
		f.queued(r)
	}
	plan := Run(f.input())
	if len(plan.Submit) > 0 {
		t.Errorf("submitted %+v; want none: the window's moves are queued", plan.Submit)
	}
	if got := startIDs(plan); !slices.Equal(got, []string{"mr-1"}) {
		t.Errorf("started %v; want mr-1 (one new transfer a pass through dc1)", got)
	}
	if len(plan.Scale) > 0 {
		t.Errorf("scaled %+v; want none: dc3 stays under its line", plan.Scale)
	}
	for _, d := range plan.Decisions {
		if strings.Contains(d.Reason, "line in dc3") && strings.Contains(d.Reason, "would cross") {
			t.Errorf("decision %q; want none crossing dc3's line", d.Reason)
		}
	}
	for _, r := range f.st.Requests {
		if rs, ok := rescoreOf(plan, r.ID); ok && strings.Contains(rs.Reason, "dc3") {
			t.Errorf("%s: %s; want no word of dc3's room", r.ID, rs.Reason)
		}
	}
}

// opsScale is a scale block for ops, so that a hotspot of dc3 scales it.
const opsScale = `  scale "workers" {
    min      = 1
    max      = 10
    cooldown = "10m"
    target "nomad-job" {
      job   = "workers3"
      group = "w"
    }
  }`

// TestDrainOfAnotherLocalityScalesHomeForNoWorkSentElsewhere: as
// TestDrainOfAnotherLocalityGoesHomeWhileItFits, ops may scale dc3. Its
// forecast of dc3 carries all of dc1's work inside the window (88%, over
// the 80% line), but only three moves go there (78.75%), the fourth to
// dc2. At 08:27, before, dc3's hotspot was read on the forecast as it
// stands, and ops scaled dc3 for dc1's work, part of which went to dc2
// (on 16,000 MHz, +1,300 MHz over the line). Now the
// hotspot reads the forecast less the drained work, which the queue
// counts as its moves into dc3 are checked: no scale.
func TestDrainOfAnotherLocalityScalesHomeForNoWorkSentElsewhere(t *testing.T) {
	f := homeDrainFixture(t, 60, 30, opsScale)
	f.now = at(147 * time.Minute) // 08:27: within the scale block's lead of the window
	plan := Run(f.input())
	queued, _ := queuedTargets(plan)
	if want := []string{"web-0>dc3", "web-1>dc3", "web-2>dc3", "web-3>dc2"}; !slices.Equal(queued, want) {
		t.Fatalf("queued %v; want %v", queued, want)
	}
	if len(plan.Scale) > 0 {
		t.Errorf("scaled %+v; want none: dc3 takes three moves and stays under its line", plan.Scale)
	}
}
