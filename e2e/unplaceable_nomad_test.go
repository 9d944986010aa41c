package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/realnomad"
)

// TestActUnplaceablePlaceholderOnRealNomad: a real Nomad (NOMAD_ADDR with
// two datacenters, raw_exec on each) accepts a move's placeholder whose
// task driver no node of the target runs, and cannot place it: its
// evaluation filters every node ("missing drivers"). Past the placeholder's
// grace the coordinator reads why from Nomad and does not scale the
// target's scale block (a real job it would scale), and the request waits,
// its reason naming the missing driver and reserve.driver. The passes' now
// runs a minute ahead a second.
func TestActUnplaceablePlaceholderOnRealNomad(t *testing.T) {
	addr, client, nodes := realNomadNodes(t)
	source := rawExecNode(t, nodes)
	var target string
	for _, n := range nodes {
		if rawExecReady(n) && n.Datacenter != source.Datacenter {
			target = n.Datacenter
		}
	}
	if target == "" {
		t.Skip("NOMAD_ADDR has no second datacenter with a ready raw_exec node (join a client agent in another datacenter)")
	}
	driver := "podman"
	for _, n := range nodes {
		if n.Drivers[driver] != nil {
			t.Skipf("node %s runs %s: this test needs a task driver no node runs", n.Name, driver)
		}
	}
	suffix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	job, workers := "fs-e2e-unplaceable-"+suffix, "fs-e2e-workers-"+suffix
	registerSleeper(t, client, job, source.Datacenter)
	registerSleeper(t, client, workers, source.Datacenter)
	t.Cleanup(func() {
		_, _, _ = client.Jobs().Deregister(job, true, nil)
		_, _, _ = client.Jobs().Deregister(workers, true, nil)
	})
	alloc := waitRunning(t, client, job, "")

	local := newLocal(t)
	pols := realPolicies(t, `
shaping "source" {
  locality {
    datacenter = %q
  }
}
shaping "target" {
  locality {
    datacenter = %q
  }
  reserve {
    enabled    = true
    priority   = 10
    lead_time  = "15m"
    ttl        = "1h"
    max_cpu    = 1000
    max_memory = 1024
  }
  scale "workers" {
    min      = 1
    max      = 5
    cooldown = "10m"
    target "nomad-job" {
      job   = %q
      group = "sleep"
    }
  }
}
`, source.Datacenter, target, workers)
	coord, err := migrate.New(migrate.Config{Nomad: realnomad.Client(t, addr, realnomad.Token()), Apply: local, State: local.FSM, Node: "e2e", SyncScale: true,
		Placeholder: migrate.Placeholder{Driver: driver, Config: map[string]any{"image": "registry.k8s.io/pause:3.10"}},
		Logger:      hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() { reapAll(t, client, local.FSM.Act().ClusterID) })
	id := submitMove(t, local, alloc, "source", "operator", source.Datacenter, target)
	start := time.Now()
	for i := 0; ; i++ {
		now := start.Add(time.Duration(i) * time.Minute)
		if _, err := coord.RunOnce(ctx, now, pols, nil); err != nil {
			t.Fatal(err)
		}
		if now.Sub(start) > shape.PlaceholderGrace+3*time.Minute {
			break
		}
		time.Sleep(time.Second)
	}
	res, ok := local.FSM.ReservationFor(id)
	if !ok || res.Unplaced == 0 {
		t.Fatalf("reservation %+v (found %v); the test needs a placeholder Nomad cannot place", res, ok)
	}
	pj, _, err := client.Jobs().Info(res.Job, nil)
	if err != nil || pj.TaskGroups[0].Tasks[0].Driver != driver {
		t.Fatalf("placeholder %s as Nomad holds it: %+v, %v", res.Job, pj, err)
	}
	r, _ := local.FSM.Act().Request(id)
	if r.State == state.RequestRunning || r.State.Terminal() {
		t.Errorf("%s %s (%s): moved without its room", id, r.State, r.Reason)
	}
	for _, want := range []string{"no node of " + target + " can run placeholder " + res.Job, "missing drivers: 1",
		`task driver "` + driver + `"`, "reserve.driver", "not scaled for"} {
		if !strings.Contains(r.Reason, want) {
			t.Errorf("%s's reason %q lacks %q", id, r.Reason, want)
		}
	}
	if acts := local.FSM.Act().ScaleActions; len(acts) != 0 {
		t.Errorf("scale actions %+v; want none for a placeholder no node can take", acts)
	}
	wj, _, err := client.Jobs().Info(workers, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := *wj.TaskGroups[0].Count; n != 1 {
		t.Errorf("%s scaled to %d; want it left at 1", workers, n)
	}
	var fm *nomadapi.AllocationMetric
	evals, _, err := client.Jobs().Evaluations(res.Job, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evals {
		for _, m := range e.FailedTGAllocs {
			fm = m
		}
	}
	t.Logf("Nomad's failed metric for %s: %+v; the request's reason: %s", res.Job, fm, r.Reason)
}
