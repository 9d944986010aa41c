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
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Target is one scrape target.
type Target struct {
	Job         string // job name
	Addr        string // host:port
	MetricsPath string // default /metrics
	Params      map[string]string
}

// Server is a running Prometheus.
type Server struct {
	URL string // http://127.0.0.1:port
}

// Start starts Prometheus scraping targets every scrapeInterval.
func Start(t testing.TB, scrapeInterval time.Duration, targets ...Target) *Server {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("FORESHAPE_REQUIRE_PROMETHEUS") != "" {
			t.Fatalf("promtest: prometheus binary not found and FORESHAPE_REQUIRE_PROMETHEUS is set: %v", err)
		}
		t.Skip("promtest: prometheus not installed (apt-get install prometheus); skipping")
	}
	dir := t.TempDir()
	var cfg bytes.Buffer
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\nscrape_configs:\n", scrapeInterval, scrapeInterval)
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
		fmt.Fprintf(&cfg, "    static_configs:\n      - targets: [%q]\n", tg.Addr)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
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
	s := &Server{URL: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/-/ready")
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

// WaitForSeries polls until query returns a non-empty instant vector.
func (s *Server) WaitForSeries(t testing.TB, query string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL + "/api/v1/query?query=" + url.QueryEscape(query))
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

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
