package proof

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Check is one acceptance goal or warning, evaluated on a result.
type Check struct {
	// Name says what is checked ("congestion ≤ 50% of throttle").
	Name string
	// Holds is whether the goal was met (for a warning: whether all is
	// well).
	Holds bool
	// Warning marks a sign of a harness or planner fault rather than a
	// goal.
	Warning bool
	// Detail gives the figures, and by how much a goal was missed.
	Detail string
}

// Checks evaluates foreshape's goals against the other controllers, and the
// warnings (oracle worse than foreshape, foreshape worse than none on
// congestion), for the controllers the result has.
func Checks(res *Result) []Check {
	out := finished(res)
	get := func(name string) (Metrics, bool) {
		for _, r := range res.Runs {
			if r.Controller == name {
				return r.Metrics, true
			}
		}
		return Metrics{}, false
	}
	fs, ok := get("foreshape")
	if !ok {
		return out
	}
	ratio := func(name string, bound float64, label string) {
		other, ok := get(name)
		if !ok {
			return
		}
		a, b := fs.CongestionNodeMinutes, other.CongestionNodeMinutes
		c := Check{Name: fmt.Sprintf("congestion ≤ %s %s", label, name)}
		c.Holds = a <= bound*b
		switch {
		case c.Holds:
			c.Detail = fmt.Sprintf("%.1f vs %.1f node-minutes (%s)", a, b, pct(a, b))
		case b == 0:
			c.Detail = fmt.Sprintf("%.1f node-minutes where %s had none", a, name)
		default:
			c.Detail = fmt.Sprintf("%.1f vs %.1f node-minutes (%s): missed by %.1f node-minutes", a, b, pct(a, b), a-bound*b)
		}
		out = append(out, c)
	}
	ratio("throttle", 0.5, "50% of")
	ratio("reactive", 0.5, "50% of")
	ratio("oracle", 1.5, "1.5× of")
	idle := Check{Name: "reserved_idle_pct ≤ 10", Holds: fs.ReservedIdlePct <= 10}
	idle.Detail = fmt.Sprintf("%.2f%%", fs.ReservedIdlePct)
	if !idle.Holds {
		idle.Detail += fmt.Sprintf(": missed by %.2f points", fs.ReservedIdlePct-10)
	}
	out = append(out, idle)
	if th, ok := get("throttle"); ok {
		c := Check{Name: "migration_p95_s ≤ throttle's", Holds: fs.MigrationP95S <= th.MigrationP95S}
		c.Detail = fmt.Sprintf("%.1f s vs %.1f s", fs.MigrationP95S, th.MigrationP95S)
		if !c.Holds {
			c.Detail += fmt.Sprintf(": missed by %.1f s", fs.MigrationP95S-th.MigrationP95S)
		}
		out = append(out, c)
	}
	if or, ok := get("oracle"); ok {
		c := Check{Name: "oracle no worse than foreshape on congestion", Warning: true,
			Holds: or.CongestionNodeMinutes <= fs.CongestionNodeMinutes}
		c.Detail = fmt.Sprintf("oracle %.1f, foreshape %.1f node-minutes", or.CongestionNodeMinutes, fs.CongestionNodeMinutes)
		out = append(out, c)
	}
	if no, ok := get("none"); ok {
		c := Check{Name: "foreshape no worse than none on congestion", Warning: true,
			Holds: fs.CongestionNodeMinutes <= no.CongestionNodeMinutes}
		c.Detail = fmt.Sprintf("foreshape %.1f, none %.1f node-minutes", fs.CongestionNodeMinutes, no.CongestionNodeMinutes)
		out = append(out, c)
	}
	return out
}

// finished warns of every controller that left requested work undone by
// the end of the run, or moved it outside its target: its figures do not
// compare with the others'.
func finished(res *Result) []Check {
	var out []Check
	for _, r := range res.Runs {
		if len(r.Unfinished) == 0 && r.Outside == 0 {
			continue
		}
		c := Check{Name: r.Controller + " did the requested work", Warning: true}
		var parts []string
		if n := len(r.Unfinished); n > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d requests unfinished (%s)", n, len(res.Workload.Requests), strings.Join(first(r.Unfinished, 3), "; ")))
		}
		if r.Outside > 0 {
			parts = append(parts, fmt.Sprintf("%d transfers landed outside their target", r.Outside))
		}
		c.Detail = strings.Join(parts, ", ")
		out = append(out, c)
	}
	return out
}

func first(xs []string, n int) []string {
	if len(xs) > n {
		return append(append([]string(nil), xs[:n]...), fmt.Sprintf("%d more", len(xs)-n))
	}
	return xs
}

func pct(a, b float64) string {
	if b == 0 {
		if a == 0 {
			return "both zero"
		}
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*a/b)
}

// JSON returns the result in its fixed shape, byte for byte the same for
// the same scenario and seed: {"scenario": NAME, "seed": N, "controllers":
// {"none": {METRIC: value, …}, …}}, controllers in canonical order.
func (res *Result) JSON() ([]byte, error) {
	var b bytes.Buffer
	name, err := json.Marshal(res.Scenario)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, `{"scenario":%s,"seed":%d,"controllers":{`, name, res.Seed)
	for i, r := range res.Runs {
		m, err := json.Marshal(r.Metrics)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", r.Controller, m)
	}
	b.WriteString("}}")
	return b.Bytes(), nil
}
