package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/plugins/source"
)

var _ api.Backend = (*Agent)(nil)

// Status implements api.Backend.
func (a *Agent) Status(ctx context.Context) api.Status {
	st := api.Status{Version: a.opts.Version, Series: a.fsm.Len()}
	if ns, err := a.node.Status(); err == nil {
		st.Node, st.State, st.Leader = ns.ID, ns.State, a.raftAddress(ns.LeaderAddress)
		st.IsLeader = ns.State == "Leader"
		st.Term, st.ClusterID, st.Halted, st.DataDirError = ns.Term, ns.ClusterID, ns.Halted, ns.DataDirError
		st.Superseded, st.BesideOther = ns.Superseded, ns.BesideOther
		for _, s := range ns.Servers {
			suffrage := "voter"
			if !s.Voter {
				suffrage = "nonvoter"
			}
			st.Peers = append(st.Peers, api.Peer{ID: s.ID, Address: a.raftAddress(s.Address), Suffrage: suffrage, Leader: s.Leader})
		}
		st.Peers, st.Clients = a.clusterStatus(st.Peers, time.Now())
		if ns.LeaderAddress == "" {
			st.NoLeader = noLeader(ns, a.node.JoinError())
		}
	} else {
		st.State = "unknown: " + err.Error()
	}
	if st.Clients == nil {
		st.Clients = []api.ClientAgent{}
	}
	st.Pending = []api.PendingForecast{}
	if why, since := a.act.NotActing(); why != "" {
		st.NotActing, st.NotActingSince = why, &since
	}
	st.Now = time.Now().UTC()
	if r := a.latest.Load(); r != nil {
		c := r.cycle
		st.LastCycle = &c
		for _, p := range r.predict.Pending {
			f := api.FromPending(p, nil)
			st.Pending = append(st.Pending, api.PendingForecast{Policy: f.Policy, Series: f.Series, Status: f.Status, Note: f.Note})
		}
	} else if v, ok := a.fromLeader(ctx); ok {
		for _, f := range v.forecasts {
			if !f.Ready() {
				st.Pending = append(st.Pending, api.PendingForecast{Policy: f.Policy, Series: f.Series, Status: f.Status, Note: f.Note})
			}
		}
	}
	for _, info := range a.fsm.Infos() {
		// A task group's series stop when its job or allocations end (a
		// placeholder released, a batch job done): expected, not a
		// source's trouble; /v1/series still marks them stale.
		if info.Stale && !strings.HasPrefix(info.Key.Locality, "group/") {
			st.Stale = append(st.Stale, api.StaleSeries{Series: info.Key.String(), Since: info.StaleSince, Reason: info.StaleReason})
		}
	}
	for _, s := range a.sources {
		st.Sources = append(st.Sources, s.Name())
	}
	a.cfgMu.RLock()
	st.Policies = len(a.pols)
	a.cfgMu.RUnlock()
	if st.Stale == nil {
		st.Stale = []api.StaleSeries{}
	}
	return st
}

// Policies implements api.Backend.
func (a *Agent) Policies(context.Context) []api.Policy {
	a.cfgMu.RLock()
	defer a.cfgMu.RUnlock()
	out := make([]api.Policy, 0, len(a.pols))
	for _, p := range a.pols {
		ap := api.Policy{
			Name: p.Name, File: p.DeclRange.Filename, Locality: p.Locality.String(),
			Model: p.Forecast.Model, Horizon: p.Forecast.Horizon.String(), Step: p.Forecast.Step.String(),
			Quantile: p.Forecast.Quantile,
			Headroom: api.Headroom{CPU: p.Headroom.CPU, Memory: p.Headroom.Memory},
		}
		for _, s := range p.Schedules {
			ap.Schedules = append(ap.Schedules, s.Name)
		}
		out = append(out, ap)
	}
	return out
}

// Series implements api.Backend.
func (a *Agent) Series(context.Context) []api.Series {
	infos := a.fsm.Infos()
	var names map[string]string
	if a.nomad != nil {
		names = a.nomad.NodeNames()
	}
	out := make([]api.Series, 0, len(infos))
	for _, info := range infos {
		s := api.Series{Series: info.Key.String(), Last: info.LastSample, Stale: info.Stale, StaleReason: info.StaleReason}
		if id, ok := strings.CutPrefix(info.Key.Locality, source.NodeScope); ok {
			s.Node = names[id]
		}
		if e, ok := a.fsm.Extent(info.Key); ok {
			s.Points, s.First = e.Points, e.First
		}
		if p, ok := a.fsm.Latest(info.Key); ok {
			s.LastValue = p.Mean
		}
		out = append(out, s)
	}
	return out
}

// noLeader says why a server that knows no leader has none: it is not
// part of a cluster yet, or its cluster's voters cannot elect one (fewer
// than a quorum of them run and reach each other), with what its last look
// for the other servers found (join).
func noLeader(ns cluster.Status, join error) string {
	voters := 0
	for _, s := range ns.Servers {
		if s.Voter {
			voters++
		}
	}
	var why string
	if voters == 0 {
		why = "not part of a cluster yet"
	} else {
		why = fmt.Sprintf("no leader elected: a leader needs %d of the %d voters running and reaching each other: until then nothing is forecast or moved and no change is accepted", voters/2+1, voters)
	}
	if join != nil {
		why += " (" + join.Error() + ")"
	}
	return why
}

// Forecasts implements api.Backend: every forecast of the last cycle, then
// the policies' series it could not forecast (warming up, stale, without
// data) with why. A follower answers with the leader's last cycle.
func (a *Agent) Forecasts(ctx context.Context) []api.Forecast {
	now := time.Now()
	if v, ok := a.fromLeader(ctx); ok {
		out := append([]api.Forecast(nil), v.forecasts...)
		for i := range out {
			if !out[i].Published.IsZero() {
				out[i].AgeSeconds = now.Sub(out[i].Published).Seconds()
			}
		}
		return out
	}
	r := a.latest.Load()
	if r == nil {
		return nil
	}
	out := make([]api.Forecast, 0, len(r.predict.Forecasts)+len(r.predict.Pending))
	for _, f := range r.predict.Forecasts {
		out = append(out, api.FromForecast(f))
	}
	for _, p := range r.predict.Pending {
		out = append(out, api.FromPending(p, r.predict.Workloads[p.Locality]))
	}
	published := r.cycle.Started.Add(r.cycle.Duration)
	for i := range out {
		out[i].Published, out[i].AgeSeconds = published, now.Sub(published).Seconds()
	}
	return out
}

// Hotspots implements api.Backend.
func (a *Agent) Hotspots(ctx context.Context) []api.Hotspot {
	if v, ok := a.fromLeader(ctx); ok {
		return append([]api.Hotspot(nil), v.hotspots...)
	}
	r := a.latest.Load()
	if r == nil {
		return nil
	}
	out := make([]api.Hotspot, 0, len(r.predict.Hotspots))
	for _, h := range r.predict.Hotspots {
		out = append(out, api.FromHotspot(h))
	}
	return out
}

// Anomalies implements api.Backend.
func (a *Agent) Anomalies(ctx context.Context) []api.Anomaly {
	if v, ok := a.fromLeader(ctx); ok {
		return append([]api.Anomaly(nil), v.anomalies...)
	}
	r := a.latest.Load()
	if r == nil {
		return nil
	}
	out := make([]api.Anomaly, 0, len(r.predict.Anomalies))
	for _, an := range r.predict.Anomalies {
		out = append(out, api.FromAnomaly(an))
	}
	return out
}
