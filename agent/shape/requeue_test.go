package shape

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// TestRequeuedWorkOfAKeptRequest: rack-a's window (08:00–09:00) is in its
// lead time at 07:40. A reload cancelled web-0's request mr-1 before it
// started; a later reload put the window back, and the queue keeps mr-1
// (the coordinator's readded: the window's give-back reads its intents).
// Its origin key held, the planner queued web-0's move no more, and the
// allocation stayed on the window's node through it. Named in
// Input.Requeue, its work is queued again under its key followed by
// /again/mr-1, which every reader of a window's origin keys reads as the
// same window's; not named, or its key's holder not named, nothing is
// queued.
func TestRequeuedWorkOfAKeptRequest(t *testing.T) {
	start := at(2 * time.Hour)
	base := "schedule/dc1/rack-a/" + itoa(start.Unix()) + "/allocation/web-0"
	cancelled := func(f *fixture, key, reason string) {
		r := f.allocRequest("web-0")
		r.Origin, r.OriginKey, r.Deadline = "schedule", key, start
		r.State, r.Reason, r.Finished = state.RequestCancelled, reason, at(30*time.Minute)
		f.queued(r)
	}
	reload := ReloadCancel + `: schedule "rack-a" is no longer in policy "dc1"`
	for _, tc := range []struct {
		name    string
		build   func(f *fixture)
		requeue map[string]bool
		want    string // the origin key of web-0's new request; "" none
	}{
		{"kept, not named", func(f *fixture) { cancelled(f, base, reload) }, nil, ""},
		{"kept and named", func(f *fixture) { cancelled(f, base, reload) }, map[string]bool{"mr-1": true}, base + "/again/mr-1"},
		{"named twice over", func(f *fixture) {
			cancelled(f, base, reload)
			cancelled(f, base+"/again/mr-1", reload)
		}, map[string]bool{"mr-1": true, "mr-2": true}, base + "/again/mr-2"},
		{"the next key held by an operator's cancel", func(f *fixture) {
			cancelled(f, base, reload)
			cancelled(f, base+"/again/mr-1", "cancelled by an operator")
		}, map[string]bool{"mr-1": true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.now = at(100 * time.Minute)
			tc.build(f)
			in := f.input()
			in.Requeue = tc.requeue
			plan := Run(in)
			var got []state.MigrationRequest
			for _, s := range plan.Submit {
				if s.Request.Resource.ID == "web-0" {
					got = append(got, s.Request)
				}
			}
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("web-0 queued again under %q; want nothing queued", got[0].OriginKey)
				}
				return
			}
			if len(got) != 1 || got[0].OriginKey != tc.want {
				t.Fatalf("web-0's new requests %+v; want one under %q; decisions %+v", got, tc.want, plan.Decisions)
			}
			r := got[0]
			if !strings.Contains(r.Reason, "in place of "+tc.want[strings.LastIndex(tc.want, "/")+1:]) {
				t.Errorf("reason %q; want it to name the request it is queued in place of", r.Reason)
			}
			if name, at, ok := windowOrigin(r.OriginKey); !ok || name != "rack-a" || !at.Equal(start) {
				t.Errorf("windowOrigin(%q) = %q, %v, %v; want rack-a, %v", r.OriginKey, name, at, ok, start)
			}
			if why := WindowGone(&r, f.pols); why != "" {
				t.Errorf("WindowGone = %q; want its window read as there", why)
			}
			if WindowHold(&r) {
				t.Error("read as a window's hold request")
			}
			r.State, r.Finished = state.RequestDone, start
			for _, c := range []struct {
				now  time.Time
				want bool
			}{{start.Add(59 * time.Minute), false}, {start.Add(25 * time.Hour), true}} {
				if got := Spent(&r, c.now, f.pols); got != c.want {
					t.Errorf("Spent at %s = %v; want %v (its window ends at 09:00, its work counts in dc2 a day)", c.now.Format("Jan 2 15:04"), got, c.want)
				}
			}
		})
	}
}
