package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/sim"
)

// TestRevokedNomadToken: the operator deletes the agent's Nomad token
// while a request waits in the queue. Each step that calls Nomad fails
// with the call Nomad refused and Nomad's reason, once per line, and is
// logged once however many cycles fail; the cycle's error (status) says
// the same; a submission is refused with it (502) and queues nothing; the
// queued request is untouched (pending, its allocation running where it
// was). With the token back, the failures' end is logged once and the
// request runs.
func TestRevokedNomadToken(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: io.MultiWriter(&logs, testWriter{t})})
	// Nomad's secrets are UUIDs (one that is not is tried as a workload
	// identity: another answer, TestFidelityNonUUIDSecret).
	const secret, another = "5f0c3a9e-2b7d-4c1e-9a48-7d2e6b1f0c33", "0b6e9d21-8c4f-4a37-b1d5-3e9f7a2c6d80"
	// webScenario's four nodes and one policy, not the default scenario:
	// what the test counts is the Nomad calls' refusals and their logs,
	// which any cluster gives, while its cycles run back to back until 30
	// have failed.
	sc := webScenario(t)
	sc.Tokens = []string{secret}
	d := startScenario(t, sc, 60)
	_, _, c := startDevAgentOn(t, d, Options{Logger: log, Policies: webPolicies(t), CycleInterval: 20 * time.Millisecond},
		func(cfg *config.Config) { cfg.Nomad.Token = secret })
	ctx := context.Background()
	firstCycle(t, c)
	if _, err := c.Pause(ctx, true); err != nil {
		t.Fatal(err)
	}
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: d.URL, SecretID: secret})
	if err != nil {
		t.Fatal(err)
	}
	var allocs []*nomadapi.AllocationListStub
	eventually(t, 30*time.Second, "two running web allocations", func() bool {
		as, _, err := nc.Jobs().Allocations("web", false, nil)
		allocs = allocs[:0]
		for _, a := range as {
			if err == nil && a.ClientStatus == "running" {
				allocs = append(allocs, a)
			}
		}
		return len(allocs) >= 2
	})
	id, err := submitAway(ctx, c, allocs[0].ID)
	if err != nil {
		t.Fatal(err)
	}

	d.Cluster.SetTokens([]string{another})
	if _, err := c.Pause(ctx, false); err != nil {
		t.Fatal(err)
	}
	const refused = "Permission denied; Nomad refused GET /v1/"
	failed := map[time.Time]bool{}
	eventually(t, 60*time.Second, "30 refused cycles", func() bool {
		for range 20 {
			st, err := c.Status(ctx)
			if err == nil && st.LastCycle != nil && strings.Contains(st.LastCycle.Error, refused) {
				failed[st.LastCycle.Started] = true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return len(failed) >= 30
	})
	// The agent's API answers 502 (Nomad, the agent's upstream, refused
	// it), not 403 (the agent refusing the caller's token) nor 500.
	_, err = submitAway(ctx, c, allocs[1].ID)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadGateway || !strings.Contains(se.Message, "Nomad refused GET /v1/") ||
		strings.Count(se.Message, "Permission denied") != 1 || strings.Contains(se.Message, api.ErrNomadRefused.Error()) {
		t.Errorf("a submission while Nomad refuses the token: %v; want 502 naming the refused call and Nomad's reason once", err)
	}
	// The request has not started: pending, or waiting if an act pass saw
	// the queue still paused after the submission.
	q, err := c.Queue(ctx, nil)
	if err != nil || len(q.Requests) != 1 || q.Requests[0].ID != id || q.Requests[0].Started != nil ||
		(q.Requests[0].State != api.StatePending && q.Requests[0].State != api.StateWaiting) {
		t.Errorf("queue %+v, %v; want only %s, not started", q, err, id)
	}
	if a, _, err := nc.Allocations().Info(allocs[0].ID, nil); err == nil {
		t.Errorf("the sim answered the revoked token (%s)", a.ID)
	}
	d.Cluster.SetTokens([]string{secret})
	if a, _, err := nc.Allocations().Info(allocs[0].ID, nil); err != nil || a.DesiredStatus != "run" || a.NodeID != allocs[0].NodeID {
		t.Errorf("the queued request's allocation: %+v, %v; want it untouched", a, err)
	}
	for _, line := range []string{
		"source failed; its series get no samples while it fails",
		"collection failed; forecasting from what the store has",
		"act: plan and act pass failed",
		"follower: allocation watch failed; retrying",
		".nomad: watch failed; retrying",
	} {
		errs := logs.errorsOf(line)
		distinct := map[string]bool{}
		for _, e := range errs {
			distinct[e] = true
			if !strings.Contains(e, "Nomad refused ") || !strings.Contains(e, "with the agent's token") || strings.Count(e, "Permission denied") != 1 {
				t.Errorf("%q logged %s; want the refused call and Nomad's reason once", line, e)
			}
		}
		// The watches' blocking queries may not end while the test runs;
		// the cycle's steps fail every cycle.
		required := !strings.Contains(line, "watch")
		if (required && len(errs) == 0) || len(errs) > 2 || len(distinct) != len(errs) {
			t.Errorf("%q logged %d times over %d refused cycles; want once (twice when the token went mid-pass, with another call)", line, len(errs), len(failed))
		}
	}
	eventually(t, 60*time.Second, "the request to run with the token back", func() bool {
		mr, err := c.Request(ctx, id)
		return err == nil && mr.State != api.StatePending
	})
	eventually(t, 30*time.Second, "the recovery logged", func() bool {
		return logs.count("collection works again") == 1 && logs.count("act: plan and act pass works again") == 1
	})
}

// TestNomadTokenPolicyLacksAGrant: the agent's token is one Nomad knows,
// but its ACL policy lacks one of the grants deploy/foreshape-acl.hcl
// gives (the simulator refuses as Nomad does: TestFidelityACLPolicy).
// The error names the call Nomad refused, Nomad's reason once, and what to
// check: the cycle's (status) without read-job (the allocation reads of
// every cycle) and without a node policy (the node list); without
// alloc-lifecycle, Nomad refuses only the stop that moves a queued
// request's allocation, and the request fails after its attempts, its
// reason naming that call (docs/deployment.md says so).
func TestNomadTokenPolicyLacksAGrant(t *testing.T) {
	t.Parallel()
	const secret, mgmt = "5f0c3a9e-2b7d-4c1e-9a48-7d2e6b1f0c33", "0b6e9d21-8c4f-4a37-b1d5-3e9f7a2c6d80"
	const check = "with the agent's token: check nomad.token or NOMAD_TOKEN, and that its ACL policy grants what deploy/foreshape-acl.hcl does"
	all := []string{"read-job", "list-jobs", "submit-job", "scale-job", "alloc-lifecycle"}
	for _, tc := range []struct {
		name    string
		policy  sim.Policy
		request bool // a queued move, which the act pass then works on
		call    string
	}{
		{"read-job", sim.Policy{Capabilities: all[1:], Node: "write", Agent: "read"}, false, "GET /v1/allocations"},
		{"node", sim.Policy{Capabilities: all, Agent: "read"}, false, "GET /v1/nodes"},
		{"alloc-lifecycle", sim.Policy{Capabilities: all[:4], Node: "write", Agent: "read"}, true, "PUT /v1/allocation/%s/stop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// webScenario and its one policy: the refused calls are
			// the cycle's and a move's, which any cluster makes.
			sc := webScenario(t)
			sc.Tokens = []string{mgmt}
			sc.Policies = map[string]sim.Policy{secret: tc.policy}
			d := startScenario(t, sc, 60)
			_, _, c := startDevAgentOn(t, d, Options{Policies: webPolicies(t), CycleInterval: 20 * time.Millisecond},
				func(cfg *config.Config) { cfg.Nomad.Token = secret })
			ctx := context.Background()
			if tc.request {
				nc, err := nomadapi.NewClient(&nomadapi.Config{Address: d.URL, SecretID: mgmt})
				if err != nil {
					t.Fatal(err)
				}
				alloc := runningAlloc(t, nc, "web")
				firstCycle(t, c)
				id, err := submitAway(ctx, c, alloc)
				if err != nil {
					t.Fatal(err)
				}
				want := "Permission denied; Nomad refused " + fmt.Sprintf(tc.call, alloc) + " " + check
				var last string
				eventually(t, 60*time.Second, "the request to fail naming "+tc.call, func() bool {
					mr, err := c.Request(ctx, id)
					last = fmt.Sprint(mr.Reason, err)
					return err == nil && mr.State == api.StateFailed &&
						strings.Contains(mr.Reason, fmt.Sprintf("failed after %d attempts: ", migrate.MaxAttempts)) && strings.Contains(mr.Reason, want)
				})
				if strings.Count(last, "Permission denied") != 1 {
					t.Errorf("the request's reason %q; want Nomad's reason once", last)
				}
				return
			}
			want := "Permission denied; Nomad refused " + tc.call + " " + check
			var last string
			eventually(t, 60*time.Second, "a cycle failing on "+tc.call, func() bool {
				st, err := c.Status(ctx)
				if err != nil || st.LastCycle == nil {
					return false
				}
				last = st.LastCycle.Error
				return strings.Contains(last, want)
			})
			if strings.Count(last, "Permission denied") != 1 {
				t.Errorf("the cycle's error %q; want Nomad's reason once", last)
			}
		})
	}
}
