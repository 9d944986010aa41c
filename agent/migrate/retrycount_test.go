package migrate

import (
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/foreshape/foreshape/agent/state"
)

// TestRetriedNodeMoveCountsWhatItsFirstAttemptMoved: a node move's two
// allocations move one at a time (dc1's max_parallel is 1); the first
// lands, then Nomad refuses the second's stop once, which fails the
// attempt, and the request is retried. The retry moves the second alone
// (the first is no longer on the node), and the done request counts both:
// its reason says it moved 2 allocations and its moves list both, landed
// in dc2 (before: the retry's start read the node's allocations anew and
// kept only the second, so the request said "moved 1 allocation" and its
// moves had lost the first).
func TestRetriedNodeMoveCountsWhatItsFirstAttemptMoved(t *testing.T) {
	var mu sync.Mutex
	var stopped []string
	refused := ""
	h := newHarness(t, actScenario, actPolicies, func(cfg *Config) {
		interpose(t, cfg, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/allocation/") && strings.HasSuffix(r.URL.Path, "/stop") {
				mu.Lock()
				if !slices.Contains(stopped, r.URL.Path) {
					stopped = append(stopped, r.URL.Path)
					if len(stopped) == 2 {
						refused = r.URL.Path
						mu.Unlock()
						http.Error(w, "Permission denied", http.StatusForbidden)
						return
					}
				}
				mu.Unlock()
			}
			rp.ServeHTTP(w, r)
		})
	})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: h.nodeID("a-"), Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.request(id).Moves); n != 2 {
		t.Fatalf("%d moves; the test needs a node with two allocations", n)
	}
	got := h.moveToDone(id)
	mu.Lock()
	defer mu.Unlock()
	if refused == "" || got.Attempts != 1 {
		t.Fatalf("refused stop %q, %d attempts; the test needs the second stop refused and one retry", refused, got.Attempts)
	}
	if got.State != state.RequestDone || !strings.HasPrefix(got.Reason, "moved 2 allocations to dc2") {
		t.Errorf("request %s: %q; want done, moved 2 allocations to dc2", got.State, got.Reason)
	}
	if len(got.Moves) != 2 {
		t.Errorf("%d moves; want both", len(got.Moves))
	}
	for _, m := range got.Moves {
		if !m.Done || m.Landed != "dc2" {
			t.Errorf("move %+v; want done in dc2", m)
		}
	}
	if got.Moved != (state.Resources{CPU: 2000, MemoryMB: 2048}) {
		t.Errorf("moved %s; want both allocations' 2000 MHz / 2048 MiB", got.Moved)
	}
}
