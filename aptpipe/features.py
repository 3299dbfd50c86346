"""Feature stage: a per-month market state and the derived variables computed from it.

`MarketState` holds what the market looked like through the end of month `as_of`:

* `recent`: each complex's recent trades, capped per unit type (complex × rounded area), stored
  *deflated* by the district index of their month (`d = log(price/m²) − index`), so any level
  can be carried to a later month by adding that month's index;
* `complexes`: attributes seen so far (district, 동, highest floor, build year, counts, months);
* `index`: a chained repeat-sales index per 구 (and 시도 / nationwide), composition-robust: the
  monthly change is the median of "trade vs the same unit type's earlier deflated level", shrunk
  toward the 시도 and then the national change when a district has few repeat trades.

`update_state` folds in one month at a time; `build_features` prices trades of any later month
from the state alone.  Training and serving both go through `build_features`, so a feature can
only ever see trades from months before the one being priced.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aptpipe import months

log = logging.getLogger(__name__)

RECENT_PER_TYPE = 6          # trades kept per (complex, rounded area)
RECENT_MAX_AGE = 36          # months a trade stays in the recent history
AREA_LEVEL_MONTHS = 12       # 동 / 구 levels use this many months of recent trades
RESID_MONTHS = 6             # months of repeat residuals behind the 동 / complex drift features
AREA_BANDS = (0.0, 40.0, 60.0, 85.0, 102.0, 135.0, np.inf)
SHRINK = 20.0                # pseudo-count pulling a 구 (시도) index change to the 시도 (national)
NATIONAL = "nat"

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "unit_type": ("ut_lppm2", "ut_last_lppm2", "ut_n", "ut_months_since", "ut_floor_gap"),
    "complex": ("cx_band_lppm2", "cx_all_lppm2", "cx_last_lppm2", "cx_months_since",
                "cx_n_trades", "cx_area_dev", "cx_resid"),
    "neighbourhood": ("name_lppm2", "cohort_lppm2", "dong_band_lppm2", "dong_lppm2", "gu_band_lppm2", "gu_lppm2", "dong_resid"),
    "trend": ("gu_mom_1", "gu_mom_3", "sido_mom_3", "nat_mom_3", "state_gap"),
    "unit": ("log_area", "floor", "rel_floor", "max_floor", "age"),
    "location": ("gu_code", "sido_code"),
    "season": ("month_of_year",),
    "reference": ("ref_lppm2", "ref_level"),
}
FEATURE_COLUMNS: tuple[str, ...] = tuple(c for cols in FEATURE_GROUPS.values() for c in cols)
BASELINE_COLUMNS: tuple[str, ...] = ("base_raw_lppm2", "base_adj_lppm2")
REF_LEVELS = ("ut_lppm2", "cx_band_lppm2", "cx_all_lppm2", "name_lppm2", "cohort_lppm2",
              "dong_band_lppm2", "dong_lppm2", "gu_band_lppm2", "gu_lppm2")
# most specific first; ref_level = 9 .. 1, 0 = none
REQUIRED_COLUMNS: tuple[str, ...] = ("complex_key", "lawd_cd", "umd_nm", "area_m2", "floor",
                                     "build_year", "deal_ym")


@dataclass(frozen=True)
class MarketState:
    as_of: int                  # last contract month included (YYYYMM)
    recent: pd.DataFrame        # complex_key, akey, band, deal_ym, lawd_cd, umd_nm, apt_nm,
    #                             build_year, lppm2, d (deflated), r (repeat residual),
    #                             log_area, floor
    complexes: pd.DataFrame     # complex_key -> lawd_cd, umd_nm, max_floor, build_year, n, first_ym, last_ym
    index: pd.DataFrame         # region ("nat", "s:11", lawd_cd), deal_ym, level, n (repeat trades)


def area_band(area: pd.Series) -> pd.Series:
    return pd.Series(np.digitize(area.to_numpy(dtype=float), AREA_BANDS[1:-1]), index=area.index,
                     dtype="int64")


def area_key(area: pd.Series) -> pd.Series:
    """The unit type within a complex: the exclusive area rounded to 1 m²."""
    return pd.Series(np.rint(area.to_numpy(dtype=float)), index=area.index).fillna(-1).astype(
        "int64")


def _s(dtype: str) -> pd.Series:
    return pd.Series(dtype=dtype)


def empty_state(as_of: int) -> MarketState:
    return MarketState(
        as_of=as_of,
        recent=pd.DataFrame({"complex_key": _s("string"), "akey": _s("int64"),
                             "band": _s("int64"), "deal_ym": _s("int64"),
                             "lawd_cd": _s("string"), "umd_nm": _s("string"),
                             "apt_nm": _s("string"), "build_year": _s("float64"),
                             "lppm2": _s("float64"), "d": _s("float64"), "r": _s("float64"),
                             "log_area": _s("float64"), "floor": _s("float64")}),
        complexes=pd.DataFrame({"complex_key": _s("string"), "lawd_cd": _s("string"),
                                "umd_nm": _s("string"), "max_floor": _s("float64"),
                                "build_year": _s("float64"), "n": _s("int64"),
                                "first_ym": _s("int64"), "last_ym": _s("int64")}),
        index=pd.DataFrame({"region": _s("string"), "deal_ym": _s("int64"),
                            "level": _s("float64"), "n": _s("int64")}),
    )


# --------------------------------------------------------------------------- index helpers

def _latest_index(state: MarketState, ym: int | None = None) -> pd.Series:
    """region -> index level at month `ym` (default: the state's month), or the latest before."""
    idx = state.index
    if ym is not None:
        idx = idx[idx["deal_ym"] <= ym]
    if not len(idx):
        return pd.Series(dtype="float64")
    return idx.sort_values("deal_ym", kind="stable").groupby("region")["level"].last()


def _sido(lawd: pd.Series) -> pd.Series:
    return ("s:" + lawd.astype("string").str.slice(0, 2)).astype("string")


def _index_for(lawd: pd.Series, levels: pd.Series) -> np.ndarray:
    """Index level of each row's 구, falling back to its 시도, then the national level, then 0."""
    out = lawd.astype("string").map(levels).astype("float64")
    out = out.fillna(_sido(lawd).map(levels).astype("float64"))
    return out.fillna(float(levels.get(NATIONAL, 0.0))).to_numpy()


def _shrunk_changes(lawd: pd.Series, diff: np.ndarray) -> tuple[dict[str, float], dict[str, int]]:
    """Monthly index change per region from repeat differences, shrunk down the hierarchy."""
    ok = np.isfinite(diff)
    frame = pd.DataFrame({"lawd": lawd.astype("string").to_numpy()[ok],
                          "diff": diff[ok]})
    frame["sido"] = _sido(frame["lawd"]).to_numpy()
    nat_n = len(frame)
    nat = float(np.median(frame["diff"])) if nat_n else 0.0
    change: dict[str, float] = {NATIONAL: nat}
    count: dict[str, int] = {NATIONAL: nat_n}
    for sido, g in frame.groupby("sido"):
        n = len(g)
        change[str(sido)] = (n * float(g["diff"].median()) + SHRINK * nat) / (n + SHRINK)
        count[str(sido)] = n
    for lawd_cd, g in frame.groupby("lawd"):
        n = len(g)
        parent = change[str(g["sido"].iloc[0])]
        change[str(lawd_cd)] = (n * float(g["diff"].median()) + SHRINK * parent) / (n + SHRINK)
        count[str(lawd_cd)] = n
    return change, count


# --------------------------------------------------------------------------- state update

def _optional(frame: pd.DataFrame, col: str, dtype: str) -> pd.Series:
    if col in frame.columns:
        return frame[col].astype(dtype)
    return pd.Series(pd.NA if dtype == "string" else np.nan, index=frame.index, dtype=dtype)


def _type_levels(trades: pd.DataFrame, state: MarketState) -> np.ndarray:
    """Each trade's unit-type level (deflated) from the state: same rounded area in the same
    complex, else the same area band in it; NaN for complexes never seen."""
    recent = state.recent
    if not len(recent) or not len(trades):
        return np.full(len(trades), np.nan)
    keys = trades["complex_key"].astype("string")
    by_type = recent.groupby(["complex_key", "akey"])["d"].median()
    by_band = recent.groupby(["complex_key", "band"])["d"].median()
    ut = by_type.reindex(pd.MultiIndex.from_arrays([keys, area_key(trades["area_m2"])]))
    bd = by_band.reindex(pd.MultiIndex.from_arrays([keys, area_band(trades["area_m2"])]))
    return np.where(np.isfinite(ut.to_numpy(float)), ut.to_numpy(float), bd.to_numpy(float))


def update_state(state: MarketState, trades: pd.DataFrame) -> MarketState:
    """Fold one month of clean trades (month `state.as_of + 1`) into the state."""
    ym = months.add_months(state.as_of, 1)
    if len(trades) and set(trades["deal_ym"].unique()) != {ym}:
        raise ValueError(f"update_state({state.as_of}) expects trades of {ym} only")
    trades = trades.reset_index(drop=True)
    lawd = trades["lawd_cd"].astype("string")
    area = trades["area_m2"].astype("float64")
    lppm2 = np.log(trades["price_manwon"].to_numpy(float) / area.to_numpy(float))

    # 1. the index: repeat differences against each unit type's earlier level
    before = _latest_index(state)
    prior = _index_for(lawd, before) if len(before) else np.zeros(len(trades))
    diff = lppm2 - (_type_levels(trades, state) + prior)
    change, count = _shrunk_changes(lawd, diff)
    regions = set(before.index) | set(lawd.unique()) | set(_sido(lawd).unique()) | {NATIONAL}
    rows = []
    for region in sorted(str(r) for r in regions):
        parent = (NATIONAL if region.startswith("s:") or region == NATIONAL
                  else "s:" + region[:2])
        step = change.get(region, change.get(parent, change[NATIONAL]))
        rows.append((region, ym, float(before.get(region, 0.0)) + step, count.get(region, 0)))
    month_index = pd.DataFrame(rows, columns=["region", "deal_ym", "level", "n"])
    index = pd.concat([state.index, month_index], ignore_index=True).astype(
        {"region": "string", "deal_ym": "int64", "level": "float64", "n": "int64"})

    # 2. the month's trades, deflated by the new index; repeat residuals for drift features
    now = month_index.set_index("region")["level"]
    level = _index_for(lawd, now)
    new = pd.DataFrame({
        "complex_key": trades["complex_key"].astype("string"),
        "akey": area_key(area),
        "band": area_band(area),
        "deal_ym": np.full(len(trades), ym, dtype="int64"),
        "lawd_cd": lawd,
        "umd_nm": trades["umd_nm"].astype("string"),
        "apt_nm": _optional(trades, "apt_nm", "string"),
        "build_year": _optional(trades, "build_year", "float64"),
        "lppm2": lppm2,
        "d": lppm2 - level,
        "r": diff - (level - prior),
        "log_area": np.log(area.to_numpy(float)),
        "floor": trades["floor"].astype("float64").to_numpy(),
    })
    oldest = months.add_months(ym, -RECENT_MAX_AGE + 1)
    recent = pd.concat([state.recent[state.recent["deal_ym"] >= oldest], new], ignore_index=True)
    recent = (recent.groupby(["complex_key", "akey"], sort=False, group_keys=False)
              .tail(RECENT_PER_TYPE).sort_values(["complex_key", "akey", "deal_ym"],
                                                 kind="stable").reset_index(drop=True))

    # 3. complex attributes
    numeric = trades.assign(floor=trades["floor"].astype("float64"),
                            build_year=trades["build_year"].astype("float64"))
    month_cx = numeric.groupby("complex_key", sort=True).agg(
        lawd_cd=("lawd_cd", "first"), umd_nm=("umd_nm", "first"),
        max_floor=("floor", "max"), build_year=("build_year", "max"),
        n=("price_manwon", "size"))
    month_cx["first_ym"] = ym
    month_cx["last_ym"] = ym
    old = state.complexes.set_index("complex_key")
    both = pd.concat([old, month_cx.reset_index().set_index("complex_key")])
    complexes = both.groupby(level=0, sort=True).agg(
        lawd_cd=("lawd_cd", "last"), umd_nm=("umd_nm", "last"), max_floor=("max_floor", "max"),
        build_year=("build_year", "max"), n=("n", "sum"), first_ym=("first_ym", "min"),
        last_ym=("last_ym", "max"),
    ).reset_index()
    return MarketState(ym, recent,
                       complexes.astype({"n": "int64", "first_ym": "int64", "last_ym": "int64"}),
                       index)


# --------------------------------------------------------------------------- features

def _lookup(series: pd.Series, *keys: pd.Series) -> np.ndarray:
    if len(keys) == 1:
        return keys[0].map(series).astype("float64").to_numpy()
    return series.reindex(pd.MultiIndex.from_arrays(list(keys))).to_numpy(dtype=float)


def _months_since(last: np.ndarray, target: np.ndarray) -> np.ndarray:
    def serial(ym: np.ndarray) -> np.ndarray:
        return (ym // 100) * 12 + ym % 100
    out = np.full(len(target), np.nan)
    ok = np.isfinite(last)
    out[ok] = serial(target[ok]) - serial(last[ok])
    return out


def missing_inputs(trades: pd.DataFrame) -> list[str]:
    return [c for c in REQUIRED_COLUMNS if c not in trades.columns]


def build_features(trades: pd.DataFrame, state: MarketState) -> pd.DataFrame:
    """Features of `trades` (any months after `state.as_of`) from the state alone.

    `trades` needs `REQUIRED_COLUMNS` (values may be missing); other columns (price_manwon,
    apt_nm, deal_date, …) are carried through when present.
    """
    missing = missing_inputs(trades)
    if missing:
        raise ValueError(f"build_features: missing columns {missing}")
    if len(trades) and int(trades["deal_ym"].min()) <= state.as_of:
        raise ValueError(f"features from state {state.as_of} can only price later months")
    out = trades.reset_index(drop=True).copy()
    lawd = out["lawd_cd"].astype("string")
    umd = out["umd_nm"].astype("string")
    keys = out["complex_key"].astype("string")
    area = out["area_m2"].astype("float64")
    akey = area_key(area)
    band = area_band(area)
    deal_ym = out["deal_ym"].astype("int64").to_numpy()
    latest = state.as_of

    levels = _latest_index(state)
    i_now = _index_for(lawd, levels) if len(levels) else np.zeros(len(out))

    recent = state.recent
    r_near = recent[recent["deal_ym"] > months.add_months(latest, -AREA_LEVEL_MONTHS)]
    r_resid = recent[recent["deal_ym"] > months.add_months(latest, -RESID_MONTHS)]
    ut = recent.groupby(["complex_key", "akey"])
    cx = recent.groupby("complex_key")
    cx_near = r_near.groupby("complex_key")

    f: dict[str, np.ndarray] = {}
    f["ut_lppm2"] = _lookup(ut["d"].median(), keys, akey) + i_now
    f["ut_last_lppm2"] = _lookup(ut["d"].last(), keys, akey) + i_now
    f["ut_n"] = np.nan_to_num(_lookup(ut["d"].size().astype("float64"), keys, akey))
    f["ut_months_since"] = _months_since(_lookup(ut["deal_ym"].max().astype("float64"),
                                                 keys, akey), deal_ym)
    # the unit type's level is a median over trades on some floors: how far up this one is
    floor = out["floor"].astype("float64").to_numpy()
    f["ut_floor_gap"] = floor - _lookup(ut["floor"].median(), keys, akey)
    f["cx_band_lppm2"] = _lookup(recent.groupby(["complex_key", "band"])["d"].median(),
                                 keys, band) + i_now
    f["cx_all_lppm2"] = _lookup(cx["d"].median(), keys) + i_now
    f["cx_last_lppm2"] = _lookup(cx["d"].last(), keys) + i_now
    attrs = state.complexes.set_index("complex_key")
    f["cx_months_since"] = _months_since(keys.map(attrs["last_ym"]).astype("float64").to_numpy(),
                                         deal_ym)
    f["cx_n_trades"] = np.nan_to_num(keys.map(attrs["n"]).astype("float64").to_numpy())
    f["cx_area_dev"] = np.log(area.to_numpy()) - _lookup(cx["log_area"].median(), keys)
    f["cx_resid"] = _lookup(r_resid.groupby("complex_key")["r"].mean(), keys)

    f["name_lppm2"] = _lookup(recent.groupby(["lawd_cd", "apt_nm"])["d"].median(), lawd,
                              _optional(out, "apt_nm", "string")) + i_now
    f["cohort_lppm2"] = _lookup(recent.groupby(["lawd_cd", "umd_nm", "build_year"])["d"].median(),
                                lawd, umd, out["build_year"].astype("float64")) + i_now
    f["dong_band_lppm2"] = _lookup(r_near.groupby(["lawd_cd", "umd_nm", "band"])["d"].median(),
                                   lawd, umd, band) + i_now
    f["dong_lppm2"] = _lookup(r_near.groupby(["lawd_cd", "umd_nm"])["d"].median(),
                              lawd, umd) + i_now
    f["gu_band_lppm2"] = _lookup(r_near.groupby(["lawd_cd", "band"])["d"].median(),
                                 lawd, band) + i_now
    f["gu_lppm2"] = _lookup(r_near.groupby("lawd_cd")["d"].median(), lawd) + i_now
    f["dong_resid"] = _lookup(r_resid.groupby(["lawd_cd", "umd_nm"])["r"].mean(), lawd, umd)

    def momentum(region: pd.Series, lag: int) -> np.ndarray:
        then = _latest_index(state, months.add_months(latest, -lag))
        if not len(then) or not len(levels):
            return np.full(len(out), np.nan)
        has_then = state.index["deal_ym"].min() <= months.add_months(latest, -lag)
        if not has_then:
            return np.full(len(out), np.nan)
        return (region.map(levels).astype("float64")
                - region.map(then).astype("float64")).to_numpy()

    f["gu_mom_1"] = momentum(lawd, 1)
    f["gu_mom_3"] = momentum(lawd, 3)
    f["sido_mom_3"] = momentum(_sido(lawd), 3)
    f["nat_mom_3"] = momentum(pd.Series(NATIONAL, index=out.index, dtype="string"), 3)
    f["state_gap"] = _months_since(np.full(len(out), float(latest)), deal_ym)

    max_floor = keys.map(attrs["max_floor"]).astype("float64").to_numpy()
    f["log_area"] = np.log(area.to_numpy())
    f["floor"] = floor
    f["max_floor"] = max_floor
    with np.errstate(divide="ignore", invalid="ignore"):
        f["rel_floor"] = np.where(max_floor > 0, floor / max_floor, np.nan)
    f["age"] = deal_ym // 100 - out["build_year"].astype("float64").to_numpy()
    f["gu_code"] = pd.to_numeric(lawd, errors="coerce").astype("float64").to_numpy()
    f["sido_code"] = np.floor(f["gu_code"] / 1000)
    f["month_of_year"] = (deal_ym % 100).astype("float64")

    ref = np.full(len(out), np.nan)
    ref_level = np.zeros(len(out))
    for rank, col in zip(range(len(REF_LEVELS), 0, -1), REF_LEVELS):
        take = np.isnan(ref) & np.isfinite(f[col])
        ref[take] = f[col][take]
        ref_level[take] = rank
    f["ref_lppm2"] = ref
    f["ref_level"] = ref_level

    # the two naive baselines: the complex's recent median price per m², raw and index-adjusted
    # (12 months; falling back to the 동, then the 구 when the complex has not traded)
    def chain(*cols: np.ndarray) -> np.ndarray:
        res = np.full(len(out), np.nan)
        for c in cols:
            res = np.where(np.isnan(res), c, res)
        return res
    f["base_raw_lppm2"] = chain(
        _lookup(cx_near["lppm2"].median(), keys), _lookup(cx["lppm2"].median(), keys),
        _lookup(r_near.groupby(["lawd_cd", "umd_nm"])["lppm2"].median(), lawd, umd),
        _lookup(r_near.groupby("lawd_cd")["lppm2"].median(), lawd))
    f["base_adj_lppm2"] = chain(f["cx_all_lppm2"], f["dong_lppm2"], f["gu_lppm2"])

    for col in (*FEATURE_COLUMNS, *BASELINE_COLUMNS):
        out[col] = np.asarray(f[col], dtype="float64")
    out["area_m2"] = area.to_numpy()
    return out


def seen_complex(features: pd.DataFrame) -> np.ndarray:
    """True where the complex had traded before the state month."""
    return features["cx_n_trades"].to_numpy(float) > 0


def naive_baseline(features: pd.DataFrame, adjusted: bool = True) -> np.ndarray:
    """Baseline price (만원): the complex's recent median price per m² × area.

    `adjusted` carries the median to the latest known month with the district index; complexes
    never seen fall back to the 동, then the 구 level, so every row in a known 구 gets a price.
    """
    col = "base_adj_lppm2" if adjusted else "base_raw_lppm2"
    return np.exp(features[col].to_numpy(dtype=float)) * features["area_m2"].to_numpy(dtype=float)
