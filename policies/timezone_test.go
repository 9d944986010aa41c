package policies_test

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/policies"
)

// zoned is a builder change: the schedule's cron, duration and time_zone.
func zoned(cron, duration, zone string) func(*builder) {
	return func(b *builder) {
		b.schedule = "\n  schedule \"patch\" {\n    cron      = \"" + cron + "\"\n    duration  = \"" + duration + "\"\n    action    = \"drain\"\n    time_zone = \"" + zone + "\"\n  }"
	}
}

// TestScheduleTimeZone: a schedule's cron is read in its time_zone, as
// Nomad reads a periodic job's: 08:00 in Berlin is 07:00 UTC in winter
// and 06:00 UTC in summer; a start in the hour Berlin's clocks skip on
// 2026-03-29 does not happen that day, one in the hour they repeat on
// 2026-10-25 happens twice, an hour apart, and the duration's overlap
// warning counts that; without time_zone the cron is read in UTC.
func TestScheduleTimeZone(t *testing.T) {
	day := func(y int, m time.Month, d int) (time.Time, time.Time) {
		from := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(-3 * time.Hour)
		return from, from.Add(24 * time.Hour)
	}
	starts := func(s *policies.Schedule, from, to time.Time) []string {
		var out []string
		for _, w := range s.Windows(from, to) {
			if w.Start.Location() != time.UTC || w.End.Location() != time.UTC {
				t.Errorf("window %v–%v not in UTC", w.Start, w.End)
			}
			out = append(out, w.Start.Format("2006-01-02T15:04"))
		}
		return out
	}
	ps, diags, _ := parse(t, zoned("0 8 * * *", "1h", "Europe/Berlin"))
	if diags.HasErrors() || len(ps) != 1 {
		t.Fatalf("%v", diags)
	}
	s := &ps[0].Schedules[0]
	for _, tc := range []struct {
		m    time.Month
		d    int
		want string
	}{{time.January, 15, "2026-01-15T07:00"}, {time.July, 15, "2026-07-15T06:00"}} {
		from, to := day(2026, tc.m, tc.d)
		if got := starts(s, from, to); len(got) != 1 || got[0] != tc.want {
			t.Errorf("08:00 Europe/Berlin on 2026-%02d-%02d starts at %v UTC, want %s", tc.m, tc.d, got, tc.want)
		}
	}
	if got := s.Next(time.Date(2026, 7, 15, 6, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2026, 7, 16, 6, 0, 0, 0, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("Next after a start: %v, want the next day's, in UTC", got)
	}

	ps, diags, src := parse(t, zoned("30 2 * * *", "2h", "Europe/Berlin"))
	if diags.HasErrors() || len(ps) != 1 {
		t.Fatalf("%v", diags)
	}
	s = &ps[0].Schedules[0]
	from, to := day(2026, time.March, 29)
	if got := starts(s, from.Add(3*time.Hour), to); len(got) != 0 {
		t.Errorf("02:30 Europe/Berlin on the day clocks skip 02:00–03:00 starts at %v, want none", got)
	}
	from, to = day(2026, time.October, 25)
	if got := starts(s, from.Add(3*time.Hour), to); strings.Join(got, " ") != "2026-10-25T00:30 2026-10-25T01:30" {
		t.Errorf("02:30 Europe/Berlin on the day clocks repeat 02:00–03:00 starts at %v, want 00:30 and 01:30 UTC", got)
	}
	if len(diags) != 1 || diags[0].Summary != "Questionable schedule.patch.duration" || !strings.Contains(diags[0].Detail, "as little as 1h after another") ||
		diags[0].Subject.Start.Line != lineOf(t, src, "duration") {
		t.Errorf("a 2h window starting twice an hour apart: %v; want the overlap warned of", diags)
	}
	// The same cron in UTC starts once a day: no overlap.
	ps, diags, _ = parse(t, func(b *builder) {
		b.schedule = "\n  schedule \"patch\" {\n    cron     = \"30 2 * * *\"\n    duration = \"2h\"\n    action   = \"drain\"\n  }"
	})
	if len(diags) != 0 || len(ps) != 1 {
		t.Fatalf("%v", diags)
	}
	if got := starts(&ps[0].Schedules[0], time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC)); strings.Join(got, " ") != "2026-10-25T02:30" {
		t.Errorf("02:30 UTC starts at %v", got)
	}
}

// TestScheduleTimeZoneRefused: a time_zone that is not in the IANA
// database, "Local" (each server's own) and an empty one are refused at
// their line, naming the setting.
func TestScheduleTimeZoneRefused(t *testing.T) {
	for zone, want := range map[string]string{
		"Europe/Berln": `"Europe/Berln" is not a time zone of the IANA database, such as "Europe/Berlin" or "America/New_York" ("UTC" is the default).`,
		"Local":        `"Local" is the time zone of whichever server leads, which servers may not share`,
		"":             "must not be empty",
	} {
		ps, diags, src := parse(t, zoned("0 8 * * *", "1h", zone))
		if !diags.HasErrors() || len(ps) != 0 || diags[0].Summary != "Invalid schedule.patch.time_zone" || !strings.Contains(diags[0].Detail, want) ||
			diags[0].Subject.Start.Line != lineOf(t, src, "time_zone") {
			t.Errorf("time_zone %q: %v; want it refused at its line saying %q", zone, diags, want)
		}
	}
}
