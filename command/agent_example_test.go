package command

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/internal/testpki"
	"github.com/foreshape/foreshape/internal/testport"
)

// recordingConsul records service registrations, as Consul's agent API
// takes them.
type recordingConsul struct {
	mu           sync.Mutex
	registered   []consulapi.AgentServiceRegistration
	deregistered []string
}

func (f *recordingConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/v1/agent/service/register":
		var reg consulapi.AgentServiceRegistration
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &reg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.registered = append(f.registered, reg)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/agent/service/deregister/"):
		f.deregistered = append(f.deregistered, strings.TrimPrefix(r.URL.Path, "/v1/agent/service/deregister/"))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/catalog/service/"):
		w.Header().Set("X-Consul-Index", "1")
		_, _ = w.Write([]byte("[]"))
	default:
		http.NotFound(w, r)
	}
}

// last returns the latest registration of the service name.
func (f *recordingConsul) last(name string) (consulapi.AgentServiceRegistration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.registered) - 1; i >= 0; i-- {
		if f.registered[i].Name == name {
			return f.registered[i], true
		}
	}
	return consulapi.AgentServiceRegistration{}, false
}

// freeTCPPorts returns n distinct free ports, held for this test until it
// ends (see internal/testport).
func freeTCPPorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testport.Get(t)
	}
	return ports
}

// freeAddr returns 127.0.0.1 and a free port, as host:port.
func freeAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freeTCPPorts(t, 1)[0])
}

// startAgentCommand runs `foreshape agent args...` until the test ends and
// returns its standard error as it grows.
func startAgentCommand(t *testing.T, args ...string) (*syncbuf.Buffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, append([]string{"agent"}, args...), &out, &errb) }()
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("the agent did not stop within 30s")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return &errb, stop
}

// example is example.hcl with its paths moved into a temporary directory
// (certificates, tokens, policies and data made there), its ports free and
// Consul a recording server.
type example struct {
	path               string // the rewritten configuration
	ca                 *testpki.CA
	raftPort, httpPort int
	consul             *recordingConsul
}

func newExample(t *testing.T) *example {
	t.Helper()
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	tlsDir := filepath.Join(etc, "tls")
	polDir := filepath.Join(etc, "policies.d")
	for _, d := range []string{tlsDir, polDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ca := testpki.NewCA(t, "foreshape")
	testpki.WriteFiles(t, tlsDir, "agent", ca, ca.Issue(t, "foreshape-1"))
	if err := os.Rename(filepath.Join(tlsDir, "agent-ca.pem"), filepath.Join(tlsDir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	nomadCA := testpki.NewCA(t, "nomad")
	testpki.WriteFiles(t, tlsDir, "nomad-client", nomadCA, nomadCA.Issue(t, "client.global.nomad"))
	if err := os.Rename(filepath.Join(tlsDir, "nomad-client-ca.pem"), filepath.Join(tlsDir, "nomad-ca.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, "prometheus-ca.pem"), testpki.NewCA(t, "prometheus").CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "acl-tokens"), []byte("# operators\ns3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Glob("../policies/examples/*.hcl")
	for _, p := range examples {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(polDir, filepath.Base(p)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	consul := &recordingConsul{}
	csrv := httptest.NewServer(consul)
	t.Cleanup(csrv.Close)

	src, err := os.ReadFile("../example.hcl")
	if err != nil {
		t.Fatal(err)
	}
	ports := freeTCPPorts(t, 2)
	raftPort, httpPort := ports[0], ports[1]
	cfg := strings.NewReplacer(
		"/etc/foreshape", etc,
		"/var/lib/foreshape", filepath.Join(dir, "data"),
		"raft_port = 7576", fmt.Sprintf("raft_port = %d", raftPort),
		`"0.0.0.0:7575"`, fmt.Sprintf(`"0.0.0.0:%d"`, httpPort),
		`"127.0.0.1:8500"`, fmt.Sprintf("%q", strings.TrimPrefix(csrv.URL, "http://")),
	).Replace(string(src))
	for _, want := range []string{etc, fmt.Sprint(raftPort), fmt.Sprint(httpPort), strings.TrimPrefix(csrv.URL, "http://")} {
		if !strings.Contains(cfg, want) {
			t.Fatalf("example.hcl changed: %q was not substituted", want)
		}
	}
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return &example{path: path, ca: ca, raftPort: raftPort, httpPort: httpPort, consul: consul}
}

// TestAgentRunsExample starts the agent from example.hcl (newExample):
// `config validate` accepts it, and the agent starts as one of the three
// servers the example describes, binds every interface and advertises
// advertise_addr to its peers and Consul (its service, checked on
// /v1/health and /v1/ready, and the -metrics one on /v1/health alone),
// serves its API under mutual TLS
// with /v1/health open to Consul's check, and waits for the other two
// servers.
func TestAgentRunsExample(t *testing.T) {
	ex := newExample(t)
	path, ca, consul, raftPort, httpPort := ex.path, ex.ca, ex.consul, ex.raftPort, ex.httpPort
	if code, out, errs := run(t, "config", "validate", path); code != ExitOK || out != path+": the configuration is valid.\n" {
		t.Fatalf("config validate refuses the example: %s%s", out, errs)
	}

	logs, stop := startAgentCommand(t, "-config", path)
	base := fmt.Sprintf("https://127.0.0.1:%d", httpPort)
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	eventuallyT(t, 20*time.Second, "the health check to answer without a client certificate", logs, func() bool {
		resp, err := noCert.Get(base + "/v1/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	client := &api.Client{Address: base, Token: "s3cret-token", HTTP: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{ca.Issue(t, "operator").TLSCertificate(t)}}}}}
	st, err := client.Status(context.Background())
	if err != nil {
		t.Fatalf("status with a client certificate and token: %v", err)
	}
	if st.IsLeader || st.State != "Follower" || len(st.Peers) != 0 || st.Version != Version() {
		t.Errorf("status %+v; want a follower waiting for its peers", st)
	}
	if resp, err := noCert.Get(base + "/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("/v1/status without a client certificate: %s", resp.Status)
		}
	}
	eventuallyT(t, 20*time.Second, "the agent to say it waits for the other servers", logs, func() bool {
		return strings.Contains(logs.String(), "1 of bootstrap_expect = 3 voting servers found")
	})
	eventuallyT(t, 20*time.Second, "the Consul registrations", logs, func() bool {
		_, ok := consul.last("foreshape")
		_, metrics := consul.last("foreshape-metrics")
		return ok && metrics
	})
	health, ready := fmt.Sprintf("https://10.0.0.11:%d/v1/health", httpPort), fmt.Sprintf("https://10.0.0.11:%d/v1/ready", httpPort)
	for _, w := range []struct {
		name, tag string
		checks    []string
	}{{"foreshape", "follower", []string{health, ready}}, {"foreshape-metrics", "server", []string{health}}} {
		reg, _ := consul.last(w.name)
		var probes []string
		for _, c := range reg.Checks {
			probes = append(probes, c.HTTP)
		}
		if reg.Address != "10.0.0.11" || reg.Port != httpPort || !slices.Contains(reg.Tags, w.tag) || !slices.Contains(reg.Tags, "shaper") ||
			reg.Meta["raft_address"] != fmt.Sprintf("10.0.0.11:%d", raftPort) || !slices.Equal(probes, w.checks) {
			t.Errorf("registration of %s %+v (checks %q); want advertise_addr 10.0.0.11, the %s tag and checks of %q", w.name, reg, probes, w.tag, w.checks)
		}
	}
	if code := stop(); code != ExitOK {
		t.Errorf("the agent exited %d:\n%s", code, tailLines(logs.String(), 30))
	}
	consul.mu.Lock()
	defer consul.mu.Unlock()
	if !slices.Equal(slices.Sorted(slices.Values(consul.deregistered)), []string{"foreshape-foreshape-1", "foreshape-metrics-foreshape-1"}) {
		t.Errorf("deregistered %v; want both services on shutdown", consul.deregistered)
	}
}

// TestAgentBindsEveryInterface: a single server binding 0.0.0.0 with an
// advertise address starts, leads, and names the advertised address as
// its Raft address.
func TestAgentBindsEveryInterface(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	polDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(polDir, 0o700); err != nil {
		t.Fatal(err)
	}
	pol, err := os.ReadFile("../policies/examples/web-daily-peak.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(polDir, "web.hcl"), pol, 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freeTCPPorts(t, 2)
	raftPort, httpPort := ports[0], ports[1]
	cfg := fmt.Sprintf(`
name           = "solo"
data_dir       = %q
bind_addr      = "0.0.0.0"
advertise_addr = "127.0.0.1"
server {
  raft_port = %d
}
nomad {
  address = "http://127.0.0.1:1"
}
http {
  address = "0.0.0.0:%d"
}
policies {
  dir = %q
}
`, filepath.Join(dir, "data"), raftPort, httpPort, polDir)
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, "config", "validate", path); code != ExitOK {
		t.Fatalf("config validate refuses it: %s%s", out, errs)
	}
	logs, stop := startAgentCommand(t, "-config", path)
	client := &api.Client{Address: fmt.Sprintf("http://127.0.0.1:%d", httpPort)}
	eventuallyT(t, 20*time.Second, "leadership", logs, func() bool {
		st, err := client.Status(context.Background())
		return err == nil && st.IsLeader && len(st.Peers) == 1 && st.Peers[0].Address == fmt.Sprintf("127.0.0.1:%d", raftPort)
	})
	if code := stop(); code != ExitOK {
		t.Errorf("the agent exited %d", code)
	}
}

// TestAgentOnOneHostWithConsul: servers that find each other through
// Consul may all run on one host on loopback (bind_addr's default, no
// advertise_addr): `config validate` accepts it, and so does the agent,
// which leads and registers its loopback Raft address. (The refusals of a
// loopback address with peers elsewhere are golden cases, which
// TestAgentAndValidateAgree runs through both.)
func TestAgentOnOneHostWithConsul(t *testing.T) {
	dir := t.TempDir()
	consul := &recordingConsul{}
	csrv := httptest.NewServer(consul)
	defer csrv.Close()
	ports := freeTCPPorts(t, 2)
	raftPort, httpPort := ports[0], ports[1]
	cfg := fmt.Sprintf(`
name     = "one-host"
data_dir = %q
server {
  bootstrap_expect = 1
  retry_join       = ["provider=consul"]
  raft_port        = %d
}
consul {
  enabled = true
  address = %q
}
nomad {
  address = "http://127.0.0.1:1"
}
http {
  address = "127.0.0.1:%d"
}
policies {
  dir = %q
}
`, filepath.Join(dir, "data"), raftPort, csrv.URL, httpPort, t.TempDir())
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range config.EnvVarNames() {
		t.Setenv(name, "")
	}
	if code, out, errs := run(t, "config", "validate", path); code != ExitOK {
		t.Fatalf("config validate refuses it: %s%s", out, errs)
	}
	logs, stop := startAgentCommand(t, "-config", path)
	raftAddr := fmt.Sprintf("127.0.0.1:%d", raftPort)
	eventuallyT(t, 20*time.Second, "a registration as leader with the loopback Raft address", logs, func() bool {
		reg, ok := consul.last("foreshape")
		return ok && slices.Contains(reg.Tags, "leader") && reg.Meta["raft_address"] == raftAddr
	})
	if code := stop(); code != ExitOK {
		t.Errorf("the agent exited %d:\n%s", code, tailLines(logs.String(), 30))
	}
}

// TestAgentAndValidateAgree: on every golden case the agent refuses to
// start with exactly what the validate commands say. A configuration case
// runs as `agent -config CASE` and `config validate CASE`; a policy case
// as the agent with the policy alone in its policies.dir (over the case's
// -config, when it names one) and as `policy validate [-config CFG] DIR`;
// the generated many.hcl as `policy validate` of its directory, which is
// the configuration case series-budget's policies.dir, and as that case's
// agent.
func TestAgentAndValidateAgree(t *testing.T) {
	generateInputs(t)
	for _, name := range config.EnvVarNames() {
		t.Setenv(name, "") // the agent reads the environment; validate does not
	}
	configs, _ := filepath.Glob("testdata/golden/config/*.hcl")
	pols, _ := filepath.Glob("testdata/golden/policy/*.hcl")
	if len(configs) == 0 || len(pols) == 0 {
		t.Fatal("no golden cases")
	}
	// The example as shipped, on a machine without its files (the
	// README's first run; TestAgentRunsExample runs it with them).
	if _, err := os.Stat("/etc/foreshape"); err != nil {
		configs = append(configs, "../example.hcl")
	}
	// The policies that together need too many series: the agent's
	// message also names (and shows) the policies.dir they came from.
	many := filepath.Join(generatedDir, "many.hcl")
	pols = append(pols, many)
	// The agent runs once for the cases that give it the same arguments
	// (many.hcl's and the configuration case series-budget's), as
	// validate runs once for the tests that ask the same of it
	// (runValidate): on those policies each run takes seconds under -race.
	type agentRun struct {
		once    sync.Once
		code    int
		errOut  string
		started bool
	}
	var agentMu sync.Mutex
	agentRuns := map[string]*agentRun{}
	agentOnce := func(t *testing.T, args ...string) (int, string) {
		t.Helper()
		key := strings.Join(args, "\x00")
		agentMu.Lock()
		r := agentRuns[key]
		if r == nil {
			r = &agentRun{}
			agentRuns[key] = r
		}
		agentMu.Unlock()
		r.once.Do(func() { r.code, r.errOut, r.started = agentRefusal(args...) })
		code, errOut, started := r.code, r.errOut, r.started
		if started {
			t.Fatalf("the agent started and ran until stopped:\n%s", tailLines(errOut, 20))
		}
		return code, errOut
	}
	// agree runs both; with within, every line validate prints must be in
	// the agent's output, else the two outputs must be the same.
	agree := func(t *testing.T, validate, agent []string, within bool) {
		t.Helper()
		vcode, _, verr := runValidate(t, validate...)
		acode, aerr := agentOnce(t, agent...)
		if vcode != ExitInvalid || acode != ExitInvalid {
			t.Fatalf("%q exited %d, the agent %d; want both %d\n%s", validate, vcode, acode, ExitInvalid, verr)
		}
		if within {
			for _, line := range strings.Split(verr, "\n") {
				if !strings.Contains(aerr, line) {
					t.Errorf("the agent does not say %q:\n%s", line, aerr)
				}
			}
			return
		}
		if verr != aerr {
			t.Errorf("the agent says\n%s\n%q says\n%s", aerr, validate, verr)
		}
	}
	// The cases run at once: each agent refuses to start, binding nothing,
	// and the environment the parent cleared stays so until all end.
	for _, path := range configs {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			fl := flags(t, path) // the agent's flags, such as -http-addr
			agree(t, append(append([]string{"config", "validate"}, fl...), path), append(fl, "-config", path), false)
		})
	}
	for _, path := range pols {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pdir, cdir := filepath.Join(dir, "policies"), filepath.Join(dir, "config")
			validate := append([]string{"policy", "validate"}, flags(t, path)...)
			if path == many {
				// generatedDir holds many.hcl alone of policies (*.hcl),
				// and series-budget.hcl makes it the agent's policies.dir:
				// validate reads it there (as
				// TestPolicyValidateSeriesBudget's does), and the agent
				// is the configuration case's.
				agree(t, append(validate, generatedDir), []string{"-config", "testdata/golden/config/series-budget.hcl"}, true)
				return
			}
			copyFile(t, path, filepath.Join(pdir, filepath.Base(path)), "")
			if i := slices.Index(validate, "-config"); i >= 0 {
				copyFile(t, validate[i+1], filepath.Join(cdir, "00-case.hcl"), "")
			}
			ports := freeTCPPorts(t, 2)
			copyFile(t, "", filepath.Join(cdir, "99-test.hcl"), fmt.Sprintf("data_dir = %q\nhttp {\n  address = \"127.0.0.1:%d\"\n}\n"+
				"server {\n  raft_port = %d\n}\npolicies {\n  dir = %q\n}\n", filepath.Join(dir, "data"), ports[0], ports[1], pdir))
			agree(t, append(validate, pdir), []string{"-config", cdir}, false)
		})
	}
}

// runAgent runs `foreshape agent args...`, failing the test if the agent
// starts instead of refusing to (it is stopped after 30 seconds).
func runAgent(t *testing.T, args ...string) (int, string) {
	t.Helper()
	code, errOut, started := agentRefusal(args...)
	if started {
		t.Fatalf("the agent started and ran until stopped:\n%s", tailLines(errOut, 20))
	}
	return code, errOut
}

// agentRefusal runs `foreshape agent args...` and returns its exit code,
// what it wrote to stderr, and whether it started instead of refusing to
// (it is stopped after 30 seconds).
func agentRefusal(args ...string) (int, string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := Run(ctx, append([]string{"agent"}, args...), &out, &errb)
	return code, errb.String(), ctx.Err() != nil
}

// copyFile writes the file from (or, with from empty, src) to the path to,
// making its directory.
func copyFile(t *testing.T, from, to, src string) {
	t.Helper()
	if from != "" {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		src = string(b)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

func eventuallyT(t *testing.T, d time.Duration, what string, logs *syncbuf.Buffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; agent log:\n%s", d, what, tailLines(logs.String(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A refused reload's log says what was invalid: the configuration, the
// policies (an error in a file of policies.dir), or both.
func TestInvalidWhat(t *testing.T) {
	cfg := config.Default()
	cfg.Policies.Dir = "/etc/foreshape/policies.d/"
	at := func(file string) *hcl.Diagnostic {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "x", Subject: &hcl.Range{Filename: file}}
	}
	warning := &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "w", Subject: &hcl.Range{Filename: "/etc/foreshape/agent.hcl"}}
	tests := []struct {
		cfg   *config.Config
		diags hcl.Diagnostics
		want  string
	}{
		{cfg, hcl.Diagnostics{warning, at("/etc/foreshape/policies.d/web.hcl")}, "policies are"},
		{cfg, hcl.Diagnostics{at("/etc/foreshape/agent.hcl")}, "configuration is"},
		{cfg, hcl.Diagnostics{at("/etc/foreshape/policies.d/web.hcl"), {Severity: hcl.DiagError, Summary: "no subject"}}, "configuration and policies are"},
		{nil, hcl.Diagnostics{at("/etc/foreshape/agent.hcl")}, "configuration is"},
	}
	for _, tt := range tests {
		if got := invalidWhat(agentSetup{cfg: tt.cfg, diags: tt.diags}); got != tt.want {
			t.Errorf("invalidWhat(%v) = %q; want %q", tt.diags, got, tt.want)
		}
	}
}
