package shape

import (
	"slices"
	"strings"
	"testing"
)

// TestHomeDrainWithoutAForecastOfHome: ops, of dc3, drains all of dc1
// without migrate.targets, and dc3 has no forecast yet (no history). Its
// room is not known: the moves go to dc2, whose forecast has room, and
// each reason says why dc3 was passed over. Before, dc3 read +Inf room,
// was taken first for every move ("no forecast for it; chosen for its
// free capacity"), and all of dc1's work went to a locality nothing was
// known of. With dc2 forbidden by the job's constraints, dc3 is the only
// target left and takes the moves, its reason saying its room is not
// known.
func TestHomeDrainWithoutAForecastOfHome(t *testing.T) {
	f := homeDrainFixture(t, 50, 30, "")
	f.fcs = slices.DeleteFunc(f.fcs, func(fc Forecast) bool { return fc.Locality == "dc3" })
	plan := Run(f.input())
	queued, why := queuedTargets(plan)
	if want := []string{"web-0>dc2", "web-1>dc2", "web-2>dc2", "web-3>dc2"}; !slices.Equal(queued, want) {
		t.Fatalf("queued %v; want %v", queued, want)
	}
	if r := why["web-0"]; !strings.Contains(r, "to dc2: the allowed target with the most room") ||
		!strings.Contains(r, "(dc3, the policy's own locality, has no forecast: its room is not known, so the drained work is not sent there first)") {
		t.Errorf("web-0's reason %q; want dc2 for its room, dc3 passed over as not known", r)
	}

	// NewCluster sorts the jobs it is given: web is found by its ID.
	f.jobs[slices.IndexFunc(f.jobs, func(j Job) bool { return j.ID == "web" })].Datacenters = []string{"dc1", "dc3"}
	plan = Run(f.input())
	queued, why = queuedTargets(plan)
	if want := []string{"web-0>dc3", "web-1>dc3", "web-2>dc3", "web-3>dc3"}; !slices.Equal(queued, want) {
		t.Fatalf("dc2 forbidden: queued %v; want %v", queued, want)
	}
	if r := why["web-0"]; !strings.Contains(r, "to dc3, the policy's own locality: no other allowed target can take the move; dc3 has no forecast, so its room is not known") {
		t.Errorf("dc2 forbidden: web-0's reason %q", r)
	}
}
