"""Client for the MOLIT apartment-trade Open API (국토교통부 아파트 매매 실거래가).

Two products share this client (``docs/molit_api.md`` in the shared folder, §1):

* ``endpoint="general"``: ``RTMSDataSvcAptTrade/getRTMSDataSvcAptTrade`` (20 item fields)
* ``endpoint="dev"``:     ``RTMSDataSvcAptTradeDev/getRTMSDataSvcAptTradeDev`` (32 fields)

They are separate subscriptions on data.go.kr: a key subscribed to one gets code 30 on the other.

Layers, bottom up:

``parse_page(body)``
    bytes of one response -> `Page` (items as raw string columns, `schema.RAW_COLUMNS`), or one
    of the exceptions below.  The common case -- a single-line response of the 2024 API with
    English tags -- is checked byte by byte and cut into values with numpy over the positions
    of '<' and '>' plus one arrow take (`_scan_bulk`): no Python code per element.  Anything
    not exactly that shape (Korean tags, gateway envelopes, whitespace or text between
    elements, CDATA, comments, a truncated body, ...) falls back to expat (C) in SAX mode:
    character data and end-tag events go straight into one list through C-level callbacks,
    expat's own name-interning table turns each known tag into its column number, and
    numpy/pyarrow turn that event list into string columns.  Responses with a tag outside the
    known vocabulary (a future API field) take the plain ElementTree reference path instead,
    which yields the same frame and reports the new tags.  Both tag generations map to the
    English raw columns: the 2024 API's English tags and the old API's Korean tags
    (`schema.KOREAN_TAGS`).  Every value is stripped, a blank value (the API sends ``" "``)
    becomes null, and ``dealAmount`` loses its thousands commas and padding
    (``"    82,500"`` -> ``"82500"``).  Everything else stays verbatim: in particular old
    months' day buckets such as ``"1~10"`` are kept in ``dealDay`` as that string; mapping a
    bucket to a date is the cleaner's job.

``MolitClient.fetch(lawd_cd, deal_ym)``
    every page of one district-month over one `requests.Session`, with retries (exponential
    backoff with jitter) for network faults, HTTP 429/5xx, unparseable bodies and the provider's
    transient codes; fails at once on configuration errors; stops the run on the daily quota or
    the per-run call budget; checks the row count against ``totalCount``.

``crawl_month(client, deal_ym, regions, checkpoint_dir)``
    one month over many districts, each finished district written as an immutable checkpoint so
    an interrupted crawl (quota, error, kill) resumes where it stopped.

The service key is sent URL-encoded exactly once, whichever form (data.go.kr's "Encoding" key
``...%2B...%3D%3D`` or "Decoding" key ``...+...==``) it is given in.  It never appears in a log
record, an exception message or a repr: the client builds its own messages, strips the key from
any text that comes back from the network, and installs a redacting `logging.Filter` on the
urllib3/requests loggers (whose DEBUG records print request URLs) while it is open.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import random
import re
import time
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, quote_plus, unquote
from xml.parsers import expat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import requests

from aptpipe.months import parse_ym
from aptpipe.schema import ITEM_TAGS, KOREAN_TAGS, RAW_COLUMNS, conform_raw, empty_raw
from aptpipe.storage import write_parquet

__all__ = [
    "MolitConfig", "MolitError", "PermanentError", "QuotaExceeded", "TransientError", "Page",
    "parse_page", "MolitClient", "crawl_month", "checkpoint_path",
]

log = logging.getLogger(__name__)

SOURCE = "molit"

ENDPOINT_PATHS: Mapping[str, str] = {
    "general": "RTMSDataSvcAptTrade/getRTMSDataSvcAptTrade",
    "dev": "RTMSDataSvcAptTradeDev/getRTMSDataSvcAptTradeDev",
}

# A district's pages are refetched once if their items do not add up to totalCount.
_DISTRICT_ATTEMPTS = 2
# Upper bound of one backoff sleep (also caps a server's Retry-After).
_MAX_DELAY = 60.0
_SNIPPET_CHARS = 200
# Loggers whose records may contain request URLs (and so the key).
_URL_LOGGERS: tuple[str, ...] = (
    "urllib3", "urllib3.connectionpool", "urllib3.connection", "urllib3.poolmanager",
    "urllib3.response", "urllib3.util.retry", "requests", __name__,
)


# --------------------------------------------------------------------------------------------
# configuration and errors
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MolitConfig:
    """How to reach the API.  The key is not part of it (pass it to `MolitClient`)."""

    base_url: str = "https://apis.data.go.kr/1613000"
    endpoint: str = "general"     # "general" (20 fields) or "dev" (32 fields, incl. aptSeq)
    timeout: float = 30.0         # seconds, connect and read
    page_size: int = 1000         # numOfRows; the API's field is 4 digits wide
    retries: int = 5              # extra attempts per page after the first
    backoff_base: float = 1.0     # seconds; delay n = base * 2**(n-1) * U(0.5, 1.5), capped
    call_budget: int = 9000       # max HTTP calls per client (the daily quota is 10,000/API)
    http_fallback: bool = True    # on an https TLS/connection error switch this client to http

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINT_PATHS:
            raise ValueError(f"endpoint must be one of {sorted(ENDPOINT_PATHS)}, "
                             f"not {self.endpoint!r}")
        if not re.match(r"^https?://[^/?#]+", self.base_url):
            raise ValueError(f"base_url must be an http(s) URL, not {self.base_url!r}")
        if not 1 <= self.page_size <= 9999:
            raise ValueError(f"page_size must be in 1..9999, not {self.page_size}")
        if self.timeout <= 0 or self.backoff_base < 0 or self.retries < 0:
            raise ValueError("timeout must be > 0, backoff_base and retries >= 0")
        if self.call_budget < 1:
            raise ValueError(f"call_budget must be >= 1, not {self.call_budget}")

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{ENDPOINT_PATHS[self.endpoint]}"


class MolitError(Exception):
    """Base of every error this module raises.  Messages never contain the service key.

    `code` is the provider's result/gateway code when the error came from one (e.g. ``"30"``).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentError(MolitError):
    """A configuration or request error that retrying cannot fix (bad key, wrong URL, ...)."""


class QuotaExceeded(MolitError):
    """Daily quota (code 22) or this run's call budget is used up; resume on the next run."""


class TransientError(MolitError):
    """A failure worth retrying (network, provider hiccup, garbled body).  Raised by the client
    once its retries are exhausted; the next run retries the district."""


_RESUME = "finished districts are kept, the crawl resumes on the next run"

_CODE_NAMES: Mapping[str, str] = {
    "00": "NORMAL_SERVICE", "01": "APPLICATION_ERROR", "02": "DB_ERROR", "03": "NODATA_ERROR",
    "04": "HTTP_ERROR", "05": "SERVICETIME_OUT", "10": "INVALID_REQUEST_PARAMETER_ERROR",
    "11": "NO_MANDATORY_REQUEST_PARAMETERS_ERROR", "12": "NO_OPENAPI_SERVICE_ERROR",
    "20": "SERVICE_ACCESS_DENIED_ERROR", "22": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
    "30": "SERVICE_KEY_IS_NOT_REGISTERED_ERROR", "31": "DEADLINE_HAS_EXPIRED_ERROR",
    "32": "UNREGISTERED_IP_ERROR", "33": "UNSIGNED_CALL_ERROR", "99": "UNKNOWN_ERROR",
}
_NAME_CODES: Mapping[str, str] = {name: code for code, name in _CODE_NAMES.items()}
_OK_CODES = frozenset({"00"})          # "000" (new API) and "00" (old) both normalise to "00"
_NODATA_CODES = frozenset({"03"})
_TRANSIENT_CODES = frozenset({"01", "02", "04", "05", "99"})
_QUOTA_CODE = "22"
_PERMANENT_HINTS: Mapping[str, str] = {
    "10": "the serviceKey parameter is missing or malformed; check APTPIPE_SERVICE_KEY",
    "11": "a mandatory request parameter is missing (LAWD_CD, DEAL_YMD); check the district "
          "code and month",
    "12": "no such Open API service at this URL (retired or mistyped); check base_url and the "
          "endpoint setting",
    "20": "access denied: the key is not approved for this API; apply for it (활용신청) on "
          "data.go.kr or change the endpoint setting",
    "30": "key not registered for this API, or URL-encoded twice; check APTPIPE_SERVICE_KEY "
          "and the endpoint setting (general and dev are separate subscriptions, and a new key "
          "can take 1-2 hours to activate)",
    "31": "the key's usage period (활용기간) has expired; extend it on data.go.kr",
    "32": "this machine's IP address or domain is not registered for the key on data.go.kr",
    "33": "the call was rejected as unsigned; check APTPIPE_SERVICE_KEY",
}


def _normalise_code(raw: str | None) -> str | None:
    """'000'/'00'/'0' -> '00', '3' -> '03'; a code name ('NODATA_ERROR') -> its number."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if text.isdigit():
        return f"{int(text):02d}"
    return _NAME_CODES.get(text.upper().replace(" ", "_"), text)


def _code_label(code: str) -> str:
    name = _CODE_NAMES.get(code)
    return f"{name} (code {code})" if name else f"code {code}"


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Page:
    """One parsed response page.  `items` has `schema.RAW_COLUMNS` (all string dtype)."""

    items: pd.DataFrame
    total_count: int
    page_no: int
    num_of_rows: int
    result_code: str                       # as sent ("000" new API, "00" old API, "03", ...)
    unknown_tags: frozenset[str] = field(default_factory=frozenset)  # item tags not in schema


_N_FIELDS = len(ITEM_TAGS)
_FIELD_INDEX: dict[str, int] = {tag: i for i, tag in enumerate(ITEM_TAGS)}
_FIELD_INDEX.update({ko: _FIELD_INDEX[en] for ko, en in KOREAN_TAGS.items()})
_DEAL_AMOUNT = _FIELD_INDEX["dealAmount"]
_META_TAGS: tuple[str, ...] = (
    "resultCode", "resultMsg", "numOfRows", "pageNo", "totalCount",
    "errMsg", "returnAuthMsg", "returnReasonCode",
)
_CONTAINER_TAGS: tuple[str, ...] = (
    "response", "header", "body", "items", "OpenAPI_ServiceResponse", "cmmMsgHeader",
)
# Event ids handed out by expat's interning table: item fields, then <item>, meta, containers.
_ITEM_ID = _N_FIELDS
_META_BASE = _ITEM_ID + 1
_CONTAINER_BASE = _META_BASE + len(_META_TAGS)
_INTERN: dict[str, int] = dict(_FIELD_INDEX)
_INTERN["item"] = _ITEM_ID
_INTERN.update({tag: _META_BASE + i for i, tag in enumerate(_META_TAGS)})
_INTERN.update({tag: _CONTAINER_BASE + i for i, tag in enumerate(_CONTAINER_TAGS)})
_ID_NAME: dict[int, str] = {
    **{_META_BASE + i: t for i, t in enumerate(_META_TAGS)},
    **{_CONTAINER_BASE + i: t for i, t in enumerate(_CONTAINER_TAGS)},
}


class _Scan(NamedTuple):
    """What a scanner found, before any cleaning.

    Item values are given as cells: `values[k]` (unstripped text) belongs to item
    ``keys[k] // _N_FIELDS`` and column ``keys[k] % _N_FIELDS``; cells never sent are null.
    """

    root: str
    meta: dict[str, str | None]             # unstripped text of the envelope fields
    n_items: int
    keys: np.ndarray                        # int64 cell numbers
    values: Sequence[str] | pa.Array        # same length as keys (str / large_string)
    unknown: frozenset[str]                 # item child tags outside the vocabulary


class _Fallback(Exception):
    """The fast scanner met something it does not handle; use the reference path."""


@functools.cache
def _fast_scanner_works() -> bool:
    """The fast path relies on expat returning the *values* of its intern table as tag names
    (CPython's pyexpat does).  Checked once, lazily; if not, everything uses ElementTree."""
    events: list[Any] = []
    parser = expat.ParserCreate(intern={"a": 7, "b": 8})
    parser.buffer_text = True
    parser.CharacterDataHandler = events.append
    parser.EndElementHandler = events.append
    try:
        parser.Parse(b"<a><b>x&amp;y</b></a>", True)
    except expat.ExpatError:
        return False
    ok = events == ["x&y", 8, 7]
    if not ok:
        log.debug("expat interning check failed; using the ElementTree parser")
    return ok


def _scan_fast(body: bytes) -> _Scan:
    """expat (C) with C-level callbacks, then numpy: no Python code runs per element.

    expat reports each end tag as the int our intern table maps its name to, and character
    data as str, both appended to one list.  With `buffer_text`, a leaf's text is one str
    right before its end tag; whitespace between elements merges into the next leaf's text,
    which stripping removes later.
    """
    names = dict(_INTERN)
    parser = expat.ParserCreate(intern=names)
    parser.buffer_text = True
    parser.buffer_size = 1 << 16
    events: list[Any] = []
    parser.CharacterDataHandler = events.append
    parser.EndElementHandler = events.append
    parser.Parse(body, True)
    if len(names) != len(_INTERN):          # expat added a tag we do not know
        raise _Fallback
    n_events = len(events)
    is_tag = np.fromiter(map(isinstance, events, itertools.repeat(int)), dtype=bool,
                         count=n_events)
    if not is_tag[-1] or (~is_tag[1:] & ~is_tag[:-1]).any():
        raise _Fallback                      # text split in two events (> buffer_size)
    obj = np.array(events, dtype=object)
    tag_pos = np.flatnonzero(is_tag)
    tag_id = obj[tag_pos].astype(np.int64)
    root = int(tag_id[-1])
    if root < _META_BASE:
        raise _Fallback                      # e.g. a bare <item> document: let ET judge
    is_item_end = tag_id == _ITEM_ID
    n_items = int(is_item_end.sum())
    item_no = np.cumsum(is_item_end) - is_item_end
    text_pos = tag_pos - 1
    has_text = np.zeros(len(tag_pos), dtype=bool)
    has_text[1:] = ~is_tag[text_pos[1:]]
    if tag_pos[0] > 0:
        has_text[0] = True
    cell = (tag_id < _N_FIELDS) & has_text & (item_no < n_items)
    keys = item_no[cell] * _N_FIELDS + tag_id[cell]
    values = obj[text_pos[cell]]
    meta: dict[str, str | None] = {}
    for k in np.flatnonzero((tag_id >= _META_BASE) & (tag_id < _CONTAINER_BASE)).tolist():
        meta[_ID_NAME[int(tag_id[k])]] = events[text_pos[k]] if has_text[k] else None
    return _Scan(_ID_NAME[root], meta, n_items, keys, values, frozenset())


# --- bulk path: the common case, a single-line new-API (English tags) response ---------------
# A real response is one line: <?xml ...?><response><header>...</header><body><items><item>
# <aptDong>109</aptDong>...</item>...</items><numOfRows>..</numOfRows>...</body></response>.
# `_scan_bulk` checks that the document is exactly that shape -- byte by byte, with numpy over
# the positions of '<' and '>' -- and cuts the values out without any per-element Python code.
# Anything else (Korean tags, whitespace between elements, attributes, comments, CDATA, '>' or
# a control character in a value, an unknown tag, a truncated body, ...) raises `_Fallback`
# and takes the expat/ElementTree paths, which parse (or reject) it strictly.
_BULK_HEAD = re.compile(
    rb'(?:<\?xml version="1\.0"(?: encoding="[Uu][Tt][Ff]-8")?(?: standalone="(?:yes|no)")?'
    rb'\?>)?<response><header><resultCode>([^<>&\x00-\x1f]*)</resultCode>'
    rb'<resultMsg>([^<>&\x00-\x1f]*)</resultMsg></header><body><items(/?)>')
_BULK_TAIL = re.compile(
    rb'<numOfRows>([^<>&\x00-\x1f]*)</numOfRows><pageNo>([^<>&\x00-\x1f]*)</pageNo>'
    rb'<totalCount>([^<>&\x00-\x1f]*)</totalCount></body></response>[ \t\r\n]*')
_BULK_META = ("resultCode", "resultMsg", "numOfRows", "pageNo", "totalCount")
# `</item><item>` becomes this empty leaf (same length), so every element between the first
# `<item>` and the last `</item>` is a leaf `<tag>value</tag>` and item ends are leaves too.
_ITEM_SEP, _ITEM_MARK = b"</item><item>", b"<item></item>"
_BULK_TAGS: tuple[str, ...] = ITEM_TAGS + ("item",)       # id = position; "item" = _ITEM_ID
_TAG_BYTES = 16                                            # longest tag we accept
_LT, _GT, _SLASH = ord("<"), ord(">"), ord("/")


def _tag_words(names: Iterable[bytes]) -> np.ndarray:
    """Tag names (<= 16 bytes) as zero-padded pairs of uint64."""
    return np.frombuffer(b"".join(n.ljust(_TAG_BYTES, b"\0") for n in names),
                         dtype=np.uint64).reshape(-1, 2)


def _word_hash(words: np.ndarray) -> np.ndarray:
    return words[:, 0] * np.uint64(0x9E3779B97F4A7C15) ^ words[:, 1]


_BULK_WORDS = _tag_words(t.encode() for t in _BULK_TAGS)
assert max(map(len, _BULK_TAGS)) <= _TAG_BYTES
_BULK_ORDER = np.argsort(_word_hash(_BULK_WORDS))
_BULK_HASHES = _word_hash(_BULK_WORDS)[_BULK_ORDER]
assert len(np.unique(_BULK_HASHES)) == len(_BULK_TAGS)
# _LEN_MASK[n]: keeps the first n bytes of a 16-byte window.
_LEN_MASK = _tag_words(b"\xff" * n for n in range(_TAG_BYTES + 1))

_XML_REFS = re.compile(r"&(?:#([0-9]{1,7})|#x([0-9A-Fa-f]{1,6})|(amp|lt|gt|quot|apos));")
_NAMED_REFS = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _unescape(text: str) -> str:
    """XML references -> characters, exactly as expat does; `_Fallback` on anything else."""
    def one(m: re.Match[str]) -> str:
        if m[3]:
            return _NAMED_REFS[m[3]]
        code = int(m[1]) if m[1] else int(m[2], 16)
        if not (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF
                or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF):
            raise _Fallback
        return chr(code)

    if "&" in _XML_REFS.sub("", text):
        raise _Fallback                      # a bare '&' or an entity we do not define
    return _XML_REFS.sub(one, text)


def _bulk_meta(parts: Iterable[bytes], names: Sequence[str]) -> dict[str, str | None]:
    try:
        meta = {k: v.decode("utf-8") or None for k, v in zip(names, parts)}
    except UnicodeDecodeError:
        raise _Fallback from None
    if any("\ufffe" in v or "\uffff" in v for v in meta.values() if v):
        raise _Fallback
    return meta


def _scan_bulk(body: bytes) -> _Scan:
    """The single-line English-tag response, validated and cut into cells with numpy."""
    head = _BULK_HEAD.match(body)
    if head is None:
        raise _Fallback
    start = head.end()
    tail_at = body.rfind(b"<numOfRows>")
    tail = _BULK_TAIL.fullmatch(body, tail_at) if tail_at >= start else None
    if tail is None:
        raise _Fallback                      # truncated, or not the usual envelope
    meta = _bulk_meta(head.groups()[:2], _BULK_META[:2])
    meta.update(_bulk_meta(tail.groups(), _BULK_META[2:]))
    if head[3]:                              # <items/>
        if tail_at != start:
            raise _Fallback
        return _Scan("response", meta, 0, np.zeros(0, np.int64), [], frozenset())
    end = tail_at - len(b"</items>")
    if end < start or body[end:tail_at] != b"</items>":
        raise _Fallback
    if end == start:                         # <items></items>
        return _Scan("response", meta, 0, np.zeros(0, np.int64), [], frozenset())
    # Items region: <item>...</item><item>...</item>; `lo:hi` is between the outer tags.
    lo, hi = start + len(b"<item>"), end - len(b"</item>")
    if hi < lo or body[start:lo] != b"<item>" or body[hi:end] != b"</item>":
        raise _Fallback
    # Every `</item><item>` becomes an empty leaf <item></item>.  Below, the number of such
    # leaves must equal the number of replacements: an <item> anywhere else fails there.
    n_seps = body.count(_ITEM_SEP, lo, hi)
    n_items = n_seps + 1
    if hi == lo:                             # a single empty <item></item>
        return _Scan("response", meta, 1, np.zeros(0, np.int64), [], frozenset())
    doc = body.replace(_ITEM_SEP, _ITEM_MARK) if n_seps else body
    a = np.frombuffer(doc, dtype=np.uint8)
    core = a[lo:hi]
    if (core < 0x20).any():
        raise _Fallback                      # control characters, tabs, newlines: let expat judge
    ef = np.flatnonzero(core[:-2] == 0xEF)
    if len(ef) and ((core[ef + 1] == 0xBF) & (core[ef + 2] >= 0xBE)).any():
        raise _Fallback                      # U+FFFE / U+FFFF are not XML characters
    lt = np.flatnonzero(core == _LT)
    gt = np.flatnonzero(core == _GT)
    # '<' and '>' must alternate, starting with '<' at lo and ending with '>' at hi - 1, in
    # groups of four per leaf: <tag>value</tag>, with nothing between two leaves.
    if len(lt) != len(gt) or len(lt) % 2 or lt[0] != 0 or gt[-1] != len(core) - 1 \
            or not (gt > lt).all() or not (lt[1:] > gt[:-1]).all():
        raise _Fallback
    lt = lt + lo
    gt = gt + lo
    lt_open, gt_open, lt_close, gt_close = lt[0::2], gt[0::2], lt[1::2], gt[1::2]
    if not (lt_open[1:] == gt_close[:-1] + 1).all():
        raise _Fallback                      # text between two leaves
    tag_len = gt_open - lt_open - 1
    if tag_len.min() < 1 or tag_len.max() > _TAG_BYTES \
            or not (gt_close - lt_close - 2 == tag_len).all() \
            or not (a[lt_close + 1] == _SLASH).all():
        raise _Fallback
    if int(lt_close.max()) + 2 + _TAG_BYTES > len(a):
        raise _Fallback                      # cannot happen with the tail checked; be safe
    windows = np.lib.stride_tricks.as_strided(a, shape=(len(a) - _TAG_BYTES + 1, _TAG_BYTES),
                                              strides=(1, 1), writeable=False)
    mask = np.take(_LEN_MASK, tag_len, axis=0)
    words = windows[lt_open + 1].view(np.uint64) & mask
    if not (words == windows[lt_close + 2].view(np.uint64) & mask).all():
        raise _Fallback                      # </other> closing <tag>
    pos = np.minimum(np.searchsorted(_BULK_HASHES, _word_hash(words)), len(_BULK_TAGS) - 1)
    ids = _BULK_ORDER[pos]
    if not (np.take(_BULK_WORDS, ids, axis=0) == words).all():
        raise _Fallback                      # a tag outside the vocabulary
    is_sep = ids == _ITEM_ID
    if int(is_sep.sum()) != n_seps or (lt_close[is_sep] != gt_open[is_sep] + 1).any():
        raise _Fallback
    # Values: an arrow array over `doc` whose even elements are the values and odd elements
    # the markup between them; taking the even ones copies just the values, in C.
    offsets = np.empty(2 * len(lt_open), dtype=np.int64)
    offsets[0::2] = gt_open + 1
    offsets[1::2] = lt_close
    spans = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(offsets) - 1,
                                             [None, pa.py_buffer(offsets), pa.py_buffer(doc)])
    keep = ~is_sep
    try:
        values = spans.take(pa.array(2 * np.flatnonzero(keep))).cast(pa.large_string())
    except pa.ArrowInvalid:
        raise _Fallback from None           # not UTF-8
    if doc.find(b"&", lo, hi) >= 0:
        has_ref = pc.match_substring(values, "&")
        where = np.flatnonzero(has_ref.to_numpy(zero_copy_only=False))
        fixed = [_unescape(v) for v in values.take(pa.array(where)).to_pylist()]
        values = pc.replace_with_mask(values, has_ref, pa.array(fixed, pa.large_string()))
    item_no = np.cumsum(is_sep)[keep]
    keys = item_no * _N_FIELDS + ids[keep]
    return _Scan("response", meta, n_items, keys.astype(np.int64), values, frozenset())


class _CellBuilder:
    """Collects cells item by item (reference and JSON paths)."""

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.values: list[str] = []
        self.n_items = 0
        self.unknown: set[str] = set()

    def add_item(self, fields: Iterable[tuple[str, str | None]]) -> None:
        base = self.n_items * _N_FIELDS
        for tag, text in fields:
            i = _FIELD_INDEX.get(tag)
            if i is None:
                self.unknown.add(tag)
            elif text is not None:
                self.keys.append(base + i)
                self.values.append(text)
        self.n_items += 1

    def scan(self, root: str, meta: dict[str, str | None]) -> _Scan:
        return _Scan(root, meta, self.n_items, np.array(self.keys, dtype=np.int64),
                     self.values, frozenset(self.unknown))


def _scan_tree(body: bytes) -> _Scan:
    """Reference parser (ElementTree, C-accelerated): handles any well-formed document."""
    root = ET.fromstring(body)
    meta: dict[str, str | None] = {}
    cells = _CellBuilder()
    for el in root.iter():
        if el.tag == "item":
            cells.add_item((str(child.tag),
                            "".join(child.itertext()) if len(child) else child.text)
                           for child in el)
        elif el.tag in _META_TAGS and len(el) == 0:
            meta[str(el.tag)] = el.text
    return cells.scan(str(root.tag), meta)


def _scan_json(body: bytes) -> _Scan:
    """The gateway sometimes answers in JSON (HTTP 403 with OpenAPI_ServiceResponse)."""
    doc = json.loads(body)
    if not isinstance(doc, dict) or len(doc) != 1:
        raise ValueError("unexpected JSON document")
    root, inner = next(iter(doc.items()))
    meta: dict[str, str | None] = {}
    cells = _CellBuilder()

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if key == "item":
                for item in value if isinstance(value, list) else [value]:
                    cells.add_item((tag, None if v is None else str(v))
                                   for tag, v in (item or {}).items())
            elif key in _META_TAGS and not isinstance(value, (dict, list)):
                meta[key] = None if value is None else str(value)
            else:
                walk(value)

    walk(inner)
    return cells.scan(str(root), meta)


def _scan(body: bytes) -> _Scan:
    body = body.lstrip()
    if body.startswith(b"{"):
        return _scan_json(body)
    with contextlib.suppress(_Fallback):
        return _scan_bulk(body)
    if _fast_scanner_works():
        with contextlib.suppress(_Fallback):
            return _scan_fast(body)
    return _scan_tree(body)


# pandas' arrow-backed "string" dtype stores large_string: build that to avoid casts.
_NULL = pa.scalar(None, pa.large_string())


def _blank_to_null(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), _NULL, arr)


def _to_pandas(arr: pa.Array) -> Any:
    """Arrow strings -> pandas "string" array, zero-copy when that dtype is arrow-backed."""
    dtype = pd.StringDtype()
    if dtype.storage == "pyarrow" and arr.type == pa.large_string():
        return pd.arrays.ArrowStringArray(arr)
    return pd.array(arr, dtype=dtype)


def _items_frame(scan: _Scan, lawd_cd: str | None) -> pd.DataFrame:
    """Cells -> RAW_COLUMNS: strip every value, blank -> null, commas out of dealAmount."""
    n = scan.n_items
    if n == 0:
        return empty_raw()
    keys = scan.keys
    if np.bincount(keys, minlength=n * _N_FIELDS).max() > 1:
        # A field sent twice in one item (e.g. old 지역코드 and 법정동시군구코드): last wins.
        _, last = np.unique(keys[::-1], return_index=True)
        keep = np.sort(len(keys) - 1 - last)
        keys = keys[keep]
        values = (scan.values.take(pa.array(keep)) if isinstance(scan.values, pa.Array)
                  else [scan.values[i] for i in keep.tolist()])
    else:
        values = scan.values
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.large_string())
    cleaned = _blank_to_null(pc.utf8_trim_whitespace(values))
    where = np.full(n * _N_FIELDS, -1, dtype=np.int64)
    where[keys] = np.arange(len(keys), dtype=np.int64)
    grid = where.reshape(n, _N_FIELDS)
    data: dict[str, Any] = {}
    for j, tag in enumerate(ITEM_TAGS):
        idx = np.ascontiguousarray(grid[:, j])
        missing = idx < 0
        if missing.all():
            col = pa.nulls(n, pa.large_string())
        else:
            col = pc.take(cleaned, pa.array(idx, mask=missing))
            if j == _DEAL_AMOUNT:
                col = _blank_to_null(pc.utf8_trim_whitespace(
                    pc.replace_substring(col, ",", "")))
        data[tag] = _to_pandas(col)
    data["lawd_cd"] = _to_pandas(pa.array([lawd_cd] * n, type=pa.large_string()))
    data["source"] = _to_pandas(pa.array([SOURCE] * n, type=pa.large_string()))
    # Already exactly RAW_COLUMNS as string columns, i.e. what conform_raw returns (tested);
    # fetch() still passes each district through conform_raw once.  Skipping it per page
    # saves its ~10 ms fixed cost (one column insert at a time).
    return pd.DataFrame(data, columns=list(RAW_COLUMNS))


def _snippet(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "..."


def _stripped(meta: Mapping[str, str | None], key: str) -> str | None:
    value = meta.get(key)
    value = value.strip() if value is not None else None
    return value or None


def _int_field(meta: Mapping[str, str | None], key: str, default: int | None) -> int:
    value = _stripped(meta, key)
    if value is None:
        if default is None:
            raise TransientError(f"malformed response: <{key}> is missing")
        return default
    try:
        return int(value)
    except ValueError:
        raise TransientError(f"malformed response: <{key}> is {value!r}") from None


def _raise_for_code(code: str, detail: str) -> None:
    """Raise the exception matching a non-OK provider or gateway code."""
    label = _code_label(code)
    if code == _QUOTA_CODE:
        raise QuotaExceeded(f"daily quota exceeded ({label}): {_RESUME}", code=code)
    if code in _PERMANENT_HINTS:
        raise PermanentError(f"{label}: {_PERMANENT_HINTS[code]}", code=code)
    if code in _TRANSIENT_CODES:
        raise TransientError(f"provider error {label}{detail}", code=code)
    raise TransientError(f"unrecognised provider {label}{detail}", code=code)


def parse_page(body: bytes, lawd_cd: str | None = None) -> Page:
    """Parse one API response body.

    Returns a `Page` whose `items` has `schema.RAW_COLUMNS` (``lawd_cd`` = the given district,
    ``source`` = ``"molit"``).  "No data" (code 03) and an empty ``<items/>`` give zero rows.
    Raises `QuotaExceeded` (code 22), `PermanentError` (configuration codes 10-12, 20, 30-33)
    or `TransientError` (codes 01/02/04/05/99, unknown codes, truncated or unparseable bodies,
    a success without ``totalCount``); the error's `code` is set when the provider sent one.
    """
    problem: str | None = None
    try:
        scan = _scan(body)
    except (expat.ExpatError, ET.ParseError, ValueError) as exc:  # JSONDecodeError is ValueError
        problem = f"unparseable response ({exc}): {_snippet(body)!r}"
    if problem is not None:
        raise TransientError(problem)

    meta = scan.meta
    if scan.root == "OpenAPI_ServiceResponse":
        raw = _stripped(meta, "returnReasonCode") or _stripped(meta, "returnAuthMsg")
        code = _normalise_code(raw) or "99"
        detail = ", ".join(f"{k}={v}" for k in ("errMsg", "returnAuthMsg")
                           if (v := _stripped(meta, k)))
        _raise_for_code(code, f" from the gateway ({detail})" if detail else " from the gateway")
    if scan.root != "response":
        raise TransientError(f"unexpected response document <{scan.root}>: {_snippet(body)!r}")

    sent = _stripped(meta, "resultCode")
    code = _normalise_code(sent)
    if code is None:
        raise TransientError(f"malformed response: no resultCode: {_snippet(body)!r}")
    if code not in _OK_CODES and code not in _NODATA_CODES:
        msg = _stripped(meta, "resultMsg")
        _raise_for_code(code, f": {msg}" if msg else "")
    total = _int_field(meta, "totalCount", 0 if code in _NODATA_CODES else None)
    return Page(
        items=_items_frame(scan if code in _OK_CODES else scan._replace(n_items=0), lawd_cd),
        total_count=total,
        page_no=_int_field(meta, "pageNo", 1),
        num_of_rows=_int_field(meta, "numOfRows", 0),
        result_code=sent or "",
        unknown_tags=scan.unknown,
    )


# --------------------------------------------------------------------------------------------
# the key
# --------------------------------------------------------------------------------------------
class _Secret:
    """Holds the decoded key; prints as ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("the service key is not picklable")


def _decode_key(service_key: str) -> str:
    """Either data.go.kr form -> the decoded key (requests then encodes it exactly once)."""
    key = (service_key or "").strip()
    for _ in range(3):                     # tolerate a key pasted already double-encoded
        if not re.search(r"%[0-9A-Fa-f]{2}", key):
            break
        key = unquote(key)
    if not key:
        raise PermanentError("no service key: set APTPIPE_SERVICE_KEY to the data.go.kr key "
                             "(the Encoding or the Decoding form)")
    return key


class _Redactor(logging.Filter):
    """Replaces every spelling of the key in a log record by ``***``."""

    def __init__(self, key: str) -> None:
        super().__init__()
        once = quote(key, safe="")
        lower_hex = re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), once)
        forms = {key, once, quote_plus(key), quote(key), lower_hex, quote(once, safe="")}
        self._forms = tuple(sorted(forms, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            if self.redact(formatted) != formatted:
                record.msg = f"{record.msg}\n{self.redact(formatted)}"
                record.exc_info, record.exc_text = None, None
        return True


# --------------------------------------------------------------------------------------------
# the client
# --------------------------------------------------------------------------------------------
class _Retry(NamedTuple):
    reason: str
    retry_after: float | None = None


class MolitClient:
    """Fetches district-months from one API product.  Not thread-safe; one per worker.

    Use as a context manager (or call `close`) to release the session and the log filter.
    """

    def __init__(self, service_key: str, cfg: MolitConfig | None = None,
                 session: requests.Session | None = None) -> None:
        self.cfg = cfg if cfg is not None else MolitConfig()
        key = _decode_key(service_key)
        self._key = _Secret(key)
        self._redactor = _Redactor(key)
        for name in _URL_LOGGERS:
            logging.getLogger(name).addFilter(self._redactor)
        # Remove the filter when the client is closed or garbage-collected.
        self._unhook = weakref.finalize(self, _remove_filter, self._redactor)
        self._session = session if session is not None else requests.Session()
        self._owns_session = session is None
        self._calls = 0
        self._use_http = False
        self._rng = random.Random()
        self._warned_tags: set[str] = set()

    # housekeeping ------------------------------------------------------------------------
    @property
    def calls(self) -> int:
        """HTTP calls made so far (counted against `MolitConfig.call_budget`)."""
        return self._calls

    def close(self) -> None:
        self._unhook()
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> MolitClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"MolitClient(endpoint={self.cfg.endpoint!r}, url={self._url()!r}, "
                f"calls={self._calls}/{self.cfg.call_budget})")

    # public --------------------------------------------------------------------------------
    def fetch(self, lawd_cd: str, deal_ym: int) -> pd.DataFrame:
        """All trades of one district (5-digit LAWD_CD) and contract month (YYYYMM).

        Returns `schema.RAW_COLUMNS` with ``lawd_cd`` = the district asked for.  Raises
        `QuotaExceeded`, `PermanentError`, or `TransientError` when retries are exhausted or
        the items never add up to ``totalCount``.
        """
        lawd = str(lawd_cd).strip()
        if not re.fullmatch(r"\d{5}", lawd):
            raise ValueError(f"LAWD_CD must be 5 digits, not {lawd_cd!r}")
        ym = parse_ym(deal_ym)
        where = f"{self.cfg.endpoint} {lawd}/{ym}"
        problem = ""
        for attempt in range(1, _DISTRICT_ATTEMPTS + 1):
            frames, total, problem = self._fetch_pages(lawd, ym, where)
            if not problem:
                rows = sum(len(f) for f in frames)
                log.info("%s: %d rows in %d page(s) (%d calls so far)",
                         where, rows, len(frames), self._calls)
                return conform_raw(frames[0] if len(frames) == 1
                                   else pd.concat(frames, ignore_index=True))
            log.warning("%s: %s (district attempt %d/%d)", where, problem, attempt,
                        _DISTRICT_ATTEMPTS)
        raise TransientError(f"{where}: {problem} after {_DISTRICT_ATTEMPTS} attempts; if "
                             f"this persists the provider may cap numOfRows (lower "
                             f"page_size). {_RESUME}")

    # internals -----------------------------------------------------------------------------
    def _fetch_pages(self, lawd: str, ym: int,
                     where: str) -> tuple[list[pd.DataFrame], int, str]:
        """One pass over the pages; the third value is a problem description or ''."""
        frames: list[pd.DataFrame] = []
        total = -1
        got = 0
        page_no = 1
        while True:
            page = self._get_page(lawd, ym, page_no, where)
            new = page.unknown_tags - self._warned_tags
            if new:
                log.warning("%s: response has item tags outside the raw schema (dropped): %s",
                            where, ", ".join(sorted(new)))
                self._warned_tags |= new
            if total < 0:
                total = page.total_count
            elif page.total_count != total:
                return frames, total, (f"totalCount changed from {total} to "
                                       f"{page.total_count} while paging")
            frames.append(page.items)
            got += len(page.items)
            per_page = page.num_of_rows if page.num_of_rows > 0 else self.cfg.page_size
            if len(page.items) == 0 or page_no * per_page >= total:
                break
            page_no += 1
        if got != total:
            return frames, total, f"received {got} items but totalCount says {total}"
        return frames, total, ""

    def _get_page(self, lawd: str, ym: int, page_no: int, where: str) -> Page:
        params = {
            "serviceKey": self._key.reveal(), "LAWD_CD": lawd, "DEAL_YMD": str(ym),
            "pageNo": str(page_no), "numOfRows": str(self.cfg.page_size),
        }
        attempts = self.cfg.retries + 1
        what = f"{where} page {page_no}"
        last: _Retry | None = None
        for attempt in range(1, attempts + 1):
            if last is not None:
                delay = self._delay(attempt - 1, last.retry_after)
                log.warning("%s: %s; retry %d/%d in %.2fs", what, last.reason, attempt - 1,
                            attempts - 1, delay)
                time.sleep(delay)
            outcome = self._attempt(params, lawd, what)
            if isinstance(outcome, Page):
                return outcome
            last = outcome
        assert last is not None
        raise TransientError(f"{what}: gave up after {attempts} attempts; last error: "
                             f"{last.reason}. {_RESUME}")

    def _delay(self, n: int, retry_after: float | None) -> float:
        delay = self.cfg.backoff_base * 2 ** (n - 1) * (0.5 + self._rng.random())
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, _MAX_DELAY)

    def _url(self) -> str:
        url = self.cfg.url
        if self._use_http and url.startswith("https://"):
            url = "http://" + url[len("https://"):]
        return url

    def _attempt(self, params: dict[str, str], lawd: str, what: str) -> Page | _Retry:
        if self._calls >= self.cfg.call_budget:
            raise QuotaExceeded(f"call budget of {self.cfg.call_budget} HTTP calls for this run "
                                f"is used up: {_RESUME}")
        self._calls += 1
        url = self._url()
        log.debug("GET %s LAWD_CD=%s DEAL_YMD=%s pageNo=%s numOfRows=%s", url,
                  params["LAWD_CD"], params["DEAL_YMD"], params["pageNo"], params["numOfRows"])
        failure: str | None = None
        fallback = False
        fatal: MolitError | None = None
        # Exceptions from requests carry the full URL (with the key); they are turned into
        # redacted text here and never chained to what this method raises.
        try:
            resp = self._session.get(url, params=params, timeout=self.cfg.timeout,
                                     headers={"Accept": "application/xml"})
            status, headers, body = resp.status_code, resp.headers, resp.content
        except requests.exceptions.ConnectTimeout:
            failure, fallback = f"could not connect within {self.cfg.timeout:g}s", True
        except requests.exceptions.Timeout:
            failure = f"no response within {self.cfg.timeout:g}s"
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema) as exc:
            fatal = PermanentError(f"{what}: bad base_url {self.cfg.base_url!r}: "
                                   f"{self._redact(str(exc))}")
        except requests.exceptions.SSLError as exc:
            failure, fallback = f"TLS error: {self._short(exc)}", True
        except requests.exceptions.ConnectionError as exc:
            failure, fallback = f"connection error: {self._short(exc)}", True
        except requests.exceptions.RequestException as exc:
            failure = f"{type(exc).__name__}: {self._short(exc)}"
        if fatal is not None:
            raise fatal
        if failure is not None:
            if fallback and self.cfg.http_fallback and not self._use_http \
                    and url.startswith("https://"):
                self._use_http = True
                log.warning("%s: https failed (%s); using http for the rest of this run "
                            "(set http_fallback=False to forbid)", what, failure)
            return _Retry(failure)
        return self._classify(status, headers, body, lawd, what)

    def _classify(self, status: int, headers: Mapping[str, str], body: bytes, lawd: str,
                  what: str) -> Page | _Retry:
        page: Page | None = None
        problem: MolitError | None = None
        try:
            page = parse_page(body, lawd)
        except MolitError as exc:
            problem = exc
        if page is not None and 200 <= status < 300:
            return page
        if problem is not None and problem.code is not None:
            # The provider or gateway said what is wrong: that outranks the HTTP status.
            if isinstance(problem, TransientError):
                return _Retry(self._redact(f"HTTP {status}, {problem}"))
            raise type(problem)(self._redact(f"{what}: {problem}"), code=problem.code)
        if status == 429 or status >= 500:
            return _Retry(f"HTTP {status}: {self._redact(_snippet(body))!r}",
                          _retry_after(headers))
        if status >= 300:
            raise PermanentError(f"{what}: HTTP {status} from {self._url()}: "
                                 f"{self._redact(_snippet(body))!r}; check base_url and the "
                                 f"endpoint setting")
        return _Retry(self._redact(str(problem)))

    def _redact(self, text: str) -> str:
        return self._redactor.redact(text)

    def _short(self, exc: BaseException) -> str:
        text = self._redact(str(exc))
        # requests' messages embed the whole URL; keep the gist.
        text = re.sub(r"with url: \S+", "with url: <request>", text)
        return text if len(text) <= 300 else text[:300] + "..."


def _remove_filter(redactor: logging.Filter) -> None:
    for name in _URL_LOGGERS:
        logging.getLogger(name).removeFilter(redactor)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


# --------------------------------------------------------------------------------------------
# one month over many districts
# --------------------------------------------------------------------------------------------
def checkpoint_path(checkpoint_dir: Path, lawd_cd: str) -> Path:
    return Path(checkpoint_dir) / f"lawd_cd={lawd_cd}.parquet"


def crawl_month(client: MolitClient, deal_ym: int, regions: Sequence[str], checkpoint_dir: Path,
                progress: Callable[[int, int, str], None] | None = None) -> pd.DataFrame:
    """Fetch `deal_ym` for every district in `regions`, resuming from checkpoints.

    Each finished district is written at once to ``checkpoint_dir/lawd_cd=XXXXX.parquet``
    (atomically, empty districts too) and is never refetched while that file exists, so
    `checkpoint_dir` must be specific to one crawl of one month and endpoint (the caller owns
    its lifetime).  Any error -- `QuotaExceeded` in particular -- propagates with the finished
    checkpoints kept; the next run fetches only what is missing.  `progress(done, total,
    message)` is called after each district.  Returns the districts' rows in `regions` order.
    """
    ym = parse_ym(deal_ym)
    codes = [str(r).strip() for r in regions]
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise ValueError(f"duplicate districts in regions: {dupes}")
    folder = Path(checkpoint_dir)
    done_before = sum(checkpoint_path(folder, c).exists() for c in codes)
    log.info("crawl %d: %d districts, %d already checkpointed", ym, len(codes), done_before)
    frames: list[pd.DataFrame] = []
    for done, lawd in enumerate(codes, start=1):
        path = checkpoint_path(folder, lawd)
        frame = _read_checkpoint(path)
        if frame is not None:
            how = "checkpoint"
        else:
            try:
                frame = client.fetch(lawd, ym)
            except QuotaExceeded:
                log.warning("crawl %d stopped at district %s (%d/%d done): quota", ym, lawd,
                            done - 1, len(codes))
                raise
            write_parquet(frame, path)
            how = "fetched"
        frames.append(frame)
        if progress is not None:
            progress(done, len(codes), f"{ym} {lawd}: {len(frame)} rows ({how})")
    if not frames:
        return empty_raw()
    return conform_raw(pd.concat(frames, ignore_index=True))


def _read_checkpoint(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return conform_raw(pd.read_parquet(path))
    except (OSError, ValueError, pa.ArrowException) as exc:
        log.warning("unreadable checkpoint %s (%s); fetching the district again", path, exc)
        return None
