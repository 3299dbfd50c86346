"""Train stage: a gradient-boosted model of log price, validated time-forward.

The model predicts the log of the price per m² relative to the reference level in the features
(`ref_lppm2`: the unit type's index-adjusted recent level, or its complex / 동 / 구 fallbacks);
the price is then `exp(ref + residual) × area`.  Everything learned from data (the estimator,
the feature list, the training window, the drift reference) lives in the returned `PriceModel`;
the market state the features come from is an input, not a learned transformation.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from aptpipe.features import FEATURE_COLUMNS

if TYPE_CHECKING:  # scikit-learn takes seconds to import: only runs that train pay for it
    from sklearn.ensemble import HistGradientBoostingRegressor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSpec:
    max_iter: int = 300
    learning_rate: float = 0.08
    max_leaf_nodes: int = 63
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    # pinball loss on log price: a quantile is robust to outliers like the median, and one a
    # little below it is closer to the price that minimises the absolute percentage error
    # (|exp(p - y) - 1| punishes over-prediction more than under-prediction by the same log)
    loss: str = "quantile"
    quantile: float = 0.45
    random_state: int = 0
    n_threads: int = 1    # OpenMP threads; more oversubscribe a shared machine badly


@dataclass(frozen=True)
class PriceModel:
    estimator: HistGradientBoostingRegressor
    feature_columns: tuple[str, ...]
    train_months: tuple[int, ...]
    n_train: int
    spec: TrainSpec
    reference: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # for drift

    @property
    def as_of(self) -> int:
        return max(self.train_months)

    def residual(self, features: pd.DataFrame) -> np.ndarray:
        x = features[list(self.feature_columns)].to_numpy(dtype=float)
        if not len(x):
            return np.empty(0)
        with threadpool_limits(limits=self.spec.n_threads):
            return self.estimator.predict(x)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Predicted price in 만원 for each row (NaN where no reference level exists)."""
        ref = features["ref_lppm2"].to_numpy(dtype=float)
        return np.exp(ref + self.residual(features)) * features["area_m2"].to_numpy(dtype=float)

    def describe(self) -> dict[str, object]:
        return {"feature_columns": list(self.feature_columns),
                "train_months": [self.train_months[0], self.train_months[-1]],
                "n_train": self.n_train, "spec": self.spec.__dict__}


def drift_reference(values: np.ndarray) -> dict[str, list[float]]:
    """Decile bin edges of a feature and the share of training rows in each bin (ties and
    discrete features give fewer, uneven bins: the shares are measured, not assumed)."""
    values = values[np.isfinite(values)]
    edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return {"edges": edges.tolist(), "shares": (counts / counts.sum()).tolist()}


def trainable(features: pd.DataFrame) -> pd.DataFrame:
    """Rows a model can learn from: a reference level, a positive price and area."""
    ok = (features["ref_lppm2"].notna() & (features["price_manwon"] > 0)
          & (features["area_m2"] > 0))
    return features[ok.to_numpy()]


def target(rows: pd.DataFrame) -> np.ndarray:
    return (np.log(rows["price_manwon"].to_numpy(float) / rows["area_m2"].to_numpy(float))
            - rows["ref_lppm2"].to_numpy(float))


def usable_columns(rows: pd.DataFrame, columns: Sequence[str] = FEATURE_COLUMNS) -> list[str]:
    """The columns a tree can split on: more than one value, or values and missing ones.  A
    constant feature (no value at all, e.g. 3-month momentum in a short history, or one value
    everywhere, e.g. the 시도 of a Seoul-only market) would only cost histogram time."""
    def varies(values: np.ndarray) -> bool:
        known = values[np.isfinite(values)]
        return len(known) > 0 and (len(known) < len(values) or known.min() < known.max())
    return [c for c in columns if varies(rows[c].to_numpy(dtype=float))]


def fit(features: pd.DataFrame, spec: TrainSpec = TrainSpec(),
        columns: Sequence[str] = FEATURE_COLUMNS) -> PriceModel:
    """Fit on every trainable row of `features` (months of the training window)."""
    rows = trainable(features)
    if len(rows) < 100:
        raise ValueError(f"too few trainable rows ({len(rows)}) to fit a model; "
                         "extend the history (start_month) or check the data")
    cols = usable_columns(rows, columns)
    x = rows[cols].to_numpy(dtype=float)
    from sklearn.ensemble import HistGradientBoostingRegressor

    estimator = HistGradientBoostingRegressor(
        loss=spec.loss, quantile=spec.quantile, max_iter=spec.max_iter,
        learning_rate=spec.learning_rate, max_leaf_nodes=spec.max_leaf_nodes,
        min_samples_leaf=spec.min_samples_leaf, l2_regularization=spec.l2_regularization,
        random_state=spec.random_state, early_stopping=False)
    with threadpool_limits(limits=spec.n_threads):
        estimator.fit(x, target(rows))
    reference = {c: drift_reference(rows[c].to_numpy(float)) for c in cols
                 if np.isfinite(rows[c].to_numpy(float)).any()}
    months_ = tuple(sorted(int(m) for m in rows["deal_ym"].unique()))
    log.info("fitted on %d rows, months %s..%s, %d features", len(rows), months_[0],
             months_[-1], len(cols))
    return PriceModel(estimator, tuple(cols), months_, len(rows), spec, reference)
