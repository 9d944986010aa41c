package ui

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// fakeBackend serves fixed forecasts and a status whose last cycle a test
// can move.
type fakeBackend struct {
	mu        sync.Mutex
	forecasts []api.Forecast
	cycle     time.Time
}

func (f *fakeBackend) Status(context.Context) api.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	healthy, silent := true, false
	st := api.Status{Node: "n1", State: "Leader", IsLeader: true, Leader: "n1",
		Peers: []api.Peer{
			{ID: "n1", Address: "127.0.0.1:7576", Suffrage: "voter", Leader: true, Name: "server-a", HTTPAddress: "127.0.0.1:7575", Version: "0.1.0", Healthy: &healthy},
			{ID: "n2", Address: "127.0.0.1:7586", Suffrage: "nonvoter", Name: "server-b", Healthy: &silent},
		},
		Pending: []api.PendingForecast{{Policy: "dc3-edge", Series: "dc3:cpu", Status: api.ForecastWarmingUp, Note: "warming up: 3 of 12 points"}},
		Clients: []api.ClientAgent{{NodeID: "node-1", NodeName: "web-01", Name: "client-web-01", Address: "10.0.0.5:7575", Reporting: false}},
	}
	if !f.cycle.IsZero() {
		st.LastCycle = &api.Cycle{Started: f.cycle, DataTime: t0, Forecasts: len(f.forecasts)}
	}
	return st
}

func (f *fakeBackend) Policies(context.Context) []api.Policy {
	return []api.Policy{{Name: "dc2-web", Locality: "dc2"}}
}

func (f *fakeBackend) Forecasts(context.Context) []api.Forecast {
	return append([]api.Forecast(nil), f.forecasts...)
}

func (f *fakeBackend) setCycle(t time.Time) {
	f.mu.Lock()
	f.cycle = t
	f.mu.Unlock()
}

func newTestServer(t *testing.T, tokens []string) (*httptest.Server, *fakeBackend) {
	t.Helper()
	b := &fakeBackend{forecasts: []api.Forecast{testForecast(func(f *api.Forecast) {
		f.AgeSeconds = 180
		f.Workload = &api.Workload{Kind: "diurnal", SeasonalStrength: 0.82, Bound: "cpu-bound", IO: "read-heavy", Points: 1440, From: t0}
		f.Hotspot = &api.Hotspot{Policy: "dc2-web", Locality: "dc2", Metric: "cpu", At: t0.Add(6 * time.Minute), Line: 75, Quantile: 0.9, Probability: 0.8,
			Detail: "on the nodes of dc2 that stay while dc2-a-* are drained: p90 40.0% ×2.00 = 80.0% over the 75% line"}
	})}, cycle: t0}
	h, err := New(b, Options{Tokens: func() []string { return tokens }, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return srv, b
}

func get(t *testing.T, c *http.Client, u string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestPagesRender(t *testing.T) {
	srv, _ := newTestServer(t, nil)
	c := srv.Client()
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/ui/", []string{`data-locality="dc2"`, `<polygon class="band"`, `class="hotspot"`, "auto(ets)", `class="headroom"`, "Skip to content",
			"Forecast from the leader's cycle 3m0s ago.", "diurnal (seasonal strength 0.82), cpu-bound, disks read-heavy",
			"It is on the nodes of dc2 that stay while dc2-a-* are drained: p90 40.0% ×2.00 = 80.0% over the 75% line."}},
		{"/ui/cluster", []string{"127.0.0.1:7576", `data-suffrage="voter"`, `data-suffrage="nonvoter"`, "server-b", "not answering",
			"web-01", "client-web-01", "the leader polls this node itself", `data-status="warming_up"`, "warming up: 3 of 12 points"}},
		{"/ui/static/ui.css", []string{".band"}},
		{"/ui/static/ui.js", []string{"EventSource"}},
	} {
		code, body := get(t, c, srv.URL+tc.path, nil)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", tc.path, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: body lacks %q", tc.path, w)
			}
		}
	}
	code, body := get(t, c, srv.URL+"/ui/?fragment=1", nil)
	if code != http.StatusOK || strings.Contains(body, "<html") || !strings.Contains(body, `class="panel"`) {
		t.Errorf("fragment: %d, want the main content alone:\n%.300s", code, body)
	}
	if code, _ := get(t, c, srv.URL+"/ui/nope", nil); code != http.StatusNotFound {
		t.Errorf("GET /ui/nope: %d, want 404", code)
	}
}

func TestTokenRules(t *testing.T) {
	srv, _ := newTestServer(t, []string{"s3cret"})
	c := srv.Client()
	for _, path := range []string{"/ui/", "/ui/cluster", "/ui/events"} {
		code, body := get(t, c, srv.URL+path, nil)
		if code != http.StatusForbidden {
			t.Errorf("GET %s without a token: %d, want 403", path, code)
		}
		if strings.Contains(body, "dc2") {
			t.Errorf("GET %s without a token leaks data:\n%.300s", path, body)
		}
		if code, _ := get(t, c, srv.URL+path, map[string]string{"X-Foreshape-Token": "wrong"}); code != http.StatusForbidden {
			t.Errorf("GET %s with a wrong token: %d, want 403", path, code)
		}
	}
	if code, body := get(t, c, srv.URL+"/ui/", map[string]string{"X-Foreshape-Token": "s3cret"}); code != http.StatusOK || !strings.Contains(body, "dc2") {
		t.Errorf("GET /ui/ with the token: %d", code)
	}
	if code, _ := get(t, c, srv.URL+"/ui/static/ui.css", nil); code != http.StatusOK {
		t.Errorf("static assets need no token (they hold no data): %d", code)
	}

	// The login form keeps the token in an HttpOnly cookie.
	jar, _ := cookiejar.New(nil)
	bc := &http.Client{Jar: jar}
	resp, err := bc.PostForm(srv.URL+"/ui/login", url.Values{"token": {"wrong"}, "next": {"/ui/cluster"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login with a wrong token: %d, want 403", resp.StatusCode)
	}
	resp, err = bc.PostForm(srv.URL+"/ui/login", url.Values{"token": {"s3cret"}, "next": {"https://elsewhere.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/ui/" || !strings.Contains(string(body), "dc2") {
		t.Errorf("login: ended at %s with %d, want the dashboard (and no open redirect)", resp.Request.URL, resp.StatusCode)
	}
	u, _ := url.Parse(srv.URL + "/ui/")
	if cs := jar.Cookies(u); len(cs) != 1 || cs[0].Name != cookieName {
		t.Errorf("cookies %v, want %s", cs, cookieName)
	}

	// Sign-out needs the CSRF field derived from the token.
	resp, err = bc.PostForm(srv.URL+"/ui/logout", url.Values{"csrf": {"forged"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout with a forged csrf field: %d, want 403", resp.StatusCode)
	}
	if code, _ := get(t, bc, srv.URL+"/ui/", nil); code != http.StatusOK {
		t.Errorf("still signed in after a forged logout: %d", code)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/ui/cluster": "/ui/cluster", "": "/ui/", "https://x/": "/ui/", "//x/ui/": "/ui/", "/v1/status": "/ui/", "/ui/\\\\x": "/ui/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEventsAnnounceANewCycle(t *testing.T) {
	srv, b := newTestServer(t, nil)
	next := eventStream(t, srv)
	b.setCycle(t0.Add(time.Minute))
	if e := next(); e != "update" {
		t.Fatalf("after a new cycle: event %q, want update", e)
	}
}

// TestAssetsStaySmall keeps the embedded templates, style and script far
// under the dashboard's 1 MB budget for the binary (html/template itself
// takes most of the rest).
func TestAssetsStaySmall(t *testing.T) {
	total := 0
	err := fs.WalkDir(assets, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(path)
		total += len(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if total > 128<<10 {
		t.Errorf("embedded assets are %d KiB, over 128 KiB", total>>10)
	}
}

func TestMetricWithoutForecast(t *testing.T) {
	b := &fakeBackend{forecasts: []api.Forecast{testForecast(func(f *api.Forecast) {
		f.Status, f.Note = api.ForecastWarmingUp, "warming up: 5 of 12 points, first forecast at 2026-01-05T08:12:00Z"
		f.Times, f.Mean, f.Bands, f.History = nil, nil, nil, nil
	})}, cycle: t0}
	h, err := New(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	code, body := get(t, srv.Client(), srv.URL+"/ui/", nil)
	if code != http.StatusOK || !strings.Contains(body, "warming up: 5 of 12 points") || strings.Contains(body, `class="chart-svg"`) {
		t.Errorf("%d: want the metric listed without a chart:\n%.800s", code, body)
	}
}

func TestFreshForecastsSayNoAge(t *testing.T) {
	b := &fakeBackend{forecasts: []api.Forecast{testForecast(func(f *api.Forecast) { f.AgeSeconds = 30 })}, cycle: t0}
	h, err := New(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	if _, body := get(t, srv.Client(), srv.URL+"/ui/", nil); strings.Contains(body, "Forecast from the leader") {
		t.Error("a forecast 30 s old is flagged as old")
	}
}

// TestEveryAnswerAllowsOnlyItsOrigin: pages, fragments, assets, the
// sign-in form, a refusal without a token and a missing page all carry a
// Content-Security-Policy that allows only the agent's own origin.
func TestEveryAnswerAllowsOnlyItsOrigin(t *testing.T) {
	srv, _ := newTestServer(t, []string{"s3cret"})
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	signedIn := map[string]string{"X-Foreshape-Token": "s3cret"}
	for _, tc := range []struct {
		path string
		hdr  map[string]string
		code int
	}{
		{"/ui/", signedIn, http.StatusOK},
		{"/ui/?fragment=1", signedIn, http.StatusOK},
		{"/ui/queue", signedIn, http.StatusOK},
		{"/ui/static/ui.css", nil, http.StatusOK},
		{"/ui/login", nil, http.StatusOK},
		{"/ui/", nil, http.StatusForbidden},
		{"/ui/nope", signedIn, http.StatusNotFound},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != tc.code || !strings.HasPrefix(csp, "default-src 'self';") || !onlySelf(csp) {
			t.Errorf("GET %s: %d with Content-Security-Policy %q; want %d and only 'self'", tc.path, resp.StatusCode, csp, tc.code)
		}
	}
}

// onlySelf reports whether every source the Content-Security-Policy csp
// allows is the agent's own origin ('self') or none ('none'): a scheme
// such as data: or https:, a host or * allows another.
func onlySelf(csp string) bool {
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) < 2 {
			return false
		}
		for _, src := range f[1:] {
			if src != "'self'" && src != "'none'" {
				return false
			}
		}
	}
	return true
}

// TestSignInCookie: the token is kept in an HttpOnly, SameSite=Strict
// cookie scoped to /ui/, Secure when the API serves TLS (docs/ui.md).
func TestSignInCookie(t *testing.T) {
	h, err := New(&fakeBackend{cycle: t0}, Options{Tokens: func() []string { return []string{"s3cret"} }, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	for _, tls := range []bool{false, true} {
		srv := httptest.NewUnstartedServer(h)
		if tls {
			srv.StartTLS()
		} else {
			srv.Start()
		}
		c := srv.Client()
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.PostForm(srv.URL+"/ui/login", url.Values{"token": {"s3cret"}, "next": {"/ui/"}})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cs := resp.Cookies()
		if len(cs) != 1 {
			t.Fatalf("TLS %v: cookies %v, want one", tls, cs)
		}
		k := cs[0]
		if k.Name != cookieName || k.Path != "/ui/" || !k.HttpOnly || k.SameSite != http.SameSiteStrictMode || k.Secure != tls {
			t.Errorf("TLS %v: cookie %s", tls, k)
		}
	}
}

// TestFocusRingContrast: the focus ring keyboard users follow stands out
// from the page and the panels by 3:1 at least (WCAG 2.2's non-text
// contrast), in light and dark mode: the light mode's amber (#f0a400) was
// 2.1:1 on white and 2.0:1 on the header's grey.
func TestFocusRingContrast(t *testing.T) {
	css, err := fs.ReadFile(assets, "assets/static/ui.css")
	if err != nil {
		t.Fatal(err)
	}
	light, dark, ok := strings.Cut(string(css), "@media (prefers-color-scheme: dark)")
	if !ok {
		t.Fatal("no dark mode block in ui.css")
	}
	colour := func(block, name string) string {
		m := regexp.MustCompile(`--` + name + `: (#[0-9a-fA-F]{6})`).FindStringSubmatch(block)
		if m == nil {
			return ""
		}
		return m[1]
	}
	luminance := func(hex string) float64 {
		var rgb [3]float64
		for i := range rgb {
			v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
			c := float64(v) / 255
			if c <= 0.03928 {
				rgb[i] = c / 12.92
			} else {
				rgb[i] = math.Pow((c+0.055)/1.055, 2.4)
			}
		}
		return 0.2126*rgb[0] + 0.7152*rgb[1] + 0.0722*rgb[2]
	}
	for _, mode := range []struct{ name, block string }{{"light", light}, {"dark", dark}} {
		for _, bg := range []string{"bg", "panel"} {
			f, b := colour(mode.block, "focus"), colour(mode.block, bg)
			if f == "" {
				f = colour(light, "focus") // dark mode keeps the light one
			}
			if f == "" || b == "" {
				t.Fatalf("%s mode: --focus %q, --%s %q", mode.name, f, bg, b)
			}
			hi, lo := luminance(f), luminance(b)
			if hi < lo {
				hi, lo = lo, hi
			}
			if r := (hi + 0.05) / (lo + 0.05); r < 3 {
				t.Errorf("%s mode: focus ring %s on --%s %s has contrast %.2f:1, want 3:1 at least", mode.name, f, bg, b, r)
			}
		}
	}
}

// eventStream opens srv's /ui/events (for ten seconds at most), checks it
// is an event stream whose first event is hello, and returns what reads
// the name of the next event (failing the test when the stream ends).
func eventStream(t *testing.T, srv *httptest.Server) (next func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/ui/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := bufio.NewScanner(resp.Body)
	next = func() string {
		t.Helper()
		for events.Scan() {
			if name, ok := strings.CutPrefix(events.Text(), "event: "); ok {
				return name
			}
		}
		t.Fatalf("stream ended: %v", events.Err())
		return ""
	}
	if e := next(); e != "hello" {
		t.Fatalf("first event %q, want hello", e)
	}
	return next
}

// backendEvents serves b's dashboard (polling every 5 ms) for the test's
// life and returns eventStream's reader of its /ui/events.
func backendEvents(t *testing.T, b Backend) (next func() string) {
	t.Helper()
	h, err := New(b, Options{Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return eventStream(t, srv)
}

// TestEventsEndWhenTheTokenIsRevoked: an event stream opened with a token
// ends, with a "denied" event, at the first check after the token is no
// longer accepted (taken out of acl.token_file and the agent reloaded),
// where it kept announcing updates to a page that could no longer read
// them; the page then asks again and gets the sign-in form.
func TestEventsEndWhenTheTokenIsRevoked(t *testing.T) {
	var toks atomic.Pointer[[]string]
	toks.Store(&[]string{"old", "other"})
	b := &fakeBackend{cycle: t0}
	h, err := New(b, Options{Tokens: func() []string { return *toks.Load() }, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/ui/events", nil)
	req.Header.Set("X-Foreshape-Token", "old")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		for lines.Scan() {
			if name, ok := strings.CutPrefix(lines.Text(), "event: "); ok {
				return name
			}
		}
		return "(end)"
	}
	if e := next(); e != "hello" {
		t.Fatalf("first event %q, want hello", e)
	}
	b.setCycle(t0.Add(time.Minute))
	if e := next(); e != "update" {
		t.Fatalf("with the token valid: %q, want update", e)
	}
	toks.Store(&[]string{"other"})
	b.setCycle(t0.Add(2 * time.Minute))
	if e := next(); e != "denied" {
		t.Errorf("after the token was revoked: %q, want denied", e)
	}
	if e := next(); e != "(end)" {
		t.Errorf("after denied: %q, want the stream to end", e)
	}
	if ctx.Err() != nil {
		t.Errorf("the stream ended only with the test's deadline")
	}
}
