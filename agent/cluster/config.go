package cluster

import (
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
	// cluster and survive restarts (the agent derives it from the Nomad node
	// or persists one under DataDir).
	NodeID string

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
	// BootstrapExpect and RetryJoin are reserved for multi-server clusters:
	// wait for this many servers before bootstrapping, and join through
	// these addresses. They are not implemented yet, and New rejects them.
	BootstrapExpect int
	RetryJoin       []string

	// Raft timing. Defaults: heartbeat and election 1s, leader lease 500ms,
	// commit 50ms. Tests use about 50ms for all of them.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// Snapshots. A sample batch for a large cluster is hundreds of kilobytes,
	// so foreshape snapshots far more often than raft's defaults: every 256
	// entries (checked every 2 minutes), keeping 256 entries behind the
	// snapshot for slow followers and 2 snapshots on disk.
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
}

func (c Config) withDefaults() Config {
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
	if c.BootstrapExpect > 1 {
		errs = append(errs, fmt.Errorf("bootstrap_expect %d: multi-server bootstrap is not supported yet", c.BootstrapExpect))
	}
	if len(c.RetryJoin) > 0 {
		errs = append(errs, errors.New("retry_join: joining other servers is not supported yet"))
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
	return rc
}
