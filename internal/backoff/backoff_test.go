package backoff

import (
	"slices"
	"testing"
	"time"
)

// TestNext: each failure in a row waits twice as long as the one before,
// from 1s up to 30s, and a loop that starts again from zero (after a
// success) waits 1s again.
func TestNext(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start time.Duration
		want  []time.Duration
	}{
		{"from a success", 0, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
			16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}},
		{"a negative wait is none", -time.Second, []time.Duration{time.Second, 2 * time.Second}},
		{"an odd wait doubles up to the cap", 20 * time.Second, []time.Duration{30 * time.Second, 30 * time.Second}},
		{"a wait past the cap comes back to it", time.Minute, []time.Duration{30 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []time.Duration
			d := tc.start
			for range tc.want {
				d = Next(d)
				got = append(got, d)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("waits %v, want %v", got, tc.want)
			}
		})
	}
}
