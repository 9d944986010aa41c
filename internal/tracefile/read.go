// Package tracefile reads utilisation trace files in the formats of the
// public data sets foreshape is built and measured on (NAB, Bitbrains,
// PlanetLab, Alibaba, the Google and Azure cluster aggregates) and of
// files operators record: one reader for the evaluation commands, the
// replay source and the simulator, so that they agree on what a file says.
//
// ReadFile and ReadDir put each series on a regular time grid (gaps are
// missing values); ReadTable gives a file's numeric columns in row order,
// for readers that take samples one step apart whatever their timestamps
// say (the simulator).
//
// It reads only what its caller hands it (an io.Reader or an fs.FS),
// never writes, and never logs.
package tracefile

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
	// Path is the file's path with the data directory's name first
	// (ReadDir's base), the name without a column.
	Path string
	// Column is the column the series was read from: its header name, or
	// "cN" (N from 1) in a headerless file.
	Column string
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
		return Data{}, fmt.Errorf("tracefile: read %s: %w", base, err)
	}
	sort.Strings(paths)
	tops := map[string]bool{}
	for _, p := range paths {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return Data{}, fmt.Errorf("tracefile: read %s: %w", p, err)
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
			series[i].Path = path.Join(base, rel)
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
		return nil, 0, fmt.Errorf("tracefile: %s: step must be positive", name)
	}
	f, err := parse(name, r)
	if err != nil {
		return nil, 0, err
	}
	if f.keyed {
		return keyed(name, f.cols, f.rows, step)
	}
	t, err := cells(name, f.cols, f.rows, f.timeCol)
	if err != nil {
		return nil, t.Skipped, err
	}
	out, err := grid(name, t, step, false)
	return out, t.Skipped, err
}

// Table is a trace file's numeric columns in row order, before they are
// put on a time grid: what ReadTable returns.
type Table struct {
	// Header is true when the file's first line names its columns.
	Header bool
	// Columns are the numeric columns (at least half their cells are
	// numbers), in file order, without the time column.
	Columns []Column
	// Times holds each row's time in seconds (Unix seconds when Absolute,
	// else from the trace's start; NaN when the row's time is invalid),
	// or nil when the file has no time column.
	Times    []float64
	Absolute bool
	// Lines holds each row's line number in the file, from 1.
	Lines []int
	// Skipped counts rows with a missing or invalid time or a missing or
	// invalid cell in a numeric column.
	Skipped int
}

// Column is one numeric column of a Table.
type Column struct {
	// Name is the header name, or "cN" (N from 1) without a header.
	Name string
	// Index is the column's position in the file, from 0.
	Index int
	// Values holds one value per row; NaN where the cell is missing or not
	// a finite number.
	Values []float64
}

// ReadTable reads one trace file's numeric columns in row order, with the
// same format detection as ReadFile. Files of rows keyed by a machine id
// hold several series per column and are refused (read them with
// ReadFile).
func ReadTable(name string, r io.Reader) (Table, error) {
	f, err := parse(name, r)
	if err != nil {
		return Table{}, err
	}
	if f.keyed {
		return Table{}, notSeries(name, "rows keyed by a text id hold one series per key: not a single table")
	}
	t, err := cells(name, f.cols, f.rows, f.timeCol)
	t.Header = f.header
	return t, err
}

// parsed is a file split into fields, with its shape recognised.
type parsed struct {
	header  bool
	keyed   bool
	cols    []string
	rows    []row
	timeCol int
}

// row is one line's fields and its line number.
type row struct {
	fields []string
	line   int
}

// parse splits a file into rows of fields and recognises its shape:
// header, keyed or plain, and its time column.
func parse(name string, r io.Reader) (parsed, error) {
	lines, first, err := readLines(r)
	if err != nil {
		return parsed{}, notSeries(name, err.Error())
	}
	if len(lines) == 0 {
		return parsed{}, notSeries(name, "no rows")
	}
	sep := detectSeparator(lines)
	rows := make([]row, len(lines))
	for i, l := range lines {
		rows[i] = row{fields: splitFields(l, sep), line: first + i}
	}
	var second []string
	if len(rows) > 1 {
		second = rows[1].fields
	}
	head := rows[0].fields
	if isHeader(head, second) {
		p := parsed{header: true, cols: head, rows: rows[1:], timeCol: -1}
		for i, c := range head {
			if isTimeName(c) {
				p.timeCol = i
				break
			}
		}
		return p, nil
	}
	p := parsed{cols: make([]string, len(head)), rows: rows, timeCol: -1}
	for i := range head {
		p.cols[i] = "c" + strconv.Itoa(i+1)
	}
	if isKeyed(head, second) {
		p.keyed = true
		return p, nil
	}
	for _, f := range head {
		if isText(f) {
			return parsed{}, notSeries(name, fmt.Sprintf("headerless file with a text column %q: not a table of series", f))
		}
	}
	if len(p.cols) > 1 {
		// A headerless first column of date-times is a time axis.
		if _, ok := parseDateTime(head[0]); ok {
			p.timeCol = 0
		}
	}
	return p, nil
}

// NotSeriesError says a file is readable but holds no series this package
// can read; ReadDir lists such files instead of failing.
type NotSeriesError struct {
	File   string
	Reason string
}

func (e *NotSeriesError) Error() string { return "tracefile: " + e.File + ": " + e.Reason }

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
func keyed(name string, cols []string, rows []row, step time.Duration) ([]Series, int, error) {
	var order []string
	groups := map[string][]row{}
	for _, r := range rows {
		k := r.fields[0]
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], row{fields: r.fields[1:], line: r.line})
	}
	var out []Series
	skipped := 0
	for _, k := range order {
		t, err := cells(name+":"+k, cols[1:], groups[k], 0)
		if err == nil {
			var ss []Series
			ss, err = grid(name+":"+k, t, step, true)
			out = append(out, ss...)
		}
		skipped += t.Skipped
		if err != nil {
			// A key with no usable rows: its rows are skipped, not fatal.
			skipped += len(groups[k]) - t.Skipped
		}
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

// cells parses rows of fields (without a header) with the given column
// names; timeCol is the time column or -1.
func cells(name string, cols []string, body []row, timeCol int) (Table, error) {
	nrow := len(body)
	t := Table{Lines: make([]int, nrow)}
	vals := make([][]float64, len(cols))
	valid := make([]int, len(cols))
	for c := range vals {
		vals[c] = make([]float64, nrow)
	}
	if timeCol >= 0 {
		t.Times = make([]float64, nrow)
	}
	for i, r := range body {
		t.Lines[i] = r.line
		f := r.fields
		if timeCol >= 0 {
			t.Times[i] = math.NaN()
			if timeCol < len(f) {
				if tm, ok := parseDateTime(f[timeCol]); ok {
					t.Times[i], t.Absolute = float64(tm.UnixNano())/1e9, true
				} else if v, ok := parseNumber(f[timeCol]); ok {
					t.Times[i] = v
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
	if timeCol >= 0 && !t.Absolute {
		for i, v := range t.Times {
			t.Times[i] = numericSeconds(v)
		}
	}

	// Numeric columns: at least half their cells parse.
	for c := range cols {
		if c != timeCol && valid[c]*2 >= nrow && valid[c] > 0 {
			t.Columns = append(t.Columns, Column{Name: cols[c], Index: c, Values: vals[c]})
		}
	}
	if len(t.Columns) == 0 {
		return t, notSeries(name, "no numeric column")
	}

	// Count skipped rows: a bad time skips the row; otherwise a row with a
	// bad cell in a numeric column counts once.
	for i := range body {
		if t.Times != nil && math.IsNaN(t.Times[i]) {
			t.Skipped++
			continue
		}
		for _, c := range t.Columns {
			if math.IsNaN(c.Values[i]) {
				t.Skipped++
				break
			}
		}
	}
	return t, nil
}

// grid puts a table's columns on the step grid from the earliest time. A
// lone series is named name unless suffix is set; otherwise series are
// "name:column".
func grid(name string, t Table, step time.Duration, suffix bool) ([]Series, error) {
	nrow := len(t.Lines)
	keep := make([]bool, nrow)
	idx := make([]int, nrow)
	var start time.Time
	size := 0
	if t.Times != nil {
		t0, t1 := math.Inf(1), math.Inf(-1)
		for i, v := range t.Times {
			if !math.IsNaN(v) {
				keep[i] = true
				t0, t1 = math.Min(t0, v), math.Max(t1, v)
			}
		}
		if math.IsInf(t0, 1) {
			return nil, notSeries(name, "no row with a valid time")
		}
		stepS := step.Seconds()
		// Check the span before converting to grid indices, which a wild
		// timestamp would overflow.
		if span := (t1 - t0) / stepS; span+1 > float64(maxGridRatio*nrow+maxGridSlack) {
			return nil, notSeries(name, fmt.Sprintf("times span %.0f steps of %s for %d rows: wrong -step or bad timestamps", span+1, step, nrow))
		}
		for i, v := range t.Times {
			if keep[i] {
				idx[i] = int(math.Round((v - t0) / stepS))
				size = max(size, idx[i]+1)
			}
		}
		if t.Absolute || t0 > 1e8 {
			sec, frac := math.Modf(t0)
			start = time.Unix(int64(sec), int64(frac*1e9)).UTC()
		}
	} else {
		for i := range keep {
			keep[i], idx[i] = true, i
		}
		size = nrow
	}

	out := make([]Series, 0, len(t.Columns))
	for _, c := range t.Columns {
		sum := make([]float64, size)
		cnt := make([]int, size)
		for i, v := range c.Values {
			if !keep[i] || math.IsNaN(v) {
				continue
			}
			sum[idx[i]] += v
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
		if len(t.Columns) > 1 || suffix {
			n = name + ":" + c.Name
		}
		out = append(out, Series{Name: n, Column: c.Name, Start: start, Step: step, Values: v})
	}
	return out, nil
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
// lines (blank lines in between are kept: they are missing rows) and the
// line number of the first line returned.
func readLines(r io.Reader) ([]string, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var out []string
	first, n := 1, 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // byte order mark
		}
		if len(out) == 0 && strings.TrimSpace(line) == "" {
			first = n + 1
			continue
		}
		out = append(out, line)
	}
	for len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
		out = out[:len(out)-1]
	}
	return out, first, sc.Err()
}

// separators are the field separators a trace may use, in order of
// preference when several fit equally well.
var separators = []string{",", ";", "\t"}

// sniffLines is how many leading non-blank lines detectSeparator looks at.
const sniffLines = 8

// detectSeparator picks the separator that splits the first lines of the
// file into the same number of fields each, the most fields winning (ties
// in the order of separators), so that a separator character inside a
// column name or a value ("cpu;user" in a comma file, "Network, received"
// in a semicolon file) does not decide. When none is consistent, the one
// that appears most often in the first line; none at all means one value
// per line.
func detectSeparator(lines []string) string {
	var sample []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			sample = append(sample, l)
			if len(sample) == sniffLines {
				break
			}
		}
	}
	best, bestCount := "", 0
	for _, sep := range separators {
		n := strings.Count(sample[0], sep)
		if n == 0 {
			continue
		}
		consistent := true
		for _, l := range sample[1:] {
			if strings.Count(l, sep) != n {
				consistent = false
				break
			}
		}
		if consistent && n > bestCount {
			best, bestCount = sep, n
		}
	}
	if best != "" {
		return best
	}
	for _, sep := range separators {
		if n := strings.Count(sample[0], sep); n > bestCount {
			best, bestCount = sep, n
		}
	}
	return best
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
