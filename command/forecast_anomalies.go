package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/cli"

	"github.com/foreshape/foreshape/agent/forecast/anomaly"
	"github.com/foreshape/foreshape/agent/forecast/nab"
	"github.com/foreshape/foreshape/internal/tracefile"
)

func init() {
	register("forecast anomalies", func(m Meta) cli.Command { return &ForecastAnomaliesCommand{Meta: m} })
}

// ForecastAnomaliesCommand runs the online anomaly detector over trace files
// and, with NAB labels, scores it the way NAB does.
type ForecastAnomaliesCommand struct{ Meta }

func (c *ForecastAnomaliesCommand) Synopsis() string {
	return "Detect anomalies in trace files and score the detector on NAB labels"
}

func (c *ForecastAnomaliesCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape forecast anomalies -data DIR [options]

  Runs foreshape's online anomaly detector (the one the agent uses to keep
  anomalous samples out of model fitting) over every trace file under DIR,
  point by point without look-ahead, and prints the events it finds: start,
  end, kind (spike or level_shift) and peak score.

  With -labels (NAB's combined_windows.json), the series named in the labels
  are also scored with NAB's scoring: anomaly windows, scaled sigmoid
  rewards, the three cost profiles with the threshold optimised per
  profile, normalised so the null detector scores 0 and a perfect one 100.
  SCORE uses the best threshold over every distinct anomaly score;
  HILL_CLIMB the threshold NAB's own runner would reach by hill climbing
  from 0.5, which can stop on a plateau.
  When NAB's results/final_results.json sits beside the labels directory,
  the published scores of NAB's detectors are shown alongside.

Options:

  -data=DIR        Trace directory (read like 'forecast eval' does).
  -labels=FILE     NAB combined_windows.json; series are matched to its keys
                   by path suffix.
  -profiles=FILE   NAB profiles.json. Default: config/profiles.json beside
                   the labels directory, else NAB's published profiles.
  -step=DUR        Sampling interval of the traces. Default: 5m.
  -threshold=Z     Robust z above which a point is anomalous (and kept out of
                   model fitting by the agent). Default: 5.
  -max-p=P         Print only events at least as rare as P: their smallest
                   p-value, calibrated on the series' own history, is at
                   most P (0.01: more unusual than 99% of what the series
                   did before). Default: 0.01. 1 prints every event. NAB
                   scoring is not affected.
  -format=FORMAT   table or json. Default: table.

Example:

  $ foreshape forecast anomalies -data ../shared/data/nab \
      -labels ../shared/data/nab/labels/combined_windows.json
`)
}

// anomalyEventOut is one event as printed.
type anomalyEventOut struct {
	Series string  `json:"series"`
	Start  string  `json:"start"`
	End    string  `json:"end"`
	Kind   string  `json:"kind"`
	Score  float64 `json:"score"`
	P      float64 `json:"p"`
	Z      float64 `json:"z"`
}

// nabScoreOut is one profile's NAB score.
type nabScoreOut struct {
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
	Raw       float64 `json:"raw"`
	TP        int     `json:"tp"`
	FP        int     `json:"fp"`
	FN        int     `json:"fn"`
	// HillClimb is the score with the threshold NAB's runner would find by
	// hill climbing from 0.5; Score sweeps every threshold and is never
	// lower.
	HillClimb float64 `json:"hill_climb_score"`
	// Files holds each labelled file's raw score at the threshold: its
	// windows' rewards (+1 at best each) less missed windows and false
	// positives.
	Files map[string]float64 `json:"files"`
}

type anomaliesOut struct {
	Series    int                           `json:"series"`
	Events    []anomalyEventOut             `json:"events"`
	NAB       map[string]nabScoreOut        `json:"nab,omitempty"`
	Scored    int                           `json:"nab_series,omitempty"`
	Published map[string]map[string]float64 `json:"published,omitempty"`
}

func (c *ForecastAnomaliesCommand) Run(args []string) int {
	fs := c.FlagSet("forecast anomalies", c.Help)
	dir := fs.String("data", "", "")
	labels := fs.String("labels", "", "")
	profiles := fs.String("profiles", "", "")
	step := fs.Duration("step", 5*time.Minute, "")
	threshold := fs.Float64("threshold", anomaly.DefaultThreshold, "")
	maxP := fs.Float64("max-p", 0.01, "")
	format := fs.String("format", "table", "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return c.UsageError("forecast anomalies", "unexpected argument "+fs.Arg(0))
	case *dir == "":
		return c.UsageError("forecast anomalies", "-data is required")
	case *step <= 0:
		return c.UsageError("forecast anomalies", "-step must be positive")
	case !(*threshold > 0):
		return c.UsageError("forecast anomalies", "-threshold must be positive")
	case !(*maxP > 0 && *maxP <= 1):
		return c.UsageError("forecast anomalies", "-max-p must be in (0, 1]")
	case *format != "table" && *format != "json":
		return c.UsageError("forecast anomalies", "-format must be table or json")
	}

	data, err := readTraceDirs(c.Meta, []string{*dir}, *step)
	if err != nil {
		c.UI.Error("error: " + err.Error())
		return ExitInvalid
	}
	if len(data.Series) == 0 {
		c.UI.Error("error: no series found under " + *dir)
		return ExitInvalid
	}

	var windows map[string][]nab.Window
	costs := nab.DefaultProfiles()
	var published map[string]map[string]float64
	if *labels != "" {
		if windows, err = readNABWindows(*labels); err != nil {
			c.UI.Error("error: " + err.Error())
			return ExitInvalid
		}
		labelDir := filepath.Dir(filepath.Clean(*labels))
		pf := *profiles
		if pf == "" {
			if p := filepath.Join(labelDir, "..", "config", "profiles.json"); nabFileExists(p) {
				pf = p
			}
		}
		if pf != "" {
			if costs, err = readNABProfiles(pf); err != nil {
				c.UI.Error("error: " + err.Error())
				return ExitInvalid
			}
		}
		if p := filepath.Join(labelDir, "..", "results", "final_results.json"); nabFileExists(p) {
			if published, err = readNABPublished(p); err != nil {
				fmt.Fprintf(c.Err, "warning: ignoring %s: %v\n", p, err)
			}
		}
	} else if *profiles != "" {
		return c.UsageError("forecast anomalies", "-profiles needs -labels")
	}

	opts := anomaly.Options{Threshold: *threshold}
	out := anomaliesOut{Series: len(data.Series), Events: []anomalyEventOut{}}
	scored := make([]nab.Series, 0, len(data.Series))
	for _, s := range data.Series {
		if err := c.Ctx.Err(); err != nil {
			c.UI.Error("error: " + err.Error())
			return ExitInvalid
		}
		pts, events := anomaly.Detect(s.Values, opts)
		for _, e := range events {
			if e.P > *maxP {
				continue
			}
			out.Events = append(out.Events, anomalyEventOut{
				Series: s.Name, Start: anomalyPointTime(s, e.Start), End: anomalyPointTime(s, e.End),
				Kind: string(e.Kind), Score: e.Score, P: e.P, Z: e.Z,
			})
		}
		if windows == nil {
			continue
		}
		ns := nab.Series{File: s.File, Times: make([]time.Time, len(pts)), Scores: make([]float64, len(pts))}
		for i, p := range pts {
			ns.Times[i], ns.Scores[i] = s.Time(i), p.Onset
		}
		scored = append(scored, ns)
	}
	if windows != nil {
		rep, err := nab.Evaluate(scored, windows, costs)
		for _, k := range rep.Missing {
			fmt.Fprintf(c.Err, "warning: no series for labelled file %s\n", k)
		}
		switch {
		case errors.Is(err, nab.ErrNoLabelledSeries):
			c.UI.Error("error: no series under " + *dir + " matches a file in " + *labels)
			return ExitInvalid
		case err != nil:
			c.UI.Error("error: " + err.Error())
			return ExitInvalid
		}
		out.NAB = map[string]nabScoreOut{}
		out.Scored = rep.Files
		for name, res := range rep.Profiles {
			out.NAB[name] = nabScoreOut{Score: res.Normalized, Threshold: res.Threshold, Raw: res.Raw, TP: res.TP, FP: res.FP, FN: res.FN,
				HillClimb: res.HillClimb, Files: res.Files}
		}
		out.Published = published
	}

	if *format == "json" {
		b, err := json.Marshal(out)
		if err != nil {
			c.UI.Error("error: " + err.Error())
			return ExitInvalid
		}
		fmt.Fprintln(c.Out, string(b))
		return ExitOK
	}
	writeAnomalyEvents(c.Out, out)
	if out.NAB != nil {
		writeNABScores(c.Out, out)
	}
	return ExitOK
}

func writeAnomalyEvents(w io.Writer, out anomaliesOut) {
	fmt.Fprintf(w, "%d events in %d series\n\n", len(out.Events), out.Series)
	if len(out.Events) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIES\tSTART\tEND\tKIND\tSCORE\tP\tZ")
	for _, e := range out.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\t%.2g\t%.1f\n", e.Series, e.Start, e.End, e.Kind, e.Score, e.P, e.Z)
	}
	_ = tw.Flush()
}

func writeNABScores(w io.Writer, out anomaliesOut) {
	profiles := []string{nab.Standard, nab.RewardLowFPRate, nab.RewardLowFNRate}
	for p := range out.NAB {
		if p != nab.Standard && p != nab.RewardLowFPRate && p != nab.RewardLowFNRate {
			profiles = append(profiles, p)
		}
	}
	fmt.Fprintf(w, "\nNAB scores on %d labelled series (null 0, perfect 100)\n\n", out.Scored)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tSCORE\tTHRESHOLD\tTP\tFP\tFN\tHILL_CLIMB")
	for _, p := range profiles {
		s, ok := out.NAB[p]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.4f\t%d\t%d\t%d\t%.1f\n", p, s.Score, s.Threshold, s.TP, s.FP, s.FN, s.HillClimb)
	}
	_ = tw.Flush()
	if std, ok := out.NAB[nab.Standard]; ok && len(std.Files) > 0 {
		var files []string
		for f := range std.Files {
			files = append(files, f)
		}
		sort.Strings(files)
		fmt.Fprintf(w, "\nRaw standard-profile score per file (windows found add up to +1 each, misses cost 1)\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FILE\tRAW")
		for _, f := range files {
			fmt.Fprintf(tw, "%s\t%.3f\n", f, std.Files[f])
		}
		_ = tw.Flush()
	}
	if len(out.Published) == 0 {
		return
	}
	type row struct {
		name string
		s    map[string]float64
	}
	rows := []row{{"foreshape (these series)", map[string]float64{}}}
	for _, p := range profiles {
		if s, ok := out.NAB[p]; ok {
			rows[0].s[p] = s.Score
		}
	}
	for name, s := range out.Published {
		rows = append(rows, row{name + " (published, full corpus)", s})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].s[nab.Standard] > rows[j].s[nab.Standard] })
	fmt.Fprintf(w, "\nBeside NAB's published scores (58 files; these series are a subset)\n\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DETECTOR\tSTANDARD\tLOW_FP\tLOW_FN")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\n", r.name, r.s[nab.Standard], r.s[nab.RewardLowFPRate], r.s[nab.RewardLowFNRate])
	}
	_ = tw.Flush()
}

// anomalyPointTime formats the time of point i: absolute when the series has
// absolute times, otherwise the offset from its start.
func anomalyPointTime(s tracefile.Series, i int) string {
	if s.Start.IsZero() {
		return "+" + (time.Duration(i) * s.Step).String()
	}
	return s.Time(i).Format("2006-01-02 15:04:05")
}

func readNABWindows(path string) (map[string][]nab.Window, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	w, err := nab.ReadWindows(f)
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", path, err)
	}
	return w, nil
}

func readNABProfiles(path string) (map[string]nab.CostMatrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	defer f.Close()
	p, err := nab.ReadProfiles(f)
	if err != nil {
		return nil, fmt.Errorf("profiles %s: %w", path, err)
	}
	return p, nil
}

// readNABPublished reads NAB's results/final_results.json.
func readNABPublished(path string) (map[string]map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return nab.ReadPublished(f)
}

func nabFileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
