package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestActAgainstRealNomadReplacementHealth moves an allocation of a group
// with a (passing) Nomad service check on a real Nomad (NOMAD_ADDR): with
// no deployment running, the move settles once Nomad's client has set the
// replacement healthy (the group's migrate block); placed while a
// deployment of the job runs into a group that deployment does not track
// (no update block), the replacement never gets health from Nomad, and the
// move settles once it runs.
func TestActAgainstRealNomadReplacementHealth(t *testing.T) {
	addr, client, nodes := realNomadNodes(t)
	node := rawExecNode(t, nodes)
	check := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(check.Close)
	u, err := url.Parse(check.URL)
	if err != nil {
		t.Fatal(err)
	}
	pols := realPolicies(t, `
shaping "source" {
  locality {
    datacenter = %q
  }
}
`, node.Datacenter)
	for _, tc := range []struct {
		name      string
		deploying bool
	}{{"no deployment", false}, {"group outside a running deployment", true}} {
		t.Run(tc.name, func(t *testing.T) {
			job := fmt.Sprintf("fs-e2e-health-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
			registerSleeper(t, client, job, node.Datacenter, func(j *nomadapi.Job) {
				g := j.TaskGroups[0]
				g.Services = []*nomadapi.Service{{Name: job, Provider: "nomad", Address: u.Hostname(), PortLabel: u.Port(),
					Checks: []nomadapi.ServiceCheck{{Type: "http", Path: "/", Interval: time.Second, Timeout: time.Second}}}}
				g.Migrate = &nomadapi.MigrateStrategy{MaxParallel: new(1), HealthCheck: new("checks"),
					MinHealthyTime: new(3 * time.Second), HealthyDeadline: new(time.Minute)}
				if tc.deploying {
					// A second group whose deployment runs five minutes.
					name, count := "side", 1
					j.TaskGroups = append(j.TaskGroups, &nomadapi.TaskGroup{Name: &name, Count: &count,
						Update: &nomadapi.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(5 * time.Minute),
							HealthyDeadline: new(6 * time.Minute), ProgressDeadline: new(10 * time.Minute)},
						Tasks: []*nomadapi.Task{{Name: "sleep", Driver: "raw_exec", Config: map[string]any{"command": "/bin/sleep", "args": []string{"infinity"}},
							Resources: &nomadapi.Resources{CPU: new(50), MemoryMB: new(32)}}}})
				}
			})
			t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(job, true, nil) })
			alloc := waitRunning(t, client, job, "")
			for alloc.TaskGroup != "sleep" {
				alloc = waitRunning(t, client, job, alloc.ID)
			}
			var deployment string
			if tc.deploying {
				d, _, err := client.Jobs().LatestDeployment(job, nil)
				if err != nil || d == nil || d.Status != nomadapi.DeploymentStatusRunning {
					t.Fatalf("deployment of %s: %+v %v; want one running", job, d, err)
				}
				deployment = d.ID
			}
			local := newLocal(t)
			coord := realCoordinator(t, addr, local)
			ctx := context.Background()
			src := policies.Locality{Datacenter: node.Datacenter}.String()
			id := submitMove(t, local, alloc, "source", "operator", src, src)
			var repl *nomadapi.Allocation
			var ran time.Time
			for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
				if _, err := coord.RunOnce(ctx, time.Now(), pols, nil); err != nil {
					t.Fatal(err)
				}
				old, _, err := client.Allocations().Info(alloc.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				if old.NextAllocation != "" {
					if repl, _, err = client.Allocations().Info(old.NextAllocation, nil); err != nil {
						t.Fatal(err)
					}
					if ran.IsZero() && repl.ClientStatus == nomadapi.AllocClientStatusRunning {
						ran = time.Now()
					}
				}
				r, _ := local.FSM.Act().Request(id)
				if r.State.Terminal() {
					if r.State != state.RequestDone || repl == nil || r.Moves[0].Replacement != repl.ID {
						t.Fatalf("request %s: %s (%s), moves %+v", id, r.State, r.Reason, r.Moves)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("request %s still %s after 90 s: %s (replacement ran: %v)", id, r.State, r.Reason, !ran.IsZero())
				}
			}
			settled := time.Since(ran)
			health := "none"
			if repl.DeploymentStatus != nil && repl.DeploymentStatus.Healthy != nil {
				health = fmt.Sprint(*repl.DeploymentStatus.Healthy)
			}
			if repl.DeploymentID != deployment {
				t.Errorf("replacement %s: deployment %q, want %q", repl.ID[:8], repl.DeploymentID, deployment)
			}
			if tc.deploying {
				if health != "none" {
					t.Errorf("replacement %s in a deployment not tracking its group: health %s, want none", repl.ID[:8], health)
				}
			} else if health != "true" {
				t.Errorf("replacement %s settled with health %s, want true (the move waits for it)", repl.ID[:8], health)
			}
			t.Logf("figures: real Nomad %s, %s: replacement %s (deployment %q) settled %.1f s after it was seen running, health %s",
				addr, tc.name, repl.ID[:8], repl.DeploymentID, settled.Seconds(), health)
		})
	}
}
