package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/policies"
)

// TestPolicyLocalityWithoutNodesIsLoggedOnce: a policy whose locality no
// ready Nomad node is in (a datacenter spelt wrong), which neither the
// start checks nor policy validate can tell as they never ask Nomad, is
// logged by the leader as a warning naming the policy, the locality and
// the datacenters the ready nodes are in, once, not at every cycle.
func TestPolicyLocalityWithoutNodesIsLoggedOnce(t *testing.T) {
	t.Parallel()
	typo, diags := policies.Parse("typo.hcl", []byte("shaping \"typo\" {\n  locality {\n    datacenter = \"dc9\"\n  }\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	logs := &syncbuf.Buffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: logs})
	_, _, c := startDevAgent(t, 600, Options{Logger: log, Policies: append(devPolicies(t), typo...)})
	ctx := context.Background()
	const line = `no ready Nomad node is in a policy's locality; its series get no samples: policy=typo locality=dc9 datacenters="dc1,dc2,dc3"`
	var cycles []time.Time
	eventually(t, 60*time.Second, "three cycles", func() bool {
		st, err := c.Status(ctx)
		if err == nil && st.LastCycle != nil && (len(cycles) == 0 || !st.LastCycle.Started.Equal(cycles[len(cycles)-1])) {
			cycles = append(cycles, st.LastCycle.Started)
		}
		return len(cycles) >= 3
	})
	if n := strings.Count(logs.String(), line); n != 1 {
		t.Errorf("%d lines %q in the log after %d cycles, want 1:\n%s", n, line, len(cycles), logs.String())
	}
}
