package command

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// quietBackend predicts no hotspot; its forecasts and policies are the
// test's.
type quietBackend struct {
	stubBackend
	forecasts []api.Forecast
	policies  []api.Policy
}

func (quietBackend) Hotspots(context.Context) []api.Hotspot     { return nil }
func (b quietBackend) Forecasts(context.Context) []api.Forecast { return b.forecasts }
func (b quietBackend) Policies(context.Context) []api.Policy    { return b.policies }

// TestHotspotsSaysWhatWasNotForecast: "No hotspots predicted." is said
// only when every CPU and memory series has a forecast to predict one from
// (it was said too by an agent that had forecast nothing yet, with no
// policy, or with its series warming up); otherwise the answer says which
// series have none, and why.
func TestHotspotsSaysWhatWasNotForecast(t *testing.T) {
	first := time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC)
	ready := api.Forecast{Policy: "web", Locality: "dc2", Metric: "cpu", Series: "dc2:cpu", Status: api.ForecastReady}
	warming := api.Forecast{Policy: "web", Locality: "dc2", Metric: "memory", Series: "dc2:memory", Status: api.ForecastWarmingUp,
		Note: api.WarmingUpNote(9, 12, first)}
	// IOPS have no headroom line, so never a hotspot: without Prometheus
	// they have no data, which says nothing of hotspots.
	iops := api.Forecast{Policy: "web", Locality: "dc2", Metric: "iops", Series: "dc2:iops", Status: api.ForecastNoData, Note: "no samples yet"}
	web := []api.Policy{{Name: "web", Locality: "dc2"}}
	var many []api.Forecast // more series not forecast than the answer lists
	manyWant := "No hotspots predicted: no CPU or memory series has a forecast yet, so none has a hotspot:\n"
	for i := range 12 {
		f := warming
		f.Series = fmt.Sprintf("dc%d:memory", i+10)
		many = append(many, f)
		if i < 10 {
			manyWant += "  " + f.Series + "  " + f.Note + "\n"
		}
	}
	manyWant += "  … and 2 more: foreshape status lists them\n"
	for _, tc := range []struct {
		name string
		b    quietBackend
		want string
	}{
		{"every series forecast", quietBackend{forecasts: []api.Forecast{ready, iops}, policies: web}, "No hotspots predicted.\n"},
		{"one warming up", quietBackend{forecasts: []api.Forecast{ready, warming, iops}, policies: web},
			"No hotspots predicted by 1 CPU or memory forecast; 1 series has no forecast yet, so no hotspot either:\n" +
				"  dc2:memory  warming up: 9 of 12 points, first forecast at 2026-01-05T06:14:00Z\n"},
		{"none yet", quietBackend{forecasts: []api.Forecast{warming, iops}, policies: web},
			"No hotspots predicted: no CPU or memory series has a forecast yet, so none has a hotspot:\n" +
				"  dc2:memory  warming up: 9 of 12 points, first forecast at 2026-01-05T06:14:00Z\n"},
		{"many", quietBackend{forecasts: many, policies: web}, manyWant},
		{"no cycle yet", quietBackend{policies: web}, "No hotspots predicted: the leader has published no forecast yet.\n"},
		{"no policy", quietBackend{}, "No hotspots predicted: the agent has no policy, so it forecasts nothing.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := api.NewServer(tc.b, api.Options{})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s)
			defer srv.Close()
			code, out, errOut := runCLI(t, "hotspots", "-address", srv.URL)
			if code != ExitOK || out != tc.want {
				t.Errorf("exit %d, printed\n%s(stderr %q); want\n%s", code, out, errOut, tc.want)
			}
			// -json is the endpoint's answer, as it stands.
			if code, out, _ := runCLI(t, "hotspots", "-address", srv.URL, "-json"); code != ExitOK || strings.TrimSpace(out) != "[]" {
				t.Errorf("-json: exit %d, %q; want []", code, out)
			}
		})
	}
}

// hotBackend predicts the test's hotspots.
type hotBackend struct {
	stubBackend
	hotspots []api.Hotspot
}

func (b hotBackend) Hotspots(context.Context) []api.Hotspot { return b.hotspots }

// TestHotspotsSaysWhenOnTheRest: a hotspot read on the nodes that stay
// while a drain of some of a locality's nodes runs says so under the
// table; one read on the locality as measured adds nothing.
func TestHotspotsSaysWhenOnTheRest(t *testing.T) {
	at := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	b := hotBackend{hotspots: []api.Hotspot{
		{Policy: "dc1-web", Locality: "dc1/*/web", Metric: "cpu", At: at, Probability: 1, Quantile: 0.9, Line: 75, Peak: 96,
			Detail: "on the nodes of dc1/*/web that stay while dc1-rack-a-* are drained: p90 48.0% ×2.00 = 96.0% over the 75% line"},
		{Policy: "dc2-web", Locality: "dc2", Metric: "cpu", At: at.Add(time.Hour), Probability: 0.93, Quantile: 0.9, Line: 75, Peak: 91.2},
	}}
	s, err := api.NewServer(b, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	want := `Policy   Locality   Metric  At                    Probability  Line  Peak
dc1-web  dc1/*/web  cpu     2026-01-05T08:00:00Z  1.00         75    96
dc2-web  dc2        cpu     2026-01-05T09:00:00Z  0.93         75    91.2
  dc1-web dc1/*/web cpu: on the nodes of dc1/*/web that stay while dc1-rack-a-* are drained: p90 48.0% ×2.00 = 96.0% over the 75% line
`
	if code, out, errOut := runCLI(t, "hotspots", "-address", srv.URL); code != ExitOK || out != want {
		t.Errorf("exit %d, printed\n%s(stderr %q); want\n%s", code, out, errOut, want)
	}
	if code, out, _ := runCLI(t, "hotspots", "-address", srv.URL, "-json"); code != ExitOK ||
		!strings.Contains(out, `"detail": "on the nodes of dc1/*/web that stay`) || strings.Count(out, `"detail"`) != 1 {
		t.Errorf("-json: exit %d, %s; want the detail of the first alone", code, out)
	}
}
