package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// statsCounter counts /v1/client/stats requests per node_id.
type statsCounter struct {
	next http.Handler
	mu   sync.Mutex
	n    map[string]int
}

func (c *statsCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/client/stats" {
		c.mu.Lock()
		c.n[r.URL.Query().Get("node_id")]++
		c.mu.Unlock()
	}
	c.next.ServeHTTP(w, r)
}

func (c *statsCounter) count(node string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[node]
}

// testCluster is three servers and client agents in one process, on
// loopback TCP, against one simulated Nomad cluster that servers and
// clients reach at different URLs so their requests can be told apart.
type testCluster struct {
	t       *testing.T
	sim     *testSim
	pols    func() []*policies.Policy // the policies of a server starting
	servers []*testServer
	leaderN *statsCounter
	raft    []string
	root    string
	// consul, when enabled, is the servers' Consul configuration.
	consul config.Consul
}

type testServer struct {
	cfg  *config.Config
	a    *Agent
	stop func()
	api  *api.Client
}

func newTestCluster(t *testing.T, speed float64) *testCluster {
	t.Helper()
	return newTestClusterOn(t, sim.DefaultScenario(), func() []*policies.Policy { return devPolicies(t) }, speed)
}

// newWebTestCluster is newTestCluster on webScenario, whose servers run
// webPolicies: for tests whose assertions do not depend on the default
// scenario's size, where three servers each collecting and forecasting
// its 24 nodes with the dev policies cost the most CPU.
func newWebTestCluster(t *testing.T, speed float64) *testCluster {
	t.Helper()
	return newTestClusterOn(t, webScenario(t), func() []*policies.Policy { return webPolicies(t) }, speed)
}

// newTestClusterOn is newTestCluster on sc, whose servers run the
// policies pols reads (for each server its own).
func newTestClusterOn(t *testing.T, sc *sim.Scenario, pols func() []*policies.Policy, speed float64) *testCluster {
	t.Helper()
	c, err := sim.New(sc, sim.Options{Logger: testLogger(t).Named("sim")})
	if err != nil {
		t.Fatal(err)
	}
	counter := &statsCounter{next: c.Handler(), n: map[string]int{}}
	srv := httptest.NewServer(counter)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = c.Run(ctx, speed)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
	})
	tc := &testCluster{t: t, sim: &testSim{Cluster: c, URL: srv.URL, speed: speed}, pols: pols, leaderN: counter, root: t.TempDir()}
	for range 3 {
		tc.raft = append(tc.raft, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	}
	return tc
}

// serverConfig is server i's configuration.
func (tc *testCluster) serverConfig(i int) *config.Config {
	cfg := config.Default()
	cfg.Name = fmt.Sprintf("server-%d", i)
	cfg.DataDir = filepath.Join(tc.root, cfg.Name)
	_, port, _ := strings.Cut(tc.raft[i], "127.0.0.1:")
	fmt.Sscan(port, &cfg.Server.RaftPort)
	cfg.Server.BootstrapExpect = 3
	cfg.Server.RetryJoin = tc.raft
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = tc.sim.URL
	if tc.consul.Enabled {
		cfg.Consul = tc.consul
	}
	return cfg
}

// start starts (or restarts) server i.
func (tc *testCluster) start(i int) *testServer {
	tc.t.Helper()
	return tc.startWith(i, Options{})
}

// startWith starts (or restarts) server i with the test-only options of
// o (its logger, policies, clock and version are the cluster's).
func (tc *testCluster) startWith(i int, o Options) *testServer {
	t := tc.t
	t.Helper()
	cfg := tc.serverConfig(i)
	o.Logger, o.Policies, o.Clock, o.Version = testLogger(t).Named(cfg.Name), tc.pols(), tc.sim, "test"
	a, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	s := &testServer{cfg: cfg, a: a, api: &api.Client{Address: "http://" + a.HTTPAddr()}}
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run: %v", cfg.Name, err)
			}
			a.Close()
		})
	}
	t.Cleanup(s.stop)
	if i < len(tc.servers) {
		tc.servers[i] = s
	} else {
		tc.servers = append(tc.servers, s)
	}
	return s
}

// startClient starts a client agent reporting on the Nomad node nodeID.
func (tc *testCluster) startClient(name, nodeID string) *Client {
	t := tc.t
	t.Helper()
	cfg := config.Default()
	cfg.Name = name
	cfg.Server.Enabled = false
	cfg.Server.RetryJoin = tc.raft
	cfg.HTTP.Address = "127.0.0.1:0"
	// The clients reach the simulator at their own URL.
	srv := httptest.NewServer(tc.sim.Cluster.Handler())
	t.Cleanup(srv.Close)
	cfg.Nomad.Address = srv.URL
	cfg.Nomad.NodeID = nodeID
	c, err := NewClient(cfg, Options{Logger: testLogger(t).Named(name), Clock: tc.sim, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
		c.Close()
	})
	return c
}

// startClientOnANode starts a client agent named name reporting on the
// simulator's first node.
func (tc *testCluster) startClientOnANode(name string) *Client {
	t := tc.t
	t.Helper()
	nomad, err := nomadapi.NewClient(&nomadapi.Config{Address: tc.sim.URL})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := nomad.Nodes().List(nil)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("nodes: %d, %v", len(nodes), err)
	}
	return tc.startClient(name, nodes[0].ID)
}

// leader waits for a leading server among the running ones.
func (tc *testCluster) leader(skip ...int) int {
	tc.t.Helper()
	found := -1
	eventually(tc.t, 30*time.Second, "a leader", func() bool {
		for i, s := range tc.servers {
			if s == nil || containsInt(skip, i) {
				continue
			}
			if _, ok := s.a.node.LeaderContext(); ok {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestServersAndClientAgents runs three servers that find each other with
// retry_join and bootstrap together, and two client agents that report
// their nodes' stats through them: any server's status shows every server
// with its suffrage and the client agents; the leader stops asking Nomad
// for the reported nodes' stats and keeps polling the others; followers
// answer forecasts from the leader's last cycle with their age; a new
// leader takes over when the leader stops, and the old one rejoins when it
// comes back; a follower passes an operator's remove-peer to the leader.
func TestServersAndClientAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers and two client agents")
	}
	t.Parallel()
	tc := newTestCluster(t, 600)
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	ctx := context.Background()
	follower := (l + 1) % 3

	eventually(t, 30*time.Second, "three voters named in a follower's status", func() bool {
		st, err := tc.servers[follower].api.Status(ctx)
		if err != nil || len(st.Peers) != 3 {
			return false
		}
		for _, p := range st.Peers {
			if p.Suffrage != "voter" || !strings.HasPrefix(p.Name, "server-") || p.HTTPAddress == "" {
				return false
			}
		}
		return true
	})

	nomad, err := nomadapi.NewClient(&nomadapi.Config{Address: tc.sim.URL})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := nomad.Nodes().List(nil)
	if err != nil || len(nodes) < 4 {
		t.Fatalf("nodes: %d, %v", len(nodes), err)
	}
	reported := []string{nodes[0].ID, nodes[1].ID}
	polled := nodes[2].ID
	ca := tc.startClient("client-a", reported[0])
	tc.startClient("client-b", reported[1])
	eventually(t, 30*time.Second, "both client agents in a follower's status", func() bool {
		st, err := tc.servers[follower].api.Status(ctx)
		return err == nil && len(st.Clients) == 2 && st.Clients[0].Reporting && st.Clients[1].Reporting
	})
	// A client agent's API answers with the leader's.
	viaClient, err := (&api.Client{Address: "http://" + ca.HTTPAddr()}).Status(ctx)
	if err != nil || !viaClient.IsLeader || len(viaClient.Clients) != 2 {
		t.Errorf("status through a client agent: %+v, %v; want the leader's", viaClient, err)
	}

	// From now on the leader reads the reported nodes from their agents.
	seen := map[time.Time]bool{}
	cycles := func() int {
		if st, err := tc.servers[l].api.Status(ctx); err == nil && st.LastCycle != nil {
			seen[st.LastCycle.Started] = true
		}
		return len(seen)
	}
	cycles()
	before := []int{tc.leaderN.count(reported[0]), tc.leaderN.count(reported[1]), tc.leaderN.count(polled)}
	eventually(t, 60*time.Second, "five more cycles", func() bool { return cycles() >= 6 })
	after := []int{tc.leaderN.count(reported[0]), tc.leaderN.count(reported[1]), tc.leaderN.count(polled)}
	t.Logf("leader's stats requests over five cycles: reported nodes %d and %d, a node without an agent %d",
		after[0]-before[0], after[1]-before[1], after[2]-before[2])
	if after[0]-before[0] > 1 || after[1]-before[1] > 1 {
		t.Errorf("the leader asked Nomad for the reported nodes' stats %d and %d times in five cycles", after[0]-before[0], after[1]-before[1])
	}
	if after[2]-before[2] < 4 {
		t.Errorf("the leader asked for the stats of a node without an agent %d times in five cycles", after[2]-before[2])
	}

	// A follower answers forecasts from the leader's last cycle.
	var fcs []api.Forecast
	eventually(t, 60*time.Second, "forecasts on a follower", func() bool {
		fcs, err = tc.servers[follower].api.Forecasts(ctx)
		return err == nil && len(fcs) > 0
	})
	for _, f := range fcs {
		if f.Published.IsZero() || f.AgeSeconds < 0 || f.AgeSeconds > 30 {
			t.Errorf("%s: published %v, age %.1fs", f.Series, f.Published, f.AgeSeconds)
		}
	}

	// The leader stops: another server leads, the clients report to it,
	// and the old leader rejoins when it restarts. A client agent backs
	// off (doubling, up to 30 s) while no server takes its reports, so on
	// a loaded machine, where the election takes seconds, its next report
	// may come half a minute after the new leader's first cycle.
	tc.servers[l].stop()
	next := tc.leader(l)
	eventually(t, 90*time.Second, "forecasts from the new leader", func() bool {
		fs, err := tc.servers[next].api.Forecasts(ctx)
		return err == nil && len(fs) > 0
	})
	eventually(t, 90*time.Second, "the clients to report to the new leader", func() bool {
		return tc.servers[next].a.reports.fresh(tc.sim.Cluster.Now()) == 2
	})
	tc.start(l)
	eventually(t, 90*time.Second, "the old leader back among three healthy voters", func() bool {
		rc, err := tc.servers[next].api.RaftConfiguration(ctx)
		if err != nil || len(rc.Servers) != 3 {
			return false
		}
		for _, s := range rc.Servers {
			if s.Suffrage != "voter" || s.Healthy == nil || !*s.Healthy {
				return false
			}
		}
		return true
	})

	// An operator removes a stopped server through a follower.
	cur := tc.leader()
	victim, via := (cur+1)%3, (cur+2)%3
	victimID := tc.servers[victim].a.node.Info().ID
	tc.servers[victim].stop()
	eventually(t, 30*time.Second, "remove-peer through a follower", func() bool {
		err := tc.servers[via].api.RemovePeer(ctx, victimID, "")
		var se *api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusServiceUnavailable {
			return false // the follower lost sight of the leader for a moment
		}
		if err != nil {
			t.Fatalf("remove-peer through a follower: %v", err)
		}
		return true
	})
	next = tc.leader(victim)
	rc, err := tc.servers[next].api.RaftConfiguration(ctx)
	if err != nil || len(rc.Servers) != 2 {
		t.Fatalf("configuration after remove-peer: %+v, %v", rc, err)
	}
	var se *api.StatusError
	if err := tc.servers[via].api.RemovePeer(ctx, "no-such-server", ""); !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Errorf("removing an unknown server: %v; want 404", err)
	}
}

// TestClientAgentFindsTheMovedLeader: a client agent forwards its API to
// the leader its last report's reply named, and reports only once per the
// leader's cycle (an hour here). When the server there has become a
// follower, or stopped (as a rolling update stops each server and starts
// it again at a new HTTP port), the next request still reaches the leader
// of the moment, at once: before, it answered 503 or 502 until the next
// report.
func TestClientAgentFindsTheMovedLeader(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 60)
	for i := range 3 {
		tc.startWith(i, Options{CycleInterval: time.Hour})
	}
	l := tc.leader()
	c := tc.startClientOnANode("client-a")
	ctx := context.Background()
	viaClient := &api.Client{Address: "http://" + c.HTTPAddr()}
	leads := func(want int) func() bool {
		return func() bool {
			st, err := viaClient.Status(ctx)
			return err == nil && st.IsLeader && st.Node == tc.servers[want].a.node.Info().ID
		}
	}
	eventually(t, 30*time.Second, "status through the client agent, from the leader", leads(l))

	// The server it forwards to no longer leads: the client agent's
	// cached leader is made a follower's, as after a hand-over. A
	// follower answers reads itself but refuses a write forwarded to it
	// as to the leader; the leader answers this one 404.
	follower := (l + 1) % 3
	c.mu.Lock()
	c.reply.LeaderHTTP = tc.servers[follower].a.HTTPAddr()
	c.mu.Unlock()
	var se *api.StatusError
	if err := viaClient.RemovePeer(ctx, "no-such-server", ""); !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Errorf("a write through the client agent forwarding to a follower: %v; want the leader's 404", err)
	}

	// The leader stops.
	var backup bytes.Buffer
	if _, err := viaClient.SaveSnapshot(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	stopped := tc.servers[l].a.HTTPAddr()
	c.mu.Lock()
	c.reply.LeaderHTTP = stopped
	c.mu.Unlock()
	tc.servers[l].stop()
	next := tc.leader(l)
	if st, err := viaClient.Status(ctx); err != nil || !st.IsLeader || st.Node != tc.servers[next].a.node.Info().ID {
		t.Errorf("status through the client agent after the leader stopped: %+v, %v; want the new leader's answer", st, err)
	}
	// A snapshot upload, which the client agent passes on as it arrives
	// rather than hold, finds the new leader too: nothing of it went to
	// the stopped one.
	c.mu.Lock()
	c.reply.LeaderHTTP = stopped
	c.mu.Unlock()
	if res, err := viaClient.RestoreSnapshot(ctx, bytes.NewReader(backup.Bytes()), nil); err != nil || res.AnsweredBy != tc.servers[next].a.name {
		t.Errorf("a restore through the client agent after the leader stopped: %+v, %v; want the new leader's answer", res, err)
	}
}

// lonelyClientConfig is a client agent's configuration named name whose
// servers nobody answers, with acl on and the token file (returned) holding
// "t0ken".
func lonelyClientConfig(t *testing.T, name string) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Name = name
	cfg.Server.Enabled = false
	cfg.Server.RetryJoin = []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))} // nobody there
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	cfg.Nomad.NodeID = "n1"
	cfg.ACL = config.ACL{Enabled: true, TokenFile: tokens}
	return cfg, tokens
}

// runClient starts a client agent of cfg, running until the test ends,
// and returns it with the context it runs under.
func runClient(t *testing.T, cfg *config.Config) (*Client, context.Context) {
	t.Helper()
	c, err := NewClient(cfg, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		c.Close()
	})
	return c, ctx
}

// TestClientAgentAPI: before a client agent has reached a server its API
// answers /v1/health and /v1/ready and says it cannot forward anything else; with acl
// enabled it refuses a request without a token before forwarding it.
func TestClientAgentAPI(t *testing.T) {
	cfg, tokens := lonelyClientConfig(t, "lonely")
	cfg.ACL.ReadTokenFile = filepath.Join(filepath.Dir(tokens), "read-tokens")
	if err := os.WriteFile(cfg.ACL.ReadTokenFile, []byte("r3ad\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, ctx := runClient(t, cfg)
	client := &api.Client{Address: "http://" + c.HTTPAddr()}
	if h, err := client.Health(ctx); err != nil || h.Node != "lonely" {
		t.Errorf("health: %+v, %v", h, err)
	}
	if h, err := client.Ready(ctx); err != nil || h.Status != "ok" {
		t.Errorf("ready (a client agent keeps no state to catch up with): %+v, %v", h, err)
	}
	var se *api.StatusError
	if _, err := client.Status(ctx); !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Message, api.DeniedNoToken) {
		t.Errorf("status without a token: %v; want 403 saying no token was sent", err)
	}
	client.Token = "t1ken"
	if _, err := client.Status(ctx); !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Message, api.DeniedUnknownToken) {
		t.Errorf("status with another token: %v; want 403 saying it is not one of the agent's", err)
	}
	// A read-only token passes a read on, and is refused a change here.
	client.Token = "r3ad"
	if _, err := client.Status(ctx); !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable || !strings.Contains(se.Message, "not reached a server") {
		t.Errorf("status with a read-only token before any server answered: %v; want 503", err)
	}
	if _, err := client.Pause(ctx, true); !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Message, api.DeniedReadOnly) {
		t.Errorf("pause with a read-only token: %v; want 403 saying it may only read", err)
	}
	client.Token = "t0ken"
	if _, err := client.Status(ctx); !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable || !strings.Contains(se.Message, "not reached a server") {
		t.Errorf("status before any server answered: %v; want 503", err)
	}
	if _, err := New(cfg, Options{}); err == nil {
		t.Error("New took a client agent's configuration")
	}
	srvCfg := config.Default()
	if _, err := NewClient(srvCfg, Options{}); err == nil {
		t.Error("NewClient took a server's configuration")
	}
}

// A client agent's reload reads its ACL token file again and applies the
// log level, back and forth; a change that needs a restart is logged at
// each reload until then.
func TestClientAgentReload(t *testing.T) {
	cfg, tokens := lonelyClientConfig(t, "reloading")
	logs := &syncbuf.Buffer{}
	c, err := NewClient(cfg, Options{Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: logs})})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code := func(token string) int {
		req := httptest.NewRequest("GET", "/v1/status", nil)
		req.Header.Set("X-Foreshape-Token", token)
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		return rec.Code
	}
	if code("t0ken") != http.StatusServiceUnavailable || code("n3w") != http.StatusForbidden {
		t.Fatalf("before the reload: t0ken %d, n3w %d; want 503 (no server yet) and 403", code("t0ken"), code("n3w"))
	}
	if err := os.WriteFile(tokens, []byte("n3w\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	next := cfg.Clone()
	next.LogLevel = "debug"
	next.Nomad.Address = "http://127.0.0.1:2"
	if err := c.Reload(next); err != nil {
		t.Fatal(err)
	}
	if code("n3w") != http.StatusServiceUnavailable || code("t0ken") != http.StatusForbidden {
		t.Errorf("after the reload: n3w %d, t0ken %d; want 503 and 403 (the token file read again)", code("n3w"), code("t0ken"))
	}
	if !c.log.IsDebug() {
		t.Error("the log level is not debug after a reload to debug")
	}
	if err := c.Reload(next); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "takes effect after a restart: field=nomad.address"); n != 2 {
		t.Errorf("nomad.address logged as waiting for a restart %d times in two reloads, want 2:\n%s", n, logs)
	}
	if err := c.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if c.log.IsDebug() {
		t.Error("the log level is still debug after a reload back to info")
	}
	if err := os.Remove(tokens); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(cfg); err == nil || !strings.Contains(err.Error(), "keeping the previous") {
		t.Errorf("a reload whose token file is gone: %v; want an error that keeps the running tokens", err)
	}
	if code("n3w") != http.StatusServiceUnavailable {
		t.Errorf("after a failed reload n3w answers %d, want 503", code("n3w"))
	}
}
