package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hashicorp/cli"

	"github.com/foreshape/foreshape/agent/forecast/eval"
	"github.com/foreshape/foreshape/agent/forecast/global"
	"github.com/foreshape/foreshape/internal/tracefile"
	"github.com/foreshape/foreshape/sim"
)

func init() {
	register("forecast train", func(m Meta) cli.Command { return &ForecastTrainCommand{Meta: m} })
}

// ForecastTrainCommand trains the learned global forecaster.
type ForecastTrainCommand struct{ Meta }

func (c *ForecastTrainCommand) Synopsis() string {
	return "Train the learned global forecaster on the tuning part of the traces"
}

func (c *ForecastTrainCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape forecast train -data DIR -out DIR [options]
       foreshape forecast train -describe FILE

  Trains foreshape's learned global forecaster (see docs/forecasting.md):
  N-BEATS and LSTM networks for 5-minute and for 1-minute series, and
  writes one weights file per network to -out, with its provenance in the
  file's header. make train runs it and writes the weights foreshape
  embeds.

  It trains on the tuning part of the split (forecast eval -split) of the
  traces under DIR whose licences allow shipping weights derived from them:
  NAB (MIT), PlanetLab (Apache-2.0) and the CC-BY-4.0 cluster aggregates of
  Google and Azure; never Bitbrains or anything from Alibaba. It leaves out
  the series the bundled simulator scenarios (default, maintenance) bind,
  so that the agent's end-to-end checks run on series the networks never
  saw. The 1-minute networks train on the 5-minute traces, and on sums of
  eight copies of each shifted by up to two hours (a locality sums many
  allocations running out of phase), interpolated linearly to one minute.

  Training is deterministic for a seed and a number of workers.

Options:

  -data=DIR        The shared trace directory (holding nab/, planetlab/,
                   datacenter_aggregates/). Required unless -describe.
  -out=DIR         Where to write the weights files. Required unless
                   -describe.
  -models=LIST     Comma-separated networks. Default: every one
                   (` + strings.Join(shapeNames(), ", ") + `).
  -seed=N          Default: 1.
  -steps=N         Adam steps per network. Default: 2000.
  -batch=N         Windows per step. Default: 128.
  -workers=N       Default: GOMAXPROCS.
  -split=FILE      The tuning/check split. Default: the one foreshape was
                   tuned on.
  -describe=FILE   Print a weights file's header and exit.

Example:

  $ foreshape forecast train -data ../shared/data -out agent/forecast/global/weights
`)
}

func shapeNames() []string {
	var out []string
	for _, s := range global.Shapes {
		out = append(out, s.Name)
	}
	return out
}

// trainable are the traces whose licences allow shipping weights derived
// from them.
var trainable = []string{
	"nab/data/*/*.csv", // MIT
	"planetlab/*/*",    // Apache-2.0
	"datacenter_aggregates/google2019/*/*.csv", // CC-BY-4.0
	"datacenter_aggregates/azure_v2/*/*.csv",   // CC-BY-4.0
}

// trainableNote is the provenance's description of the data.
const trainableNote = "tuning part (agent/forecast/eval/split.json) of NAB realAWSCloudwatch (MIT, Numenta), " +
	"PlanetLab CoMon via CloudSim (Apache-2.0), Google ClusterData2019 and Azure Public Dataset V2 aggregates " +
	"(CC-BY-4.0, Alejandro Fernández, DOI 10.5281/zenodo.14564847); without the series the bundled simulator scenarios bind; " +
	"1-minute networks: the same, and sums of 8 copies shifted by up to 2 h, interpolated linearly"

func (c *ForecastTrainCommand) Run(args []string) int {
	fs := c.FlagSet("forecast train", c.Help)
	dir := fs.String("data", "", "")
	out := fs.String("out", "", "")
	models := fs.String("models", "", "")
	seed := fs.Uint64("seed", 1, "")
	steps := fs.Int("steps", 2000, "")
	batch := fs.Int("batch", 128, "")
	workers := fs.Int("workers", 0, "")
	splitFile := fs.String("split", "", "")
	describe := fs.String("describe", "", "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if *describe != "" {
		return c.describe(*describe)
	}
	switch {
	case fs.NArg() > 0:
		return c.UsageError("forecast train", "unexpected argument "+fs.Arg(0))
	case *dir == "" || *out == "":
		return c.UsageError("forecast train", "-data and -out are required")
	case *steps < 1 || *batch < 1 || *workers < 0:
		return c.UsageError("forecast train", "-steps and -batch must be positive, -workers not negative")
	}
	shapes, err := pickShapes(*models)
	if err != nil {
		return c.UsageError("forecast train", err.Error())
	}
	split := eval.DefaultSplit()
	if *splitFile != "" {
		f, err := os.Open(*splitFile)
		if err == nil {
			split, err = eval.ReadSplit(f)
			f.Close()
		}
		if err != nil {
			c.UI.Error("error: -split: " + err.Error())
			return ExitInvalid
		}
	}
	if *workers == 0 {
		*workers = runtime.GOMAXPROCS(0)
	}
	series, err := c.trainingSeries(*dir, split)
	if err != nil {
		c.UI.Error("error: " + err.Error())
		return ExitInvalid
	}
	if len(series) == 0 {
		c.UI.Error("error: no training series under " + *dir)
		return ExitInvalid
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		c.UI.Error("error: " + err.Error())
		return ExitInvalid
	}
	for _, shape := range shapes {
		data := series
		if shape.StepSeconds != 300 {
			data = resample(append(series, jitterSums(series, *seed)...), 300/shape.StepSeconds)
		}
		started := time.Now()
		m, err := global.Train(shape, data, global.TrainOptions{
			Seed: *seed, Steps: *steps, Batch: *batch, Workers: *workers,
			Provenance: global.Provenance{Data: []string{trainableNote},
				Note: fmt.Sprintf("foreshape forecast train (make train): seed %d, %d steps of %d windows, %d workers", *seed, *steps, *batch, *workers)},
		})
		if err != nil {
			c.UI.Error(fmt.Sprintf("error: %s: %v", shape.Name, err))
			return ExitInvalid
		}
		var buf bytes.Buffer
		if err := m.Encode(&buf); err != nil {
			c.UI.Error("error: " + err.Error())
			return ExitInvalid
		}
		path := filepath.Join(*out, shape.Name+".fsgm")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			c.UI.Error("error: " + err.Error())
			return ExitInvalid
		}
		fmt.Fprintf(c.Out, "%s: %d series, %d windows, final loss %.4f, %s, %.1f s\n", shape.Name, m.Provenance.Series,
			m.Provenance.Windows, m.Provenance.Loss, path, time.Since(started).Seconds())
	}
	return ExitOK
}

func pickShapes(list string) ([]global.Config, error) {
	if strings.TrimSpace(list) == "" {
		return global.Shapes, nil
	}
	var out []global.Config
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, s := range global.Shapes {
			if s.Name == name {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown network %q (known: %s)", name, strings.Join(shapeNames(), ", "))
		}
	}
	return out, nil
}

// trainingSeries reads the shippable, tuning-part series under dir that no
// bundled scenario binds, on the 5-minute grid.
func (c *ForecastTrainCommand) trainingSeries(dir string, split eval.Split) ([]global.Series, error) {
	bound, err := scenarioBindings()
	if err != nil {
		return nil, err
	}
	var out []global.Series
	for _, folder := range []string{"nab", "planetlab", "datacenter_aggregates"} {
		root := filepath.Join(dir, folder)
		if _, err := os.Stat(root); err != nil {
			fmt.Fprintf(c.Err, "no %s under %s: left out\n", folder, dir)
			continue
		}
		d, err := tracefile.ReadDir(c.Ctx, os.DirFS(root), ".", folder, 5*time.Minute)
		if err != nil {
			return nil, fmt.Errorf("read traces: %w", err)
		}
		for _, s := range d.Series {
			if split.Part(s) != eval.Tuning || !matchesAny(trainable, s) || matchesAny(bound, s) {
				continue
			}
			out = append(out, global.Series{Name: s.Name, Values: s.Values, Start: s.Start})
		}
	}
	return out, nil
}

func matchesAny(patterns []string, s tracefile.Series) bool {
	for _, p := range patterns {
		if eval.Match(p, s.Path, s.Column) {
			return true
		}
	}
	return false
}

// scenarioBindings are the trace series (file:column patterns) the bundled
// default and maintenance scenarios bind.
func scenarioBindings() ([]string, error) {
	var out []string
	for _, name := range []string{"default.hcl", "maintenance.hcl"} {
		sc, err := sim.LoadScenario(sim.Scenarios(), name)
		if err != nil {
			return nil, fmt.Errorf("bundled scenario %s: %w", name, err)
		}
		for _, t := range sc.Traces {
			p := strings.ReplaceAll(strings.ReplaceAll(t.File, "[", "\\["), "]", "\\]")
			// The bundled datacenter files sit in the shared data under a
			// week folder.
			p = strings.Replace(p, "datacenter/", "", 1)
			if strings.Contains(p, "google2019/") || strings.Contains(p, "azure_v2/") {
				dirPart, file, _ := strings.Cut(p, "/")
				p = dirPart + "/*/" + file
			}
			if t.Column != "" {
				p += ":" + strings.ReplaceAll(strings.ReplaceAll(t.Column, "[", "\\["), "]", "\\]")
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// jitterSums are, per series, the mean of jitterCopies copies of it each
// shifted by up to jitterSteps steps: a locality's demand sums many
// allocations of a job running out of phase with one another, smoother
// than any one of them.
func jitterSums(in []global.Series, seed uint64) []global.Series {
	rng := rand.New(rand.NewPCG(seed, 0x717))
	out := make([]global.Series, 0, len(in))
	for _, s := range in {
		n := len(s.Values)
		if n <= 2*jitterSteps {
			continue
		}
		v := make([]float64, n-jitterSteps)
		for c := 0; c < jitterCopies; c++ {
			shift := rng.IntN(jitterSteps + 1)
			for i := range v {
				v[i] += float64(s.Values[i+shift] / jitterCopies)
			}
		}
		out = append(out, global.Series{Name: s.Name + " (jittered sum)", Values: v, Start: s.Start})
	}
	return out
}

// jitterCopies and jitterSteps shape jitterSums: eight allocations up to
// two hours (24 five-minute steps) apart.
const (
	jitterCopies = 8
	jitterSteps  = 24
)

// resample interpolates 5-minute series linearly to k points per step (k =
// 5 for one minute), as the simulator plays traces; gaps stay missing.
func resample(in []global.Series, k float64) []global.Series {
	n := int(math.Round(k))
	out := make([]global.Series, len(in))
	for i, s := range in {
		v := make([]float64, 0, len(s.Values)*n)
		for j, a := range s.Values {
			if j == len(s.Values)-1 {
				v = append(v, a)
				break
			}
			b := s.Values[j+1]
			for q := 0; q < n; q++ {
				v = append(v, a+(b-a)*float64(q)/float64(n))
			}
		}
		out[i] = global.Series{Name: s.Name, Values: v, Start: s.Start}
	}
	return out
}

// describe prints a weights file's header.
func (c *ForecastTrainCommand) describe(path string) int {
	f, err := os.Open(path)
	if err != nil {
		c.UI.Error("error: " + err.Error())
		return ExitInvalid
	}
	defer f.Close()
	m, err := global.Decode(f)
	if err != nil {
		c.UI.Error("error: " + err.Error())
		return ExitInvalid
	}
	b, err := json.MarshalIndent(struct {
		Config     global.Config     `json:"config"`
		Provenance global.Provenance `json:"provenance"`
		Parameters int               `json:"parameters"`
	}{m.Config, m.Provenance, m.Parameters()}, "", "  ")
	if err != nil {
		c.UI.Error("error: " + err.Error())
		return ExitInvalid
	}
	fmt.Fprintln(c.Out, string(b))
	return ExitOK
}
