package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/state"
)

// TestResumeOfAReplacedPauseIsAConflict: a resume the state machine
// refuses because the queue was paused again since the pause it was sent
// for (state.PausedAgainError, as raft's Apply returns it) is answered
// 409 (api.ErrConflict) saying who paused the queue again and when, as
// docs/api.md says; only the state machine's refusal was tested.
func TestResumeOfAReplacedPauseIsAConflict(t *testing.T) {
	at := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	refused := fmt.Errorf("cluster: apply: %w", &state.PausedAgainError{By: "snapshot restore", At: at, WasBy: "operator", WasAt: at.Add(-time.Hour)})
	err := apiError(refused)
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "paused again by snapshot restore at 2026-12-01T01:00:00Z") {
		t.Errorf("apiError(%v) = %v; want a conflict naming the restore's pause", refused, err)
	}
	if msg := api.ErrorMessage(err); strings.Contains(msg, "conflict") {
		t.Errorf("the answer's message %q says the status again", msg)
	}
}
