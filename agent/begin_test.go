package agent

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/state"
)

// TestForecastsWhileTheTermsReconciliationFails: a leader stopped with a
// drain announced and not seen answered; its successor starts while
// Nomad will not answer for that node, so the start of the term's
// reconciliation cannot tell whether the drain happened. The new leader
// collects, forecasts and publishes all the same, acting on nothing (the
// intent stays open) until Nomad answers, and then reconciles and acts.
// Before, the leader loop retried the reconciliation before its first
// cycle: no forecast, hotspot or cycle at all for as long as it failed.
// The leaders run webScenario's one policy: the node and the intent are
// the test's own, and any forecast counts.
func TestForecastsWhileTheTermsReconciliationFails(t *testing.T) {
	t.Parallel()
	d := startScenario(t, webScenario(t), 600)
	target, err := url.Parse(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	node := nodeID(t, d.URL, "dc2-web-1")
	var refuse atomic.Bool
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // calls cut off by the agents' stops
	nomad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() && r.URL.Path == "/v1/node/"+node {
			http.Error(w, "unavailable in this test", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(nomad.Close)

	cfg := serverConfig(t, t.TempDir())
	cfg.Nomad.Address = nomad.URL
	opts := func(log hclog.Logger) Options {
		return Options{Logger: log, Clock: d, CycleInterval: 100 * time.Millisecond, Policies: webPolicies(t)}
	}
	a, stop := runAgentWith(t, cfg, opts(testLogger(t).Named("first")))
	t.Cleanup(stop)
	eventually(t, 30*time.Second, "the first leader's cycles", func() bool { return a.fsm.ClusterID() != "" })
	in := state.Intent{ID: "drain-" + node, Kind: state.IntentDrainNode, Object: node, Request: "r-gone",
		Detail: "deadline 1h0m0s", Opened: d.Cluster.Now(), Leader: "first"}
	if _, err := (applier{a.node}).Apply(context.Background(), state.OpenIntent{Intent: in}); err != nil {
		t.Fatal(err)
	}
	stop()

	refuse.Store(true)
	var logs syncBuffer
	b, stop := runAgentWith(t, cfg, opts(hclog.New(&hclog.LoggerOptions{Name: "second", Level: hclog.Info,
		Output: io.MultiWriter(&logs, testWriter{t})})))
	t.Cleanup(stop)
	c := &api.Client{Address: b.HTTPAddr()}
	// The reconciliation runs beside the cycle: the first cycle may end
	// before its first try has failed. What counts is a cycle that began
	// once it had.
	eventually(t, 30*time.Second, "forecasts from the new leader while its reconciliation fails", func() bool {
		st, err := c.Status(context.Background())
		return err == nil && st.LastCycle != nil && st.LastCycle.Forecasts > 0 && st.NotActingSince != nil &&
			st.LastCycle.Started.After(*st.NotActingSince)
	})
	if got := logs.count("reconciliation at the start of the term failed"); got != 1 {
		t.Errorf("the failing reconciliation logged %d times; want once (a streak)", got)
	}
	if open := b.fsm.Act().OpenIntents; len(open) != 1 || open[0].ID != in.ID {
		t.Fatalf("open intents %+v; want %s still open", open, in.ID)
	}
	// The leader's status says why it does not act, and since when.
	if st, err := c.Status(context.Background()); err != nil || !strings.Contains(st.NotActing, "reconciliation fails") ||
		!strings.Contains(st.NotActing, "503") || st.NotActingSince == nil || st.NotActingSince.After(time.Now()) ||
		st.Now.Before(*st.NotActingSince) || st.Now.After(time.Now()) {
		t.Errorf("status while not acting: %q since %v, now %v (%v); want the reconciliation's failure, when it began and the agent's clock", st.NotActing, st.NotActingSince, st.Now, err)
	}

	refuse.Store(false)
	eventually(t, 30*time.Second, "the reconciliation once Nomad answers", func() bool {
		got, ok := b.fsm.Intent(in.ID)
		return ok && got.Outcome != ""
	})
	eventually(t, 10*time.Second, "the log to say the act half acts", func() bool {
		return logs.count("reconciliation at the start of the term done") == 1
	})
	eventually(t, 10*time.Second, "the status to stop saying the leader does not act", func() bool {
		st, err := c.Status(context.Background())
		return err == nil && st.NotActing == "" && st.NotActingSince == nil
	})
	if strings.Contains(logs.String(), "act: plan and act pass failed") {
		t.Errorf("an act pass failed: %s", logs.String())
	}
}
