package sim_test

import (
	"testing"

	"github.com/hashicorp/nomad/api"
)

// TestFidelityWildcardJobList: a job list in namespace "*" (every
// namespace), with a prefix and meta=true, holds the jobs of namespace
// default with their namespace and meta, as foreshape's reaper reads
// them to find placeholders left in another namespace than its own.
// Measured on Nomad 2.0.6: a token that may list jobs in some namespaces
// only is answered with theirs (and one that may list none with 403).
func TestFidelityWildcardJobList(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("wildcard")
		j := sleepJob(id, 1, 50, 32, 50)
		j.Meta = map[string]string{"foreshape.owner": "fidelity"}
		c.register(t, j)
		jobs, _, err := c.client.Jobs().List(&api.QueryOptions{Namespace: "*", Prefix: id, Params: map[string]string{"meta": "true"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 {
			t.Fatalf("jobs in namespace * with prefix %s: %d, want 1", id, len(jobs))
		}
		if s := jobs[0]; s.ID != id || s.Namespace != api.DefaultNamespace || s.Meta["foreshape.owner"] != "fidelity" {
			t.Errorf("job %s listed in namespace * as %s in namespace %q, meta %v", id, s.ID, s.Namespace, s.Meta)
		}
	})
}
