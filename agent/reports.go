package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
	nomadsource "github.com/foreshape/foreshape/plugins/source/nomad"
)

// Client agents send the leader one report per cycle through any server
// (a cluster call the followers forward): their node's usage as the local
// Nomad client reads it. The leader keeps the latest report per node in
// memory and its Nomad source reads nodes with a fresh report from there,
// so its requests to Nomad do not grow with the node count; nodes without
// one are polled as before. Reports never enter the Raft log; the samples
// the leader makes of them do, like every other sample.

// opReport is the cluster call client agents report with.
const opReport = "report"

// clientReport is one client agent's report.
type clientReport struct {
	NodeID   string `json:"node_id"`
	NodeName string `json:"node_name"`
	// Name, HTTPAddress and Version describe the agent.
	Name        string `json:"name"`
	HTTPAddress string `json:"http_address"`
	Version     string `json:"version"`
	// Time is the data time the usage was read at.
	Time  time.Time          `json:"time"`
	Usage nomadsource.Report `json:"usage"`
}

// reportReply is the leader's answer: when to report next and what.
type reportReply struct {
	// Interval is the wall time between the leader's cycles.
	Interval time.Duration `json:"interval"`
	// AllocStats asks for each allocation's usage too.
	AllocStats bool `json:"alloc_stats"`
	// Leader and LeaderHTTP name the leader and its HTTP API, which the
	// client agent forwards its API requests to.
	Leader     string `json:"leader"`
	LeaderHTTP string `json:"leader_http"`
}

// Client agents' membership timing: the leader refreshes a client's
// LastSeen in the replicated state at most every clientRefresh, and
// forgets a client silent for clientGoneAfter.
const clientRefresh = 5 * time.Minute

func clientGoneAfter(interval time.Duration) time.Duration { return max(3*interval, time.Minute) }

// reportStore is the leader's latest report per node, for one leadership
// term.
type reportStore struct {
	mu sync.Mutex
	// term is the leadership term the reports arrived in; a new term
	// starts afresh.
	term      uint64
	termStart time.Time
	byNode    map[string]receivedReport
	// maxAge is how long ago (wall time) a report may have arrived and
	// still stand for its node.
	maxAge func() time.Duration
}

type receivedReport struct {
	clientReport
	From     string
	Received time.Time // wall
}

func newReportStore(maxAge func() time.Duration) *reportStore {
	return &reportStore{byNode: map[string]receivedReport{}, maxAge: maxAge}
}

var _ nomadsource.Reports = (*reportStore)(nil)

// NodeReport implements nomadsource.Reports: the node's report when it
// arrived recently enough (maxAge, wall time: the agents report once a
// cycle); now, the data time, is not needed.
func (s *reportStore) NodeReport(nodeID string, _ time.Time) (nomadsource.Report, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byNode[nodeID]
	if !ok || time.Since(r.Received) > s.maxAge() {
		return nomadsource.Report{}, false
	}
	return r.Usage, true
}

// put stores a report received during the term of lctx.
func (s *reportStore) put(lctx context.Context, r clientReport, from string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sameTerm(lctx, now)
	s.byNode[r.NodeID] = receivedReport{clientReport: r, Received: now}
}

// sameTerm starts afresh when lctx is a new term.
func (s *reportStore) sameTerm(lctx context.Context, now time.Time) {
	if t, _ := cluster.Term(lctx); s.term != t || s.termStart.IsZero() {
		s.term, s.termStart = t, now
		clear(s.byNode)
	}
}

// membership returns the commands that bring the replicated client list
// in line with the reports of this term: new clients, changed ones, ones
// whose LastSeen is older than clientRefresh, and ones silent longer than
// clientGoneAfter (counted from the term's start for clients that have not
// reported to this leader yet).
func (s *reportStore) membership(lctx context.Context, have []state.ClientAgent, now time.Time, interval time.Duration) []state.Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sameTerm(lctx, now)
	known := map[string]state.ClientAgent{}
	for _, c := range have {
		known[c.NodeID] = c
	}
	var out []state.Command
	for id, r := range s.byNode {
		c := state.ClientAgent{NodeID: id, NodeName: r.NodeName, Name: r.Name, Address: r.HTTPAddress, Version: r.Version,
			Since: r.Received.UTC(), LastSeen: r.Received.UTC()}
		old, ok := known[id]
		if ok {
			c.Since = old.Since
		}
		if !ok || old.NodeName != c.NodeName || old.Name != c.Name || old.Address != c.Address || old.Version != c.Version ||
			c.LastSeen.Sub(old.LastSeen) >= clientRefresh {
			out = append(out, state.PutClient{Client: c})
		}
	}
	gone := clientGoneAfter(interval)
	for id := range known {
		last := s.termStart
		if r, ok := s.byNode[id]; ok {
			last = r.Received
		}
		if now.Sub(last) > gone {
			delete(s.byNode, id)
			out = append(out, state.RemoveClient{NodeID: id, At: now.UTC(), Reason: fmt.Sprintf("no report for %s", now.Sub(last).Round(time.Second))})
		}
	}
	return out
}

// handleReport takes a client agent's report on the leader.
func (a *Agent) handleReport(_ context.Context, body json.RawMessage) (any, error) {
	lctx, ok := a.node.LeaderContext()
	if !ok {
		addr, id := a.node.LeaderAddress()
		return nil, &cluster.NotLeaderError{LeaderID: id, LeaderAddress: addr}
	}
	var r clientReport
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if r.NodeID == "" || r.Time.IsZero() {
		return nil, errors.New("report: no node id or time")
	}
	a.reports.put(lctx, r, r.HTTPAddress, time.Now())
	self := a.node.Info()
	return reportReply{Interval: a.interval(), AllocStats: a.allocStats, Leader: self.Name, LeaderHTTP: self.HTTPAddress}, nil
}

// fresh counts the reports that stand for their node at now.
func (s *reportStore) fresh(now time.Time) int {
	s.mu.Lock()
	ids := make([]string, 0, len(s.byNode))
	for id := range s.byNode {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := s.NodeReport(id, now); ok {
			n++
		}
	}
	return n
}
