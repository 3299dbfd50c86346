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


ALL = [*features.FEATURE_COLUMNS, *features.BASELINE_COLUMNS]


def test_features_ignore_later_months_and_same_month_trades(history) -> None:
    month = 202307
    state = state_through(history, 202306)
    full = features.build_features(history[month], state)
    # later months shuffled or gone: they never enter the state of month-1
    shuffled = {ym: (df.sample(frac=1.0, random_state=1) if ym > month else df)
                for ym, df in history.items()}
    again = features.build_features(shuffled[month], state_through(shuffled, 202306))
    pd.testing.assert_frame_equal(full, again)
    truncated = {ym: df for ym, df in history.items() if ym <= month}
    gone = features.build_features(truncated[month], state_through(truncated, 202306))
    pd.testing.assert_frame_equal(full, gone)
    # a trade's features do not depend on the other trades of its own month
    single = features.build_features(history[month].iloc[[5]], state)
    np.testing.assert_allclose(single[ALL].to_numpy(float), full[ALL].iloc[[5]].to_numpy(float))


def test_features_of_month_m_ignore_changes_to_later_trades(history) -> None:
    """Perturb every trade after month M (prices, order, deletions): month M is unchanged."""
    month = 202305
    base = state_through(history, month - 1)
    full = features.build_features(history[month], base)
    rng = np.random.default_rng(0)
    perturbed = {}
    for ym, df in history.items():
        if ym > month:
            df = df.sample(frac=0.5, random_state=int(ym)).assign(
                price_manwon=lambda d: (d["price_manwon"] * rng.uniform(0.5, 2.0, len(d)))
                .round().astype("int64"))
        perturbed[ym] = df
    state = features.empty_state(months.add_months(min(history), -1))
    for ym in months.month_range(min(history), 202309):
        if ym == month:
            again = features.build_features(perturbed[month], state)
        state = features.update_state(state, perturbed[ym])
    pd.testing.assert_frame_equal(full, again)


def test_state_rejects_out_of_order_months_and_features_reject_the_past(history) -> None:
    state = state_through(history, 202303)
    with pytest.raises(ValueError):
        features.update_state(state, history[202306])
    with pytest.raises(ValueError):
        features.build_features(history[202303], state)


def test_seen_complexes_get_their_own_level_and_unseen_fall_back(history) -> None:
    state = state_through(history, 202308)
    feats = features.build_features(history[202309], state)
    seen = features.seen_complex(feats)
    assert seen.mean() > 0.8
    # seen complexes are priced from their own history (unit type, band or whole complex)
    assert (feats.loc[seen, "ref_level"] >= 7).all()
    assert feats.loc[seen, "ut_lppm2"].notna().mean() > 0.5
    unseen = history[202309].iloc[:3].assign(complex_key="new-complex", apt_nm="새단지")
    fallback = features.build_features(unseen, state)
    assert fallback["cx_all_lppm2"].isna().all()
    assert fallback["ref_lppm2"].notna().all() and (fallback["ref_level"] <= 5).all()
    # the naive baselines price every row
    assert np.isfinite(features.naive_baseline(fallback)).all()
    assert np.isfinite(features.naive_baseline(fallback, adjusted=False)).all()


def test_exact_area_match_is_the_most_specific_level(history) -> None:
    state = state_through(history, 202308)
    feats = features.build_features(history[202309], state)
    ut = feats["ut_lppm2"].notna()
    assert (feats.loc[ut, "ref_level"] == len(features.REF_LEVELS)).all()
    np.testing.assert_allclose(feats.loc[ut, "ref_lppm2"], feats.loc[ut, "ut_lppm2"])
    actual = np.log(feats["price_manwon"] / feats["area_m2"])
    # the unit-type level is closer to the price than the complex-wide one
    err_ut = (actual[ut] - feats.loc[ut, "ut_lppm2"]).abs().median()
    err_cx = (actual[ut] - feats.loc[ut, "cx_all_lppm2"]).abs().median()
    assert err_ut < err_cx


def test_index_is_robust_to_composition(history) -> None:
    """Trading only cheap complexes in a month must not move the repeat-sales index much,
    whereas a raw median would fall sharply."""
    state = state_through(history, 202305)
    month = history[202306]
    lppm2 = np.log(month["price_manwon"] / month["area_m2"])
    cheap = month[(lppm2 < lppm2.quantile(0.3)).to_numpy()]
    full = features.update_state(state, month)
    skew = features.update_state(state, cheap)
    full_level = full.index.set_index(["region", "deal_ym"])["level"]
    skew_level = skew.index.set_index(["region", "deal_ym"])["level"]
    for gu in REGIONS:
        step_full = full_level[(gu, 202306)]
        step_skew = skew_level[(gu, 202306)]
        raw_drop = np.median(np.log(cheap["price_manwon"] / cheap["area_m2"])) - np.median(lppm2)
        assert abs(step_skew - step_full) < 0.25 * abs(raw_drop)


def test_recent_history_is_capped(history) -> None:
    state = state_through(history, 202309)
    per_type = state.recent.groupby(["complex_key", "akey"]).size()
    assert per_type.max() <= features.RECENT_PER_TYPE
    assert state.complexes["n"].sum() == sum(len(df) for df in history.values())
