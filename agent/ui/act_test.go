package ui

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

// newActServer serves the dashboard over a fake act backend holding two
// requests (mr-1 from a1 in dc1, mr-2 from a2 in dc2), a reservation in
// dc2 and two decisions.
func newActServer(t *testing.T) (*httptest.Server, *apitest.Act) {
	t.Helper()
	act := apitest.New()
	ctx := context.Background()
	for _, s := range []api.Submission{{Allocation: "a1", Target: "dc2"}, {Allocation: "a2", Target: "dc3"}} {
		if _, err := act.Submit(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	started := t0.Add(4 * time.Minute)
	act.Update("mr-1", func(mr *api.MigrationRequest) {
		mr.State = api.StateRunning
		mr.Started = &started
		mr.EstimatedDurationS = 120
	})
	act.AddReservation(api.Reservation{ID: "rs-1", Request: "mr-1", Policy: "dc2-web", Locality: "dc2", CPU: 4000, Memory: 8192,
		From: t0.Add(3 * time.Minute), Until: t0.Add(6 * time.Minute), State: api.ReservationHeld})
	act.AddDecision(api.Decision{Time: t0, Policy: "dc2-web", Kind: api.DecisionReserve, Locality: "dc2", Request: "mr-1", Reason: "reserve 4000 MHz in dc2"})
	act.AddDecision(api.Decision{Time: t0, Policy: "dc1-web", Kind: api.DecisionWait, Locality: "dc1", Request: "mr-2", Reason: "dc3 congested"})
	b := &fakeBackend{forecasts: []api.Forecast{testForecast(nil)}, cycle: t0}
	h, err := New(b, Options{Act: act, Now: func(context.Context) (time.Time, error) { return started.Add(90 * time.Second), nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return srv, act
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in:\n%.500s", body)
	}
	return m[1]
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL.String(), string(body)
}

func TestQueuePage(t *testing.T) {
	srv, act := newActServer(t)
	c := srv.Client()
	code, body := get(t, c, srv.URL+"/ui/queue", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /ui/queue: %d", code)
	}
	for _, want := range []string{
		`data-request="mr-1" data-state="running"`, "alloc/a1", "dc1 → dc2", "2m0s", "1m30s so far",
		`data-request="mr-2" data-state="pending"`, `id="cancel-mr-2"`, `id="pause"`, "1 pending · 1 running",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("queue page lacks %q", want)
		}
	}

	// Pause, then resume; each needs the page's CSRF field.
	if code, _, _ := post(t, c, srv.URL+"/ui/queue/pause", url.Values{"csrf": {"forged"}}); code != http.StatusForbidden {
		t.Errorf("pause with a forged csrf field: %d, want 403", code)
	}
	if q, _ := act.Queue(context.Background()); q.Paused {
		t.Fatal("a forged pause paused the queue")
	}
	code, at, body := post(t, c, srv.URL+"/ui/queue/pause", url.Values{"csrf": {csrfOf(t, body)}})
	if code != http.StatusOK || !strings.HasSuffix(at, "/ui/queue?done=paused") || !strings.Contains(body, `id="resume"`) ||
		!strings.Contains(body, `by <span class="paused-by">operator</span> at <time datetime="`) {
		t.Errorf("pause: %d at %s", code, at)
	}
	if q, _ := act.Queue(context.Background()); !q.Paused {
		t.Error("the queue is not paused after Pause")
	}
	if _, _, _ = post(t, c, srv.URL+"/ui/queue/resume", url.Values{"csrf": {csrfOf(t, body)}}); true {
		if q, _ := act.Queue(context.Background()); q.Paused {
			t.Error("the queue is still paused after Resume")
		}
	}

	// Cancel asks first, then cancels.
	code, body = get(t, c, srv.URL+"/ui/queue/mr-2/cancel", nil)
	if code != http.StatusOK || !strings.Contains(body, `id="confirm-cancel"`) || !strings.Contains(body, "alloc/a2") {
		t.Fatalf("confirmation page: %d\n%.500s", code, body)
	}
	if mr, _ := act.Request(context.Background(), "mr-2"); mr.State == api.StateCancelled {
		t.Fatal("showing the confirmation cancelled the request")
	}
	code, at, _ = post(t, c, srv.URL+"/ui/queue/mr-2/cancel", url.Values{"csrf": {csrfOf(t, body)}})
	if code != http.StatusOK || !strings.Contains(at, "done=cancelled") {
		t.Errorf("cancel: %d at %s", code, at)
	}
	if mr, _ := act.Request(context.Background(), "mr-2"); mr.State != api.StateCancelled {
		t.Errorf("mr-2 is %s after cancel, want cancelled", mr.State)
	}
	// A refusal says why once: the backend's error without the word of
	// the status (": conflict", ": not found") it wraps.
	code, _, refused := post(t, c, srv.URL+"/ui/queue/mr-2/cancel", url.Values{"csrf": {csrfOf(t, body)}})
	if code != http.StatusConflict || !strings.Contains(refused, "only a request that has not started can be cancelled") ||
		strings.Contains(refused, ": conflict") {
		t.Errorf("cancelling a cancelled request: %d, want 409 saying why once\n%.2000s", code, refused)
	}
	if code, page := get(t, c, srv.URL+"/ui/queue/mr-99/cancel", nil); code != http.StatusNotFound ||
		!strings.Contains(page, "no migration request &#34;mr-99&#34;") || strings.Contains(page, ": not found") {
		t.Errorf("confirmation for an unknown request: %d, want 404 saying it once\n%.2000s", code, page)
	}
}

func TestDecisionsFilter(t *testing.T) {
	srv, _ := newActServer(t)
	for _, tc := range []struct {
		query      string
		want, lack []string
	}{
		{"", []string{"reserve 4000 MHz in dc2", "dc3 congested"}, nil},
		{"?policy=dc2-web", []string{"reserve 4000 MHz in dc2", `<option selected>dc2-web</option>`}, []string{"dc3 congested"}},
		{"?locality=dc1", []string{"dc3 congested"}, []string{"reserve 4000 MHz in dc2"}},
		{"?policy=dc2-web&locality=dc1", []string{"No decision matches the filter"}, []string{"dc3 congested", "reserve 4000"}},
	} {
		code, body := get(t, srv.Client(), srv.URL+"/ui/decisions"+tc.query, nil)
		if code != http.StatusOK {
			t.Errorf("%s: %d", tc.query, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("decisions%s lacks %q", tc.query, w)
			}
		}
		for _, l := range tc.lack {
			if strings.Contains(body, l) {
				t.Errorf("decisions%s shows %q", tc.query, l)
			}
		}
	}
}

func TestLocalitiesShowReservationsAndMoves(t *testing.T) {
	srv, _ := newActServer(t)
	_, body := get(t, srv.Client(), srv.URL+"/ui/", nil)
	for _, want := range []string{`class="reservation"`, "reserved 4000 MHz / 8192 MiB for mr-1", `class="move move-in"`, "Reservation rs-1", "Move mr-1"} {
		if !strings.Contains(body, want) {
			t.Errorf("localities page lacks %q", want)
		}
	}
}

func TestActPagesWithoutTheActHalf(t *testing.T) {
	srv, _ := newTestServer(t, nil)
	for _, p := range []string{"/ui/queue", "/ui/decisions"} {
		code, body := get(t, srv.Client(), srv.URL+p, nil)
		if code != http.StatusOK || !strings.Contains(body, notRunning) {
			t.Errorf("GET %s: %d, want the page saying the act half is not running", p, code)
		}
	}
	code, _, _ := post(t, srv.Client(), srv.URL+"/ui/queue/pause", url.Values{})
	if code != http.StatusForbidden {
		t.Errorf("pause without csrf: %d, want 403", code)
	}
	h, err := New(&fakeBackend{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	req := httptest.NewRequest(http.MethodPost, "/ui/queue/mr-1/priority", nil)
	req.PostForm = url.Values{"csrf": {h.csrf(req)}, "priority": {"90"}}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), notRunning) {
		t.Errorf("set a priority without the act half: %d, want 503 saying the act half is not running", rec.Code)
	}
}

func TestSamePlace(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{{"dc1/*/web", "dc1/web", true}, {"dc2", "dc2", true}, {"dc1/web", "dc1/batch", false}, {"dc1", "dc1/web", false}} {
		if got := samePlace(c.a, c.b); got != c.want {
			t.Errorf("samePlace(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

// TestQueueShowsScoresAndCancelAsTheAPI: a score reads as the API and the
// CLI give it, to two decimals (3.47, not 3.5, which another request's
// 3.53 would also read as), and a running request, which the API refuses
// to cancel (409), is offered no Cancel, on the Queue page or the
// confirmation page.
func TestQueueShowsScoresAndCancelAsTheAPI(t *testing.T) {
	srv, act := newActServer(t)
	act.Update("mr-2", func(mr *api.MigrationRequest) { mr.Score = 3.47 })
	c := srv.Client()
	_, body := get(t, c, srv.URL+"/ui/queue", nil)
	if !strings.Contains(body, "<td>3.47</td>") {
		t.Errorf("queue page lacks mr-2's score 3.47 as the API gives it:\n%s", body)
	}
	if strings.Contains(body, `id="cancel-mr-1"`) {
		t.Error("queue page offers to cancel mr-1, which is running")
	}
	if !strings.Contains(body, `id="cancel-mr-2"`) {
		t.Error("queue page does not offer to cancel mr-2, which is pending")
	}
	code, page := get(t, c, srv.URL+"/ui/queue/mr-1/cancel", nil)
	if code != http.StatusOK || strings.Contains(page, `id="confirm-cancel"`) || !strings.Contains(page, "a running move cannot be cancelled") {
		t.Errorf("confirmation page of a running request: %d, want no Yes button and why\n%.3000s", code, page)
	}
}

// TestRunningMoveWithoutADataTime: a running move's time so far is
// measured against the data clock; without one, the page says it does not
// know rather than measure it against another clock.
func TestRunningMoveWithoutADataTime(t *testing.T) {
	started := t0
	v := buildQueue(api.Queue{Requests: []api.MigrationRequest{{ID: "mr-1", State: api.StateRunning, Started: &started}}}, time.Time{})
	if rv := v.Requests[0]; rv.Actual != 0 || rv.ActualNote != "unknown so far (no data time)" {
		t.Errorf("running move without a data time: %v %q", rv.Actual, rv.ActualNote)
	}
}

// TestLocalityListsAreCapped: a panel lists the first five reservations
// and moves of its locality and counts the rest, which the Queue page
// lists: a drain's dozens of requests pushed the charts off the screen
// (the dev scenario's ten filled twenty lines above dc1's charts).
func TestLocalityListsAreCapped(t *testing.T) {
	var reqs []api.MigrationRequest
	var res []api.Reservation
	for i := range 12 {
		id := fmt.Sprintf("mr-%d", i+1)
		reqs = append(reqs, api.MigrationRequest{ID: id, Source: "dc1", Target: "dc2", State: api.StateReserving})
		res = append(res, api.Reservation{ID: fmt.Sprintf("rs-%d", i+1), Request: id, Locality: "dc2", State: api.ReservationHeld})
	}
	v := buildLocalities([]api.Forecast{testForecast(nil)}, []api.Policy{{Name: "dc2-web", Locality: "dc2"}}, actState{requests: reqs, reservations: res})
	h, err := New(&fakeBackend{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := h.pages["localities"].ExecuteTemplate(&b, "main", page{Data: v}); err != nil {
		t.Fatal(err)
	}
	body := b.String()
	if n, m := strings.Count(body, "<li class=\"reservation-item\">"), strings.Count(body, "<li>Move mr-"); n != 5 || m != 5 {
		t.Errorf("panel lists %d reservations and %d moves; want 5 of each", n, m)
	}
	if strings.Count(body, "and 7 more") != 2 {
		t.Errorf("panel does not say 7 more of each:\n%s", body)
	}
}

// TestPauseNoticeFollowsTheQueue: the notice after Pause ("The queue is
// paused") stays in the page's address, and each live update fetched the
// page with it: after another operator resumed the queue, the page said
// both that the queue is paused and that it is running, with a Pause
// button. A notice the queue no longer bears out is left off.
func TestPauseNoticeFollowsTheQueue(t *testing.T) {
	srv, act := newActServer(t)
	c := srv.Client()
	_, body := get(t, c, srv.URL+"/ui/queue", nil)
	_, at, body := post(t, c, srv.URL+"/ui/queue/pause", url.Values{"csrf": {csrfOf(t, body)}})
	if !strings.Contains(body, `class="notice"`) {
		t.Fatalf("no notice after Pause at %s", at)
	}
	if err := act.SetPaused(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{at, at + "&fragment=1"} {
		if _, body := get(t, c, u, nil); strings.Contains(body, `class="notice"`) || !strings.Contains(body, `id="pause"`) {
			t.Errorf("GET %s after the queue was resumed elsewhere: shows the pause notice, or no Pause button:\n%s", u, body)
		}
	}
	_, body = get(t, c, at+"&fragment=1", nil)
	_, at, _ = post(t, c, srv.URL+"/ui/queue/pause", url.Values{"csrf": {csrfOf(t, body)}})
	if _, body := get(t, c, at+"&fragment=1", nil); !strings.Contains(body, `class="notice"`) {
		t.Errorf("GET %s while the queue is paused: no notice", at)
	}
}

// TestPriorityNoticeFollowsTheQueue: the notice after Set ("Priority of
// mr-2 set to 90") stays in the page's address as Pause's does, and each
// live update fetched the page with it: after another operator set
// another priority, the page said 90 beside a form showing 40. A notice
// the request no longer bears out is left off.
func TestPriorityNoticeFollowsTheQueue(t *testing.T) {
	srv, act := newActServer(t)
	c := srv.Client()
	_, body := get(t, c, srv.URL+"/ui/queue", nil)
	_, at, body := post(t, c, srv.URL+"/ui/queue/mr-2/priority", url.Values{"csrf": {csrfOf(t, body)}, "priority": {"90"}})
	if !strings.Contains(body, `class="notice"`) {
		t.Fatalf("no notice after Set at %s", at)
	}
	if err := act.SetPriority(context.Background(), "mr-2", 40); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{at, at + "&fragment=1"} {
		if _, body := get(t, c, u, nil); strings.Contains(body, `class="notice"`) || !strings.Contains(body, `id="priority-mr-2" name="priority" type="number" min="1" max="100" value="40"`) {
			t.Errorf("GET %s after another operator set 40: shows the notice of 90, or not the form at 40:\n%s", u, body)
		}
	}
	if err := act.SetPriority(context.Background(), "mr-2", 90); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, c, at+"&fragment=1", nil); !strings.Contains(body, `class="notice"`) {
		t.Errorf("GET %s while mr-2's priority is 90: no notice", at)
	}
}

// TestQueuePageIsCapped: the Queue page lists the first queueShown
// requests of each state in the queue's order (the highest scores of a
// queued state, the newest of a finished one) and counts the rest, as the
// panels' lists do; it listed every request the queue holds (up to
// queue.max_requests unfinished ones, and a day of finished ones), and
// each live update rendered them all again.
func TestQueuePageIsCapped(t *testing.T) {
	q := api.Queue{}
	add := func(n int, state string) {
		for range n {
			q.Requests = append(q.Requests, api.MigrationRequest{ID: fmt.Sprintf("mr-%d", len(q.Requests)+1), State: state, Source: "dc1", Target: "dc2"})
		}
	}
	add(2, api.StateRunning)
	add(queueShown+3, api.StatePending)
	add(4, api.StateWaiting)
	add(queueShown+70, api.StateDone)
	v := buildQueue(q, t0)
	h, err := New(&fakeBackend{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := h.pages["queue"].ExecuteTemplate(&b, "main", page{Data: v}); err != nil {
		t.Fatal(err)
	}
	body := b.String()
	for state, want := range map[string]int{api.StateRunning: 2, api.StatePending: queueShown, api.StateWaiting: 4, api.StateDone: queueShown} {
		if n := strings.Count(body, `data-state="`+state+`"`); n != want {
			t.Errorf("%d %s requests listed, want %d", n, state, want)
		}
	}
	// The first of each state in the queue's order are the ones listed.
	if !strings.Contains(body, `data-request="mr-3"`) || strings.Contains(body, fmt.Sprintf(`data-request="mr-%d"`, 2+queueShown+1)) {
		t.Errorf("the pending requests listed are not the first %d in the queue's order", queueShown)
	}
	for _, want := range []string{"and 3 more pending", "70 more done", fmt.Sprintf("%d pending", queueShown+3), fmt.Sprintf("%d done", queueShown+70)} {
		if !strings.Contains(body, want) {
			t.Errorf("queue page lacks %q", want)
		}
	}
}

// fixedQueue is an act backend whose queue is q.
type fixedQueue struct {
	*apitest.Act
	q api.Queue
}

func (f fixedQueue) Queue(context.Context) (api.Queue, error) { return f.q, nil }

// BenchmarkQueuePage renders the Queue page's content, as each live update
// fetches it, for a full queue: queue.max_requests (1,000) unfinished
// requests and 2,000 finished ones.
func BenchmarkQueuePage(b *testing.B) {
	q := api.Queue{Index: 1}
	for i := range 3000 {
		mr := api.MigrationRequest{ID: fmt.Sprintf("mr-%d", i+1), State: api.StatePending, Resource: "alloc/a1", Source: "dc1", Target: "dc2",
			Reason: "requested by an operator", Score: 0.5, EstimatedDurationS: 90}
		if i >= 1000 {
			mr.State = api.StateDone
		}
		q.Requests = append(q.Requests, mr)
	}
	h, err := New(&fakeBackend{cycle: t0}, Options{Act: fixedQueue{apitest.New(), q}})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/ui/queue?fragment=1", nil)
	size := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/page")
}

// leaderAhead is an act backend on a server whose copy of the state is
// behind the leader's: its actions are made on the leader, at index 9,
// and this copy (the fake's queue) has not applied them when they return.
type leaderAhead struct {
	*apitest.Act
	applied atomic.Uint64 // this copy's applied index
}

func (l *leaderAhead) SetPaused(context.Context, bool) error {
	return &NotAppliedError{Index: 9, Applied: l.applied.Load()}
}

func (l *leaderAhead) Cancel(context.Context, string) error {
	return &NotAppliedError{Index: 9, Applied: l.applied.Load()}
}

func (l *leaderAhead) SetPriority(context.Context, string, int) error {
	return &NotAppliedError{Index: 9, Applied: l.applied.Load()}
}

// TestPageAfterAnActionThisCopyHasNotApplied: after an action made on the
// leader that this server's copy of the state had not applied when its
// wait ended, the Queue page says that this copy does not show it yet
// (with how far it has applied the log), where the notice said it was
// done above a queue that did not show it (or, after Pause, left the
// notice off as if another operator had resumed the queue); once the
// copy has applied it, the page's live update shows the usual notice.
func TestPageAfterAnActionThisCopyHasNotApplied(t *testing.T) {
	b := &leaderAhead{Act: apitest.New()}
	b.applied.Store(5)
	if _, err := b.Submit(context.Background(), api.Submission{Allocation: "a1", Target: "dc2"}); err != nil {
		t.Fatal(err)
	}
	h, err := New(&fakeBackend{cycle: t0}, Options{Act: b, Applied: b.applied.Load})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	c := srv.Client()
	_, body := get(t, c, srv.URL+"/ui/queue", nil)
	csrf := csrfOf(t, body)
	_, paused, body := post(t, c, srv.URL+"/ui/queue/pause", url.Values{"csrf": {csrf}})
	if want := "The leader paused the queue, but this server&#39;s copy of the state does not show it yet (it has applied the log up to index 5 of 9)"; !strings.Contains(body, want) {
		t.Errorf("the page after Pause at %s lacks %q:\n%s", paused, want, body)
	}
	_, prioritised, body := post(t, c, srv.URL+"/ui/queue/mr-1/priority", url.Values{"csrf": {csrf}, "priority": {"90"}})
	if want := "The leader set the priority of request mr-1 to 90, but this server&#39;s copy of the state does not show it yet (it has applied the log up to index 5 of 9)"; !strings.Contains(body, want) {
		t.Errorf("the page after Set at %s lacks %q:\n%s", prioritised, want, body)
	}
	_, cancelled, body := post(t, c, srv.URL+"/ui/queue/mr-1/cancel", url.Values{"csrf": {csrf}})
	if want := "The leader cancelled request mr-1, but this server&#39;s copy of the state does not show it yet"; !strings.Contains(body, want) {
		t.Errorf("the page after Yes, cancel at %s lacks %q:\n%s", cancelled, want, body)
	}

	// This copy applies all three.
	if err := b.Act.SetPaused(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if err := b.Act.SetPriority(context.Background(), "mr-1", 90); err != nil {
		t.Fatal(err)
	}
	if err := b.Act.Cancel(context.Background(), "mr-1"); err != nil {
		t.Fatal(err)
	}
	b.applied.Store(9)
	for u, want := range map[string]string{paused: "The queue is paused", prioritised: "Priority of mr-1 set to 90; the leader scores it again at its next pass.",
		cancelled: "Request mr-1 is cancelled."} {
		if _, body := get(t, c, u+"&fragment=1", nil); !strings.Contains(body, want) || strings.Contains(body, "does not show it yet") {
			t.Errorf("GET %s once this copy applied the action: want %q alone:\n%s", u, want, body)
		}
	}
}

// TestPriorityFormOnlyBeforeStart: the Queue page offers the priority
// form (a number from 1 to 100, prefilled with the request's priority,
// and Set) on a request that has not started, as it offers Cancel; a
// running or finished request, whose priority the API refuses to set
// (409), shows its priority alone.
func TestPriorityFormOnlyBeforeStart(t *testing.T) {
	srv, act := newActServer(t)
	if _, err := act.Submit(context.Background(), api.Submission{Job: "web", Group: "frontend", Target: "dc2"}); err != nil {
		t.Fatal(err)
	}
	act.Update("mr-3", func(mr *api.MigrationRequest) { mr.State, mr.Priority = api.StateDone, 70 })
	act.Update("mr-2", func(mr *api.MigrationRequest) { mr.State = api.StateWaiting })
	_, body := get(t, srv.Client(), srv.URL+"/ui/queue", nil)
	for _, want := range []string{
		`<form class="priority" method="post" action="/ui/queue/mr-2/priority">`,
		`<input id="priority-mr-2" name="priority" type="number" min="1" max="100" value="50" required>`,
		`<label class="visually-hidden" for="priority-mr-2">`, `id="set-priority-mr-2"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("queue page lacks %q for mr-2, which is waiting", want)
		}
	}
	if strings.Count(body, `class="priority"`) != 1 {
		t.Errorf("the priority form is offered %d times, want once (mr-2 alone):\n%s", strings.Count(body, `class="priority"`), body)
	}
	for _, id := range []string{"mr-1", "mr-3"} {
		row := regexp.MustCompile(`(?s)<tr id="req-` + id + `".*?</tr>`).FindString(body)
		if row == "" || strings.Contains(row, "priority-"+id) || strings.Contains(row, "<form") {
			t.Errorf("row of %s (running or finished) offers a form, or is missing:\n%s", id, row)
		}
	}
	if !strings.Contains(body, "<td>70</td>") {
		t.Error("the finished mr-3's priority 70 is not shown as a plain cell")
	}
}

// TestSetPriorityFromTheQueue: the priority form sets the request's
// priority through the act backend, logs it as Cancel logs (with the
// request and the caller), and the page after it says what was done.
func TestSetPriorityFromTheQueue(t *testing.T) {
	var logs syncbuf.Buffer
	act := apitest.New()
	if _, err := act.Submit(context.Background(), api.Submission{Allocation: "a1", Target: "dc2"}); err != nil {
		t.Fatal(err)
	}
	h, err := New(&fakeBackend{cycle: t0}, Options{Act: act, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	c := srv.Client()
	_, body := get(t, c, srv.URL+"/ui/queue", nil)
	code, at, body := post(t, c, srv.URL+"/ui/queue/mr-1/priority", url.Values{"csrf": {csrfOf(t, body)}, "priority": {"90"}})
	if code != http.StatusOK || !strings.HasSuffix(at, "/ui/queue?done=priority&id=mr-1&priority=90") {
		t.Fatalf("set the priority: %d at %s, want the Queue page", code, at)
	}
	if mr, _ := act.Request(context.Background(), "mr-1"); mr.Priority != 90 {
		t.Errorf("mr-1's priority is %d after Set 90", mr.Priority)
	}
	if want := `<p class="notice">Priority of mr-1 set to 90; the leader scores it again at its next pass.</p>`; !strings.Contains(body, want) {
		t.Errorf("the page after Set lacks %q:\n%s", want, body)
	}
	if !strings.Contains(body, `id="priority-mr-1" name="priority" type="number" min="1" max="100" value="90"`) {
		t.Error("the page after Set does not show mr-1's new priority in its form")
	}
	if l := logs.String(); !strings.Contains(l, "[INFO]  ui: request priority set from the dashboard: request=mr-1 priority=90 remote_addr=127.0.0.1:") {
		t.Errorf("log lacks the priority set, with the request and the caller:\n%s", l)
	}
}

// TestSetPriorityRefusesWhatTheAPIRefuses: a value that is not a whole
// number from 1 to 100 is refused (400) with that said and changes
// nothing; an unknown request (404) and one that runs or has finished
// (409) show the backend's error, as Cancel shows it.
func TestSetPriorityRefusesWhatTheAPIRefuses(t *testing.T) {
	srv, act := newActServer(t)
	c := srv.Client()
	_, body := get(t, c, srv.URL+"/ui/queue", nil)
	csrf := csrfOf(t, body)
	for _, v := range []string{"0", "101", "high", "", "9.5", "-3", " 90"} {
		code, _, page := post(t, c, srv.URL+"/ui/queue/mr-2/priority", url.Values{"csrf": {csrf}, "priority": {v}})
		if want := "is not a whole number from 1 to 100; nothing changed"; code != http.StatusBadRequest || !strings.Contains(page, want) {
			t.Errorf("priority %q: %d, want 400 saying %q\n%.2000s", v, code, want, page)
		}
		if mr, _ := act.Request(context.Background(), "mr-2"); mr.Priority != 50 {
			t.Fatalf("priority %q changed mr-2's priority to %d", v, mr.Priority)
		}
	}
	if code, _, page := post(t, c, srv.URL+"/ui/queue/mr-2/priority", url.Values{"csrf": {csrf}}); code != http.StatusBadRequest ||
		!strings.Contains(page, "priority: &#34;&#34; is not a whole number from 1 to 100") {
		t.Errorf("a form without a priority: %d, want 400 saying so\n%.2000s", code, page)
	}

	if err := act.Cancel(context.Background(), "mr-2"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, why string
		code    int
	}{
		{"mr-99", "no migration request &#34;mr-99&#34;", http.StatusNotFound},
		{"mr-1", "migration request mr-1 is running; only the priority of a request that has not started can be set", http.StatusConflict},
		{"mr-2", "migration request mr-2 is cancelled; only the priority of a request that has not started can be set", http.StatusConflict},
	} {
		code, _, page := post(t, c, srv.URL+"/ui/queue/"+tc.id+"/priority", url.Values{"csrf": {csrf}, "priority": {"90"}})
		if code != tc.code || !strings.Contains(page, tc.why) || strings.Contains(page, ": conflict") || strings.Contains(page, ": not found") {
			t.Errorf("set the priority of %s: %d, want %d saying %q once\n%.2000s", tc.id, code, tc.code, tc.why, page)
		}
	}
	for _, id := range []string{"mr-1", "mr-2"} {
		if mr, _ := act.Request(context.Background(), id); mr.Priority != 50 {
			t.Errorf("a refused Set changed %s's priority to %d", id, mr.Priority)
		}
	}
}

// TestSetPriorityNeedsTheDashboardsAuth: the priority form is refused as
// the other forms are: without a valid token (403, whatever the form
// holds), and with a token but without the CSRF field derived from it
// (403); with both it sets the priority.
func TestSetPriorityNeedsTheDashboardsAuth(t *testing.T) {
	act := apitest.New()
	if _, err := act.Submit(context.Background(), api.Submission{Allocation: "a1", Target: "dc2"}); err != nil {
		t.Fatal(err)
	}
	h, err := New(&fakeBackend{cycle: t0}, Options{Act: act, Tokens: func() []string { return []string{"s3cret"} }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	c := srv.Client()
	_, body := get(t, c, srv.URL+"/ui/queue", map[string]string{"X-Foreshape-Token": "s3cret"})
	csrf := csrfOf(t, body)
	send := func(hdr map[string]string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ui/queue/mr-1/priority", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		what string
		hdr  map[string]string
		form url.Values
		why  string
	}{
		{"no token", nil, url.Values{"csrf": {csrf}, "priority": {"90"}}, "permission denied"},
		{"a wrong token", map[string]string{"X-Foreshape-Token": "wrong"}, url.Values{"csrf": {csrf}, "priority": {"90"}}, "permission denied"},
		{"a wrong cookie", map[string]string{"Cookie": cookieName + "=wrong"}, url.Values{"csrf": {csrf}, "priority": {"90"}}, "permission denied"},
		{"no csrf field", map[string]string{"X-Foreshape-Token": "s3cret"}, url.Values{"priority": {"90"}}, "the form is stale or came from another site"},
		{"a forged csrf field", map[string]string{"Authorization": "Bearer s3cret"}, url.Values{"csrf": {"forged"}, "priority": {"90"}}, "the form is stale or came from another site"},
	} {
		if code, page := send(tc.hdr, tc.form); code != http.StatusForbidden || !strings.Contains(page, tc.why) {
			t.Errorf("%s: %d, want 403 saying %q\n%.500s", tc.what, code, tc.why, page)
		}
		if mr, _ := act.Request(context.Background(), "mr-1"); mr.Priority != 50 {
			t.Fatalf("%s: mr-1's priority changed to %d", tc.what, mr.Priority)
		}
	}
	if code, _ := send(map[string]string{"Cookie": cookieName + "=s3cret"}, url.Values{"csrf": {csrf}, "priority": {"90"}}); code != http.StatusOK {
		t.Errorf("signed in with the form's csrf field: %d, want the Queue page", code)
	}
	if mr, _ := act.Request(context.Background(), "mr-1"); mr.Priority != 90 {
		t.Errorf("signed in: mr-1's priority is %d, want 90", mr.Priority)
	}
}

// TestReadOnlyTokenSeesNoForms: a token of acl.read_token_file signs in
// and reads the Queue page, which offers it no form and says why; its
// Pause, priority and Cancel are refused (403) saying it may only read,
// the queue unchanged; a token of acl.token_file sees the forms.
func TestReadOnlyTokenSeesNoForms(t *testing.T) {
	act := apitest.New()
	if _, err := act.Submit(context.Background(), api.Submission{Allocation: "a1", Target: "dc2"}); err != nil {
		t.Fatal(err)
	}
	b := &fakeBackend{forecasts: []api.Forecast{testForecast(nil)}, cycle: t0}
	h, err := New(b, Options{Act: act, Tokens: func() []string { return []string{"wr1te"} }, ReadTokens: func() []string { return []string{"r3ad"} },
		Now: func(context.Context) (time.Time, error) { return t0, nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })

	jar, _ := cookiejar.New(nil)
	bc := &http.Client{Jar: jar}
	resp, err := bc.PostForm(srv.URL+"/ui/login", url.Values{"token": {"r3ad"}, "next": {"/ui/queue"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/ui/queue" {
		t.Fatalf("sign-in with a read-only token: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for _, absent := range []string{`id="pause"`, `action="/ui/queue/mr-1/priority"`, `id="cancel-mr-1"`} {
		if strings.Contains(string(page), absent) {
			t.Errorf("the Queue page for a read-only token offers %s", absent)
		}
	}
	if !strings.Contains(string(page), "Signed in with a token that may only read (acl.read_token_file)") || !strings.Contains(string(page), "mr-1") {
		t.Errorf("the Queue page for a read-only token lacks the request or why it offers no form:\n%.3000s", page)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(string(page))
	if csrf == nil {
		t.Fatal("no csrf field (sign-out's) on the page")
	}
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{"/ui/queue/pause", url.Values{"csrf": {csrf[1]}}},
		{"/ui/queue/mr-1/priority", url.Values{"csrf": {csrf[1]}, "priority": {"90"}}},
		{"/ui/queue/mr-1/cancel", url.Values{"csrf": {csrf[1]}}},
	} {
		resp, err := bc.PostForm(srv.URL+post.path, post.form)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "may only read") {
			t.Errorf("POST %s with a read-only token: %d %s; want 403 saying it may only read", post.path, resp.StatusCode, body)
		}
	}
	if code, body := get(t, bc, srv.URL+"/ui/queue/mr-1/cancel", nil); code != http.StatusForbidden || !strings.Contains(body, "may only read") {
		t.Errorf("the cancel confirmation for a read-only token: %d %s", code, body)
	}
	if q, _ := act.Queue(context.Background()); q.Paused || q.Requests[0].State != api.StatePending || q.Requests[0].Priority == 90 {
		t.Errorf("the queue after a read-only token's forms: %+v", q)
	}
	if code, page := get(t, bc, srv.URL+"/ui/queue", map[string]string{"X-Foreshape-Token": "wr1te"}); code != http.StatusOK || !strings.Contains(page, `id="pause"`) || !strings.Contains(page, `id="cancel-mr-1"`) {
		t.Errorf("the Queue page for a write token: %d, lacking its forms", code)
	}
}
