package predict

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/policies"
)

// TestHomeRoomNamesThePlanningQuantile: the note of a drain whose work
// does not all fit under the line of the policy's own locality names the
// planning quantile as the policy writes it: 0.999 read p100.
func TestHomeRoomNamesThePlanningQuantile(t *testing.T) {
	start := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		q    float64
		want string
	}{{0.9, "(p90 70.0% at 08:00 without it)"}, {0.999, "(p99.9 70.0% at 08:00 without it)"}, {0.995, "(p99.5 70.0% at 08:00 without it)"}} {
		pol := &policies.Policy{Name: "ops"}
		pol.Headroom.CPU = 20
		pol.Forecast.Quantile = tc.q
		fc := &Forecast{Metric: "cpu", Times: []time.Time{start, start.Add(time.Hour)}, Quantiles: []float64{0.5, tc.q},
			Bands: [][]float64{{60, 60}, {70, 70}}}
		w := policies.Window{Start: start, End: start.Add(time.Hour)}
		add, _, note := homeRoom(fc, pol, "maint", policies.Locality{}, w, 25, nil)
		if add != 10 || !strings.Contains(note, tc.want) {
			t.Errorf("quantile %v: +%v, %q; want +10 and %q", tc.q, add, note, tc.want)
		}
	}
}
