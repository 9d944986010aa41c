package cluster

import (
	"fmt"
	"sync"
	"time"
)

// rejectEvery is how often the leader logs a follower that keeps
// rejecting the same entries.
const rejectEvery = 10 * time.Minute

// rejectedMsg is the line raft's leader logs, at WARN, each time a
// follower rejects the entries it sent, with the index it sends next.
const rejectedMsg = "appendEntries rejected, sending older logs"

// rejectedPeers folds raft's rejectedMsg lines of a follower that rejects
// the same entries again and again (stoppingLogger). A follower behind
// the leader rejects a few times, the index sent next going down each
// time, until its log matches: each of those lines keeps its level. A
// follower that cannot store what it matches (its data_dir's disk full,
// read-only or failing: its log says so) rejects the same index for as
// long as that lasts; raft sends again backing off up to about 10 s, a
// WARN line each time (about six a minute, for the whole outage). The
// first line of such a run keeps its level; the repeats are DEBUG, and one
// WARN line every rejectEvery says the follower still rejects them. Safe
// for concurrent use; nil folds nothing.
type rejectedPeers struct {
	mu    sync.Mutex
	now   func() time.Time
	peers map[string]*rejectedPeer // by the line's peer, as written
}

type rejectedPeer struct {
	next     any       // the index sent next, as the line gave it
	since    time.Time // the run's first line
	reported time.Time // its last WARN line
	folded   int       // repeats since then
}

func newRejectedPeers(now func() time.Time) *rejectedPeers {
	return &rejectedPeers{now: now, peers: map[string]*rejectedPeer{}}
}

// fold takes one rejectedMsg line's args: loud reports whether it keeps
// its level, sum, when set, is the args of the line that says the peer
// still rejects (the line itself then DEBUG).
func (r *rejectedPeers) fold(args []any) (loud bool, sum []any) {
	if r == nil {
		return true, nil
	}
	var peer string
	var next any
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "peer":
			peer = fmt.Sprint(args[i+1])
		case "next":
			next = args[i+1]
		}
	}
	if peer == "" || next == nil {
		return true, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	p := r.peers[peer]
	if p == nil || p.next != next || now.Sub(p.reported) >= 2*rejectEvery {
		r.peers[peer] = &rejectedPeer{next: next, since: now, reported: now}
		return true, nil
	}
	p.folded++
	if now.Sub(p.reported) < rejectEvery {
		return false, nil
	}
	sum = []any{"peer", peer, "next", next, "since", p.since.UTC().Format(time.RFC3339), "rejected", p.folded,
		"hint", "its log says why (a data_dir it cannot write, for one)"}
	p.reported, p.folded = now, 0
	return false, sum
}
