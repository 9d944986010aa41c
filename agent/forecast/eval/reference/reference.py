#!/usr/bin/python3
"""Classical reference forecasts on foreshape's evaluation protocol.

`make eval-reference` runs this script. It reads the series that
`foreshape forecast eval -export FILE` wrote, with their forecast origins,
MASE scales and exclusions, backtests four classical models from Debian's
python3-statsmodels on exactly those origins, and prints their figures
beside foreshape's (from that run's `-format json` report), per folder.

Reference models, refitted on the same schedule as foreshape's models (once
a day of data: every max(1, 24h / (H * step)) origins) and otherwise run
forward with fixed parameters on the new points:

  ets         ETS(A,Ad,N): additive errors, damped additive trend.
  theta       statsmodels' ThetaModel (deseasonalised additively at the
              daily period when its test finds a season).
  stl-ets     STL at the daily period (R's stl defaults), ETS(A,Ad,N) on
              the adjusted series, the last day's seasonal component
              repeated.
  arima111    ARIMA(1,1,1).

Parameters are estimated on at most the last 2,016 points (a week of
5-minute data), as foreshape's models do; bands are Gaussian with each
model's forecast standard errors; forecasts are clamped into the series'
physical range, as foreshape's are.

To prove the protocol matches, the script also computes the naive and the
seasonal-naive baselines the way `foreshape forecast eval` defines them and
requires their MASE and sMAPE, per folder, to equal foreshape's within
0.001; it exits with status 1 when they do not.

Figures: mase (mean absolute error over the MASE scale), smape, crps (mean
pinball loss over the quantile levels, over the scale), coverage of the 80%
and 95% bands, rel_mase and rel_crps (geometric means over series of the
figure divided by seasonal naive's), as `foreshape forecast eval` reports
them.
"""

import argparse
import functools
import hashlib
import json
import os
import math
import multiprocessing
import sys
import time
import warnings

warnings.filterwarnings("ignore")  # statsmodels warns about every slow optimiser; the figures say enough

import numpy as np
from scipy.stats import norm

LEVELS = [0.025, 0.05, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99]
FIT_WINDOW = 2016
REFERENCE = ["ets", "theta", "stl-ets", "arima111"]
BASELINES = ["naive", "seasonal-naive"]
TOLERANCE = 0.001


def load(path):
    out = []
    with open(path) as f:
        for line in f:
            s = json.loads(line)
            s["values"] = np.array([np.nan if v is None else v for v in s["values"]], dtype=float)
            out.append(s)
    return out


# --- baselines, exactly as foreshape defines them --------------------------


def naive_forecasts(y, origins, h):
    """The last finite value before each origin (0 when there is none)."""
    out = []
    for o in origins:
        finite = y[:o][np.isfinite(y[:o])]
        v = finite[-1] if len(finite) else 0.0
        out.append(np.full(h, v))
    return out


def snaive_forecasts(y, origins, h, daily, refit):
    """foreshape's seasonal naive: the value one season earlier, the season
    being a day when the history at the last refit held one (else lag 1),
    missing values imputed with the value one season earlier, else the last
    one."""
    out = []
    m = None
    for k, o in enumerate(origins):
        if k % refit == 0:
            m = daily if (o >= daily and daily > 1) else 1
        buf = np.full(m, np.nan)
        last = np.nan
        n = 0
        for v in y[:o]:
            i = n % m
            if not np.isfinite(v):
                v = buf[i]
                if np.isnan(v):
                    v = last
            buf[i] = v
            if not np.isnan(v):
                last = v
            n += 1
        filled = n >= m
        f = np.empty(h)
        for j in range(h):
            v = buf[(n + j) % m]
            if np.isnan(v) or (not filled and (n + j) % m >= n):
                v = last
            if np.isnan(v):
                v = 0.0
            f[j] = v
        out.append(f)
    return out


# --- reference models -------------------------------------------------------


def fill(x):
    """Linear interpolation of missing values, held at the ends."""
    x = np.array(x, dtype=float)
    ok = np.isfinite(x)
    if ok.all():
        return x
    if not ok.any():
        return np.zeros_like(x)
    idx = np.arange(len(x))
    return np.interp(idx, idx[ok], x[ok])


def gaussian_quantiles(mean, se):
    se = np.where(np.isfinite(se) & (se > 0), se, 0.0)
    return {q: mean + norm.ppf(q) * se for q in LEVELS}


def se_from_interval(mean, upper, alpha):
    return (np.asarray(upper) - np.asarray(mean)) / norm.ppf(1 - alpha / 2)


class ETS:
    """ETS(A,Ad,N); parameters at refits, smoothing with them in between."""

    def __init__(self):
        self.params = None

    def forecast(self, w, h, refit):
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        import pandas as pd

        # A pandas series: statsmodels 0.13's ETS prediction needs an index.
        model = ETSModel(pd.Series(w), error="add", trend="add", damped_trend=True)
        if refit or self.params is None:
            res = model.fit(disp=False, maxiter=200)
            self.params = res.params
        else:
            res = model.smooth(self.params)
        frame = res.get_prediction(start=len(w), end=len(w) + h - 1).summary_frame(alpha=0.05)
        mean = frame["mean"].to_numpy()
        return mean, se_from_interval(mean, frame["pi_upper"].to_numpy(), 0.05)


class Theta:
    def __init__(self, period):
        self.period = period

    def forecast(self, w, h, refit):
        from statsmodels.tsa.forecasting.theta import ThetaModel

        period = self.period if self.period > 1 and len(w) >= 2 * self.period else None
        # Additive deseasonalising: the multiplicative default divides by
        # seasonal indices near zero on series that touch zero.
        res = ThetaModel(w, period=period, deseasonalize=period is not None, method="additive").fit()
        mean = np.asarray(res.forecast(h))
        iv = res.prediction_intervals(h, alpha=0.05)
        return mean, se_from_interval(mean, iv["upper"].to_numpy(), 0.05)


class STLETS:
    """STL at the daily period, ETS(A,Ad,N) on the adjusted series."""

    def __init__(self, period):
        self.period = period
        self.ets = ETS()

    def forecast(self, w, h, refit):
        from statsmodels.tsa.seasonal import STL

        m = self.period
        if m <= 1 or len(w) < 2 * m:
            return self.ets.forecast(w, h, refit)
        # R's stl defaults: the trend and low-pass smoothers are evaluated
        # every tenth of their span and interpolated (statsmodels evaluates
        # them at every point, a hundred times slower at a daily period of
        # 288 steps).
        trend = math.ceil(1.5 * m / (1 - 1.5 / 7))
        trend += trend % 2 == 0
        low = m + 1 if m % 2 == 0 else m + 2
        seasonal = STL(w, period=m, trend_jump=math.ceil(trend / 10), low_pass_jump=math.ceil(low / 10)).fit().seasonal
        mean, se = self.ets.forecast(w - seasonal, h, refit)
        last = seasonal[-m:]
        mean = mean + np.array([last[j % m] for j in range(h)])
        return mean, se


class ARIMA111:
    def __init__(self):
        self.res = None

    def forecast(self, w, h, refit):
        from statsmodels.tsa.arima.model import ARIMA

        if refit or self.res is None:
            self.res = ARIMA(w, order=(1, 1, 1)).fit()
            res = self.res
        else:
            res = self.res.apply(w)
        fc = res.get_forecast(h)
        return np.asarray(fc.predicted_mean), np.asarray(fc.se_mean)


def make(name, daily):
    return {"ets": ETS, "theta": lambda: Theta(daily), "stl-ets": lambda: STLETS(daily), "arima111": ARIMA111}[name]()


# --- scoring, as foreshape's eval scores ------------------------------------


def score(forecasts, quantiles, y, origins, scales, h):
    """Per-series sums: abs error / scale, smape, pinball / scale, coverage."""
    s = dict(abs=0.0, smape=0.0, pin=0.0, points=0, in80=0, n80=0, in95=0, n95=0)
    for k, o in enumerate(origins):
        f = forecasts[k]
        qs = quantiles[k] if quantiles else None
        for j in range(h):
            a = y[o + j]
            if not np.isfinite(a):
                continue
            e = abs(a - f[j])
            s["abs"] += e / scales[k]
            d = abs(a) + abs(f[j])
            if d > 0:
                s["smape"] += 200 * e / d
            if qs is not None:
                pin = 0.0
                for q in LEVELS:
                    dq = a - qs[q][j]
                    pin += max(q * dq, (q - 1) * dq)
                s["pin"] += pin / len(LEVELS) / scales[k]
                s["n80"] += 1
                s["in80"] += qs[0.1][j] <= a <= qs[0.9][j]
                s["n95"] += 1
                s["in95"] += qs[0.025][j] <= a <= qs[0.975][j]
            s["points"] += 1
    return s


def clamp(x, lo, hi):
    return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)


def run_series(s):
    import statsmodels.tools.sm_exceptions  # noqa: F401  importing it turns its warnings back on
    warnings.simplefilter("ignore")
    y = s["values"]
    h = s["horizon"]
    origins, scales = s["origins"], s["scales"]
    step = s["step_seconds"]
    daily = max(1, int(86400 // step))
    refit = max(1, int(86400 // (h * step)))
    lo, hi = s["range_min"], s["range_max"]
    out = {}
    out["naive"] = (score(naive_forecasts(y, origins, h), None, y, origins, scales, h), 0.0, False)
    out["seasonal-naive"] = (score(snaive_forecasts(y, origins, h, daily, refit), None, y, origins, scales, h), 0.0, False)
    period = daily if len(y) >= 2 * daily else 1
    for name in REFERENCE:
        model = make(name, period)
        fcs, qss = [], []
        t0 = time.process_time()
        failed = False
        try:
            for k, o in enumerate(origins):
                w = fill(y[max(0, o - FIT_WINDOW):o])
                mean, se = model.forecast(w, h, k % refit == 0)
                mean = np.asarray(mean, dtype=float)
                if len(mean) < h or not np.all(np.isfinite(mean)):
                    raise ValueError("no usable forecast")
                qs = gaussian_quantiles(mean, np.asarray(se, dtype=float))
                fcs.append(clamp(mean, lo, hi))
                qss.append({q: clamp(v, lo, hi) for q, v in qs.items()})
        except Exception:  # a model that fails on a series is left out of its figures, as in foreshape's eval
            failed = True
        secs = time.process_time() - t0
        out[name] = (None if failed else score(fcs, qss, y, origins, scales, h), secs, failed)
    return s["folder"], s["name"], out


def series_key(s):
    """What a series' figures depend on: its points, origins, scales and
    range, the horizon, the models, and this script's own text."""
    h = hashlib.sha256()
    with open(__file__, "rb") as f:
        h.update(f.read())
    h.update(json.dumps([s["name"], s["horizon"], s["step_seconds"], s["origins"], s["scales"],
                         s["range_min"], s["range_max"], REFERENCE]).encode())
    h.update(np.ascontiguousarray(s["values"], dtype=float).tobytes())
    return h.hexdigest()


def run_cached(cache, s):
    """run_series, its result kept in cache (a directory) so that a run
    stopped part-way resumes with the series it had not finished."""
    if not cache:
        return run_series(s)
    path = os.path.join(cache, series_key(s) + ".json")
    try:
        with open(path) as f:
            folder, name, out = json.load(f)
        return folder, name, {m: tuple(v) for m, v in out.items()}
    except (OSError, ValueError):
        pass
    result = run_series(s)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, default=lambda v: v.item())  # numpy scalars
    os.replace(tmp, path)
    return result


def aggregate(rows, model):
    mase = smape = crps = 0.0
    n = 0
    in80 = n80 = in95 = n95 = 0
    log_m = log_c = 0.0
    nm = nc = 0
    secs = 0.0
    for r in rows:
        sc, t, failed = r[model]
        if failed or sc is None or sc["points"] == 0:
            continue
        n += 1
        secs += t
        m = sc["abs"] / sc["points"]
        c = sc["pin"] / sc["points"]
        mase += m
        smape += sc["smape"] / sc["points"]
        crps += c
        in80, n80, in95, n95 = in80 + sc["in80"], n80 + sc["n80"], in95 + sc["in95"], n95 + sc["n95"]
        ref, _, rfailed = r["seasonal-naive"]
        if not rfailed and ref["points"] > 0:
            rm = ref["abs"] / ref["points"]
            if rm > 0:
                log_m += math.log(max(m, 1e-12) / rm)
                nm += 1
    out = dict(series=n)
    out["mase"] = mase / n if n else math.nan
    out["smape"] = smape / n if n else math.nan
    out["crps"] = crps / n if n else math.nan
    out["rel_mase"] = math.exp(log_m / nm) if nm else math.nan
    out["coverage80"] = in80 / n80 if n80 else math.nan
    out["coverage95"] = in95 / n95 if n95 else math.nan
    out["fit_ms_per_series"] = 1000 * secs / n if n else math.nan
    return out


def fmt(v, p=3):
    return "-" if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))) else f"{v:.{p}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", required=True, help="JSON lines from foreshape forecast eval -export")
    ap.add_argument("--foreshape", required=True, help="the same run's report (forecast eval -format json)")
    ap.add_argument("--workers", type=int, default=multiprocessing.cpu_count())
    ap.add_argument("--label", default="", help="what the run is, for the header")
    ap.add_argument("--cache", default="", help="a directory keeping each series' figures, so that a stopped run resumes where it was")
    args = ap.parse_args()

    series = [s for s in load(args.series) if not s.get("excluded")]
    with open(args.foreshape) as f:
        go = json.load(f)
    if not series:
        print("no series to evaluate", file=sys.stderr)
        return 1
    h = series[0]["horizon"]
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)
    with multiprocessing.Pool(args.workers) as pool:
        results = pool.map(functools.partial(run_cached, args.cache), series, chunksize=1)

    folders = sorted({f for f, _, _ in results})
    groups = [("all", [r for _, _, r in results], go.get("models", {}))]
    groups += [(f, [r for ff, _, r in results if ff == f], go.get("folders", {}).get(f, {}).get("models", {})) for f in folders]
    ok = True
    print(f"classical reference {args.label}: horizon {h} steps, {len(series)} series")
    for name, rows, gomodels in groups:
        print(f"\n{name} ({len(rows)} series)")
        header = ["model", "rel_mase", "vs_best", "mase", "smape", "crps", "coverage80", "coverage95", "fit_ms_per_series"]
        table = []
        figs = {m: aggregate(rows, m) for m in BASELINES + REFERENCE}
        best = min(figs[m]["rel_mase"] for m in BASELINES + REFERENCE if not math.isnan(figs[m]["rel_mase"]))
        for m in BASELINES + REFERENCE:
            a = figs[m]
            table.append([m + " (reference)" if m in REFERENCE else m, fmt(a["rel_mase"]), fmt(a["rel_mase"] / best),
                          fmt(a["mase"]), fmt(a["smape"], 2), fmt(a["crps"]) if m in REFERENCE else "-",
                          fmt(a["coverage80"]) if m in REFERENCE else "-", fmt(a["coverage95"]) if m in REFERENCE else "-",
                          fmt(a["fit_ms_per_series"], 1) if m in REFERENCE else "-"])
        for m in sorted(gomodels):
            if m in BASELINES:
                continue
            g = gomodels[m]
            table.append([m + " (foreshape)", fmt(g.get("rel_mase")), fmt((g.get("rel_mase") or math.nan) / best),
                          fmt(g.get("mase")), fmt(g.get("smape"), 2), fmt(g.get("crps")), fmt(g.get("coverage80")),
                          fmt(g.get("coverage95")), fmt(g.get("fit_ms_per_series"), 1)])
        widths = [max(len(str(r[i])) for r in table + [header]) for i in range(len(header))]
        for r in [header] + table:
            print("  ".join(str(c).rjust(widths[i]) for i, c in enumerate(r)))
        for m in BASELINES:
            g = gomodels.get(m)
            if g is None:
                print(f"  foreshape's report has no {m}: cannot check the protocol")
                ok = False
                continue
            for k in ("mase", "smape"):
                d = abs(figs[m][k] - (g.get(k) or math.nan))
                match = d <= TOLERANCE
                ok = ok and match
                print(f"  protocol check: {m} {k} here {fmt(figs[m][k], 4)}, foreshape {fmt(g.get(k), 4)}: "
                      + ("match" if match else f"MISMATCH ({d:.4g})"))
    if not ok:
        print("\nthe protocol does not match foreshape's: the figures above are not comparable", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
