package migrate

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

// TestDoneReason: a finished request's reason says how many allocations
// went to the target, and when Nomad placed some elsewhere it no longer
// says they all moved to the target.
func TestDoneReason(t *testing.T) {
	moves := func(n int) []state.Move { return make([]state.Move, n) }
	node := state.Resource{Kind: state.ResourceNode, ID: "n1", Name: "dc1-3"}
	for _, tc := range []struct {
		name      string
		r         state.MigrationRequest
		misplaced []string
		notMoved  []string
		want      string
	}{
		{"nothing to move", state.MigrationRequest{Resource: node, Target: "dc1/*/web"}, nil, nil,
			"node dc1-3 held nothing to move; done in 1m5s"},
		{"one", state.MigrationRequest{Resource: node, Target: "dc1/*/web", Moves: moves(1), Estimated: time.Minute}, nil, nil,
			"moved 1 allocation to dc1/*/web in 1m5s (estimated 1m0s)"},
		{"all as planned", state.MigrationRequest{Resource: node, Target: "dc1/*/web", Moves: moves(9), Estimated: 2 * time.Minute}, nil, nil,
			"moved 9 allocations to dc1/*/web in 1m5s (estimated 2m0s)"},
		{"some elsewhere", state.MigrationRequest{Resource: node, Target: "dc1/*/web", Moves: moves(9), Estimated: 2 * time.Minute},
			[]string{"a1: landed in dc2/*/web, outside the target dc1/*/web", "a2: landed in dc2/*/web, outside the target dc1/*/web"},
			nil, "moved 9 allocations in 1m5s (estimated 2m0s): 7 to dc1/*/web as planned, 2 not (a1: landed in dc2/*/web, outside the target dc1/*/web; a2: landed in dc2/*/web, outside the target dc1/*/web)"},
		{"none as planned", state.MigrationRequest{Resource: node, Target: "dc1/*/web", Moves: moves(1)},
			[]string{"a1: landed in dc1/*/web-old, outside the target dc1/*/web"},
			nil, "moved 1 allocation in 1m5s (estimated 0s): 0 to dc1/*/web as planned, 1 not (a1: landed in dc1/*/web-old, outside the target dc1/*/web)"},
		{"job ended", state.MigrationRequest{Resource: node, Target: "dc1/*/web", Moves: moves(3), Estimated: time.Minute}, nil,
			[]string{"job a was stopped while the request ran", "job a was stopped while the request ran"},
			"moved 1 allocation to dc1/*/web in 1m5s (estimated 1m0s); 2 allocations not moved (job a was stopped while the request ran)"},
		{"nothing moved", state.MigrationRequest{Resource: node, Target: "dc1/*/web", Moves: moves(2), Estimated: time.Minute}, nil,
			[]string{"job a was purged while the request ran", "job b was stopped while the request ran"},
			"moved nothing in 1m5s (estimated 1m0s); 2 allocations not moved (job a was purged while the request ran; job b was stopped while the request ran)"},
		{"elsewhere and ended", state.MigrationRequest{Resource: node, Target: "dc1/*/web", Moves: moves(3), Estimated: time.Minute},
			[]string{"a1: landed in dc2/*/web, outside the target dc1/*/web"}, []string{"job a was stopped while the request ran"},
			"moved 2 allocations in 1m5s (estimated 1m0s): 1 to dc1/*/web as planned, 1 not (a1: landed in dc2/*/web, outside the target dc1/*/web); 1 allocation not moved (job a was stopped while the request ran)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := doneReason(tc.r, 65*time.Second+300*time.Millisecond, tc.misplaced, tc.notMoved); got != tc.want {
				t.Errorf("doneReason:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// An allocation moved to a target nothing steers it into (the target's
// policy holds no room, the strategy is reschedule) may land back where
// the job prefers: the request ends done, its reason names the
// allocation that landed outside the target, and the log warns.
func TestUnsteeredMoveWarns(t *testing.T) {
	// dc2's policy without its reserve block.
	pols := regexp.MustCompile(`(?s)\n  reserve \{.*?\n  \}`).ReplaceAllString(actPolicies, "")
	if pols == actPolicies {
		t.Fatal("dc2's reserve block not found in actPolicies")
	}
	logs := &syncbuf.Buffer{}
	h := newHarness(t, actScenario, pols, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: logs})
	})
	var alloc string
	for _, a := range h.allocs("web") {
		if a.ClientStatus == "running" {
			alloc = a.ID
			break
		}
	}
	if alloc == "" {
		t.Fatal("no running web allocation")
	}
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: alloc, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		h.run(h.flatForecasts(30))
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
		if h.request(id).State == state.RequestDone {
			break
		}
		h.step(30 * time.Second)
	}
	r := h.request(id)
	if r.State != state.RequestDone || !strings.Contains(r.Reason, "outside the target dc2") {
		t.Fatalf("request %s: %q; want done with its replacement outside dc2", r.State, r.Reason)
	}
	if !strings.Contains(logs.String(), "move done, not all as planned: request="+id) {
		t.Errorf("no warning in the log:\n%s", logs)
	}
}
