package proof

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/plugins/source/nomad"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
)

func init() {
	Register("none", func(env *Env) (Controller, error) { return &none{mv: newMover(env)}, nil })
	Register("throttle", func(env *Env) (Controller, error) { return newThrottle(env, false), nil })
	Register("reactive", func(env *Env) (Controller, error) { return newThrottle(env, true), nil })
}

// move is one allocation a baseline moves.
type move struct {
	req      Request
	allocID  string
	from, to string // datacenters; to is empty when any will do
	started  time.Time
}

// mover is how the baselines move work: a node request marks the node
// ineligible at once (so nothing new lands on it) and becomes one move per
// allocation on it (system jobs stay, as a drain leaves them to last); a
// move stops its allocation with Nomad's alloc stop, which reschedules it.
// A move is in flight until its allocation has stopped and its
// replacement, if one was placed, runs.
type mover struct {
	env      *Env
	queue    []*move // waiting, in arrival order
	inflight []*move
}

func newMover(env *Env) *mover { return &mover{env: env} }

// accept queues the moves of newly arrived requests.
func (m *mover) accept(reqs []Request) error {
	nc := m.env.Nomad
	for _, r := range reqs {
		if !r.IsNode() {
			m.queue = append(m.queue, &move{req: r, allocID: r.AllocID, from: r.From, to: r.To})
			continue
		}
		if _, err := nc.Nodes().ToggleEligibility(r.NodeID, false, nil); err != nil {
			return fmt.Errorf("mark %s ineligible: %w", r.Node, err)
		}
		allocs, _, err := nc.Nodes().Allocations(r.NodeID, nil)
		if err != nil {
			return fmt.Errorf("allocations of %s: %w", r.Node, err)
		}
		sort.Slice(allocs, func(i, k int) bool {
			if allocs[i].CreateIndex != allocs[k].CreateIndex {
				return allocs[i].CreateIndex < allocs[k].CreateIndex
			}
			return allocs[i].ID < allocs[k].ID
		})
		for _, a := range allocs {
			if a.DesiredStatus != nomadapi.AllocDesiredStatusRun || a.ClientTerminalStatus() ||
				(a.Job != nil && a.Job.Type != nil && *a.Job.Type == nomadapi.JobTypeSystem) {
				continue
			}
			m.queue = append(m.queue, &move{req: r, allocID: a.ID, from: r.From, to: r.To})
		}
	}
	return nil
}

// start stops the move's allocation so Nomad places its replacement.
func (m *mover) start(mv *move, now time.Time) error {
	_, err := m.env.Nomad.Allocations().Stop(&nomadapi.Allocation{ID: mv.allocID}, nil)
	if err != nil {
		if statusOf(err) == http.StatusNotFound {
			m.env.Log.Warn("allocation to move is gone", logKeyAlloc, mv.allocID, logKeyRequest, mv.req.ID)
			return nil
		}
		return fmt.Errorf("stop %s: %w", mv.allocID, err)
	}
	mv.started = now
	m.inflight = append(m.inflight, mv)
	return nil
}

// refresh drops the moves that finished.
func (m *mover) refresh() error {
	nc := m.env.Nomad
	kept := m.inflight[:0]
	for _, mv := range m.inflight {
		done, err := m.finished(nc, mv)
		if err != nil {
			return err
		}
		if !done {
			kept = append(kept, mv)
		}
	}
	m.inflight = kept
	return nil
}

func (m *mover) finished(nc *nomadapi.Client, mv *move) (bool, error) {
	a, _, err := nc.Allocations().Info(mv.allocID, nil)
	if err != nil {
		if statusOf(err) == http.StatusNotFound {
			return true, nil // collected: long finished
		}
		return false, fmt.Errorf("read %s: %w", mv.allocID, err)
	}
	if !a.ClientTerminalStatus() {
		return false, nil
	}
	if a.NextAllocation == "" {
		return true, nil
	}
	next, _, err := nc.Allocations().Info(a.NextAllocation, nil)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", a.NextAllocation, err)
	}
	return next.ClientStatus != nomadapi.AllocClientStatusPending, nil
}

// busy counts the in-flight moves through datacenter dc.
func (m *mover) busy(dc string) int {
	k := 0
	for _, mv := range m.inflight {
		if mv.from == dc || mv.to == dc {
			k++
		}
	}
	return k
}

// none starts every move as soon as it is requested, all at once.
type none struct{ mv *mover }

func (c *none) Step(_ context.Context, now time.Time, arrived []Request) error {
	if err := c.mv.accept(arrived); err != nil {
		return err
	}
	for _, mv := range c.mv.queue {
		if err := c.mv.start(mv, now); err != nil {
			return err
		}
	}
	c.mv.queue = nil
	return nil
}

// throttle is network-locality-based throttling: moves run first come
// first served, at most Params.MaxParallel at once through any locality
// (as source or target), and a new move into or out of a locality waits
// while that locality's current CPU or memory utilisation is over the
// line. A move whose request reached its deadline starts regardless, as a
// drain forces what is left at its deadline. With autoscale (the reactive
// controller) it also runs a target-value autoscaler per datacenter: when
// current utilisation is over the line it asks the cloud for
// ceil(nodes × utilisation / line) nodes, then waits out the cooldown.
type throttle struct {
	env       *Env
	mv        *mover
	obs       *observer
	autoscale bool
	dcs       []string
	lastScale map[string]time.Time
}

func newThrottle(env *Env, autoscale bool) *throttle {
	t := &throttle{env: env, mv: newMover(env), obs: newObserver(env), autoscale: autoscale, lastScale: map[string]time.Time{}}
	for _, l := range env.Scenario.Localities {
		t.dcs = append(t.dcs, l.Name)
	}
	return t
}

func (c *throttle) Step(ctx context.Context, now time.Time, arrived []Request) error {
	if err := c.mv.accept(arrived); err != nil {
		return err
	}
	if err := c.mv.refresh(); err != nil {
		return err
	}
	util, err := c.obs.utilisation(ctx, now)
	if err != nil {
		return err
	}
	if c.autoscale {
		if err := c.scale(ctx, now, util); err != nil {
			return err
		}
	}
	line := c.env.Params.Line()
	hot := func(dc string) bool { return dc != "" && util[dc] > line }
	kept := c.mv.queue[:0]
	for _, mv := range c.mv.queue {
		forced := !now.Before(mv.req.Deadline)
		capped := c.mv.busy(mv.from) >= c.env.Params.MaxParallel || (mv.to != "" && c.mv.busy(mv.to) >= c.env.Params.MaxParallel)
		if !forced && (capped || hot(mv.from) || hot(mv.to)) {
			kept = append(kept, mv)
			continue
		}
		if err := c.mv.start(mv, now); err != nil {
			return err
		}
	}
	c.mv.queue = kept
	return nil
}

// scale runs the target-value autoscaler.
func (c *throttle) scale(ctx context.Context, now time.Time, util map[string]float64) error {
	line := c.env.Params.Line()
	due := false
	for _, dc := range c.dcs {
		last, ok := c.lastScale[dc]
		if util[dc] > line && (!ok || now.Sub(last) >= c.env.Params.Cooldown) {
			due = true
		}
	}
	if !due {
		return nil
	}
	nodes, _, err := c.env.Nomad.Nodes().List(nil)
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	count := map[string]int{}
	for _, n := range nodes {
		if (n.Status == "ready" || n.Status == "initializing") && n.SchedulingEligibility == nomadapi.NodeSchedulingEligible {
			count[n.Datacenter]++
		}
	}
	for _, dc := range c.dcs {
		if util[dc] <= line || count[dc] == 0 {
			continue
		}
		if last, ok := c.lastScale[dc]; ok && now.Sub(last) < c.env.Params.Cooldown {
			continue
		}
		want := int(math.Ceil(float64(count[dc]) * util[dc] / line))
		if want <= count[dc] {
			continue
		}
		reason := fmt.Sprintf("utilisation %.0f%% over the %.0f%% line: %d nodes → %d", 100*util[dc], 100*line, count[dc], want)
		ok, err := scaleUp(ctx, c.env.HTTP, target.Action{
			ID: fmt.Sprintf("reactive-%s-%d", dc, now.Unix()), Policy: "reactive", Scale: "nodes",
			Locality: dc, Direction: target.Up, Amount: want - count[dc], Count: want, Reason: reason, Time: now,
		})
		if err != nil {
			return err
		}
		c.lastScale[dc] = now
		if ok {
			c.env.Log.Debug("scaled out", logKeyLocality, dc, logKeyReason, reason)
		}
	}
	return nil
}

// scaleUp sends a scale action to the cloud; false when the cloud had no
// capacity left to add.
func scaleUp(ctx context.Context, hc *http.Client, a target.Action) (bool, error) {
	body, err := json.Marshal(a.Payload())
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cloudURL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("scale %s: %w", a.Locality, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusConflict:
		return false, nil
	case resp.StatusCode >= 300:
		return false, fmt.Errorf("scale %s: %s: %s", a.Locality, resp.Status, bytes.TrimSpace(msg))
	}
	return true, nil
}

// observer reads each datacenter's current CPU and memory utilisation
// (the larger, as a fraction of ready capacity) the way the agent does,
// through foreshape's Nomad source (Nomad's node stats), once per
// Params.Observe; in between it answers with its last reading. It keeps
// the source, and so the node list, until the nodes table's index moves.
type observer struct {
	env   *Env
	dcs   []string
	src   *nomad.Source
	index uint64
	last  map[string]float64
	at    time.Time
}

func newObserver(env *Env) *observer {
	o := &observer{env: env}
	for _, l := range env.Scenario.Localities {
		o.dcs = append(o.dcs, l.Name)
	}
	return o
}

func (o *observer) utilisation(ctx context.Context, now time.Time) (map[string]float64, error) {
	if o.last != nil && now.Sub(o.at) < o.env.Params.Observe {
		return o.last, nil
	}
	// A prefix that matches no node answers with the table's index alone.
	_, meta, err := o.env.Nomad.Nodes().PrefixListOpts("ffffffff-none", nil)
	if err != nil {
		return nil, fmt.Errorf("read node index: %w", err)
	}
	if o.src == nil || meta.LastIndex != o.index {
		if o.src, err = nomad.New(nomad.Config{Client: o.env.Nomad, Concurrency: 1, ReadsTimeout: -1}, nil); err != nil {
			return nil, err
		}
		o.index = meta.LastIndex
	}
	req := source.Request{Now: now}
	for _, dc := range o.dcs {
		req.Localities = append(req.Localities, policies.Locality{Datacenter: dc})
	}
	res, err := o.src.Collect(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("collect utilisation: %w", err)
	}
	out := map[string]float64{}
	for _, s := range res.Samples {
		scope, metric, _ := source.SplitSeries(s.Series)
		if metric == source.CPUPercent || metric == source.MemoryPercent {
			out[scope] = max(out[scope], s.Value/100)
		}
	}
	o.last, o.at = out, now
	return out, nil
}

// statusOf returns the HTTP status of a Nomad API error, or 0.
func statusOf(err error) int {
	var ure nomadapi.UnexpectedResponseError
	if errors.As(err, &ure) {
		return ure.StatusCode()
	}
	return 0
}
