// Package promtest starts a real Prometheus server (Debian's `prometheus`
// package) for tests that need one: it writes a scrape configuration for
// the given targets, starts the server on a free loopback port with its
// storage in a temporary directory, waits until it is ready, and stops it
// when the test ends.
//
// It is test support only and must never be imported by non-test code.
// When the binary is missing the test is skipped, unless
// FORESHAPE_REQUIRE_PROMETHEUS is set (as CI does), in which case it fails.
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// Target is one scrape target.
type Target struct {
	Job  string // job name
	Addr string // host:port
	// More are further host:port targets of the same job.
	More        []string
	MetricsPath string // default /metrics
	Params      map[string]string
}

// Server is a running Prometheus.
type Server struct {
	URL string // http://127.0.0.1:port, or https:// with Options.Web's TLS

	web *Web
}

// Options configure the server.
type Options struct {
	// ScrapeInterval is how often every target is scraped; zero means
	// every second.
	ScrapeInterval time.Duration
	// AcceptPast lets Prometheus store samples up to this far behind the
	// newest it holds (its TSDB's out_of_order_time_window). Prometheus
	// stamps its own series (up, scrape_duration_seconds) with the wall
	// clock, so samples a target stamps with an earlier time — the
	// simulator stamps its samples with its virtual time — are refused as
	// too old without it.
	AcceptPast time.Duration
	// Web, when set, is what Prometheus's --web.config.file asks of its
	// clients: TLS, a client certificate, basic auth.
	Web *Web
	// RuleFiles are rule files Prometheus loads (its rule_files),
	// evaluated every ScrapeInterval.
	RuleFiles []string
}

// Web is Prometheus's web configuration (--web.config.file).
type Web struct {
	// CertFile and KeyFile are the server's certificate and key: with
	// them, Prometheus speaks only https.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes Prometheus require a client
	// certificate signed by it (RequireAndVerifyClientCert).
	ClientCAFile string
	// Users are basic auth's users, each with its password's bcrypt hash;
	// with any, Prometheus refuses a request without one of them.
	Users map[string]string
	// Client is how Start's readiness check and WaitForSeries reach the
	// server (trusting its CA, presenting a certificate); nil:
	// http.DefaultClient. Username and Password, when set, are their
	// basic auth.
	Client             *http.Client
	Username, Password string
}

// get asks the server for path as Web says.
func (s *Server) get(path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		return nil, err
	}
	client := http.DefaultClient
	if w := s.web; w != nil {
		if w.Client != nil {
			client = w.Client
		}
		if w.Username != "" {
			req.SetBasicAuth(w.Username, w.Password)
		}
	}
	return client.Do(req)
}

// Start starts Prometheus scraping targets as opts say.
func Start(t testing.TB, opts Options, targets ...Target) *Server {
	t.Helper()
	scrapeInterval := opts.ScrapeInterval
	if scrapeInterval <= 0 {
		scrapeInterval = time.Second
	}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("FORESHAPE_REQUIRE_PROMETHEUS") != "" {
			t.Fatalf("promtest: prometheus binary not found and FORESHAPE_REQUIRE_PROMETHEUS is set: %v", err)
		}
		t.Skip("promtest: prometheus not installed (apt-get install prometheus); skipping")
	}
	dir := t.TempDir()
	var cfg bytes.Buffer
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", model.Duration(scrapeInterval), model.Duration(scrapeInterval))
	if opts.AcceptPast > 0 {
		fmt.Fprintf(&cfg, "storage:\n  tsdb:\n    out_of_order_time_window: %s\n", model.Duration(opts.AcceptPast))
	}
	if len(opts.RuleFiles) > 0 {
		cfg.WriteString("rule_files:\n")
		for _, f := range opts.RuleFiles {
			abs, err := filepath.Abs(f)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&cfg, "  - %q\n", abs)
		}
	}
	cfg.WriteString("scrape_configs:\n")
	for _, tg := range targets {
		path := tg.MetricsPath
		if path == "" {
			path = "/metrics"
		}
		fmt.Fprintf(&cfg, "  - job_name: %q\n    metrics_path: %q\n", tg.Job, path)
		if len(tg.Params) > 0 {
			cfg.WriteString("    params:\n")
			for k, v := range tg.Params {
				fmt.Fprintf(&cfg, "      %s: [%q]\n", k, v)
			}
		}
		addrs := make([]string, 0, 1+len(tg.More))
		for _, a := range append([]string{tg.Addr}, tg.More...) {
			addrs = append(addrs, strconv.Quote(a))
		}
		fmt.Fprintf(&cfg, "    static_configs:\n      - targets: [%s]\n", strings.Join(addrs, ", "))
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}
	scheme := "http"
	if w := opts.Web; w != nil {
		var web bytes.Buffer
		if w.CertFile != "" {
			scheme = "https"
			fmt.Fprintf(&web, "tls_server_config:\n  cert_file: %q\n  key_file: %q\n", w.CertFile, w.KeyFile)
			if w.ClientCAFile != "" {
				fmt.Fprintf(&web, "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %q\n", w.ClientCAFile)
			}
		}
		if len(w.Users) > 0 {
			web.WriteString("basic_auth_users:\n")
			for u, hash := range w.Users {
				fmt.Fprintf(&web, "  %q: %q\n", u, hash)
			}
		}
		webPath := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(webPath, web.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--web.config.file="+webPath)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("promtest: start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	s := &Server{URL: scheme + "://" + addr, web: opts.Web}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := s.get("/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("promtest: prometheus not ready after 30s: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitForSeries polls until query, evaluated at the given time (zero: the
// server's now), returns a non-empty instant vector.
func (s *Server) WaitForSeries(t testing.TB, query string, at time.Time, timeout time.Duration) {
	t.Helper()
	q := url.Values{"query": {query}}
	if !at.IsZero() {
		q.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := s.get("/api/v1/query?" + q.Encode())
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if strings.Contains(b.String(), `"result":[{`) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("promtest: no result for %q within %v", query, timeout)
}

// Rule is a rule Prometheus evaluates, as /api/v1/rules reports it.
type Rule struct {
	Name      string `json:"name"`
	Type      string `json:"type"` // "alerting" or "recording"
	State     string `json:"state"`
	Health    string `json:"health"` // "ok", "err" or "unknown" before its first evaluation
	LastError string `json:"lastError"`
	Alerts    []struct {
		Labels map[string]string `json:"labels"`
		State  string            `json:"state"` // "pending" or "firing"
	} `json:"alerts"`
}

// Rules returns every rule of the loaded rule files.
func (s *Server) Rules(t testing.TB) []Rule {
	t.Helper()
	resp, err := s.get("/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Groups []struct {
				Rules []Rule `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("promtest: /api/v1/rules: %v", err)
	}
	var out []Rule
	for _, g := range body.Data.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Proxy stands between a client and a running Prometheus and can make it
// fail as an operator meets it: slow, down, answering 5xx or 429, or a
// page that is not Prometheus's JSON. Without a fault it passes every
// request through.
type Proxy struct {
	URL string // http://127.0.0.1:port

	mu       sync.Mutex
	pass     http.Handler
	fault    http.HandlerFunc
	requests int
}

// Proxy starts a proxy in front of s, closed when the test ends.
func (s *Server) Proxy(t testing.TB) *Proxy {
	t.Helper()
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{pass: httputil.NewSingleHostReverseProxy(target)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests++
		fault := p.fault
		p.mu.Unlock()
		if fault != nil {
			fault(w, r)
			return
		}
		p.pass.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Fail makes the proxy answer every request with h instead of passing it
// on; nil passes them on again.
func (p *Proxy) Fail(h http.HandlerFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = h
}

// Pass passes a request on to Prometheus, for a fault that fails only
// some requests.
func (p *Proxy) Pass(w http.ResponseWriter, r *http.Request) { p.pass.ServeHTTP(w, r) }

// Requests is how many requests the proxy has had.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}
