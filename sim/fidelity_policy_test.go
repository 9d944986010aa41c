package sim_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/realnomad"
)

// testPolicy is an ACL policy as deploy/foreshape-acl.hcl writes one: the
// capabilities of namespace "*" and the node and agent policies ("" for
// none).
type testPolicy struct {
	name        string
	caps        []string
	node, agent string
}

// foreshapeCaps are the namespace capabilities deploy/foreshape-acl.hcl
// grants.
var foreshapeCaps = []string{"read-job", "list-jobs", "submit-job", "scale-job", "alloc-lifecycle"}

// without is foreshapeCaps without drop.
func without(drop ...string) []string {
	var out []string
	for _, c := range foreshapeCaps {
		if !strings.Contains(" "+strings.Join(drop, " ")+" ", " "+c+" ") {
			out = append(out, c)
		}
	}
	return out
}

// policies are deploy/foreshape-acl.hcl's policy ("foreshape") and that
// policy lacking one grant each.
var policies = []testPolicy{
	{"foreshape", foreshapeCaps, "write", "read"},
	{"no-read-job", without("read-job"), "write", "read"},
	{"no-list-jobs", without("list-jobs"), "write", "read"},
	{"no-submit-job", without("submit-job"), "write", "read"},
	{"no-scale-job", without("scale-job"), "write", "read"},
	{"no-job-writes", without("submit-job", "scale-job"), "write", "read"},
	{"no-alloc-lifecycle", without("alloc-lifecycle"), "write", "read"},
	{"node-read", foreshapeCaps, "read", "read"},
	{"no-node", foreshapeCaps, "", "read"},
	{"no-agent", foreshapeCaps, "write", ""},
}

// rules is p in Nomad's policy language.
func (p testPolicy) rules() string {
	r := fmt.Sprintf("namespace \"*\" {\n  capabilities = [%q", p.caps[0])
	for _, c := range p.caps[1:] {
		r += fmt.Sprintf(", %q", c)
	}
	r += "]\n}\n"
	if p.node != "" {
		r += fmt.Sprintf("node {\n  policy = %q\n}\n", p.node)
	}
	if p.agent != "" {
		r += fmt.Sprintf("agent {\n  policy = %q\n}\n", p.agent)
	}
	return r
}

// TestFidelityACLPolicy: a token Nomad knows whose ACL policy lacks a grant
// foreshape's calls need. Each call foreshape makes is checked with
// deploy/foreshape-acl.hcl's policy and with that policy lacking one
// grant at a time. A call the policy lacks the grant of is refused, 403
// "Permission denied", as for an unknown token (job reads without
// read-job, also of a job, deployment or evaluation that does not exist;
// the job list without list-jobs; registering and deregistering without
// submit-job; scaling without both scale-job and submit-job; stopping an
// allocation without alloc-lifecycle; node reads without a node policy,
// drains and eligibility without node write; the agent's self without
// agent read), except where Nomad looks an allocation up first: without
// read-job, reading an existing allocation answers 500 "Unknown
// allocation" and a node's allocations list is 200 and empty; an
// allocation that does not exist is 404 whatever the token. The rest
// answers. The real half needs a Nomad with ACLs on and a management
// token (it creates the policies and tokens, and deletes them after).
func TestFidelityACLPolicy(t *testing.T) {
	t.Run("sim", func(t *testing.T) {
		const mgmt = "fidelity-secret"
		secrets := map[string]string{}
		acl := fmt.Sprintf("acl {\n  tokens = [%q]\n", mgmt)
		for _, p := range policies {
			secrets[p.name] = newUUID()
			acl += fmt.Sprintf("  token %q {\n    capabilities = %s\n", secrets[p.name], hclList(p.caps))
			if p.node != "" {
				acl += fmt.Sprintf("    node = %q\n", p.node)
			}
			if p.agent != "" {
				acl += fmt.Sprintf("    agent = %q\n", p.agent)
			}
			acl += "  }\n"
		}
		acl += "}\n"
		checkACLPolicy(t, startACLSim(t, acl), mgmt, secrets)
	})
	t.Run("nomad", func(t *testing.T) {
		addr, mgmt := aclNomad(t)
		c := realnomad.Client(t, addr, mgmt)
		secrets := map[string]string{}
		for _, p := range policies {
			name := fmt.Sprintf("fidelity-%s-%d", p.name, os.Getpid())
			if _, err := c.ACLPolicies().Upsert(&api.ACLPolicy{Name: name, Description: "foreshape fidelity check", Rules: p.rules()}, nil); err != nil {
				t.Fatalf("policy %s: %v", name, err)
			}
			t.Cleanup(func() { _, _ = c.ACLPolicies().Delete(name, nil) })
			tok, _, err := c.ACLTokens().Create(&api.ACLToken{Name: name, Type: "client", Policies: []string{name}}, nil)
			if err != nil {
				t.Fatalf("token of policy %s: %v", name, err)
			}
			t.Cleanup(func() { _, _ = c.ACLTokens().Delete(tok.AccessorID, nil) })
			secrets[p.name] = tok.SecretID
		}
		checkACLPolicy(t, addr, mgmt, secrets)
	})
}

// readyNode is the first ready node of dc1 among nodes (else the first).
func readyNode(nodes []*api.NodeListStub) string {
	for _, n := range nodes {
		if n.Datacenter == "dc1" && n.Status == "ready" {
			return n.ID
		}
	}
	return nodes[0].ID
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func hclList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// checkACLPolicy makes foreshape's calls with the token of each policy
// (secrets by policy name) on a job of its own, registered with the
// management token mgmt.
func checkACLPolicy(t *testing.T, addr, mgmt string, secrets map[string]string) {
	c := realnomad.Client(t, addr, mgmt)
	nodes, _, err := c.Nodes().List(nil)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("nodes of %s: %v %v", addr, nodes, err)
	}
	node := readyNode(nodes)
	j := sleepJob("fidelity-policy", 1, 50, 32, 50)
	if _, _, err := c.Jobs().Register(j, nil); err != nil {
		t.Fatalf("register %s: %v", *j.ID, err)
	}
	const w = "fidelity-policy-w"
	t.Cleanup(func() {
		_, _, _ = c.Jobs().Deregister(*j.ID, true, nil)
		_, _, _ = c.Jobs().Deregister(w, true, nil)
	})
	running := func() string {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for {
			allocs, _, err := c.Jobs().Allocations(*j.ID, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range allocs {
				if a.ClientStatus == "running" && a.DesiredStatus == "run" {
					return a.ID
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no running allocation of %s", *j.ID)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	running()
	dep, _, err := c.Jobs().LatestDeployment(*j.ID, nil)
	if err != nil || dep == nil {
		t.Fatalf("the deployment of %s: %v %v", *j.ID, dep, err)
	}
	evals, _, err := c.Jobs().Evaluations(*j.ID, nil)
	if err != nil || len(evals) == 0 {
		t.Fatalf("the evaluations of %s: %v %v", *j.ID, evals, err)
	}
	const zero = "00000000-0000-0000-0000-000000000000"
	wjob := `{"Job":{"ID":"` + w + `","Name":"` + w + `","Type":"service","Datacenters":["dc1"],"TaskGroups":[` +
		`{"Name":"g","Count":0,"Tasks":[{"Name":"t","Driver":"raw_exec","Config":{"command":"/bin/sleep","args":["3600"]}}]}]}}`
	const denied = "403 Permission denied"
	for _, p := range policies {
		alloc := running()
		// Each call, and what the policies it is not answered to get
		// (want "" for any answer but a refusal); always is the answer
		// whatever the policy.
		for _, k := range []struct {
			method, path, body string
			refused            map[string]string
			always             string
		}{
			{"GET", "/v1/nodes", "", map[string]string{"no-node": denied}, ""},
			{"GET", "/v1/node/" + node, "", map[string]string{"no-node": denied}, ""},
			{"GET", "/v1/node/" + node + "/allocations", "", map[string]string{"no-node": denied, "no-read-job": "200 []"}, ""},
			{"POST", "/v1/node/" + node + "/eligibility", `{"NodeID":"` + node + `","Eligibility":"eligible"}`,
				map[string]string{"no-node": denied, "node-read": denied}, ""},
			{"POST", "/v1/node/" + node + "/drain", `{"NodeID":"` + node + `"}`, map[string]string{"no-node": denied, "node-read": denied}, ""},
			{"GET", "/v1/client/stats?node_id=" + node, "", map[string]string{"no-node": denied}, ""},
			{"GET", "/v1/allocations", "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/jobs", "", map[string]string{"no-list-jobs": denied}, ""},
			{"PUT", "/v1/jobs", wjob, map[string]string{"no-submit-job": denied, "no-job-writes": denied}, ""},
			{"GET", "/v1/job/fidelity-policy", "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/job/fidelity-policy/allocations", "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/job/fidelity-policy/deployment", "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/job/fidelity-policy/evaluations", "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/job/fidelity-policy/scale", "", map[string]string{"no-read-job": denied}, ""},
			{"POST", "/v1/job/fidelity-policy/scale", `{"Count":1,"Target":{"Group":"g"}}`, map[string]string{"no-job-writes": denied}, ""},
			{"GET", "/v1/job/fidelity-policy-none", "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/deployment/" + dep.ID, "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/deployment/" + zero, "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/evaluation/" + evals[0].ID, "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/evaluation/" + zero, "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/agent/self", "", map[string]string{"no-agent": denied}, ""},
			{"GET", "/v1/agent/members", "", map[string]string{"no-node": denied}, ""},
			{"POST", "/v1/node/" + node + "/evaluate", "", map[string]string{"no-node": denied, "node-read": denied}, ""},
			{"POST", "/v1/job/fidelity-policy/evaluate", `{"JobID":"fidelity-policy"}`, map[string]string{"no-job-writes": denied, "no-submit-job": denied}, ""},
			// The policy has no operator rule.
			{"GET", "/v1/operator/scheduler/configuration", "", nil, denied},
			{"GET", "/v1/allocation/" + alloc, "", map[string]string{"no-read-job": `500 Unknown allocation "` + alloc + `"`}, ""},
			{"GET", "/v1/allocation/" + zero, "", nil, "404 alloc not found"},
			{"GET", "/v1/client/allocation/" + alloc + "/stats", "", map[string]string{"no-read-job": denied}, ""},
			{"GET", "/v1/client/allocation/" + zero + "/stats", "", nil, `404 Unknown allocation "` + zero + `"`},
			{"GET", "/v1/node/pools", "", nil, "200 []"},
			{"POST", "/v1/allocation/" + zero + "/stop", "", nil, "404 allocation not found"},
			{"DELETE", "/v1/job/" + w, "", map[string]string{"no-submit-job": denied, "no-job-writes": denied}, ""},
			{"POST", "/v1/allocation/" + alloc + "/stop", "", map[string]string{"no-alloc-lifecycle": denied}, ""},
		} {
			code, _, body := call(t, addr, k.method, k.path, k.body, secrets[p.name])
			got := fmt.Sprintf("%d %s", code, strings.TrimSpace(strings.TrimSuffix(body, " (gzip)")))
			want := k.always
			if want == "" {
				want = k.refused[p.name]
			}
			switch {
			case want != "" && got != want:
				t.Errorf("%s %s with policy %s: %.100q; want %q", k.method, k.path, p.name, got, want)
			case want == "" && (code == 403 || code >= 500):
				t.Errorf("%s %s with policy %s: %.100q; want it answered (the policy grants it)", k.method, k.path, p.name, got)
			}
		}
	}
}

// TestFidelityRejectedRegistrations: a scheduler configuration that
// rejects job registrations rejects them, and scaling, only from a token
// that is no management token (403 "Job registration, dispatch, and scale
// are disabled by the scheduler configuration"): with the ACLs off every
// request is a management token's and is served; with them on, a
// management token's is served. The real half runs on the Nomad at
// NOMAD_ADDR with its ACLs off or on (then with the set-up's management
// token and a client token it creates), and sets the configuration back.
func TestFidelityRejectedRegistrations(t *testing.T) {
	const mgmt = "fidelity-secret"
	t.Run("sim", func(t *testing.T) {
		checkRejectedRegistrations(t, startACLSim(t, ""), "", "")
		limited := newUUID()
		checkRejectedRegistrations(t, startACLSim(t, fmt.Sprintf("acl {\n  tokens = [%q]\n  token %q {\n    capabilities = %s\n  }\n}\n",
			mgmt, limited, hclList(foreshapeCaps))), mgmt, limited)
	})
	t.Run("nomad", func(t *testing.T) {
		addr := os.Getenv("NOMAD_ADDR")
		if addr == "" {
			t.Skip("NOMAD_ADDR is not set: checked against the simulator only. Set it to a Nomad dev agent to check the simulator's answers against a real Nomad.")
		}
		token := realnomad.SetupToken(t, addr)
		c := realnomad.Client(t, addr, token)
		self, _, err := c.ACLTokens().Self(nil)
		if err != nil {
			t.Fatalf("the token of %s: %v", addr, err)
		}
		if self.AccessorID == "acls-disabled" {
			checkRejectedRegistrations(t, addr, token, "")
			return
		}
		name := fmt.Sprintf("fidelity-reject-%d", os.Getpid())
		if _, err := c.ACLPolicies().Upsert(&api.ACLPolicy{Name: name, Rules: testPolicy{caps: foreshapeCaps}.rules()}, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = c.ACLPolicies().Delete(name, nil) })
		tok, _, err := c.ACLTokens().Create(&api.ACLToken{Name: name, Type: "client", Policies: []string{name}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = c.ACLTokens().Delete(tok.AccessorID, nil) })
		checkRejectedRegistrations(t, addr, token, tok.SecretID)
	})
}

// checkRejectedRegistrations rejects registrations in the scheduler
// configuration of the Nomad at addr (with mgmt, its management token, ""
// with the ACLs off), registers and scales a job with mgmt, and with
// limited (a client token, "" for none) expects both refused.
func checkRejectedRegistrations(t *testing.T, addr, mgmt, limited string) {
	c := realnomad.Client(t, addr, mgmt)
	cfg, _, err := c.Operator().SchedulerGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	reject := *cfg.SchedulerConfig
	reject.RejectJobRegistration = true
	if _, _, err := c.Operator().SchedulerSetConfiguration(&reject, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		back := *cfg.SchedulerConfig
		back.RejectJobRegistration = false
		if _, _, err := c.Operator().SchedulerSetConfiguration(&back, nil); err != nil {
			t.Errorf("setting the scheduler configuration of %s back: %v", addr, err)
		}
	})
	j := sleepJob("fidelity-rejected", 0, 50, 32, 50)
	t.Cleanup(func() { _, _, _ = c.Jobs().Deregister(*j.ID, true, nil) })
	if _, _, err := c.Jobs().Register(j, nil); err != nil {
		t.Errorf("register with a management token (%q) while registrations are rejected: %v; want it served", mgmt, err)
	}
	if _, _, err := c.Jobs().Scale(*j.ID, "g", new(0), "", false, nil, nil); err != nil && strings.Contains(err.Error(), "disabled") {
		t.Errorf("scale with a management token while registrations are rejected: %v; want it served", err)
	}
	if limited == "" {
		return
	}
	const disabled = "403 (Job registration, dispatch, and scale are disabled by the scheduler configuration)"
	lc := realnomad.Client(t, addr, limited)
	if _, _, err := lc.Jobs().Register(sleepJob("fidelity-rejected-2", 0, 50, 32, 50), nil); err == nil || !strings.Contains(err.Error(), disabled) {
		t.Errorf("register with a client token while registrations are rejected: %v; want %s", err, disabled)
	}
	t.Cleanup(func() { _, _, _ = c.Jobs().Deregister("fidelity-rejected-2", true, nil) })
	if _, _, err := lc.Jobs().Scale(*j.ID, "g", new(0), "", false, nil, nil); err == nil || !strings.Contains(err.Error(), disabled) {
		t.Errorf("scale with a client token while registrations are rejected: %v; want %s", err, disabled)
	}
}
