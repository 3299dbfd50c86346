"""Read MOLIT bulk exports into raw-schema frames.

`read_export(path)` turns one bulk file into a frame with exactly `schema.RAW_COLUMNS`, every value
a string (or null), `source="export"`, the trade's fields under the new API's English tags.
The layout is recognised from the header, whatever the container (CSV, gzip-compressed CSV,
parquet) and the text encoding (UTF-8 with or without BOM, or cp949):

* ``rtmolit_csv``: the current rt.molit.go.kr web export: a preamble of disclaimer and
  search-condition lines, then ``"NO","시군구","번지","본번","부번","단지명","전용면적(㎡)",
  "계약년월","계약일","거래금액(만원)",...``; ``-`` marks a missing value; the day is exact and
  zero-padded; 해제사유발생일 is ``YYYYMMDD``, 등기일자 ``YY.MM.DD``.
* ``rtdown_sheet``: the older per-시도 sheet export (one sheet per 시도 flattened into
  ``sheet_sido`` with a ``contract_ym`` column): 시군구 / 번지 / 단지명 / 전용면적(㎡) / 계약일
  (10-day bucket) / 거래금액(만원) ("38,000") / 층 / 건축년도 / 도로명.
* ``rtdown_flat``: the same columns with 계약년 / 계약월 instead of a year-month and an integer
  거래금액 (the 2007 nationwide parquet).
* ``seoul_monthly``: the modern per-month dump of the new API: 구, 시군구코드, 법정동코드, 법정동,
  지번, 단지코드 (= aptSeq), 아파트명, 동, 전용면적, 층, 건축년도, 거래금액, 계약일 (YYYY-MM-DD),
  해제여부, 해제일, 거래유형, 매수자, 매도자, 등기일.

Normalisation (the only changes made to the source's text): strip, ``-``/empty → null, commas
out of the price, year/month/exact day without zero padding (10-day buckets such as ``"21~31"``
kept verbatim), cancellation and registration dates as ``YY.MM.DD``, ``cdealType="O"`` for a
cancelled trade, a road address ``"갈현로3길 33-7"`` split into ``roadNm`` and the zero-padded
``roadNmBonbun``/``roadNmBubun`` as the Dev API gives them.

District codes: a code given by the file (시군구코드) wins when it is a known 5-digit code;
otherwise the full address ("서울특별시 강남구 개포동") is resolved to (시도, 시군구) through the
shipped code list, one look-up per distinct address.  Where several codes carry that name over
time (강원 42→51, 전북 45→52, 군위군 47720→27720, 부천 gu abolished in 2016 and re-created in 2024,
창원/마산 before and after 2010, 부산직할시→광역시…) the code valid on the contract date is taken.
A row whose district cannot be resolved keeps null ``sggCd``/``lawd_cd`` and its whole address in
``umdNm`` so the cleaner can quarantine it with a readable reason; such rows are counted and
logged.
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aptpipe import schema

logger = logging.getLogger(__name__)

SOURCE: Final = "export"
CODE_LIST_RESOURCE: Final = "lawd_cd_sigungu_nationwide.csv"

# How many leading lines of a CSV may precede the header (the rt.molit preamble is ~15 lines).
_MAX_PREAMBLE_LINES: Final = 100
_NULL_TOKENS: Final = ("", "-")
_UNKNOWN_DAY: Final = np.iinfo(np.int64).max // 4  # "latest": a date after every code's start
_OPEN_END: Final = np.iinfo(np.int64).max // 2
_OPEN_START: Final = np.iinfo(np.int64).min // 2


# --------------------------------------------------------------------------------------------
# layouts
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    name: str
    required: frozenset[str]


_LAYOUTS: Final[tuple[_Layout, ...]] = (
    _Layout("rtmolit_csv", frozenset({"시군구", "단지명", "계약년월", "계약일", "거래금액(만원)"})),
    _Layout("rtdown_sheet",
            frozenset({"시군구", "단지명", "contract_ym", "계약일", "거래금액(만원)"})),
    _Layout("rtdown_flat", frozenset({"시군구", "단지명", "계약년", "계약월", "계약일"})),
    _Layout("seoul_monthly", frozenset({"시군구코드", "법정동", "아파트명", "계약일", "거래금액"})),
)

# Source columns for each raw field, first present wins.
_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "address": ("시군구",),
    "sido_hint": ("sheet_sido",),
    "gu_name": ("구",),
    "explicit_code": ("시군구코드", "지역코드", "법정동시군구코드"),
    "umdNm": ("법정동",),
    "umdCd": ("법정동코드", "법정동읍면동코드"),
    "jibun": ("번지", "지번"),
    "bonbun": ("본번",),
    "bubun": ("부번",),
    "aptNm": ("단지명", "아파트명", "아파트"),
    "aptSeq": ("단지코드", "일련번호", "단지일련번호"),
    "excluUseAr": ("전용면적(㎡)", "전용면적"),
    "ym": ("계약년월", "contract_ym"),
    "year": ("계약년",),
    "month": ("계약월",),
    "day": ("계약일",),
    "dealAmount": ("거래금액(만원)", "거래금액"),
    "floor": ("층",),
    "buildYear": ("건축년도",),
    "roadNm": ("도로명",),
    "aptDong": ("동",),
    "buyerGbn": ("매수자",),
    "slerGbn": ("매도자",),
    "cdealType": ("해제여부",),
    "cdealDay": ("해제사유발생일", "해제일"),
    "dealingGbn": ("거래유형",),
    "estateAgentSggNm": ("중개사소재지",),
    "rgstDate": ("등기일자", "등기일"),
}

# Raw fields copied after strip/null normalisation only.
_VERBATIM_FIELDS: Final = (
    "jibun", "bonbun", "bubun", "aptNm", "aptSeq", "excluUseAr", "aptDong", "buyerGbn",
    "slerGbn", "dealingGbn", "estateAgentSggNm",
)
_INT_FIELDS: Final = ("floor", "buildYear")


def _detect_layout(columns: Iterable[str]) -> _Layout | None:
    present = {str(c).strip() for c in columns}
    for layout in _LAYOUTS:
        if layout.required <= present:
            return layout
    return None


# --------------------------------------------------------------------------------------------
# loading (container, encoding, preamble)
# --------------------------------------------------------------------------------------------
def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp949")


def _load_csv(path: Path, data: bytes) -> tuple[pd.DataFrame, _Layout]:
    text = _decode(data)
    offset = 0
    widest: list[str] = []
    for lineno, line in enumerate(io.StringIO(text, newline="")):
        if lineno >= _MAX_PREAMBLE_LINES:
            break
        cells = next(csv.reader([line]), [])
        layout = _detect_layout(cells)
        if layout is not None:
            if lineno:
                logger.debug("%s: skipped %d preamble lines", path.name, lineno)
            frame = pd.read_csv(io.StringIO(text[offset:]), dtype=str, keep_default_na=False,
                                na_filter=False)
            frame.columns = [str(c).strip() for c in frame.columns]
            return frame, layout
        if len(cells) > len(widest):
            widest = [c.strip() for c in cells]
        offset += len(line)
    raise ValueError(f"{path}: unrecognised export layout; columns found: {widest}")


def _parquet_to_text(table: pa.Table) -> pd.DataFrame:
    """Every column as text, cast by Arrow (fast; ``84.0`` → ``"84"``, dates → ``YYYY-MM-DD``)."""
    out: dict[str, pd.Series] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_date(col.type):
            col = pc.cast(col, pa.timestamp("s"))
        if pa.types.is_timestamp(col.type):
            text = pc.strftime(col, format="%Y-%m-%d")
        else:
            text = pc.cast(col, pa.string())
        out[str(name).strip()] = pd.Series(pd.arrays.ArrowStringArray(text), dtype="string")
    return pd.DataFrame(out)


def _load(path: Path) -> tuple[pd.DataFrame, _Layout]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:4] == b"PAR1":
        table = pq.read_table(pa.BufferReader(data))
        layout = _detect_layout(table.column_names)
        if layout is None:
            raise ValueError(
                f"{path}: unrecognised export layout; columns found: {table.column_names}")
        return _parquet_to_text(table), layout
    return _load_csv(path, data)


# --------------------------------------------------------------------------------------------
# value normalisation (vectorised, string in → string out)
# --------------------------------------------------------------------------------------------
def _by_unique(fn: Callable[[pd.Series], pd.Series], s: pd.Series) -> pd.Series:
    """``fn`` applied to the distinct values of ``s`` only, spread back to every row.

    Bulk files repeat few distinct values per column (day buckets, dates, roads), so the
    per-element regex work runs on thousands of values instead of hundreds of thousands of rows.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    mapped = fn(pd.Series(uniques, dtype="string")).astype("string").array
    taken = mapped.take(codes, allow_fill=True)
    return pd.Series(taken, index=s.index, dtype="string")


def _clean(s: pd.Series) -> pd.Series:
    """Strip; empty and ``-`` → null; result is a nullable string Series."""
    out = s.astype("string").str.strip()
    return out.mask(out.isin(_NULL_TOKENS))


_FULL_DATE: Final = r"^(\d{4})[-./]?(\d{1,2})[-./]?(\d{1,2})(?:\D.*)?$"


def _int_text_u(s: pd.Series) -> pd.Series:
    m = s.str.fullmatch(r"[+-]?\d+(?:\.0*)?").fillna(False).astype(bool)
    if not m.any():
        return s
    nums = pd.to_numeric(s.where(m).str.replace(r"\.0*$", "", regex=True), errors="coerce")
    return s.where(~m, nums.astype("Int64").astype("string"))


def _int_text(s: pd.Series) -> pd.Series:
    """``"05"``→``"5"``, ``"3.0"``→``"3"``, ``"-1"`` kept; anything else non-integral verbatim."""
    return _by_unique(_int_text_u, s)


def _yymmdd_u(s: pd.Series) -> pd.Series:
    out = s.copy()
    long = s.str.extract(_FULL_DATE)
    short = s.str.extract(r"^(\d{2})\.(\d{1,2})\.(\d{1,2})$")
    for parts, yy in ((long, long[0].str[2:]), (short, short[0])):
        ok = parts[0].notna()
        if ok.any():
            text = yy + "." + parts[1].str.zfill(2) + "." + parts[2].str.zfill(2)
            out = out.where(~ok, text)
    return out


def _yymmdd(s: pd.Series) -> pd.Series:
    """Dates as ``YY.MM.DD`` (the API's form) from ``YYYYMMDD``/``YYYY-MM-DD``/``YY.MM.DD``."""
    return _by_unique(_yymmdd_u, s)


def _date_part(s: pd.Series, part: int) -> pd.Series:
    """Year (0), month (1) or day (2) of full dates (``YYYY-MM-DD``, ``YYYYMMDD``), else null."""
    return _by_unique(lambda u: u.str.extract(_FULL_DATE)[part], s)


_ROAD_NO: Final = r"^(?P<road>.*\S)\s+(?P<bon>\d+)(?:-(?P<bu>\d+))?$"


def _road_u(s: pd.Series) -> pd.Series:
    return s.str.extract(_ROAD_NO)["road"].fillna(s)


def _road_bonbun_u(s: pd.Series) -> pd.Series:
    return s.str.extract(_ROAD_NO)["bon"].str.zfill(5)


def _road_bubun_u(s: pd.Series) -> pd.Series:
    parts = s.str.extract(_ROAD_NO)
    return parts["bu"].fillna("0").str.zfill(5).where(parts["road"].notna())


def _split_road(s: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """``"갈현로3길 33-7"`` → (``"갈현로3길"``, ``"00033"``, ``"00007"``); plain names unchanged."""
    return (_by_unique(_road_u, s), _by_unique(_road_bonbun_u, s),
            _by_unique(_road_bubun_u, s))


def _numbers(s: pd.Series) -> np.ndarray:
    """Leading integer of each value as float (NaN when none), parsed once per distinct value."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    lead = pd.Series(uniques, dtype="string").str.extract(r"^\s*([+-]?\d+)")[0]
    values: np.ndarray = pd.to_numeric(lead, errors="coerce").to_numpy(dtype="float64",
                                                                        na_value=np.nan)
    result: np.ndarray = np.append(values, np.nan)[codes]  # code -1 (null) → the NaN at the end
    return result


# --------------------------------------------------------------------------------------------
# district codes
# --------------------------------------------------------------------------------------------
_SIDO_KEYS: Final[dict[str, str]] = {
    "서울특별시": "서울", "서울시": "서울", "서울": "서울",
    "부산광역시": "부산", "부산직할시": "부산", "부산시": "부산", "부산": "부산",
    "대구광역시": "대구", "대구직할시": "대구", "대구시": "대구", "대구": "대구",
    "인천광역시": "인천", "인천직할시": "인천", "인천시": "인천", "인천": "인천",
    "광주광역시": "광주", "광주직할시": "광주", "광주": "광주",
    "대전광역시": "대전", "대전직할시": "대전", "대전시": "대전", "대전": "대전",
    "울산광역시": "울산", "울산시": "울산", "울산": "울산",
    "세종특별자치시": "세종", "세종시": "세종", "세종": "세종",
    "경기도": "경기", "경기": "경기",
    "강원도": "강원", "강원특별자치도": "강원", "강원": "강원",
    "충청북도": "충북", "충북": "충북",
    "충청남도": "충남", "충남": "충남",
    "전라북도": "전북", "전북특별자치도": "전북", "전북": "전북",
    "전라남도": "전남", "전남": "전남",
    "경상북도": "경북", "경북": "경북",
    "경상남도": "경남", "경남": "경남",
    "제주도": "제주", "제주특별자치도": "제주", "제주": "제주",
}


def _sido_key(name: str) -> str:
    name = name.strip()
    return _SIDO_KEYS.get(name, name)


@dataclass(frozen=True)
class _Code:
    code: str
    valid_from: int  # days since 1970-01-01, inclusive
    valid_to: int    # days since 1970-01-01, exclusive


@dataclass(frozen=True)
class _DistrictIndex:
    by_name: dict[tuple[str, str], tuple[_Code, ...]]   # (sido key, 시군구 name) → codes
    sidos_by_name: dict[str, frozenset[str]]             # 시군구 name → sido keys carrying it
    sido_of_prefix: dict[str, str]                       # "11" → "서울"
    sido_keys: frozenset[str]
    codes: frozenset[str]


def _day_number(text: str | None) -> int | None:
    if not text:
        return None
    digits = re.sub(r"\D", "", text)
    if len(digits) != 8:
        return None
    try:
        day = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return (day - dt.date(1970, 1, 1)).days


def _norm_name(name: object) -> str:
    return " ".join(str(name).split()) if isinstance(name, str) else ""


@dataclass
class _ListRow:
    sido: str
    name: str
    valid_from: int
    valid_to: int
    prev: str

    def entry(self, code: str) -> _Code:
        return _Code(code, self.valid_from, self.valid_to)


@lru_cache(maxsize=1)
def _district_index() -> _DistrictIndex:
    """The shipped code list as (시도, 시군구 name) → codes with validity intervals (cached)."""
    with resources.files("aptpipe.data").joinpath(CODE_LIST_RESOURCE).open(
            encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype=str, keep_default_na=False)
    rows: dict[str, _ListRow] = {}
    for rec in table.to_dict("records"):
        start = _day_number(str(rec["created_mois"])) or _day_number(str(rec["created_molit"]))
        end = _day_number(str(rec["abolished_mois"]))
        prev = str(rec["prev_code_molit"]).strip()
        rows[str(rec["lawd_cd"]).strip()] = _ListRow(
            sido=_sido_key(str(rec["sido_nm"])),
            name=_norm_name(rec["sigungu_nm"]),
            valid_from=_OPEN_START if start is None else start,
            valid_to=_OPEN_END if end is None else end,
            prev=prev[:5] if len(prev) == 10 and prev.endswith("00000") else "",
        )
    # A code replaced 1:1 by a new code of the same 시군구 name (강원 42→51, 전북 45→52, 군위군
    # 47→27, 제주도→제주특별자치도, 직할시→광역시) stops being valid when its successor starts;
    # the list gives no 말소 date for the 2023/2024 changes.
    links: list[tuple[str, str]] = []
    for code, row in rows.items():
        old = rows.get(row.prev)
        if old is not None and row.prev != code and old.name == row.name:
            links.append((row.prev, code))
            if row.valid_from != _OPEN_START:
                old.valid_to = min(old.valid_to, row.valid_from)
    groups: dict[tuple[str, str], dict[str, _Code]] = {}
    for code, row in rows.items():
        groups.setdefault((row.sido, row.name), {})[code] = row.entry(code)
    # ...and is found under either code's 시도 (군위군 moved from 경북 to 대구).
    for old_code, new_code in links:
        old, new = rows[old_code], rows[new_code]
        groups[(old.sido, old.name)][new_code] = new.entry(new_code)
        groups[(new.sido, new.name)][old_code] = old.entry(old_code)
    by_name = {key: tuple(sorted(v.values(), key=lambda c: c.valid_from))
               for key, v in groups.items()}
    sidos_by_name: dict[str, set[str]] = {}
    for sido, name in by_name:
        sidos_by_name.setdefault(name, set()).add(sido)
    prefix: dict[str, str] = {}
    for code, row in rows.items():
        prefix.setdefault(code[:2], row.sido)
    return _DistrictIndex(
        by_name=by_name,
        sidos_by_name={k: frozenset(v) for k, v in sidos_by_name.items()},
        sido_of_prefix=prefix,
        sido_keys=frozenset(sido for sido, _ in by_name),
        codes=frozenset(rows),
    )


def _match_address(address: str, sido_hint: str | None,
                   index: _DistrictIndex) -> tuple[tuple[_Code, ...], str | None]:
    """Candidate codes for an address and the part after the 시군구 (the 법정동, maybe + 리)."""
    tokens = address.split()
    if not tokens:
        return (), None
    first = _sido_key(tokens[0])
    if first in index.sido_keys:
        sidos: Iterable[str] = (first,)
        rest = tokens[1:]
    elif sido_hint:
        sidos, rest = (_sido_key(sido_hint),), tokens
    else:  # no 시도: accept a 시군구 name carried by exactly one 시도
        sidos, rest = (), tokens
        for n in (2, 1):
            found = index.sidos_by_name.get(" ".join(tokens[:n]), frozenset())
            if len(found) == 1:
                sidos = tuple(found)
                break
    for sido in sidos:
        for n in (2, 1, 0):  # "수원시 장안구" before "수원시"; 0 = 시도-level code (세종)
            if len(rest) < n:
                continue
            cands = index.by_name.get((sido, " ".join(rest[:n])))
            if cands:
                return cands, " ".join(rest[n:]) or None
    return (), None


def _choose(cands: tuple[_Code, ...], days: np.ndarray) -> np.ndarray:
    """Per row: the candidate valid on that day (latest-starting if several), else the nearest."""
    if len(cands) == 1:
        return np.zeros(len(days), dtype=np.int64)
    best = np.zeros(len(days), dtype=np.int64)
    best_dist = np.full(len(days), np.iinfo(np.int64).max, dtype=np.int64)
    best_from = np.full(len(days), np.iinfo(np.int64).min, dtype=np.int64)
    for k, c in enumerate(cands):
        dist = np.where(days < c.valid_from, c.valid_from - days,
                        np.where(days >= c.valid_to, days - c.valid_to + 1, 0))
        better = (dist < best_dist) | ((dist == best_dist) & (c.valid_from > best_from))
        best = np.where(better, k, best)
        best_dist = np.where(better, dist, best_dist)
        best_from = np.where(better, c.valid_from, best_from)
    return best


def resolve_lawd_cd(address: str, deal_date: dt.date | None = None,
                    sido_hint: str | None = None) -> str | None:
    """The 5-digit 시군구 code for a full address like ``"서울특별시 강남구 개포동"``.

    ``deal_date`` picks among codes that carried the name at different times (default: the
    latest); ``sido_hint`` supplies the 시도 when the address starts at the 시군구.
    Returns None when the address matches no 시군구 of the shipped code list.
    """
    cands, _ = _match_address(address, sido_hint, _district_index())
    if not cands:
        return None
    day = _UNKNOWN_DAY if deal_date is None else (deal_date - dt.date(1970, 1, 1)).days
    return cands[int(_choose(cands, np.array([day], dtype=np.int64))[0])].code


def _resolve(addresses: pd.Series, hints: pd.Series | None, days: np.ndarray,
             index: _DistrictIndex) -> tuple[pd.Series, pd.Series]:
    """Codes and remainders (umdNm) for every row, matching each distinct address once."""
    n = len(addresses)
    key = addresses.fillna("")
    if hints is not None:
        key = key + "\x1f" + hints.fillna("")
    codes_of_row, uniques = pd.factorize(key, sort=False)
    code_out = np.full(n, None, dtype=object)
    umd_out = np.full(n, None, dtype=object)
    multi: list[tuple[int, tuple[_Code, ...]]] = []
    u_code = np.full(len(uniques), None, dtype=object)
    u_umd = np.full(len(uniques), None, dtype=object)
    for u, k in enumerate(uniques):
        address, _, hint = str(k).partition("\x1f")
        cands, umd = _match_address(address, hint or None, index)
        if not cands:
            continue
        u_umd[u] = umd
        if len(cands) == 1:
            u_code[u] = cands[0].code
        else:
            multi.append((u, cands))
    valid = codes_of_row >= 0
    code_out[valid] = u_code[codes_of_row[valid]]
    umd_out[valid] = u_umd[codes_of_row[valid]]
    if multi:
        rows_of = pd.Series(np.arange(n)).groupby(codes_of_row).indices
        for u, cands in multi:
            rows = rows_of[u]
            pick = _choose(cands, days[rows])
            code_out[rows] = np.array([c.code for c in cands], dtype=object)[pick]
    return (pd.Series(code_out, index=addresses.index, dtype="string"),
            pd.Series(umd_out, index=addresses.index, dtype="string"))


def _row_days(year: pd.Series, month: pd.Series, day: pd.Series) -> np.ndarray:
    """Contract dates as day numbers (bucket → its first day, no day → the 1st; unknown → late)."""
    y, m, d = _numbers(year), _numbers(month), _numbers(day)
    d = np.where(np.isnan(d), 1, d)
    ok = ~np.isnan(y) & ~np.isnan(m) & (m >= 1) & (m <= 12)
    out = np.full(len(y), _UNKNOWN_DAY, dtype=np.int64)
    if ok.any():
        months = ((y[ok] - 1970) * 12 + (m[ok] - 1)).astype(np.int64)
        start = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        out[ok] = start + np.clip(d[ok], 1, 31).astype(np.int64) - 1
    return out


# --------------------------------------------------------------------------------------------
# mapping
# --------------------------------------------------------------------------------------------
def _to_raw(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    n = len(frame)
    null = pd.Series(pd.NA, index=frame.index, dtype="string")

    def pick(field: str) -> pd.Series | None:
        for col in _ALIASES[field]:
            if col in frame.columns:
                return _clean(frame[col])
        return None

    def get(field: str) -> pd.Series:
        s = pick(field)
        return null.copy() if s is None else s

    out: dict[str, pd.Series] = {}
    for field in _VERBATIM_FIELDS:
        out[field] = get(field)
    for field in _INT_FIELDS:
        out[field] = _int_text(get(field))
    out["dealAmount"] = _int_text(_by_unique(lambda u: u.str.replace(r"[,\s]", "", regex=True),
                                             get("dealAmount")))

    # contract year / month / day
    day_raw = get("day")
    full_date = [_date_part(day_raw, i) for i in range(3)]
    is_full = full_date[0].notna()
    ym = pick("ym")
    if ym is not None:
        digits = ym.str.replace(r"\D", "", regex=True)
        year, month = digits.str[:4], digits.str[4:6]
    elif pick("year") is not None:
        year, month = get("year"), get("month")
    else:
        year, month = full_date[0], full_date[1]
    year = year.where(~(year.isna() & is_full), full_date[0])
    month = month.where(~(month.isna() & is_full), full_date[1])
    out["dealYear"] = _int_text(year.astype("string"))
    out["dealMonth"] = _int_text(month.astype("string"))
    day = day_raw.where(~is_full, full_date[2])
    out["dealDay"] = _int_text(day.astype("string"))  # buckets "1~10" stay verbatim

    out["cdealDay"] = _yymmdd(get("cdealDay"))
    flag = get("cdealType")
    out["cdealType"] = flag.where(flag.notna() | out["cdealDay"].isna(), "O")
    out["rgstDate"] = _yymmdd(get("rgstDate"))
    out["roadNm"], out["roadNmBonbun"], out["roadNmBubun"] = _split_road(get("roadNm"))
    umd_code = get("umdCd")
    out["umdCd"] = umd_code.where(umd_code.str.len() != 10, umd_code.str[5:])

    # district: a known code given by the file wins, else the name resolved at the deal date
    index = _district_index()
    days = _row_days(out["dealYear"], out["dealMonth"], out["dealDay"])
    explicit = get("explicit_code")
    is_code = explicit.str.fullmatch(r"\d{5}").fillna(False).astype(bool)
    known = is_code & explicit.isin(index.codes)
    code = explicit.where(known)
    umd = pick("umdNm")
    address = pick("address")
    if address is not None:  # full address "서울특별시 강남구 개포동": also yields the 법정동
        by_name, remainder = _resolve(address, pick("sido_hint"), days, index)
        code = code.fillna(by_name)
        umd = remainder if umd is None else umd.fillna(remainder)
        # An unresolved address is kept whole for the quarantine record.
        umd = umd.where(code.notna() | umd.notna(), address)
    else:  # seoul_monthly: resolve the 구 name (or a name put where the code belongs)
        address = get("gu_name").fillna(explicit.where(~is_code))
        need = code.isna()
        if need.any():
            prefixes = explicit[known].str[:2].value_counts()
            hints = None
            if len(prefixes) == 1:
                hints = pd.Series(index.sido_of_prefix.get(str(prefixes.index[0])),
                                  index=frame.index, dtype="string")[need]
            by_name, _ = _resolve(address[need], hints, days[need.to_numpy()], index)
            code = code.where(~need, by_name)
    out["umdNm"] = null.copy() if umd is None else umd
    out["sggCd"] = code
    out["lawd_cd"] = code
    out["source"] = pd.Series(SOURCE, index=frame.index, dtype="string")

    unresolved = code.isna()
    if unresolved.any():
        names = address[unresolved].fillna("<missing>").value_counts()
        logger.warning("%s: %d of %d rows have no resolvable district (e.g. %s)", path.name,
                       int(unresolved.sum()), n, ", ".join(map(str, names.index[:5])))
    return pd.DataFrame(out, index=frame.index)


def read_export(path: Path) -> pd.DataFrame:
    """Read one MOLIT bulk export (any supported layout/container) as a raw-schema frame.

    Raises ValueError naming the file and the columns found when the layout is unknown.
    """
    path = Path(path)
    frame, layout = _load(path)
    blank = frame.apply(lambda s: _clean(s).isna()).all(axis=1) if len(frame) else None
    if blank is not None and blank.any():
        logger.info("%s: dropped %d blank rows", path.name, int(blank.sum()))
        frame = frame[~blank]
    raw = _to_raw(frame, path)
    logger.info("%s: %s layout, %d rows", path.name, layout.name, len(raw))
    return schema.conform_raw(raw)
