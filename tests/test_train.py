"""Train stage: one self-contained, reproducible artifact."""
from __future__ import annotations

import dataclasses
import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest

from aptpipe import clean, evaluate, features, months, train
from aptpipe.sources import synthetic


@pytest.fixture(scope="module")
def by_month() -> dict[int, pd.DataFrame]:
    cfg = synthetic.SyntheticConfig(seed=5, trades_per_gu_month=150)
    state = features.empty_state(202212)
    out = {}
    for ym in months.month_range(202301, 202308):
        trades = clean.clean_month(synthetic.fetch_month(ym, dt.date(2024, 12, 31),
                                                         ["11680", "11440"], cfg), ym).clean
        if ym > 202301:
            out[ym] = features.build_features(trades, state)
        state = features.update_state(state, trades)
    return out


def test_fit_is_reproducible_and_records_its_window(by_month) -> None:
    frame = pd.concat([by_month[m] for m in months.month_range(202302, 202306)],
                      ignore_index=True)
    spec = dataclasses.replace(train.TrainSpec(), max_iter=60)
    a, b = train.fit(frame, spec), train.fit(frame, spec)
    test = by_month[202307]
    np.testing.assert_array_equal(a.predict(test), b.predict(test))
    assert a.train_months == (202302, 202303, 202304, 202305, 202306)
    assert set(a.feature_columns) <= set(features.FEATURE_COLUMNS)
    assert a.describe()["train_months"] == [202302, 202306]
    # everything needed to predict survives a pickle round trip
    again = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(again.predict(test), a.predict(test))


def test_time_forward_report_has_both_baselines_and_segments(by_month) -> None:
    result = evaluate.time_forward(by_month, 202306,
                                   dataclasses.replace(train.TrainSpec(), max_iter=60))
    rep = result["report"]
    for block in ("overall", "seen_complex"):
        assert set(rep[block]) == {"model", *evaluate.BASELINES}
        assert rep[block]["model"]["mape"] < rep[block][evaluate.better_baseline(rep[block])][
            "mape"]
    assert rep["by_gu"] and all("name" in v for v in rep["by_gu"].values())
    assert result["score_months"] == [202307, 202308]
    validity = evaluate.feature_validity(
        pd.concat([by_month[m] for m in (202305, 202306)]), by_month[202307],
        max_train=3000, max_iter=30)
    assert set(validity["ablation_mape_increase"]) == set(features.FEATURE_GROUPS)
    assert validity["permutation_mape_increase"]["reference"] > 0


def test_constant_columns_are_left_out_and_missing_values_count_as_a_value(by_month) -> None:
    frame = pd.concat([by_month[m] for m in months.month_range(202302, 202306)],
                      ignore_index=True)
    # two districts of one 시도, priced one month after the state: both columns are constant
    assert frame["sido_code"].nunique() == 1 and frame["state_gap"].nunique() == 1
    frame["floor"] = np.where(np.arange(len(frame)) % 2, 7.0, np.nan)  # one value + missing
    model = train.fit(frame, dataclasses.replace(train.TrainSpec(), max_iter=20))
    assert "sido_code" not in model.feature_columns
    assert "state_gap" not in model.feature_columns
    assert "floor" in model.feature_columns
    assert "ref_lppm2" in model.feature_columns
    assert train.usable_columns(frame, ["sido_code", "floor"]) == ["floor"]
    assert train.usable_columns(frame.assign(floor=np.nan), ["floor"]) == []
