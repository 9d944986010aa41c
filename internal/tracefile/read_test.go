package tracefile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/traces"
)

var nan = math.NaN()

// sameValues compares series values, NaN equal to NaN.
func sameValues(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.IsNaN(a[i]) != math.IsNaN(b[i]) || (!math.IsNaN(a[i]) && math.Abs(a[i]-b[i]) > 1e-9) {
			return false
		}
	}
	return true
}

func TestReadFileFormats(t *testing.T) {
	type want struct {
		name   string
		values []float64
	}
	cases := []struct {
		name    string
		file    string // under testdata/traces
		text    string // used when file is empty
		step    time.Duration
		want    []want
		skipped int
		start   time.Time
	}{
		{
			// Irregular NAB file: a sample one minute late is averaged into
			// its grid point, 15:04:10 rounds to 15:05, the empty, the
			// non-numeric and the badly timed rows are skipped and counted,
			// gaps are NaN.
			name: "NAB timestamp,value", file: "nab/data/irregular.csv", step: 5 * time.Minute,
			want:    []want{{"x", []float64{1, 2, nan, nan, 6, nan, 9, 10}}},
			skipped: 3,
			start:   time.Date(2014, 2, 14, 14, 30, 0, 0, time.UTC),
		},
		{
			// Bitbrains: ";\t" separators, Unix seconds despite "[ms]", one
			// series per numeric column, a missing cell counted once.
			name: "Bitbrains semicolon-tab", file: "bitbrains/7.csv", step: 5 * time.Minute,
			want: []want{
				{"x:CPU cores", []float64{2, 2, 2, 2}},
				{"x:CPU usage [%]", []float64{0.6, 1.2, nan, 2.4}},
				{"x:Memory usage [KB]", []float64{152391.5, 138411.2, 140000, 141000}},
			},
			skipped: 1,
			start:   time.Unix(1375308176, 0).UTC(),
		},
		{
			// Azure: seconds from trace start (no absolute start), a missing
			// step, no trailing newline.
			name: "Azure seconds from start", file: "aggregates/azure.csv", step: 5 * time.Minute,
			want: []want{
				{"x:cpu_usage", []float64{10.5, 11.5, 12.5, nan, 14.5}},
				{"x:assigned_mem", []float64{100, 101, 102, nan, 104}},
			},
		},
		{
			name: "Google no time column", file: "aggregates/google.csv", step: 5 * time.Minute,
			want: []want{
				{"x:avg_cpu", []float64{0.1, 0.2, 0.3}},
				{"x:avg_mem", []float64{0.5, 0.6, 0.7}},
			},
		},
		{
			// PlanetLab: one value per line; a blank line inside the file is
			// a missing value (counted), the trailing newline is not.
			name: "PlanetLab one value per line", file: "planetlab/host_slice", step: 5 * time.Minute,
			want:    []want{{"x", []float64{12, 0, 7, nan, 9}}},
			skipped: 1,
		},
		{
			name: "headerless numeric columns", file: "aggregates/headerless_multi.csv", step: 5 * time.Minute,
			want: []want{{"x:c1", []float64{1, 4}}, {"x:c2", []float64{2, 5}}, {"x:c3", []float64{3, 6}}},
		},
		{
			// Alibaba raw machine_usage: machine id, seconds from trace
			// start, metrics; rows grouped by machine, irregular times. The
			// two mostly empty columns are not series; a bad cell in the
			// last column is counted once.
			name: "keyed headerless (Alibaba machine_usage)", file: "machine_usage.csv", step: 5 * time.Minute,
			want: []want{
				{"x:m_1:c3", []float64{42, 45, 47}},
				{"x:m_1:c4", []float64{92, 93, 94}},
				{"x:m_1:c7", []float64{43.04, 44, 45}},
				{"x:m_1:c8", []float64{33.08, 34, 35}},
				{"x:m_1:c9", []float64{5, nan, 7}},
				{"x:m_2:c3", []float64{10, 12}},
				{"x:m_2:c4", []float64{50, 51}},
				{"x:m_2:c7", []float64{1, 1}},
				{"x:m_2:c8", []float64{2, 2}},
				{"x:m_2:c9", []float64{3, 3}},
			},
			skipped: 1,
		},
		{
			name: "semicolon CSV with date-times", step: time.Hour,
			text: "time; a; b\r\n2020-01-01 00:00:00; 1; x\r\n2020-01-01 01:00:00; NaN; y\r\n2020-01-01 03:00:00; 3; z\r\n",
			// Column b is text: not a series. NaN is not a valid value.
			want:    []want{{"x", []float64{1, nan, nan, 3}}},
			skipped: 1,
			start:   time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		},
		{
			name: "byte order mark before the header", step: time.Minute,
			text:  "\ufefftimestamp,v\n2020-01-01 00:00:00,1\n2020-01-01 00:01:00,2\n",
			want:  []want{{"x", []float64{1, 2}}},
			start: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		},
		{
			name: "Unix milliseconds", step: time.Minute,
			text:  "timestamp,v\n1600000000000,1\n1600000060000,2\n",
			want:  []want{{"x", []float64{1, 2}}},
			start: time.UnixMilli(1600000000000).UTC(),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.text
			if tc.file != "" {
				b, err := os.ReadFile("testdata/traces/" + tc.file)
				if err != nil {
					t.Fatal(err)
				}
				text = string(b)
			}
			got, skipped, err := ReadFile("x", strings.NewReader(text), tc.step)
			if err != nil {
				t.Fatal(err)
			}
			if skipped != tc.skipped {
				t.Errorf("skipped %d rows, want %d", skipped, tc.skipped)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d series, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				if got[i].Name != w.name || !sameValues(got[i].Values, w.values) {
					t.Errorf("series %d = %q %v, want %q %v", i, got[i].Name, got[i].Values, w.name, w.values)
				}
				if !got[i].Start.Equal(tc.start) {
					t.Errorf("series %d start %v, want %v", i, got[i].Start, tc.start)
				}
				if got[i].Step != tc.step {
					t.Errorf("series %d step %v", i, got[i].Step)
				}
			}
		})
	}
}

func TestReadFileRejects(t *testing.T) {
	for name, text := range map[string]string{
		"headerless text column":  "m_1,0,219,USING\nm_1,148984,219,USING\n",
		"headerless text not key": "1,abc\n2,def\n",
		"only a header":           "timestamp,value\n",
		"no numeric column":       "a,b\nx,y\nz,w\n",
		"no valid time":           "timestamp,value\nnope,1\nnever,2\n",
		"a timestamp far off":     "timestamp,value\n2014-02-14 14:30:00,1\n2114-02-14 14:30:00,2\n",
	} {
		t.Run(name, func(t *testing.T) {
			s, _, err := ReadFile("x", strings.NewReader(text), time.Minute)
			var ns *NotSeriesError
			if !errors.As(err, &ns) {
				t.Errorf("got %+v, %v; want a NotSeriesError", s, err)
			}
		})
	}
	if _, _, err := ReadFile("x", strings.NewReader("1\n"), 0); err == nil {
		t.Error("zero step accepted")
	}
}

func TestReadDir(t *testing.T) {
	d, err := ReadDir(context.Background(), os.DirFS("testdata/traces"), ".", "traces", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if d.Files != 7 {
		t.Errorf("read %d files, want 7", d.Files)
	}
	if d.SkippedRows != 6 {
		t.Errorf("skipped rows %d, want 6 (3 nab + 1 bitbrains + 1 planetlab + 1 machine_usage)", d.SkippedRows)
	}
	if len(d.SkippedFiles) != 2 || !strings.HasPrefix(d.SkippedFiles[0], "README.md") || !strings.HasPrefix(d.SkippedFiles[1], "machine_meta.csv") {
		t.Errorf("skipped files %q, want README.md and machine_meta.csv", d.SkippedFiles)
	}
	folders := map[string]int{}
	names := map[string]bool{}
	for _, s := range d.Series {
		folders[s.Folder]++
		names[s.Name] = true
	}
	// machine_usage.csv sits at the top: its folder is the base name.
	wantFolders := map[string]int{"nab": 1, "bitbrains": 3, "aggregates": 2 + 2 + 3, "planetlab": 1, "traces": 10}
	for f, n := range wantFolders {
		if folders[f] != n {
			t.Errorf("folder %s has %d series, want %d (all: %v)", f, folders[f], n, folders)
		}
	}
	for _, n := range []string{"traces/nab/data/irregular.csv", "traces/bitbrains/7.csv:CPU usage [%]", "traces/planetlab/host_slice"} {
		if !names[n] {
			t.Errorf("no series %q", n)
		}
	}

	// One data set alone is one folder named after the directory.
	d, err = ReadDir(context.Background(), os.DirFS("testdata/traces/nab"), ".", "nab", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Series) != 1 || d.Series[0].Folder != "nab" || d.Series[0].File != "data/irregular.csv" {
		t.Errorf("nab alone: %+v", d.Series)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadDir(ctx, os.DirFS("testdata/traces"), ".", "traces", 5*time.Minute); err == nil {
		t.Error("cancelled read succeeded")
	}
}

// TestReadBundledTraces reads the real samples embedded in the traces
// package: NAB, PlanetLab and the datacenter aggregates.
func TestReadBundledTraces(t *testing.T) {
	for _, tc := range []struct {
		root      string
		minSeries int
		minLen    int
	}{
		{"nab", 7, 1000},
		{"planetlab", 20, 288},
		{"datacenter", 4, 2000},
	} {
		t.Run(tc.root, func(t *testing.T) {
			d, err := ReadDir(context.Background(), traces.FS(), tc.root, tc.root, 5*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Series) < tc.minSeries {
				t.Fatalf("%d series, want at least %d (skipped files %v)", len(d.Series), tc.minSeries, d.SkippedFiles)
			}
			if d.SkippedRows != 0 {
				t.Errorf("%d skipped rows in clean samples", d.SkippedRows)
			}
			for _, s := range d.Series {
				if len(s.Values) < tc.minLen {
					t.Errorf("%s: %d points, want at least %d", s.Name, len(s.Values), tc.minLen)
				}
				var nans int
				for _, v := range s.Values {
					if math.IsNaN(v) {
						nans++
					}
				}
				if nans*100 > len(s.Values) {
					t.Errorf("%s: %d of %d points missing", s.Name, nans, len(s.Values))
				}
			}
		})
	}
	// The NAB sample keeps its timestamps.
	b, err := fs.ReadFile(traces.FS(), "nab/data/realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv")
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := ReadFile("x", strings.NewReader(string(b)), 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if s[0].Start.IsZero() || s[0].Start.Year() != 2014 {
		t.Errorf("start %v, want a 2014 time", s[0].Start)
	}
}

// FuzzReadFile: whatever the bytes, ReadFile returns either series or an
// error, never panics, and what it returns is well formed.
func FuzzReadFile(f *testing.F) {
	for _, p := range []string{"nab/data/irregular.csv", "bitbrains/7.csv", "aggregates/azure.csv", "aggregates/google.csv",
		"aggregates/headerless_multi.csv", "planetlab/host_slice", "machine_usage.csv", "machine_meta.csv"} {
		b, err := os.ReadFile("testdata/traces/" + p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("timestamp,value\n2014-01-01 00:00:00,1\n2013-12-31 23:55:00,2\n"))
	f.Add([]byte(";;;\n;;;\n"))
	f.Add([]byte("\ufeff1\n\n\n2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		series, skipped, err := ReadFile("x", bytes.NewReader(b), 5*time.Minute)
		if err != nil {
			var ns *NotSeriesError
			if !errors.As(err, &ns) {
				t.Fatalf("error of an unexpected kind: %v", err)
			}
			return
		}
		if skipped < 0 || len(series) == 0 {
			t.Fatalf("%d series, %d skipped", len(series), skipped)
		}
		rows := bytes.Count(b, []byte("\n")) + 1
		for _, s := range series {
			if s.Name == "" || s.Step != 5*time.Minute || len(s.Values) == 0 {
				t.Fatalf("malformed series %+v", s)
			}
			if len(s.Values) > maxGridRatio*rows+maxGridSlack {
				t.Fatalf("grid of %d points for %d lines", len(s.Values), rows)
			}
			for _, v := range s.Values {
				if math.IsInf(v, 0) {
					t.Fatalf("infinite value in %s", s.Name)
				}
			}
		}
	})
}

// TestSeparatorFromConsistentFields: the separator is the one that splits
// every line alike, whichever characters a column name holds.
func TestSeparatorFromConsistentFields(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
		values     [][]float64
	}{
		{
			name:   "comma file with semicolons in its names",
			text:   "timestamp,cpu;user,cpu;system\n2020-01-01 00:00:00,1,2\n2020-01-01 00:05:00,3,4\n",
			want:   []string{"x:cpu;user", "x:cpu;system"},
			values: [][]float64{{1, 3}, {2, 4}},
		},
		{
			name:   "semicolon-tab file with a comma in a name",
			text:   "Timestamp [ms];\tCPU usage [%];\tNetwork, received [KB/s]\n1375308176;\t1.5;\t3\n1375308476;\t2.5;\t4\n",
			want:   []string{"x:CPU usage [%]", "x:Network, received [KB/s]"},
			values: [][]float64{{1.5, 2.5}, {3, 4}},
		},
		{
			name:   "tab-separated",
			text:   "a\tb\n1\t2\n3\t4\n",
			want:   []string{"x:a", "x:b"},
			values: [][]float64{{1, 3}, {2, 4}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := ReadFile("x", strings.NewReader(tc.text), 5*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d series %+v, want %v", len(got), got, tc.want)
			}
			for i := range got {
				if got[i].Name != tc.want[i] || !sameValues(got[i].Values, tc.values[i]) {
					t.Errorf("series %d = %q %v, want %q %v", i, got[i].Name, got[i].Values, tc.want[i], tc.values[i])
				}
			}
		})
	}
}

func TestReadTable(t *testing.T) {
	b, err := os.ReadFile("testdata/traces/bitbrains/7.csv")
	if err != nil {
		t.Fatal(err)
	}
	tb, err := ReadTable("x", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !tb.Header || tb.Absolute || len(tb.Times) != 4 || tb.Times[0] != 1375308176 || tb.Lines[0] != 2 || tb.Skipped != 1 {
		t.Errorf("table %+v", tb)
	}
	var names []string
	for _, c := range tb.Columns {
		names = append(names, fmt.Sprintf("%d:%s", c.Index, c.Name))
	}
	if got := strings.Join(names, ","); got != "1:CPU cores,2:CPU usage [%],3:Memory usage [KB]" {
		t.Errorf("columns %s", got)
	}
	if v := tb.Columns[1].Values; !sameValues(v, []float64{0.6, 1.2, nan, 2.4}) {
		t.Errorf("CPU usage %v", v)
	}

	// Row order, blank lines are rows with missing values.
	tb, err = ReadTable("x", strings.NewReader("\n\n10\n20\n\n30\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tb.Header || len(tb.Columns) != 1 || !sameValues(tb.Columns[0].Values, []float64{10, 20, nan, 30}) || tb.Lines[0] != 3 || tb.Lines[3] != 6 {
		t.Errorf("one value per line: %+v", tb)
	}

	// Keyed files hold one series per key: not a table.
	b, err = os.ReadFile("testdata/traces/machine_usage.csv")
	if err != nil {
		t.Fatal(err)
	}
	var ns *NotSeriesError
	if _, err := ReadTable("x", bytes.NewReader(b)); !errors.As(err, &ns) {
		t.Errorf("keyed file: err %v, want a NotSeriesError", err)
	}
}
