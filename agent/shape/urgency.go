package shape

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// deadlines judges, earliest deadline first and per locality a move goes
// through (its source, and its target when that differs), whether the
// queued requests due there can still wait. Through a locality the
// requests with a deadline are taken in deadline order (ties in score
// order); request k is urgent when
//
//	now + (the remaining work of the moves running through the locality
//	       + the work of every queued request due no later than k) / n
//	    + rounds × step + slack
//
// reaches k's deadline, where n is the parallelism the locality allows
// (its policy's max_parallel, at most the agent's), rounds = ceil(the
// requests due no later than k / n) since each round of n starts at a
// pass, step the locality's policy's forecast step (passes run a step
// apart) and slack the larger of twice the longest of those moves and a
// quarter of migrate.lead_time. Every request due no later than an urgent
// one is urgent too: the urgent one's time assumes they all go first.
// Urgent requests move in score order whatever the forecast says of their
// target, within the max_parallel caps.
//
// A backlog of requests each with its own deadline (a migration wave) is
// judged as a whole this way, not request by request. When even moving
// back to back at n from now some request through a locality could not
// start by its deadline, lateNote says so for that locality: the
// locality's caps cannot meet them all, and an operator should know.
func (p *planner) deadlines(qs []scored) {
	p.urgent = map[string]bool{}
	p.lateNote = map[string]string{}
	through := map[string][]int{}
	for i := range qs {
		r := qs[i].r
		if r.Deadline.IsZero() {
			continue
		}
		through[r.Source] = append(through[r.Source], i)
		if r.Target != r.Source {
			through[r.Target] = append(through[r.Target], i)
		}
	}
	if len(through) == 0 {
		return
	}
	busy := p.runningWork()
	for loc, idx := range through {
		// qs is in score order, so a stable sort keeps ties in it.
		slices.SortStableFunc(idx, func(a, b int) int { return qs[a].r.Deadline.Compare(qs[b].r.Deadline) })
		pol := p.polByLoc[loc]
		n := maxParallel(pol)
		if lim := p.in.Limits.MaxParallel; lim > 0 && lim < n {
			n = lim
		}
		step := time.Minute
		if pol != nil && pol.Forecast.Step > 0 {
			step = pol.Forecast.Step
		}
		work := busy[loc]
		var longest, slack time.Duration
		urgentTo := -1
		late, firstLate := 0, -1
		var firstStart time.Time
		for j := 0; j < len(idx); {
			// A block of requests due at the same time.
			due := qs[idx[j]].r.Deadline
			end := j
			for end < len(idx) && qs[idx[end]].r.Deadline.Equal(due) {
				s := &qs[idx[end]]
				// The earliest it could start: after the work ahead of
				// it, n at a time, back to back from now.
				if startBy := p.now.Add(work / time.Duration(n)); !startBy.Before(due) {
					if late == 0 {
						firstLate, firstStart = idx[end], startBy
					}
					late++
				}
				work += s.est
				longest = max(longest, s.est)
				if s.pol != nil {
					slack = max(slack, s.pol.Migrate.LeadTime/4)
				}
				end++
			}
			rounds := time.Duration((end + n - 1) / n)
			need := work/time.Duration(n) + rounds*step + max(2*longest, slack)
			if !p.now.Add(need).Before(due) {
				urgentTo = end - 1
			}
			j = end
		}
		for j := 0; j <= urgentTo; j++ {
			p.urgent[qs[idx[j]].r.ID] = true
		}
		if late > 0 {
			r := qs[firstLate].r
			p.lateNote[loc] = fmt.Sprintf("%s: %d requests cannot all meet their deadlines at max_parallel %d: %d would start late, the first %s (due %s, its turn %s at the earliest)",
				loc, len(idx), n, late, r.ID, r.Deadline.UTC().Format(time.TimeOnly), firstStart.UTC().Format(time.TimeOnly))
		}
	}
}

// runningWork is, per locality, the estimated work left of the moves
// running through it (as source or target).
func (p *planner) runningWork() map[string]time.Duration {
	out := map[string]time.Duration{}
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if r.State != state.RequestRunning || r.Started.IsZero() {
			continue
		}
		left := r.Started.Add(RequestEstimate(p.in.State.Estimates, r)).Sub(p.now)
		if left <= 0 {
			continue
		}
		out[r.Source] += left
		if r.Target != r.Source {
			out[r.Target] += left
		}
	}
	return out
}

// lateNotes are the notes of the localities a request goes through whose
// caps cannot meet every deadline there ("" when none).
func (p *planner) lateNotes(r *scored) string {
	if r.r.Deadline.IsZero() {
		return ""
	}
	var notes []string
	if n := p.lateNote[r.r.Source]; n != "" {
		notes = append(notes, n)
	}
	if n := p.lateNote[r.r.Target]; n != "" && r.r.Target != r.r.Source {
		notes = append(notes, n)
	}
	return strings.Join(notes, "; ")
}
