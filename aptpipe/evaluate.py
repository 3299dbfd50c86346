"""Evaluation stage: accuracy figures, always beside a baseline on the same rows."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


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
