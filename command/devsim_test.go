package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

func TestRemoteSimClockEstimatesSpeed(t *testing.T) {
	wall0 := time.Now()
	data0 := time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sim/clock" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		now := data0.Add(time.Duration(float64(time.Since(wall0)) * 120))
		// The simulation advances in ticks of a minute (half a second of
		// wall time at 120x): two readings a quarter second apart may agree.
		now = now.Truncate(time.Minute)
		_ = json.NewEncoder(w).Encode(map[string]any{"Now": now})
	}))
	defer srv.Close()
	c := &remoteSimClock{address: srv.URL}
	now, err := c.Now(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if now.Before(data0) {
		t.Errorf("Now = %v, before the sim's start", now)
	}
	if s := c.Speed(); s < 60 || s > 240 {
		t.Errorf("Speed = %v after the first reading, want about 120", s)
	}
	bad := &remoteSimClock{address: srv.URL + "/nope"}
	if _, err := bad.Now(context.Background()); err == nil {
		t.Error("no error from a server that is not a simulator")
	}
}

// TestRemoteSimClockFollows: an agent that does not lead, whose cycle
// never reads the clock, learns the simulator's speed from follow alone
// (its Speed was 1, its cycle interval a minute of wall time for a 1m
// step), and follow ends with its context.
func TestRemoteSimClockFollows(t *testing.T) {
	wall0 := time.Now()
	data0 := time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"Now": data0.Add(time.Duration(float64(time.Since(wall0)) * 120))})
	}))
	defer srv.Close()
	c := &remoteSimClock{address: srv.URL}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.follow(ctx, 50*time.Millisecond)
		close(done)
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s := c.Speed(); s >= 60 && s <= 240 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Speed = %v 10 s after follow started, want about 120", c.Speed())
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not return once its context was done")
	}
}

// startDevAgent runs `foreshape agent -dev` at 600 times real speed (as
// make dev does, faster) until the test ends, and returns its HTTP address
// and what it writes; the test fails if it exits with an error.
func startDevAgent(t *testing.T) (httpAddr string, out, errb *syncbuf.Buffer) {
	t.Helper()
	return startDevAgentAt(t, 600)
}

// startDevAgentAt is startDevAgent at speed times real speed.
func startDevAgentAt(t *testing.T, speed int) (httpAddr string, out, errb *syncbuf.Buffer) {
	t.Helper()
	httpAddr = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	out, errb = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"agent", "-dev", "-sim-speed", strconv.Itoa(speed), "-http-addr", httpAddr}, out, errb)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != ExitOK {
			t.Errorf("agent -dev exited %d\n%s", code, tailLines(errb.String(), 30))
		}
	})
	return httpAddr, out, errb
}

// TestDevAgentForecasts runs `foreshape agent -dev` as `make dev` does (at a
// higher speed) and waits for the dev policies' forecasts.
func TestDevAgentForecasts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dev agent")
	}
	t.Parallel()
	ctx := t.Context()
	_, out, errb := startDevAgent(t)
	addr := regexp.MustCompile(`HTTP API: (http://\S+)`)
	var client *api.Client
	for deadline := time.Now().Add(20 * time.Second); client == nil; time.Sleep(50 * time.Millisecond) {
		if m := addr.FindStringSubmatch(out.String()); m != nil {
			client = &api.Client{Address: m[1]}
		} else if time.Now().After(deadline) {
			t.Fatalf("no banner within 20s:\n%s\n%s", out.String(), errb.String())
		}
	}
	if !strings.Contains(out.String(), "Simulator: default scenario at 600x") {
		t.Errorf("the banner does not describe the embedded simulator:\n%s", out.String())
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		fcs, err := client.Forecast(ctx, "dc2", "cpu")
		if err == nil && len(fcs) == 1 && len(fcs[0].Bands) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dc2 cpu forecast within 60s (last error %v)\n%s", err, tailLines(errb.String(), 40))
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestAgentSaysWhyItStops: on the signal main turns into the context's
// cause, the agent logs that it is shutting down and why, that its
// leadership ended because of it (not "until this agent leads again"),
// and, last, that it stopped cleanly; it exits 0.
func TestAgentSaysWhyItStops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dev agent")
	}
	t.Parallel()
	httpAddr := freeAddr(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"agent", "-dev", "-sim-speed", "600", "-http-addr", httpAddr}, &out, &errb)
	}()
	eventuallyT(t, 30*time.Second, "the dev agent to lead", &errb, func() bool {
		return strings.Contains(errb.String(), "leading: starting the collect and forecast cycle")
	})
	cancel(errors.New("received interrupt"))
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("the agent exited %d:\n%s", code, tailLines(errb.String(), 30))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not stop within 30s")
	}
	logs := errb.String()
	// The reason and the leadership's end are logged by two goroutines
	// that both see the context end, in either order; both come before
	// raft stops, and the clean stop is last.
	stopped := strings.Index(logs, "raft stopped")
	for _, w := range []string{`shutting down: reason="received interrupt"`, "leadership ended: the agent is shutting down"} {
		if i := strings.Index(logs, w); i < 0 || stopped >= 0 && i > stopped {
			t.Fatalf("no %q before \"raft stopped\" in the agent's log:\n%s", w, tailLines(logs, 30))
		}
	}
	want := []string{"raft stopped", "agent stopped cleanly"}
	at := 0
	for _, w := range want {
		i := strings.Index(logs[at:], w)
		if i < 0 {
			t.Fatalf("no %q (after the lines before it in %q) in the agent's log:\n%s", w, want, tailLines(logs, 30))
		}
		at += i
	}
	if strings.Contains(logs, "until this agent leads again") {
		t.Errorf("the shutdown is logged as a lost leadership:\n%s", tailLines(logs, 30))
	}
}

// TestAgentLogsUnusedEnvironment: Nomad's TLS settings and Consul's
// address from the environment, where no client uses them (the dev
// agent's embedded simulator, no Consul), do not stop the agent, even
// naming a file that does not exist; it says once, at start, that they
// are unused and why, and again after a reload (SIGHUP) for what the
// reloaded configuration leaves unused: not CONSUL_HTTP_ADDR once the
// environment no longer sets it. NOMAD_HTTP_AUTH, which no setting
// takes, is said to be ignored the same way.
func TestAgentLogsUnusedEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dev agent")
	}
	t.Setenv("NOMAD_CACERT", filepath.Join(t.TempDir(), "absent-ca.pem"))
	t.Setenv("CONSUL_HTTP_ADDR", "127.0.0.1:1")
	t.Setenv("NOMAD_HTTP_AUTH", "alice:s3cret")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"agent", "-dev", "-sim-speed", "600", "-http-addr", freeAddr(t)}, &out, &errb)
	}()
	eventuallyT(t, 30*time.Second, "the dev agent to lead", &errb, func() bool {
		return strings.Contains(errb.String(), "leading: starting the collect and forecast cycle")
	})
	cacert := `setting unused: setting=nomad.ca_file from="environment variable NOMAD_CACERT" reason="-dev runs against its embedded simulated Nomad cluster, so no nomad setting is used"`
	consul := `setting unused: setting=consul.address from="environment variable CONSUL_HTTP_ADDR" reason="consul.enabled is false`
	count := func(when string, want map[string]int) {
		t.Helper()
		logs := errb.String()
		for line, n := range want {
			if got := strings.Count(logs, line); got != n {
				t.Errorf("%s: %d lines %q in the agent's log, want %d:\n%s", when, got, line, n, tailLines(logs, 30))
			}
		}
	}
	auth := `environment variable ignored: variable=NOMAD_HTTP_AUTH reason="foreshape has no setting for HTTP basic auth to Nomad and sends none`
	count("at start", map[string]int{cacert: 1, consul: 1, auth: 1})

	// The agent's SIGHUP handler is in place before it leads; the
	// package's parallel tests wait until this one is done.
	os.Unsetenv("CONSUL_HTTP_ADDR")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventuallyT(t, 30*time.Second, "the reload", &errb, func() bool {
		logs := errb.String()
		i := strings.Index(logs, "reloaded")
		return i >= 0 && strings.Contains(logs[i:], cacert)
	})
	// A reload refused says why in the log record itself, not only in the
	// diagnostics written beside it (a log_json line keeps its fields).
	t.Setenv("NOMAD_SKIP_VERIFY", "maybe")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventuallyT(t, 30*time.Second, "the refused reload", &errb, func() bool {
		_, line, ok := strings.Cut(errb.String(), "reload: the new configuration is invalid; keeping the running configuration and policies:")
		line, _, _ = strings.Cut(line, "\n")
		return ok && strings.Contains(line, "error=") && strings.Contains(line, "NOMAD_SKIP_VERIFY")
	})
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("the agent exited %d:\n%s", code, tailLines(errb.String(), 30))
	}
	count("after a reload", map[string]int{cacert: 2, consul: 1, auth: 2})
	if strings.Contains(errb.String(), "s3cret") {
		t.Error("the agent's log reveals NOMAD_HTTP_AUTH's password")
	}
}

// bannerAgent is a runningAgent for the banner alone.
type bannerAgent struct{ runningAgent }

func (bannerAgent) HTTPAddr() string { return "127.0.0.1:7575" }

// TestBannerWithTLS: with TLS on, the commands the banner suggests fail
// without the agent's CA (and, with tls.verify_incoming, a client
// certificate), so it says which flags and variables to set and its curl
// line passes them.
func TestBannerWithTLS(t *testing.T) {
	cfg := config.Default()
	cfg.TLS = config.TLS{CAFile: "/etc/foreshape/ca.pem", CertFile: "/etc/foreshape/agent.pem", KeyFile: "/etc/foreshape/agent-key.pem", VerifyIncoming: true}
	var out bytes.Buffer
	c := &AgentCommand{Meta: Meta{Ctx: context.Background(), Out: &out}}
	c.banner(bannerAgent{}, cfg, nil, nil, "")
	for _, want := range []string{"set FORESHAPE_CACERT, or add -ca-cert, to /etc/foreshape/ca.pem",
		"set FORESHAPE_CLIENT_CERT and FORESHAPE_CLIENT_KEY, or add -client-cert and -client-key",
		`curl -s --cacert "$FORESHAPE_CACERT" --cert "$FORESHAPE_CLIENT_CERT" --key "$FORESHAPE_CLIENT_KEY" `} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the banner does not say %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	cfg.TLS.VerifyIncoming = false
	c.banner(bannerAgent{}, cfg, nil, nil, "")
	if !strings.Contains(out.String(), `curl -s --cacert "$FORESHAPE_CACERT" `) || strings.Contains(out.String(), "CLIENT_CERT") {
		t.Errorf("a banner with TLS but not verify_incoming:\n%s", out.String())
	}
	out.Reset()
	cfg.TLS = config.TLS{}
	c.banner(bannerAgent{}, cfg, nil, nil, "")
	if strings.Contains(out.String(), "CACERT") || strings.Contains(out.String(), "--cert") {
		t.Errorf("a banner without TLS mentions it:\n%s", out.String())
	}
}

// TestBannerWithACLs: with ACLs on, the commands the banner suggests
// would be refused without a token, so it says where the token comes from
// and its curl line sends one.
func TestBannerWithACLs(t *testing.T) {
	cfg := config.Default()
	cfg.ACL = config.ACL{Enabled: true, TokenFile: "/etc/foreshape/acl-tokens"}
	var out bytes.Buffer
	c := &AgentCommand{Meta: Meta{Ctx: context.Background(), Out: &out}}
	c.banner(bannerAgent{}, cfg, nil, nil, "")
	for _, want := range []string{"set FORESHAPE_TOKEN, or add -token, to a token of /etc/foreshape/acl-tokens",
		`curl -s -H "X-Foreshape-Token: $FORESHAPE_TOKEN" http://127.0.0.1:7575/v1/forecasts`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the banner does not say %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	cfg.ACL = config.ACL{}
	c.banner(bannerAgent{}, cfg, nil, nil, "")
	if strings.Contains(out.String(), "TOKEN") {
		t.Errorf("a banner without ACLs mentions a token:\n%s", out.String())
	}
}
