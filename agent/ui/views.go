package ui

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/policies"
)

// localityView is one panel of the Localities page: a policy's locality
// with a chart per metric.
type localityView struct {
	ID       string
	Policy   string
	Locality string
	Hotspots []api.Hotspot
	Metrics  []metricView
	// Reservations not yet released (planned or held) and requests moving
	// into or out of the locality, the first listShown of each;
	// MoreReservations and MoreRequests count the rest, which the Queue
	// page lists.
	Reservations     []api.Reservation
	Requests         []api.MigrationRequest
	MoreReservations int
	MoreRequests     int
	// Age is how old the leader's forecast was when this server answered
	// (followers); empty when fresh.
	Age string
	// Workload characterises the locality's demand, where known.
	Workload *api.Workload
}

// metricView is one chart with what it is drawn from.
type metricView struct {
	ID      string
	Metric  string
	Title   string
	Chart   chart
	Model   string
	Reason  string
	Events  []string
	Hotspot *api.Hotspot
	Summary string
	// Note says why a metric has no chart this cycle.
	Note string
}

// listShown caps the reservations and the moves a panel lists: a drain's
// dozens of requests pushed the charts off the screen.
const listShown = 5

// staleAfter is the forecast age from which a panel says how old it is:
// two cycles of the shortest step the policies accept.
const staleAfter = 2 * time.Minute

// actState is what the act half adds to the Localities page.
type actState struct {
	requests     []api.MigrationRequest
	reservations []api.Reservation
}

// localitiesView is the Localities page.
type localitiesView struct {
	Panels   []localityView
	Policies []api.Policy
	Waiting  bool // no forecast yet
	// Why says why there is no forecast, when Waiting.
	Why string
}

func (h *Handler) localities(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var act actState
	if h.opts.Act != nil {
		if q, err := h.opts.Act.Queue(ctx); err == nil {
			act.requests = q.Requests
		}
		if rs, err := h.opts.Act.Reservations(ctx); err == nil {
			act.reservations = rs
		}
	}
	v := buildLocalities(h.b.Forecasts(ctx), h.b.Policies(ctx), act)
	st := h.b.Status(ctx)
	if v.Waiting {
		var cycleErr error
		if h.opts.LeaderCycle != nil && !st.IsLeader {
			cycleErr = h.opts.LeaderCycle(ctx)
		}
		v.Why = whyNoForecast(st, len(v.Policies), cycleErr)
	}
	h.render(w, r, http.StatusOK, "localities", page{Title: "Localities", Nav: "localities", Status: st, Data: v})
}

// whyNoForecast says why an agent whose status is st, with pols policies,
// shows no forecast; cycleErr is why it cannot read the leader's last
// cycle, when it does not lead.
func whyNoForecast(st api.Status, pols int, cycleErr error) string {
	switch {
	case pols == 0:
		return "No forecast: this agent has no policy, so it forecasts nothing."
	case !st.IsLeader && st.Leader == "":
		why := "No forecast: this agent knows no leader, and only a leader forecasts"
		if st.NoLeader != "" {
			why += " (" + st.NoLeader + ")"
		}
		return why + "."
	case cycleErr != nil:
		return "No forecast: this agent does not lead and cannot read the leader's last cycle: " + cycleErr.Error() + "."
	case !st.IsLeader:
		return "No forecast yet: the leader (" + st.Leader + ") has published none."
	case st.LastCycle == nil:
		return "No forecast yet: this agent leads and has finished no cycle yet."
	case st.LastCycle.Error != "":
		return "No forecast: the last cycle failed: " + st.LastCycle.Error + "."
	}
	// A cycle lists every policy series, forecast or not (warming up,
	// stale, no data): it had none only when the policies came after it.
	return "No forecast yet: the last cycle had none; the next forecasts the policies loaded since."
}

// buildLocalities groups forecasts into one panel per policy and locality,
// in the order of the policies, metrics sorted by name.
func buildLocalities(fs []api.Forecast, pols []api.Policy, act actState) localitiesView {
	v := localitiesView{Policies: pols, Waiting: len(fs) == 0}
	order := map[string]int{}
	for i, p := range pols {
		order[p.Name] = i
	}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if order[a.Policy] != order[b.Policy] {
			return order[a.Policy] < order[b.Policy]
		}
		if a.Locality != b.Locality {
			return a.Locality < b.Locality
		}
		return a.Metric < b.Metric
	})
	for _, f := range fs {
		if n := len(v.Panels); n == 0 || v.Panels[n-1].Policy != f.Policy || v.Panels[n-1].Locality != f.Locality {
			lv := localityView{ID: anchor(f.Policy, f.Locality), Policy: f.Policy, Locality: f.Locality}
			for _, r := range act.reservations {
				if samePlace(r.Locality, f.Locality) && r.State != api.ReservationReleased {
					if len(lv.Reservations) == listShown {
						lv.MoreReservations++
						continue
					}
					lv.Reservations = append(lv.Reservations, r)
				}
			}
			for _, mr := range act.requests {
				if !api.Finished(mr.State) && (samePlace(mr.Source, f.Locality) || samePlace(mr.Target, f.Locality)) {
					if len(lv.Requests) == listShown {
						lv.MoreRequests++
						continue
					}
					lv.Requests = append(lv.Requests, mr)
				}
			}
			if f.AgeSeconds >= staleAfter.Seconds() {
				lv.Age = (time.Duration(f.AgeSeconds) * time.Second).String()
			}
			v.Panels = append(v.Panels, lv)
		}
		p := &v.Panels[len(v.Panels)-1]
		id := anchor(f.Policy, f.Locality, f.Metric)
		res, moves := actOverlay(f.Locality, act.reservations, act.requests)
		p.Metrics = append(p.Metrics, metricView{
			ID: id, Metric: f.Metric, Title: f.Locality + " " + f.Metric + " (policy " + f.Policy + ")",
			Chart: buildChart(id, chartInput{Forecast: f, Reservations: res, Moves: moves}),
			Model: f.Model, Reason: f.Reason, Events: f.Events, Hotspot: f.Hotspot, Summary: summary(f),
		})
		if !f.Ready() {
			p.Metrics[len(p.Metrics)-1].Note = f.Note
		}
		if p.Workload == nil && f.Workload != nil {
			p.Workload = f.Workload
		}
		if f.Hotspot != nil {
			p.Hotspots = append(p.Hotspots, *f.Hotspot)
		}
	}
	return v
}

// summary says in words what the chart shows, for readers who cannot see it.
func summary(f api.Forecast) string {
	var b strings.Builder
	unit := unitOf(f)
	if n := len(f.History); n > 0 {
		fmt.Fprintf(&b, "Latest %s %s%s at %s. ", f.Metric, trimFloat(f.History[n-1].Value), unit, f.History[n-1].Time.UTC().Format("15:04"))
	}
	if plan := band(f, f.PlanningQuantile); len(plan) > 0 {
		peak, at := plan[0], f.Times[0]
		for i, v := range plan {
			if v > peak {
				peak, at = v, f.Times[i]
			}
		}
		fmt.Fprintf(&b, "Planning quantile %s peaks at %s%s at %s", policies.QuantileName(f.PlanningQuantile), trimFloat(peak), unit, at.UTC().Format("15:04"))
		if f.Line != nil {
			fmt.Fprintf(&b, " against the headroom line at %s%s", trimFloat(*f.Line), unit)
		}
		b.WriteString(". ")
	}
	if hs := f.Hotspot; hs != nil {
		fmt.Fprintf(&b, "Hotspot: crosses the line at %s with probability %.0f%%.", hs.At.UTC().Format("15:04"), hs.Probability*100)
		if hs.Detail != "" {
			// Read on the nodes that stay, over the band above: say so,
			// as the call-out does.
			fmt.Fprintf(&b, " It is %s.", hs.Detail)
		}
	}
	return strings.TrimSpace(b.String())
}

// anchor builds an HTML id from parts: letters and digits kept, the rest dashes.
func anchor(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString("--")
		}
		for _, r := range p {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
				b.WriteRune(r)
			case r == '*':
				b.WriteString("any")
			default:
				b.WriteByte('-')
			}
		}
	}
	return b.String()
}

// clusterView is the Cluster page.
type clusterView struct {
	Status api.Status
}

func (h *Handler) cluster(w http.ResponseWriter, r *http.Request) {
	st := h.b.Status(r.Context())
	h.render(w, r, http.StatusOK, "cluster", page{Title: "Cluster", Nav: "cluster", Status: st, Data: clusterView{Status: st}})
}
