package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// ServerInfo is what a server says about itself and the cluster it sees
// (the answer of OpInfo, and the request of OpJoin).
type ServerInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	RaftAddress string `json:"raft_address"`
	HTTPAddress string `json:"http_address"`
	Version     string `json:"version"`
	// Voter is what the server asks for: false for server.voter = false.
	Voter bool `json:"voter"`
	// State is the Raft state: Leader, Follower, Candidate, Shutdown; or
	// StateSuperseded once the server's cluster was recovered as another.
	State         string `json:"state"`
	LeaderID      string `json:"leader_id"`
	LeaderAddress string `json:"leader_address"`
	// HasState is true once the server is part of a cluster (it has Raft
	// state); a server with none may take part in a bootstrap.
	HasState     bool   `json:"has_state"`
	AppliedIndex uint64 `json:"applied_index"`
	LastIndex    uint64 `json:"last_index"`
	// StateIndex is the last entry the server's state machine has
	// applied: raft's AppliedIndex counts entries handed to it, which may
	// still wait in its queue.
	StateIndex uint64 `json:"state_index"`
	// ClusterID names the cluster the server's Raft state belongs to;
	// empty while it has none (identity.go).
	ClusterID string `json:"cluster_id,omitempty"`
	// Servers are the IDs of the servers in the Raft configuration the
	// server holds, when it has state: a leader tells a joiner's state from
	// another cluster's by them when the joiner has no ClusterID.
	Servers []string `json:"servers,omitempty"`
	// StateProtocol is the state protocol the server's build speaks; zero
	// (a release from before servers advertised one) reads as 1.
	StateProtocol int `json:"state_protocol,omitempty"`
	// Halted says why the server's state machine stopped applying the log
	// (an entry or snapshot section its build does not know: it is older
	// than the cluster's log); empty while it applies.
	Halted string `json:"halted,omitempty"`
	// DataDirError says why the server cannot write to its data directory
	// (a full, read-only or failing disk; disk.go), as its Status does;
	// empty while it can, and in the answer of a release from before the
	// field, which reads as no failure.
	DataDirError string `json:"data_dir_error,omitempty"`
	// Recoveries are the recoveries from a lost quorum the server's cluster
	// went through (recovered.go): a server of an old cluster among them
	// learns from it that its cluster was recovered as this one.
	Recoveries []Recovery `json:"recoveries,omitempty"`
	// Superseded says that the server's own cluster was recovered as
	// another (recovered.go); empty otherwise.
	Superseded string `json:"superseded,omitempty"`
}

// Info returns what this server says of itself to its peers.
func (n *Node) Info() ServerInfo {
	addr, id := n.raft.LeaderWithID()
	has, _ := raft.HasExistingState(n.logs, n.stable, n.snaps)
	info := ServerInfo{
		ID: n.cfg.NodeID, Name: n.cfg.Name, RaftAddress: string(n.trans.LocalAddr()),
		HTTPAddress: n.HTTPAddr(), Version: n.cfg.Version, Voter: !n.cfg.Nonvoter,
		State: n.raft.State().String(), LeaderID: string(id), LeaderAddress: string(addr),
		HasState: has, AppliedIndex: n.raft.AppliedIndex(), LastIndex: n.raft.LastIndex(),
		StateIndex: n.stateIndex(), ClusterID: n.ClusterID(), StateProtocol: n.cfg.StateProtocol,
	}
	if err := n.halted(); err != nil {
		info.Halted = err.Error()
	}
	if err := n.DataDirError(); err != nil {
		info.DataDirError = err.Error()
	}
	if !n.cfg.olderRecovered {
		info.Recoveries = n.Recoveries()
	}
	if err := n.Superseded(); err != nil {
		info.State, info.Superseded = StateSuperseded, err.Error()
	}
	if f := n.raft.GetConfiguration(); has && f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			info.Servers = append(info.Servers, string(s.ID))
		}
	}
	return info
}

// SetHTTPAddr sets the address of this server's HTTP API that Info
// reports, for owners that bind their listener after New.
func (n *Node) SetHTTPAddr(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.httpAddr = addr
}

// HTTPAddr returns the HTTP API address Info reports.
func (n *Node) HTTPAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.httpAddr != "" {
		return n.httpAddr
	}
	return n.cfg.HTTPAddr
}

// handleInfo answers OpInfo; a health check from this server's leader
// carries the cluster's ID, which a server without one takes.
func (n *Node) handleInfo(_ context.Context, body json.RawMessage) (any, error) {
	n.learnClusterID(body)
	return n.Info(), nil
}

// handleJoin runs on the leader: it adds the server in the request as a
// non-voter (the reconcile loop promotes it when a voter is wanted), or
// updates its address when it rejoins from a new one.
func (n *Node) handleJoin(ctx context.Context, body json.RawMessage) (any, error) {
	var s ServerInfo
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if s.ID == "" || s.RaftAddress == "" {
		return nil, errors.New("join: the request names no server id or address")
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, n.mapError("join", err)
	}
	log := n.logger.With(logKeyNodeID, s.ID, logKeyAddress, s.RaftAddress)
	servers := f.Configuration().Servers
	if err := checkJoinerState(n.ClusterID(), s, servers); err != nil {
		log.Warn("refusing a join: the server's Raft state may be another cluster's", "its_cluster_id", s.ClusterID, "cluster_id", n.ClusterID(), logKeyError, err)
		return nil, fmt.Errorf("join: %w", err)
	}
	if !slices.ContainsFunc(servers, func(cur raft.Server) bool {
		return string(cur.ID) == s.ID && string(cur.Address) == s.RaftAddress
	}) {
		// Raft reaches a member only at the address it joins with: one the
		// leader cannot reach (a wrong advertise_addr) would be a member
		// that never hears from the cluster.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := n.probe1(pctx, raft.Server{ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.RaftAddress)})
		cancel()
		if err == nil && info.ID != s.ID {
			err = fmt.Errorf("server %s answers there", info.ID)
		}
		if err != nil {
			log.Warn("refusing a join: the server cannot be reached at the address it gave", logKeyError, err)
			return nil, fmt.Errorf("join: the leader cannot reach this server at %s, the Raft address it gave (check advertise_addr, bind_addr and raft_port): %w", s.RaftAddress, err)
		}
	}
	for _, cur := range servers {
		switch {
		case string(cur.ID) == s.ID && string(cur.Address) == s.RaftAddress:
			return n.Info(), nil // already a member
		case string(cur.ID) == s.ID:
			log.Info("server rejoins from a new address", "old_address", string(cur.Address))
			var err error
			if cur.Suffrage == raft.Voter {
				err = n.AddVoter(ctx, s.ID, s.RaftAddress)
			} else {
				err = n.AddNonvoter(ctx, s.ID, s.RaftAddress)
			}
			if err != nil {
				return nil, err
			}
			return n.Info(), nil
		case string(cur.Address) == s.RaftAddress:
			// Another server once had this address: it is gone, since the
			// address now answers with a new identity.
			log.Info("removing the server that had the joining server's address", "old_node_id", string(cur.ID))
			if err := n.RemoveServer(ctx, string(cur.ID)); err != nil {
				return nil, err
			}
		}
	}
	if err := n.AddNonvoter(ctx, s.ID, s.RaftAddress); err != nil {
		return nil, err
	}
	log.Info("server joined as a non-voter", "name", s.Name, "wants_vote", s.Voter)
	return n.Info(), nil
}

// checkJoinerState refuses a joiner whose Raft state belongs, or may
// belong, to another cluster than this one (whose ID is own, "" while it
// has none, and whose configuration is servers): one with another ID; one
// with an ID while this cluster has none to compare; one with state but no
// ID (from before IDs) whose configuration names none of these servers.
func checkJoinerState(own string, s ServerInfo, servers []raft.Server) error {
	switch {
	case own != "" && s.ClusterID != "" && s.ClusterID != own:
		return &ClusterMismatchError{Local: s.ClusterID, Remote: own, Server: s.ID}
	case own == "" && s.ClusterID != "":
		return fmt.Errorf("this cluster has no cluster ID yet (its first leader is committing one, or its state is from a release before IDs and its leader has not heard from every server), "+
			"and server %s holds the Raft state of cluster %s: it is not added while the two cannot be compared. "+
			"If it belongs to this cluster, it is added once the leader has the cluster's ID; if it should join this cluster as a new server, stop it, move its data_dir aside and start it again; "+
			"if it belongs to cluster %s, correct its server.retry_join", s.ID, s.ClusterID, s.ClusterID)
	case s.ClusterID != "" || len(s.Servers) == 0:
		return nil
	}
	var ours, theirs []string
	for _, cur := range servers {
		if string(cur.ID) == s.ID {
			return nil // a member rejoining
		}
		ours = append(ours, string(cur.ID))
	}
	for _, id := range s.Servers {
		if id == s.ID {
			continue
		}
		if slices.Contains(ours, id) {
			return nil
		}
		theirs = append(theirs, id)
	}
	named := "no server but itself"
	if len(theirs) > 0 {
		named = "servers " + strings.Join(theirs, ", ") + ", none of which is in this cluster"
	}
	return fmt.Errorf("%w: server %s holds Raft state (without a cluster ID: from a release before IDs) whose configuration names %s (this cluster: %s); joining would mix the two clusters' states. "+
		"If it should join this cluster, stop it, move its data_dir aside and start it again: it joins as a new server and receives the cluster's state; "+
		"if it belongs to the other cluster, correct its server.retry_join",
		ErrOtherCluster, s.ID, named, strings.Join(ours, ", "))
}

// inCluster reports whether this node knows a leader and is in the
// configuration at its current address: then there is nothing to join.
func (n *Node) inCluster() bool {
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return false
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	self := n.trans.LocalAddr()
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.NodeID {
			return s.Address == self
		}
	}
	return false
}

// joinLoop joins the cluster, or bootstraps one with BootstrapExpect
// servers, and keeps checking that this node stays a member: a server
// removed while it was away, or back at a new address, joins again.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	failures := 0
	said := "" // the reason last logged
	var beside besideLog
	for looks := 0; ; looks++ {
		if n.inCluster() {
			n.joinErr.Store(nil)
		} else {
			if err := n.tryJoin(n.closing); err != nil {
				if n.closing.Err() != nil {
					return
				}
				n.joinErr.Store(&err)
				if n.Superseded() != nil {
					// Superseded for good (recovered.go), said once at
					// ERROR: it asks no server again.
					return
				}
				failures++
				// Say it at once, again when the reason changes (a server
				// found, a lookup that starts failing), and every minute
				// or so.
				reason := joinReason(err)
				if failures == 1 || reason != said || failures%max(1, int(time.Minute/n.cfg.RetryInterval)) == 0 {
					said = reason
					msg := "not part of a cluster yet; retrying"
					if has, _ := raft.HasExistingState(n.logs, n.stable, n.snaps); has {
						msg = "no leader known; asking the other servers again"
					}
					n.logger.Info(msg, "reason", err, "retry_interval", n.cfg.RetryInterval)
				}
			} else {
				n.joinErr.Store(nil)
				failures, said = 0, ""
			}
		}
		// A server that knows a leader (its own, maybe) looks at the
		// servers it would join about once a minute, at once the first
		// time, for another cluster running beside its own.
		if addr, _ := n.raft.LeaderWithID(); addr != "" && (looks%besideEvery == 0 || beside.looked.IsZero()) {
			beside.look(n, n.besideOther(n.closing))
		}
		select {
		case <-n.done:
			return
		case <-time.After(n.cfg.RetryInterval):
		}
	}
}

// besideEvery is how many RetryIntervals apart a member looks for another
// cluster at its join addresses: a minute at the default 5 s.
const besideEvery = 12

// besideOther returns a *ClusterMismatchError when a server this member
// would join (server.retry_join, Discover) belongs to another cluster that
// knows a leader: this server's cluster runs beside it, though its
// configuration means it to be one (a single server's data_dir started
// again to join another cluster leads its own, as its state lets it). Not
// another cluster: one this cluster was recovered from (its lost servers
// back with their data_dir), or one recovered from this cluster (its
// servers, which tell this one so when it asks to join: recovered.go);
// nor a server without a cluster ID (a release before IDs, a new server).
func (n *Node) besideOther(ctx context.Context) error {
	self := n.ClusterID()
	if self == "" || len(n.cfg.RetryJoin) == 0 && n.cfg.Discover == nil {
		return nil
	}
	old := map[string]bool{}
	for _, r := range n.Recoveries() {
		old[r.Old] = true
	}
	addrs, _ := n.joinAddresses(ctx)
	infos, _ := n.probe(ctx, addrs)
	for _, info := range infos {
		if info.ClusterID == "" || info.ClusterID == self || info.LeaderAddress == "" || old[info.ClusterID] ||
			slices.ContainsFunc(info.Recoveries, func(r Recovery) bool { return r.Old == self }) {
			continue
		}
		return &ClusterMismatchError{Local: self, Remote: info.ClusterID, Address: info.RaftAddress}
	}
	return nil
}

// besideLog says at ERROR that this server's cluster runs beside another
// once when it is found, again when what it found changes and every
// failing.RemindEvery while it lasts, and at INFO once it is over.
type besideLog struct {
	looked time.Time
	said   string
	saidAt time.Time
}

func (b *besideLog) look(n *Node, err error) {
	now := time.Now()
	b.looked = now
	n.beside.Store(&err)
	if err == nil {
		if b.said != "" {
			n.logger.Info("this server's cluster no longer runs beside another at its join addresses")
		}
		b.said = ""
		return
	}
	if err.Error() == b.said && now.Sub(b.saidAt) < besideRemind {
		return
	}
	b.said, b.saidAt = err.Error(), now
	n.logger.Error("this server's cluster runs beside another: the servers it is configured to join (server.retry_join) belong to another cluster, "+
		"which runs its own leader beside this one", logKeyError, err)
}

// besideRemind is how often besideLog says again what lasts.
const besideRemind = 10 * time.Minute

// localAddr matches the local end of a connection in an error ("read tcp
// 10.0.0.1:53122->10.0.0.2:7576: …"): a new ephemeral port each attempt.
var localAddr = regexp.MustCompile(`((?:read|write) (?:tcp|udp)[46]?) \S+->`)

// joinReason is a join error's text without what changes from one attempt
// to the next while the reason stays the same (the local port of each
// connection), for telling whether the reason changed.
func joinReason(err error) string {
	return localAddr.ReplaceAllString(err.Error(), "$1 ")
}

// JoinError returns why the node's last attempt to find a leader among the
// other servers failed (which addresses gave no answer, how many servers
// it found), or nil once it is a member that knows its leader.
func (n *Node) JoinError() error {
	if p := n.joinErr.Load(); p != nil {
		return *p
	}
	return nil
}

// errWaiting says the node found no cluster and cannot bootstrap one yet.
var errWaiting = errors.New("cluster: waiting for servers")

// tryJoin makes one attempt: ask every known server for the cluster; join
// one that has a leader; otherwise bootstrap when BootstrapExpect voting
// servers without state have found each other and this node is among the
// first BootstrapExpect of them by ID.
func (n *Node) tryJoin(ctx context.Context) error {
	if err := n.Superseded(); err != nil {
		return err
	}
	addrs, derr := n.joinAddresses(ctx)
	infos, silent := n.probe(ctx, addrs)
	self := n.Info()
	var joinErrs []error
	for _, info := range infos {
		if self.ClusterID != "" && info.ClusterID != "" && info.ClusterID != self.ClusterID {
			// A server of a cluster this one was recovered as says so
			// (recovered.go).
			for _, r := range info.Recoveries {
				if r.Old == self.ClusterID {
					n.heardRecovered(r.toldBy(info.ClusterID), info.RaftAddress)
				}
			}
			if err := n.Superseded(); err != nil {
				return err
			}
		}
		if info.LeaderAddress == "" {
			continue
		}
		if self.ClusterID != "" && info.ClusterID != "" && info.ClusterID != self.ClusterID {
			joinErrs = append(joinErrs, &ClusterMismatchError{Local: self.ClusterID, Remote: info.ClusterID, Address: info.RaftAddress})
			continue
		}
		var leader ServerInfo
		cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		err := n.client.Call(cctx, info.RaftAddress, OpJoin, self, &leader)
		cancel()
		if err == nil && leader.ClusterID != "" {
			if err := n.setClusterID(leader.ClusterID, "joined through "+info.RaftAddress); err != nil {
				joinErrs = append(joinErrs, err)
				continue
			}
			if err := n.addRecoveries(leader.Recoveries, "joined through "+info.RaftAddress); err != nil {
				n.logger.Warn("cannot keep the cluster's recoveries", logKeyError, err)
			}
		}
		if err == nil {
			// Until the leader's first heartbeat arrives the node asks again;
			// the leader answers at once that it is a member.
			lvl := hclog.Debug
			if !n.joined.Swap(true) {
				lvl = hclog.Info
			}
			n.logger.Log(lvl, "joined the cluster", "through", info.RaftAddress, "leader", leader.ID)
			return nil
		}
		joinErrs = append(joinErrs, err)
	}
	if len(joinErrs) > 0 {
		return fmt.Errorf("join: %w", errors.Join(joinErrs...))
	}
	// Name the addresses that did not answer as foreshape servers: a
	// retry_join address with a wrong port (the HTTP API's, say) or a host
	// that is down is what an operator looks for.
	unanswered := ""
	if len(silent) > 0 {
		unanswered = "; no foreshape server answered at " + strings.Join(silent, ", ")
	}
	if self.HasState || n.cfg.BootstrapExpect < 1 {
		if derr != nil {
			return fmt.Errorf("%w: no leader among %d servers found (%v)%s", errWaiting, len(infos), derr, unanswered)
		}
		return fmt.Errorf("%w: no leader among %d servers found%s", errWaiting, len(infos), unanswered)
	}
	cands := []ServerInfo{}
	if self.Voter {
		cands = append(cands, self)
	}
	for _, info := range infos {
		if info.Voter && !info.HasState {
			cands = append(cands, info)
		}
	}
	want := n.cfg.BootstrapExpect
	if len(cands) < want {
		var found []string
		for _, c := range cands {
			found = append(found, c.ID)
		}
		// A lookup that failed (Consul down, its token refused) is why
		// servers are missing: say it.
		lookup := ""
		if derr != nil {
			lookup = "; the lookup of servers failed: " + derr.Error()
		}
		return fmt.Errorf("%w: %d of bootstrap_expect = %d voting servers found (%s)%s%s", errWaiting, len(cands), want, strings.Join(found, ", "), unanswered, lookup)
	}
	slices.SortFunc(cands, func(a, b ServerInfo) int { return strings.Compare(a.ID, b.ID) })
	all := len(cands)
	cands = cands[:want]
	if !slices.ContainsFunc(cands, func(s ServerInfo) bool { return s.ID == self.ID }) {
		return fmt.Errorf("%w: %d servers found; the first %d by id bootstrap, and this one joins them", errWaiting, all, want)
	}
	servers := make([]Server, len(cands))
	for i, c := range cands {
		servers[i] = Server{ID: c.ID, Address: c.RaftAddress, Voter: true}
	}
	if err := n.Bootstrap(servers...); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return err
	}
	return nil
}

// joinAddresses returns RetryJoin and what Discover finds (also when it
// fails in part: what it found, with its error), without duplicates or
// this node's own address.
func (n *Node) joinAddresses(ctx context.Context) ([]string, error) {
	addrs := slices.Clone(n.cfg.RetryJoin)
	var err error
	if n.cfg.Discover != nil {
		var more []string
		more, err = n.cfg.Discover(ctx)
		addrs = append(addrs, more...)
	}
	self := string(n.trans.LocalAddr())
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	return slices.DeleteFunc(addrs, func(a string) bool { return a == self }), err
}

// probe asks every address for its ServerInfo at once and returns the
// answers of other servers, by ID, and the addresses that gave none, each
// with its error.
func (n *Node) probe(ctx context.Context, addrs []string) ([]ServerInfo, []string) {
	var (
		mu     sync.Mutex
		out    []ServerInfo
		silent []string
		wg     sync.WaitGroup
	)
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var info ServerInfo
			if err := n.client.Call(cctx, a, OpInfo, nil, &info); err != nil {
				n.logger.Debug("server did not answer", logKeyAddress, a, logKeyError, err)
				mu.Lock()
				silent = append(silent, fmt.Sprintf("%s (%v)", a, err))
				mu.Unlock()
				return
			}
			if info.ID == n.cfg.NodeID {
				return
			}
			mu.Lock()
			out = append(out, info)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b ServerInfo) int { return strings.Compare(a.ID, b.ID) })
	slices.Sort(silent)
	return slices.CompactFunc(out, func(a, b ServerInfo) bool { return a.ID == b.ID }), silent
}

// nodeIDFile is where LoadOrCreateNodeID keeps the node's Raft ID.
const nodeIDFile = "node-id"

var nodeIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ReadNodeID returns the Raft node ID kept in dataDir/node-id, or "" when
// there is none yet (dataDir or the file does not exist). It changes
// nothing: it is what LoadOrCreateNodeID reads, for checks before a start.
func ReadNodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, nodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", nil
	case err != nil:
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if !nodeIDRE.MatchString(id) {
		return "", fmt.Errorf("%s holds %q, not a node id; restore it or remove the whole data dir", path, id)
	}
	return id, nil
}

// LoadOrCreateNodeID returns the Raft node ID kept in dataDir/node-id,
// creating a random one (a UUID) on first start. The ID lives as long as
// the data dir: a server that loses its data dir is a new server.
func LoadOrCreateNodeID(dataDir string) (string, error) {
	id, err := ReadNodeID(dataDir)
	switch {
	case err != nil:
		return "", fmt.Errorf("cluster: node id: %w", err)
	case id != "":
		return id, nil
	}
	path := filepath.Join(dataDir, nodeIDFile)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("cluster: data dir: %w", err)
	}
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("cluster: node id: %w", err)
	}
	r[6] = r[6]&0x0f | 0x40 // version 4
	r[8] = r[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(r[:])
	id = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	if err := writeSynced(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("cluster: node id: %w", err)
	}
	return id, nil
}

// writeSynced writes data to path whole or not at all, and on disk before
// it returns: into path.tmp, synced, renamed over path, and the directory
// synced. Without the syncs a file system that stops writing soon after
// (ext4 turned read-only by an error, a power cut) kept the rename but not
// the data: an empty node-id, with which the server refused to start.
func writeSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
