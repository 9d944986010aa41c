package agent

import (
	"errors"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
)

// TestFromLeaderKeepsTheStatus: a follower passing on the leader's answer
// to a forwarded request answers with the leader's status: a 502 (Nomad
// refused the agent's token a call) stays a 502, and the message is the
// leader's, without the sentinel's words twice.
func TestFromLeaderKeepsTheStatus(t *testing.T) {
	for _, tc := range []struct {
		code int
		kind error
	}{
		{400, api.ErrInvalid},
		{404, api.ErrNotFound},
		{409, api.ErrConflict},
		{429, api.ErrQueueFull},
		{502, api.ErrNomadRefused},
		{500, api.ErrUnavailable},
	} {
		const msg = "migrate: nodes index: Unexpected response code: 403 (Permission denied; Nomad refused GET /v1/nodes ...)"
		err := fromLeader(&api.StatusError{Code: tc.code, Message: msg})
		if !errors.Is(err, tc.kind) {
			t.Errorf("the leader's %d: %v; want it to wrap %v", tc.code, err, tc.kind)
		}
		if tc.code != 500 && api.ErrorMessage(err) != msg {
			t.Errorf("the leader's %d: the follower says %q; want %q", tc.code, api.ErrorMessage(err), msg)
		}
	}
}
