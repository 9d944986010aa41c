package migrate

import (
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// decisionLog reads the replicated decision log, oldest first (state.FSM
// has it; the coordinator's Reader does not require it).
type decisionLog interface {
	Decisions() []state.Decision
}

// calledOffSaid reports whether the decision that r's drain window was
// called off (sayCalledOff) was made already: in this pass (ds), by this
// leader (c.recent, the cache of what it found or said), or by an earlier
// leader, as the decision log shows: a restore decision of a request of
// the same window saying so. Kept in the leader's memory only, it was
// said again by the next leader while a node of the window was still to
// be given back (its give-back refused, or the leader stopped before it).
// A decision the log (a ring of state.MaxDecisions) no longer holds is
// said again.
func (c *Coordinator) calledOffSaid(ds []state.Decision, now time.Time, r state.MigrationRequest) bool {
	key := "calledoff/" + windowKey(r)
	if _, said := c.recent[key]; said {
		return true
	}
	if c.saysCalledOff(ds, r) {
		return true
	}
	log, ok := c.cfg.State.(decisionLog)
	if !ok || !c.saysCalledOff(log.Decisions(), r) {
		return false
	}
	c.recent[key] = now
	return true
}

// calledOffSays begins a called-off decision's reason after "drain window
// NAME" (sayCalledOff).
const calledOffSays = " called off: "

// saysCalledOff reports whether one of ds says that r's drain window was
// called off.
func (c *Coordinator) saysCalledOff(ds []state.Decision, r state.MigrationRequest) bool {
	prefix := "drain window " + windowName(r) + calledOffSays
	key := windowKey(r)
	for i := len(ds) - 1; i >= 0; i-- {
		d := &ds[i]
		if d.Kind != "restore" || !strings.HasPrefix(d.Reason, prefix) {
			continue
		}
		// The name has no date: the request tells a day's window from
		// the next day's.
		if d.Request == r.ID {
			return true
		}
		if x, ok := c.cfg.State.Request(d.Request); ok && windowKey(x) == key {
			return true
		}
	}
	return false
}
