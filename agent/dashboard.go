package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/ui"
)

// newDashboard builds the operator's dashboard over the agent's own API
// backends, with the API's tokens.
func (a *Agent) newDashboard() (*ui.Handler, error) {
	return ui.New(a, a.dashboardOptions())
}

// dashboardOptions are the dashboard's: the queue, reservation and
// decision pages use the act half's backend (dashboardAct); an agent that
// talks to no Nomad (a replay) acts on nothing, and its pages say so.
// Running moves are measured with the data clock, the clock their start
// was written with (the simulator's virtual one under -dev), not the wall.
func (a *Agent) dashboardOptions() ui.Options {
	var act api.ActBackend
	if a.act != nil && a.act.coord != nil {
		act = dashboardAct{a.act}
	}
	opts := ui.Options{Tokens: a.currentTokens, ReadTokens: a.currentReadTokens, Act: act, LeaderCycle: a.leaderCycleError, Logger: a.log, Now: a.clock.Now}
	if a.fsm != nil {
		opts.Applied = a.fsm.AppliedIndex
	}
	return opts
}

// leaderCycleError is why this server, not leading, cannot read the
// leader's last cycle (the API answers 503 for it); nil when it can, or
// leads.
func (a *Agent) leaderCycleError(ctx context.Context) error {
	if v, ok := a.fromLeader(ctx); ok {
		return v.err
	}
	return nil
}

// dashboardAct is the act backend as the dashboard uses it, in-process,
// where the HTTP API's forwarding (forwardWrites) does not run. On a
// server that does not lead, it does what that forwarding does for the
// API: a request this server's copy of the state does not hold (it may be
// behind the leader's) is asked of the leader, a cancel goes to the
// leader, which holds the request, whatever this copy holds, and so do
// pause and resume; and an action returns once this copy has applied the
// leader's change (leaderWrite), so that the page shown after it, which
// reads this copy, shows it.
type dashboardAct struct {
	*actor
}

// Request implements api.ActBackend, asking the leader for a request
// this server's copy does not hold, as GET /v1/queue/{id} does.
func (d dashboardAct) Request(ctx context.Context, id string) (api.MigrationRequest, error) {
	mr, err := d.actor.Request(ctx, id)
	if !errors.Is(err, api.ErrNotFound) {
		return mr, err
	}
	lc, lerr := d.leader(ctx)
	switch {
	case lerr != nil:
		return mr, fmt.Errorf("no migration request %q in this server's copy of the queue, which may be behind the leader's "+
			"(it has applied the log up to index %d), and it cannot ask the leader: %v: %w", id, d.a.fsm.AppliedIndex(), lerr, api.ErrNotFound)
	case lc == nil:
		return mr, err // this server leads: its 404 is the answer
	}
	mr, err = lc.Request(ctx, id)
	return mr, fromLeader(err)
}

// Cancel implements api.ActBackend: on a server that does not lead, the
// leader is asked, not this copy, which may not hold the request yet.
func (d dashboardAct) Cancel(ctx context.Context, id string) error {
	lc, err := d.leader(ctx)
	if err != nil || lc == nil {
		return d.actor.Cancel(ctx, id)
	}
	return d.leaderWrite(ctx, lc, func(c *api.Client) error {
		_, err := c.Cancel(ctx, id)
		return err
	})
}

// SetPriority implements api.ActBackend: on a server that does not lead,
// the leader sets it.
func (d dashboardAct) SetPriority(ctx context.Context, id string, priority int) error {
	lc, err := d.leader(ctx)
	if err != nil || lc == nil {
		return d.actor.SetPriority(ctx, id, priority)
	}
	return d.leaderWrite(ctx, lc, func(c *api.Client) error {
		_, err := c.SetPriority(ctx, id, priority)
		return err
	})
}

// SetPaused implements api.ActBackend: on a server that does not lead,
// the leader pauses or resumes the queue.
func (d dashboardAct) SetPaused(ctx context.Context, paused bool) error {
	lc, err := d.leader(ctx)
	if err != nil || lc == nil {
		return d.actor.SetPaused(ctx, paused)
	}
	return d.leaderWrite(ctx, lc, func(c *api.Client) error {
		_, err := c.Pause(ctx, paused)
		return err
	})
}

// leaderWrite makes a change on the leader with write, through lc, as the
// HTTP API's forwarding passes one on: marked as forwarded by this
// server, so that the leader answers with how far its state had applied
// the log (raftIndexHeader), and answers 503 rather than pass it on again
// when it no longer leads. It then waits, as the forwarding does
// (waitApplied: forwardWait at most, and no longer than ctx), until this
// server's state has applied as far. When the wait ends first, the change
// is made and the error is a *ui.NotAppliedError that says so; a leader
// whose answer carries no index (an older release's) is not waited for.
func (d dashboardAct) leaderWrite(ctx context.Context, lc *api.Client, write func(*api.Client) error) error {
	var index atomic.Uint64
	hc := http.Client{Timeout: api.DefaultTimeout}
	if lc.HTTP != nil {
		hc = *lc.HTTP
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set(forwardedHeader, d.a.name)
		resp, err := next.RoundTrip(r)
		if err == nil {
			if i, perr := strconv.ParseUint(resp.Header.Get(raftIndexHeader), 10, 64); perr == nil {
				index.Store(i)
			}
		}
		return resp, err
	})
	c := *lc
	c.HTTP = &hc
	if err := write(&c); err != nil {
		return fromLeader(err)
	}
	i := index.Load()
	if i == 0 {
		return nil
	}
	waitApplied(ctx, d.a.fsm.AppliedIndex, i, d.a.catchUpWait())
	if applied := d.a.fsm.AppliedIndex(); applied < i {
		return &ui.NotAppliedError{Index: i, Applied: applied}
	}
	return nil
}

// roundTripper is a function as an http.RoundTripper.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
