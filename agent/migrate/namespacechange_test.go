package migrate

import (
	"bytes"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestPlaceholderLeftInTheOldNamespaceIsReaped: a reservation is held
// by a placeholder in the namespace "default"; the agent restarts with
// nomad.namespace = "ops". The reaper, which lists its placeholders in
// "ops", finds none there and marks the reservation released; the
// placeholder in "default" is reaped as well, in its own namespace, so
// that its room is not held in Nomad for good (before: it was never
// listed again, and held its room until someone stopped it by hand).
// Another cluster's placeholder in "default" is left alone.
func TestPlaceholderLeftInTheOldNamespaceIsReaped(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	res := heldThenNamespaceChanged(t, h)
	h.run(h.flatForecasts(79))

	def := &nomadapi.QueryOptions{Namespace: nomadapi.DefaultNamespace}
	if j, _, err := h.client.Jobs().Info(res.Job, def); err == nil && !deref(j.Stop) {
		t.Errorf("placeholder %s in namespace default was left holding its room", res.Job)
	}
	other := state.PlaceholderPrefix + "other-1"
	if j, _, err := h.client.Jobs().Info(other, def); err != nil || deref(j.Stop) {
		t.Errorf("another cluster's placeholder was touched: %v", err)
	}
	for _, r := range h.local.FSM.Act().Reservations {
		if r.ID == res.ID && r.State != state.ReservationReleased {
			t.Errorf("reservation %s is %s, want released", res.ID, r.State)
		}
	}
	reaped := false
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "reap" && d.Reservation == res.ID && strings.Contains(d.Reason, `namespace "default"`) {
			reaped = true
		}
	}
	if !reaped {
		t.Errorf("no reap decision naming namespace default; decisions %+v", h.local.FSM.Decisions())
	}
}

// heldThenNamespaceChanged holds a reservation in namespace default,
// registers another cluster's placeholder there, and restarts the
// coordinator with nomad.namespace = "ops" (its term begun, 20 s on).
func heldThenNamespaceChanged(t *testing.T, h *harness) state.Reservation {
	t.Helper()
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	// Congested: the reservation is held, the move waits.
	h.run(h.flatForecasts(79))
	res, ok := h.local.FSM.Act().ReservationFor(id)
	if !ok || res.State != state.ReservationHeld {
		t.Fatalf("no held reservation for %s: %+v; decisions %+v", id, res, h.local.FSM.Decisions())
	}
	other := state.PlaceholderPrefix + "other-1"
	job, err := h.c.placeholderJob(state.Reservation{ID: "x", Job: other, Locality: "dc2", Expires: h.now().Add(time.Hour),
		Chunks: []state.Chunk{{Size: state.Resources{CPU: 100, MemoryMB: 64}, Count: 1}}}, "fs-else", 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}

	// The restart, with the new namespace.
	cfg := h.c.cfg
	cfg.Namespace = "ops"
	if h.c, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	h.step(20 * time.Second)
	return res
}

// TestPlaceholderInANamespaceTheTokenMayNotWriteIsWarnedOf: as above,
// but the token may not deregister jobs in namespace default (Nomad
// answers 403): the reaper warns, naming the namespace and the
// capability it lacks, and the placeholder is left.
func TestPlaceholderInANamespaceTheTokenMayNotWriteIsWarnedOf(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v1/job/") && r.URL.Query().Get("namespace") == nomadapi.DefaultNamespace {
				http.Error(w, "Permission denied", http.StatusForbidden)
				return
			}
			rp.ServeHTTP(w, r)
		})
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: &lockedWriter{mu: &mu, w: &logs}, Level: hclog.Warn})
	})
	res := heldThenNamespaceChanged(t, h)
	h.run(h.flatForecasts(79))
	if j, _, err := h.client.Jobs().Info(res.Job, &nomadapi.QueryOptions{Namespace: nomadapi.DefaultNamespace}); err != nil || deref(j.Stop) {
		t.Fatalf("placeholder %s deregistered through a 403: %v", res.Job, err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	warned := false
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "[WARN]") && strings.Contains(l, "job="+res.Job) && strings.Contains(l, "namespace=default") && strings.Contains(l, "acl=submit-job") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning naming %s, namespace default and submit-job; the log:\n%s", res.Job, out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestReapInTheOldNamespaceLeftOpenIsMadeAgain: the leader with
// nomad.namespace = "ops" dies right after announcing the reaping of its
// placeholder left in "default", before the call. The next leader reads
// the placeholder in "default", finds it there, and reaps it (before: it
// read it in "ops", found it not there, counted the reaping done, and
// the placeholder was never reaped).
func TestReapInTheOldNamespaceLeftOpenIsMadeAgain(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	h.run(h.flatForecasts(30)) // gives the cluster its ID
	orphan := state.PlaceholderPrefix + "rs-99"
	job, err := h.c.placeholderJob(state.Reservation{ID: "rs-99", Job: orphan, Locality: "dc2", Expires: h.now().Add(time.Hour),
		Chunks: []state.Chunk{{Size: state.Resources{CPU: 100, MemoryMB: 64}, Count: 1}}}, h.local.FSM.Act().ClusterID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	registered, _, err := h.client.Jobs().Info(orphan, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.step(20 * time.Second)
	h.c.cfg.Namespace = "ops"
	object := nomadapi.DefaultNamespace + "/" + orphan
	id := intentID(state.IntentDeregisterHold, object, "reap", int(*registered.JobModifyIndex))
	crashAfter(t, h, state.Intent{ID: id, Kind: state.IntentDeregisterHold, Object: object, Detail: "reap"}, nil)
	h2 := newCoordinatorOn(t, h)
	if err := h2.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	if in, _ := h.local.FSM.Intent(id); in.Outcome != state.OutcomeNotDone {
		t.Fatalf("intent %+v, want not done", in)
	}
	if _, err := h2.RunOnce(h.ctx, h.now(), h.pols, h.flatForecasts(30)); err != nil {
		t.Fatal(err)
	}
	if j, _, err := h.client.Jobs().Info(orphan, nil); err == nil && !deref(j.Stop) {
		t.Error("the placeholder in namespace default survived the next leader")
	}
}
