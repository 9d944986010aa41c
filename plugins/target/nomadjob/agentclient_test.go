package nomadjob_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/plugins/target/nomadjob"
	"github.com/foreshape/foreshape/sim"
)

const plainScenario = `
name  = "agent-client"
seed  = 3
start = "2026-01-05T12:00:00Z"
tick  = "5s"
startup = "5s"

datacenter "dc1" {
  bandwidth = 100
}

nodes "n" {
  datacenter = "dc1"
  count      = 2
  cpu        = 8000
  memory     = 16384
  iops       = 1000
}

job "web" {
  type        = "service"
  datacenters = ["dc1"]
  group "web" {
    count  = 2
    cpu    = 100
    memory = 64
  }
}
`

// On the agent's Nomad client, which bounds every call but a blocking
// query (preflight.Options.NomadTimeout, 30 s by default), a scale request
// Nomad takes and never answers ends the action as timed out, saying which
// Nomad kept silent; here the scale took effect. The coordinator's next
// action for the same count changes nothing: the target reads the count
// first, and the count is absolute.
func TestScaleNomadNeverAnswersOnTheAgentsClient(t *testing.T) {
	sc, err := sim.ParseScenario([]byte(plainScenario), "agent-client.hcl")
	if err != nil {
		t.Fatal(err)
	}
	c, err := sim.New(sc, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer func() {
		srv.CloseClientConnections() // a held call ends with its connection
		srv.Close()
	}()
	cfg := config.Default()
	cfg.Server.Enabled, cfg.Server.RetryJoin = false, []string{"10.0.0.1"}
	cfg.Nomad.Address = srv.URL
	start, diags := preflight.Check(cfg, preflight.Options{NomadTimeout: 300 * time.Millisecond})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	// The job's first deployment ends: Nomad would refuse to scale
	// during it.
	if err := c.Step(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if d, _, err := start.Nomad.Jobs().LatestDeployment("web", nil); err != nil || (d != nil && d.Status == api.DeploymentStatusRunning) {
		t.Fatalf("deployment %+v, %v; want it ended", d, err)
	}
	if err := c.SetFaults(sim.Faults{Holds: []sim.Hold{{Method: "PUT", Path: "/v1/job/web/scale", Apply: true, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	tg, err := nomadjob.New(&nomadjob.Config{Job: "web", Group: "web"}, target.Env{Nomad: start.Nomad})
	if err != nil {
		t.Fatal(err)
	}
	a := target.Action{ID: "sa-1", Direction: target.Up, Amount: 1, Count: 3}
	done := make(chan error, 1)
	go func() {
		_, err := tg.Scale(context.Background(), a)
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the scale still waits for Nomad after a minute")
	}
	if !errors.Is(err, target.ErrTimeout) || !strings.Contains(err.Error(), `scale job "web" group "web" to 3`) ||
		!strings.Contains(err.Error(), "did not answer within 300ms") {
		t.Errorf("err = %v; want a timeout of the scale saying Nomad did not answer within 300ms", err)
	}
	a.ID = "sa-2"
	res, err := tg.Scale(context.Background(), a)
	if err != nil || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "already has count 3") {
		t.Errorf("the next action to 3: %+v, %v; want nothing changed", res, err)
	}
	st, _, err := start.Nomad.Jobs().ScaleStatus("web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := st.TaskGroups["web"]; g.Desired != 3 || countEvents(g.Events) != 1 {
		t.Errorf("group %+v; want count 3 from one scaling event", g)
	}
}

func countEvents(evs []api.ScalingEvent) int {
	n := 0
	for _, e := range evs {
		if e.Count != nil {
			n++
		}
	}
	return n
}
