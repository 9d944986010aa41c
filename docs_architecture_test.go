package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/collect"
	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/backoff"
	"github.com/foreshape/foreshape/internal/blocking"
	"github.com/foreshape/foreshape/internal/failing"
)

// TestArchitectureFigures: the bounds and defaults docs/architecture.md
// states are the code's: each phrase below is built from the constant it
// names and must be on the page (its lines joined, as rewrapping moves
// them), and the package test binaries' parallelism its testparallel row
// gives is what their TestMain sets.
func TestArchitectureFigures(t *testing.T) {
	b, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	page := strings.Join(strings.Fields(string(b)), " ")
	words := map[time.Duration]string{time.Second: "1 s", 2 * time.Minute: "two minutes", 5 * time.Minute: "5 minutes",
		10 * time.Minute: "10 minutes", 30 * time.Second: "30 s", 24 * time.Hour: `"1d"`, time.Hour: `"1h"`, 366 * 24 * time.Hour: `"366d"`}
	say := func(d time.Duration) string {
		if w, ok := words[d]; ok {
			return w
		}
		t.Fatalf("no words for %v: add them", d)
		return ""
	}
	for _, want := range []string{
		"(1 s doubling to 30 s)", // backoff.First, backoff.Max
		"(" + say(blocking.MaxWait) + " when it names none, at most " + say(blocking.MaxWait) + ")", // blocking.MaxWait
		"the sixteenth of it Nomad may add and " + say(blocking.Margin),                             // blocking.Margin
		"the same failure again only every " + say(failing.RemindEvery),                             // failing.RemindEvery
		"`shape.PlaceholderGrace`, " + say(shape.PlaceholderGrace) + ", later",                      // shape.PlaceholderGrace
		"`SpreadCordonLag` (" + say(shape.SpreadCordonLag) + ")",                                    // shape.SpreadCordonLag
		"a ring of the last 1,000 decisions",                                                        // state.MaxDecisions
		"Closed intents are kept up to 1,000",                                                       // state.MaxClosedIntents
		"The leader admits at most 100,000 series",                                                  // collect.DefaultMaxSeries
		"three of its steps", // collect.DefaultStaleSteps
		"`queue.keep_finished` (default " + say(config.DefaultKeepFinished) + ", " + say(config.MinKeepFinished) + "–" + say(config.MaxKeepFinished) + ")",
		"(at least " + say(migrate.MinMoveTimeout) + ", counted from its first stop; three attempts)", // migrate.MinMoveTimeout, MaxAttempts
	} {
		if !strings.Contains(page, want) {
			t.Errorf("docs/architecture.md does not say %q", want)
		}
	}
	if backoff.First != time.Second || backoff.Max != 30*time.Second {
		t.Errorf("backoff is %v doubling to %v; the page says 1 s to 30 s", backoff.First, backoff.Max)
	}
	if state.MaxDecisions != 1000 || state.MaxClosedIntents != 1000 || collect.DefaultMaxSeries != 100_000 ||
		collect.DefaultStaleSteps != 3 || migrate.MaxAttempts != 3 {
		t.Errorf("MaxDecisions %d, MaxClosedIntents %d, DefaultMaxSeries %d, DefaultStaleSteps %d, MaxAttempts %d: the page says 1,000, 1,000, 100,000, three and three",
			state.MaxDecisions, state.MaxClosedIntents, collect.DefaultMaxSeries, collect.DefaultStaleSteps, migrate.MaxAttempts)
	}

	// internal/testparallel's row: "(agent 4, agent/cluster 8, ...)".
	row := regexp.MustCompile(`unless \x60-parallel\x60 says \(([^)]*?):`).FindStringSubmatch(page)
	if row == nil {
		t.Fatal("docs/architecture.md's internal/testparallel row gives no figures")
	}
	for _, part := range strings.Split(row[1], ", ") {
		f := strings.Fields(part)
		if len(f) != 2 {
			t.Fatalf("testparallel row: %q is not PACKAGE N", part)
		}
		main := f[0] + "/main_test.go"
		if f[0] == "e2e" {
			main = "e2e/e2e_test.go"
		}
		src, err := os.ReadFile(main)
		if err != nil {
			t.Errorf("testparallel row names %s: %v", f[0], err)
			continue
		}
		if !regexp.MustCompile(`(?m)^const \w+Parallel = ` + f[1] + `$`).Match(src) {
			t.Errorf("testparallel row gives %s %s; %s sets another", f[0], f[1], main)
		}
	}
}
