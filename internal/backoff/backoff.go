// Package backoff is the wait between the tries of a loop that asks
// something that failed (Nomad, a webhook) again: 1s, doubling after each
// failure in a row, at most 30s, so that a service that is down is not
// asked (and the failure not logged) every second. It is a pure function
// of the wait before: it never sleeps, keeps no state and reads no clock;
// the loops wait, and start again from zero after a success.
package backoff

import "time"

const (
	// First is the wait after the first failure.
	First = time.Second
	// Max is the longest wait; callers that honour a server's Retry-After
	// cap it here too.
	Max = 30 * time.Second
)

// Next is the wait after a failure given the wait after the failure before
// it (zero for the first failure in a row): First, doubling, at most Max.
func Next(prev time.Duration) time.Duration {
	if prev <= 0 {
		return First
	}
	return min(2*prev, Max)
}
