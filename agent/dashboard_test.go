package agent

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
	"github.com/foreshape/foreshape/agent/ui"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

// dataClock is a data clock stopped at t, far from the wall clock, as the
// simulator's under -dev is.
type dataClock struct{ t time.Time }

func (c dataClock) Now(context.Context) (time.Time, error) { return c.t, nil }
func (dataClock) Speed() float64                           { return 180 }

// dashboardBackend is an empty agent for the dashboard's pages.
type dashboardBackend struct{}

func (dashboardBackend) Status(context.Context) api.Status {
	return api.Status{Node: "n1", IsLeader: true}
}
func (dashboardBackend) Policies(context.Context) []api.Policy    { return nil }
func (dashboardBackend) Forecasts(context.Context) []api.Forecast { return nil }

// TestDashboardMeasuresRunningMovesWithTheDataClock: a running move's
// start is written with the data clock, so its time so far is measured
// with it: under -dev, whose simulated data time is months from the wall
// clock, the Queue page said a move started 90 s ago had run for months.
func TestDashboardMeasuresRunningMovesWithTheDataClock(t *testing.T) {
	dataNow := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	a := &Agent{clock: dataClock{dataNow}, log: testLogger(t)}
	opts := a.dashboardOptions()
	act := apitest.New()
	id, err := act.Submit(context.Background(), api.Submission{Allocation: "a1", Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	started := dataNow.Add(-90 * time.Second)
	act.Update(id, func(mr *api.MigrationRequest) { mr.State, mr.Started = api.StateRunning, &started })
	opts.Act, opts.Tokens = act, nil // a bare Agent has no configuration: ACLs off
	h, err := ui.New(dashboardBackend{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	_, body := dashboardGet(t, srv.URL+"/ui/queue")
	if !strings.Contains(body, "1m30s so far") {
		t.Errorf("queue page of a move started 90 s of data time ago lacks %q:\n%s", "1m30s so far", body)
	}
}

func dashboardGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDashboardOnAFollowerBehindAsksTheLeader: the dashboard on a follower
// whose copy of the state does not hold a request (it is behind the
// leader's: here it stopped applying the log) shows the request the leader
// holds on its cancel confirmation, as GET /v1/queue/{id} answers it
// (TestFollowerBehindAsksTheLeaderForARequest), where it said no such
// request existed; a priority set on its Queue page is set by the leader,
// the page saying the copy does not show it yet; and "Yes, cancel"
// cancels it through the leader, where
// the follower refused it as unknown, then waits for the follower's copy
// to apply it (forwardWait at most, here behindWait: this one never
// does) and shows a page that says the copy does not show it yet, where it said the request was
// cancelled above a queue that did not show it.
func TestDashboardOnAFollowerBehindAsksTheLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	t.Parallel()
	behind, lapi, alloc, id := followerBehindARequest(t)
	ctx := context.Background()

	code, page := dashboardGet(t, behind.api.Address+"/ui/queue/"+id+"/cancel")
	if code != http.StatusOK || !strings.Contains(page, `id="confirm-cancel"`) || !strings.Contains(page, "alloc/"+alloc) {
		t.Fatalf("the follower's confirmation page for %s: %d, want the request the leader holds\n%.3000s", id, code, page)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("no csrf field on the confirmation page")
	}
	// Set on the follower's Queue page, a priority is set by the leader,
	// and the page says this server's copy does not show it yet.
	resp, err := http.PostForm(behind.api.Address+"/ui/queue/"+id+"/priority", url.Values{"csrf": {csrf[1]}, "priority": {"90"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "The leader set the priority of request " + id + " to 90, but this server&#39;s copy of the state does not show it yet"; resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		t.Errorf("Set priority on the follower behind: %d at %s, lacking %q\n%.3000s", resp.StatusCode, resp.Request.URL, want, body)
	}
	if mr, err := lapi.Request(ctx, id); err != nil || mr.Priority != 90 {
		t.Errorf("%s on the leader after the follower's Set: priority %d, %v; want 90", id, mr.Priority, err)
	}
	start := time.Now()
	resp, err = http.PostForm(behind.api.Address+"/ui/queue/"+id+"/cancel", url.Values{"csrf": {csrf[1]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.String(), "done=cancelled") {
		t.Errorf("Yes, cancel on the follower: %d at %s\n%.3000s", resp.StatusCode, resp.Request.URL, body)
	}
	// The follower waited for its copy to apply the cancel, which it
	// never does here, for forwardWait (behindWait), and the page says it
	// does not show it yet.
	if want := "The leader cancelled request " + id + ", but this server&#39;s copy of the state does not show it yet"; !strings.Contains(string(body), want) {
		t.Errorf("the page after Yes, cancel on the follower behind lacks %q:\n%.3000s", want, body)
	}
	if took < behindWait || took > behindWait+3*time.Second {
		t.Errorf("Yes, cancel on the follower answered after %s; want it held %s, no more, for a state that does not catch up", took, behindWait)
	}
	if mr, err := lapi.Request(ctx, id); err != nil || mr.State != api.StateCancelled {
		t.Errorf("%s on the leader after the follower's cancel: %s %v; want cancelled", id, mr.State, err)
	}

	// One the leader does not hold either is its 404.
	if code, page := dashboardGet(t, behind.api.Address+"/ui/queue/mr-424242/cancel"); code != http.StatusNotFound || !strings.Contains(page, "none had this ID") {
		t.Errorf("an ID the leader does not hold either: %d\n%.2000s", code, page)
	}
}

// TestDashboardStreamEndsWhenAReloadRevokesItsToken: a page's event
// stream, opened with a token that a reload then takes out of
// acl.token_file, ends with a "denied" event at its next check (a second
// at most), and the stream asked for again is refused; it kept sending
// updates to the page until the page was closed.
func TestDashboardStreamEndsWhenAReloadRevokesItsToken(t *testing.T) {
	t.Parallel()
	a, _, dir, _ := reloadAgent(t)
	srv := httptest.NewServer(a.api)
	defer srv.Close()
	defer a.dash.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/ui/events", nil)
	req.Header.Set("X-Foreshape-Token", "old-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/events with the token: %d", resp.StatusCode)
	}
	events := bufio.NewScanner(resp.Body)
	next := func() string {
		for events.Scan() {
			if name, ok := strings.CutPrefix(events.Text(), "event: "); ok {
				return name
			}
		}
		return "(end)"
	}
	if e := next(); e != "hello" {
		t.Fatalf("first event %q, want hello", e)
	}
	write(t, filepath.Join(dir, "tokens"), "new-token\n")
	if err := a.Reload(nil); err != nil {
		t.Fatal(err)
	}
	reloaded := time.Now()
	if e := next(); e != "denied" {
		t.Errorf("after the reload revoked the stream's token: %q, want denied", e)
	}
	if e := next(); e != "(end)" || ctx.Err() != nil {
		t.Errorf("after denied: %q (%v), want the stream to end", e, ctx.Err())
	}
	if took := time.Since(reloaded); took > 3*time.Second {
		t.Errorf("the stream ended %s after the reload; want at its next check, a second later at most", took)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/ui/events", nil)
	req.Header.Set("X-Foreshape-Token", "old-token")
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusForbidden {
		t.Errorf("the stream asked for again with the revoked token: %d, want 403", again.StatusCode)
	}
}

// TestDashboardWaitsForTheLeadersWrite: an action the dashboard makes on
// the leader is sent as forwarded by this server, and returns once this
// server's state has applied as far as the leader's had when it answered
// (X-Foreshape-Raft-Index), as a forwarded API write does
// (TestForwardedAnswerWaitsForThisState); it returned at once, and the
// page after it read a copy that did not show it yet. A state that does
// not catch up within forwardWait (here 2 s) gets a ui.NotAppliedError
// that says how far it is.
func TestDashboardWaitsForTheLeadersWrite(t *testing.T) {
	t.Parallel()
	var buf syncbuf.Buffer
	a := forwardingAgent(t, &buf)
	a.opts.forwardWait = 2 * time.Second
	wait := a.catchUpWait()
	var by atomic.Value
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		by.Store(r.Header.Get(forwardedHeader))
		w.Header().Set(raftIndexHeader, map[string]string{"/v1/queue/pause": "7", "/v1/queue/resume": "8"}[r.URL.Path])
		_, _ = io.WriteString(w, `{"paused":true}`)
	}))
	defer leader.Close()
	d := dashboardAct{&actor{a: a}}
	lc := &api.Client{Address: leader.URL, HTTP: a.peers.http}
	pause := func(paused bool) error {
		return d.leaderWrite(context.Background(), lc, func(c *api.Client) error {
			_, err := c.Pause(context.Background(), paused)
			return err
		})
	}

	const lag = 300 * time.Millisecond
	start := time.Now()
	go func() {
		time.Sleep(lag)
		a.fsm.Apply(&raft.Log{Index: 7, Type: raft.LogNoop})
	}()
	err := pause(true)
	if took := time.Since(start); err != nil || took < lag || took >= wait {
		t.Errorf("pause: %v after %s; want nil once index 7 was applied, after %s and before %s", err, took, lag, wait)
	}
	if by.Load() != "server-2" {
		t.Errorf("the leader was asked with %s %q; want this server's name", forwardedHeader, by.Load())
	}

	start = time.Now()
	err = pause(false)
	var na *ui.NotAppliedError
	if took := time.Since(start); !errors.As(err, &na) || na.Index != 8 || na.Applied != 7 || took < wait || took > wait+2*time.Second {
		t.Errorf("resume with this state stuck at index 7: %v after %s; want a NotAppliedError for index 8 after %s", err, took, wait)
	}
}

// TestDashboardOnAFollowerShowsItsAction: the page after Pause or Resume
// on a follower shows the queue as the action left it, and says nothing
// of a lag: the follower answers once its copy of the state has applied
// the leader's change (31-104 ms here). It answered at once, and the page
// after Pause showed the queue still running in every try.
func TestDashboardOnAFollowerShowsItsAction(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	t.Parallel()
	tc := newTestCluster(t, 20)
	for i := range 3 {
		tc.start(i)
	}
	f := tc.servers[(tc.leader()+1)%3]
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
	for i, action := range []string{"pause", "resume", "pause", "resume"} {
		_, page := dashboardGet(t, f.api.Address+"/ui/queue")
		m := csrf.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no csrf field on the follower's queue page:\n%.2000s", page)
		}
		start := time.Now()
		resp, err := http.PostForm(f.api.Address+"/ui/queue/"+action, url.Values{"csrf": {m[1]}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := map[string]string{"pause": "The queue is <strong>paused</strong>", "resume": "The queue is <strong>running</strong>"}[action]
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) || strings.Contains(string(body), "does not show it yet") {
			t.Errorf("%s on the follower (%d): the page after it (%d) does not say %q alone:\n%.3000s", action, i+1, resp.StatusCode, want, body)
		}
		t.Logf("%s on the follower: the page after it in %s", action, time.Since(start).Round(time.Millisecond))
	}
}
