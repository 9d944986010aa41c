package migrate

import (
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

// TestGiveBackAgainGivenUpIsSaid: a maintenance window held a-1 out of
// scheduling and an operator purged a-1 before the window ended; its
// client registers it again out of scheduling, as it last heard, and
// Nomad refuses every call that would make it eligible (a token that lost
// node:write). foreshape gives the give-back up after ten refusals
// (maxRedos), or when giveBackAgainWithin of its first give-back is over,
// whichever comes first; either way the agent's log says so at WARN and a
// hold decision says so, naming the node, the request, Nomad's last
// refusal and the command that gives the node back, as a give-back Nomad
// keeps refusing says (setEligibleFor): once per ten minutes while the
// node stays out. Before, each refusal was logged at WARN and the giving
// up said nothing: the node stayed out of scheduling for good, no decision
// saying so.
func TestGiveBackAgainGivenUpIsSaid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		every time.Duration // between a pass (plan and Follow) and the next
		limit string
	}{
		{"ten refusals", time.Minute, "refused making it eligible 10 times"},
		{"its window over", 4 * time.Minute, "a registration only within 10m0s of its give-back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var refuse atomic.Bool
			var logs syncbuf.Buffer
			h := newHarness(t, actScenario+"\nreregister = \"2m\"\n", windowPolicies(""), func(c *Config) {
				c.Logger = hclog.New(&hclog.LoggerOptions{Output: io.MultiWriter(testWriter{t}, &logs), Level: hclog.Debug})
				interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
					if refuse.Load() && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/eligibility") {
						http.Error(w, "Permission denied", http.StatusForbidden)
						return
					}
					rp.ServeHTTP(w, r)
				})
			})
			node := h.nodeID("a-")
			r := h.windowRequest(func(state.MigrationRequest) bool { return true })
			h.passUntil(r.Deadline, nil)
			end := h.windowEnd(h.request(r.ID))
			h.passUntil(end.Add(-20*time.Second), nil)
			if got := h.eligibility(node); got != "ineligible" {
				t.Fatalf("a-1 %s before the window's end; want it held out of scheduling", got)
			}
			h.purgeNode(node)
			refuse.Store(true)
			for until := h.now().Add(30 * time.Minute); h.now().Before(until); h.step(tc.every) {
				h.run(h.flatForecasts(30))
				if err := h.c.Follow(h.ctx, h.now()); err != nil {
					t.Fatal(err)
				}
			}
			if got := h.eligibility(node); got != "ineligible" {
				t.Fatalf("a-1 %s; the test needs it left out of scheduling", got)
			}
			refusals := 0
			for _, in := range h.local.FSM.Intents() {
				if in.Object == node && strings.Contains(in.Detail, eligibleAgain) && in.Outcome == state.OutcomeFailed {
					refusals++
				}
			}
			if refusals == 0 {
				t.Fatal("no give-back of a-1 registered again was refused: the test needs some")
			}
			cmd := "nomad node eligibility -enable " + node
			said := h.decisionsSaying("", "cannot give back node a-1")
			if len(said) < 2 || len(said) > 3 {
				t.Errorf("decisions that a-1 is not given back: %v; want one per ten minutes", said)
			}
			for _, d := range said {
				for _, want := range []string{"hold: ", "registered again out of scheduling after a purge", tc.limit, "Permission denied", cmd} {
					if !strings.Contains(d, want) {
						t.Errorf("decision %q lacks %q", d, want)
					}
				}
			}
			var warned []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "[WARN]") && strings.Contains(l, "gave up giving back a node") {
					warned = append(warned, l)
				}
			}
			if len(warned) != len(said) {
				t.Errorf("WARN lines %q; want one per decision (%d)", warned, len(said))
			}
			for _, l := range warned {
				for _, want := range []string{"node=a-1", "request=" + r.ID, "Permission denied", `run="` + cmd + `"`} {
					if !strings.Contains(l, want) {
						t.Errorf("log line %q lacks %q", l, want)
					}
				}
			}
		})
	}
}
