package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/testpki"
	"github.com/foreshape/foreshape/internal/testport"
)

// fakeConsul records the service registrations the agent sends to Consul's
// agent endpoints and holds the services as a Consul agent does (by ID; a
// registration replaces the one before), and answers catalog lookups from
// what it holds in catalog. Its answers are real Consul's (measured on
// Consul 1.16.4): GET /v1/agent/service/ID and a deregistration of an ID it
// does not hold are 404 with a plain-text body. While down is set, every
// request fails with 500, as a Consul agent that lost its servers.
type fakeConsul struct {
	mu           sync.Mutex
	registered   []consulapi.AgentServiceRegistration
	services     map[string]consulapi.AgentServiceRegistration
	deregistered []string
	tokens       []string
	catalog      []*consulapi.CatalogService
	down         bool
	// hang holds every request until it is closed (or the caller gives
	// up), as a Consul agent that takes connections but does not answer.
	hang chan struct{}
	// held counts the requests hang holds now, by method and path; ended
	// lists those it held that ended without an answer (the caller gave up).
	held  map[string]int
	ended []string
	// refuse, when set, answers every request 403 with it as the body, as
	// Consul's ACLs do (measured on Consul 1.22.0: "ACL not found" for a
	// token Consul does not know, "Permission denied: token with
	// AccessorID '…' lacks permission 'service:write' on \"foreshape\""
	// for one without the grant).
	refuse string
	// refuseName, when set, answers the registration of a service of that
	// name 403, as Consul 1.22.0 does for a token without service:write on
	// it ("Permission denied: token with AccessorID '…' lacks permission
	// 'service:write' on \"foreshape-metrics\"", measured).
	refuseName string
	// hidden leaves the catalog's entries out of its answers, as Consul's
	// ACLs do for a token without node:read (200, an empty list and
	// X-Consul-Results-Filtered-By-ACLs: true; measured on Consul 1.16.4).
	hidden bool
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hang := f.hang
	f.mu.Unlock()
	if hang != nil {
		call := r.Method + " " + r.URL.Path
		f.mu.Lock()
		if f.held == nil {
			f.held = map[string]int{}
		}
		f.held[call]++
		f.mu.Unlock()
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		f.mu.Lock()
		f.held[call]--
		gaveUp := r.Context().Err() != nil
		if gaveUp {
			f.ended = append(f.ended, call)
		}
		f.mu.Unlock()
		if gaveUp {
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, r.Header.Get("X-Consul-Token"))
	if f.down {
		http.Error(w, "No cluster leader", http.StatusInternalServerError)
		return
	}
	if f.refuse != "" {
		http.Error(w, f.refuse, http.StatusForbidden)
		return
	}
	if f.services == nil {
		f.services = map[string]consulapi.AgentServiceRegistration{}
	}
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/v1/agent/service/register":
		var reg consulapi.AgentServiceRegistration
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &reg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if reg.Name == f.refuseName {
			http.Error(w, fmt.Sprintf("Permission denied: token with AccessorID 'e8d482e3-823d-b93e-3ff9-0c9e7da7ec4d' lacks permission 'service:write' on %q", reg.Name), http.StatusForbidden)
			return
		}
		f.registered = append(f.registered, reg)
		f.services[reg.ID] = reg
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/agent/service/deregister/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/agent/service/deregister/")
		if _, ok := f.services[id]; !ok {
			http.Error(w, fmt.Sprintf("Unknown service ID %q. Ensure that the service ID is passed, not the service name.", id), http.StatusNotFound)
			return
		}
		delete(f.services, id)
		f.deregistered = append(f.deregistered, id)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/agent/service/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/agent/service/")
		reg, ok := f.services[id]
		if !ok {
			http.Error(w, "unknown service ID: "+id, http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(consulapi.AgentService{ID: reg.ID, Service: reg.Name, Tags: reg.Tags, Meta: reg.Meta,
			Address: reg.Address, Port: reg.Port})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/catalog/service/"):
		name := strings.TrimPrefix(r.URL.Path, "/v1/catalog/service/")
		out := []*consulapi.CatalogService{}
		for _, s := range f.catalog {
			if s.ServiceName == name && !f.hidden {
				out = append(out, s)
			}
		}
		if f.hidden {
			w.Header().Set("X-Consul-Results-Filtered-By-ACLs", "true")
		}
		// Consul sends these on every catalog answer; the API client reads
		// no header after X-Consul-LastContact when that one is missing.
		w.Header().Set("X-Consul-Index", "1")
		w.Header().Set("X-Consul-KnownLeader", "true")
		w.Header().Set("X-Consul-LastContact", "0")
		_ = json.NewEncoder(w).Encode(out)
	default:
		http.NotFound(w, r)
	}
}

// set changes the fake under its lock.
func (f *fakeConsul) set(change func(f *fakeConsul)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// holds returns the service the fake holds under id.
func (f *fakeConsul) holds(id string) (consulapi.AgentServiceRegistration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reg, ok := f.services[id]
	return reg, ok
}

// registrations returns the registrations of the service named service
// the fake took, in order.
func (f *fakeConsul) registrations(service string) []consulapi.AgentServiceRegistration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []consulapi.AgentServiceRegistration
	for _, r := range f.registered {
		if r.Name == service {
			out = append(out, r)
		}
	}
	return out
}

// TestConsulRegistration runs a single server with Consul registration
// against a recording Consul: the service carries the leader tag, the
// version and the node in its meta, is checked on /v1/health every 10 s
// (Consul removes it after 10 minutes critical) and, a server, on
// /v1/ready, and is
// deregistered on shutdown; every request carries the token. Beside it the
// service foreshape-metrics, at the same address, tagged server, is
// checked on /v1/health alone (so a server that is not ready stays in
// Consul's DNS for Prometheus) and deregistered on shutdown too.
func TestConsulRegistration(t *testing.T) {
	t.Parallel()
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := config.DevDefault()
	cfg.Name = "agent-7"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	cfg.Consul = config.Consul{Enabled: true, Address: srv.URL, Token: "c0nsul", ServiceName: "foreshape", Tags: []string{"dev"}}
	a, err := New(cfg, Options{Logger: testLogger(t), Policies: devPolicies(t), Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	eventually(t, 10*time.Second, "the registration as leader", func() bool {
		regs := fake.registrations("foreshape")
		return len(regs) > 0 && slices.Contains(regs[len(regs)-1].Tags, roleLeader)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a.Close()
	regs := fake.registrations("foreshape")
	reg := regs[len(regs)-1]
	if reg.ID != "foreshape-agent-7" || reg.Name != "foreshape" || reg.Port == 0 || !slices.Equal(reg.Tags, []string{"dev", roleLeader}) {
		t.Errorf("registration = %+v", reg)
	}
	if reg.Meta[metaVersion] != "1.2.3" || reg.Meta[metaNode] != "agent-7" || reg.Meta[metaRole] != roleLeader {
		t.Errorf("meta = %v", reg.Meta)
	}
	if _, ok := reg.Meta[metaRaftAddress]; ok {
		t.Errorf("a dev agent (in-process Raft) advertised a raft address: %v", reg.Meta)
	}
	if len(reg.Checks) == 0 || !strings.HasSuffix(reg.Checks[0].HTTP, "/v1/health") || !strings.HasPrefix(reg.Checks[0].HTTP, "http://127.0.0.1:") ||
		reg.Checks[0].Interval != "10s" || reg.Checks[0].Timeout != "2s" || reg.Checks[0].DeregisterCriticalServiceAfter != "10m" || reg.Checks[0].TLSSkipVerify {
		t.Errorf("checks = %v; want /v1/health every 10s, 2s timeout, removed after 10m critical", reg.Checks)
	}
	if len(reg.Checks) != 2 || reg.Checks[1].HTTP != strings.TrimSuffix(reg.Checks[0].HTTP, "/v1/health")+"/v1/ready" ||
		reg.Checks[1].Interval != "10s" || reg.Checks[1].Timeout != "2s" || reg.Checks[1].DeregisterCriticalServiceAfter != "" {
		t.Errorf("checks = %v; want a second one, a server's readiness on /v1/ready, never deregistering", reg.Checks)
	}
	metrics := fake.registrations("foreshape-metrics")
	if len(metrics) != 1 {
		t.Fatalf("%d registrations of foreshape-metrics; want one, kept through the role's changes", len(metrics))
	}
	m := metrics[0]
	if m.ID != "foreshape-metrics-agent-7" || m.Address != reg.Address || m.Port != reg.Port || !slices.Equal(m.Tags, []string{"dev", roleServer}) ||
		m.Meta[metaNode] != "agent-7" || m.Meta[metaVersion] != "1.2.3" {
		t.Errorf("metrics registration = %+v; want the API's address, tagged server", m)
	}
	if len(m.Checks) != 1 || m.Checks[0].HTTP != reg.Checks[0].HTTP || m.Checks[0].CheckID != "service:foreshape-metrics-agent-7" ||
		m.Checks[0].DeregisterCriticalServiceAfter != "10m" {
		t.Errorf("metrics checks = %v; want /v1/health alone, as the main service's first", m.Checks)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if got := slices.Sorted(slices.Values(fake.deregistered)); !slices.Equal(got, []string{"foreshape-agent-7", "foreshape-metrics-agent-7"}) {
		t.Errorf("deregistered = %v, want both services on shutdown", got)
	}
	for _, tok := range fake.tokens {
		if tok != "c0nsul" {
			t.Errorf("a request carried token %q, want the configured one", tok)
		}
	}
}

// TestConsulServerAndClientOnOneNode: the deploy jobs run a server and a
// client agent on a server's node, both named after the node, registering
// in that node's Consul agent. Each keeps its own service there (the
// client's ID ends in -client) and the server its leader tag: sharing one
// ID, each replaced the other's registration, and every 30 s again.
func TestConsulServerAndClientOnOneNode(t *testing.T) {
	t.Parallel()
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	consul := config.Consul{Enabled: true, Address: srv.URL, ServiceName: "foreshape"}
	scfg := config.DevDefault()
	scfg.Name = "node-1"
	scfg.HTTP.Address = "127.0.0.1:0"
	scfg.Nomad.Address = "http://127.0.0.1:1"
	scfg.Consul = consul
	server, err := New(scfg, Options{Logger: testLogger(t).Named("server"), Policies: devPolicies(t)})
	if err != nil {
		t.Fatal(err)
	}
	ccfg := config.Default()
	ccfg.Name = "node-1"
	ccfg.Server.Enabled = false
	ccfg.Server.RetryJoin = []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	ccfg.HTTP.Address = "127.0.0.1:0"
	ccfg.Nomad.Address = "http://127.0.0.1:1"
	ccfg.Nomad.NodeID = "n1"
	ccfg.Consul = consul
	client, err := NewClient(ccfg, Options{Logger: testLogger(t).Named("client")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- server.Run(ctx) }()
	eventually(t, 10*time.Second, "the server registered as leader", func() bool {
		reg, ok := fake.holds("foreshape-node-1")
		return ok && slices.Contains(reg.Tags, roleLeader)
	})
	go func() { done <- client.Run(ctx) }()
	eventually(t, 10*time.Second, "the client agent registered", func() bool {
		_, ok := fake.holds("foreshape-node-1-client")
		return ok
	})
	if reg, ok := fake.holds("foreshape-node-1"); !ok || !slices.Contains(reg.Tags, roleLeader) || reg.Meta[metaRole] != roleLeader {
		t.Errorf("after the client agent registered, the server's service is %+v (held %v); want it still tagged leader", reg, ok)
	}
	if reg, _ := fake.holds("foreshape-node-1-client"); !slices.Contains(reg.Tags, roleClient) || reg.Meta[metaNode] != "node-1" || len(reg.Checks) != 1 {
		t.Errorf("the client agent's service = %+v; want tagged client, node node-1, its /v1/health checked alone", reg)
	}
	eventually(t, 10*time.Second, "both agents' metrics services", func() bool {
		s, ok := fake.holds("foreshape-metrics-node-1")
		c, cok := fake.holds("foreshape-metrics-node-1-client")
		return ok && cok && slices.Equal(s.Tags, []string{roleServer}) && slices.Equal(c.Tags, []string{roleClient}) && s.Port != c.Port
	})
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	server.Close()
	client.Close()
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.services) != 0 {
		t.Errorf("after both stopped the Consul agent holds %v; want both deregistered", slices.Sorted(maps.Keys(fake.services)))
	}
}

// TestConsulRegistrationFollowsRole: when the role changes the service is
// registered again with the new tag, and only then.
func TestConsulRegistrationFollowsRole(t *testing.T) {
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var mu sync.Mutex
	role := roleFollower
	ccfg := config.Consul{Address: srv.URL, ServiceName: "foreshape", Tags: []string{"eu"}}
	reg, err := newConsulRegistration(consulClient(t, ccfg), ccfg,
		registration{Name: "s1", HTTPAddr: "10.0.0.1:7575", RaftAddr: "10.0.0.1:7576", Version: "v",
			Role: func() string { mu.Lock(); defer mu.Unlock(); return role }}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reg.run(ctx, 10*time.Millisecond, time.Hour); close(done) }()
	eventually(t, 5*time.Second, "the follower registration", func() bool { return len(fake.registrations("foreshape")) == 1 })
	time.Sleep(100 * time.Millisecond) // ten checks without a change
	mu.Lock()
	role = roleLeader
	mu.Unlock()
	eventually(t, 5*time.Second, "the leader registration", func() bool { return len(fake.registrations("foreshape")) == 2 })
	cancel()
	<-done
	regs := fake.registrations("foreshape")
	if len(regs) != 2 {
		t.Fatalf("%d registrations; want one per role", len(regs))
	}
	for i, want := range []string{roleFollower, roleLeader} {
		r := regs[i]
		if !slices.Equal(r.Tags, []string{"eu", want}) || r.Meta[metaRaftAddress] != "10.0.0.1:7576" || r.Meta[metaRole] != want ||
			r.Address != "10.0.0.1" || r.Port != 7575 {
			t.Errorf("registration %d: tags %v, meta %v, %s:%d", i, r.Tags, r.Meta, r.Address, r.Port)
		}
	}
	if _, err := newConsulRegistration(consulClient(t, config.Consul{}), config.Consul{ServiceName: "foreshape"}, registration{Name: "x", HTTPAddr: "0.0.0.0:7575"}, testLogger(t)); err == nil {
		t.Error("a registration advertising 0.0.0.0 was accepted")
	}
}

// TestConsulRegistrationComesBack: a Consul agent that no longer holds the
// service as registered — restarted without its state (measured with a
// real Consul: the agents stayed unregistered until their role changed,
// so provider=consul found no server), deregistered by an operator,
// changed — gets it again at the next look, said in the log.
func TestConsulRegistrationComesBack(t *testing.T) {
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var logs syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs})
	ccfg := config.Consul{Address: srv.URL, ServiceName: "foreshape", Tags: []string{"eu"}}
	reg, err := newConsulRegistration(consulClient(t, ccfg), ccfg,
		registration{Name: "s1", HTTPAddr: "10.0.0.1:7575", RaftAddr: "10.0.0.1:7576", Version: "v",
			Role: func() string { return roleFollower }}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// A client agent looks at its role every minute; the look at Consul
	// comes every resync all the same.
	go func() { reg.run(ctx, time.Hour, 50*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	held := func() bool {
		s, ok := fake.holds("foreshape-s1")
		return ok && slices.Equal(s.Tags, []string{"eu", roleFollower}) && s.Meta[metaRaftAddress] == "10.0.0.1:7576"
	}
	eventually(t, 5*time.Second, "the registration", held)
	fake.set(func(f *fakeConsul) { clear(f.services) })
	eventually(t, 5*time.Second, "the registration after the Consul agent lost it", held)
	fake.set(func(f *fakeConsul) {
		s := f.services["foreshape-s1"]
		s.Tags = []string{"edited"}
		f.services["foreshape-s1"] = s
	})
	eventually(t, 5*time.Second, "the registration after its tags were changed", held)
	if _, ok := fake.holds("foreshape-metrics-s1"); !ok {
		t.Error("the Consul agent lost the metrics service and did not get it again")
	}
	if n := logs.count("consul registration made again: id=foreshape-s1 "); n != 2 {
		t.Errorf("%d lines say the registration was made again, want 2:\n%s", n, logs.String())
	}
	if n := logs.count("consul registration made again: id=foreshape-metrics-s1 "); n != 1 {
		t.Errorf("%d lines say the metrics registration was made again, want 1 (the Consul agent lost it once):\n%s", n, logs.String())
	}
	if n, m := len(fake.registrations("foreshape")), len(fake.registrations("foreshape-metrics")); n != 3 || m != 2 {
		t.Errorf("%d registrations and %d of foreshape-metrics, want 3 and 2 (the first and those made again): no registration while Consul holds it", n, m)
	}
}

// TestConsulFailuresLoggedOnce: a Consul that fails every try is said once
// with the error and Consul's address (not at every retry: 1, 2, 4 … 30 s
// apart, a line every 30 s for as long as it is down), and its first answer
// after is said once.
func TestConsulFailuresLoggedOnce(t *testing.T) {
	t.Parallel()
	fake := &fakeConsul{down: true}
	reg, srv, logs := loggedRegistration(t, fake)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reg.run(ctx, 10*time.Millisecond, time.Hour); close(done) }()
	defer func() { cancel(); <-done }()
	tries := func() int {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return len(fake.tokens)
	}
	eventually(t, 10*time.Second, "two tries", func() bool { return tries() >= 2 }) // 1 s apart, the next 2 s later
	fake.set(func(f *fakeConsul) { f.down = false })
	eventually(t, 10*time.Second, "the registration", func() bool { _, ok := fake.holds("foreshape-s1"); return ok })
	// One line for each service: each backs off on its own.
	eventually(t, 5*time.Second, "the recovery lines", func() bool { return logs.count("consul answers again") == 2 })
	for _, service := range []string{"foreshape", "foreshape-metrics"} {
		if n := logs.count("consul registration failed; retrying: service=" + service + " "); n != 1 {
			t.Errorf("%d failure lines of %s over %d failed tries, want 1:\n%s", n, service, tries()-1, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "address="+srv.URL) || !strings.Contains(logs.String(), "No cluster leader") {
		t.Errorf("the failure line names neither Consul's address nor its error:\n%s", logs.String())
	}
}

// loggedRegistration is server s1's registration in the Consul fake
// serves, logging at info to the buffer it returns.
func loggedRegistration(t *testing.T, fake *fakeConsul) (*consulRegistration, *httptest.Server, *syncBuffer) {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	ccfg := config.Consul{Address: srv.URL, ServiceName: "foreshape"}
	reg, err := newConsulRegistration(consulClient(t, ccfg), ccfg,
		registration{Name: "s1", HTTPAddr: "10.0.0.1:7575", Version: "v", Role: func() string { return roleLeader }},
		hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: logs}))
	if err != nil {
		t.Fatal(err)
	}
	return reg, srv, logs
}

// TestConsulLeaveSaysWhatHappened: on shutdown an agent whose Consul
// agent holds no registration (it was refused, or Consul lost it) says so;
// it warned "deregistration failed … Consul removes it after 10m" on
// Consul's 404, of a service that was never there.
func TestConsulLeaveSaysWhatHappened(t *testing.T) {
	fake := &fakeConsul{}
	reg, srv, logs := loggedRegistration(t, fake)
	ctx := context.Background()
	reg.leave(ctx)
	if logs.count("nothing to deregister: the Consul agent holds no such service") != 2 || logs.count("WARN") != 0 {
		t.Errorf("leaving without a registration (of neither service) logged:\n%s", logs.String())
	}
	if err := reg.register(ctx, roleLeader, ""); err != nil {
		t.Fatal(err)
	}
	reg.leave(ctx)
	if _, held := fake.holds("foreshape-s1"); held || logs.count("deregistered from consul: id=foreshape-s1") != 1 {
		t.Errorf("leaving after the registration: held %v, logged:\n%s", held, logs.String())
	}
	fake.set(func(f *fakeConsul) { f.down = true })
	reg.leave(ctx)
	if logs.count("consul deregistration failed") != 2 || !strings.Contains(logs.String(), "address="+srv.URL) {
		t.Errorf("leaving while Consul fails logged (a line for each service):\n%s", logs.String())
	}
}

// TestConsulCallsTimeOut: a Consul that takes connections but does not
// answer fails each call after consulTimeout: the lookup (a server's join
// attempt made it first and waited on it for good, never asking its other
// retry_join addresses), the registration and the deregistration.
func TestConsulCallsTimeOut(t *testing.T) {
	defer func(d time.Duration) { consulTimeout = d }(consulTimeout)
	consulTimeout = 100 * time.Millisecond
	hang := make(chan struct{})
	fake := &fakeConsul{hang: hang}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	defer close(hang) // before the server closes: it waits for its handlers
	ccfg := config.Consul{Address: srv.URL, ServiceName: "foreshape"}
	client := consulClient(t, ccfg)
	reg, err := newConsulRegistration(client, ccfg, registration{Name: "s1", HTTPAddr: "10.0.0.1:7575", Version: "v",
		Role: func() string { return roleLeader }}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"lookup":         func() error { _, err := consulDiscover(client, "foreshape")(ctx); return err },
		"registration":   func() error { return reg.register(ctx, roleLeader, "") },
		"look at it":     func() error { _, err := reg.lost(ctx, roleLeader); return err },
		"deregistration": func() error { return reg.deregister(ctx) },
	} {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s against a Consul that does not answer: %v; want the deadline exceeded", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s against a Consul that does not answer still waits after 5 s", name)
		}
	}
}

// TestHandOverDoesNotWaitOnConsul: a leader stopping while its Consul
// takes the deregistration and does not answer hands leadership over at
// once, and the stop still deregisters it when Consul answers. The
// deregistration held the hand-over (which follows Run) until it gave up,
// 5 s later, with no leader work done meanwhile.
func TestHandOverDoesNotWaitOnConsul(t *testing.T) {
	t.Parallel()
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close) // after the servers' stops: cleanups run last first
	hang := make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			fake.set(func(f *fakeConsul) { f.hang = nil })
			close(hang)
		}
	}
	tc := newTestCluster(t, 600)
	tc.consul = config.Consul{Enabled: true, Address: srv.URL, ServiceName: "foreshape"}
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	leaderID := fmt.Sprintf("foreshape-server-%d", l)
	eventually(t, 10*time.Second, "the three servers registered, the leader as leader", func() bool {
		for i := range 3 {
			reg, ok := fake.holds(fmt.Sprintf("foreshape-server-%d", i))
			if !ok || (i == l) != slices.Contains(reg.Tags, roleLeader) {
				return false
			}
		}
		return true
	})
	fake.set(func(f *fakeConsul) { f.hang = hang })
	t.Cleanup(release) // a failed test must not leave srv.Close waiting on it
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tc.servers[l].stop()
	}()
	// The stop looks at what Consul holds, then deregisters.
	look, deregistration := "GET /v1/agent/service/"+leaderID, "PUT /v1/agent/service/deregister/"+leaderID
	next := tc.leader(l)
	fake.mu.Lock()
	ended, held := slices.Clone(fake.ended), fake.held[look]+fake.held[deregistration]
	fake.mu.Unlock()
	if slices.Contains(ended, look) || slices.Contains(ended, deregistration) {
		t.Errorf("server-%d led only after server-%d's deregistration gave up on Consul (held %d, ended %v)", next, l, held, ended)
	}
	release()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatalf("server-%d's stop still runs 20 s after Consul answers", l)
	}
	if _, ok := fake.holds(leaderID); ok {
		t.Errorf("the stopped leader's service %s is still registered", leaderID)
	}
}

// TestClientStopDoesNotWaitOnConsul: a client agent stopping while its
// Consul takes the deregistration and does not answer shuts its API down
// at once, as a server does; Close waits for the deregistration, which is
// made when Consul answers. Before, the deregistration came first, within
// the 5 s of the API's shutdown, and Run returned only once it gave up:
// the service stayed registered.
func TestClientStopDoesNotWaitOnConsul(t *testing.T) {
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	hang := make(chan struct{})
	var once sync.Once
	release := func() {
		once.Do(func() {
			fake.set(func(f *fakeConsul) { f.hang = nil })
			close(hang)
		})
	}
	cfg := config.Default()
	cfg.Name = "node-1"
	cfg.Server.Enabled = false
	cfg.Server.RetryJoin = []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	cfg.Nomad.NodeID = "n1"
	cfg.Consul = config.Consul{Enabled: true, Address: srv.URL, ServiceName: "foreshape"}
	client, err := NewClient(cfg, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx) }()
	const id = "foreshape-node-1-client"
	eventually(t, 10*time.Second, "the client agent registered", func() bool {
		_, ok := fake.holds(id)
		return ok
	})
	fake.set(func(f *fakeConsul) { f.hang = hang })
	t.Cleanup(release) // a failed test must not leave srv.Close waiting on it
	cancel()
	// The stop looks at what Consul holds, then deregisters.
	look, deregistration := "GET /v1/agent/service/"+id, "PUT /v1/agent/service/deregister/"+id
	if err := <-done; err != nil {
		t.Error(err)
	}
	fake.mu.Lock()
	ended, held := slices.Clone(fake.ended), fake.held[look]+fake.held[deregistration]
	fake.mu.Unlock()
	if slices.Contains(ended, look) || slices.Contains(ended, deregistration) {
		t.Errorf("the client agent's API shut down only after its deregistration gave up on Consul (held %d, ended %v)", held, ended)
	}
	if _, err := http.Get("http://" + client.HTTPAddr() + "/v1/health"); err == nil {
		t.Error("the client agent's API answers after Run returned")
	}
	release()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		client.Close()
	}()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close still runs 20 s after Consul answers")
	}
	if _, ok := fake.holds(id); ok {
		t.Errorf("the stopped client agent's service %s is still registered", id)
	}
}

// TestConsulAdvertisesReachableAddress: a server whose API listens on
// every interface registers advertise_addr, and the check calls it there.
func TestConsulAdvertisesReachableAddress(t *testing.T) {
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := serverConfig(t, t.TempDir())
	cfg.HTTP.Address = "0.0.0.0:0"
	cfg.AdvertiseAddr = "127.0.0.1"
	cfg.Consul = config.Consul{Enabled: true, Address: srv.URL, ServiceName: "foreshape"}
	a, stop := runAgent(t, cfg)
	defer stop()
	eventually(t, 15*time.Second, "a registration", func() bool { return len(fake.registrations("foreshape")) > 0 })
	reg := fake.registrations("foreshape")[0]
	_, port, _ := strings.Cut(a.HTTPAddr(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(a.HTTPAddr(), ":")
	}
	if reg.Address != "127.0.0.1" || reg.Checks[0].HTTP != "http://127.0.0.1:"+port+"/v1/health" {
		t.Errorf("registered %s:%d, check %s; want 127.0.0.1:%s", reg.Address, reg.Port, reg.Checks[0].HTTP, port)
	}
	if reg.Meta[metaRaftAddress] == "" || strings.HasPrefix(reg.Meta[metaRaftAddress], "0.0.0.0") {
		t.Errorf("raft address in meta: %q", reg.Meta[metaRaftAddress])
	}
	resp, err := http.Get(reg.Checks[0].HTTP)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the check's URL answered %s", resp.Status)
	}
}

// TestHealthCheckUnderVerifyIncoming: with tls.verify_incoming the API
// refuses requests without a client certificate, except /v1/health (and
// /v1/ready, for Nomad's check), which Consul's check calls as registered (HTTPS, no client certificate, the
// server's certificate not verified).
func TestHealthCheckUnderVerifyIncoming(t *testing.T) {
	t.Parallel()
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "foreshape")
	files := testpki.WriteFiles(t, dir, "agent", ca, ca.Issue(t, "agent"))
	cfg := serverConfig(t, dir)
	cfg.TLS = config.TLS{CAFile: files.CA, CertFile: files.Cert, KeyFile: files.Key, VerifyIncoming: true}
	cfg.Consul = config.Consul{Enabled: true, Address: srv.URL, ServiceName: "foreshape"}
	_, stop := runAgent(t, cfg)
	defer stop()
	eventually(t, 15*time.Second, "a registration", func() bool { return len(fake.registrations("foreshape")) > 0 })
	check := fake.registrations("foreshape")[0].Checks[0]
	if !strings.HasPrefix(check.HTTP, "https://") || !check.TLSSkipVerify {
		t.Fatalf("check %+v; want HTTPS without verification", check)
	}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.Pool(), Certificates: []tls.Certificate{ca.Issue(t, "operator").TLSCertificate(t)}}}}
	other := testpki.NewCA(t, "other")
	wrongCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, Certificates: []tls.Certificate{other.Issue(t, "x").TLSCertificate(t)}}}}
	status := func(c *http.Client, url string) int {
		resp, err := c.Get(url)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	base := strings.TrimSuffix(check.HTTP, "/v1/health")
	if got := status(noCert, check.HTTP); got != http.StatusOK {
		t.Errorf("the health check without a client certificate: %d; want 200", got)
	}
	eventually(t, 15*time.Second, "/v1/ready to answer 200 without a client certificate", func() bool {
		return status(noCert, base+"/v1/ready") == http.StatusOK
	})
	if got := status(noCert, base+"/v1/status"); got != http.StatusForbidden {
		t.Errorf("/v1/status without a client certificate: %d; want 403", got)
	}
	if got := status(withCert, base+"/v1/status"); got != http.StatusOK {
		t.Errorf("/v1/status with a client certificate: %d; want 200", got)
	}
	if got := status(wrongCert, base+"/v1/status"); got == http.StatusOK {
		t.Errorf("/v1/status with another CA's certificate: %d", got)
	}
}

// TestConsulDiscover: retry_join's provider=consul finds the servers'
// Raft addresses in the catalog, and skips client agents.
func TestConsulDiscover(t *testing.T) {
	fake := &fakeConsul{catalog: []*consulapi.CatalogService{
		{ServiceName: "foreshape", ServiceMeta: map[string]string{metaRaftAddress: "10.0.0.2:7576", metaRole: roleFollower}},
		{ServiceName: "foreshape", ServiceMeta: map[string]string{metaRaftAddress: "10.0.0.1:7576", metaRole: roleLeader}},
		{ServiceName: "foreshape", ServiceMeta: map[string]string{metaRole: roleClient}},
		{ServiceName: "other", ServiceMeta: map[string]string{metaRaftAddress: "10.9.9.9:7576"}},
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := config.Default()
	cfg.Consul.Address = srv.URL
	cfg.Server.RetryJoin = []string{"10.0.0.3", "10.0.0.4:17576", "provider=consul"}
	static, discover, err := joinTargets(cfg, consulClient(t, cfg.Consul))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(static, []string{"10.0.0.3:7576", "10.0.0.4:17576"}) {
		t.Errorf("static = %v", static)
	}
	got, err := discover(context.Background())
	if err != nil || !slices.Equal(got, []string{"10.0.0.1:7576", "10.0.0.2:7576"}) {
		t.Errorf("discover = %v, %v", got, err)
	}
	// A token without node:read sees no server, and Consul answers 200:
	// the lookup says why instead of finding nothing; a client agent
	// with no server to report to says it too.
	fake.set(func(f *fakeConsul) { f.hidden = true })
	got, err = discover(context.Background())
	if len(got) != 0 || err == nil || !strings.Contains(err.Error(), "node:read") || !strings.Contains(err.Error(), "deploy/foreshape-consul-acl.hcl") {
		t.Errorf("discover with the entries hidden by ACLs = %v, %v; want an error naming node:read and the policy", got, err)
	}
	c := &Client{discover: discover, log: testLogger(t)}
	if err := c.send(context.Background(), clientReport{}); err == nil || !strings.Contains(err.Error(), "node:read") {
		t.Errorf("a client agent's report with the servers hidden: %v; want the lookup's error", err)
	}
}

// TestConsulDiscoverLoopback: servers registered through one Consul agent
// (one host) may advertise loopback addresses, which the lookup returns;
// registered through several, a loopback raft_address reaches only its
// own host, so the lookup leaves it out and its error names it.
func TestConsulDiscoverLoopback(t *testing.T) {
	entry := func(node, name, raft string) *consulapi.CatalogService {
		return &consulapi.CatalogService{Node: node, ServiceName: "foreshape", ServiceMeta: map[string]string{metaRaftAddress: raft, metaNode: name}}
	}
	fake := &fakeConsul{catalog: []*consulapi.CatalogService{
		entry("host-a", "s1", "127.0.0.1:7576"), entry("host-a", "s2", "127.0.0.1:7586"), entry("host-a", "s3", "127.0.0.1:7596"),
		{Node: "host-b", ServiceName: "foreshape", ServiceMeta: map[string]string{metaRole: roleClient}},
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := config.Default()
	cfg.Consul.Address = srv.URL
	discover := consulDiscover(consulClient(t, cfg.Consul), "foreshape")
	got, err := discover(context.Background())
	if err != nil || !slices.Equal(got, []string{"127.0.0.1:7576", "127.0.0.1:7586", "127.0.0.1:7596"}) {
		t.Errorf("servers on one host: discover = %v, %v; want the three loopback addresses", got, err)
	}
	fake.set(func(f *fakeConsul) {
		f.catalog[1], f.catalog[2] = entry("host-b", "s2", "10.0.0.12:7576"), entry("host-c", "s3", "localhost:7576")
	})
	got, err = discover(context.Background())
	if !slices.Equal(got, []string{"10.0.0.12:7576"}) || err == nil ||
		!strings.Contains(err.Error(), "s1 127.0.0.1:7576 on Consul node host-a, s3 localhost:7576 on Consul node host-c") ||
		!strings.Contains(err.Error(), "advertise_addr") {
		t.Errorf("servers on three hosts, two on loopback: discover = %v, %v; want 10.0.0.12:7576 and an error naming s1 and s3", got, err)
	}
}

// TestConsulRegistrationReal registers against the Consul agent at
// CONSUL_HTTP_ADDR, looks the service up in the catalog as retry_join
// does, and deregisters.
func TestConsulRegistrationReal(t *testing.T) {
	addr := os.Getenv("CONSUL_HTTP_ADDR")
	if addr == "" {
		t.Skip("CONSUL_HTTP_ADDR is not set: set it to a Consul agent's HTTP address (and CONSUL_HTTP_TOKEN if its ACLs need one) to test registration against a real Consul")
	}
	service := fmt.Sprintf("foreshape-test-%d", time.Now().UnixNano())
	ccfg := config.Consul{Enabled: true, Address: addr, Token: config.Secret(os.Getenv("CONSUL_HTTP_TOKEN")), ServiceName: service}
	reg, err := newConsulRegistration(consulClient(t, ccfg), ccfg, registration{Name: "e2e", HTTPAddr: "127.0.0.1:7575", RaftAddr: "127.0.0.1:7576",
		Version: "test", Role: func() string { return roleLeader }}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := reg.register(ctx, roleLeader, ""); err != nil {
		t.Fatal(err)
	}
	defer reg.deregister(context.Background())
	services, err := reg.client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	s, ok := services[service+"-e2e"]
	if !ok || !slices.Contains(s.Tags, roleLeader) || s.Meta[metaRaftAddress] != "127.0.0.1:7576" {
		t.Fatalf("service %+v (found %v)", s, ok)
	}
	var found []string
	eventually(t, 10*time.Second, "the catalog to list the server", func() bool {
		found, _ = consulDiscover(reg.client, service)(ctx)
		return slices.Equal(found, []string{"127.0.0.1:7576"})
	})
	if err := reg.deregister(ctx); err != nil {
		t.Fatal(err)
	}
	services, _ = reg.client.Agent().Services()
	if _, ok := services[service+"-e2e"]; ok {
		t.Error("the service is still registered after deregistration")
	}
}

// TestConsulACLPolicyReal checks deploy/foreshape-consul-acl.hcl against
// the Consul at CONSUL_HTTP_ADDR, whose ACLs must be on (default_policy =
// "deny") and CONSUL_HTTP_TOKEN able to write ACLs: a token with the policy
// registers, keeps, finds and deregisters an agent's service and its
// foreshape-metrics twin; a token with service:write on foreshape alone
// registers the first but finds no server (Consul leaves the entries out
// for want of node:read, and the lookup says so) and is refused the
// second; no token is refused, Consul's reason in the error.
func TestConsulACLPolicyReal(t *testing.T) {
	addr := os.Getenv("CONSUL_HTTP_ADDR")
	if addr == "" {
		t.Skip("CONSUL_HTTP_ADDR is not set: set it (and CONSUL_HTTP_TOKEN to a token that can write ACLs) to check deploy/foreshape-consul-acl.hcl against a real Consul with ACLs")
	}
	rules, err := os.ReadFile("../deploy/foreshape-consul-acl.hcl")
	if err != nil {
		t.Fatal(err)
	}
	admin := consulClient(t, config.Consul{Address: addr, Token: config.Secret(os.Getenv("CONSUL_HTTP_TOKEN"))})
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	tokenWith := func(name, rules string) string {
		p, _, err := admin.ACL().PolicyCreate(&consulapi.ACLPolicy{Name: name + "-" + suffix, Rules: rules}, nil)
		if err != nil {
			t.Skipf("cannot create a Consul ACL policy at %s (ACLs off, or CONSUL_HTTP_TOKEN may not write ACLs): %v", addr, err)
		}
		t.Cleanup(func() { _, _ = admin.ACL().PolicyDelete(p.ID, nil) })
		tok, _, err := admin.ACL().TokenCreate(&consulapi.ACLToken{Description: "foreshape test " + name,
			Policies: []*consulapi.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = admin.ACL().TokenDelete(tok.AccessorID, nil) })
		return tok.SecretID
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	registrar := func(name, token string) (*consulRegistration, string) {
		ccfg := config.Consul{Enabled: true, Address: addr, Token: config.Secret(token), ServiceName: "foreshape"}
		raft := "127.0.0.1:" + strconv.Itoa(freePort(t))
		reg, err := newConsulRegistration(consulClient(t, ccfg), ccfg, registration{Name: name + "-" + suffix, HTTPAddr: "127.0.0.1:7575",
			RaftAddr: raft, Version: "test", Role: func() string { return roleFollower }}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return reg, raft
	}

	full, raft := registrar("acl-full", tokenWith("foreshape-full", string(rules)))
	if err := full.register(ctx, roleFollower, ""); err != nil {
		t.Fatalf("registration with the policy's token: %v", err)
	}
	defer full.deregister(context.Background())
	if why, err := full.lost(ctx, roleFollower); err != nil || why != "" {
		t.Errorf("reading the registration back with the policy's token: %q, %v", why, err)
	}
	if err := full.metrics.register(ctx, roleServer, ""); err != nil {
		t.Fatalf("registration of foreshape-metrics with the policy's token: %v", err)
	}
	defer full.metrics.deregister(context.Background())
	if why, err := full.metrics.lost(ctx, roleServer); err != nil || why != "" {
		t.Errorf("reading the metrics registration back with the policy's token: %q, %v", why, err)
	}
	eventually(t, 10*time.Second, "the policy's token to find the server", func() bool {
		found, err := consulDiscover(full.client, "foreshape")(ctx)
		return err == nil && slices.Contains(found, raft)
	})

	part, _ := registrar("acl-part", tokenWith("foreshape-service-only", `service "foreshape" { policy = "write" }`))
	if err := part.register(ctx, roleFollower, ""); err != nil {
		t.Fatalf("registration with service:write alone: %v", err)
	}
	defer part.deregister(context.Background())
	// A token of the policy before foreshape-metrics: the second service
	// is refused, Consul naming it.
	if err := part.metrics.register(ctx, roleServer, ""); err == nil || !strings.Contains(err.Error(), `lacks permission 'service:write' on "foreshape-metrics"`) {
		t.Errorf("registration of foreshape-metrics with write on foreshape alone: %v; want Consul's 403 naming foreshape-metrics", err)
	}
	found, err := consulDiscover(part.client, "foreshape")(ctx)
	if len(found) != 0 || err == nil || !strings.Contains(err.Error(), "node:read") {
		t.Errorf("lookup with service:write alone = %v, %v; want no server and an error naming node:read", found, err)
	}

	t.Setenv("CONSUL_HTTP_TOKEN", "") // the client reads it when consul.token is empty
	none, _ := registrar("acl-none", "")
	defer none.deregister(context.Background())
	if err := none.register(ctx, roleFollower, ""); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "service:write") {
		t.Errorf("registration without a token: %v; want Consul's 403 naming service:write", err)
	}

	if err := full.deregister(ctx); err != nil {
		t.Errorf("deregistration with the policy's token: %v", err)
	}
	if err := full.metrics.deregister(ctx); err != nil {
		t.Errorf("deregistration of foreshape-metrics with the policy's token: %v", err)
	}
	if why, err := full.lost(ctx, roleFollower); err != nil || why == "" {
		t.Errorf("after deregistration the Consul agent still holds the service (%q, %v)", why, err)
	}
}

// TestConsulClusterReal runs three servers that find each other through
// the Consul at CONSUL_HTTP_ADDR (retry_join "provider=consul"; with ACLs,
// CONSUL_HTTP_TOKEN needs deploy/foreshape-consul-acl.hcl's grants on the
// test's service name, foreshape-test-*, or a management token), as
// docs/clustering.md's Consul section says: each registers with its Raft
// address and passes its health checks, one carries the leader tag; the
// leader stopped deregisters and the new leader takes the tag; the others
// stopped deregister.
func TestConsulClusterReal(t *testing.T) {
	addr := os.Getenv("CONSUL_HTTP_ADDR")
	if addr == "" {
		t.Skip("CONSUL_HTTP_ADDR is not set: set it to a Consul agent's HTTP address (and CONSUL_HTTP_TOKEN under ACLs) to run a cluster that finds itself in a real Consul")
	}
	service := "foreshape-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ccfg := config.Consul{Enabled: true, Address: addr, Token: config.Secret(os.Getenv("CONSUL_HTTP_TOKEN")), ServiceName: service}
	type server struct {
		a    *Agent
		stop func()
		raft string
	}
	var servers []*server
	for range 3 {
		cfg := serverConfig(t, t.TempDir())
		// bind_addr's default, 127.0.0.1: one host, one Consul agent.
		cfg.Server.BootstrapExpect = 3
		cfg.Server.RetryJoin = []string{"provider=consul"}
		cfg.Consul = ccfg
		a, stop := runAgent(t, cfg)
		s := &server{a: a, stop: stop, raft: "127.0.0.1:" + strconv.Itoa(cfg.Server.RaftPort)}
		servers = append(servers, s)
		defer func() {
			if s.stop != nil {
				s.stop()
			}
		}()
	}
	client := consulClient(t, ccfg)
	// passing returns the passing instances' raft addresses and the one
	// tagged leader.
	passing := func() (raft []string, leader string) {
		entries, _, err := client.Health().Service(service, "", true, nil)
		if err != nil {
			t.Logf("health of %s: %v", service, err)
			return nil, ""
		}
		for _, e := range entries {
			raft = append(raft, e.Service.Meta[metaRaftAddress])
			if slices.Contains(e.Service.Tags, roleLeader) {
				if leader != "" {
					return raft, "two leaders"
				}
				leader = e.Service.Meta[metaRaftAddress]
			}
		}
		slices.Sort(raft)
		return raft, leader
	}
	leaderOf := func(ss []*server) *server {
		for _, s := range ss {
			if s.a.Status(context.Background()).IsLeader {
				return s
			}
		}
		return nil
	}
	var all []string
	for _, s := range servers {
		all = append(all, s.raft)
	}
	slices.Sort(all)
	var leader *server
	eventually(t, 60*time.Second, "three passing servers in Consul, the one that leads tagged leader", func() bool {
		raft, tagged := passing()
		leader = leaderOf(servers)
		return leader != nil && slices.Equal(raft, all) && tagged == leader.raft
	})
	leader.stop()
	leader.stop = nil
	rest := slices.DeleteFunc(slices.Clone(servers), func(s *server) bool { return s == leader })
	if entries, _, err := client.Catalog().Service(service, "", nil); err != nil || slices.ContainsFunc(entries, func(e *consulapi.CatalogService) bool {
		return e.ServiceMeta[metaRaftAddress] == leader.raft
	}) {
		t.Errorf("the leader stopped cleanly is still in the catalog (%v); under ACLs Consul drops a deregistered service from its catalog with its own agent token (acl.tokens.agent): a Consul agent without one keeps listing it", err)
	}
	eventually(t, 60*time.Second, "the new leader tagged", func() bool {
		raft, tagged := passing()
		l := leaderOf(rest)
		return l != nil && len(raft) == 2 && tagged == l.raft
	})
	for _, s := range rest {
		s.stop()
		s.stop = nil
	}
	if entries, _, err := client.Catalog().Service(service, "", nil); err != nil || len(entries) != 0 {
		t.Errorf("after every server stopped, the catalog lists %d instances (%v); want none", len(entries), err)
	}
}

// serverConfig is a single server on loopback TCP with its data in dir,
// against an unreachable Nomad and the dev policies' directory.
func serverConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Name = "s-" + filepath.Base(dir)
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Server.RaftPort = freePort(t)
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	return cfg
}

// runAgent starts a server agent with the dev policies until stop, which
// may be called more than once.
func runAgent(t *testing.T, cfg *config.Config) (*Agent, func()) {
	t.Helper()
	return runAgentWith(t, cfg, Options{Logger: testLogger(t).Named(cfg.Name)})
}

// runAgentWith is runAgent with opts, given the dev policies and a
// version when they have none.
func runAgentWith(t *testing.T, cfg *config.Config, opts Options) (*Agent, func()) {
	t.Helper()
	if opts.Policies == nil {
		opts.Policies = devPolicies(t)
	}
	if opts.Version == "" {
		opts.Version = "test"
	}
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a, runInBackground(t, a.Run, a.Close)
}

// runInBackground runs run until the returned stop, which cancels it,
// waits for it (an error it returns fails the test) and calls closeFn; stop
// may be called more than once, and is called when the test ends.
func runInBackground(t *testing.T, run func(context.Context) error, closeFn func() error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			closeFn()
		})
	}
	t.Cleanup(stop)
	return stop
}

// freePort returns a TCP port free on loopback, held for this test until it
// ends (see internal/testport).
func freePort(t testing.TB) int {
	t.Helper()
	return testport.Get(t)
}

// consulClient is the agent's Consul client for cfg.
func consulClient(t *testing.T, cfg config.Consul) *consulapi.Client {
	t.Helper()
	c, err := preflight.ConsulClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
