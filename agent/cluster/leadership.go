package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Leadership is what leader-only work needs from the Raft node, and all it
// needs: the context of the current leadership term, and a confirmation,
// right before each side effect outside the cluster (every mutating Nomad
// call), that this node still leads in that same term. *Node implements it;
// tests may fake it.
type Leadership interface {
	// LeaderContext returns a context that lives as long as this node's
	// current leadership term, and true; or nil and false when the node does
	// not lead (or has not yet caught up after winning an election).
	LeaderContext() (context.Context, bool)
	// VerifyLeader confirms, with a round trip to a quorum of voters, that
	// this node still leads in the term leaderCtx belongs to (a context from
	// LeaderContext or RunLeaderLoop, or one derived from it). It returns
	// nil when it does; an error wrapping ErrNotLeader when leadership was
	// lost or a newer term began, even if this node leads again; and
	// leaderCtx's error when that is done. A deposed leader therefore never
	// passes it, even while its raft state has not noticed yet.
	VerifyLeader(leaderCtx context.Context) error
}

var _ Leadership = (*Node)(nil)

// ErrNoTerm is returned by VerifyLeader for a context that belongs to no
// leadership term.
var ErrNoTerm = errors.New("cluster: the context belongs to no leadership term (use LeaderContext or RunLeaderLoop)")

// VerifyLeader implements Leadership. It costs one heartbeat round trip to
// the other voters (about a millisecond on a LAN; nothing on a single
// server) and is bounded by leaderCtx and the heartbeat timeout.
func (n *Node) VerifyLeader(leaderCtx context.Context) error {
	t, ok := leaderCtx.Value(termKey{}).(*term)
	if !ok {
		return ErrNoTerm
	}
	if err := leaderCtx.Err(); err != nil {
		return fmt.Errorf("cluster: verify leader: %w", err)
	}
	if !n.holds(t) {
		return fmt.Errorf("cluster: verify leader: the term %d has ended: %w", t.number, n.notLeader())
	}
	f := n.raft.VerifyLeader()
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	limit := time.NewTimer(2 * n.cfg.HeartbeatTimeout)
	defer limit.Stop()
	select {
	case err := <-errc:
		if err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
				return fmt.Errorf("cluster: verify leader: %w", n.notLeader())
			}
			return n.mapError("verify leader", err)
		}
	case <-leaderCtx.Done():
		return fmt.Errorf("cluster: verify leader: %w", leaderCtx.Err())
	case <-limit.C:
		return fmt.Errorf("cluster: verify leader: no quorum answered within %v: %w", 2*n.cfg.HeartbeatTimeout, n.notLeader())
	}
	// The quorum answered this node as leader; make sure it is still the
	// same term the caller's work began in.
	if !n.holds(t) || n.raft.CurrentTerm() != t.number {
		return fmt.Errorf("cluster: verify leader: the term %d has ended: %w", t.number, n.notLeader())
	}
	return nil
}

// holds reports whether t is the current, published leadership term.
func (n *Node) holds(t *term) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader == t && t.ctx.Err() == nil
}

// Term returns the Raft term of the leadership a context from
// LeaderContext or RunLeaderLoop (or derived from one) belongs to. Each
// term has at most one leader, so the number tells one stretch of
// leadership from another.
func Term(leaderCtx context.Context) (uint64, bool) {
	t, ok := leaderCtx.Value(termKey{}).(*term)
	if !ok {
		return 0, false
	}
	return t.number, true
}
