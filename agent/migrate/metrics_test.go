package migrate

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// series returns the counter c's series, by their label values joined
// with ",", and their values.
func series(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	out := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		key := ""
		for i, lp := range d.GetLabel() {
			if i > 0 {
				key += ","
			}
			key += lp.GetValue()
		}
		out[key] = d.GetCounter().GetValue()
	}
	return out
}

// TestActMetricsStartAtZero: the act counters whose label values are
// known in advance exist from the start, at 0 (both outcomes of a finished
// move, every kind and outcome of a mutating call), and a policy's scale
// blocks' outcomes exist once KnowPolicies saw it, so that the first
// failure is an increase Prometheus sees rather than a series that
// appears at 1 (docs/telemetry.md).
func TestActMetricsStartAtZero(t *testing.T) {
	local, err := state.NewLocal(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, local.FSM)
	if err != nil {
		t.Fatal(err)
	}
	if got := series(t, m.finished); len(got) != 2 || got["done"] != 0 || got["failed"] != 0 || len(series(t, m.started)) != 1 {
		t.Errorf("foreshape_moves_finished_total: %v, want done and failed at 0", got)
	}
	calls := series(t, m.calls)
	if len(calls) != 2*len(intentKinds) {
		t.Errorf("foreshape_mutating_calls_total has %d series, want %d", len(calls), 2*len(intentKinds))
	}
	for _, k := range intentKinds {
		for _, o := range outcomes {
			if v, ok := calls[string(k)+","+o]; !ok || v != 0 {
				t.Errorf("calls{%s,%s} = %v (present %v), want 0", k, o, v, ok)
			}
		}
	}
	if got := series(t, m.scales); len(got) != 0 {
		t.Errorf("foreshape_scale_actions_total: %v before any policy", got)
	}
	pols, diags := policies.Parse("scale.hcl", []byte(`
shaping "web" {
  locality {
    datacenter = "dc1"
  }
  scale "asg" {
    min = 1
    max = 5
    target "nomad-job" {
      job   = "web"
      group = "frontend"
    }
  }
}
`))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	m.KnowPolicies(pols)
	m.KnowPolicies(pols)
	// Labels come sorted by name: outcome, policy, scale.
	got := series(t, m.scales)
	done, okDone := got["done,web,asg"]
	failed, okFailed := got["failed,web,asg"]
	if len(got) != 2 || !okDone || !okFailed || done != 0 || failed != 0 {
		t.Errorf("foreshape_scale_actions_total after KnowPolicies: %v, want web/asg done and failed at 0", got)
	}
	var none *Metrics
	none.KnowPolicies(pols) // an agent without metrics
}
