package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Blocking queries on /v1/queue: ?index=N waits until the queue changes
// past N, at most ?wait= (default DefaultWait, capped at MaxWait).
const (
	DefaultWait = 5 * time.Minute
	MaxWait     = 10 * time.Minute
	// IndexHeader carries the act state's index on /v1/queue answers.
	IndexHeader = "X-Foreshape-Index"
	// maxSubmission bounds the body of POST /v1/queue.
	maxSubmission = 64 << 10
)

func (s *Server) routeAct() {
	s.route("GET /v1/queue", s.act(s.queueList), "state", "locality", "index", "wait")
	s.route("POST /v1/queue", s.act(s.queueSubmit))
	s.route("POST /v1/queue/pause", s.act(s.queuePause(true)))
	s.route("POST /v1/queue/resume", s.act(s.queuePause(false)))
	s.route("GET /v1/queue/{id}", s.act(s.queueShow))
	s.route("DELETE /v1/queue/{id}", s.act(s.queueCancel))
	s.route("PATCH /v1/queue/{id}", s.act(s.queueSetPriority))
	for _, path := range []string{"/v1/queue/pause", "/v1/queue/resume"} {
		s.notAllowed(http.MethodGet, path)
		s.notAllowed(http.MethodDelete, path)
		s.notAllowed(http.MethodPatch, path)
	}
	s.route("GET /v1/reservations", s.act(s.reservations), "policy", "locality", "state", "request")
	s.route("GET /v1/decisions", s.act(s.decisions), "policy", "locality", "kind", "request", "since", "limit")
}

// act answers 503 when the agent runs no act backend.
func (s *Server) act(next func(http.ResponseWriter, *http.Request, ActBackend)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b := s.opts.Act
		if b == nil {
			writeError(w, http.StatusServiceUnavailable, "this agent does not run the migration queue")
			return
		}
		next(w, r, b)
	}
}

func (s *Server) queueList(w http.ResponseWriter, r *http.Request, b ActBackend) {
	q := r.URL.Query()
	for _, st := range q["state"] {
		if !knownState(st) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("state: %q is not one of %s", st, strings.Join(States, ", ")))
			return
		}
	}
	if !localityOK(w, q.Get("locality")) {
		return
	}
	// wait is checked even without index, which it only bounds: a
	// malformed one is a mistake either way.
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Has("index") {
		index, err := strconv.ParseUint(q.Get("index"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("index: %q is not a non-negative integer", q.Get("index")))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		unhook := context.AfterFunc(s.stopping, cancel)
		_, err = b.WaitIndex(ctx, index)
		unhook()
		cancel()
		if err != nil {
			s.backendError(w, r, err)
			return
		}
		if r.Context().Err() != nil {
			return // the client went away
		}
	}
	queue, err := b.Queue(r.Context())
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	states, locality := q["state"], q.Get("locality")
	if len(states) > 0 || locality != "" {
		kept := queue.Requests[:0:0]
		for _, mr := range queue.Requests {
			if (len(states) == 0 || contains(states, mr.State)) && (locality == "" || InLocality(mr.Source, locality) || InLocality(mr.Target, locality)) {
				kept = append(kept, mr)
			}
		}
		queue.Requests = kept
	}
	queue.Requests = nonNil(queue.Requests)
	w.Header().Set(IndexHeader, strconv.FormatUint(queue.Index, 10))
	s.writeJSON(w, r, queue)
}

// parseWait is a blocking query's ?wait=: DefaultWait when it is absent
// or 0, as Nomad takes wait=0 (a query that waited nothing would answer
// at once, and a client that loops on it would ask without pause), and
// MaxWait at most.
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return DefaultWait, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("wait: %q is not a duration such as 30s", v)
	}
	if d == 0 {
		return DefaultWait, nil
	}
	return min(d, MaxWait), nil
}

// localityOK answers 400 naming the field when a ?locality= filter is not
// a locality path, and says whether it is one (or empty). CheckLocality's
// error begins `locality "VALUE"`, which names the parameter.
func localityOK(w http.ResponseWriter, locality string) bool {
	if err := CheckLocality(locality); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

func knownState(s string) bool { return contains(States, s) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (s *Server) queueSubmit(w http.ResponseWriter, r *http.Request, b ActBackend) {
	var sub Submission
	if !decodeBody(w, r, maxSubmission, &sub, "a migration request", "a migration request is a few hundred bytes") {
		return
	}
	if err := sub.Check(); err != nil {
		s.backendError(w, r, err)
		return
	}
	id, err := b.Submit(r.Context(), sub)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	s.log.Info("migration request submitted", "request_id", id, "target", sub.Target, "remote_addr", caller(r))
	w.Header().Set("Location", "/v1/queue/"+id)
	s.writeJSONStatus(w, r, http.StatusCreated, Submitted{ID: id})
}

func (s *Server) queueShow(w http.ResponseWriter, r *http.Request, b ActBackend) {
	mr, err := b.Request(r.Context(), r.PathValue("id"))
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	s.writeJSON(w, r, mr)
}

func (s *Server) queueCancel(w http.ResponseWriter, r *http.Request, b ActBackend) {
	id := r.PathValue("id")
	if err := b.Cancel(r.Context(), id); err != nil {
		s.backendError(w, r, err)
		return
	}
	s.log.Info("migration request cancelled", "request_id", id, "remote_addr", caller(r))
	mr, err := b.Request(r.Context(), id)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	s.writeJSON(w, r, mr)
}

// decodeBody reads r's body, at most limit bytes, into v: one JSON object
// of exactly v's fields, each in its own case and once (exactKeys). It
// answers 413 (saying hint) or 400 (naming what the body should be) and
// returns false when it cannot.
func decodeBody[T any](w http.ResponseWriter, r *http.Request, limit int64, v *T, what, hint string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d KiB; %s", limit>>10, hint))
		return false
	}
	if err == nil {
		err = exactKeys(body, *v)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err == nil {
		err = dec.Decode(v)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "body: not "+what+": "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "body: more than one JSON value")
		return false
	}
	return true
}

// maxPriorityChange bounds the body of PATCH /v1/queue/{id}.
const maxPriorityChange = 4 << 10

func (s *Server) queueSetPriority(w http.ResponseWriter, r *http.Request, b ActBackend) {
	var pc PriorityChange
	if !decodeBody(w, r, maxPriorityChange, &pc, `a priority change ({"priority": N})`, `a priority change is {"priority": N}`) {
		return
	}
	if err := pc.Check(); err != nil {
		s.backendError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if err := b.SetPriority(r.Context(), id, pc.Priority); err != nil {
		s.backendError(w, r, err)
		return
	}
	s.log.Info("migration request priority set", "request_id", id, "priority", pc.Priority, "remote_addr", caller(r))
	mr, err := b.Request(r.Context(), id)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	s.writeJSON(w, r, mr)
}

func (s *Server) queuePause(paused bool) func(http.ResponseWriter, *http.Request, ActBackend) {
	return func(w http.ResponseWriter, r *http.Request, b ActBackend) {
		if err := b.SetPaused(r.Context(), paused); err != nil {
			s.backendError(w, r, err)
			return
		}
		s.log.Info("migration queue", "paused", paused, "remote_addr", caller(r))
		queue, err := b.Queue(r.Context())
		if err != nil {
			s.backendError(w, r, err)
			return
		}
		queue.Requests = nonNil(queue.Requests)
		w.Header().Set(IndexHeader, strconv.FormatUint(queue.Index, 10))
		s.writeJSON(w, r, queue)
	}
}

func (s *Server) reservations(w http.ResponseWriter, r *http.Request, b ActBackend) {
	q := r.URL.Query()
	policy, locality, state, request := q.Get("policy"), q.Get("locality"), q.Get("state"), q.Get("request")
	if state != "" && !contains(ReservationStates, state) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("state: %q is not one of %s", state, strings.Join(ReservationStates, ", ")))
		return
	}
	if !localityOK(w, locality) {
		return
	}
	all, err := b.Reservations(r.Context())
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	kept := all[:0:0]
	for _, res := range all {
		if (policy == "" || res.Policy == policy) && (locality == "" || InLocality(res.Locality, locality)) &&
			(state == "" || res.State == state) && (request == "" || res.Request == request) {
			kept = append(kept, res)
		}
	}
	s.writeJSON(w, r, Reservations{Reservations: nonNil(kept)})
}

func (s *Server) decisions(w http.ResponseWriter, r *http.Request, b ActBackend) {
	q := r.URL.Query()
	f := DecisionFilter{Policy: q.Get("policy"), Locality: q.Get("locality"), Kind: q.Get("kind"), Request: q.Get("request")}
	if !localityOK(w, f.Locality) {
		return
	}
	if f.Kind != "" && !slices.Contains(DecisionKinds, f.Kind) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("kind: %q is not one of %s", f.Kind, strings.Join(DecisionKinds, ", ")))
		return
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since: %q is not an RFC 3339 time such as 2026-01-05T09:00:00Z", v))
			return
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: %q is not a non-negative integer", v))
			return
		}
		f.Limit = n
	}
	ds, err := b.Decisions(r.Context(), f)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	s.writeJSON(w, r, Decisions{Decisions: nonNil(ds)})
}

// exactKeys refuses a JSON object whose keys are not spelt exactly as v's
// fields' json names, or that gives one twice: Go's decoder matches keys
// regardless of case and lets the last of a repeated key win, so
// {"node":"a","node":"b"} queued node b without a word. A body that is
// not an object is left to the decoder's own error.
func exactKeys(body []byte, v any) error {
	var names []string // the fields' exact names
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	// The name key stands for as Go's decoder reads it: by Unicode case
	// folding, as strings.EqualFold does ("reaſon", with a long s, is
	// reason to it; strings.ToLower missed it).
	field := func(key string) (string, bool) {
		for _, n := range names {
			if strings.EqualFold(n, key) {
				return n, true
			}
		}
		return "", false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		if exact, ok := field(key); ok && exact != key {
			return fmt.Errorf("field %q: did you mean %q? names are case-sensitive", key, exact)
		}
		if seen[key] {
			return fmt.Errorf("field %q given twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}
