package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/backoff"
	"github.com/foreshape/foreshape/internal/failing"
)

// Roles an agent registers under in Consul, as a tag.
const (
	roleLeader   = "leader"
	roleFollower = "follower"
	roleClient   = "client"
	// roleServer is a server's tag in the NAME-metrics service, which
	// carries the agent's kind rather than its role.
	roleServer = "server"
)

// Consul service meta keys.
const (
	metaVersion     = "version"
	metaRaftAddress = "raft_address"
	metaNode        = "node"
	metaRole        = "role"
)

// consulRegistration registers the agent's HTTP API as a Consul service:
// tagged with its role (leader, follower or client, kept current), with
// its version and, for a server, its Raft address in the service meta, and
// an HTTP(S) health check on /v1/health (and, for a server, one on
// /v1/ready); it deregisters on shutdown. Beside it, through metrics, it
// registers the same API as the service NAME-metrics, checked on
// /v1/health alone, for Prometheus to find the agents through.
type consulRegistration struct {
	client  *consulapi.Client
	address string // Consul's, for the log
	log     hclog.Logger
	// base is the registration without the role tag.
	base consulapi.AgentServiceRegistration
	tags []string
	role func() string
	// metrics is the agent's NAME-metrics registration, run and left with
	// this one; nil in that registration itself.
	metrics *consulRegistration

	mu         sync.Mutex
	registered string // the role last registered; "" before the first
}

// registration is what an agent tells Consul about itself.
type registration struct {
	// Name is the agent's name; the service ID is service-name for a
	// server, service-name-client for a client agent: the deploy jobs run
	// both on a server's node, named alike after it, and one Consul agent
	// holds one service per ID.
	Name string
	// Client says the agent is a client agent.
	Client bool
	// HTTPAddr is the advertised HOST:PORT of the HTTP API (not 0.0.0.0).
	HTTPAddr string
	// TLS says the API serves HTTPS.
	TLS bool
	// RaftAddr is a server's advertised Raft address; empty for a client.
	RaftAddr string
	Version  string
	// Role returns the agent's current role.
	Role func() string
}

// newConsulRegistration builds the registration; nothing is sent until run.
// client is the agent's Consul client (preflight.Start.Consul).
func newConsulRegistration(client *consulapi.Client, cfg config.Consul, r registration, log hclog.Logger) (*consulRegistration, error) {
	if client == nil {
		return nil, errors.New("agent: consul: no Consul client")
	}
	host, portStr, err := net.SplitHostPort(r.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("agent: consul: http address %q: %w", r.HTTPAddr, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("agent: consul: the HTTP API's address %s is not reachable; set advertise_addr", r.HTTPAddr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("agent: consul: http port %q: %w", portStr, err)
	}
	scheme := "http"
	if r.TLS {
		scheme = "https"
	}
	id := cfg.ServiceName + "-" + r.Name
	metricsName := cfg.ServiceName + config.ConsulMetricsSuffix
	metricsID := metricsName + "-" + r.Name
	kind := roleServer
	if r.Client {
		id += "-" + roleClient
		metricsID += "-" + roleClient
		kind = roleClient
	}
	meta := map[string]string{metaNode: r.Name, metaVersion: r.Version}
	if r.RaftAddr != "" {
		meta[metaRaftAddress] = r.RaftAddr
	}
	alive := func(id string) *consulapi.AgentServiceCheck {
		return &consulapi.AgentServiceCheck{
			CheckID: "service:" + id, // the ID Consul gave it as the service's only check
			Name:    "foreshape HTTP API",
			HTTP:    scheme + "://" + r.HTTPAddr + "/v1/health",
			// /v1/health answers without a client certificate even
			// under tls.verify_incoming, and carries nothing secret:
			// Consul need not trust foreshape's CA to check it.
			TLSSkipVerify:                  r.TLS,
			Interval:                       "10s",
			Timeout:                        "2s",
			DeregisterCriticalServiceAfter: "10m",
		}
	}
	checks := consulapi.AgentServiceChecks{alive(id)}
	if !r.Client {
		// A server's readiness: critical while it is no working member
		// of its cluster (waiting for its peers, no leader known,
		// catching up), so that the instance is not passing; without
		// deregister_critical_service_after, so that it stays listed and
		// provider=consul finds it for its peers to join.
		checks = append(checks, &consulapi.AgentServiceCheck{
			CheckID:       "service:" + id + ":ready",
			Name:          "foreshape server ready",
			HTTP:          scheme + "://" + r.HTTPAddr + "/v1/ready",
			TLSSkipVerify: r.TLS,
			Interval:      "10s",
			Timeout:       "2s",
		})
	}
	return &consulRegistration{
		client:  client,
		address: cfg.Address,
		log:     log.Named("consul"),
		tags:    slices.Clone(cfg.Tags),
		role:    r.Role,
		base: consulapi.AgentServiceRegistration{
			ID:      id,
			Name:    cfg.ServiceName,
			Address: host,
			Port:    port,
			Meta:    meta,
			Checks:  checks,
		},
		// The service to scrape: Consul's DNS leaves out an instance
		// with a critical check, so a server that is not ready (no
		// leader, halted, its data_dir failing) would leave Prometheus's
		// targets with the main service, and its alerts with it. This
		// one is checked on /v1/health alone, listed while the process
		// serves, and tagged with the agent's kind, which never changes.
		metrics: &consulRegistration{
			client:  client,
			address: cfg.Address,
			log:     log.Named("consul"),
			tags:    slices.Clone(cfg.Tags),
			role:    func() string { return kind },
			base: consulapi.AgentServiceRegistration{
				ID:      metricsID,
				Name:    metricsName,
				Address: host,
				Port:    port,
				Meta:    maps.Clone(meta),
				Checks:  consulapi.AgentServiceChecks{alive(metricsID)},
			},
		},
	}, nil
}

// consulTimeout bounds every call to Consul: a Consul agent that takes
// connections but does not answer (stopped, overloaded) fails the call, so
// the registration loop goes on and a server's join attempt (which looks
// its peers up first) asks its other addresses, instead of waiting on it.
var consulTimeout = 10 * time.Second

// resyncEvery is how often a registered agent checks that its Consul agent
// still holds its service as last registered.
const resyncEvery = 30 * time.Second

// run registers the service and keeps it registered until ctx ends: again
// whenever the agent's role changes (looked at every every), and whenever
// the Consul agent no longer holds it as registered (looked at every
// resync, also when every is longer): a Consul agent that lost its state,
// an operator's deregistration, Consul's removal of a service whose check
// stayed critical. A service ID the Consul agent holds for another agent
// (one of the same name) is not registered over (lost's errIDTaken) until
// it is free or the role changes. Consul's errors, and that one, are
// retried with backoff and logged as a failing.Streak: the first at once,
// the same again every failing.RemindEvery, and the first answer after
// them once. The NAME-metrics registration runs its own loop beside it,
// and run returns once both have.
func (c *consulRegistration) run(ctx context.Context, every, resync time.Duration) {
	if c.metrics != nil {
		// Its own loop: a refusal of the second service (a token of
		// an older policy, without NAME-metrics) backs off alone and
		// does not hold up the role tag.
		done := make(chan struct{})
		go func() { defer close(done); c.metrics.run(ctx, every, resync) }()
		defer func() { <-done }()
	}
	var retry time.Duration // after a failure; zero after a success
	var fails failing.Streak
	var checked time.Time // the last look at what the Consul agent holds
	for {
		role := c.role()
		c.mu.Lock()
		current := c.registered
		c.mu.Unlock()
		wait := min(every, resync)
		var err error
		called := true
		switch {
		case role != current:
			err = c.register(ctx, role, "")
		case time.Since(checked) >= resync:
			var why string
			if why, err = c.lost(ctx, role); err == nil {
				checked = time.Now()
				if why != "" {
					err = c.register(ctx, role, why)
				}
			}
		default:
			called = false
		}
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			retry = backoff.Next(retry)
			wait = retry
			fails.Fail(c.log, time.Now(), "consul registration failed; retrying", err, "service", c.base.Name, "address", c.address, "backoff", retry)
		case called:
			retry = 0
			fails.OK(c.log, time.Now(), "consul answers again", "service", c.base.Name, "address", c.address)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// lost says why the Consul agent no longer holds the service as registered
// with role ("" when it does); its error wraps errIDTaken when the agent
// holds the service ID for another agent.
func (c *consulRegistration) lost(ctx context.Context, role string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	s, _, err := c.client.Agent().Service(c.base.ID, (&consulapi.QueryOptions{}).WithContext(ctx))
	if se := (consulapi.StatusError{}); errors.As(err, &se) && se.Code == http.StatusNotFound {
		return "the Consul agent no longer holds the service", nil
	}
	if err != nil {
		return "", c.explain(err)
	}
	if other := c.other(s); other != "" {
		return "", fmt.Errorf("%w: the Consul agent holds service ID %s for %s, not for this agent (%s:%d%s): "+
			"two agents named %q register through one Consul agent, and each would replace the other's registration; give them distinct names (name)",
			errIDTaken, c.base.ID, other, c.base.Address, c.base.Port, raftNote(c.base.Meta), c.base.Meta[metaNode])
	}
	if want := append(slices.Clone(c.tags), role); !slices.Equal(s.Tags, want) || s.Meta[metaRole] != role {
		return fmt.Sprintf("the Consul agent holds it with tags %v", s.Tags), nil
	}
	return "", nil
}

// errIDTaken is lost's error when the Consul agent holds the service ID
// for another agent: one with the same name (a server and a client agent
// differ by their IDs' -client) registered it since this one did.
var errIDTaken = errors.New("service ID taken")

// other describes the agent s was registered by when that is not this one
// (its address, port or meta differ: another agent registered the ID
// since), and returns "" when it is this one.
func (c *consulRegistration) other(s *consulapi.AgentService) string {
	meta := maps.Clone(s.Meta)
	delete(meta, metaRole)
	if s.Address == c.base.Address && s.Port == c.base.Port && maps.Equal(meta, c.base.Meta) {
		return ""
	}
	return fmt.Sprintf("the agent at %s:%d%s, version %q", s.Address, s.Port, raftNote(s.Meta), s.Meta[metaVersion])
}

// raftNote is ", Raft address A" for a server's meta, "" for a client's.
func raftNote(meta map[string]string) string {
	if a := meta[metaRaftAddress]; a != "" {
		return ", Raft address " + a
	}
	return ""
}

// aclPolicyFile is the Consul ACL policy the agents' token needs.
const aclPolicyFile = "deploy/foreshape-consul-acl.hcl"

// explainConsul adds to Consul's 403 what the agent's token lacks: Consul
// answers "ACL not found" for a token it does not know (deleted, expired)
// and "Permission denied: token … lacks permission 'service:write' on
// \"foreshape\"" for one without the grant (measured on Consul 1.22.0);
// its own words say neither where the token is set nor which policy it
// needs. Other errors are returned as they are.
func explainConsul(err error, service string) error {
	var se consulapi.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden {
		return err
	}
	if strings.Contains(se.Body, "ACL not found") {
		return fmt.Errorf("%w; Consul knows no such token: consul.token (or CONSUL_HTTP_TOKEN) was deleted, has expired or is another datacenter's. "+
			"Consul can neither change nor deregister the agent's service with it, and its catalog keeps the service's health as last synced "+
			"(passing, even after the agent stops). Give the agent a token of the policy in %s", err, aclPolicyFile)
	}
	return fmt.Errorf("%w; consul.token needs the policy in %s (service %q)", err, aclPolicyFile, service)
}

// explain is explainConsul for this registration's service.
func (c *consulRegistration) explain(err error) error { return explainConsul(err, c.base.Name) }

// register sends the registration with role's tag; why, when not empty,
// says why it is sent again with a role already registered.
func (c *consulRegistration) register(ctx context.Context, role, why string) error {
	reg := c.base
	reg.Tags = append(slices.Clone(c.tags), role)
	reg.Meta = map[string]string{metaRole: role}
	for k, v := range c.base.Meta {
		reg.Meta[k] = v
	}
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	if err := c.client.Agent().ServiceRegisterOpts(&reg, consulapi.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
		return c.explain(err)
	}
	c.mu.Lock()
	first := c.registered == ""
	c.registered = role
	c.mu.Unlock()
	switch {
	case why != "":
		c.log.Warn("consul registration made again", "id", reg.ID, "role", role, "why", why)
	case first:
		c.log.Info("registered in consul", "service", reg.Name, "id", reg.ID, "role", role)
	default:
		c.log.Info("consul registration follows the new role", "id", reg.ID, "role", role)
	}
	return nil
}

// errNotHeld is deregister's answer when the Consul agent held no such
// service (its 404).
var errNotHeld = errors.New("the Consul agent holds no such service")

// deregister removes the service; errors are returned for logging only.
func (c *consulRegistration) deregister(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	err := c.client.Agent().ServiceDeregisterOpts(c.base.ID, (&consulapi.QueryOptions{}).WithContext(ctx))
	if se := (consulapi.StatusError{}); errors.As(err, &se) && se.Code == http.StatusNotFound {
		return errNotHeld
	}
	return c.explain(err)
}

// leave deregisters the service on shutdown and logs how it went: a
// Consul agent that holds none (the registration was refused, or Consul
// lost it) is no failure, and a service ID it holds for another agent (of
// the same name) is left to that agent. The NAME-metrics service leaves
// alike, at the same time.
func (c *consulRegistration) leave(ctx context.Context) {
	if c.metrics != nil {
		// Side by side, so that a Consul that does not answer holds the
		// stop no longer than with one service.
		var wg sync.WaitGroup
		wg.Go(func() { c.metrics.leave(ctx) })
		defer wg.Wait()
	}
	// Another agent may have registered the ID since the last look; when
	// the look fails the deregistration is tried all the same.
	_, err := c.lost(ctx, "")
	if errors.Is(err, errIDTaken) {
		c.log.Warn("not deregistering from consul: the Consul agent holds the service ID for another agent of the same name", "id", c.base.ID, logKeyError, err)
		return
	}
	switch err := c.deregister(ctx); {
	case errors.Is(err, errNotHeld):
		c.log.Info("nothing to deregister: the Consul agent holds no such service", "id", c.base.ID)
	case err != nil:
		c.log.Warn("consul deregistration failed; the service's check will fail and Consul removes it after 10m", "id", c.base.ID, logKeyError, err, "address", c.address)
	default:
		c.log.Info("deregistered from consul", "id", c.base.ID)
	}
}

// consulDiscover returns the Raft addresses of the servers registered as
// service in Consul's catalog (the raft_address in their meta; client
// agents have none), for retry_join = ["provider=consul"]. When Consul's
// ACLs left entries out, it returns those it got and an error saying so.
func consulDiscover(client *consulapi.Client, service string) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		ctx, cancel := context.WithTimeout(ctx, consulTimeout)
		defer cancel()
		entries, meta, err := client.Catalog().Service(service, "", (&consulapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("consul lookup of %s: %w", service, explainConsul(err, service))
		}
		// Servers registered through more than one Consul agent run on
		// more than one host: a loopback raft_address there reaches only
		// its own host (a peer dialing it reaches itself), so it is left
		// out and named.
		nodes := map[string]bool{}
		for _, e := range entries {
			if e.ServiceMeta[metaRaftAddress] != "" {
				nodes[e.Node] = true
			}
		}
		var out, unreachable []string
		for _, e := range entries {
			a := e.ServiceMeta[metaRaftAddress]
			if a == "" {
				continue
			}
			if host, _, err := net.SplitHostPort(a); err == nil && len(nodes) > 1 && config.IsLoopback(host) {
				unreachable = append(unreachable, fmt.Sprintf("%s %s on Consul node %s", e.ServiceMeta[metaNode], a, e.Node))
				continue
			}
			out = append(out, a)
		}
		slices.Sort(out)
		out = slices.Compact(out)
		if len(unreachable) > 0 {
			slices.Sort(unreachable)
			return out, fmt.Errorf("consul lookup of %s: servers registered on %d Consul nodes (hosts) advertise a loopback Raft address that no other host reaches: %s; "+
				"set their advertise_addr to the host's cluster address", service, len(nodes), strings.Join(unreachable, ", "))
		}
		if meta != nil && meta.ResultsFilteredByACLs {
			// Consul answers 200 with the entries the token may not read
			// left out: without node:read it lists no server at all.
			return out, fmt.Errorf("consul lookup of %s: Consul's ACLs left entries out of the answer (%d servers listed): "+
				"the token needs service:read on %q and node:read on the servers' nodes (deploy/foreshape-consul-acl.hcl)", service, len(out), service)
		}
		return out, nil
	}
}
