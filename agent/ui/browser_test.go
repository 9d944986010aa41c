package ui_test

// Browser tests: `foreshape agent -dev` in-process, the dashboard in
// Debian's Chromium (headless) driven by chromedp, assertions on the DOM.
// They skip with a message where Chromium is missing, unless
// FORESHAPE_REQUIRE_CHROMIUM is set (as .ci/run does), where they fail.
// `make screenshots` runs them with -ui.screenshots, which follows the dev
// scenario through the dc2 surge and the rack maintenance and saves
// screenshots under testdata/ui/ at the repository's root.
// They run in parallel with each other (t.Parallel, after the other tests
// of the package; TestBrowserDashboard, before them, alone): each has its
// own server and its own tab, in a browser context of its own, of one
// shared Chromium (see shared), and most of their time is spent waiting
// on the page's timers.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/command"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/internal/testport"
)

var screenshots = flag.Bool("ui.screenshots", false,
	"follow the dev scenario through the dc2 surge and the rack maintenance and save screenshots under testdata/ui/")

// chromium finds the browser, or skips (fails when FORESHAPE_REQUIRE_CHROMIUM is set).
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests run the dev agent and Chromium; skipped with -short")
	}
	for _, name := range []string{os.Getenv("FORESHAPE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "browser tests skipped: no Chromium found (install Debian's chromium package, or set FORESHAPE_CHROMIUM to a Chromium binary)"
	if os.Getenv("FORESHAPE_REQUIRE_CHROMIUM") != "" {
		t.Fatal(msg + "; FORESHAPE_REQUIRE_CHROMIUM is set")
	}
	t.Skip(msg)
	return ""
}

// shared is the one headless Chromium of the package's browser tests,
// started by the first of them. Each test opens its tab in a browser
// context of its own (cookies, storage and cache apart, as a fresh
// profile's), so that sharing the process changes nothing a test sees;
// a Chromium start costs some seconds of CPU, eight of which were a
// third of the package's time on 2 busy cores. TestMain stops it.
var shared struct {
	once sync.Once
	ctx  context.Context // the browser's first tab, which new tabs derive from
	stop func()
	err  error
}

// TestMain stops the shared Chromium once the tests have run.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	os.Exit(code)
}

// browser opens a tab of the shared headless Chromium (started by the
// first caller) in a browser context of its own, and returns the tab's
// context, ended after timeout or with the test, which closes the tab and
// disposes of its browser context. A Chromium that exits before it
// listens ("chrome failed to start", seen once at load 7 on 2 cores while
// the same test passed alone) is started again, up to three times in all:
// that is the browser's start, not the dashboard's behaviour.
func browser(t *testing.T, path string, timeout time.Duration) context.Context {
	t.Helper()
	shared.once.Do(func() {
		for try := 1; try <= 3; try++ {
			if shared.ctx, shared.stop, shared.err = startBrowser(path); shared.err == nil {
				return
			}
			t.Logf("start chromium %s (try %d of 3): %v", path, try, shared.err)
		}
	})
	if shared.err != nil {
		t.Fatalf("start chromium %s: %v", path, shared.err)
	}
	tab, closeTab := chromedp.NewContext(shared.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(tab); err != nil {
		closeTab()
		t.Fatalf("open a tab in chromium %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(tab, timeout)
	t.Cleanup(func() { cancel(); closeTab() })
	return ctx
}

// startBrowser is one start of the shared Chromium, with this machine's
// flags and a fresh profile; stop ends it and removes the profile. The
// tests' tabs run side by side, each in a window of its own: the flags
// that keep a window in the background from having its timers and
// rendering slowed keep the tabs' pages running as a lone one's.
func startBrowser(path string) (context.Context, func(), error) {
	dir, err := os.MkdirTemp("", "foreshape-ui-chromium-")
	if err != nil {
		return nil, nil, err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	stop := func() { cancelTab(); cancelAlloc(); os.RemoveAll(dir) }
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	return ctx, stop, nil
}

// doLive runs actions, one after the other, on a page whose live updates
// replace the main content every cycle. An element a query found can be
// replaced before an action reaches it (the browser then answers that it
// knows no such node, or that the node is detached); the action did
// nothing to the page then, so it runs again, until the context ends.
// What the actions before it did stays done through a live update (a page
// loaded, a value typed: the page keeps what an operator typed), so only
// the refused action runs again. Running them all again from the start
// needed the whole sequence to fit between two updates, a second apart
// under agent -dev, which on a busy machine it may not.
func doLive(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) error {
	for _, a := range actions {
		for {
			err := chromedp.Do(ctx, a)
			if err == nil {
				break
			}
			if ctx.Err() != nil || !staleNode(err) {
				return err
			}
		}
	}
	return nil
}

// staleNode reports whether err is the browser's answer about an element
// that a live update removed from the page.
func staleNode(err error) bool {
	for _, m := range []string{"No node with given id found", "Could not find node with given id", "Node is detached from document",
		"Could not compute content quads"} {
		if strings.Contains(err.Error(), m) {
			return true
		}
	}
	return false
}

// devAgent is a running `foreshape agent -dev`.
type devAgent struct {
	URL    string // the HTTP API and dashboard
	Nomad  string // the embedded simulator
	Client *api.Client
	log    *syncbuf.Buffer
}

// startDevAgent runs `foreshape agent -dev` with extra args in-process until
// the test ends.
func startDevAgent(t *testing.T, args ...string) *devAgent {
	t.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testport.Get(t))
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	done := make(chan struct{})
	code := 0
	go func() {
		defer close(done)
		code = command.Run(ctx, append([]string{"agent", "-dev", "-http-addr", httpAddr}, args...), out, errb)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("agent -dev did not stop within 30s")
		}
	})
	httpRE, nomadRE := regexp.MustCompile(`HTTP API: (http://\S+)`), regexp.MustCompile(`Nomad: (http://\S+)`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		h, n := httpRE.FindStringSubmatch(out.String()), nomadRE.FindStringSubmatch(out.String())
		if h != nil && n != nil {
			if !strings.Contains(out.String(), "Dashboard: "+h[1]+"/ui/\n") {
				t.Errorf("the banner does not point at the dashboard:\n%s", out.String())
			}
			return &devAgent{URL: h[1], Nomad: n[1], Client: &api.Client{Address: h[1]}, log: errb}
		}
		select {
		case <-done:
			t.Fatalf("agent -dev exited %d:\n%s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent -dev printed no banner within 30s:\n%s\n%s", out.String(), errb.String())
		}
	}
}

// pageState is what the tests read off the Localities page's DOM.
type pageState struct {
	DataTime string             `json:"dataTime"`
	Panels   map[string]panelJS `json:"panels"` // by policy
}

type panelJS struct {
	Locality string   `json:"locality"`
	Bands    []string `json:"bands"`    // metrics with a drawn p10–p90 band
	Hotspots []string `json:"hotspots"` // data-at of the hotspot callouts
}

const readPage = `(() => {
  const t = document.querySelector('.statusbar time');
  const out = {dataTime: t ? t.getAttribute('datetime') : '', panels: {}};
  for (const p of document.querySelectorAll('section.panel')) {
    const bands = [];
    for (const m of p.querySelectorAll('.metric')) {
      const poly = m.querySelector('polygon.band');
      if (poly && poly.getAttribute('points').split(' ').length >= 4) bands.push(m.dataset.metric);
    }
    out.panels[p.dataset.policy] = {
      locality: p.dataset.locality, bands,
      hotspots: Array.from(p.querySelectorAll('p.hotspot')).map(h => h.dataset.at),
    };
  }
  return out;
})()`

// waitPage reloads nothing: it reads the live page until ok holds.
func waitPage(t *testing.T, ctx context.Context, what string, within time.Duration, ok func(pageState) bool) pageState {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(250 * time.Millisecond) {
		st, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(st)
			t.Fatalf("%s: not within %s; page state %s", what, within, b)
		}
	}
}

// dataTime is the agent's data time as the page shows it.
func (st pageState) dataTime() time.Time {
	tm, _ := time.Parse(time.RFC3339, st.DataTime)
	return tm
}

// surgeDeclared reports whether the dc2 forecast announces the surge yet.
func surgeDeclared(a *devAgent) bool {
	fcs, err := a.Client.Forecast(context.Background(), "dc2", "cpu")
	if err != nil {
		return false
	}
	for _, f := range fcs {
		for _, w := range f.EventWindows {
			if w.Kind == "peak" && w.Schedule == "surge" {
				return true
			}
		}
	}
	return false
}

// surgeWindow reads the dc2 surge's window from the agent's forecast.
func surgeWindow(t *testing.T, a *devAgent) (time.Time, time.Time) {
	t.Helper()
	fcs, err := a.Client.Forecast(context.Background(), "dc2", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fcs {
		for _, w := range f.EventWindows {
			if w.Kind == "peak" && w.Schedule == "surge" {
				return w.Start, w.End
			}
		}
	}
	t.Fatalf("the dc2 forecast declares no surge: %+v", fcs)
	return time.Time{}, time.Time{}
}

// screenshot saves the whole page as a PNG, or only the 1280×800 viewport
// when viewport is set (for pages that grow long, such as the decisions).
func screenshot(t *testing.T, ctx context.Context, name string, viewport bool) {
	t.Helper()
	if !*screenshots {
		return
	}
	capture := chromedp.FullScreenshot(100)
	if viewport {
		capture = chromedp.CaptureScreenshot()
	}
	png, err := chromedp.Run(ctx, capture)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "testdata", "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved testdata/ui/%s (%d KiB)", name, len(png)/1024)
}

// firstPaint resolves to the page's first contentful paint in milliseconds
// after navigation started, as the browser's paint timing reports it.
const firstPaint = `new Promise(resolve => {
  new PerformanceObserver(list => {
    const e = list.getEntriesByName('first-contentful-paint')[0];
    if (e) resolve(e.startTime);
  }).observe({type: 'paint', buffered: true});
  setTimeout(() => resolve(-1), 5000);
})`

// TestBrowserDashboard follows `agent -dev` in Chromium: bands for every dev
// locality, the dc2 hotspot before the surge, the queue's pause, resume,
// priority and cancel, a narrow screen and the keyboard.
func TestBrowserDashboard(t *testing.T) {
	// Not parallel: beside the other browser tests, its queue flow took
	// 7 to 60 s where it takes 2, at 180 virtual seconds a wall second,
	// and at load 13 once did not find its request's priority field in
	// 8 minutes.
	path := chromium(t)
	a := startDevAgent(t)
	ctx := browser(t, path, 8*time.Minute)

	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/ui/")); err != nil {
		t.Fatal(err)
	}
	pols, err := a.Client.Policies(ctx)
	if err != nil || len(pols) == 0 {
		t.Fatalf("policies: %v %v", pols, err)
	}

	// Bands render for every dev locality, through live updates (no reload).
	st := waitPage(t, ctx, "bands for every dev locality", 90*time.Second, func(st pageState) bool {
		for _, p := range pols {
			if len(st.Panels[p.Name].Bands) < 2 {
				return false
			}
		}
		return true
	})
	for _, p := range pols {
		t.Logf("%s (%s): bands for %v", p.Name, st.Panels[p.Name].Locality, st.Panels[p.Name].Bands)
	}

	// First render of a fresh load, as the browser measures it (logged, not
	// asserted: a figure for the notes, not a timed test).
	var paints []float64
	for range 5 {
		if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/ui/")); err != nil {
			t.Fatal(err)
		}
		paint, err := chromedp.Run(ctx, chromedp.Evaluate[float64](firstPaint, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		paints = append(paints, paint)
	}
	sort.Float64s(paints)
	t.Logf("first contentful paint of /ui/ with %d policies over 5 loads: min %.0f ms, median %.0f ms, max %.0f ms",
		len(pols), paints[0], paints[2], paints[4])

	// A hotspot for dc2 shows before the surge begins: the surge is a
	// scheduled peak the forecast announces once it is inside the horizon.
	// (Work the rack maintenance moves into dc2 may show a hotspot
	// earlier; the one this checks comes with the surge.)
	st = waitPage(t, ctx, "a dc2 hotspot", 150*time.Second, func(st pageState) bool {
		return len(st.Panels["dc2-web"].Hotspots) > 0 && surgeDeclared(a)
	})
	surgeStart, surgeEnd := surgeWindow(t, a)
	if !st.dataTime().Before(surgeStart) {
		t.Fatalf("the dc2 hotspot showed at data time %s, not before the surge at %s", st.DataTime, surgeStart)
	}
	t.Logf("dc2 hotspot shown at data time %s, %s before the surge at %s (hotspot at %v)",
		st.DataTime, surgeStart.Sub(st.dataTime()), surgeStart.Format("15:04"), st.Panels["dc2-web"].Hotspots)
	screenshot(t, ctx, "before-surge.png", false)

	t.Run("pattern", func(t *testing.T) {
		// Bands and lines differ by pattern, not only by colour.
		styles, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`(() => {
		  const s = sel => { const e = document.querySelector(sel); return e ? getComputedStyle(e) : null; };
		  return {band: s('polygon.band').fill, planning: s('path.planning').strokeDasharray,
		          median: s('path.median').strokeDasharray, headroom: s('line.headroom').strokeDasharray,
		          history: s('path.history').strokeDasharray};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(styles["band"], "pat-band") {
			t.Errorf("band fill %q: want the hatch pattern", styles["band"])
		}
		seen := map[string]string{}
		for _, k := range []string{"planning", "median", "headroom", "history"} {
			if other, dup := seen[styles[k]]; dup {
				t.Errorf("%s and %s share the dash pattern %q", k, other, styles[k])
			}
			seen[styles[k]] = k
		}
	})

	t.Run("keyboard", func(t *testing.T) {
		active := chromedp.Evaluate[string](`document.activeElement.textContent.trim()`)
		if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/ui/"), chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		first, err := chromedp.Run(ctx, active)
		if err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		second, err := chromedp.Run(ctx, active)
		if err != nil {
			t.Fatal(err)
		}
		if first != "Skip to content" || second != "foreshape" {
			t.Errorf("tab order starts %q, %q; want the skip link, then the header", first, second)
		}
		// A live update between the focus and the key replaces the summary
		// (a details keeps its open state through one, a summary without
		// an id not the focus), and the key goes to the page: the focus is
		// then off the summary, and the two run again. An Enter the
		// focused summary got and did not open its why with fails.
		type whyState struct {
			Model   string `json:"model"`   // the opened why's text; "" while it is closed
			Focused bool   `json:"focused"` // the focus is on the summary still
		}
		var why whyState
		for {
			if err := doLive(ctx, chromedp.Focus(chromedp.CSS(`details.why summary`)), chromedp.KeyEvent("\r")); err != nil {
				t.Fatal(err)
			}
			why, err = chromedp.Run(ctx, chromedp.Evaluate[whyState](`({model: document.querySelector('details.why').open ? document.querySelector('details.why p').textContent : '',
			    focused: document.activeElement.matches('details.why summary')})`))
			if err != nil {
				t.Fatal(err)
			}
			if why.Model != "" || why.Focused {
				break
			}
			t.Log("a live update took the focus off the summary before the Enter; again")
		}
		if why.Model == "" {
			t.Error("Enter on a model's summary did not open its why")
		}
	})

	t.Run("narrow", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulatePortrait),
			chromedp.Navigate(a.URL+"/ui/"),
			chromedp.WaitVisible(chromedp.CSS(`section.panel`)),
		); err != nil {
			t.Fatal(err)
		}
		overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
			t.Fatal(err)
		}
		if overflow {
			t.Error("the Localities page scrolls sideways at 390 px")
		}
	})

	t.Run("queue", func(t *testing.T) { queueFlow(t, ctx, a) })

	if !*screenshots {
		return
	}
	// The rest follows the scenario for the screenshots, in data-time order:
	// the rack maintenance and the surge, each a third of the way in.
	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/ui/")); err != nil {
		t.Fatal(err)
	}
	take := func(name, what string, start, end time.Time) {
		at := start.Add(end.Sub(start) / 3)
		st := waitPage(t, ctx, "data time "+what, 6*time.Minute, func(st pageState) bool { return !st.dataTime().Before(at) })
		if !st.dataTime().Before(end) {
			t.Fatalf("%s: the data time %s is already past its end %s", what, st.DataTime, end)
		}
		screenshot(t, ctx, name, false)
	}
	if mStart, mEnd, ok := maintenanceWindow(t, a, 0); ok && mStart.Before(surgeStart) {
		take("during-maintenance.png", "inside the rack maintenance", mStart, mEnd)
		take("during-surge.png", "inside the surge", surgeStart, surgeEnd)
	} else {
		take("during-surge.png", "inside the surge", surgeStart, surgeEnd)
		mStart, mEnd, ok = maintenanceWindow(t, a, 3*time.Minute)
		if !ok {
			t.Fatal("no forecast announced the rack maintenance within 3 minutes")
		}
		take("during-maintenance.png", "inside the rack maintenance", mStart, mEnd)
	}
	for _, p := range []string{"queue", "decisions", "cluster"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/ui/"+p), chromedp.WaitVisible(chromedp.CSS(`h1`))); err != nil {
			t.Fatal(err)
		}
		screenshot(t, ctx, p+".png", true)
	}
}

// maintenanceWindow reads the dc1 rack maintenance's window from the
// agent's forecasts, waiting up to within for it to enter their horizon.
func maintenanceWindow(t *testing.T, a *devAgent, within time.Duration) (time.Time, time.Time, bool) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(time.Second) {
		fcs, err := a.Client.Forecasts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fcs {
			for _, w := range f.EventWindows {
				if w.Kind == "drain" && strings.Contains(w.Schedule, "maintenance") {
					return w.Start, w.End, true
				}
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, time.Time{}, false
		}
	}
}

// queueFlow pauses the queue from the dashboard, submits a request through
// the API, sets its priority and then cancels it from the dashboard, and
// sees each through the API, then resumes the queue.
func queueFlow(t *testing.T, ctx context.Context, a *devAgent) {
	if _, err := a.Client.Queue(ctx, nil); err != nil {
		var se *api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusServiceUnavailable {
			t.Skipf("the dev agent serves no migration queue yet (%v)", err)
		}
		t.Fatal(err)
	}
	if err := doLive(ctx,
		chromedp.Navigate(a.URL+"/ui/queue"),
		chromedp.Click(chromedp.ID("pause")),
		chromedp.WaitVisible(chromedp.ID("resume")),
	); err != nil {
		t.Fatalf("pause from the dashboard: %v", err)
	}
	if q, err := a.Client.Queue(ctx, nil); err != nil || !q.Paused {
		t.Fatalf("after Pause the API says paused=%v (%v)", q.Paused, err)
	}

	id := submitOne(t, ctx, a)
	if err := doLive(ctx,
		chromedp.Navigate(a.URL+"/ui/queue"),
		chromedp.SetValue(chromedp.ID("priority-"+id), "90"),
		chromedp.Click(chromedp.ID("set-priority-"+id)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)),
	); err != nil {
		t.Fatalf("set the priority of %s from the dashboard: %v", id, err)
	}
	if mr, err := a.Client.Request(ctx, id); err != nil || mr.Priority != 90 {
		t.Errorf("after Set 90 the API says %s's priority is %d (%v)", id, mr.Priority, err)
	}
	if notice, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.notice').textContent`)); err != nil ||
		notice != "Priority of "+id+" set to 90; the leader scores it again at its next pass." {
		t.Errorf("the page after Set says %q (%v)", notice, err)
	}

	if err := doLive(ctx,
		chromedp.Navigate(a.URL+"/ui/queue"),
		chromedp.Click(chromedp.ID("cancel-"+id)),
		chromedp.WaitVisible(chromedp.ID("confirm-cancel")),
	); err != nil {
		t.Fatalf("open the cancel confirmation of %s: %v", id, err)
	}
	if mr, err := a.Client.Request(ctx, id); err != nil || mr.State == api.StateCancelled {
		t.Fatalf("the confirmation page alone cancelled %s (%v)", id, err)
	}
	if err := doLive(ctx,
		chromedp.Click(chromedp.ID("confirm-cancel")),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)),
	); err != nil {
		t.Fatalf("confirm the cancel: %v", err)
	}
	if mr, err := a.Client.Request(ctx, id); err != nil || mr.State != api.StateCancelled {
		t.Errorf("after Cancel the API says %s is %q (%v), want cancelled", id, mr.State, err)
	}

	if err := doLive(ctx,
		chromedp.Click(chromedp.ID("resume")),
		chromedp.WaitVisible(chromedp.ID("pause")),
	); err != nil {
		t.Fatalf("resume from the dashboard: %v", err)
	}
	if q, err := a.Client.Queue(ctx, nil); err != nil || q.Paused {
		t.Errorf("after Resume the API says paused=%v (%v)", q.Paused, err)
	}
}

// submitOne queues a move of one running allocation of a service job of
// the simulated cluster to another datacenter through the API, trying
// allocations until the agent accepts one. A system job's allocation is
// never movable; on a busy machine the first 20 tries were all of the
// system job's and of the newest allocations (listed first), which the
// agent answered it knew no allocation of, and refused.
func submitOne(t *testing.T, ctx context.Context, a *devAgent) string {
	t.Helper()
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: a.Nomad})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := nc.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	dc := map[string]string{}
	for _, n := range nodes {
		dc[n.ID] = n.Datacenter
	}
	allocs, _, err := nc.Allocations().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var last error
	tries := 0
	for _, al := range allocs {
		if al.ClientStatus != "running" || al.JobType != nomadapi.JobTypeService || tries >= 20 {
			continue
		}
		for _, target := range []string{"dc3", "dc2"} {
			if target == dc[al.NodeID] {
				continue
			}
			tries++
			id, err := a.Client.Submit(ctx, api.Submission{Allocation: al.ID, Target: target, Reason: "browser test"})
			if err == nil {
				return id
			}
			last = err
		}
	}
	t.Fatalf("the agent accepted none of %d submissions; last: %v", tries, last)
	return ""
}

// TestBrowserTokenRequired runs the dev agent with ACLs on: a request
// without a token is refused, and the dashboard opens after signing in with
// one.
func TestBrowserTokenRequired(t *testing.T) {
	path := chromium(t)
	t.Parallel()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("ui-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("acl {\n  enabled    = true\n  token_file = %q\n}\n", tokens)), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startDevAgent(t, "-config", cfg)

	for _, p := range []string{"/ui/", "/ui/queue", "/ui/cluster", "/ui/events", "/v1/status"} {
		resp, err := http.Get(a.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s without a token: %d, want 403", p, resp.StatusCode)
		}
	}
	for _, p := range []string{"/ui/queue/pause", "/ui/queue/mr-1/priority"} {
		resp, err := http.PostForm(a.URL+p, url.Values{"priority": {"90"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d, want 403", p, resp.StatusCode)
		}
	}

	ctx := browser(t, path, 2*time.Minute)
	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/ui/cluster"), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatal(err)
	}
	panels, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('section.panel, table.data').length`))
	if err != nil {
		t.Fatal(err)
	}
	if panels != 0 {
		t.Errorf("without a token the browser sees %d data panels", panels)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), "ui-test-token"),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`table.data`)),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	// Read in one evaluation: the page's live updates replace the main
	// content (h1 included) on every cycle, so a node found by a query may
	// be gone by the time its text is asked for.
	heading, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('h1').textContent.trim()`))
	if err != nil {
		t.Fatal(err)
	}
	if heading != "Cluster" {
		t.Errorf("after signing in the browser shows %q, want the Cluster page it asked for", heading)
	}
}
