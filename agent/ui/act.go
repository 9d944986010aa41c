package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// decisionsShown caps the Decisions page.
const decisionsShown = 200

// queueShown caps the requests the Queue page lists of each state: a full
// queue (queue.max_requests unfinished, a day of finished ones) made each
// live update render thousands of rows.
const queueShown = 50

// notRunning is what the act pages say on an agent without the act half.
const notRunning = "This agent does not run the act half (migration queue, reservations, decisions)."

// NotAppliedError is what an act backend's action (pause, resume,
// cancel, priority) returns when it was made on another server, the
// leader, and this server's copy of the state had not applied it when the
// wait for it ended (a few seconds, or the request's end). The action is
// done: the page after it says that this copy does not show it yet, until
// it does.
type NotAppliedError struct {
	// Index is the leader's Raft index once it made the change; Applied
	// this server's when the wait ended.
	Index, Applied uint64
}

func (e *NotAppliedError) Error() string {
	return fmt.Sprintf("done on the leader (log index %d), but this server's copy of the state had applied the log up to index %d only when it stopped waiting", e.Index, e.Applied)
}

// requestView is one row of the Queue page.
type requestView struct {
	api.MigrationRequest
	Estimated  time.Duration
	Actual     time.Duration // finished − started, or so far while running
	ActualNote string        // "so far" while running
	// Cancelable is true while the request has not started: the API
	// refuses to cancel a running one or set its priority (409), so the
	// page offers neither Cancel nor the priority form.
	Cancelable bool
}

// queueView is the Queue page.
type queueView struct {
	Available bool
	Error     string
	Paused    bool
	// PausedBy and PausedAt say who or what paused the queue, and when
	// (RFC 3339), as GET /v1/queue does; "" when unknown.
	PausedBy string
	PausedAt string
	Requests []requestView
	Counts   []stateCount
	// More counts, per state, the requests past the first Shown (of each
	// state), which the page does not list.
	More  []stateCount
	Shown int
	// ReadOnly is true for a token of acl.read_token_file: the page offers
	// no form, and says why.
	ReadOnly bool
}

type stateCount struct {
	State string
	N     int
}

func (h *Handler) queue(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Queue", Nav: "queue", Notice: notice(r.URL.Query())}
	v := queueView{}
	if h.opts.Act == nil {
		v.Error = notRunning
	} else if q, err := h.opts.Act.Queue(r.Context()); err != nil {
		v.Error = "The queue cannot be read: " + api.ErrorMessage(err)
	} else {
		v = buildQueue(q, h.now(r.Context()))
		if h.readOnly(r) {
			v.ReadOnly = true
			for i := range v.Requests {
				v.Requests[i].Cancelable = false
			}
		}
		// The page's live updates fetch it again with the query of the
		// redirect after an action. One made on the leader that this
		// copy had not applied yet (behind: the leader's index) is said
		// to be so until it has; then a notice the queue no longer bears
		// out (another operator resumed it since, or set the request
		// another priority) is left off.
		if lag := h.behind(r.URL.Query()); lag != "" {
			p.Notice = lag
		} else if !bornOut(q, r.URL.Query()) {
			p.Notice = ""
		}
	}
	p.Data = v
	h.render(w, r, http.StatusOK, "queue", p)
}

// now is the data clock's time, zero when it cannot be read.
func (h *Handler) now(ctx context.Context) time.Time {
	t, err := h.opts.Now(ctx)
	if err != nil {
		h.log.Warn("no data time for the running moves' durations", "error", err)
		return time.Time{}
	}
	return t
}

// buildQueue is the Queue page of q at now, the data clock's time (zero:
// unknown, and a running move's time so far is not shown): the first
// queueShown requests of each state in the queue's order (the highest
// scores of a queued state, the newest of a finished one), and how many
// more.
func buildQueue(q api.Queue, now time.Time) queueView {
	v := queueView{Available: true, Paused: q.Paused, PausedBy: q.PausedBy, Shown: queueShown}
	if q.PausedAt != nil {
		v.PausedAt = q.PausedAt.UTC().Format(time.RFC3339)
	}
	n := map[string]int{}
	for _, mr := range q.Requests {
		if n[mr.State]++; n[mr.State] > queueShown {
			continue
		}
		rv := requestView{MigrationRequest: mr, Cancelable: notStarted(mr.State),
			Estimated: time.Duration(mr.EstimatedDurationS * float64(time.Second))}
		switch {
		case mr.Started == nil:
		case mr.Finished != nil:
			rv.Actual = mr.Finished.Sub(*mr.Started)
		case now.IsZero():
			rv.ActualNote = "unknown so far (no data time)"
		default:
			rv.Actual, rv.ActualNote = max(0, now.Sub(*mr.Started)), "so far"
		}
		v.Requests = append(v.Requests, rv)
	}
	for _, s := range api.States {
		if n[s] > 0 {
			v.Counts = append(v.Counts, stateCount{State: s, N: n[s]})
		}
		if n[s] > queueShown {
			v.More = append(v.More, stateCount{State: s, N: n[s] - queueShown})
		}
	}
	return v
}

// notStarted reports whether a request in state s has not started, the
// only requests the queue lets an operator cancel.
func notStarted(s string) bool {
	return s == api.StatePending || s == api.StateWaiting || s == api.StateReserving
}

// notice turns the query a redirect after an action carries into a sentence.
func notice(q url.Values) string {
	switch q.Get("done") {
	case "paused":
		return "The queue is paused: no new move starts; moves already running continue."
	case "resumed":
		return "The queue is running again."
	case "cancelled":
		return fmt.Sprintf("Request %s is cancelled.", q.Get("id"))
	case "priority":
		if p, ok := priorityOf(q.Get("priority")); ok {
			return fmt.Sprintf("Priority of %s set to %d; the leader scores it again at its next pass.", q.Get("id"), p)
		}
	}
	return ""
}

// bornOut reports whether q still bears out the notice of query, the
// redirect after an action: the queue paused after Pause, running after
// Resume, the request at the priority set after Set. (A cancelled request
// stays cancelled.)
func bornOut(q api.Queue, query url.Values) bool {
	switch query.Get("done") {
	case "paused":
		return q.Paused
	case "resumed":
		return !q.Paused
	case "priority":
		p, _ := priorityOf(query.Get("priority"))
		for _, mr := range q.Requests {
			if mr.ID == query.Get("id") {
				return mr.Priority == p
			}
		}
		return false
	}
	return true
}

// behind says, for the query of the redirect after an action that this
// server's copy of the state had not applied (behind: the leader's index
// once it made it), that this copy does not show it yet, while it has not
// applied as far; empty once it has, and for other queries.
func (h *Handler) behind(q url.Values) string {
	index, err := strconv.ParseUint(q.Get("behind"), 10, 64)
	if err != nil || h.opts.Applied == nil {
		return ""
	}
	applied := h.opts.Applied()
	if applied >= index {
		return ""
	}
	what := map[string]string{"paused": "paused the queue", "resumed": "resumed the queue", "cancelled": "cancelled request " + q.Get("id"),
		"priority": fmt.Sprintf("set the priority of request %s to %s", q.Get("id"), q.Get("priority"))}[q.Get("done")]
	if what == "" {
		return ""
	}
	return fmt.Sprintf("The leader %s, but this server's copy of the state does not show it yet (it has applied the log up to index %d of %d): "+
		"the page below is that copy, and updates when it does.", what, applied, index)
}

// acted ends an action whose outcome is err: once made, it logs msg
// with args and the client's address and redirects to the Queue page,
// with q in the query; an action this server's copy had not applied yet
// (NotAppliedError) adds the leader's index as behind.
func (h *Handler) acted(w http.ResponseWriter, r *http.Request, err error, q url.Values, msg string, args ...any) {
	var na *NotAppliedError
	if errors.As(err, &na) {
		h.log.Warn("dashboard action made on the leader; this server's copy of the state has not applied it yet", "index", na.Index, "applied", na.Applied)
		q.Set("behind", strconv.FormatUint(na.Index, 10))
	} else if err != nil {
		h.actError(w, r, err)
		return
	}
	h.log.Info(msg, append(args, "remote_addr", r.RemoteAddr)...)
	http.Redirect(w, r, "/ui/queue?"+q.Encode(), http.StatusSeeOther)
}

// setPaused handles the Pause and Resume buttons.
func (h *Handler) setPaused(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.checkCSRF(w, r) || !h.actAvailable(w, r) {
			return
		}
		err := h.opts.Act.SetPaused(r.Context(), paused)
		done := "resumed"
		if paused {
			done = "paused"
		}
		h.acted(w, r, err, url.Values{"done": {done}}, "queue "+done+" from the dashboard")
	}
}

// confirmCancel asks before cancelling a request.
func (h *Handler) confirmCancel(w http.ResponseWriter, r *http.Request) {
	if h.readOnly(r) {
		http.Error(w, "permission denied: "+api.DeniedReadOnly, http.StatusForbidden)
		return
	}
	if !h.actAvailable(w, r) {
		return
	}
	mr, err := h.opts.Act.Request(r.Context(), r.PathValue("id"))
	if err != nil {
		h.actError(w, r, err)
		return
	}
	rv := buildQueue(api.Queue{Requests: []api.MigrationRequest{mr}}, h.now(r.Context())).Requests[0]
	h.render(w, r, http.StatusOK, "confirm", page{Title: "Cancel request " + mr.ID, Nav: "queue", Data: rv})
}

// cancel cancels a request after the confirmation form.
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	if !h.checkCSRF(w, r) || !h.actAvailable(w, r) {
		return
	}
	id := r.PathValue("id")
	err := h.opts.Act.Cancel(r.Context(), id)
	h.acted(w, r, err, url.Values{"done": {"cancelled"}, "id": {id}}, "request cancelled from the dashboard", "request", id)
}

// setPriority sets a request's priority from the Queue page's form: a
// whole number from 1 to 100, as the API takes it. Any other value is
// refused (400) before the backend is asked, and nothing changes.
func (h *Handler) setPriority(w http.ResponseWriter, r *http.Request) {
	if !h.checkCSRF(w, r) || !h.actAvailable(w, r) {
		return
	}
	id, value := r.PathValue("id"), r.PostFormValue("priority")
	p, ok := priorityOf(value)
	if !ok {
		h.actError(w, r, &api.InvalidError{Field: "priority",
			Reason: fmt.Sprintf("%q is not a whole number from 1 to 100; nothing changed", value)})
		return
	}
	err := h.opts.Act.SetPriority(r.Context(), id, p)
	h.acted(w, r, err, url.Values{"done": {"priority"}, "id": {id}, "priority": {strconv.Itoa(p)}},
		"request priority set from the dashboard", "request", id, "priority", p)
}

// priorityOf reads a priority as the API takes it: a whole number from 1
// to 100.
func priorityOf(s string) (int, bool) {
	p, err := strconv.Atoi(s)
	return p, err == nil && p >= 1 && p <= 100
}

func (h *Handler) actAvailable(w http.ResponseWriter, r *http.Request) bool {
	if h.opts.Act == nil {
		h.render(w, r, http.StatusServiceUnavailable, "login", page{Title: "Not available", Error: notRunning})
		return false
	}
	return true
}

// actError answers an action the backend refused with the API's status codes.
func (h *Handler) actError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, api.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, api.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, api.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, api.ErrUnavailable):
		code = http.StatusServiceUnavailable
	}
	if code >= 500 {
		h.log.Error("dashboard action failed", "path", r.URL.Path, "error", err)
	}
	h.render(w, r, code, "login", page{Title: "Not done", Error: api.ErrorMessage(err)})
}

// decisionsView is the Decisions page.
type decisionsView struct {
	Available  bool
	Error      string
	Policy     string
	Locality   string
	Policies   []string
	Localities []string
	Decisions  []api.Decision
	Capped     bool
}

func (h *Handler) decisions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := decisionsView{Policy: q.Get("policy"), Locality: q.Get("locality")}
	if h.opts.Act == nil {
		v.Error = notRunning
	} else if all, err := h.opts.Act.Decisions(r.Context(), api.DecisionFilter{}); err != nil {
		v.Error = "The decisions cannot be read: " + api.ErrorMessage(err)
	} else {
		v.Available = true
		pols, locs := map[string]bool{}, map[string]bool{}
		for _, p := range h.b.Policies(r.Context()) {
			pols[p.Name] = true
		}
		f := api.DecisionFilter{Policy: v.Policy, Locality: v.Locality}
		for _, d := range all {
			pols[d.Policy], locs[d.Locality] = true, true
			if f.Match(d) {
				if len(v.Decisions) == decisionsShown {
					v.Capped = true
					continue
				}
				v.Decisions = append(v.Decisions, d)
			}
		}
		v.Policies, v.Localities = sortedKeys(pols), sortedKeys(locs)
	}
	h.render(w, r, http.StatusOK, "decisions", page{Title: "Decisions", Nav: "decisions", Data: v})
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// samePlace reports whether two locality paths name the same place: the
// forecasts write "any" segments as "*" ("dc1/*/web"), requests and
// reservations may leave them out ("dc1/web").
func samePlace(a, b string) bool {
	strip := func(s string) string {
		parts := strings.Split(s, "/")
		kept := parts[:0]
		for _, p := range parts {
			if p != "*" && p != "" {
				kept = append(kept, p)
			}
		}
		return strings.Join(kept, "/")
	}
	return strip(a) == strip(b)
}

// actOverlay is what the act half adds to the charts of one locality.
func actOverlay(locality string, res []api.Reservation, reqs []api.MigrationRequest) ([]span, []mark) {
	var spans []span
	for _, r := range res {
		if !samePlace(r.Locality, locality) || r.State == api.ReservationReleased {
			continue
		}
		label := fmt.Sprintf("reserved %d MHz / %d MiB", r.CPU, r.Memory)
		if r.Request != "" {
			label += " for " + r.Request
		}
		spans = append(spans, span{Start: r.From, End: r.Until, Label: label, Kind: "reservation"})
	}
	var marks []mark
	for _, mr := range reqs {
		if mr.Started == nil {
			continue
		}
		what := fmt.Sprintf("%s %s %s → %s (%s)", mr.ID, mr.Resource, mr.Source, mr.Target, mr.State)
		if samePlace(mr.Target, locality) {
			marks = append(marks, mark{At: *mr.Started, Label: "move in: " + what, Kind: "move-in"})
		}
		if samePlace(mr.Source, locality) {
			marks = append(marks, mark{At: *mr.Started, Label: "move out: " + what, Kind: "move-out"})
		}
	}
	return spans, marks
}
