package nab

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// NAB publishes every detector's output, row by row, in its repository:
// results/<detector>/<category>/<detector>_<file>.csv, with (at least) the
// columns timestamp and anomaly_score. Scoring those files here, on the same
// labelled files and with the same threshold rule as foreshape's detector,
// is a like-for-like comparison; scoring them on NAB's whole corpus and
// finding NAB's published scores again shows the scoring matches NAB's.

// ResultPath is the path, relative to NAB's results directory, of a
// detector's published output for a labelled file ("realKnownCause/x.csv"
// → "numenta/realKnownCause/numenta_x.csv").
func ResultPath(detector, file string) string {
	dir, base := path.Split(path.Clean(file))
	return path.Join(detector, dir, detector+"_"+base)
}

// ErrNotResult is returned by ReadResult for a CSV without the timestamp and
// anomaly_score columns, and by ReadData for one without timestamp and value.
var ErrNotResult = errors.New("nab: missing columns")

// ReadResult decodes one published result file: the time and anomaly score
// of every row. Series.File is left empty for the caller to set.
func ReadResult(r io.Reader) (Series, error) {
	times, scores, bad, err := readColumn(r, "anomaly_score")
	if err != nil {
		return Series{}, fmt.Errorf("nab: result: %w", err)
	}
	if bad > 0 {
		return Series{}, fmt.Errorf("nab: result: %d rows without a time and a number", bad)
	}
	return Series{Times: times, Scores: scores}, nil
}

// ReadData decodes one NAB data file (timestamp,value): the rows in file
// order, as NAB's detectors see them, one sample per row whatever the
// spacing of the timestamps. Rows without a time and a number are left out
// and counted in skipped.
func ReadData(r io.Reader) (times []time.Time, values []float64, skipped int, err error) {
	times, values, skipped, err = readColumn(r, "value")
	if err != nil {
		return nil, nil, 0, fmt.Errorf("nab: data: %w", err)
	}
	return times, values, skipped, nil
}

// readColumn reads the timestamp column and the named numeric column of a
// CSV with a header row; bad counts rows where either does not parse.
func readColumn(r io.Reader, name string) ([]time.Time, []float64, int, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("header: %w", err)
	}
	ti, vi := -1, -1
	for i, h := range head {
		switch strings.TrimSpace(h) {
		case "timestamp":
			ti = i
		case name:
			vi = i
		}
	}
	if ti < 0 || vi < 0 {
		return nil, nil, 0, fmt.Errorf("%w: want timestamp and %s", ErrNotResult, name)
	}
	var times []time.Time
	var values []float64
	bad := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return times, values, bad, nil
		}
		if err != nil {
			return nil, nil, 0, err
		}
		if ti >= len(rec) || vi >= len(rec) {
			bad++
			continue
		}
		t, err := ParseTime(strings.TrimSpace(rec[ti]))
		v, verr := strconv.ParseFloat(strings.TrimSpace(rec[vi]), 64)
		if err != nil || verr != nil {
			bad++
			continue
		}
		times = append(times, t)
		values = append(values, v)
	}
}

// ReadThresholds decodes NAB's config/thresholds.json: detector to profile
// to the threshold NAB's optimiser chose on the whole corpus (the
// detector's own threshold, fixed before any subset is scored).
func ReadThresholds(r io.Reader) (map[string]map[string]float64, error) {
	var raw map[string]map[string]struct {
		Threshold *float64 `json:"threshold"`
	}
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("nab: thresholds: %w", err)
	}
	out := make(map[string]map[string]float64, len(raw))
	for det, profiles := range raw {
		out[det] = make(map[string]float64, len(profiles))
		for p, v := range profiles {
			if v.Threshold == nil {
				return nil, fmt.Errorf("nab: thresholds: %s %s has no threshold", det, p)
			}
			out[det][p] = *v.Threshold
		}
	}
	return out, nil
}
