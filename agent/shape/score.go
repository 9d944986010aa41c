package shape

import (
	"fmt"
	"math"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// score orders the queue. With the source policy's migrate.priority weights
// (relieve_hotspot W_r, critical W_c, age W_a):
//
//	score = W_r × (relief − pressure) + W_c × critical + W_a × age
//
//	relief    how much of the source's predicted trouble the move removes,
//	          0–1: 1 for a drain schedule's request (the capacity leaves);
//	          otherwise the moved share of the source's capacity over its
//	          predicted excess above the headroom line (capped at 1), 0 when
//	          the source is not forecast to cross its line
//	pressure  the moved share of the capacity of the target's nodes that
//	          take new work over the target's line: how much of the room
//	          the target may use the arrival takes
//	critical  1 for a job or group with meta foreshape_critical = "true",
//	          else the highest of its job priority and the request's
//	          priority, over 100
//	age       time queued over an hour, capped at 1
//
// parts describes the terms for the decision log.
func (p *planner) score(r *state.MigrationRequest, pol, tp *policies.Policy) (float64, string) {
	w := policies.PriorityWeights{RelieveHotspot: policies.DefaultWeightHotspot, Critical: policies.DefaultWeightCritical, Age: policies.DefaultWeightAge}
	if pol != nil {
		w = pol.Migrate.Priority
	}
	relief := 0.0
	if !r.Deadline.IsZero() {
		relief = 1
	} else if li, ok := p.locality(r.Source); ok {
		for _, metric := range []string{"cpu", "memory"} {
			f := p.forecast(r.Source, metric)
			if f == nil || !f.HasLine {
				continue
			}
			peak := math.Inf(-1)
			for _, v := range f.Planning {
				peak = max(peak, v)
			}
			if excess := peak - f.Line; excess > 0 {
				relief = max(relief, math.Min(1, p.pctOf(li, metric, r.Moved)/excess))
			}
		}
	}
	pressure := 0.0
	if li, ok := p.locality(r.Target); ok {
		for _, metric := range []string{"cpu", "memory"} {
			line := 100.0
			if f := p.forecast(r.Target, metric); f != nil && f.HasLine && f.Line > 0 {
				line = f.Line
			}
			pressure = max(pressure, p.recvPct(li, metric, r.Moved)/line)
		}
	}
	critical := float64(r.Priority) / 100
	for _, m := range r.Moves {
		j, ok := p.c.Job(m.Namespace, m.Job)
		if !ok {
			continue
		}
		if Critical(j, m.Group) {
			critical = 1
			break
		}
		critical = max(critical, float64(j.Priority)/100)
	}
	critical = math.Min(critical, 1)
	age := math.Min(1, float64(p.now.Sub(r.Created))/float64(time.Hour))
	age = math.Max(age, 0)
	s := float64(w.RelieveHotspot*(relief-pressure)) + float64(w.Critical*critical) + float64(w.Age*age)
	parts := fmt.Sprintf("relief %.2f, pressure %.2f, critical %.2f, age %.2f", relief, pressure, critical, age)
	return s, parts
}
