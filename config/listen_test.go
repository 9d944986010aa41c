package config_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/config"
)

// fakeHost has the interface addresses of a host with a loopback
// interface and one network, and answers lookups from names; a name
// mapped to nil is never answered (the lookup waits for its context).
func fakeHost(names map[string][]string) config.Host {
	return config.Host{
		Addrs: func() ([]net.Addr, error) {
			var out []net.Addr
			for _, s := range []string{"127.0.0.1/8", "::1/128", "10.0.0.9/24", "fd00::9/64", "fe80::9/64"} {
				ip, n, _ := net.ParseCIDR(s)
				n.IP = ip
				out = append(out, n)
			}
			return out, nil
		},
		LookupIP: func(ctx context.Context, host string) ([]net.IPAddr, error) {
			ips, ok := names[host]
			if !ok {
				return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.255.255.53:53", IsNotFound: true}
			}
			if ips == nil {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			var out []net.IPAddr
			for _, s := range ips {
				out = append(out, net.IPAddr{IP: net.ParseIP(s)})
			}
			return out, nil
		},
		LookupTimeout: 50 * time.Millisecond,
	}
}

// TestCheckListen: http.address, and a server's bind_addr, must be
// addresses the agent can listen on on this host: an address of one of
// its interfaces (or of a loopback interface's network), the unspecified
// address, localhost (not looked up), or a name that resolves within the
// lookup's bound to one; else the file, line and field are named, where
// net.Listen refused them once the agent had started. A dev agent's and a
// client agent's bind_addr is not listened on, and not checked.
func TestCheckListen(t *testing.T) {
	host := fakeHost(map[string][]string{
		"web.internal":       {"10.0.0.9"},
		"both.internal":      {"fd00::7", "10.0.0.9"}, // net.Listen takes the IPv4 address
		"elsewhere.internal": {"10.0.7.7"},
		"v6only.internal":    {"fd00::9"},
		"slow.internal":      nil,
	})
	for _, tc := range []struct {
		name, src string
		dev       bool
		want      string // "" when accepted
	}{
		{name: "the default", src: ""},
		{name: "loopback", src: "http {\n  address = \"127.0.0.1:7575\"\n}\n"},
		{name: "loopback network", src: "http {\n  address = \"127.0.0.2:7575\"\n}\n"},
		{name: "IPv6 loopback", src: "http {\n  address = \"[::1]:7575\"\n}\n"},
		{name: "every interface", src: "http {\n  address = \"0.0.0.0:7575\"\n}\n"},
		{name: "every IPv6 interface", src: "http {\n  address = \"[::]:7575\"\n}\n"},
		{name: "an interface's", src: "http {\n  address = \"10.0.0.9:7575\"\n}\n"},
		{name: "an interface's IPv6", src: "http {\n  address = \"[fd00::9]:7575\"\n}\n"},
		{name: "localhost", src: "http {\n  address = \"localhost:7575\"\n}\n"},
		{name: "a name of this host", src: "http {\n  address = \"web.internal:7575\"\n}\n"},
		{name: "a name whose IPv4 address is this host's", src: "http {\n  address = \"both.internal:7575\"\n}\n"},
		{name: "a name of this host's IPv6", src: "http {\n  address = \"v6only.internal:7575\"\n}\n"},
		{name: "another host's address", src: "http {\n  address = \"10.0.7.7:7575\"\n}\n",
			want: `agent.hcl:2,13-28: Invalid http.address; http.address = "10.0.7.7:7575": 10.0.7.7 is not an address of this host (it has 127.0.0.1, ::1, 10.0.0.9, fd00::9), so the agent cannot listen there. Use one of them, or 0.0.0.0 to listen on every interface.`},
		{name: "a name that does not resolve", src: "http {\n  address = \"nosuch.internal:7575\"\n}\n",
			want: `agent.hcl:2,13-35: Invalid http.address; http.address = "nosuch.internal:7575": the host name nosuch.internal does not resolve (no such host), so the agent cannot listen there. Use an IP address of this host, or 0.0.0.0 to listen on every interface.`},
		{name: "a name that does not resolve in time", src: "http {\n  address = \"slow.internal:7575\"\n}\n",
			want: `agent.hcl:2,13-33: Invalid http.address; http.address = "slow.internal:7575": the host name slow.internal did not resolve within 50ms, so the agent cannot listen there. Use an IP address of this host, or 0.0.0.0 to listen on every interface.`},
		{name: "a name of another host", src: "http {\n  address = \"elsewhere.internal:7575\"\n}\n",
			want: `agent.hcl:2,13-38: Invalid http.address; http.address = "elsewhere.internal:7575": the host name elsewhere.internal resolves to 10.0.7.7, and 10.0.7.7 is not an address of this host (it has 127.0.0.1, ::1, 10.0.0.9, fd00::9), so the agent cannot listen there. Use one of them, or 0.0.0.0 to listen on every interface.`},
		{name: "an IPv6 link-local address", src: "http {\n  address = \"[fe80::9]:7575\"\n}\n",
			want: `agent.hcl:2,13-29: Invalid http.address; http.address = "[fe80::9]:7575": fe80::9 is an IPv6 link-local address, which needs a zone (%eth0) that this setting cannot take, so the agent cannot listen there. Use another address of this host, or :: to listen on every interface.`},
		{name: "a server's bind_addr", src: "bind_addr = \"10.0.0.9\"\n"},
		{name: "a server's bind_addr of another host", src: "bind_addr = \"10.0.7.7\"\n",
			want: `agent.hcl:1,13-23: Invalid bind_addr; bind_addr = "10.0.7.7": 10.0.7.7 is not an address of this host (it has 127.0.0.1, ::1, 10.0.0.9, fd00::9), so the agent cannot listen there. Use one of them, or 0.0.0.0 to listen on every interface.`},
		{name: "a dev agent's http.address", dev: true, src: "http {\n  address = \"10.0.7.7:7575\"\n}\n",
			want: `Invalid http.address; http.address = "10.0.7.7:7575": 10.0.7.7 is not`},
		{name: "a client agent's http.address", src: "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\nhttp {\n  address = \"10.0.7.7:7575\"\n}\n",
			want: `agent.hcl:6,13-28: Invalid http.address; http.address = "10.0.7.7:7575": 10.0.7.7 is not`},
		{name: "a client agent's bind_addr is not listened on", src: "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := config.Default()
			if tc.dev {
				base = config.DevDefault()
			}
			dir := writeFiles(t, map[string]string{"agent.hcl": tc.src})
			c, diags := config.NewLoader().Load(base, dir+"/agent.hcl")
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if tc.name == "a client agent's bind_addr is not listened on" {
				c.BindAddr = "10.0.7.7" // as a file cannot set it on a client agent
			}
			got := c.CheckListen(host).Error()
			got = strings.ReplaceAll(got, dir+"/", "")
			if tc.want == "" && got != "no diagnostics" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("CheckListen:\n%s\nwant %q", got, tc.want)
			}
		})
	}
	// From a flag: named as such.
	c := config.DevDefault()
	if d := config.Set(c, "http.address", "10.0.7.7:7575", "flag -http-addr"); d.HasErrors() {
		t.Fatal(d.Error())
	}
	if got := c.CheckListen(host).Error(); !strings.Contains(got, "(http.address is set by flag -http-addr.)") {
		t.Errorf("from a flag: %s", got)
	}
	// A dev agent's Raft is in-process: its bind_addr is not listened on.
	c = config.DevDefault()
	c.BindAddr = "10.0.7.7"
	if d := c.CheckListen(host); len(d) != 0 {
		t.Errorf("a dev agent's bind_addr: %s", d.Error())
	}
	// A host whose addresses cannot be listed: only lookups are checked.
	h := host
	h.Addrs = func() ([]net.Addr, error) { return nil, errors.New("netlink: permission denied") }
	c = config.Default()
	c.HTTP.Address = "10.0.7.7:7575"
	if d := c.CheckListen(h); len(d) != 0 {
		t.Errorf("without the host's addresses: %s", d.Error())
	}
	c.HTTP.Address = "nosuch.internal:7575"
	if d := c.CheckListen(h); !d.HasErrors() {
		t.Error("without the host's addresses, a name that does not resolve is accepted")
	}
}
