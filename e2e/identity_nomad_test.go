package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/policies"
)

// identityJob is a foreshape server agent as a raw_exec job that takes its
// Nomad token from its task's workload identity, as the shipped jobs do
// (docs/deployment.md, "The agents' workload identity"): the default identity
// written to ${NOMAD_SECRETS_DIR}/nomad_token (identity { file = true }),
// read by nomad.token_file, at the Nomad address given (%[2]s: the Task
// API's socket or NOMAD_ADDR); or a named identity (%[9]s, its file
// %[10]s). No token is given by hand. %[11]s is the nomad block's TLS
// settings for a Nomad with TLS at NOMAD_ADDR (realnomad.NomadTLS); the
// Task API's socket takes none.
const identityJob = `
job %[1]q {
  datacenters = [%[3]q]

  constraint {
    attribute = "${node.unique.id}"
    value     = %[4]q
  }

  group "server" {
    task "agent" {
      driver = "raw_exec"

      config {
        command = %[5]q
        args    = ["agent", "-config", "local/agent.hcl"]
      }

%[9]s

      template {
        destination = "local/agent.hcl"
        data        = <<-EOT
          name      = "wi-e2e"
          data_dir  = "{{ env "NOMAD_ALLOC_DIR" }}/data"
          bind_addr = "127.0.0.1"

          server {
            enabled          = true
            bootstrap_expect = 1
            raft_port        = %[6]d
          }

          nomad {
            address    = "%[2]s"
            token_file = "{{ env "NOMAD_SECRETS_DIR" }}/%[10]s"
%[11]s          }

          http {
            address = "127.0.0.1:%[7]d"
          }

          policies {
            dir = %[8]q
          }

          reserve {
            driver = "raw_exec"
            config = {
              command = "/bin/sleep"
              args    = ["infinity"]
            }
          }
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
`

// The identity blocks and the Task API's address the job is run with.
const (
	defaultIdentity = "      identity {\n        file = true\n      }\n"
	// A named identity's token expires (its ttl) and Nomad writes a new
	// one to its file before then (measured on Nomad 2.0.6: every 15-16 s
	// for a 30 s ttl); the default identity's has no expiry.
	namedIdentity = "      identity {\n        name = \"foreshape\"\n        aud  = [\"foreshape\"]\n        ttl  = \"20s\"\n        file = true\n      }\n"
	taskAPI       = `unix://{{ env "NOMAD_SECRETS_DIR" }}/api.sock`
)

// TestAgentWithWorkloadIdentityOnRealNomad runs a foreshape server agent
// as a raw_exec job on the real Nomad at NOMAD_ADDR (ACLs on) with no
// token of its own: its task's workload identity (nomad.token_file on
// ${NOMAD_SECRETS_DIR}/nomad_token) and deploy/foreshape-acl.hcl applied
// as a policy attached to the job (nomad acl policy apply -namespace
// default -job JOB). It runs through the Task API's socket
// (unix://${NOMAD_SECRETS_DIR}/api.sock), over NOMAD_ADDR, and with a
// named identity whose token expires after 20 s and is renewed while the
// agent runs (read again for every request). Over an https:// NOMAD_ADDR
// (a Nomad with TLS) the agent's nomad.ca_file, cert_file and key_file
// are NOMAD_CACERT, NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY; through the
// Task API's socket it has none. It checks each time that the agent
// collects its node's and locality's series with no refused call, and
// that the act half moves a whole node's work to the other datacenter:
// it registers a placeholder job there,
// takes the node out of scheduling (node write), stops the allocation,
// follows its replacement onto the other node and deregisters the
// placeholder (the node stays out of scheduling, as after any whole
// node's move; the test gives it back); its log shows no refused call.
// The test's set-up uses NOMAD_MANAGEMENT_TOKEN (or a management
// NOMAD_TOKEN). Before it looks for a Nomad it checks that
// docs/deployment.md still shows the identity block and the nomad
// settings it runs.
func TestAgentWithWorkloadIdentityOnRealNomad(t *testing.T) {
	// The job runs what docs/deployment.md tells operators to write.
	doc, err := os.ReadFile("../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"   ```hcl\n   " + strings.ReplaceAll(strings.TrimSuffix(defaultIdentity, "\n"), "\n", "\n   ") + "\n   ```",
		`address    = "` + taskAPI + `"`, `token_file = "{{ env "NOMAD_SECRETS_DIR" }}/nomad_token"`} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/deployment.md's workload identity section no longer shows %q, which this test runs", want)
		}
	}
	addr, setup, nodes := realNomadNodes(t)
	if self, _, err := setup.ACLTokens().Self(nil); err != nil || self.AccessorID == "acls-disabled" {
		t.Skipf("the Nomad at %s has its ACLs off (%v): this test shows the job-attached ACL policy granting the workload identity what the agent needs", addr, err)
	}
	// The move goes from one datacenter to another: two raw_exec nodes
	// in two datacenters (a dev agent with a second client in dc2).
	var node, other *nomadapi.NodeListStub
	for _, n := range nodes {
		switch {
		case !rawExecReady(n):
		case node == nil:
			node = n
		case other == nil && n.Datacenter != node.Datacenter:
			other = n
		}
	}
	if other == nil {
		t.Skipf("the Nomad at %s has no two ready, eligible raw_exec nodes in two datacenters: the act half's move needs them "+
			"(join a second client in another datacenter to the dev agent)", addr)
	}
	rules, err := os.ReadFile("../deploy/foreshape-acl.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, address, identity, file string }{
		{"task API socket", taskAPI, defaultIdentity, "nomad_token"},
		{"NOMAD_ADDR", addr, defaultIdentity, "nomad_token"},
		{"named identity with a 20s ttl", taskAPI, namedIdentity, "nomad_foreshape.jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			suffix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
			jobID := "fs-e2e-wi-" + suffix
			// The policy first: the agent's first calls are made with it.
			policy := &nomadapi.ACLPolicy{Name: jobID, Description: "foreshape e2e workload identity", Rules: string(rules),
				JobACL: &nomadapi.JobACL{Namespace: "default", JobID: jobID}}
			if _, err := setup.ACLPolicies().Upsert(policy, nil); err != nil {
				t.Fatalf("nomad acl policy apply -namespace default -job %s: %v", jobID, err)
			}
			t.Cleanup(func() { _, _ = setup.ACLPolicies().Delete(jobID, nil) })

			sleeper := "fs-e2e-wi-sleep-" + suffix
			registerSleeper(t, setup, sleeper, node.Datacenter, func(j *nomadapi.Job) {
				j.Datacenters = []string{node.Datacenter, other.Datacenter}
			})
			t.Cleanup(func() { _, _, _ = setup.Jobs().Deregister(sleeper, true, nil) })
			alloc := waitRunning(t, setup, sleeper, "")

			dir := t.TempDir()
			polDir := filepath.Join(dir, "policies")
			if err := os.MkdirAll(polDir, 0o755); err != nil {
				t.Fatal(err)
			}
			// Wherever Nomad placed the sleeper (src), the move takes its
			// whole node out to the other datacenter (dst), where the agent
			// runs.
			src, dst := node, other
			if alloc.NodeID == other.ID {
				src, dst = other, node
			}
			from, to := src.Datacenter, dst.Datacenter
			t.Cleanup(func() { _, _ = setup.Nodes().ToggleEligibility(src.ID, true, nil) })
			if err := os.WriteFile(filepath.Join(polDir, "p.hcl"), []byte(fmt.Sprintf(`shaping "source" {
  locality {
    datacenter = %q
  }
}
shaping "target" {
  locality {
    datacenter = %q
  }
  reserve {
    enabled    = true
    priority   = 10
    lead_time  = "15m"
    ttl        = "1h"
    max_cpu    = 1000
    max_memory = 1024
  }
}
`, from, to)), 0o644); err != nil {
				t.Fatal(err)
			}
			httpPort, raftPort := freePort(t), freePort(t)
			spec := fmt.Sprintf(identityJob, jobID, tc.address, dst.Datacenter, dst.ID, binary, raftPort, httpPort, polDir, tc.identity, tc.file,
				realnomad.NomadTLS(tc.address, "            "))
			job, err := setup.Jobs().ParseHCL(spec, true)
			if err != nil {
				t.Fatalf("parse the job: %v\n%s", err, spec)
			}
			if _, _, err := setup.Jobs().Register(job, nil); err != nil {
				t.Fatalf("register %s: %v", jobID, err)
			}
			started := time.Now()
			var agentAlloc *nomadapi.AllocationListStub
			t.Cleanup(func() {
				if t.Failed() && agentAlloc != nil {
					t.Logf("the agent's log:\n%s", tail(allocLog(setup, agentAlloc.ID), 60))
				}
				_, _, _ = setup.Jobs().Deregister(jobID, true, nil)
				reapAll(t, setup, "")
			})
			agentAlloc = waitRunning(t, setup, jobID, "")
			agentURL := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
			waitHTTP(t, agentURL+"/v1/health", 60*time.Second)
			c := &api.Client{Address: agentURL}
			ctx := context.Background()

			until := func(d time.Duration, what string, cond func() bool) {
				t.Helper()
				for deadline := time.Now().Add(d); !cond(); time.Sleep(time.Second) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: not within %s", what, d)
					}
				}
			}
			nodeCPU, dcCPU := "node/"+src.ID+":cpu", src.Datacenter+":cpu"
			until(90*time.Second, "the node's and the locality's series collected", func() bool {
				all, err := c.Series(ctx)
				if err != nil {
					return false
				}
				got := map[string]bool{}
				for _, s := range all {
					got[s.Series] = s.Points > 0 && !s.Stale
				}
				return got[nodeCPU] && got[dcCPU]
			})
			collected := time.Since(started)
			var st api.Status
			until(30*time.Second, "a cycle's result", func() bool {
				st, err = c.Status(ctx)
				return err == nil && st.LastCycle != nil
			})
			if st.LastCycle.Error != "" || st.NotActing != "" {
				t.Errorf("the last cycle's error %q, not acting %q; want none", st.LastCycle.Error, st.NotActing)
			}

			// The act half: a whole node's move with a placeholder, the
			// node out of scheduling meanwhile.
			target := policies.Locality{Datacenter: to}.String()
			id, err := c.Submit(ctx, api.Submission{Node: src.ID, Target: target, Reason: "workload identity e2e"})
			if err != nil {
				t.Fatalf("queue submit: %v", err)
			}
			var placeholder string
			var r api.MigrationRequest
			cordoned := false
			until(3*time.Minute, "the move done", func() bool {
				if n, _, err := setup.Nodes().Info(src.ID, nil); err == nil && n.SchedulingEligibility == nomadapi.NodeSchedulingIneligible {
					cordoned = true
				}
				if jobs, err := placeholders(setup); err == nil {
					for _, j := range jobs {
						if strings.HasPrefix(j.ID, state.PlaceholderPrefix) && placeholder == "" {
							placeholder = j.ID
						}
					}
				}
				r, err = c.Request(ctx, id)
				return err == nil && state.RequestState(r.State).Terminal()
			})
			if state.RequestState(r.State) != state.RequestDone {
				t.Fatalf("request %s %s: %s", id, r.State, r.Reason)
			}
			if placeholder == "" {
				t.Error("no placeholder job seen while the move ran")
			}
			if !cordoned {
				t.Errorf("%s was never seen out of scheduling (node write) while its work moved", src.Name)
			}
			next := waitRunning(t, setup, sleeper, alloc.ID)
			if next.NodeID != dst.ID {
				t.Errorf("the replacement %s runs on %s; want %s, the only node in scheduling", next.ID[:8], next.NodeName, dst.Name)
			}
			// A whole node an operator asked to empty stays out of
			// scheduling (agent/migrate): the test's clean-up gives it back.
			if n, _, err := setup.Nodes().Info(src.ID, nil); err != nil || n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
				t.Errorf("%s after the move: %v; want it left out of scheduling", src.Name, err)
			}
			until(time.Minute, "the placeholder deregistered", func() bool {
				j, _, err := setup.Jobs().Info(placeholder, nil)
				return err != nil || (j.Stop != nil && *j.Stop) || (j.Status != nil && *j.Status == "dead")
			})
			// After the move (minutes: a named identity's token has been
			// renewed several times and the first has expired), the cycles
			// still succeed.
			// A cycle that starts 90 s after the agent's: past a 20 s
			// token's expiry and the minute's leeway Nomad gives it.
			until(3*time.Minute, "a cycle 90 s after the start", func() bool {
				st, err = c.Status(ctx)
				return err == nil && st.LastCycle != nil && st.LastCycle.Started.After(started.Add(90*time.Second))
			})
			if st.LastCycle.Error != "" || st.NotActing != "" {
				t.Errorf("the cycle at %s: error %q, not acting %q; want none", st.LastCycle.Started.Format(time.TimeOnly), st.LastCycle.Error, st.NotActing)
			}
			log := allocLog(setup, agentAlloc.ID)
			if strings.Contains(log, "Nomad refused") || strings.Contains(log, "Permission denied") {
				t.Errorf("the agent's log shows a refused call:\n%s", tail(log, 40))
			}
			t.Logf("figures: Nomad %s via %s: series collected %.1f s after the job's registration; node %s moved from %s to %s "+
				"(placeholder %s registered and deregistered, the node taken out of scheduling, %s on %s replaced by %s on %s) "+
				"with the workload identity alone",
				addr, tc.name, collected.Seconds(), src.Name, from, to, placeholder, alloc.ID[:8], alloc.NodeName, next.ID[:8], next.NodeName)
		})
	}
}

// allocLog is the agent task's stderr and stdout, as Nomad keeps them.
func allocLog(c *nomadapi.Client, allocID string) string {
	a, _, err := c.Allocations().Info(allocID, nil)
	if err != nil {
		return err.Error()
	}
	var out strings.Builder
	for _, f := range []string{"alloc/logs/agent.stderr.0", "alloc/logs/agent.stdout.0"} {
		rc, err := c.AllocFS().Cat(a, f, nil)
		if err != nil {
			fmt.Fprintf(&out, "%s: %v\n", f, err)
			continue
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		out.Write(b)
	}
	return out.String()
}
