package cluster

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ServerHealth is one server of the configuration as the leader sees it.
type ServerHealth struct {
	Server
	// Info is the server's last answer to the leader, nil when it never
	// answered in this term.
	Info *ServerInfo `json:"info,omitempty"`
	// Healthy is true when the server answered the last check.
	Healthy bool `json:"healthy"`
	// LastContact is when it last answered (or, for one that never has in
	// this term, when the term began or when it entered the
	// configuration, whichever is later).
	LastContact time.Time `json:"last_contact"`
}

// Sound reports whether the server answered the leader's last check and
// said in that answer that it can write to its data directory: the health
// operators are shown (list-peers, the leader's /v1/status), and what a
// server needs to be promoted, to stay a voter while a sound spare could
// take its place, and to be handed leadership first. A server whose disk
// fails still answers (Healthy): it is never removed for it, as a silent
// one is. A release from before ServerInfo.DataDirError says nothing of
// its disk: answered, it is sound.
func (h ServerHealth) Sound() bool {
	return h.Healthy && (h.Info == nil || h.Info.DataDirError == "")
}

// maxPromoteLag is how many entries a non-voter may lag behind the
// leader's commit index and still be promoted.
const maxPromoteLag = 256

// reconciler is the leader's view of every server, for one term.
type reconciler struct {
	n     *Node
	began time.Time
	// checked is set after the term's first round.
	checked bool

	mu     sync.Mutex
	health map[string]*ServerHealth // by ID
	// unsound holds, by ID, since when each server that answers has said
	// in every answer that its data_dir fails.
	unsound map[string]time.Time
}

// Health returns every server of the configuration with what the leader
// knows of it, by ID; nil on a node that does not lead.
func (n *Node) Health() []ServerHealth {
	n.mu.Lock()
	r := n.recon
	n.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ServerHealth, 0, len(r.health))
	for _, h := range r.health {
		c := *h
		if h.Info != nil {
			info := *h.Info
			c.Info = &info
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ServerHealth) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// reconcileLoop runs on the leader for one term: it checks every server's
// health each ReconcileInterval and keeps the configuration in shape.
func (n *Node) reconcileLoop(lctx context.Context) {
	r := &reconciler{n: n, began: time.Now(), health: map[string]*ServerHealth{}, unsound: map[string]time.Time{}}
	n.mu.Lock()
	n.recon = r
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		if n.recon == r {
			n.recon = nil
		}
		n.mu.Unlock()
	}()
	t := time.NewTicker(n.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		r.round(lctx)
		select {
		case <-lctx.Done():
			return
		case <-t.C:
		}
	}
}

// round checks every server, reports them, and makes at most one change to
// the configuration.
func (r *reconciler) round(lctx context.Context) {
	n := r.n
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	conf := f.Configuration().Servers
	now := time.Now()
	self := n.Info()
	var wg sync.WaitGroup
	answers := make([]*ServerInfo, len(conf))
	for i, s := range conf {
		if string(s.ID) == n.cfg.NodeID {
			answers[i] = &self
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(lctx, max(n.cfg.ReconcileInterval, 500*time.Millisecond))
			defer cancel()
			if info, err := n.probe1(ctx, s); err == nil && info.ID == string(s.ID) {
				answers[i] = &info
			}
		}()
	}
	wg.Wait()
	if lctx.Err() != nil {
		return
	}

	r.mu.Lock()
	seen := map[string]bool{}
	list := make([]ServerHealth, len(conf))
	for i, s := range conf {
		id := string(s.ID)
		seen[id] = true
		h := r.health[id]
		if h == nil {
			// Silent, if it is, since the term began or since it entered
			// the configuration, whichever is later.
			h = &ServerHealth{LastContact: r.began}
			if r.checked {
				h.LastContact = now
			}
			r.health[id] = h
		}
		h.Server = Server{ID: id, Address: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: id == n.cfg.NodeID}
		h.Healthy = answers[i] != nil
		if h.Healthy {
			h.Info, h.LastContact = answers[i], now
		}
		// A silent server says nothing of its disk: its outage, if any,
		// goes on counting.
		switch {
		case h.Sound():
			delete(r.unsound, id)
		case h.Healthy && r.unsound[id].IsZero():
			r.unsound[id] = now
		}
		list[i] = *h
	}
	unsound := maps.Clone(r.unsound)
	known := map[string]knownPeer{}
	for id, h := range r.health {
		if !seen[id] {
			delete(r.health, id)
			delete(r.unsound, id)
			delete(unsound, id)
			continue
		}
		k := knownPeer{id: id}
		if h.Info != nil {
			k.name = h.Info.Name
		}
		known[h.Server.Address] = k
	}
	n.unreachable.setKnown(known)
	r.checked = true
	r.mu.Unlock()

	idctx, cancel := context.WithTimeout(lctx, 10*time.Second)
	n.settleClusterID(idctx, list)
	cancel()
	if n.cfg.OnServers != nil {
		n.cfg.OnServers(lctx, list)
	}
	r.change(lctx, list, unsound, now)
}

// probe1 asks one server for its info, through the configured probe.
func (n *Node) probe1(ctx context.Context, s raft.Server) (ServerInfo, error) {
	if n.cfg.Probe != nil {
		return n.cfg.Probe(ctx, string(s.ID), string(s.Address))
	}
	var req any
	if id := n.ClusterID(); id != "" && n.IsLeader() {
		req = infoRequest{LeaderID: n.cfg.NodeID, ClusterID: id, Recoveries: n.Recoveries()}
	}
	var info ServerInfo
	err := n.client.Call(ctx, string(s.Address), OpInfo, req, &info)
	return info, err
}

// change makes at most one change to the configuration, in this order of
// urgency: remove a server gone longer than RemoveAfter; demote a voter
// beyond the count (one gone first, then one whose data_dir fails), or one
// that asks not to vote; promote a sound (ServerHealth.Sound), caught-up
// non-voter while voters are missing, or one has been gone longer than
// PromoteAfter, or one has said for PromoteAfter that its data_dir fails
// (unsound: since when, by ID). A server whose data_dir fails still
// answers, so it is never removed for it. The leader never changes its
// own membership.
func (r *reconciler) change(lctx context.Context, list []ServerHealth, unsound map[string]time.Time, now time.Time) {
	n := r.n
	cfg := n.cfg
	gone := func(h ServerHealth, d time.Duration) bool { return !h.Healthy && d >= 0 && now.Sub(h.LastContact) >= d }
	failing := func(h ServerHealth, d time.Duration) bool {
		since, ok := unsound[h.ID]
		return h.Healthy && !h.Sound() && ok && d >= 0 && now.Sub(since) >= d
	}
	var voters, spares, goneVoters []ServerHealth
	for _, h := range list {
		switch {
		case h.Voter:
			voters = append(voters, h)
			if !h.Leader && (gone(h, cfg.PromoteAfter) || failing(h, cfg.PromoteAfter)) {
				goneVoters = append(goneVoters, h)
			}
		case h.Sound() && h.Info != nil && h.Info.Voter && h.Info.AppliedIndex+maxPromoteLag >= n.raft.CommitIndex():
			spares = append(spares, h)
		}
	}
	// A voter gone replaces first, before one whose data_dir fails.
	slices.SortStableFunc(goneVoters, func(a, b ServerHealth) int {
		switch {
		case !a.Healthy && b.Healthy:
			return -1
		case a.Healthy && !b.Healthy:
			return 1
		}
		return 0
	})
	ctx, cancel := context.WithTimeout(lctx, 10*time.Second)
	defer cancel()
	log := n.logger.Named("reconcile")

	for _, h := range list {
		if !h.Leader && cfg.RemoveAfter > 0 && gone(h, cfg.RemoveAfter) {
			log.Warn("removing a server that has not answered", logKeyNodeID, h.ID, logKeyAddress, h.Address,
				"since", h.LastContact, "remove_after", cfg.RemoveAfter)
			if err := n.RemoveServer(ctx, h.ID); err != nil {
				log.Warn("removal failed", logKeyNodeID, h.ID, logKeyError, err)
			}
			return
		}
	}

	// Demote: a voter that asks not to vote, or a surplus voter (the one
	// gone longest, else one whose data_dir fails, else the last by ID).
	var demote *ServerHealth
	for i, h := range voters {
		if !h.Leader && h.Healthy && h.Info != nil && !h.Info.Voter {
			demote = &voters[i]
			break
		}
	}
	if demote == nil && len(voters) > cfg.Voters {
		cands := slices.DeleteFunc(slices.Clone(voters), func(h ServerHealth) bool { return h.Leader })
		slices.SortFunc(cands, func(a, b ServerHealth) int {
			if a.Healthy != b.Healthy {
				if !a.Healthy {
					return -1
				}
				return 1
			}
			if !a.Healthy && !a.LastContact.Equal(b.LastContact) {
				return a.LastContact.Compare(b.LastContact)
			}
			if as, bs := a.Sound(), b.Sound(); as != bs {
				if !as {
					return -1
				}
				return 1
			}
			return strings.Compare(b.ID, a.ID)
		})
		if len(cands) > 0 {
			demote = &cands[0]
		}
	}
	if demote != nil {
		log.Info("demoting a voter to non-voter", logKeyNodeID, demote.ID, "healthy", demote.Healthy, "sound", demote.Sound(),
			"voters", len(voters), "target", cfg.Voters)
		if err := n.await(ctx, "demote", n.raft.DemoteVoter(raft.ServerID(demote.ID), 0, timeout(ctx))); err != nil {
			log.Warn("demotion failed", logKeyNodeID, demote.ID, logKeyError, err)
		}
		return
	}

	// Promote while voters are missing, or to replace one that is gone;
	// the surplus is demoted in a later round.
	if len(spares) > 0 && (len(voters) < cfg.Voters || len(goneVoters) > 0) {
		p := spares[0]
		why := "voters missing"
		if g := goneVoters; len(voters) >= cfg.Voters && !g[0].Healthy {
			why = "replacing " + g[0].ID + ", silent since " + g[0].LastContact.Format(time.RFC3339)
		} else if len(voters) >= cfg.Voters {
			why = "replacing " + g[0].ID + ", whose data_dir fails since " + unsound[g[0].ID].Format(time.RFC3339)
		}
		log.Info("promoting a non-voter", logKeyNodeID, p.ID, "reason", why, "voters", len(voters), "target", cfg.Voters)
		if err := n.AddVoter(ctx, p.ID, p.Address); err != nil {
			log.Warn("promotion failed", logKeyNodeID, p.ID, logKeyError, err)
		}
	}
}
