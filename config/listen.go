package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// ListenLookupTimeout is how long the agent and `config validate` give
// CheckListen's lookup of a listen address's host name (Host's
// LookupTimeout): a name that has not resolved by then is refused, so
// that a resolver that does not answer cannot hold the check.
const ListenLookupTimeout = 2 * time.Second

// Host is what CheckListen asks of the machine the agent runs on. The
// caller gives it, as it gives ApplyEnv the environment: this package
// lists no interface and resolves no name of its own.
type Host struct {
	// Addrs lists the addresses of its network interfaces
	// (net.InterfaceAddrs).
	Addrs func() ([]net.Addr, error)
	// LookupIP resolves a host name (net.Resolver.LookupIPAddr); it is
	// called with a context that ends after LookupTimeout.
	LookupIP      func(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupTimeout time.Duration
}

// CheckListen refuses the addresses the agent would listen on that it
// cannot listen on on h: http.address on every agent, bind_addr on a
// server that binds a Raft port (not a dev or replay agent, nor a client
// agent). An address must be the unspecified one (0.0.0.0, ::), an
// address of one of h's interfaces (any of a loopback interface's
// network: 127.0.0.2), or a host name that resolves within h's lookup
// timeout to one (the first IPv4 address of its answer, else the first,
// as net.Listen takes); "localhost" is taken without a lookup. An IPv6
// link-local address is refused: it needs a zone, which the setting
// cannot take. Each diagnostic points at the file attribute that set
// the field, or names the environment or flag that did.
//
// Unlike Validate, its answer depends on h, and it may wait for a name
// lookup: the agent runs it on the host it runs on before it starts, once
// the rest of the configuration is valid, and `config validate` as the
// agent does. When h cannot list its addresses, only the lookups are
// checked.
func (c *Config) CheckListen(h Host) hcl.Diagnostics {
	var diags hcl.Diagnostics
	local, addrsErr := h.Addrs()
	check := func(field, value, host string) {
		if why, fix := listenable(h, local, addrsErr == nil, host); why != "" {
			d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid " + field,
				Detail: fmt.Sprintf("%s = %q: %s, so the agent cannot listen there. %s.", field, value, why, fix)}
			diags = append(diags, c.At(d, field))
		}
	}
	if host, _, err := net.SplitHostPort(c.HTTP.Address); err == nil {
		check("http.address", c.HTTP.Address, host)
	}
	if c.Server.Enabled && !c.DevMode && c.BindAddr != "" {
		check("bind_addr", c.BindAddr, c.BindAddr)
	}
	return diags
}

// listenable is why host cannot be listened on and what to do, "" when
// it can; local are h's interface addresses (known says whether they
// could be listed).
func listenable(h Host, local []net.Addr, known bool, host string) (why, fix string) {
	const anyIP = "Use an IP address of this host, or 0.0.0.0 to listen on every interface"
	if host == "localhost" {
		return "", ""
	}
	ip := net.ParseIP(host)
	resolved := ""
	if ip == nil {
		ctx, cancel := context.WithTimeout(context.Background(), h.LookupTimeout)
		defer cancel()
		addrs, err := h.LookupIP(ctx, host)
		switch {
		case errors.Is(err, context.DeadlineExceeded) || (err == nil && ctx.Err() != nil):
			return fmt.Sprintf("the host name %s did not resolve within %s", host, h.LookupTimeout), anyIP
		case err != nil:
			return fmt.Sprintf("the host name %s does not resolve (%s)", host, lookupReason(err)), anyIP
		case len(addrs) == 0:
			return fmt.Sprintf("the host name %s resolves to no address", host), anyIP
		}
		ip = addrs[0].IP
		for _, a := range addrs {
			if a.IP.To4() != nil {
				ip = a.IP
				break
			}
		}
		resolved = fmt.Sprintf("the host name %s resolves to %s, and ", host, ip)
	}
	if ip.IsUnspecified() {
		return "", ""
	}
	if ip.IsLinkLocalUnicast() && ip.To4() == nil {
		return resolved + fmt.Sprintf("%s is an IPv6 link-local address, which needs a zone (%%eth0) that this setting cannot take", ip),
			"Use another address of this host, or :: to listen on every interface"
	}
	if !known {
		return "", ""
	}
	var mine []string
	for _, a := range local {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if n.IP.Equal(ip) || (n.IP.IsLoopback() && n.Contains(ip)) {
			return "", ""
		}
		if !n.IP.IsLinkLocalUnicast() {
			mine = append(mine, n.IP.String())
		}
	}
	if len(mine) == 0 {
		return resolved + fmt.Sprintf("%s is not an address of this host", ip), anyIP
	}
	const shown = 8
	list := strings.Join(mine[:min(len(mine), shown)], ", ")
	if len(mine) > shown {
		list += fmt.Sprintf(" and %d more", len(mine)-shown)
	}
	return resolved + fmt.Sprintf("%s is not an address of this host (it has %s)", ip, list),
		"Use one of them, or 0.0.0.0 to listen on every interface"
}

// lookupReason is a lookup error without the resolver's address, which
// differs between hosts: "no such host".
func lookupReason(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return "no such host"
		}
		return dnsErr.Err
	}
	return err.Error()
}
