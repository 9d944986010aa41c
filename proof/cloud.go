package proof

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync"

	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// cloudURL is where controllers send scale actions: the webhook target's
// URL in foreshape's policies, and the reactive autoscaler's endpoint.
const cloudURL = "http://cloud.proof/scale"

// cloud is the capacity provider every controller scales through, as a
// cloud's instance groups sit behind a cluster autoscaler: it takes a scale
// target's webhook payload (target.Payload) on POST /scale and adds nodes to
// the payload's locality with the simulator's PUT /v1/sim/nodes, shaped like
// the first node group the scenario declares there, at most MaxScaleOut of
// the locality's declared nodes in all. Scaling down is refused: the
// simulator cannot remove a node.
type cloud struct {
	sim    http.Handler
	groups map[string]string // datacenter → node group to clone
	limit  map[string]int    // datacenter → nodes it may add

	mu    sync.Mutex
	added map[string]int
}

func newCloud(sc *sim.Scenario, simHandler http.Handler, p Params) *cloud {
	c := &cloud{sim: simHandler, groups: map[string]string{}, limit: map[string]int{}, added: map[string]int{}}
	declared := map[string]int{}
	for _, g := range sc.NodeGroups {
		if _, ok := c.groups[g.Datacenter]; !ok {
			c.groups[g.Datacenter] = g.Name
		}
		declared[g.Datacenter] += g.Count
	}
	for dc, n := range declared {
		c.limit[dc] = int(math.Ceil(float64(n) * p.MaxScaleOut))
	}
	return c
}

func (c *cloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/scale" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var p target.Payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, "bad payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	loc, err := policies.ParseLocality(p.Locality)
	if err != nil || loc.Datacenter == "" {
		http.Error(w, fmt.Sprintf("locality %q names no datacenter", p.Locality), http.StatusBadRequest)
		return
	}
	group, ok := c.groups[loc.Datacenter]
	if !ok {
		http.Error(w, fmt.Sprintf("no node group in datacenter %q", loc.Datacenter), http.StatusBadRequest)
		return
	}
	if p.Direction != target.Up {
		http.Error(w, "scaling down is not supported: the simulator cannot remove nodes", http.StatusConflict)
		return
	}
	c.mu.Lock()
	n := min(p.Amount, c.limit[loc.Datacenter]-c.added[loc.Datacenter])
	if n <= 0 || p.Amount <= 0 {
		c.mu.Unlock()
		http.Error(w, fmt.Sprintf("datacenter %q has no capacity left to add", loc.Datacenter), http.StatusConflict)
		return
	}
	c.added[loc.Datacenter] += n
	c.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"Group": group, "Count": n})
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPut, "/v1/sim/nodes", bytes.NewReader(body))
	rec := &responseBuffer{header: http.Header{}}
	c.sim.ServeHTTP(rec, req)
	if rec.code >= 300 {
		c.mu.Lock()
		c.added[loc.Datacenter] -= n
		c.mu.Unlock()
		http.Error(w, "add nodes: "+rec.body.String(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"added": n, "group": group})
}

// responseBuffer is a minimal http.ResponseWriter that keeps the answer.
type responseBuffer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *responseBuffer) Header() http.Header { return b.header }
func (b *responseBuffer) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *responseBuffer) WriteHeader(code int) { b.code = code }
