"""Clean stage: raw item strings -> typed canonical trade records.

Pure: a raw frame in, a `CleanResult` out.  Every raw row ends in exactly one of three places:
the clean table (valid, not cancelled), the quarantine table (invalid, with a reason), or the
cancelled count (valid but flagged `cdealType = "O"`: excluded from modelling).

Conventions (documented in the README):
* day buckets of old data (`"1~10"`, `"11~20"`, `"21~31"`) become the bucket's middle day
  (5, 15, 25) with `deal_day_bucketed = True`;
* `YY.MM.DD` dates are read as 20YY;
* `complex_key` is `aptSeq` when the source has it, else `lawd_cd|umd_nm|jibun|apt_nm`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aptpipe import schema
from aptpipe.config import district_table

log = logging.getLogger(__name__)

MAX_AREA_M2 = 400.0
PPM2_RANGE = (20.0, 40_000.0)  # plausible 만원 per m² (0.2M .. 400M KRW)
BUCKET_DAY = {"1~10": 5, "11~20": 15}


@dataclass(frozen=True)
class CleanResult:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    n_raw: int
    n_clean: int
    n_quarantined: int
    n_cancelled: int

    def counts(self) -> dict[str, int]:
        return {"raw": self.n_raw, "clean": self.n_clean, "quarantined": self.n_quarantined,
                "cancelled": self.n_cancelled}


def _text(series: pd.Series) -> pd.Series:
    """Stripped strings, with blank -> NA."""
    out = series.astype("string").str.strip()
    return out.mask(out == "")


def _number(series: pd.Series) -> pd.Series:
    text = _text(series).str.replace(",", "", regex=False).str.replace(" ", "", regex=False)
    return pd.to_numeric(text, errors="coerce")


def _yymmdd(series: pd.Series) -> pd.Series:
    text = _text(series)
    return pd.to_datetime("20" + text, format="%Y.%m.%d", errors="coerce").astype("datetime64[s]")


def _deal_day(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = _text(series)
    bucketed = text.str.contains("~", regex=False).fillna(False).astype(bool)
    start = text.str.split("~").str[0]
    mapped = text.map(BUCKET_DAY, na_action="ignore")
    # any other bucket (21~28/29/30/31) is the last one: day 25
    day = pd.to_numeric(start.where(~bucketed), errors="coerce")
    day = day.where(~bucketed, pd.to_numeric(mapped, errors="coerce").fillna(25))
    return day, bucketed


def complex_key(lawd_cd: pd.Series, umd_nm: pd.Series, jibun: pd.Series, apt_nm: pd.Series,
                apt_seq: pd.Series) -> pd.Series:
    """`aptSeq` when known, else `lawd_cd|umd_nm|jibun|apt_nm` (missing parts empty)."""
    fallback = (lawd_cd.fillna("") + "|" + umd_nm.fillna("") + "|" + jibun.fillna("") + "|"
                + apt_nm.fillna(""))
    return apt_seq.fillna(fallback)


def clean_month(raw: pd.DataFrame, deal_ym: int) -> CleanResult:
    """Type, validate and split one contract month of raw rows."""
    raw = schema.conform_raw(raw)
    n = len(raw)
    price = _number(raw["dealAmount"])
    area = _number(raw["excluUseAr"])
    year = _number(raw["dealYear"])
    month = _number(raw["dealMonth"])
    day, bucketed = _deal_day(raw["dealDay"])
    lawd = _text(raw["sggCd"]).fillna(_text(raw["lawd_cd"]))
    apt_nm = _text(raw["aptNm"])
    deal_date = pd.to_datetime(
        pd.DataFrame({"year": year, "month": month, "day": day}), errors="coerce")
    ppm2 = price / area

    reason = pd.Series(pd.NA, index=raw.index, dtype="string")
    checks = [
        ("missing district code", lawd.isna() | ~lawd.fillna("").str.fullmatch(r"\d{5}")),
        ("missing complex name", apt_nm.isna()),
        ("invalid price", price.isna() | (price <= 0)),
        ("invalid area", area.isna() | (area <= 0) | (area > MAX_AREA_M2)),
        ("invalid contract date", deal_date.isna()),
        ("contract month differs from partition", (year * 100 + month) != deal_ym),
        ("implausible price per m2", (ppm2 < PPM2_RANGE[0]) | (ppm2 > PPM2_RANGE[1])),
    ]
    for label, bad in checks:
        bad = bad.fillna(True).astype(bool)
        reason = reason.mask(reason.isna() & bad, label)
    invalid = reason.notna()
    cancelled = ~invalid & (_text(raw["cdealType"]).fillna("").str.upper() == "O")
    keep = ~invalid & ~cancelled

    districts = district_table().set_index("lawd_cd")
    k = keep.to_numpy()
    lawd_k = lawd[k].astype("string")
    apt_seq = _text(raw["aptSeq"])[k]
    umd = _text(raw["umdNm"])[k]
    jibun = _text(raw["jibun"])[k]
    build_year = _number(raw["buildYear"])[k]
    clean = pd.DataFrame({
        "lawd_cd": lawd_k,
        "sido": lawd_k.map(districts["sido_nm"]).astype("string"),
        "sigungu": lawd_k.map(districts["sigungu_nm"]).astype("string"),
        "umd_nm": umd,
        "jibun": jibun,
        "apt_seq": apt_seq,
        "apt_nm": apt_nm[k],
        "complex_key": complex_key(lawd_k, umd, jibun, apt_nm[k], apt_seq),
        "area_m2": area[k].astype("float64"),
        "floor": _number(raw["floor"])[k].round().astype("Int64"),
        "build_year": build_year.where(build_year > 1900).round().astype("Int64"),
        "deal_date": deal_date[k].astype("datetime64[s]"),
        "deal_day_bucketed": bucketed[k],
        "deal_ym": np.full(int(k.sum()), deal_ym, dtype="int64"),
        "price_manwon": price[k].round().astype("int64"),
        "is_cancelled": np.zeros(int(k.sum()), dtype=bool),
        "cancel_date": _yymmdd(raw["cdealDay"])[k],
        "dealing_type": _text(raw["dealingGbn"])[k],
        "registered_date": _yymmdd(raw["rgstDate"])[k],
        "source": _text(raw["source"])[k],
    }).reset_index(drop=True)
    clean = clean.astype(schema.CANONICAL_DTYPES)

    quarantine = raw[invalid.to_numpy()].copy()
    quarantine["reason"] = reason[invalid]
    quarantine = quarantine.reset_index(drop=True)

    result = CleanResult(clean, quarantine, n, len(clean), len(quarantine), int(cancelled.sum()))
    log.info("clean %s: %s", deal_ym, result.counts())
    if len(quarantine):
        log.info("quarantine %s reasons: %s", deal_ym,
                 quarantine["reason"].value_counts().to_dict())
    return result
