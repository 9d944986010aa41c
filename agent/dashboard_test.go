package agent

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
	"github.com/foreshape/foreshape/agent/ui"
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
// request existed; and "Yes, cancel" cancels it through the leader, where
// the follower refused it as unknown.
func TestDashboardOnAFollowerBehindAsksTheLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
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
	resp, err := http.PostForm(behind.api.Address+"/ui/queue/"+id+"/cancel", url.Values{"csrf": {csrf[1]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.String(), "done=cancelled") {
		t.Errorf("Yes, cancel on the follower: %d at %s\n%.3000s", resp.StatusCode, resp.Request.URL, body)
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
