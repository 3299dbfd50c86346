"""Evaluation stage: accuracy figures, always beside two naive baselines on the same rows.

* `accuracy`: MAPE, median APE, RMSE (만원), share within ±5 % / ±10 %.
* `holdout_frame` / `report`: model vs the complex's recent median price per m² × area, raw and
  index-adjusted, overall and for seen / never-seen complexes and each 시도 and 구.
* `permutation_importance` / `ablation`: feature validity per feature group, cheaply
  (subsampled rows, few repeats, a smaller refit).
* `time_forward`: fit on the months up to a cut, score every later month (the issue's protocol).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from aptpipe import features as feats
from aptpipe import train as train_stage

BASELINES = {"recent_median": "baseline_raw_price_manwon",
             "recent_median_index_adjusted": "baseline_price_manwon"}
MIN_SEGMENT = 30          # segments with fewer rows are not reported


@dataclass(frozen=True)
class Accuracy:
    n: int
    mape: float            # mean absolute percentage error, %
    median_ape: float      # %
    rmse_manwon: float
    within_5pct: float     # share of rows, 0..1
    within_10pct: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def accuracy(actual: np.ndarray, predicted: np.ndarray) -> Accuracy:
    """Accuracy of `predicted` against `actual` prices (만원); rows without a prediction count
    as misses of 100 %, so a model that abstains is never flattered."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    if len(actual) == 0:
        nan = math.nan
        return Accuracy(0, nan, nan, nan, nan, nan)
    ape = np.abs(predicted - actual) / actual
    ape = np.where(np.isfinite(ape), ape, 1.0)
    err = np.where(np.isfinite(predicted), predicted - actual, actual)
    return Accuracy(
        n=int(len(actual)),
        mape=float(100 * ape.mean()),
        median_ape=float(100 * np.median(ape)),
        rmse_manwon=float(np.sqrt(np.mean(err ** 2))),
        within_5pct=float((ape <= 0.05).mean()),
        within_10pct=float((ape <= 0.10).mean()),
    )


def holdout_frame(rows: pd.DataFrame, predicted: np.ndarray) -> pd.DataFrame:
    """Per-row record of a hold-out: actual, model, both baselines, and the segment keys."""
    def text(col: str) -> pd.Series:
        return (rows[col].astype("string") if col in rows.columns
                else pd.Series(pd.NA, index=rows.index, dtype="string"))
    return pd.DataFrame({
        "deal_ym": rows["deal_ym"].astype("int64").to_numpy(),
        "price_manwon": rows["price_manwon"].to_numpy(float),
        "pred_price_manwon": np.asarray(predicted, dtype=float),
        "baseline_price_manwon": feats.naive_baseline(rows, adjusted=True),
        "baseline_raw_price_manwon": feats.naive_baseline(rows, adjusted=False),
        "seen_complex": feats.seen_complex(rows),
        "ref_level": rows["ref_level"].to_numpy(float),
        "lawd_cd": text("lawd_cd").to_numpy(),
        "sido": text("sido").to_numpy(),
        "sigungu": text("sigungu").to_numpy(),
    })


def _block(frame: pd.DataFrame) -> dict[str, Any]:
    actual = frame["price_manwon"].to_numpy(float)
    out: dict[str, Any] = {"model": accuracy(actual, frame["pred_price_manwon"]).as_dict()}
    for name, col in BASELINES.items():
        out[name] = accuracy(actual, frame[col]).as_dict()
    return out


def report(holdout: pd.DataFrame) -> dict[str, Any]:
    """Model vs both baselines: overall, seen / unseen complexes, each 시도 and 구."""
    result: dict[str, Any] = {"overall": _block(holdout)}
    seen = holdout["seen_complex"].astype(bool)
    result["seen_complex"] = _block(holdout[seen])
    result["unseen_complex"] = _block(holdout[~seen])
    for key, label in (("sido", "by_sido"), ("lawd_cd", "by_gu")):
        parts = {}
        for value, part in holdout.groupby(holdout[key].fillna("?"), sort=True):
            if len(part) >= MIN_SEGMENT:
                block = _block(part)
                if key == "lawd_cd":
                    block["name"] = f"{part['sido'].iloc[0]} {part['sigungu'].iloc[0]}"
                parts[str(value)] = block
        result[label] = parts
    return result


def better_baseline(block: Mapping[str, Any]) -> str:
    return min(BASELINES, key=lambda name: block[name]["mape"])


# --------------------------------------------------------------------------- feature validity

def _mape(model: train_stage.PriceModel, rows: pd.DataFrame) -> float:
    return accuracy(rows["price_manwon"].to_numpy(float), model.predict(rows)).mape


def permutation_importance(model: train_stage.PriceModel, rows: pd.DataFrame,
                           max_rows: int = 8000, repeats: int = 2,
                           seed: int = 0) -> dict[str, float]:
    """Increase in MAPE (percentage points) when a feature group's columns are shuffled
    together across rows of `rows` (the evaluation month).  The reference level itself is
    part of the price, not only an input, so shuffling it shows how much the level carries."""
    rng = np.random.default_rng(seed)
    rows = train_stage.trainable(rows)
    if len(rows) > max_rows:
        rows = rows.iloc[np.sort(rng.choice(len(rows), max_rows, replace=False))]
    rows = rows.reset_index(drop=True)
    base = _mape(model, rows)
    out = {}
    for group, cols in feats.FEATURE_GROUPS.items():
        cols = [c for c in cols if c in model.feature_columns or c == "ref_lppm2"]
        if not cols:
            continue
        scores = []
        for _ in range(repeats):
            perm = rng.permutation(len(rows))
            shuffled = rows.copy()
            shuffled[cols] = rows[cols].to_numpy()[perm]
            scores.append(_mape(model, shuffled))
        out[group] = float(np.mean(scores) - base)
    return out


def feature_validity(train_rows: pd.DataFrame, eval_rows: pd.DataFrame,
                     spec: train_stage.TrainSpec = train_stage.TrainSpec(),
                     max_train: int = 30000, max_iter: int = 100,
                     seed: int = 0) -> dict[str, Any]:
    """Permutation importance and per-group ablation on the evaluation month, from reduced
    refits (a subsample of the training rows, fewer iterations) so evaluation stays cheap.

    Ablation refits without each feature group and reports the change in evaluation MAPE
    against the same reduced fit with every feature; the reference level stays (it defines the
    target), so ablating the "reference" group drops only `ref_level`."""
    rng = np.random.default_rng(seed)
    train_rows = train_stage.trainable(train_rows)
    if len(train_rows) > max_train:
        train_rows = train_rows.iloc[np.sort(rng.choice(len(train_rows), max_train,
                                                        replace=False))]
    eval_rows = train_stage.trainable(eval_rows)
    small = dataclasses.replace(spec, max_iter=min(max_iter, spec.max_iter))
    full = train_stage.fit(train_rows, small)
    full_mape = _mape(full, eval_rows)
    delta = {}
    for group, cols in feats.FEATURE_GROUPS.items():
        keep = [c for c in feats.FEATURE_COLUMNS if c not in cols or c == "ref_lppm2"]
        model = train_stage.fit(train_rows, small, columns=keep)
        delta[group] = float(_mape(model, eval_rows) - full_mape)
    return {"n_train": len(train_rows), "n_eval": len(eval_rows), "max_iter": max_iter,
            "mape_all_features": full_mape, "ablation_mape_increase": delta,
            "permutation_mape_increase": permutation_importance(full, eval_rows, seed=seed),
            "note": "reduced refits on a subsample of the training window; MAPE changes in "
                    "percentage points on the evaluation month"}


# --------------------------------------------------------------------------- time-forward

def time_forward(by_month: Mapping[int, pd.DataFrame], cut: int,
                 spec: train_stage.TrainSpec = train_stage.TrainSpec(),
                 score_months: Sequence[int] | None = None,
                 columns: Sequence[str] = feats.FEATURE_COLUMNS) -> dict[str, Any]:
    """Fit on the feature months <= `cut` with `columns`, score each later month (features of
    month M come from the state of M-1, as in serving); returns the report and the per-row
    hold-out."""
    train_rows = pd.concat([f for m, f in sorted(by_month.items()) if m <= cut],
                           ignore_index=True)
    later = [m for m in sorted(by_month) if m > cut and (score_months is None
                                                         or m in score_months)]
    test = pd.concat([by_month[m] for m in later], ignore_index=True)
    test = test[test["price_manwon"] > 0].reset_index(drop=True)
    model = train_stage.fit(train_rows, spec, columns)
    holdout = holdout_frame(test, model.predict(test))
    return {"model": model, "holdout": holdout, "report": report(holdout),
            "train_months": list(model.train_months), "score_months": later}
