package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/testpki"
)

// This file tests the Consul registration by failure mode, as an operator
// meets them: a token Consul refuses, two agents sharing a name, Consul
// going away and coming back while the role changes. The real-Consul ones
// (…Real) run against CONSUL_HTTP_ADDR.

// TestConsulRefusalNamesThePolicy: Consul's 403 says what the token lacks
// in Consul's words only; the agent's error adds where the token is set
// and the policy it needs (deploy/foreshape-consul-acl.hcl), and for a
// token Consul does not know ("ACL not found": deleted, expired) that it
// is unknown, for every call: the registration, its look, the
// deregistration and the provider=consul lookup, and in the log.
func TestConsulRefusalNamesThePolicy(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"without the grant", `Permission denied: token with AccessorID 'ca446ca0-d06d-a3d7-3ba4-3e060530cb3e' lacks permission 'service:write' on "foreshape"`,
			[]string{"403", "lacks permission 'service:write'", "consul.token needs the policy in deploy/foreshape-consul-acl.hcl"}},
		{"unknown token", "ACL not found",
			[]string{"403", "ACL not found", "Consul knows no such token", "deleted", "deploy/foreshape-consul-acl.hcl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeConsul{refuse: tc.body}
			reg, srv, logs := loggedRegistration(t, fake)
			ctx := context.Background()
			for name, call := range map[string]func() error{
				"registration":   func() error { return reg.register(ctx, roleLeader, "") },
				"look at it":     func() error { _, err := reg.lost(ctx, roleLeader); return err },
				"deregistration": func() error { return reg.deregister(ctx) },
				"lookup": func() error {
					_, err := consulDiscover(consulClient(t, config.Consul{Address: srv.URL}), "foreshape")(ctx)
					return err
				},
			} {
				err := call()
				for _, w := range tc.want {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("%s refused: %v; want it to say %q", name, err, w)
					}
				}
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { reg.run(runCtx, 10*time.Millisecond, time.Hour); close(done) }()
			eventually(t, 5*time.Second, "the failure lines", func() bool { return logs.count("consul registration failed") == 2 })
			cancel()
			<-done
			if !strings.Contains(logs.String(), "deploy/foreshape-consul-acl.hcl") {
				t.Errorf("the failure line does not name the policy:\n%s", logs.String())
			}
		})
	}
}

// TestConsulMetricsRefusedAlone: a token of the policy before the
// foreshape-metrics service (write on foreshape alone) has that service
// refused: the agent logs Consul's refusal with the policy it needs,
// naming the service, and retries it on its own backoff, while its main
// service is registered and follows the role within a second as before.
func TestConsulMetricsRefusedAlone(t *testing.T) {
	t.Parallel()
	fake := &fakeConsul{refuseName: "foreshape-metrics"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var logs syncBuffer
	var role roleBox
	role.set(roleFollower)
	ccfg := config.Consul{Address: srv.URL, ServiceName: "foreshape"}
	reg, err := newConsulRegistration(consulClient(t, ccfg), ccfg,
		registration{Name: "s1", HTTPAddr: "10.0.0.1:7575", RaftAddr: "10.0.0.1:7576", Version: "v", Role: role.get},
		hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: io.MultiWriter(&logs, hclogWriter{t})}))
	if err != nil {
		t.Fatal(err)
	}
	stop := runRegistration(reg, time.Hour)
	defer stop()
	tagged := func(want string) func() bool {
		return func() bool { s, ok := fake.holds("foreshape-s1"); return ok && slices.Contains(s.Tags, want) }
	}
	eventually(t, 5*time.Second, "the follower registration", tagged(roleFollower))
	eventually(t, 5*time.Second, "the refusal of foreshape-metrics logged", func() bool {
		return logs.count(`consul registration failed; retrying: service=foreshape-metrics `) == 1
	})
	// The metrics service backs off (1 s, then 2 s …); the role tag does not wait on it.
	time.Sleep(1500 * time.Millisecond)
	role.set(roleLeader)
	start := time.Now()
	eventually(t, 5*time.Second, "the leader registration", tagged(roleLeader))
	if d := time.Since(start); d > time.Second {
		t.Errorf("the leader tag took %s with the metrics service refused; want well under a second", d)
	}
	for _, w := range []string{`lacks permission 'service:write' on \"foreshape-metrics\"`, "consul.token needs the policy in deploy/foreshape-consul-acl.hcl", `(service \"foreshape-metrics\")`} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("the refusal's line does not say %q:\n%s", w, logs.String())
		}
	}
	if n := logs.count("consul registration failed; retrying: service=foreshape "); n != 0 {
		t.Errorf("%d failure lines for the main service; want none:\n%s", n, logs.String())
	}
}

// TestConsulNameTakenByAnotherAgent: two agents of the same name (or a
// server named x-client and a client agent named x) registering through
// one Consul agent share a service ID, and each registration replaces the
// other's. The agent that finds the ID held for another (another address,
// port or meta) says so, naming both, and does not register over it; it
// registers again once the ID is free, and on shutdown leaves the other's
// registration alone. Before, it saw nothing while both had one role (the
// first one's Raft address silently left the catalog) and fought over the
// ID every 30 s when the roles differed; its stop deregistered the other.
func TestConsulNameTakenByAnotherAgent(t *testing.T) {
	t.Parallel()
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ccfg := config.Consul{Address: srv.URL, ServiceName: "foreshape"}
	var logs syncBuffer
	first, err := newConsulRegistration(consulClient(t, ccfg), ccfg,
		registration{Name: "s1", HTTPAddr: "10.0.0.1:7575", RaftAddr: "10.0.0.1:7576", Version: "v1",
			Role: func() string { return roleFollower }}, hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs}))
	if err != nil {
		t.Fatal(err)
	}
	second, err := newConsulRegistration(consulClient(t, ccfg), ccfg,
		registration{Name: "s1", HTTPAddr: "10.0.0.2:7575", RaftAddr: "10.0.0.2:7576", Version: "v2",
			Role: func() string { return roleFollower }}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { first.run(ctx, 10*time.Millisecond, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	heldBy := func(addr string) func() bool {
		return func() bool { s, ok := fake.holds("foreshape-s1"); return ok && s.Address == addr }
	}
	eventually(t, 5*time.Second, "the first agent's registration", heldBy("10.0.0.1"))
	if err := second.register(context.Background(), roleFollower, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the first agent to say the ID is another's", func() bool {
		return logs.count("service ID foreshape-s1 for the agent at 10.0.0.2:7575, Raft address 10.0.0.2:7576") == 1
	})
	if !heldBy("10.0.0.2")() {
		s, _ := fake.holds("foreshape-s1")
		t.Errorf("the first agent registered over the second's: Consul holds %+v", s)
	}
	if !strings.Contains(logs.String(), `two agents named \"s1\"`) || !strings.Contains(logs.String(), "not for this agent (10.0.0.1:7575, Raft address 10.0.0.1:7576)") {
		t.Errorf("the line names neither the name nor this agent:\n%s", logs.String())
	}
	_, err = first.lost(context.Background(), roleFollower)
	if !errors.Is(err, errIDTaken) {
		t.Errorf("the look at a service ID another agent holds: %v; want errIDTaken", err)
	}
	first.leave(context.Background())
	if !heldBy("10.0.0.2")() {
		t.Error("the first agent's shutdown deregistered the second's service")
	}
	// The ID freed (the second stopped), the first registers again.
	if err := second.deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the first agent registered again", heldBy("10.0.0.1"))
	n := 0
	for _, r := range fake.registrations("foreshape") {
		if r.Address == "10.0.0.1" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("the first agent registered %d times; want 2 (before the second, after it left)", n)
	}
}

// TestConsulRoleFollowsAfterOutage: a follower whose Consul goes down, is
// elected meanwhile, and whose Consul comes back (with its state, or
// without: a dev agent restarted) carries the leader tag once Consul
// answers, without waiting for the 30 s look.
func TestConsulRoleFollowsAfterOutage(t *testing.T) {
	t.Parallel()
	for _, lost := range []bool{false, true} {
		t.Run(map[bool]string{false: "Consul kept its state", true: "Consul lost its state"}[lost], func(t *testing.T) {
			fake := &fakeConsul{}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			ccfg := config.Consul{Address: srv.URL, ServiceName: "foreshape"}
			var role roleBox
			role.set(roleFollower)
			reg, err := newConsulRegistration(consulClient(t, ccfg), ccfg,
				registration{Name: "s1", HTTPAddr: "10.0.0.1:7575", RaftAddr: "10.0.0.1:7576", Version: "v", Role: role.get}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { reg.run(ctx, 10*time.Millisecond, time.Hour); close(done) }()
			defer func() { cancel(); <-done }()
			tagged := func(r string) func() bool {
				return func() bool {
					s, ok := fake.holds("foreshape-s1")
					return ok && slices.Equal(s.Tags, []string{r}) && s.Meta[metaRole] == r
				}
			}
			eventually(t, 5*time.Second, "the follower registration", tagged(roleFollower))
			before := fake.requests()
			fake.set(func(f *fakeConsul) { f.down = true })
			role.set(roleLeader)
			eventually(t, 5*time.Second, "a refused try", func() bool { return fake.requests() > before })
			if r := reg.registeredRole(); r != roleFollower {
				t.Fatalf("registered %q while Consul refused every call", r)
			}
			fake.set(func(f *fakeConsul) {
				f.down = false
				if lost {
					clear(f.services)
				}
			})
			eventually(t, 10*time.Second, "the leader tag once Consul answers", tagged(roleLeader))
		})
	}
}

// roleBox is a role that a test changes while the registration reads it.
type roleBox struct{ v atomic.Value }

func (r *roleBox) set(s string) { r.v.Store(s) }
func (r *roleBox) get() string  { return r.v.Load().(string) }

// registeredRole is the role the registration last registered.
func (c *consulRegistration) registeredRole() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.registered
}

// requests counts the requests the fake answered.
func (f *fakeConsul) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tokens)
}

// realConsul returns the Consul agent's address at CONSUL_HTTP_ADDR and a
// client with CONSUL_HTTP_TOKEN, or skips the test saying what to set.
func realConsul(t *testing.T, what string) (string, *consulapi.Client) {
	t.Helper()
	addr := os.Getenv("CONSUL_HTTP_ADDR")
	if addr == "" {
		t.Skipf("CONSUL_HTTP_ADDR is not set: set it to a Consul agent's HTTP address (and CONSUL_HTTP_TOKEN under ACLs) to %s against a real Consul", what)
	}
	return addr, consulClient(t, config.Consul{Address: addr, Token: config.Secret(os.Getenv("CONSUL_HTTP_TOKEN"))})
}

// realToken creates a Consul token with rules, deleted when the test ends,
// and returns its secret and accessor IDs; it skips when the admin token
// may not write ACLs (or ACLs are off).
func realToken(t *testing.T, admin *consulapi.Client, name, rules string) (secret, accessor string) {
	t.Helper()
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	p, _, err := admin.ACL().PolicyCreate(&consulapi.ACLPolicy{Name: name + "-" + suffix, Rules: rules}, nil)
	if err != nil {
		t.Skipf("cannot create a Consul ACL policy (ACLs off, or CONSUL_HTTP_TOKEN may not write ACLs): %v", err)
	}
	t.Cleanup(func() { _, _ = admin.ACL().PolicyDelete(p.ID, nil) })
	tok, _, err := admin.ACL().TokenCreate(&consulapi.ACLToken{Description: "foreshape test " + name,
		Policies: []*consulapi.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.ACL().TokenDelete(tok.AccessorID, nil) })
	return tok.SecretID, tok.AccessorID
}

// realRegistration is agent name's registration of service in the Consul
// at addr with token, its HTTP API at httpAddr, a leader, logging to the
// buffer it returns; its check runs every second.
func realRegistration(t *testing.T, addr, token, service, name, httpAddr string, tlsOn bool) (*consulRegistration, *syncBuffer) {
	t.Helper()
	ccfg := config.Consul{Enabled: true, Address: addr, Token: config.Secret(token), ServiceName: service}
	logs := &syncBuffer{}
	reg, err := newConsulRegistration(consulClient(t, ccfg), ccfg, registration{Name: name, HTTPAddr: httpAddr, TLS: tlsOn,
		RaftAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)), Version: "test", Role: func() string { return roleLeader }},
		hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: io.MultiWriter(logs, hclogWriter{t})}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range slices.Concat(reg.base.Checks, reg.metrics.base.Checks) {
		c.Interval = "1s"
	}
	return reg, logs
}

// hclogWriter writes log lines to t.Log.
type hclogWriter struct{ t *testing.T }

func (w hclogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// runRegistration runs reg's loop (its look at Consul every resync) until
// the returned stop, which returns once the loop has.
func runRegistration(reg *consulRegistration, resync time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reg.run(ctx, 10*time.Millisecond, resync); close(done) }()
	return func() { cancel(); <-done }
}

// instances returns service's entries in the Consul catalog with their
// check statuses.
func instances(t *testing.T, c *consulapi.Client, service string) []*consulapi.ServiceEntry {
	t.Helper()
	entries, _, err := c.Health().Service(service, "", false, nil)
	if err != nil {
		t.Logf("health of %s: %v", service, err)
	}
	return entries
}

// TestConsulTokenRevokedReal: a token deleted while the agent runs is
// refused at the next look ("ACL not found"), and the agent's log says
// that Consul knows no such token and names the policy; a token without
// the grant, that it needs the policy. The Consul agent can no longer sync
// the service's check to its catalog, which lists it passing after its API
// stopped; with a new token the agent's stop deregisters it.
func TestConsulTokenRevokedReal(t *testing.T) {
	addr, admin := realConsul(t, "check a revoked token's refusal")
	rules, err := os.ReadFile("../deploy/foreshape-consul-acl.hcl")
	if err != nil {
		t.Fatal(err)
	}
	secret, accessor := realToken(t, admin, "foreshape-revoked", string(rules))
	name := "revoked-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"status":"ok"}`) }))
	defer api.Close()
	reg, logs := realRegistration(t, addr, secret, "foreshape", name, api.Listener.Addr().String(), false)
	stop := runRegistration(reg, 50*time.Millisecond)
	defer stop()
	defer func() {
		_ = admin.Agent().ServiceDeregister(reg.base.ID)
		_ = admin.Agent().ServiceDeregister(reg.metrics.base.ID)
	}()
	inCatalog := func() string {
		for _, e := range instances(t, admin, "foreshape") {
			if e.Service.ID == reg.base.ID {
				return e.Checks.AggregatedStatus()
			}
		}
		return ""
	}
	eventually(t, 10*time.Second, "the registration passing", func() bool { return inCatalog() == consulapi.HealthPassing })
	if _, err := admin.ACL().TokenDelete(accessor, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the refusal in the log", func() bool {
		return logs.count("consul registration failed; retrying: service=foreshape ") == 1
	})
	for _, w := range []string{"403 (ACL not found)", "Consul knows no such token", "deploy/foreshape-consul-acl.hcl"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("the log does not say %q:\n%s", w, logs.String())
		}
	}
	stop()
	api.Close()
	eventually(t, 10*time.Second, "the Consul agent's own check critical", func() bool {
		checks, err := admin.Agent().Checks()
		return err == nil && checks["service:"+reg.base.ID] != nil && checks["service:"+reg.base.ID].Status == consulapi.HealthCritical
	})
	if err := reg.deregister(context.Background()); err == nil || !strings.Contains(err.Error(), "Consul knows no such token") {
		t.Errorf("deregistration with the deleted token: %v; want the refusal explained", err)
	}
	// A check's change of status is synced at once when the token allows
	// (with the management token it took well under a second): two
	// seconds show this one is not.
	time.Sleep(2 * time.Second)
	if s := inCatalog(); s != consulapi.HealthPassing {
		t.Errorf("the catalog lists the stopped agent %q; the refusal's explanation says its health stays passing (Consul 1.22.0)", s)
	}
	// Started again with a token of the policy, the agent registers anew
	// and its stop deregisters the service from the catalog. (Its health
	// there follows at Consul's next full sync only: 69 s later, once.)
	renewed, _ := realToken(t, admin, "foreshape-renewed", string(rules))
	again, _ := realRegistration(t, addr, renewed, "foreshape", name, api.Listener.Addr().String(), false)
	if err := again.register(context.Background(), roleLeader, ""); err != nil {
		t.Fatal(err)
	}
	again.leave(context.Background())
	if s := inCatalog(); s != "" {
		t.Errorf("after a deregistration with a new token the catalog still lists the service (%s)", s)
	}

	none, _ := realToken(t, admin, "foreshape-none", `key_prefix "nothing" { policy = "read" }`)
	bare, _ := realRegistration(t, addr, none, "foreshape", name+"-none", "127.0.0.1:7575", false)
	err = bare.register(context.Background(), roleLeader, "")
	for _, w := range []string{"403", "lacks permission 'service:write' on \"foreshape\"", "consul.token needs the policy in deploy/foreshape-consul-acl.hcl"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("registration with a token without the grant: %v; want it to say %q", err, w)
		}
	}
}

// TestConsulCrashAndRestartReal: an agent killed outright (no
// deregistration) stays in the Consul catalog, its check turning critical
// once its API stops answering; started again with the same name (its API
// on another port) it registers the same service ID anew, replacing the
// stale entry: one instance, passing, at the new port. A clean stop
// leaves none.
func TestConsulCrashAndRestartReal(t *testing.T) {
	addr, admin := realConsul(t, "check what a killed agent leaves in Consul")
	service := "foreshape-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	token := os.Getenv("CONSUL_HTTP_TOKEN")
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"status":"ok"}`) })
	api1 := httptest.NewServer(ok)
	reg1, _ := realRegistration(t, addr, token, service, "s1", api1.Listener.Addr().String(), false)
	stop1 := runRegistration(reg1, time.Hour)
	status := func() (n int, port int, checks string) {
		entries := instances(t, admin, service)
		if len(entries) == 0 {
			return 0, 0, ""
		}
		e := entries[0]
		return len(entries), e.Service.Port, e.Checks.AggregatedStatus()
	}
	port1 := api1.Listener.Addr().(*net.TCPAddr).Port
	eventually(t, 15*time.Second, "the first run passing", func() bool { n, p, s := status(); return n == 1 && p == port1 && s == consulapi.HealthPassing })
	stop1() // killed: no deregistration
	api1.Close()
	eventually(t, 15*time.Second, "the killed agent's check critical, still listed", func() bool {
		n, p, s := status()
		return n == 1 && p == port1 && s == consulapi.HealthCritical
	})
	api2 := httptest.NewServer(ok)
	defer api2.Close()
	port2 := api2.Listener.Addr().(*net.TCPAddr).Port
	reg2, _ := realRegistration(t, addr, token, service, "s1", api2.Listener.Addr().String(), false)
	stop2 := runRegistration(reg2, time.Hour)
	eventually(t, 15*time.Second, "one instance, at the new port, passing", func() bool {
		n, p, s := status()
		return n == 1 && p == port2 && s == consulapi.HealthPassing
	})
	stop2()
	reg2.leave(context.Background())
	if n, _, _ := status(); n != 0 {
		t.Errorf("after a clean stop Consul lists %d instances; want none", n)
	}
}

// TestConsulNameTakenReal: two agents named alike registering through one
// real Consul agent: the one that finds its service ID held for the other
// says so and leaves it (one instance listed, the other's), and its
// shutdown does not deregister the other's; alone, its own registration
// reads back as its own.
func TestConsulNameTakenReal(t *testing.T) {
	addr, admin := realConsul(t, "check two agents of one name")
	service := "foreshape-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	token := os.Getenv("CONSUL_HTTP_TOKEN")
	first, logs := realRegistration(t, addr, token, service, "s1", "127.0.0.1:17575", false)
	stop := runRegistration(first, 50*time.Millisecond)
	defer stop()
	eventually(t, 10*time.Second, "the first registration", func() bool { return len(instances(t, admin, service)) == 1 })
	if why, err := first.lost(context.Background(), roleLeader); why != "" || err != nil {
		t.Fatalf("the first agent's own registration reads back as %q, %v", why, err)
	}
	second, _ := realRegistration(t, addr, token, service, "s1", "127.0.0.1:17585", false)
	if err := second.register(context.Background(), roleLeader, ""); err != nil {
		t.Fatal(err)
	}
	defer second.leave(context.Background())
	eventually(t, 10*time.Second, "the first agent to say its ID is another's", func() bool {
		return logs.count("for the agent at 127.0.0.1:17585") == 1
	})
	entries := instances(t, admin, service)
	if len(entries) != 1 || entries[0].Service.Port != 17585 {
		t.Errorf("Consul lists %d instances (%v); want the second agent's alone", len(entries), entries)
	}
	stop()
	first.leave(context.Background())
	if entries := instances(t, admin, service); len(entries) != 1 {
		t.Errorf("after the first agent left Consul lists %d instances; want the second's still", len(entries))
	}
}

// TestConsulHealthCheckTLSReal: with tls on (and verify_incoming) the
// check Consul runs is HTTPS to /v1/health without a client certificate and
// without verifying the agent's certificate, and passes in a real Consul;
// the same check verifying it fails there (Consul does not know
// foreshape's CA), which is why TLSSkipVerify is set.
func TestConsulHealthCheckTLSReal(t *testing.T) {
	addr, admin := realConsul(t, "run the HTTPS health check")
	dir := t.TempDir()
	ca := testpki.NewCA(t, "foreshape")
	files := testpki.WriteFiles(t, dir, "agent", ca, ca.Issue(t, "agent"))
	cfg := serverConfig(t, dir)
	cfg.TLS = config.TLS{CAFile: files.CA, CertFile: files.Cert, KeyFile: files.Key, VerifyIncoming: true}
	a, stop := runAgent(t, cfg)
	defer stop()
	service := "foreshape-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	token := os.Getenv("CONSUL_HTTP_TOKEN")
	reg, _ := realRegistration(t, addr, token, service, "tls", a.HTTPAddr(), true)
	verifying, _ := realRegistration(t, addr, token, service, "tls-verifying", a.HTTPAddr(), true)
	verifying.base.Checks[0].TLSSkipVerify = false
	for _, r := range []*consulRegistration{reg, verifying} {
		if err := r.register(context.Background(), roleLeader, ""); err != nil {
			t.Fatal(err)
		}
		defer r.deregister(context.Background())
	}
	check := func(id string) *consulapi.AgentCheck {
		checks, err := admin.Agent().Checks()
		if err != nil {
			return nil
		}
		return checks["service:"+id]
	}
	eventually(t, 15*time.Second, "the check as registered passing and the verifying one critical", func() bool {
		c, v := check(reg.base.ID), check(verifying.base.ID)
		// A check is critical before its first run, with no output.
		return c != nil && v != nil && c.Status == consulapi.HealthPassing && v.Status == consulapi.HealthCritical && v.Output != ""
	})
	if c := check(reg.base.ID); !strings.HasPrefix(reg.base.Checks[0].HTTP, "https://") || !strings.HasSuffix(reg.base.Checks[0].HTTP, "/v1/health") {
		t.Errorf("check %s (%s)", reg.base.Checks[0].HTTP, c.Output)
	}
	if v := check(verifying.base.ID); !strings.Contains(v.Output, "certificate") {
		t.Errorf("the verifying check's output: %q; want a certificate error", v.Output)
	}
	eventually(t, 15*time.Second, "the server's readiness check passing over HTTPS", func() bool {
		c := check(reg.base.ID + ":ready")
		return c != nil && c.Status == consulapi.HealthPassing
	})
}

// TestConsulJoinPastDeadServerReal: retry_join = ["provider=consul"]
// takes every server Consul lists, whatever its check: a server killed
// outright stays listed (critical) until Consul removes it. Three servers
// (bootstrap_expect = 3) whose lookup also lists such a dead one form
// their cluster all the same: the join asks every address at once, each
// for at most 2 s, and counts those that answer.
func TestConsulJoinPastDeadServerReal(t *testing.T) {
	addr, admin := realConsul(t, "join past a dead server listed in Consul")
	service := "foreshape-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ccfg := config.Consul{Enabled: true, Address: addr, Token: config.Secret(os.Getenv("CONSUL_HTTP_TOKEN")), ServiceName: service}
	dead, _ := realRegistration(t, addr, ccfg.Token.Reveal(), service, "dead", "127.0.0.1:"+strconv.Itoa(freePort(t)), false)
	if err := dead.register(context.Background(), roleLeader, ""); err != nil {
		t.Fatal(err)
	}
	defer dead.deregister(context.Background())
	var agents []*Agent
	for range 3 {
		cfg := serverConfig(t, t.TempDir())
		cfg.Server.BootstrapExpect = 3
		cfg.Server.RetryJoin = []string{"provider=consul"}
		cfg.Consul = ccfg
		a, stop := runAgent(t, cfg)
		defer stop()
		agents = append(agents, a)
	}
	start := time.Now()
	eventually(t, 60*time.Second, "the three servers' cluster, the dead one listed in Consul", func() bool {
		found, _ := consulDiscover(admin, service)(context.Background())
		leaders := 0
		for _, a := range agents {
			if st := a.Status(context.Background()); st.IsLeader && len(st.Peers) == 3 {
				leaders++
			}
		}
		return len(found) == 4 && leaders == 1
	})
	t.Logf("formed in %s", time.Since(start).Round(100*time.Millisecond))
}

// TestConsulLeaveSparesAnotherAgentsService: an agent stopping right
// after another agent of the same name registered their shared service ID
// (before its 30 s look saw it) leaves that registration alone: it looks
// at what the Consul agent holds before deregistering. It deregistered the
// other's service, which was gone from Consul until that agent's next look.
func TestConsulLeaveSparesAnotherAgentsService(t *testing.T) {
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ccfg := config.Consul{Address: srv.URL, ServiceName: "foreshape"}
	var logs syncBuffer
	reg := func(addr string, log hclog.Logger) *consulRegistration {
		r, err := newConsulRegistration(consulClient(t, ccfg), ccfg, registration{Name: "s1", HTTPAddr: addr, RaftAddr: "10.0.0.9:7576",
			Version: "v", Role: func() string { return roleFollower }}, log)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	old, replacement := reg("10.0.0.1:7575", hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs})), reg("10.0.0.2:7575", testLogger(t))
	ctx := context.Background()
	if err := old.register(ctx, roleFollower, ""); err != nil {
		t.Fatal(err)
	}
	if err := replacement.register(ctx, roleFollower, ""); err != nil {
		t.Fatal(err)
	}
	old.leave(ctx)
	if s, ok := fake.holds("foreshape-s1"); !ok || s.Address != "10.0.0.2" {
		t.Errorf("after the old agent left Consul holds %+v (%v); want the replacement's service", s, ok)
	}
	if logs.count("not deregistering from consul") != 1 {
		t.Errorf("the old agent's leave logged:\n%s", logs.String())
	}
	replacement.leave(ctx)
	if _, ok := fake.holds("foreshape-s1"); ok {
		t.Error("the replacement's leave did not deregister its service")
	}
}

// TestConsulServerReadyCheckReal: a server's instance passes in Consul only
// while the server is a working member of its cluster: one waiting for its
// peers (bootstrap_expect = 3, none up) has its /v1/health check passing
// and its /v1/ready check critical with the reason, so a query for
// passing instances leaves it out, while the catalog, which
// provider=consul reads, still lists it for its peers to find.
func TestConsulServerReadyCheckReal(t *testing.T) {
	addr, admin := realConsul(t, "check a server's readiness in Consul")
	cfg := serverConfig(t, t.TempDir())
	cfg.Server.BootstrapExpect = 3
	cfg.Server.RetryJoin = []string{"127.0.0.1:" + strconv.Itoa(freePort(t))}
	a, stop := runAgent(t, cfg)
	defer stop()
	service := "foreshape-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	reg, _ := realRegistration(t, addr, os.Getenv("CONSUL_HTTP_TOKEN"), service, "waiting", a.HTTPAddr(), false)
	if err := reg.register(context.Background(), roleFollower, ""); err != nil {
		t.Fatal(err)
	}
	defer reg.deregister(context.Background())
	check := func(id string) *consulapi.AgentCheck {
		checks, err := admin.Agent().Checks()
		if err != nil {
			return nil
		}
		return checks[id]
	}
	eventually(t, 15*time.Second, "/v1/health passing and /v1/ready critical with its reason", func() bool {
		h, r := check("service:"+reg.base.ID), check("service:"+reg.base.ID+":ready")
		return h != nil && r != nil && h.Status == consulapi.HealthPassing && r.Status == consulapi.HealthCritical && strings.Contains(r.Output, "not ready")
	})
	if passing, _, err := admin.Health().Service(service, "", true, nil); err != nil || len(passing) != 0 {
		t.Errorf("passing instances of a server waiting for its peers: %d (%v); want none", len(passing), err)
	}
	if found, err := consulDiscover(admin, service)(context.Background()); err != nil || len(found) != 1 {
		t.Errorf("the lookup of a server waiting for its peers: %v, %v; want its Raft address", found, err)
	}
}

// TestConsulNotReadyServerScrapedReal: a server that is not ready (waiting
// for its peers: no leader known) is left out of Consul's DNS under the
// service name, its /v1/ready check critical, and so out of the targets of
// a Prometheus that finds the agents there; under NAME-metrics, checked on
// /v1/health alone, Consul's DNS lists it, at its API's port, and the
// target serves foreshape_raft_leader_known 0 and foreshape_leader 0, what
// ForeshapeNoLeader and ForeshapeServerLostLeader read. Consul's DNS answers
// with its agent's default token: under ACLs that token needs service:read
// and node:read, or the test skips.
func TestConsulNotReadyServerScrapedReal(t *testing.T) {
	addr, admin := realConsul(t, "look a server that is not ready up in Consul's DNS")
	self, err := admin.Agent().Self()
	if err != nil {
		t.Skipf("cannot read the Consul agent's configuration for its DNS address (CONSUL_HTTP_TOKEN needs agent:read): %v", err)
	}
	var dnsAddr string
	if dc, ok := self["DebugConfig"]; ok {
		addrs, _ := dc["DNSAddrs"].([]any)
		for _, a := range addrs {
			if s, _ := a.(string); strings.HasPrefix(s, "udp://") {
				dnsAddr = strings.TrimPrefix(s, "udp://")
			}
		}
	}
	if dnsAddr == "" {
		t.Skipf("the Consul agent at %s serves no DNS (DebugConfig.DNSAddrs)", addr)
	}
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, dnsAddr)
	}}
	srv := func(name string) ([]*net.SRV, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, records, err := resolver.LookupSRV(ctx, "", "", name)
		return records, err
	}
	if _, err := srv("consul.service.consul"); err != nil {
		t.Skipf("Consul's DNS at %s does not list its own servers (%v): under ACLs give its agent a default token with service:read and node:read (consul acl set-agent-token default …)", dnsAddr, err)
	}

	cfg := serverConfig(t, t.TempDir())
	cfg.Server.BootstrapExpect = 3
	cfg.Server.RetryJoin = []string{"127.0.0.1:" + strconv.Itoa(freePort(t))}
	a, stop := runAgent(t, cfg)
	defer stop()
	service := "foreshape-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	reg, _ := realRegistration(t, addr, os.Getenv("CONSUL_HTTP_TOKEN"), service, "waiting", a.HTTPAddr(), false)
	stopReg := runRegistration(reg, time.Hour)
	defer func() { stopReg(); reg.leave(context.Background()) }()
	check := func(id string) *consulapi.AgentCheck {
		checks, err := admin.Agent().Checks()
		if err != nil || checks[id] == nil {
			return &consulapi.AgentCheck{}
		}
		return checks[id]
	}
	eventually(t, 15*time.Second, "the readiness check critical (not ready) and the health check passing", func() bool {
		r, h := check("service:"+reg.base.ID+":ready"), check("service:"+reg.base.ID)
		return r.Status == consulapi.HealthCritical && strings.Contains(r.Output, "not ready") && h.Status == consulapi.HealthPassing
	})
	if records, err := srv(service + ".service.consul"); err == nil || len(records) != 0 {
		t.Errorf("Consul's DNS lists the server that is not ready under %s: %v (%v); want it left out", service, records, err)
	}
	_, port, _ := net.SplitHostPort(a.HTTPAddr())
	var records []*net.SRV
	deadline := time.Now().Add(15 * time.Second) // the metrics service's check passes at its first run, within 1 s
	for {
		records, err = srv(service + "-metrics.service.consul")
		if err == nil && len(records) == 1 && strconv.Itoa(int(records[0].Port)) == port {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Consul's DNS under %s-metrics: %v, %v; want the server that is not ready, at its API's port %s", service, records, err, port)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if m := check("service:" + service + "-metrics-waiting"); m.Status != consulapi.HealthPassing {
		t.Errorf("the metrics service's check is %q; want passing", m.Status)
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, w := range []string{"\nforeshape_raft_leader_known 0\n", "\nforeshape_leader 0\n"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), w) {
			t.Errorf("the target Prometheus finds answers %d without %q", resp.StatusCode, strings.TrimSpace(w))
		}
	}
}
