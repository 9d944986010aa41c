package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// DefaultRaftPort is the port foreshape's Raft transport listens on unless
// configured otherwise.
const DefaultRaftPort = 7576

// Config configures a Node. Zero durations and counts take the defaults
// documented on each field.
type Config struct {
	// NodeID is this server's stable Raft ID; it must be unique in the
	// cluster and survive restarts (the agent persists one under DataDir,
	// see LoadOrCreateNodeID).
	NodeID string
	// Name, HTTPAddr and Version describe the server to its peers (OpInfo):
	// a readable name, the address of its HTTP API, its release.
	Name     string
	HTTPAddr string
	Version  string
	// StateProtocol is the state protocol this server's build speaks
	// (agent/state's Protocol), advertised in OpInfo; zero reads as 1, the
	// protocol of every release from before servers advertised one.
	StateProtocol int
	// CommandProtocol, when set, returns the state protocol an encoded
	// command needs (agent/state's CommandProtocol), or an error for one
	// this build cannot apply itself. Apply refuses a command of a
	// protocol that a server of the configuration has not advertised in
	// this term (protocol.go).
	CommandProtocol func(cmd []byte) (int, error)

	// BindAddr is the host:port the TCP transport listens on, for example
	// "0.0.0.0:7576" or "127.0.0.1:0" for any free port. In InMemory mode an
	// empty BindAddr selects an in-process transport.
	BindAddr string
	// AdvertiseAddr is the host:port other servers dial; empty means the
	// listener's address, which must then not be unspecified (0.0.0.0).
	AdvertiseAddr string

	// DataDir holds raft.db (log and stable store, raft-boltdb) and
	// snapshots/. Required unless InMemory.
	DataDir string
	// InMemory keeps log, stable store and snapshots in memory (dev mode);
	// everything is lost on Close.
	InMemory bool

	// Bootstrap makes this node bootstrap a new cluster with itself as the
	// only voter when it has no Raft state yet. A node with state ignores it.
	Bootstrap bool
	// BootstrapExpect is how many voting servers must have found each other
	// (through RetryJoin and Discover) before they bootstrap a new cluster
	// together; a server that finds an existing cluster joins it instead.
	BootstrapExpect int
	// RetryJoin lists other servers' Raft addresses (HOST:PORT). Until it is
	// part of a cluster with a leader, the node asks them for the cluster
	// and joins it, retrying every RetryInterval (default 5s).
	RetryJoin     []string
	RetryInterval time.Duration
	// Discover, when set, returns more addresses to join at each attempt
	// (the agent looks the foreshape service up in Consul's catalog); the
	// addresses it returns with an error are tried too, and the error is
	// said in the join error.
	Discover func(ctx context.Context) ([]string, error)

	// Nonvoter asks to join as a non-voter and never be promoted
	// (server.voter = false).
	Nonvoter bool
	// Voters is how many voters the leader keeps in the configuration (1, 3
	// or 5; default BootstrapExpect, at least 1): it promotes non-voters
	// while there are fewer, and demotes the surplus.
	Voters int
	// PromoteAfter: a voter that has not answered the leader for this long
	// is replaced by a healthy non-voter, when there is one (default 30s).
	PromoteAfter time.Duration
	// RemoveAfter: a server that has not answered the leader for this long
	// is removed from the configuration (default 10m; negative: never).
	RemoveAfter time.Duration
	// ReconcileInterval is how often the leader checks every server's
	// health and the voter count (default 1s).
	ReconcileInterval time.Duration
	// OnServers, when set, is called on the leader after every reconcile
	// round with every server of the configuration and what it answered, so
	// that the owner can replicate server metadata.
	OnServers func(leaderCtx context.Context, servers []ServerHealth)

	// Probe, when set, replaces the OpInfo call the leader makes to check a
	// server (tests with in-memory transports, which carry no cluster
	// calls).
	Probe func(ctx context.Context, id, address string) (ServerInfo, error)

	// TLS, when set, is mutual TLS on the Raft port, for Raft and cluster
	// calls alike.
	TLS *TLS

	// Raft timing. Defaults: heartbeat and election 1s, leader lease 500ms,
	// commit 50ms. Tests use about 50ms for all of them.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// Snapshots. A sample batch for a large cluster is hundreds of kilobytes,
	// so foreshape snapshots far more often than raft's defaults: every 256
	// entries (checked every 2 minutes, at random up to twice that),
	// keeping 256 entries behind the snapshot for slow followers and 2
	// snapshots on disk. The agent sets the first three from the server
	// block's raft_snapshot_threshold, raft_snapshot_interval and
	// raft_trailing_logs.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	SnapshotRetain    int

	// TCP transport: connection pool size per peer (default 3) and I/O
	// timeout (default 10s).
	MaxPool          int
	TransportTimeout time.Duration

	// LockTimeout is how long New waits for raft.db's file lock, held while
	// another foreshape process uses the same data dir (default 5s).
	LockTimeout time.Duration

	// BarrierTimeout bounds each attempt of the barrier a new leader runs
	// before it starts leader work (default 30s; retried while leader).
	BarrierTimeout time.Duration

	// Transport, LogStore, StableStore and SnapshotStore replace what New
	// would build from the fields above, for tests and embedding. New does
	// not close what it did not create.
	Transport     raft.Transport
	LogStore      raft.LogStore
	StableStore   raft.StableStore
	SnapshotStore raft.SnapshotStore

	// olderTransport: a test's server of a release before the Raft hello
	// (OlderTransport in export_test.go).
	olderTransport bool
	// olderRecovered: a test's server of a release before a refusal
	// carried the Recovery of the refused server's cluster (recovered.go):
	// it neither sends one nor takes one.
	olderRecovered bool
}

func (c Config) withDefaults() Config {
	if c.StateProtocol <= 0 {
		c.StateProtocol = 1
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, time.Second)
	def(&c.ElectionTimeout, time.Second)
	def(&c.LeaderLeaseTimeout, 500*time.Millisecond)
	def(&c.CommitTimeout, 50*time.Millisecond)
	def(&c.SnapshotInterval, 2*time.Minute)
	def(&c.TransportTimeout, 10*time.Second)
	def(&c.BarrierTimeout, 30*time.Second)
	def(&c.RetryInterval, 5*time.Second)
	def(&c.PromoteAfter, 30*time.Second)
	def(&c.RemoveAfter, 10*time.Minute)
	def(&c.ReconcileInterval, time.Second)
	if c.Voters == 0 {
		c.Voters = max(c.BootstrapExpect, 1)
	}
	def(&c.LockTimeout, 5*time.Second)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 256
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 256
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = 2
	}
	if c.MaxPool == 0 {
		c.MaxPool = 3
	}
	return c
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("node id is empty"))
	}
	if !c.InMemory && c.DataDir == "" && (c.LogStore == nil || c.StableStore == nil || c.SnapshotStore == nil) {
		errs = append(errs, errors.New("data dir is required unless in memory"))
	}
	if c.Transport == nil && c.BindAddr == "" && !c.InMemory {
		errs = append(errs, errors.New("bind address is empty"))
	}
	if c.BootstrapExpect < 0 {
		errs = append(errs, fmt.Errorf("bootstrap expect %d is negative", c.BootstrapExpect))
	}
	if c.Voters < 0 || c.Voters > 9 {
		errs = append(errs, fmt.Errorf("voters %d: keep 1, 3 or 5", c.Voters))
	}
	if c.BootstrapExpect > 1 && c.Voters > 0 && c.BootstrapExpect > c.Voters {
		errs = append(errs, fmt.Errorf("bootstrap expect %d is more than the %d voters to keep", c.BootstrapExpect, c.Voters))
	}
	if c.Bootstrap && (c.BootstrapExpect > 1 || len(c.RetryJoin) > 0 || c.Discover != nil) {
		errs = append(errs, errors.New("bootstrap alone and joining other servers exclude each other"))
	}
	if c.BootstrapExpect > 1 && len(c.RetryJoin) == 0 && c.Discover == nil {
		errs = append(errs, fmt.Errorf("bootstrap expect %d needs servers to join (retry join or discover)", c.BootstrapExpect))
	}
	if c.SnapshotRetain < 0 || c.MaxPool < 0 {
		errs = append(errs, errors.New("snapshot retain and max pool must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: config: %w", err)
	}
	return nil
}

// raftConfig translates c (with defaults) for hashicorp/raft.
func (c Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	// A server removed while it runs stays up and joins again (as a
	// non-voter) through its join loop, instead of shutting down.
	rc.ShutdownOnRemove = false
	return rc
}
