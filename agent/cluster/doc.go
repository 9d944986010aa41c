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
// A leader that is closed hands leadership over first (Close): raft
// brings another voter (those that can write to their data_dir first,
// ServerHealth.Sound, then those that answer) up to the leader's last entry
// and tells it to stand for election at once, so the cluster leads again
// within milliseconds instead of after the followers' heartbeat timeout. A
// hand-over that cannot happen (no other voter, no quorum) is given up
// after at most 3 s and logged, and the node stops as it would have.
//
// # The Raft port
//
// One TCP port carries Raft and foreshape's cluster calls: a dialer writes
// one byte after the (optional) TLS handshake, 'R' for Raft, 'C' for a
// cluster call — one JSON request and answer per connection (rpc.go). With
// TLS configured the port requires mutual TLS: both sides present a
// certificate chaining to the configured CA. Every server answers OpInfo
// (who it is, what it knows of the cluster) and OpJoin (forwarded to the
// leader, which adds the caller as a non-voter); the owner adds its own
// calls with Handle and HandleOnLeader, which followers pass on to the
// leader. Client agents call servers with RPCClient alone.
//
// # Cluster shape
//
// A single server bootstraps itself (Config.Bootstrap). Otherwise a server
// without Raft state asks the servers of RetryJoin and Discover for their
// info: if one knows a leader it joins through it; if BootstrapExpect
// voting servers without state have found each other, the first
// BootstrapExpect of them by ID bootstrap together with the same list. A
// server keeps checking that it is a member with a leader, and joins again
// when it is not (back from a long absence, or at a new address).
//
// The leader keeps Config.Voters voters: every ReconcileInterval it asks
// each server for its info, promotes a caught-up non-voter that can write
// to its data_dir (ServerHealth.Sound) while voters are missing or one has
// been silent, or said its data_dir fails, longer than PromoteAfter,
// demotes the surplus (the silent one first, then one whose data_dir
// fails) and servers that ask not to vote (Nonvoter), and removes a server
// silent longer than RemoveAfter (one whose data_dir fails answers, and is
// not removed) — one change per round, never its own. Node IDs are random UUIDs persisted
// in the data dir (LoadOrCreateNodeID). A cluster ID, decided by a Raft
// log entry (a new cluster's first leader commits it before it publishes its term)
// and kept in every server's stable store, names the cluster whose state a
// server holds: a server with another cluster's state is never added
// (identity.go). Package clustertest builds
// in-memory clusters of any size, with partitions, for tests.
//
// # Rolling upgrades
//
// Servers advertise the state protocol their build speaks in OpInfo
// (Config.StateProtocol); Apply refuses a command of a later protocol
// (Config.CommandProtocol) until every server of the configuration has
// advertised it to the leader's health checks in this term. A state
// machine that stops at an entry or snapshot it cannot read (Halted) is
// logged once at ERROR, answered in Ready, Status and OpInfo, and never
// leads: catchUp hands leadership over instead of publishing the term
// (protocol.go).
//
// # Outage recovery
//
// A server given data_dir/peers.json rewrites its configuration before raft
// starts and takes a new cluster ID (recover.go). The recovered cluster
// keeps what it was recovered from, and tells a server of the old cluster
// that reaches it (a Raft hello's refusal, OpInfo); that server, told so
// about its own cluster ID and only then, is superseded for good: it ends
// its leadership term, opens and accepts no Raft connection, so it never
// leads or votes again, stops its raft, so it stands for no election, ends
// its join loop, and says it in Ready, Status and OpInfo (State
// Superseded) (recovered.go).
//
// # Backups
//
// SaveBackup writes the leader's raft snapshot into an archive with its
// metadata and checksums; ReadBackup refuses a truncated, corrupted,
// foreign or newer one; RestoreBackup hands a checked backup to raft's
// Restore, ending the leadership term before it and starting a new one
// after, so that no write of the old term lands on the restored state;
// Apply waits meanwhile, from before the barrier that ends the replaced
// state's log until raft's restore is done, so that no other write lands
// on the replaced state to be dropped with it; what the restored state
// must hold from the new term's start (the agent pauses the migration
// queue) travels in the state restored (backup.go).
//
// # The data directory's disk
//
// Every write raft makes to the stores (log, stable, snapshots) passes
// through wrappers that tell the node when writes fail and when they work
// again (disk.go): the node logs an outage once, says it in Ready, Status,
// DataDirError and its answers to the leader's health checks (so that
// the leader's Health shows the server not Sound), refuses the command it
// could not store with an error wrapping ErrDataDir, and keeps raft's
// lines about each failed write and each election it then loses at DEBUG
// until the outage ends. What to do about the failure (step down, reject
// entries, retry) is raft's.
//
// # Goroutines
//
// hashicorp/raft owns the FSM goroutine (Apply, Snapshot, Restore), the
// snapshot goroutine (Persist) and its replication goroutines. Node adds the
// leadership watcher, one short-lived barrier goroutine per election won,
// one goroutine per in-flight Apply waiting for its future, the join loop,
// the reconcile loop (while leading), and on the Raft port an accept loop
// with one goroutine per connection being routed or served. The caller owns
// the goroutine running each RunLeaderLoop. Close stops them all, or stops
// waiting for raft's after 10 s (shutdownWait) and closes its transport
// and stores.
package cluster
