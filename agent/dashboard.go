package agent

import (
	"context"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/ui"
)

// newDashboard builds the operator's dashboard over the agent's own API
// backends, with the API's tokens. The queue, reservation and decision
// pages use the act half's backend; an agent that talks to no Nomad (a
// replay) acts on nothing, and its pages say so.
func (a *Agent) newDashboard() (*ui.Handler, error) {
	var act api.ActBackend
	if a.act != nil && a.act.coord != nil {
		act = a.act
	}
	return ui.New(a, ui.Options{Tokens: a.currentTokens, Act: act, LeaderCycle: a.leaderCycleError, Logger: a.log})
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
