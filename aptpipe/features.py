"""Feature stage: a per-month market state and the derived variables computed from it.

`MarketState` holds what the market looked like through the end of month `as_of`: each
complex's recent trades (capped), each complex's attributes, and monthly price indices per 구.
It is updated one month at a time (`update_state`), and `build_features` prices any trades of
month `as_of + 1` (or later) from it.  Training and serving both go through `build_features`,
so a feature can only ever see trades from months before the one being priced.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aptpipe import months

log = logging.getLogger(__name__)

RECENT_PER_GROUP = 8         # trades kept per (complex, area band)
RECENT_MAX_AGE = 36          # months a trade stays in the recent history
AREA_BANDS = (0.0, 40.0, 60.0, 85.0, 102.0, 135.0, np.inf)
INDEX_SMOOTH = 3             # months in the rolling 구 index

FEATURE_COLUMNS: tuple[str, ...] = (
    "log_area", "area_m2", "floor", "rel_floor", "age", "month_of_year", "gu_code",
    "ref_lppm2", "ref_level", "cx_band_lppm2", "cx_all_lppm2", "cx_last_lppm2",
    "cx_months_since", "cx_n_trades", "dong_lppm2", "gu_lppm2", "gu_mom_3", "gu_mom_12",
)
KEY_COLUMNS: tuple[str, ...] = ("complex_key", "lawd_cd", "umd_nm", "apt_nm", "area_m2",
                                "floor", "build_year", "deal_ym", "deal_date")


@dataclass(frozen=True)
class MarketState:
    as_of: int                  # last contract month included (YYYYMM)
    recent: pd.DataFrame        # complex_key, band, deal_ym, lawd_cd, lppm2
    complexes: pd.DataFrame     # complex_key -> lawd_cd, umd_nm, max_floor, build_year, n, last_ym
    gu_index: pd.DataFrame      # lawd_cd, deal_ym, lppm2 (median), n


def area_band(area: pd.Series) -> pd.Series:
    return pd.Series(np.digitize(area.to_numpy(dtype=float), AREA_BANDS[1:-1]), index=area.index,
                     dtype="int64")


def empty_state(as_of: int) -> MarketState:
    return MarketState(
        as_of=as_of,
        recent=pd.DataFrame({"complex_key": pd.Series(dtype="string"),
                             "band": pd.Series(dtype="int64"),
                             "deal_ym": pd.Series(dtype="int64"),
                             "lawd_cd": pd.Series(dtype="string"),
                             "lppm2": pd.Series(dtype="float64")}),
        complexes=pd.DataFrame({"complex_key": pd.Series(dtype="string"),
                                "lawd_cd": pd.Series(dtype="string"),
                                "umd_nm": pd.Series(dtype="string"),
                                "max_floor": pd.Series(dtype="float64"),
                                "build_year": pd.Series(dtype="float64"),
                                "n": pd.Series(dtype="int64"),
                                "last_ym": pd.Series(dtype="int64")}),
        gu_index=pd.DataFrame({"lawd_cd": pd.Series(dtype="string"),
                               "deal_ym": pd.Series(dtype="int64"),
                               "lppm2": pd.Series(dtype="float64"),
                               "n": pd.Series(dtype="int64")}),
    )


def update_state(state: MarketState, trades: pd.DataFrame) -> MarketState:
    """Fold one month of clean trades (month `state.as_of + 1`) into the state."""
    ym = months.add_months(state.as_of, 1)
    if len(trades) and set(trades["deal_ym"].unique()) != {ym}:
        raise ValueError(f"update_state({state.as_of}) expects trades of {ym} only")
    lppm2 = np.log(trades["price_manwon"].to_numpy(float) / trades["area_m2"].to_numpy(float))
    new = pd.DataFrame({
        "complex_key": trades["complex_key"].astype("string"),
        "band": area_band(trades["area_m2"]),
        "deal_ym": trades["deal_ym"].astype("int64"),
        "lawd_cd": trades["lawd_cd"].astype("string"),
        "lppm2": lppm2,
    })
    oldest = months.add_months(ym, -RECENT_MAX_AGE + 1)
    recent = pd.concat([state.recent[state.recent["deal_ym"] >= oldest], new], ignore_index=True)
    recent = (recent.groupby(["complex_key", "band"], sort=False, group_keys=False)
              .tail(RECENT_PER_GROUP).sort_values(["complex_key", "band", "deal_ym"],
                                                  kind="stable").reset_index(drop=True))

    numeric = trades.assign(floor=trades["floor"].astype("float64"),
                            build_year=trades["build_year"].astype("float64"))
    month_cx = numeric.groupby("complex_key", sort=True).agg(
        lawd_cd=("lawd_cd", "first"), umd_nm=("umd_nm", "first"),
        max_floor=("floor", "max"), build_year=("build_year", "max"),
        n=("price_manwon", "size"))
    month_cx["last_ym"] = ym
    old = state.complexes.set_index("complex_key")
    both = pd.concat([old, month_cx.reset_index().set_index("complex_key")])
    complexes = both.groupby(level=0, sort=True).agg(
        lawd_cd=("lawd_cd", "last"), umd_nm=("umd_nm", "last"), max_floor=("max_floor", "max"),
        build_year=("build_year", "max"), n=("n", "sum"), last_ym=("last_ym", "max"),
    ).reset_index()

    month_index = (new.groupby("lawd_cd", sort=True)["lppm2"].agg(["median", "size"])
                   .rename(columns={"median": "lppm2", "size": "n"}).reset_index())
    month_index["deal_ym"] = ym
    gu_index = pd.concat([state.gu_index, month_index[["lawd_cd", "deal_ym", "lppm2", "n"]]],
                         ignore_index=True)
    return MarketState(ym, recent, complexes.astype({"n": "int64", "last_ym": "int64"}),
                       gu_index.astype({"n": "int64", "deal_ym": "int64"}))


def _smoothed_index(state: MarketState) -> pd.DataFrame:
    """Rolling median-of-medians 구 index: lawd_cd, deal_ym -> level (log 만원/m²)."""
    idx = state.gu_index.sort_values(["lawd_cd", "deal_ym"])
    idx = idx.assign(level=idx.groupby("lawd_cd")["lppm2"].transform(
        lambda s: s.rolling(INDEX_SMOOTH, min_periods=1).mean()))
    return idx[["lawd_cd", "deal_ym", "level"]]


def _level_at(index: pd.DataFrame, lawd: pd.Series, ym: int) -> pd.Series:
    """Index level of each district at month `ym`, or its latest level before it."""
    known = index[index["deal_ym"] <= ym].sort_values("deal_ym").groupby("lawd_cd")["level"].last()
    return lawd.map(known).astype("float64")


def build_features(trades: pd.DataFrame, state: MarketState) -> pd.DataFrame:
    """Features of `trades` (any months after `state.as_of`) from the state alone.

    `trades` needs complex_key, lawd_cd, umd_nm, area_m2, floor, build_year, deal_ym; other
    columns (price_manwon, apt_nm, deal_date, …) are carried through when present.
    """
    if len(trades) and int(trades["deal_ym"].min()) <= state.as_of:
        raise ValueError(f"features from state {state.as_of} can only price later months")
    out = trades.reset_index(drop=True).copy()
    lawd = out["lawd_cd"].astype("string")
    area = out["area_m2"].astype("float64")
    band = area_band(area)
    latest = state.as_of
    index = _smoothed_index(state)
    gu_now = _level_at(index, lawd, latest)

    # complex history, index-adjusted to the latest known month
    recent = state.recent
    if len(recent):
        rec_level = recent.merge(index, on=["lawd_cd", "deal_ym"], how="left")["level"]
        rec_now = _level_at(index, recent["lawd_cd"], latest)
        adj = recent.assign(adj=recent["lppm2"].to_numpy() - rec_level.to_numpy()
                            + rec_now.to_numpy())
        by_band = adj.groupby(["complex_key", "band"])["adj"].median()
        by_cx = adj.groupby("complex_key")["adj"].median()
        last = adj.groupby("complex_key")["adj"].last()
        dong_src = adj.merge(state.complexes[["complex_key", "umd_nm"]], on="complex_key")
        dong_src = dong_src[dong_src["deal_ym"] > months.add_months(latest, -12)]
        by_dong = dong_src.groupby(["lawd_cd", "umd_nm"])["adj"].median()
    else:
        by_band = by_cx = last = pd.Series(dtype="float64")
        by_dong = pd.Series(dtype="float64", index=pd.MultiIndex.from_arrays([[], []]))

    keys = out["complex_key"].astype("string")
    band_keys = pd.MultiIndex.from_arrays([keys, band])
    cx_band = pd.Series(by_band.reindex(band_keys).to_numpy(), dtype="float64")
    cx_all = keys.map(by_cx).astype("float64")
    cx_last = keys.map(last).astype("float64")
    dong = pd.Series(by_dong.reindex(pd.MultiIndex.from_arrays(
        [lawd, out["umd_nm"].astype("string")])).to_numpy(), dtype="float64")
    cx = state.complexes.set_index("complex_key")
    max_floor = keys.map(cx["max_floor"]).astype("float64")
    last_ym = keys.map(cx["last_ym"]).astype("float64")
    n_trades = keys.map(cx["n"]).astype("float64").fillna(0.0)

    deal_ym = out["deal_ym"].astype("int64")
    floor = out["floor"].astype("float64")
    build_year = out["build_year"].astype("float64")
    ref_level = np.select(
        [cx_band.notna(), cx_all.notna(), dong.notna(), gu_now.notna()], [3, 2, 1, 0], -1)
    ref = cx_band.fillna(cx_all).fillna(dong).fillna(gu_now)
    since = np.array([months.months_between(int(a), int(b)) if not np.isnan(a) else np.nan
                      for a, b in zip(last_ym, deal_ym)], dtype=float) if len(out) else []
    feats = pd.DataFrame({
        "log_area": np.log(area),
        "area_m2": area,
        "floor": floor,
        "rel_floor": floor / max_floor.where(max_floor > 0),
        "age": deal_ym // 100 - build_year,
        "month_of_year": (deal_ym % 100).astype("float64"),
        "gu_code": pd.to_numeric(lawd, errors="coerce").astype("float64"),
        "ref_lppm2": ref,
        "ref_level": ref_level.astype("float64"),
        "cx_band_lppm2": cx_band,
        "cx_all_lppm2": cx_all,
        "cx_last_lppm2": cx_last,
        "cx_months_since": since,
        "cx_n_trades": n_trades,
        "dong_lppm2": dong,
        "gu_lppm2": gu_now,
        "gu_mom_3": gu_now - _level_at(index, lawd, months.add_months(latest, -3)),
        "gu_mom_12": gu_now - _level_at(index, lawd, months.add_months(latest, -12)),
    })
    for col in FEATURE_COLUMNS:
        out[col] = feats[col].to_numpy()
    return out


def naive_baseline(features: pd.DataFrame) -> np.ndarray:
    """Baseline price (만원): the complex's recent median price per m² × area.

    The median is index-adjusted to the latest known month (as in the features); complexes
    never seen fall back to the 동, then the 구 level, so every row gets a price.
    """
    ref = features["ref_lppm2"].to_numpy(dtype=float)
    return np.exp(ref) * features["area_m2"].to_numpy(dtype=float)
