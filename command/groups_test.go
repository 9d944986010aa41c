package command

import (
	"strings"
	"testing"
)

// TestForecastGroupNamesItsSubcommands: the forecast group's synopsis
// lists what its subcommands do, and its help says it; both left out
// train, the learned forecaster's.
func TestForecastGroupNamesItsSubcommands(t *testing.T) {
	g := registered["forecast"](Meta{})
	said := map[string]string{"show": "show", "eval": "evaluate", "anomalies": "detect anomalies", "train": "train"}
	for _, sub := range (&groupCommand{name: "forecast"}).subcommands() {
		word, ok := said[sub]
		if !ok {
			t.Errorf("forecast %s: the test does not know how the group's synopsis names it", sub)
			continue
		}
		if !strings.Contains(g.Synopsis(), word) {
			t.Errorf("the forecast group's synopsis %q does not name %q (forecast %s)", g.Synopsis(), word, sub)
		}
		if help := strings.Join(strings.Fields(g.Help()), " "); !strings.Contains(help, word) {
			t.Errorf("the forecast group's help does not name %q (forecast %s):\n%s", word, sub, help)
		}
	}
}
