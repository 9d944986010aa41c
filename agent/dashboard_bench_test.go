package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// BenchmarkDashboardQueueIndex: what an event stream of the dashboard
// reads of the queue every poll (a second), over a queue of 3,000
// requests and a full decision log: the queue's index alone (QueueIndex),
// against the whole queue it was read from before (Queue).
func BenchmarkDashboardQueueIndex(b *testing.B) {
	l, err := state.NewLocal(state.Config{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)
	for i := range 3000 {
		alloc := fmt.Sprintf("alloc-%04d", i)
		r := state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceAllocation, ID: alloc, Job: "web", Group: "frontend", Namespace: "default"},
			Source: "dc1", Target: "dc2", Strategy: "reschedule", Origin: "operator", Reason: "requested by an operator",
			Moves: []state.Move{{Alloc: alloc, Job: "web", Group: "frontend", Node: "n1"}}, Created: t0}
		if _, err := l.Apply(ctx, state.SubmitRequest{Request: r}); err != nil {
			b.Fatal(err)
		}
	}
	ds := make([]state.Decision, state.MaxDecisions)
	for i := range ds {
		ds[i] = state.Decision{Time: t0, Kind: "submit", Reason: "queue alloc-0001 from dc1 to dc2: submitted by an operator"}
	}
	if _, err := l.Apply(ctx, state.AppendDecisions{Decisions: ds}); err != nil {
		b.Fatal(err)
	}
	x := &actor{a: &Agent{fsm: l.FSM}}
	b.Run("QueueIndex", func(b *testing.B) {
		for b.Loop() {
			if _, err := x.QueueIndex(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Queue", func(b *testing.B) {
		for b.Loop() {
			if _, err := x.Queue(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
