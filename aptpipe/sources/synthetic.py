"""A deterministic synthetic Seoul apartment market that answers like the MOLIT Dev API.

`fetch_month(deal_ym, as_of, regions, cfg)` returns the items the MOLIT
`getRTMSDataSvcAptTradeDev` API would have returned on day `as_of` for contract month `deal_ym`
and each 5-digit district code in `regions`, as a raw frame with exactly `schema.RAW_COLUMNS`
(all strings, formatted like the real API: `"355,000"`, `"6"`, `"84.9984"`, `"25.06.13"`,
single-space blanks).

How the market works (see docs/molit_api.md §4 and §6 for the real behaviour it imitates):

* Every (seed, district) has a fixed universe of complexes (`complexes_per_gu` of them): 법정동
  (the real Seoul 법정동 of that 구, shipped in `aptpipe/data/seoul_umd.csv`), name, jibun, road
  address, `aptSeq`, build year (1975-2025; a complex trades only from its completion month),
  max floor, 1-4 unit types with realistic areas, size (share of the district's volume),
  a persistent price offset and a persistent 법정동 offset.
* log(price per m²) = district trend (Seoul-wide random walk with autocorrelated increments
  + a district random walk with district-specific drift, fixed per seed, defined for every month
  200601..203012 and anchored so that 2024 levels match real 2024 Seoul medians)
  + price seasonality + 법정동 and complex offsets + area, floor and building-age effects
  (new-build premium, depreciation, reconstruction premium for very old complexes)
  + market shock + lognormal noise (sd 0.06).  About 1.5 % of trades are below-market family
  transfers at 60-85 % of value, mostly 직거래.
* Monthly volume per district is Poisson around `trades_per_gu_month` times district weight
  (real 2024 relative volumes, mean 1 over the 25 구), volume seasonality and a Seoul-wide cycle
  that follows price momentum (mean 1 over 200601..203012).  Volume does not react to the shock,
  so a config with and without shock yields the same trades with different prices.
* Each trade has a report (publication) date 0-30 days after the contract (most within two
  weeks); it is absent while that date is after `as_of`.  ~5 % are cancelled 5-60 days after the
  contract (never before they were reported); the flag (`cdealType="O"`, `cdealDay`) shows once
  the cancel date is <= `as_of`.  Half of the cancelled trades are re-reported: an identical new
  row published 1-7 days after the cancel date.  Uncancelled trades register 14-200 days
  (median ~75, like real 2024 data) after the contract; `rgstDate` and `aptDong` show once that
  date is <= `as_of`.
* Fields are blank by period like the real data (§6.5): `dealingGbn`/`estateAgentSggNm` only
  for contracts >= 2021-11-01, `aptDong` only for contracts >= 2023-01-01, `slerGbn`/`buyerGbn`
  only for contracts >= 2024-01-01.  Not modelled: the 60-day reporting rule before 2020-02-21,
  10-day day buckets of old data, and the late start of cancellation / registration disclosure.
* ~0.08 % of rows are malformed (dealAmount `" "` or `"0"`, excluUseAr `" "`, dealDay `"0"` or
  `"32"`), for the cleaner's quarantine.

Determinism: everything is drawn from `numpy.random.default_rng` seeded by (seed, district,
month, stream); the complex universe and the district timelines depend only on (seed, district)
and are cached, so any month can be generated on its own.  The full set of trades of a
(district, month) does not depend on `as_of`: `as_of` only hides rows and late-filled fields, so
an earlier answer is always a subset (by surrogate identity) of a later one.  No wall-clock time
is used.  Results are bit-identical for identical arguments on one machine; across CPUs numpy's
vectorised `exp`/`log` may differ in the last bit, which could move a rare price by one rounding
step.

Only the 25 Seoul district codes are supported; any other code raises `ValueError`.
"""
from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import io
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aptpipe import months, schema

log = logging.getLogger(__name__)

SOURCE_NAME = "synthetic"
FIRST_MONTH = 200601
LAST_MONTH = 203012

_BLANK = " "
_N_GRID = months.months_between(FIRST_MONTH, LAST_MONTH) + 1
_ANCHOR_T = months.months_between(FIRST_MONTH, 202403)  # 2024 levels are pinned here
# Global log offset between the trend's reference unit (84.9 m², 15 years old, floor effect 0)
# and a district's median trade.  Calibrated by simulation (seeds 1, 2, 3, 7): with 0.0 the
# simulated 2024-01..05 district medians are within about ±10 % of `_GU_PROFILE` (mean +3 %).
_LEVEL_OFFSET = 0.0

# lawd_cd -> (median 만원 per m² of real Seoul trades 2024-01..05, relative monthly volume in
# the same data).  Source: shared/realdata/transactions/seoul_monthly/2024{01..05}.csv.gz.
_GU_PROFILE: dict[str, tuple[float, float]] = {
    "11110": (1220.0, 0.22), "11140": (1370.0, 0.37), "11170": (2100.0, 0.48),
    "11200": (1740.0, 1.28), "11215": (1550.0, 0.55), "11230": (1100.0, 1.08),
    "11260": (860.0, 0.71), "11290": (990.0, 1.33), "11305": (800.0, 0.39),
    "11320": (710.0, 0.72), "11350": (930.0, 1.75), "11380": (1080.0, 1.03),
    "11410": (1190.0, 0.90), "11440": (1630.0, 1.25), "11470": (1250.0, 1.01),
    "11500": (1090.0, 1.29), "11530": (900.0, 1.16), "11545": (810.0, 0.35),
    "11560": (1350.0, 1.25), "11590": (1410.0, 1.07), "11620": (950.0, 0.68),
    "11650": (2600.0, 1.25), "11680": (2710.0, 1.55), "11710": (1890.0, 1.92),
    "11740": (1470.0, 1.40),
}

# Contract-volume seasonality (Jan..Dec; spring and autumn moving seasons), mean 1.
_VOLUME_SEASON = np.array([0.82, 0.90, 1.15, 1.10, 1.05, 1.04, 0.92, 0.90, 1.03, 1.10, 1.02, 0.97])
_VOLUME_SEASON = _VOLUME_SEASON / _VOLUME_SEASON.mean()
_PRICE_SEASON_AMPL = 0.006  # log price; peak in late spring

# Trade-level rates.
_NOISE_SD = 0.06
_OUTLIER_RATE = 0.015
_DIRECT_RATE = 0.035            # 직거래 share of ordinary trades
_OUTLIER_DIRECT_RATE = 0.8      # 직거래 share of family transfers
_CANCEL_RATE = 0.05
_REREPORT_RATE = 0.5
_MALFORMED_RATE = 0.0008
_BASEMENT_RATE = 0.001
_MAX_REPORT_DELAY = 30

# Disclosure start dates of late-added fields (contract dates; molit_api.md §6.5).
_DEALING_FROM = dt.date(2021, 11, 1).toordinal()
_APTDONG_FROM = dt.date(2023, 1, 1).toordinal()
_PARTY_FROM = dt.date(2024, 1, 1).toordinal()

_OLD_BRANDS = ("현대", "한신", "우성", "삼익", "미성", "한양", "신동아", "극동", "벽산", "대우",
               "동아", "쌍용", "럭키", "삼성", "경남", "선경", "청구", "두산", "건영", "삼환",
               "한진", "코오롱", "대림", "동부", "유원", "금호", "라이프", "진로")
_NEW_BRANDS = ("래미안", "자이", "푸르지오", "힐스테이트", "e편한세상", "아이파크", "롯데캐슬",
               "더샵", "SK뷰", "센트레빌", "아크로", "꿈에그린", "하늘채", "어울림", "위브",
               "데시앙", "스위트닷홈", "리슈빌", "호반베르디움", "한라비발디")
_NEW_SUFFIXES = ("", "", "", "1차", "2차", "센트럴", "퍼스티지", "리버뷰", "파크", "포레",
                 "에듀", "더퍼스트")
_STUDIO_WORDS = ("스테이", "하우스", "타워", "레지던스", "스퀘어", "팰리스", "리빙", "시티")
_GYEONGGI_AGENTS = ("경기 성남분당구", "경기 과천시", "경기 하남시", "경기 고양일산동구",
                    "경기 용인수지구", "경기 안양동안구", "경기 광명시", "경기 구리시")

# Unit-type menu: (low, high) area ranges for new (>= 1995) and old complexes, and weights.
_TYPE_NEW = ((36.0, 49.99), (59.5, 59.994), (66.0, 79.99), (84.5, 84.994), (95.0, 119.99),
             (120.0, 169.99), (170.0, 244.99))
_TYPE_OLD = ((33.0, 49.99), (56.0, 62.99), (63.0, 79.99), (80.0, 89.99), (90.0, 119.99),
             (120.0, 169.99), (170.0, 244.99))
_TYPE_WEIGHTS = np.array([0.10, 0.34, 0.08, 0.36, 0.06, 0.04, 0.015])
_N_TYPES = 4  # max unit types per complex


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the synthetic market.

    seed: selects the market (complexes, trends, trades); same seed → same market.
    shock_month: YYYYMM; contract months >= it have all prices moved by `shock_pct` percent.
    shock_pct: size of the shock in percent (-15.0 = prices 15 % lower); must be > -100.
    trades_per_gu_month: mean contract volume per district per month, before district weight,
        seasonality and the volume cycle (all mean 1).
    complexes_per_gu: number of apartment complexes in each district's universe (1..5000).
    """

    seed: int = 7
    shock_month: int | None = None
    shock_pct: float = -15.0
    trades_per_gu_month: float = 250.0
    complexes_per_gu: int = 60


# --------------------------------------------------------------------------- shipped tables


@functools.lru_cache(maxsize=1)
def _gu_names() -> dict[str, str]:
    """lawd_cd -> 구 name, from the shipped `lawd_cd_seoul_25gu.csv`."""
    text = importlib.resources.files("aptpipe.data").joinpath(
        "lawd_cd_seoul_25gu.csv").read_text(encoding="utf-8")
    table = pd.read_csv(io.StringIO(text), dtype=str)
    return dict(zip(table["lawd_cd"], table["sigungu_nm"], strict=True))


@functools.lru_cache(maxsize=1)
def _umd_table() -> dict[str, tuple[tuple[str, str], ...]]:
    """lawd_cd -> ((umd_cd, umd_nm), ...), from the shipped `seoul_umd.csv`."""
    text = importlib.resources.files("aptpipe.data").joinpath(
        "seoul_umd.csv").read_text(encoding="utf-8")
    table = pd.read_csv(io.StringIO(text), dtype=str, comment="#")
    out: dict[str, list[tuple[str, str]]] = {}
    for lawd, code, name in zip(table["lawd_cd"], table["umd_cd"], table["umd_nm"], strict=True):
        out.setdefault(lawd, []).append((code, name))
    return {k: tuple(v) for k, v in out.items()}


_DATE_BASE = dt.date(2005, 1, 1).toordinal()
_DATE_END = dt.date(2032, 12, 31).toordinal()


@functools.lru_cache(maxsize=1)
def _date_strings() -> np.ndarray:
    """Ordinal - _DATE_BASE -> 'YY.MM.DD' for every day 2005-01-01..2032-12-31."""
    return np.array([dt.date.fromordinal(o).strftime("%y.%m.%d")
                     for o in range(_DATE_BASE, _DATE_END + 1)], dtype=object)


@functools.lru_cache(maxsize=1)
def _int_strings() -> np.ndarray:
    """i + 1 -> str(i) for i in -1..400 (floors, days, building numbers)."""
    return np.array([str(i) for i in range(-1, 401)], dtype=object)


# --------------------------------------------------------------------------- timelines


@functools.lru_cache(maxsize=64)
def _seoul_timeline(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(common log-price path, volume-cycle multiplier) on the 200601..203012 grid.

    The common path is a driftless random walk whose monthly increments follow an AR(1)
    (housing momentum) plus a boom/bust cycle (a damped AR(2) oscillation with a ~7-year period,
    sd 0.09), pinned to 0 at the anchor month.  The volume cycle rises with 6-month price
    momentum, has its own AR(1) noise and mean 1 over the grid.
    """
    rng = np.random.default_rng([seed, 0, 0, 3])
    eps = rng.normal(0.0, 0.0022, _N_GRID)
    cyc_eps = rng.normal(0.0, 1.0, _N_GRID + 120)
    vol_eps = rng.normal(0.0, 0.06, _N_GRID)
    a1, a2 = 2.0 * 0.985 * math.cos(2.0 * math.pi / 84.0), -(0.985 ** 2)
    x, v, cycle = np.empty(_N_GRID), np.empty(_N_GRID), np.empty(_N_GRID + 120)
    prev_x = prev_v = c1 = c2 = 0.0
    for t in range(_N_GRID + 120):  # 120 burn-in months for the oscillation
        c1, c2 = a1 * c1 + a2 * c2 + cyc_eps[t], c1
        cycle[t] = c1
    cycle = cycle[120:]
    cycle = 0.09 * (cycle - cycle.mean()) / cycle.std()
    for t in range(_N_GRID):
        prev_x = 0.85 * prev_x + eps[t]
        prev_v = 0.92 * prev_v + vol_eps[t]
        x[t] = prev_x
        v[t] = prev_v
    path = np.cumsum(x) + cycle
    path -= path[_ANCHOR_T]
    momentum = path - np.concatenate([np.full(6, path[0]), path[:-6]])
    volume = np.exp(np.clip(5.0 * momentum + v, -0.9, 0.9))
    volume /= volume.mean()
    return path, volume


@functools.lru_cache(maxsize=256)
def _gu_timeline(seed: int, lawd: str) -> np.ndarray:
    """Log price level (reference unit, 만원/m²) of district `lawd` on the month grid."""
    level_2024, _ = _GU_PROFILE[lawd]
    levels = [math.log(v) for v, _ in _GU_PROFILE.values()]
    rel = (math.log(level_2024) - min(levels)) / (max(levels) - min(levels))
    drift = (0.035 + 0.025 * rel) / 12.0  # expensive districts grew faster
    rng = np.random.default_rng([seed, int(lawd), 0, 2])
    own = np.cumsum(drift + rng.normal(0.0, 0.003, _N_GRID))
    own -= own[_ANCHOR_T]
    common, _ = _seoul_timeline(seed)
    return math.log(level_2024) + _LEVEL_OFFSET + common + own


# --------------------------------------------------------------------------- complexes


@dataclass(frozen=True)
class _Universe:
    """The complexes of one (seed, district); arrays are indexed by complex."""

    start_ym: np.ndarray        # completion month YYYYMM
    build_year: np.ndarray      # int
    max_floor: np.ndarray       # int
    n_types: np.ndarray         # int, 1.._N_TYPES
    type_area: np.ndarray       # (n, _N_TYPES) float, nan past n_types
    type_area_str: np.ndarray   # (n, _N_TYPES) object
    type_cumw: np.ndarray       # (n, _N_TYPES) cumulative type weights (1.0 past n_types)
    weight: np.ndarray          # share of the district's volume (unnormalised)
    offset: np.ndarray          # persistent log-price offset (법정동 + complex)
    recon: np.ndarray           # reconstruction premium at full maturity
    n_dong: np.ndarray          # number of buildings
    dong_style: np.ndarray      # 0 "101", 1 "1", 2 "제101동"
    text: dict[str, np.ndarray]  # constant string fields per complex, keyed by item tag


def _umd_stem(name: str) -> str:
    stem = re.sub(r"\d*(동|가)$", "", name)
    stem = re.sub(r"\d+", "", stem)
    return stem or name


def _pick(options: Sequence[str], u: float) -> str:
    return options[min(int(u * len(options)), len(options) - 1)]


def _complex_name(u: np.ndarray, stem: str, build_year: int, studio: bool) -> str:
    """A Korean-looking complex name from three uniforms `u`, era-appropriate."""
    if studio:
        return f"{stem}{_pick(_STUDIO_WORDS, u[0])}"
    if build_year < 1998:
        brand = _pick(_OLD_BRANDS, u[0])
        number = 1 + int(u[2] * 5)
        form = int(u[1] * 6)
        if form == 0:
            return brand
        if form == 1:
            return f"{stem}{brand}"
        if form == 2:
            return f"{brand}{number}차"
        if form == 3:
            return f"{stem}주공{1 + int(u[2] * 14)}단지"
        if form == 4:
            return f"{brand}아파트"
        return f"{stem}{brand}{number}차"
    brand = _pick(_NEW_BRANDS, u[0])
    suffix = _pick(_NEW_SUFFIXES, u[2])
    if u[1] < 0.5:
        return f"{brand}{stem}{suffix}"
    return f"{stem}{brand}{suffix}"


def _format_area(value: float, decimals: int) -> str:
    """Like the API: up to `decimals` decimals, no trailing zeros ("84.9984", "103.74")."""
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


@functools.lru_cache(maxsize=512)
def _universe(seed: int, lawd: str, n: int) -> _Universe:
    """The complex universe of one district; depends only on (seed, district, n)."""
    rng = np.random.default_rng([seed, int(lawd), 0, 1])
    umds = _umd_table()[lawd]
    umd_w = rng.dirichlet(np.full(len(umds), 0.7))
    umd_off = rng.normal(0.0, 0.17, len(umds))
    umd_idx = np.minimum(np.searchsorted(np.cumsum(umd_w), rng.random(n) * umd_w.sum()),
                         len(umds) - 1)

    build_year = 1975 + np.floor(51 * rng.beta(1.9, 2.1, n)).astype(int)
    build_month = rng.integers(1, 13, n)
    studio = (build_year >= 2008) & (rng.random(n) < 0.2)
    floor_u = rng.random(n)
    max_floor = np.where(
        build_year <= 1988, np.where(floor_u < 0.4, 5, 12 + (floor_u * 4).astype(int)),
        np.where(build_year <= 2000, 12 + (floor_u * 14).astype(int),
                 np.where(build_year <= 2015, 15 + (floor_u * 16).astype(int),
                          np.where(floor_u < 0.9, 15 + (floor_u * 23).astype(int),
                                   40 + ((floor_u - 0.9) * 110).astype(int)))))
    max_floor = np.where(studio, 10 + (floor_u * 10).astype(int), max_floor).astype(int)
    households = np.clip(np.exp(rng.normal(6.2, 0.8, n)), 30, 9500)
    households = np.where(studio, np.minimum(households, 300), households)
    cx_off = rng.normal(0.0, 0.22, n) - 0.05 * studio
    recon = np.where(max_floor <= 6, 0.40, 0.22)
    seq_numbers = rng.choice(9999, size=n, replace=False) + 1
    n_dong = np.maximum(1, np.minimum(80, (households // 90).astype(int)))
    dong_style = np.searchsorted(np.array([0.85, 0.95]), rng.random(n), side="right")

    # unit types: 1-4 distinct menu entries per complex (weighted, without replacement via the
    # Gumbel top-k trick), studios get 1-2 small types
    n_types = 1 + np.searchsorted(np.cumsum([0.15, 0.35, 0.35]), rng.random(n), side="right")
    n_types = np.where(studio, 1 + (rng.random(n) < 0.5), n_types)
    keys = np.log(_TYPE_WEIGHTS)[None, :] + rng.gumbel(size=(n, len(_TYPE_WEIGHTS)))
    # keep the k best-ranked picks, in menu order
    ranked = np.argsort(-keys, axis=1)[:, :_N_TYPES]
    slot = np.arange(_N_TYPES)[None, :]
    chosen = np.where(slot < n_types[:, None], ranked, len(_TYPE_WEIGHTS))
    picks = np.sort(chosen, axis=1)
    menu_new = np.array((*_TYPE_NEW, (0.0, 0.0)))  # row 7 = unused slot
    menu_old = np.array((*_TYPE_OLD, (0.0, 0.0)))
    lows = np.where((build_year >= 1995)[:, None], menu_new[picks, 0], menu_old[picks, 0])
    highs = np.where((build_year >= 1995)[:, None], menu_new[picks, 1], menu_old[picks, 1])
    area_u = rng.random((n, _N_TYPES))
    raw_area = lows + area_u * (highs - lows)
    studio_area = np.sort(14.0 + 16.0 * area_u, axis=1)
    raw_area = np.where(studio[:, None], studio_area, raw_area)
    decimals = 2 + np.searchsorted(np.array([0.5, 0.7]), rng.random((n, _N_TYPES)), side="right")
    type_w = rng.gamma(2.0, 1.0, (n, _N_TYPES)) * (slot < n_types[:, None])
    type_cumw = np.cumsum(type_w, axis=1) / type_w.sum(axis=1, keepdims=True)
    type_cumw[slot >= n_types[:, None] - 1] = 1.0

    type_area = np.full((n, _N_TYPES), np.nan)
    type_area_str = np.full((n, _N_TYPES), _BLANK, dtype=object)
    for i in range(n):
        for j in range(int(n_types[i])):
            text_area = _format_area(float(raw_area[i, j]), int(decimals[i, j]))
            type_area_str[i, j] = text_area
            type_area[i, j] = float(text_area)  # the area traded is the one printed

    # names and addresses
    name_u = rng.random((n, 6))
    bonbun = np.where(name_u[:, 0] < 0.9, rng.integers(1, 1000, n), rng.integers(1, 1700, n))
    bubun = np.where(name_u[:, 1] < 0.6, 0, rng.integers(1, 200, n))
    road_no = rng.integers(1, 70, n)
    road_cd = rng.integers(3_000_000, 5_000_000, n)
    road_bon = rng.integers(1, 400, n)
    seen: set[str] = set()
    text: dict[str, list[str]] = {k: [] for k in (
        "umdCd", "umdNm", "aptNm", "jibun", "buildYear", "landCd", "bonbun", "bubun", "roadNm",
        "roadNmSggCd", "roadNmCd", "roadNmSeq", "roadNmbCd", "roadNmBonbun", "roadNmBubun",
        "aptSeq")}
    road_tags = ("roadNm", "roadNmSggCd", "roadNmCd", "roadNmSeq", "roadNmbCd", "roadNmBonbun",
                 "roadNmBubun")
    for i in range(n):
        umd_cd, umd_nm = umds[umd_idx[i]]
        stem = _umd_stem(umd_nm)
        name = _complex_name(name_u[i, 2:5], stem, int(build_year[i]), bool(studio[i]))
        base, extra = name, 2
        while name in seen:
            name = f"{base}{extra}차"
            extra += 1
        seen.add(name)
        bon, bu = int(bonbun[i]), int(bubun[i])
        text["umdCd"].append(umd_cd)
        text["umdNm"].append(umd_nm)
        text["aptNm"].append(name)
        text["jibun"].append(f"{bon}-{bu}" if bu else str(bon))
        text["buildYear"].append(str(int(build_year[i])))
        text["landCd"].append("1")
        text["bonbun"].append(f"{bon:04d}")
        text["bubun"].append(f"{bu:04d}")
        road_u = name_u[i, 5]
        if road_u < 0.04:  # complexes without road-name address data
            for tag in road_tags:
                text[tag].append(_BLANK)
            continue
        values = (f"{stem}로{road_no[i]}길" if road_u < 0.6 else f"{stem}로", lawd,
                  str(road_cd[i]), "01", "0", f"{road_bon[i]:05d}", "00000")
        for tag, value in zip(road_tags, values, strict=True):
            text[tag].append(value)
    text["aptSeq"] = [f"{lawd}-{int(s)}" for s in seq_numbers]

    # centre the persistent offsets (volume-weighted) so district levels follow the profile
    offset = umd_off[umd_idx] + cx_off
    return _Universe(
        start_ym=build_year * 100 + build_month,
        build_year=build_year,
        max_floor=max_floor,
        n_types=n_types,
        type_area=type_area,
        type_area_str=type_area_str,
        type_cumw=type_cumw,
        weight=households,
        offset=offset - np.average(offset, weights=households),
        recon=recon,
        n_dong=n_dong,
        dong_style=dong_style,
        text={k: np.array(v, dtype=object) for k, v in text.items()},
    )


# --------------------------------------------------------------------------- price effects


def _age_effect(age: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Log-price effect of building age (years): new premium, depreciation, reconstruction."""
    new_premium = 0.10 * np.exp(-age / 3.0)
    depreciation = -0.011 * np.minimum(age, 30.0)
    reconstruction = recon * np.clip((age - 28.0) / 14.0, 0.0, 1.0)
    return new_premium + depreciation + reconstruction + 0.16  # ≈ 0 for a 15-year-old unit


def _floor_effect(floor: np.ndarray, max_floor: np.ndarray) -> np.ndarray:
    """Low floors discounted, mild premium rising to the top floor."""
    rel = np.clip(floor / max_floor, 0.0, 1.0)
    return (0.04 * rel - 0.07 * (floor <= 1) - 0.035 * (floor == 2) - 0.015 * (floor == 3))


def _area_effect(area: np.ndarray) -> np.ndarray:
    """Smaller units cost a little more per m²."""
    return -0.08 * np.log(area / 84.9)


# --------------------------------------------------------------------------- one district-month


def _district_month(deal_ym: int, as_of_ord: int, lawd: str,
                     cfg: SyntheticConfig) -> dict[str, np.ndarray] | None:
    """The visible raw items of one (district, contract month) as string arrays, or None."""
    uni = _universe(cfg.seed, lawd, cfg.complexes_per_gu)
    t = months.months_between(FIRST_MONTH, deal_ym)
    year, month = divmod(deal_ym, 100)
    first_ord = dt.date(year, month, 1).toordinal()
    n_days = months.last_day(deal_ym).day
    if as_of_ord < first_ord:
        return None

    rng = np.random.default_rng([cfg.seed, int(lawd), deal_ym, 11])
    _, cycle = _seoul_timeline(cfg.seed)
    exists = np.flatnonzero(uni.start_ym <= deal_ym)
    mean = (cfg.trades_per_gu_month * _GU_PROFILE[lawd][1] * _VOLUME_SEASON[month - 1]
            * cycle[t])
    n = int(rng.poisson(mean)) if len(exists) else 0
    if n == 0:
        return None

    # --- draws (fixed order and sizes: the month's trades never depend on as_of or the shock)
    cum = np.cumsum(uni.weight[exists])
    cx = exists[np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"),
                           len(exists) - 1)]
    typ = (rng.random(n)[:, None] > uni.type_cumw[cx]).sum(axis=1)
    typ = np.minimum(typ, uni.n_types[cx] - 1)
    max_floor = uni.max_floor[cx]
    floor = 1 + (rng.random(n) * max_floor).astype(int)
    floor = np.where(rng.random(n) < _BASEMENT_RATE, -1, floor)
    day = 1 + (rng.random(n) * n_days).astype(int)
    noise = rng.normal(0.0, _NOISE_SD, n)
    outlier = rng.random(n) < _OUTLIER_RATE
    outlier_factor = rng.uniform(0.60, 0.85, n)
    direct = np.where(outlier, rng.random(n) < _OUTLIER_DIRECT_RATE, rng.random(n) < _DIRECT_RATE)
    round_u = rng.random(n)
    report_delay = np.minimum(_MAX_REPORT_DELAY, np.floor(rng.exponential(6.5, n))).astype(int)
    cancelled = rng.random(n) < _CANCEL_RATE
    cancel_after = rng.integers(5, 61, n)
    rereported = cancelled & (rng.random(n) < _REREPORT_RATE)
    rereport_after = rng.integers(1, 8, n)
    rgst_delay = np.clip(20 + rng.gamma(4.0, 15.0, n), 14, 200).astype(int)
    rgst_delay_re = np.clip(20 + rng.gamma(4.0, 15.0, n), 14, 200).astype(int)
    dong_no = rng.integers(0, 10_000, n)
    agent_u = rng.random(n)
    agent_other = rng.integers(0, 24, n)
    agent_gg = rng.integers(0, len(_GYEONGGI_AGENTS), n)
    party = rng.random((n, 2))
    malformed = rng.random(n) < _MALFORMED_RATE
    malformed_kind = rng.integers(0, 5, n)

    # --- prices
    area = uni.type_area[cx, typ]
    age = np.maximum(0.0, year + (month - 0.5) / 12.0 - (uni.build_year[cx] + 0.5))
    log_ppm = (_gu_timeline(cfg.seed, lawd)[t]
               + _PRICE_SEASON_AMPL * math.sin(2.0 * math.pi * (month - 2) / 12.0)
               + uni.offset[cx] + _area_effect(area) + _floor_effect(floor, max_floor)
               + _age_effect(age, uni.recon[cx]) + noise)
    if cfg.shock_month is not None and deal_ym >= months.parse_ym(cfg.shock_month):
        log_ppm = log_ppm + math.log1p(cfg.shock_pct / 100.0)
    value = np.exp(log_ppm) * area * np.where(outlier, outlier_factor, 1.0)
    unit = np.where(round_u < 0.10, 1, np.where((round_u < 0.35) & (value > 50_000), 500, 100))
    price = np.maximum(unit, np.round(value / unit) * unit).astype(np.int64)

    # --- dates (ordinals)
    contract = first_ord + day - 1
    report = contract + report_delay
    cancel = np.maximum(contract + cancel_after, report + 1)
    rereport = cancel + rereport_after
    rgst = contract + rgst_delay
    rgst_re = np.maximum(contract + rgst_delay_re, rereport + 1)

    # --- the month's full row set: originals, then re-reports of half the cancelled trades
    re_idx = np.flatnonzero(rereported)
    src = np.concatenate([np.arange(n), re_idx])
    is_re = np.concatenate([np.zeros(n, bool), np.ones(len(re_idx), bool)])
    published = np.concatenate([report, rereport[re_idx]])
    order = np.lexsort((is_re, src, day[src]))
    order = order[published[order] <= as_of_ord]
    if len(order) == 0:
        return None
    src, is_re = src[order], is_re[order]
    m = len(src)

    cancel_shown = ~is_re & cancelled[src] & (cancel[src] <= as_of_ord)
    rgst_day = np.where(is_re, rgst_re[src], rgst[src])
    registered = ~(~is_re & cancelled[src]) & (rgst_day <= as_of_ord)
    con = contract[src]

    dates = _date_strings()
    ints = _int_strings()
    blank = np.full(m, _BLANK, dtype=object)
    c = cx[src]
    out: dict[str, np.ndarray] = {tag: uni.text[tag][c] for tag in uni.text}
    out["sggCd"] = np.full(m, lawd, dtype=object)
    out["excluUseAr"] = uni.type_area_str[c, typ[src]]
    out["dealYear"] = np.full(m, str(year), dtype=object)
    out["dealMonth"] = np.full(m, str(month), dtype=object)
    out["dealDay"] = ints[day[src] + 1]
    out["dealAmount"] = np.array([f"{p:,}" for p in price[src].tolist()], dtype=object)
    out["floor"] = ints[floor[src] + 1]
    out["cdealType"] = np.where(cancel_shown, "O", _BLANK).astype(object)
    out["cdealDay"] = np.where(cancel_shown, dates[np.minimum(cancel[src], _DATE_END) - _DATE_BASE],
                               blank)
    out["rgstDate"] = np.where(registered,
                               dates[np.minimum(rgst_day, _DATE_END) - _DATE_BASE], blank)
    # 동: published only after registration, for contracts >= 2023-01-01
    dong = 101 + dong_no[src] % uni.n_dong[c]
    style = uni.dong_style[c]
    dong_txt = np.where(style == 0, ints[dong + 1],
                        np.where(style == 1, ints[dong - 100 + 1], blank))
    dong_txt = np.array([f"제{d}동" if s == 2 else x for d, s, x in zip(dong, style, dong_txt,
                                                                        strict=True)],
                        dtype=object) if (style == 2).any() else dong_txt
    out["aptDong"] = np.where(registered & (con >= _APTDONG_FROM), dong_txt, blank)
    # 거래유형 / 중개사소재지: contracts >= 2021-11-01
    gu_name = _gu_names()[lawd]
    others = [f"서울 {name}" for code, name in _gu_names().items() if code != lawd]
    own = f"서울 {gu_name}"
    au, ao, ag = agent_u[src], agent_other[src], agent_gg[src]
    agent = np.where(au < 0.75, own, np.where(au < 0.92, np.array(others, dtype=object)[ao],
                     np.where(au < 0.97, np.array([f"{own}, {o}" for o in others],
                                                  dtype=object)[ao],
                              np.array(_GYEONGGI_AGENTS, dtype=object)[ag])))
    dealing_shown = con >= _DEALING_FROM
    is_direct = direct[src]
    out["dealingGbn"] = np.where(dealing_shown, np.where(is_direct, "직거래", "중개거래"),
                                 _BLANK).astype(object)
    out["estateAgentSggNm"] = np.where(dealing_shown & ~is_direct, agent, blank)
    # 매도자 / 매수자: contracts >= 2024-01-01
    party_shown = con >= _PARTY_FROM
    for col, tag in ((0, "slerGbn"), (1, "buyerGbn")):
        u = party[src, col]
        kind = np.where(u < 0.985, "개인", np.where(u < 0.995, "법인",
                                                   np.where(u < 0.998, "기타", "공공기관")))
        out[tag] = np.where(party_shown, kind, _BLANK).astype(object)
    out["landLeaseholdGbn"] = np.full(m, "N", dtype=object)

    # --- malformed rows (a tiny share, for the cleaner's quarantine)
    bad = np.flatnonzero(malformed[src])
    for i in bad:
        kind = malformed_kind[src[i]]
        if kind == 0:
            out["dealAmount"][i] = _BLANK
        elif kind == 1:
            out["dealAmount"][i] = "0"
        elif kind == 2:
            out["excluUseAr"][i] = _BLANK
        else:
            out["dealDay"][i] = "0" if kind == 3 else "32"

    out["lawd_cd"] = np.full(m, lawd, dtype=object)
    out["source"] = np.full(m, SOURCE_NAME, dtype=object)
    return out


# --------------------------------------------------------------------------- public API


def _check(deal_ym: int, as_of: dt.date, regions: Sequence[str],
           cfg: SyntheticConfig) -> list[str]:
    if months.parse_ym(deal_ym) != deal_ym or not FIRST_MONTH <= deal_ym <= LAST_MONTH:
        raise ValueError(f"synthetic: deal_ym must be a YYYYMM int in "
                         f"{FIRST_MONTH}..{LAST_MONTH}, got {deal_ym!r}")
    if not isinstance(as_of, dt.date):
        raise TypeError(f"synthetic: as_of must be a datetime.date, got {type(as_of).__name__}")
    if as_of.toordinal() > _DATE_END:
        raise ValueError(f"synthetic: as_of must be <= {dt.date.fromordinal(_DATE_END)}")
    if cfg.shock_month is not None:
        months.parse_ym(cfg.shock_month)
    if not cfg.shock_pct > -100.0:
        raise ValueError(f"synthetic: shock_pct must be > -100, got {cfg.shock_pct}")
    if not cfg.trades_per_gu_month >= 0.0:
        raise ValueError("synthetic: trades_per_gu_month must be >= 0")
    if not 1 <= cfg.complexes_per_gu <= 5000:
        raise ValueError("synthetic: complexes_per_gu must be in 1..5000")
    codes = [regions] if isinstance(regions, str) else list(regions)
    unknown = [c for c in codes if c not in _GU_PROFILE]
    if unknown:
        raise ValueError(f"synthetic: only the 25 Seoul district codes are simulated; "
                         f"unsupported code(s) {unknown}")
    if len(set(codes)) != len(codes):
        raise ValueError(f"synthetic: duplicate district codes in {codes}")
    return codes


def fetch_month(deal_ym: int, as_of: dt.date, regions: Sequence[str],
                cfg: SyntheticConfig) -> pd.DataFrame:
    """The raw items the MOLIT Dev API would return on `as_of` for contract month `deal_ym`.

    Args:
        deal_ym: contract month YYYYMM, 200601..203012.
        as_of: the day of the (simulated) API call; rows reported after it are absent, and
            cancellation flags, `rgstDate` and `aptDong` appear only once they happened by then.
        regions: 5-digit Seoul district codes (a bare string is taken as one code); rows come
            district by district in this order, within a district by contract day.
        cfg: market parameters.

    Returns:
        A frame with exactly `schema.RAW_COLUMNS`, all string dtype, `source == "synthetic"`,
        `lawd_cd` = the district asked for.  Empty (with those columns) when nothing is visible.

    Raises:
        ValueError: bad month/config, a non-Seoul or duplicate district code.
    """
    codes = _check(deal_ym, as_of, regions, cfg)
    as_of_ord = as_of.toordinal()
    parts = [p for p in (_district_month(deal_ym, as_of_ord, lawd, cfg) for lawd in codes)
             if p is not None]
    if not parts:
        log.debug("synthetic %s as of %s: no rows", deal_ym, as_of)
        return schema.empty_raw()
    columns = {col: np.concatenate([p[col] for p in parts]) for col in schema.RAW_COLUMNS}
    frame = schema.conform_raw(pd.DataFrame(columns))
    log.debug("synthetic %s as of %s: %d rows for %d district(s)", deal_ym, as_of, len(frame),
              len(codes))
    return frame
