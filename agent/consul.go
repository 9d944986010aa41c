package agent

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/foreshape/foreshape/config"
)

// consulRegistration registers the agent's HTTP API as a Consul service with
// an HTTP health check on /v1/health, and deregisters it on shutdown.
type consulRegistration struct {
	client *consulapi.Client
	reg    *consulapi.AgentServiceRegistration
}

// newConsulRegistration builds the registration for an API listening on
// httpAddr; nothing is sent until register.
func newConsulRegistration(cfg config.Consul, nodeName, httpAddr string, tlsOn bool) (*consulRegistration, error) {
	ccfg := consulapi.DefaultConfig()
	if cfg.Address != "" {
		addr := cfg.Address
		if scheme, rest, ok := strings.Cut(addr, "://"); ok {
			ccfg.Scheme, addr = scheme, rest
		}
		ccfg.Address = addr
	}
	ccfg.Token = cfg.Token.Reveal()
	client, err := consulapi.NewClient(ccfg)
	if err != nil {
		return nil, fmt.Errorf("agent: consul client for %s: %w", cfg.Address, err)
	}
	host, portStr, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return nil, fmt.Errorf("agent: consul: http address %q: %w", httpAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("agent: consul: http port %q: %w", portStr, err)
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	check := net.JoinHostPort(host, portStr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		check = net.JoinHostPort("127.0.0.1", portStr) // Consul's local agent checks this one
	}
	name := cfg.ServiceName
	return &consulRegistration{client: client, reg: &consulapi.AgentServiceRegistration{
		ID:      name + "-" + nodeName,
		Name:    name,
		Tags:    cfg.Tags,
		Address: host,
		Port:    port,
		Meta:    map[string]string{"node": nodeName},
		Check: &consulapi.AgentServiceCheck{
			Name:                           "foreshape HTTP API",
			HTTP:                           scheme + "://" + check + "/v1/health",
			Interval:                       "10s",
			Timeout:                        "2s",
			TLSSkipVerify:                  tlsOn,
			DeregisterCriticalServiceAfter: "10m",
		},
	}}, nil
}

// register retries until Consul accepts the registration or ctx ends.
func (c *consulRegistration) register(ctx context.Context, logf func(msg string, args ...any)) error {
	backoff := time.Second
	for {
		err := c.client.Agent().ServiceRegisterOpts(c.reg, consulapi.ServiceRegisterOpts{}.WithContext(ctx))
		if err == nil {
			logf("registered in consul", "service", c.reg.Name, "id", c.reg.ID)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logf("consul registration failed; retrying", "error", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// deregister removes the service; errors are returned for logging only.
func (c *consulRegistration) deregister(ctx context.Context) error {
	return c.client.Agent().ServiceDeregisterOpts(c.reg.ID, (&consulapi.QueryOptions{}).WithContext(ctx))
}
