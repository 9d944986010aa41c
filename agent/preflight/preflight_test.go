package preflight_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/testpki"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// A scale target plugin with settings but no runtime: policies accept it,
// the agent could never scale through it.
func init() {
	policies.RegisterTarget("settings-only", policies.TargetFunc(func(hcl.Body, string) (any, hcl.Diagnostics) {
		return struct{}{}, nil
	}))
}

const webPolicy = `shaping "web" {
  locality {
    datacenter = "dc1"
  }
}
`

const queuePolicy = `shaping "queue" {
  locality {
    datacenter = "dc2"
  }
  forecast {
    queries = {
      queue_depth = "sum(queue_depth{ {{.Matchers}} })"
    }
  }
}
`

const settingsOnlyPolicy = `shaping "batch" {
  locality {
    datacenter = "dc3"
  }
  scale "workers" {
    min = 1
    max = 4
    target "settings-only" {}
  }
}
`

func write(t *testing.T, path, s string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fixture is a directory with a server's files: a data dir, a policies
// dir holding webPolicy, a token file, the agent's certificate, key and CA,
// and Nomad's CA.
type fixture struct {
	dir, policies, tokens string
	tls                   testpki.Files
	nomadCA               string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{dir: dir, policies: filepath.Join(dir, "policies.d")}
	if err := os.Mkdir(f.policies, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(f.policies, "web.hcl"), webPolicy)
	f.tokens = write(t, filepath.Join(dir, "tokens"), "# operators\ns3cret\n")
	ca := testpki.NewCA(t, "foreshape")
	f.tls = testpki.WriteFiles(t, dir, "agent", ca, ca.Issue(t, "agent"))
	nomad := testpki.NewCA(t, "nomad")
	f.nomadCA = testpki.WriteFiles(t, dir, "nomad", nomad, nomad.Issue(t, "client")).CA
	return f
}

// config is a server's configuration over f's files with TLS and ACLs on.
func (f fixture) config() *config.Config {
	c := config.Default()
	c.DataDir = filepath.Join(f.dir, "data")
	c.Policies.Dir = f.policies
	c.ACL = config.ACL{Enabled: true, TokenFile: f.tokens}
	c.TLS = config.TLS{CAFile: f.tls.CA, CertFile: f.tls.Cert, KeyFile: f.tls.Key}
	c.Nomad.Address, c.Nomad.CAFile = "https://127.0.0.1:4646", f.nomadCA
	return c
}

// clientOf is a client agent's configuration with c's ACL, TLS and Nomad
// settings (a client agent refuses a server's data_dir and policies.dir).
func clientOf(c *config.Config) *config.Config {
	client := config.Default()
	client.Server.Enabled = false
	client.Server.RetryJoin = []string{"10.0.0.1"}
	client.ACL, client.TLS, client.Nomad = c.ACL, c.TLS, c.Nomad
	return client
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(t *testing.T, f fixture, c *config.Config, o *preflight.Options)
		// want is what the one error must say ("" expects none).
		want string
	}{
		{name: "everything in place"},
		{name: "configuration rules first", want: "Missing acl.token_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) { c.ACL.TokenFile = "" }},
		{name: "policies.dir missing", want: "Cannot read policies.dir",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Policies.Dir = filepath.Join(f.dir, "none")
			}},
		{name: "policies.dir not a directory", want: "Cannot read policies.dir",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) { c.Policies.Dir = f.tokens }},
		{name: "policies.dir missing in dev mode: a warning",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.DevMode, c.DataDir, c.Policies.Dir = true, "", filepath.Join(f.dir, "none")
			}},
		{name: "an invalid policy", want: "Invalid headroom.cpu",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				write(t, filepath.Join(f.policies, "bad.hcl"), "shaping \"bad\" {\n  locality {\n    datacenter = \"dc9\"\n  }\n  headroom {\n    cpu = 120\n  }\n}\n")
			}},
		{name: "queries without prometheus.address", want: "Missing prometheus.address",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				write(t, filepath.Join(f.policies, "queue.hcl"), queuePolicy)
			}},
		{name: "queries with prometheus.address",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				write(t, filepath.Join(f.policies, "queue.hcl"), queuePolicy)
				c.Prometheus.Address = "http://127.0.0.1:9090"
			}},
		{name: "queries in a replay, which serves them",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				write(t, filepath.Join(f.policies, "queue.hcl"), queuePolicy)
				o.Sources = true
			}},
		{name: "more series than the store holds", want: "need 4 series, more than the 3",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) { o.MaxSeries = 3 }},
		{name: "Prometheus's series count", want: "need 7 series, more than the 6",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				o.MaxSeries, c.Prometheus.Address = 6, "http://127.0.0.1:9090"
			}},
		{name: "given policies replace policies.dir", want: "need 8 series, more than the 7",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				pols, diags := policies.Parse("given.hcl", []byte(webPolicy+strings.ReplaceAll(webPolicy, `"web"`, `"api"`)))
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				pols[1].Locality.Datacenter = "dc2"
				o.Policies, o.MaxSeries, c.Policies.Dir = pols, 7, filepath.Join(f.dir, "none")
			}},
		{name: "a scale target without a runtime", want: `the agent cannot run its settings-only target`,
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				write(t, filepath.Join(f.policies, "batch.hcl"), settingsOnlyPolicy)
			}},
		{name: "acl.token_file missing", want: "Cannot read acl.token_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.ACL.TokenFile = filepath.Join(f.dir, "none")
			}},
		{name: "acl.token_file without a token", want: "holds no token",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				write(t, f.tokens, "# tokens come later\n\n")
			}},
		{name: "acl.read_token_file missing", want: "Cannot read acl.read_token_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.ACL.ReadTokenFile = filepath.Join(f.dir, "none")
			}},
		{name: "acl.read_token_file without a token", want: "holds no token (one a line; '#' starts a comment): list the read-only tokens, or remove acl.read_token_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.ACL.ReadTokenFile = write(t, filepath.Join(f.dir, "read-tokens"), "# none yet\n")
			}},
		{name: "acl.read_token_file sharing a token with acl.token_file", want: "token 2 of the 2 in",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				// s3cret is the fixture's acl.token_file token.
				c.ACL.ReadTokenFile = write(t, filepath.Join(f.dir, "read-tokens"), "r3ad\n# a comment\ns3cret\n")
			}},
		{name: "acl.read_token_file of its own tokens",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.ACL.ReadTokenFile = write(t, filepath.Join(f.dir, "read-tokens"), "r3ad\n")
			}},
		{name: "tls.cert_file missing", want: "Cannot read tls.cert_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.TLS.CertFile = filepath.Join(f.dir, "none")
			}},
		{name: "tls.key_file of another certificate", want: "Invalid tls.cert_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				other := testpki.NewCA(t, "other")
				c.TLS.KeyFile = testpki.WriteFiles(t, f.dir, "other", other, other.Issue(t, "x")).Key
			}},
		{name: "tls.ca_file without a certificate", want: "Invalid tls.ca_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) { c.TLS.CAFile = f.tokens }},
		{name: "nomad.ca_file missing", want: "Cannot read nomad.ca_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Nomad.CAFile = filepath.Join(f.dir, "none")
			}},
		{name: "nomad.ca_file without a certificate", want: "Invalid nomad TLS files",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) { c.Nomad.CAFile = f.tokens }},
		{name: "nomad's files unread over http (only the environment sets them so)",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Nomad.Address, c.Nomad.CAFile = "http://127.0.0.1:4646", filepath.Join(f.dir, "none")
			}},
		{name: "nomad's files unread in a replay",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Nomad.CAFile, o.Sources = filepath.Join(f.dir, "none"), true
			}},
		{name: "Prometheus over TLS with a CA and a client certificate",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Prometheus = config.Prometheus{Address: "https://127.0.0.1:9090", CAFile: f.tls.CA, CertFile: f.tls.Cert, KeyFile: f.tls.Key}
			}},
		{name: "prometheus.ca_file missing", want: "Cannot read prometheus.ca_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Prometheus = config.Prometheus{Address: "https://127.0.0.1:9090", CAFile: filepath.Join(f.dir, "none")}
			}},
		{name: "prometheus.ca_file without a certificate", want: "Invalid prometheus.ca_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Prometheus = config.Prometheus{Address: "https://127.0.0.1:9090", CAFile: f.tokens}
			}},
		{name: "prometheus.key_file of another certificate", want: "Invalid prometheus.cert_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				other := testpki.NewCA(t, "other")
				key := testpki.WriteFiles(t, f.dir, "other", other, other.Issue(t, "x")).Key
				c.Prometheus = config.Prometheus{Address: "https://127.0.0.1:9090", CertFile: f.tls.Cert, KeyFile: key}
			}},
		{name: "prometheus.token_file missing", want: "Cannot read prometheus.token_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Prometheus = config.Prometheus{Address: "http://127.0.0.1:9090", TokenFile: filepath.Join(f.dir, "none")}
			}},
		{name: "prometheus.token_file empty", want: "Invalid prometheus.token_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Prometheus = config.Prometheus{Address: "http://127.0.0.1:9090", TokenFile: write(t, filepath.Join(f.dir, "token"), "\n")}
			}},
		{name: "prometheus.token_file of two lines", want: "the file holds more than one line",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Prometheus = config.Prometheus{Address: "http://127.0.0.1:9090", TokenFile: write(t, filepath.Join(f.dir, "token"), "a\nb\n")}
			}},
		{name: "prometheus.token_file with a control character", want: "the token holds a control character",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Prometheus = config.Prometheus{Address: "http://127.0.0.1:9090", TokenFile: write(t, filepath.Join(f.dir, "token"), "a\x01b\n")}
			}},
		{name: "prometheus.password_file missing", want: "Cannot read prometheus.password_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Prometheus = config.Prometheus{Address: "http://127.0.0.1:9090", Username: "u", PasswordFile: filepath.Join(f.dir, "none")}
			}},
		{name: "Prometheus's files unread in a replay",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Prometheus = config.Prometheus{Address: "https://127.0.0.1:9090", CAFile: filepath.Join(f.dir, "none"), TokenFile: filepath.Join(f.dir, "none")}
				o.Sources = true
			}},
		{name: "data_dir is a file", want: "Cannot use data_dir",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) { c.DataDir = f.tokens }},
		// The agent creates data_dir and its missing parents: one of
		// those that exists must be a directory it may write to.
		{name: "data_dir under a file", want: "is not a directory",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.DataDir = filepath.Join(f.tokens, "a", "data")
			}},
		// Root's permission check passes in /proc, where the agent
		// could create neither data_dir nor its node-id.
		{name: "data_dir under /proc", want: "/proc (where the agent would create it) is on the kernel's proc file system",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				if runtime.GOOS != "linux" {
					t.Skip("the kernel's file systems are told apart on Linux only")
				}
				c.DataDir = "/proc/foreshape/data"
			}},
		{name: "data_dir not there yet, its parent writable",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.DataDir = filepath.Join(f.dir, "new", "deeper", "data")
			}},
		{name: "data_dir holds a damaged node-id", want: `holds "not-an-id", not a node id`,
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
					t.Fatal(err)
				}
				write(t, filepath.Join(c.DataDir, "node-id"), "not-an-id\n")
			}},
		{name: "Consul's client refuses its environment", want: `Cannot use Consul's environment variables`,
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Consul.Enabled = true
				t.Setenv("CONSUL_HTTP_TOKEN_FILE", filepath.Join(f.dir, "none"))
			}},
		{name: "Consul's client refuses its CA", want: `also reads CONSUL_CACERT="/nonexistent/consul-ca.pem" from the environment: Error loading CA File`,
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Consul.Enabled = true
				t.Setenv("CONSUL_CACERT", "/nonexistent/consul-ca.pem")
			}},
		// Consul's client ignores a switch it cannot parse, with a log
		// line of its own, and would then speak plain HTTP: refused,
		// naming it.
		{name: "Consul's TLS switch unparsable", want: `CONSUL_HTTP_SSL="maybe" is not true or false`,
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Consul.Enabled = true
				t.Setenv("CONSUL_HTTP_SSL", "maybe")
			}},
		{name: "Consul's verify switch unparsable", want: `CONSUL_HTTP_SSL_VERIFY="no" is not true or false`,
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				c.Consul.Enabled = true
				t.Setenv("CONSUL_HTTP_SSL_VERIFY", "no")
			}},
		{name: "a client agent reads no policies",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) { *c = *clientOf(c) }},
		{name: "a client agent's token file", want: "Cannot read acl.token_file",
			apply: func(t *testing.T, f fixture, c *config.Config, o *preflight.Options) {
				*c = *clientOf(c)
				c.ACL.TokenFile = filepath.Join(f.dir, "none")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.config()
			var opts preflight.Options
			if tc.apply != nil {
				tc.apply(t, f, cfg, &opts)
			}
			start, diags := preflight.Check(cfg, opts)
			err := preflight.Err(diags)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if cfg.Server.Enabled && len(start.Policies) == 0 && !cfg.DevMode {
					t.Error("no policies")
				}
				if cfg.ACL.Enabled && len(start.Tokens) != 1 {
					t.Errorf("tokens %q", start.Tokens)
				}
				if start.TLS == nil || start.ClusterTLS() == nil {
					t.Error("no TLS")
				}
				if (start.Nomad == nil) != opts.Sources {
					t.Errorf("Nomad client %v with Sources %v", start.Nomad, opts.Sources)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			var errs int
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs++
				}
			}
			if errs != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%d errors: %v\nwant one saying %q", errs, err, tc.want)
			}
		})
	}
}

// TestCheckPointsAtTheSetting: a problem with a file a setting names points
// at that setting in the configuration file; a policy's, at the policy.
func TestCheckPointsAtTheSetting(t *testing.T) {
	f := newFixture(t)
	write(t, filepath.Join(f.policies, "queue.hcl"), queuePolicy)
	path := write(t, filepath.Join(f.dir, "agent.hcl"), `data_dir = "`+filepath.Join(f.dir, "data")+`"
acl {
  enabled    = true
  token_file = "`+filepath.Join(f.dir, "none")+`"
}
policies {
  dir = "`+f.policies+`"
}
`)
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	_, diags = preflight.Check(cfg, preflight.Options{})
	got := map[string]string{}
	for _, d := range diags {
		if d.Subject != nil {
			got[d.Summary] = d.Subject.String()
		}
	}
	for summary, at := range map[string]string{
		"Cannot read acl.token_file": path + ":4,16",
		"Missing prometheus.address": filepath.Join(f.policies, "queue.hcl") + ":6,15",
	} {
		if !strings.HasPrefix(got[summary], at) {
			t.Errorf("%s at %q, want %s", summary, got[summary], at)
		}
	}
}

// TestPolicies: the policy checks without a configuration are those that
// hold under any; with one, they add what it decides.
func TestPolicies(t *testing.T) {
	pols, diags := policies.Parse("p.hcl", []byte(webPolicy+queuePolicy))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if d := preflight.Policies(nil, pols, preflight.Options{}); d.HasErrors() {
		t.Errorf("without a configuration: %v", d)
	}
	if d := preflight.Policies(nil, pols, preflight.Options{MaxSeries: 8}); !strings.Contains(d.Error(), "need 9 series") {
		t.Errorf("the series bound without a configuration: %v", d)
	}
	cfg := config.Default()
	if d := preflight.Policies(cfg, pols, preflight.Options{}); !strings.Contains(d.Error(), "Missing prometheus.address") {
		t.Errorf("with a configuration without Prometheus: %v", d)
	}
	cfg.Prometheus.Address = "http://127.0.0.1:9090"
	if d := preflight.Policies(cfg, pols, preflight.Options{MaxSeries: 14}); !strings.Contains(d.Error(), "need 15 series, more than the 14") {
		t.Errorf("with Prometheus, the series bound counts its metrics: %v", d)
	}
	// A policy's iops query replaces the IOPS query of its locality: no
	// series more than Nomad's four and Prometheus' three.
	iops, diags := policies.Parse("i.hcl", []byte("shaping \"i\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n  forecast {\n    queries = {\n      iops = \"sum(x{ {{.Matchers}} })\"\n    }\n  }\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if d := preflight.Policies(cfg, iops, preflight.Options{MaxSeries: 7}); d.HasErrors() {
		t.Errorf("an iops query within 7 series: %v", d)
	}
	if d := preflight.Policies(cfg, iops, preflight.Options{MaxSeries: 6}); !strings.Contains(d.Error(), "need 7 series, more than the 6") {
		t.Errorf("an iops query over 6 series: %v", d)
	}
	batch, diags := policies.Parse("b.hcl", []byte(settingsOnlyPolicy))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if d := preflight.Policies(nil, batch, preflight.Options{}); !strings.Contains(d.Error(), "settings-only") {
		t.Errorf("a target without a runtime: %v", d)
	}
	// Two policies on one locality: refused naming both (it was a warning,
	// and the second's forecast, headroom and reserve were ignored).
	two, diags := policies.Parse("two.hcl", []byte(webPolicy+strings.ReplaceAll(webPolicy, `"web"`, `"api"`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	d := preflight.Policies(nil, two, preflight.Options{})
	if len(d) != 1 || d[0].Severity != hcl.DiagError || d[0].Summary != "Two policies shape one locality" ||
		!strings.Contains(d[0].Detail, `Policies "web" (two.hcl:1,1-14) and "api" both shape dc1`) || d[0].Subject == nil || d[0].Subject.Start.Line != 6 {
		t.Errorf("two policies on dc1: %v", d)
	}
}

// A Nomad that stops answering in the middle of a call fails the agent's
// call after Options.NomadTimeout instead of holding it (and the leader's
// cycle behind it) until the connection dies; a blocking query still gets
// the wait it asks Nomad for on top.
func TestNomadCallsAreBounded(t *testing.T) {
	c, err := sim.New(sim.DefaultScenario(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer func() {
		srv.CloseClientConnections() // a held call ends with its connection
		srv.Close()
	}()
	if err := c.SetFaults(sim.Faults{TimeoutRate: 1, PathPrefix: "/v1/jobs"}); err != nil {
		t.Fatal(err)
	}
	cfg := clientOf(config.Default())
	cfg.Nomad.Address = srv.URL
	start, diags := preflight.Check(cfg, preflight.Options{NomadTimeout: 200 * time.Millisecond})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}

	done := make(chan error, 1)
	go func() {
		_, _, err := start.Nomad.Jobs().List(nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
			t.Fatalf("a call Nomad never answers: got %v, want %v", err, context.DeadlineExceeded)
		}
		// The error (logged by whoever called) names the Nomad that kept
		// silent and for how long.
		if want := "Nomad at " + strings.TrimPrefix(srv.URL, "http://") + " did not answer within 200ms"; !strings.Contains(err.Error(), want) {
			t.Errorf("a call Nomad never answers: %v; want it to say %q", err, want)
		}
	case <-time.After(time.Minute):
		t.Fatal("a call Nomad never answers still waits after a minute")
	}

	_, meta, err := start.Nomad.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	q := &nomadapi.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Second}
	began := time.Now()
	if _, _, err := start.Nomad.Nodes().List(q); err != nil {
		t.Fatalf("a blocking query with a 1s wait, calls bounded at 200ms: %v", err)
	}
	if held := time.Since(began); held < 900*time.Millisecond {
		t.Fatalf("the simulator answered the blocking query after %s, not its wait: the test shows nothing", held)
	}
}

// TestNomadClientIgnoresHTTPAuth: NOMAD_HTTP_AUTH, which nomad/api's
// defaults read and no setting of foreshape's shows, puts no credentials
// on the agent's Nomad calls (config.IgnoredEnv says so in the log).
func TestNomadClientIgnoresHTTPAuth(t *testing.T) {
	t.Setenv("NOMAD_HTTP_AUTH", "alice:s3cret")
	auth := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case auth <- r.Header.Get("Authorization"):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("[]"))
	}))
	defer srv.Close()
	cfg := clientOf(config.Default())
	cfg.Nomad.Address = srv.URL
	start, diags := preflight.Check(cfg, preflight.Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if _, _, err := start.Nomad.Nodes().List(nil); err != nil {
		t.Fatal(err)
	}
	if got := <-auth; got != "" {
		t.Errorf("the agent's Nomad call sent Authorization %q from NOMAD_HTTP_AUTH", got)
	}
	if got := config.IgnoredEnv(os.Getenv); len(got) != 1 || got[0].Name != "NOMAD_HTTP_AUTH" {
		t.Errorf("IgnoredEnv = %v, want NOMAD_HTTP_AUTH", got)
	}
}

// TestConsulClientReadsConsulsEnvironment: TLS to Consul is set, as for
// Consul's CLI, by Consul's own variables (docs/clustering.md#consul): with
// CONSUL_CACERT naming the CA of an https:// consul.address, the client
// verifies it; without, the handshake fails.
func TestConsulClientReadsConsulsEnvironment(t *testing.T) {
	token := make(chan string, 4)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token <- r.Header.Get("X-Consul-Token")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Config": {"NodeName": "consul-1"}}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "consul-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "consul-token")
	if err := os.WriteFile(tokenFile, []byte("consul-file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONSUL_HTTP_TOKEN_FILE", tokenFile)
	cc := config.Consul{Address: srv.URL}
	for _, tc := range []struct {
		cacert string
		ok     bool
	}{{"", false}, {ca, true}} {
		t.Setenv("CONSUL_CACERT", tc.cacert)
		c, err := preflight.ConsulClient(cc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Agent().Self()
		if (err == nil) != tc.ok {
			t.Errorf("CONSUL_CACERT=%q: %v; want success %v", tc.cacert, err, tc.ok)
		}
	}
	// consul.token is empty: CONSUL_HTTP_TOKEN_FILE's token was sent.
	if got := <-token; got != "consul-file-token" {
		t.Errorf("X-Consul-Token %q, want the token of CONSUL_HTTP_TOKEN_FILE", got)
	}
}

// TestMissingPoliciesDirInAReplay: a replay (dev defaults, given sources)
// without policies.dir is warned in a replay's terms, not told it runs the
// dev agent's demo policies, which a replay never does.
func TestMissingPoliciesDirInAReplay(t *testing.T) {
	cfg := config.DevDefault()
	if diags := config.Set(cfg, "policies.dir", filepath.Join(t.TempDir(), "none"), "a test"); diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	_, diags := preflight.Check(cfg, preflight.Options{Sources: true})
	if diags.HasErrors() || len(diags) != 1 {
		t.Fatalf("want one warning, got %v", diags)
	}
	if d := diags[0].Detail; !strings.Contains(d, "A replay runs without them when its directory holds *.hcl policies") || strings.Contains(d, "demo") {
		t.Errorf("warning %q", d)
	}
}

// TestDevWithoutPoliciesDirIsQuiet: a dev agent (or a replay) whose
// policies.dir is the default, set by nobody, and absent is not warned
// about it: `make dev` on a fresh machine starts without a warning.
func TestDevWithoutPoliciesDirIsQuiet(t *testing.T) {
	cfg := config.DevDefault()
	for _, sources := range []bool{false, true} {
		if _, diags := preflight.Check(cfg, preflight.Options{Sources: sources}); len(diags) != 0 {
			t.Errorf("sources %v: %v", sources, diags)
		}
	}
}

// TestDevDoesNotReadTheDefaultPoliciesDir: policies.dir's default is
// where a deployed agent's policies are (/etc/foreshape/policies.d); a dev
// agent or a replay on a machine that has them runs its own (the demo's,
// the recording's), not those, unless a configuration file sets
// policies.dir. Before, `make dev` beside a deployed agent loaded its
// policies against the simulated cluster.
func TestDevDoesNotReadTheDefaultPoliciesDir(t *testing.T) {
	f := newFixture(t)
	defer preflight.SetDefaultPoliciesDir(f.policies)()
	cfg := config.DevDefault()
	cfg.Policies.Dir = f.policies // the default, set by nobody
	for _, sources := range []bool{false, true} {
		start, diags := preflight.Check(cfg, preflight.Options{Sources: sources})
		if diags.HasErrors() || start.Policies != nil {
			t.Errorf("sources %v: %d policies read from the default policies.dir (%v); want none read", sources, len(start.Policies), diags)
		}
	}
	if diags := config.Set(cfg, "policies.dir", f.policies, "a test"); diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if start, diags := preflight.Check(cfg, preflight.Options{}); diags.HasErrors() || len(start.Policies) != 1 {
		t.Errorf("policies.dir set: %d policies (%v); want its one", len(start.Policies), diags)
	}
}

// TestNomadRefusalNamesTheCall: a call Nomad's ACLs refuse (403
// "Permission denied") fails with Nomad's reason once, the call it refused
// (method and path) and what to check — the agent's token, or that it has
// none — whichever of the agent's calls it was; a 403 that is not the
// ACLs' (registrations disabled by the scheduler configuration) is left
// as Nomad said it.
func TestNomadRefusalNamesTheCall(t *testing.T) {
	sc := sim.DefaultScenario()
	sc.Tokens = []string{"s3cret"}
	// A client token: the scheduler configuration rejects registrations
	// only from a token that is no management token.
	const limited = "0b6e9d21-8c4f-4a37-b1d5-3e9f7a2c6d80"
	sc.Policies = map[string]sim.Policy{limited: {Capabilities: []string{"submit-job"}}}
	c, err := sim.New(sc, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	client := func(token string) *nomadapi.Client {
		cfg := clientOf(config.Default())
		cfg.Nomad.Address, cfg.Nomad.Token = srv.URL, config.Secret(token)
		start, diags := preflight.Check(cfg, preflight.Options{})
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		return start.Nomad
	}
	wrong, none, good := client("wrong"), client(""), client("s3cret")
	const check = "check nomad.token or NOMAD_TOKEN, and that its ACL policy grants what deploy/foreshape-acl.hcl does"
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"list nodes, wrong token", func() error { _, _, err := wrong.Nodes().List(nil); return err },
			"Unexpected response code: 403 (Permission denied; Nomad refused GET /v1/nodes with the agent's token: " + check + ")"},
		{"blocking list of allocations, wrong token", func() error {
			_, _, err := wrong.Allocations().List(&nomadapi.QueryOptions{WaitIndex: 5, WaitTime: time.Second})
			return err
		}, "Permission denied; Nomad refused GET /v1/allocations with the agent's token: " + check},
		{"stop an allocation, wrong token", func() error {
			_, err := wrong.Allocations().Stop(&nomadapi.Allocation{ID: "a1"}, nil)
			return err
		}, "Permission denied; Nomad refused PUT /v1/allocation/a1/stop with the agent's token: " + check},
		{"node stats, no token", func() error { _, err := none.Nodes().Stats("n1", nil); return err },
			"Permission denied; Nomad refused GET /v1/client/stats, which the agent made without a token: set nomad.token or NOMAD_TOKEN " +
				"(or nomad.token_file) to a token whose ACL policy grants what deploy/foreshape-acl.hcl does"},
	} {
		err := tc.call()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "Permission denied") != 1 {
			t.Errorf("%s: %v\nwant it to say %q, and Nomad's reason once", tc.name, err, tc.want)
		}
		if !preflight.NomadRefused(fmt.Errorf("migrate: %w", err)) {
			t.Errorf("%s: NomadRefused(%v) false; want true", tc.name, err)
		}
	}
	if _, _, err := good.Nodes().Info("00000000-0000-0000-0000-000000000000", nil); err == nil || preflight.NomadRefused(err) {
		t.Errorf("an unknown node with the token: %v; want an error that is no refusal", err)
	}

	// Nomad compresses its refusal for a client that accepts gzip, as
	// nomad/api does (measured on Nomad 2.0: Content-Encoding gzip on a
	// 17-byte "Permission denied"); so does the simulator.
	encoding := make(chan string, 1)
	gz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/jobs" {
			w = encodingOf{w, encoding}
		}
		c.Handler().ServeHTTP(w, r)
	}))
	defer gz.Close()
	cfg := clientOf(config.Default())
	cfg.Nomad.Address, cfg.Nomad.Token = gz.URL, "wrong"
	start, diags := preflight.Check(cfg, preflight.Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	_, _, err = start.Nomad.Jobs().List(nil)
	if want := "403 (Permission denied; Nomad refused GET /v1/jobs with the agent's token: " + check + ")"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a compressed refusal: %v; want %q", err, want)
	}
	select {
	case enc := <-encoding:
		if enc != "gzip" {
			t.Errorf("the refusal came with Content-Encoding %q; want it compressed, as Nomad sends it", enc)
		}
	default:
		t.Error("the refusal came without a status line of its own")
	}

	// A secret that is no UUID: Nomad tries it as a workload identity on
	// some calls and answers 500 (measured on Nomad 2.0; the simulator
	// answers alike: sim's TestFidelityNonUUIDSecret); other 500s are
	// left as Nomad said them.
	nodes, _, err := good.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	ready := ""
	for _, n := range nodes {
		if n.Status == "ready" {
			ready = n.ID
			break
		}
	}
	notAToken := client("not-a-token")
	_, err = notAToken.Agent().Self()
	if want := "500 (ACL token not found or invalid workload identity: failed to parse signed token: go-jose/go-jose: compact JWS " +
		"format must have three parts; Nomad refused GET /v1/agent/self with the agent's token: " + check + ")"; err == nil ||
		!strings.Contains(err.Error(), want) {
		t.Errorf("a secret that is no token, agent self: %v; want %q", err, want)
	}
	_, err = notAToken.Nodes().Stats(ready, nil)
	if want := "500 (rpc error: failed to parse signed token: go-jose/go-jose: compact JWS format must have three parts; " +
		"Nomad refused GET /v1/client/stats with the agent's token: " + check + ")"; err == nil || !strings.Contains(err.Error(), want) ||
		!preflight.NomadRefused(err) {
		t.Errorf("a secret that is no token, client stats: %v; want %q", err, want)
	}
	if err := c.SetFaults(sim.Faults{ErrorRate: 1, PathPrefix: "/v1/node/"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = good.Nodes().Info(ready, nil)
	if err == nil || !strings.Contains(err.Error(), "500 (simulated fault: internal error)") || preflight.NomadRefused(err) {
		t.Errorf("another 500: %v; want Nomad's answer as it is", err)
	}
	if err := c.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}

	if _, _, err := good.Operator().SchedulerSetConfiguration(&nomadapi.SchedulerConfiguration{RejectJobRegistration: true}, nil); err != nil {
		t.Fatal(err)
	}
	job := nomadapi.NewServiceJob("x", "x", "global", 50)
	job.AddTaskGroup(nomadapi.NewTaskGroup("g", 1).AddTask(nomadapi.NewTask("t", "raw_exec")))
	_, _, err = client(limited).Jobs().Register(job, nil)
	if err == nil || !strings.Contains(err.Error(), "403 (Job registration, dispatch, and scale are disabled by the scheduler configuration)") ||
		strings.Contains(err.Error(), "token") {
		t.Errorf("a registration the scheduler configuration refuses: %v; want Nomad's answer as it is", err)
	}
	if preflight.NomadRefused(err) {
		t.Errorf("a registration the scheduler configuration refuses: NomadRefused(%v) true; want false (no ACL refusal)", err)
	}
}

// encodingOf passes on the Content-Encoding of the answer it writes.
type encodingOf struct {
	http.ResponseWriter
	enc chan<- string
}

func (w encodingOf) WriteHeader(code int) {
	w.enc <- w.Header().Get("Content-Encoding")
	w.ResponseWriter.WriteHeader(code)
}

// TestNameFallsBackToTheHostName: a server and a client agent alike are
// named by name, else by the host name, and refuse to start, asking for
// name, when the host name is unknown.
func TestNameFallsBackToTheHostName(t *testing.T) {
	f := newFixture(t)
	for _, role := range []string{"server", "client agent"} {
		cfg := func() *config.Config {
			if role == "server" {
				return f.config()
			}
			return clientOf(f.config())
		}
		restore := preflight.SetHostname(func() (string, error) { return "host-7", nil })
		s, diags := preflight.Check(cfg(), preflight.Options{})
		restore()
		if diags.HasErrors() || s.Name != "host-7" {
			t.Errorf("%s, host name host-7: name %q, %v", role, s.Name, diags)
		}
		restore = preflight.SetHostname(func() (string, error) { return "", errors.New("uname: no name") })
		c := cfg()
		if s, diags := preflight.Check(c, preflight.Options{}); !diags.HasErrors() ||
			!strings.Contains(diags.Error(), "Missing name") || !strings.Contains(diags.Error(), "the host name is unknown (uname: no name): set name") {
			t.Errorf("%s, host name unknown: name %q, %v; want Missing name", role, s.Name, diags)
		}
		c.Name = "fs-c7"
		if s, diags := preflight.Check(c, preflight.Options{}); diags.HasErrors() || s.Name != "fs-c7" {
			t.Errorf("%s named fs-c7, host name unknown: name %q, %v", role, s.Name, diags)
		}
		restore()
	}
}

// A consul.address of unix://PATH (as CONSUL_HTTP_ADDR may be) reaches
// Consul over its socket; it was refused as not an http(s) URL.
func TestConsulOverAUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "consul.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Config": {"NodeName": "consul-sock"}}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	dir := t.TempDir()
	path := write(t, filepath.Join(dir, "agent.hcl"), "consul {\n  enabled = true\n  address = \"unix://"+sock+"\"\n}\n")
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatalf("unix://: %s", diags.Error())
	}
	c, err := preflight.ConsulClient(cfg.Consul)
	if err != nil {
		t.Fatal(err)
	}
	self, err := c.Agent().Self()
	if err != nil || self["Config"]["NodeName"] != "consul-sock" {
		t.Errorf("Consul over %s: %v, %v", sock, self, err)
	}
	if _, diags := config.Load(write(t, filepath.Join(dir, "bad.hcl"), "consul {\n  address = \"unix://\"\n}\n")); !diags.HasErrors() || !strings.Contains(diags.Error(), "names no socket path") {
		t.Errorf("unix:// without a path: %v", diags)
	}
}

// Two scale blocks setting one task group's count are refused, naming both;
// an unset namespace is the agent's nomad.namespace.
func TestTwoScaleBlocksOnOneGroup(t *testing.T) {
	scale := func(policy, dc, name, ns string) string {
		return fmt.Sprintf(`shaping %q {
  locality {
    datacenter = %q
  }
  scale %q {
    min = 1
    max = 4
    target "nomad-job" {
      job   = "workers"
      group = "w"
      %s
    }
  }
}
`, policy, dc, name, ns)
	}
	pols, diags := policies.Parse("s.hcl", []byte(scale("a", "dc1", "up", "")+scale("b", "dc2", "more", `namespace = "ops"`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if d := preflight.Policies(nil, pols, preflight.Options{}); d.HasErrors() {
		t.Errorf("different namespaces: %v", d)
	}
	cfg := config.Default()
	cfg.Nomad.Namespace = "ops"
	d := preflight.Policies(cfg, pols, preflight.Options{})
	if !d.HasErrors() || !strings.Contains(d.Error(), `Policy "b", scale "more" and policy "a", scale "up"`) || d[0].Subject.Start.Line != 19 {
		t.Errorf("one group through nomad.namespace: %v", d)
	}

	// Unset beside namespace = "default": one group only when the agent's
	// namespace is the default one, so without a configuration policy
	// validate does not refuse what an agent in another namespace runs.
	pols, diags = policies.Parse("s.hcl", []byte(scale("a", "dc1", "up", "")+scale("b", "dc2", "more", `namespace = "default"`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if d := preflight.Policies(nil, pols, preflight.Options{}); d.HasErrors() {
		t.Errorf("unset and \"default\" without a configuration: %v", d)
	}
	if d := preflight.Policies(config.Default(), pols, preflight.Options{}); !d.HasErrors() {
		t.Error("unset and \"default\" with nomad.namespace unset: accepted")
	}
	if d := preflight.Policies(cfg, pols, preflight.Options{}); d.HasErrors() {
		t.Errorf("unset and \"default\" with nomad.namespace = \"ops\": %v", d)
	}

	// An unset region beside region = "global": with nomad.region unset
	// too, the unset one runs in the Nomad agent's region, which may be
	// "global"; with nomad.region naming another they are two groups.
	pols, diags = policies.Parse("s.hcl", []byte(scale("a", "dc1", "up", `region = "global"`)+scale("b", "dc2", "more", "")))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if d := preflight.Policies(nil, pols, preflight.Options{}); d.HasErrors() {
		t.Errorf("unset and \"global\" without a configuration: %v", d)
	}
	d = preflight.Policies(config.Default(), pols, preflight.Options{})
	if !d.HasErrors() || !strings.Contains(d.Error(), `Scale "up" names region "global" and scale "more" names none, nor does nomad.region`) || d[0].Subject.Start.Line != 19 {
		t.Errorf("unset and \"global\" with nomad.region unset: %v", d)
	}
	eu := config.Default()
	eu.Nomad.Region = "eu"
	if d := preflight.Policies(eu, pols, preflight.Options{}); d.HasErrors() {
		t.Errorf("unset and \"global\" with nomad.region = \"eu\": %v", d)
	}
	eu.Nomad.Region = "global"
	if d := preflight.Policies(eu, pols, preflight.Options{}); !d.HasErrors() || strings.Contains(d.Error(), "names none") {
		t.Errorf("unset and \"global\" with nomad.region = \"global\": %v", d)
	}
	pols, diags = policies.Parse("s.hcl", []byte(scale("a", "dc1", "up", `region = "global"`)+scale("b", "dc2", "more", `region = "eu"`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if d := preflight.Policies(config.Default(), pols, preflight.Options{}); d.HasErrors() {
		t.Errorf("\"global\" and \"eu\": %v", d)
	}
}

// A schedule whose cron names only past times is warned of against
// Options.Now, and not refused: a window that passed must not stop a
// restart. One under way, or without a year, is not.
func TestPastScheduleWarned(t *testing.T) {
	pol := func(cron string) []*policies.Policy {
		src := fmt.Sprintf(`shaping "web" {
  locality {
    datacenter = "dc1"
  }
  schedule "once" {
    cron     = %q
    duration = "2h"
    action   = "drain"
  }
}
`, cron)
		pols, diags := policies.Parse("w.hcl", []byte(src))
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return pols
	}
	now := time.Date(2026, 3, 14, 3, 0, 0, 0, time.UTC)
	d := preflight.Policies(nil, pol("0 0 14 3 * 2026"), preflight.Options{Now: now})
	if d.HasErrors() || len(d) != 1 || d[0].Summary != "Schedule over" || !strings.Contains(d[0].Detail, `schedule "once"`) || d[0].Subject.Start.Line != 5 {
		t.Errorf("a one-off window over at 02:00, at 03:00: %v", d)
	}
	for _, cron := range []string{"0 2 14 3 * 2026", "0 2 * * *", "0 0 1 1 * 2027"} {
		if d := preflight.Policies(nil, pol(cron), preflight.Options{Now: now}); len(d) != 0 {
			t.Errorf("%s (under way or to come) at 03:00: %v", cron, d)
		}
	}
	if d := preflight.Policies(nil, pol("0 0 1 1 * 2001"), preflight.Options{}); len(d) != 0 {
		t.Errorf("without Options.Now: %v", d)
	}
}

// A policy whose locality holds another's is warned of; localities that
// only may share nodes are not.
func TestNestedLocalitiesWarned(t *testing.T) {
	pol := func(name, locality string) string {
		return fmt.Sprintf("shaping %q {\n  locality {\n    %s\n  }\n}\n", name, locality)
	}
	pols, diags := policies.Parse("n.hcl", []byte(pol("web", `datacenter = "dc1"`+"\n"+`node_class = "web"`)+
		pol("batch", `datacenter = "dc1"`+"\n"+`node_pool = "batch"`)+pol("all", `datacenter = "dc1"`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	d := preflight.Policies(nil, pols, preflight.Options{})
	var got []string
	for _, x := range d {
		if x.Summary == "Nested localities" && x.Severity == hcl.DiagWarning {
			got = append(got, x.Detail[:strings.Index(x.Detail, " (")])
		}
	}
	want := []string{`Policy "all" shapes dc1, which holds every node of policy "web"'s dc1/*/web`,
		`Policy "all" shapes dc1, which holds every node of policy "batch"'s dc1/batch`}
	if !slices.Equal(got, want) || d.HasErrors() {
		t.Errorf("warnings %q; want %q (all: %v)", got, want, d)
	}
}

// One query text without {{.Matchers}} or {{.Locality}} in two policies of
// different localities is warned of; with a matcher, or in one locality's
// policies, it is not.
func TestSharedQueryWarned(t *testing.T) {
	pol := func(name, dc, query string) string {
		return fmt.Sprintf("shaping %q {\n  locality {\n    datacenter = %q\n  }\n  forecast {\n    queries = {\n      depth = %q\n    }\n  }\n}\n", name, dc, query)
	}
	tests := []struct {
		src  string
		want int
	}{
		{pol("a", "dc1", "sum(queue_depth)") + pol("b", "dc2", "sum(queue_depth)"), 1},
		{pol("a", "dc1", "sum(queue_depth{ {{.Matchers}} })") + pol("b", "dc2", "sum(queue_depth{ {{.Matchers}} })"), 0},
		{pol("a", "dc1", "sum(queue_depth)") + pol("b", "dc2", "sum(other_depth)"), 0},
	}
	for _, tt := range tests {
		pols, diags := policies.Parse("q.hcl", []byte(tt.src))
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		n := 0
		for _, d := range preflight.Policies(nil, pols, preflight.Options{}) {
			if d.Summary == "One query for two localities" {
				n++
				if !strings.Contains(d.Detail, `Policy "b"'s forecast.queries.depth and policy "a"'s forecast.queries.depth`) || d.Subject.Start.Line != 16 {
					t.Errorf("warning %s at %v", d.Detail, d.Subject)
				}
			}
		}
		if n != tt.want {
			t.Errorf("%d warnings; want %d:\n%s", n, tt.want, tt.src)
		}
	}
}

// A certificate out of its dates at Options.Now, or signed by no CA of
// tls.ca_file, is warned of at the start, naming tls.cert_file: every
// peer and client that verifies it refuses the agent. Without Now (dev
// mode, a replay) the dates are not checked.
func TestCertificateWarnings(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	other := testpki.NewCA(t, "other")
	for _, tc := range []struct {
		name  string
		now   time.Time
		apply func(c *config.Config)
		want  string
	}{
		{"valid", now, nil, ""},
		{"expired", now.Add(48 * time.Hour), nil, "Expired tls.cert_file"},
		{"not yet valid", now.Add(-2 * time.Hour), nil, "tls.cert_file not valid yet"},
		{"another CA's", now, func(c *config.Config) {
			c.TLS.CAFile = testpki.WriteFiles(t, f.dir, "other", other, other.Issue(t, "x")).CA
		},
			"tls.cert_file not signed by tls.ca_file"},
		{"dates unchecked without a wall clock", time.Time{}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.config()
			if tc.apply != nil {
				tc.apply(c)
			}
			wantCertWarning(t, c, tc.now, "tls.cert_file", tc.want, f.tls.Cert)
		})
	}
}

// TestPrometheusCertificateDates: prometheus.cert_file out of its dates at
// Options.Now is warned of, naming the setting and the file, as
// tls.cert_file is (a Prometheus that requires a client certificate
// refuses it); in its dates, or without a wall clock, it is not.
func TestPrometheusCertificateDates(t *testing.T) {
	clientCertDates(t, "prometheus", "Prometheus that requires a client certificate", func(c *config.Config, cert, key string) {
		c.Prometheus.Address = "https://prometheus.internal:9090"
		c.Prometheus.CertFile, c.Prometheus.KeyFile = cert, key
	})
}

// clientCertDates checks that block.cert_file, which set gives the
// configuration, is warned of out of its dates, saying who refuses it,
// and not in them or without a wall clock.
func clientCertDates(t *testing.T, block, refuser string, set func(c *config.Config, cert, key string)) {
	t.Helper()
	f := newFixture(t)
	now := time.Now()
	ca := testpki.NewCA(t, block)
	files := testpki.WriteFiles(t, f.dir, block+"-client", ca, ca.Issue(t, "foreshape"))
	field := block + ".cert_file"
	for _, tc := range []struct {
		name string
		now  time.Time
		want string
	}{
		{"valid", now, ""},
		{"expired", now.Add(48 * time.Hour), "Expired " + field},
		{"not yet valid", now.Add(-2 * time.Hour), field + " not valid yet"},
		{"dates unchecked without a wall clock", time.Time{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.config()
			set(c, files.Cert, files.Key)
			if got := wantCertWarning(t, c, tc.now, field, tc.want, files.Cert); tc.want != "" && !strings.Contains(got, refuser) {
				t.Errorf("warning %q; want it to say who refuses the certificate", got)
			}
		})
	}
}

// wantCertWarning runs the start checks on c at now and checks the
// warnings about field: none when want is empty, else one starting with
// want and naming file, which it returns.
func wantCertWarning(t *testing.T, c *config.Config, now time.Time, field, want, file string) string {
	t.Helper()
	_, diags := preflight.Check(c, preflight.Options{Now: now})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for _, d := range diags {
		if strings.Contains(d.Summary, field) {
			got = append(got, d.Summary+": "+d.Detail)
		}
	}
	switch {
	case want == "" && len(got) > 0:
		t.Errorf("warnings %q; want none", got)
	case want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], want) || !strings.Contains(got[0], file)):
		t.Errorf("warnings %q; want one %q naming %s", got, want, file)
	case want != "":
		return got[0]
	}
	return ""
}

// TestEmptyPoliciesDirSaysWhatRuns: a policies.dir that holds no *.hcl
// file is warned of with what the agent then runs. A dev agent runs its
// demo policies (agent.Options.FallbackPolicies), so "no locality is
// shaped", said before, was false there; a deployed agent started so
// shapes nothing, and one running policies keeps them at a reload
// (agent.Reload refuses to drop them all).
func TestEmptyPoliciesDirSaysWhatRuns(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  *config.Config
		want string
	}{
		{"dev", config.DevDefault(), "'foreshape agent -dev' runs its built-in demo policies until a reload finds some there"},
		{"deployed", newFixture(t).config(), "an agent started so shapes no locality, and a running agent's reload keeps the policies it runs"},
	} {
		if diags := config.Set(tc.cfg, "policies.dir", dir, "a test"); diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		_, diags := preflight.Check(tc.cfg, preflight.Options{})
		var got []string
		for _, d := range diags {
			if d.Summary == policies.NoPolicyFiles {
				got = append(got, d.Detail)
			}
		}
		if len(got) != 1 || !strings.Contains(got[0], tc.want) || !strings.HasPrefix(got[0], dir) {
			t.Errorf("%s: warnings %q; want one naming %s: %q", tc.name, got, dir, tc.want)
		}
	}
}
