package command

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/config"
)

// TestHelpGivesTheDefaults: the figures agent -help and config validate
// -help give are the code's: -sim-speed's and -replay-speed's defaults and
// bound (sim serve's -speed's too),
// and the bound of a listen address's lookup (config.ListenLookupTimeout);
// and the README's make dev runs the simulator at -sim-speed's default.
func TestHelpGivesTheDefaults(t *testing.T) {
	text := func(args ...string) string {
		_, stdout, stderr := run(t, append(args, "-help")...)
		return strings.Join(strings.Fields(stdout+stderr), " ")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ where, text, want string }{
		{"agent -help", text("agent"), fmt.Sprintf("virtual seconds per wall second (at most %d). Default: %g.", maxClockSpeed, float64(defaultDevSpeed))},
		{"agent -help", text("agent"), fmt.Sprintf("recorded seconds played per wall second (at most %d). Default: %g.", maxClockSpeed, float64(defaultReplaySpeed))},
		{"sim serve -help", text("sim", "serve"), fmt.Sprintf("Virtual seconds per wall second, at most %d; 0 steps manually.", maxClockSpeed)},
		{"sim serve -help", text("sim", "serve"), "-truth-window=" + strings.TrimSuffix(defaultTruthWindow.String(), "0m0s") + " How much virtual time"},
		{"config validate -help", text("config", "validate"), "within " + config.ListenLookupTimeout.String() + ")."},
		{"README.md", strings.Join(strings.Fields(string(readme)), " "), fmt.Sprintf("scenario at %g× (three datacenters", float64(defaultDevSpeed))},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("%s does not say %q", c.where, c.want)
		}
	}
}
