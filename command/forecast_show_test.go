package command

import (
	"strings"
	"testing"
)

// TestForecastShowPrintsWhatItsHelpSays: forecast show prints the model
// and why and the workload, then the chart and its legend, then the
// hotspot, in the order its -help gives them (the help said the model and
// the workload followed the chart, and did not mention the hotspot).
func TestForecastShowPrintsWhatItsHelpSays(t *testing.T) {
	help := strings.Join(strings.Fields((&ForecastShowCommand{}).Help()), " ")
	for _, want := range []string{
		"It prints the model that produced the forecast and why, and the locality's workload",
		"then the chart: the recent history, the median forecast, the planning quantile and the headroom line, with a legend;",
		"then, when one is predicted, the hotspot: when the planning quantile first crosses the line, how likely a crossing is, and the peak.",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("-help does not say %q:\n%s", want, help)
		}
	}
	addr := stubAgent(t)
	code, out, errOut := runCLI(t, "forecast", "show", "-address", addr, "-metric", "cpu", "dc1/web")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	at := -1
	for _, part := range []string{"model: ", "why: ", "workload: ", "┤", "─ history   · p50   ^ p90 (planning)   = headroom line 80", "HOTSPOT: p90 crosses 80"} {
		i := strings.Index(out, part)
		if i <= at {
			t.Errorf("%q is not after what -help lists before it (at %d, the one before at %d):\n%s", part, i, at, out)
		}
		at = i
	}
}

// -metric= (empty), as -help says, charts every metric of the locality:
// the flag was taken as given and sent as no metric, undocumented.
func TestForecastShowEveryMetric(t *testing.T) {
	if help := strings.Join(strings.Fields((&ForecastShowCommand{}).Help()), " "); !strings.Contains(help, "-metric= (empty) charts every metric forecast") {
		t.Errorf("-help does not say what -metric= does:\n%s", help)
	}
	code, out, errOut := runCLI(t, "forecast", "show", "-address", stubAgent(t), "-metric=", "dc1/web")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, m := range []string{"dc1/web  cpu", "dc1/web  memory", "dc1/web  queue_depth"} {
		if !strings.Contains(out, m) {
			t.Errorf("-metric= does not chart %q:\n%s", m, out)
		}
	}
}
