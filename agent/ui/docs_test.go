package ui

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
)

// TestDocumentedAssetFigures: the figures docs/ui.md gives of the
// dashboard's assets are those of the assets built into the binary: the
// bytes of its templates, CSS and script, and the script's lines, with and
// without its comments.
func TestDocumentedAssetFigures(t *testing.T) {
	b, err := os.ReadFile("../../docs/ui.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ")
	size := 0
	err = fs.WalkDir(assets, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := assets.ReadFile(path)
		size += len(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	js, err := assets.ReadFile("assets/static/ui.js")
	if err != nil {
		t.Fatal(err)
	}
	lines, code := 0, 0
	for _, l := range strings.Split(strings.TrimSuffix(string(js), "\n"), "\n") {
		lines++
		if l := strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "//") {
			code++
		}
	}
	number := func(re string) int {
		m := regexp.MustCompile(re).FindStringSubmatch(doc)
		if m == nil {
			t.Fatalf("docs/ui.md does not say %s", re)
		}
		n, err := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := number(`\(([0-9,]+) bytes of templates, CSS and script\b`); got != size {
		t.Errorf("docs/ui.md gives the assets as %d bytes; they are %d", got, size)
	}
	if got := number(`The only script is ([0-9]+) hand-written lines`); got != code {
		t.Errorf("docs/ui.md gives the script as %d lines without comments; it has %d", got, code)
	}
	if got := number(`\(([0-9]+) with comments\)`); got != lines {
		t.Errorf("docs/ui.md gives the script as %d lines with its comments; it has %d", got, lines)
	}
}

// TestChartsShowReservationsUntilReleased: a locality's charts draw a span
// for each of its reservations from the time one is planned until it is
// released (docs/ui.md: "its reservations not yet released"), whatever
// their placeholder's state in between, and a mark for each move into or
// out of it that started.
func TestChartsShowReservationsUntilReleased(t *testing.T) {
	var res []api.Reservation
	for i, st := range api.ReservationStates {
		res = append(res, api.Reservation{ID: st, Request: fmt.Sprintf("mr-%d", i), Locality: "dc2", CPU: 100, Memory: 64,
			From: t0, Until: t0.Add(time.Hour), State: st})
	}
	res = append(res, api.Reservation{ID: "elsewhere", Request: "mr-9", Locality: "dc3", From: t0, Until: t0.Add(time.Hour), State: api.ReservationHeld})
	started := t0.Add(-time.Minute)
	reqs := []api.MigrationRequest{
		{ID: "mr-in", Source: "dc1", Target: "dc2", State: api.StateRunning, Started: &started},
		{ID: "mr-out", Source: "dc2", Target: "dc3", State: api.StateDone, Started: &started},
		{ID: "mr-queued", Source: "dc1", Target: "dc2", State: api.StatePending},
	}
	spans, marks := actOverlay("dc2", res, reqs)
	var drawn []string
	for _, s := range spans {
		drawn = append(drawn, s.Label)
	}
	if len(spans) != len(api.ReservationStates)-1 {
		t.Errorf("spans %q; want one for each reservation of dc2 but the released one", drawn)
	}
	for i, st := range api.ReservationStates {
		want := fmt.Sprintf("for mr-%d", i)
		if got := slices.ContainsFunc(drawn, func(l string) bool { return strings.HasSuffix(l, want) }); got != (st != api.ReservationReleased) {
			t.Errorf("a %s reservation drawn: %v", st, got)
		}
	}
	var kinds []string
	for _, m := range marks {
		kinds = append(kinds, m.Kind)
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"move-in", "move-out"}) {
		t.Errorf("marks %v; want one move in and one move out", kinds)
	}
}

// TestDecisionsPageListsTheNewest200: the Decisions page lists the
// decisions that match its filter newest first, the newest 200 of them,
// and says that older ones are left off (docs/ui.md: "filtered by policy
// and locality (the newest 200 that match)").
func TestDecisionsPageListsTheNewest200(t *testing.T) {
	act := apitest.New()
	for i := range 250 {
		at := t0.Add(time.Duration(i) * time.Minute)
		act.AddDecision(api.Decision{Time: at, Policy: "dc2-web", Kind: api.DecisionReserve, Locality: "dc2", Reason: fmt.Sprintf("dc2 decision %d", i)})
		act.AddDecision(api.Decision{Time: at, Policy: "dc1-web", Kind: api.DecisionWait, Locality: "dc1", Reason: fmt.Sprintf("dc1 decision %d", i)})
	}
	h, err := New(&fakeBackend{cycle: t0}, Options{Act: act})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	code, page := get(t, srv.Client(), srv.URL+"/ui/decisions?policy=dc2-web", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /ui/decisions?policy=dc2-web: %d", code)
	}
	rows := regexp.MustCompile(`<td>(dc[12]) decision ([0-9]+)</td>`).FindAllStringSubmatch(page, -1)
	if len(rows) != 200 {
		t.Fatalf("%d decisions listed; want the newest 200 of dc2-web's 250", len(rows))
	}
	for i, r := range rows {
		if want := strconv.Itoa(249 - i); r[1] != "dc2" || r[2] != want {
			t.Fatalf("row %d is %s decision %s; want dc2 decision %s (dc2-web's, newest first)", i, r[1], r[2], want)
		}
	}
	if !strings.Contains(page, "Only the newest 200 are shown; filter to see older ones.") {
		t.Error("the page does not say that older decisions are left off")
	}
	if _, page := get(t, srv.Client(), srv.URL+"/ui/decisions?policy=dc2-web&locality=dc2", nil); strings.Count(page, "dc2 decision ") != 200 {
		t.Errorf("filtered by policy and locality: %d decisions listed; want 200", strings.Count(page, "dc2 decision "))
	}
}

// TestSignOutEndsTheSignIn: the sign-in cookie is a session cookie (the
// browser drops it when it closes) and "Sign out", a form with the CSRF
// field, clears it and returns to the sign-in form; without the field it
// is refused and the cookie stays (docs/ui.md: kept "until "Sign out" or
// the browser closes").
func TestSignOutEndsTheSignIn(t *testing.T) {
	h, err := New(&fakeBackend{cycle: t0}, Options{Tokens: func() []string { return []string{"s3cret"} }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(srv.URL+"/ui/login", url.Values{"token": {"s3cret"}, "next": {"/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge != 0 || !cs[0].Expires.IsZero() {
		t.Fatalf("sign-in cookies %v; want one session cookie (no Max-Age, no Expires)", cs)
	}
	signedIn := resp.Cookies()[0]
	signOut := func(form url.Values) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ui/logout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(signedIn)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := signOut(url.Values{"csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("sign out with a forged CSRF field: %d, cookies %v; want 403 and the cookie left", resp.StatusCode, resp.Cookies())
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ui/", nil)
	req.AddCookie(signedIn)
	r2, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	m := regexp.MustCompile(`action="/ui/logout"><input type="hidden" name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)
	if r2.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("signed-in page: %d, sign-out form with a CSRF field: %v", r2.StatusCode, m != nil)
	}
	resp = signOut(url.Values{"csrf": {string(m[1])}})
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" ||
		len(cs) != 1 || cs[0].Name != cookieName || cs[0].Value != "" || cs[0].MaxAge >= 0 || cs[0].Path != "/ui/" {
		t.Errorf("sign out: %d to %q, cookies %v; want 303 to /ui/login clearing %s on /ui/", resp.StatusCode, resp.Header.Get("Location"), cs, cookieName)
	}
}

// TestEventsCheckOnceASecond: an event stream checks for a change once a
// second unless Options.Poll says otherwise, as the agent leaves it
// (docs/ui.md: "The agent checks once a second").
func TestEventsCheckOnceASecond(t *testing.T) {
	h, err := New(&fakeBackend{cycle: t0}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if h.opts.Poll != time.Second {
		t.Errorf("the event stream checks every %s; want 1s", h.opts.Poll)
	}
}

// TestSpanLabelsTakeSixRowsAtMost: span labels that would cover each
// other go a row lower, six rows at most; the spans left without a label
// keep it as their tooltip (docs/ui.md: "six rows at most, and is
// otherwise left to the span's tooltip").
func TestSpanLabelsTakeSixRowsAtMost(t *testing.T) {
	var res []span
	for i := range 10 {
		res = append(res, span{Start: t0.Add(time.Duration(i*40) * time.Second), End: t0.Add(8 * time.Minute), Kind: "reservation",
			Label: fmt.Sprintf("reserved 1000 MHz / 1024 MiB for mr-%d", i+1)})
	}
	c := buildChart("x", chartInput{Forecast: testForecast(nil), Reservations: res})
	rows := map[float64]bool{}
	written := 0
	for _, r := range c.Reservations {
		if r.Text != "" {
			written++
			rows[r.TextY] = true
		}
	}
	if len(rows) != 6 || written == 10 {
		t.Errorf("%d of 10 overlapping reservations labelled, on %d rows; want six rows used, and labels left off", written, len(rows))
	}
	for y := range rows {
		if row := (y - (c.Top + 10 + 2*rowStep)) / rowStep; row < 0 || row > 5 {
			t.Errorf("a reservation's label on row %v of its six (y %v)", row, y)
		}
	}
	h, err := New(&fakeBackend{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var svg strings.Builder
	if err := h.pages["localities"].ExecuteTemplate(&svg, "chart", metricView{ID: "x", Title: "dc2 cpu", Chart: c}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if tip := fmt.Sprintf("<title>reserved 1000 MHz / 1024 MiB for mr-%d</title>", i+1); !strings.Contains(svg.String(), tip) {
			t.Errorf("the chart lacks the tooltip %s", tip)
		}
	}
}
