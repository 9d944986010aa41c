package sim_test

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// finishingJob is a job of one allocation that ends on its own: a batch
// job whose task exits 0 after a second (sim.run_for on the simulator), or
// a service job whose task fails at once (the simulator fails it by
// FailAlloc); neither restarts nor reschedules.
func finishingJob(id, typ string) *api.Job {
	j := sleepJob(id, 1, 50, 32, 50)
	j.Type = new(typ)
	tg := j.TaskGroups[0]
	tg.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new("fail")}
	tg.ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(0), Unlimited: new(false)}
	if typ == api.JobTypeBatch {
		j.Update = nil
		tg.Tasks[0].SetConfig("args", []string{"1"})
		tg.Meta = map[string]string{"sim.run_for": "1s"}
	} else {
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		tg.Tasks[0].Config = map[string]any{"command": "/bin/false"}
	}
	return j
}

// Stopping an allocation that has already ended (a batch allocation
// complete, a service allocation failed and not to be rescheduled) is
// answered as any stop: Nomad marks it to migrate (DesiredTransition's
// Migrate, which foreshape reads to see that its stop took effect), its
// desired status still run, and creates an alloc-stop evaluation that
// completes and places nothing: no replacement. Measured on Nomad 2.0.6,
// which also set Reschedule and NoShutdownDelay in the transition (false).
func TestFidelityStopFinished(t *testing.T) {
	for _, typ := range []string{api.JobTypeBatch, api.JobTypeService} {
		t.Run(typ, func(t *testing.T) {
			forEachNomad(t, func(t *testing.T, c *cluster) {
				id := c.jobID("stopdone")
				c.register(t, finishingJob(id, typ))
				want := api.AllocClientStatusComplete
				if typ == api.JobTypeService {
					want = api.AllocClientStatusFailed
					if c.sim != nil {
						as := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
						if err := c.sim.FailAlloc(as[0].ID, "exit 1"); err != nil {
							t.Fatal(err)
						}
					}
				}
				done := c.waitAllocs(t, id, "ended", func(as []*api.AllocationListStub) bool {
					return len(as) == 1 && as[0].ClientStatus == want
				})[0]
				a, _, err := c.client.Allocations().Info(done.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := c.client.Allocations().Stop(a, nil)
				if err != nil || resp.EvalID == "" {
					t.Fatalf("stop of a %s allocation: %+v, %v; want an evaluation", want, resp, err)
				}
				ev := c.waitEval(t, resp.EvalID, "completed", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
				if ev.TriggeredBy != "alloc-stop" {
					t.Errorf("stop's evaluation triggered by %q, want alloc-stop", ev.TriggeredBy)
				}
				after, _, err := c.client.Allocations().Info(done.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !after.DesiredTransition.ShouldMigrate() || after.DesiredStatus != api.AllocDesiredStatusRun || after.ClientStatus != want ||
					after.NextAllocation != "" || after.ModifyIndex <= a.ModifyIndex {
					t.Errorf("a %s allocation stopped: %s/%s, migrate %v, next %q, modify index %d (before %d); want run/%s, migrate, no replacement, a later index",
						want, after.DesiredStatus, after.ClientStatus, after.DesiredTransition.ShouldMigrate(), after.NextAllocation,
						after.ModifyIndex, a.ModifyIndex, want)
				}
				// Nothing replaces it.
				time.Sleep(3 * time.Second)
				if as, _, err := c.client.Jobs().Allocations(id, true, nil); err != nil || len(as) != 1 {
					t.Errorf("allocations after the stop: %s, %v; want the one", describe(as), err)
				}
			})
		})
	}
}
