package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// A cluster ID names one Raft cluster, so that a server holding the state
// of one cluster is never added to another (given the other's retry_join):
// raft would mix the two logs, keeping entries of one cluster that match
// the other's by index and term, and the server's state would be neither's.
//
// The first leader of a cluster makes the ID (a random UUID) once every
// server of the configuration has answered it and none has one; a leader
// without an ID that finds one among the servers' answers takes it. The
// leader hands it to every server in its health checks and to each server
// that joins; each keeps it in its stable store (raft.db), so it lives and
// dies with the server's Raft state. A server that has an ID joins only a
// cluster with the same ID, and a leader refuses a joiner with another
// one; a server or cluster without one (a data dir from before IDs) is not
// checked, and takes the cluster's ID when it has one.

// stableKeyClusterID is the stable store key of the cluster ID.
var stableKeyClusterID = []byte("foreshape_cluster_id")

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

// settleClusterID runs on the leader after a health round: a leader
// without an ID takes one its servers have (the most common), or, when
// every server answered and none has one, makes one.
func (n *Node) settleClusterID(list []ServerHealth) {
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
		err = n.setClusterID(best, "from the servers' answers")
	case all:
		var id string
		if id, err = newClusterID(); err == nil {
			err = n.setClusterID(id, "made by the cluster's first leader")
		}
	}
	if err != nil {
		n.logger.Warn("cannot set the cluster id", logKeyError, err)
	}
}

// idState is the node's cluster ID cache (ClusterID) and what it logged.
type idState struct {
	idMu           sync.Mutex
	mismatchLogged sync.Map
}
