package ui

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
)

// indexedQueue is an act backend that tells its queue's index without
// building the queue, as the agent's does; it counts the queues built.
type indexedQueue struct {
	*apitest.Act
	index  atomic.Uint64
	queues atomic.Int64
}

func (q *indexedQueue) QueueIndex(context.Context) (uint64, error) { return q.index.Load(), nil }

func (q *indexedQueue) Queue(ctx context.Context) (api.Queue, error) {
	q.queues.Add(1)
	return q.Act.Queue(ctx)
}

// TestVersionReadsTheQueueIndex: the version an event stream polls
// changes with the queue's index, read through QueueIndex where the act
// backend has it (the agent's: 15 ns where building a queue of 3,000
// requests took 2.5 ms and 2.9 MB, BenchmarkDashboardQueueIndex), without
// building the queue.
func TestVersionReadsTheQueueIndex(t *testing.T) {
	act := &indexedQueue{Act: apitest.New()}
	act.index.Store(4)
	h, err := New(&fakeBackend{cycle: t0}, Options{Act: act})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := h.version(ctx)
	if again := h.version(ctx); again != before {
		t.Fatalf("version %q then %q with nothing changed", before, again)
	}
	act.index.Store(5)
	if after := h.version(ctx); after == before {
		t.Errorf("version %q after the queue's index moved from 4 to 5; want it changed", after)
	}
	if n := act.queues.Load(); n != 0 {
		t.Errorf("%d queues built for the version; want none", n)
	}
}
