package command

import (
	"strings"
	"testing"
)

// TestSpeedsTheClocksCanKeep: a speed the simulated or replayed clock
// cannot keep is a usage error naming its flag. Those clocks compute the
// data time as a time.Duration of the wall time elapsed times the speed:
// NaN, +Inf and 1e300 were accepted, and the dev agent's clock never left
// the scenario's start (every cycle at 06:00:00 with no sample); sim serve
// took -speed NaN for a manual clock.
func TestSpeedsTheClocksCanKeep(t *testing.T) {
	addr := freeAddr(t) // were a speed accepted, what it starts listens here
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "-dev", "-http-addr", addr, "-sim-speed", "NaN"}, "-sim-speed must be positive and at most 100000"},
		{[]string{"agent", "-dev", "-http-addr", addr, "-sim-speed", "+Inf"}, "-sim-speed must be positive and at most 100000"},
		{[]string{"agent", "-dev", "-http-addr", addr, "-sim-speed", "1e300"}, "-sim-speed must be positive and at most 100000"},
		{[]string{"agent", "-dev", "-http-addr", addr, "-sim-speed", "0"}, "-sim-speed must be positive"},
		{[]string{"agent", "-replay", "x", "-http-addr", addr, "-replay-speed", "NaN"}, "-replay-speed must be positive and at most 100000"},
		{[]string{"agent", "-replay", "x", "-http-addr", addr, "-replay-speed", "1e300"}, "-replay-speed must be positive and at most 100000"},
		{[]string{"sim", "serve", "-addr", addr, "-speed", "NaN"}, "-speed must not be negative, and at most 100000"},
		{[]string{"sim", "serve", "-addr", addr, "-speed", "Inf"}, "-speed must not be negative, and at most 100000"},
		{[]string{"sim", "serve", "-addr", addr, "-speed", "-1"}, "-speed must not be negative"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant %d and %q", tc.args, code, stderr, ExitUsage, tc.want)
		}
	}
}
