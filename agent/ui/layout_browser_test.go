package ui_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/ui"
)

// panelsBackend is a leader whose last cycle forecast four localities,
// one panel each on the Localities page.
type panelsBackend struct{}

func (panelsBackend) Status(context.Context) api.Status {
	return api.Status{Node: "n1", State: "Leader", IsLeader: true, Leader: "n1",
		LastCycle: &api.Cycle{Started: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), Forecasts: 4}}
}
func (panelsBackend) Policies(context.Context) []api.Policy {
	return []api.Policy{{Name: "web", Locality: "dc1"}}
}
func (panelsBackend) Forecasts(context.Context) []api.Forecast {
	var fs []api.Forecast
	for _, l := range []string{"dc1", "dc2", "dc3", "dc4"} {
		fs = append(fs, api.Forecast{Policy: "web", Locality: l, Metric: "cpu", Series: l + ":cpu", Step: "1m"})
	}
	return fs
}

// TestBrowserPanelsPerRow: the Localities page shows two panels a row at
// 1280×800 and one column on a 390 px screen (docs/ui.md).
func TestBrowserPanelsPerRow(t *testing.T) {
	path := chromium(t)
	t.Parallel()
	h, err := ui.New(panelsBackend{}, ui.Options{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	ctx := browser(t, path, 2*time.Minute)
	for _, tc := range []struct {
		width, height int
		perRow        int
	}{{1280, 800, 2}, {390, 844, 1}} {
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(int64(tc.width), int64(tc.height)),
			chromedp.Navigate(srv.URL+"/ui/"),
			chromedp.WaitVisible(chromedp.ID("web--dc4")),
		); err != nil {
			t.Fatal(err)
		}
		// The panels' tops, in the page's order: those of one row share it.
		tops, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](
			`Array.from(document.querySelectorAll('section.panel'), p => p.getBoundingClientRect().top)`))
		if err != nil {
			t.Fatal(err)
		}
		if len(tops) != 4 {
			t.Fatalf("%d px: %d panels; want 4", tc.width, len(tops))
		}
		perRow := 1
		for perRow < len(tops) && tops[perRow] == tops[0] {
			perRow++
		}
		if perRow != tc.perRow {
			t.Errorf("%d×%d: %d panels a row (tops %v); want %d", tc.width, tc.height, perRow, tops, tc.perRow)
		}
	}
}
