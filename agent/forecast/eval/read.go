package eval

import (
	"bufio"
	"bytes"
	"context"
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
		if err != nil {
			d.SkippedFiles = append(d.SkippedFiles, rel+": "+err.Error())
			continue
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
//     "name:cN" (N from 1), row i at i·step.
//
// Headerless files with a text column (for example Alibaba's raw
// machine_usage.csv, keyed by machine id with irregular times) are not a
// single table of series and are rejected with an error.
//
// Timed samples are put on the step grid from the earliest time: a sample
// goes to the nearest grid point, several samples on one point are
// averaged, and grid points without a sample are NaN.
func ReadFile(name string, r io.Reader, step time.Duration) ([]Series, int, error) {
	if step <= 0 {
		return nil, 0, fmt.Errorf("eval: %s: step must be positive", name)
	}
	lines, err := readLines(r)
	if err != nil {
		return nil, 0, fmt.Errorf("eval: %s: %w", name, err)
	}
	if len(lines) == 0 {
		return nil, 0, fmt.Errorf("eval: %s: no rows", name)
	}
	sep := detectSeparator(lines[0])
	first := splitFields(lines[0], sep)
	var second []string
	if len(lines) > 1 {
		second = splitFields(lines[1], sep)
	}
	header := isHeader(first, second)

	var cols []string
	body := lines
	if header {
		cols = first
		body = lines[1:]
	} else {
		for _, f := range first {
			if _, ok := parseNumber(f); !ok {
				if _, ok := parseDateTime(f); !ok {
					return nil, 0, fmt.Errorf("eval: %s: headerless file with a text column %q: not a table of series", name, f)
				}
			}
		}
		for i := range first {
			cols = append(cols, "c"+strconv.Itoa(i+1))
		}
	}

	timeCol := -1
	if header {
		for i, c := range cols {
			if isTimeName(c) {
				timeCol = i
				break
			}
		}
	} else if len(cols) > 1 {
		// A headerless first column of date-times is a time axis.
		if _, ok := parseDateTime(first[0]); ok {
			timeCol = 0
		}
	}

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
	for i, line := range body {
		f := splitFields(line, sep)
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
		return nil, 0, fmt.Errorf("eval: %s: no numeric column", name)
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
		t0 := math.Inf(1)
		for i := range body {
			if keep[i] {
				t := times[i]
				if numericTimes {
					t = numericSeconds(t)
				}
				times[i] = t
				t0 = math.Min(t0, t)
			}
		}
		if math.IsInf(t0, 1) {
			return nil, skipped, fmt.Errorf("eval: %s: no row with a valid time", name)
		}
		stepS := step.Seconds()
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
		if len(series) > 1 {
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
	text := func(s string) bool {
		if _, ok := parseNumber(s); ok {
			return false
		}
		if _, ok := parseDateTime(s); ok {
			return false
		}
		return s != ""
	}
	for i, f := range first {
		if !text(f) {
			continue
		}
		if second == nil || i >= len(second) || !text(second[i]) {
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
