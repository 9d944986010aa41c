package agent

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/config"
)

// This file tests the Consul registration by failure mode, as an operator
// meets them: a token Consul refuses, two agents sharing a name. The
// real-Consul ones (…Real) run against CONSUL_HTTP_ADDR.

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
			eventually(t, 5*time.Second, "the failure line", func() bool { return logs.count("consul registration failed") == 1 })
			cancel()
			<-done
			if !strings.Contains(logs.String(), "deploy/foreshape-consul-acl.hcl") {
				t.Errorf("the failure line does not name the policy:\n%s", logs.String())
			}
		})
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
	for _, r := range fake.registrations() {
		if r.Address == "10.0.0.1" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("the first agent registered %d times; want 2 (before the second, after it left)", n)
	}
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
	reg.base.Check.Interval = "1s"
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
	defer func() { _ = admin.Agent().ServiceDeregister(reg.base.ID) }()
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
	eventually(t, 10*time.Second, "the refusal in the log", func() bool { return logs.count("consul registration failed") == 1 })
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
