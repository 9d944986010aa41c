package agent

import (
	"context"
	"errors"
	"fmt"

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
	return ui.Options{Tokens: a.currentTokens, Act: act, LeaderCycle: a.leaderCycleError, Logger: a.log, Now: a.clock.Now}
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
// behind the leader's) is asked of the leader, and a cancel goes to the
// leader, which holds the request, whatever this copy holds. Unlike the
// API's, its answers do not wait for this copy to apply the leader's
// change: the page shown after an action reads this copy as it is.
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
	_, err = lc.Cancel(ctx, id)
	return fromLeader(err)
}
