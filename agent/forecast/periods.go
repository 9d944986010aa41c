package forecast

import (
	"fmt"
	"sort"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/season"
)

// seasonalPeriods returns the seasonal periods, in steps, a model should use
// for y, and a sentence saying why. Periods given in Options are used when
// the history holds two full cycles; otherwise they are detected. With less
// than two days of history, models go non-seasonal (cold start).
func seasonalPeriods(y []float64, o Options) ([]int, string) {
	step := o.step()
	n := len(y)
	if len(o.Seasonality) > 0 {
		var ps []int
		var short []string
		for _, d := range o.Seasonality {
			m := int(d / step)
			if m < 2 {
				continue
			}
			if 2*m > n {
				short = append(short, d.String())
				continue
			}
			ps = append(ps, m)
		}
		sort.Ints(ps)
		if len(ps) == 0 {
			return nil, fmt.Sprintf("cold start: %s of history, fewer than two seasons of %v; non-seasonal", span(n, step), short)
		}
		return ps, fmt.Sprintf("configured seasons %v", durations(ps, step))
	}
	ss := season.Detect(y, step)
	var ps []int
	for _, s := range ss {
		ps = append(ps, s.Steps)
	}
	sort.Ints(ps)
	d := o.daily()
	switch {
	case len(ps) > 0:
		return ps, fmt.Sprintf("detected seasons %v (strength %.2f)", durations(ps, step), ss[0].Strength)
	case 2*d > n:
		return nil, fmt.Sprintf("cold start: %s of history, fewer than two daily seasons; non-seasonal", span(n, step))
	default:
		return nil, "no significant seasonality detected"
	}
}

func span(n int, step time.Duration) string {
	d := time.Duration(n) * step
	if d >= 24*time.Hour {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.String()
}

func durations(ps []int, step time.Duration) []string {
	out := make([]string, len(ps))
	for i, m := range ps {
		d := time.Duration(m) * step
		if d%(24*time.Hour) == 0 {
			out[i] = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
		} else {
			out[i] = d.String()
		}
	}
	return out
}
