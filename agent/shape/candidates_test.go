package shape

import (
	"slices"
	"testing"

	"github.com/foreshape/foreshape/policies"
)

// TestDefaultTargetsNeitherHoldNorLieWithinTheSource: without
// migrate.targets, moves out of dc1/*/web may go to every other policy's
// locality but dc1, which holds every node of dc1/*/web and would take
// the work back onto the nodes it leaves, and moves out of dc1 not to
// dc1/*/web, which would never leave dc1: neither relieves anything, as
// an explicit target sharing nodes with the policy's own locality is
// refused for (policies: TestTargetSharingNodesWithTheOwnLocalityNamesThem).
// */*/batch shares no node with dc1/*/web (a node has one class) and
// stays for it; it may share a node with dc1 (one of class batch there)
// and is skipped for dc1, as such an explicit target is refused
// (TestDefaultTargetsSkipALocalityThatMayShareTheSourcesNodes).
// A drain of some of dc1/*/web's nodes still tries the rest of it first.
func TestDefaultTargetsNeitherHoldNorLieWithinTheSource(t *testing.T) {
	pol := func(name, loc string) *policies.Policy {
		l, err := policies.ParseLocality(loc)
		if err != nil {
			t.Fatal(err)
		}
		return &policies.Policy{Name: name, Locality: l}
	}
	web, all, dc2, batch := pol("web", "dc1/*/web"), pol("dc1", "dc1"), pol("dc2", "dc2"), pol("batch", "*/*/batch")
	p := &planner{in: Input{Policies: []*policies.Policy{web, all, dc2, batch}}}
	src := web.Locality.String()
	if got, want := p.candidates(web, src, false), []string{"dc2", "*/*/batch"}; !slices.Equal(got, want) {
		t.Errorf("targets of a move out of %s: %q; want %q", src, got, want)
	}
	if got, want := p.candidates(web, src, true), []string{src, "dc2", "*/*/batch"}; !slices.Equal(got, want) {
		t.Errorf("targets of a drain of some of %s's nodes: %q; want %q", src, got, want)
	}
	if got, want := p.candidates(all, "dc1", false), []string{"dc2"}; !slices.Equal(got, want) {
		t.Errorf("targets of a move out of dc1: %q; want %q (dc1/*/web is within it, */*/batch may share its batch nodes)", got, want)
	}
}
