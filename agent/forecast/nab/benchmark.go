package nab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"sort"
	"strings"
	"time"
)

// Series is one data series offered to Evaluate: the path of its file
// relative to the data directory, the time of each point and the detector's
// anomaly score at each (higher is more anomalous; see File).
type Series struct {
	File   string
	Times  []time.Time
	Scores []float64
}

// ProfileScore is a detector's score under one profile: the Result with the
// threshold swept over every distinct score (optimised on the files
// scored), the normalised score with the threshold NAB's older runner would
// reach by hill climbing (never higher), and, when a threshold was fixed
// beforehand, the Result at that threshold.
type ProfileScore struct {
	Result
	HillClimb float64
	Fixed     *Result
}

// Report is a detector's NAB evaluation over a labelled corpus.
type Report struct {
	// Files is the number of labelled files scored.
	Files int
	// Missing lists labelled files no series matched, sorted.
	Missing []string
	// Profiles holds the scores per profile name.
	Profiles map[string]ProfileScore
}

// ErrNoLabelledSeries is returned by Evaluate when no series matches a
// labelled file.
var ErrNoLabelledSeries = errors.New("nab: no series matches a labelled file")

// Evaluate scores a detector's output on every series that matches a
// labelled file (see MatchLabel) under every profile, with the threshold
// optimised on them. Series without labels are ignored; labelled files
// without a series are listed in Report.Missing.
func Evaluate(series []Series, windows map[string][]Window, profiles map[string]CostMatrix) (Report, error) {
	return EvaluateFixed(series, windows, profiles, nil)
}

// EvaluateFixed is Evaluate that also scores each profile at the threshold
// fixed for it beforehand (ProfileScore.Fixed), when fixed has one.
func EvaluateFixed(series []Series, windows map[string][]Window, profiles map[string]CostMatrix, fixed map[string]float64) (Report, error) {
	files, rep, err := Files(series, windows)
	if err != nil {
		return rep, err
	}
	for name, cm := range profiles {
		res, err := Score(files, cm, Options{})
		if err != nil {
			return Report{}, fmt.Errorf("nab: profile %s: %w", name, err)
		}
		climb, err := Score(files, cm, Options{HillClimb: true})
		if err != nil {
			return Report{}, fmt.Errorf("nab: profile %s: %w", name, err)
		}
		ps := ProfileScore{Result: res, HillClimb: climb.Normalized}
		if th, ok := fixed[name]; ok {
			fx, err := ScoreFixed(files, cm, th, Options{})
			if err != nil {
				return Report{}, fmt.Errorf("nab: profile %s: %w", name, err)
			}
			ps.Fixed = &fx
		}
		rep.Profiles[name] = ps
	}
	return rep, nil
}

// Files matches series to labelled files (see Evaluate) and returns them
// sorted by name, with the report's Files and Missing filled in.
func Files(series []Series, windows map[string][]Window) ([]File, Report, error) {
	var files []File
	matched := map[string]bool{}
	for _, s := range series {
		key, ok := MatchLabel(s.File, windows)
		if !ok {
			continue
		}
		if matched[key] {
			return nil, Report{}, fmt.Errorf("nab: two series match the labelled file %s", key)
		}
		matched[key] = true
		files = append(files, File{Name: key, Timestamps: s.Times, Scores: s.Scores, Windows: windows[key]})
	}
	rep := Report{Files: len(files), Profiles: map[string]ProfileScore{}}
	for k := range windows {
		if !matched[k] {
			rep.Missing = append(rep.Missing, k)
		}
	}
	sort.Strings(rep.Missing)
	if len(files) == 0 {
		return nil, rep, ErrNoLabelledSeries
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, rep, nil
}

// Tune chooses, per profile, the threshold to fix before scoring other
// files: the middle of the range of thresholds that maximise the raw score
// on these files (any threshold in that range detects the same points
// here; the middle leaves the most room either way on files not seen).
func Tune(files []File, profiles map[string]CostMatrix) (map[string]float64, error) {
	out := map[string]float64{}
	for name, cm := range profiles {
		all, _, err := corpusPoints(files, cm, Options{}, nil)
		if err != nil {
			return nil, fmt.Errorf("nab: profile %s: %w", name, err)
		}
		rows := byThreshold(all, cm)
		best := 0
		for i, r := range rows {
			if r.Score > rows[best].Score {
				best = i
			}
		}
		switch {
		case best == 0:
			out[name] = math.Inf(1) // nothing helps: detect nothing
		case best == len(rows)-1:
			out[name] = rows[best].Threshold
		default:
			out[name] = (rows[best].Threshold + rows[best+1].Threshold) / 2
		}
	}
	return out, nil
}

// CrossValidate estimates how well a threshold fixed on some files does on
// others: each file is scored at the threshold Tune chooses on all the
// other files, and the raw scores are summed and normalised like Score's
// (null: every window missed; perfect: every window found at its start).
func CrossValidate(files []File, costs CostMatrix) (float64, error) {
	var raw, labelled float64
	for i := range files {
		rest := append(append([]File(nil), files[:i]...), files[i+1:]...)
		th, err := Tune(rest, map[string]CostMatrix{"": costs})
		if err != nil {
			return 0, err
		}
		s, err := ScoreAt(files[i:i+1], costs, th[""], Options{})
		if err != nil {
			return 0, err
		}
		raw += s.Score
		labelled += float64(len(files[i].Windows))
	}
	null, perfect := -costs.FN*labelled, costs.TP*labelled
	if perfect == null {
		return 0, nil
	}
	return 100 * (raw - null) / (perfect - null), nil
}

// MatchLabel finds the label key naming file: equal, or a path suffix
// ("data/realAWSCloudwatch/x.csv" matches the key "realAWSCloudwatch/x.csv").
func MatchLabel(file string, windows map[string][]Window) (string, bool) {
	file = path.Clean(strings.ReplaceAll(file, "\\", "/"))
	if _, ok := windows[file]; ok {
		return file, true
	}
	keys := make([]string, 0, len(windows))
	for k := range windows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasSuffix(file, "/"+k) {
			return k, true
		}
	}
	return "", false
}

// ReadPublished decodes NAB's results/final_results.json: detector name to
// profile name to normalised score.
func ReadPublished(r io.Reader) (map[string]map[string]float64, error) {
	var out map[string]map[string]float64
	if err := json.NewDecoder(r).Decode(&out); err != nil {
		return nil, fmt.Errorf("nab: published results: %w", err)
	}
	return out, nil
}
