package agent

import (
	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/ui"
)

// newDashboard builds the operator's dashboard over the agent's own API
// backends, with the API's tokens. The queue, reservation and decision
// pages use the agent's api.ActBackend when it implements one.
func (a *Agent) newDashboard() (*ui.Handler, error) {
	act, _ := any(a).(api.ActBackend)
	return ui.New(a, ui.Options{Tokens: a.currentTokens, Act: act, Logger: a.log})
}
