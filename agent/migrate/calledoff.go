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

// calledOffWindow is what calledOffWindows reads of one drain window.
type calledOffWindow struct {
	// off: an operator called the window off (operatorCancelled): every
	// request of it was cancelled before it started, the last cancel an
	// operator's.
	off bool
	// firstDue: the window's first request in the view has a deadline,
	// as operatorCancelled asks of the request it is given
	// (windowCalledOff asks it of the first).
	firstDue bool
	// live: a request of the window is not cancelled, or started.
	live bool
	// byOperator and byOthers are the last cancels of the window, an
	// operator's and any other.
	byOperator, byOthers time.Time
}

// calledOffRead is calledOffWindows' reading of one view: requests is
// the view's first request, which tells one view (each state.Reader.Act
// is a copy) from another.
type calledOffRead struct {
	requests *state.MigrationRequest
	n        int
	windows  map[string]calledOffWindow
}

// calledOffWindows reads, by window key, which drain windows of view an
// operator called off, in one pass over its requests, and keeps the
// reading while it is asked about the same view. operatorCancelled and
// windowCalledOff read it: asked per node owed back (owedBack,
// restoreWindows, windowHold), each read every request of the queue: a
// pass of 1,000 owed nodes over 10,000 requests took 4.3 to 12 s, read
// once a view 9 to 57 ms (BenchmarkCalledOffPerOwedNode, two shared
// cores).
func (c *Coordinator) calledOffWindows(view state.ActView) map[string]calledOffWindow {
	if len(view.Requests) == 0 {
		return nil
	}
	if c.offRead.requests == &view.Requests[0] && c.offRead.n == len(view.Requests) {
		return c.offRead.windows
	}
	windows := map[string]calledOffWindow{}
	for i := range view.Requests {
		x := &view.Requests[i]
		if x.Origin != "schedule" {
			continue
		}
		key := windowKey(*x)
		w, seen := windows[key]
		if !seen {
			w.firstDue = !x.Deadline.IsZero()
		}
		if x.State != state.RequestCancelled || !x.Started.IsZero() {
			w.live = true
		}
		last := &w.byOthers
		if x.Reason == OperatorCancel {
			last = &w.byOperator
		}
		if x.Finished.After(*last) {
			*last = x.Finished
		}
		windows[key] = w
	}
	for key, w := range windows {
		w.off = !w.live && !w.byOperator.IsZero() && !w.byOperator.Before(w.byOthers)
		windows[key] = w
	}
	c.offRead = calledOffRead{requests: &view.Requests[0], n: len(view.Requests), windows: windows}
	return windows
}
