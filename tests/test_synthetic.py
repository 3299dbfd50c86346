"""Tests of the synthetic MOLIT-like market (aptpipe/sources/synthetic.py)."""
from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from aptpipe import months, schema
from aptpipe.sources import synthetic
from aptpipe.sources.synthetic import SyntheticConfig, fetch_month

SEOUL = [
    "11110", "11140", "11170", "11200", "11215", "11230", "11260", "11290", "11305", "11320",
    "11350", "11380", "11410", "11440", "11470", "11500", "11530", "11545", "11560", "11590",
    "11620", "11650", "11680", "11710", "11740",
]
GANGNAM, DOBONG = "11680", "11320"
CFG = SyntheticConfig()
MONTH = 202406
LATE = months.last_day(MONTH) + dt.timedelta(days=200)
KEY = ["lawd_cd", "aptSeq", "excluUseAr", "floor", "dealDay", "dealAmount"]


def _well_formed(df: pd.DataFrame) -> pd.DataFrame:
    amount = df["dealAmount"].str.replace(",", "", regex=False)
    ok = (amount.str.fullmatch(r"\d+") & (amount != "0") & (df["excluUseAr"] != " ")
          & ~df["dealDay"].isin(["0", "32"]))
    return df[ok.fillna(False).astype(bool)]


def _ppm(df: pd.DataFrame) -> pd.Series:
    return (df["dealAmount"].str.replace(",", "", regex=False).astype(float)
            / df["excluUseAr"].astype(float))


def _keys(df: pd.DataFrame) -> Counter:
    return Counter(map(tuple, df[KEY].itertuples(index=False, name=None)))


@pytest.fixture(scope="module")
def late() -> pd.DataFrame:
    """All Seoul, 2024-06, as of 200 days after the month end (settled)."""
    return fetch_month(MONTH, LATE, SEOUL, CFG)


def test_deterministic_frame_and_parquet_bytes() -> None:
    a = fetch_month(MONTH, dt.date(2024, 8, 1), [GANGNAM, DOBONG], CFG)
    b = fetch_month(MONTH, dt.date(2024, 8, 1), [GANGNAM, DOBONG], CFG)
    pd.testing.assert_frame_equal(a, b)
    buf_a, buf_b = io.BytesIO(), io.BytesIO()
    a.to_parquet(buf_a, index=False)
    b.to_parquet(buf_b, index=False)
    assert buf_a.getvalue() == buf_b.getvalue()
    # a district's rows do not depend on which other districts are asked for
    alone = fetch_month(MONTH, dt.date(2024, 8, 1), [DOBONG], CFG)
    pd.testing.assert_frame_equal(alone, a[a["lawd_cd"] == DOBONG].reset_index(drop=True))
    other_seed = fetch_month(MONTH, dt.date(2024, 8, 1), [GANGNAM, DOBONG],
                             SyntheticConfig(seed=8))
    assert not a[KEY].equals(other_seed[KEY])


def test_columns_dtypes_and_lineage(late: pd.DataFrame) -> None:
    assert tuple(late.columns) == schema.RAW_COLUMNS
    assert all(str(t) in ("string", "str") or isinstance(t, pd.StringDtype)
               for t in late.dtypes)
    assert not late.isna().any().any()
    assert (late["source"] == "synthetic").all()
    assert (late["sggCd"] == late["lawd_cd"]).all()
    assert list(dict.fromkeys(late["lawd_cd"])) == SEOUL  # district by district, in order
    # no empty strings anywhere: blanks are a single space, like the API
    assert not (late == "").any().any()
    assert 2_500 < len(late) < 15_000


def test_value_formats(late: pd.DataFrame) -> None:
    good = _well_formed(late)
    assert good["dealAmount"].str.fullmatch(r"[1-9]\d{0,2}(,\d{3})*").all()
    assert good["dealAmount"].str.contains(",", regex=False).mean() > 0.99
    assert (late["dealYear"] == "2024").all() and (late["dealMonth"] == "6").all()
    assert good["dealDay"].str.fullmatch(r"[1-9]|[12]\d|30").all()
    assert good["excluUseAr"].str.fullmatch(r"\d{2,3}(\.\d{0,3}[1-9])?").all()
    assert good["excluUseAr"].str.fullmatch(r"\d+\.\d{4}").any()
    assert late["floor"].str.fullmatch(r"-1|[1-9]\d?").all()
    assert late["buildYear"].str.fullmatch(r"(19[7-9]\d|20[0-2]\d)").all()
    assert late["umdCd"].str.fullmatch(r"\d{5}").all()
    assert late["aptSeq"].str.fullmatch(r"11\d{3}-\d{1,4}").all()
    assert (late["aptSeq"].str[:5] == late["lawd_cd"]).all()
    assert late["bonbun"].str.fullmatch(r"\d{4}").all()
    assert set(late["cdealType"]) == {" ", "O"}
    date = r"\d{2}\.(0[1-9]|1[0-2])\.(0[1-9]|[12]\d|3[01])"
    assert late.loc[late["cdealType"] == "O", "cdealDay"].str.fullmatch(date).all()
    assert (late.loc[late["cdealType"] == " ", "cdealDay"] == " ").all()
    assert late["rgstDate"].str.fullmatch(date + "| ").all()
    assert set(late["dealingGbn"]) == {"중개거래", "직거래"}
    direct = late["dealingGbn"] == "직거래"
    assert (late.loc[direct, "estateAgentSggNm"] == " ").all()
    assert late.loc[~direct, "estateAgentSggNm"].str.match(r"(서울|경기) \S+").all()
    assert (late.loc[~direct & (late["lawd_cd"] == GANGNAM), "estateAgentSggNm"]
            .str.contains("서울 강남구", regex=False).mean() > 0.6)
    assert set(late["slerGbn"]) <= {"개인", "법인", "공공기관", "기타"}
    assert (late["slerGbn"] == "개인").mean() > 0.95
    assert (late["landLeaseholdGbn"] == "N").all()


def test_umd_codes_are_real_seoul_legal_dongs(late: pd.DataFrame) -> None:
    umd = pd.read_csv(io.StringIO(
        (synthetic.importlib.resources.files("aptpipe.data") / "seoul_umd.csv")
        .read_text(encoding="utf-8")), dtype=str, comment="#")
    assert len(umd) == 467 and set(umd["lawd_cd"]) == set(SEOUL)
    known = set(zip(umd["lawd_cd"], umd["umd_cd"], umd["umd_nm"], strict=True))
    seen = set(zip(late["lawd_cd"], late["umdCd"], late["umdNm"], strict=True))
    assert seen <= known
    assert ("11680", "10600", "대치동") in known


def test_reporting_delay_gives_growing_subsets() -> None:
    regions = [GANGNAM, DOBONG, "11440"]
    before = fetch_month(MONTH, dt.date(2024, 5, 31), regions, CFG)
    assert len(before) == 0 and tuple(before.columns) == schema.RAW_COLUMNS
    mid = fetch_month(MONTH, dt.date(2024, 6, 15), regions, CFG)
    end = fetch_month(MONTH, dt.date(2024, 7, 1), regions, CFG)
    settled = fetch_month(MONTH, months.last_day(MONTH) + dt.timedelta(days=60), regions, CFG)
    final = fetch_month(MONTH, LATE, regions, CFG)
    assert 0 < len(mid) < len(end) < len(settled) <= len(final)
    assert mid["dealDay"].astype(int).max() <= 15
    # every row seen earlier is still there later (by surrogate identity, with multiplicity)
    assert not _keys(mid) - _keys(end)
    assert not _keys(end) - _keys(settled)
    assert not _keys(settled) - _keys(final)
    # contracts of the first half are far from complete by mid-month
    first_half = _keys(settled[settled["dealDay"].astype(int) <= 15])
    assert sum(_keys(mid).values()) < 0.8 * sum(first_half.values())
    # 35 days after the month end the month is complete apart from re-reports
    d35 = fetch_month(MONTH, months.last_day(MONTH) + dt.timedelta(days=35), regions, CFG)
    assert len(d35) >= 0.97 * len(final)


def test_cancellations_and_re_reports(late: pd.DataFrame) -> None:
    cancelled = late[late["cdealType"] == "O"]
    assert 0.03 < len(cancelled) / len(late) < 0.07
    cancel_day = pd.to_datetime("20" + cancelled["cdealDay"], format="%Y.%m.%d")
    contract = pd.to_datetime(dict(year=2024, month=6, day=cancelled["dealDay"].astype(int)),
                              errors="coerce")
    gap = (cancel_day - contract).dt.days.dropna()
    assert gap.min() >= 5 and gap.max() <= 70
    # about half of the cancelled trades come back as an identical, uncancelled row
    valid_keys = _keys(late[late["cdealType"] == " "])
    twins = sum(1 for k in map(tuple, cancelled[KEY].itertuples(index=False, name=None))
                if valid_keys[k] > 0)
    assert 0.3 < twins / len(cancelled) < 0.75
    # cancelled contracts never register
    assert (cancelled["rgstDate"] == " ").all() and (cancelled["aptDong"] == " ").all()
    # registration shows for nearly all valid rows once settled
    assert (late.loc[late["cdealType"] == " ", "rgstDate"] != " ").mean() > 0.95


def test_late_fields_absent_early() -> None:
    early = fetch_month(MONTH, dt.date(2024, 6, 5), SEOUL, CFG)
    assert len(early) > 100
    assert (early["cdealType"] == " ").all() and (early["cdealDay"] == " ").all()
    assert (early["rgstDate"] == " ").all() and (early["aptDong"] == " ").all()
    later = fetch_month(MONTH, dt.date(2024, 7, 20), SEOUL, CFG)
    flagged = later[later["cdealType"] == "O"]
    assert len(flagged) > 0
    assert (pd.to_datetime("20" + flagged["cdealDay"], format="%Y.%m.%d")
            <= pd.Timestamp("2024-07-20")).all()
    assert 0 < (later["rgstDate"] != " ").mean() < 0.5


def test_fields_blank_before_disclosure_period() -> None:
    old = fetch_month(201506, dt.date(2016, 6, 1), [GANGNAM, DOBONG], CFG)
    assert len(old) > 100
    for tag in ("dealingGbn", "estateAgentSggNm", "aptDong", "slerGbn", "buyerGbn"):
        assert (old[tag] == " ").all(), tag
    assert (old["rgstDate"] != " ").mean() > 0.9
    mid = fetch_month(202206, dt.date(2023, 6, 1), [GANGNAM], CFG)
    assert (mid["dealingGbn"] != " ").all() and (mid["slerGbn"] == " ").all()


def test_shock_moves_prices_by_shock_pct() -> None:
    shocked_cfg = SyntheticConfig(shock_month=MONTH, shock_pct=-15.0)
    as_of = dt.date(2024, 9, 1)
    base = fetch_month(MONTH, as_of, SEOUL, CFG)
    shocked = fetch_month(MONTH, as_of, SEOUL, shocked_cfg)
    assert len(base) == len(shocked)  # the same trades, only prices move
    ratio = _ppm(_well_formed(shocked)).median() / _ppm(_well_formed(base)).median()
    assert 0.82 < ratio < 0.88
    before = dt.date(2024, 8, 1)
    pd.testing.assert_frame_equal(fetch_month(202405, before, SEOUL, CFG),
                                  fetch_month(202405, before, SEOUL, shocked_cfg))
    with pytest.raises(ValueError):
        fetch_month(MONTH, as_of, SEOUL, SyntheticConfig(shock_pct=-100.0))


def test_district_price_levels(late: pd.DataFrame) -> None:
    good = _well_formed(late[late["cdealType"] == " "])
    med = _ppm(good).groupby(good["lawd_cd"]).median()
    assert med[GANGNAM] > 2.0 * med[DOBONG]
    high = med[["11680", "11650", "11710", "11170"]].min()
    low = med[["11320", "11305", "11545", "11260"]].max()
    assert high > low
    assert 1_800 < med[GANGNAM] < 4_000 and 450 < med[DOBONG] < 1_100


def test_complex_effects_persist_across_years() -> None:
    frames = [fetch_month(ym, dt.date(2025, 6, 1), [GANGNAM, DOBONG], CFG)
              for ym in months.month_range(202301, 202412)]
    df = _well_formed(pd.concat(frames, ignore_index=True))
    df = df[df["cdealType"] == " "]
    lp = np.log(_ppm(df))
    stats = lp.groupby([df["aptSeq"], df["dealYear"]]).agg(["mean", "size"]).unstack()
    enough = (stats["size"] >= 8).all(axis=1)
    assert enough.sum() >= 30
    corr = np.corrcoef(stats.loc[enough, ("mean", "2023")], stats.loc[enough, ("mean", "2024")])
    assert corr[0, 1] > 0.85


def test_no_trades_before_completion_and_unit_areas() -> None:
    df = fetch_month(200801, dt.date(2008, 6, 1), SEOUL, CFG)
    assert (df["buildYear"].astype(int) <= 2008).all()
    area = _well_formed(df)["excluUseAr"].astype(float)
    assert area.between(10, 250).all()
    assert ((area >= 59) & (area < 60)).mean() > 0.1 and ((area >= 84) & (area < 85)).mean() > 0.1


def test_outliers_are_below_market_and_mostly_direct(late: pd.DataFrame) -> None:
    good = _well_formed(late[late["cdealType"] == " "]).copy()
    good["lp"] = np.log(_ppm(good))
    group = good.groupby(["aptSeq", "excluUseAr"])["lp"]
    good = good[group.transform("size") >= 5]
    gap = good["lp"] - good.groupby(["aptSeq", "excluUseAr"])["lp"].transform("median")
    direct = good["dealingGbn"] == "직거래"
    far_below = gap < -0.2
    assert 0.003 < far_below.mean() < 0.03  # ~1.5 % family transfers at 60-85 % of value
    assert direct[far_below].mean() > 0.5 > 0.1 > direct.mean()
    assert (gap > 0.2).mean() < 0.01  # noise alone rarely moves a price by 20 %


def test_malformed_rows_are_rare_but_present() -> None:
    df = pd.concat([fetch_month(ym, dt.date(2025, 6, 1), SEOUL, CFG)
                    for ym in (202401, 202402, 202403)], ignore_index=True)
    bad = ((df["dealAmount"].isin([" ", "0"])) | (df["excluUseAr"] == " ")
           | df["dealDay"].isin(["0", "32"]))
    assert 0 < bad.sum() < 0.003 * len(df)
    assert re.fullmatch(r"[\d,]+", df.loc[~bad, "dealAmount"].iloc[0])


def test_volume_is_seasonal_and_district_weighted() -> None:
    as_of = dt.date(2026, 1, 1)
    counts = {ym: len(fetch_month(ym, as_of, [GANGNAM, "11710", "11110", "11545"], CFG))
              for ym in (202401, 202403)}
    assert counts[202403] > counts[202401]
    df = fetch_month(202403, as_of, SEOUL, CFG)
    per_gu = df["lawd_cd"].value_counts()
    assert per_gu["11710"] > 2 * per_gu["11110"]  # 송파 trades far more than 종로
    assert 0.5 * 25 * CFG.trades_per_gu_month < len(df) < 2 * 25 * CFG.trades_per_gu_month


def test_invalid_arguments() -> None:
    as_of = dt.date(2024, 9, 1)
    with pytest.raises(ValueError, match="Seoul"):
        fetch_month(MONTH, as_of, ["26110"], CFG)  # 부산 중구
    with pytest.raises(ValueError):
        fetch_month(200512, as_of, SEOUL, CFG)
    with pytest.raises(ValueError):
        fetch_month(202413, as_of, SEOUL, CFG)
    with pytest.raises(ValueError):
        fetch_month(MONTH, as_of, [GANGNAM, GANGNAM], CFG)
    assert len(fetch_month(MONTH, as_of, [], CFG)) == 0
    single = fetch_month(MONTH, as_of, GANGNAM, CFG)  # a bare code is one district
    assert set(single["lawd_cd"]) == {GANGNAM}


def test_one_month_of_seoul_is_fast() -> None:
    fetch_month(202301, dt.date(2023, 6, 1), SEOUL, CFG)  # warm the per-district caches
    start = time.perf_counter()
    fetch_month(202302, dt.date(2023, 6, 1), SEOUL, CFG)
    assert time.perf_counter() - start < 1.5
