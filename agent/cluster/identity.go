package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// A cluster ID names one Raft cluster, so that a server holding the state
// of one cluster is never added to another (given the other's retry_join):
// raft would mix the two logs, keeping entries of one cluster that match
// the other's by index and term, and the server's state would be neither's.
//
// The ID is decided by a Raft log entry (a command whose Extensions carry
// it, which the state machine never sees): every server that applies it
// keeps the ID in its stable store (raft.db), so it lives and dies with the
// server's Raft state, and a leader elected later has it once its barrier
// has applied the entries of earlier terms. A cluster that this release
// bootstrapped (its servers marked it new when they bootstrapped) has its
// ID from its first leader's first entry, committed before that leader
// publishes its term; a cluster from a release before IDs gets one from a
// leader that finds one among its servers' answers, or, once every server
// has answered without one, makes one. The leader also hands the ID to
// servers in its health checks and join answers (a server that received a
// snapshot never saw the entry).
//
// Joins are checked on the leader (handleJoin): a joiner with another ID
// is refused; a joiner with an ID while the cluster has none yet is
// refused until it has one (only a cluster from before IDs can be in that
// state for long, and then none of its servers has one either); a joiner
// with Raft state but no ID (from before IDs) whose configuration names
// none of this cluster's servers is refused. A server that has an ID also
// does not ask servers of another ID to add it.

// stableKeyClusterID is the stable store key of the cluster ID;
// stableKeyNewCluster marks a server that bootstrapped a new cluster, whose
// first leader makes the ID at once.
var (
	stableKeyClusterID  = []byte("foreshape_cluster_id")
	stableKeyNewCluster = []byte("foreshape_new_cluster")
)

// idExtension prefixes the Extensions of the log entry that decides the
// cluster ID.
const idExtension = "foreshape.cluster_id="

// ClusterID returns the ID of the cluster this server's Raft state belongs
// to, or "" while it has none (no state yet, or state from before IDs).
func (n *Node) ClusterID() string {
	if p := n.clusterID.Load(); p != nil {
		return *p
	}
	b, err := n.stable.Get(stableKeyClusterID)
	if err != nil || len(b) == 0 {
		// Not found: none yet (raft-boltdb and the in-memory store both
		// answer an error for a missing key).
		return ""
	}
	id := string(b)
	n.clusterID.CompareAndSwap(nil, &id)
	return id
}

// setClusterID keeps id as this server's cluster ID.
func (n *Node) setClusterID(id, how string) error {
	n.idMu.Lock()
	defer n.idMu.Unlock()
	if cur := n.ClusterID(); cur != "" {
		if cur == id {
			return nil
		}
		return &ClusterMismatchError{Local: cur, Remote: id}
	}
	if err := n.stable.Set(stableKeyClusterID, []byte(id)); err != nil {
		return fmt.Errorf("cluster: keep the cluster id: %w", err)
	}
	n.clusterID.Store(&id)
	n.logger.Info("cluster id set", "cluster_id", id, "how", how)
	return nil
}

// newClusterID returns a random UUID.
func newClusterID() (string, error) {
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("cluster: cluster id: %w", err)
	}
	r[6] = r[6]&0x0f | 0x40
	r[8] = r[8]&0x3f | 0x80
	h := hex.EncodeToString(r[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// ErrOtherCluster is wrapped by ClusterMismatchError.
var ErrOtherCluster = errors.New("cluster: the server's Raft state belongs to another cluster")

// ClusterMismatchError says that a server's Raft state belongs to another
// cluster than the one it would join. errors.Is(err, ErrOtherCluster)
// holds.
type ClusterMismatchError struct {
	// Local is the cluster ID of the server's own state; Remote the other
	// cluster's.
	Local, Remote string
	// Server names the joining server, Address where the other cluster
	// answered (either may be empty).
	Server, Address string
}

func (e *ClusterMismatchError) Error() string {
	who := "this server"
	if e.Server != "" {
		who = "server " + e.Server
	}
	at := ""
	if e.Address != "" {
		at = " at " + e.Address
	}
	return fmt.Sprintf("%s: %s holds the Raft state of cluster %s, but the servers%s belong to cluster %s; joining would mix the two clusters' states. "+
		"If it should join cluster %s, stop it, move its data_dir aside and start it again: it joins as a new server and receives the cluster's state; "+
		"if it belongs to cluster %s, correct its server.retry_join",
		ErrOtherCluster, who, e.Local, at, e.Remote, e.Remote, e.Local)
}

// Is makes errors.Is(err, ErrOtherCluster) true.
func (e *ClusterMismatchError) Is(target error) bool { return target == ErrOtherCluster }

// infoRequest is what the leader sends with its health checks (OpInfo):
// who it is and the cluster's ID, for servers that do not have it yet.
type infoRequest struct {
	LeaderID  string `json:"leader_id"`
	ClusterID string `json:"cluster_id"`
	// Recoveries are the cluster's (recovered.go), for servers that
	// joined after one.
	Recoveries []Recovery `json:"recoveries,omitempty"`
}

// learnClusterID takes the cluster ID the leader sent with a health check,
// when it comes from this server's leader and this server has none. A
// server whose ID differs says so once per ID.
func (n *Node) learnClusterID(body json.RawMessage) {
	if len(body) == 0 {
		return
	}
	var req infoRequest
	if json.Unmarshal(body, &req) != nil || req.ClusterID == "" {
		return
	}
	if _, leader := n.raft.LeaderWithID(); string(leader) != req.LeaderID {
		return
	}
	err := n.setClusterID(req.ClusterID, "from the leader "+req.LeaderID)
	if err == nil && len(req.Recoveries) > 0 {
		if err := n.addRecoveries(req.Recoveries, "from the leader "+req.LeaderID); err != nil {
			n.logger.Warn("cannot keep the cluster's recoveries", logKeyError, err)
		}
	}
	var mm *ClusterMismatchError
	if errors.As(err, &mm) {
		if _, seen := n.mismatchLogged.LoadOrStore(req.ClusterID, true); !seen {
			n.logger.Error("this server's Raft state names another cluster than its leader's: two clusters' states were mixed before cluster IDs were checked",
				"cluster_id", mm.Local, "leader_cluster_id", req.ClusterID, "leader", req.LeaderID)
		}
	} else if err != nil {
		n.logger.Warn("cannot keep the cluster id", logKeyError, err)
	}
}

// raftHello is the hello of a Raft connection this server dials to
// address (transport.go): its cluster ID, its server ID, and the server its
// configuration has there.
func (n *Node) raftHello(address string) raftHello {
	h := raftHello{ClusterID: n.ClusterID(), From: n.cfg.NodeID}
	r := n.live.Load()
	if r == nil {
		return h
	}
	// GetConfiguration reads raft's latest configuration without waiting
	// for its main loop, which may be the one dialing. Raft refuses a
	// configuration with two servers at one address.
	f := r.GetConfiguration()
	if f.Error() != nil {
		return h
	}
	for _, s := range f.Configuration().Servers {
		if string(s.Address) == address {
			h.To = string(s.ID)
			break
		}
	}
	return h
}

// admitRaft refuses a Raft connection whose hello names another server
// than this one, or another cluster than this server's (when both have an
// ID): its leader would replace this server's log with its own.
func (n *Node) admitRaft(h raftHello) error {
	if e := n.superseded.Load(); e != nil {
		return n.supersededHello(h, e)
	}
	err := helloMismatch(h, n.cfg.NodeID, n.ClusterID())
	if err != nil && !n.cfg.olderRecovered && (h.To == "" || h.To == n.cfg.NodeID) {
		// Its recoveries are this cluster's lineage: r.New is this
		// cluster, or one it was recovered from in turn.
		if r, ok := n.recoveredFrom(h.ClusterID); ok {
			return recoveredHello(h, n.cfg.NodeID, r)
		}
	}
	return err
}

// checkOlder asks the server at address, which closed a Raft hello
// unanswered, who it is (OpInfo, which servers of earlier releases
// answer), and refuses it as admitRaft would refuse h there: a connection
// closed before the answer is what a server of a release before the hello
// does, but also a server stopping, a port between two owners, or a proxy
// whose backend is down, and a connection without the hello is checked by
// no one.
func (n *Node) checkOlder(address string, h raftHello, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(n.closing, timeout)
	defer cancel()
	var info ServerInfo
	if err := n.client.Call(ctx, address, OpInfo, nil, &info); err != nil {
		return fmt.Errorf("no foreshape server answered there: %w", err)
	}
	if err := helloMismatch(h, info.ID, info.ClusterID); err != nil {
		return &olderMismatch{err}
	}
	return nil
}

// helloMismatch refuses h at the server id of cluster clusterID ("" while
// it has none): h names another server there, or another cluster. The
// reason is read in both servers' logs, so it names both sides.
func helloMismatch(h raftHello, id, clusterID string) error {
	if h.To != "" && h.To != id {
		return fmt.Errorf("server %s answers at this address, not server %s, which server %s's configuration has there: "+
			"%s moved to another address (it rejoins from there) or is gone (if for good, remove it from its cluster: `foreshape operator raft remove-peer -id %s`), "+
			"or the address now belongs to a server of another cluster", id, h.To, h.From, h.To, h.To)
	}
	if clusterID != "" && h.ClusterID != "" && clusterID != h.ClusterID {
		return fmt.Errorf("server %s is of cluster %s, server %s of cluster %s: one cluster's configuration names an address that is now the other's, "+
			"or the two share retry_join addresses; each keeps its own state", h.From, h.ClusterID, id, clusterID)
	}
	return nil
}

// settleClusterID runs on the leader after a health round: a leader
// without an ID (a cluster from before IDs) takes one its servers have
// (the most common), or, when every server answered and none has one,
// makes one; either way through the log.
func (n *Node) settleClusterID(ctx context.Context, list []ServerHealth) {
	if n.ClusterID() != "" {
		return
	}
	count := map[string]int{}
	all := true
	for _, h := range list {
		if h.Leader {
			continue
		}
		if !h.Healthy || h.Info == nil {
			all = false
			continue
		}
		if h.Info.ClusterID != "" {
			count[h.Info.ClusterID]++
		}
	}
	best := ""
	for id, c := range count {
		if best == "" || c > count[best] || c == count[best] && id < best {
			best = id
		}
	}
	var err error
	switch {
	case best != "":
		err = n.commitClusterID(ctx, best, "taken from the servers' answers")
	case all:
		var id string
		if id, err = n.ownClusterID(); err == nil {
			err = n.commitClusterID(ctx, id, "made once every server answered without one")
		}
	}
	if err != nil {
		n.logger.Warn("cannot set the cluster id", logKeyError, err)
	}
}

// ownClusterID returns the ID this server proposes when it makes one, made
// once: an attempt whose commit timed out may still be committed later, so
// a retry proposes the same ID and the two entries agree.
func (n *Node) ownClusterID() (string, error) {
	n.idMu.Lock()
	defer n.idMu.Unlock()
	if n.madeID == "" {
		id, err := newClusterID()
		if err != nil {
			return "", err
		}
		n.madeID = id
	}
	return n.madeID, nil
}

// ensureClusterID runs on a new leader once its barrier is done: the first
// leader of a cluster this release bootstrapped makes the cluster's ID
// before it publishes its term. The ID is made once per server, so that
// an attempt that timed out and is retried commits the same one.
func (n *Node) ensureClusterID(ctx context.Context) error {
	if n.ClusterID() != "" {
		return nil
	}
	if b, err := n.stable.Get(stableKeyNewCluster); err != nil || len(b) == 0 {
		return nil // from before IDs: settleClusterID decides
	}
	id, err := n.ownClusterID()
	if err != nil {
		return err
	}
	return n.commitClusterID(ctx, id, "made by the new cluster's first leader")
}

// commitClusterID commits the log entry that decides the cluster's ID;
// this server keeps it when it applies the entry (applyClusterID). It
// waits until the entry is applied, leadership is lost or ctx is done; in
// the last case the entry may still be committed.
func (n *Node) commitClusterID(ctx context.Context, id, how string) error {
	n.logger.Info("committing the cluster id", "cluster_id", id, "how", how)
	f := n.raft.ApplyLog(raft.Log{Extensions: []byte(idExtension + id)}, timeout(ctx))
	if err := n.await(ctx, "commit the cluster id", f); err != nil {
		return err
	}
	switch got := n.ClusterID(); got {
	case id:
		return nil
	case "":
		return fmt.Errorf("cluster: commit the cluster id %s: the entry is applied but this server could not keep the id (its log says why)", id)
	default:
		return &ClusterMismatchError{Local: got, Remote: id}
	}
}

// applyClusterID applies a cluster ID entry, on raft's FSM goroutine.
func (n *Node) applyClusterID(id string, index uint64) {
	err := n.setClusterID(id, fmt.Sprintf("from the log (entry %d)", index))
	var mm *ClusterMismatchError
	if errors.As(err, &mm) {
		n.logger.Error("this server's Raft state names another cluster than its log: two clusters' states were mixed before cluster IDs were checked",
			"cluster_id", mm.Local, "log_cluster_id", id, "index", index)
	} else if err != nil {
		n.logger.Warn("cannot keep the cluster id", logKeyError, err)
	}
}

// markNewCluster marks (on) or unmarks this server as one bootstrapping a
// new cluster.
func (n *Node) markNewCluster(on bool) error {
	v := []byte(nil)
	if on {
		v = []byte("1")
	}
	if err := n.stable.Set(stableKeyNewCluster, v); err != nil {
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	return nil
}

// clusterIDFromLog returns the ID a log entry carries, if it is the entry
// that decides it.
func clusterIDFromLog(l *raft.Log) (string, bool) {
	if l.Type != raft.LogCommand || len(l.Data) != 0 || !bytes.HasPrefix(l.Extensions, []byte(idExtension)) {
		return "", false
	}
	return string(l.Extensions[len(idExtension):]), true
}

func isClusterIDLog(l *raft.Log) bool {
	_, ok := clusterIDFromLog(l)
	return ok
}

// idFSM passes every entry but the cluster ID's to the state machine.
type idFSM struct {
	raft.FSM
	n *Node
}

func (f *idFSM) Apply(l *raft.Log) any {
	if id, ok := clusterIDFromLog(l); ok {
		f.n.applyClusterID(id, l.Index)
		return nil
	}
	r := f.FSM.Apply(l)
	f.n.noteHalt()
	return r
}

// Restore restores the state machine, counts it (Restores) and logs a
// halt it meets (protocol.go).
func (f *idFSM) Restore(rc io.ReadCloser) error {
	err := f.FSM.Restore(rc)
	if err == nil {
		f.n.restores.Add(1)
	}
	f.n.noteHalt()
	return err
}

// idBatchingFSM is idFSM for a state machine that applies in batches.
type idBatchingFSM struct {
	idFSM
	batch raft.BatchingFSM
}

func (f *idBatchingFSM) ApplyBatch(logs []*raft.Log) []any {
	defer f.n.noteHalt()
	if !slices.ContainsFunc(logs, isClusterIDLog) {
		return f.batch.ApplyBatch(logs) // nearly always: no ID entry
	}
	out := make([]any, len(logs))
	rest := make([]*raft.Log, 0, len(logs))
	at := make([]int, 0, len(logs))
	for i, l := range logs {
		if id, ok := clusterIDFromLog(l); ok {
			f.n.applyClusterID(id, l.Index)
			continue
		}
		rest = append(rest, l)
		at = append(at, i)
	}
	if len(rest) > 0 {
		for i, r := range f.batch.ApplyBatch(rest) {
			out[at[i]] = r
		}
	}
	return out
}

// wrapFSM returns fsm as raft is given it: cluster ID entries are applied
// by the node.
func (n *Node) wrapFSM(fsm raft.FSM) raft.FSM {
	w := idFSM{FSM: fsm, n: n}
	if b, ok := fsm.(raft.BatchingFSM); ok {
		return &idBatchingFSM{idFSM: w, batch: b}
	}
	return &w
}

// idState is the node's cluster ID cache (ClusterID) and what it logged.
type idState struct {
	idMu           sync.Mutex
	mismatchLogged sync.Map
	// madeID is the ID this server made to propose (ownClusterID), kept
	// for retries.
	madeID string
	// haltLogged is the halt noteHalt last logged (protocol.go).
	haltLogged atomic.Pointer[string]
}
