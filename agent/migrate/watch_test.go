package migrate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/sim"
)

// TestDecisionsAreLogged: what the coordinator decides, and why, is in the
// agent's log as well as in the decision log, so an operator reading the
// log sees why a node's work was queued, held room for and moved.
func TestDecisionsAreLogged(t *testing.T) {
	var buf syncbuf.Buffer
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
	})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: h.nodeID("a-"), Target: "dc2", Reason: "rack a maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	logs := buf.String()
	for _, want := range []string{
		"decision: kind=submit policy=dc1 locality=dc1 request=" + id + ` reason="queue node a-1 from dc1 to dc2`,
		"rack a maintenance\"",
		"decision: kind=reserve policy=dc2 locality=dc2 request=" + id + ` reason="reserve 2000 MHz / 2048 MiB in dc2`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not hold %q:\n%s", want, logs)
		}
	}
}

// TestFindNode: a node is found by ID, name or unique ID prefix; a name
// wins over prefixes, and a prefix of several IDs is said to be one.
func TestFindNode(t *testing.T) {
	cluster := shape.NewCluster([]shape.Node{
		{ID: "ab12", Name: "web-1"}, {ID: "ab34", Name: "web-2"}, {ID: "cd56", Name: "ab"},
	}, nil, nil)
	for _, tc := range []struct{ s, want, err string }{
		{s: "ab34", want: "web-2"},
		{s: "web-1", want: "web-1"},
		{s: "cd", want: "ab"},
		{s: "ab", want: "ab"}, // a name, though also the prefix of two IDs
		{s: "a", err: `node: "a" is the prefix of more than one node's ID`},
		{s: "zz", err: `node: no node has the ID, ID prefix or name "zz"`},
	} {
		n, err := findNode(cluster, tc.s)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: %v, %v; want error %q", tc.s, n, err, tc.err)
			}
		case err != nil || n == nil || n.Name != tc.want:
			t.Errorf("%q: %v, %v; want %s", tc.s, n, err, tc.want)
		}
	}
}

// TestWatchFailureLoggedOnce: while Nomad fails the follower's allocation
// watch (tries at 0, 1 and 3 s, backing off), the failure is logged once,
// not once a try, and the first answer after it once.
func TestWatchFailureLoggedOnce(t *testing.T) {
	// Waits 7 s on the wall clock (the backoff) and works little: it
	// runs beside TestWatchEndsAHeldQuery, which waits too. The other
	// tests keep the processor busy: two of them at once would only
	// share it.
	t.Parallel()
	var buf syncbuf.Buffer
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
	})
	if err := h.sim.SetFaults(sim.Faults{ErrorRate: 1, PathPrefix: "/v1/allocations"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan struct{})
	clock := func(context.Context) (time.Time, error) { return h.now(), nil }
	go func() { h.c.Watch(ctx, clock, time.Second); close(done) }()
	time.Sleep(3500 * time.Millisecond)
	if n := strings.Count(buf.String(), "follower: allocation watch failed; retrying"); n != 1 {
		t.Errorf("3 failed tries logged %d lines, want 1:\n%s", n, buf.String())
	}
	if err := h.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(buf.String(), "follower: allocation watch answers again: failed_for=") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery line:\n%s", buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestWatchEndsAHeldQuery: an allocation query of the follower's watch that
// Nomad takes and never answers (a connection gone silent) ends a little
// after Nomad's wait, saying so, is logged and asked again, and the watch
// answers again. Before each request had a bound, the held query hung for
// the watch's life on a client without a bound of its own.
func TestWatchEndsAHeldQuery(t *testing.T) {
	// Waits on the wall clock (a held query's bound): beside
	// TestWatchFailureLoggedOnce.
	t.Parallel()
	var buf syncbuf.Buffer
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
	})
	h.c.watchMargin = 200 * time.Millisecond
	if err := h.sim.SetFaults(sim.Faults{Holds: []sim.Hold{{Path: "/v1/allocations", Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan struct{})
	clock := func(context.Context) (time.Time, error) { return h.now(), nil }
	go func() { h.c.Watch(ctx, clock, 100*time.Millisecond); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(buf.String(), "follower: allocation watch answers again") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the held query never ended and the watch never answered again:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if f := h.sim.Faults(); f.Holds[0].Caught != 1 {
		t.Errorf("%d queries held; want 1", f.Holds[0].Caught)
	}
	if !strings.Contains(buf.String(), "error=\"no answer from Nomad in time: none within") {
		t.Errorf("the failure does not say the query had no answer in time:\n%s", buf.String())
	}
	cancel()
	<-done
}
