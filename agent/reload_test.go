package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/internal/testpki"
	"github.com/foreshape/foreshape/policies"
)

// devPoliciesDir makes dir/policies holding the dev policies as dev.hcl,
// and returns its path.
func devPoliciesDir(t *testing.T, dir string) string {
	t.Helper()
	polDir := filepath.Join(dir, "policies")
	if err := os.Mkdir(polDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(devPoliciesFile)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(polDir, "dev.hcl"), string(src))
	return polDir
}

// reloadAgent builds (without running) an agent with ACLs on, its policies
// in a directory the test may change, and a log the test can read.
func reloadAgent(t *testing.T) (*Agent, *config.Config, string, *syncbuf.Buffer) {
	t.Helper()
	dir := t.TempDir()
	polDir := devPoliciesDir(t, dir)
	tokens := filepath.Join(dir, "tokens")
	write(t, tokens, "old-token\n")
	cfg := config.DevDefault()
	cfg.Name = "reload-test"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	cfg.Nomad.Token = "nomad-token-1"
	cfg.Policies.Dir = polDir
	cfg.ACL = config.ACL{Enabled: true, TokenFile: tokens}
	logs := &syncbuf.Buffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: logs})
	a, err := New(cfg, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, cfg, dir, logs
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// status answers GET /v1/status with token.
func status(a *Agent, token string) int {
	req := httptest.NewRequest("GET", "/v1/status", nil)
	req.Header.Set("X-Foreshape-Token", token)
	rec := httptest.NewRecorder()
	a.api.ServeHTTP(rec, req)
	return rec.Code
}

// queuePolicy is a policy whose Prometheus query needs prometheus.address.
const queuePolicy = `shaping "queue" {
  locality {
    datacenter = "dc9"
  }
  forecast {
    queries = {
      queue_depth = "sum(queue_depth{ {{.Matchers}} })"
    }
  }
}
`

func TestReloadIsAllOrNothing(t *testing.T) {
	a, cfg, dir, _ := reloadAgent(t)
	ctx := context.Background()
	// New tokens, and a policy whose Prometheus query cannot run (the agent
	// has no prometheus.address): the reload must change nothing.
	write(t, filepath.Join(dir, "tokens"), "new-token\n")
	write(t, filepath.Join(cfg.Policies.Dir, "queue.hcl"), queuePolicy)
	next := cfg.Clone()
	next.LogLevel = "error"
	err := a.Reload(next)
	if err == nil || !strings.Contains(err.Error(), "prometheus.address") || !strings.Contains(err.Error(), "keeping the previous") {
		t.Fatalf("Reload error = %v, want one naming prometheus.address that keeps the previous configuration", err)
	}
	if got := status(a, "old-token"); got != 200 {
		t.Errorf("the old token answers %d after a failed reload, want 200", got)
	}
	if got := status(a, "new-token"); got != 403 {
		t.Errorf("the new token answers %d after a failed reload, want 403", got)
	}
	if n := len(a.Policies(ctx)); n != 4 {
		t.Errorf("%d policies after a failed reload, want the previous 4", n)
	}
	if !a.log.IsInfo() {
		t.Error("the log level changed in a failed reload")
	}
	// prometheus.address set by the reload itself is not there yet: the
	// Prometheus source starts with the agent.
	withProm := next.Clone()
	withProm.Prometheus.Address = "http://127.0.0.1:9090"
	err = a.Reload(withProm)
	if err == nil || !strings.Contains(err.Error(), "restart") || !strings.Contains(err.Error(), "keeping the previous") {
		t.Fatalf("Reload setting prometheus.address: error = %v, want one saying it needs a restart", err)
	}
	if got := status(a, "new-token"); got != 403 {
		t.Errorf("the new token answers %d after a failed reload, want 403", got)
	}
	// With the bad policy gone, the same reload applies whole.
	if err := os.Remove(filepath.Join(cfg.Policies.Dir, "queue.hcl")); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if status(a, "new-token") != 200 || status(a, "old-token") != 403 {
		t.Error("the new token file did not take effect")
	}
	if a.log.IsInfo() || !a.log.IsError() {
		t.Error("the log level did not change")
	}
}

func TestReloadReportsSettingsThatNeedARestart(t *testing.T) {
	a, cfg, _, logs := reloadAgent(t)
	next := cfg.Clone()
	next.Nomad.Token = "nomad-token-2" // rotated
	next.Consul.Token = "consul-token"
	next.Telemetry.PrometheusMetrics = false
	next.LogLevel = "debug" // applied live
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, f := range []string{"nomad.token", "consul.token", "telemetry.prometheus_metrics"} {
		if !strings.Contains(out, "takes effect after a restart: field="+f) {
			t.Errorf("the log does not say %s needs a restart:\n%s", f, out)
		}
	}
	for _, secret := range []string{"nomad-token-2", "nomad-token-1", "consul-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows the secret %q", secret)
		}
	}
	if strings.Contains(out, "field=log_level") {
		t.Error("log_level reported as needing a restart; it applies live")
	}
}

func TestRestartOnly(t *testing.T) {
	old := config.Default()
	for _, tc := range []struct {
		name   string
		change func(*config.Config)
		want   []string
	}{
		{"nothing", func(*config.Config) {}, nil},
		{"rotated nomad token", func(c *config.Config) { c.Nomad.Token = "s2" }, []string{"nomad.token"}},
		{"retry_join", func(c *config.Config) { c.Server.RetryJoin = []string{"10.0.0.2"} }, []string{"server.retry_join"}},
		{"live settings", func(c *config.Config) {
			c.LogLevel, c.ACL.Enabled, c.ACL.TokenFile, c.Policies.Dir = "warn", true, "/t", "/p"
		}, nil},
		{"several", func(c *config.Config) { c.DataDir, c.HTTP.Address, c.TLS.CAFile = "/d", "0.0.0.0:1", "/ca" },
			[]string{"data_dir", "http.address", "tls.ca_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := old.Clone()
			tc.change(next)
			if got := restartOnly(old, next); !slices.Equal(got, tc.want) {
				t.Errorf("restartOnly = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPoliciesBeyondTheSeriesBoundAreRefused(t *testing.T) {
	cfg := config.DevDefault()
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	// The four dev policies shape four localities: 16 series.
	_, err := New(cfg, Options{Logger: testLogger(t), Policies: devPolicies(t), MaxSeries: 15})
	if err == nil || !strings.Contains(err.Error(), "need 16 series, more than the 15") {
		t.Errorf("err = %v, want one saying the policies need more series than the bound", err)
	}
	a, err := New(cfg, Options{Logger: testLogger(t), Policies: devPolicies(t), MaxSeries: 16})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	// With Prometheus, each locality also has iops, iops_read and
	// iops_write: 28 series.
	cfg.Prometheus.Address = "http://127.0.0.1:1"
	_, err = New(cfg, Options{Logger: testLogger(t), Policies: devPolicies(t), MaxSeries: 27})
	if err == nil || !strings.Contains(err.Error(), "need 28 series, more than the 27") {
		t.Errorf("with Prometheus: err = %v, want one saying the policies need 28 series", err)
	}
	a, err = New(cfg, Options{Logger: testLogger(t), Policies: devPolicies(t), MaxSeries: 28})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
}

// A reload that turns a server into a client agent, which takes effect
// only at the next start, leaves the running server as it was: its
// policies read as a server reads them, and the change logged at each
// reload until the restart. Putting the setting back logs nothing.
func TestReloadWaitsForARestartToChangeRole(t *testing.T) {
	a, cfg, dir, logs := reloadAgent(t)
	ctx := context.Background()
	client := cfg.Clone()
	client.DevMode, client.DataDir = false, dir
	client.Server.Enabled = false
	client.Server.RetryJoin = []string{"127.0.0.1:7576"}
	write(t, filepath.Join(dir, "tokens"), "new-token\n")
	for range 2 {
		if err := a.Reload(client); err != nil {
			t.Fatal(err)
		}
		if n := len(a.Policies(ctx)); n != 4 {
			t.Fatalf("%d policies after a reload to a client agent's configuration, want the running server's 4", n)
		}
	}
	if got := status(a, "new-token"); got != 200 {
		t.Errorf("the new token answers %d after the reload, want 200 (acl applies live)", got)
	}
	if n := strings.Count(logs.String(), "takes effect after a restart: field=server.enabled"); n != 2 {
		t.Errorf("server.enabled logged as waiting for a restart %d times in two reloads, want 2:\n%s", n, logs)
	}
	before := logs.String()
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if after := strings.TrimPrefix(logs.String(), before); strings.Contains(after, "after a restart") {
		t.Errorf("putting the running settings back logged a change:\n%s", after)
	}
}

// A reload whose new settings pass on their own but not with what runs
// until a restart says which settings wait.
func TestReloadNamesTheSettingsThatWait(t *testing.T) {
	a, cfg, _, _ := reloadAgent(t)
	write(t, filepath.Join(cfg.Policies.Dir, "queue.hcl"), queuePolicy)
	next := cfg.Clone()
	next.Prometheus.Address = "http://127.0.0.1:9090"
	err := a.Reload(next)
	if err == nil || !strings.Contains(err.Error(), "until a restart the agent runs as before with prometheus.address") {
		t.Fatalf("Reload error = %v, want one naming prometheus.address as waiting for a restart", err)
	}
}

// TestReloadKeepsPoliciesOverAnEmptyDir: a reload that finds policies.dir
// emptied (unmounted, half synced) keeps the running policies and says
// why; it dropped every policy with a warning, and every series went
// stale.
func TestReloadKeepsPoliciesOverAnEmptyDir(t *testing.T) {
	a, cfg, _, _ := reloadAgent(t)
	ctx := context.Background()
	es, err := os.ReadDir(cfg.Policies.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := os.Remove(filepath.Join(cfg.Policies.Dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	err = a.Reload(cfg.Clone())
	if err == nil || !strings.Contains(err.Error(), "holds no policy now, and the agent runs 4") || !strings.Contains(err.Error(), "keeping the previous") {
		t.Fatalf("Reload over an empty policies.dir: %v; want it refused, keeping the 4 policies", err)
	}
	if n := len(a.Policies(ctx)); n != 4 {
		t.Errorf("%d policies after the refused reload, want the previous 4", n)
	}
}

// TestReloadReadsPoliciesOverTheFallback: an agent running its fallback
// policies (dev mode's demo) over an empty policies.dir runs the policies
// a reload finds there, and the fallback again once it holds none.
func TestReloadReadsPoliciesOverTheFallback(t *testing.T) {
	_, cfg, _, logs := reloadAgent(t)
	ctx := context.Background()
	src, err := os.ReadFile(devPoliciesFile)
	if err != nil {
		t.Fatal(err)
	}
	fallback, diags := policies.Parse(devPoliciesFile, src)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.Clone()
	cfg.Policies.Dir = empty
	logger := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: logs})
	b, err := New(cfg, Options{Logger: logger, FallbackPolicies: fallback[:2]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if n := len(b.Policies(ctx)); n != 2 || !strings.Contains(logs.String(), "running the fallback policies") {
		t.Fatalf("%d policies at start over an empty policies.dir, want the 2 fallback ones; logs:\n%s", n, logs.String())
	}
	write(t, filepath.Join(empty, "dev.hcl"), string(src))
	if err := b.Reload(cfg.Clone()); err != nil {
		t.Fatal(err)
	}
	if n := len(b.Policies(ctx)); n != 4 {
		t.Errorf("%d policies after a reload that found 4 in policies.dir, want them", n)
	}
	if err := os.Remove(filepath.Join(empty, "dev.hcl")); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(cfg.Clone()); err != nil {
		t.Fatal(err)
	}
	if n := len(b.Policies(ctx)); n != 2 {
		t.Errorf("%d policies after a reload over the emptied policies.dir, want the 2 fallback ones", n)
	}
}

// Of two policies of one locality naming one metric in forecast.queries,
// the first read is the one queried, as the planner plans by it.
func TestPolicyQueriesFirstWins(t *testing.T) {
	pol := func(name, dc, query string) string {
		return fmt.Sprintf("shaping %q {\n  locality {\n    datacenter = %q\n  }\n  forecast {\n    queries = {\n      depth = %q\n    }\n  }\n}\n", name, dc, query)
	}
	pols, diags := policies.Parse("p.hcl", []byte(pol("a", "dc1", "first")+pol("b", "dc1", "second")+pol("c", "dc2", "other")))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for _, q := range policyQueries(pols) {
		got = append(got, q.Locality.String()+":"+q.Metric+"="+q.Query)
	}
	if want := []string{"dc1:depth=first", "dc2:depth=other"}; !slices.Equal(got, want) {
		t.Errorf("queries %v; want %v", got, want)
	}
}

// TestReloadRefusesSpreadByUseItCannotRead: a server reads each
// allocation's stats only when a policy it started with spreads by use
// (migrate.spread_by_use); a reload that adds such a policy is refused,
// saying a restart applies it, rather than run it on no group series (the
// planner would read what allocations hold instead, saying nothing). One
// started with such a policy reloads it, and others, as it likes.
func TestReloadRefusesSpreadByUseItCannotRead(t *testing.T) {
	server := func(t *testing.T, byUse bool) (*Agent, *config.Config) {
		t.Helper()
		dir := t.TempDir()
		cfg := config.Default()
		cfg.Name = "spread-test"
		cfg.DataDir = filepath.Join(dir, "data")
		cfg.Server.RaftPort = freePort(t)
		cfg.HTTP.Address = "127.0.0.1:0"
		cfg.Nomad.Address = "http://127.0.0.1:1"
		cfg.Policies.Dir = filepath.Join(dir, "policies")
		if err := os.Mkdir(cfg.Policies.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(cfg.Policies.Dir, "dc1.hcl"), fmt.Sprintf(groupsPolicy, byUse))
		a, err := New(cfg, Options{Logger: hclog.NewNullLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a, cfg
	}
	ctx := context.Background()

	a, cfg := server(t, false)
	write(t, filepath.Join(cfg.Policies.Dir, "dc1.hcl"), fmt.Sprintf(groupsPolicy, true))
	err := a.Reload(cfg.Clone())
	if err == nil || !strings.Contains(err.Error(), "migrate.spread_by_use") || !strings.Contains(err.Error(), "restart") ||
		!strings.Contains(err.Error(), "keeping the previous") {
		t.Fatalf("a reload adding spread_by_use: error = %v, want one naming migrate.spread_by_use and a restart", err)
	}
	a.cfgMu.RLock()
	kept := a.pols
	a.cfgMu.RUnlock()
	if len(kept) != 1 || kept[0].Migrate.SpreadByUse {
		t.Errorf("the refused reload changed the policies: %+v", kept)
	}

	b, cfg := server(t, true)
	write(t, filepath.Join(cfg.Policies.Dir, "dc2.hcl"), strings.ReplaceAll(fmt.Sprintf(groupsPolicy, true), "dc1", "dc2"))
	if err := b.Reload(cfg.Clone()); err != nil {
		t.Fatalf("a reload of a server reading allocation stats: %v", err)
	}
	if n := len(b.Policies(ctx)); n != 2 {
		t.Errorf("%d policies after the reload, want 2", n)
	}
}

// TestReloadSaysGivenPoliciesStay: an agent given its policies
// (Options.Policies: a replay's) keeps them at a reload, whatever
// policies.dir holds now, and its log says so rather than report a reload
// of policies it did not read.
func TestReloadSaysGivenPoliciesStay(t *testing.T) {
	dir := t.TempDir()
	cfg := config.DevDefault()
	cfg.Name = "given-test"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	cfg.Policies.Dir = dir
	logs := &syncbuf.Buffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: logs})
	given := devPolicies(t)
	a, err := New(cfg, Options{Logger: log, Policies: given})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	write(t, filepath.Join(dir, "dc1.hcl"), fmt.Sprintf(groupsPolicy, false))
	if err := a.Reload(cfg.Clone()); err != nil {
		t.Fatal(err)
	}
	if n := len(a.Policies(context.Background())); n != len(given) {
		t.Errorf("%d policies after the reload, want the %d given", n, len(given))
	}
	if out := logs.String(); !strings.Contains(out, "the policies it started with") || !strings.Contains(out, "restart") {
		t.Errorf("the reload's log does not say the given policies stay until a restart:\n%s", out)
	}
}

// TestReloadRotatesTheCertificate: a reload after the TLS certificate and
// key were replaced in place (the same paths: a certificate renewed before
// it expires) makes the HTTP API present the new certificate on its next
// connections, and logs the rotation once with the files that changed;
// a reload with the files unchanged rotates nothing and logs none; a reload
// that finds a certificate and a key that do not belong together is
// refused, and the API keeps presenting the last good one. Before, the
// agent served the certificate it started with until a restart.
func TestReloadRotatesTheCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "foreshape")
	files := testpki.WriteFiles(t, dir, "agent", ca, ca.Issue(t, "agent-1"))
	cfg := config.DevDefault()
	cfg.Name = "tls-test"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	cfg.Policies.Dir = dir
	cfg.TLS = config.TLS{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}
	write(t, filepath.Join(dir, "dc1.hcl"), fmt.Sprintf(groupsPolicy, false))
	logs := &syncbuf.Buffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: logs})
	a, err := New(cfg, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, a.Run, a.Close)
	// presented is the name of the certificate a new connection to the
	// API is shown, trusting the CA.
	presented := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", a.HTTPAddr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
		if err != nil {
			t.Fatalf("TLS connection to the API: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := presented(); got != "agent-1" {
		t.Fatalf("the API presents %s; want agent-1", got)
	}
	if err := a.Reload(cfg.Clone()); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); strings.Contains(out, "rotated") || strings.Contains(out, "file changed") {
		t.Errorf("a reload with the files unchanged logs a change:\n%s", out)
	}

	testpki.WriteFiles(t, dir, "agent", ca, ca.Issue(t, "agent-2"))
	if err := a.Reload(cfg.Clone()); err != nil {
		t.Fatal(err)
	}
	if got := presented(); got != "agent-2" {
		t.Errorf("after the reload the API presents %s; want agent-2", got)
	}
	out := logs.String()
	if strings.Count(out, "TLS certificate rotated") != 1 || !strings.Contains(out, "changed=\"tls.cert_file, tls.key_file\"") ||
		!strings.Contains(out, "subject=CN=agent-2") || strings.Contains(out, "file changed") {
		t.Errorf("the reload's log does not say once that both files rotated (and nothing waits for a restart):\n%s", out)
	}
	if err := a.Reload(cfg.Clone()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "TLS certificate rotated"); n != 1 {
		t.Errorf("a second reload with the same files logged the rotation again (%d in all)", n)
	}

	// A certificate whose key is still the old one: refused, kept.
	third := ca.Issue(t, "agent-3")
	if err := os.WriteFile(files.Cert, third.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(cfg.Clone()); err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Errorf("a reload with a certificate and a key that do not match: %v; want it refused naming tls.cert_file", err)
	}
	if got := presented(); got != "agent-2" {
		t.Errorf("after the refused reload the API presents %s; want agent-2 still", got)
	}
	// A good certificate and key beside a CA file without a PEM
	// certificate: refused, kept.
	testpki.WriteFiles(t, dir, "agent", ca, ca.Issue(t, "agent-4"))
	if err := os.WriteFile(files.CA, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(cfg.Clone()); err == nil || !strings.Contains(err.Error(), "tls.ca_file") {
		t.Errorf("a reload with a CA file holding no certificate: %v; want it refused naming tls.ca_file", err)
	}
	if got := presented(); got != "agent-2" {
		t.Errorf("after the refused reload the API presents %s; want agent-2 still", got)
	}
}

// TestReloadKeepsPoliciesOverABrokenFile: a reload that finds a policy
// file of policies.dir broken (half written, a typo) keeps every running
// policy, the other files' too, and says where the error is.
func TestReloadKeepsPoliciesOverABrokenFile(t *testing.T) {
	a, cfg, _, _ := reloadAgent(t)
	ctx := context.Background()
	bad := filepath.Join(cfg.Policies.Dir, "web.hcl")
	for _, src := range []string{
		"shaping \"web\" {\n  locality {\n    datacenter = \"dc7\"\n", // half written
		"shaping \"web\" {\n  locality {\n    datacenter = \"dc7\"\n  }\n  headroom {\n    cpus = 20\n  }\n}\n",
	} {
		write(t, bad, src)
		err := a.Reload(cfg.Clone())
		if err == nil || !strings.Contains(err.Error(), "keeping the previous") || !strings.Contains(err.Error(), bad+":") {
			t.Errorf("Reload over a broken %s: %v; want it refused at the file", bad, err)
		}
		if n := len(a.Policies(ctx)); n != 4 {
			t.Errorf("%d policies after the refused reload, want the previous 4", n)
		}
	}
}

// TestReloadLeavesPrometheusAccessToARestart: the prometheus block's
// settings are read at the agent's start: a reload that changes them
// (a header, the token file's path) logs each by name, never its value,
// and so does one that finds prometheus.ca_file replaced in place. The
// token file itself is read at every query, so a token written over it
// is no change a reload logs; a token file that is gone is refused, as
// at a start.
func TestReloadLeavesPrometheusAccessToARestart(t *testing.T) {
	dir := t.TempDir()
	polDir := devPoliciesDir(t, dir)
	ca := testpki.NewCA(t, "prometheus")
	files := testpki.WriteFiles(t, dir, "prometheus", ca, ca.Issue(t, "prometheus"))
	token, other := filepath.Join(dir, "token"), filepath.Join(dir, "other-token")
	write(t, token, "first-token-value\n")
	write(t, other, "other-token-value\n")
	cfg := config.DevDefault()
	cfg.Name = "reload-test"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	cfg.Policies.Dir = polDir
	cfg.Prometheus = config.Prometheus{Address: "https://127.0.0.1:1", CAFile: files.CA, TokenFile: token,
		Headers: map[string]config.Secret{"X-Scope-OrgID": "tenant-one"}}
	logs := &syncbuf.Buffer{}
	a, err := New(cfg, Options{Logger: hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: logs})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })

	write(t, token, "rotated-token-value\n")
	if err := a.Reload(nil); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); strings.Contains(out, "prometheus.") {
		t.Errorf("a token written over prometheus.token_file is logged as a change:\n%s", out)
	}

	next := cfg.Clone()
	next.Prometheus.TokenFile = other
	next.Prometheus.Headers["X-Scope-OrgID"] = "tenant-two"
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, f := range []string{"prometheus.token_file", "prometheus.headers"} {
		if !strings.Contains(out, "takes effect after a restart: field="+f) {
			t.Errorf("the log does not say %s needs a restart:\n%s", f, out)
		}
	}
	for _, secret := range []string{"tenant-one", "tenant-two", "token-value"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows the secret %q:\n%s", secret, out)
		}
	}

	// The CA replaced in place: read again at the next start only.
	write(t, files.CA, string(testpki.NewCA(t, "prometheus-2").CertPEM))
	if err := a.Reload(nil); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); !strings.Contains(out, "it is read again after a restart, and the agent uses what it read at its start until then: field=prometheus.ca_file") {
		t.Errorf("the log does not say prometheus.ca_file changed in place:\n%s", out)
	}

	if err := os.Remove(token); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(nil); err == nil || !strings.Contains(err.Error(), "Cannot read prometheus.token_file") {
		t.Errorf("a reload with prometheus.token_file gone: %v; want it refused", err)
	}
}

// TestReloadReadsTheReadOnlyTokens: a reload reads acl.read_token_file
// again, as it does acl.token_file: a read-only token added reads at
// once and is refused a change; one removed is refused.
func TestReloadReadsTheReadOnlyTokens(t *testing.T) {
	a, cfg, dir, _ := reloadAgent(t)
	pause := func(token string) int {
		req := httptest.NewRequest("POST", "/v1/queue/pause", nil)
		req.Header.Set("X-Foreshape-Token", token)
		rec := httptest.NewRecorder()
		a.api.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := status(a, "r3ad"); got != 403 {
		t.Fatalf("a token in no file answers %d, want 403", got)
	}
	next := cfg.Clone()
	next.ACL.ReadTokenFile = filepath.Join(dir, "read-tokens")
	write(t, next.ACL.ReadTokenFile, "r3ad\n")
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := status(a, "r3ad"); got != 200 {
		t.Errorf("the read-only token reads %d after the reload, want 200", got)
	}
	if got := pause("r3ad"); got != 403 {
		t.Errorf("the read-only token's pause answers %d, want 403", got)
	}
	write(t, next.ACL.ReadTokenFile, "other\n")
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := status(a, "r3ad"); got != 403 {
		t.Errorf("a read-only token removed from the file reads %d after the reload, want 403", got)
	}
}

// TestReloadRefusesAPeersFileTheNextStartWould: a peers.json left in a
// running server's data_dir that its next start would refuse (here not
// JSON) refuses a reload too, naming the file, as every other check of
// the next start does; once the file is gone the same reload applies.
func TestReloadRefusesAPeersFileTheNextStartWould(t *testing.T) {
	t.Parallel()
	cfg := serverConfig(t, t.TempDir())
	cfg.Policies.Dir = devPoliciesDir(t, t.TempDir())
	a, stop := runAgent(t, cfg)
	defer stop()
	eventually(t, 30*time.Second, "a leader", func() bool { _, ok := a.node.LeaderContext(); return ok })
	peers := filepath.Join(cfg.DataDir, cluster.PeersFile)
	write(t, peers, "[{\"id\": \"a\" \"address\": \"127.0.0.1:1\"}]\n")
	next := cfg.Clone()
	next.LogLevel = "error"
	err := a.Reload(next)
	if err == nil || !strings.Contains(err.Error(), "peers.json") || !strings.Contains(err.Error(), "keeping the previous") {
		t.Fatalf("Reload error = %v; want one naming peers.json that keeps the previous configuration", err)
	}
	if err := os.Remove(peers); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(next); err != nil {
		t.Fatalf("Reload without the file: %v", err)
	}
}
