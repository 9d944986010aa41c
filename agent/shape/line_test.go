package shape

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// withDB adds a critical job db with one 1500 MHz / 1024 MiB allocation on
// dc1-b-1 (it may run in dc2): its request scores above any web one.
func withDB(f *fixture) {
	f.jobs = append(f.jobs, Job{ID: "db", Namespace: "default", Type: "service", Priority: 90, Datacenters: []string{"dc1", "dc2"},
		Groups: map[string]Group{"db": {Meta: map[string]string{"foreshape_critical": "true"}}}})
	f.allocs = append(f.allocs, Alloc{ID: "db-0", Name: "db.db[0]", Namespace: "default", Job: "db", Group: "db", Node: "id-dc1-b-1",
		Size: state.Resources{CPU: 1500, MemoryMB: 1024}, Live: true, Running: true})
}

// TestHeadOfLine queues a critical db move (9.4% of dc2's CPU) ahead of
// a web move (6.3%) into dc2, forecast at 73% under an 80% line for 40
// minutes, 50% after: the web move fits now, the db move is planned for
// 06:40. The web one must not take the room the db one waits for: the
// moved work stays.
func TestHeadOfLine(t *testing.T) {
	tests := []struct {
		name   string
		apply  func(f *fixture)
		start  []string
		reason string // mr-2's, when it waits
	}{
		{name: "behind a move that waits for room", reason: "head of line: behind mr-1, which waits for room in dc2"},
		{name: "its deadline presses", apply: func(f *fixture) { f.st.Requests[1].Deadline = at(time.Minute) }, start: []string{"mr-2"}},
		{name: "the one ahead waits for its time, not for room", apply: func(f *fixture) {
			f.setFrom("dc2", "cpu", 0, 60)
			f.st.Requests[0].NotBefore = at(time.Hour)
		}, start: []string{"mr-2"}},
		{name: "another target's wait holds nothing", apply: func(f *fixture) {
			f.st.Requests[0].Target = "dc3"
		}, start: []string{"mr-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.pols[1].Reserve.Enabled = false
			f.pols[1].Scales = nil
			withDB(f)
			f.setFrom("dc2", "cpu", 0, 73)
			f.setFrom("dc2", "cpu", 40*time.Minute, 50)
			f.queued(f.allocRequest("db-0"))
			f.queued(f.allocRequest("web-0"))
			if tt.apply != nil {
				tt.apply(f)
			}
			plan := Run(f.input())
			if got := startIDs(plan); !reflect.DeepEqual(got, tt.start) {
				t.Fatalf("started %v; want %v (decisions %+v)", got, tt.start, plan.Decisions)
			}
			if tt.reason == "" {
				return
			}
			if rs, ok := rescoreOf(plan, "mr-1"); !ok || rs.State != state.RequestWaiting || !strings.Contains(rs.Reason, "planned start 06:40 when it fits") {
				t.Errorf("mr-1: %+v", rs)
			}
			if rs, ok := rescoreOf(plan, "mr-2"); !ok || rs.State != state.RequestWaiting || !strings.Contains(rs.Reason, tt.reason) {
				t.Errorf("mr-2: %+v; want %q", rs, tt.reason)
			}
		})
	}
}
