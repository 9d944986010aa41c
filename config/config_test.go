package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/config"
)

// writeFiles writes files into a new temporary directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadSrc(t *testing.T, src string) (*config.Config, hcl.Diagnostics) {
	t.Helper()
	dir := writeFiles(t, map[string]string{"agent.hcl": src})
	return config.Load(filepath.Join(dir, "agent.hcl"))
}

var cmpConfig = cmp.Options{cmpopts.IgnoreUnexported(config.Config{}), cmpopts.EquateEmpty()}

func TestDefaultsAreValid(t *testing.T) {
	for name, c := range map[string]*config.Config{"production": config.Default(), "dev": config.DevDefault()} {
		if diags := c.Validate(); len(diags) != 0 {
			t.Errorf("%s defaults: %s", name, diags.Error())
		}
	}
	d := config.Default()
	if d.HTTP.Address != "127.0.0.1:7575" || d.Server.RaftPort != 7576 || d.LogLevel != "info" ||
		d.Nomad.Address != "http://127.0.0.1:4646" || d.Consul.ServiceName != "foreshape" || d.BindAddr != "127.0.0.1" {
		t.Errorf("unexpected defaults: %+v", d)
	}
}

func TestLoadExample(t *testing.T) {
	c, diags := config.Load("../example.hcl")
	if len(diags) != 0 {
		t.Fatalf("example.hcl: %s", diags.Error())
	}
	want := &config.Config{
		Name: "foreshape-1", DataDir: "/var/lib/foreshape", BindAddr: "0.0.0.0", AdvertiseAddr: "10.0.0.11", LogLevel: "info",
		Server: config.Server{Enabled: true, BootstrapExpect: 3, RetryJoin: []string{"10.0.0.12", "10.0.0.13:7576", "provider=consul"},
			RaftPort: 7576, Voter: true, Voters: 3, PromoteAfter: 30 * time.Second, RemoveAfter: 10 * time.Minute,
			RaftSnapshotThreshold: 256, RaftSnapshotInterval: 2 * time.Minute, RaftTrailingLogs: 256},
		Nomad: config.Nomad{Address: "https://nomad.service.consul:4646", Region: "global", Namespace: "default",
			CAFile: "/etc/foreshape/tls/nomad-ca.pem", CertFile: "/etc/foreshape/tls/nomad-client.pem",
			KeyFile: "/etc/foreshape/tls/nomad-client-key.pem", TLSServerName: "server.global.nomad"},
		Consul: config.Consul{Enabled: true, Address: "127.0.0.1:8500", ServiceName: "foreshape", Tags: []string{"shaper", "dc1"}},
		Prometheus: config.Prometheus{Address: "https://prometheus.service.consul:9090", CAFile: "/etc/foreshape/tls/prometheus-ca.pem",
			IOPSQuery: "sum(rate(node_disk_reads_completed_total{ {{.Matchers}} }[5m])) + sum(rate(node_disk_writes_completed_total{ {{.Matchers}} }[5m]))"},
		HTTP:      config.HTTP{Address: "0.0.0.0:7575"},
		TLS:       config.TLS{CAFile: "/etc/foreshape/tls/ca.pem", CertFile: "/etc/foreshape/tls/agent.pem", KeyFile: "/etc/foreshape/tls/agent-key.pem", VerifyIncoming: true},
		ACL:       config.ACL{Enabled: true, TokenFile: "/etc/foreshape/acl-tokens"},
		Policies:  config.Policies{Dir: "/etc/foreshape/policies.d"},
		Telemetry: config.Telemetry{PrometheusMetrics: true},
		Reserve:   config.Reserve{Driver: "docker", Config: map[string]any{"image": config.DefaultPauseImage}},
		Queue:     config.Queue{MaxRequests: 1000, KeepFinished: 24 * time.Hour},
	}
	if diff := cmp.Diff(want, c, cmpConfig); diff != "" {
		t.Errorf("example.hcl (-want +got):\n%s", diff)
	}
	if got := c.Source("server.raft_port"); !strings.HasPrefix(got, "../example.hcl:") {
		t.Errorf("Source(server.raft_port) = %q, want a position in example.hcl", got)
	}
	if got := c.Source("log_json"); !strings.HasPrefix(got, "../example.hcl:") {
		t.Errorf("Source(log_json) = %q", got)
	}
	if got := config.Default().Source("log_level"); got != "default" {
		t.Errorf("Source of a default = %q", got)
	}
}

func TestLoadDirMerges(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"10-base.hcl": `
name      = "a"
log_level = "warn"
server {
  enabled          = true
  bootstrap_expect = 1
  retry_join       = ["10.0.0.1", "10.0.0.2"]
}
nomad {
  region = "eu"
}
`,
		"20-override.hcl": `
log_level = "DEBUG"
bind_addr = "10.0.0.9"
server {
  retry_join = ["10.0.0.3"]
}
http {
  address = "10.0.0.9:7575"
}
nomad {
  namespace = "ops"
}
`,
		"README.md": "not config",
		// Hidden files (an editor's lock or backup) are not read.
		".20-override.hcl": "log_level = \"nonsense\"",
		".#10-base.hcl":    "{ not hcl",
	})
	c, diags := config.Load(dir)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if c.Name != "a" || c.LogLevel != "debug" || c.BindAddr != "10.0.0.9" {
		t.Errorf("top level = %q %q %q", c.Name, c.LogLevel, c.BindAddr)
	}
	if !c.Server.Enabled || c.Server.BootstrapExpect != 1 || !cmp.Equal(c.Server.RetryJoin, []string{"10.0.0.3"}) {
		t.Errorf("server = %+v (later files replace lists and keep unset attributes)", c.Server)
	}
	if c.Nomad.Region != "eu" || c.Nomad.Namespace != "ops" {
		t.Errorf("nomad = %+v", c.Nomad)
	}
	if src := c.Source("server.retry_join"); !strings.Contains(src, "20-override.hcl:") {
		t.Errorf("retry_join source = %q, want the later file", src)
	}
	if src := c.Source("server.enabled"); !strings.Contains(src, "10-base.hcl:") {
		t.Errorf("enabled source = %q, want the earlier file", src)
	}
}

// A later file restating reserve.driver keeps an earlier file's
// reserve.config for that driver; another driver starts without one.
func TestLoadDirReserveDriver(t *testing.T) {
	base := `reserve {
  driver = "raw_exec"
  config = { command = "/bin/sleep", args = ["infinity"] }
}
`
	c, diags := config.Load(writeFiles(t, map[string]string{"10-reserve.hcl": base, "20-same.hcl": "reserve {\n  driver = \"raw_exec\"\n}\n"}))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if diags := c.Validate(); diags.HasErrors() {
		t.Fatalf("the same driver restated: %s", diags.Error())
	}
	if got := c.Reserve.Config["command"]; got != "/bin/sleep" {
		t.Errorf("reserve.config.command = %v after the same driver was restated, want the earlier file's /bin/sleep", got)
	}
	c, diags = config.Load(writeFiles(t, map[string]string{"10-reserve.hcl": base, "20-other.hcl": "reserve {\n  driver = \"exec\"\n}\n"}))
	if !diags.HasErrors() {
		diags = c.Validate()
	}
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "reserve.config") {
		t.Errorf("another driver without its config: %v, want reserve.config missing", diags)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, summary string
		line               int // 0: no position expected
	}{
		{"unknown attribute", "nam = \"x\"", "Unsupported argument", 1},
		{"unknown block", "vault {\n}", "Unsupported block type", 1},
		{"dev_mode is a flag", "dev_mode = true", "Unsupported argument", 1},
		{"two server blocks", "server {\n}\nserver {\n}", "Duplicate server block", 3},
		{"name", `name = "a b"`, "Invalid name", 1},
		{"log level", `log_level = "loud"`, "Invalid log_level", 1},
		{"log_json string", `log_json = "yes"`, "Invalid log_json", 1},
		{"bind host name", `bind_addr = "localhost"`, "Invalid bind_addr", 1},
		{"raft port", "server {\n  raft_port = 0\n}", "Invalid server.raft_port", 2},
		{"raft port string", "server {\n  raft_port = \"7576\"\n}", "Invalid server.raft_port", 2},
		{"bootstrap 0", "server {\n  bootstrap_expect = 0\n}", "Invalid server.bootstrap_expect", 2},
		{"bootstrap 11", "server {\n  bootstrap_expect = 11\n}", "Invalid server.bootstrap_expect", 2},
		{"retry join element", "server {\n  retry_join = [\"ok\",\n \"bad host\"]\n}", "Invalid server.retry_join[1]", 3},
		{"retry join port", "server {\n  retry_join = [\"a:99999\"]\n}", "Invalid server.retry_join[0]", 2},
		{"nomad address", "nomad {\n  address = \"nomad:4646\"\n}", "Invalid nomad.address", 2},
		{"nomad unix", "nomad {\n  address = \"unix://\"\n}", "Invalid nomad.address", 2},
		{"nomad region", "nomad {\n  region = \"a b\"\n}", "Invalid nomad.region", 2},
		// Nomad's wildcard reads every namespace; no job can be in it.
		{"nomad namespace wildcard", "nomad {\n  namespace = \"*\"\n}", "Invalid nomad.namespace", 2},
		{"server name", "nomad {\n  tls_server_name = \"-x\"\n}", "Invalid nomad.tls_server_name", 2},
		{"consul address", "consul {\n  address = \"consul\"\n}", "Invalid consul.address", 2},
		{"service name", "consul {\n  service_name = \"Fore_Shape\"\n}", "Invalid consul.service_name", 2},
		{"tags", "consul {\n  tags = [\"\"]\n}", "Invalid consul.tags[0]", 2},
		{"prometheus", "prometheus {\n  address = \"prom:9090\"\n}", "Invalid prometheus.address", 2},
		{"http", "http {\n  address = \":7575\"\n}", "Invalid http.address", 2},
		{"http address not an address", "http {\n  address = \"256.1.1.1:7575\"\n}", "Invalid http.address", 2},
		{"policies dir", "policies {\n  dir = \"\"\n}", "Invalid policies.dir", 2},
		{"telemetry", "telemetry {\n  prometheus_metrics = 1\n}", "Invalid telemetry.prometheus_metrics", 2},
		{"forecast_only", "forecast_only = \"yes\"", "Invalid forecast_only", 1},
		{"reserve driver", "reserve {\n  driver = \"raw exec\"\n}", "Invalid reserve.driver", 2},
		{"reserve config not an object", "reserve {\n  config = \"pause\"\n}", "Invalid reserve.config", 2},
		// HCL keeps the later of two values of one key, without a word.
		{"reserve config key twice", "reserve {\n  config = { image = \"a:1\",\n image = \"b:2\" }\n}", "Invalid reserve.config", 3},
		{"reserve config nested key twice", "reserve {\n  config = { image = \"a:1\", labels = { a = \"1\",\n \"a\" = \"2\" } }\n}", "Invalid reserve.config.labels", 3},
		{"header written twice", "prometheus {\n  address = \"http://p:9090\"\n  headers = { \"X-Scope-OrgID\" = \"a\",\n \"X-Scope-OrgID\" = \"b\" }\n}", "Invalid prometheus.headers", 4},
		{"queue max_requests", "queue {\n  max_requests = 0\n}", "Invalid queue.max_requests", 2},
		{"queue max_parallel", "queue {\n  max_parallel = -1\n}", "Invalid queue.max_parallel", 2},
		{"queue keep_finished under", "queue {\n  keep_finished = \"30m\"\n}", "Invalid queue.keep_finished", 2},
		{"queue keep_finished over", "queue {\n  keep_finished = \"400d\"\n}", "Invalid queue.keep_finished", 2},
		{"reserve driver without config", "reserve {\n  driver = \"raw_exec\"\n}", "Missing reserve.config", 2},
		{"raw_exec without command", "reserve {\n  driver = \"raw_exec\"\n  config = { args = [\"1\"] }\n}", "Invalid reserve.config", 3},
		{"docker with an empty image", "reserve {\n  driver = \"docker\"\n  config = { image = \"\" }\n}", "Invalid reserve.config", 3},
		{"exec with a blank command", "reserve {\n  driver = \"exec\"\n  config = { command = \" \" }\n}", "Invalid reserve.config", 3},
		{"docker without image", "reserve {\n  config = { command = \"x\" }\n}", "Invalid reserve.config", 2},
		// An empty config set in a file is pointed at, though the driver is
		// the default's.
		{"docker with an empty config", "reserve {\n  config = {}\n}", "Missing reserve.config", 2},
		// The driver reads a string: a number, list or object is no
		// image or command its placeholder could run.
		{"docker image a number", "reserve {\n  config = { image = 5 }\n}", "Invalid reserve.config", 2},
		{"raw_exec command a list", "reserve {\n  driver = \"raw_exec\"\n  config = { command = [\"/bin/sleep\"] }\n}", "Invalid reserve.config", 3},
		{"exec command an object", "reserve {\n  driver = \"exec\"\n  config = { command = { path = \"/bin/sleep\" } }\n}", "Invalid reserve.config", 3},
		{"syntax", "nomad {\n  address = \n}", "Invalid expression", 2},
		// Rules that span fields, found by Validate on the merged result.
		{"bootstrap without server", "server {\n  enabled = false\n  bootstrap_expect = 1\n}", "Invalid server.bootstrap_expect", 3},
		{"join without bootstrap", "server {\n  retry_join = [\"10.0.0.2\"]\n}", "Missing server.bootstrap_expect", 2},
		{"bootstrap without join", "server {\n  bootstrap_expect = 3\n}", "Missing server.retry_join", 2},
		{"loopback cluster", "server {\n  bootstrap_expect = 3\n  retry_join = [\"10.0.0.2\"]\n}", "Invalid bind_addr", 3},
		{"client without servers", "server {\n  enabled = false\n}", "Missing server.retry_join", 2},
		{"client with voters", "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n  voters = 3\n}", "Invalid server.voters", 4},
		// Settings that act only with another one are refused without it.
		{"token file without acl", "acl {\n  token_file = \"/etc/foreshape/acl-tokens\"\n}", "Invalid acl.token_file", 2},
		{"read token file without acl", "acl {\n  read_token_file = \"/etc/foreshape/acl-read-tokens\"\n}", "Invalid acl.read_token_file", 2},
		{"iops query without prometheus", "prometheus {\n  iops_query = \"sum(x{ {{.Matchers}} })\"\n}", "Invalid prometheus.iops_query", 2},
		{"consul tags without registration", "consul {\n  tags = [\"dc1\"]\n}", "Invalid consul.tags", 2},
		{"consul service name unused", "consul {\n  service_name = \"fs\"\n}", "Invalid consul.service_name", 2},
		{"consul service name of another lookup", "bind_addr = \"10.0.0.1\"\nserver {\n  bootstrap_expect = 3\n  retry_join = [\"provider=consul service=other\"]\n}\nconsul {\n  service_name = \"fs\"\n}", "Invalid consul.service_name", 7},
		{"server node_id", "nomad {\n  node_id = \"9e3f1c0a-5b2d-4c1e-8f00-1a2b3c4d5e6f\"\n}", "Invalid nomad.node_id", 2},
		// Nomad looks a node up by its whole ID: a name or a prefix fails
		// every report ("UUID must be 36 characters").
		{"client node_id a name", "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\nnomad {\n  node_id = \"dc1-web-1\"\n}", "Invalid nomad.node_id", 6},
		{"client node_id a prefix", "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\nnomad {\n  node_id = \"9e3f1c0a\"\n}", "Invalid nomad.node_id", 6},
		// A client agent plans nothing: the act half's settings would do nothing there.
		{"client bind_addr", "bind_addr = \"10.0.0.9\"\nserver {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}", "Invalid bind_addr", 1},
		{"client forecast_only", "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\nforecast_only = true", "Invalid forecast_only", 5},
		{"client queue", "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\nqueue {\n  max_parallel = 2\n}", "Invalid queue.max_parallel", 6},
		{"client queue bound", "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\nqueue {\n  max_requests = 5\n}", "Invalid queue.max_requests", 6},
		{"client keep_finished", "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\nqueue {\n  keep_finished = \"2d\"\n}", "Invalid queue.keep_finished", 6},
		{"client reserve", "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\nreserve {\n  driver = \"raw_exec\"\n  config = { command = \"/bin/sleep\" }\n}", "Invalid reserve.driver", 6},
		{"voters even", "server {\n  voters = 4\n}", "Invalid server.voters", 2},
		{"lone non-voter", "server {\n  voter = false\n}", "Invalid server.voter", 2},
		{"lone non-voter with bootstrap_expect 1", "server {\n  bootstrap_expect = 1\n  voter = false\n}", "Invalid server.voter", 3},
		{"voters from bootstrap", "server {\n  bootstrap_expect = 2\n  retry_join = [\"127.0.0.1:1\"]\n}", "Invalid server.voters", 2},
		{"bootstrap over voters", "server {\n  bootstrap_expect = 5\n  voters = 3\n  retry_join = [\"127.0.0.1:1\"]\n}", "Invalid server.bootstrap_expect", 2},
		{"join provider", "server {\n  retry_join = [\"provider=aws\"]\n}", "Invalid server.retry_join[0]", 2},
		{"join provider key", "server {\n  retry_join = [\"provider=consul tag=x\"]\n}", "Invalid server.retry_join[0]", 2},
		{"promote after", "server {\n  promote_after = \"0s\"\n}", "Invalid server.promote_after", 2},
		{"promote after a nanosecond", "server {\n  promote_after = \"1ns\"\n}", "Invalid server.promote_after", 2},
		{"remove after half a second", "server {\n  promote_after = \"1s\"\n  remove_after = \"500ms\"\n}", "Invalid server.remove_after", 3},
		{"remove before promote", "server {\n  promote_after = \"5m\"\n  remove_after = \"1m\"\n}", "Invalid server.remove_after", 3},
		{"snapshot threshold zero", "server {\n  raft_snapshot_threshold = 0\n}", "Invalid server.raft_snapshot_threshold", 2},
		{"snapshot threshold over", "server {\n  voter = true\n  raft_snapshot_threshold = 2000000\n}", "Invalid server.raft_snapshot_threshold", 3},
		{"snapshot interval under", "server {\n  raft_snapshot_interval = \"100ms\"\n}", "Invalid server.raft_snapshot_interval", 2},
		{"snapshot interval over", "server {\n  raft_snapshot_interval = \"2d\"\n}", "Invalid server.raft_snapshot_interval", 2},
		{"trailing logs negative", "server {\n  raft_trailing_logs = -1\n}", "Invalid server.raft_trailing_logs", 2},
		{"client snapshots", "server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n  raft_snapshot_threshold = 64\n}", "Invalid server.raft_snapshot_threshold", 4},
		{"advertise unspecified", `advertise_addr = "0.0.0.0"`, "Invalid advertise_addr", 1},
		{"raft on every interface", `bind_addr = "0.0.0.0"`, "Missing advertise_addr", 1},
		{"http on every interface with consul", "http {\n  address = \"0.0.0.0:7575\"\n}\nconsul {\n  enabled = true\n}", "Missing advertise_addr", 2},
		{"cluster tls without ca", "bind_addr = \"10.0.0.1\"\nserver {\n  bootstrap_expect = 3\n  retry_join = [\"10.0.0.2\"]\n}\ntls {\n  cert_file = \"c\"\n  key_file = \"k\"\n}", "Missing tls.ca_file", 7},
		{"port clash", "bind_addr = \"0.0.0.0\"\nserver {\n  enabled = true\n  bootstrap_expect = 1\n  raft_port = 7575\n}", "Invalid server.raft_port", 5},
		{"port clash on localhost", "http {\n  address = \"localhost:7577\"\n}\nserver {\n  raft_port = 7577\n}", "Invalid server.raft_port", 5},
		{"nomad cert without key", "nomad {\n  cert_file = \"c.pem\"\n}", "Missing nomad.key_file", 2},
		{"nomad key without cert", "nomad {\n  key_file = \"k.pem\"\n}", "Missing nomad.cert_file", 2},
		{"tls cert without key", "tls {\n  cert_file = \"c.pem\"\n}", "Missing tls.key_file", 2},
		{"tls key without cert", "tls {\n  key_file = \"k.pem\"\n}", "Missing tls.cert_file", 2},
		{"verify incoming without tls", "tls {\n  ca_file = \"ca.pem\"\n  verify_incoming = true\n}", "Missing tls.cert_file", 3},
		{"tls ca alone", "tls {\n  ca_file = \"ca.pem\"\n}", "Missing tls.cert_file", 2},
		{"acl without token file", "acl {\n  enabled = true\n}", "Missing acl.token_file", 2},
		{"empty data dir", `data_dir = ""`, "Invalid data_dir", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := loadSrc(t, tc.src)
			var found *hcl.Diagnostic
			for _, d := range diags {
				if d.Severity == hcl.DiagError && strings.Contains(d.Summary, tc.summary) {
					found = d
					break
				}
			}
			if found == nil {
				t.Fatalf("no error %q in %v", tc.summary, diags)
			}
			if found.Subject == nil || filepath.Base(found.Subject.Filename) != "agent.hcl" || found.Subject.Start.Line != tc.line {
				t.Errorf("%q at %v, want agent.hcl line %d", found.Summary, found.Subject, tc.line)
			}
		})
	}
}

// A wrong address names every form the setting takes: nomad.address and
// consul.address also take a unix:// socket (Nomad's Task API), and
// consul.address a bare HOST:PORT.
func TestAddressErrorsNameEveryFormTheSettingTakes(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"nomad {\n  address = \"htp://nomad:4646\"\n}", `"htp://nomad:4646" must start with http://, https:// or unix://`},
		{"nomad {\n  address = \"nomad:4646\"\n}", `"nomad:4646" has no scheme; write it as http://HOST:PORT, https://HOST:PORT or unix://PATH`},
		{"consul {\n  address = \"tcp://consul:8500\"\n}", `"tcp://consul:8500" must be HOST:PORT or start with http://, https:// or unix://`},
		{"prometheus {\n  address = \"htp://prom:9090\"\n}", `"htp://prom:9090" must start with http:// or https://`},
	} {
		_, diags := loadSrc(t, tc.src)
		if !strings.Contains(diags.Error(), tc.want) {
			t.Errorf("%q: got %s, want a message holding %s", tc.src, diags.Error(), tc.want)
		}
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct{ name, src, summary string }{
		{"skip verify", "nomad {\n  address = \"https://nomad:4646\"\n  skip_verify = true\n}", "Questionable nomad.skip_verify"},
		{"acl in clear", "http {\n  address = \"0.0.0.0:7575\"\n}\nacl {\n  enabled = true\n  token_file = \"t\"\n}", "Questionable acl.enabled"},
		{"non-voter bootstrap", "server {\n  enabled = true\n  bootstrap_expect = 3\n  retry_join = [\"127.0.0.1:17577\", \"127.0.0.1:17578\"]\n  voter = false\n}", "Questionable server.voter"},
		// Prometheus's parser refuses the query (querytmpl.PromQLProblem).
		{"iops query not PromQL", "prometheus {\n  address = \"http://127.0.0.1:9090\"\n  iops_query = \"sum(rate(ops{ {{.Matchers}} }[5m])\"\n}", "Questionable prometheus.iops_query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := loadSrc(t, tc.src)
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != tc.summary {
				t.Errorf("diags = %v, want one warning %q", diags, tc.summary)
			}
		})
	}
}

func TestValidateRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		apply   func(*config.Config)
		summary string // "" when valid
	}{
		{"defaults", func(*config.Config) {}, ""},
		{"dev keeps state in memory", func(c *config.Config) { *c = *config.DevDefault() }, ""},
		{"production needs a data dir", func(c *config.Config) { c.DataDir = "" }, "Invalid data_dir"},
		{"single server on loopback", func(c *config.Config) { c.Server.Enabled, c.Server.BootstrapExpect = true, 1 }, ""},
		{"cluster on loopback", func(c *config.Config) {
			c.Server.BootstrapExpect, c.Server.RetryJoin = 3, []string{"10.0.0.2"}
		}, "Invalid bind_addr"},
		{"cluster of loopback servers", func(c *config.Config) {
			c.Server.BootstrapExpect, c.Server.RetryJoin = 3, []string{"127.0.0.1:17576", "localhost:17577"}
		}, ""},
		{"one host, found through consul", func(c *config.Config) {
			c.Server.BootstrapExpect, c.Server.RetryJoin = 3, []string{"provider=consul", "127.0.0.1:17576"}
		}, ""},
		{"one host advertised, found through consul", func(c *config.Config) {
			c.Server.BootstrapExpect, c.BindAddr, c.AdvertiseAddr = 3, "0.0.0.0", "127.0.0.1"
			c.Server.RetryJoin = []string{"provider=consul"}
		}, ""},
		{"loopback advertised to a peer elsewhere", func(c *config.Config) {
			c.Server.BootstrapExpect, c.BindAddr, c.AdvertiseAddr = 3, "0.0.0.0", "127.0.0.1"
			c.Server.RetryJoin = []string{"provider=consul", "10.0.0.2"}
		}, "Invalid advertise_addr"},
		{"listening on loopback, advertising elsewhere", func(c *config.Config) {
			c.Server.BootstrapExpect, c.AdvertiseAddr = 3, "10.0.0.1"
			c.Server.RetryJoin = []string{"provider=consul"}
		}, "Invalid bind_addr"},
		{"cluster on all interfaces", func(c *config.Config) {
			c.Server.BootstrapExpect, c.BindAddr, c.AdvertiseAddr = 3, "0.0.0.0", "10.0.0.1"
			c.Server.RetryJoin = []string{"provider=consul"}
		}, ""},
		{"cluster on all interfaces, nothing advertised", func(c *config.Config) {
			c.Server.BootstrapExpect, c.BindAddr = 3, "0.0.0.0"
			c.Server.RetryJoin = []string{"provider=consul service=fs"}
		}, "Missing advertise_addr"},
		{"client agent", func(c *config.Config) {
			c.Server.Enabled, c.Server.RetryJoin, c.DataDir = false, []string{"provider=consul"}, ""
		}, ""},
		{"client agent without servers", func(c *config.Config) { c.Server.Enabled = false }, "Missing server.retry_join"},
		{"dev mode joins nobody", func(c *config.Config) {
			*c = *config.DevDefault()
			c.Server.BootstrapExpect, c.Server.RetryJoin = 3, []string{"127.0.0.1:1"}
		}, "Invalid server"},
		{"raft port on http port, different hosts", func(c *config.Config) {
			c.Server.Enabled, c.Server.BootstrapExpect, c.Server.RaftPort = true, 1, 7575
			c.BindAddr = "10.0.0.1"
		}, ""},
		{"consul without service name", func(c *config.Config) { c.Consul.Enabled, c.Consul.ServiceName = true, "" }, "Missing consul.service_name"},
		// NAME-metrics is a DNS label too, at most 63.
		{"consul service name too long for its -metrics twin", func(c *config.Config) {
			c.Consul.Enabled, c.Consul.ServiceName = true, strings.Repeat("f", 56)
		}, "Invalid consul.service_name"},
		{"consul service name as long as its -metrics twin allows", func(c *config.Config) {
			c.Consul.Enabled, c.Consul.ServiceName = true, strings.Repeat("f", 55)
		}, ""},
		{"a long consul service name only looked up", func(c *config.Config) {
			c.Server.BootstrapExpect, c.Server.RetryJoin, c.Consul.ServiceName = 3, []string{"provider=consul"}, strings.Repeat("f", 63)
		}, ""},
		{"tls complete", func(c *config.Config) {
			c.TLS = config.TLS{CAFile: "ca", CertFile: "c", KeyFile: "k", VerifyIncoming: true}
		}, ""},
		{"verify incoming without ca", func(c *config.Config) {
			c.TLS = config.TLS{CertFile: "c", KeyFile: "k", VerifyIncoming: true}
		}, "Missing tls.ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			tc.apply(c)
			diags := c.Validate()
			if tc.summary == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected errors: %s", diags.Error())
				}
				return
			}
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.summary) {
				t.Fatalf("diags = %v, want %q", diags, tc.summary)
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"NOMAD_ADDR":        "https://nomad.example.com:4646",
		"NOMAD_TOKEN":       "nomad-secret-1",
		"NOMAD_REGION":      "eu",
		"NOMAD_NAMESPACE":   "ops",
		"NOMAD_SKIP_VERIFY": "false",
		"CONSUL_HTTP_ADDR":  "https://consul.example.com:8501",
		"CONSUL_HTTP_TOKEN": "consul-secret-2",
		"UNRELATED":         "x",
	}
	dir := writeFiles(t, map[string]string{"a.hcl": "nomad {\n  address = \"http://file:4646\"\n  region = \"us\"\n}"})
	c, diags := config.NewLoader().Load(config.Default(), filepath.Join(dir, "a.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if diags := config.ApplyEnv(c, func(k string) string { return env[k] }); diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if c.Nomad.Address != env["NOMAD_ADDR"] || c.Nomad.Region != "eu" || c.Nomad.Namespace != "ops" ||
		c.Nomad.Token.Reveal() != "nomad-secret-1" || c.Consul.Address != env["CONSUL_HTTP_ADDR"] ||
		c.Consul.Token.Reveal() != "consul-secret-2" {
		t.Errorf("environment not applied over the file: %+v %+v", c.Nomad, c.Consul)
	}
	if got := c.Source("nomad.address"); got != "environment variable NOMAD_ADDR" {
		t.Errorf("Source = %q", got)
	}

	// Empty variables change nothing.
	c2 := config.Default()
	if diags := config.ApplyEnv(c2, func(string) string { return "" }); len(diags) != 0 {
		t.Fatal(diags.Error())
	}
	if diff := cmp.Diff(config.Default(), c2, cmpConfig); diff != "" {
		t.Errorf("empty environment changed the config:\n%s", diff)
	}
}

func TestApplyEnvInvalid(t *testing.T) {
	for _, tc := range []struct{ name, value, field string }{
		{"NOMAD_ADDR", "nomad:4646", "nomad.address"},
		{"NOMAD_SKIP_VERIFY", "maybe", "nomad.skip_verify"},
		{"CONSUL_HTTP_ADDR", "consul", "consul.address"},
		{"NOMAD_TOKEN", "has space secret", "nomad.token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			before := c.Clone()
			diags := config.ApplyEnv(c, func(k string) string {
				if k == tc.name {
					return tc.value
				}
				return ""
			})
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			msg := diags.Error()
			if !strings.Contains(msg, tc.name) || !strings.Contains(msg, tc.field) {
				t.Errorf("%q does not name %s and %s", msg, tc.name, tc.field)
			}
			if strings.Contains(tc.name, "TOKEN") && strings.Contains(msg, "secret") {
				t.Errorf("the error reveals the token: %q", msg)
			}
			if diff := cmp.Diff(before, c, cmpConfig); diff != "" {
				t.Errorf("an invalid value changed the config:\n%s", diff)
			}
		})
	}
}

func TestSet(t *testing.T) {
	c := config.Default()
	if d := config.Set(c, "http.address", "0.0.0.0:8000", "flag -http-addr"); d.HasErrors() {
		t.Fatal(d.Error())
	}
	if c.HTTP.Address != "0.0.0.0:8000" || c.Source("http.address") != "flag -http-addr" {
		t.Errorf("http.address = %q from %q", c.HTTP.Address, c.Source("http.address"))
	}
	d := config.Set(c, "http.address", "nope", "flag -http-addr")
	if !d.HasErrors() || !strings.Contains(d.Error(), "-http-addr") || c.HTTP.Address != "0.0.0.0:8000" {
		t.Errorf("invalid flag: %v, address now %q", d, c.HTTP.Address)
	}
	if d := config.Set(c, "server.nope", "1", "flag -x"); !d.HasErrors() {
		t.Errorf("unknown field accepted")
	}
}

// TestSecretsRedacted checks that no printed, marshalled or logged form of
// the configuration carries a token, and that diagnostics about a token do
// not print its line.
func TestSecretsRedacted(t *testing.T) {
	const nomadTok, consulTok = "nomad-7f3a-secret", "consul-91bc-secret"
	dir := writeFiles(t, map[string]string{"a.hcl": fmt.Sprintf(`
nomad {
  token = %q
}
consul {
  enabled = true
  token = %q
}
`, nomadTok, consulTok)})
	c, diags := config.Load(dir)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if c.Nomad.Token.Reveal() != nomadTok || c.Consul.Token.Reveal() != consulTok {
		t.Fatal("tokens were not loaded")
	}

	js, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(js, &decoded); err != nil {
		t.Fatal(err)
	}
	var logText, logJSON bytes.Buffer
	hclog.New(&hclog.LoggerOptions{Output: &logText}).Info("config", "config", c, "token", c.Nomad.Token, "nomad", c.Nomad)
	hclog.New(&hclog.LoggerOptions{Output: &logJSON, JSONFormat: true}).Info("config", "config", c, "token", c.Nomad.Token)

	forms := map[string]string{
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", c),
		"%#v":      fmt.Sprintf("%#v", c),
		"%s token": fmt.Sprintf("%s", c.Nomad.Token),
		"%q token": fmt.Sprintf("%q", c.Consul.Token),
		"%x token": fmt.Sprintf("%x", c.Nomad.Token),
		"String":   c.Nomad.Token.String(),
		"GoString": c.Nomad.Token.GoString(),
		"JSON":     string(js),
		"HCL":      string(c.HCL()),
		"log":      logText.String(),
		"log json": logJSON.String(),
	}
	for name, out := range forms {
		if strings.Contains(out, nomadTok) || strings.Contains(out, consulTok) {
			t.Errorf("%s reveals a token:\n%s", name, out)
		}
	}
	for _, name := range []string{"JSON", "HCL", "%+v", "%q token"} {
		if !strings.Contains(forms[name], config.Redacted) {
			t.Errorf("%s does not show that a token is set:\n%s", name, forms[name])
		}
	}
	if decoded["nomad"].(map[string]any)["token"] != config.Redacted {
		t.Errorf("JSON nomad.token = %v", decoded["nomad"].(map[string]any)["token"])
	}
	if got := config.Secret("").String(); got != "" {
		t.Errorf("an unset secret prints %q", got)
	}

	// A diagnostic about a bad token carries no snippet of its line.
	bad := writeFiles(t, map[string]string{"b.hcl": "nomad {\n  token = \"bad " + nomadTok + "\"\n}\n"})
	loader := config.NewLoader()
	_, diags = loader.Load(config.Default(), filepath.Join(bad, "b.hcl"))
	if !diags.HasErrors() {
		t.Fatal("a token with a space was accepted")
	}
	var out bytes.Buffer
	_ = hcl.NewDiagnosticTextWriter(&out, loader.Files(), 0, false).WriteDiagnostics(diags)
	if strings.Contains(out.String(), nomadTok) {
		t.Errorf("the diagnostic reveals the token:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "b.hcl:2,") || !strings.Contains(out.String(), "nomad.token") {
		t.Errorf("the diagnostic does not locate nomad.token:\n%s", out.String())
	}
}

func TestHCLRoundTrip(t *testing.T) {
	c, diags := config.Load("../example.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	dir := writeFiles(t, map[string]string{"shown.hcl": string(c.HCL())})
	back, diags := config.Load(filepath.Join(dir, "shown.hcl"))
	if diags.HasErrors() {
		t.Fatalf("config show output does not load: %s", diags.Error())
	}
	if diff := cmp.Diff(c, back, cmpConfig); diff != "" {
		t.Errorf("round trip through HCL (-want +got):\n%s", diff)
	}
}

// config show's output of a configuration that leaves most settings at
// their defaults loads back as the same configuration, and what it set
// stays set: the defaults are comments (written out, consul's address
// beside consul.enabled = false was refused as set but unused), and so
// are the tokens, which do not come back.
func TestHCLRoundTripOfDefaults(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.hcl": "data_dir = \"/var/lib/fs\"\nnomad {\n  token = \"s3cret\"\n}\nqueue {\n  max_parallel = 2\n}\n"})
	c, diags := config.Load(filepath.Join(dir, "a.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	shown := string(c.HCL())
	for _, want := range []string{`# address = "127.0.0.1:8500" (default)`, "# token = <redacted> (set; not shown)", `data_dir = "/var/lib/fs"`, "max_parallel = 2",
		`# config = { image = "registry.k8s.io/pause:3.10" } (default)`} {
		if !strings.Contains(shown, want) {
			t.Errorf("config show lacks %q:\n%s", want, shown)
		}
	}
	if strings.Contains(shown, "s3cret") {
		t.Errorf("config show reveals the token:\n%s", shown)
	}
	back, diags := config.Load(filepath.Join(writeFiles(t, map[string]string{"shown.hcl": shown}), "shown.hcl"))
	if diags.HasErrors() {
		t.Fatalf("config show output does not load: %s\n%s", diags.Error(), shown)
	}
	c.Nomad.Token = ""
	if diff := cmp.Diff(c, back, cmpConfig); diff != "" {
		t.Errorf("round trip through HCL, the token aside (-want +got):\n%s", diff)
	}
	for _, field := range []string{"data_dir", "queue.max_parallel"} {
		if back.Source(field) == "default" {
			t.Errorf("%s came back as a default", field)
		}
	}
	for _, field := range []string{"consul.address", "queue.max_requests", "reserve.config"} {
		if back.Source(field) != "default" {
			t.Errorf("%s came back set (%s)", field, back.Source(field))
		}
	}
}

func TestLoadMissing(t *testing.T) {
	for _, path := range []string{filepath.Join(t.TempDir(), "nope.hcl"), t.TempDir()} {
		if _, diags := config.Load(path); !diags.HasErrors() {
			t.Errorf("Load(%s) reports nothing", path)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	c := config.Default()
	c.Server.RetryJoin = []string{"a"}
	d := c.Clone()
	d.Server.RetryJoin[0] = "b"
	if c.Server.RetryJoin[0] != "a" {
		t.Error("Clone shares retry_join")
	}
}

func TestPrometheusIOPSQuery(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		src, err string
	}{
		"valid": {`prometheus {
  address    = "http://127.0.0.1:9090"
  iops_query = "sum(x{ {{.Matchers}} })"
}`, ""},
		"template": {`prometheus { iops_query = "sum(x{ {{.Matchers }" }`, "prometheus.iops_query"},
		"empty":    {`prometheus { iops_query = " " }`, "prometheus.iops_query"},
		"typo":     {`prometheus { iops_query = "sum(x{ {{.Matcher}} })" }`, `map has no entry for key "Matcher"`},
	} {
		path := filepath.Join(dir, name+".hcl")
		if err := os.WriteFile(path, []byte(c.src), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, diags := config.Load(path)
		switch {
		case c.err == "" && diags.HasErrors():
			t.Errorf("%s: %v", name, diags)
		case c.err == "" && cfg.Prometheus.IOPSQuery != "sum(x{ {{.Matchers}} })":
			t.Errorf("%s: query = %q", name, cfg.Prometheus.IOPSQuery)
		case c.err != "" && (!diags.HasErrors() || !strings.Contains(diags.Error(), c.err)):
			t.Errorf("%s: diags %v, want %q", name, diags, c.err)
		}
	}
}

func TestReserveAndQueue(t *testing.T) {
	c, diags := loadSrc(t, `
forecast_only = true
reserve {
  driver = "raw_exec"
  config = {
    command = "/bin/sleep"
    args    = ["infinity"]
  }
}
queue {
  max_requests = 50
  max_parallel = 4
  keep_finished = "36h"
}
`)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := config.Reserve{Driver: "raw_exec", Config: map[string]any{"command": "/bin/sleep", "args": []any{"infinity"}}}
	if diff := cmp.Diff(want, c.Reserve); diff != "" || !c.ForecastOnly || c.Queue != (config.Queue{MaxRequests: 50, MaxParallel: 4, KeepFinished: 36 * time.Hour}) {
		t.Errorf("reserve (-want +got):\n%s\nforecast_only %v queue %+v", diff, c.ForecastOnly, c.Queue)
	}
	if shown := string(c.HCL()); !strings.Contains(shown, `command = "/bin/sleep"`) || !strings.Contains(shown, "max_parallel  = 4") || !strings.Contains(shown, `keep_finished = "1d12h"`) {
		t.Errorf("config show lacks the reserve or queue block:\n%s", shown)
	}
	d := c.Clone()
	d.Reserve.Config["args"].([]any)[0] = "1"
	if c.Reserve.Config["args"].([]any)[0] != "infinity" {
		t.Error("Clone shares reserve.config")
	}
}

// TestDevRefusesWhatItWouldIgnore: dev mode runs one in-memory server on
// an in-process transport, so a file loaded over its defaults that sets
// where Raft keeps its data, binds or votes is refused naming the setting
// (the dev agent used to accept and ignore them); what dev mode uses is
// accepted.
func TestDevRefusesWhatItWouldIgnore(t *testing.T) {
	for _, tc := range []struct {
		src, want string
		line      int
	}{
		{`data_dir = "/var/lib/foreshape"`, "Invalid data_dir", 1},
		{`bind_addr = "10.0.0.1"`, "Invalid bind_addr", 1},
		{"server {\n  raft_port = 17576\n}", "Invalid server.raft_port", 2},
		{"server {\n  voter = false\n}", "Invalid server.voter", 2},
		{"server {\n  voters = 3\n}", "Invalid server.voters", 2},
		{"server {\n  promote_after = \"1m\"\n}", "Invalid server.promote_after", 2},
		{"server {\n  remove_after = \"1h\"\n}", "Invalid server.remove_after", 2},
		{"log_level = \"info\"\nacl {\n  enabled    = true\n  token_file = \"/tmp/t\"\n}\nforecast_only = true", "", 0},
	} {
		dir := writeFiles(t, map[string]string{"agent.hcl": tc.src})
		c, diags := config.NewLoader().Load(config.DevDefault(), filepath.Join(dir, "agent.hcl"))
		if !diags.HasErrors() {
			diags = append(diags, c.Validate()...)
		}
		if tc.want == "" {
			if diags.HasErrors() {
				t.Errorf("%q: %s", tc.src, diags.Error())
			}
			continue
		}
		var found *hcl.Diagnostic
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Summary == tc.want {
				found = d
			}
		}
		if found == nil || found.Subject == nil || found.Subject.Start.Line != tc.line || !strings.Contains(found.Detail, "-dev") {
			t.Errorf("%q: %v; want %q at line %d, naming -dev", tc.src, diags, tc.want, tc.line)
		}
	}
}

// TestConsulServiceNameForALookup: consul.service_name without a
// registration is accepted when a retry_join lookup in Consul uses it.
func TestConsulServiceNameForALookup(t *testing.T) {
	_, diags := loadSrc(t, "bind_addr = \"10.0.0.1\"\nserver {\n  bootstrap_expect = 3\n  retry_join = [\"provider=consul\"]\n}\nconsul {\n  service_name = \"fs\"\n}")
	if diags.HasErrors() {
		t.Error(diags.Error())
	}
}

// TestSettingsNoClientUses: Nomad's TLS settings with a plain-HTTP
// nomad.address, and consul.address/token when the agent never calls
// Consul, are refused when a file sets them (the error points at the
// attribute) and accepted when the environment does (Unused names them,
// for the agent's start-up log). Where a client uses them, neither.
func TestSettingsNoClientUses(t *testing.T) {
	const join = "bind_addr = \"10.0.0.1\"\nserver {\n  bootstrap_expect = 3\n  retry_join = [\"provider=consul\"]\n}\n"
	for _, tc := range []struct {
		name string
		src  string
		env  map[string]string
		// refused: "FIELD@LINE" errors from the file; unused: fields
		// Unused lists, as FIELD<VARIABLE.
		refused, unused []string
		// noNomad: the agent uses no Nomad of its configuration's (-dev's
		// embedded simulator, a replay).
		noNomad, replay bool
	}{
		{name: "nomad TLS files over http", src: "nomad {\n  ca_file = \"ca.pem\"\n  cert_file = \"c.pem\"\n  key_file = \"k.pem\"\n}",
			refused: []string{"nomad.ca_file@2", "nomad.cert_file@3", "nomad.key_file@4"}},
		{name: "nomad server name and skip_verify over http", src: "nomad {\n  address = \"http://nomad:4646\"\n  tls_server_name = \"server.global.nomad\"\n  skip_verify = true\n}",
			refused: []string{"nomad.tls_server_name@3", "nomad.skip_verify@4"}},
		{name: "skip_verify = false is the default", src: "nomad {\n  skip_verify = false\n}"},
		{name: "nomad TLS over https", src: "nomad {\n  address = \"https://nomad:4646\"\n  ca_file = \"ca.pem\"\n  tls_server_name = \"n\"\n}"},
		{name: "nomad TLS with an upper-case HTTPS", src: "nomad {\n  address = \"HTTPS://nomad:4646\"\n  ca_file = \"ca.pem\"\n}"},
		{name: "nomad TLS over a unix socket", src: "nomad {\n  address = \"unix:///run/nomad.sock\"\n  ca_file = \"ca.pem\"\n}",
			refused: []string{"nomad.ca_file@3"}},
		{name: "the environment's https address makes the file's CA used", src: "nomad {\n  ca_file = \"ca.pem\"\n}",
			env: map[string]string{"NOMAD_ADDR": "https://nomad:4646"}},
		{name: "the environment's http address makes the file's CA unused", src: "nomad {\n  address = \"https://nomad:4646\"\n  ca_file = \"ca.pem\"\n}",
			env: map[string]string{"NOMAD_ADDR": "http://nomad:4646"}, refused: []string{"nomad.ca_file@3"}},
		{name: "nomad TLS from the environment over http", env: map[string]string{
			"NOMAD_CACERT": "ca.pem", "NOMAD_CLIENT_CERT": "c.pem", "NOMAD_CLIENT_KEY": "k.pem", "NOMAD_TLS_SERVER_NAME": "n", "NOMAD_SKIP_VERIFY": "true"},
			unused: []string{"nomad.ca_file<NOMAD_CACERT", "nomad.cert_file<NOMAD_CLIENT_CERT", "nomad.key_file<NOMAD_CLIENT_KEY",
				"nomad.tls_server_name<NOMAD_TLS_SERVER_NAME", "nomad.skip_verify<NOMAD_SKIP_VERIFY"}},
		{name: "nomad TLS from the environment over https", env: map[string]string{"NOMAD_ADDR": "https://nomad:4646", "NOMAD_CACERT": "ca.pem"}},
		{name: "consul address and token without Consul", src: "consul {\n  address = \"127.0.0.1:8500\"\n  token = \"t\"\n}",
			refused: []string{"consul.address@2", "consul.token@3"}},
		{name: "an empty consul token is nothing set", src: "consul {\n  token = \"\"\n}"},
		{name: "consul address with a registration", src: "consul {\n  enabled = true\n  address = \"127.0.0.1:8500\"\n  token = \"t\"\n}"},
		{name: "consul address with a lookup", src: join + "consul {\n  address = \"127.0.0.1:8500\"\n  token = \"t\"\n}"},
		{name: "consul from the environment without Consul", env: map[string]string{"CONSUL_HTTP_ADDR": "consul:8500", "CONSUL_HTTP_TOKEN": "t"},
			unused: []string{"consul.address<CONSUL_HTTP_ADDR", "consul.token<CONSUL_HTTP_TOKEN"}},
		{name: "consul from the environment with a lookup", src: join, env: map[string]string{"CONSUL_HTTP_ADDR": "consul:8500"}},
		{name: "any nomad setting from a file without Nomad", noNomad: true,
			src:     "nomad {\n  address = \"https://nomad:4646\"\n  region = \"eu\"\n  namespace = \"ops\"\n  token = \"t\"\n  ca_file = \"ca.pem\"\n  skip_verify = true\n}",
			refused: []string{"nomad.address@2", "nomad.region@3", "nomad.namespace@4", "nomad.token@5", "nomad.ca_file@6", "nomad.skip_verify@7"}},
		{name: "nomad from the environment without Nomad", noNomad: true, env: map[string]string{"NOMAD_ADDR": "http://nomad:4646", "NOMAD_TOKEN": "t"},
			unused: []string{"nomad.address<NOMAD_ADDR", "nomad.token<NOMAD_TOKEN"}},
		{name: "no nomad setting without Nomad", noNomad: true, src: "log_level = \"info\""},
		{name: "a replay acts on nothing and reads no Prometheus", noNomad: true, replay: true,
			src:     "prometheus {\n  address = \"http://prom:9090\"\n}\nforecast_only = true\nqueue {\n  max_parallel = 2\n  keep_finished = \"2h\"\n}\nreserve {\n  driver = \"raw_exec\"\n  config = { command = \"/bin/sleep\" }\n}",
			refused: []string{"prometheus.address@2", "forecast_only@4", "reserve.driver@10", "reserve.config@11", "queue.max_parallel@6", "queue.keep_finished@7"}},
		{name: "a replay reads no Prometheus, so it takes none of its access settings", noNomad: true, replay: true,
			src:     "prometheus {\n  address = \"https://prom:9090\"\n  ca_file = \"/ca.pem\"\n  token_file = \"/token\"\n  headers = { \"X-Scope-OrgID\" = \"t\" }\n}",
			refused: []string{"prometheus.address@2", "prometheus.ca_file@3", "prometheus.token_file@4", "prometheus.headers@5"}},
		{name: "without Nomad a dev agent still acts", noNomad: true, src: "forecast_only = true\nqueue {\n  max_parallel = 2\n}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"agent.hcl": tc.src})
			c, diags := config.NewLoader().Load(config.Default(), filepath.Join(dir, "agent.hcl"))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if diags := config.ApplyEnv(c, func(k string) string { return tc.env[k] }); diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if tc.noNomad {
				c.NoNomad = &config.NoNomad{Why: "a replay reads recorded series", Fix: "Run without -replay", Replay: tc.replay}
			}
			var refused []string
			for _, d := range c.Validate() {
				if d.Severity != hcl.DiagError {
					continue
				}
				field := strings.TrimPrefix(d.Summary, "Invalid ")
				if d.Subject == nil || !strings.Contains(d.Detail, field+" is set but") || !strings.Contains(d.Detail, "remove "+field) {
					t.Errorf("error %q: %s (subject %v): want it at the attribute, saying why and what to do", d.Summary, d.Detail, d.Subject)
					continue
				}
				refused = append(refused, fmt.Sprintf("%s@%d", field, d.Subject.Start.Line))
			}
			var unused []string
			for _, u := range c.Unused() {
				if u.Reason == "" {
					t.Errorf("%s: no reason", u.Field)
				}
				unused = append(unused, u.Field+"<"+strings.TrimPrefix(u.Source, "environment variable "))
			}
			if !slices.Equal(refused, tc.refused) {
				t.Errorf("refused %q, want %q", refused, tc.refused)
			}
			if !slices.Equal(unused, tc.unused) {
				t.Errorf("unused %q, want %q", unused, tc.unused)
			}
		})
	}
}

// RedactSource hides the values of credential lines, misspelt or not,
// and URLs' passwords; lines keep their place; a *_file path is kept.
func TestRedactSource(t *testing.T) {
	src := "nomad {\n  token = \"a1\"\n  tokn=\"a2\n  \"secret_id\" = \"a3\"\n  address = \"https://u:a4@h:1\"\n}\nacl {\n  token_file = \"/etc/t\"\n}\n"
	got := string(config.RedactSource([]byte(src)))
	for _, secret := range []string{"a1", "a2", "a3", "a4"} {
		if strings.Contains(got, secret) {
			t.Errorf("%s shown:\n%s", secret, got)
		}
	}
	if strings.Count(got, "\n") != strings.Count(src, "\n") || !strings.Contains(got, `token_file = "/etc/t"`) || !strings.Contains(got, "https://u:**@h:1") {
		t.Errorf("redacted source:\n%s", got)
	}
}

// TestRedactSourceOfAWebhook: a policy's webhook target shows neither its
// headers' values (on one line or several), nor a credential-named
// attribute, nor its URL's query values in a diagnostic's snippet; the
// rest of the file is shown as written.
func TestRedactSourceOfAWebhook(t *testing.T) {
	src := `target "webhook" {
  url = "https://scale.example/up?token=q1&team=q2#top"
  url = "https://ops:pw1@scale.example/up"
  headers = {
    Authorization = "Bearer h1"
    "X-Api-Key"   = "h2"
  }
  headers = { Cookie = "h3", X-Custom = "h4", Another = "h5" }
  api_key = "h6"
  query = "sum(rate(x[5m])) by (a)"
}
`
	got := string(config.RedactSource([]byte(src)))
	for _, secret := range []string{"q1", "q2", "pw1", "h1", "h2", "h3", "h4", "h5", "h6"} {
		if strings.Contains(got, secret) {
			t.Errorf("%s shown:\n%s", secret, got)
		}
	}
	if len(got) != len(src) || strings.Count(got, "\n") != strings.Count(src, "\n") {
		t.Fatalf("offsets moved:\n%s", got)
	}
	for _, kept := range []string{`url = "https://scale.example/up?token=**&team=**#top"`, "    Authorization =", `  headers = {***`,
		`query = "sum(rate(x[5m])) by (a)"`, "\n  }\n"} {
		if !strings.Contains(got, kept) {
			t.Errorf("want %q in:\n%s", kept, got)
		}
	}
	if !strings.Contains(got, "\"}\n  api_key") && !strings.Contains(got, "*}\n  api_key") {
		t.Errorf("the one-line headers map lost its closing brace:\n%s", got)
	}
}

// An address with credentials is refused, for every service, without
// the password in the error: the client would send it as basic auth, and
// addresses are printed.
func TestAddressWithCredentialsRefused(t *testing.T) {
	for _, file := range []string{
		"nomad {\n  address = \"http://alice:pa55word@127.0.0.1:4646\"\n}\n",
		"consul {\n  enabled = true\n  address = \"https://alice:pa55word@consul:8501\"\n}\n",
		"prometheus {\n  address = \"http://alice:pa55word@prom:9090\"\n}\n",
	} {
		dir := writeFiles(t, map[string]string{"a.hcl": "data_dir = \"/var/lib/fs\"\n" + file})
		_, diags := config.Load(filepath.Join(dir, "a.hcl"))
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "holds credentials") || strings.Contains(diags.Error(), "pa55word") {
			t.Errorf("%s: %v; want a refusal without the password", file, diags)
		}
	}
}

// RedactSource keeps every byte's offset: a diagnostic's position still
// points at its line and column.
func TestRedactSourceKeepsOffsets(t *testing.T) {
	src := "nomad {\n  token = \"a-long-secret-token\"\n  tok = \"ab\"\n  address = \"https://u:pw@h:1\"\n}\n"
	got := config.RedactSource([]byte(src))
	if len(got) != len(src) || strings.Count(string(got), "\n") != strings.Count(src, "\n") {
		t.Fatalf("%d bytes, %d lines; want %d, %d:\n%s", len(got), strings.Count(string(got), "\n"), len(src), strings.Count(src, "\n"), got)
	}
	for i := range src {
		if (src[i] == '\n') != (got[i] == '\n') {
			t.Fatalf("line break moved at byte %d:\n%s", i, got)
		}
	}
	if !strings.Contains(string(got), "token = *********************\n") || !strings.Contains(string(got), "tok = ****\n") || !strings.Contains(string(got), "https://u:**@h:1") {
		t.Errorf("redacted:\n%s", got)
	}
}

// TestHostlessAddressAdvice: an address without a host is refused with
// advice that fits it: a listener (http.address) may take 0.0.0.0 for
// every interface; an address the agent dials (consul.address, a
// retry_join entry) names the host to reach.
func TestHostlessAddressAdvice(t *testing.T) {
	for _, tc := range []struct{ name, src, env, field string }{
		{"http.address", "http {\n  address = \":7575\"\n}", "", "http.address"},
		{"consul.address", "consul {\n  enabled = true\n  address = \":8500\"\n}", "", "consul.address"},
		{"retry_join", "server {\n  bootstrap_expect = 3\n  retry_join = [\":7576\"]\n}", "", "server.retry_join[0]"},
		{"CONSUL_HTTP_ADDR", "", ":8500", "consul.address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := loadSrc(t, tc.src)
			if tc.env != "" {
				diags = append(diags, config.ApplyEnv(c, func(k string) string {
					if k == tc.name {
						return tc.env
					}
					return ""
				})...)
			}
			msg := diags.Error()
			if !diags.HasErrors() || !strings.Contains(msg, "Invalid "+tc.field) || !strings.Contains(msg, "has no host") {
				t.Fatalf("%s without a host: %v", tc.field, diags)
			}
			if listen := strings.Contains(msg, "listen on every interface"); listen != (tc.field == "http.address") {
				t.Errorf("%s: the advice %q does not fit it", tc.field, msg)
			}
		})
	}
}

// TestClientRaftPortNeedsAJoinWithoutAPort: a client agent binds no Raft
// port; its server.raft_port is only the port of the server.retry_join
// entries that name none. Set beside entries that all name their port (or
// look the servers up in Consul, which gives theirs), it is refused,
// pointing at it; beside an entry without a port it is taken.
func TestClientRaftPortNeedsAJoinWithoutAPort(t *testing.T) {
	client := func(join string) string {
		return "server {\n  enabled = false\n  retry_join = [" + join + "]\n  raft_port = 9000\n}\n"
	}
	for _, join := range []string{`"10.0.0.1:7576", "10.0.0.2:7576"`, `"provider=consul"`, `"[fd00::1]:7576"`} {
		_, diags := loadSrc(t, client(join))
		var found *hcl.Diagnostic
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Summary == "Invalid server.raft_port" {
				found = d
			}
		}
		if found == nil || found.Subject == nil || found.Subject.Start.Line != 4 {
			t.Errorf("retry_join = [%s]: raft_port not refused at line 4: %v", join, diags)
		}
	}
	for _, join := range []string{`"10.0.0.1"`, `"10.0.0.1:7576", "nomad-server-2"`, `"provider=consul", "[fd00::1]"`} {
		if _, diags := loadSrc(t, client(join)); diags.HasErrors() {
			t.Errorf("retry_join = [%s]: %v", join, diags)
		}
	}
}

// TestAdvertiseAddrNeedsSomethingToAdvertise: advertise_addr is where
// other agents and Consul reach a server's Raft port, and an HTTP API that
// listens on every interface. A client agent and a dev agent bind no Raft
// port (a dev agent's transport is in-process): with http.address on an
// IP, which is reached there, advertise_addr is refused, pointing at it;
// with http.address on every interface it is taken.
func TestAdvertiseAddrNeedsSomethingToAdvertise(t *testing.T) {
	const clientSrc = "advertise_addr = \"10.0.0.9\"\nserver {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\nhttp {\n  address = %q\n}\n"
	for _, tc := range []struct {
		name, src string
		dev       bool
		refused   bool
	}{
		{"client on an IP", fmt.Sprintf(clientSrc, "127.0.0.1:7590"), false, true},
		{"client on every interface", fmt.Sprintf(clientSrc, "0.0.0.0:7590"), false, false},
		{"dev on an IP", "advertise_addr = \"10.0.0.9\"\n", true, true},
		{"dev on every interface", "advertise_addr = \"10.0.0.9\"\nhttp {\n  address = \"[::]:7590\"\n}\n", true, false},
		{"server", "advertise_addr = \"127.0.0.1\"\n", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := config.Default()
			if tc.dev {
				base = config.DevDefault()
			}
			c, diags := config.NewLoader().Load(base, writeFiles(t, map[string]string{"agent.hcl": tc.src}))
			if !diags.HasErrors() {
				diags = c.Validate()
			}
			var found *hcl.Diagnostic
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					found = d
				}
			}
			switch {
			case !tc.refused && found != nil:
				t.Errorf("refused: %v", diags)
			case tc.refused && (found == nil || found.Summary != "Invalid advertise_addr" || found.Subject == nil || found.Subject.Start.Line != 1):
				t.Errorf("advertise_addr not refused at line 1: %v", diags)
			}
		})
	}
}

// TestNamespaceWildcardRefused: nomad.namespace = "*" (Nomad's wildcard,
// which reads every namespace) is refused from a file, pointing at it, and
// from NOMAD_NAMESPACE, naming it: the agent registers its placeholder jobs
// there and Nomad refuses a job in "*". An agent that uses no Nomad (-dev
// on its simulated cluster) takes the variable as unused.
func TestNamespaceWildcardRefused(t *testing.T) {
	_, diags := loadSrc(t, "nomad {\n  namespace = \"*\"\n}\n")
	if !diags.HasErrors() || diags[0].Summary != "Invalid nomad.namespace" || diags[0].Subject == nil || diags[0].Subject.Start.Line != 2 {
		t.Errorf("from a file: %v", diags)
	}
	env := func(k string) string {
		if k == "NOMAD_NAMESPACE" {
			return "*"
		}
		return ""
	}
	c := config.Default()
	if diags := append(config.ApplyEnv(c, env), c.Validate()...); !diags.HasErrors() || !strings.Contains(diags.Error(), "NOMAD_NAMESPACE") ||
		!strings.Contains(diags.Error(), "Invalid nomad.namespace") {
		t.Errorf("from the environment: %v", diags)
	}
	c = config.DevDefault()
	c.NoNomad = &config.NoNomad{Why: "-dev runs against its embedded simulated Nomad cluster", Fix: "Add -dev-sim=false"}
	if diags := append(config.ApplyEnv(c, env), c.Validate()...); diags.HasErrors() {
		t.Errorf("an agent without Nomad refuses the variable: %v", diags)
	} else if u := c.Unused(); len(u) != 1 || u[0].Field != "nomad.namespace" {
		t.Errorf("unused %+v, want nomad.namespace", u)
	}
}
