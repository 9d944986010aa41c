package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/api"
)

// TestFromLeaderKeepsTheStatus: a follower passing on the leader's answer
// to a forwarded request answers with the leader's status: a 502 (Nomad
// refused the agent's token a call) stays a 502, and the message is the
// leader's, without the sentinel's words twice.
func TestFromLeaderKeepsTheStatus(t *testing.T) {
	for _, tc := range []struct {
		code int
		kind error
	}{
		{400, api.ErrInvalid},
		{404, api.ErrNotFound},
		{409, api.ErrConflict},
		{429, api.ErrQueueFull},
		{502, api.ErrNomadRefused},
		{500, api.ErrUnavailable},
	} {
		const msg = "migrate: nodes index: Unexpected response code: 403 (Permission denied; Nomad refused GET /v1/nodes ...)"
		err := fromLeader(&api.StatusError{Code: tc.code, Message: msg})
		if !errors.Is(err, tc.kind) {
			t.Errorf("the leader's %d: %v; want it to wrap %v", tc.code, err, tc.kind)
		}
		if tc.code != 500 && api.ErrorMessage(err) != msg {
			t.Errorf("the leader's %d: the follower says %q; want %q", tc.code, api.ErrorMessage(err), msg)
		}
	}
}

// TestLeaderViewOutlivesItsCaller: a follower reads the leader's cycle for
// every caller in the next second or cycle, so the read is not the first
// caller's to cancel: a caller that went away (a scrape's timeout, an
// operator's Ctrl-C, a page left) made every read of the forecasts,
// hotspots and anomalies on that server a 503 "context canceled" for a
// second.
func TestLeaderViewOutlivesItsCaller(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	t.Parallel()
	tc := newTestCluster(t, 60)
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	follower := tc.servers[(l+1)%3].a
	ctx := context.Background()
	eventually(t, 30*time.Second, "the follower reads the leader's cycle", func() bool {
		follower.leaderCache.mu.Lock()
		follower.leaderCache.view = nil
		follower.leaderCache.mu.Unlock()
		v, ok := follower.fromLeader(ctx)
		return ok && v.err == nil
	})
	follower.leaderCache.mu.Lock()
	follower.leaderCache.view = nil
	follower.leaderCache.mu.Unlock()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	// The caller that went away is answered at once (its context's error,
	// or the cycle if the fetch was that quick); the fetch goes on.
	if v, ok := follower.fromLeader(gone); !ok || (v.err != nil && !errors.Is(v.err, context.Canceled)) {
		t.Errorf("the read for a caller that went away: ok %v, %v; want the leader's cycle or its own context's end", ok, v.err)
	}
	if v, ok := follower.fromLeader(ctx); !ok || v.err != nil {
		t.Errorf("the next caller's read: ok %v, %v; want the leader's cycle", ok, v.err)
	}
}

// TestFollowerReadersDoNotWaitOnASlowLeader: a follower's readers did
// queue behind one fetch of the leader's cycle, every one of them for as
// long as the leader took to answer (up to 10 s). Now one fetch runs for
// all; a reader with the last good view answers with it after
// staleViewWait, one without answers when its own context ends, and the
// fetch, once it ends, serves the readers after it.
func TestFollowerReadersDoNotWaitOnASlowLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	t.Parallel()
	tc := newTestCluster(t, 60)
	for i := range 3 {
		tc.start(i)
	}
	f := tc.servers[(tc.leader()+1)%3].a
	c := &f.leaderCache
	expire := func() {
		c.mu.Lock()
		if c.view != nil {
			c.view.fetched = time.Now().Add(-time.Hour)
		}
		c.mu.Unlock()
	}
	ctx := context.Background()
	var good *leaderView
	eventually(t, 30*time.Second, "the follower reads the leader's cycle", func() bool {
		expire()
		v, ok := f.fromLeader(ctx)
		if ok && v.err == nil {
			good = v
			return true
		}
		return false
	})

	// The leader stops answering: the fetch waits until released.
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var fetches atomic.Int32
	c.mu.Lock()
	c.fetch = func(ctx context.Context, v *leaderView) error {
		fetches.Add(1)
		select {
		case <-release:
			v.forecasts, v.hotspots, v.anomalies = good.forecasts, good.hotspots, good.anomalies
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Unlock()
	expire()

	const readers = 20
	answers := make(chan *leaderView, readers)
	for range readers {
		go func() {
			v, _ := f.fromLeader(ctx)
			answers <- v
		}()
	}
	timeout := time.After(10 * time.Second)
	for i := range readers {
		select {
		case v := <-answers:
			if v != good {
				t.Errorf("reader %d: %+v; want the last good view while the leader does not answer", i, v)
			}
		case <-timeout:
			t.Fatalf("%d of %d readers still wait on a leader that does not answer after 10s", readers-i, readers)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches of the leader's cycle for %d readers; want 1", n, readers)
	}

	// Without a good view, a reader waits for the fetch only as long as
	// its own context.
	c.mu.Lock()
	c.view = &leaderView{fetched: time.Now().Add(-time.Hour), err: errors.New("the last read failed")}
	c.mu.Unlock()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	done := make(chan *leaderView, 1)
	go func() {
		v, _ := f.fromLeader(short)
		done <- v
	}()
	select {
	case v := <-done:
		if !errors.Is(v.err, context.DeadlineExceeded) {
			t.Errorf("a reader without a good view whose context ended: %v; want its context's end", v.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a reader without a good view still waits after its context ended")
	}

	// The leader answers: the readers after the fetch get its answer.
	releaseOnce.Do(func() { close(release) })
	eventually(t, 10*time.Second, "a reader gets the fetch's answer", func() bool {
		v, ok := f.fromLeader(ctx)
		return ok && v.err == nil && v != good
	})
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches; want the one the readers shared", n)
	}
}

// TestFollowerKeepsTheLastGoodViewAWhile: a follower whose read of the
// leader's cycle failed once answered 503 until a read worked, and its
// error named neither the leader nor how old its last good read was. Now
// it answers with the last good read (forecasts carry their age) while
// that is under staleViewMax old and a leader is known; after that, or
// when no leader is known, the 503 says how old the last good read is.
func TestFollowerKeepsTheLastGoodViewAWhile(t *testing.T) {
	a := &Agent{log: hclog.NewNullLogger()}
	c := &a.leaderCache
	refresh := func(err error) *leaderView {
		t.Helper()
		done := make(chan struct{})
		c.wg.Add(1)
		a.refreshLeaderView(context.Background(), func(_ context.Context, v *leaderView) error {
			if err == nil {
				v.forecasts = []api.Forecast{{Policy: "web", Series: "dc1/cpu"}}
			}
			return err
		}, done)
		<-done
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.view
	}
	good := refresh(nil)
	if good.err != nil || good.read.IsZero() || len(good.forecasts) != 1 {
		t.Fatalf("a read that worked: %+v", good)
	}
	slow := errors.New("the leader at 10.0.0.1:4747: context deadline exceeded")
	v := refresh(slow)
	if v.err != nil || !errors.Is(v.failing, slow) || len(v.forecasts) != 1 || !v.read.Equal(good.read) {
		t.Errorf("a failed read a moment after a good one: err %v, failing %v, %d forecasts, read %v; want the good read kept, marked failing",
			v.err, v.failing, len(v.forecasts), v.read)
	}
	if ttl := leaderViewTTL(time.Minute, v.err != nil || v.failing != nil); ttl != time.Second {
		t.Errorf("a kept view lives %v before the next read; want a second", ttl)
	}

	// Older than staleViewMax: no content, and the error says how old.
	c.mu.Lock()
	c.view.read = time.Now().Add(-staleViewMax - 10*time.Second)
	c.mu.Unlock()
	v = refresh(slow)
	if v.forecasts != nil || !errors.Is(v.err, slow) || !strings.Contains(v.err.Error(), "(the last good read of it is 2m10s old)") {
		t.Errorf("a failed read after a good one %v old: %d forecasts, %v; want none and the age", staleViewMax+10*time.Second, len(v.forecasts), v.err)
	}

	// No leader known: a 503 at once, with the age.
	refresh(nil)
	v = refresh(errNoLeaderKnown)
	if v.forecasts != nil || !errors.Is(v.err, errNoLeaderKnown) || !strings.Contains(v.err.Error(), "(the last good read of it is 0s old)") {
		t.Errorf("no leader known a moment after a good read: %d forecasts, %v; want none and the age", len(v.forecasts), v.err)
	}
	// Never read: the error alone.
	if v := keptView(nil, slow, time.Now()); v.err != slow || v.forecasts != nil {
		t.Errorf("a failed first read: %+v", v)
	}
}
