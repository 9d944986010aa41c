// Package eval measures how well foreshape's forecasting models predict
// real utilisation traces: it runs a rolling-origin backtest of each model
// on each series (read by internal/tracefile), and reports point and probabilistic accuracy
// against the naive and seasonal-naive baselines.
//
// Protocol. For each series of n points, the last 20% are the test span.
// Forecast origins start at the beginning of that span and repeat every H
// steps while a full horizon of actuals remains (at least one origin: when
// the span is shorter than H, the single origin is n−H). At each origin the
// model sees the whole history before it (an expanding window) and forecasts
// H steps, scored against the actuals; NaN actuals are not scored.
//
// The agent's pipeline. Each of foreshape's models runs inside
// forecast.Pipeline, the per-series pipeline the agent runs: at each origin the new actuals go
// through the online anomaly detector (spikes reach the model as missing
// values), the model absorbs them (Forecaster.Update) and is refitted from
// scratch when the pipeline says so: every RefitEvery origins (by default
// once a day of data: max(1, 24h/(H·step)) origins, so every origin at
// H = one day), on a level shift, or when its one-step errors degrade.
// Config.RefitEvery = 1 refits at every origin. Forecasts are clamped into
// the series' physical range (Config.Range: by default 0 and up when the
// history before the first origin has no negative value). The baselines,
// naive and seasonal naive, are the textbook ones: they see the raw series
// (no masking, no clamping) and are refitted, which only recalibrates
// their bands, every RefitEvery origins.
//
// Metrics, per model. mase: mean absolute error of the point forecast
// divided by the in-sample mean absolute error of the seasonal naive
// forecast with the daily period (lag 1 when the series is shorter than two
// days), computed on the training part at each origin. smape: symmetric
// MAPE in percent (0–200). crps: the mean pinball loss over the forecast's
// quantiles, scaled like mase. coverage80 and coverage95: the share of
// actuals inside the 0.1–0.9 and 0.025–0.975 quantile bands, pooled over
// every scored point; coverage80_varying and coverage95_varying the same
// over the points where the band has a width (a zero-width band, on a
// constant series or an intermittent one whose quantiles all sit at 0,
// covers or misses by construction). fit_ms_per_series: wall-clock time spent fitting,
// updating and forecasting, per series; refits_per_series: fits per series,
// the first included. mase, smape and crps are means over
// series; rel_mase and rel_crps are geometric means over series of the
// model's figure divided by seasonal naive's.
//
// Series that cannot be scaled (the in-sample seasonal-naive error is zero:
// constant, or exactly periodic, in training) or are too short for one
// origin are excluded and counted.
//
// Export writes the series with their origins, scales and exclusions, so
// that another implementation can backtest on exactly the same protocol
// (`make eval-reference` does, with Python's statsmodels).
//
// The package reads no files (its caller hands it the series), writes only
// to the writer its caller gives Export, and never logs: progress goes to a
// callback.
package eval
