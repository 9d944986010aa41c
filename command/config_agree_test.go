package command

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/dirtree"
)

// TestValidateAndAgentAgreeOnDirectories: on a configuration directory of
// several files (merged in alphabetical order), `config validate -env DIR`
// accepts what `agent -config DIR` starts with, and refuses what the agent
// refuses, with the same diagnostics: a rule that spans two files, a later
// file's setting that undoes an earlier one's, a file's own error beside a
// valid file, and an environment override (-env applies it as the agent
// does). Each case's files are written after a common base (00-base.hcl:
// data_dir, ports, policies.dir, an unreachable Nomad).
func TestValidateAndAgentAgreeOnDirectories(t *testing.T) {
	for _, name := range config.EnvVarNames() {
		t.Setenv(name, "")
	}
	polSrc, err := os.ReadFile("../policies/examples/web-daily-peak.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		env   map[string]string
		want  string // "" when both accept; else what the diagnostics say
	}{
		{name: "later files override earlier ones", files: map[string]string{
			"10-log.hcl":   "log_level = \"debug\"\nqueue {\n  max_parallel = 2\n}\n",
			"20-log.hcl":   "log_level = \"warn\"\n",
			"30-queue.hcl": "queue {\n  max_parallel = 4\n}\n",
		}},
		{name: "a rule across two files", files: map[string]string{
			"10-acl.hcl": "acl {\n  token_file = \"/etc/foreshape/acl-tokens\"\n}\n",
			"20-acl.hcl": "acl {\n  enabled = false\n}\n",
		}, want: "10-acl.hcl:2,16-"},
		{name: "a later driver drops the earlier config", files: map[string]string{
			"10-reserve.hcl": "reserve {\n  driver = \"raw_exec\"\n  config = { command = \"/bin/sleep\" }\n}\n",
			"20-reserve.hcl": "reserve {\n  driver = \"exec\"\n}\n",
		}, want: "20-reserve.hcl:2,12-"},
		{name: "one invalid file beside a valid one", files: map[string]string{
			"10-ok.hcl":  "log_level = \"warn\"\n",
			"20-bad.hcl": "server {\n  raft_port = 70000\n}\n",
		}, want: "20-bad.hcl:2,15-"},
		{name: "the environment", files: map[string]string{
			"10-ok.hcl": "log_level = \"warn\"\n",
		}, env: map[string]string{"NOMAD_ADDR": "nomad:4646"}, want: "Invalid nomad.address from environment variable NOMAD_ADDR"},
		// A rule between the environment and a file (docs/configuration.md:
		// without -env, config validate passes it and the agent stops).
		{name: "the environment beside a file", files: map[string]string{
			"10-nomad.hcl": "nomad {\n  token_file = \"/etc/hostname\"\n}\n",
		}, env: map[string]string{"NOMAD_TOKEN": "0e1f2a3b-0000-4000-8000-000000000000"}, want: "10-nomad.hcl:2,16-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfgDir, polDir := filepath.Join(dir, "config"), filepath.Join(dir, "policies")
			copyFile(t, "", filepath.Join(polDir, "web.hcl"), string(polSrc))
			ports := freeTCPPorts(t, 2)
			copyFile(t, "", filepath.Join(cfgDir, "00-base.hcl"), fmt.Sprintf("data_dir = %q\nhttp {\n  address = \"127.0.0.1:%d\"\n}\n"+
				"server {\n  raft_port = %d\n}\nnomad {\n  address = \"http://127.0.0.1:1\"\n}\npolicies {\n  dir = %q\n}\n",
				filepath.Join(dir, "data"), ports[0], ports[1], polDir))
			for name, src := range tc.files {
				copyFile(t, "", filepath.Join(cfgDir, name), src)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, stdout, stderr := run(t, "config", "validate", "-env", cfgDir)
			if tc.want == "" {
				if code != ExitOK {
					t.Fatalf("config validate refuses it: exit %d\n%s", code, stderr)
				}
				logs, stop := startAgentCommand(t, "-config", cfgDir)
				addr := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
				eventuallyT(t, 30*time.Second, "the agent's API", logs, func() bool {
					_, err := (&api.Client{Address: addr}).Status(context.Background())
					return err == nil
				})
				if c := stop(); c != ExitOK {
					t.Errorf("the agent exited %d\n%s", c, tailLines(logs.String(), 20))
				}
				return
			}
			if code != ExitInvalid || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("config validate: exit %d\n%s%s\nwant %d and %q", code, stdout, stderr, ExitInvalid, tc.want)
			}
			acode, aerr := runAgent(t, "-config", cfgDir)
			if acode != code || aerr != stderr {
				t.Errorf("the agent: exit %d\n%s\nconfig validate: exit %d\n%s", acode, aerr, code, stderr)
			}
		})
	}
}

// TestValidateAndAgentAgreeOnDataDir: `config validate` accepts the
// data_dir the agent starts with, and writes nothing there (a data_dir not
// there yet is still not there after it), and refuses what the agent
// refuses before it starts, with the same diagnostics naming the file,
// line and setting. A data_dir under /proc passed config validate when run
// as root, and the agent then failed creating it, naming neither. So did
// an operator's peers.json that the agent refuses (docs/recovery.md): not
// valid JSON, a server without an id or an address, an id or an address
// twice, no voter, not naming this server or naming it at another
// address, and one in a data_dir without a node-id; config validate
// leaves it where it is, and the agent refuses it now before it writes
// anything. One the agent applies passes, and is still there for the
// agent, which applies it and renames it.
func TestValidateAndAgentAgreeOnDataDir(t *testing.T) {
	for _, name := range config.EnvVarNames() {
		t.Setenv(name, "")
	}
	polSrc, err := os.ReadFile("../policies/examples/web-daily-peak.hcl")
	if err != nil {
		t.Fatal(err)
	}
	const id = "2f1b6c3e-7d4a-4e8b-9c0d-1a2b3c4d5e6f"
	for _, tc := range []struct {
		name  string
		data  func(dir string) string // the data_dir, made ready under dir
		state string                  // "node-id": data_dir holds the node ID id; "raft": the agent ran there once
		peers string                  // data_dir/peers.json, its SELF and ADDR this server's ID and Raft address
		want  string                  // "" when both accept; else what the diagnostics say
		linux bool                    // the case needs Linux's /proc
	}{
		{name: "not there yet, nor its parents", data: func(dir string) string { return filepath.Join(dir, "var", "lib", "foreshape") }},
		{name: "under /proc", data: func(string) string { return "/proc/foreshape" }, linux: true,
			want: "agent.hcl:1,12-29: error: Cannot use data_dir"},
		{name: "under a file", data: func(dir string) string {
			copyFile(t, "", filepath.Join(dir, "file"), "x")
			return filepath.Join(dir, "file", "data")
		}, want: "file is not a directory"},
		{name: "a damaged node-id", data: func(dir string) string {
			copyFile(t, "", filepath.Join(dir, "data", "node-id"), "not-an-id\n")
			return filepath.Join(dir, "data")
		}, want: `holds "not-an-id", not a node id`},
		{name: "a peers file the agent applies", state: "raft", peers: `[{"id": "SELF", "address": "ADDR"}]`},
		{name: "a peers file not valid JSON", state: "node-id", peers: "[\n  {\"id\": \"SELF\", \"address\": \"ADDR\",}\n]",
			want: "peers.json:2,"},
		{name: "a peers server without an id", state: "node-id", peers: `[{"address": "ADDR"}]`, want: `peers.json:1,2: server 1 has no "id"`},
		{name: "a peers server without an address", state: "node-id", peers: `[{"id": "SELF"}]`, want: `peers.json:1,2: server 1 (SELF) has no "address"`},
		{name: "a peers id twice", state: "node-id", peers: `[{"id": "SELF", "address": "ADDR"}, {"id": "SELF", "address": "127.0.0.1:1"}]`,
			want: "server 2 has the id SELF of server 1"},
		{name: "a peers address twice", state: "node-id", peers: `[{"id": "SELF", "address": "ADDR"}, {"id": "0b6b3a52-6c4f-4f11-9f4c-3f1d2a9e7b10", "address": "ADDR"}]`,
			want: "server 2 has the address ADDR of server 1"},
		{name: "a peers file without a voter", state: "node-id", peers: `[{"id": "SELF", "address": "ADDR", "non_voter": true}]`,
			want: "peers.json:1,1: every server is a non_voter"},
		{name: "a peers file for another server", state: "node-id", peers: `[{"id": "0b6b3a52-6c4f-4f11-9f4c-3f1d2a9e7b10", "address": "ADDR"}]`,
			want: "the file does not name this server (its id SELF"},
		{name: "a peers file naming this server elsewhere", state: "node-id", peers: `[{"id": "SELF", "address": "127.0.0.1:1"}]`,
			want: "the file names this server (SELF) at 127.0.0.1:1, but it serves Raft at ADDR"},
		{name: "a peers file on a new server", peers: `[{"id": "SELF", "address": "ADDR"}]`,
			want: "peers.json: this server has no Raft state to recover (no node-id in its data_dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.linux && runtime.GOOS != "linux" {
				t.Skip("needs Linux's /proc")
			}
			dir := t.TempDir()
			path, polDir := filepath.Join(dir, "agent.hcl"), filepath.Join(dir, "policies")
			copyFile(t, "", filepath.Join(polDir, "web.hcl"), string(polSrc))
			data := filepath.Join(dir, "data")
			if tc.data != nil {
				data = tc.data(dir)
			}
			ports := freeTCPPorts(t, 2)
			copyFile(t, "", path, fmt.Sprintf("data_dir = %q\nhttp {\n  address = \"127.0.0.1:%d\"\n}\n"+
				"server {\n  raft_port = %d\n}\nnomad {\n  address = \"http://127.0.0.1:1\"\n}\npolicies {\n  dir = %q\n}\n",
				data, ports[0], ports[1], polDir))
			addr := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
			self := id
			switch tc.state {
			case "node-id":
				copyFile(t, "", filepath.Join(data, "node-id"), id+"\n")
			case "raft":
				// A server that led a cluster of its own, then stopped.
				logs, stop := startAgentCommand(t, "-config", path)
				eventuallyT(t, 30*time.Second, "the agent leading", logs, func() bool {
					st, err := (&api.Client{Address: addr}).Status(context.Background())
					return err == nil && st.IsLeader
				})
				if c := stop(); c != ExitOK {
					t.Fatalf("the agent exited %d\n%s", c, tailLines(logs.String(), 20))
				}
				b, err := os.ReadFile(filepath.Join(data, "node-id"))
				if err != nil {
					t.Fatal(err)
				}
				self = strings.TrimSpace(string(b))
			}
			r := strings.NewReplacer("SELF", self, "ADDR", fmt.Sprintf("127.0.0.1:%d", ports[1]))
			peers := filepath.Join(data, "peers.json")
			if tc.peers != "" {
				copyFile(t, "", peers, r.Replace(tc.peers))
			}
			before := dirtree.Of(t, data)
			code, stdout, stderr := run(t, "config", "validate", path)
			if got := dirtree.Of(t, data); got != before {
				t.Errorf("config validate changed data_dir:\n%s\nit was\n%s", got, before)
			}
			if tc.want == "" {
				if code != ExitOK {
					t.Fatalf("config validate refuses it: exit %d\n%s", code, stderr)
				}
				if _, err := os.Stat(data); tc.state == "" && !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("config validate left %s behind (%v)", data, err)
				}
				logs, stop := startAgentCommand(t, "-config", path)
				eventuallyT(t, 30*time.Second, "the agent's API", logs, func() bool {
					_, err := (&api.Client{Address: addr}).Status(context.Background())
					return err == nil
				})
				if c := stop(); c != ExitOK {
					t.Errorf("the agent exited %d\n%s", c, tailLines(logs.String(), 20))
				}
				if _, err := os.Stat(filepath.Join(data, "node-id")); err != nil {
					t.Errorf("the agent made no node-id in its data_dir: %v", err)
				}
				if tc.peers != "" {
					applied, _ := filepath.Glob(peers + ".applied-*")
					if _, err := os.Stat(peers); !errors.Is(err, fs.ErrNotExist) || len(applied) != 1 {
						t.Errorf("after the agent: peers.json %v, renamed %q; want it applied and renamed", err, applied)
					}
				}
				return
			}
			if want := r.Replace(tc.want); code != ExitInvalid || !strings.Contains(stderr, want) || stdout != "" {
				t.Errorf("config validate: exit %d\n%s%s\nwant %d and %q", code, stdout, stderr, ExitInvalid, want)
			}
			acode, aerr := runAgent(t, "-config", path)
			if acode != code || aerr != stderr {
				t.Errorf("the agent: exit %d\n%s\nconfig validate: exit %d\n%s", acode, aerr, code, stderr)
			}
			// Refused before it starts: nothing made, the file left.
			if got := dirtree.Of(t, data); got != before {
				t.Errorf("the agent changed data_dir:\n%s\nit was\n%s", got, before)
			}
		})
	}
}

// TestValidateReadsConsulsOwnEnvironment: Consul's API client reads
// Consul's own variables (CONSUL_CACERT, CONSUL_HTTP_TOKEN_FILE, ...)
// itself, so config validate refuses a bad one without -env too, as the
// agent does; its -help says so.
func TestValidateReadsConsulsOwnEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.hcl")
	copyFile(t, "", path, "consul {\n  enabled = true\n}\n")
	t.Setenv("CONSUL_HTTP_TOKEN_FILE", filepath.Join(t.TempDir(), "none"))
	if code, _, stderr := run(t, "config", "validate", path); code != ExitInvalid || !strings.Contains(stderr, "CONSUL_HTTP_TOKEN_FILE") {
		t.Errorf("config validate without -env: exit %d\n%s\nwant %d naming CONSUL_HTTP_TOKEN_FILE", code, stderr, ExitInvalid)
	}
	_, stdout, _ := run(t, "config", "validate", "-help")
	if text := strings.Join(strings.Fields(stdout), " "); !strings.Contains(text, "CONSUL_HTTP_TOKEN_FILE") || !strings.Contains(text, "with or without -env") {
		t.Errorf("config validate -help does not say Consul's own variables are read with or without -env:\n%s", stdout)
	}
}

// TestValidateAndAgentRefuseAnAddressNotOfThisHost: an http.address (from
// a file or -http-addr) or a server's bind_addr that this host cannot
// listen on — an IP address none of its interfaces has, a host name that
// does not resolve — is refused by `config validate` and by the agent
// before it starts, with the same diagnostics naming the file, line and
// setting (or the flag), once the rest of the configuration is valid; the
// agent refused it only when it listened, after starting its Raft node,
// without either. localhost is accepted by both.
func TestValidateAndAgentRefuseAnAddressNotOfThisHost(t *testing.T) {
	for _, name := range config.EnvVarNames() {
		t.Setenv(name, "")
	}
	const elsewhere = "198.51.100.7" // TEST-NET-2: no host's own address
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(net.ParseIP(elsewhere)) {
				t.Skipf("this host has %s", elsewhere)
			}
		}
	}
	polSrc, err := os.ReadFile("../policies/examples/web-daily-peak.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		http  string // http.address's host
		extra string // more of the file
		flags []string
		want  []string // "" when both accept
		not   string   // what the diagnostics must not say
	}{
		{name: "localhost", http: "localhost"},
		{name: "another host's address", http: elsewhere,
			want: []string{"agent.hcl:3,13-", "Invalid http.address", elsewhere + " is not an address of this host"}},
		{name: "a name that does not resolve", http: "nosuchhost.invalid",
			want: []string{"agent.hcl:3,13-", "Invalid http.address", "the host name nosuchhost.invalid d"}},
		{name: "a server's bind_addr", http: "127.0.0.1", extra: fmt.Sprintf("bind_addr = %q\n", elsewhere),
			want: []string{"agent.hcl:11,13-", "Invalid bind_addr", elsewhere + " is not an address of this host"}},
		{name: "-http-addr", http: "127.0.0.1", flags: []string{"-http-addr", elsewhere + ":7575"},
			want: []string{"Invalid http.address", "(http.address is set by flag -http-addr.)"}},
		// Checked once the rest is valid: it depends on the host.
		{name: "beside another error", http: elsewhere, extra: "log_level = \"loud\"\n",
			want: []string{"Invalid log_level"}, not: "Invalid http.address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, polDir := filepath.Join(dir, "agent.hcl"), filepath.Join(dir, "policies")
			copyFile(t, "", filepath.Join(polDir, "web.hcl"), string(polSrc))
			ports := freeTCPPorts(t, 2)
			copyFile(t, "", path, fmt.Sprintf("data_dir = %q\nhttp {\n  address = %q\n}\n"+
				"server {\n  raft_port = %d\n}\nnomad {\n  address = \"http://127.0.0.1:1\"\n}\n%spolicies {\n  dir = %q\n}\n",
				filepath.Join(dir, "data"), net.JoinHostPort(tc.http, strconv.Itoa(ports[0])), ports[1], tc.extra, polDir))
			code, stdout, stderr := run(t, append(append([]string{"config", "validate"}, tc.flags...), path)...)
			if len(tc.want) == 0 {
				if code != ExitOK {
					t.Fatalf("config validate refuses it: exit %d\n%s", code, stderr)
				}
				logs, stop := startAgentCommand(t, "-config", path)
				eventuallyT(t, 30*time.Second, "the agent's API", logs, func() bool {
					_, err := (&api.Client{Address: fmt.Sprintf("http://localhost:%d", ports[0])}).Status(context.Background())
					return err == nil
				})
				if c := stop(); c != ExitOK {
					t.Errorf("the agent exited %d\n%s", c, tailLines(logs.String(), 20))
				}
				return
			}
			for _, w := range tc.want {
				if code != ExitInvalid || !strings.Contains(stderr, w) || stdout != "" {
					t.Errorf("config validate: exit %d\n%s%s\nwant %d and %q", code, stdout, stderr, ExitInvalid, w)
				}
			}
			if tc.not != "" && strings.Contains(stderr, tc.not) {
				t.Errorf("config validate says %q:\n%s", tc.not, stderr)
			}
			acode, aerr := runAgent(t, append([]string{"-config", path}, tc.flags...)...)
			if acode != code || aerr != stderr {
				t.Errorf("the agent: exit %d\n%s\nconfig validate: exit %d\n%s", acode, aerr, code, stderr)
			}
		})
	}
}

// TestReloadChecksOnlyChangedListenAddresses: a reload does not check
// again the listen addresses the agent already listens on (they apply
// only at a start): with the resolver down, a configuration whose
// http.address names a host keeps loading for a reload that leaves it as
// it was, while a start, and a reload that changes it, are refused as
// before.
func TestReloadChecksOnlyChangedListenAddresses(t *testing.T) {
	noEnv := func(string) string { return "" }
	resolverDown := config.Host{
		Addrs: func() ([]net.Addr, error) {
			return []net.Addr{&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)}}, nil
		},
		LookupIP: func(context.Context, string) ([]net.IPAddr, error) {
			return nil, &net.DNSError{Err: "server misbehaving", Name: "agent.example", IsTemporary: true}
		},
		LookupTimeout: time.Second,
	}
	defer func(h func() config.Host) { listenHost = h }(listenHost)
	listenHost = func() config.Host { return resolverDown }

	dir := t.TempDir()
	polDir := filepath.Join(dir, "policies")
	polSrc, err := os.ReadFile("../policies/examples/web-daily-peak.hcl")
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, "", filepath.Join(polDir, "web.hcl"), string(polSrc))
	write := func(host string) string {
		path := filepath.Join(dir, "agent.hcl")
		copyFile(t, "", path, fmt.Sprintf("data_dir = %q\nhttp {\n  address = %q\n}\nnomad {\n  address = \"http://127.0.0.1:1\"\n}\npolicies {\n  dir = %q\n}\n",
			filepath.Join(dir, "data"), host, polDir))
		return path
	}
	path := write("agent.example:7575")
	start := loadAgent(path, false, "", false, "", noEnv, nil)
	if !start.diags.HasErrors() || !strings.Contains(start.diags.Error(), "the host name agent.example does not resolve") {
		t.Fatalf("start with the resolver down: %v; want http.address refused", start.diags)
	}
	running := start.cfg // as if the resolver had answered at the start
	if s := loadAgent(path, false, "", false, "", noEnv, running); s.diags.HasErrors() {
		t.Errorf("reload leaving http.address as it is: %v; want it accepted", s.diags)
	}
	path = write("agent.example:7576")
	if s := loadAgent(path, false, "", false, "", noEnv, running); !s.diags.HasErrors() || !strings.Contains(s.diags.Error(), "Invalid http.address") {
		t.Errorf("reload changing http.address: %v; want it refused", s.diags)
	}
}
