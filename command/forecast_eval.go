package command

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/cli"
	"github.com/schollz/progressbar/v3"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/forecast/anomaly"
	"github.com/foreshape/foreshape/agent/forecast/eval"
	"github.com/foreshape/foreshape/internal/tracefile"
)

func init() {
	register("forecast eval", func(m Meta) cli.Command { return &ForecastEvalCommand{Meta: m} })
}

// ForecastEvalCommand backtests the forecasting models on trace files.
type ForecastEvalCommand struct{ Meta }

func (c *ForecastEvalCommand) Synopsis() string {
	return "Backtest the forecasting models on trace files"
}

func (c *ForecastEvalCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape forecast eval -data DIR -horizon H [options]

  Reads every trace file under DIR, recursively: NAB timestamp,value CSV;
  header CSV separated by commas or semicolons, one series per numeric
  column; one value per line; headerless numeric columns; headerless rows
  keyed by a machine id with times in seconds (one series per machine and
  column). Each series is put on the -step grid: gaps stay missing, samples
  sharing a grid point are averaged.

  Each model runs inside the same per-series pipeline as in the agent: an
  online anomaly detector keeps spikes out of the model, the model absorbs
  new samples cheaply and is refitted on its schedule, on level shifts and
  when its one-step errors degrade, and forecasts are clamped into the
  series' physical range (as the split declares it, else 0 and up for a
  series whose history never went below 0).
  Each model is backtested with a rolling origin over the last 20% of
  every series (-holdout; origins every H steps, expanding training
  window), and the table shows per model: mase and crps (scaled by the
  in-sample seasonal-naive error with the daily period), smape, coverage
  of the 80% and 95% bands (cov80_varying, cov95_varying: the same over
  the points where the band has a width; a zero-width band, on a constant
  series, covers by construction), fitting time and fits per series, and
  rel_mase / rel_crps, the geometric means over series of the model's
  figure divided by seasonal naive's (below 1 beats seasonal naive). The
  vs_best_baseline column divides rel_mase by the better of the two
  baselines' (below 1 beats both naive and seasonal naive).

  Rows with missing or invalid values are skipped and counted; files that
  are not traces are listed on stderr and ignored.

Options:

  -data=DIR         Trace directory. Repeat the flag or separate with commas
                    to evaluate several; each is then one folder. A single
                    directory is split into folders by its subdirectories.
  -horizon=H        Steps to forecast at each origin. Required.
  -step=DUR         Sampling interval of the traces. Default: 5m.
  -models=LIST      Comma-separated models. Default: every model
                    (` + strings.Join(forecast.Models(), ", ") + `).
                    seasonal-naive is always included as the reference.
  -quantiles=LIST   Comma-separated quantile levels the models produce.
                    Default: the forecast defaults; 0.025, 0.1, 0.5, 0.9 and
                    0.975 are always added for the coverage figures.
  -refit-every=N    The models' refit schedule: every N origins (N·H
                    samples). Default: 0, the agent's schedule, once a day
                    of data. 1 refits at every origin. Level shifts and
                    degraded errors refit as well, as in the agent.
  -holdout=SHARE    The share of every series forecast, from 0.05 to 0.95:
                    a larger share starts from shorter histories and
                    gives more origins. Default: 0.2.
  -workers=N        Series evaluated in parallel. Default: GOMAXPROCS.
  -format=FORMAT    table or json. Default: table.
  -by-folder        With the table format, also print one table per folder
                    (the JSON always has a "folders" object).
  -part=PART        tuning, check or all: evaluate only the series of one
                    part of the split (see -split). Default: all.
  -split=FILE       The tuning/check split: a JSON file of path patterns
                    ("tuning", "check") and of series' physical ranges
                    ("ranges": "percent", "fraction"; other series are
                    taken to be 0 and up when their history is). Default:
                    the split of ../shared/data foreshape was tuned on.
  -export=FILE      Also write the evaluated series, their origins, MASE
                    scales and exclusions to FILE as JSON lines, for another
                    implementation to backtest on the same protocol (make
                    eval-reference).
  -forecasts=FILE   Also write every scored forecast to FILE as JSON lines:
                    the series, folder, model, origin (its index, and its
                    time when the series has times), the forecast's label
                    and reason (what auto chose, how its bands were made),
                    the actuals, the mean and the bands at every quantile
                    level, for analyses the tables do not make (coverage by
                    lead time, or by auto's reason).
  -per-series       Also report every series' own figures (a "per_series"
                    list in the JSON; with the table format, the ten series
                    where each model does worst against seasonal naive).
  -masking=BOOL     Keep the points the anomaly detector marks out of the
                    models, as the agent does. Default: true. false measures
                    the models on the raw points (the detector still finds
                    level shifts, which refit them).
  -detector=NAME    The anomaly detector the pipeline runs (the names
                    'forecast anomalies -detector' takes). Default: the
                    agent's.
  -quiet            No progress bar.

Examples:

  $ foreshape forecast eval -data ../shared/data/nab -horizon 12
  $ foreshape forecast eval -data nab,bitbrains_rnd -horizon 288 -format json
`)
}

// evalDirsFlag collects a repeatable, comma-separated flag.
type evalDirsFlag []string

func (m *evalDirsFlag) String() string { return strings.Join(*m, ",") }

func (m *evalDirsFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*m = append(*m, s)
		}
	}
	return nil
}

func (c *ForecastEvalCommand) Run(args []string) int {
	fs := c.FlagSet("forecast eval", c.Help)
	var dirs evalDirsFlag
	fs.Var(&dirs, "data", "")
	horizon := fs.Int("horizon", 0, "")
	step := fs.Duration("step", 5*time.Minute, "")
	models := fs.String("models", "", "")
	quantiles := fs.String("quantiles", "", "")
	refit := fs.Int("refit-every", 0, "")
	workers := fs.Int("workers", 0, "")
	holdout := fs.Float64("holdout", 0.2, "")
	format := fs.String("format", "table", "")
	byFolder := fs.Bool("by-folder", false, "")
	quiet := fs.Bool("quiet", false, "")
	perSeries := fs.Bool("per-series", false, "")
	part := fs.String("part", "all", "")
	splitFile := fs.String("split", "", "")
	export := fs.String("export", "", "")
	forecastsFile := fs.String("forecasts", "", "")
	masking := fs.Bool("masking", true, "")
	detector := fs.String("detector", anomaly.DefaultDetector, "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return c.UsageError("forecast eval", "unexpected argument "+fs.Arg(0))
	case len(dirs) == 0:
		return c.UsageError("forecast eval", "-data is required")
	case *horizon < 1:
		return c.UsageError("forecast eval", "-horizon must be a positive number of steps")
	case *step <= 0:
		return c.UsageError("forecast eval", "-step must be positive")
	case *format != "table" && *format != "json":
		return c.UsageError("forecast eval", "-format must be table or json")
	case *refit < 0 || *workers < 0:
		return c.UsageError("forecast eval", "-refit-every and -workers must not be negative")
	case !(*holdout >= 0.05 && *holdout <= 0.95):
		return c.UsageError("forecast eval", "-holdout must be a share from 0.05 to 0.95")
	case *part != "all" && *part != eval.Tuning && *part != eval.Check:
		return c.UsageError("forecast eval", "-part must be tuning, check or all")
	}
	if _, err := anomaly.NewOnline(*detector, anomaly.Options{}); err != nil {
		return c.UsageError("forecast eval", "-detector: "+err.Error())
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
	names, err := evalParseModels(*models)
	if err != nil {
		return c.UsageError("forecast eval", err.Error())
	}
	qs, err := evalParseQuantiles(*quantiles)
	if err != nil {
		return c.UsageError("forecast eval", err.Error())
	}

	data, err := readTraceDirs(c.Meta, dirs, *step)
	if err != nil {
		c.UI.Error("error: " + err.Error())
		return ExitInvalid
	}
	if len(data.Series) == 0 {
		c.UI.Error("error: no series found under " + dirs.String())
		return ExitInvalid
	}
	if *part != "all" {
		kept := data.Series[:0]
		for _, s := range data.Series {
			if split.Part(s) == *part {
				kept = append(kept, s)
			}
		}
		data.Series = kept
		if len(data.Series) == 0 {
			c.UI.Error("error: no series of the " + *part + " part under " + dirs.String())
			return ExitInvalid
		}
	}

	if *export != "" {
		if err := writeEvalExport(*export, data, *horizon, *step, split); err != nil {
			c.UI.Error("error: -export: " + err.Error())
			return ExitInvalid
		}
	}

	cfg := eval.Config{
		Anomaly:    anomaly.Options{Detector: *detector},
		NoMasking:  !*masking,
		Range:      split.RangeFunc(),
		Horizon:    *horizon,
		Step:       *step,
		Models:     names,
		Quantiles:  qs,
		Workers:    *workers,
		RefitEvery: *refit,
		PerSeries:  *perSeries,
		Holdout:    *holdout,
	}
	var forecasts *jsonLines
	if *forecastsFile != "" {
		forecasts, err = createJSONLines(*forecastsFile)
		if err != nil {
			c.UI.Error("error: -forecasts: " + err.Error())
			return ExitInvalid
		}
		defer forecasts.abandon()
		cfg.Forecasts = func(r eval.ForecastRecord) error { return forecasts.write(r) }
	}
	var bar *progressbar.ProgressBar
	if !*quiet && evalIsTerminal(c.Err) {
		bar = progressbar.NewOptions(len(data.Series),
			progressbar.OptionSetWriter(c.Err),
			progressbar.OptionSetDescription("series"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
		cfg.Progress = func(done, _ int) { _ = bar.Set(done) }
	}
	rep, err := eval.Evaluate(c.Ctx, data, cfg)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		if forecasts != nil && forecasts.err != nil {
			c.UI.Error("error: -forecasts: " + err.Error())
		} else {
			c.UI.Error("error: " + err.Error())
		}
		return ExitInvalid
	}
	if forecasts != nil {
		if err := forecasts.close(); err != nil {
			c.UI.Error("error: -forecasts: " + err.Error())
			return ExitInvalid
		}
	}

	if *format == "json" {
		b, err := json.Marshal(rep)
		if err != nil {
			c.UI.Error("error: " + err.Error())
			return ExitInvalid
		}
		fmt.Fprintln(c.Out, string(b))
		return ExitOK
	}
	fmt.Fprintf(c.Out, "%s: horizon %d steps (%s), %d series, %d origins, %d skipped rows, scheduled refit every %d origins\n",
		partName(*part), rep.Horizon, time.Duration(rep.Horizon)*(*step), rep.Series, rep.Origins, rep.SkippedRows, rep.RefitEvery)
	printEvalExclusions(c.Out, rep)
	fmt.Fprintln(c.Out)
	writeEvalTable(c.Out, rep.ModelNames(), rep.Models)
	if *byFolder {
		var folders []string
		for f := range rep.Folders {
			folders = append(folders, f)
		}
		sort.Strings(folders)
		for _, f := range folders {
			fo := rep.Folders[f]
			fmt.Fprintf(c.Out, "\n%s (%d series)\n", f, fo.Series)
			writeEvalTable(c.Out, rep.ModelNames(), fo.Models)
		}
	}
	if *perSeries {
		writeWorstSeries(c.Out, rep)
	}
	return ExitOK
}

// writeEvalExport writes the evaluated series with their plans (see
// eval.Export) to path.
func writeEvalExport(path string, data tracefile.Data, h int, step time.Duration, split eval.Split) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := eval.Export(f, data, h, step, 0, split.RangeFunc()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// jsonLines writes values to a file as JSON lines; its first error, which
// names the file, sticks.
type jsonLines struct {
	path string
	f    *os.File
	w    *bufio.Writer
	err  error
}

func createJSONLines(path string) (*jsonLines, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &jsonLines{path: path, f: f, w: bufio.NewWriter(f)}, nil
}

func (j *jsonLines) write(v any) error {
	if j.err != nil {
		return j.err
	}
	b, err := json.Marshal(v)
	if err == nil {
		b = append(b, '\n')
		_, err = j.w.Write(b)
	}
	if err != nil {
		j.err = fmt.Errorf("writing %s: %w", j.path, err)
	}
	return j.err
}

// close flushes and closes the file.
func (j *jsonLines) close() error {
	if j.f == nil {
		return j.err
	}
	err := j.w.Flush()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.f = nil
	if err != nil && j.err == nil {
		j.err = fmt.Errorf("writing %s: %w", j.path, err)
	}
	return j.err
}

// abandon closes the file if close was not reached (an error on the way).
func (j *jsonLines) abandon() {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

func partName(p string) string {
	if p == "all" {
		return "all series"
	}
	return p + " part"
}

// writeWorstSeries lists, per model, the series where its MASE is the
// largest multiple of seasonal naive's.
func writeWorstSeries(w io.Writer, rep eval.Report) {
	for _, m := range rep.ModelNames() {
		if m == eval.SeasonalNaive {
			continue
		}
		type row struct {
			name string
			fig  eval.Metrics
		}
		var rows []row
		for _, s := range rep.PerSeries {
			if f, ok := s.Models[m]; ok && !math.IsNaN(float64(f.RelMASE)) {
				rows = append(rows, row{s.Name, f})
			}
		}
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].fig.RelMASE > rows[j].fig.RelMASE })
		if len(rows) > 10 {
			rows = rows[:10]
		}
		fmt.Fprintf(w, "\n%s: worst series against seasonal naive\n", m)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERIES\tREL_MASE\tMASE\tCRPS\tCOVERAGE80")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.name, evalFmtNum(r.fig.RelMASE, 3), evalFmtNum(r.fig.MASE, 3),
				evalFmtNum(r.fig.CRPS, 3), evalFmtNum(r.fig.Coverage80, 3))
		}
		_ = tw.Flush()
	}
}

// readTraceDirs reads every directory and reports the files it ignored on
// stderr.
func readTraceDirs(m Meta, dirs []string, step time.Duration) (tracefile.Data, error) {
	// Every directory is checked before any is read, and an error names
	// the flag that gave it, as sim run's and sim serve's do.
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return tracefile.Data{}, fmt.Errorf("-data %s: no such directory", dir)
		case err != nil:
			return tracefile.Data{}, fmt.Errorf("-data %s: %w", dir, err)
		case !fi.IsDir():
			return tracefile.Data{}, fmt.Errorf("-data %s is not a directory", dir)
		}
	}
	var all tracefile.Data
	for _, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return tracefile.Data{}, fmt.Errorf("read traces: %w", err)
		}
		d, err := tracefile.ReadDir(m.Ctx, os.DirFS(abs), ".", filepath.Base(abs), step)
		if err != nil {
			return tracefile.Data{}, fmt.Errorf("read traces: %w", err)
		}
		for _, s := range d.SkippedFiles {
			fmt.Fprintf(m.Err, "ignored %s/%s\n", filepath.Base(abs), s)
		}
		if len(dirs) > 1 {
			// Several directories: each is one folder.
			for i := range d.Series {
				d.Series[i].Folder = filepath.Base(abs)
			}
		}
		all.Series = append(all.Series, d.Series...)
		all.SkippedRows += d.SkippedRows
		all.Files += d.Files
		all.SkippedFiles = append(all.SkippedFiles, d.SkippedFiles...)
	}
	return all, nil
}

func printEvalExclusions(w io.Writer, rep eval.Report) {
	var parts []string
	for reason, n := range rep.Excluded {
		parts = append(parts, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(parts)
	if len(parts) > 0 {
		fmt.Fprintf(w, "excluded series: %s\n", strings.Join(parts, ", "))
	}
	var fails []string
	for m, n := range rep.Failures {
		fails = append(fails, fmt.Sprintf("%s %d", m, n))
	}
	sort.Strings(fails)
	if len(fails) > 0 {
		fmt.Fprintf(w, "failed series per model: %s\n", strings.Join(fails, ", "))
	}
}

// writeEvalTable prints one row per model. The vs_best_baseline column is
// the model's rel_mase divided by the better of the two baselines' (naive's
// and seasonal naive's, which is 1 by definition): below 1 the model beats
// both.
func writeEvalTable(w io.Writer, names []string, ms map[string]eval.Metrics) {
	best := 1.0
	if n, ok := ms[eval.Naive]; ok && float64(n.RelMASE) < best {
		best = float64(n.RelMASE)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\trel_mase\tvs_best_baseline\trel_crps\tmase\tsmape\tcrps\tcoverage80\tcoverage95\tcov80_varying\tcov95_varying\tfit_ms_per_series\tfits_per_series\t")
	for _, n := range names {
		m, ok := ms[n]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", n,
			evalFmtNum(m.RelMASE, 3), evalFmtNum(m.RelMASE/eval.Num(best), 3), evalFmtNum(m.RelCRPS, 3),
			evalFmtNum(m.MASE, 3), evalFmtNum(m.SMAPE, 2), evalFmtNum(m.CRPS, 3),
			evalFmtNum(m.Coverage80, 3), evalFmtNum(m.Coverage95, 3), evalFmtNum(m.Coverage80Varying, 3), evalFmtNum(m.Coverage95Varying, 3),
			evalFmtNum(m.FitMsPerSeries, 1), evalFmtNum(m.RefitsPerSeries, 1))
	}
	_ = tw.Flush()
}

func evalFmtNum(n eval.Num, prec int) string {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

// evalParseModels checks a comma-separated model list against forecast.Models.
func evalParseModels(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	known := map[string]bool{}
	for _, m := range forecast.Models() {
		known[m] = true
	}
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		if !known[m] {
			return nil, fmt.Errorf("unknown model %q (known: %s)", m, strings.Join(forecast.Models(), ", "))
		}
		out = append(out, m)
	}
	return out, nil
}

// evalParseQuantiles reads a comma-separated list of levels in (0, 1).
func evalParseQuantiles(s string) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		q, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(q > 0 && q < 1) {
			return nil, errors.New("-quantiles: " + strconv.Quote(f) + " is not a level between 0 and 1")
		}
		out = append(out, q)
	}
	sort.Float64s(out)
	return out, nil
}

// evalIsTerminal reports whether w is a terminal (a character device), where a
// progress bar belongs.
func evalIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
