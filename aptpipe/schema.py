"""Column contracts: the raw MOLIT item schema, tag maps, and the canonical trade record.

Raw partitions keep every field as a string, exactly as the source gave it (after at most a
`strip()`), under the new API's English tag names.  Every source (synthetic market, MOLIT API,
bulk exports) produces frames with `RAW_COLUMNS`; `clean.py` is the one place that types them.
"""
from __future__ import annotations

import pandas as pd

# New API item tags: the 20 general fields, then the Dev API's extra 12.
GENERAL_TAGS: tuple[str, ...] = (
    "sggCd", "umdNm", "aptNm", "jibun", "excluUseAr", "dealYear", "dealMonth", "dealDay",
    "dealAmount", "floor", "buildYear", "cdealType", "cdealDay", "dealingGbn",
    "estateAgentSggNm", "rgstDate", "aptDong", "slerGbn", "buyerGbn", "landLeaseholdGbn",
)
DEV_EXTRA_TAGS: tuple[str, ...] = (
    "umdCd", "landCd", "bonbun", "bubun", "roadNm", "roadNmSggCd", "roadNmCd", "roadNmSeq",
    "roadNmbCd", "roadNmBonbun", "roadNmBubun", "aptSeq",
)
ITEM_TAGS: tuple[str, ...] = GENERAL_TAGS + DEV_EXTRA_TAGS

# Lineage columns every source adds: the district asked for and the source's name.
LINEAGE_COLUMNS: tuple[str, ...] = ("lawd_cd", "source")

RAW_COLUMNS: tuple[str, ...] = ITEM_TAGS + LINEAGE_COLUMNS

# Old (pre-2024) API Korean tags -> new English tags (molit_api.md §4.3).
KOREAN_TAGS: dict[str, str] = {
    "거래금액": "dealAmount", "건축년도": "buildYear", "년": "dealYear", "월": "dealMonth",
    "일": "dealDay", "법정동": "umdNm", "아파트": "aptNm", "전용면적": "excluUseAr",
    "지번": "jibun", "지역코드": "sggCd", "층": "floor", "해제여부": "cdealType",
    "해제사유발생일": "cdealDay", "거래유형": "dealingGbn", "중개사소재지": "estateAgentSggNm",
    "등기일자": "rgstDate", "동": "aptDong", "매도자": "slerGbn", "매수자": "buyerGbn",
    "토지임대부 아파트 여부": "landLeaseholdGbn", "법정동시군구코드": "sggCd",
    "법정동읍면동코드": "umdCd", "법정동지번코드": "landCd", "법정동본번코드": "bonbun",
    "법정동부번코드": "bubun", "도로명": "roadNm", "도로명시군구코드": "roadNmSggCd",
    "도로명코드": "roadNmCd", "도로명일련번호코드": "roadNmSeq", "도로명지상지하코드": "roadNmbCd",
    "도로명건물본번호코드": "roadNmBonbun", "도로명건물부번호코드": "roadNmBubun",
    "일련번호": "aptSeq",
}

# The canonical, typed trade record produced by clean.py (DESIGN.md §6).
CANONICAL_DTYPES: dict[str, str] = {
    "lawd_cd": "string",
    "sido": "string",
    "sigungu": "string",
    "umd_nm": "string",
    "jibun": "string",
    "apt_seq": "string",
    "apt_nm": "string",
    "complex_key": "string",
    "area_m2": "float64",
    "floor": "Int64",
    "build_year": "Int64",
    "deal_date": "datetime64[s]",
    "deal_day_bucketed": "bool",
    "deal_ym": "int64",
    "price_manwon": "int64",
    "is_cancelled": "bool",
    "cancel_date": "datetime64[s]",
    "dealing_type": "string",
    "registered_date": "datetime64[s]",
    "source": "string",
}
CANONICAL_COLUMNS: tuple[str, ...] = tuple(CANONICAL_DTYPES)

QUARANTINE_COLUMNS: tuple[str, ...] = RAW_COLUMNS + ("reason",)


def empty_raw() -> pd.DataFrame:
    """A raw frame with no rows and every raw column as a string column."""
    return pd.DataFrame({c: pd.Series([], dtype="string") for c in RAW_COLUMNS})


def conform_raw(df: pd.DataFrame) -> pd.DataFrame:
    """Return `df` with exactly `RAW_COLUMNS` (missing ones added as null), all as strings."""
    missing = pd.array([pd.NA] * len(df), dtype="string")
    return pd.DataFrame({
        col: (df[col].astype("string").array if col in df.columns else missing)
        for col in RAW_COLUMNS})
