package policies

import "testing"

// TestNestingFindsEveryOverlap checks the indexed look-up against the
// pairwise definitions on every locality of three parts drawn from "a",
// "b" and the wildcard: two share nodes when no part names two values,
// and one holds the other when each part of the wider is a wildcard or
// the narrower's.
func TestNestingFindsEveryOverlap(t *testing.T) {
	var all []Locality
	values := []string{"", "*", "a", "b"}
	for _, dc := range values {
		for _, pool := range values {
			for _, class := range values {
				if l := (Locality{dc, pool, class}); canonical(l) != (Locality{}) {
					all = append(all, l)
				}
			}
		}
	}
	part := func(x, y string) bool { x, y = star(x), star(y); return x == "*" || y == "*" || x == y }
	overlap := func(a, b Locality) bool {
		return part(a.Datacenter, b.Datacenter) && part(a.NodePool, b.NodePool) && part(a.NodeClass, b.NodeClass)
	}
	nested := func(a, b Locality) bool { return contains(a, b) || contains(b, a) }
	for _, o1 := range all {
		for _, o2 := range all {
			var n nesting
			n.add(o1)
			n.add(o2)
			for _, l := range all {
				// The first listed within l or l within it, else the
				// first listed that overlaps l.
				var want Locality
				wantWithin, wantOK := false, false
				for _, o := range []Locality{o2, o1} {
					switch {
					case nested(o, l):
						want, wantWithin, wantOK = o, true, true
					case overlap(o, l) && !wantWithin:
						want, wantOK = o, true
					}
				}
				if got, within, ok := n.find(l); got != want || within != wantWithin || ok != wantOK {
					t.Errorf("%s and %s added, find(%s) = %s, within %v, ok %v; want %s, %v, %v", o1, o2, l, got, within, ok, want, wantWithin, wantOK)
				}
			}
		}
	}
}
