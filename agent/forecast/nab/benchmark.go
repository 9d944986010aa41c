package nab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// threshold swept over every distinct score, and the normalised score with
// the threshold NAB's own runner would reach by hill climbing (never
// higher).
type ProfileScore struct {
	Result
	HillClimb float64
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
// labelled file (see MatchLabel) under every profile, with both threshold
// rules. Series without labels are ignored; labelled files without a series
// are listed in Report.Missing.
func Evaluate(series []Series, windows map[string][]Window, profiles map[string]CostMatrix) (Report, error) {
	var files []File
	matched := map[string]bool{}
	for _, s := range series {
		key, ok := MatchLabel(s.File, windows)
		if !ok {
			continue
		}
		if matched[key] {
			return Report{}, fmt.Errorf("nab: two series match the labelled file %s", key)
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
		return rep, ErrNoLabelledSeries
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	for name, cm := range profiles {
		res, err := Score(files, cm, Options{})
		if err != nil {
			return Report{}, fmt.Errorf("nab: profile %s: %w", name, err)
		}
		climb, err := Score(files, cm, Options{HillClimb: true})
		if err != nil {
			return Report{}, fmt.Errorf("nab: profile %s: %w", name, err)
		}
		rep.Profiles[name] = ProfileScore{Result: res, HillClimb: climb.Normalized}
	}
	return rep, nil
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
