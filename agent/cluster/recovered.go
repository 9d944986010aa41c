package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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
//     only then, is superseded (supersede): it keeps that in its stable
//     store (stableKeySuperseded), so a restart does not lead again; it
//     cancels its leadership term (leader loops stop at once), closes its
//     Raft connections and from then dials none and refuses every Raft
//     hello, so raft steps down once its lease passes and can never be
//     elected again; its status, /v1/ready and OpInfo say it, and it logs
//     at ERROR what happened and what to do: move its data_dir aside and
//     start it again, a new server that joins the recovered cluster.
//   - A superseded server refuses its old peers' hellos with the same
//     Recovery, so they learn it from it as well as from a recovered
//     server: a candidate asks every server for its vote, and a leader
//     replicates to each. Without its vote, and the recovered servers'
//     (which refuse them), the old servers are short of a majority sooner.
//
// A refusal without a Recovery (two unrelated clusters, a server of a
// release before this) fences nothing: the server goes on as before.

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
}

// String says what r is, for refusals and logs.
func (r Recovery) String() string {
	return fmt.Sprintf("cluster %s was recovered from a lost quorum as cluster %s at %s, by the servers %s",
		r.Old, r.New, r.At.UTC().Format(time.RFC3339), strings.Join(r.Servers, ", "))
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
		ErrSuperseded, e.Recovery, e.From, e.Learned.UTC().Format(time.RFC3339), e.Recovery.New)
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
// cluster, if it went through one.
func (n *Node) recoveredFrom(old string) (Recovery, bool) {
	if old == "" {
		return Recovery{}, false
	}
	for _, r := range n.Recoveries() {
		if r.Old == old {
			return r, true
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

// loadSuperseded reads, before raft starts, whether this server was
// superseded before a restart, and says it again at ERROR.
func (n *Node) loadSuperseded() {
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
	n.logger.Error("this server's cluster was recovered from a lost quorum as another: it stops leading, no longer votes, and refuses its old peers; "+
		"stop it, move its data_dir aside and start it again: it joins the recovered cluster as a new server",
		"cluster_id", r.Old, "recovered_as", r.New, "recovered_at", r.At.UTC().Format(time.RFC3339), "recovered_by", strings.Join(r.Servers, ", "), "told_by", from)
	n.fence()
}

// fence makes a superseded server stop acting: its leadership term ends
// (leader loops see their context cancelled) and its Raft connections
// close; dialRaft and admitRaft refuse every new one, so raft steps down
// once its lease passes.
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

// recoveredHello is admitRaft's refusal of a hello of a cluster this
// server's was recovered from.
func recoveredHello(h raftHello, id string, r Recovery) error {
	return &recoveredRefusal{rec: r, error: fmt.Errorf("server %s is of cluster %s, which was recovered from a lost quorum as cluster %s, server %s's, at %s by the servers %s: "+
		"the old cluster must not run again; stop server %s, move its data_dir aside and start it again: it joins cluster %s as a new server",
		h.From, h.ClusterID, r.New, id, r.At.UTC().Format(time.RFC3339), strings.Join(r.Servers, ", "), h.From, r.New)}
}
