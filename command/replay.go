package command

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/agent"
	"github.com/foreshape/foreshape/plugins/source/replay"
	"github.com/foreshape/foreshape/policies"
)

// This file is the wiring of `foreshape agent -replay DIR`: the agent runs
// on recorded series instead of a Nomad cluster, with a data clock that
// plays them back faster than the wall.

// defaultReplaySpeed plays an hour of recorded series in a wall minute.
const defaultReplaySpeed = 60

// replayRun is what the agent needs to run on a directory of recorded
// series.
type replayRun struct {
	source   *replay.Source
	series   int
	clock    *replayClock
	lookback time.Duration // history read on the first cycle
	end      time.Time     // the end of the recording
	policies []*policies.Policy
}

// prepareReplay reads the recorded series in dir at the policies' finest
// step: pols, the policies the agent runs (dir's *.hcl, or, when it holds
// none, the configuration's; see replayPolicies). The data clock starts
// far enough into the recording that the first cycle reads the policies'
// history (at most half the recording) and runs at speed.
func prepareReplay(dir string, speed float64, pols []*policies.Policy) (*replayRun, hcl.Diagnostics, error) {
	var diags hcl.Diagnostics
	if _, err := policies.HCLFiles(dir); err != nil {
		return nil, nil, fmt.Errorf("replay: %w", err)
	}
	if len(pols) == 0 {
		return nil, diags, fmt.Errorf("replay: no policies: put *.hcl policies for the recorded localities in %s, or set policies.dir with -config", dir)
	}
	step, history := pols[0].Forecast.Step, time.Duration(0)
	for _, p := range pols {
		step = min(step, p.Forecast.Step)
		history = max(history, p.Forecast.History)
	}
	bindings, skipped, err := replay.LoadDir(dir, step)
	if err != nil {
		return nil, diags, err
	}
	for _, s := range skipped {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Rows left out of the recording", Detail: s + "."})
	}
	src, err := replay.New(bindings)
	if err != nil {
		return nil, diags, err
	}
	start, end := src.Span()
	warm := min(history, end.Sub(start)/2).Truncate(step)
	return &replayRun{
		source: src, series: len(bindings), lookback: warm, end: end, policies: pols,
		clock: &replayClock{start: start.Add(warm), speed: speed, wall0: time.Now()},
	}, diags, nil
}

// replayPolicies loads the policies of a replay's directory dir (its *.hcl
// files), which the replay runs instead of policies.dir's, so that the
// agent's start checks (preflight.Check, run by 'agent -replay' and
// 'config validate -replay' alike) check them against the configuration.
// It returns nil when dir holds no *.hcl file, or cannot be read
// (prepareReplay says why), and no policy when one is invalid.
func replayPolicies(dir string) ([]*policies.Policy, map[string]*hcl.File, hcl.Diagnostics) {
	hcls, err := policies.HCLFiles(dir)
	if err != nil || len(hcls) == 0 {
		return nil, nil, nil
	}
	loader := policies.NewLoader()
	pols, diags := loader.LoadFiles(hcls...)
	if pols == nil || diags.HasErrors() {
		pols = []*policies.Policy{}
	}
	return pols, loader.Files(), diags
}

// replayClock is the data clock of a replay: start at the moment it was
// made, then speed data seconds per wall second.
type replayClock struct {
	start time.Time
	speed float64
	wall0 time.Time
}

var _ agent.Clock = (*replayClock)(nil)

// Now implements agent.Clock.
func (c *replayClock) Now(context.Context) (time.Time, error) {
	return c.start.Add(time.Duration(float64(time.Since(c.wall0)) * c.speed)).UTC(), nil
}

// Speed implements agent.Clock.
func (c *replayClock) Speed() float64 { return c.speed }
