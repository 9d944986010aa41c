package agent

import (
	"context"
	"time"
)

// Clock tells the agent the data time: the time at which the cluster it
// watches is. Against a real Nomad that is the wall clock; against
// foreshape's simulator it is the simulation's virtual clock, which may run
// many times faster than the wall (the CLI's dev mode provides one).
type Clock interface {
	// Now returns the current data time.
	Now(ctx context.Context) (time.Time, error)
	// Speed is how many data seconds pass per wall second.
	Speed() float64
}

// WallClock is the real clock.
type WallClock struct{}

// Now implements Clock.
func (WallClock) Now(context.Context) (time.Time, error) { return time.Now().UTC(), nil }

// Speed implements Clock.
func (WallClock) Speed() float64 { return 1 }
