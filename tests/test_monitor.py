"""Monitoring: drift figures and catching a real market shock."""
from __future__ import annotations

import numpy as np
import pytest
from luigi.execution_summary import LuigiStatusCode

from aptpipe import config, monitor, storage, tasks, train
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
