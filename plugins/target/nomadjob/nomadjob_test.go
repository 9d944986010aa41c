package nomadjob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/blocking"
	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/plugins/target/targettest"
	"github.com/foreshape/foreshape/sim"
)

const scenario = `
name  = "targets"
seed  = 3
start = "2026-01-05T12:00:00Z"
tick  = "5s"
startup = "5s"

datacenter "dc1" {
  bandwidth = 100
}

nodes "n" {
  datacenter = "dc1"
  count      = 3
  cpu        = 8000
  memory     = 16384
  iops       = 1000
}

# The target's token is no management token: Nomad's scheduler
# configuration rejects scaling only from such a token.
acl {
  token "5f0c3a9e-2b7d-4c1e-9a48-7d2e6b1f0c33" {
    capabilities = ["read-job", "list-jobs", "submit-job", "scale-job"]
    node         = "read"
    operator     = "write"
  }
}
`

// token is the scenario's token.
const token = "5f0c3a9e-2b7d-4c1e-9a48-7d2e6b1f0c33"

// testLogger routes hclog to t.Log.
func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: logWriter{t}, Level: hclog.Debug})
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newSim serves a fresh simulated cluster and returns it with a client.
func newSim(t *testing.T) (*sim.Cluster, *api.Client) {
	t.Helper()
	sc, err := sim.ParseScenario([]byte(scenario), "targets.hcl")
	if err != nil {
		t.Fatal(err)
	}
	c, err := sim.New(sc, sim.Options{Logger: testLogger(t).Named("sim")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	client, err := api.NewClient(&api.Config{Address: srv.URL, SecretID: token})
	if err != nil {
		t.Fatal(err)
	}
	return c, client
}

// webJob is a service job of one group running raw_exec sleeps; update
// false gives it no update block, so scaling starts no deployment.
func webJob(id string, count int, update bool) *api.Job {
	j := api.NewServiceJob(id, id, "global", 50)
	j.Datacenters = []string{"dc1"}
	tg := api.NewTaskGroup("web", count)
	tg.AddTask(api.NewTask("sleep", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"3600"}).
		Require(&api.Resources{CPU: new(100), MemoryMB: new(64)}))
	j.AddTaskGroup(tg)
	if update {
		j.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(10 * time.Second),
			HealthyDeadline: new(time.Minute), ProgressDeadline: new(2 * time.Minute)}
	} else {
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	}
	return j
}

var jobSeq atomic.Int64

type fixture struct{}

func (fixture) CarriesAmount() bool { return false }

func (fixture) New(t *testing.T, initial int) (target.Target, targettest.System) {
	c, client := newSim(t)
	id := fmt.Sprintf("scale-%d", jobSeq.Add(1))
	if _, _, err := client.Jobs().Register(webJob(id, initial, false), nil); err != nil {
		t.Fatal(err)
	}
	tg, err := New(&Config{Job: id, Group: "web"}, target.Env{Nomad: client, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return tg, &system{c: c, client: client, job: id}
}

// system observes a job in the simulator and misdirects its API.
type system struct {
	c      *sim.Cluster
	client *api.Client
	job    string
}

func (s *system) Count(t *testing.T) int {
	st, _, err := s.client.Jobs().ScaleStatus(s.job, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st.TaskGroups["web"].Desired
}

// Received reads the job's scaling events (newest first in Nomad) back
// into payloads.
func (s *system) Received(t *testing.T) []target.Payload {
	st, _, err := s.client.Jobs().ScaleStatus(s.job, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []target.Payload
	evs := st.TaskGroups["web"].Events
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if e.Error || e.Count == nil {
			continue
		}
		str := func(k string) string { v, _ := e.Meta[k].(string); return v }
		p := target.Payload{RequestID: str(MetaRequestID), Policy: str(MetaPolicy), Scale: str(MetaScale),
			Locality: str(MetaLocality), Direction: target.Direction(str(MetaDirection)), Count: int(*e.Count), Reason: e.Message}
		p.Amount = int(*e.Count - e.PreviousCount)
		if p.Amount < 0 {
			p.Amount = -p.Amount
		}
		out = append(out, p)
	}
	return out
}

func (s *system) Behave(t *testing.T, b targettest.Behaviour) {
	var f sim.Faults
	refuse := false
	switch b {
	case targettest.Refuse:
		refuse = true
	case targettest.Fail:
		f = sim.Faults{ErrorRate: 1, PathPrefix: "/v1/job/"}
	case targettest.Hang:
		f = sim.Faults{TimeoutRate: 1, PathPrefix: "/v1/job/"}
	}
	if err := s.c.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	// A scheduler configuration that rejects registrations makes Nomad
	// refuse every scale request from a token that is no management
	// token (the scenario's) with 403.
	cfg, _, err := s.client.Operator().SchedulerGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SchedulerConfig.RejectJobRegistration = refuse
	if _, _, err := s.client.Operator().SchedulerSetConfiguration(cfg.SchedulerConfig, nil); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	targettest.Run(t, fixture{})
}

func TestNewNeedsAClient(t *testing.T) {
	if _, err := New(&Config{Job: "web", Group: "web"}, target.Env{}); err == nil {
		t.Error("built without a Nomad client")
	}
}

func TestRefusals(t *testing.T) {
	c, client := newSim(t)
	_ = c
	j := webJob("bounded", 2, false)
	j.TaskGroups[0].Scaling = &api.ScalingPolicy{Min: new(int64(1)), Max: new(int64(4))}
	if _, _, err := client.Jobs().Register(j, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  Config
		to   int
		want string
	}{
		{Config{Job: "bounded", Group: "web"}, 6, "greater than scaling policy maximum"},
		{Config{Job: "bounded", Group: "db"}, 3, `task group "db"`},
		{Config{Job: "missing", Group: "web"}, 3, `job "missing": Nomad answered 404: job not found`},
		{Config{Job: "bounded", Group: "web", Namespace: "prod"}, 3, `job "bounded" in namespace "prod": Nomad answered 404`},
	} {
		var logs bytes.Buffer
		tg, err := New(&tc.cfg, target.Env{Nomad: client, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs})})
		if err != nil {
			t.Fatal(err)
		}
		a := target.Action{ID: "r", Policy: "web", Scale: "more", Direction: target.Up, Amount: 1, Count: tc.to}
		_, err = tg.Scale(ctx, a)
		if !errors.Is(err, target.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v to %d: err = %v, want a refusal mentioning %q", tc.cfg, tc.to, err, tc.want)
		}
		if l := logs.String(); !strings.Contains(l, "scale failed:") || !strings.Contains(l, " policy=web ") || !strings.Contains(l, " scale=more ") {
			t.Errorf("%+v: the log line does not name the policy and the scale block:\n%s", tc.cfg, l)
		}
		if _, err := tg.Status(ctx); tc.cfg.Job == "missing" && (!errors.Is(err, target.ErrRefused) || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("status of a missing job: %v, want a refusal", err)
		}
	}
}

// A scale refused because a deployment is active waits for the deployment
// and succeeds after it, saying why it waited.
func TestScaleWaitsForDeployment(t *testing.T) {
	c, client := newSim(t)
	if _, _, err := client.Jobs().Register(webJob("rolling", 2, true), nil); err != nil {
		t.Fatal(err)
	}
	d, _, err := client.Jobs().LatestDeployment("rolling", nil)
	if err != nil || d == nil || d.Status != api.DeploymentStatusRunning {
		t.Fatalf("deployment = %+v, %v; want a running one", d, err)
	}
	tg, err := New(&Config{Job: "rolling", Group: "web", DeploymentWait: time.Hour}, target.Env{Nomad: client, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := tg.Status(ctx)
	if err != nil || st.Ready || !strings.Contains(st.Reason, "deployment") || st.Count != 2 {
		t.Errorf("status during the deployment = %+v, %v", st, err)
	}
	// The simulated clock runs only while the target waits, so the
	// deployment cannot end before Nomad has refused the first attempt.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for runCtx.Err() == nil && !refused(c) {
			time.Sleep(5 * time.Millisecond)
		}
		_ = c.Run(runCtx, 200)
	}()
	res, err := tg.Scale(ctx, target.Action{ID: "after-deploy", Direction: target.Up, Amount: 1, Count: 3, Reason: "surge"})
	if err != nil {
		t.Fatalf("scale: %v", err)
	}
	if res.Attempts != 2 || res.Count != 3 || len(res.Notes) != 1 ||
		!strings.Contains(res.Notes[0], "job scaling blocked due to active deployment") || !strings.Contains(res.Notes[0], "successful") {
		t.Errorf("result = %+v, want a second attempt after the deployment succeeded", res)
	}
	// Nomad's log: the refused attempt (400) and the accepted one.
	var codes []int
	for _, r := range c.Truth().Requests {
		if strings.HasSuffix(r.Path, "/rolling/scale") && r.Method != "GET" {
			codes = append(codes, r.Status)
		}
	}
	if fmt.Sprint(codes) != "[400 200]" {
		t.Errorf("scale requests answered %v, want [400 200]", codes)
	}
}

// refused reports whether the simulator has refused a scale request.
func refused(c *sim.Cluster) bool {
	for _, r := range c.Truth().Requests {
		if strings.HasSuffix(r.Path, "/scale") && r.Method != "GET" && r.Status == 400 {
			return true
		}
	}
	return false
}

// An action never moves the group against its direction: an up action
// whose count the group already has or passed (the coordinator could not
// read the count and started from its min, or an operator raised it while
// the action waited out a deployment) changes nothing and says so, where
// it set the count it carried and scaled the group down from 10 to 3; a
// down action likewise. Nomad records no scaling event for it.
func TestScaleNeverMovesAgainstItsDirection(t *testing.T) {
	c, client := newSim(t)
	if _, _, err := client.Jobs().Register(webJob("busy", 10, false), nil); err != nil {
		t.Fatal(err)
	}
	tg, err := New(&Config{Job: "busy", Group: "web"}, target.Env{Nomad: client, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sys := &system{c: c, client: client, job: "busy"}
	for _, a := range []target.Action{
		{ID: "up-from-min", Direction: target.Up, Amount: 1, Count: 3, Min: 2, Max: 12},
		{ID: "up-to-10", Direction: target.Up, Amount: 1, Count: 10, Min: 2, Max: 12},
		{ID: "down-to-11", Direction: target.Down, Amount: 1, Count: 11, Min: 2, Max: 12},
	} {
		res, err := tg.Scale(context.Background(), a)
		if err != nil {
			t.Fatalf("%s: %v", a.ID, err)
		}
		if got := sys.Count(t); got != 10 {
			t.Errorf("%s (%s to %d) set the group of count 10 to %d", a.ID, a.Direction, a.Count, got)
		}
		if res.Count != 10 || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "already has count 10") {
			t.Errorf("%s: result %+v, want count 10 and a note that nothing changed", a.ID, res)
		}
	}
	if got := sys.Received(t); len(got) != 0 {
		t.Errorf("Nomad recorded %d scaling events, want none: %+v", len(got), got)
	}
	// The same target still scales when the count is short of the action.
	if res, err := tg.Scale(context.Background(), target.Action{ID: "up-to-11", Direction: target.Up, Amount: 1, Count: 11}); err != nil || res.Count != 11 || sys.Count(t) != 11 {
		t.Errorf("up to 11: %+v, %v; count %d", res, err, sys.Count(t))
	}
}

// A deployment that outlasts deployment_wait makes the action a refusal
// that says so.
func TestScaleGivesUpAfterDeploymentWait(t *testing.T) {
	_, client := newSim(t)
	if _, _, err := client.Jobs().Register(webJob("stuck", 2, true), nil); err != nil {
		t.Fatal(err)
	}
	// The simulated clock is not running: the deployment never ends.
	var logs bytes.Buffer
	tg, err := New(&Config{Job: "stuck", Group: "web", DeploymentWait: 300 * time.Millisecond},
		target.Env{Nomad: client, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.Scale(context.Background(), target.Action{ID: "x", Policy: "web", Scale: "more", Direction: target.Up, Amount: 1, Count: 3})
	if !errors.Is(err, target.ErrRefused) || !strings.Contains(err.Error(), "still active after deployment_wait") {
		t.Errorf("err = %v, want a refusal naming deployment_wait", err)
	}
	// The target's own line says so, as for every other failure; it said
	// nothing of a refusal after a deployment's wait.
	if l := logs.String(); !strings.Contains(l, "scale failed:") || !strings.Contains(l, "deployment_wait") || !strings.Contains(l, " policy=web ") {
		t.Errorf("no scale failed line naming the policy and deployment_wait:\n%s", l)
	}
}

// A deployment's blocking query that Nomad takes and never answers (a
// connection gone silent) ends a little after Nomad's wait: the action
// times out saying so instead of waiting for as long as its context
// lives (before, the query was held until the simulator's 10 minutes).
func TestScaleEndsAHeldDeploymentQuery(t *testing.T) {
	c, client := newSim(t)
	if _, _, err := client.Jobs().Register(webJob("stuck", 2, true), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.SetFaults(sim.Faults{Holds: []sim.Hold{{Method: "GET", Path: "/v1/deployment/*"}}}); err != nil {
		t.Fatal(err)
	}
	tg, err := New(&Config{Job: "stuck", Group: "web", DeploymentWait: 300 * time.Millisecond}, target.Env{Nomad: client, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tg.(*Target).margin = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the simulator's server closes once no query is held
	done := make(chan error, 1)
	go func() {
		_, err := tg.Scale(ctx, target.Action{ID: "x", Direction: target.Up, Amount: 1, Count: 3})
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second): // far past the query's bound
		t.Fatal("Scale still waits on the held deployment query")
	}
	if !errors.Is(err, target.ErrTimeout) || !errors.Is(err, blocking.ErrNoAnswer) ||
		!strings.Contains(err.Error(), "wait for deployment") || !strings.Contains(err.Error(), "no answer from Nomad in time: none within") {
		t.Errorf("err = %v, want a timeout of the deployment's wait saying Nomad did not answer", err)
	}
	if f := c.Faults(); f.Holds[0].Caught != 1 {
		t.Errorf("%d deployment queries held, want 1", f.Holds[0].Caught)
	}
}

// Against a real Nomad (NOMAD_ADDR, a dev agent with raw_exec): a scale
// during the job's first deployment is refused by Nomad, waited out and
// retried.
func TestScaleWaitsForDeploymentOnNomad(t *testing.T) {
	addr := os.Getenv("NOMAD_ADDR")
	if addr == "" {
		t.Skip("NOMAD_ADDR is not set: the deployment refusal was checked against the simulator only")
	}
	// The job is registered and watched with the set-up's token; the
	// target scales it with a token of foreshape's ACL policy.
	client := realnomad.Client(t, addr, realnomad.SetupToken(t, addr))
	// docs/targets.md names the Nomad's version.
	if self, err := client.Agent().Self(); err == nil && self.Member.Tags != nil {
		t.Logf("Nomad %s", self.Member.Tags["build"])
	}
	token := aclPolicyToken(t, client)
	id := fmt.Sprintf("foreshape-target-test-%d", os.Getpid())
	j := webJob(id, 1, true)
	j.Update.MinHealthyTime = new(5 * time.Second)
	if _, _, err := client.Jobs().Register(j, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(id, true, nil) })
	// Nomad's scheduler creates the deployment shortly after the
	// registration.
	var index uint64
	for deadline := time.Now().Add(time.Minute); ; {
		d, meta, err := client.Jobs().LatestDeployment(id, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if d != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no deployment")
		}
		index = meta.LastIndex
	}
	tg, err := New(&Config{Job: id, Group: "web", DeploymentWait: 2 * time.Minute},
		target.Env{Nomad: realnomad.Client(t, addr, token), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	act := target.Action{ID: "real-1", Policy: "web-daily-peak", Scale: "web", Locality: "dc1/*/web", Direction: target.Up, Amount: 1, Count: 2, Reason: "test"}
	res, err := tg.Scale(context.Background(), act)
	if err != nil {
		t.Fatalf("scale: %v", err)
	}
	if res.Attempts != 2 || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "successful") {
		t.Errorf("result = %+v, want a retry after the deployment", res)
	}
	st, err := tg.Status(context.Background())
	if err != nil || !st.CountKnown || st.Count != 2 {
		t.Errorf("status = %+v, %v", st, err)
	}
	// The scaling event Nomad recorded carries the reason and the meta
	// docs/targets.md lists (nomad job scaling-events).
	want := target.Payload{RequestID: act.ID, Policy: act.Policy, Scale: act.Scale, Locality: act.Locality,
		Direction: act.Direction, Amount: act.Amount, Count: act.Count, Reason: act.Reason}
	if got := (&system{client: client, job: id}).Received(t); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("scaling events read back as %+v; want one: %+v", got, want)
	}
}

// aclPolicyToken returns a token of deploy/foreshape-acl.hcl's policy,
// made for the test with the set-up's client and deleted after it, so
// that the target scales with what foreshape's agents are granted and no
// more; NOMAD_TOKEN where the Nomad's ACLs are off.
func aclPolicyToken(t *testing.T, setup *api.Client) string {
	t.Helper()
	rules, err := os.ReadFile("../../../deploy/foreshape-acl.hcl")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("foreshape-target-test-%d", os.Getpid())
	if _, err := setup.ACLPolicies().Upsert(&api.ACLPolicy{Name: name, Rules: string(rules)}, nil); err != nil {
		if strings.Contains(err.Error(), "ACL support disabled") {
			t.Logf("the Nomad's ACLs are off: scaling with NOMAD_TOKEN")
			return realnomad.Token()
		}
		t.Fatalf("create the ACL policy of deploy/foreshape-acl.hcl: %v", err)
	}
	t.Cleanup(func() { _, _ = setup.ACLPolicies().Delete(name, nil) })
	tok, _, err := setup.ACLTokens().Create(&api.ACLToken{Name: name, Type: "client", Policies: []string{name}}, nil)
	if err != nil {
		t.Fatalf("create a token of deploy/foreshape-acl.hcl's policy: %v", err)
	}
	t.Cleanup(func() { _, _ = setup.ACLTokens().Delete(tok.AccessorID, nil) })
	t.Logf("scaling with a client token of deploy/foreshape-acl.hcl's policy only")
	return tok.SecretID
}

// TestStatusIsNotReadyUntilItsAllocationsRun: the target's status is the
// group's desired count as Nomad reports it, and it is not ready while
// fewer allocations run than desired (docs/targets.md), nor once the job
// is stopped.
func TestStatusIsNotReadyUntilItsAllocationsRun(t *testing.T) {
	c, client := newSim(t)
	// Two allocations fit; 300 of 100 MHz do not fit on three nodes of
	// 8000 MHz.
	for _, j := range []*api.Job{webJob("fits", 2, false), webJob("crowded", 300, false)} {
		if _, _, err := client.Jobs().Register(j, nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Step(time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	status := func(job string) (target.Status, error) {
		tg, err := New(&Config{Job: job, Group: "web"}, target.Env{Nomad: client, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return tg.Status(ctx)
	}
	if st, err := status("fits"); err != nil || !st.CountKnown || st.Count != 2 || !st.Ready {
		t.Errorf("status of a group whose allocations all run = %+v, %v; want count 2, ready", st, err)
	}
	if st, err := status("crowded"); err != nil || !st.CountKnown || st.Count != 300 || st.Ready || !strings.Contains(st.Reason, "of 300 allocations run") {
		t.Errorf("status of a group short of room = %+v, %v; want count 300, not ready, saying how many run", st, err)
	}
	if _, _, err := client.Jobs().Deregister("fits", false, nil); err != nil {
		t.Fatal(err)
	}
	if st, err := status("fits"); err != nil || st.Ready || !strings.Contains(st.Reason, "is stopped") {
		t.Errorf("status of a stopped job = %+v, %v; want not ready, saying it is stopped", st, err)
	}
}

// TestNomadAnswersClassified: a scale request Nomad answers 400 (other
// than for an active deployment), 403, 404 or 409 is a refusal; any other
// error status (401, 429, 5xx) a failure (docs/targets.md's table). The
// target does not repeat the request itself.
func TestNomadAnswersClassified(t *testing.T) {
	for _, tc := range []struct {
		code int
		kind target.Kind
	}{
		{400, target.Refused}, {403, target.Refused}, {404, target.Refused}, {409, target.Refused},
		{401, target.Failed}, {429, target.Failed}, {500, target.Failed}, {503, target.Failed},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			var writes atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					fmt.Fprint(w, `{"JobID": "web", "TaskGroups": {"web": {"Desired": 2, "Running": 2}}}`)
					return
				}
				writes.Add(1)
				http.Error(w, "as told", tc.code)
			}))
			defer srv.Close()
			client, err := api.NewClient(&api.Config{Address: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			tg, err := New(&Config{Job: "web", Group: "web"}, target.Env{Nomad: client, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tg.Scale(context.Background(), target.Action{ID: "c", Direction: target.Up, Amount: 1, Count: 3})
			if target.KindOf(err) != tc.kind || !strings.Contains(err.Error(), fmt.Sprintf("Nomad answered %d: as told", tc.code)) {
				t.Errorf("err = %v (%s); want %s, quoting Nomad's answer", err, target.KindOf(err), tc.kind)
			}
			if n := writes.Load(); n != 1 {
				t.Errorf("%d scale requests; want 1", n)
			}
		})
	}
}
