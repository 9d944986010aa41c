package state

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// Local applies commands straight to an FSM, without Raft, giving each the
// next log index: for single-process runs that need the replicated state's
// rules but not its replication (the proof harness, tests). It is safe for
// concurrent use.
type Local struct {
	mu  sync.Mutex
	FSM *FSM
}

// NewLocal returns a Local over a new FSM with cfg.
func NewLocal(cfg Config) (*Local, error) {
	f, err := NewFSM(cfg)
	if err != nil {
		return nil, err
	}
	return &Local{FSM: f}, nil
}

// Apply applies cmd as the next log entry. An error value returned by the
// FSM comes back as the error, as it does through the Raft node.
func (l *Local) Apply(ctx context.Context, cmd Command) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	data, err := Marshal(cmd)
	if err != nil {
		return Result{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	resp := l.FSM.Apply(&raft.Log{Index: l.FSM.AppliedIndex() + 1, Type: raft.LogCommand, Data: data})
	switch r := resp.(type) {
	case error:
		return Result{}, r
	case Result:
		return r, nil
	}
	return Result{}, fmt.Errorf("state: unexpected apply response %T", resp)
}
