"""Market state and features: strictly from earlier months, one code path."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from aptpipe import clean, features, months
from aptpipe.sources import synthetic

REGIONS = ["11680", "11320"]
AS_OF = dt.date(2024, 12, 31)


@pytest.fixture(scope="module")
def history() -> dict[int, pd.DataFrame]:
    cfg = synthetic.SyntheticConfig(seed=3, trades_per_gu_month=120)
    return {ym: clean.clean_month(synthetic.fetch_month(ym, AS_OF, REGIONS, cfg), ym).clean
            for ym in months.month_range(202301, 202309)}


def state_through(history: dict[int, pd.DataFrame], last: int) -> features.MarketState:
    state = features.empty_state(months.add_months(min(history), -1))
    for ym in months.month_range(min(history), last):
        state = features.update_state(state, history[ym])
    return state


def test_features_ignore_later_months_and_same_month_trades(history) -> None:
    month = 202307
    state = state_through(history, 202306)
    full = features.build_features(history[month], state)
    # later months shuffled or gone: they never enter the state of month-1
    shuffled = {ym: (df.sample(frac=1.0, random_state=1) if ym > month else df)
                for ym, df in history.items()}
    again = features.build_features(shuffled[month], state_through(shuffled, 202306))
    pd.testing.assert_frame_equal(full, again)
    # a trade's features do not depend on the other trades of its own month
    single = features.build_features(history[month].iloc[[5]], state)
    cols = list(features.FEATURE_COLUMNS)
    np.testing.assert_allclose(single[cols].to_numpy(float), full[cols].iloc[[5]].to_numpy(float))


def test_state_rejects_out_of_order_months_and_features_reject_the_past(history) -> None:
    state = state_through(history, 202303)
    with pytest.raises(ValueError):
        features.update_state(state, history[202306])
    with pytest.raises(ValueError):
        features.build_features(history[202303], state)


def test_seen_complexes_get_their_own_level_and_unseen_fall_back(history) -> None:
    state = state_through(history, 202308)
    feats = features.build_features(history[202309], state)
    seen = feats["complex_key"].isin(state.complexes["complex_key"])
    assert seen.mean() > 0.8
    assert (feats.loc[seen, "ref_level"] >= 2).all()
    unseen = history[202309].iloc[:3].assign(complex_key="new-complex")
    fallback = features.build_features(unseen, state)
    assert fallback["cx_all_lppm2"].isna().all()
    assert fallback["ref_lppm2"].notna().all() and (fallback["ref_level"] <= 1).all()
    # the naive baseline prices every row
    assert np.isfinite(features.naive_baseline(fallback)).all()


def test_recent_history_is_capped(history) -> None:
    state = state_through(history, 202309)
    per_group = state.recent.groupby(["complex_key", "band"]).size()
    assert per_group.max() <= features.RECENT_PER_GROUP
    assert state.complexes["n"].sum() == sum(len(df) for df in history.values())
