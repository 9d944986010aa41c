package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
	"github.com/foreshape/foreshape/agent/ui"
)

// liveBackend is an agent whose last cycle and series count a test sets.
type liveBackend struct {
	mu     sync.Mutex
	series int
}

func (b *liveBackend) Status(context.Context) api.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return api.Status{Node: "n1", State: "Leader", IsLeader: true, Leader: "n1", Series: b.series,
		LastCycle: &api.Cycle{Started: time.Date(2026, 1, 5, 9, 0, b.series, 0, time.UTC)}}
}
func (b *liveBackend) Policies(context.Context) []api.Policy    { return nil }
func (b *liveBackend) Forecasts(context.Context) []api.Forecast { return nil }
func (b *liveBackend) set(n int)                                { b.mu.Lock(); b.series = n; b.mu.Unlock() }

// streams sits in front of the dashboard: it can drop the event streams
// open (as an agent that restarts does) and answer new ones 502 (as a
// proxy in front of an agent that is down does), and counts them.
type streams struct {
	next   http.Handler
	mu     sync.Mutex
	cancel []context.CancelFunc
	down   bool
	opened int
}

func (s *streams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ui/events" {
		s.next.ServeHTTP(w, r)
		return
	}
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	s.cancel = append(s.cancel, cancel)
	s.opened++
	s.mu.Unlock()
	s.next.ServeHTTP(w, r.WithContext(ctx))
}

// drop ends the open streams; with down, new ones are refused until up.
func (s *streams) drop(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
	for _, c := range s.cancel {
		c()
	}
	s.cancel = nil
}

func (s *streams) up() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
	return s.opened
}

func (s *streams) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// TestBrowserLiveUpdatesAfterAReconnection: the page's live updates come
// back after the event stream was lost. What changed while it was down
// was never announced, so a page that reconnects shows it (it showed the
// old content until the next change); a stream refused outright (a 502),
// which the browser does not retry by itself, is opened again once it is
// served (the page said "reconnecting…" and never did), and a screen
// reader is told when live updates stop and when they resume. The time of
// the last update is written in UTC, as every time on the pages.
func TestBrowserLiveUpdatesAfterAReconnection(t *testing.T) {
	path := chromium(t)
	t.Parallel()
	b := &liveBackend{series: 1}
	// The stream announces nothing by itself in this test: only a
	// reconnection can bring the page up to date.
	h, err := ui.New(b, ui.Options{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st := &streams{next: h}
	srv := httptest.NewServer(st)
	defer srv.Close()
	defer h.Close()

	ctx := browser(t, path, 2*time.Minute)
	// text is what the page's script expression js gives.
	text := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	series := func() string { return text(`(document.querySelector('.facts') || {}).textContent || ''`) }
	live := func() string { return text(`document.getElementById('live').textContent`) }
	told := func() string { return text(`document.getElementById('announce').textContent`) }
	// The page reconnects 2 s after a stream ends (the stream's retry)
	// and 5 s after one is refused; 30 s is plenty on a loaded machine.
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
			if ok() {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: not within the test's time; the page shows %q, its live line %q", what, series(), live())
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/cluster"), chromedp.WaitVisible(chromedp.CSS(".facts"))); err != nil {
		t.Fatal(err)
	}
	waitFor("the stream connected", func() bool { return live() == "Live: connected" })

	// The agent restarts: its stream ends, and it comes back changed.
	b.set(2)
	st.drop(false)
	waitFor("the page showing what changed while its stream was lost", func() bool { return strings.Contains(series(), "Series2 (0 stale)") })
	if l := live(); !regexp.MustCompile(`^Live: updated \d\d:\d\d:\d\dZ$`).MatchString(l) {
		t.Errorf("live line after an update: %q, want the time in UTC", l)
	}

	// A proxy answers 502 while the agent is down: the browser closes the
	// stream for good; the page opens a new one once it is served again.
	st.drop(true)
	waitFor("the page saying its live updates stopped", func() bool { return strings.Contains(live(), "stopped") })
	if s := told(); s != "Live updates stopped." {
		t.Errorf("a screen reader is told %q when live updates stop; want %q", s, "Live updates stopped.")
	}
	opened := st.up()
	waitFor("a new stream once the agent serves it", func() bool { return st.count() > opened })
	waitFor("a screen reader told that live updates resumed", func() bool { return told() == "Live updates resumed." })
	b.set(3)
	st.drop(false)
	waitFor("the page showing the change after the new stream", func() bool { return strings.Contains(series(), "Series3 (0 stale)") })
}

// TestBrowserSignInAfterTheTokenIsRevoked: a signed-in page whose token
// the agent no longer accepts (taken out of acl.token_file, the agent
// reloaded) shows the sign-in form within a few seconds, without a
// change to announce; it kept its live updates open and showed the data
// until the next change (or forever, if none came).
func TestBrowserSignInAfterTheTokenIsRevoked(t *testing.T) {
	path := chromium(t)
	t.Parallel()
	var toks atomic.Pointer[[]string]
	toks.Store(&[]string{"old-token"})
	h, err := ui.New(&liveBackend{series: 1}, ui.Options{Tokens: func() []string { return *toks.Load() }, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()

	ctx := browser(t, path, 2*time.Minute)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/cluster"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "old-token"), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(".facts"))); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	live := chromedp.Evaluate[string](`document.getElementById('live').textContent`)
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if s, err := chromedp.Run(ctx, live); err == nil && s == "Live: connected" {
			break
		} else if time.Now().After(end) {
			t.Fatalf("the stream did not connect: live line %q, %v", s, err)
		}
	}
	toks.Store(&[]string{"new-token"})
	revoked := time.Now()
	form := chromedp.Evaluate[bool](`!!document.getElementById('token') && !document.querySelector('.facts')`)
	for {
		if ok, err := chromedp.Run(ctx, form); err == nil && ok {
			break
		}
		if time.Since(revoked) > 15*time.Second {
			s, _ := chromedp.Run(ctx, live)
			t.Fatalf("no sign-in form %s after the token was revoked; live line %q", time.Since(revoked).Round(time.Millisecond), s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("sign-in form shown %s after the token was revoked", time.Since(revoked).Round(10*time.Millisecond))
}

// hotspotBackend is an agent whose cycle a test moves on and whose one
// forecast (dc2's cpu) a test gives a hotspot.
type hotspotBackend struct {
	mu      sync.Mutex
	cycle   int
	hotspot bool
}

func (b *hotspotBackend) Status(context.Context) api.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return api.Status{Node: "n1", State: "Leader", IsLeader: true, Leader: "n1",
		LastCycle: &api.Cycle{Started: time.Date(2026, 1, 5, 9, b.cycle, 0, 0, time.UTC), Forecasts: 1}}
}
func (b *hotspotBackend) Policies(context.Context) []api.Policy {
	return []api.Policy{{Name: "dc2-web", Locality: "dc2"}}
}
func (b *hotspotBackend) Forecasts(context.Context) []api.Forecast {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := api.Forecast{Policy: "dc2-web", Locality: "dc2", Metric: "cpu", Series: "dc2:cpu", Step: "1m"}
	if b.hotspot {
		f.Hotspot = &api.Hotspot{Policy: "dc2-web", Locality: "dc2", Metric: "cpu", At: time.Date(2026, 1, 5, 10, 15, 0, 0, time.UTC),
			Line: 75, Quantile: 0.9, Probability: 0.5 + float64(b.cycle)/100, Peak: 90}
	}
	return []api.Forecast{f}
}
func (b *hotspotBackend) next(hotspot bool) {
	b.mu.Lock()
	b.cycle++
	b.hotspot = hotspot
	b.mu.Unlock()
}

// heard records, in the page, what its live regions would have a screen
// reader say: each change of an element that is one (aria-live, or the
// roles status, alert and log), and each one inserted with text.
const heard = `(() => {
  const live = '[aria-live],[role=status],[role=alert],[role=log]';
  window.heard = [];
  new MutationObserver(ms => ms.forEach(m => {
    const at = m.target.nodeType === 1 ? m.target : m.target.parentElement;
    const region = at && at.closest(live);
    if (region && region.textContent.trim()) { window.heard.push(region.textContent.trim()); return; }
    m.addedNodes.forEach(n => {
      if (n.nodeType !== 1) { return; }
      [n, ...n.querySelectorAll(live)].forEach(e => { if (e.matches(live) && e.textContent.trim()) { window.heard.push(e.textContent.trim()); } });
    });
  })).observe(document.body, {subtree: true, childList: true, characterData: true});
  return true;
})()`

// TestBrowserAnnouncesOnlyChanges: the page's live region tells a screen
// reader of a change of the queue's state and of a new hotspot, once;
// not of each live update, as it did ("Live: updated 09:14:03Z" every
// cycle, so a screen reader spoke at every update).
func TestBrowserAnnouncesOnlyChanges(t *testing.T) {
	path := chromium(t)
	t.Parallel()
	b := &hotspotBackend{}
	act := apitest.New()
	h, err := ui.New(b, ui.Options{Act: act, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fetched := 0 // the pages' live updates
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.URL.Query().Get("fragment") == "1" {
			mu.Lock()
			fetched++
			mu.Unlock()
		}
	}))
	defer srv.Close()
	defer h.Close()
	ctx := browser(t, path, 2*time.Minute)

	said := func() []string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.heard`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// update makes a change and waits for the page to show it.
	update := func(what string, change func()) {
		t.Helper()
		mu.Lock()
		was := fetched
		mu.Unlock()
		change()
		for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			mu.Lock()
			n := fetched
			mu.Unlock()
			if n > was {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("%s: the page fetched no update", what)
			}
		}
		time.Sleep(300 * time.Millisecond) // the swap after the fetch
	}
	open := func(page string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+page), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('live').textContent`))
			if err == nil && s == "Live: connected" {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("%s: the stream did not connect (%q, %v)", page, s, err)
			}
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](heard)); err != nil {
			t.Fatal(err)
		}
	}

	open("/ui/queue")
	for range 3 {
		update("a new cycle", func() { b.next(false) })
	}
	if s := said(); len(s) != 0 {
		t.Errorf("three updates that changed nothing an operator acts on were announced: %q", s)
	}
	update("the queue paused elsewhere", func() {
		if err := act.SetPaused(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	})
	if s := said(); len(s) != 1 || !strings.HasPrefix(s[0], "The queue is paused") {
		t.Errorf("after the queue was paused: announced %q, want that it is paused, once", s)
	}

	open("/ui/")
	update("a hotspot", func() { b.next(true) })
	update("the next cycle, same hotspot", func() { b.next(true) })
	if s := said(); len(s) != 1 || !strings.HasPrefix(s[0], "Hotspot in dc2 (policy dc2-web): cpu p90 crosses the 75% line at 10:15") {
		t.Errorf("after a hotspot came, then another cycle: announced %q, want the hotspot, once", s)
	}
}

// TestBrowserKeepsATypedPriority: a priority an operator is typing stays
// through a live update, which put the page's value back (and the focus
// on its field), so that Set would have sent the old priority; the
// browser does not send a 0 (outside the field's bounds, 1–100), and Set
// sends the typed value.
func TestBrowserKeepsATypedPriority(t *testing.T) {
	path := chromium(t)
	t.Parallel()
	b := &hotspotBackend{}
	act := apitest.New()
	if _, err := act.Submit(context.Background(), api.Submission{Allocation: "a1", Target: "dc2"}); err != nil {
		t.Fatal(err)
	}
	h, err := ui.New(b, ui.Options{Act: act, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var fetched, sent atomic.Int64 // the page's live updates; the priority forms it sent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/priority") {
			sent.Add(1)
		}
		h.ServeHTTP(w, r)
		if r.URL.Query().Get("fragment") == "1" {
			fetched.Add(1)
		}
	}))
	defer srv.Close()
	defer h.Close()
	ctx := browser(t, path, 2*time.Minute)
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/queue"), chromedp.WaitVisible(chromedp.ID("priority-mr-1"))); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(30 * time.Second); eval(`document.getElementById('live').textContent`) != "Live: connected"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the stream did not connect")
		}
	}
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.ID("priority-mr-1")), chromedp.Clear(chromedp.ID("priority-mr-1")),
		chromedp.SendKeys(chromedp.ID("priority-mr-1"), "90")); err != nil {
		t.Fatal(err)
	}
	was := fetched.Load()
	b.next(false)
	for end := time.Now().Add(30 * time.Second); fetched.Load() == was; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the page fetched no update")
		}
	}
	time.Sleep(300 * time.Millisecond) // the swap after the fetch
	if v, f := eval(`document.getElementById('priority-mr-1').value`), eval(`document.activeElement.id`); v != "90" || f != "priority-mr-1" {
		t.Errorf("after a live update the field holds %q with the focus on %q; want the typed 90, focused", v, f)
	}

	// The browser does not send a 0 (the field is invalid); Set then
	// sends the 90, the one form the agent gets.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("priority-mr-1"), "0"), chromedp.Click(chromedp.ID("set-priority-mr-1"))); err != nil {
		t.Fatal(err)
	}
	if v := eval(`String(document.getElementById('priority-mr-1').closest('form').checkValidity())`); v != "false" {
		t.Errorf("a form with a priority of 0 is valid to the browser (%s)", v)
	}
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("priority-mr-1"), "90"), chromedp.Click(chromedp.ID("set-priority-mr-1")),
		chromedp.WaitVisible(chromedp.CSS(".notice"))); err != nil {
		t.Fatal(err)
	}
	if mr, _ := act.Request(context.Background(), "mr-1"); mr.Priority != 90 || sent.Load() != 1 {
		t.Errorf("after 0 and then Set 90: mr-1's priority is %d, the agent got %d forms; want 90 from one", mr.Priority, sent.Load())
	}
}

// TestBrowserQueueFitsANarrowScreen: on a 390 px screen the Queue page
// scrolls its table, not the page. The table's hidden labels (the
// priority field's, "Cancel mr-2"'s) are positioned absolutely and, with
// the table's box not their containing block, escaped its scrolling and
// made the page wider than the screen.
func TestBrowserQueueFitsANarrowScreen(t *testing.T) {
	path := chromium(t)
	t.Parallel()
	act := apitest.New()
	for _, s := range []api.Submission{{Allocation: "a1", Target: "dc2"}, {Allocation: "a2", Target: "dc3"}} {
		if _, err := act.Submit(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	act.Update("mr-1", func(mr *api.MigrationRequest) { mr.State = api.StateRunning })
	h, err := ui.New(&hotspotBackend{}, ui.Options{Act: act, Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	ctx := browser(t, path, 2*time.Minute)
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulatePortrait),
		chromedp.Navigate(srv.URL+"/ui/queue"),
		chromedp.WaitVisible(chromedp.ID("priority-mr-2")),
	); err != nil {
		t.Fatal(err)
	}
	widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](
		`[document.documentElement.scrollWidth, window.innerWidth, document.querySelector('.table-wrap').scrollWidth]`))
	if err != nil {
		t.Fatal(err)
	}
	if widths[0] > widths[1]+1 {
		t.Errorf("the Queue page is %d px wide on a %d px screen: it scrolls sideways", widths[0], widths[1])
	}
	if widths[2] <= widths[1] {
		t.Errorf("the queue's table is %d px wide at %d px; the test wants one that has to scroll", widths[2], widths[1])
	}
}
