package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
)

// cyclelessBackend leads with the policies and last cycle a test sets.
type cyclelessBackend struct {
	nopBackend
	policies  []api.Policy
	cycle     *api.Cycle
	forecasts []api.Forecast
}

func (b cyclelessBackend) Status(context.Context) api.Status {
	return api.Status{Node: "n1", State: "Leader", IsLeader: true, LastCycle: b.cycle}
}
func (b cyclelessBackend) Policies(context.Context) []api.Policy    { return b.policies }
func (b cyclelessBackend) Forecasts(context.Context) []api.Forecast { return b.forecasts }

// TestForecastOfAPolicyNotForecastYet: a locality (or policy name) a
// loaded policy forecasts, of which the leader has no forecast, is a 404
// that says why — no cycle finished yet, the last cycle failed, or the
// policy came after it — not "no policy forecasts it", which a leader
// stuck before its first cycle answered for every policy's locality.
func TestForecastOfAPolicyNotForecastYet(t *testing.T) {
	dc2 := []api.Policy{{Name: "dc2-web", Locality: "dc2"}, {Name: "dc1-web", Locality: "dc1"}}
	dc1 := []api.Forecast{{Policy: "dc1-web", Locality: "dc1", Metric: "cpu", Status: api.ForecastWarmingUp}}
	for _, tc := range []struct {
		name string
		b    cyclelessBackend
		loc  string
		want string
	}{
		{"no cycle yet", cyclelessBackend{policies: dc2}, "dc2",
			`no forecast for locality "dc2": policy dc2-web forecasts it, but this agent leads and has finished no cycle yet`},
		{"by the policy's name", cyclelessBackend{policies: dc2}, "dc2-web",
			`no forecast for locality "dc2-web": policy dc2-web forecasts it, but this agent leads and has finished no cycle yet`},
		{"the last cycle failed", cyclelessBackend{policies: dc2, cycle: &api.Cycle{Error: "sim clock: connection refused"}}, "dc2",
			`no forecast for locality "dc2": policy dc2-web forecasts it, but the last cycle failed: sim clock: connection refused`},
		{"loaded since the last cycle", cyclelessBackend{policies: dc2, cycle: &api.Cycle{}, forecasts: dc1}, "dc2",
			`no forecast for locality "dc2": policy dc2-web forecasts it, but the last cycle did not (a policy loaded since is forecast from the next cycle)`},
		{"no policy forecasts it", cyclelessBackend{policies: dc2, cycle: &api.Cycle{}, forecasts: dc1}, "dc9",
			`no forecast for locality "dc9": no policy forecasts it; the localities forecast: dc1`},
		{"no policy at all", cyclelessBackend{cycle: &api.Cycle{}}, "dc9",
			`no forecast for locality "dc9": no policy forecasts it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := api.NewServer(tc.b, api.Options{})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s)
			defer srv.Close()
			_, err = (&api.Client{Address: srv.URL}).Forecast(context.Background(), tc.loc, "")
			var se *api.StatusError
			if !errors.As(err, &se) || se.Code != 404 || !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("GET /v1/forecast/%s: %v; want a 404 saying %q", tc.loc, err, tc.want)
			}
		})
	}
}
