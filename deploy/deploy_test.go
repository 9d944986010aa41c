// Package deploy holds what operators need to run foreshape on Nomad: the
// servers' job, the client agents' system job, and the ACL policies they
// need (the Nomad one attached to both jobs, which their workload
// identities carry). Its tests parse every file with hcl/v2, check the jobs'
// shape, render their configuration templates and validate the result as
// the agent would, and check the ACL policy against every Nomad API call
// the agent's code makes. They must never contact a cluster.
package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/foreshape/foreshape/agent"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/config"
)

func parse(t *testing.T, path string) (*hclsyntax.Body, []byte) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return f.Body.(*hclsyntax.Body), src
}

// value evaluates an attribute that needs no variables.
func value(t *testing.T, b *hclsyntax.Body, name string) cty.Value {
	t.Helper()
	a, ok := b.Attributes[name]
	if !ok {
		t.Fatalf("attribute %s missing", name)
	}
	v, diags := a.Expr.Value(&hcl.EvalContext{})
	if diags.HasErrors() {
		t.Fatalf("%s: %v", name, diags)
	}
	return v
}

func str(t *testing.T, b *hclsyntax.Body, name string) string {
	t.Helper()
	return value(t, b, name).AsString()
}

// blocks returns b's blocks of a type.
func blocks(b *hclsyntax.Body, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			out = append(out, blk)
		}
	}
	return out
}

func one(t *testing.T, b *hclsyntax.Body, typ string) *hclsyntax.Body {
	t.Helper()
	bs := blocks(b, typ)
	if len(bs) != 1 {
		t.Fatalf("want one %s block, have %d", typ, len(bs))
	}
	return bs[0].Body
}

// TestEveryFileParses parses every HCL file in deploy/.
func TestEveryFileParses(t *testing.T) {
	files, _ := filepath.Glob("*.hcl")
	if len(files) < 3 {
		t.Fatalf("deploy/ holds %d HCL files; want the servers' job, the clients' job and the ACL policy", len(files))
	}
	for _, f := range files {
		parse(t, f)
	}
}

// job describes what each job must look like.
type job struct {
	file, name, typ, group string
	server                 bool
}

var jobs = []job{
	{file: "foreshape-servers.nomad.hcl", name: "foreshape-servers", typ: "service", group: "server", server: true},
	{file: "foreshape-clients.nomad.hcl", name: "foreshape-clients", typ: "system", group: "client"},
}

// TestJobs checks each job's structure: its type, where it runs, its
// ports, its health check, and a template that renders the agent's
// configuration, which config.Load accepts.
func TestJobs(t *testing.T) {
	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			b, _ := parse(t, j.file)
			js := blocks(b, "job")
			if len(js) != 1 || js[0].Labels[0] != j.name {
				t.Fatalf("want one job %q block", j.name)
			}
			jb := js[0].Body
			if got := str(t, jb, "type"); got != j.typ {
				t.Errorf("type = %q, want %q", got, j.typ)
			}
			gs := blocks(jb, "group")
			if len(gs) != 1 || gs[0].Labels[0] != j.group {
				t.Fatalf("want one group %q", j.group)
			}
			g := gs[0].Body
			count := 0
			if j.server {
				count = int(mustInt(t, value(t, g, "count")))
				if count != 3 && count != 5 {
					t.Errorf("count = %d servers; want 3 or 5", count)
				}
				var distinct, meta bool
				for _, c := range append(blocks(g, "constraint"), blocks(jb, "constraint")...) {
					if _, ok := c.Body.Attributes["operator"]; ok && str(t, c.Body, "operator") == "distinct_hosts" {
						distinct = true
					}
					if a, ok := c.Body.Attributes["attribute"]; ok && strings.Contains(string(a.SrcRange.SliceBytes(mustSrc(t, j.file))), "meta.foreshape_server") {
						meta = true
					}
				}
				if !distinct || !meta {
					t.Errorf("servers need a distinct_hosts constraint (%v) and the foreshape_server meta flag (%v)", distinct, meta)
				}
				disk := one(t, g, "ephemeral_disk")
				if !value(t, disk, "sticky").True() || !value(t, disk, "migrate").True() {
					t.Error("the servers' Raft data needs a sticky, migrating ephemeral disk")
				}
			} else if got := str(t, jb, "node_pool"); got != "all" {
				t.Errorf("node_pool = %q; a client agent belongs on every node (\"all\")", got)
			}
			ports := map[string]bool{}
			for _, p := range blocks(one(t, g, "network"), "port") {
				ports[p.Labels[0]] = true
			}
			if !ports["http"] || j.server != ports["raft"] {
				t.Errorf("ports %v; want http, and raft on servers only", ports)
			}
			// Raft knows each server by its address: servers that all come
			// back at new (dynamic) ports can no longer elect a leader.
			for _, p := range blocks(one(t, g, "network"), "port") {
				if _, static := p.Body.Attributes["static"]; p.Labels[0] == "raft" && !static {
					t.Error("the servers' raft port must be static: a cluster whose servers all restart at new dynamic ports cannot elect a leader")
				}
			}
			svc := one(t, g, "service")
			check := one(t, svc, "check")
			// A rolling update of the servers must wait until the new one
			// has rejoined and caught up (/v1/ready), one at a time; a
			// client agent is ready while it serves (/v1/health).
			path := "/v1/health"
			if j.server {
				path = "/v1/ready"
				up := one(t, g, "update")
				if mustInt(t, value(t, up, "max_parallel")) != 1 || str(t, up, "health_check") != "checks" {
					t.Error("the servers' update must replace one server at a time and wait for its check (max_parallel = 1, health_check = \"checks\")")
				}
				// A new server that never passes its check stays down
				// until someone runs another version, and a new version
				// run then replaces a second, healthy server (measured on
				// Nomad 2.0.6: one server of three left, no leader):
				// Nomad must go back to the last version that deployed
				// by itself.
				if _, ok := up.Attributes["auto_revert"]; !ok || !value(t, up, "auto_revert").True() {
					t.Error("the servers' update must revert a deployment that fails (auto_revert = true): a failed server stays down until another version runs, and a new version replaces a second one")
				}
				// /v1/ready waits up to cluster.ReadyWait for the leader
				// and the catch-up; a check that times out first reports a
				// timeout where the agent would have said why it is not
				// ready. Half the timeout leaves room for the TLS
				// handshake on a loaded node.
				timeout, err := time.ParseDuration(str(t, check, "timeout"))
				if err != nil {
					t.Fatalf("check timeout: %v", err)
				}
				if 2*cluster.ReadyWait > timeout {
					t.Errorf("the servers' check times out after %v, but /v1/ready may wait %v: make the timeout at least twice that", timeout, cluster.ReadyWait)
				}
			}
			if str(t, svc, "port") != "http" || str(t, check, "path") != path || str(t, check, "type") != "http" {
				t.Errorf("the service's check must call %s on the http port", path)
			}
			if str(t, svc, "provider") != "nomad" {
				t.Error("the job's service uses Nomad's service discovery: the agents register themselves in Consul")
			}
			task := one(t, g, "task")
			// Nomad kills a task kill_timeout after its stop signal (5 s
			// by default): a server killed in the middle of its clean stop
			// neither hands leadership over nor tells its peers it left.
			// A second beyond the agent's bound is for the process's exit.
			bound := agent.ClientStopWait
			if j.server {
				bound = agent.StopWait
			}
			if _, ok := task.Attributes["kill_timeout"]; !ok {
				t.Errorf("the task has no kill_timeout: Nomad's 5 s default may kill the agent during its clean stop, which can take %v", bound)
			} else if kt, err := time.ParseDuration(str(t, task, "kill_timeout")); err != nil || kt < bound+time.Second {
				t.Errorf("kill_timeout = %q; the agent's clean stop may take %v: want at least %v", str(t, task, "kill_timeout"), bound, bound+time.Second)
			}
			// A change of the servers' variable must not restart them
			// all at once, each on its own template's signal: two down
			// at once leave three without a quorum. The operator
			// restarts them one at a time.
			if j.server {
				for _, tb := range blocks(task, "template") {
					if dest := str(t, tb.Body, "destination"); strings.HasPrefix(dest, "secrets/") {
						if _, ok := tb.Body.Attributes["change_mode"]; !ok || str(t, tb.Body, "change_mode") != "noop" {
							t.Errorf("the servers' template of %s restarts the task when the variable changes; want change_mode = \"noop\" and a rolling restart", dest)
						}
					}
				}
			}
			cfg := renderAgentConfig(t, j, task)
			if cfg.Server.Enabled != j.server {
				t.Errorf("server.enabled = %v", cfg.Server.Enabled)
			}
			if j.server && cfg.Server.BootstrapExpect != count {
				t.Errorf("bootstrap_expect = %d for %d servers", cfg.Server.BootstrapExpect, count)
			}
			if !j.server && cfg.Nomad.NodeID == "" {
				t.Error("a client agent names its node (nomad.node_id)")
			}
			if len(cfg.Server.RetryJoin) != 1 || cfg.Server.RetryJoin[0] != "provider=consul" || !cfg.Consul.Enabled {
				t.Errorf("the agents find the servers in Consul and register there: retry_join %v, consul %v", cfg.Server.RetryJoin, cfg.Consul.Enabled)
			}
		})
	}
}

var srcCache = map[string][]byte{}

func mustSrc(t *testing.T, path string) []byte {
	t.Helper()
	if b, ok := srcCache[path]; ok {
		return b
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	srcCache[path] = b
	return b
}

func mustInt(t *testing.T, v cty.Value) int64 {
	t.Helper()
	i, acc := v.AsBigFloat().Int64()
	if acc != 0 {
		t.Fatalf("%v is not an integer", v)
	}
	return i
}

// renderAgentConfig renders the task's template whose destination is
// local/agent.hcl with Nomad's environment as it would be on a node, and
// loads it as the agent does.
func renderAgentConfig(t *testing.T, j job, task *hclsyntax.Body) *config.Config {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{
		"node.unique.name":               "nomad-client-1",
		"node.unique.id":                 "3f1c9e0a-5b2d-4c1e-8f00-1a2b3c4d5e6f",
		"attr.unique.network.ip-address": "10.0.0.21",
		"NOMAD_ALLOC_DIR":                filepath.Join(dir, "alloc"),
		"NOMAD_TASK_DIR":                 filepath.Join(dir, "local"),
		"NOMAD_SECRETS_DIR":              filepath.Join(dir, "secrets"),
		"NOMAD_IP_raft":                  "10.0.0.21",
		"NOMAD_PORT_raft":                "24311",
		"NOMAD_ADDR_http":                "10.0.0.21:25007",
	}
	var data string
	for _, tb := range blocks(task, "template") {
		if str(t, tb.Body, "destination") == "local/agent.hcl" {
			data = str(t, tb.Body, "data")
		}
	}
	if data == "" {
		t.Fatal("no template renders local/agent.hcl")
	}
	tmpl, err := template.New(j.file).Option("missingkey=error").Funcs(template.FuncMap{
		"env": func(name string) (string, error) {
			v, ok := env[name]
			if !ok {
				t.Errorf("the template reads %s, which this test does not set", name)
			}
			return v, nil
		},
	}).Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "local", "policies"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatalf("the rendered configuration is refused:\n%s\n%s", diags.Error(), buf.String())
	}
	return cfg
}

// TestStopBoundsInTheDocs checks the figures docs/deployment.md gives for an
// agent's clean stop, from which the jobs' kill_timeouts follow, against the
// bounds the agent keeps.
func TestStopBoundsInTheDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "deployment.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(doc)), " ")
	for _, want := range []string{
		"at most " + strings.TrimSuffix(agent.StopWait.String(), "s") + " s when they do not",
		"a client agent's at most " + strings.TrimSuffix(agent.ClientStopWait.String(), "s") + " s",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/deployment.md does not say %q (agent.StopWait %v, agent.ClientStopWait %v)", want, agent.StopWait, agent.ClientStopWait)
		}
	}
}
