package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// stoppingLogger is the logger raft and its TCP transport log to. Once the
// server stops (stopping is cancelled by Close), the ERROR lines that its
// own clean shutdown makes raft write are logged at DEBUG: the transport's
// handlers of its peers' connections, which the shutdown closes ("failed
// to decode incoming command" or "failed to flush response" with "transport
// shutdown" or "use of closed network connection"), and the old leader's
// replication meeting the term of the voter it handed leadership to ("peer
// has newer term, stopping replication"). Every other line, and these
// same lines while the server runs (a peer that breaks a connection or
// sends garbage), keep their level.
//
// Likewise for the peers a stopping server told it was leaving (OpLeaving):
// raft's ERROR lines about failing to reach that peer ("failed to
// appendEntries to", "failed to heartbeat to", "failed to make requestVote
// RPC", and the leader's "failed to send snapshot to" and "failed to
// install snapshot" when the peer is far enough behind to need one) and
// the leader's WARN lines that it has not heard from it ("failed to
// contact", three in its first 1.5 s away) are DEBUG until the peer
// answers heartbeats again or leaveQuiet has passed, after which a peer
// still away is an error again. The peers log one INFO line instead: "a
// server is stopping cleanly".
//
// At any time, the leader's "failed to get log … log not found" before it
// sends a follower a snapshot is DEBUG (snapshotNeeded).
//
// A server whose cluster was recovered as another (recovered.go) reaches
// no peer and stands for election again and again: while it is
// superseded, raft's WARN and ERROR lines are DEBUG; the node's one ERROR
// line has said what happened and what to do.
//
// The failures to reach a peer that did not say it was leaving (a killed
// server, a host down) are folded (unreachablePeers): the first stays
// ERROR, the next are DEBUG, and one ERROR line a minute sums them up
// while the peer stays away.
type stoppingLogger struct {
	hclog.Logger
	stopping    context.Context
	leaving     *leavingPeers
	unreachable *unreachablePeers
	// disk, when its writes fail, makes diskQuiet's lines DEBUG (nil:
	// none).
	disk *diskHealth
	// rejected folds a follower's repeated rejections (rejections.go).
	rejected *rejectedPeers
	// rec, once superseded, makes raft's lines DEBUG (nil: never).
	rec *recState
}

var _ hclog.Logger = stoppingLogger{}

// raftLogger is the logger raft's part name (raft, transport, snapshot)
// logs to.
func (n *Node) raftLogger(name string) hclog.Logger {
	return stoppingLogger{n.logger.Named(name), n.closing, n.leaving, n.unreachable, n.disk, n.rejected, &n.recState}
}

// leadershipLog is the logger of this node's leadership lines, quiet as
// raft's while the data directory cannot be written.
func (n *Node) leadershipLog() hclog.Logger {
	return stoppingLogger{Logger: n.logger, stopping: n.closing, disk: n.disk}
}

func (l stoppingLogger) Error(msg string, args ...any) {
	l.Log(hclog.Error, msg, args...)
}

func (l stoppingLogger) Warn(msg string, args ...any) {
	l.Log(hclog.Warn, msg, args...)
}

func (l stoppingLogger) Info(msg string, args ...any) {
	l.Log(hclog.Info, msg, args...)
}

func (l stoppingLogger) Log(level hclog.Level, msg string, args ...any) {
	// A peer that said it was leaving is quiet, unless its address now
	// answers with a refusal: another server has taken it.
	refused := refusal(args)
	if level == hclog.Error && l.stopping.Err() != nil && ownShutdown(msg, args) ||
		(level == hclog.Error || level == hclog.Warn) && refused == "" && l.leaving.left(msg, args) ||
		level == hclog.Error && snapshotNeeded(msg, args) ||
		level > hclog.Debug && l.disk.quiet(msg, args) ||
		level > hclog.Info && l.rec != nil && l.rec.superseded.Load() != nil {
		level = hclog.Debug
	}
	if level == hclog.Warn && msg == rejectedMsg && l.rejected != nil {
		switch loud, sum := l.rejected.fold(args); {
		case sum != nil:
			l.Logger.Log(hclog.Debug, msg, args...)
			l.Logger.Warn("a server keeps rejecting the entries sent to it", sum...)
			return
		case !loud:
			level = hclog.Debug
		}
	}
	if level == hclog.Error && l.unreachable != nil {
		if addr, id, ok := unreachedPeer(msg, args); ok {
			switch first, name, sum := l.unreachable.fold(addr, id, refused); {
			case first:
				if name != "" {
					args = append(args, "name", name)
				}
				args = append(args, "then", "one line a minute while it stays unreachable")
			case sum != nil:
				l.Logger.Log(hclog.Debug, msg, args...)
				l.Logger.Error("server still unreachable", sum.args()...)
				return
			default:
				level = hclog.Debug
			}
		}
	}
	l.Logger.Log(level, msg, args...)
}

func (l stoppingLogger) With(args ...any) hclog.Logger {
	c := l
	c.Logger = l.Logger.With(args...)
	return c
}

func (l stoppingLogger) Named(name string) hclog.Logger {
	c := l
	c.Logger = l.Logger.Named(name)
	return c
}

func (l stoppingLogger) ResetNamed(name string) hclog.Logger {
	c := l
	c.Logger = l.Logger.ResetNamed(name)
	return c
}

// diskFailed reports whether a line's error is a disk's failure, which
// diskHealth logs itself: raft's snapshot store logs its failures before
// it returns them through the store's wrapper.
func diskFailed(args []any) bool {
	for i := 0; i+1 < len(args); i += 2 {
		if err, ok := args[i+1].(error); ok && args[i] == "error" {
			return diskError(err)
		}
	}
	return false
}

// ownShutdown reports whether raft's ERROR line msg is one a server's
// own clean shutdown causes.
func ownShutdown(msg string, args []any) bool {
	switch msg {
	case "peer has newer term, stopping replication":
		return true
	case "failed to decode incoming command", "failed to flush response":
		for i := 0; i+1 < len(args); i += 2 {
			if err, ok := args[i+1].(error); ok && args[i] == "error" {
				return errors.Is(err, raft.ErrTransportShutdown) || errors.Is(err, net.ErrClosed)
			}
		}
	}
	return false
}

// snapshotNeeded reports whether raft's ERROR line msg is the leader
// finding that a follower needs entries it has already compacted away:
// "failed to get log" with raft.ErrLogNotFound, logged by raft's
// replication while it builds an AppendEntries request (setPreviousLog,
// setNewLogs). Raft v1.7.3 then sends the follower its latest snapshot
// instead (replicateTo's SEND_SNAP, after the pipeline, if any, stops), as
// it does for every server that joins a cluster whose log was compacted
// and every server back from an absence longer than raft_trailing_logs
// entries: normal work, which raft logs at INFO ("installing snapshot
// on"), its failures at ERROR. So the line is DEBUG. The same message from
// anywhere else (applying committed entries, or reading the log at start:
// raft panics after both) or with another error (replication gives up)
// keeps its level.
func snapshotNeeded(msg string, args []any) bool {
	if msg != "failed to get log" {
		return false
	}
	found := false
	for i := 0; i+1 < len(args); i += 2 {
		if err, ok := args[i+1].(error); ok && args[i] == "error" {
			// Raft compares with ==, not errors.Is, to send a snapshot.
			found = err == raft.ErrLogNotFound
		}
	}
	if !found {
		return false
	}
	var pcs [16]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		f, more := frames.Next()
		switch f.Function {
		case "github.com/hashicorp/raft.(*Raft).setPreviousLog", "github.com/hashicorp/raft.(*Raft).setNewLogs":
			return true
		}
		if !more {
			return false
		}
	}
}

// OpLeaving tells a peer that the server in the request (a ServerInfo) is
// stopping cleanly, so that the peer does not log its absence as an error
// (stoppingLogger). A server of an older version answers ErrUnknownOp.
const OpLeaving = "leaving"

// leaveQuiet is how long a peer that said it was leaving may stay away
// before failing to reach it is an error again: a rolling restart's
// absence, with room.
const leaveQuiet = 5 * time.Minute

// leavingPeers are the peers that said they were stopping, by Raft
// address and ID, with when. Safe for concurrent use; nil holds none.
type leavingPeers struct {
	mu    sync.Mutex
	now   func() time.Time
	peers map[string]leavingPeer // by Raft address
}

type leavingPeer struct {
	id string
	at time.Time
}

func newLeavingPeers(now func() time.Time) *leavingPeers {
	return &leavingPeers{now: now, peers: map[string]leavingPeer{}}
}

func (p *leavingPeers) mark(id, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers[addr] = leavingPeer{id: id, at: p.now()}
}

// back forgets the peer with id: it answers again.
func (p *leavingPeers) back(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, l := range p.peers {
		if l.id == id {
			delete(p.peers, a)
		}
	}
}

// left reports whether raft's line msg is about failing to reach a peer
// that said it was leaving, within leaveQuiet.
func (p *leavingPeers) left(msg string, args []any) bool {
	if p == nil {
		return false
	}
	addr, id, ok := unreachedPeer(msg, args)
	if !ok && msg == "failed to contact" {
		addr, id = peerArg(args, "server-id")
		ok = true
	}
	if !ok {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for a, l := range p.peers {
		if (addr != "" && a == addr || id != "" && l.id == id) && now.Sub(l.at) < leaveQuiet {
			return true
		}
	}
	return false
}

// unreachedPeer reports whether raft's line msg is about failing to reach
// a peer, and which (its Raft address, its ID, or both, as the line says).
func unreachedPeer(msg string, args []any) (addr, id string, ok bool) {
	var key string
	switch msg {
	case "failed to appendEntries to", "failed to heartbeat to", "failed to pipeline appendEntries",
		"failed to send snapshot to", "failed to install snapshot":
		key = "peer"
	case "failed to make requestVote RPC":
		key = "target"
	default:
		return "", "", false
	}
	addr, id = peerArg(args, key)
	return addr, id, addr != "" || id != ""
}

// peerArg is the peer that raft's line names under key.
func peerArg(args []any, key string) (addr, id string) {
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] != key {
			continue
		}
		switch v := args[i+1].(type) {
		case raft.Server:
			addr, id = string(v.Address), string(v.ID)
		case raft.ServerAddress:
			addr = string(v)
		case raft.ServerID:
			id = string(v)
		case string:
			addr = v
		}
	}
	return addr, id
}

// refusal is the reason a server gave for refusing raft's connection
// (RaftRefusedError) in a line's error, or "".
func refusal(args []any) string {
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] != "error" {
			continue
		}
		var refused *RaftRefusedError
		if err, ok := args[i+1].(error); ok && errors.As(err, &refused) {
			return refused.Reason
		}
	}
	return ""
}

// foldEvery is how often a peer that stays unreachable is logged: raft
// retries a peer it cannot reach at once, then backs off to about ten
// seconds between tries, each an ERROR line (measured: about 98 a
// minute for one killed follower, heartbeats and appends).
const foldEvery = time.Minute

// unreachablePeers folds raft's failures to reach a peer (stoppingLogger):
// by Raft address, or ID where a line names no address. An entry ends
// when the peer answers heartbeats again (back) or after foldEvery
// without a failure, so a peer that fails again later starts afresh with
// an ERROR line. The leader's configuration (setKnown) tells the ID of a
// peer that raft's heartbeat lines name by address alone, so that its
// answering heartbeats again (by ID) ends its run, and a peer's name
// (what status shows beside its Raft ID) once the leader has heard it.
// Safe for concurrent use; nil folds nothing.
type unreachablePeers struct {
	mu    sync.Mutex
	now   func() time.Time
	peers []*unreachablePeer
	known map[string]knownPeer // by Raft address
}

// knownPeer is a server of the leader's configuration: its Raft ID, and
// its name ("" until the leader has heard it).
type knownPeer struct {
	id, name string
}

type unreachablePeer struct {
	addr, id string
	since    time.Time // its first failure
	last     time.Time // its latest failure
	reported time.Time // its last ERROR line
	folded   int       // failures after the one reported
	total    int       // failures after the first
	refused  string    // the reason of its last refusal logged
}

// unreachableSum is what the once-a-minute line says of a peer: how long
// since its first failure, and how many failures since the last line.
type unreachableSum struct {
	addr, id, name string
	away           time.Duration
	folded         int
}

func (s *unreachableSum) args() []any {
	return s.named("server", s.id, "address", s.addr, "unreachable_for", s.away.Round(time.Second), "failures", s.folded)
}

// named is args with the peer's name after its ID, when it is known.
func (s *unreachableSum) named(args ...any) []any {
	if s.name == "" {
		return args
	}
	return slices.Insert(args, 2, any("name"), any(s.name))
}

// setKnown replaces the servers of the configuration, by Raft address:
// the leader's reconciliation reads them, and hears each, every round.
func (u *unreachablePeers) setKnown(known map[string]knownPeer) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.known = known
}

// nameOf is the peer's name, "" when unknown; u.mu is held.
func (u *unreachablePeers) nameOf(addr, id string) string {
	if k, ok := u.known[addr]; ok {
		return k.name
	}
	for _, k := range u.known {
		if id != "" && k.id == id {
			return k.name
		}
	}
	return ""
}

func newUnreachablePeers(now func() time.Time) *unreachablePeers {
	return &unreachablePeers{now: now}
}

// fold records a failure to reach the peer at addr (or with id): first
// when it is the first of a run, or the peer refused the connection for
// another reason than before (refused: the server at the address says
// it is not that peer, or of another cluster), which is logged as it is
// (with the peer's name, when known); sum when a foldEvery has passed
// since the peer's last ERROR line, to log after it. Otherwise the
// failure is folded.
func (u *unreachablePeers) fold(addr, id, refused string) (first bool, name string, sum *unreachableSum) {
	if u == nil {
		return false, "", nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	u.peers = slices.DeleteFunc(u.peers, func(p *unreachablePeer) bool { return now.Sub(p.last) >= foldEvery })
	i := slices.IndexFunc(u.peers, func(p *unreachablePeer) bool {
		return addr != "" && p.addr == addr || id != "" && p.id == id
	})
	if i < 0 {
		if id == "" {
			id = u.known[addr].id
		}
		u.peers = append(u.peers, &unreachablePeer{addr: addr, id: id, since: now, last: now, reported: now, refused: refused})
		return true, u.nameOf(addr, id), nil
	}
	p := u.peers[i]
	if p.addr == "" {
		p.addr = addr
	}
	if p.id == "" {
		p.id = id
	}
	p.last = now
	if refused != "" && refused != p.refused {
		p.refused, p.reported = refused, now
		p.total++
		return true, u.nameOf(p.addr, p.id), nil
	}
	p.folded++
	p.total++
	if now.Sub(p.reported) >= foldEvery {
		sum = &unreachableSum{addr: p.addr, id: p.id, name: u.nameOf(p.addr, p.id), away: now.Sub(p.since), folded: p.folded}
		p.reported, p.folded = now, 0
	}
	return false, "", sum
}

// back ends the peer with id's run of failures (it answers heartbeats
// again) and returns what the run was, nil when there was none.
func (u *unreachablePeers) back(id string) *unreachableSum {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	i := slices.IndexFunc(u.peers, func(p *unreachablePeer) bool { return p.id == id })
	if i < 0 {
		return nil
	}
	p := u.peers[i]
	u.peers = slices.Delete(u.peers, i, i+1)
	return &unreachableSum{addr: p.addr, id: p.id, name: u.nameOf(p.addr, p.id), away: u.now().Sub(p.since), folded: p.total}
}

// handleLeaving records the peer in the request as leaving.
func (n *Node) handleLeaving(_ context.Context, body json.RawMessage) (any, error) {
	var s ServerInfo
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, err
	}
	if s.RaftAddress == "" {
		return nil, errors.New("leaving: the request names no Raft address")
	}
	n.leaving.mark(s.ID, s.RaftAddress)
	n.logger.Info("a server is stopping cleanly", "id", s.ID, "address", s.RaftAddress)
	return struct{}{}, nil
}

// tellLeaving tells every other server in the configuration that this one
// is stopping, each within leaveTellWait; a server that does not answer
// logs its absence as an error, as after a crash.
func (n *Node) tellLeaving() {
	fut := n.raft.GetConfiguration()
	if fut.Error() != nil {
		return
	}
	self := n.Info()
	var wg sync.WaitGroup
	for _, s := range fut.Configuration().Servers {
		if string(s.ID) == n.cfg.NodeID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), leaveTellWait)
			defer cancel()
			if err := n.client.Call(ctx, string(s.Address), OpLeaving, self, nil); err != nil {
				n.logger.Debug("could not tell a server this one is stopping", "id", s.ID, "address", s.Address, "error", err)
			}
		}()
	}
	wg.Wait()
}

// leaveTellWait bounds telling the peers, which delays the stop.
const leaveTellWait = 500 * time.Millisecond

// watchResumed forgets a leaving peer once it answers heartbeats again,
// and ends an unreachable one's run of failures, saying so.
func (n *Node) watchResumed(ch chan raft.Observation, obs *raft.Observer) {
	defer n.wg.Done()
	defer n.raft.DeregisterObserver(obs)
	for {
		select {
		case o := <-ch:
			if r, ok := o.Data.(raft.ResumedHeartbeatObservation); ok {
				n.leaving.back(string(r.PeerID))
				if s := n.unreachable.back(string(r.PeerID)); s != nil {
					n.logger.Info("server reachable again", s.named("server", s.id, "address", s.addr,
						"unreachable_for", s.away.Round(time.Millisecond), "failures_folded", s.folded)...)
				}
			}
		case <-n.done:
			return
		}
	}
}
