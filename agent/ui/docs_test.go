package ui

import (
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
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
