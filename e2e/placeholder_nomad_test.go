package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/policies"
)

// placeholderMove is what the placeholder tests on a real Nomad share: a
// job of one raw_exec allocation in the source datacenter to move, and a
// real job, the workers, whose group the target's policy scales; the
// target's policy reserves room for moves into it. The passes' now runs a
// minute ahead for each pass.
type placeholderMove struct {
	t              *testing.T
	addr           string
	client         *nomadapi.Client
	local          *state.Local
	pols           []*policies.Policy
	workers        string
	alloc          *nomadapi.AllocationListStub
	source, target string
	start          time.Time
	passes         int
}

// newPlaceholderMove registers the job to move in source and the workers
// in workersDC (both deregistered, and every placeholder reaped, when the
// test ends), and the policies of source and target.
func newPlaceholderMove(t *testing.T, addr string, client *nomadapi.Client, name, source, target, workersDC string) *placeholderMove {
	t.Helper()
	suffix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	job, workers := "fs-e2e-"+name+"-"+suffix, "fs-e2e-workers-"+suffix
	registerSleeper(t, client, job, source)
	registerSleeper(t, client, workers, workersDC)
	t.Cleanup(func() {
		_, _, _ = client.Jobs().Deregister(job, true, nil)
		_, _, _ = client.Jobs().Deregister(workers, true, nil)
	})
	m := &placeholderMove{t: t, addr: addr, client: client, local: newLocal(t), workers: workers, source: source, target: target}
	m.alloc = waitRunning(t, client, job, "")
	m.pols = realPolicies(t, `
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
`, source, target, workers)
	t.Cleanup(func() { reapAll(t, client, m.local.FSM.Act().ClusterID) })
	return m
}

// coordinator is a coordinator on the test's state whose placeholders
// run ph.
func (m *placeholderMove) coordinator(ph migrate.Placeholder) *migrate.Coordinator {
	m.t.Helper()
	coord, err := migrate.New(migrate.Config{Nomad: realnomad.Client(m.t, m.addr, realnomad.Token()), Apply: m.local, State: m.local.FSM, Node: "e2e", SyncScale: true,
		Placeholder: ph, Logger: hclog.New(&hclog.LoggerOptions{Output: testWriter{m.t}, Level: hclog.Debug})})
	if err != nil {
		m.t.Fatal(err)
	}
	return coord
}

// submit queues the move of the job's allocation from source to target,
// and starts the passes' clock.
func (m *placeholderMove) submit() string {
	m.t.Helper()
	m.start = time.Now()
	return submitMove(m.t, m.local, m.alloc, "source", "operator", m.source, m.target)
}

// now is the next pass's time.
func (m *placeholderMove) now() time.Time { return m.start.Add(time.Duration(m.passes) * time.Minute) }

// pass runs coord once at the next pass's time, and follows its moves
// when follow is set.
func (m *placeholderMove) pass(coord *migrate.Coordinator, follow bool) {
	m.t.Helper()
	now := m.now()
	m.passes++
	ctx := context.Background()
	if _, err := coord.RunOnce(ctx, now, m.pols, nil); err != nil {
		m.t.Fatal(err)
	}
	if !follow {
		return
	}
	if err := coord.Follow(ctx, now); err != nil {
		m.t.Fatal(err)
	}
}

// notScaled checks that no scale action was recorded (why says for what)
// and that the workers are still at their one allocation in Nomad.
func (m *placeholderMove) notScaled(why string) {
	m.t.Helper()
	if acts := m.local.FSM.Act().ScaleActions; len(acts) != 0 {
		m.t.Errorf("scale actions %+v; want none%s", acts, why)
	}
	wj, _, err := m.client.Jobs().Info(m.workers, nil)
	if err != nil {
		m.t.Fatal(err)
	}
	if n := *wj.TaskGroups[0].Count; n != 1 {
		m.t.Errorf("%s scaled to %d; want it left at 1", m.workers, n)
	}
}
