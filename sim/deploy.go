package sim

import (
	"time"

	"github.com/hashicorp/nomad/api"
)

// latestDeployment returns the job's most recent deployment.
func latestDeployment(j *job) *deployment {
	if len(j.deploys) == 0 {
		return nil
	}
	return j.deploys[len(j.deploys)-1]
}

// startDeployment begins a deployment for the job's current version when
// it is a service job with an update strategy, cancelling an older active
// one, as Nomad does.
func (c *Cluster) startDeployment(j *job) {
	if j.typ != api.JobTypeService || j.stopped {
		return
	}
	var groups map[string]*api.DeploymentState
	for _, g := range j.groups {
		if g.update == nil {
			continue
		}
		if groups == nil {
			groups = map[string]*api.DeploymentState{}
		}
		pd := 10 * time.Minute
		if g.update.ProgressDeadline != nil {
			pd = *g.update.ProgressDeadline
		}
		st := &api.DeploymentState{DesiredTotal: g.count, ProgressDeadline: pd}
		if pd > 0 {
			st.RequireProgressBy = c.now.Add(pd)
		}
		groups[g.name] = st
	}
	if groups == nil {
		return
	}
	if d := latestDeployment(j); d != nil && d.active() {
		d.status, d.statusDesc = api.DeploymentStatusCancelled, "Cancelled due to newer version of job"
		d.modifyIdx = c.bump(TableDeployments)
	}
	d := &deployment{
		id: newID(c.rng), job: j, jobVersion: j.version, jobModIdx: j.jobModIdx, jobCreate: j.createIdx,
		status: api.DeploymentStatusRunning, statusDesc: "Deployment is running",
		groups: groups, started: c.now,
	}
	idx := c.bump(TableDeployments)
	d.createIdx, d.modifyIdx = idx, idx
	j.deploys = append(j.deploys, d)
	c.deployByID[d.id] = d
}

// runDeployments marks allocations healthy after min_healthy_time (or
// unhealthy past healthy_deadline) and completes or fails deployments.
func (c *Cluster) runDeployments() {
	for _, j := range c.sortedJobs() {
		d := latestDeployment(j)
		if d == nil || !d.active() {
			continue
		}
		changed := false
		for _, a := range j.allocs {
			if a.deployID != d.id || a.healthy != nil {
				continue
			}
			u := a.grp.update
			if u == nil {
				continue
			}
			st := d.groups[a.grp.name]
			switch {
			case a.client == allocRunning && !c.now.Before(a.runningSince.Add(*u.MinHealthyTime)):
				a.healthy, a.healthAt = new(true), c.now
				st.HealthyAllocs++
				if st.ProgressDeadline > 0 {
					st.RequireProgressBy = c.now.Add(st.ProgressDeadline)
				}
			case a.clientTerminal() || (u.HealthyDeadline != nil && !a.startAt.IsZero() && !c.now.Before(a.startAt.Add(*u.HealthyDeadline))):
				a.healthy, a.healthAt = new(false), c.now
				st.UnhealthyAllocs++
			default:
				continue
			}
			c.touch(a)
			changed = true
		}
		done := true
		for _, g := range j.groups {
			st := d.groups[g.name]
			if st == nil {
				continue
			}
			if st.UnhealthyAllocs > 0 {
				d.status, d.statusDesc = api.DeploymentStatusFailed, "Failed due to unhealthy allocations"
				changed = true
			} else if !st.RequireProgressBy.IsZero() && c.now.After(st.RequireProgressBy) && st.HealthyAllocs < st.DesiredTotal {
				d.status, d.statusDesc = api.DeploymentStatusFailed, "Failed due to progress deadline"
				changed = true
			}
			if st.HealthyAllocs < st.DesiredTotal {
				done = false
			}
		}
		if d.active() && done {
			d.status, d.statusDesc = api.DeploymentStatusSuccessful, "Deployment completed successfully"
			changed = true
			j.spec.Stable = new(true)
			j.modifyIdx = c.bump(TableJobs)
		}
		if changed {
			d.modifyIdx = c.bump(TableDeployments)
			// A rolling update continues as allocations become healthy.
			c.markDirty(j, triggerDeployment)
		}
	}
}
