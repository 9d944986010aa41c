package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Clock tells the agent the data time: the time at which the cluster it
// watches is. Against a real Nomad that is the wall clock; against
// foreshape's simulator it is the simulation's virtual clock, which may run
// many times faster than the wall.
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

// simNower is the part of an embedded simulated cluster the clock needs.
type simNower interface{ Now() time.Time }

// EmbeddedSimClock reads the clock of a simulated cluster running in this
// process at a known speed.
type EmbeddedSimClock struct {
	Sim  simNower
	Rate float64
}

// Now implements Clock.
func (c EmbeddedSimClock) Now(context.Context) (time.Time, error) { return c.Sim.Now().UTC(), nil }

// Speed implements Clock.
func (c EmbeddedSimClock) Speed() float64 { return c.Rate }

// RemoteSimClock reads the virtual clock of a `foreshape sim serve` process
// at its Nomad address (GET /v1/sim/clock) and estimates its speed from
// successive readings.
type RemoteSimClock struct {
	Address string
	Token   string
	HTTP    *http.Client

	mu       sync.Mutex
	lastWall time.Time
	lastData time.Time
	speed    float64
}

// Now implements Clock. The first call reads the clock twice, a quarter
// second apart, so that Speed is known from the start.
func (c *RemoteSimClock) Now(ctx context.Context) (time.Time, error) {
	c.mu.Lock()
	first := c.lastWall.IsZero()
	c.mu.Unlock()
	if first {
		if _, err := c.read(ctx); err != nil {
			return time.Time{}, err
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return c.read(ctx)
}

func (c *RemoteSimClock) read(ctx context.Context) (time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.Address, "/")+"/v1/sim/clock", nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("sim clock: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("X-Nomad-Token", c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("sim clock: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("sim clock: %s answered %s (is it a foreshape simulator?)", c.Address, resp.Status)
	}
	var st struct{ Now time.Time }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return time.Time{}, fmt.Errorf("sim clock: decode: %w", err)
	}
	wall := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.lastWall.IsZero():
		c.lastWall, c.lastData = wall, st.Now
	case wall.Sub(c.lastWall) >= 200*time.Millisecond:
		// Estimate from readings at least 200 ms apart (moving the anchor
		// each time), smoothing successive estimates.
		if st.Now.After(c.lastData) {
			s := float64(st.Now.Sub(c.lastData)) / float64(wall.Sub(c.lastWall))
			if c.speed == 0 {
				c.speed = s
			} else {
				c.speed += 0.3 * (s - c.speed)
			}
		}
		c.lastWall, c.lastData = wall, st.Now
	}
	return st.Now.UTC(), nil
}

// Speed implements Clock; 1 until two readings have been taken.
func (c *RemoteSimClock) Speed() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.speed <= 0 {
		return 1
	}
	return c.speed
}
