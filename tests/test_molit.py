"""MOLIT client tests against a real local HTTP server playing recorded responses."""
from __future__ import annotations

import logging
import re
import socket
import traceback
from pathlib import Path
from urllib.parse import quote, unquote

import pandas as pd
import pytest

from aptpipe.schema import RAW_COLUMNS, conform_raw
from aptpipe.sources import molit
from aptpipe.sources.molit import (
    MolitClient, MolitConfig, MolitError, PermanentError, QuotaExceeded, TransientError,
    crawl_month, parse_page,
)
from tests.molit_server import (
    CODE30_FILE as CODE30_FILE_NAME, OLD_DEV_FILE, OLD_FRAGMENT_FILE, STATIC_FAULTS, FakeMolit,
    Recording,
    fixture,
)

# Shaped like a data.go.kr key: base64 with '+', '/' and '=' padding (a made-up value).
KEY = "T3st+Key/Only+n0tReal/" + "AbCdEf0123" * 6 + "xY+z/Q=="
KEY_ENCODED = quote(KEY, safe="")
KEY_SPELLINGS = (KEY, KEY_ENCODED, quote(KEY_ENCODED, safe=""), "n0tReal")

RAW_PAGE = "molit_new_apt_trade_11680_202505_RAW_page1_numOfRows10_asof_2025-06-20.xml"
GANGNAM_202405 = "molit_new_apt_trade_11680_202405_merged_asof_2025-06-20.xml"      # 324
GANGNAM_202506 = "molit_new_apt_trade_11680_202506_merged_asof_2025-06-20T1212.xml"  # 68
YONGSAN_202506 = "molit_new_apt_trade_11170_202506_merged_asof_2025-06-20.xml"       # 15


@pytest.fixture()
def server():
    with FakeMolit(KEY) as srv:
        yield srv


def client_for(srv: FakeMolit, key: str = KEY, **overrides) -> MolitClient:
    cfg = dict(base_url=srv.base_url, timeout=5.0, page_size=100, retries=3,
               backoff_base=0.001)
    cfg.update(overrides)
    return MolitClient(key, MolitConfig(**cfg))


def assert_raw_frame(df: pd.DataFrame) -> None:
    assert list(df.columns) == list(RAW_COLUMNS)
    assert all(str(t) == "string" for t in df.dtypes)
    pd.testing.assert_frame_equal(df, conform_raw(df))


# --------------------------------------------------------------------------------------------
# parse_page on real bodies
# --------------------------------------------------------------------------------------------
def test_parse_real_raw_page():
    page = parse_page(fixture(RAW_PAGE), "11680")
    assert (page.total_count, page.page_no, page.num_of_rows, page.result_code) == \
        (231, 1, 10, "000")
    df = page.items
    assert_raw_frame(df)
    assert len(df) == 10
    first = df.iloc[0]
    assert first["aptNm"] == "도곡렉슬" and first["dealAmount"] == "355000"
    assert first["estateAgentSggNm"] == "서울 강남구, 서울 영등포구"
    assert first["excluUseAr"] == "84.9984" and first["dealDay"] == "31"
    assert pd.isna(first["aptDong"]) and pd.isna(first["cdealType"])   # " " -> null
    assert df["aptSeq"].isna().all()                                      # general endpoint
    assert (df["lawd_cd"] == "11680").all() and (df["source"] == "molit").all()
    assert not df["dealAmount"].str.contains(",").any()


def test_parse_old_korean_dev_response():
    page = parse_page(fixture(OLD_DEV_FILE), "41570")
    assert page.result_code == "00" and page.total_count == 586 and len(page.items) == 2
    row = page.items.iloc[0]
    assert row["umdNm"] == "북변동"                 # " 북변동" stripped
    assert row["dealAmount"] == "18000"            # "    18,000"
    assert row["aptNm"] == "한일" and row["aptSeq"] == "41570-12"
    assert row["sggCd"] == "41570" and row["roadNm"] == "북변중로" and row["bonbun"] == "0184"
    assert (row["dealYear"], row["dealMonth"], row["dealDay"]) == ("2019", "10", "1")
    assert pd.isna(row["cdealType"])
    assert_raw_frame(page.items)


def test_parse_old_general_day_buckets_kept_verbatim():
    body = Recording.load(OLD_FRAGMENT_FILE).body(1, 100)
    df = parse_page(body, "11440").items
    assert len(df) == 7
    assert df["dealDay"].tolist() == ["1~10"] * 5 + ["11~20"] * 2
    assert df["dealAmount"].tolist()[:2] == ["38900", "46000"]
    assert df["aptNm"].iloc[3] == "월드컵아이파크(667-0)"


@pytest.mark.parametrize("empty", [b"<items/>", b"<items></items>", b"<items> </items>"])
def test_parse_empty_month(empty):
    body = Recording.load(YONGSAN_202506).subset(()).body(1, 1000, empty=empty)
    page = parse_page(body, "11110")
    assert page.total_count == 0 and len(page.items) == 0
    assert_raw_frame(page.items)


def test_parse_nodata_code_03_is_empty():
    page = parse_page(STATIC_FAULTS["nodata03"][1], "11110")
    assert page.total_count == 0 and len(page.items) == 0 and page.result_code == "03"


def test_parse_single_item():
    rec = Recording.load(YONGSAN_202506)
    page = parse_page(rec.subset(rec.items[:1]).body(1, 1000), "11170")
    assert page.total_count == 1 and len(page.items) == 1
    assert page.items["aptNm"].iloc[0] == "산호" and page.items["dealAmount"].iloc[0] == "215000"


@pytest.mark.parametrize("fault, exc, code, words", [
    ("gateway30", PermanentError, "30", "key not registered for this API, or URL-encoded twice"),
    ("gateway30_403_named", PermanentError, "30", "check APTPIPE_SERVICE_KEY"),
    ("json30_403", PermanentError, "30", "endpoint setting"),
    ("code12", PermanentError, "12", "check base_url"),
    ("gateway22", QuotaExceeded, "22", "daily quota exceeded"),
    ("code01", TransientError, "01", "APPLICATION_ERROR"),
    ("code99", TransientError, "99", "UNKNOWN_ERROR"),
])
def test_parse_error_envelopes(fault, exc, code, words):
    with pytest.raises(exc) as info:
        parse_page(STATIC_FAULTS[fault][1])
    assert info.value.code == code and words in str(info.value)


@pytest.mark.parametrize("body", [
    fixture(RAW_PAGE)[:3000],                               # truncated
    b"Unexpected errors",                                   # plain text from the gateway
    b"",
    fixture(RAW_PAGE).replace(b"<totalCount>231</totalCount>", b""),
    b"<html><body>hello</body></html>",
])
def test_parse_garbage_is_transient(body):
    with pytest.raises(TransientError) as info:
        parse_page(body)
    assert info.value.code is None


def test_fast_scanner_matches_reference_parser():
    assert molit._fast_scanner_works()
    bodies = [fixture(p.name) for p in sorted(Path(molit_fixture_dir()).glob("*.xml"))]
    bodies.append(Recording.load(OLD_FRAGMENT_FILE).body(1, 100))
    # pretty-printed, entities, CDATA, an empty element
    bodies.append("""<?xml version="1.0" encoding="utf-8"?>
<response>
  <header><resultCode>000</resultCode><resultMsg>OK</resultMsg></header>
  <body>
    <items>
      <item>
        <aptNm>A&amp;B <![CDATA[<C>]]></aptNm>
        <dealAmount>  1,234  </dealAmount>
        <aptDong/>
        <jibun>
        </jibun>
      </item>
    </items>
    <numOfRows>10</numOfRows><pageNo>1</pageNo><totalCount>1</totalCount>
  </body>
</response>""".encode())
    # the old API's two district-code tags disagreeing: the later one wins on both paths
    bodies.append(fixture(OLD_DEV_FILE).replace("<지역코드>41570<".encode(),
                                                "<지역코드>99999<".encode(), 1))
    for body in bodies:
        fast, ref = molit._scan_fast(body), molit._scan_tree(body)
        assert (fast.root, fast.n_items) == (ref.root, ref.n_items)
        assert {k: (v or "").strip() for k, v in fast.meta.items()} == \
            {k: (v or "").strip() for k, v in ref.meta.items()}
        pd.testing.assert_frame_equal(molit._items_frame(fast, "11111"),
                                      molit._items_frame(ref, "11111"))
    assert parse_page(bodies[-1]).items["sggCd"].tolist() == ["99999", "41570"]
    bodies.pop()
    row = parse_page(bodies[-1]).items.iloc[0]
    assert row["aptNm"] == "A&B <C>" and row["dealAmount"] == "1234"
    assert pd.isna(row["aptDong"]) and pd.isna(row["jibun"])


def test_text_longer_than_the_expat_buffer():
    big = "가" * 40_000                              # 120 kB of UTF-8 in one field
    body = fixture(RAW_PAGE).replace("<aptNm>도곡렉슬<".encode(), f"<aptNm> {big} <".encode(), 1)
    page = parse_page(body, "11680")
    assert page.items["aptNm"].iloc[0] == big and len(page.items) == 10


def test_unknown_item_tag_uses_reference_path_and_is_reported():
    body = fixture(RAW_PAGE).replace(b"<aptNm>", b"<newField>x</newField><aptNm>")
    page = parse_page(body, "11680")
    assert page.unknown_tags == frozenset({"newField"})
    expected = parse_page(fixture(RAW_PAGE), "11680").items
    pd.testing.assert_frame_equal(page.items, expected)



# --------------------------------------------------------------------------------------------
# the bulk path (single-line English-tag responses) against the strict parsers
# --------------------------------------------------------------------------------------------
def bulk_or_none(body: bytes):
    try:
        return molit._scan_bulk(body.lstrip())
    except molit._Fallback:
        return None


def assert_same_scan(body: bytes, *, bulk: bool, expat: bool = True) -> None:
    """The bulk path is taken (or not) as said, and agrees with the ElementTree (and expat)
    paths."""
    got = bulk_or_none(body)
    assert (got is not None) == bulk
    ref = molit._scan_tree(body)
    refs = [ref, molit._scan_fast(body)] if expat else [ref]
    scans = refs + ([got] if got is not None else [])
    for scan in scans:
        assert (scan.root, scan.n_items) == (ref.root, ref.n_items)
        assert {k: (v or "").strip() for k, v in scan.meta.items()} == \
            {k: (v or "").strip() for k, v in ref.meta.items()}
        pd.testing.assert_frame_equal(molit._items_frame(scan, "11111"),
                                      molit._items_frame(ref, "11111"))


def raw_page_with(old: bytes, new: bytes, count: int = 1) -> bytes:
    body = fixture(RAW_PAGE)
    assert old in body
    return body.replace(old, new, count)


NEW_API_FIXTURES = (RAW_PAGE, GANGNAM_202405, GANGNAM_202506, YONGSAN_202506)


def test_bulk_path_takes_and_matches_every_new_api_fixture():
    for name in NEW_API_FIXTURES:
        assert_same_scan(fixture(name), bulk=True)
        rec = Recording.load(name)
        for page_no, rows in ((1, 1), (1, 7), (2, 7), (1, 1000)):
            assert_same_scan(rec.body(page_no, rows), bulk=bool(rec.items[:1]))
    page = parse_page(fixture(GANGNAM_202405), "11680")
    assert len(page.items) == page.total_count == 324


def test_bulk_path_falls_back_for_other_documents():
    for name in (OLD_DEV_FILE, CODE30_FILE_NAME):          # Korean tags, gateway envelope
        assert bulk_or_none(fixture(name)) is None
    assert bulk_or_none(Recording.load(OLD_FRAGMENT_FILE).body(1, 100)) is None
    for fault in ("code01", "nodata03", "gateway22", "json30_403"):
        assert bulk_or_none(STATIC_FAULTS[fault][1]) is None
    # unknown tag: reference path, reported
    assert bulk_or_none(raw_page_with(b"<aptNm>", b"<newField>x</newField><aptNm>")) is None


@pytest.mark.parametrize("old, new, bulk", [
    # entities and character references are decoded on the bulk path too
    ("<aptNm>도곡렉슬<", "<aptNm> A&amp;B &lt;C&gt; &quot;D&apos; &#44032;&#xAC00;&#x41; <", True),
    ("<jibun>527<", "<jibun>&#32;<", True),                    # a blank made of a reference
    ("<aptNm>도곡렉슬<", "<aptNm><![CDATA[A<B>]]><", False),   # CDATA: fallback
    ("<aptNm>도곡렉슬<", "<aptNm>a\tb<", False),                # tab in a value: fallback
    ("<aptNm>도곡렉슬<", "<aptNm>a>b<", False),                 # '>' in a value: fallback
    ("<aptNm>도곡렉슬<", "<aptNm><!-- c -->x<", False),         # comment: fallback
    ("<aptNm>도곡렉슬</aptNm>", "<aptNm a=\"1\">x</aptNm>", False),  # attribute: fallback
    ("<aptNm>도곡렉슬</aptNm>", "<aptNm/>", False),             # empty-element tag: fallback
    ("</item><item>", "</item>\n<item>", False),              # whitespace between items
    ("<jibun>527</jibun>", "<jibun>1</jibun><jibun>2</jibun>", True),  # sent twice: last wins
])
def test_bulk_path_variants_match_the_reference(old, new, bulk):
    assert_same_scan(raw_page_with(old.encode(), new.encode()), bulk=bulk)


@pytest.mark.parametrize("old, new", [
    ("<aptNm>", "<item></item><aptNm>"),                        # <item> inside an item
    ("</aptNm><buildYear>", "</aptNm>x<buildYear>"),            # text between leaves
])
def test_bulk_path_leaves_odd_well_formed_documents_to_the_reference(old, new):
    # Known gap, not the bulk path's: the expat fast path reads these two differently from
    # ElementTree (stray text joins the next value; a nested <item> shifts the rows).
    assert_same_scan(raw_page_with(old.encode(), new.encode()), bulk=False, expat=False)


def test_bulk_path_entities_end_to_end():
    body = raw_page_with("<aptNm>도곡렉슬<".encode(), b"<aptNm> A&amp;B &#x41;&lt;&gt; <")
    row = parse_page(body, "11680").items.iloc[0]
    assert row["aptNm"] == "A&B A<>"


@pytest.mark.parametrize("items", [b"<items/>", b"<items></items>", b"<items> </items>",
                                   b"<items><item></item></items>",
                                   b"<items><item></item><item></item></items>"])
def test_bulk_path_empty_forms(items):
    body = Recording.load(YONGSAN_202506).subset(()).body(1, 1000, empty=items)
    assert_same_scan(body, bulk=items != b"<items> </items>")


def test_bulk_path_empty_item_between_items():
    rec = Recording.load(YONGSAN_202506)
    rec = rec.subset((rec.items[0], b"<item></item>", rec.items[1]))
    body = rec.body(1, 1000)
    assert_same_scan(body, bulk=True)
    df = parse_page(body, "11170").items
    assert len(df) == 3 and df.iloc[1].drop(["lawd_cd", "source"]).isna().all()


@pytest.mark.parametrize("old, new", [
    ("<aptNm>도곡렉슬</aptNm>", "<aptNm>도곡렉슬</jibun>"),          # mismatched end tag
    ("<aptNm>도곡렉슬</aptNm>", "<aptNm>도곡렉슬</aptNmX>"),
    ("<item><aptDong>", "<item>>aptDong>"),                     # '>' where '<' belongs
    ("<aptNm>도곡렉슬<", "<aptNm>A&B<"),                         # bare ampersand
    ("<aptNm>도곡렉슬<", "<aptNm>&nbsp;<"),                      # undefined entity
    ("<aptNm>도곡렉슬<", "<aptNm>&#0;<"),                        # not an XML character
    ("<aptNm>도곡렉슬<", "<aptNm>&#xD800;<"),
    ("<aptNm>도곡렉슬<", "<aptNm>a\x01b<"),                       # control character
    ("<aptNm>도곡렉슬<", "<aptNm>a\uffffb<"),                     # non-character
    ("<aptNm>도곡렉슬<", "<aptNm>a]]>b<"),
    ("</item><item>", "</item><item><item>"),                   # unbalanced items
    ("</item><item>", "</item></item><item>"),
    ("</item><item>", "</item>"),
    ("<resultCode>000</resultCode>", "<resultCode>000</resultcode>"),
    ("</items>", "</itemz>"),
    ("<resultMsg>OK<", "<resultMsg>O]]>K<"),
    ("<resultMsg>OK<", "<resultMsg>O\uffffK<"),
    ("<totalCount>231<", "<totalCount>2\x0231<"),
])
def test_bulk_path_never_accepts_malformed_xml(old, new):
    body = raw_page_with(old.encode(), new.encode())
    assert bulk_or_none(body) is None
    with pytest.raises(TransientError):
        parse_page(body, "11680")


def test_bulk_path_rejects_invalid_utf8():
    body = raw_page_with("도곡렉슬".encode(), "도곡렉슬".encode()[:-1])
    assert bulk_or_none(body) is None
    with pytest.raises(TransientError):
        parse_page(body, "11680")


def test_truncated_bodies_never_give_partial_rows():
    body = fixture(RAW_PAGE)
    ends = [m.end() for m in re.finditer(rb"</item>|</items>|</\w+>", body)]
    cuts = sorted(set(range(0, len(body), 13)) | set(ends)
                  | set(range(len(body) - 40, len(body))))
    for cut in cuts:
        if cut < len(body):
            assert bulk_or_none(body[:cut]) is None, cut
    for cut in sorted(set(ends[::5]) | {len(body) - 1, len(body) - len(b"</response>")}):
        if cut < len(body):
            with pytest.raises(TransientError):
                parse_page(body[:cut], "11680")


def test_bulk_path_random_mutations_never_disagree_with_the_strict_parser():
    """Whatever the bulk path accepts, ElementTree accepts too and reads the same cells."""
    import random
    rng = random.Random(20250620)
    base = Recording.load(RAW_PAGE)
    base = base.subset(base.items[:3]).body(1, 10)
    alphabet = [b"<", b">", b"/", b"&", b";", b" ", b"\x01", b"i", b"\xea", b"#", b"]", b""]
    accepted = 0
    for _ in range(1500):
        body = bytearray(base)
        for _ in range(rng.randint(1, 2)):
            at = rng.randrange(len(body))
            op = rng.random()
            if op < 0.4:
                body[at:at + 1] = rng.choice(alphabet)
            elif op < 0.7:
                body.insert(at, rng.choice(alphabet[:-1])[0])
            else:
                del body[at]
        body = bytes(body)
        got = bulk_or_none(body)
        if got is None:
            continue
        accepted += 1
        ref = molit._scan_tree(body)                 # must not raise
        assert got.n_items == ref.n_items
        pd.testing.assert_frame_equal(molit._items_frame(got, "1"),
                                      molit._items_frame(ref, "1"))
    assert accepted > 30                             # e.g. changed digits and letters


def molit_fixture_dir() -> Path:
    return Path(__file__).parent / "fixtures" / "molit"


# --------------------------------------------------------------------------------------------
# the client over HTTP
# --------------------------------------------------------------------------------------------
def test_fetch_pages_a_real_324_item_month(server):
    server.add_month("11680", 202405, GANGNAM_202405)
    with client_for(server, page_size=100) as client:
        df = client.fetch("11680", 202405)
    assert [(h.page_no, h.num_of_rows) for h in server.hits] == [(1, 100), (2, 100), (3, 100),
                                                               (4, 100)]
    assert len(df) == 324                       # == totalCount
    expected = parse_page(fixture(GANGNAM_202405), "11680").items
    pd.testing.assert_frame_equal(df, expected)

    with client_for(server, page_size=1000) as client:
        assert len(client.fetch("11680", 202405)) == 324
    assert len(server.hits) == 5


def test_transient_faults_are_retried_to_success(server, caplog):
    server.stall_seconds = 3.0                 # the stalled reply; the client waits 1 s
    server.add_month("11680", 202405, GANGNAM_202405)
    server.add_faults("11680", 202405,
                      "500", "timeout", "truncated", "ok",     # page 1
                      "drop", "429", "code01", "ok",           # page 2
                      "503", "code99", "ok")                   # page 3; page 4 clean
    with caplog.at_level(logging.WARNING, logger="aptpipe.sources.molit"), \
            client_for(server, timeout=1.0, retries=3) as client:
        df = client.fetch("11680", 202405)
    assert len(df) == 324
    assert len(server.hits) == 12
    assert [h.page_no for h in server.hits] == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4]
    text = caplog.text
    for reason in ("HTTP 500", "no response within 1s", "unparseable", "HTTP 429",
                   "APPLICATION_ERROR", "HTTP 503"):
        assert reason in text


@pytest.mark.parametrize("fault, words", [
    ("gateway30", "key not registered for this API, or URL-encoded twice; check "
                  "APTPIPE_SERVICE_KEY and the endpoint setting"),
    ("gateway30_403_named", "SERVICE_KEY_IS_NOT_REGISTERED_ERROR (code 30)"),
    ("json30_403", "key not registered"),
    ("code12", "NO_OPENAPI_SERVICE_ERROR (code 12)"),
    ("http404", "HTTP 404"),
])
def test_permanent_errors_fail_fast(server, fault, words):
    server.add_month("11680", 202405, GANGNAM_202405)
    server.add_faults("11680", 202405, fault)
    with client_for(server) as client, pytest.raises(PermanentError) as info:
        client.fetch("11680", 202405)
    assert len(server.hits) == 1
    assert words in str(info.value)
    assert "general 11680/202405 page 1" in str(info.value)


def test_quota_code_22_stops_at_once(server):
    server.add_faults("11680", 202405, "gateway22")
    with client_for(server) as client, pytest.raises(QuotaExceeded) as info:
        client.fetch("11680", 202405)
    assert len(server.hits) == 1
    assert "daily quota exceeded" in str(info.value)
    assert "finished districts are kept, the crawl resumes on the next run" in str(info.value)


def test_exhausted_retries_say_what_failed(server):
    server.add_faults("11680", 202405, *["500"] * 10)
    with client_for(server, retries=2) as client, pytest.raises(TransientError) as info:
        client.fetch("11680", 202405)
    assert len(server.hits) == 3
    msg = str(info.value)
    assert "gave up after 3 attempts" in msg and "HTTP 500" in msg
    assert "resumes on the next run" in msg


def test_item_count_must_match_total_count(server):
    rec = Recording.load(YONGSAN_202506)
    server.add_month("11170", 202506, rec, total=len(rec.items) + 1)
    with client_for(server) as client, pytest.raises(TransientError) as info:
        client.fetch("11170", 202506)
    assert len(server.hits) == 2                       # the district was tried twice
    assert "received 15 items but totalCount says 16" in str(info.value)


def test_single_item_and_empty_months(server):
    rec = Recording.load(YONGSAN_202506)
    server.add_month("11170", 202506, rec.subset(rec.items[:1]))
    server.add_month("11110", 202506, rec.subset(()), empty=b"<items></items>")
    server.add_faults("11140", 202506, "nodata03")
    with client_for(server) as client:
        assert len(client.fetch("11170", 202506)) == 1
        empty = client.fetch("11110", 202506)
        nodata = client.fetch("11140", 202506)
    assert len(empty) == 0 and len(nodata) == 0
    assert_raw_frame(empty)
    assert len(server.hits) == 3


def test_old_korean_tag_response_over_http(server):
    server.add_month("11440", 201512, Recording.load(OLD_FRAGMENT_FILE))
    with client_for(server) as client:
        df = client.fetch("11440", 201512)
    assert len(df) == 7 and (df["lawd_cd"] == "11440").all()
    assert df["dealDay"].iloc[0] == "1~10" and df["dealAmount"].iloc[0] == "38900"


@pytest.mark.parametrize("given", [KEY, KEY_ENCODED, re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), KEY_ENCODED),
                                   quote(KEY_ENCODED, safe=""), f"  {KEY}\n"],
                         ids=["decoded", "encoded", "encoded-lowercase-hex", "double-encoded", "padded"])
def test_key_is_encoded_exactly_once(server, given):
    server.add_month("11170", 202506, YONGSAN_202506)
    with client_for(server, key=given) as client:
        assert len(client.fetch("11170", 202506)) == 15
    (hit,) = server.hits
    assert hit.raw_key == KEY_ENCODED            # '+' -> %2B, '/' -> %2F, '=' -> %3D, once
    assert unquote(hit.raw_key) == KEY and "%25" not in hit.raw_query


def test_key_never_in_logs_exceptions_or_repr(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.add_month("11170", 202506, YONGSAN_202506)
    server.add_faults("11680", 202405, "gateway30")
    errors: list[BaseException] = []
    with client_for(server) as client:
        client.fetch("11170", 202506)
        try:
            client.fetch("11680", 202405)
        except MolitError as exc:
            errors.append(exc)
        texts = [repr(client), repr(client._key), str(client.cfg)]
    with socket.socket() as sock:                # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    with MolitClient(KEY, MolitConfig(base_url=f"http://127.0.0.1:{dead}/1613000", retries=1,
                                      backoff_base=0.001)) as client:
        try:
            client.fetch("11680", 202405)
        except MolitError as exc:
            errors.append(exc)
    assert [type(e) for e in errors] == [PermanentError, TransientError]
    assert "connection error" in str(errors[1])
    for exc in errors:
        assert exc.__cause__ is None and exc.__context__ is None
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    for text in texts:
        for spelling in KEY_SPELLINGS:
            assert spelling not in text
    # the urllib3 request lines were logged, with the key masked
    assert any(r.name.startswith("urllib3") and "serviceKey=***" in r.getMessage()
               for r in caplog.records)


def test_call_budget_stops_the_run(server):
    server.add_month("11680", 202405, GANGNAM_202405)
    with client_for(server, call_budget=2) as client, pytest.raises(QuotaExceeded) as info:
        client.fetch("11680", 202405)
    assert len(server.hits) == 2
    assert "call budget of 2 HTTP calls" in str(info.value)


def test_https_falls_back_to_http(server, caplog):
    server.add_month("11170", 202506, YONGSAN_202506)
    https_url = server.base_url.replace("http://", "https://")
    with caplog.at_level(logging.WARNING, logger="aptpipe.sources.molit"), \
            client_for(server, base_url=https_url) as client:
        assert len(client.fetch("11170", 202506)) == 15
    assert "using http for the rest of this run" in caplog.text
    with client_for(server, base_url=https_url, http_fallback=False, retries=1) as client, \
            pytest.raises(TransientError, match="TLS error"):
        client.fetch("11170", 202506)


def test_dev_endpoint_path():
    with FakeMolit(KEY, endpoint="dev") as srv:
        srv.add_month("11170", 202506, YONGSAN_202506)
        with client_for(srv, endpoint="dev") as client:
            assert len(client.fetch("11170", 202506)) == 15
        with client_for(srv) as client, pytest.raises(PermanentError, match="HTTP 404"):
            client.fetch("11170", 202506)


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError):
        MolitConfig(endpoint="detail")
    with pytest.raises(ValueError):
        MolitConfig(page_size=0)
    with pytest.raises(PermanentError, match="APTPIPE_SERVICE_KEY"):
        MolitClient("  ", MolitConfig())
    with MolitClient(KEY) as client, pytest.raises(ValueError):
        client.fetch("1168", 202405)


# --------------------------------------------------------------------------------------------
# crawl_month
# --------------------------------------------------------------------------------------------
def test_crawl_stops_on_quota_and_resumes_with_missing_districts(server, tmp_path):
    regions = ["11170", "11110", "11680", "11140"]
    server.add_month("11170", 202506, YONGSAN_202506)         # 15 rows
    server.add_month("11680", 202506, GANGNAM_202506)         # 68 rows
    server.add_faults("11680", 202506, "gateway22")           # 11110/11140: empty months
    seen: list[tuple[int, int, str]] = []

    with client_for(server) as client, pytest.raises(QuotaExceeded):
        crawl_month(client, 202506, regions, tmp_path, lambda *a: seen.append(a))
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["lawd_cd=11110.parquet", "lawd_cd=11170.parquet"]
    assert [s[:2] for s in seen] == [(1, 4), (2, 4)]
    assert {c: server.hits_for(c) for c in regions} == \
        {"11170": 1, "11110": 1, "11680": 1, "11140": 0}

    seen.clear()
    with client_for(server) as client:
        df = crawl_month(client, 202506, regions, tmp_path, lambda *a: seen.append(a))
    assert {c: server.hits_for(c) for c in regions} == \
        {"11170": 1, "11110": 1, "11680": 2, "11140": 1}
    assert [s[:2] for s in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert "checkpoint" in seen[0][2] and "fetched" in seen[2][2]
    assert_raw_frame(df)
    assert df["lawd_cd"].tolist() == ["11170"] * 15 + ["11680"] * 68
    assert len(list(tmp_path.glob("lawd_cd=*.parquet"))) == 4

    hits = len(server.hits)
    with client_for(server) as client:
        again = crawl_month(client, 202506, regions, tmp_path)
    assert len(server.hits) == hits
    pd.testing.assert_frame_equal(again, df)
