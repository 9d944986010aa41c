// Package cluster runs foreshape's Raft node on hashicorp/raft: it opens the
// log, stable and snapshot stores (raft-boltdb and file snapshots under the
// data directory, or memory in dev mode) and the TCP transport, bootstraps a
// new cluster, replicates commands to the FSM on every server, and tells its
// owner when it leads.
//
// It knows nothing of what the commands mean — that is agent/state — and it
// must never apply state itself, retry a command whose outcome is unknown, or
// run leader work outside a leadership context.
//
// # Leadership
//
// Leader-only work (collecting, forecasting, acting) runs under a context
// that is cancelled when leadership ends: RunLeaderLoop(ctx, fn) calls fn
// once per term, and LeaderContext returns the current term's context. A
// term starts only after a barrier, so the FSM has applied every entry of
// earlier terms before leader work reads it. Leadership changes arrive on a
// buffered raft.Config.NotifyCh read by one goroutine, never on the lossy
// raft.LeaderCh. Apply on a follower fails with a *NotLeaderError carrying
// the leader's ID and address, so the HTTP layer can forward.
//
// Leader work that reaches outside the cluster (every mutating Nomad call)
// asks VerifyLeader(leaderCtx) right before each call: it passes only while
// a quorum still answers this node as the leader of the very term
// leaderCtx belongs to, so a deposed leader — partitioned away, or leading
// again in a later term — makes no write. The Leadership interface is those
// two methods, for the packages that act.
//
// # Goroutines
//
// hashicorp/raft owns the FSM goroutine (Apply, Snapshot, Restore), the
// snapshot goroutine (Persist) and its replication goroutines. Node adds the
// leadership watcher, one short-lived barrier goroutine per election won, and
// one goroutine per in-flight Apply waiting for its future. The caller owns
// the goroutine running each RunLeaderLoop. Close stops them all.
//
// # Cluster shape
//
// Today foreshape runs a single voter that bootstraps itself. Config already
// carries BootstrapExpect and RetryJoin, and Node has Bootstrap with an
// explicit server list, AddVoter, AddNonvoter and RemoveServer, for the
// multi-server cluster where a few servers vote and the rest of a Nomad
// system job's allocations join as non-voters. Package clustertest builds
// in-memory clusters of any size, with partitions, for tests.
package cluster
