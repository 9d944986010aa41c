package eval

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Series is one univariate series read from a trace file, on a regular grid.
type Series struct {
	// Name identifies the series: the file's path (with the data
	// directory's base name first) and, for a file with several numeric
	// columns, ":column".
	Name string
	// Folder groups series for per-folder figures (see ReadDir).
	Folder string
	// File is the file's path relative to the data directory it was read
	// from.
	File string
	// Start is the time of Values[0]; the zero time when the file has no
	// absolute timestamps (seconds from trace start, or none at all).
	Start time.Time
	// Step is the grid's interval.
	Step time.Duration
	// Values holds one value per step; NaN marks a step with no sample.
	Values []float64
}

// Time returns the time of point i.
func (s Series) Time(i int) time.Time { return s.Start.Add(time.Duration(i) * s.Step) }

// Data is what ReadDir found.
type Data struct {
	Series []Series
	// SkippedRows counts rows (or cells of multi-column files) that were
	// missing or invalid and left out.
	SkippedRows int
	// Files is the number of data files read.
	Files int
	// SkippedFiles lists files that were not read, with the reason.
	SkippedFiles []string
}

// ReadDir reads every data file under root in fsys, recursively, in any of
// the formats this package knows (see the package comment). Files that are
// not time series (JSON, Markdown, licences, headerless files with text
// columns) are listed in SkippedFiles; bad rows are counted in SkippedRows;
// neither is an error. Only a failure to walk or read the tree is.
//
// Series get Folder = the first directory under root that holds them, or
// base when every data file sits in one directory tree (so that reading
// "nab" gives folder "nab", and reading the parent of several data sets
// gives one folder per data set).
func ReadDir(ctx context.Context, fsys fs.FS, root, base string, step time.Duration) (Data, error) {
	var d Data
	var paths []string
	err := fs.WalkDir(fsys, root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			if p != root && strings.HasPrefix(e.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return Data{}, fmt.Errorf("eval: read %s: %w", base, err)
	}
	sort.Strings(paths)
	tops := map[string]bool{}
	for _, p := range paths {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return Data{}, fmt.Errorf("eval: read %s: %w", p, err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if root == "." {
			rel = p
		}
		if reason := notData(rel, b); reason != "" {
			d.SkippedFiles = append(d.SkippedFiles, rel+": "+reason)
			continue
		}
		series, skipped, err := ReadFile(path.Join(base, rel), bytes.NewReader(b), step)
		var ns *NotSeriesError
		switch {
		case errors.As(err, &ns):
			d.SkippedFiles = append(d.SkippedFiles, rel+": "+ns.Reason)
			continue
		case err != nil:
			return Data{}, err
		}
		d.Files++
		d.SkippedRows += skipped
		top := base
		if i := strings.IndexByte(rel, '/'); i > 0 {
			top = rel[:i]
		}
		tops[top] = true
		for i := range series {
			series[i].Folder = top
			series[i].File = rel
		}
		d.Series = append(d.Series, series...)
	}
	if len(tops) <= 1 {
		for i := range d.Series {
			d.Series[i].Folder = base
		}
	}
	return d, nil
}

// notData returns why a file is not read as a series, or "".
func notData(name string, b []byte) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".json", ".md", ".txt", ".jsonld", ".yaml", ".yml", ".gz", ".zip", ".py", ".go", ".html", ".pdf":
		return "not a trace file"
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "empty"
	}
	if bytes.IndexByte(b[:min(len(b), 4096)], 0) >= 0 {
		return "binary"
	}
	return ""
}

// ReadFile reads one trace file. name is used for series names. It returns
// the series and the number of rows (or cells) skipped as missing or
// invalid. The formats:
//
//   - header CSV, separated by commas or by semicolons (with optional tabs
//     or spaces around them): a column named like a time ("timestamp",
//     "Timestamp [ms]", "time", "date") is the time axis; every other
//     numeric column is a series named "name:column", or just "name" when
//     it is the only one. Times are date-times ("2014-02-14 14:30:00",
//     RFC 3339) or numbers: Unix seconds (above 1e8), Unix milliseconds
//     (above 1e11), otherwise seconds from the trace's start. Without a
//     time column, row i is at i·step.
//   - headerless, one number per line: one series, line i at i·step.
//   - headerless, several numeric columns: one series per column, named
//     "name:cN" (N the column's position from 1), row i at i·step; a first
//     column of date-times is the time axis.
//   - headerless, keyed: a first column of text keys (a machine id) and a
//     second column of numeric times, then numeric or empty columns, rows
//     grouped by key (Alibaba's raw machine_usage.csv). Each key's rows
//     make their own series, "name:KEY:cN", on their own grid. A headerless
//     file with text anywhere else (Alibaba's machine_meta.csv, an event
//     log) is not a table of series and is rejected.
//
// A numeric column is a series when at least half its cells are valid
// numbers; columns that are mostly empty are left out without counting.
// Timed samples are put on the step grid from the earliest time: a sample
// goes to the nearest grid point, several samples on one point are
// averaged, and grid points without a sample are NaN. Blank lines inside a
// file are rows with missing values.
func ReadFile(name string, r io.Reader, step time.Duration) ([]Series, int, error) {
	if step <= 0 {
		return nil, 0, fmt.Errorf("eval: %s: step must be positive", name)
	}
	lines, err := readLines(r)
	if err != nil {
		return nil, 0, notSeries(name, err.Error())
	}
	if len(lines) == 0 {
		return nil, 0, notSeries(name, "no rows")
	}
	sep := detectSeparator(lines[0])
	rows := make([][]string, len(lines))
	for i, l := range lines {
		rows[i] = splitFields(l, sep)
	}
	var second []string
	if len(rows) > 1 {
		second = rows[1]
	}
	first := rows[0]
	if isHeader(first, second) {
		timeCol := -1
		for i, c := range first {
			if isTimeName(c) {
				timeCol = i
				break
			}
		}
		return table(name, first, rows[1:], timeCol, step, false)
	}

	cols := make([]string, len(first))
	for i := range first {
		cols[i] = "c" + strconv.Itoa(i+1)
	}
	if isKeyed(first, second) {
		return keyed(name, cols, rows, step)
	}
	for _, f := range first {
		if isText(f) {
			return nil, 0, notSeries(name, fmt.Sprintf("headerless file with a text column %q: not a table of series", f))
		}
	}
	timeCol := -1
	if len(cols) > 1 {
		// A headerless first column of date-times is a time axis.
		if _, ok := parseDateTime(first[0]); ok {
			timeCol = 0
		}
	}
	return table(name, cols, rows, timeCol, step, false)
}

// NotSeriesError says a file is readable but holds no series this package
// can read; ReadDir lists such files instead of failing.
type NotSeriesError struct {
	File   string
	Reason string
}

func (e *NotSeriesError) Error() string { return "eval: " + e.File + ": " + e.Reason }

func notSeries(file, reason string) error { return &NotSeriesError{File: file, Reason: reason} }

// isText: neither a number nor a date-time, and not empty.
func isText(s string) bool {
	if _, ok := parseNumber(s); ok {
		return false
	}
	if _, ok := parseDateTime(s); ok {
		return false
	}
	return s != ""
}

// isKeyed recognises a headerless keyed file from its first two rows: text
// keys first, numeric times second, nothing but numbers or empty cells
// after.
func isKeyed(first, second []string) bool {
	if len(first) < 3 || len(second) != len(first) {
		return false
	}
	for _, r := range [][]string{first, second} {
		if !isText(r[0]) {
			return false
		}
		if _, ok := parseNumber(r[1]); !ok {
			return false
		}
		for _, f := range r[2:] {
			if isText(f) {
				return false
			}
		}
	}
	return true
}

// keyed splits rows by their key (first column) and reads each group as a
// timed table; the series are named "name:KEY:column".
func keyed(name string, cols []string, rows [][]string, step time.Duration) ([]Series, int, error) {
	var order []string
	groups := map[string][][]string{}
	for _, r := range rows {
		k := r[0]
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r[1:])
	}
	var out []Series
	skipped := 0
	for _, k := range order {
		ss, sk, err := table(name+":"+k, cols[1:], groups[k], 0, step, true)
		skipped += sk
		if err != nil {
			// A key with no usable rows: its rows are skipped, not fatal.
			skipped += len(groups[k]) - sk
			continue
		}
		out = append(out, ss...)
	}
	if len(out) == 0 {
		return nil, skipped, notSeries(name, "no key with a usable series")
	}
	return out, skipped, nil
}

// A grid may hold at most maxGridRatio points per row (plus some slack):
// sparser than that, the step is wrong for the file or a timestamp is
// garbage, and building the grid would only waste memory.
const (
	maxGridRatio = 20
	maxGridSlack = 1000
)

// table reads rows of fields (without a header) with the given column
// names; timeCol is the time column or -1. A lone series is named name
// unless suffix is set; otherwise series are "name:column".
func table(name string, cols []string, body [][]string, timeCol int, step time.Duration, suffix bool) ([]Series, int, error) {
	// Parse cells.
	nrow := len(body)
	vals := make([][]float64, len(cols))
	valid := make([]int, len(cols))
	for c := range vals {
		vals[c] = make([]float64, nrow)
	}
	times := make([]float64, nrow) // seconds
	var absolute bool
	timeOK := make([]bool, nrow)
	for i, f := range body {
		if timeCol >= 0 {
			if timeCol < len(f) {
				if t, ok := parseDateTime(f[timeCol]); ok {
					times[i], timeOK[i], absolute = float64(t.UnixNano())/1e9, true, true
				} else if v, ok := parseNumber(f[timeCol]); ok {
					times[i], timeOK[i] = v, true
				}
			}
		}
		for c := range cols {
			if c == timeCol {
				continue
			}
			vals[c][i] = math.NaN()
			if c < len(f) {
				if v, ok := parseNumber(f[c]); ok {
					vals[c][i] = v
					valid[c]++
				}
			}
		}
	}

	// Numeric columns: at least half their cells parse.
	var series []int
	for c := range cols {
		if c != timeCol && valid[c]*2 >= nrow && valid[c] > 0 {
			series = append(series, c)
		}
	}
	if len(series) == 0 {
		return nil, 0, notSeries(name, "no numeric column")
	}

	// Count skipped rows: a bad time skips the row; otherwise a row with a
	// bad cell in a series column counts once.
	skipped := 0
	keep := make([]bool, nrow)
	for i := range body {
		if timeCol >= 0 && !timeOK[i] {
			skipped++
			continue
		}
		keep[i] = true
		for _, c := range series {
			if math.IsNaN(vals[c][i]) {
				skipped++
				break
			}
		}
	}

	// Grid.
	idx := make([]int, nrow)
	var start time.Time
	size := 0
	if timeCol >= 0 {
		numericTimes := !absolute
		t0, t1 := math.Inf(1), math.Inf(-1)
		for i := range body {
			if keep[i] {
				t := times[i]
				if numericTimes {
					t = numericSeconds(t)
				}
				times[i] = t
				t0, t1 = math.Min(t0, t), math.Max(t1, t)
			}
		}
		if math.IsInf(t0, 1) {
			return nil, skipped, notSeries(name, "no row with a valid time")
		}
		stepS := step.Seconds()
		// Check the span before converting to grid indices, which a wild
		// timestamp would overflow.
		if span := (t1 - t0) / stepS; span+1 > float64(maxGridRatio*nrow+maxGridSlack) {
			return nil, skipped, notSeries(name, fmt.Sprintf("times span %.0f steps of %s for %d rows: wrong -step or bad timestamps", span+1, step, nrow))
		}
		for i := range body {
			if keep[i] {
				idx[i] = int(math.Round((times[i] - t0) / stepS))
				size = max(size, idx[i]+1)
			}
		}
		if absolute || t0 > 1e8 {
			sec, frac := math.Modf(t0)
			start = time.Unix(int64(sec), int64(frac*1e9)).UTC()
		}
	} else {
		for i := range body {
			idx[i] = i
		}
		size = nrow
	}

	out := make([]Series, 0, len(series))
	for _, c := range series {
		sum := make([]float64, size)
		cnt := make([]int, size)
		for i := range body {
			if !keep[i] || math.IsNaN(vals[c][i]) {
				continue
			}
			sum[idx[i]] += vals[c][i]
			cnt[idx[i]]++
		}
		v := make([]float64, size)
		for j := range v {
			if cnt[j] == 0 {
				v[j] = math.NaN()
			} else {
				v[j] = sum[j] / float64(cnt[j])
			}
		}
		n := name
		if len(series) > 1 || suffix {
			n = name + ":" + cols[c]
		}
		out = append(out, Series{Name: n, Start: start, Step: step, Values: v})
	}
	return out, skipped, nil
}

// numericSeconds turns a numeric time into seconds: Unix milliseconds
// above 1e11, otherwise seconds (Unix or from the trace's start).
func numericSeconds(t float64) float64 {
	if t > 1e11 {
		return t / 1000
	}
	return t
}

// readLines returns the file's lines without leading and trailing blank
// lines; blank lines in between are kept (they are missing rows).
func readLines(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var out []string
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if len(out) == 0 {
			line = strings.TrimPrefix(line, "\ufeff") // byte order mark
		}
		if len(out) == 0 && strings.TrimSpace(line) == "" {
			continue
		}
		out = append(out, line)
	}
	for len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
		out = out[:len(out)-1]
	}
	return out, sc.Err()
}

// detectSeparator picks ';' when the line has one, else ',', else a tab,
// else none (one value per line).
func detectSeparator(line string) string {
	switch {
	case strings.Contains(line, ";"):
		return ";"
	case strings.Contains(line, ","):
		return ","
	case strings.Contains(line, "\t"):
		return "\t"
	}
	return ""
}

// splitFields splits a line and trims spaces, tabs and quotes.
func splitFields(line, sep string) []string {
	var f []string
	if sep == "" {
		f = []string{line}
	} else {
		f = strings.Split(line, sep)
	}
	for i := range f {
		f[i] = strings.Trim(strings.TrimSpace(f[i]), `"'`)
	}
	return f
}

// isHeader: the first line is a header when one of its fields is text
// (neither number nor date-time) and the same column of the second line is
// not, or when there is no second line and the first has text.
func isHeader(first, second []string) bool {
	for i, f := range first {
		if !isText(f) {
			continue
		}
		if second == nil || i >= len(second) || !isText(second[i]) {
			return true
		}
	}
	return false
}

func isTimeName(c string) bool {
	c = strings.ToLower(strings.TrimSpace(c))
	for _, p := range []string{"timestamp", "time", "date", "datetime", "ts"} {
		if c == p || strings.HasPrefix(c, p+" ") || strings.HasPrefix(c, p+"_") || strings.HasPrefix(c, p+"[") {
			return true
		}
	}
	return false
}

// parseNumber accepts finite numbers only.
func parseNumber(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

var dateLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	time.RFC3339Nano,
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006/01/02 15:04:05",
	"2006-01-02",
}

// parseDateTime parses the date-time forms found in traces, as UTC when no
// zone is given.
func parseDateTime(s string) (time.Time, bool) {
	if len(s) < 10 || s[4] != '-' && s[4] != '/' {
		return time.Time{}, false
	}
	for _, l := range dateLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
