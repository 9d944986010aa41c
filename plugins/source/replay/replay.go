// Package replay is the metric source that plays trace files back as if a
// cluster produced them: each binding maps one locality's metric to a
// series read from a trace file, placed on the data-time axis, scaled, and
// optionally looped. It serves backtests and what-if runs of policies on
// real traces, and `foreshape agent -replay DIR`, which runs the agent on
// recorded series (LoadDir).
//
// It only reads the traces it was given at construction; it never touches
// a cluster, and it returns each point once (after Request.Since).
package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/foreshape/foreshape/internal/tracefile"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
)

// Binding plays one series as one locality's metric.
type Binding struct {
	Locality source.Locality
	Metric   string
	// Values on a regular grid of Step; NaN points are skipped.
	Values []float64
	Step   time.Duration
	// Start is the data time of Values[0].
	Start time.Time
	// Scale multiplies every value; zero means 1.
	Scale float64
	// Loop plays the series again from its start when it ends.
	Loop bool
}

// Source replays bindings.
type Source struct {
	bindings []Binding
}

var _ source.Source = (*Source)(nil)

// New validates the bindings and returns a replay source.
func New(bindings []Binding) (*Source, error) {
	if len(bindings) == 0 {
		return nil, errors.New("replay: no bindings")
	}
	seen := map[string]bool{}
	for i, b := range bindings {
		series := source.SeriesName(b.Locality.String(), b.Metric)
		switch {
		case b.Metric == "" || strings.ContainsRune(b.Metric, ':'):
			return nil, fmt.Errorf("replay: binding %d: invalid metric %q", i, b.Metric)
		case b.Step <= 0:
			return nil, fmt.Errorf("replay: binding %d (%s): step must be positive", i, series)
		case len(b.Values) == 0:
			return nil, fmt.Errorf("replay: binding %d (%s): no values", i, series)
		case b.Start.IsZero():
			return nil, fmt.Errorf("replay: binding %d (%s): no start time", i, series)
		case seen[series]:
			return nil, fmt.Errorf("replay: binding %d: %s is bound twice", i, series)
		}
		seen[series] = true
		if bindings[i].Scale == 0 {
			bindings[i].Scale = 1
		}
	}
	return &Source{bindings: bindings}, nil
}

// LoadSeries reads one series of a trace file in any format foreshape's
// trace reader knows (see tracefile.ReadFile); column selects a column of a
// multi-column file ("" for a file with one series).
func LoadSeries(fsys fs.FS, path, column string, step time.Duration) ([]float64, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	series, _, err := tracefile.ReadFile(path, f, step)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	var names []string
	for _, s := range series {
		if column == "" && len(series) == 1 || s.Column == column {
			return s.Values, nil
		}
		names = append(names, s.Name)
	}
	return nil, fmt.Errorf("replay: %s has no series for column %q (has %s)", path, column, strings.Join(names, ", "))
}

// LoadDir reads a directory of recorded series, the input of `foreshape
// agent -replay DIR`: every *.csv or *.tsv file directly in dir, in any
// format foreshape's trace reader knows (see tracefile.ReadFile), with
// absolute timestamps and a header naming each value column by the series
// it records, "LOCALITY:METRIC" (for example "timestamp,dc1/web:cpu,dc2:cpu").
// The points are put on the step grid. A column that names no series, a
// series recorded twice, or a file without absolute times is an error
// naming the file and column. Rows left out because their time or a value
// is missing or invalid do not stop the replay: skipped says, per file,
// how many and the first one's line and field.
func LoadDir(dir string, step time.Duration) (bindings []Binding, skipped []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("replay: %w", err)
	}
	var out []Binding
	from := map[string]string{} // series → file
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".csv" && ext != ".tsv") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("replay: %w", err)
		}
		series, n, err := tracefile.ReadFile(path, bytes.NewReader(b), step)
		if err != nil {
			return nil, nil, fmt.Errorf("replay: %w", err)
		}
		if n > 0 {
			skipped = append(skipped, skippedRows(path, b, n))
		}
		for _, s := range series {
			scope, metric, ok := source.SplitSeries(s.Column)
			loc, lerr := policies.ParseLocality(scope)
			switch {
			case !ok || lerr != nil:
				return nil, nil, fmt.Errorf("replay: %s: column %q does not name a series: name each value column LOCALITY:METRIC, such as dc1/web:cpu", path, s.Column)
			case s.Start.IsZero():
				return nil, nil, fmt.Errorf("replay: %s: no absolute timestamps; the replay needs them to line its series up", path)
			case from[s.Column] != "":
				return nil, nil, fmt.Errorf("replay: %s: series %s is also recorded in %s", path, s.Column, from[s.Column])
			}
			from[s.Column] = path
			out = append(out, Binding{Locality: loc, Metric: metric, Values: s.Values, Step: s.Step, Start: s.Start})
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("replay: %s holds no *.csv or *.tsv file of recorded series", dir)
	}
	return out, skipped, nil
}

// skippedRows says that n rows of the file at path (its contents b) were
// left out, and which field of the first of them was missing or invalid.
func skippedRows(path string, b []byte, n int) string {
	rows := "1 row"
	if n > 1 {
		rows = fmt.Sprintf("%d rows", n)
	}
	msg := fmt.Sprintf("%s: %s left out, their time or a value missing or invalid", path, rows)
	t, err := tracefile.ReadTable(path, bytes.NewReader(b))
	if err != nil {
		return msg
	}
	for i, line := range t.Lines {
		if t.Times != nil && math.IsNaN(t.Times[i]) {
			return fmt.Sprintf("%s (the first at line %d: its time)", msg, line)
		}
		for _, c := range t.Columns {
			if math.IsNaN(c.Values[i]) {
				return fmt.Sprintf("%s (the first at line %d: %s)", msg, line, c.Name)
			}
		}
	}
	return msg
}

// Span returns the earliest start and the latest end of the bindings.
func (s *Source) Span() (start, end time.Time) {
	for i, b := range s.bindings {
		e := b.Start.Add(time.Duration(len(b.Values)) * b.Step)
		if i == 0 || b.Start.Before(start) {
			start = b.Start
		}
		if i == 0 || e.After(end) {
			end = e
		}
	}
	return start, end
}

// Name implements source.Source.
func (s *Source) Name() string { return "replay" }

// Collect implements source.Source: every bound point whose data time is in
// (Since, Now], or in (Now-Lookback, Now] on a first call.
func (s *Source) Collect(ctx context.Context, req source.Request) (source.Result, error) {
	if err := ctx.Err(); err != nil {
		return source.Result{}, err
	}
	from := req.Since
	if from.IsZero() {
		lb := req.Lookback
		if lb <= 0 {
			lb = time.Hour
		}
		from = req.Now.Add(-lb)
	}
	var res source.Result
	for _, b := range s.bindings {
		series := source.SeriesName(b.Locality.String(), b.Metric)
		// First index strictly after from.
		i := int(math.Floor(float64(from.Sub(b.Start))/float64(b.Step))) + 1
		i = max(i, 0)
		for ; ; i++ {
			at := b.Start.Add(time.Duration(i) * b.Step)
			if at.After(req.Now) {
				break
			}
			j := i
			if j >= len(b.Values) {
				if !b.Loop {
					break
				}
				j %= len(b.Values)
			}
			v := b.Values[j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			res.Samples = append(res.Samples, source.Sample{Series: series, Time: at, Value: v * b.Scale})
		}
	}
	res.Sort()
	return res, nil
}
