package shape

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// originSettle is how long after a spread's peak or a rebalance's crossing
// its origin is taken as past: the planner submits for instants its
// forecasts still reach, which begin at the last collected step.
const originSettle = time.Hour

// Spent reports whether the planner has no more use for the finished
// request r at now, given the policies: its origin can no longer submit a
// request (a drain window has ended; a spread's peak or a rebalance's
// crossing is an hour past), and the work it moved no longer counts at its
// target or against its source's groups (a season after it finished, as
// landing reads). A request the planner still reads must not be
// forgotten: its origin key is what keeps the same request from being
// submitted twice.
func Spent(r *state.MigrationRequest, now time.Time, pols []*policies.Policy) bool {
	if !r.State.Terminal() || r.Finished.IsZero() || now.Before(r.Finished.Add(seasonOf(pols, r.Target))) {
		return false
	}
	return originPast(r.OriginKey, now, pols)
}

// seasonOf is the longest season of the first policy shaping loc (the one
// the planner reads it with): a day when it detects its seasons.
func seasonOf(pols []*policies.Policy, loc string) time.Duration {
	for _, pol := range pols {
		if pol == nil || pol.Locality.String() != loc {
			continue
		}
		if len(pol.Forecast.Seasonality) > 0 {
			return slices.Max(pol.Forecast.Seasonality)
		}
		break
	}
	return 24 * time.Hour
}

// originPast reads the instant an origin key names (see drainWindow,
// spread and rebalance for how they are made): a drain window's start,
// a peak or a crossing. A key it cannot read (an operator's request has
// none) submits nothing again.
func originPast(key string, now time.Time, pols []*policies.Policy) bool {
	parts := strings.Split(key, "/")
	switch {
	case len(parts) >= 5 && parts[0] == "schedule":
		start, err := strconv.ParseInt(parts[3], 10, 64)
		if err != nil {
			return true
		}
		for _, pol := range pols {
			if pol == nil || pol.Name != parts[1] {
				continue
			}
			for _, s := range pol.Schedules {
				if s.Name == parts[2] {
					return !now.Before(time.Unix(start, 0).Add(s.Duration))
				}
			}
		}
		// The policy or its schedule is gone: nothing submits for it.
		return true
	case len(parts) >= 4 && (parts[0] == "spread" || parts[0] == "rebalance"):
		at, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return true
		}
		return !now.Before(time.Unix(at, 0).Add(originSettle))
	}
	return true
}
