package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// ErrNotReady is wrapped by every error Ready returns.
var ErrNotReady = errors.New("not ready")

// ReadyWait bounds how long Ready waits, for the leader's answer and for
// this node to apply the entries the leader had committed when asked: a
// member that keeps up applies them within milliseconds; one catching up
// after a long absence does not. It is kept well below the timeout of the
// servers' readiness check (deploy/foreshape-servers.nomad.hcl, 5 s), so
// that a slow leader or a long catch-up answers 503 and why instead of
// timing the check out.
const ReadyWait = 1 * time.Second

// Ready reports whether this server is a working member of the cluster,
// for a readiness check (a rolling restart moves on to the next server
// only once the last one is ready): it knows a leader, is in the
// configuration at its own address, and its state machine has applied
// every entry the leader's had when asked, and it can write its log and
// stable store (disk.go). The leader is ready once it has applied every
// entry of earlier terms. Otherwise the error (wrapping ErrNotReady) says
// why. Liveness is another matter: a server that is not ready is still
// alive and may be waiting for the others.
func (n *Node) Ready(ctx context.Context) error {
	notReady := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrNotReady}, args...)...)
	}
	if err := n.halted(); err != nil {
		return notReady("%v", err)
	}
	if err := n.Superseded(); err != nil {
		return notReady("%v", err)
	}
	if err := n.disk.err(diskLog, diskStable); err != nil {
		// Snapshots alone failing, it still takes entries.
		return notReady("%v", err)
	}
	if n.raft.State() == raft.Leader {
		if _, ok := n.LeaderContext(); !ok {
			return notReady("elected leader; still applying the entries of earlier terms")
		}
		return nil
	}
	addr, id := n.raft.LeaderWithID()
	if addr == "" {
		if err := n.JoinError(); err != nil {
			return notReady("no leader known: %v", err)
		}
		return notReady("no leader known")
	}
	if !n.inCluster() {
		return notReady("not a member of the cluster at %s yet (leader %s)", n.trans.LocalAddr(), id)
	}
	cctx, cancel := context.WithTimeout(ctx, ReadyWait)
	defer cancel()
	var leader ServerInfo
	if err := n.client.Call(cctx, string(addr), OpInfo, nil, &leader); err != nil {
		return notReady("cannot ask the leader %s at %s how far it has committed: %v", id, addr, err)
	}
	// A leader's state machine that keeps no index reports raft's.
	want := leader.StateIndex
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		got := n.stateIndex()
		if got >= want {
			return nil
		}
		select {
		case <-cctx.Done():
			return notReady("catching up with the leader %s: its state has applied entry %d, this server's %d", id, want, got)
		case <-t.C:
		}
	}
}

// indexedFSM is a state machine that says which entry it applied last
// (agent/state's FSM does).
type indexedFSM interface{ AppliedIndex() uint64 }

// stateIndex is the last entry the state machine applied: its own count
// when it keeps one, else raft's AppliedIndex, which counts the entries
// handed to it.
func (n *Node) stateIndex() uint64 {
	if f, ok := n.fsm.(indexedFSM); ok {
		return f.AppliedIndex()
	}
	return n.raft.AppliedIndex()
}
