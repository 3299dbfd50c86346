"""Train stage: a gradient-boosted model of log price, validated time-forward.

The model predicts the log of the price per m² relative to the reference level in the features
(`ref_lppm2`, the complex's index-adjusted recent level or its fallbacks); the price is then
`exp(ref + residual) × area`.  Everything learned from data lives in the returned `PriceModel`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from aptpipe.features import FEATURE_COLUMNS

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class TrainSpec:
    max_iter: int = 150
    learning_rate: float = 0.1
    max_leaf_nodes: int = 63
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    random_state: int = 0


@dataclass(frozen=True)
class PriceModel:
    estimator: HistGradientBoostingRegressor
    feature_columns: tuple[str, ...]
    train_months: tuple[int, ...]
    n_train: int
    spec: TrainSpec
    reference: dict[str, list[float]] = field(default_factory=dict)  # feature deciles, for drift

    @property
    def as_of(self) -> int:
        return max(self.train_months)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Predicted price in 만원 for each row (NaN where no reference level exists)."""
        x = features[list(self.feature_columns)].to_numpy(dtype=float)
        resid = self.estimator.predict(x) if len(x) else np.empty(0)
        ref = features["ref_lppm2"].to_numpy(dtype=float)
        return np.exp(ref + resid) * features["area_m2"].to_numpy(dtype=float)


def trainable(features: pd.DataFrame) -> pd.DataFrame:
    """Rows a model can learn from: a reference level and a positive price."""
    ok = features["ref_lppm2"].notna() & (features["price_manwon"] > 0)
    return features[ok.to_numpy()]


def fit(features: pd.DataFrame, spec: TrainSpec = TrainSpec()) -> PriceModel:
    """Fit on every trainable row of `features` (months of the training window)."""
    rows = trainable(features)
    if len(rows) < 100:
        raise ValueError(f"too few trainable rows ({len(rows)}) to fit a model; "
                         "extend the history (start_month) or check the data")
    # a feature with no value at all (e.g. 12-month momentum in a short history) is left out
    cols = [c for c in FEATURE_COLUMNS if rows[c].notna().any()]
    x = rows[cols].to_numpy(dtype=float)
    target = (np.log(rows["price_manwon"].to_numpy(float) / rows["area_m2"].to_numpy(float))
              - rows["ref_lppm2"].to_numpy(float))
    estimator = HistGradientBoostingRegressor(
        loss="squared_error", max_iter=spec.max_iter, learning_rate=spec.learning_rate,
        max_leaf_nodes=spec.max_leaf_nodes, min_samples_leaf=spec.min_samples_leaf,
        l2_regularization=spec.l2_regularization, random_state=spec.random_state,
        early_stopping=False)
    estimator.fit(x, target)
    reference = {c: np.nanquantile(rows[c].to_numpy(float), np.linspace(0.1, 0.9, 9)).tolist()
                 for c in cols}
    months_ = tuple(sorted(int(m) for m in rows["deal_ym"].unique()))
    log.info("fitted on %d rows, months %s..%s", len(rows), months_[0], months_[-1])
    return PriceModel(estimator, tuple(cols), months_, len(rows), spec, reference)
