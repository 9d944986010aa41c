package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/internal/realnomad"
)

// realNomad returns the address of the real Nomad the operator pointed the
// tests at, or skips the test saying how to run it.
func realNomad(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("NOMAD_ADDR")
	if addr == "" {
		t.Skip("NOMAD_ADDR is not set: this test runs the agent against a real Nomad (a dev agent will do: " +
			"nomad agent -dev, or ../shared/tools/nomad-dev; with mutual TLS, e2e/testdata/tlsnomad.sh, and NOMAD_CACERT, " +
			"NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY as Nomad's CLI reads them); the simulator tests cover the same paths without one")
	}
	return addr
}

// statsGate is a reverse proxy in front of a real Nomad that can make every
// node's stats unreachable, as a network fault would, while the rest of the
// API keeps answering. It serves plain HTTP and calls a Nomad with TLS as
// the test does (realnomad.TLS: NOMAD_CACERT and the client certificate).
type statsGate struct {
	srv     *httptest.Server
	blocked atomic.Bool
}

func newStatsGate(t *testing.T, target string) *statsGate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &statsGate{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	if tc := realnomad.TLS(); tc != nil && u.Scheme == "https" {
		hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		if err := nomadapi.ConfigureTLS(hc, tc); err != nil {
			t.Fatalf("the TLS files of NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY: %v", err)
		}
		proxy.Transport = hc.Transport
	}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.blocked.Load() && strings.HasPrefix(r.URL.Path, "/v1/client/stats") {
			http.Error(w, "unreachable (blocked by the test)", http.StatusBadGateway)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		g.srv.CloseClientConnections() // the agent's blocking queries
		g.srv.Close()
	})
	return g
}

// TestAgentAgainstRealNomad runs the agent against the Nomad at NOMAD_ADDR
// through the real nomad/api client (through statsGate, which calls a
// Nomad with TLS with the test's certificates): it collects the node's stats and the
// locality's aggregates, lists them with their points, says it is warming
// up, and marks them stale (withdrawing the forecast) when the node's stats
// stop answering. With FORESHAPE_E2E_LONG set it also waits (about 13
// minutes of one-minute steps) for the first forecast.
func TestAgentAgainstRealNomad(t *testing.T) {
	addr := realNomad(t)
	client := realnomad.Client(t, addr, realnomad.Token())
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatalf("list the nodes of %s: %v", addr, err)
	}
	var node *nomadapi.NodeListStub
	for _, n := range nodes {
		if n.Status == "ready" {
			node = n
			break
		}
	}
	if node == nil {
		t.Fatalf("%s has no ready node", addr)
	}
	gate := newStatsGate(t, addr)

	dir := t.TempDir()
	polDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(polDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dc := node.Datacenter
	if err := os.WriteFile(filepath.Join(polDir, "dc.hcl"), []byte(fmt.Sprintf(`shaping "real" {
  locality {
    datacenter = %q
  }
  forecast {
    step    = "1m"
    horizon = "30m"
    history = "1d"
  }
}
`, dc)), 0o600); err != nil {
		t.Fatal(err)
	}
	httpPort, raftPort := freePort(t), freePort(t)
	token := ""
	if tok := os.Getenv("NOMAD_TOKEN"); tok != "" {
		token = fmt.Sprintf("  token = %q\n", tok)
	}
	cfg := fmt.Sprintf(`
name      = "e2e-real"
data_dir  = %q
bind_addr = "127.0.0.1"
server {
  enabled          = true
  bootstrap_expect = 1
  raft_port        = %d
}
nomad {
  address = %q
%s}
http {
  address = "127.0.0.1:%d"
}
policies {
  dir = %q
}
`, filepath.Join(dir, "data"), raftPort, gate.srv.URL, token, httpPort, polDir)
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, "agent", "agent", "-config", cfgPath)
	started := time.Now()
	agentURL := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, agentURL+"/v1/health", 30*time.Second)
	c := &api.Client{Address: agentURL}
	ctx := context.Background()

	wait := func(d time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s", d, what)
			}
			time.Sleep(time.Second)
		}
	}
	series := func() map[string]api.Series {
		all, err := c.Series(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]api.Series{}
		for _, s := range all {
			out[s.Series] = s
		}
		return out
	}

	// Collection: the node's series (keyed by its ID, named) and the
	// locality's, with their points.
	nodeCPU, dcCPU := "node/"+node.ID+":cpu", dc+":cpu"
	wait(90*time.Second, "the first collection", func() bool {
		s := series()
		return s[nodeCPU].Points > 0 && s[dcCPU].Points > 0
	})
	s := series()
	if n := s[nodeCPU]; n.Node != node.Name || n.First.IsZero() || n.First.After(n.Last) || n.Stale {
		t.Errorf("%s = %+v: want the node's name %q, its first and last points, fresh", nodeCPU, n, node.Name)
	}
	if l := s[dcCPU]; l.LastValue < 0 || l.LastValue > 100 || l.First.IsZero() {
		t.Errorf("%s = %+v: want a percent and its first point", dcCPU, l)
	}
	t.Logf("collected from %s: %s %.1f%% (%d points), %s %.1f%%", addr, dcCPU, s[dcCPU].LastValue, s[dcCPU].Points, nodeCPU, s[nodeCPU].LastValue)

	// The series show a cycle's samples as soon as they are applied; the
	// cycle's forecasts are published once it has also forecast and acted
	// (a few hundred milliseconds later): wait for them.
	wait(30*time.Second, "the first cycle's result", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.LastCycle != nil
	})

	// Warming up: the API, `status` and `forecast show` say how far the
	// locality is from its first forecast, and when it is due.
	warming := regexp.MustCompile(`warming up: \d+ of 12 points, first forecast at \S+`)
	fcs, err := c.Forecast(ctx, dc, "cpu")
	if err != nil || len(fcs) != 1 || fcs[0].Status != api.ForecastWarmingUp || !warming.MatchString(fcs[0].Note) {
		t.Errorf("GET /v1/forecast/%s?metric=cpu = %+v, %v; want it warming up", dc, fcs, err)
	}
	for _, args := range [][]string{{"status", "-address", agentURL}, {"forecast", "show", "-address", agentURL, "-metric", "cpu", dc}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil || !warming.Match(out) {
			t.Errorf("foreshape %s: %v\n%s\nwant a warming-up line", strings.Join(args, " "), err, out)
		}
	}

	// Staleness: the node's stats stop answering; its series and the
	// locality's are marked stale with the reason, at the next cycle.
	gate.blocked.Store(true)
	wait(150*time.Second, "the series to be marked stale", func() bool {
		s := series()
		return s[nodeCPU].Stale && s[dcCPU].Stale
	})
	s = series()
	if r := s[nodeCPU].StaleReason; !strings.Contains(r, node.Name) {
		t.Errorf("%s stale for %q; want a reason naming the node", nodeCPU, r)
	}
	if r := s[dcCPU].StaleReason; !strings.Contains(r, "none of the locality's 1 nodes answered") && !strings.Contains(r, "nodes answered") {
		t.Errorf("%s stale for %q; want a reason giving the coverage", dcCPU, r)
	}
	// The cycle that marked them publishes its result a moment later.
	var last *api.Cycle
	wait(30*time.Second, "the last cycle to report the stats failure", func() bool {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last = st.LastCycle
		return last != nil && strings.Contains(last.Error, "stats")
	})
	if fcs, err := c.Forecast(ctx, dc, "cpu"); err != nil || len(fcs) != 1 || fcs[0].Status != api.ForecastStale {
		t.Errorf("GET /v1/forecast/%s?metric=cpu = %+v, %v; want it stale (last cycle %+v)", dc, fcs, err, last)
	}
	gate.blocked.Store(false)
	wait(150*time.Second, "the stale marks to clear", func() bool {
		s := series()
		return !s[nodeCPU].Stale && !s[dcCPU].Stale
	})

	if os.Getenv("FORESHAPE_E2E_LONG") == "" {
		t.Log("set FORESHAPE_E2E_LONG=1 to wait for the first forecast too (about 13 minutes of one-minute steps)")
		return
	}
	var fc api.Forecast
	wait(20*time.Minute, "the first forecast", func() bool {
		fcs, err := c.Forecast(ctx, dc, "cpu")
		if err == nil && len(fcs) == 1 && fcs[0].Ready() {
			fc = fcs[0]
			return true
		}
		return false
	})
	if len(fc.Times) != 30 || fc.Line == nil || fc.Model == "" {
		t.Errorf("forecast: %d steps, line %v, model %q; want 30 one-minute steps to the 30m horizon with the headroom line", len(fc.Times), fc.Line, fc.Model)
	}
	t.Logf("first forecast of %s %s after the agent started: model %s, origin %s, p50 at +30m %.1f%%",
		dcCPU, time.Since(started).Round(time.Second), fc.Model, fc.Origin.Format(time.RFC3339), fc.Band(0.5)[len(fc.Times)-1])
}
