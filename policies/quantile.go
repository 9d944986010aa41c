package policies

import (
	"math"
	"strconv"
	"strings"
)

// QuantileName names quantile q (forecast.quantile, in (0,1)) as a
// percentile: "p90", "p99.9", "p99.99", "p0.5". It is q as written, its
// shortest decimal, with the point moved two places, so that a quantile
// under 1 never reads as p100 (as 0.999 or 0.995 at whole percents) and
// none carries the noise of 100×q in binary (0.57 as p56.99999999999999).
func QuantileName(q float64) string {
	if math.IsNaN(q) || math.IsInf(q, 0) || q < 0 {
		return "p" + strconv.FormatFloat(100*q, 'g', -1, 64)
	}
	s := strconv.FormatFloat(q, 'f', -1, 64)
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	whole = strings.TrimLeft(whole+frac[:2], "0")
	if whole == "" {
		whole = "0"
	}
	if frac = frac[2:]; frac != "" {
		return "p" + whole + "." + frac
	}
	return "p" + whole
}
