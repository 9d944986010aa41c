package command

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
)

// knownLeaderAgent serves act as actAgent does, setting
// X-Foreshape-Known-Leader on every answer to what known holds ("" for
// none, as a client agent's or an older agent's answers).
func knownLeaderAgent(t *testing.T, act *apitest.Act, known *atomic.Value) string {
	t.Helper()
	s, err := api.NewServer(stubBackend{}, api.Options{Act: act})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := known.Load().(string); v != "" {
			w.Header().Set(api.KnownLeaderHeader, v)
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close) // after the cleanup of any watch the test starts later
	return srv.URL
}

// TestReadsWarnWithoutALeader: a read a server answered from its own copy
// of the state while it knew no leader (X-Foreshape-Known-Leader: false)
// gets a one-line warning on stderr that it may be out of date; standard
// output and the exit code are those of any other answer. The CLI
// ignored the header: a partitioned server's queue passed for the
// cluster's.
func TestReadsWarnWithoutALeader(t *testing.T) {
	act := apitest.New()
	var known atomic.Value
	known.Store("")
	addr := knownLeaderAgent(t, act, &known)
	id, _ := act.Submit(context.Background(), api.Submission{Node: "n1", Target: "dc2"})
	act.AddDecision(api.Decision{Time: act.Start, Kind: api.DecisionSubmit, Request: id, Reason: "queued"})
	warning := "warning: the agent at " + addr + " knows no leader: this answer is its own copy of the state, which may be out of date; 'foreshape status' on it says why\n"
	for _, args := range [][]string{{"queue", "list"}, {"queue", "show", id}, {"reservations"}, {"decisions"}} {
		for _, json := range []bool{false, true} {
			args := insertFlags(args, "-address", addr)
			if json {
				args = insertFlags(args, "-json")
			}
			known.Store("")
			wantCode, wantOut, _ := runCLI(t, args...)
			if wantCode != ExitOK || wantOut == "" {
				t.Fatalf("%v: exit %d, %q", args, wantCode, wantOut)
			}
			for _, h := range []string{"true", "false"} {
				known.Store(h)
				code, out, errOut := runCLI(t, args...)
				if code != wantCode || out != wantOut {
					t.Errorf("%v with %s %s: exit %d, output\n%s\nwant exit %d and\n%s", args, api.KnownLeaderHeader, h, code, out, wantCode, wantOut)
				}
				if want := map[string]string{"true": "", "false": warning}[h]; errOut != want {
					t.Errorf("%v with %s %s: stderr %q, want %q", args, api.KnownLeaderHeader, h, errOut, want)
				}
			}
		}
	}

	// queue watch warns when the agent comes to know no leader, and says
	// when it knows one again. As an agent does, the fake sets the header
	// when a query comes: a blocking query answers with what it was when
	// the wait began, so each step below takes two changes.
	known.Store("false")
	out, errb, stop := runWatch(t, false, "-address", addr)
	waitFor(t, errb, strings.TrimSuffix(warning, "\n"))
	known.Store("true")
	act.Update(id, func(r *api.MigrationRequest) { r.State = api.StateRunning })
	waitFor(t, out, id+" running")
	act.Update(id, func(r *api.MigrationRequest) { r.Reason = "step 1" })
	waitFor(t, out, "step 1")
	waitFor(t, errb, "the agent at "+addr+" knows a leader again")
	known.Store("false")
	act.Update(id, func(r *api.MigrationRequest) { r.Reason = "step 2" })
	waitFor(t, out, "step 2")
	act.Update(id, func(r *api.MigrationRequest) { r.Reason = "step 3" })
	waitFor(t, out, "step 3")
	stop()
	if n, m := strings.Count(errb.String(), "knows no leader"), strings.Count(errb.String(), "knows a leader again"); n != 2 || m != 1 {
		t.Errorf("warned %d times, want twice (once each time the agent came to know none), and said a leader was known again %d times, want once:\n%s",
			n, m, errb)
	}
	// On a terminal, the warning follows each redraw, which clears it.
	out, errb, stop = runWatch(t, true, "-address", addr)
	waitFor(t, out, "step 3")
	act.Update(id, func(r *api.MigrationRequest) { r.Reason = "step 4" })
	waitFor(t, out, "step 4")
	stop()
	if n := strings.Count(errb.String(), "knows no leader"); n != 2 {
		t.Errorf("on a terminal: warned %d times, want once per redraw (2):\n%s", n, errb)
	}
}
