package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Log keys.
const (
	logKeyNodeID  = "node_id"
	logKeyAddress = "address"
	logKeyError   = "error"
	logKeyTerm    = "term"
)

// InMemoryAddress is how a server on the in-process transport (dev mode)
// shows its Raft address, in its log and the API, instead of the random
// ID that stands for an address there.
const InMemoryAddress = "in-memory (dev)"

var (
	// ErrNotLeader is returned (wrapped in *NotLeaderError) by operations
	// that only the leader can perform.
	ErrNotLeader = errors.New("cluster: not the leader")
	// ErrLeadershipLost is returned by Apply when the node lost leadership
	// while the command was in flight: it may or may not be committed.
	ErrLeadershipLost = errors.New("cluster: leadership lost while applying; the command may or may not have been committed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("cluster: node closed")
)

// NotLeaderError says which server leads, when one is known, so that callers
// can forward the request. errors.Is(err, ErrNotLeader) holds.
type NotLeaderError struct {
	LeaderID      string
	LeaderAddress string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAddress == "" {
		return ErrNotLeader.Error() + " (no leader known)"
	}
	return fmt.Sprintf("%s (leader %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAddress)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Node is one foreshape server's Raft node: it replicates commands to the
// FSM on every server and tells its owner when it leads.
//
// Goroutines: raft runs its own; Node adds one that reads raft's leadership
// notifications and, on each gain, one that runs a barrier before publishing
// the new leadership term. All methods are safe for concurrent use.
type Node struct {
	cfg    Config
	logger hclog.Logger
	fsm    raft.FSM
	raft   *raft.Raft
	trans  raft.Transport
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	// mux is the Raft port (TCP transport only; nil in memory).
	mux    *mux
	rpc    *rpcServer
	client *RPCClient
	// closers are the stores and transport New created, closed in order.
	closers []io.Closer

	notifyCh chan bool
	// endTerm ends the current leadership term without a lost leadership
	// (a restore, backup.go); the channel sent is closed once it ended.
	endTerm chan chan struct{}
	// applying is held for reading by Apply from its checks until raft
	// has its command, and for writing by a restore while it sets or
	// clears restoring, so that every write that passed Apply's checks
	// before the restore reaches raft before its barrier.
	applying sync.RWMutex
	// restoring is non-nil while a backup is being restored (guarded by
	// applying), from before the barrier that ends the replaced state's
	// log until raft's restore is done or failed, and closed then: Apply
	// waits for it, so that no write reaches the log between the reading
	// of the restore's index and the restore, where raft would apply it
	// to the replaced state and the restore drop it after its answer.
	restoring chan struct{}
	// restore serialises restores of backups (RestoreBackupAt).
	restore sync.Mutex
	// applyWaits is called, when set (tests), as an Apply starts waiting
	// for a restore.
	applyWaits func()
	done       chan struct{}
	// closing is cancelled by Close, for work that takes a context.
	closing context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	close   sync.Once

	mu sync.Mutex
	// leader is the current leadership term once the FSM has caught up;
	// nil when this node does not lead.
	leader *term
	// changed is closed and replaced whenever leader changes.
	changed chan struct{}
	// joined is set once a join succeeded, to log it once.
	joined atomic.Bool
	// joinErr is the last join attempt's error while the node knows no
	// leader (JoinError).
	joinErr atomic.Pointer[error]
	// httpAddr overrides cfg.HTTPAddr (SetHTTPAddr).
	httpAddr string
	// recon is the reconcile loop's view of the servers while leading.
	recon *reconciler
	// beside is the last look's finding of another cluster running its
	// own leader at this server's join addresses (besideOther; nil when
	// none was found).
	beside atomic.Pointer[error]
	// clusterID caches ClusterID once known.
	clusterID atomic.Pointer[string]
	// created names what opening the Raft store made in the data_dir at
	// this start (noteCreated), for a refusal after it to say.
	created []string
	// restores counts the snapshots the state machine restored (Restores).
	restores atomic.Uint64
	// live is raft once NewRaft returned, for the transport's goroutines,
	// which raft starts before (raftHello).
	live atomic.Pointer[raft.Raft]
	// leaving are the peers that said they were stopping (OpLeaving).
	leaving *leavingPeers
	// unreachable folds raft's failures to reach a peer that did not say
	// it was leaving.
	unreachable *unreachablePeers
	// disk follows the writes to the data directory (disk.go).
	disk *diskHealth
	// rejected folds a follower's repeated rejections (rejections.go).
	rejected *rejectedPeers
	idState
	recState
}

// term is one stretch of leadership; ctx is cancelled when it ends.
type term struct {
	ctx    context.Context
	cancel context.CancelFunc
	// number is raft's term when leadership was gained.
	number uint64
}

// termKey is the context key under which a term's context carries its
// *term, so that VerifyLeader can tell which term a context belongs to.
type termKey struct{}

// New starts a Raft node for fsm. It builds the stores and transport from
// cfg unless cfg supplies them, bootstraps when cfg.Bootstrap asks and the
// node has no state, and returns while raft elects a leader in the
// background.
func New(cfg Config, fsm raft.FSM, logger hclog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	n := &Node{
		cfg:         cfg,
		logger:      logger,
		fsm:         fsm,
		notifyCh:    make(chan bool, 16),
		endTerm:     make(chan chan struct{}),
		done:        make(chan struct{}),
		changed:     make(chan struct{}),
		client:      &RPCClient{TLS: cfg.TLS},
		leaving:     newLeavingPeers(time.Now),
		unreachable: newUnreachablePeers(time.Now),
		rejected:    newRejectedPeers(time.Now),
	}
	n.closing, n.stop = context.WithCancel(context.Background())
	n.disk = newDiskHealth(logger, time.Now, n.closing)
	n.rpc = &rpcServer{node: n, handlers: map[string]handler{}}
	n.Handle(OpInfo, n.handleInfo)
	n.HandleOnLeader(OpJoin, n.handleJoin)
	n.Handle(OpLeaving, n.handleLeaving)
	if err := n.open(fsm); err != nil {
		n.stop()
		n.closeResources()
		return nil, err
	}
	resumed := make(chan raft.Observation, 16)
	obs := raft.NewObserver(resumed, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.ResumedHeartbeatObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	n.wg.Add(1)
	go n.watchResumed(resumed, obs)
	n.wg.Add(1)
	go n.watchLeadership()
	if cfg.Bootstrap {
		if err := n.Bootstrap(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.Close()
			return nil, err
		}
	}
	if len(cfg.RetryJoin) > 0 || cfg.Discover != nil {
		n.wg.Add(1)
		go n.joinLoop()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_ = n.RunLeaderLoop(n.closing, n.reconcileLoop)
	}()
	return n, nil
}

// openError is New's error when path (raft.db, snapshots/) cannot be
// opened: for a disk that is full, read-only or failing it says so and
// that the server cannot start until it can write there.
func openError(path string, err error) error {
	if diskError(err) {
		return fmt.Errorf("cluster: cannot open %s: %s (%w); this server starts once its data_dir can be written", path, diskCause(err), err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		return fmt.Errorf("cluster: %w", err) // it names path already
	}
	return fmt.Errorf("cluster: open %s: %w", path, err)
}

// removeHalfWrittenSnapshots removes the snapshot directories in dir that
// a process killed while writing them left behind (raft's file store
// writes a snapshot into NAME.tmp and renames it once complete). Only
// called while holding raft.db's lock.
func (n *Node) removeHalfWrittenSnapshots(dir string) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range es {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(path); err != nil {
			n.logger.Warn("could not remove a snapshot left half-written by an earlier stop", "path", path, logKeyError, err)
			continue
		}
		n.logger.Info("removed a snapshot left half-written by an earlier stop", "path", path)
	}
}

func (n *Node) open(fsm raft.FSM) error {
	cfg := n.cfg
	logs, stable, snaps := cfg.LogStore, cfg.StableStore, cfg.SnapshotStore
	switch {
	case cfg.InMemory:
		mem := raft.NewInmemStore()
		if logs == nil {
			logs = mem
		}
		if stable == nil {
			stable = mem
		}
		if snaps == nil {
			snaps = raft.NewInmemSnapshotStore()
		}
	case logs == nil || stable == nil || snaps == nil:
		if logs == nil && stable == nil && snaps == nil && cfg.DataDir != "" {
			// A peers file in a data_dir with no Raft state is refused
			// before the store below creates raft.db and snapshots/
			// (recover.go).
			if err := refuseWithoutState(cfg.DataDir, cfg.NodeID); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("cluster: data dir: %w", err)
		}
		if logs == nil || stable == nil {
			dbPath := filepath.Join(cfg.DataDir, "raft.db")
			n.noteCreated(dbPath, "raft.db")
			bolt, err := raftboltdb.New(raftboltdb.Options{
				Path: dbPath,
				// Fail instead of waiting forever when another process
				// holds the database.
				BoltOptions: &bbolt.Options{Timeout: cfg.LockTimeout},
			})
			if errors.Is(err, bbolt.ErrTimeout) {
				return fmt.Errorf("cluster: data_dir %s is in use: another process (a foreshape agent still running?) has held %s locked for %s; stop it or give this agent its own data_dir: %w",
					cfg.DataDir, filepath.Join(cfg.DataDir, "raft.db"), cfg.LockTimeout, err)
			}
			if errors.Is(err, bbolt.ErrInvalid) || errors.Is(err, bbolt.ErrChecksum) || errors.Is(err, bbolt.ErrVersionMismatch) {
				return fmt.Errorf("cluster: %s is damaged, this server cannot read its Raft log: %w; while the other servers still form a quorum, move data_dir %s aside and start this server again: it joins as a new server and the leader sends it the state",
					filepath.Join(cfg.DataDir, "raft.db"), err, cfg.DataDir)
			}
			if err != nil {
				return openError(dbPath, err)
			}
			n.closers = append(n.closers, bolt)
			// This process holds raft.db's lock, so no snapshot is being
			// written here: a NAME.tmp is what a killed process left
			// half-written, which raft's store skips and never removes.
			if snaps == nil {
				n.removeHalfWrittenSnapshots(filepath.Join(cfg.DataDir, "snapshots"))
			}
			if stable == nil {
				stable = watchedStable{bolt, n.disk, dbPath}
			}
			if logs == nil {
				// Under the cache, which keeps only the text of the
				// store's errors.
				cached, err := raft.NewLogCache(512, watchedLogs{bolt, n.disk, dbPath})
				if err != nil {
					return fmt.Errorf("cluster: log cache: %w", err)
				}
				logs = cached
			}
		}
		if snaps == nil {
			n.noteCreated(filepath.Join(cfg.DataDir, "snapshots"), "snapshots/")
			fss, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, n.raftLogger("snapshot"))
			if err != nil {
				return openError(filepath.Join(cfg.DataDir, "snapshots"), err)
			}
			snaps = watchedSnapshots{fss, n.disk, filepath.Join(cfg.DataDir, "snapshots"), newSnapshotTmp(n.logger.Named("snapshot"))}
		}
	}

	// Stores given in cfg are followed too, under what they are.
	if cfg.LogStore != nil {
		logs = watchedLogs{logs, n.disk, "the Raft log store"}
	}
	if cfg.StableStore != nil {
		stable = watchedStable{stable, n.disk, "the Raft stable store"}
	}
	if cfg.SnapshotStore != nil {
		snaps = watchedSnapshots{snaps, n.disk, "the Raft snapshot store", nil}
	}
	n.logs, n.stable, n.snaps = logs, stable, snaps
	trans := cfg.Transport
	var accept *mux
	if trans == nil {
		if cfg.InMemory && cfg.BindAddr == "" {
			_, inmem := raft.NewInmemTransport("")
			trans = inmem
			n.closers = append(n.closers, inmem)
		} else {
			m, err := listen(cfg.BindAddr, cfg.AdvertiseAddr, cfg.TLS, n.logger.Named("transport"))
			if err != nil {
				return err
			}
			m.rpc = n.rpc.serve
			m.peer = n
			m.older = cfg.olderTransport
			m.olderRecovered = cfg.olderRecovered
			n.mux = m
			// MaxRPCsInFlight 1: each replication stream sends an append
			// and waits for its answer, without raft's pipeline. The
			// pipeline (two in flight by default, unbuffered channels
			// between its sender, its connection reader and raft's
			// decoder) wedges for good when raft's decoder stops at an
			// answer naming a newer term, as after a hand-over, while the
			// sender has one more append to hand over: raft's shutdown
			// then waits forever (TestTCPMutualTLS under -race at load
			// 8–14, which stops its leader: 20 of 90 runs before, 0 of 90
			// without the pipeline). Replication speed is alike
			// (BenchmarkReplicatedQueueOps).
			tcp := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
				Stream: raftLayer{m}, MaxPool: cfg.MaxPool, Timeout: cfg.TransportTimeout,
				Logger: n.raftLogger("transport"), MaxRPCsInFlight: 1,
			})
			trans = tcp
			n.closers = append(n.closers, tcp)
			accept = m
		}
	}
	n.trans = trans

	rc := cfg.raftConfig()
	rc.Logger = n.raftLogger("raft")
	rc.NotifyCh = n.notifyCh
	// A server whose cluster was recovered as another stays out of it
	// (recovered.go), before raft could dial or answer anyone.
	n.loadSuperseded(rc)
	// An operator's data_dir/peers.json rewrites the configuration first
	// (recover.go).
	if err := n.recoverFromPeersFile(fsm, rc, time.Now()); err != nil {
		return err
	}
	r, err := raft.NewRaft(rc, n.wrapFSM(fsm), logs, stable, snaps, trans)
	if herr := n.halted(); err != nil && herr != nil && strings.Contains(err.Error(), "failed to load any existing snapshots") {
		// Intact snapshots that a newer release wrote (protocol.go).
		return fmt.Errorf("cluster: start raft: %w: %w; start this server with the release the other servers run", err, herr)
	}
	if err != nil && !cfg.InMemory && cfg.SnapshotStore == nil && strings.Contains(err.Error(), "failed to load any existing snapshots") {
		// Raft's error says no more; its log names each snapshot and why
		// it could not be read.
		return fmt.Errorf("cluster: start raft: %w: the snapshots in %s cannot be read (damaged; the log names each); while the other servers still form a quorum, move data_dir %s aside and start this server again: it joins as a new server and the leader sends it the state",
			err, filepath.Join(cfg.DataDir, "snapshots"), cfg.DataDir)
	}
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft = r
	n.live.Store(r)
	// Peers' RPCs (info, join, forwarded writes) read n.raft: accept
	// connections only now that it is set. Raft's own listener waits in
	// Accept until then.
	if accept != nil {
		accept.serve()
	}
	addr := string(trans.LocalAddr())
	if n.mux == nil && cfg.Transport == nil {
		// The in-process transport's address is a generated ID no peer
		// can dial.
		addr = InMemoryAddress
	}
	n.logger.Info("raft started", logKeyNodeID, cfg.NodeID, logKeyAddress, addr)
	return nil
}

// Server is one member of the Raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Voter is false for non-voters, which replicate but do not vote.
	Voter bool `json:"voter"`
	// Leader marks the current leader in Status.
	Leader bool `json:"leader"`
}

// Bootstrap makes a brand-new cluster whose configuration is the given
// servers (voters, non-voters), or this node alone as a voter when none are
// given. It fails with raft.ErrCantBootstrap when the node already has Raft
// state. Every server must be bootstrapped with the same list, or only one.
func (n *Node) Bootstrap(servers ...Server) error {
	if len(servers) == 0 {
		servers = []Server{{ID: n.cfg.NodeID, Address: string(n.trans.LocalAddr()), Voter: true}}
	}
	var conf raft.Configuration
	for _, s := range servers {
		suf := raft.Voter
		if !s.Voter {
			suf = raft.Nonvoter
		}
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: suf, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address)})
	}
	// A new cluster's first leader makes its ID at once (ensureClusterID):
	// the mark says the cluster is new, not a data dir from before IDs.
	has, err := raft.HasExistingState(n.logs, n.stable, n.snaps)
	if err != nil {
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	if !has {
		if err := n.markNewCluster(true); err != nil {
			return err
		}
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
		if !has {
			_ = n.markNewCluster(false)
		}
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	n.logger.Info("bootstrapped a new cluster", "servers", len(servers))
	return nil
}

// watchLeadership turns raft's notifications into leadership terms. It reads
// the channel promptly (raft blocks on it) and leaves the barrier to
// catchUp.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	var cur *term
	end := func() {
		if cur != nil {
			cur.cancel()
			cur = nil
			n.setLeader(nil)
		}
	}
	defer end()
	for {
		select {
		case <-n.done:
			return
		case ended := <-n.endTerm:
			end()
			close(ended)
		case lead := <-n.notifyCh:
			end()
			if !lead {
				n.leadershipLog().Info("lost leadership")
				continue
			}
			cur = &term{number: n.raft.CurrentTerm()}
			cur.ctx, cur.cancel = context.WithCancel(context.WithValue(context.Background(), termKey{}, cur))
			n.leadershipLog().Info("gained leadership; waiting for the state to catch up", logKeyTerm, n.raft.CurrentTerm())
			n.wg.Add(1)
			go n.catchUp(cur)
		}
	}
}

// catchUp runs a barrier so that every entry of earlier terms is applied to
// the FSM, commits the cluster's ID when it is a new cluster's first leader
// (ensureClusterID), then publishes the term, unless it ended meanwhile.
func (n *Node) catchUp(t *term) {
	defer n.wg.Done()
	refused := 0
	for t.ctx.Err() == nil && n.Superseded() == nil {
		step := "barrier"
		// BarrierTimeout bounds only the barrier's enqueueing: raft answers
		// it once the FSM has applied it, or never when raft stops first
		// (await; seen holding Close until CI's timeout).
		err := n.await(t.ctx, step, n.raft.Barrier(n.cfg.BarrierTimeout))
		if t.ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return
		}
		if herr := n.halted(); err == nil && herr != nil {
			// Its state is not the cluster's: never lead on it.
			n.refuseToLead(t, herr, refused)
			refused++
			continue
		}
		if n.Superseded() != nil {
			// Its cluster was recovered as another (recovered.go): it
			// reaches no one, and raft steps down once its lease passes.
			return
		}
		if err == nil {
			step = "committing the cluster id"
			ctx, cancel := context.WithTimeout(t.ctx, n.cfg.BarrierTimeout)
			err = n.ensureClusterID(ctx)
			cancel()
			if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrClosed) {
				return
			}
		}
		if err == nil {
			n.mu.Lock()
			if t.ctx.Err() == nil && n.Superseded() == nil {
				n.leader = t
				close(n.changed)
				n.changed = make(chan struct{})
			}
			n.mu.Unlock()
			n.leadershipLog().Info("leading", logKeyTerm, n.raft.CurrentTerm())
			return
		}
		if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrClosed) {
			return
		}
		n.leadershipLog().Warn(step+" failed; retrying before leading", logKeyError, err)
		select {
		case <-t.ctx.Done():
		case <-time.After(n.cfg.HeartbeatTimeout):
		}
	}
}

// refuseToLead hands leadership to another voter, for a leader whose
// state machine stopped applying the log (protocol.go), and waits before
// catchUp tries again; tried counts the earlier tries of this term, which
// it does not log again.
func (n *Node) refuseToLead(t *term, herr error, tried int) {
	if tried == 0 {
		n.logger.Error("elected leader, but this server's state machine stopped applying the log: handing leadership over instead of leading",
			logKeyTerm, t.number, logKeyError, herr)
	}
	fut := n.raft.LeadershipTransfer()
	errc := make(chan error, 1)
	go func() { errc <- fut.Error() }()
	select {
	case <-t.ctx.Done():
		return
	case err := <-errc:
		if err != nil && tried == 0 {
			n.logger.Warn("could not hand leadership over; not leading while this server's state machine is stopped (it keeps trying)", logKeyError, err)
		}
	case <-time.After(n.handOverBound()):
	}
	select {
	case <-t.ctx.Done():
	case <-time.After(n.cfg.ElectionTimeout):
	}
}

func (n *Node) setLeader(t *term) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leader == t {
		return
	}
	n.leader = t
	close(n.changed)
	n.changed = make(chan struct{})
}

// LeaderContext returns a context that lives as long as this node's current
// leadership and true, or nil and false when the node does not lead (or has
// not yet caught up after winning an election).
func (n *Node) LeaderContext() (context.Context, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leader == nil {
		return nil, false
	}
	return n.leader.ctx, true
}

// RunLeaderLoop calls fn once for every leadership term of this node, after
// the FSM has caught up with the log, with a context that is cancelled when
// leadership ends or ctx is done. fn must return when its context is done;
// if it returns earlier it is not called again until the next term.
// RunLeaderLoop returns when ctx is done (with ctx's error) or the node is
// closed (ErrClosed). Any number of loops may run.
func (n *Node) RunLeaderLoop(ctx context.Context, fn func(leaderCtx context.Context)) error {
	var last *term
	for {
		n.mu.Lock()
		t, changed := n.leader, n.changed
		n.mu.Unlock()
		if t != nil && t != last {
			last = t
			lctx, cancel := context.WithCancel(context.WithValue(ctx, termKey{}, t))
			stop := context.AfterFunc(t.ctx, cancel)
			fn(lctx)
			stop()
			cancel()
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return ErrClosed
		case <-changed:
		}
	}
}

// LeaderAddress returns the leader's Raft address and ID as this node
// knows them, empty when it knows none.
func (n *Node) LeaderAddress() (address, id string) {
	addr, sid := n.raft.LeaderWithID()
	return string(addr), string(sid)
}

// IsLeader reports whether raft considers this node the leader. Leader work
// should use LeaderContext or RunLeaderLoop, which also wait for the FSM to
// catch up.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LastIndex is the index of the last entry of the node's Raft log (stored,
// not necessarily applied): no index of this cluster's state it has seen
// is past it.
func (n *Node) LastIndex() uint64 { return n.raft.LastIndex() }

// SnapshotIndex is the index of the last snapshot Raft took, installed
// from the leader or restored from a backup: the state machine's state
// holds the log at least up to it. Neither the state's own applied index
// says as much after a restore (it is the backup's last entry, behind the
// index the restore took the log to) nor raft's AppliedIndex at any time
// (it counts entries handed to the state machine, not yet applied).
func (n *Node) SnapshotIndex() uint64 {
	i, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	return i
}

// Restores is how many snapshots the state machine has restored since
// the node started: read at the start, installed from the leader, or a
// backup an operator restored. Each replaced the whole state, which may
// come back with an index a reader held before.
func (n *Node) Restores() uint64 { return n.restores.Load() }

// noteCreated notes name as made at this start when path is not there
// yet: the Raft store about to be opened creates it.
func (n *Node) noteCreated(path, name string) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		n.created = append(n.created, name)
	}
}

func (n *Node) notLeader() error {
	addr, id := n.raft.LeaderWithID()
	return &NotLeaderError{LeaderID: string(id), LeaderAddress: string(addr)}
}

// Apply replicates cmd and returns what the FSM's Apply returned on this
// node. An error value returned by the FSM comes back as the error. Apply
// fails with a *NotLeaderError on followers. ctx bounds the wait; when it
// expires the command may still be committed later.
//
// While a backup is being restored (RestoreBackupAt), Apply waits for
// the restore to end before it hands raft the command, which then
// applies to the restored state at an index past the restore's; when ctx
// ends first, the command was not applied and the error says so and
// wraps ctx's error.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	select {
	case <-n.done:
		return nil, ErrClosed
	default:
	}
	n.applying.RLock()
	for n.restoring != nil {
		restored := n.restoring
		n.applying.RUnlock()
		if err := n.awaitRestore(ctx, restored); err != nil {
			return nil, err
		}
		n.applying.RLock()
	}
	if err := ctx.Err(); err != nil {
		n.applying.RUnlock()
		return nil, fmt.Errorf("cluster: apply: %w", err)
	}
	// A leader loop's context ends a moment after its term's
	// (RunLeaderLoop): the term's own says whether it still runs.
	if t, ok := ctx.Value(termKey{}).(*term); ok && t.ctx.Err() != nil {
		n.applying.RUnlock()
		return nil, fmt.Errorf("cluster: apply: the term %d has ended: %w", t.number, context.Canceled)
	}
	if n.raft.State() != raft.Leader {
		n.applying.RUnlock()
		return nil, n.notLeader()
	}
	if err := n.checkProtocol(cmd); err != nil {
		n.applying.RUnlock()
		return nil, err
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			n.applying.RUnlock()
			return nil, fmt.Errorf("cluster: apply: %w", context.DeadlineExceeded)
		}
	}
	f := n.raft.Apply(cmd, timeout)
	n.applying.RUnlock()
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster: apply: %w (the command may still be committed)", ctx.Err())
	case <-n.done:
		// Raft drops a committed command still queued for the FSM when
		// it stops (await).
		return nil, fmt.Errorf("cluster: apply: %w (the command may still be committed)", ErrClosed)
	case err := <-errc:
		if err != nil {
			return nil, n.applyError(err)
		}
	}
	resp := f.Response()
	if err, ok := resp.(error); ok {
		return nil, fmt.Errorf("cluster: apply: %w", err)
	}
	return resp, nil
}

// awaitRestore waits until restored is closed (a restore of a backup
// ended: RestoreBackupAt), ctx is done or the node closes, for Apply,
// which has not handed raft its command.
func (n *Node) awaitRestore(ctx context.Context, restored <-chan struct{}) error {
	if n.applyWaits != nil {
		n.applyWaits()
	}
	select {
	case <-restored:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: apply: a backup was being restored and the restore did not end within the command's wait; the command was not applied: %w", ctx.Err())
	case <-n.done:
		return ErrClosed
	}
}

// applyError is Apply's error for raft's err. When this server's writes
// to its data directory fail, raft's error is its own log append's (a
// leader steps down at once): the command was not committed, which the
// error says with what fails, and it wraps ErrDataDir.
func (n *Node) applyError(err error) error {
	if derr := n.disk.err(diskLog); derr != nil && !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrRaftShutdown) {
		return fmt.Errorf("cluster: apply: the command was not committed: %w", derr)
	}
	return n.mapError("apply", err)
}

// DataDirError says why this server cannot write to its data directory
// (a *DataDirError: the disk is full, read-only or failing), or is nil
// while it can.
func (n *Node) DataDirError() error {
	if err := n.disk.err(); err != nil {
		return err
	}
	return nil
}

// AppendsFailing reports whether an outage of the data directory lasts in
// which this server's log appends failed (DataDirError says more). A lone
// server then leads and steps down again every heartbeat timeout, at its
// first append or its first large one: the owner's lines logged once a
// term may be DEBUG meanwhile, as this package's are.
func (n *Node) AppendsFailing() bool { return n.disk.appendsFailed() }

func (n *Node) mapError(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return ErrLeadershipLost
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return fmt.Errorf("cluster: %s: %w", op, err)
}

// timeout turns ctx's deadline into a raft timeout (0 means none).
func timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 0
}

// await waits for a raft future until it is answered, ctx is done or the
// node closes. Raft answers a change or a barrier it has taken into its
// leader loop only when it commits (a barrier: once the FSM applied it) or
// leadership is lost, and drops those still queued for the FSM when it
// stops: a change taken just as the leader stepped down has been seen
// waiting for 19 minutes (the reconciler's demotion), a new leader's
// barrier for 9 (catchUp), each holding Close until the test binary timed
// out, so no caller waits on one without a bound.
func (n *Node) await(ctx context.Context, op string, f raft.Future) error {
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		if err != nil {
			return n.mapError(op, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: %s: %w (the change may still be committed)", op, ctx.Err())
	case <-n.done:
		return ErrClosed
	}
}

// AddVoter adds (or promotes) a voting server; leader only. It writes an
// empty entry after the change (countNewVoter), without which the change
// can stay uncommitted for good.
func (n *Node) AddVoter(ctx context.Context, id, address string) error {
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(address), 0, timeout(ctx))
	n.countNewVoter(ctx)
	return n.await(ctx, "add voter", f)
}

// countNewVoter appends an empty entry (a barrier) right after a change that
// makes a server a voter, so that the leader hears the new voter
// acknowledge an entry it counts. Raft (v1.7.3) sends the change to the
// followers before it counts the new voter towards the quorum: an
// acknowledgement the new voter gives in between is dropped, and it counts
// from its next acknowledged entry on. When the change needs the new voter
// to commit (a spare promoted in place of a dead voter of three needs three
// of four, itself among them) and its acknowledgement came first, the
// change waits for the next entry: on a cluster with nothing to write,
// forever, and every later change of the configuration waits behind it
// (the leader's reconcile loop failed to demote the dead voter every 10 s
// for a minute; TestPromotionNeedsNoLaterWrite). Raft takes changes in
// order: the barrier is taken after the change, so the new voter counts by
// then. Nothing waits for it: it fails harmlessly when the change did.
func (n *Node) countNewVoter(ctx context.Context) {
	_ = n.raft.Barrier(timeout(ctx))
}

// AddNonvoter adds a server that replicates the log without voting; leader
// only.
func (n *Node) AddNonvoter(ctx context.Context, id, address string) error {
	return n.await(ctx, "add nonvoter", n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(address), 0, timeout(ctx)))
}

// RemoveServer removes a server from the configuration; leader only.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	return n.await(ctx, "remove server", n.raft.RemoveServer(raft.ServerID(id), 0, timeout(ctx)))
}

// Snapshot asks raft to take a snapshot now and compact the log.
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return n.mapError("snapshot", err)
	}
	return nil
}

// Status is a point-in-time view of the node for the API and operators.
type Status struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// State is "Leader", "Follower", "Candidate" or "Shutdown", or
	// StateSuperseded once the server's cluster was recovered as another.
	State         string   `json:"state"`
	LeaderID      string   `json:"leader_id"`
	LeaderAddress string   `json:"leader_address"`
	Servers       []Server `json:"servers"`
	Term          uint64   `json:"term"`
	LastIndex     uint64   `json:"last_index"`
	CommitIndex   uint64   `json:"commit_index"`
	AppliedIndex  uint64   `json:"applied_index"`
	// LastContact is when a follower last heard from the leader; zero on
	// the leader and before any contact.
	LastContact time.Time `json:"last_contact"`
	// ClusterID names the cluster this server's Raft state belongs to;
	// empty until it has one (identity.go).
	ClusterID string `json:"cluster_id,omitempty"`
	// Halted says why the state machine stopped applying the log (its
	// build is older than the cluster's log; protocol.go); empty while it
	// applies.
	Halted string `json:"halted,omitempty"`
	// DataDirError says why this server cannot write to its data directory
	// (disk.go); empty while it can.
	DataDirError string `json:"data_dir_error,omitempty"`
	// Superseded says that this server's cluster was recovered from a lost
	// quorum as another, and what to do (recovered.go); empty otherwise.
	Superseded string `json:"superseded,omitempty"`
	// Beside says that a server this one is configured to join belongs to
	// another cluster, which runs its own leader beside this one's, and
	// what to do (join.go's besideOther, looked at about once a minute);
	// empty otherwise.
	BesideOther string `json:"beside_other,omitempty"`
}

// Status returns the node's state, leader, configuration and indexes.
func (n *Node) Status() (Status, error) {
	addr, id := n.raft.LeaderWithID()
	st := Status{
		ID:            n.cfg.NodeID,
		Address:       string(n.trans.LocalAddr()),
		State:         n.raft.State().String(),
		LeaderID:      string(id),
		LeaderAddress: string(addr),
		Term:          n.raft.CurrentTerm(),
		LastIndex:     n.raft.LastIndex(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.raft.AppliedIndex(),
		ClusterID:     n.ClusterID(),
	}
	if err := n.halted(); err != nil {
		st.Halted = err.Error()
	}
	if err := n.DataDirError(); err != nil {
		st.DataDirError = err.Error()
	}
	if err := n.Superseded(); err != nil {
		st.State, st.Superseded = StateSuperseded, err.Error()
	}
	if err := n.beside.Load(); err != nil && *err != nil {
		st.BesideOther = (*err).Error()
	}
	if st.State != raft.Leader.String() {
		st.LastContact = n.raft.LastContact()
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return st, n.mapError("status", err)
	}
	for _, s := range f.Configuration().Servers {
		st.Servers = append(st.Servers, Server{
			ID:      string(s.ID),
			Address: string(s.Address),
			Voter:   s.Suffrage == raft.Voter,
			Leader:  s.ID == id,
		})
	}
	return st, nil
}

// Close leaves leadership, stops raft and closes what New opened. A leader
// first hands leadership to another voter (handOver), so that the cluster
// has a leader again without waiting for a heartbeat timeout and an
// election. It is safe to call more than once.
func (n *Node) Close() error {
	var err error
	n.close.Do(func() {
		health := n.Health()
		// The join and reconcile loops stop first: no configuration change
		// of this node's starts during the hand-over.
		n.stop()
		if n.raft != nil && n.mux != nil {
			// The peers then do not log this server's absence as an error.
			n.tellLeaving()
		}
		if n.raft != nil {
			n.handOver(health)
		}
		close(n.done)
		if n.raft != nil {
			// Raft waits for every replication stream to stop. With raft's
			// pipeline, one wedged for good after a hand-over (see open:
			// the TCP transport no longer pipelines); should a stream
			// still hang, stop waiting after shutdownWait and close the
			// rest.
			sf := n.shutdownRaft(n.raft)
			errc := make(chan error, 1)
			go func() { errc <- sf.Error() }()
			select {
			case e := <-errc:
				if e != nil {
					err = fmt.Errorf("cluster: shutdown: %w", e)
				}
			case <-time.After(shutdownWait):
				n.logger.Error("raft did not stop in time; closing the stores anyway", "waited", shutdownWait)
				err = fmt.Errorf("cluster: shutdown: raft did not stop within %s", shutdownWait)
				// Raft closes its transport only once stopped: close it
				// here, so that its handlers let go of their connections.
				if c, ok := n.trans.(io.Closer); ok {
					_ = c.Close()
				}
			}
		}
		n.wg.Wait()
		if n.mux != nil {
			// Shutdown closed the transport and so the mux (closing it
			// again is a no-op); a heartbeat being answered may still
			// write to the stable store.
			n.mux.close()
			n.mux.raftWait()
		}
		if e := n.closeResources(); e != nil && err == nil {
			err = e
		}
		if n.mux != nil {
			n.mux.wait()
		}
		n.logger.Info("raft stopped")
	})
	return err
}

func (n *Node) closeResources() error {
	var errs []error
	for _, c := range n.closers {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.closers = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: close: %w", err)
	}
	return nil
}

// handOver passes leadership to another voter before this node stops:
// raft tells a voter that answers now and holds every entry to stand for
// election at once, so the cluster does not wait for the followers'
// heartbeat timeout. Voters sound at the leader's last health check
// (ServerHealth.Sound: they answered and can write to their data_dir) are
// asked first, then those that answered it: a voter whose data_dir fails
// may lose its first append and step down, or fail to record its new
// term, costing the election the hand-over saves (one whose appends fail
// lacks the entries it rejected, so it is passed over anyway); at most two are tried, each bounded by raft to
// ElectionTimeout, and the whole by handOverBound (at most 3 s), so a
// hand-over that cannot happen (no other voter, no quorum, the chosen one
// gone) delays the stop by little and blocks nothing: the others then
// elect a leader as after a crash. Nothing is lost either way: entries the leader committed
// are on a quorum, and one it had not committed is decided by the next
// leader as after any leader loss.
func (n *Node) handOver(health []ServerHealth) {
	if n.raft.State() != raft.Leader {
		return
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	// Sound voters first, then those that answer, then the silent.
	rank := map[string]int{}
	for _, h := range health {
		switch {
		case h.Sound():
			rank[h.ID] = 2
		case h.Healthy:
			rank[h.ID] = 1
		}
	}
	var targets []raft.Server
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.NodeID {
			targets = append(targets, s)
		}
	}
	if len(targets) == 0 {
		n.logger.Debug("no other voter to hand leadership to")
		return
	}
	slices.SortStableFunc(targets, func(a, b raft.Server) int {
		if ra, rb := rank[string(a.ID)], rank[string(b.ID)]; ra != rb {
			return rb - ra
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	limit := n.handOverBound()
	deadline := time.Now().Add(limit)
	start := time.Now()
	// Raft also answers a transfer with success when this node leaves
	// leadership for another reason (no quorum): only a hand-over makes the
	// target stand for election in a later term.
	term := n.raft.CurrentTerm()
	var tried []string
	attempts := 0
	for _, s := range targets {
		if attempts == 2 || time.Now().After(deadline) {
			break
		}
		// Only a voter that answers now and has every entry: raft would
		// otherwise spend the transfer replicating to a lagging target,
		// and a target that is gone never takes over.
		pctx, cancel := context.WithTimeout(context.Background(), min(time.Until(deadline), 500*time.Millisecond))
		info, err := n.probe1(pctx, s)
		cancel()
		switch {
		case err != nil:
			tried = append(tried, fmt.Sprintf("%s: does not answer: %v", s.ID, err))
			continue
		case info.ID != string(s.ID):
			tried = append(tried, fmt.Sprintf("%s: server %s answers at %s", s.ID, info.ID, s.Address))
			continue
		case info.LastIndex < n.raft.LastIndex():
			tried = append(tried, fmt.Sprintf("%s: has entries up to %d of %d", s.ID, info.LastIndex, n.raft.LastIndex()))
			continue
		}
		attempts++
		n.logger.Info("handing leadership over before stopping", "to", string(s.ID), logKeyAddress, string(s.Address))
		fut := n.raft.LeadershipTransferToServer(s.ID, s.Address)
		errc := make(chan error, 1)
		go func() { errc <- fut.Error() }()
		bound := time.NewTimer(time.Until(deadline))
		select {
		case err = <-errc:
			bound.Stop()
		case <-bound.C:
			tried = append(tried, fmt.Sprintf("%s: no answer within %s", s.ID, limit))
			n.logger.Warn("stopping without handing leadership over: the other servers elect a leader once their heartbeat timeout passes",
				"tried", strings.Join(tried, "; "), "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if err == nil {
			// Raft may answer before this server has seen the new term:
			// it steps down when its replication hears of it, and takes
			// the term from the new leader's first message.
			n.waitTerm(term, min(time.Until(deadline), n.cfg.ElectionTimeout))
		}
		if err == nil && n.raft.CurrentTerm() > term {
			n.logger.Info("handed leadership over", "to", string(s.ID), "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if err == nil {
			err = errors.New("this server stepped down without a new leader (it no longer reached a quorum)")
		}
		tried = append(tried, fmt.Sprintf("%s: %v", s.ID, err))
		if n.raft.State() != raft.Leader {
			break
		}
	}
	n.logger.Warn("stopping without handing leadership over: the other servers elect a leader once their heartbeat timeout passes (other voters down, or no quorum)",
		"tried", strings.Join(tried, "; "), "took", time.Since(start).Round(time.Millisecond))
}

// waitTerm waits up to d for raft's term to pass term.
func (n *Node) waitTerm(term uint64, d time.Duration) {
	deadline := time.Now().Add(d)
	for n.raft.CurrentTerm() <= term && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// handOverBound bounds handOver: raft ends each attempt after
// ElectionTimeout; two attempts and a margin, never more than
// maxHandOver.
func (n *Node) handOverBound() time.Duration {
	return min(2*n.cfg.ElectionTimeout+500*time.Millisecond, maxHandOver)
}

// shutdownWait bounds Close's wait for raft to stop.
const shutdownWait = 10 * time.Second

// CloseWait bounds Close: telling the peers this server leaves, the
// hand-over, then raft's stop (the stores close at once after it).
const CloseWait = leaveTellWait + maxHandOver + shutdownWait

// maxHandOver is the longest a hand-over may hold up a leader's stop.
const maxHandOver = 3 * time.Second
