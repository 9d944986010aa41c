package sim

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Eval triggers, as Nomad spells them.
const (
	triggerRegister     = "job-register"
	triggerDeregister   = "job-deregister"
	triggerScale        = "job-scaling"
	triggerNodeUpdate   = "node-update"
	triggerNodeDrain    = "node-drain"
	triggerAllocStop    = "alloc-stop"
	triggerPreemption   = "preemption"
	triggerQueued       = "queued-allocs"
	triggerPlanAttempts = "max-plan-attempts"
	triggerAllocFail    = "alloc-failure"
	triggerDeployment   = "deployment-watcher"
	triggerReschedule   = "alloc-reschedule"
)

// killTimeout is Nomad's default kill_timeout, which a group's
// stop_on_client_after wait counts at least.
const killTimeout = defaultKillTimeout

// register validates and stores a job (new or a new version), then runs an
// evaluation for it. sims holds the sim-only group settings, if any.
func (c *Cluster) register(spec *api.Job, sims map[string]GroupSimSpec, trigger string) (*eval, error) {
	if spec == nil {
		return nil, badRequest("Job must be specified")
	}
	if spec.ID == nil {
		return nil, badRequest("Job ID hasn't been provided")
	}
	if *spec.ID == "" {
		return nil, invalidJob("Missing job ID")
	}
	spec.Canonicalize()
	switch *spec.Type {
	case api.JobTypeService, api.JobTypeBatch, api.JobTypeSystem, api.JobTypeSysbatch:
	default:
		return nil, invalidJob(fmt.Sprintf("Invalid job type: %q", *spec.Type))
	}
	if len(spec.Datacenters) == 0 {
		spec.Datacenters = []string{"*"}
	}
	if spec.NodePool == nil || *spec.NodePool == "" {
		// Nomad's servers give a job its namespace's pool (TestFidelityListFields).
		spec.NodePool = new("default")
	}
	if *spec.Priority < 1 || *spec.Priority > 100 {
		return nil, invalidJob("job priority must be between [1, 100]")
	}
	if msg := invalidAffinity(spec.Affinities); msg != "" {
		return nil, invalidJob(msg)
	}
	if *spec.Type == api.JobTypeSystem && spec.Spreads != nil {
		return nil, invalidJob("System jobs may not have a spread block")
	}
	if msg := invalidSpread(spec.Spreads); msg != "" {
		return nil, invalidJob(msg)
	}
	if len(spec.TaskGroups) == 0 {
		return nil, invalidJob("Missing job task groups")
	}
	old := c.jobs[*spec.ID]
	if old != nil && old.purged {
		old = nil
	}
	var groups []*group
	seen := map[string]int{}
	for i, tg := range spec.TaskGroups {
		if tg.Name == nil || *tg.Name == "" {
			return nil, invalidJob(fmt.Sprintf("Job task group %d missing name", i+1))
		}
		if first, ok := seen[*tg.Name]; ok {
			return nil, invalidJob(fmt.Sprintf("Job task group %d redefines '%s' from group %d", i+1, *tg.Name, first+1))
		}
		seen[*tg.Name] = i
		sim, ok := sims[*tg.Name]
		if !ok && old != nil && !hasSimMeta(tg.Meta) {
			// Keep the load model of an existing group across versions.
			for _, og := range old.groups {
				if og.name == *tg.Name {
					g, err := c.buildGroup(spec, tg, GroupSimSpec{})
					if err != nil {
						return nil, err
					}
					g.load, g.replacement, g.runFor, g.idle = og.load, og.replacement, og.runFor, og.idle
					groups = append(groups, g)
					ok = true
				}
			}
			if ok {
				continue
			}
		}
		g, err := c.buildGroup(spec, tg, sim)
		if err != nil {
			return nil, err
		}
		if !ok && !hasSimMeta(tg.Meta) && idleTasks(tg.Tasks) {
			// A placeholder: sleeping tasks hold capacity and use none.
			g.idle, g.load = true, groupLoad{}
		}
		groups = append(groups, g)
	}
	sum := specSum(spec)
	j := old
	if j == nil {
		j = &job{id: *spec.ID, scaleEvts: map[string][]api.ScalingEvent{}}
		j.createIdx = c.index + 1
		c.jobs[j.id] = j
	} else if sum == j.specSum {
		// Nomad registers an unchanged job without a new version: only an
		// evaluation runs.
		ev := c.newEval(j, trigger, "")
		c.reconcile(j, ev)
		return ev, nil
	} else {
		j.version++
	}
	j.specSum = sum
	j.spec, j.typ, j.priority, j.groups = spec, *spec.Type, *spec.Priority, groups
	j.stopped = spec.Stop != nil && *spec.Stop
	j.submitTime = c.now
	idx := c.bump(TableJobs)
	j.modifyIdx, j.jobModIdx = idx, idx
	c.startDeployment(j)
	ev := c.newEval(j, trigger, "")
	c.log.Debug("job registered", logKeyJob, j.id, logKeyVersion, j.version, logKeyEval, ev.id)
	c.reconcile(j, ev)
	return ev, nil
}

// buildGroup derives the scheduler's view of a task group.
func (c *Cluster) buildGroup(spec *api.Job, tg *api.TaskGroup, sim GroupSimSpec) (*group, error) {
	g := &group{name: *tg.Name, count: *tg.Count, replacement: sim.Replacement, runFor: sim.RunFor}
	g.checks = nameChecks(tg)
	if g.count < 0 {
		return nil, invalidGroup(g.name, "Task group count can't be negative")
	}
	if len(tg.Tasks) == 0 {
		return nil, invalidGroup(g.name, "Missing tasks for task group")
	}
	if msg := invalidAffinity(tg.Affinities); msg != "" {
		return nil, invalidGroup(g.name, msg)
	}
	if *spec.Type == api.JobTypeSystem && tg.Spreads != nil {
		return nil, invalidGroup(g.name, "System jobs may not have a spread block")
	}
	if msg := invalidSpread(tg.Spreads); msg != "" {
		return nil, invalidGroup(g.name, msg)
	}
	disk := 300 // Nomad's default ephemeral disk
	if tg.EphemeralDisk != nil && tg.EphemeralDisk.SizeMB != nil {
		disk = *tg.EphemeralDisk.SizeMB
	}
	for _, t := range tg.Tasks {
		if lc := t.LogConfig; lc != nil && lc.MaxFiles != nil && lc.MaxFileSizeMB != nil {
			if logs := *lc.MaxFiles * *lc.MaxFileSizeMB; logs >= disk {
				return nil, invalidGroup(g.name, "Task "+t.Name+" validation failed: "+
					multiError(multiError(fmt.Sprintf("log storage (%d MB) must be less than requested disk capacity (%d MB)", logs, disk))))
			}
		}
	}
	for _, t := range tg.Tasks {
		g.tasks = append(g.tasks, t.Name)
		g.drivers = append(g.drivers, t.Driver)
		kill := defaultKillTimeout
		if t.KillTimeout != nil {
			kill = max(*t.KillTimeout, 0)
		}
		kill = min(kill, maxKillTimeout)
		g.kills, g.kill = append(g.kills, kill), max(g.kill, kill)
		if len(g.kills) == 1 {
			if rp := cmp.Or(t.RestartPolicy, tg.RestartPolicy); rp != nil {
				g.restart = *rp
			}
		}
		if t.Driver == mockDriver {
			m, err := parseMockTask(*spec.Type, tg, t)
			if err != nil {
				return nil, badRequest("1 error occurred:\n\t* Task group %s: %v\n\n", g.name, err)
			}
			g.mock = m
		}
		if t.Resources != nil {
			if t.Resources.CPU != nil {
				g.cpu += int64(*t.Resources.CPU)
			}
			if t.Resources.Cores != nil {
				g.cores += int64(*t.Resources.Cores)
			}
			if t.Resources.MemoryMB != nil {
				g.mem += int64(*t.Resources.MemoryMB)
			}
			if t.Resources.IOPS != nil {
				g.iops += int64(*t.Resources.IOPS)
			}
		}
		g.constraints = append(g.constraints, t.Constraints...)
		g.affinities = append(g.affinities, t.Affinities...)
	}
	g.jobCons = len(spec.Constraints)
	g.constraints = append(append(append([]*api.Constraint(nil), spec.Constraints...), tg.Constraints...), g.constraints...)
	g.affinities = append(append(append([]*api.Affinity(nil), spec.Affinities...), tg.Affinities...), g.affinities...)
	for _, con := range g.constraints {
		if !supportedOperand(con.Operand) {
			return nil, badRequest("1 error occurred:\n\t* Task group %s: constraint operand %q is not supported by the simulator\n\n", g.name, con.Operand)
		}
	}
	for _, a := range g.affinities {
		if !supportedOperand(a.Operand) || a.Operand == api.ConstraintDistinctHosts {
			return nil, badRequest("1 error occurred:\n\t* Task group %s: affinity operand %q is not supported by the simulator\n\n", g.name, a.Operand)
		}
	}
	for _, sp := range spec.Spreads {
		g.spreads = append(g.spreads, spreadBlock{attr: sp.Attribute, weight: int(*sp.Weight), targets: derefTargets(sp.SpreadTarget), job: true})
	}
	for _, sp := range tg.Spreads {
		g.spreads = append(g.spreads, spreadBlock{attr: sp.Attribute, weight: int(*sp.Weight), targets: derefTargets(sp.SpreadTarget)})
	}
	for _, sp := range g.spreads {
		if !knownTarget(sp.attr) {
			// Every simulated node would lack it and score -1, where
			// real nodes have it and spread.
			return nil, badRequest("1 error occurred:\n\t* Task group %s: spread attribute %q is not supported by the simulator\n\n", g.name, sp.attr)
		}
	}
	if (g.cpu <= 0 && g.cores <= 0) || g.mem <= 0 {
		return nil, badRequest("1 error occurred:\n\t* Task group %s: resources cpu and memory must be positive\n\n", g.name)
	}
	if tg.ReschedulePolicy != nil {
		g.resched = *tg.ReschedulePolicy
	}
	if tg.Disconnect != nil && *spec.Type == api.JobTypeSysbatch {
		// Not measured: how Nomad keeps a sysbatch allocation on a
		// disconnected node.
		return nil, badRequest("1 error occurred:\n\t* Task group %s: a disconnect block in a sysbatch job is not supported by the simulator\n\n", g.name)
	}
	if d := tg.Disconnect; d != nil {
		// Nomad's DisconnectStrategy.Validate.
		var errs []string
		if d.StopOnClientAfter != nil {
			if *d.StopOnClientAfter < 0 {
				errs = append(errs, "stop_after cannot be a negative duration")
			}
			if *spec.Type != api.JobTypeService && *spec.Type != api.JobTypeBatch {
				errs = append(errs, "stop_after can only be used with service or batch job types")
			}
		}
		if d.LostAfter != nil && *d.LostAfter < 0 {
			errs = append(errs, "lost_after cannot be a negative duration")
		}
		if d.StopOnClientAfter != nil && d.LostAfter != nil && *d.LostAfter != 0 {
			errs = append(errs, "Disconnect cannot be configured with both lost_after and stop_after")
		}
		if len(errs) > 0 {
			return nil, invalidJob("Task group " + g.name + " validation failed: " + multiError(errs...))
		}
		if d.LostAfter != nil {
			g.lostAfter = *d.LostAfter
		}
		if d.StopOnClientAfter != nil && *d.StopOnClientAfter > 0 {
			g.stopAfter = *d.StopOnClientAfter
			kill := killTimeout
			for _, task := range tg.Tasks {
				if task.KillTimeout != nil {
					kill = max(kill, *task.KillTimeout)
				}
			}
			g.stopWait = g.stopAfter + kill
		}
		g.noReplace = d.Replace != nil && !*d.Replace
		g.keepReplacement = d.Reconcile != nil && *d.Reconcile == api.ReconcileOptionKeepReplacement
	}
	g.migrate = *api.DefaultMigrateStrategy()
	if tg.Migrate != nil && tg.Migrate.MaxParallel != nil {
		g.migrate = *tg.Migrate
	}
	errs := invalidUpdate(tg.Update)
	if *spec.Type == api.JobTypeBatch || *spec.Type == api.JobTypeSysbatch {
		errs = nil
	}
	if *spec.Type == api.JobTypeService {
		errs = append(errs, invalidMigrate(tg.Migrate)...)
	}
	if len(errs) > 0 {
		return nil, invalidJob("Task group " + g.name + " validation failed: " + multiError(errs...))
	}
	if tg.Update != nil && tg.Update.MaxParallel != nil && *tg.Update.MaxParallel > 0 && *spec.Type == api.JobTypeService {
		g.update = tg.Update
	}
	if g.replacement == "" {
		g.replacement = metaString(tg.Meta, "sim.replacement", BreakBeforeMake)
	}
	if g.runFor == 0 {
		if d, err := time.ParseDuration(metaString(tg.Meta, "sim.run_for", "0s")); err == nil {
			g.runFor = d
		}
	}
	load, err := c.buildLoad(tg.Meta, sim)
	if err != nil {
		return nil, badRequest("1 error occurred:\n\t* Task group %s: %v\n\n", g.name, err)
	}
	g.load = load
	h := sha256.New()
	_ = json.NewEncoder(h).Encode([]any{g.cpu, g.cores, g.mem, g.iops, g.constraints, g.tasks, destructiveTaskSpecs(spec, tg)})
	g.specHash = hex.EncodeToString(h.Sum(nil)[:8])
	return g, nil
}

// taskSpec is what of a task Nomad's scheduler updates destructively when
// it changes (tasksUpdated), besides its resources: driver, user, config,
// env and meta (the job's, the group's and the task's own combined).
type taskSpec struct {
	Driver, User string
	Config       map[string]any
	Env, Meta    map[string]string
}

func destructiveTaskSpecs(spec *api.Job, tg *api.TaskGroup) []taskSpec {
	var out []taskSpec
	for _, t := range tg.Tasks {
		ts := taskSpec{Driver: t.Driver, User: t.User}
		if len(t.Config) > 0 {
			ts.Config = t.Config
		}
		if len(t.Env) > 0 {
			ts.Env = t.Env
		}
		for _, m := range []map[string]string{spec.Meta, tg.Meta, t.Meta} {
			for k, v := range m {
				if ts.Meta == nil {
					ts.Meta = map[string]string{}
				}
				ts.Meta[k] = v
			}
		}
		out = append(out, ts)
	}
	return out
}

// multiError formats messages as Nomad's validation errors do (a
// go-multierror list).
func multiError(msgs ...string) string {
	if len(msgs) == 1 {
		return "1 error occurred:\n\t* " + msgs[0] + "\n\n"
	}
	return fmt.Sprintf("%d errors occurred:\n\t* %s\n\n", len(msgs), strings.Join(msgs, "\n\t* "))
}

// invalidUpdate is Nomad's validation of a group's (canonical) update
// block: its deadlines and their order.
func invalidUpdate(u *api.UpdateStrategy) []string {
	if u == nil || u.MinHealthyTime == nil || u.HealthyDeadline == nil || u.ProgressDeadline == nil {
		return nil
	}
	mh, hd, pd := *u.MinHealthyTime, *u.HealthyDeadline, *u.ProgressDeadline
	var errs []string
	if mh < 0 {
		errs = append(errs, fmt.Sprintf("Minimum healthy time may not be less than zero: %v", mh))
	}
	if hd <= 0 {
		errs = append(errs, fmt.Sprintf("Healthy deadline must be greater than zero: %v", hd))
	}
	if pd < 0 {
		errs = append(errs, fmt.Sprintf("Progress deadline must be zero or greater: %v", pd))
	}
	if mh >= hd {
		errs = append(errs, fmt.Sprintf("Minimum healthy time must be less than healthy deadline: %v > %v", mh, hd))
	}
	if pd != 0 && hd >= pd {
		errs = append(errs, fmt.Sprintf("Healthy deadline must be less than progress deadline: %v > %v", hd, pd))
	}
	return errs
}

// invalidMigrate is Nomad's validation of a service group's migrate block
// (canonical: 10 s and 5 m where unset): min_healthy_time no longer than
// healthy_deadline (equal is accepted).
func invalidMigrate(m *api.MigrateStrategy) []string {
	if m == nil {
		return nil
	}
	mh, hd := 10*time.Second, 5*time.Minute
	if m.MinHealthyTime != nil {
		mh = *m.MinHealthyTime
	}
	if m.HealthyDeadline != nil {
		hd = *m.HealthyDeadline
	}
	if mh > hd {
		return []string{"MinHealthyTime must be less than HealthyDeadline"}
	}
	return nil
}

// invalidAffinity is Nomad's validation of a job's or group's affinities:
// the first one with a known operator missing, a zero weight or a weight
// outside [-100, 100], or "" when all are valid.
func invalidAffinity(affs []*api.Affinity) string {
	for i, a := range affs {
		var errs []string
		switch a.Operand {
		case "=", "==", "is", "!=", "not", "<", "<=", ">", ">=", api.ConstraintRegex,
			api.ConstraintSetContains, api.ConstraintSetContainsAll, api.ConstraintSetContainsAny,
			api.ConstraintVersion, api.ConstraintSemver:
		default:
			errs = append(errs, fmt.Sprintf("Unknown affinity operator %q", a.Operand))
		}
		if a.Weight != nil && *a.Weight == 0 {
			errs = append(errs, "Affinity weight cannot be zero")
		}
		if a.Weight != nil && (*a.Weight > 100 || *a.Weight < -100) {
			errs = append(errs, "Affinity weight must be within the range [-100,100]")
		}
		if len(errs) > 0 {
			return fmt.Sprintf("Affinity %d validation failed: %s", i+1, multiError(errs...))
		}
	}
	return ""
}

// invalidSpread is Nomad's validation of a job's or group's spread blocks:
// the first one with its attribute missing, a weight outside (0, 100], a
// target value twice, or target percentages over 100, or "" when all are
// valid.
func invalidSpread(spreads []*api.Spread) string {
	for i, sp := range spreads {
		var errs []string
		if sp.Attribute == "" {
			errs = append(errs, "Missing spread attribute")
		}
		if sp.Weight != nil && (*sp.Weight <= 0 || *sp.Weight > 100) {
			errs = append(errs, "Spread block must have a positive weight from 0 to 100")
		}
		seen := map[string]bool{}
		sum := 0
		for _, t := range sp.SpreadTarget {
			if seen[t.Value] {
				errs = append(errs, fmt.Sprintf("Spread target value %q already defined", t.Value))
			}
			seen[t.Value] = true
			if t.Percent > 100 {
				errs = append(errs, fmt.Sprintf("Spread target percentage for value %q must be between 0 and 100", t.Value))
			}
			sum += int(t.Percent)
		}
		if sum > 100 {
			errs = append(errs, fmt.Sprintf("Sum of spread target percentages must not be greater than 100%%; got %d%%", sum))
		}
		if len(errs) > 0 {
			return fmt.Sprintf("Spread %d validation failed: %s", i+1, multiError(errs...))
		}
	}
	return ""
}

func derefTargets(ts []*api.SpreadTarget) []api.SpreadTarget {
	out := make([]api.SpreadTarget, 0, len(ts))
	for _, t := range ts {
		out = append(out, *t)
	}
	return out
}

// invalidJob is a job Nomad's servers refuse when they validate it: a 500
// with the validation errors.
func invalidJob(msg string) error { return rpcError("%s", multiError(msg)) }

// invalidGroup is a task group that fails validation.
func invalidGroup(group, msg string) error {
	return invalidJob("Task group " + group + " validation failed: " + multiError(msg))
}

// nameChecks gives every check of the group's services (the group's and
// its tasks') that has no name the one Nomad's servers give it,
// `service: "NAME" check` (TestFidelityServiceChecks), and reports whether
// there is any check.
func nameChecks(tg *api.TaskGroup) bool {
	any := false
	name := func(services []*api.Service) {
		for _, s := range services {
			if s == nil {
				continue
			}
			for i := range s.Checks {
				any = true
				if s.Checks[i].Name == "" {
					s.Checks[i].Name = fmt.Sprintf("service: %q check", s.Name)
				}
			}
		}
	}
	name(tg.Services)
	for _, t := range tg.Tasks {
		if t != nil {
			name(t.Services)
		}
	}
	return any
}

// idleTasks reports whether every task only holds capacity: a command that
// sleeps (exec, raw_exec), a pause container image or Nomad's mock driver.
func idleTasks(tasks []*api.Task) bool {
	if len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		switch t.Driver {
		case "exec", "raw_exec":
			cmd, _ := t.Config["command"].(string)
			if path.Base(cmd) != "sleep" {
				return false
			}
		case "docker", "podman", "containerd-driver":
			img, _ := t.Config["image"].(string)
			if !strings.Contains(path.Base(img), "pause") {
				return false
			}
		case mockDriver:
			// Nomad's mock driver runs nothing: it only holds capacity.
		default:
			return false
		}
	}
	return true
}

// hasSimMeta reports whether group meta binds the sim's load model.
func hasSimMeta(meta map[string]string) bool {
	for k := range meta {
		if strings.HasPrefix(k, "sim.") {
			return true
		}
	}
	return false
}

// specSum fingerprints what an operator submitted (the canonical job
// without the fields the server sets), to tell a new version from a
// re-registration of the same job.
func specSum(spec *api.Job) string {
	cp := *spec
	cp.Status, cp.StatusDescription, cp.Stable, cp.Version = nil, nil, nil, nil
	cp.CreateIndex, cp.ModifyIndex, cp.JobModifyIndex, cp.SubmitTime = nil, nil, nil, nil
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(&cp); err != nil {
		panic("sim: encode job: " + err.Error())
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func metaString(meta map[string]string, key, def string) string {
	if v, ok := meta[key]; ok && v != "" {
		return v
	}
	return def
}

// buildLoad binds a group's demand: scenario settings first, then the
// group meta keys sim.cpu_trace, sim.cpu_scale, sim.cpu_offset (and memory,
// iops) and sim.iops_read_share, else the default load.
func (c *Cluster) buildLoad(meta map[string]string, sim GroupSimSpec) (groupLoad, error) {
	l := defaultLoad
	l.jitter = sim.Jitter
	switch {
	case sim.ReadShare != nil:
		l.reads = *sim.ReadShare
	case metaString(meta, "sim.iops_read_share", "") != "":
		f, err := strconv.ParseFloat(meta["sim.iops_read_share"], 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return l, fmt.Errorf("meta sim.iops_read_share: %q is not a number between 0 and 1", meta["sim.iops_read_share"])
		}
		l.reads = f
	}
	if d, err := time.ParseDuration(metaString(meta, "sim.jitter", "0s")); err == nil && d > 0 {
		l.jitter = d
	}
	for _, r := range []struct {
		key  string
		spec LoadSpec
		dst  *binding
	}{{"cpu", sim.CPU, &l.cpu}, {"memory", sim.Memory, &l.mem}, {"iops", sim.IOPS, &l.iops}} {
		spec := r.spec
		if !spec.Set {
			if tr := metaString(meta, "sim."+r.key+"_trace", ""); tr != "" {
				spec = LoadSpec{Trace: tr, Scale: 1, Set: true}
			}
			if s := metaString(meta, "sim."+r.key+"_scale", ""); s != "" {
				f, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return l, fmt.Errorf("meta sim.%s_scale: %w", r.key, err)
				}
				spec.Scale, spec.Set = f, true
			}
			if s := metaString(meta, "sim."+r.key+"_offset", ""); s != "" {
				d, err := time.ParseDuration(s)
				if err != nil {
					return l, fmt.Errorf("meta sim.%s_offset: %w", r.key, err)
				}
				spec.Offset = d
			}
		}
		if !spec.Set {
			continue
		}
		b := binding{scale: spec.Scale, offset: spec.Offset}
		if spec.Trace != "" {
			t, err := c.loadTrace(spec.Trace)
			if err != nil {
				return l, err
			}
			b.tr = t
		}
		*r.dst = b
	}
	return l, nil
}

// newEval records a completed evaluation for job j.
func (c *Cluster) newEval(j *job, trigger, nodeID string) *eval {
	return c.newEvalAt(j, trigger, nodeID, c.bump(TableEvals))
}

// newNodeEvals creates a node-update evaluation of n for each of jobs,
// at node index nodeIdx, all at one index: Nomad's server commits them
// together (Node.createNodeEvals).
func (c *Cluster) newNodeEvals(jobs []*job, n *node, nodeIdx uint64) []*eval {
	if len(jobs) == 0 {
		return nil
	}
	idx := c.bump(TableEvals)
	evals := make([]*eval, len(jobs))
	for i, j := range jobs {
		evals[i] = c.newEvalAt(j, triggerNodeUpdate, n.id, idx)
		evals[i].nodeModIdx = nodeIdx
	}
	return evals
}

// createNodeEvals evaluates, as Nomad's server does (Node.createNodeEvals:
// a node evaluated, turned eligible, back up or registered), each job it
// evaluates for n (nodeEvalJobs) with a node-update evaluation of n at
// node index nodeIdx, all created at one index, then schedules them. It
// returns the evaluations' IDs and the index they were created at. That
// index is 0 only for a node with no allocation Nomad still holds and no
// system job to evaluate: one whose allocations are all done commits its
// evaluations, none, all the same, at an index of their own that moves
// no table (TestFidelityNodeEvaluate).
func (c *Cluster) createNodeEvals(n *node, nodeIdx uint64) ([]string, uint64) {
	jobs := c.nodeEvalJobs(n)
	if len(jobs) == 0 {
		for _, a := range n.history {
			if c.allocByID[a.id] == a {
				c.index++
				return nil, c.index
			}
		}
		return nil, 0
	}
	evals := c.newNodeEvals(jobs, n, nodeIdx)
	var ids []string
	var idx uint64
	for _, ev := range evals {
		ids = append(ids, ev.id)
		idx = ev.createIdx
	}
	for i, j := range jobs {
		c.reconcile(j, evals[i])
	}
	return ids, idx
}

// newEvalAt is newEval at index idx, already taken.
func (c *Cluster) newEvalAt(j *job, trigger, nodeID string, idx uint64) *eval {
	ev := &eval{
		id: newID(c.rng), priority: j.priority, typ: j.typ, triggeredBy: trigger,
		jobID: j.id, jobModIdx: j.jobModIdx, nodeID: nodeID,
		status: api.EvalStatusComplete, created: c.now, modified: c.now,
	}
	if nodeID != "" {
		if n := c.nodeByID[nodeID]; n != nil {
			ev.nodeModIdx = n.modifyIdx
		}
	}
	ev.deployID = evalDeployment(j)
	ev.createIdx, ev.modifyIdx = idx, idx
	c.evals = append(c.evals, ev)
	c.evalByID[ev.id] = ev
	return ev
}

// evalDeployment is the DeploymentID Nomad's scheduler gives an
// evaluation of j: its latest deployment, whatever its status (none for
// batch jobs).
func evalDeployment(j *job) string {
	if d := latestDeployment(j); d != nil && j.typ != api.JobTypeBatch {
		return d.id
	}
	return ""
}

// lazyEval returns *ev, creating it on first use; reconciliations that
// change nothing leave no evaluation behind.
func (c *Cluster) lazyEval(j *job, ev **eval, trigger string) *eval {
	if *ev == nil {
		*ev = c.newEval(j, trigger, "")
	}
	return *ev
}

// groupAllocs returns the allocations of group g that the reconciler
// manages: desired to run and not finished.
func groupAllocs(j *job, g *group) (live []*alloc, done int) {
	for _, a := range j.allocs {
		if a.grp.name != g.name || a.desired != desiredRun {
			continue
		}
		if a.client == allocComplete && j.typ == api.JobTypeBatch {
			done++
			continue
		}
		if a.clientTerminal() || (a.client == allocUnknown && (a.next != "" || a.replaceDue)) {
			// An unknown allocation replaced, or due to be, counts no
			// more: its replacement does.
			continue
		}
		live = append(live, a)
	}
	return live, done
}

// reconcile brings a job's allocations to its desired state: stops what must
// stop, migrates what is marked to migrate, rolls destructive updates and
// places what is missing. Placements that fail go to a blocked evaluation.
func (c *Cluster) reconcile(j *job, ev *eval) {
	trigger := triggerQueued
	if ev != nil {
		trigger = ev.triggeredBy
	}
	c.reconcileWith(j, ev, trigger)
}

// reconcileAs reconciles without an evaluation up front; one with the
// given trigger is recorded if anything changes.
func (c *Cluster) reconcileAs(j *job, trigger string) {
	c.reconcileWith(j, nil, trigger)
}

func (c *Cluster) reconcileWith(j *job, ev *eval, trigger string) {
	evp := &ev
	failed := map[string]*api.AllocationMetric{}
	short := 0 // placements that did not fit
	// Groups removed from the job: stop their allocations.
	keep := map[string]bool{}
	for _, g := range j.groups {
		keep[g.name] = true
	}
	for _, a := range j.allocs {
		if !keep[a.grp.name] && !a.terminal() {
			c.stopAlloc(a, c.lazyEval(j, evp, trigger), "alloc not needed due to job update")
		}
	}
	reconcile := c.reconcileGroup
	switch j.typ {
	case api.JobTypeSystem:
		reconcile = c.reconcileSystem
	case api.JobTypeSysbatch:
		reconcile = c.reconcileSysbatch
	}
	spreads := newSpreadState()
	if j.typ != api.JobTypeSystem && j.typ != api.JobTypeSysbatch && !j.stopped {
		for _, g := range j.groups {
			checkInPlaceSpreads(j, g, spreads)
		}
	}
	// shown is the evaluation's QueuedAllocations as Nomad's scheduler
	// sets them: each group it tried to place in, with what it could not
	// place; every group at 0 when it placed nothing (none for a purged
	// job).
	shown := map[string]int{}
	for _, g := range j.groups {
		tries := c.placeTries
		m, q := reconcile(j, g, evp, trigger, spreads)
		if c.placeTries > tries || q > 0 {
			shown[g.name] = q
		}
		if q > 0 {
			// A group whose placements failed only in Nomad's plan
			// applier has no failed metric.
			if m != nil {
				failed[g.name] = m
			}
			short += q
		}
	}
	if len(shown) == 0 && !j.purged {
		for _, g := range j.groups {
			shown[g.name] = 0
		}
	}
	if ev := *evp; ev != nil {
		for g, m := range ev.filtered {
			if failed[g] == nil {
				failed[g] = m
			}
		}
		ev.filtered = nil
	}
	for _, a := range j.allocs {
		a.lostNow = false
	}
	c.updateJobStatus(j)
	if short > 0 {
		ev = c.lazyEval(j, evp, trigger)
		if ev.status == api.EvalStatusBlocked {
			// Run again and still short: Nomad's scheduler blocks it
			// again as it was, writing nothing (Eval.Reblock): its
			// ModifyIndex and failed metric stay those it was created
			// with (TestFidelityReblockedEvalKeepsItsMetric). What it
			// still queues is the job summary's.
			if !maps.Equal(ev.queued, shown) {
				ev.queued = shown
				c.summaryChanged()
			}
			return
		}
		ev.failed, ev.queued = failed, shown
		c.block(j, ev)
		return
	}
	if c.blockedEval(j) != nil {
		c.unblock(j, c.lazyEval(j, evp, trigger))
	}
	if ev = *evp; ev != nil {
		ev.queued = shown
		if len(failed) > 0 {
			ev.failed = failed
		}
	}
}

// checkInPlaceSpreads scores the spread of g on the node of each of its
// allocations an in-place update will move to the job's new version, as
// Nomad's reconciler does when it checks the update (it selects the
// allocation's own node for it) before anything is placed: g's spread
// weights join the evaluation's sum, and the lowest target boost may drop.
func checkInPlaceSpreads(j *job, g *group, spreads *spreadState) {
	if len(g.spreads) == 0 || g.count == 0 {
		return
	}
	var s *spreadScorer
	live, _ := groupAllocs(j, g)
	for _, a := range live {
		if a.migrate || a.specHash != g.specHash || (a.jobVersion == j.version && a.grp == g) {
			continue
		}
		if s == nil {
			s = newSpreadScorer(j, g, spreads)
			s.count()
		}
		s.scoreInPlace(a)
	}
}

// reconcileGroup reconciles one group of j; spreads is the evaluation's
// spread state, shared by the job's groups as Nomad's scheduler shares it.
// (Nomad places the groups in random order, after checking every group's
// in-place updates; the simulator places them in the job's order.)
func (c *Cluster) reconcileGroup(j *job, g *group, evp **eval, trigger string, spreads *spreadState) (*api.AllocationMetric, int) {
	c.markDisconnected(j, g)
	live, done := groupAllocs(j, g)
	if j.stopped {
		for _, a := range live {
			c.stopAlloc(a, c.lazyEval(j, evp, trigger), "alloc not needed due to job update")
		}
		return nil, 0
	}
	var p *placer
	placer := func() *placer {
		if p == nil {
			p = c.newPlacer(j, g, spreads)
		}
		return p
	}
	// Migrations requested by drains and stop requests: Nomad's plan stops
	// every allocation to migrate before it places anything, so each
	// replacement finds the room all of them left. Each counts as one of
	// the group's allocations, and its replacement is placed last (moveLast).
	var migrating []*alloc
	for _, a := range live {
		// An unknown allocation marked to migrate waits for its
		// reschedule time, or for its node to come back.
		if a.migrate && a.client != allocUnknown {
			c.stopForMigration(a, c.lazyEval(j, evp, trigger))
			migrating = append(migrating, a)
		}
	}
	failedN := 0
	// moveLast places the migrations' replacements: Nomad's reconciler
	// lists them after the destructive updates and the missing
	// placements, which take the room first (TestFidelityMigrationPlacedAfterMissing).
	// One that does not fit is queued.
	moveLast := func(moving []*alloc) {
		for _, a := range moving {
			r := c.place(j, g, *evp, placer(), a.index, a)
			if r == nil {
				failedN++
			}
			c.startMigration(a, r, *evp)
		}
	}
	live, _ = groupAllocs(j, g)
	// Destructive updates, max_parallel at a time when a deployment runs.
	var outdated []*alloc
	for _, a := range live {
		switch {
		case a.specHash != g.specHash:
			outdated = append(outdated, a)
		case a.jobVersion != j.version || a.grp != g:
			c.updateInPlace(j, g, a)
		}
	}
	// A failed allocation Nomad does not reschedule now counts against
	// the group's count like a live one, so a destructive change updates
	// it too: it is replaced (not as a reschedule).
	for _, a := range j.allocs {
		if a.grp.name == g.name && a.client == allocFailed && a.desired == desiredRun && a.next == "" && a.specHash != g.specHash {
			if now, _ := c.rescheduleNow(j, a, *evp); !now {
				outdated = append(outdated, a)
			}
		}
	}
	// Nomad's reconciler makes no fresh placement and no destructive
	// update for a job version whose deployment failed
	// (deploymentPlaceReady): it replaces lost allocations and reschedules
	// failed ones that are not of that deployment only.
	failedDeploy := false
	if d := currentDeployment(j); d != nil && d.status == api.DeploymentStatusFailed {
		failedDeploy = true
	}
	allowed := len(outdated)
	if g.update != nil && len(outdated) > 0 {
		// The placements this evaluation makes take their slots first.
		place, _, _ := c.missingPlacements(j, g, withMoving(live, migrating), max(0, g.count-done), *evp, failedDeploy)
		allowed = max(0, c.rollingBudget(j, g, *evp)-len(place))
	}
	if failedDeploy {
		allowed = 0
	}
	for i, a := range outdated {
		if i >= allowed {
			break
		}
		ev := c.lazyEval(j, evp, trigger)
		if na := c.replace(j, g, ev, placer(), a); na != nil {
			na.resched = nil // an update, not a reschedule
		} else {
			failedN++ // queued; the old allocation runs on
		}
	}
	want := max(0, g.count-done)
	live, _ = groupAllocs(j, g)
	if all := withMoving(live, migrating); len(all) > want {
		// Stop allocations migrating first, as Nomad's reconciler does
		// (one so stopped is not moved: it is taken out of the
		// migrations and stopped as not needed), then the highest
		// indexes, the newest first among equals.
		moving := map[*alloc]bool{}
		for _, a := range migrating {
			moving[a] = true
		}
		sort.SliceStable(all, func(i, k int) bool {
			if moving[all[i]] != moving[all[k]] {
				return moving[all[i]]
			}
			if all[i].index != all[k].index {
				return all[i].index > all[k].index
			}
			return all[i].createIdx > all[k].createIdx
		})
		for _, a := range all[:len(all)-want] {
			if moving[a] {
				delete(moving, a)
				a.desired = desiredRun // stopped again, as not needed
			}
			c.stopAlloc(a, c.lazyEval(j, evp, trigger), "alloc not needed due to job update")
		}
		var kept []*alloc
		for _, a := range migrating {
			if moving[a] {
				kept = append(kept, a)
			}
		}
		moveLast(kept)
		if failedN == 0 {
			return nil, 0
		}
		return c.failedMetric(p), failedN
	}
	place, prev, later := c.missingPlacements(j, g, withMoving(live, migrating), want, *evp, failedDeploy)
	if *evp != nil && (*evp).stopWaits[g.name] {
		place = nil // a lost allocation waits for stop_on_client_after
	}
	for _, idx := range place {
		ev := c.lazyEval(j, evp, trigger)
		if c.place(j, g, ev, placer(), idx, prev[idx]) == nil {
			failedN++
		}
	}
	moveLast(migrating)
	c.followUp(j, later, evp, trigger)
	if p != nil && failedN > 0 && failedN == p.conflicts {
		return nil, failedN
	}
	return c.failedMetric(p), failedN
}

// withMoving is live with the allocations migrating, each of which counts
// as one of the group's until its replacement is placed.
func withMoving(live, migrating []*alloc) []*alloc {
	if len(migrating) == 0 {
		return live
	}
	return append(slices.Clip(live), migrating...)
}

// missingPlacements is what Nomad's reconciler places for g besides
// destructive updates, given its live allocations and the count it wants:
// the indexes to place (each linked to prev[idx], if any), and the failed
// allocations to reschedule later (later). A failed allocation it does not
// reschedule now counts against the count and nothing is placed for it;
// after the version's deployment failed only lost allocations are
// replaced (and failed ones not of that deployment rescheduled).
func (c *Cluster) missingPlacements(j *job, g *group, live []*alloc, want int, ev *eval, failedDeploy bool) (place []int, prev map[int]*alloc, later []*alloc) {
	missing := want - len(live)
	if missing <= 0 {
		return nil, nil, nil
	}
	used := map[int]bool{}
	for _, a := range live {
		used[a.index] = true
	}
	prev = previousByIndex(j, g)
	for idx := 0; missing > 0; idx++ {
		if used[idx] {
			continue
		}
		missing--
		pa := prev[idx]
		if failedDeploy && (pa == nil || (pa.client != allocLost && pa.client != allocFailed)) {
			continue
		}
		if pa != nil && pa.client == allocFailed {
			now, wait := c.rescheduleNow(j, pa, ev)
			if !now {
				if wait {
					later = append(later, pa)
				}
				continue
			}
		}
		place = append(place, idx)
	}
	return place, prev, later
}

// rollingBudget is how many allocations of g Nomad's reconciler replaces
// destructively (with its placements) in one evaluation
// (computeUnderProvisionedBy): max_parallel, less the allocations of the
// version's current deployment not healthy yet — those desired to run and
// not finished, and failed ones not rescheduled now — and none while one
// of them is unhealthy or the deployment has failed.
func (c *Cluster) rollingBudget(j *job, g *group, ev *eval) int {
	d := currentDeployment(j)
	if d == nil {
		return *g.update.MaxParallel
	}
	if d.status == api.DeploymentStatusFailed {
		return 0
	}
	n := *g.update.MaxParallel
	for _, a := range j.allocs {
		if a.grp.name != g.name || a.deployID != d.id || a.desired != desiredRun {
			continue
		}
		if a.clientTerminal() {
			if a.client != allocFailed || a.next != "" {
				continue
			}
			if now, _ := c.rescheduleNow(j, a, ev); now {
				continue
			}
		}
		switch {
		case a.healthy == nil:
			n--
		case !*a.healthy:
			return 0
		}
	}
	return max(0, n)
}

// updateInPlace moves a to the job's current version without replacing it.
// When a deployment tracks that version, a joins it, healthy at once if it
// has already run for min_healthy_time, as Nomad keeps the health of
// allocations updated in place. (An allocation of a group the deployment
// does not track takes its ID too, as in Nomad, and loses the health it
// had, as Nomad's client clears health when the deployment ID changes.)
// One updated with no deployment active keeps its health.
func (c *Cluster) updateInPlace(j *job, g *group, a *alloc) {
	a.jobVersion, a.grp = j.version, g
	if a.deployID != "" {
		a.deployID, a.healthy = "", nil
	}
	if d := latestDeployment(j); d != nil && d.active() && d.jobVersion == j.version {
		a.deployID, a.healthy = d.id, nil
		if st := d.groups[a.grp.name]; st != nil && a.grp.update != nil {
			st.PlacedAllocs++
			if a.client == allocRunning && !manualHealth(a.grp.update) && !c.now.Before(a.runningSince.Add(*a.grp.update.MinHealthyTime)) {
				a.healthy, a.healthAt = new(true), c.now
				st.HealthyAllocs++
			}
			d.modifyIdx = c.bump(TableDeployments)
		}
	}
	c.touchByServer(a)
}

func (c *Cluster) failedMetric(p *placer) *api.AllocationMetric {
	if p == nil {
		return &api.AllocationMetric{}
	}
	if p.failed != nil {
		return p.failed
	}
	return p.metric
}

// previousByIndex maps each allocation index of g to the newest terminal
// allocation (lost, failed, migrated) that has no replacement yet, so a
// new allocation of that index is linked to it. A preempted allocation is
// not linked: Nomad's reconciler ignores evicted allocations and places
// the missing count afresh.
func previousByIndex(j *job, g *group) map[int]*alloc {
	out := map[int]*alloc{}
	for i := len(j.allocs) - 1; i >= 0; i-- {
		a := j.allocs[i]
		due := a.client == allocUnknown && a.replaceDue
		if a.grp.name != g.name || a.next != "" || (a.desired == desiredRun && a.client != allocFailed && !due) || a.desired == desiredEvict {
			continue
		}
		if !a.migrate && a.client != allocLost && a.client != allocFailed && !due {
			continue // stopped on purpose (scaled down, updated): nothing to replace
		}
		if a.client == allocLost && !a.lostNow {
			// Lost by an earlier evaluation (one that could not place its
			// replacement, or that waited for stop_on_client_after):
			// replaced afresh, as a missing allocation
			// (TestFidelityLostReplacedWhenRoomFreesElsewhere).
			continue
		}
		if _, ok := out[a.index]; !ok {
			out[a.index] = a
		}
	}
	return out
}

// reconcileSystem keeps one allocation of the group on every feasible node.
func (c *Cluster) reconcileSystem(j *job, g *group, evp **eval, trigger string, _ *spreadState) (*api.AllocationMetric, int) {
	live, _ := groupAllocs(j, g)
	on := map[*node]*alloc{}
	for _, a := range live {
		if j.stopped || on[a.node] != nil {
			c.stopAlloc(a, c.lazyEval(j, evp, trigger), "alloc not needed due to job update")
			continue
		}
		on[a.node] = a
	}
	if j.stopped {
		return nil, 0
	}
	p := c.newPlacer(j, g, nil) // system jobs have no spread blocks
	sort.Slice(p.cand, func(i, k int) bool { return p.cand[i].idx < p.cand[k].idx })
	var place []*node
	for _, n := range p.cand {
		if on[n] == nil {
			place = append(place, n)
		}
	}
	c.allFiltered(g, p, place, len(on) > 0, func() *eval { return c.lazyEval(j, evp, trigger) })
	return c.placeOnNodes(j, g, p, place, nil, func() *eval { return c.lazyEval(j, evp, trigger) })
}

// place finds a node for one allocation of g and creates it; nil when none
// fits even with preemption.
func (c *Cluster) place(j *job, g *group, ev *eval, p *placer, index int, prev *alloc) *alloc {
	c.placeTries++
	n, set := c.choose(ev, p, index, prev)
	if n == nil {
		return nil
	}
	return c.newAlloc(j, g, n, ev, index, prev, set)
}

// replace is a destructive update of a: Nomad's plan stops a before it
// places the new allocation, so a's own capacity counts as free for it;
// when no node fits even so, the stop is taken back and a runs on,
// untouched. It returns the new allocation, nil when none was placed.
func (c *Cluster) replace(j *job, g *group, ev *eval, p *placer, a *alloc) *alloc {
	c.placeTries++
	n := a.node
	cpu, mem, iops := a.reqCPU, a.grp.mem, a.grp.iops
	if !a.holding {
		cpu, mem, iops = 0, 0, 0
	}
	// Stopped for the choice alone (nothing recorded): its capacity,
	// distinct_hosts and the preemptor all see it gone.
	a.desired = desiredStop
	n.resCPU, n.resMem, n.resIOPS = n.resCPU-cpu, n.resMem-mem, n.resIOPS-iops
	to, set := c.choose(ev, p, a.index, a)
	a.desired = desiredRun
	n.resCPU, n.resMem, n.resIOPS = n.resCPU+cpu, n.resMem+mem, n.resIOPS+iops
	if to == nil {
		return nil
	}
	c.stopAlloc(a, ev, "alloc is being updated due to job update")
	return c.newAlloc(j, g, to, ev, a.index, a, set)
}

// choose finds the node for one placement of p's group, with the
// allocations to preempt there; nil when none fits even with preemption.
// Nomad's scheduler tries no placement of a group after one found no node
// in the same evaluation: each later one counts as coalesced into it.
func (c *Cluster) choose(ev *eval, p *placer, index int, prev *alloc) (*node, []*alloc) {
	if p.failed != nil {
		p.fail(index)
		return nil, nil
	}
	p.startPlacement()
	p.penalty = penaltyNodes(prev)
	if n := p.next(); n != nil {
		return n, nil
	}
	if n, set, roomy := p.preempt(); n != nil {
		if !roomy {
			// Nomad's plan applier rejects the placement; the evaluation
			// retries, the same way, and fails.
			ev.conflict = true
			p.conflicts++
			return nil, nil
		}
		return n, set
	}
	p.fail(index)
	return nil, nil
}

// penaltyNodes is Nomad's set of nodes a replacement of prev is scored
// away from (-1 averaged in): prev's node when prev failed, and the node
// of every earlier attempt prev's reschedule tracker names.
func penaltyNodes(prev *alloc) map[*node]bool {
	if prev == nil || (prev.client != allocFailed && len(prev.resched) == 0) {
		return nil
	}
	out := map[*node]bool{}
	if prev.client == allocFailed {
		out[prev.node] = true
	}
	for _, e := range prev.resched {
		out[e.prevNode] = true
	}
	return out
}

// rescheduleWindow is how early Nomad's reconciler reschedules a failed
// allocation before its reschedule time.
const rescheduleWindow = time.Second

// followupBatch is how close together Nomad's reconciler puts the
// reschedule times of failed allocations it waits for in one follow-up
// evaluation.
const followupBatch = 5 * time.Second

// currentDeployment is Nomad's current deployment of j as its reconciler
// sees it: the latest, when it is of the job's version and not successful.
func currentDeployment(j *job) *deployment {
	d := latestDeployment(j)
	if d == nil || d.jobVersion != j.version || d.status == api.DeploymentStatusSuccessful {
		return nil
	}
	return d
}

// rescheduleNow is what Nomad's reconciler does with pa, a failed
// allocation, in evaluation ev (nil: one not created yet): reschedule it
// now, or wait for its reschedule time with a follow-up evaluation to
// create (wait), or neither. An allocation of an active deployment waits
// until the deployment watcher lets it reschedule; one the policy does not
// allow is never rescheduled; otherwise it is rescheduled by its follow-up
// evaluation, or by any evaluation within a second of its reschedule time
// (the failure time plus the next delay) — except an allocation of a
// deployment that failed, which Nomad leaves as it is.
func (c *Cluster) rescheduleNow(j *job, pa *alloc, ev *eval) (now, wait bool) {
	if l := latestDeployment(j); l != nil && l.id == pa.deployID && l.jobVersion == j.version && !pa.reschedule &&
		(l.active() || (l.status == api.DeploymentStatusSuccessful && l.succeeded.Equal(c.now))) {
		// The evaluation that completes a deployment still sees it
		// running: an allocation that failed after turning healthy
		// (which the watcher never lets reschedule) waits for a later
		// evaluation of the job.
		return false, false
	}
	d := currentDeployment(j)
	if !rescheduleEligible(pa) {
		return false, false
	}
	if (pa.followup != nil && pa.followup == ev) || pa.failedAt.Add(nextDelay(pa)).Sub(c.now) <= rescheduleWindow {
		if d != nil && d.id == pa.deployID && d.status == api.DeploymentStatusFailed {
			return false, false
		}
		return true, false
	}
	return false, pa.followup == nil
}

// followUp creates Nomad's follow-up evaluations for later, failed
// allocations of one group to reschedule once their delay has passed:
// pending until the first reschedule time of a batch (those within 5 s of
// it share it), the first "alloc-reschedule" ("created for delayed
// rescheduling"), any further ones "alloc-failure", each following the
// evaluation that created them, which names the last as its next. An
// evaluation that is itself a follow-up (WaitUntil set) creates none, as
// Nomad's scheduler, but still stamps the allocations' FollowupEvalID
// with the evaluations it did not create.
func (c *Cluster) followUp(j *job, later []*alloc, evp **eval, trigger string) {
	if len(later) == 0 {
		return
	}
	ev := c.lazyEval(j, evp, trigger)
	phantom := !ev.waitUntil.IsZero()
	at := func(a *alloc) time.Time { return a.failedAt.Add(nextDelay(a)) }
	sort.SliceStable(later, func(i, k int) bool { return at(later[i]).Before(at(later[k])) })
	var fe *eval
	var first time.Time
	for _, a := range later {
		if t := at(a); fe == nil || t.Sub(first) >= followupBatch {
			trig, desc := triggerAllocFail, ""
			if fe == nil {
				trig, desc = triggerReschedule, "created for delayed rescheduling"
			}
			first = t
			fe = &eval{
				id: newID(c.rng), priority: ev.priority, typ: j.typ, triggeredBy: trig,
				jobID: j.id, jobModIdx: j.jobModIdx, status: api.EvalStatusPending, statusDesc: desc,
				prevEval: ev.id, waitUntil: t, created: c.now, modified: c.now,
			}
			if !phantom {
				idx := c.bump(TableEvals)
				fe.createIdx, fe.modifyIdx = idx, idx
				ev.nextEval, ev.modifyIdx = fe.id, idx
				c.evals = append(c.evals, fe)
				c.evalByID[fe.id] = fe
				c.followups = append(c.followups, fe)
			}
		}
		a.followup = fe
		c.touchByServer(a)
	}
}

// runFollowups runs the follow-up evaluations that are due, in the order
// of their times.
func (c *Cluster) runFollowups() {
	var due []*eval
	kept := c.followups[:0]
	for _, e := range c.followups {
		if c.now.Before(e.waitUntil) {
			kept = append(kept, e)
		} else {
			due = append(due, e)
		}
	}
	clear(c.followups[len(kept):])
	c.followups = kept
	sort.SliceStable(due, func(i, k int) bool { return due[i].waitUntil.Before(due[k].waitUntil) })
	for _, e := range due {
		e.status, e.statusDesc = api.EvalStatusComplete, ""
		e.modifyIdx, e.modified = c.bump(TableEvals), c.now
		j := c.jobs[e.jobID]
		if j == nil || j.purged {
			continue
		}
		e.deployID = evalDeployment(j)
		c.reconcile(j, e)
	}
}

// maxPastRescheduleEvents is how many earlier attempts Nomad carries into a
// reschedule tracker under a policy with unlimited attempts.
const maxPastRescheduleEvents = 5

// rescheduleEvents is Nomad's reschedule tracker of a replacement of
// prev, a failed allocation: prev's events (under a policy with attempts,
// those within its interval; with unlimited attempts, the last five), then
// prev itself.
func (c *Cluster) rescheduleEvents(prev *alloc) []reschedEvent {
	var out []reschedEvent
	pol := prev.grp.resched
	if pol.Attempts != nil && *pol.Attempts > 0 {
		for _, e := range prev.resched {
			if pol.Interval != nil && *pol.Interval > 0 && c.now.Sub(e.at) <= *pol.Interval {
				out = append(out, e)
			}
		}
	} else {
		out = append(out, prev.resched[max(0, len(prev.resched)-maxPastRescheduleEvents):]...)
	}
	return append(out, reschedEvent{at: c.now, prevAlloc: prev.id, prevNode: prev.node, delay: nextDelay(prev)})
}

// rescheduleEligible is whether Nomad reschedules a, a failed allocation,
// under its group's reschedule policy (structs.Allocation's
// NextRescheduleTime): always with unlimited attempts; never when the
// policy allows none; otherwise while fewer than its attempts were made
// within its interval before the failure and the next delay is shorter
// than the interval.
func rescheduleEligible(a *alloc) bool { return rescheduleEligibleAt(a, a.failedAt) }

// rescheduleEligibleAt is rescheduleEligible for an allocation that
// failed, or turned unknown, at at.
func rescheduleEligibleAt(a *alloc, at time.Time) bool {
	pol := a.grp.resched
	if !rescheduleAllowed(a, at) {
		return false
	}
	if (pol.Unlimited != nil && *pol.Unlimited) || len(a.resched) == 0 {
		return true
	}
	var interval time.Duration
	if pol.Interval != nil {
		interval = *pol.Interval
	}
	return nextDelay(a) < interval
}

// rescheduleAllowed is Nomad's RescheduleTracker.RescheduleEligible for a
// at time at: the policy is unlimited, or allows attempts and fewer than
// them were made within its interval before at.
func rescheduleAllowed(a *alloc, at time.Time) bool {
	pol := a.grp.resched
	if pol.Unlimited != nil && *pol.Unlimited {
		return true
	}
	attempts := 0
	if pol.Attempts != nil {
		attempts = *pol.Attempts
	}
	if attempts <= 0 {
		return false
	}
	var interval time.Duration
	if pol.Interval != nil {
		interval = *pol.Interval
	}
	attempted := 0
	for _, e := range a.resched {
		if at.Sub(e.at) < interval {
			attempted++
		}
	}
	return attempted < attempts
}

// nextDelay is Nomad's delay before rescheduling a, a failed allocation
// (structs.Allocation.NextDelay): the policy's delay, doubled after each
// attempt (exponential) or the sum of the last two (fibonacci), at most
// max_delay, and back to the delay when the last attempt is older than
// that.
func nextDelay(a *alloc) time.Duration {
	pol := a.grp.resched
	var delay, maxDelay time.Duration
	if pol.Delay != nil {
		delay = *pol.Delay
	}
	if pol.MaxDelay != nil {
		maxDelay = *pol.MaxDelay
	}
	fn := ""
	if pol.DelayFunction != nil {
		fn = *pol.DelayFunction
	}
	ev := a.resched
	if len(ev) == 0 {
		return delay
	}
	d := delay
	switch fn {
	case "exponential":
		d = ev[len(ev)-1].delay * 2
	case "fibonacci":
		if len(ev) >= 2 {
			n1, n2 := ev[len(ev)-1].delay, ev[len(ev)-2].delay
			if n2 == maxDelay && n1 == delay {
				d = n1
			} else {
				d = n1 + n2
			}
		}
	default:
		return delay
	}
	if maxDelay > 0 && d > maxDelay {
		d = maxDelay
		if a.failedAt.Sub(ev[len(ev)-1].at) > d {
			d = delay
		}
	}
	return d
}

// newAlloc creates an allocation on n, evicting the preempted set first.
func (c *Cluster) newAlloc(j *job, g *group, n *node, ev *eval, index int, prev *alloc, preempt []*alloc) *alloc {
	a := &alloc{
		id: newID(c.rng), index: index, job: j, grp: g, jobVersion: j.version, specHash: g.specHash,
		node: n, evalID: ev.id, desired: desiredRun, client: allocPending,
		created: c.now, startAt: c.now.Add(c.sc.Startup), holding: true, reqCPU: g.cpuOn(n),
	}
	a.name = allocName(j.id, g.name, index)
	if g.mock != nil {
		// Its client reports it so from the start (a real one within
		// a second of the placement).
		a.mock = &mockRun{state: "pending", since: c.now}
		a.clientDesc = "No tasks have started"
	}
	if g.load.jitter > 0 {
		a.phase = time.Duration(c.rng.Int64N(int64(g.load.jitter)))
	}
	for _, v := range preempt {
		v.desired, v.desiredDesc = desiredEvict, "Preempted by alloc ID "+a.id
		v.preemptedBy = a.id
		v.killAt, v.stopAt = c.now, c.now
		c.arm(v, v.stopAt)
		a.preempted = append(a.preempted, v.id)
		c.touchByServer(v)
		c.markDirty(v.job, triggerPreemption)
	}
	if prev != nil {
		a.prev, prev.next = prev.id, a.id
		switch prev.client {
		case allocFailed:
			// Nomad's reconciler stops the failed allocation it
			// reschedules; its description stays empty.
			a.resched = c.rescheduleEvents(prev)
			prev.desired = desiredStop
			c.touchByServer(prev)
		case allocUnknown:
			// A replacement of an unknown allocation is a reschedule
			// too; the original stays desired to run.
			a.resched = c.rescheduleEvents(prev)
			c.touch(prev)
		default:
			c.touch(prev) // its NextAllocation: ModifyIndex alone, as in Nomad
		}
	}
	if d := latestDeployment(j); d != nil && d.active() && d.jobVersion == j.version {
		// Nomad gives every placement the active deployment's ID, those
		// of a group the deployment does not track (no update block) too.
		a.deployID = d.id
		if st := d.groups[g.name]; st != nil {
			st.PlacedAllocs++
			d.modifyIdx = c.bump(TableDeployments)
		}
	}
	c.arm(a, a.startAt)
	c.allocByID[a.id] = a
	j.allocs = append(j.allocs, a)
	n.allocs = append(n.allocs, a)
	n.history = append(n.history, a)
	c.live = append(c.live, a)
	n.resCPU += a.reqCPU
	n.resMem += g.mem
	n.resIOPS += g.iops
	idx := c.bump(TableAllocs)
	a.createIdx, a.modifyIdx, a.allocModIdx, a.modified = idx, idx, idx, c.now
	a.summed = a.client
	c.tables[TableJobSummaries] = idx
	return a
}

// summaryChanged moves the job summaries' index to the last change: a
// job's queued placements changed in it.
func (c *Cluster) summaryChanged() {
	c.tables[TableJobSummaries] = c.index
}

// touchByServer records a change a Nomad server makes to a (its plan, a
// desired transition): it moves AllocModifyIndex as well as ModifyIndex.
func (c *Cluster) touchByServer(a *alloc) {
	c.touch(a)
	a.allocModIdx = a.modifyIdx
}

// touchByClient records a change a's Nomad client reports (its status,
// its health). Nomad's state store moves the node table's index with every
// allocation update from a client (it stamps the node's
// LastAllocUpdateIndex in the same write), though not the node's own
// ModifyIndex: a node list's index moves with it (TestFidelityNodeTableIndex).
func (c *Cluster) touchByClient(a *alloc) {
	c.touch(a)
	c.clientReported(a)
}

// clientReported moves the node table's index to a's last change, which
// its client reported (see touchByClient).
func (c *Cluster) clientReported(a *alloc) {
	c.tables[TableNodes] = max(c.tables[TableNodes], a.modifyIdx)
}

// touch records a change to a: it releases capacity when a stops holding
// it, leaves its node when it is finished on the client, and bumps indexes.
func (c *Cluster) touch(a *alloc) {
	n := a.node
	if a.holding && !a.holds() {
		n.resCPU -= a.reqCPU
		n.resMem -= a.grp.mem
		n.resIOPS -= a.grp.iops
		a.holding = false
	}
	if a.clientTerminal() {
		// A make-before-break migration waiting for this replacement
		// stops waiting.
		if p := c.allocByID[a.prev]; p != nil && p.mig != nil && p.mig.repl == a && p.mig.transferred && !p.clientTerminal() {
			defer c.maybeFinishOld(p.mig, c.now)
		}
		for i, x := range n.allocs {
			if x == a {
				last := len(n.allocs) - 1
				n.allocs[i] = n.allocs[last]
				n.allocs[last] = nil
				n.allocs = n.allocs[:last]
				break
			}
		}
	}
	a.modifyIdx = c.bump(TableAllocs)
	a.modified = c.now
	if a.client != a.summed {
		a.summed = a.client
		c.tables[TableJobSummaries] = a.modifyIdx
		if a.client == allocComplete || a.client == allocFailed {
			// Nomad's blocked evaluations wait for this: a client that
			// finished an allocation (its stop counted free already).
			c.capFreed = true
		}
	}
}

// stopAlloc asks the client to stop a (not a migration): it finishes after
// the kill timeout.
func (c *Cluster) stopAlloc(a *alloc, ev *eval, desc string) {
	if a.desired != desiredRun {
		return
	}
	a.desired, a.desiredDesc = desiredStop, desc
	if ev != nil {
		a.evalID = ev.id
	}
	if a.clientTerminal() {
		// Its client has nothing left to stop: its tasks' end and
		// events stay as they were. A sysbatch version whose task
		// changed stops the node's complete allocation so, as Nomad's
		// does (reconcileSysbatch; TestFidelitySysbatchUpdates,
		// TestCompleteSysbatchAllocationStoppedKeepsItsEnd).
		c.touchByServer(a)
		return
	}
	if a.client == allocPending && a.runningSince.IsZero() && a.mock == nil {
		// The server's stop and the client's answer in one change.
		a.client, a.clientDesc = allocComplete, "alloc was stopped before it started"
		c.touchByServer(a)
		c.clientReported(a)
		return
	}
	// Its tasks run out their kill_timeout (tasks.go); the mock
	// driver's exits when it is told (mockKill).
	a.killAt, a.stopAt = c.now, c.now.Add(a.grp.kill)
	if a.mock != nil {
		a.stopAt = c.now
	}
	c.arm(a, a.stopAt)
	c.touchByServer(a)
}

func (c *Cluster) updateJobStatus(j *job) {
	status := jobPending
	for _, a := range j.allocs {
		if !a.terminal() {
			status = jobRunning
			break
		}
	}
	if j.stopped {
		status = jobDead
		for _, a := range j.allocs {
			if !a.clientTerminal() {
				status = jobRunning
				break
			}
		}
	} else if status == jobPending && j.typ == api.JobTypeBatch {
		all := true
		for _, g := range j.groups {
			if _, done := groupAllocs(j, g); done < g.count {
				all = false
			}
		}
		if all && len(j.allocs) > 0 {
			status = jobDead
		}
	} else if status == jobPending && j.typ == api.JobTypeSysbatch && c.blockedEval(j) == nil {
		// Nomad's: dead once every allocation ended and no evaluation
		// waits.
		status = jobDead
	}
	if j.spec.Status == nil || *j.spec.Status != status {
		j.spec.Status = new(status)
		j.modifyIdx = c.bump(TableJobs)
	}
}

// block records the job's blocked evaluation for placements that did not
// fit, ev's (not itself a blocked evaluation run again: reconcileWith
// leaves that one as it was). Nomad keeps one blocked evaluation per job:
// any other evaluation of the job leaves a new blocked evaluation, and
// Nomad's blocked-evaluation tracker cancels the older one as a duplicate
// ("existing blocked evaluation exists for job \"ID\"", its failed
// placements kept), so the new one waits behind other jobs' blocked
// evaluations for capacity.
//
// An evaluation whose plan Nomad's plan applier rejects fails once it has
// tried as often as Nomad does, and its blocked evaluation says so.
func (c *Cluster) block(j *job, ev *eval) {
	trigger, desc := triggerQueued, "created to place remaining allocations"
	if ev.conflict && ev.status != api.EvalStatusBlocked {
		ev.status, ev.statusDesc = api.EvalStatusFailed, "maximum attempts reached (5)"
		trigger, desc = triggerPlanAttempts, "created due to placement conflicts"
	}
	for i, b := range c.blocked {
		if b.jobID != j.id {
			continue
		}
		b.status, b.statusDesc = api.EvalStatusCancelled, fmt.Sprintf("existing blocked evaluation exists for job %q", j.id)
		b.queued = nil
		b.modifyIdx, b.modified = c.bump(TableEvals), c.now
		c.blocked = append(c.blocked[:i], c.blocked[i+1:]...)
		break
	}
	b := &eval{
		id: newID(c.rng), priority: j.priority, typ: j.typ, triggeredBy: trigger,
		jobID: j.id, jobModIdx: j.jobModIdx, nodeID: ev.blockedNode, status: api.EvalStatusBlocked,
		statusDesc: desc, prevEval: ev.id,
		failed: ev.failed, queued: ev.queued, created: c.now, modified: c.now,
	}
	idx := c.bump(TableEvals)
	b.createIdx, b.modifyIdx = idx, idx
	if ev.blockedNode == "" {
		ev.blockedEval = b.id
		ev.modifyIdx = idx
	}
	c.log.Debug("placements blocked", logKeyJob, j.id, logKeyEval, b.id, logKeyQueued, b.queued)
	c.evals = append(c.evals, b)
	c.evalByID[b.id] = b
	c.blocked = append(c.blocked, b)
	c.summaryChanged()
}

// blockedEval is the job's blocked evaluation, nil for none.
func (c *Cluster) blockedEval(j *job) *eval {
	for _, b := range c.blocked {
		if b.jobID == j.id {
			return b
		}
	}
	return nil
}

// unblock ends the job's blocked evaluation once ev, an evaluation of the
// job, completed with nothing queued: the blocked evaluation itself, run
// again, completes (no failed placements left); any other cancels it, as
// Nomad's state store does ("evaluation <ID> successful"), and it keeps the
// failed placements it recorded.
func (c *Cluster) unblock(j *job, ev *eval) {
	for i, b := range c.blocked {
		if b.jobID == j.id {
			if b == ev {
				b.status, b.statusDesc, b.failed = api.EvalStatusComplete, "", nil
			} else {
				b.status, b.statusDesc = api.EvalStatusCancelled, fmt.Sprintf("evaluation %q successful", ev.id)
			}
			c.log.Debug("blocked placements done", logKeyJob, j.id, logKeyEval, b.id)
			b.queued = nil
			b.modifyIdx, b.modified = c.bump(TableEvals), c.now
			c.summaryChanged()
			c.blocked = append(c.blocked[:i], c.blocked[i+1:]...)
			return
		}
	}
}

// retryBlocked re-runs blocked evaluations after capacity freed, in the
// order they were created.
func (c *Cluster) retryBlocked() {
	if !c.capFreed || len(c.blocked) == 0 {
		c.capFreed = false
		return
	}
	c.capFreed = false
	pending := append([]*eval(nil), c.blocked...)
	for _, b := range pending {
		j := c.jobs[b.jobID]
		if j == nil {
			continue
		}
		c.reconcile(j, b)
	}
}

// scale sets a group's count, refusing while a deployment is active the
// way Nomad does. other says the request names a namespace the simulator
// does not have, where the job is not found.
func (c *Cluster) scale(jobID string, req *api.ScalingRequest, other bool) (*eval, *job, error) {
	// Nomad checks the request before it looks the job up.
	if req == nil {
		return nil, nil, badRequest("missing scaling request")
	}
	grpName := req.Target["Group"]
	if grpName == "" {
		return nil, nil, badRequest("missing task group name for scaling action")
	}
	if t := req.Target["Job"]; t != "" && t != jobID {
		return nil, nil, badRequest("job ID in payload did not match URL")
	}
	if req.Count != nil && *req.Count < 0 {
		return nil, nil, badRequest("scaling action count can't be negative")
	}
	if req.Count != nil && req.Error {
		return nil, nil, badRequest("scaling action should not contain count if error is true")
	}
	j := c.jobs[jobID]
	if j == nil || j.purged || other {
		return nil, nil, notFound("job %q not found", jobID)
	}
	var g *group
	var tg *api.TaskGroup
	for i, x := range j.groups {
		if x.name == grpName {
			g, tg = x, j.spec.TaskGroups[i]
		}
	}
	if g == nil {
		return nil, nil, badRequest("task group %q specified for scaling does not exist in job", grpName)
	}
	if req.Count != nil {
		if tg.Scaling != nil {
			if tg.Scaling.Min != nil && *req.Count < *tg.Scaling.Min {
				return nil, nil, badRequest("group count was less than scaling policy minimum: %d < %d", *req.Count, *tg.Scaling.Min)
			}
			if tg.Scaling.Max != nil && *req.Count > *tg.Scaling.Max {
				return nil, nil, badRequest("group count was greater than scaling policy maximum: %d > %d", *req.Count, *tg.Scaling.Max)
			}
		}
		if d := latestDeployment(j); d != nil && d.active() && d.jobCreate == j.createIdx {
			// Nomad refuses before it records any scaling event.
			return nil, nil, badRequest("job scaling blocked due to active deployment")
		}
	}
	evt := api.ScalingEvent{
		PreviousCount: int64(g.count), Error: req.Error, Message: req.Message, Meta: req.Meta,
		Time: uint64(c.now.UnixNano()),
	}
	var ev *eval
	if req.Count != nil {
		evt.Count = new(*req.Count)
		g.count = int(*req.Count)
		tg.Count = new(g.count)
		j.specSum = specSum(j.spec)
		j.version++
		idx := c.bump(TableJobs)
		j.modifyIdx, j.jobModIdx = idx, idx
		c.startDeployment(j)
		ev = c.newEval(j, triggerScale, "")
		evt.EvalID = new(ev.id)
		c.log.Debug("job scaled", logKeyJob, j.id, logKeyGroup, g.name, logKeyCount, g.count, logKeyEval, ev.id)
		c.reconcile(j, ev)
	}
	evt.CreateIndex = c.bump(TableJobs)
	j.addScaleEvent(g.name, evt)
	return ev, j, nil
}

// trackedScalingEvents is how many scaling events Nomad keeps per group.
const trackedScalingEvents = 20

// addScaleEvent records a scaling event, newest first, keeping Nomad's
// number of them.
func (j *job) addScaleEvent(group string, e api.ScalingEvent) {
	evs := append([]api.ScalingEvent{e}, j.scaleEvts[group]...)
	if len(evs) > trackedScalingEvents {
		evs = evs[:trackedScalingEvents]
	}
	j.scaleEvts[group] = evs
}

// deregister stops a job (and forgets it when purge is set).
func (c *Cluster) deregister(jobID string, purge bool) (*eval, error) {
	j := c.jobs[jobID]
	if j == nil || j.purged {
		return nil, nil
	}
	j.stopped = true
	j.spec.Stop = new(true)
	j.specSum = specSum(j.spec)
	j.version++
	idx := c.bump(TableJobs)
	j.modifyIdx, j.jobModIdx = idx, idx
	for _, d := range j.deploys {
		if d.active() {
			d.status, d.statusDesc = api.DeploymentStatusCancelled, "Cancelled because job is stopped"
			d.modifyIdx = c.bump(TableDeployments)
		}
	}
	ev := c.newEval(j, triggerDeregister, "")
	c.reconcile(j, ev)
	c.unblock(j, ev)
	if purge {
		j.purged = true
		ev.queued = nil // Nomad's scheduler finds no job whose groups to name
		delete(c.jobs, jobID)
		c.bump(TableJobs)
	}
	return ev, nil
}

// stopByAPI marks an allocation for migration, as Nomad's alloc stop does,
// and evaluates its job.
func (c *Cluster) stopByAPI(allocID string) (*eval, error) {
	if len(allocID) != 36 {
		return nil, lookupFailed("alloc")
	}
	a := c.allocByID[allocID]
	if a == nil {
		return nil, notFound("allocation not found")
	}
	if a.terminal() {
		if a.desired == desiredRun && !a.migrate {
			// Ended on its client (complete, failed): Nomad marks it to
			// migrate all the same, and its evaluation places nothing
			// (TestFidelityStopFinished).
			a.migrate = true
			c.touchByServer(a)
		}
		ev := c.newEval(a.job, triggerAllocStop, "")
		return ev, nil
	}
	a.migrate = true
	c.touchByServer(a)
	ev := c.newEval(a.job, triggerAllocStop, "")
	c.reconcile(a.job, ev)
	return ev, nil
}
