package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/sim"
)

// requestCounter counts the requests that reach a handler.
type requestCounter struct {
	next http.Handler
	n    atomic.Int64
}

func (c *requestCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.next.ServeHTTP(w, r)
}

// BenchmarkLeaderNomadRequests measures the leader's requests to Nomad per
// collection cycle against 1,000 simulated nodes, without client agents
// and with one on every node: a real server agent (Raft over loopback TCP)
// and real client agents, each reading its node from the simulator at its
// own URL and reporting through the server's Raft port, so the leader's
// requests are counted apart from theirs. leader-requests/cycle is the
// leader's, agent-requests/cycle all client agents' together.
func BenchmarkLeaderNomadRequests(b *testing.B) {
	nodes := benchNodes()
	for _, withClients := range []bool{false, true} {
		b.Run(fmt.Sprintf("nodes=%d/client_agents=%v", nodes, withClients), func(b *testing.B) {
			benchLeaderRequests(b, nodes, withClients)
		})
	}
}

func benchLeaderRequests(b *testing.B, nodes int, withClients bool) {
	c, err := sim.New(cycleScenario(nodes), sim.Options{SkipNodeMinutes: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Step(2 * time.Minute); err != nil {
		b.Fatal(err)
	}
	h := c.Handler()
	leaderN, agentsN := &requestCounter{next: h}, &requestCounter{next: h}
	leaderSrv, agentsSrv := httptest.NewServer(leaderN), httptest.NewServer(agentsN)
	defer leaderSrv.Close()
	defer agentsSrv.Close()
	clock := &testSim{Cluster: c, URL: leaderSrv.URL, speed: 1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The simulated clock follows the wall clock.
	go func() { _ = c.Run(ctx, 1) }()

	interval := 2 * time.Second
	cfg := config.Default()
	cfg.Name = "leader"
	cfg.DataDir = filepath.Join(b.TempDir(), "data")
	cfg.Server.RaftPort = freePort(b)
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = leaderSrv.URL
	quiet := hclog.New(&hclog.LoggerOptions{Level: benchLogLevel(), Output: hclog.DefaultOutput})
	a, err := New(cfg, Options{Logger: quiet, Policies: benchPolicies(b), Clock: clock, CycleInterval: interval})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		a.Close()
	}()
	waitCycles := func(n int) {
		b.Helper()
		seen := map[time.Time]bool{}
		deadline := time.Now().Add(time.Duration(n+5) * 4 * interval)
		for len(seen) < n+1 {
			if time.Now().After(deadline) {
				b.Fatalf("fewer than %d cycles before %v", n, deadline)
			}
			if r := a.latest.Load(); r != nil {
				seen[r.cycle.Started] = true
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCycles(2) // lists nodes, fits the models

	if withClients {
		nc, err := nomadapi.NewClient(&nomadapi.Config{Address: agentsSrv.URL})
		if err != nil {
			b.Fatal(err)
		}
		list, _, err := nc.Nodes().List(nil)
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for i, n := range list {
			ccfg := config.Default()
			ccfg.Name = fmt.Sprintf("client-%d", i)
			ccfg.Server.Enabled = false
			ccfg.Server.RetryJoin = []string{fmt.Sprintf("127.0.0.1:%d", cfg.Server.RaftPort)}
			ccfg.HTTP.Address = "127.0.0.1:0"
			ccfg.Nomad.Address = agentsSrv.URL
			ccfg.Nomad.NodeID = n.ID
			cl, err := NewClient(ccfg, Options{Logger: quiet, Clock: clock})
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = cl.Run(ctx)
				cl.Close()
			}()
		}
		defer func() { cancel(); wg.Wait() }()
		deadline := time.Now().Add(2 * time.Minute)
		for a.reports.fresh(time.Time{}) < len(list) {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d client agents reported", a.reports.fresh(time.Time{}), len(list))
			}
			time.Sleep(50 * time.Millisecond)
		}
		waitCycles(1)
	}
	leader0, agents0 := leaderN.n.Load(), agentsN.n.Load()
	b.ResetTimer()
	waitCycles(b.N)
	b.StopTimer()
	b.ReportMetric(float64(leaderN.n.Load()-leader0)/float64(b.N), "leader-requests/cycle")
	b.ReportMetric(float64(agentsN.n.Load()-agents0)/float64(b.N), "agent-requests/cycle")
}

// benchNodes is the cluster size of BenchmarkLeaderNomadRequests: 1,000,
// or FORESHAPE_BENCH_NODES.
func benchNodes() int {
	if n, err := strconv.Atoi(os.Getenv("FORESHAPE_BENCH_NODES")); err == nil && n > 0 {
		return n
	}
	return 1000
}

func benchLogLevel() hclog.Level {
	if l := os.Getenv("FORESHAPE_BENCH_LOG"); l != "" {
		return hclog.LevelFromString(l)
	}
	return hclog.Error
}
