package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/internal/testpki"
)

// TestServersRollingUpdateOnRealNomad runs deploy/'s servers job as it is
// (count 3, bootstrap_expect 3) on three nodes of the real Nomad at
// NOMAD_ADDR, each with a Consul agent the servers find each other through,
// changed only in the driver (raw_exec where a node has no exec driver)
// and the artifacts' sources: this test serves them at
// FORESHAPE_E2E_ARTIFACT_HOST, an address of this host the nodes reach.
// Under ACLs the policy is attached to the job, and the servers call Nomad
// with their workload identity alone (checkWorkloadIdentity). It asks
// every server's /v1/health, /v1/ready and /v1/status every 100 ms
// while a job update replaces them one at a time, and checks that no
// sample saw two servers down, that no leader was missing for over 2 s,
// and that each came back with its Raft ID and the cluster ID; then that
// the leader's server, its task killed (SIGKILL), is restarted by Nomad
// and rejoins with its Raft ID, no sample seeing two servers down. It
// logs the figures docs/deployment.md quotes.
func TestServersRollingUpdateOnRealNomad(t *testing.T) {
	addr := realNomad(t)
	host := os.Getenv("FORESHAPE_E2E_ARTIFACT_HOST")
	if host == "" {
		t.Skip("FORESHAPE_E2E_ARTIFACT_HOST is not set: name an address of this host that the Nomad nodes reach; " +
			"the servers job fetches the binary and a policy from it")
	}
	setup := realnomad.Client(t, addr, realnomad.SetupToken(t, addr))
	if _, _, err := setup.Jobs().Info("foreshape-servers", nil); err == nil {
		t.Skipf("the Nomad at %s already runs job foreshape-servers: this test registers and purges a job of that name", addr)
	}
	nodes := serverNodes(t, setup)
	driver := "exec"
	for _, n := range nodes {
		if d := n.Drivers["exec"]; d == nil || !d.Healthy {
			driver = "raw_exec"
		}
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, n := range nodes {
		metaApply(t, setup, n.ID, "true")
		t.Cleanup(func() { metaApply(t, setup, n.ID, "") })
	}
	deployNomadPolicy(t, setup, "foreshape-servers", suffix)
	// The servers register in their node's Consul agent; under Consul's
	// ACLs, with a token of deploy/'s Consul policy made through the
	// Consul at CONSUL_HTTP_ADDR.
	var consulToken string
	if consulAddr := os.Getenv("CONSUL_HTTP_ADDR"); consulAddr != "" {
		consul, err := consulapi.NewClient(&consulapi.Config{Address: consulAddr, Token: os.Getenv("CONSUL_HTTP_TOKEN")})
		if err != nil {
			t.Fatal(err)
		}
		consulToken = consulACL(t, consul, suffix)
	}
	ca := testpki.NewCA(t, "foreshape-e2e")
	leaf := ca.Issue(t, "agent")
	putJobSecrets(t, setup, "foreshape-servers", consulToken, ca, leaf)

	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("FORESHAPE_E2E_ARTIFACT_HOST: %v", err)
	}
	artifacts := httptest.NewUnstartedServer(artifactHandler(t, fmt.Sprintf(`shaping "e2e" {
  locality {
    datacenter = %q
  }
  forecast {
    model    = "auto"
    horizon  = "1h"
    step     = "5m"
    history  = "14d"
    quantile = 0.9
  }
  headroom {
    cpu    = 25
    memory = 25
  }
}
`, nodes[0].Datacenter)))
	artifacts.Listener.Close()
	artifacts.Listener = ln
	artifacts.Start()
	t.Cleanup(artifacts.Close)

	servers := runJob(t, setup, "../deploy/foreshape-servers.nomad.hcl", []jobEdit{
		{`driver = "exec"`, fmt.Sprintf("driver = %q", driver)},
		{`"https://example.invalid/foreshape/foreshape_linux_amd64"`, strconv.Quote(artifacts.URL + "/foreshape_linux_amd64")},
		{`"git::https://example.invalid/ops/foreshape-policies.git"`, strconv.Quote(artifacts.URL + "/policies.tar.gz")},
	})
	start := time.Now()
	awaitDeployment(t, setup, servers, 0)
	t.Logf("three servers deployed %.1f s after the job's registration", time.Since(start).Seconds())
	checkWorkloadIdentity(t, setup, "foreshape-servers")

	s := newServerSampler(t, setup, ca, leaf)
	defer s.stop()
	var before map[string]string // node address -> Raft ID
	var clusterID string
	eventually(t, 60*time.Second, "three servers ready, one leading", func() bool {
		st, ok := s.leaderStatus()
		if !ok || len(st.Peers) != 3 || s.readyCount() != 3 {
			return false
		}
		before, clusterID = raftIDs(st), st.ClusterID
		return true
	})

	// A job update replaces the servers one at a time.
	s.reset()
	servers.Meta = map[string]string{"e2e": "update " + suffix}
	start = time.Now()
	if _, _, err := setup.Jobs().Register(servers, nil); err != nil {
		t.Fatalf("job update: %v", err)
	}
	awaitDeployment(t, setup, servers, 1)
	took := time.Since(start)
	eventually(t, 60*time.Second, "three servers ready after the update, with the Raft IDs and cluster ID they had", func() bool {
		st, ok := s.leaderStatus()
		return ok && s.readyCount() == 3 && st.ClusterID == clusterID && fmt.Sprint(raftIDs(st)) == fmt.Sprint(before)
	})
	r := s.report()
	t.Logf("job update: deployment successful after %.1f s; %s", took.Seconds(), r)
	if r.twoDown > 0 {
		t.Errorf("%d samples saw two servers answering nothing", r.twoDown)
	}
	if r.longestLeaderless > 2*time.Second {
		t.Errorf("no leader for %s at once during the rolling update", r.longestLeaderless)
	}

	// A server's task killed: Nomad restarts it and it rejoins.
	s.reset()
	leader := s.leaderNode()
	var victim *nomadapi.AllocationListStub
	stubs, _, err := setup.Jobs().Allocations(*servers.ID, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range stubs {
		if a.ClientStatus == "running" && a.NodeName == leader {
			victim = a
		}
	}
	if victim == nil {
		t.Fatalf("no running allocation on the leader's node %q", leader)
	}
	alloc, _, err := setup.Allocations().Info(victim.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := setup.Allocations().Signal(alloc, nil, "agent", "SIGKILL"); err != nil {
		t.Fatalf("nomad alloc signal -s SIGKILL: %v", err)
	}
	eventually(t, 30*time.Second, "the killed server answering nothing", func() bool { return s.down(leader) })
	eventually(t, 120*time.Second, "the killed leader's server restarted, ready, with the Raft IDs it had", func() bool {
		st, ok := s.leaderStatus()
		return ok && s.readyCount() == 3 && fmt.Sprint(raftIDs(st)) == fmt.Sprint(before)
	})
	r = s.report()
	t.Logf("the leader's task killed: all three ready again after %.1f s; %s", time.Since(killed).Seconds(), r)
	if r.twoDown > 0 {
		t.Errorf("%d samples saw two servers answering nothing", r.twoDown)
	}
}

// serverNodes are three ready, eligible nodes of the Nomad, on three
// distinct addresses none of them loopback.
func serverNodes(t *testing.T, c *nomadapi.Client) []*nomadapi.Node {
	t.Helper()
	stubs, _, err := c.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*nomadapi.Node
	seen := map[string]bool{}
	for _, s := range stubs {
		if s.Status != "ready" || s.SchedulingEligibility != "eligible" || len(nodes) == 3 {
			continue
		}
		n, _, err := c.Nodes().Info(s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		ip := net.ParseIP(n.Attributes["unique.network.ip-address"])
		if ip == nil || ip.IsLoopback() || seen[ip.String()] {
			continue
		}
		seen[ip.String()] = true
		nodes = append(nodes, n)
	}
	if len(nodes) < 3 {
		t.Skipf("the Nomad has %d ready, eligible nodes on distinct non-loopback addresses; the servers job needs three", len(nodes))
	}
	return nodes
}

// raftIDs maps each server's Raft address to its Raft ID.
func raftIDs(st api.Status) map[string]string {
	m := map[string]string{}
	for _, p := range st.Peers {
		m[p.Address] = p.ID
	}
	return m
}

// serverSampler asks every server of the job its /v1/health, /v1/ready
// and /v1/status every 100 ms, finding their HTTP addresses in Nomad's
// allocations.
type serverSampler struct {
	nomad  *nomadapi.Client
	client *http.Client
	done   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	addrs   map[string]string // node name -> the HTTP address of its running allocation
	last    map[string]sample
	samples []round
}

// round is one sample of every server.
type round struct {
	at  time.Time
	got map[string]sample
}

type sample struct {
	up, ready bool
	status    api.Status
}

type samplerReport struct {
	samples, twoDown, leaderless int
	longestLeaderless            time.Duration
	silent                       map[string]time.Duration // node name -> the longest it answered nothing
}

func (r samplerReport) String() string {
	names := make([]string, 0, len(r.silent))
	for n := range r.silent {
		names = append(names, n)
	}
	slices.Sort(names)
	out := fmt.Sprintf("%d samples, %d without a leader (at most %s at once), %d with two servers down; answered nothing for",
		r.samples, r.leaderless, r.longestLeaderless, r.twoDown)
	for _, n := range names {
		out += fmt.Sprintf(" %s %s", n, r.silent[n])
	}
	return out
}

func newServerSampler(t *testing.T, c *nomadapi.Client, ca *testpki.CA, leaf testpki.Leaf) *serverSampler {
	// The agents serve the test CA's leaf, issued for localhost: check
	// the chain and that name, as the agents check each other's chain.
	s := &serverSampler{nomad: c, done: make(chan struct{}), addrs: map[string]string{}, last: map[string]sample{},
		client: &http.Client{Timeout: 800 * time.Millisecond, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{leaf.TLSCertificate(t)},
		}}}}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for {
			s.findAddrs()
			select {
			case <-s.done:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *serverSampler) stop() {
	close(s.done)
	s.wg.Wait()
}

func (s *serverSampler) findAddrs() {
	stubs, _, err := s.nomad.Jobs().Allocations("foreshape-servers", false, nil)
	if err != nil {
		return
	}
	for _, a := range stubs {
		if a.ClientStatus != "running" {
			continue
		}
		alloc, _, err := s.nomad.Allocations().Info(a.ID, nil)
		if err != nil || alloc.AllocatedResources == nil {
			continue
		}
		for _, p := range alloc.AllocatedResources.Shared.Ports {
			if p.Label == "http" {
				s.mu.Lock()
				s.addrs[a.NodeName] = net.JoinHostPort(p.HostIP, strconv.Itoa(p.Value))
				s.mu.Unlock()
			}
		}
	}
}

func (s *serverSampler) get(addr, path string) (*http.Response, error) {
	return s.client.Get("https://" + addr + path)
}

func (s *serverSampler) sample() {
	s.mu.Lock()
	addrs := maps.Clone(s.addrs)
	s.mu.Unlock()
	at := time.Now()
	got := map[string]sample{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for node, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sm sample
			if resp, err := s.get(addr, "/v1/health"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sm.up = resp.StatusCode == http.StatusOK
			}
			if resp, err := s.get(addr, "/v1/ready"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sm.ready = resp.StatusCode == http.StatusOK
			}
			if resp, err := s.get(addr, "/v1/status"); err == nil {
				if resp.StatusCode == http.StatusOK {
					_ = json.NewDecoder(resp.Body).Decode(&sm.status)
				}
				resp.Body.Close()
			}
			mu.Lock()
			got[node] = sm
			mu.Unlock()
		}()
	}
	wg.Wait()
	s.mu.Lock()
	s.last = got
	s.samples = append(s.samples, round{at, got})
	s.mu.Unlock()
}

// leaderStatus is the status of the server that last said it leads.
func (s *serverSampler) leaderStatus() (api.Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sm := range s.last {
		if sm.status.IsLeader {
			return sm.status, true
		}
	}
	return api.Status{}, false
}

// leaderNode is the Nomad node whose server last said it leads.
func (s *serverSampler) leaderNode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for node, sm := range s.last {
		if sm.status.IsLeader {
			return node
		}
	}
	return ""
}

func (s *serverSampler) readyCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sm := range s.last {
		if sm.ready {
			n++
		}
	}
	return n
}

// reset forgets the samples taken so far.
func (s *serverSampler) reset() {
	s.mu.Lock()
	s.samples = nil
	s.mu.Unlock()
}

// report sums up the samples since the last reset: samples with two
// servers answering nothing, without a leader, and how long each server
// answered nothing at most (from its first sample without an answer to
// its next answer).
func (s *serverSampler) report() samplerReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := samplerReport{samples: len(s.samples), silent: map[string]time.Duration{}}
	since := map[string]time.Time{}
	var leaderlessSince time.Time
	for _, rd := range s.samples {
		down, leader := 0, false
		for node := range s.addrs {
			sm := rd.got[node]
			if !sm.up && sm.status.Node == "" {
				down++
				if since[node].IsZero() {
					since[node] = rd.at
				}
			} else if !since[node].IsZero() {
				r.silent[node] = max(r.silent[node], rd.at.Sub(since[node]))
				since[node] = time.Time{}
			}
			leader = leader || sm.status.IsLeader
		}
		if down >= 2 {
			r.twoDown++
		}
		switch {
		case leader && !leaderlessSince.IsZero():
			r.longestLeaderless = max(r.longestLeaderless, rd.at.Sub(leaderlessSince))
			leaderlessSince = time.Time{}
		case !leader:
			r.leaderless++
			if leaderlessSince.IsZero() {
				leaderlessSince = rd.at
			}
		}
	}
	if !leaderlessSince.IsZero() && len(s.samples) > 0 {
		r.longestLeaderless = max(r.longestLeaderless, s.samples[len(s.samples)-1].at.Sub(leaderlessSince))
	}
	return r
}

// down reports whether the node's server answered nothing in the last
// sample.
func (s *serverSampler) down(node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sm, ok := s.last[node]
	return ok && !sm.up && sm.status.Node == ""
}
