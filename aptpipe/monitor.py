"""Monitoring stage: the champion's accuracy on newly reported trades, and input drift."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from aptpipe.evaluate import accuracy
from aptpipe.features import naive_baseline
from aptpipe.train import PriceModel

MIN_ROWS = 30
PSI_ALERT = 0.25
MAPE_ALERT_RATIO = 1.5   # alert when MAPE exceeds the champion's hold-out MAPE by this factor
# inputs whose distribution is stationary when the market is: counts and recencies (ut_n,
# cx_months_since) grow with the length of the history behind the state, not with the market
DRIFT_FEATURES = ("log_area", "floor", "rel_floor", "age", "ref_lppm2")


@dataclass(frozen=True)
class MonitorRecord:
    deal_ym: int
    model_id: str
    n: int
    accuracy: dict[str, float]
    baseline: dict[str, float]          # recent median, index-adjusted
    baseline_raw: dict[str, float]      # recent median, unadjusted
    holdout_mape: float
    psi: dict[str, float]
    accuracy_alert: bool
    drift_alert: bool
    status: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def psi(reference: dict[str, list[float]], values: np.ndarray) -> float:
    """Population stability index of `values` against the training shares of the same bins."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return math.nan
    edges = np.asarray(reference["edges"], dtype=float)
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    e = np.clip(np.asarray(reference["shares"], dtype=float), 1e-4, None)
    a = np.clip(counts / counts.sum(), 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def monitor_month(features: pd.DataFrame, model: PriceModel, model_id: str,
                  holdout_mape: float, deal_ym: int) -> MonitorRecord:
    rows = features[features["price_manwon"] > 0]
    actual = rows["price_manwon"].to_numpy(float)
    acc = accuracy(actual, model.predict(rows))
    base = accuracy(actual, naive_baseline(rows, adjusted=True))
    base_raw = accuracy(actual, naive_baseline(rows, adjusted=False))
    drift = {c: psi(model.reference[c], rows[c].to_numpy(float))
             for c in DRIFT_FEATURES if c in model.reference}
    enough = acc.n >= MIN_ROWS
    acc_alert = enough and acc.mape > MAPE_ALERT_RATIO * holdout_mape
    drift_alert = enough and any(v > PSI_ALERT for v in drift.values() if not math.isnan(v))
    status = ("insufficient data" if not enough else
              "retrain recommended" if acc_alert or drift_alert else "ok")
    return MonitorRecord(deal_ym, model_id, acc.n, acc.as_dict(), base.as_dict(),
                         base_raw.as_dict(), holdout_mape, drift, acc_alert, drift_alert, status)
