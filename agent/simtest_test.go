package agent

import (
	"context"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// testSim is the default scenario served over HTTP with its clock running,
// for agent tests: what the CLI's dev mode embeds.
type testSim struct {
	Cluster *sim.Cluster
	URL     string
	speed   float64
}

// startTestSim runs the default scenario at speed until the test ends.
func startTestSim(t *testing.T, speed float64) *testSim {
	t.Helper()
	return startScenario(t, sim.DefaultScenario(), speed)
}

// startScenario runs sc at speed until the test ends.
func startScenario(t *testing.T, sc *sim.Scenario, speed float64) *testSim {
	t.Helper()
	c, err := sim.New(sc, sim.Options{Logger: testLogger(t).Named("sim")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = c.Run(ctx, speed)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
	})
	return &testSim{Cluster: c, URL: srv.URL, speed: speed}
}

// Now implements Clock with the simulation's virtual time.
func (s *testSim) Now(context.Context) (time.Time, error) { return s.Cluster.Now().UTC(), nil }

// Speed implements Clock.
func (s *testSim) Speed() float64 { return s.speed }

// devPolicies are the dev agent's policies, which shape the default
// scenario's localities.
func devPolicies(t testing.TB) []*policies.Policy {
	t.Helper()
	src, err := os.ReadFile(devPoliciesFile)
	if err != nil {
		t.Fatal(err)
	}
	pols, diags := policies.Parse(devPoliciesFile, src)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return pols
}

const devPoliciesFile = "../command/dev-policies.hcl"
