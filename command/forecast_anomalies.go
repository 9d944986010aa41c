package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
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

// ForecastAnomaliesCommand runs an online anomaly detector over trace files
// and, with NAB labels, scores it the way NAB does, beside NAB's published
// detectors.
type ForecastAnomaliesCommand struct{ Meta }

func (c *ForecastAnomaliesCommand) Synopsis() string {
	return "Detect anomalies in trace files and score the detector on NAB labels"
}

func (c *ForecastAnomaliesCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape forecast anomalies -data DIR [options]

  Runs foreshape's online anomaly detector (the one the agent runs on every
  series) over every trace file under DIR, point by point without
  look-ahead, and prints the events it finds: start, end, kind (spike or
  level_shift), peak score, smallest p-value, largest robust z (Z) and the
  detector's alarm score (0 when it raised no alarm).

  With -labels (NAB's combined_windows.json), the labelled files are also
  scored with NAB's scoring, row by row as NAB's detectors see them: anomaly
  windows, scaled sigmoid rewards, the three cost profiles, normalised so the
  null detector scores 0 and a perfect one 100. Each profile is scored with
  two threshold rules:

    FIXED      the threshold chosen beforehand on the tuning part of the NAB
               files (the middle of the range that scores best there), the
               rule that says how the detector does on files it has not seen;
               foreshape's detectors are also scored at the agent's alarm
               rule: the points where the detector raises an alarm (for
               artime an onset of at least 0.62, for shape p at most
               1/4032 at an onset);
    OPTIMISED  the threshold that scores best on the files scored, NAB's own
               rule for its scoreboard (HILL_CLIMB: the threshold NAB's older
               runner reached by climbing from 0.5).

  The NAB files are split into a tuning and a held-out part, declared before
  any setting was tuned (-part). foreshape's defaults were chosen on the
  tuning part; its figures are those of the held-out part. With NAB's whole
  data directory, -part unseen scores the files in neither part: series
  foreshape was never developed on (the tuning files must be there too for
  the FIXED threshold).

  With -published (the results directory of NAB's repository), NAB's
  published detectors are scored from their published outputs on the same
  files with the same rules, side by side with foreshape's; their FIXED
  threshold is chosen on the tuning part as foreshape's is, and NAB's own
  threshold (chosen on its whole corpus) is shown too. With -reproduce, each
  published detector is also scored on NAB's whole corpus (the labels beside
  the results directory) at NAB's thresholds, beside the score NAB
  published, which shows that this scoring is NAB's.

Options:

  -data=DIR        Trace directory (read like 'forecast eval' does; NAB's
                   layout, data/ and labels/, for NAB scoring).
  -labels=FILE     NAB combined_windows.json; files are matched to its keys
                   by path suffix.
  -part=PART       Which NAB files to score: tuning, held-out, unseen (the
                   labelled files in neither part, such as the rest of
                   NAB's corpus: series foreshape was never developed on)
                   or all. Default: all.
  -detector=NAME   The detector: artime (the agent's: the adaptive-resonance
                   detector ARTime over the series' learnt range, with the
                   shape statistic's p-values), shape (the agent's before),
                   residual (the one before that), rcf (a random cut
                   forest), ensemble (shape and residual), context (the
                   contextual anomaly detector, CAD OSE, over the series'
                   learnt range), shape+context (shape and context),
                   artime+shape (the larger of ARTime's and shape's
                   onsets), artime+likelihood, residual+likelihood and
                   rcf+likelihood (the anomaly likelihood of ARTime's,
                   the residual detector's or the forest's raw scores:
                   how unusual their recent level is for the series), or
                   all to compare them; several, comma-separated, are
                   scored side by side. Default: artime.
  -history=RULE    What each detector knows when it starts: file (it is
                   started on the file as the agent starts it on a series'
                   stored history: ARTime learns 15% of that history, at
                   most 750 points, before it reports, as NAB's harness
                   gives its detectors; every verdict is still online) or
                   none (started on nothing, as on a new series: ARTime
                   learns the first 750 points). Default: file.
  -artime-alarm=S  The onset at or above which ARTime raises an alarm, for
                   the "agent's alarm rule" scores of artime and
                   artime+shape (its onsets are at most 1: above 1 it
                   raises none). Default: 0.62, the agent's.
  -artime-headroom=H
                   How much wider than the range ARTime saw in its
                   probation it takes the series' range to be: widened by
                   H times its width on each side (0: not widened, the
                   agent's rule before). Default: 0.25, the agent's.
  -likelihood-window=N
                   How many raw scores the likelihood's short average
                   takes. Default: 10.
  -likelihood-every
                   Make every point's likelihood an onset, rather than
                   only one above every score of the previous day.
  -likelihood-alarm=S
                   The onset (the likelihood on a log scale: 0.5 is
                   1 - 1e-5) at or above which the likelihood raises an
                   alarm, for the "agent's alarm rule" scores of the
                   +likelihood detectors. Default: 0.5.
  -profiles=FILE   NAB profiles.json. Default: config/profiles.json beside
                   the labels directory, else NAB's published profiles.
  -published=DIR   NAB's results directory: results/<detector>/... as NAB
                   publishes it; thresholds are read from
                   DIR/../config/thresholds.json.
  -reproduce       With -published: also score every published detector on
                   NAB's whole corpus (DIR/../labels/combined_windows.json).
  -step=DUR        Sampling interval of the traces. Default: 5m.
  -threshold=Z     Robust z above which a point deviates (kept out of model
                   fitting when its stretch is unusual). Default: 5.
  -max-p=P         Print only events at least as rare as P (their smallest
                   p-value, calibrated on the series' own history, is at
                   most P; 0.01: more unusual than 99% of what the series
                   did before) and events that raised an alarm. Default:
                   0.01. 1 prints every event. NAB scoring is not affected.
  -format=FORMAT   table or json. Default: table.

Example:

  $ foreshape forecast anomalies -data ../shared/data/nab \
      -labels ../shared/data/nab/labels/combined_windows.json -part held-out
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
	// Alarm is the detector's highest score where it raised an alarm
	// (0: it raised none).
	Alarm float64 `json:"alarm"`
}

// nabResultOut is one profile's NAB score under one threshold rule.
type nabResultOut struct {
	Score     float64   `json:"score"`
	Threshold threshold `json:"threshold"`
	Raw       float64   `json:"raw"`
	TP        int       `json:"tp"`
	FP        int       `json:"fp"`
	FN        int       `json:"fn"`
}

// threshold is a detection threshold; +Inf (detect nothing: what a
// detector that scores nothing on the tuning part gets) is null in JSON.
type threshold float64

func (t threshold) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(t), 0) || math.IsNaN(float64(t)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(t))
}

// nabScoreOut is one profile's NAB score: optimised on the files scored
// (the top-level fields), fixed beforehand on the tuning part, and for a
// published detector at NAB's own threshold.
type nabScoreOut struct {
	nabResultOut
	// HillClimb is the score with the threshold NAB's older runner would
	// find by hill climbing from 0.5; Score sweeps every threshold and is
	// never lower.
	HillClimb float64 `json:"hill_climb_score"`
	// Files holds each labelled file's raw score at the optimised
	// threshold: its windows' rewards (+1 at best each) less missed
	// windows and false positives.
	Files map[string]float64 `json:"files,omitempty"`
	Fixed *nabResultOut      `json:"fixed,omitempty"`
	NAB   *nabResultOut      `json:"nab_threshold,omitempty"`
	// Agent is the score of the points where the detector raised an
	// alarm, as the agent runs it (foreshape's detectors only).
	Agent *nabResultOut `json:"agent_threshold,omitempty"`
}

// nabDetectorOut is one detector's NAB scores on the files scored.
type nabDetectorOut struct {
	Detector  string                 `json:"detector"`
	Published bool                   `json:"published"`
	Profiles  map[string]nabScoreOut `json:"profiles"`
	// CrossValidated is the standard score with each file scored at the
	// threshold chosen on the other files (foreshape's detectors only).
	CrossValidated *float64 `json:"cross_validated,omitempty"`
}

// reproducedOut is a published detector scored on NAB's whole corpus at
// NAB's thresholds, beside the score NAB published.
type reproducedOut struct {
	Detector  string             `json:"detector"`
	Score     map[string]float64 `json:"score"`
	Published map[string]float64 `json:"published"`
}

type anomaliesOut struct {
	Series   int               `json:"series"`
	Events   []anomalyEventOut `json:"events"`
	Detector string            `json:"detector"`
	// NAB holds the profiles of the (first) detector run, for short.
	NAB      map[string]nabScoreOut `json:"nab,omitempty"`
	Scored   int                    `json:"nab_series,omitempty"`
	Windows  int                    `json:"nab_windows,omitempty"`
	Part     string                 `json:"part,omitempty"`
	TunedOn  int                    `json:"tuned_on,omitempty"`
	Compared []nabDetectorOut       `json:"detectors,omitempty"`
	// Published holds NAB's published full-corpus scores
	// (results/final_results.json), when found.
	Published  map[string]map[string]float64 `json:"published,omitempty"`
	Reproduced []reproducedOut               `json:"reproduced,omitempty"`
}

var nabProfiles = []string{nab.Standard, nab.RewardLowFPRate, nab.RewardLowFNRate}

// nabParts are the values of -part.
var nabParts = []string{"all", "tuning", "held-out", "unseen"}

// inPart says whether the labelled file key is scored with -part part:
// unseen is every file in neither part of the split.
func inPart(key, part string) bool {
	switch part {
	case "all":
		return true
	case "unseen":
		return nab.Part(key) == ""
	}
	return nab.Part(key) == part
}

func (c *ForecastAnomaliesCommand) Run(args []string) int {
	fs := c.FlagSet("forecast anomalies", c.Help)
	dir := fs.String("data", "", "")
	labels := fs.String("labels", "", "")
	part := fs.String("part", "all", "")
	detector := fs.String("detector", anomaly.DefaultDetector, "")
	profiles := fs.String("profiles", "", "")
	published := fs.String("published", "", "")
	reproduce := fs.Bool("reproduce", false, "")
	step := fs.Duration("step", 5*time.Minute, "")
	threshold := fs.Float64("threshold", anomaly.DefaultThreshold, "")
	maxP := fs.Float64("max-p", 0.01, "")
	format := fs.String("format", "table", "")
	history := fs.String("history", "file", "")
	artimeAlarm := fs.Float64("artime-alarm", anomaly.DefaultARTimeAlarm, "")
	headroom := fs.Float64("artime-headroom", anomaly.DefaultARTimeHeadroom, "")
	likWindow := fs.Int("likelihood-window", anomaly.DefaultLikelihoodWindow, "")
	likEvery := fs.Bool("likelihood-every", false, "")
	likAlarm := fs.Float64("likelihood-alarm", anomaly.DefaultLikelihoodAlarm, "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	detectors := strings.Split(*detector, ",")
	if *detector == "all" {
		detectors = anomaly.Detectors()
		// The agent's first.
		sort.SliceStable(detectors, func(i, j int) bool { return detectors[i] == anomaly.DefaultDetector })
	}
	for _, d := range detectors {
		if _, err := anomaly.NewOnline(d, anomaly.Options{}); err != nil {
			return c.UsageError("forecast anomalies", "-detector: "+err.Error())
		}
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
	case !slices.Contains(nabParts, *part):
		return c.UsageError("forecast anomalies", "-part must be tuning, held-out, unseen or all")
	case *labels == "" && (*profiles != "" || *published != "" || *part != "all"):
		return c.UsageError("forecast anomalies", "-profiles, -published and -part need -labels")
	case *reproduce && *published == "":
		return c.UsageError("forecast anomalies", "-reproduce needs -published")
	case *history != "none" && *history != "file":
		return c.UsageError("forecast anomalies", "-history must be file or none")
	case !(*artimeAlarm > 0) || math.IsInf(*artimeAlarm, 0):
		return c.UsageError("forecast anomalies", "-artime-alarm must be positive")
	case !(*headroom >= 0) || math.IsInf(*headroom, 0):
		return c.UsageError("forecast anomalies", "-artime-headroom must be 0 or more")
	case *likWindow < 1:
		return c.UsageError("forecast anomalies", "-likelihood-window must be at least 1")
	case !(*likAlarm > 0) || math.IsInf(*likAlarm, 0):
		return c.UsageError("forecast anomalies", "-likelihood-alarm must be positive")
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
	opts := anomaly.Options{Threshold: *threshold, ARTimeAlarm: *artimeAlarm, ARTime: anomaly.ARTimeOptions{Headroom: *headroom},
		Likelihood: anomaly.LikelihoodOptions{Window: *likWindow, EveryPoint: *likEvery, Alarm: *likAlarm}}
	if *headroom == 0 {
		opts.ARTime.Headroom = -1 // not widened
	}
	// optsFor is opts for a detector started on a series of n points:
	// with -history file, as the agent starts it on a series' stored
	// history.
	optsFor := func(n int) anomaly.Options {
		o := opts
		if *history == "file" {
			o.History = n
		}
		return o
	}
	out := anomaliesOut{Series: len(data.Series), Events: []anomalyEventOut{}, Detector: detectors[0]}

	if *labels == "" {
		for _, s := range data.Series {
			if err := c.Ctx.Err(); err != nil {
				c.UI.Error("error: " + err.Error())
				return ExitInvalid
			}
			d, _ := anomaly.NewOnline(detectors[0], optsFor(len(s.Values)))
			for _, v := range s.Values {
				d.Observe(v)
			}
			out.Events = append(out.Events, eventsOut(s.Name, d.Events(true), *maxP, func(i int) string { return anomalyPointTime(s, i) })...)
		}
		return c.write(out, *format)
	}

	windows, err := readNABWindows(*labels)
	if err != nil {
		c.UI.Error("error: " + err.Error())
		return ExitInvalid
	}
	labelDir := filepath.Dir(filepath.Clean(*labels))
	costs := nab.DefaultProfiles()
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
		if out.Published, err = readNABPublished(p); err != nil {
			fmt.Fprintf(c.Err, "warning: ignoring %s: %v\n", p, err)
		}
	}

	// The labelled files under DIR, read row by row; the rest as traces.
	rows := map[string]nabRows{}
	for _, s := range data.Series {
		key, ok := nab.MatchLabel(s.File, windows)
		if !ok {
			continue
		}
		if _, dup := rows[key]; dup {
			c.UI.Error("error: two files under " + *dir + " match the labelled file " + key)
			return ExitInvalid
		}
		r, err := readNABRows(filepath.Join(*dir, filepath.FromSlash(s.File)))
		if err != nil {
			c.UI.Error("error: " + err.Error())
			return ExitInvalid
		}
		if r.skipped > 0 {
			fmt.Fprintf(c.Err, "warning: %s: %d rows without a time and a number left out\n", s.File, r.skipped)
		}
		r.name = s.Name
		rows[key] = r
	}
	var scored, tuning []string
	for key := range windows {
		if _, ok := rows[key]; !ok {
			fmt.Fprintf(c.Err, "warning: no series for labelled file %s\n", key)
			continue
		}
		if inPart(key, *part) {
			scored = append(scored, key)
		}
		if nab.Part(key) == "tuning" {
			tuning = append(tuning, key)
		}
	}
	sort.Strings(scored)
	sort.Strings(tuning)
	if len(scored) == 0 {
		c.UI.Error("error: no file under " + *dir + " is a labelled file of " + *labels + partSuffix(*part))
		return ExitInvalid
	}
	out.Part, out.Scored, out.TunedOn = *part, len(scored), len(tuning)
	for _, k := range scored {
		out.Windows += len(windows[k])
	}

	// Unlabelled series: events only.
	for _, s := range data.Series {
		if _, ok := nab.MatchLabel(s.File, windows); ok {
			continue
		}
		d, _ := anomaly.NewOnline(detectors[0], optsFor(len(s.Values)))
		for _, v := range s.Values {
			d.Observe(v)
		}
		out.Events = append(out.Events, eventsOut(s.Name, d.Events(true), *maxP, func(i int) string { return anomalyPointTime(s, i) })...)
	}

	// foreshape's detectors over the scored and the tuning files.
	need := append(append([]string(nil), scored...), tuning...)
	for i, name := range detectors {
		onsets, alarms := map[string][]float64{}, map[string][]float64{}
		for _, key := range need {
			if _, done := onsets[key]; done {
				continue
			}
			if err := c.Ctx.Err(); err != nil {
				c.UI.Error("error: " + err.Error())
				return ExitInvalid
			}
			r := rows[key]
			d, _ := anomaly.NewOnline(name, optsFor(len(r.values)))
			sc, al := make([]float64, len(r.values)), make([]float64, len(r.values))
			for j, v := range r.values {
				pt := d.Observe(v)
				sc[j] = pt.Onset
				if pt.Alarm {
					al[j] = 1
				}
			}
			onsets[key], alarms[key] = sc, al
			if i == 0 && slices.Contains(scored, key) {
				out.Events = append(out.Events, eventsOut(r.name, d.Events(true), *maxP, func(j int) string { return r.times[j].Format(nab.TimeLayout) })...)
			}
		}
		res, err := scoreNAB(name, onsets, alarms, rows, windows, scored, tuning, costs, nil)
		if err != nil {
			c.UI.Error("error: " + err.Error())
			return ExitInvalid
		}
		out.Compared = append(out.Compared, res)
	}
	out.NAB = out.Compared[0].Profiles

	if *published != "" {
		res, err := c.publishedScores(*published, rows, windows, scored, tuning, costs)
		if err != nil {
			c.UI.Error("error: " + err.Error())
			return ExitInvalid
		}
		out.Compared = append(out.Compared, res...)
		if *reproduce {
			rep, err := c.reproduce(*published, costs)
			if err != nil {
				c.UI.Error("error: " + err.Error())
				return ExitInvalid
			}
			out.Reproduced = rep
		}
	}
	return c.write(out, *format)
}

func partSuffix(part string) string {
	if part == "all" {
		return ""
	}
	return " in the " + part + " part"
}

func (c *ForecastAnomaliesCommand) write(out anomaliesOut, format string) int {
	if format == "json" {
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

// nabRows is one NAB file as its rows.
type nabRows struct {
	name    string
	times   []time.Time
	values  []float64
	skipped int
}

func readNABRows(path string) (nabRows, error) {
	f, err := os.Open(path)
	if err != nil {
		return nabRows{}, fmt.Errorf("nab data: %w", err)
	}
	defer f.Close()
	t, v, skipped, err := nab.ReadData(f)
	if err != nil {
		return nabRows{}, fmt.Errorf("%s: %w", path, err)
	}
	return nabRows{times: t, values: v, skipped: skipped}, nil
}

// scoreNAB scores one detector's onsets (per labelled file) on the scored
// files, with the threshold optimised on them, fixed on the tuning files,
// and at NAB's thresholds when given. alarms, for foreshape's detectors, is
// 1 where the detector raised an alarm: those rows are scored as the
// agent's alarm rule; nil for a published detector.
func scoreNAB(name string, onsets, alarms map[string][]float64, rows map[string]nabRows, windows map[string][]nab.Window,
	scored, tuning []string, costs map[string]nab.CostMatrix, nabThresholds map[string]float64) (nabDetectorOut, error) {
	published := alarms == nil
	seriesOf := func(keys []string, scores map[string][]float64) []nab.Series {
		var out []nab.Series
		for _, k := range keys {
			out = append(out, nab.Series{File: k, Times: rows[k].times, Scores: scores[k]})
		}
		return out
	}
	series := func(keys []string) []nab.Series { return seriesOf(keys, onsets) }
	var fixed map[string]float64
	if len(tuning) > 0 {
		files, _, err := nab.Files(series(tuning), windows)
		if err != nil {
			return nabDetectorOut{}, fmt.Errorf("%s on the tuning part: %w", name, err)
		}
		if fixed, err = nab.Tune(files, costs); err != nil {
			return nabDetectorOut{}, fmt.Errorf("%s on the tuning part: %w", name, err)
		}
	}
	rep, err := nab.EvaluateFixed(series(scored), onlyKeys(windows, scored), costs, fixed)
	if err != nil {
		return nabDetectorOut{}, fmt.Errorf("%s: %w", name, err)
	}
	res := nabDetectorOut{Detector: name, Published: published, Profiles: map[string]nabScoreOut{}}
	for p, s := range rep.Profiles {
		o := nabScoreOut{nabResultOut: resultOut(s.Result), HillClimb: s.HillClimb, Files: s.Files}
		if s.Fixed != nil {
			f := resultOut(*s.Fixed)
			o.Fixed = &f
		}
		at := func(ss []nab.Series, th float64) (*nabResultOut, error) {
			files, _, err := nab.Files(ss, windows)
			if err != nil {
				return nil, err
			}
			r, err := nab.ScoreFixed(files, costs[p], th, nab.Options{})
			if err != nil {
				return nil, err
			}
			n := resultOut(r)
			return &n, nil
		}
		if th, ok := nabThresholds[p]; ok {
			if o.NAB, err = at(series(scored), th); err != nil {
				return nabDetectorOut{}, err
			}
		}
		if !published {
			if o.Agent, err = at(seriesOf(scored, alarms), 0.5); err != nil {
				return nabDetectorOut{}, err
			}
		}
		res.Profiles[p] = o
	}
	if std, ok := costs[nab.Standard]; ok && !published {
		files, _, err := nab.Files(series(scored), windows)
		if err != nil {
			return nabDetectorOut{}, err
		}
		if len(files) > 1 {
			cv, err := nab.CrossValidate(files, std)
			if err != nil {
				return nabDetectorOut{}, err
			}
			res.CrossValidated = &cv
		}
	}
	return res, nil
}

func resultOut(r nab.Result) nabResultOut {
	return nabResultOut{Score: r.Normalized, Threshold: threshold(r.Threshold), Raw: r.Raw, TP: r.TP, FP: r.FP, FN: r.FN}
}

func onlyKeys(windows map[string][]nab.Window, keys []string) map[string][]nab.Window {
	out := make(map[string][]nab.Window, len(keys))
	for _, k := range keys {
		out[k] = windows[k]
	}
	return out
}

// publishedScores scores every detector under NAB's results directory on
// the same files with the same rules, and at NAB's own thresholds.
func (c *ForecastAnomaliesCommand) publishedScores(dir string, rows map[string]nabRows, windows map[string][]nab.Window,
	scored, tuning []string, costs map[string]nab.CostMatrix) ([]nabDetectorOut, error) {
	dets, err := publishedDetectors(dir)
	if err != nil {
		return nil, err
	}
	thresholds, err := readNABThresholds(filepath.Join(dir, "..", "config", "thresholds.json"))
	if err != nil {
		return nil, err
	}
	var out []nabDetectorOut
	for _, det := range dets {
		if err := c.Ctx.Err(); err != nil {
			return nil, err
		}
		onsets := map[string][]float64{}
		for _, key := range append(append([]string(nil), scored...), tuning...) {
			s, err := readNABResult(dir, det, key)
			if err != nil {
				return nil, err
			}
			if err := sameRows(s.Times, rows[key].times); err != nil {
				return nil, fmt.Errorf("published %s for %s: %w", det, key, err)
			}
			onsets[key] = s.Scores
		}
		res, err := scoreNAB(det, onsets, nil, rows, windows, scored, tuning, costs, thresholds[det])
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// reproduce scores every published detector on NAB's whole corpus at NAB's
// thresholds.
func (c *ForecastAnomaliesCommand) reproduce(dir string, costs map[string]nab.CostMatrix) ([]reproducedOut, error) {
	labels := filepath.Join(dir, "..", "labels", "combined_windows.json")
	windows, err := readNABWindows(labels)
	if err != nil {
		return nil, fmt.Errorf("reproduce: %w", err)
	}
	final, err := readNABPublished(filepath.Join(dir, "final_results.json"))
	if err != nil {
		return nil, fmt.Errorf("reproduce: %w", err)
	}
	thresholds, err := readNABThresholds(filepath.Join(dir, "..", "config", "thresholds.json"))
	if err != nil {
		return nil, err
	}
	dets, err := publishedDetectors(dir)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(windows))
	for k := range windows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []reproducedOut
	for _, det := range dets {
		pub, ok := final[det]
		if !ok {
			continue
		}
		var files []nab.File
		for _, k := range keys {
			if err := c.Ctx.Err(); err != nil {
				return nil, err
			}
			s, err := readNABResult(dir, det, k)
			if err != nil {
				return nil, fmt.Errorf("reproduce: %w", err)
			}
			files = append(files, nab.File{Name: k, Timestamps: s.Times, Scores: s.Scores, Windows: windows[k]})
		}
		r := reproducedOut{Detector: det, Score: map[string]float64{}, Published: map[string]float64{}}
		for _, p := range nabProfiles {
			th, ok := thresholds[det][p]
			cm, okc := costs[p]
			if !ok || !okc {
				continue
			}
			res, err := nab.ScoreFixed(files, cm, th, nab.Options{})
			if err != nil {
				return nil, fmt.Errorf("reproduce %s: %w", det, err)
			}
			r.Score[p], r.Published[p] = res.Normalized, pub[p]
		}
		out = append(out, r)
	}
	return out, nil
}

// publishedDetectors lists the detectors under NAB's results directory
// (every subdirectory but null's), sorted.
func publishedDetectors(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("published results: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "null" && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("published results: no detector directory in %s", dir)
	}
	sort.Strings(out)
	return out, nil
}

func readNABResult(dir, det, key string) (nab.Series, error) {
	p := filepath.Join(dir, filepath.FromSlash(nab.ResultPath(det, key)))
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nab.Series{}, fmt.Errorf("published results: %s has no output for %s (%s)", det, key, p)
		}
		return nab.Series{}, fmt.Errorf("published results: %w", err)
	}
	defer f.Close()
	s, err := nab.ReadResult(f)
	if err != nil {
		return nab.Series{}, fmt.Errorf("%s: %w", p, err)
	}
	return s, nil
}

func readNABThresholds(path string) (map[string]map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("published thresholds: %w", err)
	}
	defer f.Close()
	t, err := nab.ReadThresholds(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// sameRows checks that a published output has one row per data row. As
// in NAB's scorer, rows are matched by position and scored at the data
// file's times (a few published outputs reorder the times of the rows
// where a data file's clock steps back).
func sameRows(got, want []time.Time) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d rows, the data file has %d", len(got), len(want))
	}
	return nil
}

func eventsOut(series string, events []anomaly.Event, maxP float64, at func(int) string) []anomalyEventOut {
	var out []anomalyEventOut
	for _, e := range events {
		if e.P > maxP && e.Alarm == 0 {
			continue
		}
		out = append(out, anomalyEventOut{Series: series, Start: at(e.Start), End: at(e.End), Kind: string(e.Kind), Score: e.Score, P: e.P, Z: e.Z,
			Alarm: e.Alarm})
	}
	return out
}

func writeAnomalyEvents(w io.Writer, out anomaliesOut) {
	fmt.Fprintf(w, "%d events in %d series\n\n", len(out.Events), out.Series)
	if len(out.Events) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIES\tSTART\tEND\tKIND\tSCORE\tP\tZ\tALARM")
	for _, e := range out.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\t%.2g\t%.1f\t%.3f\n", e.Series, e.Start, e.End, e.Kind, e.Score, e.P, e.Z, e.Alarm)
	}
	_ = tw.Flush()
}

func writeNABScores(w io.Writer, out anomaliesOut) {
	profiles := append([]string(nil), nabProfiles...)
	for p := range out.NAB {
		if !slices.Contains(nabProfiles, p) {
			profiles = append(profiles, p)
		}
	}
	what := "labelled files"
	if out.Part != "all" {
		what = out.Part + " NAB files"
	}
	var own []nabDetectorOut
	for _, d := range out.Compared {
		if !d.Published {
			own = append(own, d)
		}
	}
	for _, d := range own {
		fmt.Fprintf(w, "\nNAB scores of %s on the %d %s (%d windows; null 0, perfect 100)\n\n", d.Detector, out.Scored, what, out.Windows)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROFILE\tFIXED\tTHRESHOLD\tTP\tFP\tFN\tOPTIMISED\tTHRESHOLD\tTP\tFP\tFN\tHILL_CLIMB")
		for _, p := range profiles {
			s, ok := d.Profiles[p]
			if !ok {
				continue
			}
			fixed := "-\t-\t-\t-\t-"
			if s.Fixed != nil {
				fixed = fmt.Sprintf("%.1f\t%.4f\t%d\t%d\t%d", s.Fixed.Score, s.Fixed.Threshold, s.Fixed.TP, s.Fixed.FP, s.Fixed.FN)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.4f\t%d\t%d\t%d\t%.1f\n", p, fixed, s.Score, s.Threshold, s.TP, s.FP, s.FN, s.HillClimb)
		}
		_ = tw.Flush()
		if s, ok := d.Profiles[nab.Standard]; ok && s.Agent != nil {
			fmt.Fprintf(w, "\nAt the agent's alarm rule (the points where the detector raises an alarm): standard %.1f (tp %d fp %d fn %d)",
				s.Agent.Score, s.Agent.TP, s.Agent.FP, s.Agent.FN)
			if l, ok := d.Profiles[nab.RewardLowFPRate]; ok && l.Agent != nil {
				fmt.Fprintf(w, ", low FP %.1f", l.Agent.Score)
			}
			if l, ok := d.Profiles[nab.RewardLowFNRate]; ok && l.Agent != nil {
				fmt.Fprintf(w, ", low FN %.1f", l.Agent.Score)
			}
			fmt.Fprintln(w)
		}
		if d.CrossValidated != nil {
			fmt.Fprintf(w, "\nLeave one file out (each file at the threshold chosen on the others): standard %.1f\n", *d.CrossValidated)
		}
	}
	if std, ok := out.NAB[nab.Standard]; ok && len(std.Files) > 0 {
		var files []string
		for f := range std.Files {
			files = append(files, f)
		}
		sort.Strings(files)
		fmt.Fprintf(w, "\nRaw standard-profile score per file at the optimised threshold (windows found add up to +1 each, misses cost 1)\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FILE\tRAW")
		for _, f := range files {
			fmt.Fprintf(tw, "%s\t%.3f\n", f, std.Files[f])
		}
		_ = tw.Flush()
	}
	if len(out.Compared) > len(own) {
		rows := append([]nabDetectorOut(nil), out.Compared...)
		sort.SliceStable(rows, func(i, j int) bool {
			return fixedScore(rows[i], nab.Standard) > fixedScore(rows[j], nab.Standard)
		})
		fmt.Fprintf(w, "\nSide by side on the same %d files: FIXED threshold chosen on the tuning part, OPT optimised on these files, NAB at NAB's own threshold\n\n", out.Scored)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DETECTOR\tSTANDARD\t\t\tLOW_FP\t\t\tLOW_FN\t\t")
		fmt.Fprintln(tw, "\tFIXED\tOPT\tNAB\tFIXED\tOPT\tNAB\tFIXED\tOPT\tNAB")
		for _, d := range rows {
			name := d.Detector
			if !d.Published {
				name = "foreshape " + name
			}
			fmt.Fprint(tw, name)
			for _, p := range nabProfiles {
				s := d.Profiles[p]
				fmt.Fprintf(tw, "\t%s\t%.1f\t%s", optScore(s.Fixed), s.Score, optScore(s.NAB))
			}
			fmt.Fprintln(tw)
		}
		_ = tw.Flush()
	}
	if len(out.Reproduced) > 0 {
		fmt.Fprintf(w, "\nNAB's published detectors on NAB's whole corpus at NAB's thresholds: this scoring beside NAB's published score\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DETECTOR\tSTANDARD\tPUBLISHED\tLOW_FP\tPUBLISHED\tLOW_FN\tPUBLISHED")
		for _, r := range out.Reproduced {
			fmt.Fprint(tw, r.Detector)
			for _, p := range nabProfiles {
				fmt.Fprintf(tw, "\t%.2f\t%.2f", r.Score[p], r.Published[p])
			}
			fmt.Fprintln(tw)
		}
		_ = tw.Flush()
	}
	if len(out.Published) > 0 && len(out.Compared) == len(own) {
		fmt.Fprintf(w, "\nNAB's published scores (its whole corpus of 58 files; these files are a subset, so compare with -published)\n\n")
		var names []string
		for n := range out.Published {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			return out.Published[names[i]][nab.Standard] > out.Published[names[j]][nab.Standard]
		})
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DETECTOR\tSTANDARD\tLOW_FP\tLOW_FN")
		for _, n := range names {
			s := out.Published[n]
			fmt.Fprintf(tw, "%s (published, full corpus)\t%.1f\t%.1f\t%.1f\n", n, s[nab.Standard], s[nab.RewardLowFPRate], s[nab.RewardLowFNRate])
		}
		_ = tw.Flush()
	}
}

func fixedScore(d nabDetectorOut, p string) float64 {
	if s := d.Profiles[p].Fixed; s != nil {
		return s.Score
	}
	return math.Inf(-1)
}

func optScore(r *nabResultOut) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.Score)
}

// anomalyPointTime formats the time of point i: absolute when the series has
// absolute times, otherwise the offset from its start.
func anomalyPointTime(s tracefile.Series, i int) string {
	if s.Start.IsZero() {
		return "+" + (time.Duration(i) * s.Step).String()
	}
	return s.Time(i).Format(nab.TimeLayout)
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
