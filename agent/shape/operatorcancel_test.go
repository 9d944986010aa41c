package shape_test

import (
	"testing"

	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/agent/shape"
)

// TestOperatorCancelIsMigrates: the planner reads a drain window as
// called off by the reason the agent writes on an operator's cancel.
func TestOperatorCancelIsMigrates(t *testing.T) {
	if shape.OperatorCancel != migrate.OperatorCancel {
		t.Errorf("shape reads an operator's cancel as %q; the agent writes %q", shape.OperatorCancel, migrate.OperatorCancel)
	}
}
