"""Monitoring: drift figures and catching a real market shock."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from luigi.execution_summary import LuigiStatusCode

from aptpipe import clean, config, features, monitor, months, storage, tasks, train
from aptpipe.sources import synthetic
from tests.conftest import TODAY, run_tasks


def test_psi_is_small_for_the_same_distribution_even_when_discrete() -> None:
    rng = np.random.default_rng(0)
    months_since = rng.geometric(0.4, 20_000).astype(float)        # heavy ties
    ref = train.drift_reference(months_since)
    assert monitor.psi(ref, rng.geometric(0.4, 5_000).astype(float)) < 0.02
    assert monitor.psi(ref, rng.geometric(0.1, 5_000).astype(float)) > 0.25
    cont = train.drift_reference(rng.normal(size=20_000))
    assert monitor.psi(cont, rng.normal(size=5_000)) < 0.02
    assert monitor.psi(cont, rng.normal(1.0, size=5_000)) > 0.25


@pytest.mark.slow
def test_a_price_shock_in_the_current_month_is_flagged(pipeline) -> None:
    pipeline(synthetic={"shock_month": "202403", "shock_pct": "-15"})
    assert run_tasks([tasks.MonthlyRun(today=TODAY)]) == LuigiStatusCode.SUCCESS
    record = storage.read_json(config.catalog().monitoring(202403))
    assert record["n"] >= monitor.MIN_ROWS
    assert record["accuracy_alert"] is True
    assert record["accuracy"]["mape"] > monitor.MAPE_ALERT_RATIO * record["holdout_mape"]
    assert record["status"] == "retrain recommended"
    assert record["drift_alert"] is False            # the inputs themselves did not move


def test_a_steady_market_raises_no_drift_alert_as_history_grows() -> None:
    """The training window starts when the state's history is short; a month priced from a long
    history must not look drifted only because history-length features (trade counts, months
    since the last trade) grew.  Steady synthetic market, 36 months, drift of the last month."""
    cfg = synthetic.SyntheticConfig(seed=3, trades_per_gu_month=150)
    regions = ["11680", "11440"]
    span = months.month_range(202301, 202512)
    state = features.empty_state(202212)
    frames = []
    for ym in span:
        trades = clean.clean_month(
            synthetic.fetch_month(ym, dt.date(2026, 6, 1), regions, cfg), ym).clean
        if ym > span[0]:
            frames.append(features.build_features(trades, state))
        state = features.update_state(state, trades)
    window, last = pd.concat(frames[:-1]), frames[-1]
    psi = {c: monitor.psi(train.drift_reference(window[c].to_numpy(float)),
                          last[c].to_numpy(float)) for c in (*monitor.DRIFT_FEATURES, "ut_n")}
    assert all(psi[c] < monitor.PSI_ALERT for c in monitor.DRIFT_FEATURES), psi
    assert psi["ut_n"] > monitor.PSI_ALERT   # the count that raised the false alarm before
