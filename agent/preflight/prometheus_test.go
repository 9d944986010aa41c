package preflight_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/promtest"
	"github.com/foreshape/foreshape/internal/testpki"
	"github.com/foreshape/foreshape/plugins/source"
	promsource "github.com/foreshape/foreshape/plugins/source/prometheus"
)

// The tests below load a prometheus block from a file, run the start
// checks on it (what the agent and `config validate` run), and query a
// real Prometheus with the Prometheus source they make, as the agent
// does.

// iopsTarget is a scrape target whose dc1 has 42 IOPS.
func iopsTarget(t *testing.T) promtest.Target {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE t_iops gauge\nt_iops{datacenter=\"dc1\"} 42\n")
	}))
	t.Cleanup(srv.Close)
	return promtest.Target{Job: "t", Addr: strings.TrimPrefix(srv.URL, "http://")}
}

// waitForIOPS waits until prom has scraped dc1's IOPS, and a second more:
// the source reads whole steps of a second, up to the one before now.
func waitForIOPS(t *testing.T, prom *promtest.Server) {
	t.Helper()
	prom.WaitForSeries(t, "t_iops", time.Time{}, 30*time.Second)
	time.Sleep(1500 * time.Millisecond)
}

// promStart loads the prometheus block body (its address first) over f's
// server and runs the start checks.
func promStart(t *testing.T, f fixture, body string) (*preflight.Start, error) {
	t.Helper()
	path := write(t, filepath.Join(f.dir, "agent.hcl"), fmt.Sprintf("data_dir = %q\npolicies {\n  dir = %q\n}\nprometheus {\n%s\n}\n",
		filepath.Join(f.dir, "data"), f.policies, body))
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		return nil, preflight.Err(diags)
	}
	start, diags := preflight.Check(cfg, preflight.Options{})
	return start, preflight.Err(diags)
}

// collectIOPS reads dc1's IOPS with the source the start checks made.
func collectIOPS(t *testing.T, start *preflight.Start) ([]source.Sample, error) {
	t.Helper()
	if start.Prometheus == nil {
		t.Fatal("the start checks made no Prometheus source settings")
	}
	pc := *start.Prometheus
	pc.Queries = map[string]string{source.IOPS: `sum(t_iops{ {{.Matchers}} })`}
	pc.Timeout = 5 * time.Second
	s, err := promsource.New(pc, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Collect(context.Background(), source.Request{Now: time.Now(), Lookback: 30 * time.Second, Step: time.Second,
		Localities: []source.Locality{{Datacenter: "dc1"}}})
	return res.Samples, err
}

// wantIOPS fails unless the source start made reads dc1's 42 IOPS.
func wantIOPS(t *testing.T, start *preflight.Start) {
	t.Helper()
	samples, err := collectIOPS(t, start)
	if err != nil || len(samples) == 0 || samples[len(samples)-1].Value != 42 {
		t.Fatalf("%d samples (%v), error %v; want dc1's 42 IOPS", len(samples), samples, err)
	}
}

// wantFailure fails unless err says each of want.
func wantFailure(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the collection succeeded; want it to fail saying %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %v\ndoes not say %q", err, w)
		}
	}
}

// TestPrometheusTLS: a Prometheus whose certificate a private CA signed
// (which the host's CAs, and SSL_CERT_FILE, do not hold: WithoutCAFile)
// and that requires a client
// certificate signed by another CA answers the source given
// prometheus.ca_file, cert_file and key_file; without one of them, or
// with a certificate it does not trust, every query fails saying why.
func TestPrometheusTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	f := newFixture(t)
	dir := t.TempDir()
	serverCA, clientCA, otherCA := testpki.NewCA(t, "prometheus"), testpki.NewCA(t, "prometheus clients"), testpki.NewCA(t, "other")
	server := testpki.WriteFiles(t, dir, "server", serverCA, serverCA.Issue(t, "prom.internal"))
	clientLeaf := clientCA.Issue(t, "foreshape")
	client := testpki.WriteFiles(t, dir, "client", clientCA, clientLeaf)
	other := testpki.WriteFiles(t, dir, "other", otherCA, otherCA.Issue(t, "foreshape"))
	prom := promtest.Start(t, promtest.Options{ScrapeInterval: 200 * time.Millisecond, Web: &promtest.Web{
		CertFile: server.Cert, KeyFile: server.Key, ClientCAFile: client.CA,
		Client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverCA.Pool(),
			Certificates: []tls.Certificate{clientLeaf.TLSCertificate(t)}}}},
	}}, iopsTarget(t))
	waitForIOPS(t, prom)
	addr := fmt.Sprintf("  address = %q\n", prom.URL)
	clientCert := fmt.Sprintf("  cert_file = %q\n  key_file = %q\n", client.Cert, client.Key)

	t.Run("PrivateCAAndClientCertificate", func(t *testing.T) {
		start, err := promStart(t, f, addr+fmt.Sprintf("  ca_file = %q\n", server.CA)+clientCert)
		if err != nil {
			t.Fatal(err)
		}
		wantIOPS(t, start)
	})
	t.Run("ClientCertificateMissing", func(t *testing.T) {
		start, err := promStart(t, f, addr+fmt.Sprintf("  ca_file = %q\n", server.CA))
		if err != nil {
			t.Fatal(err)
		}
		_, err = collectIOPS(t, start)
		wantFailure(t, err, "requires a client certificate: set prometheus.cert_file and prometheus.key_file")
	})
	t.Run("ClientCertificateOfAnotherCA", func(t *testing.T) {
		start, err := promStart(t, f, addr+fmt.Sprintf("  ca_file = %q\n  cert_file = %q\n  key_file = %q\n", server.CA, other.Cert, other.Key))
		if err != nil {
			t.Fatal(err)
		}
		_, err = collectIOPS(t, start)
		wantFailure(t, err, "refuses the client certificate: prometheus.cert_file must be signed by a CA it trusts, or it is not sent")
	})
	t.Run("WithoutCAFile", func(t *testing.T) {
		start, err := promStart(t, f, addr+clientCert)
		if err != nil {
			t.Fatal(err)
		}
		_, err = collectIOPS(t, start)
		wantFailure(t, err, "certificate signed by unknown authority", "set prometheus.ca_file to its CA")
	})
	t.Run("CAFileOfAnotherCA", func(t *testing.T) {
		start, err := promStart(t, f, addr+fmt.Sprintf("  ca_file = %q\n", other.CA)+clientCert)
		if err != nil {
			t.Fatal(err)
		}
		_, err = collectIOPS(t, start)
		wantFailure(t, err, "certificate signed by unknown authority", "against prometheus.ca_file "+other.CA)
	})
	t.Run("ServerName", func(t *testing.T) {
		start, err := promStart(t, f, addr+fmt.Sprintf("  ca_file = %q\n  tls_server_name = \"prom.internal\"\n", server.CA)+clientCert)
		if err != nil {
			t.Fatal(err)
		}
		wantIOPS(t, start)
		start, err = promStart(t, f, addr+fmt.Sprintf("  ca_file = %q\n  tls_server_name = \"other.internal\"\n", server.CA)+clientCert)
		if err != nil {
			t.Fatal(err)
		}
		_, err = collectIOPS(t, start)
		wantFailure(t, err, "certificate is valid for", "other.internal", "for prometheus.tls_server_name, or else the address's host")
	})
	t.Run("SkipVerify", func(t *testing.T) {
		start, err := promStart(t, f, addr+"  skip_verify = true\n"+clientCert)
		if err != nil {
			t.Fatal(err)
		}
		wantIOPS(t, start)
	})
}

// bcryptCorrectHorse is the bcrypt hash (cost 4) of "correct-horse",
// computed once with golang.org/x/crypto/bcrypt.
const bcryptCorrectHorse = "$2a$04$Ybk96SUKUvPb1l4neCWIQ.cLFmzxmXJTiz9lM/3gfdEfGXJW1YmfO"

// TestPrometheusBasicAuth: a Prometheus that requires basic auth answers
// the source given prometheus.username and password_file; a wrong
// password, or none, fails every query with Prometheus's 401 and what the
// request carried. The password file is read again for every request:
// the password written over it is used at the next query, without a
// restart or a reload.
func TestPrometheusBasicAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	f := newFixture(t)
	prom := promtest.Start(t, promtest.Options{ScrapeInterval: 200 * time.Millisecond, Web: &promtest.Web{
		Users: map[string]string{"foreshape": bcryptCorrectHorse}, Username: "foreshape", Password: "correct-horse",
	}}, iopsTarget(t))
	waitForIOPS(t, prom)
	password := write(t, filepath.Join(f.dir, "password"), "correct-horse\n")
	start, err := promStart(t, f, fmt.Sprintf("  address = %q\n  username = \"foreshape\"\n  password_file = %q\n", prom.URL, password))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("RightPassword", func(t *testing.T) {
		wantIOPS(t, start)
	})
	t.Run("WrongPassword", func(t *testing.T) {
		write(t, password, "battery-staple\n")
		_, err := collectIOPS(t, start)
		wantFailure(t, err, "answered 401 Unauthorized", `the request carried basic auth as "foreshape", with the password of prometheus.password_file `+password)
		if strings.Contains(err.Error(), "battery-staple") {
			t.Errorf("the error shows the password: %v", err)
		}
	})
	t.Run("PasswordRotated", func(t *testing.T) {
		write(t, password, "correct-horse")
		wantIOPS(t, start)
	})
	t.Run("NoCredentials", func(t *testing.T) {
		start, err := promStart(t, f, fmt.Sprintf("  address = %q\n", prom.URL))
		if err != nil {
			t.Fatal(err)
		}
		_, err = collectIOPS(t, start)
		wantFailure(t, err, "answered 401 Unauthorized", "the request carried no credentials: set prometheus.token_file, or prometheus.username and prometheus.password_file")
	})
}

// recorder is a proxy's fault handler that records the Authorization and
// X-Scope-OrgID headers each request carried, and passes it on.
type recorder struct {
	mu   sync.Mutex
	seen []string // "Authorization|X-Scope-OrgID"
}

func (r *recorder) record(p *promtest.Proxy) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, req.Header.Get("Authorization")+"|"+req.Header.Get("X-Scope-OrgID"))
		r.mu.Unlock()
		p.Pass(w, req)
	}
}

// took returns what was recorded since the last call.
func (r *recorder) took() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.seen
	r.seen = nil
	return out
}

// TestPrometheusBearerTokenAndHeaders: every query carries the bearer
// token of prometheus.token_file and the headers of prometheus.headers
// (Prometheus checks no bearer token, so a proxy in front of it records
// them). The token file is read again for every request: a token written
// over it (rotated) is sent at the next query, without a restart or a
// reload; a token file that is gone fails the queries, saying so.
func TestPrometheusBearerTokenAndHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	f := newFixture(t)
	prom := promtest.Start(t, promtest.Options{ScrapeInterval: 200 * time.Millisecond}, iopsTarget(t))
	waitForIOPS(t, prom)
	proxy := prom.Proxy(t)
	rec := &recorder{}
	proxy.Fail(rec.record(proxy))
	token := write(t, filepath.Join(f.dir, "token"), "first-token\n")
	start, err := promStart(t, f, fmt.Sprintf("  address = %q\n  token_file = %q\n  headers = { \"X-Scope-OrgID\" = \"tenant-1\" }\n", proxy.URL, token))
	if err != nil {
		t.Fatal(err)
	}
	check := func(wantAuth string) {
		t.Helper()
		wantIOPS(t, start)
		seen := rec.took()
		if len(seen) == 0 {
			t.Fatal("no request reached the proxy")
		}
		for _, s := range seen {
			if s != wantAuth+"|tenant-1" {
				t.Errorf("a request carried %q; want %q", s, wantAuth+"|tenant-1")
			}
		}
	}
	check("Bearer first-token")
	// Rotated as a secrets agent does: a new file renamed over the old.
	next := write(t, filepath.Join(f.dir, "token.new"), "second-token\n")
	if err := os.Rename(next, token); err != nil {
		t.Fatal(err)
	}
	check("Bearer second-token")
	if err := os.Remove(token); err != nil {
		t.Fatal(err)
	}
	_, err = collectIOPS(t, start)
	wantFailure(t, err, "cannot read the bearer token (prometheus.token_file)", token)
	if seen := rec.took(); len(seen) != 0 {
		t.Errorf("requests without the token reached Prometheus: %q", seen)
	}
}
