package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/docblock"
	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/internal/testpki"
)

// TestDeployJobsOnRealNomad runs deploy/'s two jobs as docs/deployment.md's
// steps say, on the real Nomad at NOMAD_ADDR with the Consul at
// CONSUL_HTTP_ADDR: the node marked for a server (step 1); under ACLs
// deploy/'s Nomad policy attached to each job, and its Consul policy and a
// token of it (step 2); the Consul token and a test CA's certificates in
// Nomad Variables, no Nomad token (step 3); the binary and a policy served
// over HTTP from this host (step 4); both jobs run (step 5). Each job is
// changed only where one dev node needs it, and each change must apply
// exactly once, so a change to the jobs that this test does not follow
// fails it: count and bootstrap_expect 1, raw_exec where the node has no
// exec driver, Consul's address in the task's environment, the artifacts'
// sources.
//
// It checks that the agents call Nomad with their workload identity alone
// (checkWorkloadIdentity: no nomad_token in the variables, nomad.token_file
// over the Task API's socket in every allocation's rendered
// configuration), that the server bootstraps, passes its /v1/ready check
// and completes a cycle without error, that both agents are registered in Consul, passing, under their
// own service IDs, that the client agent reports its node to the server
// (status through the client agent's HTTPS API, with the test CA's
// certificates), that a job update brings the server back with its Raft ID
// and cluster ID from the sticky disk, and that purging both jobs leaves
// none of their registrations in Consul's catalog. It logs the figures
// docs/deployment.md quotes. On a Nomad with TLS (an https:// NOMAD_ADDR)
// the test's own calls use NOMAD_CACERT, NOMAD_CLIENT_CERT and
// NOMAD_CLIENT_KEY, and the agents none: the Task API's socket takes no
// certificate.
func TestDeployJobsOnRealNomad(t *testing.T) { deployJobs(t, false) }

// TestDeployStaticTokenJobsOnRealNomad runs deploy/'s two jobs changed as
// docs/deployment.md's "A static token instead of workload identity" says
// (its documented blocks, each change applying exactly once), as
// TestDeployJobsOnRealNomad runs them otherwise: step 2 makes deploy/'s
// Nomad policy and a token of it (under ACLs) and attaches nothing to the
// jobs, step 3's variables hold that token, and the agents call the
// node's Nomad agent at NOMAD_ADDR's port. On a Nomad with TLS (an
// https:// NOMAD_ADDR) the jobs take the section's TLS lines and render
// Nomad's CA and client certificate from the variables' nomad_ca,
// nomad_cert and nomad_key, which hold NOMAD_CACERT, NOMAD_CLIENT_CERT
// and NOMAD_CLIENT_KEY's files. It checks what TestDeployJobsOnRealNomad
// does, with checkStaticToken in place of checkWorkloadIdentity.
func TestDeployStaticTokenJobsOnRealNomad(t *testing.T) { deployJobs(t, true) }

// deployJobs is TestDeployJobsOnRealNomad, and with static its static
// token variant.
func deployJobs(t *testing.T, static bool) {
	addr := realNomad(t)
	consulAddr := os.Getenv("CONSUL_HTTP_ADDR")
	if consulAddr == "" {
		t.Skip("CONSUL_HTTP_ADDR is not set: the deploy jobs' agents find each other in Consul; set it (and CONSUL_HTTP_TOKEN, " +
			"a token that may write ACLs, when Consul's ACLs are on) to run deploy/'s jobs on the Nomad at NOMAD_ADDR")
	}
	setup := realnomad.Client(t, addr, realnomad.SetupToken(t, addr))
	for _, id := range []string{"foreshape-servers", "foreshape-clients"} {
		if _, _, err := setup.Jobs().Info(id, nil); err == nil {
			t.Skipf("the Nomad at %s already runs job %s: this test registers and purges jobs of that name", addr, id)
		}
	}
	node := deployNode(t, setup)
	if ln, err := net.Listen("tcp", net.JoinHostPort(node.Attributes["unique.network.ip-address"], "7576")); err != nil {
		t.Skipf("the servers' static Raft port 7576 is taken on node %s: %v", node.Name, err)
	} else {
		ln.Close()
	}
	driver := "exec"
	if d := node.Drivers["exec"]; d == nil || !d.Healthy {
		driver = "raw_exec"
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)

	// Step 1.
	metaApply(t, setup, node.ID, "true")
	t.Cleanup(func() { metaApply(t, setup, node.ID, "") })

	// Step 2, under ACLs: the policy attached to each job before it runs;
	// for the static token, the policy and a token of it.
	var nomadToken string
	if static {
		nomadToken = staticNomadToken(t, setup, suffix)
	} else {
		for _, job := range []string{"foreshape-servers", "foreshape-clients"} {
			deployNomadPolicy(t, setup, job, suffix)
		}
	}
	consul, err := consulapi.NewClient(&consulapi.Config{Address: consulAddr, Token: os.Getenv("CONSUL_HTTP_TOKEN")})
	if err != nil {
		t.Fatal(err)
	}
	consulToken := consulACL(t, consul, suffix)

	// Step 3.
	ca := testpki.NewCA(t, "foreshape-e2e")
	leaf := ca.Issue(t, "agent")
	var extra nomadapi.VariableItems // none without the static token
	if static {
		extra = staticItems(t, addr, nomadToken)
	}
	for _, job := range []string{"foreshape-servers", "foreshape-clients"} {
		putJobSecrets(t, setup, job, consulToken, ca, leaf, extra)
	}
	pki := testpki.WriteFiles(t, t.TempDir(), "agent", ca, leaf)

	// Step 4: the binary and a policy for the node's datacenter, served
	// from this host.
	policy := fmt.Sprintf(`shaping "e2e" {
  locality {
    datacenter = %q
  }
  forecast {
    model    = "auto"
    horizon  = "1h"
    step     = "5m"
    history  = "14d"
    quantile = 0.9
  }
  headroom {
    cpu    = 25
    memory = 25
  }
}
`, node.Datacenter)
	artifacts := httptest.NewServer(artifactHandler(t, policy))
	t.Cleanup(artifacts.Close)

	// Step 5.
	edits := []jobEdit{
		{`driver = "exec"`, fmt.Sprintf("driver = %q", driver)},
		{`"https://example.invalid/foreshape/foreshape_linux_amd64"`, strconv.Quote(artifacts.URL + "/foreshape_linux_amd64")},
		{"      config {\n        command", fmt.Sprintf("      env {\n        CONSUL_HTTP_ADDR = %q\n      }\n\n      config {\n        command", consulAddr)},
	}
	serverEdits := append(slices.Clone(edits),
		jobEdit{"count = 3", "count = 1"},
		jobEdit{"bootstrap_expect = 3", "bootstrap_expect = 1"},
		jobEdit{`"git::https://example.invalid/ops/foreshape-policies.git"`, strconv.Quote(artifacts.URL + "/policies.tar.gz")},
	)
	clientEdits := edits
	if static {
		serverEdits = append(serverEdits, staticEdits(t, "../deploy/foreshape-servers.nomad.hcl", addr)...)
		clientEdits = append(slices.Clone(edits), staticEdits(t, "../deploy/foreshape-clients.nomad.hcl", addr)...)
	}
	start := time.Now()
	servers := runJob(t, setup, "../deploy/foreshape-servers.nomad.hcl", serverEdits)
	awaitDeployment(t, setup, servers, 0)
	deployed := time.Since(start)
	runJob(t, setup, "../deploy/foreshape-clients.nomad.hcl", clientEdits)

	serverID, clientID := "foreshape-"+node.Name, "foreshape-"+node.Name+"-client"
	var clientAddr string
	eventually(t, 60*time.Second, "the server (tagged leader) and the client agent registered in Consul and passing", func() bool {
		entries, _, err := consul.Health().Service("foreshape", "", true, nil)
		if err != nil {
			t.Logf("consul: %v", err)
			return false
		}
		var server, client bool
		for _, e := range entries {
			switch e.Service.ID {
			case serverID:
				server = slices.Contains(e.Service.Tags, "leader")
			case clientID:
				client = slices.Contains(e.Service.Tags, "client")
				clientAddr = net.JoinHostPort(e.Service.Address, strconv.Itoa(e.Service.Port))
			}
		}
		return server && client
	})
	status := func() api.Status {
		out, err := exec.Command(binary, "status", "-json", "-address", "https://"+clientAddr,
			"-ca-cert", pki.CA, "-client-cert", pki.Cert, "-client-key", pki.Key).CombinedOutput()
		if err != nil {
			t.Logf("status through the client agent: %v: %s", err, out)
			return api.Status{}
		}
		var st api.Status
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("status -json: %v: %s", err, out)
		}
		return st
	}
	var before api.Status
	eventually(t, 60*time.Second, "status through the client agent: one server leading, a cycle without error, the client agent reporting its node", func() bool {
		before = status()
		return before.IsLeader && before.ClusterID != "" && len(before.Peers) == 1 &&
			before.LastCycle != nil && before.LastCycle.Error == "" &&
			slices.ContainsFunc(before.Clients, func(c api.ClientAgent) bool { return c.NodeID == node.ID && c.Reporting })
	})

	// Nomad answered the leader's cycle and the client agent's reads,
	// under ACLs, with no token but the workload identity's (the static
	// token variant's: that token, over TLS with the rendered files).
	check := checkWorkloadIdentity
	if static {
		check = func(t *testing.T, c *nomadapi.Client, job string) { checkStaticToken(t, c, job, addr) }
	}
	check(t, setup, "foreshape-servers")
	check(t, setup, "foreshape-clients")

	// An update replaces the server; its state follows on the sticky disk.
	servers.Meta = map[string]string{"e2e": "update"}
	start = time.Now()
	if _, _, err := setup.Jobs().Register(servers, nil); err != nil {
		t.Fatalf("job update: %v", err)
	}
	awaitDeployment(t, setup, servers, 1)
	updated := time.Since(start)
	eventually(t, 60*time.Second, "the updated server leading again with the same Raft ID and cluster ID", func() bool {
		after := status()
		return after.IsLeader && after.ClusterID == before.ClusterID && len(after.Peers) == 1 && after.Peers[0].ID == before.Peers[0].ID
	})
	check(t, setup, "foreshape-servers")
	t.Logf("figures: the servers' deployment successful %.1f s after their registration, the update's %.1f s after its registration",
		deployed.Seconds(), updated.Seconds())

	for _, id := range []string{"foreshape-clients", "foreshape-servers"} {
		stopJob(t, setup, id)
	}
	eventually(t, 30*time.Second, "no registration of either agent left in Consul's catalog", func() bool {
		entries, _, err := consul.Catalog().Service("foreshape", "", nil)
		return err == nil && !slices.ContainsFunc(entries, func(e *consulapi.CatalogService) bool {
			return e.ServiceID == serverID || e.ServiceID == clientID
		})
	})
}

// deployNode is the node the deploy test runs both jobs on: a ready,
// eligible node on this host (the artifacts are served on loopback).
func deployNode(t *testing.T, c *nomadapi.Client) *nomadapi.Node {
	t.Helper()
	stubs, _, err := c.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stubs {
		if s.Status != "ready" || s.SchedulingEligibility != "eligible" {
			continue
		}
		n, _, err := c.Nodes().Info(s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ip := net.ParseIP(n.Attributes["unique.network.ip-address"]); ip != nil && ip.IsLoopback() {
			return n
		}
	}
	t.Skip("no ready, eligible node on a loopback address: this test runs deploy/'s jobs on a Nomad dev agent on this host, which fetches their artifacts from this test")
	return nil
}

// deployNomadPolicy is step 2 on Nomad's side for one job: under ACLs,
// deploy/foreshape-acl.hcl as a policy attached to the job in the default
// namespace (nomad acl policy apply -namespace default -job JOB), which the
// job's workload identities carry, deleted when the test ends; without
// ACLs, nothing. Call it before the job runs: its cleanup then comes after
// the job's stop.
func deployNomadPolicy(t *testing.T, c *nomadapi.Client, job, suffix string) {
	t.Helper()
	if self, _, err := c.ACLTokens().Self(nil); err != nil || self.AccessorID == "acls-disabled" {
		return
	}
	rules, err := os.ReadFile("../deploy/foreshape-acl.hcl")
	if err != nil {
		t.Fatal(err)
	}
	name := "foreshape-e2e-" + suffix + "-" + job
	policy := &nomadapi.ACLPolicy{Name: name, Description: "foreshape e2e " + job, Rules: string(rules),
		JobACL: &nomadapi.JobACL{Namespace: "default", JobID: job}}
	if _, err := c.ACLPolicies().Upsert(policy, nil); err != nil {
		t.Fatalf("nomad acl policy apply -namespace default -job %s: %v", job, err)
	}
	t.Cleanup(func() {
		if _, err := c.ACLPolicies().Delete(name, nil); err != nil {
			t.Errorf("nomad acl policy delete %s: %v", name, err)
		}
	})
}

// putJobSecrets is step 3 for one job: the Consul token and the agent's
// certificates in the Nomad Variable nomad/jobs/JOB, deleted when the
// test ends, with extra's items (the static token variant's). Without
// them it holds no Nomad token: the agents use their workload identity.
func putJobSecrets(t *testing.T, c *nomadapi.Client, job, consulToken string, ca *testpki.CA, leaf testpki.Leaf, extra ...nomadapi.VariableItems) {
	t.Helper()
	path := "nomad/jobs/" + job
	v := &nomadapi.Variable{Path: path, Items: nomadapi.VariableItems{
		"consul_token": consulToken,
		"ca":           string(ca.CertPEM), "cert": string(leaf.CertPEM), "key": string(leaf.KeyPEM),
	}}
	for _, e := range extra {
		maps.Copy(v.Items, e)
	}
	if _, _, err := c.Variables().Create(v, nil); err != nil {
		t.Fatalf("nomad var put %s: %v", path, err)
	}
	t.Cleanup(func() { _, _ = c.Variables().Delete(path, nil) })
}

// checkWorkloadIdentity fails the test unless the job's agents can only
// be calling Nomad with their workload identity: its variable holds no
// nomad_token, and the local/agent.hcl of each of its running allocations,
// read back through Nomad and decoded as the agent does, sets no
// nomad.token and reads nomad.token_file in the task's secrets directory,
// over the Task API's socket there. (The agent refuses NOMAD_TOKEN with
// nomad.token_file, so a running agent has no token in its environment
// either.)
func checkWorkloadIdentity(t *testing.T, c *nomadapi.Client, job string) {
	t.Helper()
	path := "nomad/jobs/" + job
	v, _, err := c.Variables().Read(path, nil)
	if err != nil {
		t.Fatalf("nomad var get %s: %v", path, err)
	}
	if _, ok := v.Items["nomad_token"]; ok {
		t.Errorf("%s holds a nomad_token item; the agents are to use their workload identity", path)
	}
	running := runningAgentConfigs(t, c, job)
	for _, a := range running {
		s, cfg := a.stub, a.cfg
		dir := filepath.Dir(cfg.Nomad.TokenFile)
		if cfg.Nomad.Token != "" || filepath.Base(cfg.Nomad.TokenFile) != "nomad_token" || filepath.Base(dir) != "secrets" ||
			cfg.Nomad.Address != "unix://"+dir+"/api.sock" {
			t.Errorf("%s of %s: nomad.address %q, nomad.token_file %q, a nomad.token %v; want the workload identity's file and the Task API's socket in the task's secrets directory, no token",
				s.ID[:8], job, cfg.Nomad.Address, cfg.Nomad.TokenFile, cfg.Nomad.Token != "")
		}
		t.Logf("%s of %s on %s: nomad.token_file %s over %s, no token in its variable", s.ID[:8], job, s.NodeName, cfg.Nomad.TokenFile, cfg.Nomad.Address)
	}
	if len(running) == 0 {
		t.Errorf("no running allocation of %s", job)
	}
}

// metaApply sets the node's foreshape_server meta, or removes it when
// value is empty.
func metaApply(t *testing.T, c *nomadapi.Client, nodeID, value string) {
	t.Helper()
	var v *string
	if value != "" {
		v = &value
	}
	if _, err := c.Nodes().Meta().Apply(&nomadapi.NodeMetaApplyRequest{NodeID: nodeID, Meta: map[string]*string{"foreshape_server": v}}, nil); err != nil {
		t.Errorf("nomad node meta apply foreshape_server=%q: %v", value, err)
	}
}

// consulACL makes, when Consul's ACLs are on, a policy of
// deploy/foreshape-consul-acl.hcl and a token of it, and returns the token;
// "" when they are off.
func consulACL(t *testing.T, c *consulapi.Client, suffix string) string {
	t.Helper()
	rules, err := os.ReadFile("../deploy/foreshape-consul-acl.hcl")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := c.ACL().PolicyCreate(&consulapi.ACLPolicy{Name: "foreshape-e2e-" + suffix, Rules: string(rules)}, nil)
	if err != nil {
		if strings.Contains(err.Error(), "ACL support disabled") {
			return ""
		}
		t.Fatalf("consul acl policy create (CONSUL_HTTP_TOKEN must be able to write ACLs): %v", err)
	}
	t.Cleanup(func() { _, _ = c.ACL().PolicyDelete(p.ID, nil) })
	tok, _, err := c.ACL().TokenCreate(&consulapi.ACLToken{Description: "foreshape e2e", Policies: []*consulapi.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
	if err != nil {
		t.Fatalf("consul acl token create: %v", err)
	}
	t.Cleanup(func() { _, _ = c.ACL().TokenDelete(tok.AccessorID, nil) })
	return tok.SecretID
}

// artifactHandler serves the test's binary as /foreshape_linux_amd64 and
// policy, as local/policies' one file, in /policies.tar.gz.
func artifactHandler(t *testing.T, policy string) http.Handler {
	t.Helper()
	var archive bytes.Buffer
	zw := gzip.NewWriter(&archive)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "e2e.hcl", Mode: 0o644, Size: int64(len(policy))}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, policy); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/foreshape_linux_amd64", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, binary) })
	mux.HandleFunc("/policies.tar.gz", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "policies.tar.gz", time.Time{}, bytes.NewReader(archive.Bytes()))
	})
	return mux
}

// jobEdit replaces old with new in a job file; old must occur exactly once.
type jobEdit struct{ old, new string }

// runJob registers the job file with edits, purging it when the test ends.
func runJob(t *testing.T, c *nomadapi.Client, path string, edits []jobEdit) *nomadapi.Job {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	for _, e := range edits {
		if n := strings.Count(text, e.old); n != 1 {
			t.Fatalf("%s: %q occurs %d times, want once: the test's edits no longer fit the job", filepath.Base(path), e.old, n)
		}
		text = strings.Replace(text, e.old, e.new, 1)
	}
	job, err := c.Jobs().ParseHCL(text, true)
	if err != nil {
		t.Fatalf("%s: parse: %v", path, err)
	}
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatalf("%s: nomad job run: %v", path, err)
	}
	t.Cleanup(func() { stopJob(t, c, *job.ID) })
	return job
}

// stopJob stops the job, waits (up to 30 s) until its allocations have
// stopped, so that its agents have deregistered from Consul before the
// test deletes their token, and purges it.
func stopJob(t *testing.T, c *nomadapi.Client, id string) {
	t.Helper()
	if _, _, err := c.Jobs().Deregister(id, false, nil); err != nil {
		return // gone already
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		stubs, _, err := c.Jobs().Allocations(id, true, nil)
		if err == nil && !slices.ContainsFunc(stubs, func(a *nomadapi.AllocationListStub) bool {
			return a.ClientStatus == "pending" || a.ClientStatus == "running"
		}) {
			break
		}
	}
	if _, _, err := c.Jobs().Deregister(id, true, nil); err != nil {
		t.Errorf("nomad job stop -purge %s: %v", id, err)
	}
}

// awaitDeployment waits for the job's deployment of version to succeed
// and fails the test, with its allocations' events and logs, if it fails.
func awaitDeployment(t *testing.T, c *nomadapi.Client, job *nomadapi.Job, version uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		d, _, err := c.Jobs().LatestDeployment(*job.ID, nil)
		if err == nil && d != nil && d.JobVersion == version {
			switch d.Status {
			case "successful":
				return
			case "failed", "cancelled":
				t.Fatalf("deployment of %s version %d %s: %s\n%s", *job.ID, version, d.Status, d.StatusDescription, allocReport(c, *job.ID))
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("deployment of %s version %d did not succeed within 3m\n%s", *job.ID, version, allocReport(c, *job.ID))
}

// allocReport is each allocation's task events and the end of its agent's
// stderr.
func allocReport(c *nomadapi.Client, jobID string) string {
	var b strings.Builder
	stubs, _, err := c.Jobs().Allocations(jobID, true, nil)
	if err != nil {
		return err.Error()
	}
	for _, s := range stubs {
		fmt.Fprintf(&b, "allocation %s (%s):\n", s.ID, s.ClientStatus)
		for task, st := range s.TaskStates {
			for _, e := range st.Events {
				fmt.Fprintf(&b, "  %s: %s %s\n", task, e.Type, e.DisplayMessage)
			}
		}
		alloc, _, err := c.Allocations().Info(s.ID, nil)
		if err != nil {
			continue
		}
		if r, err := c.AllocFS().Cat(alloc, "alloc/logs/agent.stderr.0", nil); err == nil {
			out, _ := io.ReadAll(r)
			r.Close()
			fmt.Fprintf(&b, "  stderr: %s\n", tail(string(out), 20))
		}
	}
	return b.String()
}

// eventually polls cond every 500 ms until it holds, failing the test
// after d with what it waited for.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(500 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
	}
}

// staticNomadToken is the static token variant's step 2 on Nomad's side:
// under ACLs, deploy/foreshape-acl.hcl as a policy of its own (nomad acl
// policy apply) and a client token of it (nomad acl token create
// -policy), both deleted when the test ends, and the token's secret;
// without ACLs, "".
func staticNomadToken(t *testing.T, c *nomadapi.Client, suffix string) string {
	t.Helper()
	if self, _, err := c.ACLTokens().Self(nil); err != nil || self.AccessorID == "acls-disabled" {
		return ""
	}
	rules, err := os.ReadFile("../deploy/foreshape-acl.hcl")
	if err != nil {
		t.Fatal(err)
	}
	name := "foreshape-e2e-" + suffix
	if _, err := c.ACLPolicies().Upsert(&nomadapi.ACLPolicy{Name: name, Description: "foreshape e2e agents", Rules: string(rules)}, nil); err != nil {
		t.Fatalf("nomad acl policy apply %s: %v", name, err)
	}
	t.Cleanup(func() { _, _ = c.ACLPolicies().Delete(name, nil) })
	tok, _, err := c.ACLTokens().Create(&nomadapi.ACLToken{Name: name, Type: "client", Policies: []string{name}}, nil)
	if err != nil {
		t.Fatalf("nomad acl token create -policy %s: %v", name, err)
	}
	t.Cleanup(func() { _, _ = c.ACLTokens().Delete(tok.AccessorID, nil) })
	return tok.SecretID
}

// staticItems are the items the static token variant adds to step 3's
// variables: nomad_token, and on a Nomad with TLS (an https:// addr)
// nomad_ca, nomad_cert and nomad_key, the files of NOMAD_CACERT,
// NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY.
func staticItems(t *testing.T, addr, token string) nomadapi.VariableItems {
	t.Helper()
	items := nomadapi.VariableItems{"nomad_token": token}
	if !strings.HasPrefix(addr, "https://") {
		return items
	}
	for item, env := range map[string]string{"nomad_ca": "NOMAD_CACERT", "nomad_cert": "NOMAD_CLIENT_CERT", "nomad_key": "NOMAD_CLIENT_KEY"} {
		path := os.Getenv(env)
		if path == "" {
			t.Skipf("NOMAD_ADDR=%s is https:// and %s is not set: the static token variant renders Nomad's CA and a client certificate from it", addr, env)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		items[item] = string(b)
	}
	return items
}

// deploymentDocBlock is the fenced hcl block that follows "<!-- marker -->"
// in docs/deployment.md, less the indentation of its fence (docblock.HCL).
func deploymentDocBlock(t *testing.T, marker string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	b, err := docblock.HCL(string(doc), marker)
	if err != nil {
		t.Fatalf("docs/deployment.md: %v", err)
	}
	return b
}

// staticEdits are the changes docs/deployment.md's "A static token instead
// of workload identity" makes to the job file at path, as jobEdits (each
// to apply once): the identity block and the comment above it go; the
// Task API's lines give way to the node's Nomad agent at addr's port
// (with addr https://, the section's TLS lines, and a copy of the
// secrets/ca.pem template for each file they name); the environment
// template gains NOMAD_TOKEN.
func staticEdits(t *testing.T, path, addr string) []jobEdit {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	port := urlPort(u)
	identity := deploymentDocBlock(t, "workload-identity: identity")
	identityRE := regexp.MustCompile("(?m)(?:^      #.*\n)*" + regexp.QuoteMeta(identity) + "\n")
	edits := []jobEdit{{identityRE.FindString(text), ""}}
	nomad := deploymentDocBlock(t, "workload-identity: nomad")
	const consulLine = "          CONSUL_HTTP_TOKEN={{ .consul_token }}\n"
	edits = append(edits, jobEdit{consulLine, deploymentDocBlock(t, "static-token: env") + consulLine})
	if u.Scheme != "https" {
		lines := strings.Replace(deploymentDocBlock(t, "static-token: nomad"), ":4646\"", ":"+port+"\"", 1)
		return append(edits, jobEdit{nomad, lines})
	}
	lines := strings.Replace(deploymentDocBlock(t, "static-token: nomad-tls"), ":4646\"", ":"+port+"\"", 1)
	edits = append(edits, jobEdit{nomad, lines})
	caRE := regexp.MustCompile(`(?m)^      template \{\n(?:        .*\n)*?        destination = "secrets/ca\.pem"\n(?:        .*\n)*?      \}\n`)
	ca := caRE.FindString(text)
	copies := ca
	for _, f := range []struct{ file, item string }{{"nomad-ca.pem", "nomad_ca"}, {"nomad-cert.pem", "nomad_cert"}, {"nomad-key.pem", "nomad_key"}} {
		c := strings.Replace(ca, `"secrets/ca.pem"`, strconv.Quote("secrets/"+f.file), 1)
		copies += "\n" + strings.Replace(c, "{{ .ca }}", "{{ ."+f.item+" }}", 1)
	}
	return append(edits, jobEdit{ca, copies})
}

// allocConfig is a running allocation of a job and the configuration its
// agent runs with.
type allocConfig struct {
	stub *nomadapi.AllocationListStub
	cfg  *config.Config
}

// runningAgentConfigs reads back, through Nomad, the local/agent.hcl of
// each of job's running allocations, and decodes it as the agent does.
func runningAgentConfigs(t *testing.T, c *nomadapi.Client, job string) []allocConfig {
	t.Helper()
	stubs, _, err := c.Jobs().Allocations(job, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []allocConfig
	for _, s := range stubs {
		if s.ClientStatus != "running" {
			continue
		}
		alloc, _, err := c.Allocations().Info(s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.AllocFS().Cat(alloc, "agent/local/agent.hcl", nil)
		if err != nil {
			t.Fatalf("%s's local/agent.hcl: %v", s.ID, err)
		}
		src, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "agent.hcl")
		if err := os.WriteFile(file, src, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, diags := config.NewLoader().Load(config.Default(), file)
		if diags.HasErrors() {
			t.Fatalf("%s's local/agent.hcl: %s\n%s", s.ID, diags.Error(), src)
		}
		out = append(out, allocConfig{s, cfg})
	}
	return out
}

// checkStaticToken fails the test unless the job's agents call the node's
// Nomad agent with the static token: its variable holds nomad_token, and
// the local/agent.hcl of each of its running allocations, read back
// through Nomad and decoded as the agent does, sets no nomad.token_file
// and has addr's scheme and port as nomad.address; with https://,
// nomad.ca_file, cert_file and key_file in the task's secrets directory.
func checkStaticToken(t *testing.T, c *nomadapi.Client, job, addr string) {
	t.Helper()
	path := "nomad/jobs/" + job
	v, _, err := c.Variables().Read(path, nil)
	if err != nil {
		t.Fatalf("nomad var get %s: %v", path, err)
	}
	if _, ok := v.Items["nomad_token"]; !ok {
		t.Errorf("%s holds no nomad_token item; the static token variant adds it", path)
	}
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	running := runningAgentConfigs(t, c, job)
	for _, a := range running {
		s, cfg := a.stub, a.cfg
		got, err := url.Parse(cfg.Nomad.Address)
		if err != nil || got.Scheme != u.Scheme || urlPort(got) != urlPort(u) || cfg.Nomad.TokenFile != "" || cfg.Nomad.Token != "" {
			t.Errorf("%s of %s: nomad.address %q, nomad.token_file %q, a nomad.token %v; want the node's Nomad agent at %s's scheme and port, the token from the environment alone",
				s.ID[:8], job, cfg.Nomad.Address, cfg.Nomad.TokenFile, cfg.Nomad.Token != "", addr)
		}
		if u.Scheme == "https" {
			// Nomad serves no file of the secrets directory back
			// (Reading secret file prohibited): that the agents' calls
			// succeed (the server's cycle, the client agent's report)
			// shows the files hold what they should.
			for _, f := range []struct{ setting, path string }{
				{"ca_file", cfg.Nomad.CAFile}, {"cert_file", cfg.Nomad.CertFile}, {"key_file", cfg.Nomad.KeyFile},
			} {
				if filepath.Base(filepath.Dir(f.path)) != "secrets" {
					t.Errorf("%s of %s: nomad.%s %q; want a file in the task's secrets directory", s.ID[:8], job, f.setting, f.path)
				}
			}
		}
		t.Logf("%s of %s on %s: nomad.address %s (ca_file %s), the static token from its variable", s.ID[:8], job, s.NodeName, cfg.Nomad.Address, cfg.Nomad.CAFile)
	}
	if len(running) == 0 {
		t.Errorf("no running allocation of %s", job)
	}
}

// urlPort is u's port, or its scheme's when it gives none (as an HTTP
// client reads it).
func urlPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}
