// Package apitest is an in-memory api.ActBackend for the tests of the API's
// handlers and clients (the CLI, the dashboard). It keeps the promises the
// agent's backend makes: submissions are checked against a small known
// cluster, a resource already queued is a conflict naming the request, the
// queue is bounded, every change raises the index and wakes blocking
// queries.
//
// It must never be used outside tests: it moves nothing.
package apitest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// Act is the fake backend. Its exported fields describe the cluster
// submissions are checked against; set them before serving.
type Act struct {
	// Allocs, Groups ("job/group") and Nodes map what a submission may name
	// to the locality it is in.
	Allocs, Groups, Nodes map[string]string
	// Localities are the known targets.
	Localities []string
	// Max bounds the requests that have not finished; 0 means 100.
	Max int
	// Start is the time the first request is created at; each later one
	// is a second after the previous.
	Start time.Time

	mu           sync.Mutex
	index        uint64
	changed      chan struct{} // closed at every change
	paused       bool
	pausedAt     time.Time
	requests     []api.MigrationRequest
	reservations []api.Reservation
	decisions    []api.Decision // oldest first
	next         int
}

var _ api.ActBackend = (*Act)(nil)

// New returns a fake with a small cluster: allocations a1 (dc1) and a2
// (dc2), group web/frontend (dc1), node n1 (dc1); localities dc1, dc2, dc3.
func New() *Act {
	return &Act{
		Allocs:     map[string]string{"a1": "dc1", "a2": "dc2"},
		Groups:     map[string]string{"web/frontend": "dc1"},
		Nodes:      map[string]string{"n1": "dc1"},
		Localities: []string{"dc1", "dc2", "dc3"},
		Start:      time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC),
		index:      1,
		changed:    make(chan struct{}),
	}
}

// bump records a change; call with mu held.
func (a *Act) bump() {
	a.index++
	close(a.changed)
	a.changed = make(chan struct{})
}

// Queue implements api.ActBackend.
func (a *Act) Queue(ctx context.Context) (api.Queue, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	reqs := append([]api.MigrationRequest(nil), a.requests...)
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].Score > reqs[j].Score })
	q := api.Queue{Paused: a.paused, Requests: reqs, Index: a.index}
	if a.paused {
		// As the agent: SetPaused is an operator's (the API, the CLI,
		// the dashboard).
		at := a.pausedAt
		q.PausedBy, q.PausedAt = "operator", &at
	}
	return q, nil
}

// Request implements api.ActBackend.
func (a *Act) Request(ctx context.Context, id string) (api.MigrationRequest, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i := a.find(id); i >= 0 {
		return a.requests[i], nil
	}
	return api.MigrationRequest{}, fmt.Errorf("no migration request %q: %w", id, api.ErrNotFound)
}

func (a *Act) find(id string) int {
	for i, mr := range a.requests {
		if mr.ID == id {
			return i
		}
	}
	return -1
}

// Submit implements api.ActBackend.
func (a *Act) Submit(ctx context.Context, s api.Submission) (string, error) {
	if err := s.Check(); err != nil {
		return "", err
	}
	var resource, source string
	var ok bool
	switch {
	case s.Allocation != "":
		resource = api.AllocResource(s.Allocation)
		if source, ok = a.Allocs[s.Allocation]; !ok {
			return "", &api.InvalidError{Field: "allocation", Reason: fmt.Sprintf("no allocation %q", s.Allocation)}
		}
	case s.Job != "":
		resource = api.JobResource(s.Job, s.Group)
		if source, ok = a.Groups[s.Job+"/"+s.Group]; !ok {
			return "", &api.InvalidError{Field: "job", Reason: fmt.Sprintf("no job %q with group %q", s.Job, s.Group)}
		}
	default:
		resource = api.NodeResource(s.Node)
		if source, ok = a.Nodes[s.Node]; !ok {
			return "", &api.InvalidError{Field: "node", Reason: fmt.Sprintf("no node %q", s.Node)}
		}
	}
	known := false
	for _, l := range a.Localities {
		known = known || l == s.Target
	}
	switch {
	case !known:
		return "", &api.InvalidError{Field: "target", Reason: fmt.Sprintf("no locality %q", s.Target)}
	case s.Target == source:
		return "", &api.InvalidError{Field: "target", Reason: fmt.Sprintf("%q is where %s already is", s.Target, resource)}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	open := 0
	for _, mr := range a.requests {
		if api.Finished(mr.State) {
			continue
		}
		open++
		if mr.Resource == resource {
			return "", &api.ConflictError{Existing: mr.ID, Resource: resource, State: string(mr.State)}
		}
	}
	bound := a.Max
	if bound == 0 {
		bound = 100
	}
	if open >= bound {
		return "", fmt.Errorf("%d requests wait or run (the bound is %d): %w", open, bound, api.ErrQueueFull)
	}
	a.next++
	prio := s.Priority
	if prio == 0 {
		prio = 50
	}
	reason := s.Reason
	if reason == "" {
		reason = "submitted by an operator"
	}
	mr := api.MigrationRequest{ID: fmt.Sprintf("mr-%d", a.next), Resource: resource, Source: source, Target: s.Target,
		State: api.StatePending, Priority: prio, Reason: reason, EstimatedDurationS: 60,
		Created: a.Start.Add(time.Duration(a.next-1) * time.Second)}
	a.requests = append(a.requests, mr)
	a.bump()
	return mr.ID, nil
}

// Cancel implements api.ActBackend.
func (a *Act) Cancel(ctx context.Context, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	mr, err := a.notStarted(id, "only a request that has not started can be cancelled")
	if err != nil {
		return err
	}
	mr.State, mr.Reason = api.StateCancelled, "cancelled by an operator"
	a.bump()
	return nil
}

// notStarted is request id, held under a.mu, when it has not started:
// ErrNotFound for an unknown one, ErrConflict saying why (only …) for one
// that runs or has finished.
func (a *Act) notStarted(id, only string) (*api.MigrationRequest, error) {
	i := a.find(id)
	if i < 0 {
		return nil, fmt.Errorf("no migration request %q: %w", id, api.ErrNotFound)
	}
	mr := &a.requests[i]
	if api.Finished(mr.State) || mr.State == api.StateRunning {
		return nil, fmt.Errorf("migration request %s is %s; %s: %w", id, mr.State, only, api.ErrConflict)
	}
	return mr, nil
}

// SetPriority implements api.ActBackend.
func (a *Act) SetPriority(ctx context.Context, id string, priority int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	mr, err := a.notStarted(id, "only the priority of a request that has not started can be set")
	if err != nil {
		return err
	}
	mr.Priority = priority
	a.bump()
	return nil
}

// SetPaused implements api.ActBackend.
func (a *Act) SetPaused(ctx context.Context, paused bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.paused != paused {
		a.paused = paused
		if paused {
			a.pausedAt = time.Now().UTC().Truncate(time.Second)
		}
		a.bump()
	}
	return nil
}

// Reservations implements api.ActBackend.
func (a *Act) Reservations(ctx context.Context) ([]api.Reservation, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]api.Reservation(nil), a.reservations...), nil
}

// Decisions implements api.ActBackend.
func (a *Act) Decisions(ctx context.Context, f api.DecisionFilter) ([]api.Decision, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []api.Decision
	for i := len(a.decisions) - 1; i >= 0; i-- {
		if f.Match(a.decisions[i]) {
			out = append(out, a.decisions[i])
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out, nil
}

// WaitIndex implements api.ActBackend. An index past a's is none it gave
// (as an index past the leader's log is none of the cluster's): it is
// answered at once, with a's.
func (a *Act) WaitIndex(ctx context.Context, index uint64) (uint64, error) {
	for {
		a.mu.Lock()
		cur, ch := a.index, a.changed
		a.mu.Unlock()
		if cur != index {
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return cur, nil
		case <-ch:
		}
	}
}

// Update changes a request as the coordinator would (state, reason, score,
// start and end), and wakes blocking queries. It reports whether the
// request exists.
func (a *Act) Update(id string, change func(*api.MigrationRequest)) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := a.find(id)
	if i < 0 {
		return false
	}
	change(&a.requests[i])
	a.bump()
	return true
}

// AddReservation records a reservation.
func (a *Act) AddReservation(r api.Reservation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reservations = append(a.reservations, r)
	a.bump()
}

// AddDecision appends a decision to the log.
func (a *Act) AddDecision(d api.Decision) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.decisions = append(a.decisions, d)
	a.bump()
}
