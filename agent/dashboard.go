package agent

import (
	"github.com/foreshape/foreshape/agent/ui"
)

// newDashboard builds the operator's dashboard over the agent's own API
// backend, with the API's tokens.
func (a *Agent) newDashboard() (*ui.Handler, error) {
	return ui.New(a, ui.Options{Tokens: a.currentTokens, Logger: a.log})
}
