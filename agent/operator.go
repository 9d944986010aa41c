package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
)

var _ api.OperatorBackend = (*Agent)(nil)

// RaftConfiguration implements api.OperatorBackend: the configuration as
// this server knows it, with names and HTTP addresses from the replicated
// membership and, on the leader, each server's health.
func (a *Agent) RaftConfiguration(context.Context) (api.RaftConfiguration, error) {
	st, err := a.node.Status()
	if err != nil {
		return api.RaftConfiguration{}, fmt.Errorf("%v: %w", err, api.ErrUnavailable)
	}
	meta, health := a.serverMeta()
	out := api.RaftConfiguration{Index: st.CommitIndex, AnsweredBy: a.name}
	now := time.Now()
	for _, s := range st.Servers {
		rs := api.RaftServer{ID: s.ID, Address: a.raftAddress(s.Address), Suffrage: suffrage(s.Voter), Leader: s.Leader}
		if m, ok := meta[s.ID]; ok {
			rs.Name, rs.HTTPAddress, rs.Version = m.Name, m.HTTPAddress, m.Version
		}
		if h, ok := health[s.ID]; ok {
			withHealth(&rs, h, now)
		}
		if s.ID == st.ID && st.Superseded != "" {
			rs.Superseded = st.Superseded
		}
		out.Servers = append(out.Servers, rs)
	}
	return out, nil
}

// withHealth adds to rs the leader's view of the server, h: healthy only
// while it answers and can write to its data_dir (ServerHealth.Sound), and
// from its last answer, why its state halted and why its data_dir fails.
func withHealth(rs *api.RaftServer, h cluster.ServerHealth, now time.Time) {
	healthy, last := h.Sound(), h.LastContact
	rs.Healthy, rs.LastContact = &healthy, &last
	age := contactAge(now, last)
	rs.LastContactAgeS = &age
	if h.Info != nil {
		rs.Halted, rs.DataDirError = h.Info.Halted, h.Info.DataDirError
		rs.Superseded = h.Info.Superseded
	}
}

// peerHealth adds to p, a server of the leader's /v1/status, the leader's
// view of it as withHealth does: healthy only while it answers and can
// write to its data_dir, and why it cannot.
func peerHealth(p *api.Peer, h cluster.ServerHealth) {
	healthy := h.Sound()
	p.Healthy = &healthy
	if h.Info != nil {
		p.DataDirError = h.Info.DataDirError
	}
}

// RemovePeer implements api.OperatorBackend. Followers never see it: the
// API passes writes to the leader.
func (a *Agent) RemovePeer(ctx context.Context, id, address string) error {
	st, err := a.node.Status()
	if err != nil {
		return fmt.Errorf("%v: %w", err, api.ErrUnavailable)
	}
	var found *cluster.Server
	for i, s := range st.Servers {
		if (id != "" && s.ID == id) || (id == "" && s.Address == address) {
			found = &st.Servers[i]
		}
	}
	switch {
	case id == "" && address == "":
		return fmt.Errorf("name the server to remove by id or address: %w", api.ErrInvalid)
	case found == nil:
		return fmt.Errorf("no server %s%s in the Raft configuration: %w", id, address, api.ErrNotFound)
	case found.ID == st.ID:
		return fmt.Errorf("%s is the leader answering this request; stop it, and once another server leads, remove it there: %w", found.ID, api.ErrInvalid)
	}
	if err := a.node.RemoveServer(ctx, found.ID); err != nil {
		return fmt.Errorf("%v: %w", err, api.ErrUnavailable)
	}
	a.log.Warn("server removed from the Raft configuration by an operator", "node_id", found.ID, logKeyAddress, found.Address)
	if _, err := (applier{a.node}).Apply(ctx, state.RemoveServer{ID: found.ID}); err != nil {
		a.log.Warn("forgetting the removed server's details failed; the leader retries", logKeyError, err)
	}
	return nil
}

// contactAge is how long before now last was, in seconds to the
// millisecond, by this server's clock (never below 0): the age list-peers
// prints, which a client's own clock would skew.
func contactAge(now, last time.Time) float64 {
	return float64(max(now.Sub(last), 0).Round(time.Millisecond).Milliseconds()) / 1000
}

func suffrage(voter bool) string {
	if voter {
		return "voter"
	}
	return "nonvoter"
}
