package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/internal/failing"
)

// forwardedHeader marks a request one server passed on to another, naming
// the server that passed it; a request carrying it is never passed on
// again.
const forwardedHeader = "X-Foreshape-Forwarded-By"

// notLeaderHeader marks a server's 503 to a request another agent
// forwarded to it as its leader when it does not lead (leadership moved):
// the server did nothing with the request, so the forwarding agent may
// find the leader and send it there.
const notLeaderHeader = "X-Foreshape-Not-Leader"

// knownLeaderHeader says, on a read a server answers from its own copy of
// the replicated state, whether it knows a leader ("true"/"false"): one
// that knows none may be behind, and the CLI warns of it.
const knownLeaderHeader = api.KnownLeaderHeader

// raftIndexHeader carries, on the leader's answer to a request another
// server forwarded, how far the leader's state had applied the log when it
// answered. The forwarding server relays the answer once its own state has
// applied as far, so that an operator who changes something through a
// follower and then reads from it sees the change.
const raftIndexHeader = "X-Foreshape-Raft-Index"

// forwardWait bounds how long a follower holds a forwarded answer while its
// state catches up with the leader's; after it the answer is relayed
// anyway (a follower that far behind answers reads from an older state).
const forwardWait = 5 * time.Second

// catchUpWait is forwardWait, or the shorter wait a test set
// (Options.forwardWait).
func (a *Agent) catchUpWait() time.Duration {
	if a.opts.forwardWait > 0 {
		return a.opts.forwardWait
	}
	return forwardWait
}

// forwardWrites passes API requests that change the cluster (every method
// but GET and HEAD under /v1/) to the leader when this server does not
// lead, and relays the answer once this server's state has caught up with
// it. Reads stay local: every server holds the replicated state; only the
// leader's last cycle (forecasts, hotspots, anomalies) comes from the
// leader, and a follower that cannot read it says so (503) rather than
// answer that nothing is forecast.
func (a *Agent) forwardWrites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		switch {
		case !strings.HasPrefix(r.URL.Path, "/v1/"):
			next.ServeHTTP(w, r)
			return
		case read && leaderCyclePath(r.URL.Path):
			if v, ok := a.fromLeader(r.Context()); ok && v.err != nil {
				writeAPIError(w, http.StatusServiceUnavailable, "this server does not lead and cannot read the leader's last cycle: "+v.err.Error())
				return
			}
			next.ServeHTTP(w, r)
			return
		case read:
			if id, ok := queueRequestID(r.URL.Path); ok && !a.node.IsLeader() {
				if _, held := a.fsm.Request(id); !held {
					a.askLeaderFor(w, r, id)
					return
				}
			}
			// Every server answers these from its own copy of the state;
			// without a leader that copy may be behind, and the header
			// says so (the CLI warns), as Nomad's X-Nomad-KnownLeader.
			// Set as the answer starts: a blocking query's answer says
			// what the server knew when it answered, not when asked. A
			// read another server forwarded (askLeaderFor) also carries
			// how far this state had applied the log.
			forwarded := r.Header.Get(forwardedHeader) != ""
			next.ServeHTTP(&startWriter{ResponseWriter: w, start: func(h http.Header) {
				addr, _ := a.node.LeaderAddress()
				h.Set(knownLeaderHeader, strconv.FormatBool(addr != ""))
				if forwarded {
					h.Set(raftIndexHeader, strconv.FormatUint(a.fsm.AppliedIndex(), 10))
				}
			}}, r)
			return
		case a.node.IsLeader():
			if r.Header.Get(forwardedHeader) != "" {
				w = &startWriter{ResponseWriter: w, start: func(h http.Header) {
					h.Set(raftIndexHeader, strconv.FormatUint(a.fsm.AppliedIndex(), 10))
				}}
			}
			next.ServeHTTP(w, r)
			return
		}
		if by := r.Header.Get(forwardedHeader); by != "" {
			notLeadingEither(w, by)
			return
		}
		addr, err := a.leaderHTTP(r.Context())
		if err != nil {
			msg := "this server does not lead and cannot forward the request: " + err.Error()
			if derr := a.node.DataDirError(); derr != nil {
				// A lone server with a full disk stands for election
				// and steps down again: the disk is the cause.
				msg += "; " + derr.Error()
			}
			writeAPIError(w, http.StatusServiceUnavailable, msg)
			return
		}
		if api.IsSnapshotUpload(r) {
			// Passed on as it arrives, for as long as the leader reads it.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(api.SnapshotReadTimeout))
		}
		a.forwardTo(addr, "").ServeHTTP(w, r)
	})
}

// notLeadingEither answers a request another server (by) forwarded here
// as to the leader, which this server is not: 503, never forwarded again.
func notLeadingEither(w http.ResponseWriter, by string) {
	w.Header().Set(notLeaderHeader, "true")
	writeAPIError(w, http.StatusServiceUnavailable, fmt.Sprintf("%s forwarded this request here, but this server does not lead either (leadership is moving); retry", by))
}

// queueRequestID returns the ID of a GET /v1/queue/{id} path.
func queueRequestID(path string) (string, bool) {
	id, ok := strings.CutPrefix(path, "/v1/queue/")
	if !ok || id == "" || strings.Contains(id, "/") || id == "pause" || id == "resume" {
		return "", false
	}
	return id, true
}

// askLeaderFor answers, on a server that does not lead, a read of the
// request id that its own copy of the state does not hold. That copy may
// be behind the leader's: a request submitted a moment ago through another
// server is in the leader's state before it is in this one's, and a 404
// would say it does not exist. So the leader is asked, and its answer (the
// request, or its own 404) relayed once this server's state has applied
// as far as the leader's had, as a forwarded write's answer is. Without a
// leader to ask, the answer is a 404 that says this copy may be behind.
func (a *Agent) askLeaderFor(w http.ResponseWriter, r *http.Request, id string) {
	if by := r.Header.Get(forwardedHeader); by != "" {
		// Sent here as to the leader, which this server no longer is.
		notLeadingEither(w, by)
		return
	}
	addr, err := a.leaderHTTP(r.Context())
	if err != nil {
		known, _ := a.node.LeaderAddress()
		w.Header().Set(knownLeaderHeader, strconv.FormatBool(known != ""))
		writeAPIError(w, http.StatusNotFound, fmt.Sprintf("no migration request %q in this server's copy of the queue, which may be behind the leader's "+
			"(it has applied the log up to index %d), and it cannot ask the leader: %v", id, a.fsm.AppliedIndex(), err))
		return
	}
	a.forwardTo(addr, fmt.Sprintf(" (this server's copy of the queue has no request %q; it may be behind the leader's)", id)).ServeHTTP(w, r)
}

// forwardTo returns the proxy that passes a request to the leader's API at
// addr (proxyTo, relaying the answer once this server's state has caught
// up). When no answer comes back from the leader, it answers 502
// "forwarding to the leader at ADDR: why" followed by more (a read's
// context), and logs it: a connection it could not make (a dial error)
// sent the leader nothing, but one lost after the request went out
// (EOF, a reset) may have left the leader acting on it.
func (a *Agent) forwardTo(addr, more string) *httputil.ReverseProxy {
	rp := proxyTo(a.peers, addr, a.name, a.fsm.AppliedIndex, a.catchUpWait())
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		msg := fmt.Sprintf("forwarding to the leader at %s: %v%s", addr, err, more)
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr, logKeyError, msg)
		writeAPIError(w, http.StatusBadGateway, msg)
	}
	return rp
}

// leaderCyclePath reports whether a GET of path is answered from the
// leader's last published cycle.
func leaderCyclePath(path string) bool {
	return path == "/v1/forecasts" || strings.HasPrefix(path, "/v1/forecast/") ||
		path == "/v1/hotspots" || path == "/v1/anomalies"
}

// startWriter calls start with the answer's headers as the answer
// starts (its status line), so they say what held then.
type startWriter struct {
	http.ResponseWriter
	start   func(http.Header)
	started bool
}

func (w *startWriter) WriteHeader(code int) {
	if !w.started {
		w.started = true
		w.start(w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *startWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *startWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// proxyTo returns a reverse proxy to the agent API at addr that marks
// what it forwards as forwarded by name. With applied (a server's state's
// applied index), it holds the answer until the state has applied as far
// as the leader's had when it answered (raftIndexHeader), for at most
// wait (forwardWait).
func proxyTo(peers *peerClient, addr, name string, applied func() uint64, wait time.Duration) *httputil.ReverseProxy {
	target, _ := url.Parse(peers.url(addr))
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			// The leader logs who asked, not only this server.
			pr.SetXForwarded()
			pr.Out.Header.Set(forwardedHeader, name)
		},
		Transport: peers.http.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeAPIError(w, http.StatusBadGateway, fmt.Sprintf("forwarding to the leader at %s: %v", addr, err))
		},
	}
	if applied != nil {
		rp.ModifyResponse = func(resp *http.Response) error {
			idx, err := strconv.ParseUint(resp.Header.Get(raftIndexHeader), 10, 64)
			if err != nil {
				return nil // an older leader, or an answer before any state
			}
			waitApplied(resp.Request.Context(), applied, idx, wait)
			return nil
		}
	}
	return rp
}

// waitApplied waits until applied() reaches index, ctx ends or wait
// (forwardWait) has passed.
func waitApplied(ctx context.Context, applied func() uint64, index uint64, wait time.Duration) {
	if applied() >= index {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for applied() < index {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func writeAPIError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.Error{Error: msg})
}

// leaderView is the leader's last published cycle as a follower fetched
// it.
type leaderView struct {
	forecasts []api.Forecast
	hotspots  []api.Hotspot
	anomalies []api.Anomaly
	// fetched is when the last fetch ended, read when the view's content
	// was read from the leader (zero: never).
	fetched, read time.Time
	// err is why the view has no content: the last fetch failed and no
	// content younger than staleViewMax was left to answer with.
	err error
	// failing is why the last fetch failed while the view still answers
	// with content read earlier (younger than staleViewMax).
	failing error
}

// staleViewMax is how long after a follower last read the leader's cycle
// it still answers with that cycle while the leader it knows does not
// answer (lost and not yet noticed by Raft, slow, refusing): the forecasts
// carry their publication time and age. After it, and at once when the
// follower knows no leader (no quorum: nobody forecasts or acts), reads
// are a 503 that names the failure and how old the last good read is.
const staleViewMax = 2 * time.Minute

// leaderCache keeps the leader's view for a follower, fetched at most once
// per cycle interval, by one fetch at a time that no reader waits on for
// long (see fromLeader).
type leaderCache struct {
	mu   sync.Mutex
	view *leaderView
	// fetching is closed when the fetch in flight ends; nil when none runs.
	fetching chan struct{}
	// fetch reads the leader's view; nil is Agent.fetchLeaderView (tests
	// put a leader that does not answer in its place).
	fetch func(context.Context, *leaderView) error
	// ctx bounds the fetches: close ends it and waits for them.
	ctx    context.Context
	cancel context.CancelFunc
	closed bool
	wg     sync.WaitGroup
	// fails are the failed reads, logged as a streak: a reader a second
	// (a dashboard, a scraper) made each a warning.
	fails failing.Streak
}

// staleViewWait is how long a reader holding the last good view of the
// leader's cycle waits for a refresh in flight before it answers with that
// view: a fetch takes milliseconds from a leader that answers, up to
// fetchLeaderView's 10 s from one that does not.
const staleViewWait = time.Second

// fromLeader returns the leader's last cycle when this server does not
// lead (ok), fetching it at most once a cycle. One fetch runs at a time,
// for every reader, and no reader waits on it past its own context: one
// that has the last good view waits at most staleViewWait and then answers
// with that view (its forecasts carry their publication time and age); one
// without waits for the fetch or until its context ends. A fetch that
// fails is logged (once while it fails alike: a failing.Streak) and
// retried after a second; until then readers get the last good view while
// it is younger than staleViewMax and a leader is known, else its error
// (keptView).
func (a *Agent) fromLeader(ctx context.Context) (*leaderView, bool) {
	if a.node == nil {
		return nil, false
	}
	if _, leading := a.node.LeaderContext(); leading || a.node.IsLeader() {
		return nil, false
	}
	c := &a.leaderCache
	c.mu.Lock()
	last := c.view
	if last != nil && time.Since(last.fetched) < leaderViewTTL(a.interval(), last.err != nil || last.failing != nil) {
		c.mu.Unlock()
		return last, true
	}
	if c.closed {
		c.mu.Unlock()
		return &leaderView{fetched: time.Now(), err: errors.New("this server is stopping")}, true
	}
	done := c.fetching
	if done == nil {
		if c.ctx == nil {
			c.ctx, c.cancel = context.WithCancel(context.Background())
		}
		fetch := c.fetch
		if fetch == nil {
			fetch = a.fetchLeaderView
		}
		done = make(chan struct{})
		c.fetching = done
		c.wg.Add(1)
		go a.refreshLeaderView(c.ctx, fetch, done)
	}
	c.mu.Unlock()
	var stale <-chan time.Time
	if last != nil && last.err == nil {
		t := time.NewTimer(staleViewWait)
		defer t.Stop()
		stale = t.C
	}
	select {
	case <-done:
	case <-stale:
		return last, true
	case <-ctx.Done():
		if last != nil && last.err == nil {
			return last, true
		}
		return &leaderView{fetched: time.Now(), err: ctx.Err()}, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.view, true
}

// refreshLeaderView fetches the leader's view with fetch for every reader,
// keeps it (keptView when the fetch failed), and closes done.
func (a *Agent) refreshLeaderView(ctx context.Context, fetch func(context.Context, *leaderView) error, done chan struct{}) {
	c := &a.leaderCache
	defer c.wg.Done()
	v := &leaderView{}
	err := fetch(ctx, v)
	now := time.Now()
	c.mu.Lock()
	prev := c.view
	c.mu.Unlock()
	var superseded error
	if a.node != nil {
		superseded = a.node.Superseded()
	}
	if err != nil && superseded != nil {
		// Superseded for good, said once at ERROR (cluster): it knows no
		// leader to read from, and never will; readers get why.
		v = keptView(prev, fmt.Errorf("%w: %w", err, superseded), now)
	} else if err != nil {
		c.fails.Fail(a.log, now, fmt.Sprintf("cannot read the leader's last cycle; its forecasts, hotspots and anomalies answer from the last good read while it is under %s old and a leader is known, else 503", staleViewMax), err)
		v = keptView(prev, err, now)
	} else {
		v.fetched, v.read = now, now
		c.fails.OK(a.log, now, "the leader's last cycle is read again")
	}
	c.mu.Lock()
	c.view, c.fetching = v, nil
	c.mu.Unlock()
	close(done)
}

// keptView is what a follower answers with after a fetch of the leader's
// cycle failed with err at now: prev's content, if it was read less than
// staleViewMax ago and a leader is known, marked failing; else no content
// and err, saying how old the last good read is when there was one.
func keptView(prev *leaderView, err error, now time.Time) *leaderView {
	if prev == nil || prev.read.IsZero() {
		return &leaderView{fetched: now, err: err}
	}
	if age := now.Sub(prev.read); age >= staleViewMax || errors.Is(err, errNoLeaderKnown) {
		return &leaderView{fetched: now, read: prev.read,
			err: fmt.Errorf("%w (the last good read of it is %s old)", err, age.Round(time.Second))}
	}
	kept := *prev
	kept.fetched, kept.err, kept.failing = now, nil, err
	return &kept
}

// close ends a fetch in flight and waits for it; later reads answer that
// the server is stopping.
func (c *leaderCache) close() {
	c.mu.Lock()
	c.closed = true
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// leaderViewTTL is how long a follower keeps what it read of the leader's
// cycle: one cycle interval (1 to 30 s); a failed read only a second, so
// that reads answer again as soon as a new leader is elected.
func leaderViewTTL(interval time.Duration, failed bool) time.Duration {
	if failed {
		return time.Second
	}
	return min(max(interval, time.Second), 30*time.Second)
}

// fetchLeaderView reads the leader's last cycle into v, within 10 s. It
// runs for every reader (refreshLeaderView), under the cache's context,
// not under the first reader's: one that went away (a scrape's timeout, a
// Ctrl-C) made the reads of everyone after it 503.
func (a *Agent) fetchLeaderView(ctx context.Context, v *leaderView) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addr, err := a.leaderHTTP(ctx)
	if err != nil {
		return err
	}
	client := &api.Client{Address: a.peers.url(addr), Token: a.peerToken(), HTTP: a.peers.http}
	fs, err := client.ForecastsWithHistory(ctx)
	if err != nil {
		return fmt.Errorf("the leader at %s: %w", addr, err)
	}
	hs, err := client.Hotspots(ctx)
	if err != nil {
		return fmt.Errorf("the leader at %s: %w", addr, err)
	}
	as, err := client.Anomalies(ctx)
	if err != nil {
		return fmt.Errorf("the leader at %s: %w", addr, err)
	}
	v.forecasts, v.hotspots, v.anomalies = fs, hs, as
	return nil
}

// peerToken is the token this agent presents to other agents' APIs: the
// first of its own acl.token_file (every agent of a cluster shares them).
func (a *Agent) peerToken() string {
	if toks := a.currentTokens(); len(toks) > 0 {
		return toks[0]
	}
	return ""
}
