package nomadjob

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/blocking"
	"github.com/foreshape/foreshape/plugins/target"
)

// Meta keys foreshape sets on the scaling events it causes, so an operator
// reading `nomad job scaling-events` sees who scaled and why.
const (
	MetaRequestID = "foreshape_request_id"
	MetaPolicy    = "foreshape_policy"
	MetaScale     = "foreshape_scale"
	MetaLocality  = "foreshape_locality"
	MetaDirection = "foreshape_direction"
)

// deploymentBlocked is the message of Nomad's 400 answer to a scale request
// while the job's deployment is active.
const deploymentBlocked = "job scaling blocked due to active deployment"

// pollAfterRace is how long Scale waits before retrying when Nomad refused
// because of a deployment that had ended by the time it looked.
const pollAfterRace = time.Second

// Target scales one task group of one Nomad job.
type Target struct {
	cfg    *Config
	client *api.Client
	log    hclog.Logger
	sleep  func(context.Context, time.Duration) error
	// margin is what a deployment's blocking query gets beyond the
	// longest Nomad holds it (blocking.Bound); tests shorten it.
	margin time.Duration
}

var _ target.Target = (*Target)(nil)

// New builds a nomad-job target from its decoded settings and the agent's
// Nomad client. It performs no I/O.
func New(settings any, env target.Env) (target.Target, error) {
	cfg, ok := settings.(*Config)
	if !ok || cfg == nil {
		return nil, fmt.Errorf("settings are %T, want *nomadjob.Config", settings)
	}
	if env.Nomad == nil {
		return nil, errors.New("no Nomad client")
	}
	if cfg.DeploymentWait <= 0 {
		c := *cfg
		c.DeploymentWait = DefaultDeploymentWait
		cfg = &c
	}
	return &Target{cfg: cfg, client: env.Nomad, sleep: env.SleepFunc(), margin: blocking.Margin,
		log: env.Log().With("plugin", Name, "job", cfg.Job, "group", cfg.Group)}, nil
}

func (t *Target) query(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{Namespace: t.cfg.Namespace, Region: t.cfg.Region}).WithContext(ctx)
}

// Status reads the group's desired and running counts and whether a
// deployment of the job is active.
func (t *Target) Status(ctx context.Context) (target.Status, error) {
	st, tg, err := t.groupStatus(ctx)
	if err != nil {
		var e *target.Error
		if !errors.As(err, &e) {
			err = t.classify(ctx, err, 1, "read the scale status of "+t.job())
		}
		return target.Status{}, err
	}
	out := target.Status{Count: tg.Desired, CountKnown: true, Ready: true}
	d, err := t.activeDeployment(ctx, st.JobCreateIndex)
	if err != nil {
		return target.Status{}, t.classify(ctx, err, 1, "read the latest deployment of "+t.job())
	}
	switch {
	case st.JobStopped:
		out.Ready, out.Reason = false, fmt.Sprintf("job %q is stopped", t.cfg.Job)
	case d != nil:
		out.Ready, out.Reason = false, fmt.Sprintf("deployment %s is %s: %s", short(d.ID), d.Status, d.StatusDescription)
	case tg.Running < tg.Desired:
		out.Ready, out.Reason = false, fmt.Sprintf("%d of %d allocations run", tg.Running, tg.Desired)
	}
	return out, nil
}

// activeDeployment returns the job's latest deployment when it is active
// and belongs to this incarnation of the job (Nomad's own test), else nil.
func (t *Target) activeDeployment(ctx context.Context, jobCreateIndex uint64) (*api.Deployment, error) {
	d, _, err := t.client.Jobs().LatestDeployment(t.cfg.Job, t.query(ctx))
	if err != nil || d == nil {
		return nil, err
	}
	if active(d.Status) && (jobCreateIndex == 0 || d.JobCreateIndex == jobCreateIndex) {
		return d, nil
	}
	return nil, nil
}

// active mirrors Nomad's Deployment.Active.
func active(status string) bool {
	switch status {
	case api.DeploymentStatusRunning, api.DeploymentStatusPaused, api.DeploymentStatusBlocked,
		api.DeploymentStatusUnblocking, api.DeploymentStatusPending, "initializing":
		return true
	}
	return false
}

// Scale sets the group's count to a.Count. When Nomad refuses because a
// deployment of the job is active, Scale waits for the deployment to end
// (blocking queries, at most DeploymentWait in all) and tries again; the
// result's notes say what it waited for.
func (t *Target) Scale(ctx context.Context, a target.Action) (_ target.Result, err error) {
	if err := a.Validate(); err != nil {
		return target.Result{}, &target.Error{Plugin: Name, Kind: target.Refused, Reason: err.Error(), Err: err}
	}
	log := t.log.With(a.LogArgs()...)
	// Every failure is logged, the deployment's wait's too.
	defer func() {
		if err != nil {
			log.Warn("scale failed", "error", err)
		}
	}()
	count := int64(a.Count)
	req := &api.ScalingRequest{
		Count:   &count,
		Target:  map[string]string{"Job": t.cfg.Job, "Group": t.cfg.Group},
		Message: a.Reason,
		Meta: map[string]any{MetaRequestID: a.ID, MetaPolicy: a.Policy, MetaScale: a.Scale,
			MetaLocality: a.Locality, MetaDirection: string(a.Direction)},
	}
	var res target.Result
	var waitUntil time.Time // set at the first deployment refusal
	for {
		res.Attempts++
		// The count is read before each attempt: an action decided on a
		// count that was not read (the coordinator's read failed) or that
		// changed since (an operator, or another autoscaler, raised it
		// while a deployment held this action back) must not move the
		// group the other way.
		desired, err := t.desired(ctx)
		if err != nil {
			var e *target.Error
			if !errors.As(err, &e) {
				e = t.classify(ctx, err, res.Attempts, "read the scale status of "+t.job()).(*target.Error)
			}
			e.Attempts = res.Attempts
			return res, e
		}
		if (a.Direction == target.Up && desired >= a.Count) || (a.Direction == target.Down && desired <= a.Count) {
			res.Count = desired
			res.Notes = append(res.Notes, fmt.Sprintf("attempt %d: group %q already has count %d, which is at or past %d %s: nothing to change",
				res.Attempts, t.cfg.Group, desired, a.Count, a.Direction))
			log.Info("nothing to scale: the group's count is already there", "desired", desired)
			return res, nil
		}
		w := (&api.WriteOptions{Namespace: t.cfg.Namespace, Region: t.cfg.Region}).WithContext(ctx)
		_, _, err = t.client.Jobs().ScaleWithRequest(t.cfg.Job, req, w)
		if err == nil {
			res.Count = a.Count
			log.Info("scaled", "attempts", res.Attempts, "waited", res.Waited)
			return res, nil
		}
		if code, body := response(err); code != 400 || !strings.Contains(body, deploymentBlocked) {
			return res, t.classify(ctx, err, res.Attempts, fmt.Sprintf("scale %s group %q to %d", t.job(), t.cfg.Group, a.Count))
		}
		start := time.Now()
		if waitUntil.IsZero() {
			waitUntil = start.Add(t.cfg.DeploymentWait)
		}
		d, err := t.activeDeployment(ctx, 0)
		if err != nil {
			return res, t.classify(ctx, err, res.Attempts, "read the deployment that blocks scaling")
		}
		if d == nil {
			// The deployment ended between the refusal and the read.
			res.Notes = append(res.Notes, fmt.Sprintf("attempt %d: Nomad answered %q; the deployment had ended when read; retrying", res.Attempts, deploymentBlocked))
			if err := t.sleep(ctx, pollAfterRace); err != nil {
				return res, t.classify(ctx, err, res.Attempts, "wait to retry")
			}
			res.Waited += time.Since(start)
			if time.Now().After(waitUntil) {
				return res, t.blockedTooLong(res, "")
			}
			continue
		}
		log.Info("scaling blocked by an active deployment: waiting", "deployment_id", d.ID, "status", d.Status)
		status, err := t.waitDeployment(ctx, d, waitUntil)
		res.Waited += time.Since(start)
		if err != nil {
			return res, t.classify(ctx, err, res.Attempts, fmt.Sprintf("wait for deployment %s", short(d.ID)))
		}
		if status == "" {
			return res, t.blockedTooLong(res, d.ID)
		}
		res.Notes = append(res.Notes, fmt.Sprintf("attempt %d: Nomad answered %q; waited %s for deployment %s to end (%s); retrying",
			res.Attempts, deploymentBlocked, res.Waited.Round(time.Second), short(d.ID), status))
	}
}

// job names the job as errors do: job "web", with its namespace and
// region when the target sets them (else they are the agent's).
func (t *Target) job() string {
	s := fmt.Sprintf("job %q", t.cfg.Job)
	if t.cfg.Namespace != "" {
		s += fmt.Sprintf(" in namespace %q", t.cfg.Namespace)
	}
	if t.cfg.Region != "" {
		s += fmt.Sprintf(" of region %q", t.cfg.Region)
	}
	return s
}

// desired reads the group's desired count. A group the job lacks is a
// *target.Error (refused).
func (t *Target) desired(ctx context.Context) (int, error) {
	_, tg, err := t.groupStatus(ctx)
	return tg.Desired, err
}

// groupStatus reads the job's scale status and its group's. A group the
// job lacks is a *target.Error (refused); Nomad's errors are returned as
// they are.
func (t *Target) groupStatus(ctx context.Context) (*api.JobScaleStatusResponse, api.TaskGroupScaleStatus, error) {
	st, _, err := t.client.Jobs().ScaleStatus(t.cfg.Job, t.query(ctx))
	if err != nil {
		return nil, api.TaskGroupScaleStatus{}, err
	}
	tg, ok := st.TaskGroups[t.cfg.Group]
	if !ok {
		return nil, tg, &target.Error{Plugin: Name, Kind: target.Refused, Attempts: 1,
			Reason: fmt.Sprintf("job %q has no task group %q", t.cfg.Job, t.cfg.Group)}
	}
	return st, tg, nil
}

func (t *Target) blockedTooLong(res target.Result, deployID string) error {
	what := "a deployment"
	if deployID != "" {
		what = "deployment " + short(deployID)
	}
	return &target.Error{Plugin: Name, Kind: target.Refused, Attempts: res.Attempts,
		Reason: fmt.Sprintf("%s of job %q was still active after deployment_wait %s; Nomad refuses to scale meanwhile",
			what, t.cfg.Job, t.cfg.DeploymentWait)}
}

// waitDeployment follows d with blocking queries until it is no longer
// active (returning its status) or until the deadline ("" and no error).
// A query Nomad does not answer in time (blocking.Bound: a connection
// gone silent) ends the wait with blocking.ErrNoAnswer.
func (t *Target) waitDeployment(ctx context.Context, d *api.Deployment, until time.Time) (string, error) {
	index := d.ModifyIndex
	for active(d.Status) {
		left := time.Until(until)
		if left <= 0 {
			return "", nil
		}
		q := t.query(ctx)
		// At least a millisecond: nomad/api sends whole milliseconds, and
		// Nomad holds a query whose wait is "0ms" for its default 5
		// minutes.
		q.WaitIndex, q.WaitTime = index, max(min(left, blocking.MaxWait), time.Millisecond)
		q, end := blocking.Bound(ctx, q, t.margin)
		next, meta, err := t.client.Deployments().Info(d.ID, q)
		if err = end(err); err != nil {
			return "", err
		}
		if next != nil {
			d = next
		}
		if meta != nil && meta.LastIndex > index {
			index = meta.LastIndex
		}
	}
	return d.Status, nil
}

// classify turns a Nomad client error into a *target.Error.
func (t *Target) classify(ctx context.Context, err error, attempts int, doing string) error {
	e := &target.Error{Plugin: Name, Attempts: attempts, Err: err}
	code, body := response(err)
	switch {
	case errors.Is(err, blocking.ErrNoAnswer):
		e.Kind, e.Reason = target.Timeout, fmt.Sprintf("%s: %v", doing, err)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		e.Kind, e.Reason = target.Timeout, fmt.Sprintf("%s: no answer from Nomad in time (%v)", doing, err)
	case isNetTimeout(err):
		e.Kind, e.Reason = target.Timeout, fmt.Sprintf("%s: %v", doing, err)
	case code == 400 || code == 403 || code == 404 || code == 409:
		e.Kind, e.Reason = target.Refused, fmt.Sprintf("%s: Nomad answered %d: %s", doing, code, body)
	case code != 0:
		e.Kind, e.Reason = target.Failed, fmt.Sprintf("%s: Nomad answered %d: %s", doing, code, body)
	default:
		e.Kind, e.Reason = target.Failed, fmt.Sprintf("%s: %v", doing, err)
	}
	return e
}

// response returns the status code and body of a Nomad API error, or 0.
func response(err error) (int, string) {
	var ure api.UnexpectedResponseError
	if errors.As(err, &ure) {
		return ure.StatusCode(), strings.TrimSpace(ure.Body())
	}
	return 0, ""
}

func isNetTimeout(err error) bool {
	var ne net.Error
	var ue *url.Error
	return (errors.As(err, &ne) && ne.Timeout()) || (errors.As(err, &ue) && ue.Timeout())
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
