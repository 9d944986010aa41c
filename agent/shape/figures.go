package shape

import (
	"math"
	"strconv"
	"strings"
)

// maxPlaces bounds the decimals a reason prints a percent with: figures
// that differ by less than 10^-maxPlaces of a point print alike.
const maxPlaces = 9

// places is the fewest decimals, none where whole numbers do, at which the
// figures a reason compares with a line, printed, compare as the figures
// themselves do: holds is that comparison, made on figures as printed with
// the decimals at reads them at (in units of the last decimal, so a sum of
// printed figures is the sum a reader makes). A planning quantile over its
// line never reads as at it, nor one at or under it as over it.
func places(holds func(at func(float64) int64) bool) int {
	for d := 0; d < maxPlaces; d++ {
		if holds(printedAt(d)) {
			return d
		}
	}
	return maxPlaces
}

// printedAt reads a figure as pctAt prints it with d decimals, in units of
// its last decimal.
func printedAt(d int) func(float64) int64 {
	scale := math.Pow10(d)
	return func(v float64) int64 {
		r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', d, 64), 64)
		return int64(math.Round(r * scale))
	}
}

// pctAt formats a percent with at most d decimals, without trailing zeros:
// 80.5% and 80% at one decimal.
func pctAt(v float64, d int) string {
	s := strconv.FormatFloat(v, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s + "%"
}

// againstLine prints figures whose sum a reason compares with line, and
// the line, so that the printed sum is over the printed line when over
// (the planner read the sum over it), and at or under it when not.
func againstLine(over bool, line float64, parts ...float64) ([]string, string) {
	d := places(func(at func(float64) int64) bool {
		var sum int64
		for _, v := range parts {
			sum += at(v)
		}
		return (sum > at(line)) == over
	})
	figs := make([]string, len(parts))
	for i, v := range parts {
		figs[i] = pctAt(v, d)
	}
	return figs, pctAt(line, d)
}

// eachAgainstLine prints figures a reason sets each against line, and
// the line, so that each printed figure is over the printed line when it
// is over line, and at or under it when not (a node's share after a move
// that leaves it over the line, or brings its receiver to it).
func eachAgainstLine(line float64, figs ...float64) ([]string, string) {
	d := places(func(at func(float64) int64) bool {
		for _, v := range figs {
			if (at(v) > at(line)) != (v > line) {
				return false
			}
		}
		return true
	})
	out := make([]string, len(figs))
	for i, v := range figs {
		out[i] = pctAt(v, d)
	}
	return out, pctAt(line, d)
}

// byLine says where a figure is against its line from its room under it
// (the line less the figure): "3% below", "0.5% over" (signed: never 0%
// either way), or "at".
func byLine(room float64) string {
	switch {
	case room > 0:
		return signed(room) + " below"
	case room < 0:
		return signed(-room) + " over"
	}
	return "at"
}

// signed prints a figure whose sign a reason states (room below a line,
// excess over it) so that a positive one never reads as zero or less.
func signed(v float64) string {
	d := places(func(at func(float64) int64) bool { return sign(at(v)) == sign(v) })
	return pctAt(v, d)
}

func sign[T int64 | float64](v T) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
