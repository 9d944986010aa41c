package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/hashicorp/raft"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

// TestFollowerAnswersAfterItsWritesAndWithoutALeader: an operator who
// changes something through a follower and then reads from it sees the
// change (the follower relays the leader's answer once its own state has
// applied it); and a follower that has lost the leader (two of three
// servers gone: no quorum) says so on the reads it takes from the leader's
// cycle, instead of answering that nothing is forecast, and on a read of a
// request its copy does not hold, which it cannot ask the leader for.
func TestFollowerAnswersAfterItsWritesAndWithoutALeader(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	t.Parallel()
	tc := newTestCluster(t, 600)
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	f := (l + 1) % 3
	ctx := context.Background()
	fapi := tc.servers[f].api
	eventually(t, 30*time.Second, "the follower to know the leader", func() bool {
		_, err := fapi.Pause(ctx, false)
		return err == nil
	})
	eventually(t, 30*time.Second, "the follower ready", func() bool {
		_, err := fapi.Ready(ctx)
		return err == nil
	})

	knownLeader := func() string {
		resp, err := http.Get(fapi.Address + "/v1/queue")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get(knownLeaderHeader)
	}
	if got := knownLeader(); got != "true" {
		t.Errorf("the follower's queue with a leader: %s %q; want true", knownLeaderHeader, got)
	}
	for round := range 10 {
		for _, paused := range []bool{true, false} {
			if _, err := fapi.Pause(ctx, paused); err != nil {
				t.Fatalf("round %d: pause=%v through the follower: %v", round, paused, err)
			}
			q, err := fapi.Queue(ctx, nil)
			if err != nil {
				t.Fatalf("round %d: queue from the follower: %v", round, err)
			}
			if q.Paused != paused {
				t.Fatalf("round %d: the follower answered paused=%v right after its own pause=%v went through", round, q.Paused, paused)
			}
		}
	}

	// Forecasts come from the leader's last cycle.
	eventually(t, 60*time.Second, "forecasts on the follower", func() bool {
		fs, err := fapi.Forecasts(ctx)
		return err == nil && len(fs) > 0
	})
	// A blocking query asked while there is a leader and answered after
	// there is none says so: the header is set as the answer starts. Its
	// wait outlasts the leader's loss (known lost within 2 s of the stops
	// here).
	const wait = 10 * time.Second
	type answer struct {
		known     string
		at        time.Time
		waitedOut bool // answered at the wait's end, not by a change
		err       error
	}
	blocked := make(chan answer, 1)
	go func() {
		resp, err := http.Get(fapi.Address + "/v1/queue")
		if err != nil {
			blocked <- answer{err: err}
			return
		}
		resp.Body.Close()
		asked := time.Now()
		resp, err = http.Get(fmt.Sprintf("%s/v1/queue?index=%s&wait=%s", fapi.Address, resp.Header.Get("X-Foreshape-Index"), wait))
		if err != nil {
			blocked <- answer{err: err}
			return
		}
		resp.Body.Close()
		blocked <- answer{known: resp.Header.Get(knownLeaderHeader), at: time.Now(), waitedOut: time.Since(asked) >= wait-time.Second}
	}()
	other := 3 - l - f
	tc.servers[l].stop()
	tc.servers[other].stop()
	// A server stopped cleanly hands leadership over: the last one to stop
	// may hand it to f, which then leads (and answers from its own cycle)
	// until it finds it cannot reach a quorum and steps down. Once it
	// stops waiting for a leader its status says why there is none.
	eventually(t, 60*time.Second, "the follower's status to say why it has no leader", func() bool {
		st, err := fapi.Status(ctx)
		return err == nil && st.Leader == "" && !st.IsLeader && strings.Contains(st.NoLeader, "a leader needs 2 of the 3 voters")
	})
	noLeader := time.Now()
	// Then what comes from the leader's last cycle answers 503, every
	// call at once (a follower's failed read of the leader's cycle is kept
	// a second).
	calls := map[string]func() error{
		"hotspots":  func() error { _, err := fapi.Hotspots(ctx); return err },
		"forecasts": func() error { _, err := fapi.Forecasts(ctx); return err },
		"forecast":  func() error { _, err := fapi.Forecast(ctx, "dc1", "cpu"); return err },
		"anomalies": func() error { _, err := fapi.Anomalies(ctx); return err },
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var wrong []string
		for name, call := range calls {
			err := call()
			var se *api.StatusError
			if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
				wrong = append(wrong, fmt.Sprintf("%s: %v", name, err))
			}
		}
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("without a leader, 30s on: %s; want 503", strings.Join(wrong, "; "))
		}
	}
	// The dashboard says why it shows no forecast: it said "No forecast
	// yet. The leader forecasts once each series has enough history".
	resp, err := http.Get(fapi.Address + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "No forecast: this agent knows no leader, and only a leader forecasts (no leader elected: a leader needs 2 of the 3 voters"; !strings.Contains(string(page), want) {
		t.Errorf("the dashboard without a leader does not say %q:\n%s", want, page)
	}
	// It is alive, but not ready: a rolling restart must not move on.
	if _, err := fapi.Health(ctx); err != nil {
		t.Errorf("health without a leader: %v", err)
	}
	var se *api.StatusError
	if _, err := fapi.Ready(ctx); !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "no leader known") {
		t.Errorf("ready without a leader: %v; want 503, no leader known", err)
	}
	// The replicated state still answers, saying it knows no leader.
	if _, err := fapi.Queue(ctx, nil); err != nil {
		t.Errorf("queue without a leader: %v", err)
	}
	if got := knownLeader(); got != "false" {
		t.Errorf("the follower's queue without a leader: %s %q; want false", knownLeaderHeader, got)
	}
	// A request its copy does not hold is a 404 that says the copy may be
	// behind, for want of a leader to ask.
	resp, err = http.Get(fapi.Address + "/v1/queue/mr-424242")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `no migration request \"mr-424242\" in this server's copy of the queue, which may be behind the leader's`; resp.StatusCode != http.StatusNotFound ||
		!strings.Contains(string(body), want) || !strings.Contains(string(body), "it cannot ask the leader: no leader is known") ||
		resp.Header.Get(knownLeaderHeader) != "false" {
		t.Errorf("an unknown request without a leader: %d %s %s; want 404 %s…, it cannot ask the leader, and %s false",
			resp.StatusCode, resp.Header.Get(knownLeaderHeader), body, want, knownLeaderHeader)
	}
	switch b := <-blocked; {
	case b.err != nil:
		t.Errorf("the blocking query: %v", b.err)
	case b.at.Before(noLeader):
		t.Logf("the blocking query was answered before the leader was lost (%s): not checked", noLeader.Sub(b.at))
	case !b.waitedOut:
		// A change answered it: a write, which only a leader makes, so a
		// leader was known then (f may lead a moment after the others
		// stop), whenever this goroutine got to note the time.
		t.Logf("the blocking query was answered by a change of the queue, %s before the leader was known lost or after: not checked", noLeader.Sub(b.at))
	case b.known != "false":
		t.Errorf("a blocking query answered without a leader: %s %q; want false", knownLeaderHeader, b.known)
	}
}

// TestLeaderViewTTL: a follower keeps the leader's cycle for one cycle
// (between 1 and 30 s), but a failed read for a second only, so that once
// a leader is elected again its reads answer, not a cycle later.
func TestLeaderViewTTL(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		failed   bool
		want     time.Duration
	}{
		{100 * time.Millisecond, false, time.Second},
		{20 * time.Second, false, 20 * time.Second},
		{5 * time.Minute, false, 30 * time.Second},
		{20 * time.Second, true, time.Second},
		{5 * time.Minute, true, time.Second},
	} {
		if got := leaderViewTTL(tc.interval, tc.failed); got != tc.want {
			t.Errorf("leaderViewTTL(%v, failed %v) = %v, want %v", tc.interval, tc.failed, got, tc.want)
		}
	}
}

func TestNoLeader(t *testing.T) {
	voters := func(n int) []cluster.Server {
		var out []cluster.Server
		for i := range n {
			out = append(out, cluster.Server{ID: fmt.Sprint(i), Voter: true})
		}
		return append(out, cluster.Server{ID: "spare"})
	}
	for _, tc := range []struct {
		name    string
		servers []cluster.Server
		join    error
		want    string
	}{
		{"no state yet", nil, errors.New("cluster: waiting for servers: 1 of bootstrap_expect = 3 voting servers found"),
			"not part of a cluster yet (cluster: waiting for servers: 1 of bootstrap_expect = 3"},
		{"three voters", voters(3), nil, "no leader elected: a leader needs 2 of the 3 voters running and reaching each other"},
		{"five voters, spares do not count", voters(5), errors.New("no foreshape server answered at 10.0.0.2:7576"),
			"a leader needs 3 of the 5 voters running and reaching each other: until then nothing is forecast or moved and no change is accepted (no foreshape server answered at 10.0.0.2:7576)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := noLeader(cluster.Status{Servers: tc.servers}, tc.join); !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

// A forwarded request tells the leader who sent it (X-Forwarded-For), so
// that the leader's log names the operator's address, not the follower's.
func TestForwardSaysWhoAsked(t *testing.T) {
	got := make(chan http.Header, 1)
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer leader.Close()
	peers := newPeerClient(config.Default(), nil)
	req := httptest.NewRequest("POST", "/v1/queue/pause", nil)
	req.RemoteAddr = "192.0.2.7:51000"
	proxyTo(peers, strings.TrimPrefix(leader.URL, "http://"), "server-2", nil, 0).ServeHTTP(httptest.NewRecorder(), req)
	h := <-got
	if h.Get("X-Forwarded-For") != "192.0.2.7" || h.Get(forwardedHeader) != "server-2" {
		t.Errorf("forwarded headers %v; want X-Forwarded-For 192.0.2.7 and %s server-2", h, forwardedHeader)
	}
}

// A request whose body never arrives is cut off after httpReadTimeout
// instead of holding its connection for good.
func TestSlowBodyCutOff(t *testing.T) {
	defer func(d time.Duration) { httpReadTimeout = d }(httpReadTimeout)
	httpReadTimeout = 500 * time.Millisecond
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/queue HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection was still open after %s", time.Since(start).Round(time.Millisecond))
	}
}

// A browser's cross-site POST (a form on another site) is refused; the
// CLI's and a same-origin page's are served.
func TestCrossOriginWriteRefused(t *testing.T) {
	served := 0
	srv := httptest.NewServer(newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ })).Handler)
	defer srv.Close()
	post := func(h map[string]string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/queue/pause", strings.NewReader("x=1"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(map[string]string{"Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden || served != 0 {
		t.Errorf("a cross-site form POST: %d, served %d; want 403, not served", code, served)
	}
	if code := post(map[string]string{"Origin": "https://evil.example"}); code != http.StatusForbidden || served != 0 {
		t.Errorf("a POST from another origin: %d, served %d; want 403", code, served)
	}
	if code := post(nil); code != http.StatusOK || served != 1 {
		t.Errorf("a POST without browser headers (the CLI): %d, served %d", code, served)
	}
	if code := post(map[string]string{"Sec-Fetch-Site": "same-origin"}); code != http.StatusOK || served != 2 {
		t.Errorf("a same-origin POST (the dashboard): %d, served %d", code, served)
	}
}

// forwardingAgent is the part of a follower that forwards requests to
// the leader: its log (in buf), peer client and state (at index 0).
func forwardingAgent(t *testing.T, buf *syncbuf.Buffer) *Agent {
	t.Helper()
	fsm, err := state.NewFSM(state.Config{Profiles: state.DefaultProfiles()})
	if err != nil {
		t.Fatal(err)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "follower", Level: hclog.Info, Output: io.MultiWriter(buf, testWriter{t})})
	return &Agent{log: log, peers: newPeerClient(config.Default(), nil), name: "server-2", fsm: fsm}
}

// TestForwardingFailures: what a follower answers when it passes a request
// on to the leader and gets no answer back (forward.go's 502s), each
// logged by the follower; and the leader's own 502 (its Nomad token
// refused), relayed as it is and logged by the leader only.
//   - No connection to the leader could be made: 502 "forwarding to the
//     leader at ADDR: dial tcp …: connection refused"; the leader got
//     nothing, so nothing changed.
//   - The leader took the request, acted on it, and the connection was
//     lost before its answer: 502 "forwarding to the leader at ADDR: EOF";
//     the change was made.
//   - A read of a request this server's copy lacks (askLeaderFor) says
//     so after the error; nothing changes on a read.
//
// The follower logged none of them before (only an answer it could not
// encode and a backend's 5xx were logged).
func TestForwardingFailures(t *testing.T) {
	var buf syncbuf.Buffer
	a := forwardingAgent(t, &buf)
	call := func(addr, method, path, more string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		a.forwardTo(addr, more).ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		var e api.Error
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		return rec.Code, e.Error
	}

	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	code, msg := call(dead, "POST", "/v1/queue/pause", "")
	if want := "forwarding to the leader at " + dead + ": dial tcp " + dead; code != http.StatusBadGateway ||
		!strings.HasPrefix(msg, want) || !strings.Contains(msg, "connection refused") {
		t.Errorf("no leader listening: %d %q; want 502 %q… connection refused", code, msg, want)
	}
	if !strings.Contains(buf.String(), "request failed") || !strings.Contains(buf.String(), msg) {
		t.Errorf("the 502 was not logged:\n%s", buf.String())
	}

	var acted atomic.Bool
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acted.Store(true) // the leader's change, made before its answer is lost
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer cut.Close()
	leader := strings.TrimPrefix(cut.URL, "http://")
	code, msg = call(leader, "POST", "/v1/queue/pause", "")
	if want := "forwarding to the leader at " + leader + ": EOF"; code != http.StatusBadGateway || msg != want || !acted.Load() {
		t.Errorf("answer lost after the leader acted: %d %q, acted %v; want 502 %q, acted", code, msg, acted.Load(), want)
	}
	if !strings.Contains(buf.String(), msg) {
		t.Errorf("the lost answer was not logged:\n%s", buf.String())
	}

	code, msg = call(dead, "GET", "/v1/queue/mr-9", ` (this server's copy of the queue has no request "mr-9"; it may be behind the leader's)`)
	if want := `connection refused (this server's copy of the queue has no request "mr-9"; it may be behind the leader's)`; code != http.StatusBadGateway ||
		!strings.HasPrefix(msg, "forwarding to the leader at "+dead+": dial tcp") || !strings.HasSuffix(msg, want) {
		t.Errorf("a read the leader could not be asked: %d %q; want 502 ending %q", code, msg, want)
	}

	const refused = "GET /v1/nodes: Unexpected response code: 403 (Permission denied; Nomad refused GET /v1/nodes with the agent's token: check nomad.token or NOMAD_TOKEN)"
	nomadRefused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusBadGateway, refused)
	}))
	defer nomadRefused.Close()
	before := buf.String()
	code, msg = call(strings.TrimPrefix(nomadRefused.URL, "http://"), "POST", "/v1/queue", "")
	if code != http.StatusBadGateway || msg != refused {
		t.Errorf("the leader's own 502: %d %q; want it as it is, %q", code, msg, refused)
	}
	if buf.String() != before {
		t.Errorf("the follower logged the leader's answer:\n%s", strings.TrimPrefix(buf.String(), before))
	}
}

// TestForwardedAnswerWaitsForThisState: a forwarded answer is relayed
// once this server's state has applied as far as the leader's had when it
// answered (X-Foreshape-Raft-Index), not before.
func TestForwardedAnswerWaitsForThisState(t *testing.T) {
	var buf syncbuf.Buffer
	a := forwardingAgent(t, &buf)
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(raftIndexHeader, "7")
		_, _ = io.WriteString(w, `{"id":"mr-9"}`)
	}))
	defer leader.Close()
	const lag = 300 * time.Millisecond
	start := time.Now()
	go func() {
		time.Sleep(lag)
		a.fsm.Apply(&raft.Log{Index: 7, Type: raft.LogNoop})
	}()
	rec := httptest.NewRecorder()
	a.forwardTo(strings.TrimPrefix(leader.URL, "http://"), "").ServeHTTP(rec, httptest.NewRequest("GET", "/v1/queue/mr-9", nil))
	if took := time.Since(start); rec.Code != http.StatusOK || took < lag || took >= forwardWait {
		t.Errorf("%d after %s; want 200 once index 7 was applied, after %s and before %s", rec.Code, took, lag, forwardWait)
	}
}

// TestFollowerBehindAsksTheLeaderForARequest: a follower whose state is
// behind the leader's, asked for a request the leader just created (`queue
// show ID` right after `queue submit` through another agent), asks the
// leader and answers with it, once its own state has caught up or
// forwardWait (here behindWait) has passed; it answered 404 "none had
// this ID, or … the leader has forgotten it", as if the request did not
// exist. (The follower here is an older release's, halted at the first
// samples it cannot read, so that it stays behind.) For an ID the leader does not
// hold either, it answers the leader's 404; GET /v1/queue/pause stays a
// 405.
func TestFollowerBehindAsksTheLeaderForARequest(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	t.Parallel()
	behind, _, _, id := followerBehindARequest(t)
	ctx := context.Background()
	get := func(path string) (int, http.Header, []byte) {
		t.Helper()
		resp, err := http.Get(behind.api.Address + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, body
	}
	start := time.Now()
	code, h, body := get("/v1/queue/" + id)
	var mr api.MigrationRequest
	if err := json.Unmarshal(body, &mr); code != http.StatusOK || err != nil || mr.ID != id || h.Get(knownLeaderHeader) != "true" {
		t.Errorf("GET /v1/queue/%s of the follower behind: %d %s %s; want 200, the request the leader holds", id, code, h.Get(knownLeaderHeader), body)
	}
	if took := time.Since(start); took < behindWait || took > behindWait+3*time.Second {
		t.Errorf("answered after %s; want it held %s, no more, for a state that does not catch up", took, behindWait)
	}
	mr, err := behind.api.Request(ctx, id)
	if err != nil || mr.ID != id {
		t.Errorf("queue show %s through the follower (api.Client): %+v, %v", id, mr, err)
	}

	var se *api.StatusError
	_, err = behind.api.Request(ctx, "mr-424242")
	if !errors.As(err, &se) || se.Code != http.StatusNotFound || !strings.Contains(se.Message, "none had this ID") {
		t.Errorf("an ID the leader does not hold either: %v; want the leader's 404", err)
	}
	if code, _, body := get("/v1/queue/pause"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/queue/pause: %d %s; want 405", code, body)
	}
}

// behindWait is how long the follower of followerBehindARequest holds an
// answer for its state to catch up (forwardWait, 5 s, in a release): it
// never does, so each answer it relays takes the whole wait.
const behindWait = time.Second

// followerBehindARequest starts three servers, starts one follower again
// as an older release's, halted at the first samples it cannot read (so
// that it stays behind) and waiting behindWait to catch up, pauses the
// queue and submits through the leader a move of a running web
// allocation, which the follower does not hold. It returns the follower,
// the leader's API, the allocation and the request.
func followerBehindARequest(t *testing.T) (behind *testServer, lapi *api.Client, alloc, id string) {
	t.Helper()
	tc := newTestCluster(t, 20)
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	f := (l + 1) % 3
	tc.servers[f].stop()
	behind = tc.startWith(f, Options{older: &state.Older{Types: []state.CommandType{state.TypeAppendSamples}}, forwardWait: behindWait})
	ctx := context.Background()
	eventually(t, 30*time.Second, "the follower's state to stop", func() bool {
		st, err := behind.api.Status(ctx)
		return err == nil && st.Halted != ""
	})
	if _, ok := behind.a.node.LeaderContext(); ok {
		t.Fatalf("the follower leads; this test needs it a follower")
	}
	lapi = tc.servers[l].api
	if _, err := lapi.Pause(ctx, true); err != nil {
		t.Fatal(err)
	}
	nc, _ := nomadapi.NewClient(&nomadapi.Config{Address: tc.sim.URL})
	alloc = runningAlloc(t, nc, "web")
	id, err := lapi.Submit(ctx, api.Submission{Allocation: alloc, Target: "dc2", Reason: "test"})
	if err != nil {
		if id, err = lapi.Submit(ctx, api.Submission{Allocation: alloc, Target: "dc1/*/web", Reason: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, held := behind.a.fsm.Request(id); held {
		t.Fatalf("the follower's state holds %s: it is not behind", id)
	}
	return behind, lapi, alloc, id
}
