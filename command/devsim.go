package command

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// This file is the dev-mode wiring of `foreshape agent`: the simulated
// Nomad cluster embedded by -dev, its policies, and the data clocks that
// read a simulator's virtual time. The agent itself knows only its Clock
// interface.

// devPolicySource shapes the localities of the simulator's default
// scenario.
//
//go:embed dev-policies.hcl
var devPolicySource []byte

// devPolicies returns the policies `foreshape agent -dev` runs with.
func devPolicies() ([]*policies.Policy, error) {
	pols, diags := policies.Parse("dev-policies.hcl", devPolicySource)
	if diags.HasErrors() {
		return nil, fmt.Errorf("dev policies: %s", diags.Error())
	}
	return pols, nil
}

// maxClockSpeed bounds -sim-speed, -replay-speed and sim serve's -speed.
// The simulated and replayed clocks add the wall time elapsed times the
// speed to their start as a time.Duration, which holds 292 years: past
// 100,000x a wall day of running overflows it, and at 1e300x (or NaN, or
// +Inf, which a float flag takes too) the first tick did, so the dev
// agent's data time never left the scenario's start.
const maxClockSpeed = 100_000

// defaultDevSpeed runs the default scenario's surge (three virtual hours
// in) one wall minute after start.
const defaultDevSpeed = 180

// devSim is a simulated Nomad cluster served on a loopback port for the dev
// agent.
type devSim struct {
	cluster *sim.Cluster
	url     string
	speed   float64

	srv    *http.Server
	wg     sync.WaitGroup
	cancel context.CancelFunc

	// fresh holds the connections that have sent no request yet, which
	// http.Server.Shutdown waits for (up to 5 s old) as if busy.
	mu    sync.Mutex
	fresh map[net.Conn]struct{}
}

// startDevSim starts the default scenario at speed on 127.0.0.1 (any free
// port) and runs its clock until stop.
func startDevSim(speed float64, log hclog.Logger) (*devSim, error) {
	if speed <= 0 {
		return nil, errors.New("dev sim: speed must be positive")
	}
	// Nothing of the dev agent's reads the simulator's ground truth: a
	// day of its minutes is kept, so that a dev agent left running does
	// not grow by the day's records every 8 wall minutes at 180x.
	c, err := sim.New(sim.DefaultScenario(), sim.Options{Logger: log.Named("sim"), TruthWindow: 24 * time.Hour})
	if err != nil {
		return nil, fmt.Errorf("dev sim: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dev sim: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &devSim{cluster: c, url: "http://" + l.Addr().String(), speed: speed, cancel: cancel,
		fresh: map[net.Conn]struct{}{}}
	d.srv = &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second, ConnState: d.track}
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		_ = d.srv.Serve(l)
	}()
	go func() {
		defer d.wg.Done()
		if err := c.Run(ctx, speed); err != nil {
			log.Error("dev sim clock stopped", "error", err)
		}
	}()
	return d, nil
}

// clock returns the data clock of the simulated cluster.
func (d *devSim) clock() agent.Clock { return embeddedSimClock{sim: d.cluster, rate: d.speed} }

// track keeps fresh up to date (http.Server.ConnState).
func (d *devSim) track(c net.Conn, st http.ConnState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st == http.StateNew {
		d.fresh[c] = struct{}{}
	} else {
		delete(d.fresh, c)
	}
}

// stop stops the clock and the server. It runs after the agent has closed,
// so a connection that has sent no request will send none: it is closed at
// once rather than waited for (a client's dial that its call gave up on
// left one, and the stop of agent -dev took 2 s in 2 of 5 runs).
func (d *devSim) stop() {
	d.cancel()
	d.mu.Lock()
	for c := range d.fresh {
		c.Close()
	}
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
	d.wg.Wait()
}

// embeddedSimClock reads the clock of a simulated cluster running in this
// process at a known speed.
type embeddedSimClock struct {
	sim  *sim.Cluster
	rate float64
}

var _ agent.Clock = embeddedSimClock{}

// Now implements agent.Clock.
func (c embeddedSimClock) Now(context.Context) (time.Time, error) { return c.sim.Now().UTC(), nil }

// Speed implements agent.Clock.
func (c embeddedSimClock) Speed() float64 { return c.rate }

// remoteSimClock reads the virtual clock of a `foreshape sim serve` process
// at its Nomad address (GET /v1/sim/clock) and estimates its speed from
// successive readings.
type remoteSimClock struct {
	address string
	token   string
	http    *http.Client

	mu       sync.Mutex
	lastWall time.Time
	lastData time.Time
	speed    float64
}

var _ agent.Clock = (*remoteSimClock)(nil)

// Now implements agent.Clock. The first call reads the clock until it has
// moved (a quarter second apart, for at most five seconds), so that Speed
// is known from the start even when the simulation advances in ticks
// coarser than a quarter second of wall time.
func (c *remoteSimClock) Now(ctx context.Context) (time.Time, error) {
	c.mu.Lock()
	first := c.lastWall.IsZero()
	c.mu.Unlock()
	if !first {
		return c.read(ctx)
	}
	if _, err := c.read(ctx); err != nil {
		return time.Time{}, err
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		now, err := c.read(ctx)
		c.mu.Lock()
		known := c.speed > 0
		c.mu.Unlock()
		if err != nil || known || time.Now().After(deadline) {
			return now, err
		}
	}
}

func (c *remoteSimClock) read(ctx context.Context) (time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.address, "/")+"/v1/sim/clock", nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("sim clock: %w", err)
	}
	if c.token != "" {
		req.Header.Set("X-Nomad-Token", c.token)
	}
	hc := c.http
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("sim clock: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("sim clock: %s answered %s (is it a foreshape simulator?)", c.address, resp.Status)
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
				c.speed += float64(0.3 * (s - c.speed))
			}
		}
		c.lastWall, c.lastData = wall, st.Now
	}
	return st.Now.UTC(), nil
}

// follow reads the clock every period until ctx is done, so that Speed
// follows the simulator on an agent that does not lead: only the leader's
// cycle reads the clock otherwise, and a follower's Speed, 1 until it has
// read it, sets its cycle interval and so how long it keeps the leader's
// last cycle (1 to 30 s of wall time). A failed reading is left to the
// leader's cycle to report.
func (c *remoteSimClock) follow(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_, _ = c.Now(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Speed implements agent.Clock; 1 until two readings have been taken.
func (c *remoteSimClock) Speed() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.speed <= 0 {
		return 1
	}
	return c.speed
}
