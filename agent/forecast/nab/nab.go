// Package nab scores anomaly detectors the way the Numenta Anomaly Benchmark
// (NAB) does, so that foreshape's detector can be compared with the published
// NAB results.
//
// The definitions follow NAB's documentation and scorer: every labelled
// anomaly is an anomaly window; a detection inside a window earns a reward
// given by a scaled sigmoid of its relative position in the window (early is
// worth more, and only the best, i.e. earliest, detection of a window
// counts); a window without detection costs the profile's false-negative
// weight; a detection outside every window costs the false-positive weight
// times the sigmoid of its distance after the preceding window (a detection
// just after a window costs little, one far from any window costs the full
// weight). The first 15% of each file (at most 750 points) is a probationary
// period that is not scored. Raw scores are summed over files, the detection
// threshold is chosen per profile to maximise that sum, and the sum is
// normalised so that the null detector scores 0 and a perfect one 100.
//
// The package is pure: it reads labels and profiles from readers its caller
// opens and never touches files, the clock or a logger.
package nab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"
)

// DefaultProbationPercent is the share of each file, at the start, that NAB
// leaves unscored so detectors can learn.
const DefaultProbationPercent = 0.15

// probationCap is NAB's upper bound on the probationary period, in points
// (15% of 5,000).
const probationCap = 5000

// CostMatrix holds one profile's weights.
type CostMatrix struct {
	TP float64 `json:"tpWeight"`
	FP float64 `json:"fpWeight"`
	FN float64 `json:"fnWeight"`
	TN float64 `json:"tnWeight"`
}

// The three NAB profiles by name.
const (
	Standard        = "standard"
	RewardLowFPRate = "reward_low_FP_rate"
	RewardLowFNRate = "reward_low_FN_rate"
)

// DefaultProfiles returns NAB's three profiles as published in its
// config/profiles.json.
func DefaultProfiles() map[string]CostMatrix {
	return map[string]CostMatrix{
		Standard:        {TP: 1, FP: 0.11, FN: 1, TN: 1},
		RewardLowFPRate: {TP: 1, FP: 0.22, FN: 1, TN: 1},
		RewardLowFNRate: {TP: 1, FP: 0.11, FN: 2, TN: 1},
	}
}

// ReadProfiles decodes a NAB profiles file ({"standard": {"CostMatrix":
// {...}}, ...}).
func ReadProfiles(r io.Reader) (map[string]CostMatrix, error) {
	var raw map[string]struct {
		CostMatrix *CostMatrix `json:"CostMatrix"`
	}
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("nab: profiles: %w", err)
	}
	out := make(map[string]CostMatrix, len(raw))
	for name, p := range raw {
		if p.CostMatrix == nil {
			return nil, fmt.Errorf("nab: profiles: %q has no CostMatrix", name)
		}
		out[name] = *p.CostMatrix
	}
	if len(out) == 0 {
		return nil, errors.New("nab: profiles: no profile")
	}
	return out, nil
}

// Window is one labelled anomaly window, both ends inclusive.
type Window struct {
	Start, End time.Time
}

// TimeLayout is the layout of NAB's timestamps, in data files and labels
// (the fractional seconds are optional).
const TimeLayout = "2006-01-02 15:04:05"

// ParseTime parses a NAB timestamp ("2014-02-19 10:50:00" or with
// ".000000"), as UTC: NAB gives no time zone.
func ParseTime(s string) (time.Time, error) {
	return time.ParseInLocation("2006-01-02 15:04:05.999999999", s, time.UTC)
}

// ReadWindows decodes NAB's labels/combined_windows.json: data file path
// (relative to NAB's data directory) to its windows.
func ReadWindows(r io.Reader) (map[string][]Window, error) {
	var raw map[string][][]string
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("nab: windows: %w", err)
	}
	out := make(map[string][]Window, len(raw))
	for file, ws := range raw {
		list := make([]Window, 0, len(ws))
		for i, w := range ws {
			if len(w) != 2 {
				return nil, fmt.Errorf("nab: windows: %s window %d: want [start, end], got %d values", file, i, len(w))
			}
			start, err := ParseTime(w[0])
			if err != nil {
				return nil, fmt.Errorf("nab: windows: %s window %d: %w", file, i, err)
			}
			end, err := ParseTime(w[1])
			if err != nil {
				return nil, fmt.Errorf("nab: windows: %s window %d: %w", file, i, err)
			}
			if end.Before(start) {
				return nil, fmt.Errorf("nab: windows: %s window %d: end %s before start %s", file, i, w[1], w[0])
			}
			list = append(list, Window{Start: start, End: end})
		}
		sort.Slice(list, func(a, b int) bool { return list[a].Start.Before(list[b].Start) })
		out[file] = list
	}
	return out, nil
}

// ScaledSigmoid is NAB's reward for a detection at a relative position:
// -1 is a window's left edge (reward 0.9866), 0 its right edge (0), and
// positive positions lie after the window, scaled by its width (penalties
// approaching -1; beyond 3, exactly -1, as in NAB's sweeper).
func ScaledSigmoid(pos float64) float64 {
	if pos > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*pos)) - 1
}

// File is one scored data file: its timestamps, the detector's anomaly
// score (in [0, 1]) at each, and its labelled windows.
type File struct {
	Name       string
	Timestamps []time.Time
	Scores     []float64
	Windows    []Window
}

// outside and probationary mark points in no window and in the
// probationary period.
const (
	outside      = -1
	probationary = -2
)

// probationLength is the number of leading points left unscored: the
// probation share of the file, at most that share of 5,000 points.
func probationLength(n int, probation float64) int {
	return int(math.Min(math.Floor(probation*float64(n)), probation*probationCap))
}

// point is one scorable row: the detector's anomaly score, the weighted
// reward or cost of a detection there, and its window (a corpus-wide id, or
// outside).
type point struct {
	score  float64
	weight float64
	window int
}

// sweep computes each point's weighted score as NAB's sweeper does. Window
// ids start at firstID. It returns the scorable points and the number of
// windows found in the data.
func sweep(f File, costs CostMatrix, probation float64, firstID int) ([]point, int, error) {
	n := len(f.Timestamps)
	if len(f.Scores) != n {
		return nil, 0, fmt.Errorf("nab: %s: %d timestamps but %d scores", f.Name, n, len(f.Scores))
	}
	type span struct{ left, right int }
	var spans []span
	for _, w := range f.Windows {
		left := sort.Search(n, func(i int) bool { return !f.Timestamps[i].Before(w.Start) })
		right := sort.Search(n, func(i int) bool { return f.Timestamps[i].After(w.End) }) - 1
		if left > right {
			continue // no point of the file falls in the window
		}
		spans = append(spans, span{left, right})
	}
	probLen := probationLength(n, probation)
	maxTP := ScaledSigmoid(-1)

	pts := make([]point, 0, n)
	cur, prevRight, prevWidth := -1, -1, 0
	for i := 0; i < n; i++ {
		if cur+1 < len(spans) && i == spans[cur+1].left {
			cur++
		}
		in := cur >= 0 && i >= spans[cur].left && i <= spans[cur].right
		var weight float64
		window := outside
		if in {
			s := spans[cur]
			width := float64(s.right - s.left + 1)
			pos := -float64(s.right-i+1) / width
			weight = ScaledSigmoid(pos) * costs.TP / maxTP
			window = firstID + cur
		} else {
			pos := math.Inf(1) // no window before: the full cost
			if prevRight >= 0 {
				pos = math.Abs(float64(prevRight-i)) / math.Max(float64(prevWidth-1), 1)
			}
			weight = ScaledSigmoid(pos) * costs.FP
		}
		if in && i == spans[cur].right {
			prevRight, prevWidth = i, spans[cur].right-spans[cur].left+1
		}
		if i < probLen {
			window = probationary
		}
		if window == probationary {
			continue
		}
		s := f.Scores[i]
		if math.IsNaN(s) {
			s = 0
		}
		pts = append(pts, point{score: s, weight: weight, window: window})
	}
	return pts, len(spans), nil
}

// ThresholdScore is the corpus raw score when every point whose anomaly
// score is at least Threshold counts as a detection.
type ThresholdScore struct {
	Threshold float64
	Score     float64
	// TP and FN count windows detected and missed; FP counts detections
	// outside windows.
	TP, FP, FN int
}

// byThreshold returns the raw score for every distinct threshold among the
// points' anomaly scores, from above the highest (no detections) down to the
// lowest, in one pass: lowering the threshold adds points as detections; a
// detection outside windows adds its (negative) weight; a window's
// contribution is -FN until detected and then its best detection's weight.
func byThreshold(pts []point, costs CostMatrix) []ThresholdScore {
	sorted := make([]point, len(pts))
	copy(sorted, pts)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].score > sorted[b].score })

	best := map[int]float64{}
	for _, p := range sorted {
		if p.window >= 0 {
			best[p.window] = -costs.FN
		}
	}
	windows := len(best)
	score := -costs.FN * float64(windows)
	detected := map[int]bool{}
	var fp int

	out := []ThresholdScore{{Threshold: math.Inf(1), Score: score, FN: windows}}
	for i := 0; i < len(sorted); {
		th := sorted[i].score
		for ; i < len(sorted) && sorted[i].score == th; i++ {
			p := sorted[i]
			if p.window < 0 {
				score += p.weight
				fp++
				continue
			}
			if p.weight > best[p.window] {
				score += p.weight - best[p.window]
				best[p.window] = p.weight
			}
			detected[p.window] = true
		}
		out = append(out, ThresholdScore{Threshold: th, Score: score, TP: len(detected), FP: fp, FN: windows - len(detected)})
	}
	return out
}

// Options tune Score.
type Options struct {
	// ProbationPercent defaults to DefaultProbationPercent.
	ProbationPercent float64
	// HillClimb chooses the threshold the way NAB's runner does: a local
	// hill climb over [0, 1] from 0.5 (step 0.1, doubled after an
	// improvement, halved otherwise, until below 1e-7). It can stop on a
	// plateau or a local optimum; the default sweeps every distinct score
	// and finds the global optimum, which is never lower.
	HillClimb bool
}

func (o Options) probation() float64 {
	if o.ProbationPercent <= 0 {
		return DefaultProbationPercent
	}
	return o.ProbationPercent
}

// Result is a detector's score on a corpus under one profile.
type Result struct {
	// Threshold is the optimised detection threshold (+Inf: detect nothing).
	Threshold float64
	// Raw is the summed raw score at Threshold; Null and Perfect are those
	// of the null and the perfect detector.
	Raw, Null, Perfect float64
	// Normalized is 100·(Raw−Null)/(Perfect−Null): null 0, perfect 100.
	Normalized float64
	// TP, FP, FN at Threshold.
	TP, FP, FN int
	// Windows is the number of labelled windows in the corpus.
	Windows int
	// Files holds each file's raw score at Threshold.
	Files map[string]float64
}

// Score scores a detector on a corpus under one cost matrix, choosing the
// threshold that maximises the corpus raw score. NAB's optimiser sweeps
// every distinct anomaly score the same way (older NAB runners climbed
// from 0.5 instead: see Options.HillClimb).
//
// The null baseline is scored the same way (a detector that outputs 0.5
// everywhere, with its own optimised threshold), and the perfect score is
// the TP weight times the number of windows, as in NAB's normalisation.
func Score(files []File, costs CostMatrix, opts Options) (Result, error) {
	return score(files, costs, opts, nil)
}

// ScoreFixed scores a detector on a corpus at a threshold fixed
// beforehand (every point whose anomaly score is at least threshold is a
// detection), normalised as Score normalises.
func ScoreFixed(files []File, costs CostMatrix, threshold float64, opts Options) (Result, error) {
	return score(files, costs, opts, &threshold)
}

func score(files []File, costs CostMatrix, opts Options, fixed *float64) (Result, error) {
	all, windows, err := corpusPoints(files, costs, opts, nil)
	if err != nil {
		return Result{}, err
	}
	choose := bestOf
	if opts.HillClimb {
		choose = hillClimb
	}
	var best ThresholdScore
	if fixed != nil {
		best = at(byThreshold(all, costs), *fixed)
	} else {
		best = choose(byThreshold(all, costs))
	}

	null, _, err := corpusPoints(files, costs, opts, func(float64) float64 { return 0.5 })
	if err != nil {
		return Result{}, err
	}
	nullBest := choose(byThreshold(null, costs))

	var labelled int
	for _, f := range files {
		labelled += len(f.Windows)
	}
	res := Result{
		Threshold: best.Threshold,
		Raw:       best.Score,
		Null:      nullBest.Score,
		Perfect:   costs.TP * float64(labelled),
		TP:        best.TP, FP: best.FP, FN: best.FN,
		Windows: windows,
		Files:   map[string]float64{},
	}
	if res.Perfect != res.Null {
		res.Normalized = 100 * (res.Raw - res.Null) / (res.Perfect - res.Null)
	}
	for _, f := range files {
		ts, err := ScoreAt([]File{f}, costs, best.Threshold, opts)
		if err != nil {
			return Result{}, err
		}
		res.Files[f.Name] = ts.Score
	}
	return res, nil
}

// ScoreAt returns the corpus raw score with a fixed threshold: every point
// whose anomaly score is at least threshold is a detection.
func ScoreAt(files []File, costs CostMatrix, threshold float64, opts Options) (ThresholdScore, error) {
	all, _, err := corpusPoints(files, costs, opts, nil)
	if err != nil {
		return ThresholdScore{}, err
	}
	return at(byThreshold(all, costs), threshold), nil
}

// at returns the row that applies at threshold: rows run from +Inf down,
// and the matching one is the last whose threshold is still >= threshold.
func at(rows []ThresholdScore, threshold float64) ThresholdScore {
	match := rows[0]
	for _, r := range rows[1:] {
		if r.Threshold < threshold {
			break
		}
		match = r
	}
	match.Threshold = threshold
	return match
}

// hillClimb searches the threshold as NAB's runner does (see
// Options.HillClimb), over the score-by-threshold rows.
func hillClimb(rows []ThresholdScore) ThresholdScore {
	seen := map[float64]ThresholdScore{}
	eval := func(x float64) ThresholdScore {
		if r, ok := seen[x]; ok {
			return r
		}
		r := at(rows, x)
		if x < 0 || x > 1 {
			r.Score = math.Inf(-1)
		}
		seen[x] = r
		return r
	}
	x, delta := 0.5, 0.1
	best := eval(x)
	for delta > 1e-7 {
		x += delta
		if r := eval(x); r.Score > best.Score {
			best = r
			delta *= 2
			continue
		}
		x -= float64(2 * delta)
		if r := eval(x); r.Score > best.Score {
			best = r
			delta *= 2
			continue
		}
		x += delta
		delta /= 2
	}
	return best
}

// corpusPoints sweeps every file, giving windows corpus-wide ids. When
// override is set it replaces the detector's scores (for the null detector).
func corpusPoints(files []File, costs CostMatrix, opts Options, override func(float64) float64) ([]point, int, error) {
	var all []point
	id := 0
	for _, f := range files {
		if override != nil {
			s := make([]float64, len(f.Scores))
			for i, v := range f.Scores {
				s[i] = override(v)
			}
			f.Scores = s
		}
		pts, nw, err := sweep(f, costs, opts.probation(), id)
		if err != nil {
			return nil, 0, err
		}
		id += nw
		all = append(all, pts...)
	}
	return all, id, nil
}

// bestOf returns the row with the highest score; ties go to the higher
// threshold (fewer detections).
func bestOf(rows []ThresholdScore) ThresholdScore {
	best := rows[0]
	for _, r := range rows[1:] {
		if r.Score > best.Score {
			best = r
		}
	}
	return best
}
