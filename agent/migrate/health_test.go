package migrate

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestReplacementHealth: a move's replacement in a group with checks
// counts once Nomad says it is healthy — with no deployment running,
// Nomad's client watches it with the group's migrate block (here
// min_healthy_time 3m), so the move waits that long after it runs. Placed
// while a deployment of its job runs into a group that deployment does not
// track (no update block), or into one whose update block sets
// health_check = "manual", Nomad's client never sets it any health, so it
// counts once it runs (before, the move waited out its settle timeout).
func TestReplacementHealth(t *testing.T) {
	for _, tc := range []struct {
		name      string
		deploying bool
		manual    bool // the group's update block leaves health to an operator
	}{{"no deployment", false, false}, {"group outside a running deployment", true, false}, {"manual health in a running deployment", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, actPolicies)
			job, _, err := h.client.Jobs().Info("web", nil)
			if err != nil {
				t.Fatal(err)
			}
			fe := job.LookupTaskGroup("frontend")
			fe.Services = []*nomadapi.Service{{Name: "web", Provider: "nomad", PortLabel: "http",
				Checks: []nomadapi.ServiceCheck{{Type: "http", Path: "/", Interval: 10 * time.Second, Timeout: 2 * time.Second}}}}
			fe.Update = &nomadapi.UpdateStrategy{MaxParallel: new(0)}
			fe.Migrate = &nomadapi.MigrateStrategy{MaxParallel: new(1), HealthCheck: new("checks"),
				MinHealthyTime: new(3 * time.Minute), HealthyDeadline: new(10 * time.Minute)}
			if tc.manual {
				fe.Update = &nomadapi.UpdateStrategy{MaxParallel: new(1), HealthCheck: new("manual"), MinHealthyTime: new(10 * time.Second),
					HealthyDeadline: new(5 * time.Minute), ProgressDeadline: new(time.Hour)}
			}
			if tc.deploying && !tc.manual {
				side := nomadapi.NewTaskGroup("side", 1)
				side.AddTask(nomadapi.NewTask("hold", "raw_exec").SetConfig("command", "/bin/sleep").
					SetConfig("args", []string{"3600"}).Require(&nomadapi.Resources{CPU: new(100), MemoryMB: new(64)}))
				side.Update = &nomadapi.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(time.Hour),
					HealthyDeadline: new(2 * time.Hour), ProgressDeadline: new(3 * time.Hour)}
				job.AddTaskGroup(side)
			}
			if _, _, err := h.client.Jobs().Register(job, nil); err != nil {
				t.Fatal(err)
			}
			h.step(30 * time.Second)
			d, _, err := h.client.Jobs().LatestDeployment("web", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.deploying != (d != nil && d.Status == nomadapi.DeploymentStatusRunning) {
				t.Fatalf("deployment %+v; want one running: %v", d, tc.deploying)
			}
			var a *nomadapi.AllocationListStub
			for _, x := range h.allocs("web") {
				if x.TaskGroup == "frontend" && x.DesiredStatus == nomadapi.AllocDesiredStatusRun {
					a = x
				}
			}
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
			if err != nil {
				t.Fatal(err)
			}
			var ran time.Time
			var repl *nomadapi.Allocation
			for range 40 {
				h.run(h.flatForecasts(30))
				h.step(15 * time.Second)
				if err := h.c.Follow(h.ctx, h.now()); err != nil {
					t.Fatal(err)
				}
				r := h.request(id)
				old, _, err := h.client.Allocations().Info(a.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				if old.NextAllocation != "" {
					if repl, _, err = h.client.Allocations().Info(old.NextAllocation, nil); err != nil {
						t.Fatal(err)
					}
					if ran.IsZero() && repl.ClientStatus == nomadapi.AllocClientStatusRunning {
						ran = h.now()
					}
				}
				if r.State.Terminal() {
					break
				}
			}
			r := h.request(id)
			if r.State != state.RequestDone || r.Moves[0].Replacement != repl.ID || ran.IsZero() {
				t.Fatalf("request %s: %s (%s), moves %+v; replacement ran at %v", id, r.State, r.Reason, r.Moves, ran)
			}
			health := "none"
			if repl.DeploymentStatus != nil && repl.DeploymentStatus.Healthy != nil {
				health = map[bool]string{true: "healthy", false: "unhealthy"}[*repl.DeploymentStatus.Healthy]
			}
			waited := r.Moves[0].Running.Sub(ran)
			t.Logf("replacement ran at %s, counted %s later (deployment %q, health %s)", ran.Format("15:04:05"), waited, repl.DeploymentID, health)
			if tc.deploying {
				if repl.DeploymentID != d.ID || health != "none" || waited > 15*time.Second {
					t.Errorf("replacement in deployment %q (the job's: %s), health %s, counted %s after it ran; want the job's, none, at its first pass",
						repl.DeploymentID, d.ID, health, waited)
				}
				return
			}
			if repl.DeploymentID != "" || health != "healthy" || waited < 3*time.Minute-15*time.Second {
				t.Errorf("replacement in deployment %q, health %s, counted %s after it ran; want none, healthy, after migrate's min_healthy_time 3m",
					repl.DeploymentID, health, waited)
			}
		})
	}
}
