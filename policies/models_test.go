package policies_test

import (
	"testing"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/policies"
)

// TestEveryModelIsTheEngines: each forecast.model a policy accepts is a
// model the forecast engine builds, so that a policy naming it is not
// accepted at load and refused at its first forecast.
func TestEveryModelIsTheEngines(t *testing.T) {
	for _, name := range policies.Models {
		src := "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n  forecast {\n    model = \"" + name + "\"\n  }\n}\n"
		ps, diags := policies.Parse("web.hcl", []byte(src))
		if diags.HasErrors() || len(ps) != 1 || ps[0].Forecast.Model != name {
			t.Errorf("model %q: the policy does not load: %v", name, diags)
			continue
		}
		f := ps[0].Forecast
		if _, err := forecast.New(name, forecast.Options{Step: f.Step, Horizon: f.Steps(), Seasonality: f.Seasonality}); err != nil {
			t.Errorf("model %q: the forecast engine does not build it: %v", name, err)
		}
	}
}

// TestGlobalNetworksAreNotPolicyModels: the learned networks are auto's
// candidates and `forecast eval` models, not a policy's forecast.model
// (docs/forecasting.md, "The learned global network").
func TestGlobalNetworksAreNotPolicyModels(t *testing.T) {
	for _, name := range []string{"global", "global-lstm"} {
		src := "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n  forecast {\n    model = \"" + name + "\"\n  }\n}\n"
		if _, diags := policies.Parse("web.hcl", []byte(src)); !diags.HasErrors() {
			t.Errorf("model %q accepted", name)
		}
	}
}
