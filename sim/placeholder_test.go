package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// placeholderJob is a job as foreshape's reservation door registers it: low
// priority, no update block, constrained to a locality, tasks that only
// sleep (raw_exec) or pause (docker).
func placeholderJob(id, driver string, count, cpu, mem int) *api.Job {
	j := api.NewServiceJob(id, id, "global", 10)
	j.Datacenters = []string{"dc2"}
	j.Meta = map[string]string{"foreshape_reservation": "res-1"}
	j.Constraints = []*api.Constraint{
		api.NewConstraint("${node.datacenter}", "=", "dc2"),
		api.NewConstraint("${node.pool}", "=", "default"),
		api.NewConstraint("${node.class}", "=", "db"),
	}
	j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	task := api.NewTask("hold", driver)
	switch driver {
	case "raw_exec":
		task.SetConfig("command", "/bin/sleep").SetConfig("args", []string{"infinity"})
	case "docker":
		task.SetConfig("image", "registry.k8s.io/pause:3.9")
	}
	task.Require(&api.Resources{CPU: new(cpu), MemoryMB: new(mem)})
	tg := api.NewTaskGroup("hold", count)
	tg.AddTask(task)
	j.AddTaskGroup(tg)
	return j
}

// Placeholders hold capacity like any job: the scheduler counts them (work
// that does not fit beside them is queued) while the ground truth shows
// they use nothing, and scaling them down hands the capacity over.
func TestPlaceholdersHoldCapacity(t *testing.T) {
	for _, driver := range []string{"raw_exec", "docker"} {
		t.Run(driver, func(t *testing.T) {
			c := newTestCluster(t, "")
			client := newTestAPI(t, c, "")
			jobs := client.Jobs()
			// dc2 has two db nodes of 4000 MHz / 8192 MB: the placeholder
			// takes most of both.
			if _, _, err := jobs.Register(placeholderJob("foreshape-reserve-1", driver, 2, 3500, 7000), nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Step(time.Minute); err != nil {
				t.Fatal(err)
			}
			if got := nodesOf(c, "foreshape-reserve-1"); fmt.Sprint(got) != "[b-1 b-2]" {
				t.Fatalf("placeholder on %v, want one on each db node", got)
			}
			work := noUpdate(serviceJob("work", 1, 1000, 2048, 60))
			work.Datacenters = []string{"dc2"}
			if _, _, err := jobs.Register(work, nil); err != nil {
				t.Fatal(err)
			}
			if sum, _, _ := jobs.Summary("work", nil); sum.Summary["g"].Queued != 1 {
				t.Fatalf("work summary %+v: it fits beside the placeholder", sum.Summary["g"])
			}
			if err := c.Step(2 * time.Minute); err != nil {
				t.Fatal(err)
			}
			tr := c.Truth()
			var held, used float64
			for _, m := range tr.JobMinutes {
				if m.JobID == "foreshape-reserve-1" {
					held = m.AllocatedCPUMHz
				}
			}
			for _, m := range tr.NodeMinutes {
				if m.NodeClass == "db" {
					used = max(used, m.CPUDemandMHz)
				}
			}
			if held != 7000 || used != 0 {
				t.Errorf("placeholder holds %v MHz and its nodes use %v MHz; want 7000 held, none used", held, used)
			}
			// Hand-over: one placeholder allocation goes, the work is placed.
			if _, _, err := jobs.Scale("foreshape-reserve-1", "hold", new(1), "hand over to work", false, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Step(time.Minute); err != nil {
				t.Fatal(err)
			}
			if sum, _, _ := jobs.Summary("work", nil); sum.Summary["g"].Running != 1 {
				t.Errorf("work summary after the hand-over %+v, want it running", sum.Summary["g"])
			}
		})
	}
}
