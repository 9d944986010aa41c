package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// A cluster recovered from a peers file (recover.go) has a new ID, so that
// the servers it gave up are refused when they come back with their old
// data_dir. Two of them together are still a majority of the old
// configuration and elect a leader of their own, which would run the
// cycle against the same Nomad. So a recovered cluster remembers what it
// was recovered from, and a server of the old cluster that reaches it is
// told, and stops taking part:
//
//   - Every server of the recovered cluster keeps its recoveries (a
//     Recovery: the old cluster ID, the new, when and from which servers)
//     in its stable store, beside the cluster ID (stableKeyRecoveries). A
//     recovered server writes it before it takes the new ID, so a stop
//     between the two applies the file again with the old ID still known;
//     a later recovery keeps the earlier ones. Servers that join later
//     take them, as they take the cluster ID, from the leader's join
//     answer and health checks (ServerInfo.Recoveries,
//     infoRequest.Recoveries): a stable-store record, not a log entry,
//     because a server that received a snapshot never sees the entries
//     before it.
//   - A server of the recovered cluster refuses a Raft hello of a cluster
//     it was recovered from with that Recovery behind the reason
//     (recoveredRefusal, transport.go's second frame), and answers it in
//     OpInfo, which a returning server's join asks.
//   - A server that receives such an answer naming its own cluster ID, and
//     only then, is superseded (heardRecovered): it keeps that in its
//     stable store (stableKeySuperseded), so a restart does not lead
//     again; it cancels its leadership term (leader loops stop at once),
//     closes its Raft connections and from then dials none and refuses
//     every Raft hello, and stops its raft (fence): no election, no new
//     term, nothing more in its log; its status (State Superseded),
//     /v1/ready and OpInfo say it, and it logs once at ERROR what happened
//     and what to do: move its data_dir aside and start it again, a new
//     server that joins the recovered cluster. Started again, it is
//     superseded before raft starts, and raft's timeouts are set so that
//     it never stands for election (loadSuperseded).
//   - A superseded server refuses its old peers' hellos with the same
//     Recovery, so they learn it from it as well as from a recovered
//     server: a candidate asks every server for its vote, and a leader
//     replicates to each. Without its vote, and the recovered servers'
//     (which refuse them), the old servers are short of a majority sooner.
//
// A refusal without a Recovery (two unrelated clusters, a server of a
// release before this) fences nothing: the server goes on as before.
//
// A cluster recovered more than once (A as B, then B as C) tells a server
// of A the recovery of A, and that B is cluster C now (Recovery.Current):
// the server's data_dir moved aside, it joins cluster C, the one its
// peers run, not B, which no server runs any more.

// Stable store keys: the recoveries this server's cluster went through,
// and the Recovery that superseded this server's own cluster.
var (
	stableKeyRecoveries = []byte("foreshape_recoveries")
	stableKeySuperseded = []byte("foreshape_superseded")
)

// maxRecoveries bounds the recoveries a server keeps (and sends): the
// newest.
const maxRecoveries = 16

// Recovery is one recovery from a peers file: cluster Old was recovered as
// cluster New at At, its configuration then the servers in Servers ("ID
// at ADDRESS").
type Recovery struct {
	Old     string    `json:"old_cluster_id"`
	New     string    `json:"cluster_id"`
	At      time.Time `json:"at"`
	Servers []string  `json:"servers"`
	// Current, in a Recovery told to a server of cluster Old, is the
	// cluster of the server that told it, when a later recovery made New
	// another (New was recovered in turn); empty otherwise, and in the
	// recoveries a server keeps.
	Current string `json:"current_cluster_id,omitempty"`
}

// String says what r is, for refusals and logs.
func (r Recovery) String() string {
	s := fmt.Sprintf("cluster %s was recovered from a lost quorum as cluster %s at %s, by the servers %s",
		r.Old, r.New, r.At.UTC().Format(time.RFC3339), strings.Join(r.Servers, ", "))
	if r.Current != "" {
		s += fmt.Sprintf(", and cluster %s was recovered in turn: it is cluster %s now", r.New, r.Current)
	}
	return s
}

// joins is the cluster a server of cluster r.Old joins once its data_dir
// is moved aside: the one the servers that told it run.
func (r Recovery) joins() string {
	if r.Current != "" {
		return r.Current
	}
	return r.New
}

// toldBy is r as told by a server of cluster id.
func (r Recovery) toldBy(id string) Recovery {
	r.Current = ""
	if id != "" && id != r.New && id != r.Old {
		r.Current = id
	}
	return r
}

func (r Recovery) valid() bool { return r.Old != "" && r.New != "" && r.Old != r.New }

// ErrSuperseded is wrapped by the errors of a server whose cluster was
// recovered as another (SupersededError).
var ErrSuperseded = errors.New("cluster: this server's cluster was recovered as another")

// SupersededError says that this server's Raft state is of a cluster that
// was recovered as another, and what to do. errors.Is(err, ErrSuperseded)
// holds.
type SupersededError struct {
	Recovery Recovery
	// From is the address of the server that said so, Learned when.
	From    string    `json:"from"`
	Learned time.Time `json:"learned"`
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("%v: %s (the server at %s said so at %s); this server holds the old cluster's Raft state and does not lead or vote in it: "+
		"stop it, move its data_dir aside and start it again: it joins cluster %s as a new server and receives its state",
		ErrSuperseded, e.Recovery, e.From, e.Learned.UTC().Format(time.RFC3339), e.Recovery.joins())
}

// Is makes errors.Is(err, ErrSuperseded) true.
func (e *SupersededError) Is(target error) bool { return target == ErrSuperseded }

// recoveredRefusal is admitRaft's refusal of a hello of a cluster that was
// recovered as this server's: the mux sends rec behind the reason.
type recoveredRefusal struct {
	error
	rec Recovery
}

func (e *recoveredRefusal) Unwrap() error { return e.error }

// recState is the node's recoveries and supersession.
type recState struct {
	// recoveries caches the stable store's list, newest first.
	recoveries atomic.Pointer[[]Recovery]
	// superseded is set once this server's cluster was recovered as
	// another.
	superseded atomic.Pointer[SupersededError]
	// raftStop is raft's one Shutdown, by fence or Close (shutdownRaft).
	raftStop    sync.Once
	raftStopped raft.Future
}

// Recoveries returns the recoveries this server's cluster went through,
// newest first.
func (n *Node) Recoveries() []Recovery {
	if p := n.recoveries.Load(); p != nil {
		return *p
	}
	var out []Recovery
	if b, err := n.stable.Get(stableKeyRecoveries); err == nil && len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			n.logger.Warn("cannot read the recoveries kept in the stable store", logKeyError, err)
		}
	}
	n.recoveries.CompareAndSwap(nil, &out)
	return *n.recoveries.Load()
}

// addRecoveries keeps rs, those of them this server does not have yet, in
// its stable store.
func (n *Node) addRecoveries(rs []Recovery, how string) error {
	n.idMu.Lock()
	defer n.idMu.Unlock()
	cur := slices.Clone(n.Recoveries())
	added := 0
	for _, r := range rs {
		r.Current = ""
		if !r.valid() || slices.ContainsFunc(cur, func(c Recovery) bool { return c.Old == r.Old && c.New == r.New }) {
			continue
		}
		cur = append(cur, r)
		added++
	}
	if added == 0 {
		return nil
	}
	slices.SortStableFunc(cur, func(a, b Recovery) int { return b.At.Compare(a.At) })
	if len(cur) > maxRecoveries {
		cur = cur[:maxRecoveries]
	}
	b, err := json.Marshal(cur)
	if err == nil {
		err = n.stable.Set(stableKeyRecoveries, b)
	}
	if err != nil {
		return fmt.Errorf("cluster: keep the cluster's recoveries: %w", err)
	}
	n.recoveries.Store(&cur)
	n.logger.Info("kept the recoveries of this cluster", "recoveries", added, "how", how)
	return nil
}

// recoveredFrom returns the recovery of cluster old into this server's
// cluster, if it went through one, as this server tells it (toldBy).
func (n *Node) recoveredFrom(old string) (Recovery, bool) {
	if old == "" {
		return Recovery{}, false
	}
	for _, r := range n.Recoveries() {
		if r.Old == old {
			return r.toldBy(n.ClusterID()), true
		}
	}
	return Recovery{}, false
}

// Superseded returns why this server no longer takes part in its cluster
// (its cluster was recovered as another: a *SupersededError), or nil.
func (n *Node) Superseded() error {
	if e := n.superseded.Load(); e != nil {
		return e
	}
	return nil
}

// fencedTimeout is raft's heartbeat and election timeout on a server
// superseded before it started: a follower stands for election only once
// its heartbeat timeout passes without a leader, which this one never
// hears; raft waits up to twice it, which still fits a time.Duration.
const fencedTimeout = 100 * 365 * 24 * time.Hour

// loadSuperseded reads, before raft starts with rc, whether this server was
// superseded before a restart, and says it again at ERROR. Raft then
// never stands for election (fencedTimeout): it stays a follower that
// hears no one, in the term it had, and stops with the server.
func (n *Node) loadSuperseded(rc *raft.Config) {
	b, err := n.stable.Get(stableKeySuperseded)
	if err != nil || len(b) == 0 {
		return
	}
	var e SupersededError
	if err := json.Unmarshal(b, &e); err != nil || !e.Recovery.valid() {
		n.logger.Warn("cannot read the supersession kept in the stable store; going on as a server of its cluster", logKeyError, err)
		return
	}
	n.superseded.Store(&e)
	rc.HeartbeatTimeout, rc.ElectionTimeout = fencedTimeout, fencedTimeout
	n.logger.Error("this server's cluster was recovered as another before it stopped: it does not lead or vote, and refuses its old peers",
		logKeyError, e.Error())
}

// heardRecovered takes a Recovery a server at from answered with (a Raft
// hello's refusal, an OpInfo answer): when it names this server's own
// cluster as the old one, this server is superseded. Anything else changes
// nothing.
func (n *Node) heardRecovered(r Recovery, from string) {
	if !r.valid() || n.cfg.olderRecovered {
		return
	}
	id := n.ClusterID()
	if id == "" || r.Old != id || n.superseded.Load() != nil {
		return
	}
	e := &SupersededError{Recovery: r, From: from, Learned: time.Now().UTC()}
	b, err := json.Marshal(e)
	if err == nil {
		err = n.stable.Set(stableKeySuperseded, b)
	}
	if err != nil {
		// Not kept: it stops acting now all the same, and is told again
		// after a restart.
		n.logger.Warn("cannot keep in the stable store that this server's cluster was recovered as another", logKeyError, err)
	}
	if !n.superseded.CompareAndSwap(nil, e) {
		return
	}
	args := []any{"cluster_id", r.Old, "recovered_as", r.New, "recovered_at", r.At.UTC().Format(time.RFC3339), "recovered_by", strings.Join(r.Servers, ", "), "told_by", from}
	if r.Current != "" {
		args = append(args, "recovered_cluster_now", r.Current)
	}
	n.logger.Error("this server's cluster was recovered from a lost quorum as another: it stops leading, no longer votes, and refuses its old peers; "+
		"stop it, move its data_dir aside and start it again: it joins the recovered cluster as a new server", args...)
	n.fence()
}

// fence makes a superseded server stop acting: its leadership term ends
// (leader loops see their context cancelled), its Raft connections close
// (dialRaft and admitRaft refuse every new one), and its raft stops, so
// that it stands for no election: a server of three whose peers are
// superseded too, or gone, would otherwise stand again every election
// timeout, its state Candidate, for as long as it runs. Raft's Shutdown
// only signals its goroutines, so fence may run on one of them (a dial
// of raft's transport); Close waits for them (shutdownRaft), and the
// Raft port stays open until then, so that OpInfo still answers and old
// peers' hellos are refused with the Recovery.
func (n *Node) fence() {
	n.mu.Lock()
	if n.leader != nil {
		n.leader.cancel()
		n.leader = nil
		close(n.changed)
		n.changed = make(chan struct{})
	}
	n.mu.Unlock()
	if n.mux != nil {
		n.mux.closeRaftConns()
	}
	if nt, ok := n.trans.(*raft.NetworkTransport); ok {
		nt.CloseStreams()
	}
	// Raft is live once NewRaft returned; it dials no one before (a
	// follower stands for election after its heartbeat timeout), and the
	// join loop starts after it.
	if r := n.live.Load(); r != nil {
		n.shutdownRaft(r)
		n.logger.Info("stopped raft: this server takes no part in any cluster until its data_dir is moved aside")
	}
}

// shutdownRaft stops r once, for fence and Close alike: both have the
// future of the one Shutdown, whose Error waits for raft's goroutines and
// then closes the transport (a later Shutdown's does neither).
func (n *Node) shutdownRaft(r *raft.Raft) raft.Future {
	n.raftStop.Do(func() { n.raftStopped = r.Shutdown() })
	return n.raftStopped
}

// supersededHello is admitRaft's refusal on a superseded server: its old
// peers' hellos carry its Recovery on.
func (n *Node) supersededHello(h raftHello, e *SupersededError) error {
	err := fmt.Errorf("server %s's cluster %s was recovered as another; server %s is of that old cluster and refuses it: %s",
		n.cfg.NodeID, e.Recovery.Old, h.From, e.Recovery)
	if h.ClusterID == e.Recovery.Old {
		return &recoveredRefusal{error: err, rec: e.Recovery}
	}
	return err
}

// recoveredHello is admitRaft's refusal, by server id, of a hello of a
// cluster this server's was recovered from (r, as recoveredFrom tells it).
func recoveredHello(h raftHello, id string, r Recovery) error {
	return &recoveredRefusal{rec: r, error: fmt.Errorf("server %s is of cluster %s, and server %s of cluster %s: %s; "+
		"the old cluster must not run again; stop server %s, move its data_dir aside and start it again: it joins cluster %s as a new server",
		h.From, h.ClusterID, id, r.joins(), r, h.From, r.joins())}
}

// StateSuperseded is Status.State of a server whose cluster was recovered
// as another: its raft takes no part in any cluster.
const StateSuperseded = "Superseded"
