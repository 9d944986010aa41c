package eval

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/internal/tracefile"
)

// Parts of a Split.
const (
	Tuning = "tuning"
	Check  = "check"
)

// Split says which series of the shared trace data tune foreshape's
// forecaster and which check it, and what each series can physically
// show. split.json holds the declaration; see its "about".
type Split struct {
	Tuning []string `json:"tuning"`
	Check  []string `json:"check"`
	Ranges struct {
		Percent  []string `json:"percent"`
		Fraction []string `json:"fraction"`
	} `json:"ranges"`
}

//go:embed split.json
var splitJSON string

// DefaultSplit is the split declared in split.json.
func DefaultSplit() Split {
	s, err := ReadSplit(strings.NewReader(splitJSON))
	if err != nil {
		panic("eval: the embedded split.json: " + err.Error())
	}
	return s
}

// ReadSplit decodes a split declaration and checks its patterns.
func ReadSplit(r io.Reader) (Split, error) {
	var s Split
	dec := json.NewDecoder(r)
	if err := dec.Decode(&s); err != nil {
		return Split{}, fmt.Errorf("eval: split: %w", err)
	}
	for _, list := range [][]string{s.Tuning, s.Check, s.Ranges.Percent, s.Ranges.Fraction} {
		for _, p := range list {
			file, col, _ := strings.Cut(p, ":")
			if _, err := path.Match(file, ""); err != nil || file == "" {
				return Split{}, fmt.Errorf("eval: split: bad pattern %q", p)
			}
			if _, err := path.Match(col, ""); err != nil {
				return Split{}, fmt.Errorf("eval: split: bad column pattern %q", p)
			}
		}
	}
	return s, nil
}

// Part returns the part a series belongs to: Tuning, Check, or "" when the
// split does not name it. A series named by both is a mistake in the
// declaration and belongs to neither.
func (s Split) Part(series tracefile.Series) string {
	t, c := matchAny(s.Tuning, series), matchAny(s.Check, series)
	switch {
	case t && !c:
		return Tuning
	case c && !t:
		return Check
	}
	return ""
}

// Range is the physical range the split declares for a series, or false.
func (s Split) Range(series tracefile.Series) (forecast.Range, bool) {
	switch {
	case matchAny(s.Ranges.Percent, series):
		return forecast.Percent, true
	case matchAny(s.Ranges.Fraction, series):
		return forecast.Range{Min: 0, Max: 1}, true
	}
	return forecast.Range{}, false
}

// RangeFunc is a Config.Range that takes the declared range of a series
// and falls back on NonNegativeRange.
func (s Split) RangeFunc() func(tracefile.Series, []float64) forecast.Range {
	return func(series tracefile.Series, history []float64) forecast.Range {
		if r, ok := s.Range(series); ok {
			return r
		}
		return NonNegativeRange(series, history)
	}
}

func matchAny(patterns []string, s tracefile.Series) bool {
	for _, p := range patterns {
		if Match(p, s.Path, s.Column) {
			return true
		}
	}
	return false
}

// Match reports whether pattern names the series read from file (a path
// with the data directory's name first) and column: the pattern's path
// glob matches the end of file, whole segments, and its column glob (after
// a ':'), when it has one, matches column.
func Match(pattern, file, column string) bool {
	pf, pc, hasCol := strings.Cut(pattern, ":")
	if hasCol {
		if ok, _ := path.Match(pc, column); !ok {
			return false
		}
	}
	want := strings.Count(pf, "/") + 1
	segs := strings.Split(file, "/")
	if len(segs) < want {
		return false
	}
	ok, _ := path.Match(pf, strings.Join(segs[len(segs)-want:], "/"))
	return ok
}
