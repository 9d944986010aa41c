package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/config"
)

// TestClientAgentDashboardUnderACLs: with ACLs on, a browser signs in to
// the dashboard through a client agent and reads its pages and its event
// stream, as on a server (docs/ui.md): the client agent passes /ui/ on to
// the leader, whose dashboard checks the token the sign-in form's cookie
// carries, and its forms' CSRF field. A page without the cookie is the
// sign-in form (403), not the client agent's JSON refusal.
func TestClientAgentDashboardUnderACLs(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 600)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := tc.serverConfig(0)
	cfg.Server.BootstrapExpect = 1
	cfg.Server.RetryJoin = nil
	cfg.ACL = config.ACL{Enabled: true, TokenFile: tokens}
	runAgentWith(t, cfg, Options{Logger: testLogger(t).Named(cfg.Name), Clock: tc.sim})
	tc.raft = tc.raft[:1]
	ccfg := config.Default()
	ccfg.Name = "client-a"
	ccfg.Server.Enabled = false
	ccfg.Server.RetryJoin = tc.raft
	ccfg.HTTP.Address = "127.0.0.1:0"
	ccfg.Nomad.Address = tc.sim.URL
	nomad, err := nomadapi.NewClient(&nomadapi.Config{Address: tc.sim.URL})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := nomad.Nodes().List(nil)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("nodes: %d, %v", len(nodes), err)
	}
	ccfg.Nomad.NodeID = nodes[0].ID
	ccfg.ACL = config.ACL{Enabled: true, TokenFile: tokens}
	c, err := NewClient(ccfg, Options{Logger: testLogger(t).Named("client-a"), Clock: tc.sim, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, c.Run, c.Close)
	base := "http://" + c.HTTPAddr()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		resp, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The client agent forwards once it reached the leader.
	eventually(t, 30*time.Second, "the client agent forwarding", func() bool {
		code, _ := get("/ui/login")
		return code != http.StatusServiceUnavailable
	})
	if code, body := get("/ui/queue"); code != http.StatusForbidden || !strings.Contains(body, `name="token"`) {
		t.Errorf("GET /ui/queue without a token through the client agent: %d %.300s; want 403 with the sign-in form", code, body)
	}
	if code, body := get("/ui/login?next=/ui/queue"); code != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Errorf("GET /ui/login through the client agent: %d %.300s; want the sign-in form", code, body)
	}
	resp, err := hc.PostForm(base+"/ui/login", url.Values{"token": {"t0ken"}, "next": {"/ui/queue"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "The queue is") {
		t.Fatalf("signing in through the client agent: %d %.300s; want the Queue page", resp.StatusCode, body)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(string(body))
	if csrf == nil {
		t.Fatalf("the Queue page through the client agent has no CSRF field:\n%.1000s", body)
	}
	resp, err = hc.PostForm(base+"/ui/queue/pause", url.Values{"csrf": {csrf[1]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "The queue is paused") {
		t.Errorf("pause through the client agent: %d %.300s", resp.StatusCode, body)
	}
	// The event stream says hello through the client agent.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ui/events", nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(resp.Body, buf, len("retry: 2000\nevent: hello"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(buf[:n]), "event: hello") {
		t.Errorf("the event stream through the client agent: %d %q", resp.StatusCode, buf[:n])
	}
}
