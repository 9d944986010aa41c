package state

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// actStore holds the act half's replicated state. Like the series store it
// is changed only by Apply on raft's FSM goroutine and never reads the
// clock: every time arrives in a command.
type actStore struct {
	// modified is the log index of the last act command applied.
	modified  uint64
	clusterID string
	paused    bool
	pausedAt  time.Time
	pausedBy  string

	nextRequest     uint64
	nextReservation uint64
	nextScale       uint64

	requests map[string]*MigrationRequest
	// byResource and byAlloc index the unfinished requests by resource key
	// and by the allocations they move; byOrigin every kept request by its
	// origin key.
	byResource map[string]string
	byAlloc    map[string]string
	byOrigin   map[string]string

	reservations map[string]*Reservation

	intents map[string]*Intent
	// open holds the open intents of intents by ID, so that reading them
	// does not walk the closed ones kept.
	open map[string]*Intent
	// closed lists closed intents oldest first, for pruning.
	closed []string

	scales    []ScaleAction
	cooldowns map[string]time.Time
	estimates map[string]Estimate
	decisions []Decision
}

func newActStore() *actStore {
	return &actStore{
		requests:     map[string]*MigrationRequest{},
		byResource:   map[string]string{},
		byAlloc:      map[string]string{},
		byOrigin:     map[string]string{},
		reservations: map[string]*Reservation{},
		intents:      map[string]*Intent{},
		open:         map[string]*Intent{},
		cooldowns:    map[string]time.Time{},
		estimates:    map[string]Estimate{},
	}
}

// clone returns a deep copy, for snapshots.
func (s *actStore) clone() *actStore {
	out := *s
	out.requests = make(map[string]*MigrationRequest, len(s.requests))
	for id, r := range s.requests {
		c := r.Clone()
		out.requests[id] = &c
	}
	out.byResource = maps.Clone(s.byResource)
	out.byAlloc = maps.Clone(s.byAlloc)
	out.byOrigin = maps.Clone(s.byOrigin)
	out.reservations = make(map[string]*Reservation, len(s.reservations))
	for id, r := range s.reservations {
		c := r.Clone()
		out.reservations[id] = &c
	}
	out.intents = make(map[string]*Intent, len(s.intents))
	out.open = make(map[string]*Intent, len(s.open))
	for id, in := range s.intents {
		c := *in
		out.intents[id] = &c
		if c.Open() {
			out.open[id] = &c
		}
	}
	out.closed = slices.Clone(s.closed)
	out.scales = slices.Clone(s.scales)
	out.cooldowns = maps.Clone(s.cooldowns)
	out.estimates = maps.Clone(s.estimates)
	out.decisions = slices.Clone(s.decisions)
	return &out
}

// seq is the number in an ID such as "mr-12"; IDs sort by it.
func seq(id string) uint64 {
	i := strings.LastIndexByte(id, '-')
	n, _ := strconv.ParseUint(id[i+1:], 10, 64)
	return n
}

func bySeq(a, b string) int {
	if c := cmpU(seq(a), seq(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// sortedBySeq returns a map's IDs in bySeq order, reading each ID's number
// once rather than at every comparison.
func sortedBySeq[V any](m map[string]V) []string {
	type key struct {
		n  uint64
		id string
	}
	keys := make([]key, 0, len(m))
	for id := range m {
		keys = append(keys, key{seq(id), id})
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmpU(a.n, b.n); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.id
	}
	return out
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *actStore) unfinished() int {
	n := 0
	for _, r := range s.requests {
		if !r.State.Terminal() {
			n++
		}
	}
	return n
}

// index adds or removes an unfinished request's resource and allocations.
func (s *actStore) index(r *MigrationRequest, add bool) {
	if add && !r.State.Terminal() {
		s.byResource[r.Resource.Key()] = r.ID
		for _, m := range r.Moves {
			s.byAlloc[m.Alloc] = r.ID
		}
		return
	}
	if s.byResource[r.Resource.Key()] == r.ID {
		delete(s.byResource, r.Resource.Key())
	}
	for _, m := range r.Moves {
		if s.byAlloc[m.Alloc] == r.ID {
			delete(s.byAlloc, m.Alloc)
		}
	}
}

// conflict returns the unfinished request other than self that already
// moves r's resource or one of its allocations, or that came from the same
// origin key.
func (s *actStore) conflict(r *MigrationRequest, self string) error {
	check := func(id string, m *Move) error {
		if id == "" || id == self {
			return nil
		}
		ex := s.requests[id]
		ce := &ConflictError{Resource: r.Resource.String(), Existing: id, State: ex.State}
		if m != nil && ex.Resource.Key() != r.Resource.Key() {
			ce.Alloc, ce.Holds = short(m.Alloc), ex.Resource.String()
			if m.Name != "" {
				ce.Alloc = fmt.Sprintf("%s (%s)", m.Name, short(m.Alloc))
			}
		}
		return ce
	}
	if err := check(s.byResource[r.Resource.Key()], nil); err != nil {
		return err
	}
	for i := range r.Moves {
		if err := check(s.byAlloc[r.Moves[i].Alloc], &r.Moves[i]); err != nil {
			return err
		}
	}
	if r.OriginKey != "" {
		return check(s.byOrigin[r.OriginKey], nil)
	}
	return nil
}

func checkRequest(r *MigrationRequest) error {
	switch {
	case r.Resource.Kind != ResourceAllocation && r.Resource.Kind != ResourceGroup && r.Resource.Kind != ResourceNode:
		return fmt.Errorf("%w: resource kind %q", ErrInvalid, r.Resource.Kind)
	case r.Resource.Kind == ResourceGroup && (r.Resource.Job == "" || r.Resource.Group == ""):
		return fmt.Errorf("%w: a group resource needs a job and a group", ErrInvalid)
	case r.Resource.Kind != ResourceGroup && r.Resource.ID == "":
		return fmt.Errorf("%w: a %s resource needs an ID", ErrInvalid, r.Resource.Kind)
	case r.Target == "" || r.Source == "":
		return fmt.Errorf("%w: a request needs a source and a target", ErrInvalid)
	case r.Priority < 0 || r.Priority > 100:
		return fmt.Errorf("%w: priority %d outside 0-100", ErrInvalid, r.Priority)
	case !slices.Contains(RequestStates, r.State):
		return fmt.Errorf("%w: state %q", ErrInvalid, r.State)
	}
	for _, m := range r.Moves {
		if m.Alloc == "" {
			return fmt.Errorf("%w: a move without an allocation", ErrInvalid)
		}
	}
	return nil
}

func (s *actStore) submit(c SubmitRequest, index uint64) (string, error) {
	r := c.Request.Clone()
	if r.State == "" {
		r.State = RequestPending
	}
	if err := checkRequest(&r); err != nil {
		return "", err
	}
	if !r.State.Queued() {
		return "", fmt.Errorf("%w: a new request is %s", ErrInvalid, r.State)
	}
	if c.Limit > 0 && s.unfinished() >= c.Limit {
		return "", fmt.Errorf("%w: %d unfinished requests (limit %d)", ErrQueueFull, s.unfinished(), c.Limit)
	}
	if err := s.conflict(&r, ""); err != nil {
		return "", err
	}
	s.nextRequest++
	r.ID = "mr-" + strconv.FormatUint(s.nextRequest, 10)
	r.Reason = bound(r.Reason)
	r.Version = index
	s.requests[r.ID] = &r
	s.index(&r, true)
	if r.OriginKey != "" {
		s.byOrigin[r.OriginKey] = r.ID
	}
	return r.ID, nil
}

func (s *actStore) update(c UpdateRequest, index uint64) error {
	cur, ok := s.requests[c.Request.ID]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownRequest, c.Request.ID)
	}
	if cur.Version != c.IfVersion {
		return fmt.Errorf("%w: request %s is at version %d, the update expected %d", ErrStaleVersion, cur.ID, cur.Version, c.IfVersion)
	}
	next := c.Request.Clone()
	if err := checkRequest(&next); err != nil {
		return err
	}
	if !validTransition(cur.State, next.State) {
		return &TransitionError{ID: cur.ID, From: cur.State, To: next.State}
	}
	// Identity and origin never change.
	next.Resource, next.Origin, next.OriginKey, next.Created = cur.Resource, cur.Origin, cur.OriginKey, cur.Created
	s.index(cur, false)
	if err := s.conflict(&next, cur.ID); err != nil {
		s.index(cur, true)
		return err
	}
	next.Reason = bound(next.Reason)
	next.Version = index
	s.requests[next.ID] = &next
	s.index(&next, true)
	return nil
}

func (s *actStore) cancel(c CancelRequest, index uint64) error {
	cur, ok := s.requests[c.ID]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownRequest, c.ID)
	}
	if !cur.State.Queued() {
		return &TransitionError{ID: cur.ID, From: cur.State, To: RequestCancelled}
	}
	next := cur.Clone()
	s.index(cur, false)
	next.State, next.Finished, next.Reason, next.Version = RequestCancelled, c.At, bound(c.Reason), index
	s.requests[next.ID] = &next
	return nil
}

func (s *actStore) rescore(c RescoreRequests, index uint64) (applied, rejected int) {
	for _, it := range c.Items {
		cur, ok := s.requests[it.ID]
		if !ok || !cur.State.Queued() {
			rejected++
			continue
		}
		if it.State != "" && it.State != RequestPending && it.State != RequestWaiting && it.State != RequestReserving {
			rejected++
			continue
		}
		next := cur.Clone()
		next.Score = it.Score
		if it.State != "" {
			next.State = it.State
		}
		if it.Reason != "" {
			next.Reason = bound(it.Reason)
		}
		if it.Estimated > 0 {
			next.Estimated = it.Estimated
		}
		next.Version = index
		s.requests[next.ID] = &next
		applied++
	}
	return applied, rejected
}

func (s *actStore) prune(c PruneRequests) int {
	named := map[string]bool{}
	for _, in := range s.open {
		named[in.Request] = true
	}
	gone := map[string]bool{}
	forget := func(id string, r *MigrationRequest) {
		if r.State.Terminal() && !named[id] {
			gone[id] = true
		}
	}
	if len(c.IDs) > 0 {
		for _, id := range c.IDs {
			if r, ok := s.requests[id]; ok {
				forget(id, r)
			}
		}
	} else {
		for id, r := range s.requests {
			if r.Finished.Before(c.FinishedBefore) {
				forget(id, r)
			}
		}
	}
	for id := range gone {
		r := s.requests[id]
		delete(s.requests, id)
		if r.OriginKey != "" && s.byOrigin[r.OriginKey] == id {
			delete(s.byOrigin, r.OriginKey)
		}
	}
	for id, rs := range s.reservations {
		if gone[rs.Request] && rs.State == ReservationReleased {
			delete(s.reservations, id)
		}
	}
	s.closed = slices.DeleteFunc(s.closed, func(id string) bool {
		if gone[s.intents[id].Request] {
			delete(s.intents, id)
			return true
		}
		return false
	})
	return len(gone)
}

// trimClosed forgets the oldest closed intents beyond MaxClosedIntents,
// except those of a request the queue still holds: what a request's
// intents say (a cordon made, a drain done, a stop made) is read until the
// request is forgotten, so an intent ID is never opened afresh for it.
func (s *actStore) trimClosed() {
	over := len(s.closed) - MaxClosedIntents
	if over <= 0 {
		return
	}
	s.closed = slices.DeleteFunc(s.closed, func(id string) bool {
		if over == 0 {
			return false
		}
		if _, kept := s.requests[s.intents[id].Request]; kept {
			return false
		}
		delete(s.intents, id)
		over--
		return true
	})
}

func (s *actStore) putReservation(c PutReservation, index uint64) (string, error) {
	r := c.Reservation.Clone()
	switch {
	case r.Locality == "" || r.Request == "":
		return "", fmt.Errorf("%w: a reservation needs a locality and a request", ErrInvalid)
	case r.State != ReservationPlanned && r.State != ReservationHeld && r.State != ReservationReleased:
		return "", fmt.Errorf("%w: reservation state %q", ErrInvalid, r.State)
	}
	for _, ch := range r.Chunks {
		if ch.Count < 0 || ch.Size.CPU < 0 || ch.Size.MemoryMB < 0 {
			return "", fmt.Errorf("%w: negative reservation chunk", ErrInvalid)
		}
	}
	if r.ID == "" {
		if c.IfVersion != 0 {
			return "", fmt.Errorf("%w: an update without an ID", ErrInvalid)
		}
		s.nextReservation++
		r.ID = "rs-" + strconv.FormatUint(s.nextReservation, 10)
		if r.Job == "" {
			r.Job = PlaceholderPrefix + r.ID
		}
	} else {
		cur, ok := s.reservations[r.ID]
		if !ok {
			return "", fmt.Errorf("%w %q", ErrUnknownReservation, r.ID)
		}
		if cur.Version != c.IfVersion {
			return "", fmt.Errorf("%w: reservation %s is at version %d, the update expected %d", ErrStaleVersion, cur.ID, cur.Version, c.IfVersion)
		}
		r.Job, r.Request = cur.Job, cur.Request
	}
	r.Reason = bound(r.Reason)
	r.Version = index
	s.reservations[r.ID] = &r
	return r.ID, nil
}

// PlaceholderPrefix starts the Nomad job ID of every placeholder foreshape
// registers; the rest is the reservation ID (and, for placeholders of
// other foreshape clusters, whatever they chose).
const PlaceholderPrefix = "foreshape-reserve-"

func (s *actStore) openIntent(c OpenIntent) (int, error) {
	in := c.Intent
	if in.ID == "" || in.Kind == "" || in.Object == "" {
		return 0, fmt.Errorf("%w: an intent needs an ID, a kind and an object", ErrInvalid)
	}
	if _, dup := s.intents[in.ID]; dup {
		return 0, nil
	}
	in.Outcome, in.Closed, in.Error = "", time.Time{}, ""
	in.Detail, in.Before = bound(in.Detail), bound(in.Before)
	s.intents[in.ID] = &in
	s.open[in.ID] = &in
	return 1, nil
}

func (s *actStore) closeIntent(c CloseIntent) (int, error) {
	in, ok := s.intents[c.ID]
	if !ok {
		return 0, fmt.Errorf("%w: no intent %q", ErrInvalid, c.ID)
	}
	if c.Outcome != OutcomeDone && c.Outcome != OutcomeFailed && c.Outcome != OutcomeNotDone {
		return 0, fmt.Errorf("%w: outcome %q", ErrInvalid, c.Outcome)
	}
	if !in.Open() {
		return 0, nil
	}
	in.Outcome, in.Closed, in.Error = c.Outcome, c.At, bound(c.Error)
	delete(s.open, in.ID)
	s.closed = append(s.closed, in.ID)
	s.trimClosed()
	return 1, nil
}

func (s *actStore) recordScale(c RecordScaleAction) (string, error) {
	a := c.Action
	if a.Policy == "" || a.Scale == "" {
		return "", fmt.Errorf("%w: a scale action needs a policy and a scale", ErrInvalid)
	}
	a.Reason, a.Error = bound(a.Reason), bound(a.Error)
	if a.ID == "" {
		s.nextScale++
		a.ID = "sa-" + strconv.FormatUint(s.nextScale, 10)
		s.scales = append(s.scales, a)
		s.trimScales()
	} else {
		i := slices.IndexFunc(s.scales, func(x ScaleAction) bool { return x.ID == a.ID })
		if i < 0 {
			return "", fmt.Errorf("%w: no scale action %q", ErrInvalid, a.ID)
		}
		s.scales[i] = a
	}
	// The cooldown runs from the latest time an action of the block took
	// effect (or, in flight, was decided): ScaleAction.CooldownFrom.
	key := CooldownKey(a.Policy, a.Scale)
	delete(s.cooldowns, key)
	for _, x := range s.scales {
		if CooldownKey(x.Policy, x.Scale) != key {
			continue
		}
		if from, ok := x.CooldownFrom(); ok && from.After(s.cooldowns[key]) {
			s.cooldowns[key] = from
		}
	}
	return a.ID, nil
}

// trimScales forgets the oldest scale actions past MaxScaleActions, but
// for the latest successful one of each scale block, kept whatever its
// age: a target that cannot tell its count (webhook, exec) is sent the
// count foreshape last set plus the amount, and without it was sent min
// plus the amount once 200 other actions had followed (a receiver setting
// its capacity to the count would have shrunk). The list passes its
// bound only when more scale blocks than it holds have a count to keep.
func (s *actStore) trimScales() {
	over := len(s.scales) - MaxScaleActions
	if over <= 0 {
		return
	}
	last := map[string]int{} // a block's latest successful action
	for i, x := range s.scales {
		if x.Outcome == OutcomeDone && x.Count > 0 {
			last[CooldownKey(x.Policy, x.Scale)] = i
		}
	}
	kept := s.scales[:0]
	for i, x := range s.scales {
		if j, ok := last[CooldownKey(x.Policy, x.Scale)]; over > 0 && (!ok || j != i) {
			over--
			continue
		}
		kept = append(kept, x)
	}
	clear(s.scales[len(kept):])
	s.scales = kept
}

func (s *actStore) appendDecisions(ds []Decision) {
	for _, d := range ds {
		d.Reason = bound(d.Reason)
		s.decisions = append(s.decisions, d)
	}
	if over := len(s.decisions) - MaxDecisions; over > 0 {
		s.decisions = slices.Delete(s.decisions, 0, over)
	}
}

// ActView is a consistent, deep-copied view of the act state at one
// applied index, for the planner and the API.
type ActView struct {
	// Index is the applied index of the whole state; Modified the index of
	// the last change to the act state (it grows only when the queue,
	// reservations, intents, scale actions or decisions change).
	Index     uint64
	Modified  uint64
	ClusterID string
	Paused    bool
	PausedAt  time.Time
	PausedBy  string
	// Requests in submission order.
	Requests []MigrationRequest
	// Reservations in creation order.
	Reservations []Reservation
	// OpenIntents in ID order.
	OpenIntents []Intent
	// Cooldowns map CooldownKey → start of the running cooldown.
	Cooldowns map[string]time.Time
	// ScaleActions, oldest first.
	ScaleActions []ScaleAction
	Estimates    map[string]Estimate
}

// Request returns the request with id from the view.
func (v ActView) Request(id string) (MigrationRequest, bool) {
	for _, r := range v.Requests {
		if r.ID == id {
			return r, true
		}
	}
	return MigrationRequest{}, false
}

// ReservationFor returns the unreleased reservation of a request.
func (v ActView) ReservationFor(request string) (Reservation, bool) {
	for _, r := range v.Reservations {
		if r.Request == request && r.State != ReservationReleased {
			return r, true
		}
	}
	return Reservation{}, false
}

func (s *actStore) view(index uint64) ActView {
	v := ActView{
		Index: index, Modified: s.modified, ClusterID: s.clusterID, Paused: s.paused, PausedAt: s.pausedAt, PausedBy: s.pausedBy,
		Requests:     make([]MigrationRequest, 0, len(s.requests)),
		Reservations: make([]Reservation, 0, len(s.reservations)),
		Cooldowns:    maps.Clone(s.cooldowns),
		ScaleActions: slices.Clone(s.scales),
		Estimates:    maps.Clone(s.estimates),
	}
	// The requests' moves are copied into one array, each request's a
	// slice of it with no room to grow into the next one's.
	ids := sortedBySeq(s.requests)
	n := 0
	for _, id := range ids {
		n += len(s.requests[id].Moves)
	}
	moves := make([]Move, 0, n)
	for _, id := range ids {
		r := *s.requests[id]
		if r.Moves != nil {
			from := len(moves)
			moves = append(moves, r.Moves...)
			r.Moves = moves[from:len(moves):len(moves)]
		}
		r.Exclude = slices.Clone(r.Exclude)
		v.Requests = append(v.Requests, r)
	}
	for _, id := range sortedBySeq(s.reservations) {
		v.Reservations = append(v.Reservations, s.reservations[id].Clone())
	}
	for _, in := range s.open {
		v.OpenIntents = append(v.OpenIntents, *in)
	}
	slices.SortFunc(v.OpenIntents, func(a, b Intent) int { return strings.Compare(a.ID, b.ID) })
	return v
}

// Act returns the act state at one applied index: the planner's and the
// coordinator's consistent read.
func (f *FSM) Act() ActView {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.act.view(f.applied)
}

// ClusterID is the act state's cluster ID (Act().ClusterID), read without
// copying the rest.
func (f *FSM) ClusterID() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.act.clusterID
}

// QueuePaused says whether the queue is paused (Act().Paused), read without
// copying the rest.
func (f *FSM) QueuePaused() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.act.paused
}

// Request returns one request as Act().Request does, without copying the
// rest.
func (f *FSM) Request(id string) (MigrationRequest, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.act.requests[id]
	if !ok {
		return MigrationRequest{}, false
	}
	return r.Clone(), true
}

// ReservationFor returns the unreleased reservation of a request as
// Act().ReservationFor does (the first in creation order), without
// copying the rest.
func (f *FSM) ReservationFor(request string) (Reservation, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var first *Reservation
	for _, r := range f.act.reservations {
		if r.Request == request && r.State != ReservationReleased && (first == nil || bySeq(r.ID, first.ID) < 0) {
			first = r
		}
	}
	if first == nil {
		return Reservation{}, false
	}
	return first.Clone(), true
}

// Estimate returns one move estimate as Act().Estimates[key] holds it,
// without copying the rest.
func (f *FSM) Estimate(key string) (Estimate, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	e, ok := f.act.estimates[key]
	return e, ok
}

// ActModified is the log index of the last change to the act state, cheap
// to poll.
func (f *FSM) ActModified() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.act.modified
}

// Decisions returns the decision log, oldest first.
func (f *FSM) Decisions() []Decision {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.act.decisions)
}

// Intent returns an intent, open or (while kept) closed.
func (f *FSM) Intent(id string) (Intent, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	in, ok := f.act.intents[id]
	if !ok {
		return Intent{}, false
	}
	return *in, true
}

// Intents returns every kept intent: closed ones oldest first, then open
// ones by ID.
func (f *FSM) Intents() []Intent {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Intent, 0, len(f.act.intents))
	for _, id := range f.act.closed {
		out = append(out, *f.act.intents[id])
	}
	for _, id := range slices.Sorted(maps.Keys(f.act.intents)) {
		if in := f.act.intents[id]; in.Open() {
			out = append(out, *in)
		}
	}
	return out
}

// Tx is a read-only view of the whole state under one read lock: series and
// act state at the same applied index. It is valid only inside Read's
// function.
type Tx struct{ f *FSM }

// Read calls fn with a view of the state that no Apply changes while fn
// runs. fn must be quick and must not keep the Tx.
func (f *FSM) Read(fn func(tx Tx)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(Tx{f})
}

// Index is the applied index the view reads at.
func (tx Tx) Index() uint64 { return tx.f.applied }

// Act is FSM.Act inside the view.
func (tx Tx) Act() ActView { return tx.f.act.view(tx.f.applied) }

// Latest is FSM.Latest inside the view.
func (tx Tx) Latest(key Key) (Point, bool) { return tx.f.store.Latest(key) }

// Info is FSM.Info inside the view.
func (tx Tx) Info(key Key) (Info, bool) { return tx.f.store.Info(key) }

// Range is FSM.Range inside the view.
func (tx Tx) Range(key Key, step time.Duration, from, to time.Time) (Grid, error) {
	return tx.f.store.Range(key, step, from, to)
}
