package sim_test

// A group's services and their checks, as foreshape's migration follower
// reads them (a replacement of a group with checks counts once healthy),
// and the health Nomad's client sets on such allocations outside a
// deployment.

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// checksJob is a service job without deployments (update max_parallel 0:
// its allocations' health comes from each group's migrate block) of three
// groups, each with a network port "http": "pass", whose group service
// (provider nomad) has a TCP check on the port its task listens on, and
// whose task has a service without checks; "fail", whose group service
// checks a port its sleeping task does not listen on; "none", with a group
// service without checks on a sleeping task.
func checksJob(id string) *api.Job {
	j := api.NewServiceJob(id, id, "global", 50)
	j.Datacenters = []string{"dc1"}
	j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	group := func(name string, task *api.Task, checks bool) *api.TaskGroup {
		tg := api.NewTaskGroup(name, 1)
		tg.Networks = []*api.NetworkResource{{DynamicPorts: []api.Port{{Label: "http"}}}}
		tg.Migrate = &api.MigrateStrategy{MinHealthyTime: new(time.Second), HealthyDeadline: new(15 * time.Second)}
		tg.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new("fail")}
		s := &api.Service{Name: id + "-" + name, Provider: "nomad", PortLabel: "http"}
		if checks {
			s.Checks = []api.ServiceCheck{{Type: "tcp", Interval: time.Second, Timeout: time.Second}}
		}
		tg.Services = []*api.Service{s}
		tg.AddTask(task.Require(&api.Resources{CPU: new(50), MemoryMB: new(48)}))
		return tg
	}
	sleep := func() *api.Task {
		return api.NewTask("t", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"3600"})
	}
	listen := api.NewTask("t", "raw_exec").SetConfig("command", "/usr/bin/python3").
		SetConfig("args", []string{"-m", "http.server", "${NOMAD_PORT_http}", "--bind", "${NOMAD_IP_http}"})
	listen.Services = []*api.Service{{Name: id + "-task", Provider: "nomad", PortLabel: "http"}}
	j.AddTaskGroup(group("pass", listen, true))
	j.AddTaskGroup(group("fail", sleep(), true))
	j.AddTaskGroup(group("none", sleep(), false))
	return j
}

// checksOf is how many checks each of the group's services (the group's,
// then each task's) has, and whether each is provider nomad.
func checksOf(tg *api.TaskGroup) (group, task []int, nomad bool) {
	nomad = true
	for _, s := range tg.Services {
		group = append(group, len(s.Checks))
		nomad = nomad && s.Provider == "nomad"
	}
	for _, t := range tg.Tasks {
		for _, s := range t.Services {
			task = append(task, len(s.Checks))
			nomad = nomad && s.Provider == "nomad"
		}
	}
	return group, task, nomad
}

// Nomad keeps a group's services and their checks (provider nomad) in the
// job as registered, in Jobs().Info and in an allocation's embedded job,
// naming a check it was given no name `service: "NAME" check`. Outside a
// deployment, its client sets an allocation's health with the group's
// migrate block and its checks: healthy once every check passes for
// min_healthy_time, unhealthy by healthy_deadline when one never passes
// (a TCP check of a port its task does not listen on), and a group
// without checks healthy after min_healthy_time.
func TestFidelityServiceChecks(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("checks")
		c.register(t, checksJob(id))
		want := map[string]struct {
			group, task []int
			healthy     bool
		}{"pass": {[]int{1}, []int{0}, true}, "fail": {[]int{1}, nil, false}, "none": {[]int{0}, nil, true}}
		check := func(where string, j *api.Job) {
			t.Helper()
			for _, tg := range j.TaskGroups {
				w := want[*tg.Name]
				g, tk, nomad := checksOf(tg)
				if !equalInts(g, w.group) || !equalInts(tk, w.task) || !nomad {
					t.Errorf("%s: group %s: checks of the group's services %v, of its tasks' %v, all provider nomad %v; want %v, %v, true",
						where, *tg.Name, g, tk, nomad, w.group, w.task)
				}
				for _, s := range tg.Services {
					for _, ch := range s.Checks {
						if ch.Name != `service: "`+s.Name+`" check` || ch.Type != "tcp" || ch.Interval != time.Second {
							t.Errorf("%s: group %s: check %+v; want named `service: %q check`, tcp, every 1s", where, *tg.Name, ch, s.Name)
						}
					}
				}
			}
		}
		j, _, err := c.client.Jobs().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		check("job", j)

		// Every allocation gets its health: the failing one by its
		// healthy_deadline (15 s).
		allocs := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 3 })
		for _, stub := range allocs {
			a := c.waitAlloc(t, stub.ID, "got health", func(a *api.Allocation) bool {
				return a.DeploymentStatus != nil && a.DeploymentStatus.Healthy != nil
			})
			if a.DeploymentID != "" {
				t.Errorf("group %s: allocation in deployment %s, want none", a.TaskGroup, a.DeploymentID)
			}
			if got := *a.DeploymentStatus.Healthy; got != want[a.TaskGroup].healthy {
				t.Errorf("group %s: healthy %v, want %v", a.TaskGroup, got, want[a.TaskGroup].healthy)
			}
			if a.Job == nil {
				t.Fatalf("group %s: allocation without its job", a.TaskGroup)
			}
			check("allocation "+a.TaskGroup+"'s job", a.Job)
			t.Logf("%s: group %s: healthy %v %s after it ran", c.name, a.TaskGroup, *a.DeploymentStatus.Healthy,
				a.DeploymentStatus.Timestamp.Sub(a.TaskStates["t"].StartedAt).Round(time.Second))
		}
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// In a deployment, Nomad's client sets an allocation's health with the
// group's update block and its checks (health_check "checks", the
// default): a check that never passes (a TCP check of a port its sleeping
// task does not listen on) makes it unhealthy at the update block's
// healthy_deadline, and the deployment fails; a move into such a group
// never counts.
func TestFidelityServiceChecksInDeployment(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("checksdep")
		j := checksJob(id)
		j.TaskGroups = j.TaskGroups[1:2] // "fail"
		j.TaskGroups[0].ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(0), Unlimited: new(false)}
		j.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(time.Second),
			HealthyDeadline: new(10 * time.Second), ProgressDeadline: new(time.Minute)}
		c.register(t, j)
		allocs := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		a := c.waitAlloc(t, allocs[0].ID, "got health", func(a *api.Allocation) bool {
			return a.DeploymentStatus != nil && a.DeploymentStatus.Healthy != nil
		})
		if a.DeploymentID == "" || *a.DeploymentStatus.Healthy {
			t.Errorf("allocation of deployment %q: healthy %v; want a deployment's, unhealthy", a.DeploymentID, *a.DeploymentStatus.Healthy)
		}
		if a.DeploymentID != "" {
			d := waitDeployment(t, c, a.DeploymentID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
			if d.Status != api.DeploymentStatusFailed {
				t.Errorf("deployment %s: %s (%s), want failed", d.ID, d.Status, d.StatusDescription)
			}
		}
		t.Logf("%s: healthy %v %s after it ran", c.name, *a.DeploymentStatus.Healthy,
			a.DeploymentStatus.Timestamp.Sub(a.TaskStates["t"].StartedAt).Round(time.Second))
	})
}
