package deploy

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/foreshape/foreshape/agent"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/config"
)

// deploymentDoc is docs/deployment.md.
func deploymentDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "deployment.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section is the text of doc's "## title" section, up to the next "## ".
func section(t *testing.T, doc, title string) string {
	t.Helper()
	_, s, ok := strings.Cut(doc, "\n## "+title+"\n")
	if !ok {
		t.Fatalf("docs/deployment.md has no section %q", title)
	}
	s, _, _ = strings.Cut(s, "\n## ")
	return s
}

// TestDeploymentDocsACLTables: the grants docs/deployment.md's tables list
// are exactly those of deploy/foreshape-acl.hcl and
// deploy/foreshape-consul-acl.hcl, so that the tables cannot drift from
// the policies the tests check against the code and Consul.
func TestDeploymentDocsACLTables(t *testing.T) {
	doc := deploymentDoc(t)
	// Nomad: "| namespace `*`: `read-job` | …", "| `node`: `write` | …".
	var documented []string
	row := regexp.MustCompile("(?m)^\\| (?:namespace `\\*`|`(node|agent|operator)`): `([a-z-]+)` \\|")
	for _, m := range row.FindAllStringSubmatch(section(t, doc, "The ACL policy"), -1) {
		documented = append(documented, cmp.Or(m[1], "namespace")+":"+m[2])
	}
	grants, _ := policyGrants(t)
	var granted []string
	for g := range grants {
		granted = append(granted, g)
	}
	slices.Sort(documented)
	slices.Sort(granted)
	if len(granted) < 5 || !slices.Equal(documented, granted) {
		t.Errorf("docs/deployment.md's ACL table lists %q; deploy/foreshape-acl.hcl grants %q", documented, granted)
	}

	// Consul: "| `service "foreshape"`: `write` | …".
	documented = nil
	row = regexp.MustCompile("(?m)^\\| `([a-z_]+) (\"[^\"]*\")`: `([a-z]+)` \\|")
	for _, m := range row.FindAllStringSubmatch(section(t, doc, "The Consul policy"), -1) {
		documented = append(documented, m[1]+" "+m[2]+" "+m[3])
	}
	b, _ := parse(t, "foreshape-consul-acl.hcl")
	var rules []string
	for _, blk := range b.Blocks {
		rules = append(rules, fmt.Sprintf("%s %q %s", blk.Type, strings.Join(blk.Labels, ","), value(t, blk.Body, "policy").AsString()))
	}
	slices.Sort(documented)
	slices.Sort(rules)
	if len(rules) == 0 || !slices.Equal(documented, rules) {
		t.Errorf("docs/deployment.md's Consul table lists %q; deploy/foreshape-consul-acl.hcl grants %q", documented, rules)
	}
}

// TestJobsAsDocumented: what docs/deployment.md says of the jobs'
// templates and blocks, beyond TestJobs: both agents read Nomad through
// the Task API's socket in their task's secrets directory, with the token
// file there (TestJobsUseTheirWorkloadIdentity checks the rest of it); a
// server binds the Raft port
// (static 7576, raft_port's default) on the node's address, serves the
// API on the http port and keeps its data under the allocation
// directory; each check speaks HTTPS exactly when the rendered
// configuration serves TLS; the client agents' templates restart them
// when their variable changes; the servers' group sets no migrate block;
// and the figures the text gives (/v1/ready's wait, the servers' check
// timeout and interval, min_healthy_time, both kill_timeouts) are theirs.
func TestJobsAsDocumented(t *testing.T) {
	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			b, _ := parse(t, j.file)
			jb := one(t, b, "job")
			g := one(t, jb, "group")
			task := one(t, g, "task")
			cfg := renderAgentConfig(t, j, task)
			// renderAgentConfig's node: 10.0.0.21, raft at 10.0.0.21:24311,
			// http at 10.0.0.21:25007, the allocation directory under a
			// temporary one.
			if dir := filepath.Dir(cfg.Nomad.TokenFile); filepath.Base(dir) != "secrets" || cfg.Nomad.Address != "unix://"+dir+"/api.sock" {
				t.Errorf("nomad.address = %q, nomad.token_file = %q; want the Task API's socket and the workload identity's file in the task's secrets directory",
					cfg.Nomad.Address, cfg.Nomad.TokenFile)
			}
			if cfg.HTTP.Address != "10.0.0.21:25007" {
				t.Errorf("http.address = %q; want the http port, 10.0.0.21:25007", cfg.HTTP.Address)
			}
			if j.server {
				if cfg.BindAddr != "10.0.0.21" || cfg.Server.RaftPort != 24311 {
					t.Errorf("bind_addr %q, raft_port %d; want the raft port's address and port", cfg.BindAddr, cfg.Server.RaftPort)
				}
				if !strings.HasSuffix(filepath.Dir(cfg.DataDir), "alloc") {
					t.Errorf("data_dir = %q; want it under the allocation directory", cfg.DataDir)
				}
				for _, p := range blocks(one(t, g, "network"), "port") {
					if p.Labels[0] == "raft" && mustInt(t, value(t, p.Body, "static")) != int64(config.DefaultRaftPort) {
						t.Errorf("the raft port is static %d; docs/deployment.md says %d, raft_port's default", mustInt(t, value(t, p.Body, "static")), config.DefaultRaftPort)
					}
				}
				if len(blocks(g, "migrate")) != 0 {
					t.Error("the servers' group sets a migrate block; docs/deployment.md says it sets none (Nomad's default moves one at a time)")
				}
			} else {
				for _, tb := range blocks(task, "template") {
					if _, ok := tb.Body.Attributes["change_mode"]; ok && str(t, tb.Body, "change_mode") != "restart" {
						t.Errorf("the client agents' template of %s sets change_mode %q; docs/deployment.md says their templates restart them", str(t, tb.Body, "destination"), str(t, tb.Body, "change_mode"))
					}
				}
			}
			check := one(t, one(t, g, "service"), "check")
			want := "http"
			if cfg.TLS.Enabled() {
				want = "https"
			}
			if got := str(t, check, "protocol"); got != want {
				t.Errorf("the check's protocol is %q, but the agent's configuration serves %s", got, want)
			}
		})
	}
	// The figures the text gives of the jobs' settings.
	text := strings.Join(strings.Fields(deploymentDoc(t)), " ")
	b, _ := parse(t, "foreshape-servers.nomad.hcl")
	servers := one(t, one(t, b, "job"), "group")
	check := one(t, one(t, servers, "service"), "check")
	b, _ = parse(t, "foreshape-clients.nomad.hcl")
	clients := one(t, one(t, b, "job"), "group")
	secs := func(d string) string { return strings.TrimSuffix(d, "s") + " s" }
	for _, want := range []string{
		"`/v1/ready` waits at most " + secs(cluster.ReadyWait.String()),
		"within the check's " + secs(str(t, check, "timeout")) + " timeout",
		"the " + secs(str(t, one(t, servers, "update"), "min_healthy_time")) + " `min_healthy_time`",
		"the check's " + secs(str(t, check, "interval")) + " interval",
		fmt.Sprintf("servers' task sets `kill_timeout = %q` and the client agents' `%q`",
			str(t, one(t, servers, "task"), "kill_timeout"), str(t, one(t, clients, "task"), "kill_timeout")),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/deployment.md does not say %q, as the jobs and cluster.ReadyWait (%v) have it", want, cluster.ReadyWait)
		}
	}
}

// TestJobsReadTheDocumentedVariable: each job's templates read the Nomad
// Variable at nomad/jobs/<the job's name> (the one Nomad lets a job's
// tasks read without a policy of their own), and exactly the items
// docs/deployment.md's `nomad var put` commands write into it: no
// nomad_token, as the agents call Nomad with their workload identity.
func TestJobsReadTheDocumentedVariable(t *testing.T) {
	documented := documentedVariableItems(t)
	if slices.Contains(documented, "nomad_token") {
		t.Errorf("docs/deployment.md's `nomad var put` commands write a nomad_token; the jobs use their workload identity")
	}
	for _, j := range jobs {
		b, src := parse(t, j.file)
		task := one(t, one(t, one(t, b, "job"), "group"), "task")
		if items := variableItems(t, j, task, src); !slices.Equal(items, documented) {
			t.Errorf("%s's templates read %q from its variable; docs/deployment.md puts %q", j.file, items, documented)
		}
	}
}

// documentedVariableItems are the items, sorted, that docs/deployment.md's
// `nomad var put` commands of the servers' variable write (step 3's and
// the rotation's, which must agree); the doc says the client agents'
// variable holds the same.
func documentedVariableItems(t *testing.T) []string {
	t.Helper()
	doc := strings.Join(strings.Fields(deploymentDoc(t)), " ")
	put := regexp.MustCompile("`nomad var put (?:-force )?nomad/jobs/foreshape-servers ([^`]*)`")
	puts := put.FindAllStringSubmatch(doc, -1)
	if len(puts) < 2 {
		t.Fatalf("docs/deployment.md shows %d `nomad var put` of the servers' variable; want step 3's and the rotation's", len(puts))
	}
	var documented []string
	for i, m := range puts {
		var items []string
		for _, w := range strings.Fields(m[1]) {
			k, _, _ := strings.Cut(w, "=")
			items = append(items, k)
		}
		slices.Sort(items)
		if i > 0 && !slices.Equal(items, documented) {
			t.Errorf("docs/deployment.md's `nomad var put` commands write %q and %q", documented, items)
		}
		documented = items
	}
	if !strings.Contains(doc, "and the same under `nomad/jobs/foreshape-clients`") {
		t.Error("docs/deployment.md no longer says the client agents' variable holds the same items")
	}
	return documented
}

// variableItems are the items, sorted, that the task's templates read
// from their Nomad Variable, src being the job file's text; a template
// that reads another variable than nomad/jobs/<the job's name> fails the
// test.
func variableItems(t *testing.T, j job, task *hclsyntax.Body, src []byte) []string {
	t.Helper()
	varRE := regexp.MustCompile(`nomadVar \\?"([^"\\]+)\\?"`)
	itemRE := regexp.MustCompile(`\{\{ \.([a-z_]+) \}\}`)
	read := map[string]bool{}
	for _, data := range templatesData(t, task, src) {
		for _, m := range varRE.FindAllStringSubmatch(data, -1) {
			if m[1] != "nomad/jobs/"+j.name {
				t.Errorf("%s reads the variable %s; a job's tasks may read nomad/jobs/%s", j.file, m[1], j.name)
			}
			for _, it := range itemRE.FindAllStringSubmatch(data, -1) {
				read[it[1]] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(read))
}

// TestJobCommentsGiveTheAgentsBounds: the figures the jobs' comments give
// for the agent's clean stop and /v1/ready's wait are the agent's.
func TestJobCommentsGiveTheAgentsBounds(t *testing.T) {
	secs := func(d time.Duration) string { return strings.TrimSuffix(d.String(), "s") + " s" }
	for file, wants := range map[string][]string{
		"foreshape-servers.nomad.hcl": {"stops Raft: at most " + secs(agent.StopWait), "waits at most " + secs(cluster.ReadyWait) + " for the leader's answer"},
		"foreshape-clients.nomad.hcl": {"deregisters from Consul: at most " + secs(agent.ClientStopWait)},
	} {
		text := strings.Join(strings.Fields(strings.ReplaceAll(string(mustSrc(t, file)), "#", "")), " ")
		for _, want := range wants {
			if !strings.Contains(text, want) {
				t.Errorf("%s's comments do not say %q (agent.StopWait %v, agent.ClientStopWait %v, cluster.ReadyWait %v)",
					file, want, agent.StopWait, agent.ClientStopWait, cluster.ReadyWait)
			}
		}
	}
}
