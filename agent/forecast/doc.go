// Package forecast is foreshape's load prediction engine: models, model
// selection, calibrated quantile bands, hotspot detection and workload
// characterisation. Its subpackages hold the rest of the engine: anomaly
// (online anomaly and level-shift detection), season (seasonality
// detection and decomposition), eval (rolling-origin accuracy evaluation)
// and nab (the Numenta Anomaly Benchmark's scoring).
//
// It is pure: data and `now` come in as arguments, forecasts go out. It never
// performs I/O, never reads the clock, and never logs; callers (the agent's
// forecast loop, the evaluation command) own all of that.
//
// # Models
//
// New builds a Forecaster by name (Models lists them):
//
//   - "naive" and "seasonal-naive": the baselines (seasonal naive uses the
//     daily period when the history holds a day, else lag 1);
//   - "ets": exponential smoothing with additive errors, trend none,
//     additive or damped, additive seasonality only for short periods
//     (≤ 48 steps); parameters by likelihood with Nelder-Mead (gonum's
//     method, evaluation for evaluation, run in the fitting goroutine),
//     shape by AICc;
//   - "arima": KPSS differencing, stepwise order search by AICc,
//     conditional-sum-of-squares fitting;
//   - "theta": the standard theta method (SES with drift);
//   - "mstl": long and multiple seasons (288 and 2016 five-minute steps)
//     by iterated robust seasonal extraction with ETS on the adjusted
//     series; seasonal models other than ETS's short seasons go through
//     the same decomposition, never through hundreds of seasonal states;
//   - "auto", the default: per series, chooses or combines candidates by
//     rolling-origin backtests on the series' own recent history. Its
//     candidates include the pretrained global network (subpackage
//     global); for horizons under a quarter day its ARIMA candidate
//     searches the mixed orders ARMA(1,1), (2,1) and (1,2) only when the
//     best AR fit's residuals fail the Ljung–Box test. Under two days of
//     history the last value joins its choice, and on a cold start (a
//     backtest too short to choose) the network forecasts, its bands
//     centred on the mean of its median, the last value and a
//     mean-reverting level (revertLevel).
//
// # Bands
//
// Every model's bands are split-conformal: the model is fitted on the
// history before a set of backtest origins, replayed over the rest, and its
// signed residuals per horizon step (up to Options.Horizon) give a scale per
// step and a pooled residual shape; see calibration. With too little
// history, or less than two daily seasons, bands fall back to a √h-grown
// scale and are widened, and the Prediction's Reason says "cold start".
// auto also widens its bands, by up to 1.75× and the outer bands most, when
// its backtest origins span fewer than five horizons (a one-day horizon on
// a history of a few days): the residuals at long steps then come from very
// few independent windows, so the bands get Student-t tails whose degrees
// of freedom grow with the windows; the Reason says so. On five-minute
// series auto's bands then take a pooled correction per requested horizon
// and lead time, learnt across many series of the tuning traces
// (pooledBands): each series' residuals say how wide its bands are, the
// pool says how far such bands are off.
//
// # Cost
//
// Fit does the expensive work; Update advances the fitted state in O(1) per
// observation, and Stale (the Refitter interface) tells the caller when a
// refit is due: on a schedule (Options.RefitEvery) or when one-step
// residuals degrade. auto's Fit backtests and refits its candidates on the
// cores that are idle: at most one goroutine per core beyond the first
// across the whole process, none when every core is taken; its result does
// not depend on how many it got.
package forecast
