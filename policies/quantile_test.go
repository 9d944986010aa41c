package policies

import "testing"

func TestQuantileName(t *testing.T) {
	for _, tc := range []struct {
		q    float64
		want string
	}{
		{0.9, "p90"}, {0.5, "p50"}, {0.1, "p10"}, {0.99, "p99"},
		// Whole percents printed these as p100 (0.999, 0.995) or p98.
		{0.999, "p99.9"}, {0.995, "p99.5"}, {0.9999, "p99.99"}, {0.975, "p97.5"},
		// 100×q in binary: 56.99999999999999 and 55.00000000000001.
		{0.57, "p57"}, {0.55, "p55"}, {0.29, "p29"},
		{0.005, "p0.5"}, {0.01, "p1"}, {0.0001, "p0.01"}, {1, "p100"},
	} {
		if got := QuantileName(tc.q); got != tc.want {
			t.Errorf("QuantileName(%v) = %q; want %q", tc.q, got, tc.want)
		}
	}
}
