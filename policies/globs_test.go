package policies

import "testing"

// TestGlobsMeet: two node globs meet when some name matches both; a "no"
// is always right, two classes are taken to meet.
func TestGlobsMeet(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "dc2-*", true},
		{"dc2-*", "*-rack-a-*", true},
		{"dc2-rack-a-*", "dc2-rack-b-*", false},
		{"dc2-rack-a-?", "dc2-rack-a-10", false},
		{"dc2-rack-a-??", "dc2-rack-a-10", true},
		{"dc2-[ab]-*", "dc2-c-*", false},
		{"dc2-[ab]-*", "dc2-b-*", true},
		{"dc2-[^ab]-*", "dc2-b-*", false},
		{"dc2-[ab]-*", "dc2-[bc]-*", true},
		{"dc2-[ab]-*", "dc2-[cd]-*", true}, // taken to meet
		{`dc2-\*`, "dc2-x", false},
		{`dc2-\*`, "dc2-*", true},
		{"a*b", "*x", false},
		{"a*b*c", "a*x*c", true},
		{"*", "a/b", false}, // a star does not match '/'
	} {
		if got := globsMeet(tc.a, tc.b); got != tc.want {
			t.Errorf("globsMeet(%q, %q) = %v; want %v", tc.a, tc.b, got, tc.want)
		}
		if got := globsMeet(tc.b, tc.a); got != tc.want {
			t.Errorf("globsMeet(%q, %q) = %v; want %v", tc.b, tc.a, got, tc.want)
		}
	}
}
