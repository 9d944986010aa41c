package agent

import (
	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/ui"
)

// newDashboard builds the operator's dashboard over the agent's own API
// backends, with the API's tokens. The queue, reservation and decision
// pages use the act half's backend.
func (a *Agent) newDashboard() (*ui.Handler, error) {
	var act api.ActBackend
	if a.act != nil {
		act = a.act
	}
	return ui.New(a, ui.Options{Tokens: a.currentTokens, Act: act, Logger: a.log})
}
