package command

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// indexAgent answers /v1/queue as an agent whose queue is at index with
// requests. A blocking query for an index it has not passed waits, as an
// agent's does, until the queue changes past it, the agent stops or the
// client goes.
type indexAgent struct {
	mu       sync.Mutex
	index    uint64
	requests []api.MigrationRequest
	changed  chan struct{} // closed at each change
	// waiting is signalled each time a blocking query starts waiting.
	waiting chan struct{}
	// stopping answers every query at once, as a stopping agent does
	// (api.Server.EndBlockingQueries).
	stopping bool
	// lower answers a blocking query for an index past this agent's at
	// once, with its own (as another agent behind one address might).
	lower bool
	// paused is the queue's pause, and pausedBy who or what paused it.
	paused   bool
	pausedBy string
	// restores counts the snapshot restores (restore): each answers the
	// queries waiting, as an agent's does.
	restores int
}

func newIndexAgent(index uint64, ids ...string) *indexAgent {
	a := &indexAgent{waiting: make(chan struct{}, 16)}
	a.set(index, ids...)
	return a
}

// change changes a under its lock and wakes the queries waiting.
func (a *indexAgent) change(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f()
	if a.changed != nil {
		close(a.changed)
	}
	a.changed = make(chan struct{})
}

func (a *indexAgent) set(index uint64, ids ...string) {
	a.change(func() {
		a.index, a.requests = index, nil
		for _, id := range ids {
			a.requests = append(a.requests, api.MigrationRequest{ID: id, State: api.StatePending, Resource: "node/" + id,
				Source: "dc1", Target: "dc2", Priority: 50})
		}
	})
}

func (a *indexAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	asked, err := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	blocking := err == nil
	a.mu.Lock()
	restores := a.restores
	a.mu.Unlock()
	for {
		a.mu.Lock()
		if !blocking || asked < a.index || a.lower || a.stopping || a.restores != restores {
			w.Header().Set(api.IndexHeader, strconv.FormatUint(a.index, 10))
			q := api.Queue{Requests: a.requests, Index: a.index, Paused: a.paused, PausedBy: a.pausedBy}
			a.mu.Unlock()
			_ = json.NewEncoder(w).Encode(q)
			return
		}
		changed := a.changed
		a.mu.Unlock()
		select {
		case a.waiting <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		}
	}
}

// restore replaces a's state as a snapshot restore does, with the queue
// paused and the index set to index, and answers the queries waiting.
func (a *indexAgent) restore(index uint64) {
	a.change(func() {
		a.index, a.paused, a.pausedBy = index, true, "snapshot restore"
		a.restores++
	})
}

// pause pauses a's queue at index, by who.
func (a *indexAgent) pause(index uint64, by string) {
	a.change(func() { a.index, a.paused, a.pausedBy = index, true, by })
}

// serveIndexAgent serves a at addr ("" for any port) until the test ends,
// when it stops a and then its server, so that no query holds the
// server's Close.
func serveIndexAgent(t *testing.T, addr string, a *indexAgent) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(a)
	if addr != "" {
		_ = srv.Listener.Close()
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv.Listener = l
	}
	srv.Start()
	t.Cleanup(func() { a.stop(srv) })
	return srv
}

// stop ends a as a stopping agent does: its queries are answered at once,
// then its server closes.
func (a *indexAgent) stop(srv *httptest.Server) {
	a.change(func() { a.stopping = true })
	srv.Close()
}

// awaitWaiting waits until a blocking query waits at a.
func (a *indexAgent) awaitWaiting(t *testing.T) {
	t.Helper()
	select {
	case <-a.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch sent no blocking query")
	}
}

// TestQueueWatchFollowsAnIndexThatWentBack: when the agent comes back
// with a lower index (restarted, or another agent at the address), the
// watch shows its queue at once and says the index went back. After a
// restart it asked the new agent for a change past the old agent's index,
// and showed nothing of the new queue for the whole wait (5 minutes).
func TestQueueWatchFollowsAnIndexThatWentBack(t *testing.T) {
	t.Run("the agent restarted", func(t *testing.T) {
		old := newIndexAgent(100, "mr-1")
		srv := serveIndexAgent(t, "", old)
		addr := srv.Listener.Addr().String()
		out, errb, stop := runWatch(t, false, "-address", srv.URL, "-retry", "10ms")
		waitFor(t, out, "mr-1 pending")
		old.awaitWaiting(t) // the watch waits past 100
		old.stop(srv)
		waitFor(t, errb, "connection refused")
		// The agent comes back at the address, its queue at index 3.
		serveIndexAgent(t, addr, newIndexAgent(3, "mr-9"))
		waitFor(t, out, "mr-9 pending node/mr-9")
		waitFor(t, out, "mr-1 no longer listed")
		waitFor(t, errb, "the queue's index went back from 100 to 3")
		if code := stop(); code != ExitOK {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("a lower index answered", func(t *testing.T) {
		a := newIndexAgent(100, "mr-1")
		srv := serveIndexAgent(t, "", a)
		out, errb, stop := runWatch(t, false, "-address", srv.URL, "-retry", "10ms")
		waitFor(t, out, "mr-1 pending")
		a.awaitWaiting(t)
		a.change(func() { a.lower = true })
		a.set(3, "mr-9")
		waitFor(t, out, "mr-9 pending node/mr-9")
		waitFor(t, out, "mr-1 no longer listed")
		waitFor(t, errb, "the queue's index went back from 100 to 3")
		// And it follows changes from there.
		a.change(func() { a.lower = false })
		a.awaitWaiting(t)
		a.set(4, "mr-9", "mr-10")
		waitFor(t, out, "mr-10 pending node/mr-10")
		if code := stop(); code != ExitOK {
			t.Errorf("exit %d", code)
		}
	})
}

// TestQueueWatchShowsARestoreAtTheSameIndex: a snapshot restore of a
// backup taken with no change since leaves the queue's index where it
// was and pauses the queue; the agent answers the watch's query at that
// index, and the watch shows the pause (and keeps following). It took an
// answer at the index it held for a wait without a change, and showed the
// pause only at the queue's next change.
func TestQueueWatchShowsARestoreAtTheSameIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"lines", nil, "queue paused"},
		{"json", []string{"-json"}, `"paused":true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newIndexAgent(7, "mr-1")
			srv := serveIndexAgent(t, "", a)
			out, errb, stop := runWatch(t, false, append([]string{"-address", srv.URL, "-retry", "10ms"}, tc.args...)...)
			waitFor(t, out, "mr-1")
			a.awaitWaiting(t)
			a.restore(7)
			waitFor(t, out, tc.want)
			a.awaitWaiting(t) // it waits past 7 again
			a.set(8, "mr-1", "mr-2")
			waitFor(t, out, "mr-2")
			if code := stop(); code != ExitOK {
				t.Errorf("exit %d: %s", code, errb.String())
			}
		})
	}
}

// TestQueueWatchShowsARestoreOfAPausedQueue: a pause is shown with who
// paused the queue, and a snapshot restore of a queue an operator had
// paused, which pauses it again under the restore's name, is shown too.
// Lines were printed only when the queue went from running to paused or
// back, so that restore showed nothing of itself.
func TestQueueWatchShowsARestoreOfAPausedQueue(t *testing.T) {
	a := newIndexAgent(7, "mr-1")
	a.pause(7, "operator (token abc)")
	srv := serveIndexAgent(t, "", a)
	out, errb, stop := runWatch(t, false, "-address", srv.URL, "-retry", "10ms")
	waitFor(t, out, "queue paused by operator (token abc)")
	a.awaitWaiting(t)
	a.restore(9)
	waitFor(t, out, "queue paused again by snapshot restore")
	if code := stop(); code != ExitOK {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}
