package agent

import (
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/internal/testpki"
)

// TestPrometheusMetricsSetting: telemetry.prometheus_metrics, on by
// default, serves the agent's metrics at /v1/metrics; false serves none
// (example.hcl: "Serve the agent's metrics in Prometheus format").
func TestPrometheusMetricsSetting(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg := config.DevDefault()
		cfg.Name = "metrics-test"
		cfg.HTTP.Address = "127.0.0.1:0"
		cfg.Nomad.Address = "http://127.0.0.1:1"
		cfg.Telemetry.PrometheusMetrics = on
		a, err := New(cfg, Options{Logger: testLogger(t), Policies: devPolicies(t)})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		a.api.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/metrics", nil))
		a.Close()
		want := http.StatusOK
		if !on {
			want = http.StatusNotFound
		}
		if rec.Code != want || on && !strings.Contains(rec.Body.String(), "# TYPE ") {
			t.Errorf("prometheus_metrics = %v: GET /v1/metrics answers %d %.200q; want %d", on, rec.Code, rec.Body.String(), want)
		}
	}
}

// queryRecorder is a Prometheus HTTP API that answers every range query
// with no series and remembers the queries it was asked.
type queryRecorder struct {
	mu      sync.Mutex
	queries []string
}

func (p *queryRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err == nil && r.Form.Get("query") != "" {
		p.mu.Lock()
		p.queries = append(p.queries, r.Form.Get("query"))
		p.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
}

func (p *queryRecorder) asked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.queries...)
}

// TestIOPSQuerySetting: prometheus.iops_query is the query the agent asks
// Prometheus for a locality's IOPS, its {{.Matchers}} the locality's
// label matchers, in place of node_exporter's default.
func TestIOPSQuerySetting(t *testing.T) {
	t.Parallel()
	prom := &queryRecorder{}
	srv := httptest.NewServer(prom)
	defer srv.Close()
	startDevAgentWith(t, 600, Options{}, func(cfg *config.Config) {
		cfg.Prometheus.Address = srv.URL
		cfg.Prometheus.IOPSQuery = `sum(site_disk_iops{ {{.Matchers}} })`
	})
	eventually(t, 30*time.Second, "a query of iops_query's for a locality", func() bool {
		for _, q := range prom.asked() {
			if strings.HasPrefix(q, "sum(site_disk_iops{ ") && strings.Contains(q, `datacenter="`) {
				return true
			}
		}
		return false
	})
	for _, q := range prom.asked() {
		if strings.Contains(q, "node_disk_reads_completed_total") && strings.Contains(q, "node_disk_writes_completed_total") {
			t.Errorf("the agent asked node_exporter's default IOPS query, %q, beside iops_query", q)
		}
	}
}

// TestReloadLogsANomadFileChangedInPlace: as example.hcl says, a
// nomad.* certificate or CA file replaced in place is logged by name at a
// reload, as waiting for the next start; a reload with it unchanged logs
// nothing of it.
func TestReloadLogsANomadFileChangedInPlace(t *testing.T) {
	dir := t.TempDir()
	nomadCA := testpki.NewCA(t, "nomad")
	files := testpki.WriteFiles(t, dir, "nomad-client", nomadCA, nomadCA.Issue(t, "client.global.nomad"))
	cfg := config.DevDefault()
	cfg.Name = "nomad-files-test"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "https://127.0.0.1:1"
	cfg.Nomad.CAFile, cfg.Nomad.CertFile, cfg.Nomad.KeyFile = files.CA, files.Cert, files.Key
	logs := &syncbuf.Buffer{}
	a, err := New(cfg, Options{Logger: hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: logs}), Policies: devPolicies(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Reload(cfg.Clone()); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); strings.Contains(out, "file changed") {
		t.Errorf("a reload with Nomad's files unchanged logs a change:\n%s", out)
	}
	other := testpki.NewCA(t, "nomad-2")
	if err := os.WriteFile(files.CA, other.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(cfg.Clone()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "setting's file changed; it is read again after a restart") || !strings.Contains(out, "field=nomad.ca_file") {
		t.Errorf("a reload after nomad.ca_file was replaced in place does not log it by name:\n%s", out)
	}
	for _, f := range []string{"nomad.cert_file", "nomad.key_file"} {
		if strings.Contains(out, "field="+f) {
			t.Errorf("the reload logs %s, whose file did not change:\n%s", f, out)
		}
	}
}

// TestReloadTurnsACLsOffAndOn: as agent -help and example.hcl say, a
// reload applies the whole acl block at once, acl.enabled too: turned off,
// the API answers without a token; turned on again, it refuses a request
// without one.
func TestReloadTurnsACLsOffAndOn(t *testing.T) {
	a, cfg, _, _ := reloadAgent(t)
	if got := status(a, ""); got != http.StatusForbidden {
		t.Fatalf("with ACLs on, a request without a token answers %d", got)
	}
	off := cfg.Clone()
	off.ACL = config.ACL{}
	if err := a.Reload(off); err != nil {
		t.Fatal(err)
	}
	if got := status(a, ""); got != http.StatusOK {
		t.Errorf("after a reload with acl.enabled = false, a request without a token answers %d; want 200", got)
	}
	if err := a.Reload(cfg.Clone()); err != nil {
		t.Fatal(err)
	}
	if got, with := status(a, ""), status(a, "old-token"); got != http.StatusForbidden || with != http.StatusOK {
		t.Errorf("after a reload with acl.enabled = true, a request without a token answers %d, with one %d; want 403 and 200", got, with)
	}
}

// TestRoleTagsAreTheOnesConfigRefuses: the role tags the agent gives its
// Consul service are the ones consul.tags may not name
// (config.ConsulRoleTags), so that no configured tag can pass for a role.
func TestRoleTagsAreTheOnesConfigRefuses(t *testing.T) {
	roles := []string{roleLeader, roleFollower, roleClient, roleServer}
	if !slices.Equal(roles, config.ConsulRoleTags) {
		t.Errorf("the agent's role tags are %q; config.ConsulRoleTags %q", roles, config.ConsulRoleTags)
	}
}
