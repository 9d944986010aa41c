package migrate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// calledOffQueue is a queue of n drain window requests, perWindow to a
// window, each of a node of its own: every window called off, every
// request cancelled by an operator before it started, the case in which
// operatorCancelled reads the whole queue for each request it is asked
// about (no request of the window ends the scan early).
func calledOffQueue(n, perWindow int) state.ActView {
	start := time.Date(2026, 1, 5, 6, 30, 0, 0, time.UTC)
	var view state.ActView
	for i := range n {
		w := i / perWindow
		view.Requests = append(view.Requests, state.MigrationRequest{
			ID:       fmt.Sprintf("mr-%d", i+1),
			Resource: state.Resource{Kind: state.ResourceNode, ID: fmt.Sprintf("node-%d", i)},
			Source:   "dc1", Target: "dc2", Policy: "dc1", Origin: "schedule",
			OriginKey: fmt.Sprintf("schedule/dc1/maintenance-%d/%d/node/node-%d", w, start.Unix(), i),
			Deadline:  start, State: state.RequestCancelled, Reason: OperatorCancel,
			Created: start.Add(-20 * time.Minute), Finished: start.Add(-15 * time.Minute),
		})
	}
	return view
}

// BenchmarkCalledOffPerOwedNode measures what one pass of the give-backs
// asks of a queue of 10,000 requests with 1,000 nodes owed back: one
// operatorCancelled (owedBack, restoreWindows) and one windowCalledOff
// (windowHold) per owed node, on a copy of the queue as each pass reads.
func BenchmarkCalledOffPerOwedNode(b *testing.B) {
	for _, tc := range []struct{ requests, owed, perWindow int }{
		{10_000, 1_000, 10},
		{10_000, 1_000, 1_000},
	} {
		b.Run(fmt.Sprintf("requests=%d/owed=%d/per_window=%d", tc.requests, tc.owed, tc.perWindow), func(b *testing.B) {
			view := calledOffQueue(tc.requests, tc.perWindow)
			c := &Coordinator{}
			for b.Loop() {
				// A pass reads the queue afresh (state.Reader.Act, a copy).
				view := view
				view.Requests = slices.Clone(view.Requests)
				for i := range tc.owed {
					r := view.Requests[i*tc.requests/tc.owed]
					if !c.operatorCancelled(view, r) || !c.windowCalledOff(view, windowKey(r)) {
						b.Fatalf("%s not read as called off", r.ID)
					}
				}
			}
		})
	}
}
