package shape

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestAskedMax: a scale block counts as asked for its max while its
// latest action succeeded asking its max (or more), for MaxAskedHold of
// its cooldown from when that action took effect; a later action of the
// block, a failed or an unfinished one, or a max raised above the count
// asked, ends it.
func TestAskedMax(t *testing.T) {
	block := &policies.Scale{Name: "workers", Min: 0, Max: 4, Cooldown: 10 * time.Minute}
	done := func(id string, count int, took time.Duration) state.ScaleAction {
		return state.ScaleAction{ID: id, Policy: "dc2", Scale: "workers", Direction: "up", Amount: 1, Count: count,
			At: at(took - time.Minute), Finished: at(took), TookEffect: at(took), Outcome: state.OutcomeDone}
	}
	for _, tc := range []struct {
		name string
		acts []state.ScaleAction
		now  time.Duration
		max  int // the block's max, when not 4
		want string
	}{
		{"none", nil, 0, 0, ""},
		{"asked its max", []state.ScaleAction{done("sa-1", 3, -time.Hour), done("sa-2", 4, -time.Minute)}, 0, 0, "sa-2"},
		{"within the hold", []state.ScaleAction{done("sa-1", 4, 0)}, time.Hour - time.Second, 0, "sa-1"},
		{"the hold ended", []state.ScaleAction{done("sa-1", 4, 0)}, time.Hour, 0, ""},
		{"asked less", []state.ScaleAction{done("sa-1", 3, 0)}, time.Minute, 0, ""},
		{"over a max lowered since", []state.ScaleAction{done("sa-1", 4, 0)}, time.Minute, 3, "sa-1"},
		{"under a max raised since", []state.ScaleAction{done("sa-1", 4, 0)}, time.Minute, 5, ""},
		{"a later action asked less", []state.ScaleAction{done("sa-1", 4, 0),
			{ID: "sa-2", Policy: "dc2", Scale: "workers", Direction: "down", Amount: 2, Count: 2, At: at(time.Minute), Outcome: state.OutcomeDone}},
			2 * time.Minute, 0, ""},
		{"a later action failed", []state.ScaleAction{done("sa-1", 4, 0),
			{ID: "sa-2", Policy: "dc2", Scale: "workers", Count: 4, At: at(time.Minute), Outcome: state.OutcomeFailed, Error: "no answer"}},
			2 * time.Minute, 0, ""},
		{"in flight", []state.ScaleAction{{ID: "sa-1", Policy: "dc2", Scale: "workers", Count: 4, At: at(0)}}, time.Minute, 0, ""},
		{"another block's", []state.ScaleAction{done("sa-1", 3, 0),
			{ID: "sa-2", Policy: "dc2", Scale: "spare", Count: 4, At: at(0), TookEffect: at(0), Outcome: state.OutcomeDone},
			{ID: "sa-3", Policy: "dc1", Scale: "workers", Count: 4, At: at(0), TookEffect: at(0), Outcome: state.OutcomeDone}},
			time.Minute, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := *block
			if tc.max > 0 {
				b.Max = tc.max
			}
			a, until, ok := AskedMax(tc.acts, "dc2", &b, at(tc.now))
			if got := map[bool]string{true: a.ID}[ok]; got != tc.want {
				t.Errorf("AskedMax = %s, %v, %v; want %q", a.ID, until, ok, tc.want)
			}
			if ok && !until.Equal(a.TookEffect.Add(time.Hour)) {
				t.Errorf("held until %s; want an hour after %s", until, a.TookEffect)
			}
		})
	}
}

// TestMaxAskedHold: four cooldowns, at least an hour.
func TestMaxAskedHold(t *testing.T) {
	for cooldown, want := range map[time.Duration]time.Duration{
		time.Minute: time.Hour, 5 * time.Minute: time.Hour, 15 * time.Minute: time.Hour, 30 * time.Minute: 2 * time.Hour,
	} {
		if got := MaxAskedHold(cooldown); got != want {
			t.Errorf("MaxAskedHold(%s) = %s; want %s", cooldown, got, want)
		}
	}
}

// TestScaleBlockAskedItsMaxPassedOver: a block in Input.MaxAsked is
// passed over for the policy's next, whose reason says why.
func TestScaleBlockAskedItsMaxPassedOver(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.queued(f.allocRequest("web-0"))
	f.setFrom("dc2", "cpu", 0, 79)
	spare := f.pols[1].Scales[0]
	spare.Name = "spare"
	f.pols[1].Scales = append(f.pols[1].Scales, spare)
	in := f.input()
	in.MaxAsked = map[string]state.ScaleAction{state.CooldownKey("dc2", "workers"): {ID: "sa-7", Policy: "dc2", Scale: "workers",
		Count: 10, At: at(-30 * time.Minute), TookEffect: at(-29 * time.Minute), Outcome: state.OutcomeDone}}
	plan := Run(in)
	if len(plan.Scale) != 1 || plan.Scale[0].Scale != "spare" {
		t.Fatalf("scaled %+v; want one action through \"spare\"", plan.Scale)
	}
	if want := `passed over: scale "workers" was asked for its max (count 10, sa-7) at 05:31 and cannot tell its count: taken to be at it until 06:31`; !strings.Contains(plan.Scale[0].Reason, want) {
		t.Errorf("reason %q; want it to say %q", plan.Scale[0].Reason, want)
	}
}

// TestScaleBlockAskedItsMaxAskedAgainWhenNoOtherActs: a block in
// Input.MaxAsked with no later block that can act (here the policy's only
// one) is asked again once its cooldown is over: its target cannot tell
// whether it came down from its max since, and passing it over would
// leave the locality without the capacity it needs.
func TestScaleBlockAskedItsMaxAskedAgainWhenNoOtherActs(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.queued(f.allocRequest("web-0"))
	f.setFrom("dc2", "cpu", 0, 79)
	in := f.input()
	in.MaxAsked = map[string]state.ScaleAction{state.CooldownKey("dc2", "workers"): {ID: "sa-7", Policy: "dc2", Scale: "workers",
		Count: 10, At: at(-30 * time.Minute), TookEffect: at(-29 * time.Minute), Outcome: state.OutcomeDone}}
	plan := Run(in)
	if len(plan.Scale) != 1 || plan.Scale[0].Scale != "workers" {
		t.Fatalf("scaled %+v; want one action through \"workers\", the only block", plan.Scale)
	}
	if r := plan.Scale[0].Reason; !strings.Contains(r, "asked again though asked for its max before: no later block can act") || strings.Contains(r, "passed over") {
		t.Errorf("reason %q; want it to say the block is asked again, and nothing passed over", r)
	}
}

// TestScaleBlockAskedItsMaxAskedAgainOnlyWhenItCanAct: a block in
// Input.MaxAsked with no later block that can act is asked again only
// as it would be were it not asked for its max: not while its cooldown
// runs from that action, nor while a newer action's call is open (the
// pass's second plan, after new requests, reads the MaxAsked the pass
// began with). Before, falling back to it skipped those checks, and it
// was sent its max again at every pass while the need lasted.
func TestScaleBlockAskedItsMaxAskedAgainOnlyWhenItCanAct(t *testing.T) {
	asked := state.ScaleAction{ID: "sa-7", Policy: "dc2", Scale: "workers",
		Count: 10, At: at(-2 * time.Minute), TookEffect: at(-time.Minute), Outcome: state.OutcomeDone}
	for _, tc := range []struct {
		name  string
		apply func(f *fixture)
		want  string
	}{
		{"in its cooldown", func(f *fixture) {
			f.st.ScaleActions = []state.ScaleAction{asked}
			f.st.Cooldowns = map[string]time.Time{state.CooldownKey("dc2", "workers"): at(-time.Minute)}
		}, `scale "workers" cools down until 06:09`},
		{"its next call open", func(f *fixture) {
			f.st.ScaleActions = []state.ScaleAction{asked, {ID: "sa-8", Policy: "dc2", Scale: "workers", Count: 10, At: at(0)}}
			f.st.OpenIntents = []state.Intent{{ID: "scale_target/dc2/workers/sa-8#0", Kind: state.IntentScaleTarget, Object: "dc2/workers", Opened: at(0)}}
		}, `scale "workers" is in flight since 06:00`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.queued(f.allocRequest("web-0"))
			f.setFrom("dc2", "cpu", 0, 79)
			tc.apply(f)
			in := f.input()
			in.MaxAsked = map[string]state.ScaleAction{state.CooldownKey("dc2", "workers"): asked}
			plan := Run(in)
			if len(plan.Scale) != 0 {
				t.Fatalf("scaled %+v; want none", plan.Scale)
			}
			if rs, _ := rescoreOf(plan, "mr-1"); !strings.Contains(rs.Reason, tc.want) {
				t.Errorf("reason %q; want it to say %q", rs.Reason, tc.want)
			}
		})
	}
}
