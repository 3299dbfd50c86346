"""Tests for aptpipe.sources.exports (fixtures: tests/fixtures/exports, see PROVENANCE.md)."""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import logging
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aptpipe import schema
from aptpipe.sources.exports import read_export, resolve_lawd_cd

FIX = Path(__file__).resolve().parent / "fixtures" / "exports"
REPO = Path(__file__).resolve().parents[1]
SHARED_TX = REPO.parent / "shared" / "realdata" / "transactions"

RTMOLIT_UTF8 = FIX / "rtmolit_export_utf8sig.csv"
RTMOLIT_CP949 = FIX / "rtmolit_export_cp949.csv"
SHEET_0601 = FIX / "rtdown_sheet_200601_slice.csv.gz"
SHEET_0811 = FIX / "rtdown_sheet_200811_slice.csv.gz"
FLAT_2007 = FIX / "rtdown_flat_2007_slice.parquet"
SEOUL_0124 = FIX / "seoul_monthly_202401_slice.csv.gz"
ALL_FIXTURES = (RTMOLIT_UTF8, RTMOLIT_CP949, SHEET_0601, SHEET_0811, FLAT_2007, SEOUL_0124)

needs_shared = pytest.mark.skipif(not SHARED_TX.is_dir(),
                                  reason="../shared/realdata is not available")


def _source_rows(path: Path) -> pd.DataFrame:
    """The fixture's data rows as plain strings, read independently of the module under test."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pandas()
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp949")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    start = next(i for i, r in enumerate(rows) if "시군구" in r or "시군구코드" in r)
    return pd.DataFrame(rows[start + 1:], columns=rows[start])


# ---- every layout --------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_contract_rows_columns_and_strings(path: Path) -> None:
    src = _source_rows(path)
    out = read_export(path)
    assert list(out.columns) == list(schema.RAW_COLUMNS)
    assert len(out) == len(src)                        # rows in = rows out
    assert (out["source"] == "export").all()
    for col in out.columns:
        assert out[col].dtype == "string", col
    assert out["lawd_cd"].str.fullmatch(r"\d{5}").all()  # every fixture row resolves
    assert (out["sggCd"] == out["lawd_cd"]).all()
    assert out["dealAmount"].str.fullmatch(r"\d+").all()  # no commas, no padding
    assert out["dealYear"].str.fullmatch(r"(19|20)\d\d").all()
    assert out["dealMonth"].str.fullmatch(r"[1-9]|1[0-2]").all()   # no zero padding
    assert out["dealDay"].str.fullmatch(r"[1-9]|[12]\d|3[01]|\d{1,2}~\d{1,2}").all()
    assert not out.isin(["-", ""]).any().any()         # missing markers became nulls
    assert out["umdNm"].notna().all()


# ---- per layout ----------------------------------------------------------------------------
def test_sheet_layout_maps_fields_and_keeps_buckets() -> None:
    src = _source_rows(SHEET_0601)
    out = read_export(SHEET_0601)
    first = out.iloc[0]
    assert first[["sggCd", "umdNm", "jibun", "aptNm", "excluUseAr", "dealYear", "dealMonth",
                  "dealDay", "dealAmount", "floor", "buildYear", "roadNm"]].tolist() == [
        "11680", "개포동", "141", "개포주공 1단지", "35.64", "2006", "1", "1~10", "38000", "3",
        "1982", "개포로"]
    assert set(out["dealDay"]) == {"1~10", "11~20", "21~31"}
    assert out["dealDay"].tolist() == src["계약일"].tolist()
    assert out["dealAmount"].tolist() == src["거래금액(만원)"].str.replace(",", "").tolist()
    assert set(read_export(SHEET_0811)["dealDay"]) == {"1~10", "11~20", "21~30"}
    # the sheet of 시도 and the resolved code agree
    sido_prefix = {"서울특별시": "11", "경기도": "41", "강원도": "42", "전라북도": "45",
                   "세종특별자치시": "36", "제주특별자치도": "49"}  # 2006-01: before 제주 50xxx
    for sido, prefix in sido_prefix.items():
        codes = out.loc[(src["sheet_sido"] == sido).to_numpy(), "lawd_cd"]
        assert len(codes) and codes.str.startswith(prefix).all(), sido
    # 읍/면 addresses keep the 리 with the 읍/면 as the 법정동 part; empty 도로명 → null
    addr = src["시군구"].str.strip()
    assert out.loc[(addr == "대구광역시 달성군 화원읍 구라리").to_numpy(), "umdNm"].tolist() == [
        "화원읍 구라리"]
    assert set(out.loc[(addr == "경기도 고양시 덕양구 행신동").to_numpy(), "umdNm"]) == {"행신동"}
    assert (out["roadNm"].isna() == (src["도로명"] == "").to_numpy()).all()
    assert out["cdealType"].isna().all() and out["aptSeq"].isna().all()


def test_flat_parquet_layout_and_contract_date_codes() -> None:
    src = pq.read_table(FLAT_2007).to_pandas()
    out = read_export(FLAT_2007)
    assert out["dealAmount"].tolist() == [str(v) for v in src["거래금액"]]
    assert out["dealMonth"].tolist() == [str(v) for v in src["계약월"]]
    assert out["dealDay"].tolist() == src["계약일"].tolist()      # buckets verbatim
    assert out["floor"].astype(int).min() < 0 and "0" in set(out["buildYear"])
    assert out["roadNm"].isna().sum() == src["도로명"].isna().sum() >= 2
    def codes(prefix: str) -> set[str]:
        return set(out.loc[src["시군구"].str.strip().str.startswith(prefix).to_numpy(), "lawd_cd"])

    assert codes("경기도 수원시 장안구 ") == {"41111"}          # the gu, not parent 41110
    assert codes("강원도 춘천시 ") == {"42110"}                # before 51xxx (2023-06-11)
    assert codes("전라북도 전주시 완산구 ") == {"45111"}         # before 52xxx (2024-01-18)
    assert codes("경상북도 군위군 ") == {"47720"}              # before 대구 27720 (2023-07-01)
    assert codes("제주특별자치도 제주시 ") == {"50110"}          # after 2006-07-01
    assert codes("경기도 부천시 ") == {"41190"}                # no gu in the file (2016-2024 names)
    assert codes("경상남도 창원시 마산합포구 ") == {"48125"}      # the only code of that name
    assert set(out.loc[src["시군구"].str.startswith("세종").to_numpy(), "lawd_cd"]) == {"36110"}


def test_seoul_monthly_layout() -> None:
    src = _source_rows(SEOUL_0124)
    out = read_export(SEOUL_0124)
    assert out["lawd_cd"].tolist() == src["시군구코드"].tolist()
    assert out["aptSeq"].tolist() == src["단지코드"].tolist()
    assert out["umdCd"].tolist() == src["법정동코드"].tolist()
    assert out["umdNm"].tolist() == src["법정동"].tolist()
    assert out["dealDay"].tolist() == [str(int(d[8:])) for d in src["계약일"]]
    assert out["dealAmount"].tolist() == src["거래금액"].tolist()
    cancelled = (src["해제여부"] == "O").to_numpy()
    assert cancelled.sum() >= 15
    assert (out.loc[cancelled, "cdealType"] == "O").all()
    assert out.loc[~cancelled, "cdealType"].isna().all()
    assert out.loc[cancelled, "cdealDay"].tolist() == src.loc[cancelled, "해제일"].tolist()
    assert (out["aptDong"].isna() == (src["동"] == "").to_numpy()).all()
    assert out["rgstDate"].dropna().str.fullmatch(r"\d\d\.\d\d\.\d\d").all()
    assert out["estateAgentSggNm"].isna().all()  # not in this layout


def test_rtmolit_cp949_and_utf8_give_identical_frames() -> None:
    assert RTMOLIT_CP949.read_bytes() != RTMOLIT_UTF8.read_bytes()
    pd.testing.assert_frame_equal(read_export(RTMOLIT_CP949), read_export(RTMOLIT_UTF8))


def test_rtmolit_layout_fields() -> None:
    out = read_export(RTMOLIT_CP949)
    last = out.iloc[-1]  # hand-written: cancelled, several brokers, road with building number
    assert last["lawd_cd"] == "11680" and last["umdNm"] == "개포동"
    assert last["dealDay"] == "5" and last["dealAmount"] == "265000"
    assert last["cdealType"] == "O" and last["cdealDay"] == "24.03.15"
    assert last["estateAgentSggNm"] == "서울 강남구, 서울 서초구"
    assert pd.isna(last["rgstDate"]) and pd.isna(last["aptDong"])
    assert (last["roadNm"], last["roadNmBonbun"], last["roadNmBubun"]) == ("삼성로", "00014",
                                                                          "00000")
    assert (last["bonbun"], last["bubun"]) == ("0012", "0000")
    # hand-written rows: 일반구, renamed/moved codes picked by contract date
    hand = out.iloc[60:69]
    assert hand["lawd_cd"].tolist() == ["41111", "51110", "42110", "27720", "47720", "45111",
                                        "52111", "41192", "36110"]
    assert hand["umdNm"].tolist()[3] == "군위읍 동부리"
    # '-' fields are null, a 직거래 row has no broker location
    direct = out[out["dealingGbn"] == "직거래"]
    assert len(direct) and direct["estateAgentSggNm"].isna().all()


def test_rtmolit_rows_equal_the_same_trades_in_seoul_monthly_layout() -> None:
    rt = read_export(RTMOLIT_UTF8).iloc[:60]
    seoul = read_export(SEOUL_0124)
    fields = ["lawd_cd", "umdNm", "jibun", "aptNm", "dealYear", "dealMonth", "dealDay",
              "dealAmount", "floor", "buildYear", "cdealType", "cdealDay", "dealingGbn",
              "rgstDate", "aptDong", "slerGbn", "buyerGbn"]
    def tuples(frame: pd.DataFrame) -> Counter[tuple[object, ...]]:
        rows = frame[fields].astype(object).where(frame[fields].notna(), None)
        areas = frame["excluUseAr"].astype(float)
        return Counter((*r, a) for r, a in zip(rows.itertuples(index=False), areas, strict=True))

    rt_rows, seoul_rows = tuples(rt), tuples(seoul)
    assert sum(rt_rows.values()) == 60
    missing = rt_rows - seoul_rows
    assert not missing, missing
    assert (rt["cdealType"] == "O").sum() == 8


# ---- containers ------------------------------------------------------------------------------
def test_gzip_and_parquet_containers_read_the_same(tmp_path: Path) -> None:
    expected = read_export(RTMOLIT_UTF8)
    gz = tmp_path / "export.csv.gz"
    gz.write_bytes(gzip.compress(RTMOLIT_CP949.read_bytes()))
    pd.testing.assert_frame_equal(read_export(gz), expected)
    as_text = _source_rows(RTMOLIT_UTF8)
    pq_path = tmp_path / "export.parquet"
    as_text.to_parquet(pq_path, index=False)
    pd.testing.assert_frame_equal(read_export(pq_path), expected)

    # seoul layout as a typed parquet (int codes/prices, real dates, float areas)
    seoul = _source_rows(SEOUL_0124)
    typed = seoul.replace("", None).astype({"시군구코드": "int64", "거래금액": "int64",
                                            "층": "int64", "건축년도": "int64",
                                            "전용면적": "float64", "법정동코드": "int64"})
    typed["계약일"] = pd.to_datetime(typed["계약일"])
    typed_path = tmp_path / "202401.parquet"
    typed.to_parquet(typed_path, index=False)
    pd.testing.assert_frame_equal(read_export(typed_path), read_export(SEOUL_0124))


def test_empty_export_gives_empty_raw_frame(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    header = _source_rows(SHEET_0601).columns
    path.write_text(",".join(header) + "\n", encoding="utf-8")
    out = read_export(path)
    assert len(out) == 0 and list(out.columns) == list(schema.RAW_COLUMNS)


# ---- errors, unresolved districts -------------------------------------------------------------
def test_unknown_csv_layout_raises_value_error_naming_file_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "mystery.csv"
    path.write_text("\"안내문\"\n\"지역\",\"가격\",\"날짜\"\n\"서울\",\"1\",\"2024\"\n",
                    encoding="cp949")
    with pytest.raises(ValueError, match=r"mystery\.csv.*'지역', '가격', '날짜'"):
        read_export(path)


def test_unknown_parquet_layout_raises(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1], "b": ["x"]}), path)
    with pytest.raises(ValueError, match=r"other\.parquet.*\['a', 'b'\]"):
        read_export(path)


def test_unresolved_district_stays_null_and_is_logged(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    src = _source_rows(SHEET_0601).iloc[:5].copy()
    src.loc[src.index[1], "시군구"] = " 경기도 가상시 어느동"
    path = tmp_path / "with_unknown.csv"
    src.to_csv(path, index=False, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="aptpipe.sources.exports"):
        out = read_export(path)
    assert len(out) == 5
    assert out["lawd_cd"].isna().tolist() == [False, True, False, False, False]
    assert pd.isna(out.loc[1, "sggCd"]) and out.loc[1, "umdNm"] == "경기도 가상시 어느동"
    assert "1 of 5 rows" in caplog.text and "경기도 가상시 어느동" in caplog.text


@pytest.mark.parametrize(("address", "when", "code"), [
    ("서울특별시 강남구 개포동", None, "11680"),
    ("경기도 수원시 장안구 정자동", dt.date(2020, 5, 1), "41111"),
    ("강원특별자치도 춘천시 퇴계동", dt.date(2023, 6, 10), "42110"),
    ("강원특별자치도 춘천시 퇴계동", dt.date(2023, 6, 11), "51110"),
    ("강원도 춘천시 퇴계동", dt.date(2024, 1, 1), "51110"),
    ("전라북도 전주시 덕진구 송천동2가", dt.date(2024, 1, 17), "45113"),
    ("전북특별자치도 전주시 덕진구 송천동2가", dt.date(2024, 1, 18), "52113"),
    ("경상북도 군위군 군위읍", dt.date(2023, 7, 1), "27720"),
    ("대구광역시 군위군 군위읍", dt.date(2023, 6, 30), "47720"),
    ("경기도 부천시 원미구 중동", dt.date(2010, 1, 1), "41195"),
    ("경기도 부천시 원미구 중동", dt.date(2024, 2, 1), "41192"),
    ("경기도 부천시 중동", dt.date(2020, 1, 1), "41190"),
    ("경상남도 창원시 상남동", dt.date(2007, 1, 1), "48110"),
    ("경상남도 창원시 의창구 용호동", dt.date(2007, 1, 1), "48121"),  # only code of that name
    ("부산광역시 중구 중앙동", dt.date(1990, 1, 1), "21110"),
    ("세종특별자치시 조치원읍 교리", dt.date(2006, 1, 1), "36110"),
    ("강남구 개포동", None, "11680"),       # 시도 omitted, 시군구 name unique
    ("중구 명동", None, None),              # ambiguous without a 시도
    ("경기도 가상시 어느동", None, None),
])
def test_resolve_lawd_cd(address: str, when: dt.date | None, code: str | None) -> None:
    assert resolve_lawd_cd(address, when) == code


def test_resolve_uses_sido_hint() -> None:
    assert resolve_lawd_cd("중구 명동", sido_hint="서울특별시") == "11140"
    assert resolve_lawd_cd("중구 중앙동", sido_hint="부산광역시") == "26110"


# ---- the full real files (skipped without ../shared) ---------------------------------------
@needs_shared
def test_full_2007_parquet_resolution_and_speed() -> None:
    path = SHARED_TX / "rtdown_apt_trade_nationwide_2007_01_09.parquet"
    n_src = pq.read_metadata(path).num_rows
    read_export(FLAT_2007)  # warm the code list
    start = time.perf_counter()
    out = read_export(path)
    elapsed = time.perf_counter() - start
    assert len(out) == n_src == 335_848
    unresolved = out["lawd_cd"].isna()
    src_addr = pq.read_table(path, columns=["시군구"]).column(0).to_pandas()
    names = src_addr[unresolved.to_numpy()].value_counts()
    print(f"2007 parquet: {len(out)} rows, {1 - unresolved.mean():.4%} resolved, "
          f"{elapsed:.2f}s, unresolved: {names.head(10).to_dict()}")
    assert unresolved.mean() <= 0.001, names.head(10).to_dict()
    assert elapsed < 10.0
    assert set(out["dealDay"]) == {"1~10", "11~20", "21~28", "21~30", "21~31"}


@needs_shared
@pytest.mark.parametrize("name", ["rtdown_apt_trade_nationwide_200601.csv.gz",
                                  "rtdown_apt_trade_nationwide_200811.csv.gz"])
def test_full_sheet_files(name: str) -> None:
    path = SHARED_TX / name
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        n_src = sum(1 for _ in csv.reader(fh)) - 1
    out = read_export(path)
    assert len(out) == n_src
    assert out["lawd_cd"].notna().mean() >= 0.999
    assert out["dealAmount"].str.fullmatch(r"\d+").all()


@needs_shared
def test_full_seoul_monthly_files() -> None:
    files = sorted((SHARED_TX / "seoul_monthly").glob("*.csv.gz"))
    assert files
    for path in files:
        src = pd.read_csv(path, dtype=str, keep_default_na=False)
        out = read_export(path)
        assert len(out) == len(src)
        assert out["lawd_cd"].tolist() == src["시군구코드"].tolist()
        ym = path.name[:6]
        assert set(out["dealYear"] + out["dealMonth"].str.zfill(2)) == {ym}
