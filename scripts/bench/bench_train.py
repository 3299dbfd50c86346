"""Benchmark: aptpipe's training (sklearn HistGradientBoosting, the shipped `TrainSpec`) vs
LightGBM on the same features, ≥ 1M synthetic trades.

1. Generates the synthetic Seoul market month by month in-process (aptpipe.sources.synthetic →
   clean → MarketState update → build_features), exactly as the pipeline does, and writes the
   feature table to a temporary parquet.
2. Fits each model in its own subprocess (so peak RSS is that fit's alone: the child reports
   its own `ru_maxrss`) on every month but the last two, and scores those two months
   time-forward.  Same target (log price/m² residual over `ref_lppm2`), same loss
   (pinball at the same quantile), same trees (iterations, learning rate, leaves, min leaf
   size, L2), the same columns (`train.usable_columns`), one thread each.
3. Repeats the pair of fits `--repeats` times, alternating, and compares each library's fastest
   fit: on a shared machine one fit can be slowed by a neighbour by 20 % or more.

Needs LightGBM (the `bench` extra, not a runtime dependency):

    pip install -e '.[bench]'
    python scripts/bench/bench_train.py [--months 24] [--per-gu 1700] [--repeats 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from aptpipe import clean, evaluate, features, months, train  # noqa: E402
from aptpipe.sources import synthetic  # noqa: E402

SEOUL = [line.split(",")[0] for line in
         (ROOT / "aptpipe/data/lawd_cd_seoul_25gu.csv").read_text(encoding="utf-8").splitlines()[1:]
         if line.strip()]


def _rss_mb(usage: resource.struct_rusage) -> float:
    return usage.ru_maxrss / 1024.0  # Linux: KiB


def build(path: Path, first: int, n_months: int, per_gu: float, complexes: int) -> dict:
    cfg = synthetic.SyntheticConfig(seed=11, trades_per_gu_month=per_gu,
                                    complexes_per_gu=complexes)
    as_of = dt.date(2031, 1, 1)
    span = months.month_range(first, months.add_months(first, n_months - 1))
    state = features.empty_state(months.add_months(first, -1))
    parts, n_trades = [], 0
    t0 = time.perf_counter()
    for ym in span:
        trades = clean.clean_month(synthetic.fetch_month(ym, as_of, SEOUL, cfg), ym).clean
        n_trades += len(trades)
        if ym > first:
            f = features.build_features(trades, state)
            parts.append(f[[*features.FEATURE_COLUMNS, "price_manwon", "area_m2", "deal_ym"]])
        state = features.update_state(state, trades)
    frame = pd.concat(parts, ignore_index=True)
    frame.to_parquet(path, index=False)
    return {"trades": n_trades, "feature_rows": len(frame), "months": [span[0], span[-1]],
            "build_s": time.perf_counter() - t0}


def fit_one(kind: str, path: Path) -> None:
    """Child process: fit one model, print a JSON line with fit time and test MAPE."""
    frame = pd.read_parquet(path)
    last = sorted(frame["deal_ym"].unique())[-2:]
    fit_rows = frame[~frame["deal_ym"].isin(last)]
    test = frame[frame["deal_ym"].isin(last)]
    spec = train.TrainSpec()
    t0 = time.perf_counter()
    if kind == "aptpipe":
        model = train.fit(fit_rows, spec)
        fit_s = time.perf_counter() - t0
        pred = model.predict(test)
    else:
        import lightgbm as lgb

        rows = train.trainable(fit_rows)
        cols = train.usable_columns(rows)
        params = {"objective": spec.loss, "alpha": spec.quantile,
                  "learning_rate": spec.learning_rate, "num_leaves": spec.max_leaf_nodes,
                  "min_data_in_leaf": spec.min_samples_leaf, "lambda_l2": spec.l2_regularization,
                  "max_bin": 255, "num_threads": 1, "seed": spec.random_state,
                  "deterministic": True, "verbose": -1}
        data = lgb.Dataset(rows[cols].to_numpy(float), train.target(rows))
        booster = lgb.train(params, data, num_boost_round=spec.max_iter)
        fit_s = time.perf_counter() - t0
        resid = booster.predict(test[cols].to_numpy(float))
        pred = np.exp(test["ref_lppm2"].to_numpy(float) + resid) * test["area_m2"].to_numpy()
    acc = evaluate.accuracy(test["price_manwon"].to_numpy(float), pred)
    print(json.dumps({"kind": kind, "fit_s": fit_s, "n_train": len(fit_rows),
                      "peak_rss_mb": _rss_mb(resource.getrusage(resource.RUSAGE_SELF)),
                      "n_test": len(test), "mape": acc.mape, "median_ape": acc.median_ape}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--first", type=int, default=202201)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--per-gu", type=float, default=1700.0, help="trades per 구 per month")
    p.add_argument("--complexes", type=int, default=600, help="complexes per 구")
    p.add_argument("--repeats", type=int, default=3, help="fits per library (best counts)")
    p.add_argument("--fit", choices=["aptpipe", "lightgbm"], help=argparse.SUPPRESS)
    p.add_argument("--table", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.fit:
        fit_one(args.fit, args.table)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "features.parquet"
        info = build(table, args.first, args.months, args.per_gu, args.complexes)
        build_rss = _rss_mb(resource.getrusage(resource.RUSAGE_SELF))
        print(f"built {info['trades']:,} trades ({info['months'][0]}..{info['months'][1]}, "
              f"{info['feature_rows']:,} feature rows) in {info['build_s']:.0f} s, "
              f"peak RSS {build_rss:.0f} MB")
        runs: dict[str, list[dict]] = {"aptpipe": [], "lightgbm": []}
        for _ in range(args.repeats):
            for kind, done in runs.items():
                out = subprocess.run([sys.executable, __file__, "--fit", kind,
                                      "--table", str(table)],
                                     capture_output=True, text=True, check=True)
                res = json.loads(out.stdout.strip().splitlines()[-1])
                done.append(res)
                print(f"{kind:9s} fit {res['fit_s']:7.1f} s  peak RSS {res['peak_rss_mb']:6.0f} MB"
                      f"  MAPE {res['mape']:.2f}%  median APE {res['median_ape']:.2f}%  "
                      f"(train {res['n_train']:,}, test {res['n_test']:,})", flush=True)
        best = {kind: min(done, key=lambda r: r["fit_s"]) for kind, done in runs.items()}
        fit_rss = max(r["peak_rss_mb"] for r in runs["aptpipe"])
        ratio = best["aptpipe"]["fit_s"] / best["lightgbm"]["fit_s"]
        fast = {kind: f"{r['fit_s']:.1f} s" for kind, r in best.items()}
        print(f"fastest fits {fast['aptpipe']} vs {fast['lightgbm']}: ratio aptpipe/lightgbm = "
              f"{ratio:.2f} (target <= 1.5); MAPE {best['aptpipe']['mape']:.2f}% vs "
              f"{best['lightgbm']['mape']:.2f}%; peak RSS of "
              f"training = max(build {build_rss:.0f}, fit {fit_rss:.0f}) MB (target <= 3072)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
