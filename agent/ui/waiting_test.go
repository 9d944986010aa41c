package ui

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// emptyBackend has no forecast; its status and policies are the test's.
type emptyBackend struct {
	status   api.Status
	policies []api.Policy
}

func (b emptyBackend) Status(context.Context) api.Status        { return b.status }
func (b emptyBackend) Policies(context.Context) []api.Policy    { return b.policies }
func (b emptyBackend) Forecasts(context.Context) []api.Forecast { return nil }

// TestLocalitiesSayWhyNothingIsForecast: the Localities page without a
// forecast says why: it said "No forecast yet. The leader forecasts once
// each series has enough history" on a server that knew no leader, one
// that could not read the leader's cycle, and an agent without a policy,
// none of which forecasts anything however much history there is.
func TestLocalitiesSayWhyNothingIsForecast(t *testing.T) {
	web := []api.Policy{{Name: "dc2-web", Locality: "dc2"}}
	leader := api.Status{Node: "n1", State: "Leader", IsLeader: true, Leader: "n1", LastCycle: &api.Cycle{}}
	follower := api.Status{Node: "n2", State: "Follower", Leader: "10.0.0.1:7576"}
	for _, tc := range []struct {
		name        string
		b           emptyBackend
		leaderCycle error
		want        string
	}{
		{"no leader", emptyBackend{status: api.Status{Node: "n2", State: "Follower",
			NoLeader: "no leader elected: a leader needs 2 of the 3 voters running and reaching each other"}, policies: web}, nil,
			"No forecast: this agent knows no leader, and only a leader forecasts (no leader elected: a leader needs 2 of the 3 voters running and reaching each other)."},
		{"the leader's cycle unreadable", emptyBackend{status: follower, policies: web}, errors.New("dial tcp 10.0.0.1:7575: connection refused"),
			"No forecast: this agent does not lead and cannot read the leader&#39;s last cycle: dial tcp 10.0.0.1:7575: connection refused."},
		{"no policy", emptyBackend{status: leader}, nil,
			"No forecast: this agent has no policy, so it forecasts nothing."},
		{"no cycle yet", emptyBackend{status: api.Status{Node: "n1", State: "Leader", IsLeader: true, Leader: "n1"}, policies: web}, nil,
			"No forecast yet: this agent leads and has finished no cycle yet."},
		{"the last cycle failed", emptyBackend{status: api.Status{Node: "n1", State: "Leader", IsLeader: true, Leader: "n1",
			LastCycle: &api.Cycle{Error: "sim clock: connection refused"}}, policies: web}, nil,
			"No forecast: the last cycle failed: sim clock: connection refused."},
		{"the leader has none yet", emptyBackend{status: follower, policies: web}, nil,
			"No forecast yet: the leader (10.0.0.1:7576) has published none."},
		{"policies loaded since the last cycle", emptyBackend{status: leader, policies: web}, nil,
			"No forecast yet: the last cycle had none; the next forecasts the policies loaded since."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(tc.b, Options{LeaderCycle: func(context.Context) error { return tc.leaderCycle }})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer func() { h.Close(); srv.Close() }()
			code, body := get(t, srv.Client(), srv.URL+"/ui/", nil)
			_, empty, _ := strings.Cut(body, `<p class="empty">`)
			empty, _, _ = strings.Cut(empty, "</p>")
			if code != 200 || empty != tc.want {
				t.Errorf("%d %q; want %q", code, empty, tc.want)
			}
		})
	}
}

// followerBackend answers as a follower does: no cycle of its own, and
// the leader's forecasts, published when the test says.
type followerBackend struct {
	emptyBackend
	mu        sync.Mutex
	published time.Time
}

func (b *followerBackend) Forecasts(context.Context) []api.Forecast {
	b.mu.Lock()
	defer b.mu.Unlock()
	return []api.Forecast{{Policy: "dc2-web", Locality: "dc2", Metric: "cpu", Status: api.ForecastWarmingUp, Published: b.published}}
}

// TestEventsOnAFollowerAnnounceTheLeadersCycle: a follower's pages update
// when the leader publishes a cycle. The stream watched the server's own
// last cycle, which a follower has none of, so a follower's Localities page
// kept the forecasts it was opened with (measured on a three-server
// cluster: no update in 18 s, the leader cycling every second).
func TestEventsOnAFollowerAnnounceTheLeadersCycle(t *testing.T) {
	b := &followerBackend{emptyBackend: emptyBackend{status: api.Status{Node: "n2", State: "Follower", Leader: "10.0.0.1:7576"},
		policies: []api.Policy{{Name: "dc2-web", Locality: "dc2"}}}, published: t0}
	next := backendEvents(t, b)
	b.mu.Lock()
	b.published = t0.Add(time.Minute)
	b.mu.Unlock()
	if e := next(); e != "update" {
		t.Fatalf("after the leader's new cycle: event %q, want update", e)
	}
}

// clockBackend is a leader whose last cycle and clock (Status.Now) the
// test sets.
type clockBackend struct {
	emptyBackend
	mu         sync.Mutex
	cycle, now time.Time
}

func (b *clockBackend) Status(context.Context) api.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return api.Status{Node: "n1", State: "Leader", IsLeader: true, Now: b.now, LastCycle: &api.Cycle{Started: b.cycle, Duration: time.Second}}
}

// TestEventsAnnounceAStoppedCycle: a page whose agent stopped cycling
// updates once its forecasts are two minutes old, and each minute after,
// so that its panels say how old they are; nothing else announced it, and
// the page kept looking fresh.
func TestEventsAnnounceAStoppedCycle(t *testing.T) {
	b := &clockBackend{cycle: t0, now: t0.Add(time.Minute)}
	next := backendEvents(t, b)
	for _, m := range []int{3, 4} {
		b.mu.Lock()
		b.now = t0.Add(time.Duration(m) * time.Minute)
		b.mu.Unlock()
		if e := next(); e != "update" {
			t.Fatalf("the last cycle %d minutes old: event %q, want update", m, e)
		}
	}
}
