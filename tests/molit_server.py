"""A real HTTP server on 127.0.0.1 that plays recorded MOLIT API responses (tests only).

It pages recorded `<item>` elements by the request's `pageNo`/`numOfRows`, re-wrapped in the
recording's own envelope, checks the path and the raw (still percent-encoded) `serviceKey` like
the real gateway (a wrong key gets the real code-30 body), records every request, and can
inject faults per district-month.  See tests/fixtures/molit/PROVENANCE.md.
"""
from __future__ import annotations

import re
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "molit"
CODE30_FILE = "molit_error_SERVICE_KEY_IS_NOT_REGISTERED_ERROR_11680_202412_RAW_asof_2025-06-20.xml"
OLD_DEV_FILE = "molit_old_apt_trade_dev_41570_201910_FIXTURE_from_java_test_2items.xml"
OLD_FRAGMENT_FILE = "molit_old_apt_trade_11440_201512_ITEMS_FRAGMENT_from_perl_comment.xmlfrag"
PATHS = {
    "general": "/1613000/RTMSDataSvcAptTrade/getRTMSDataSvcAptTrade",
    "dev": "/1613000/RTMSDataSvcAptTradeDev/getRTMSDataSvcAptTradeDev",
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass(frozen=True)
class Recording:
    """A recorded response cut into envelope parts and verbatim `<item>` byte strings."""

    decl: bytes
    header: bytes
    items: tuple[bytes, ...]

    @classmethod
    def load(cls, name: str) -> Recording:
        data = fixture(name)
        if name == OLD_FRAGMENT_FILE:          # items only: borrow the real old envelope
            env = cls.load(OLD_DEV_FILE)
            return cls(env.decl, env.header, tuple(re.findall(rb"<item>.*?</item>", data, re.S)))
        decl = re.match(rb"<\?xml[^>]*\?>", data)
        header = re.search(rb"<header>.*?</header>", data, re.S)
        assert header is not None, name
        return cls(decl.group(0) if decl else b"", header.group(0),
                   tuple(re.findall(rb"<item>.*?</item>", data, re.S)))

    def subset(self, items: tuple[bytes, ...]) -> Recording:
        return Recording(self.decl, self.header, items)

    def body(self, page_no: int, num_rows: int, *, total: int | None = None,
             empty: bytes = b"<items/>") -> bytes:
        start = (page_no - 1) * num_rows
        chunk = self.items[start:start + num_rows] if start >= 0 else ()
        items = b"<items>" + b"".join(chunk) + b"</items>" if chunk else empty
        count = len(self.items) if total is None else total
        return (self.decl + b"<response>" + self.header + b"<body>" + items
                + b"<numOfRows>%d</numOfRows><pageNo>%d</pageNo><totalCount>%d</totalCount>"
                % (num_rows, page_no, count) + b"</body></response>")


def empty_recording() -> Recording:
    new = Recording.load("molit_new_apt_trade_11170_202506_merged_asof_2025-06-20.xml")
    return new.subset(())


def _code30_named() -> bytes:
    return fixture(CODE30_FILE).replace(b"<returnReasonCode>30<",
                                        b"<returnReasonCode>SERVICE_KEY_IS_NOT_REGISTERED_ERROR<")


def _gateway22() -> bytes:
    return (fixture(CODE30_FILE)
            .replace(b"SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
                     b"LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR")
            .replace(b"<returnReasonCode>30<", b"<returnReasonCode>22<"))


def _header_only(code: bytes, msg: bytes) -> bytes:
    return (b'<?xml version="1.0" encoding="utf-8" standalone="yes"?><response><header>'
            b"<resultCode>" + code + b"</resultCode><resultMsg>" + msg
            + b"</resultMsg></header></response>")


JSON30 = (b'{"OpenAPI_ServiceResponse":{"cmmMsgHeader":{"errMsg":"SERVICE ERROR",'
          b'"returnAuthMsg":"SERVICE_KEY_IS_NOT_REGISTERED_ERROR","returnReasonCode":"30"}}}')

# fault name -> (HTTP status, body); "ok" means: serve the month normally.
STATIC_FAULTS: dict[str, tuple[int, bytes]] = {
    "500": (500, b"<html><body>Internal Server Error</body></html>"),
    "503": (503, b"Service Unavailable"),
    "429": (429, b"Too Many Requests"),
    "code01": (200, _header_only(b"01", b"APPLICATION_ERROR")),
    "code99": (200, _header_only(b"99", b"UNKNOWN_ERROR")),
    "code12": (200, _header_only(b"12", b"NO_OPENAPI_SERVICE_ERROR")),
    "nodata03": (200, _header_only(b"03", b"NODATA_ERROR")),
    "gateway30": (200, fixture(CODE30_FILE)),
    "gateway30_403_named": (403, _code30_named()),
    "json30_403": (403, JSON30),
    "gateway22": (200, _gateway22()),
    "http404": (404, b"<html><body>404 Not Found</body></html>"),
}
DYNAMIC_FAULTS = ("ok", "timeout", "truncated", "drop")


@dataclass
class Month:
    recording: Recording
    total: int | None = None               # override totalCount (count-mismatch tests)
    empty: bytes = b"<items/>"


@dataclass(frozen=True)
class Hit:
    path: str
    raw_query: str
    raw_key: str | None
    lawd_cd: str | None
    deal_ym: str | None
    page_no: int
    num_of_rows: int


@dataclass
class FakeMolit:
    """Start with `with FakeMolit(key) as srv:`; `srv.base_url` goes into MolitConfig."""

    key: str
    endpoint: str = "general"
    stall_seconds: float = 1.0
    months: dict[tuple[str, str], Month] = field(default_factory=dict)
    faults: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.expected_raw_key = quote(self.key, safe="")

    # setup -----------------------------------------------------------------------------
    def add_month(self, lawd_cd: str, deal_ym: int, recording: Recording | str, *,
                  total: int | None = None, empty: bytes = b"<items/>") -> None:
        rec = Recording.load(recording) if isinstance(recording, str) else recording
        self.months[(lawd_cd, str(deal_ym))] = Month(rec, total, empty)

    def add_faults(self, lawd_cd: str, deal_ym: int, *names: str) -> None:
        for name in names:
            assert name in STATIC_FAULTS or name in DYNAMIC_FAULTS, name
        with self._lock:
            self.faults[(lawd_cd, str(deal_ym))].extend(names)

    def hits_for(self, lawd_cd: str) -> int:
        with self._lock:
            return sum(1 for h in self.hits if h.lawd_cd == lawd_cd)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/1613000"

    # lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> FakeMolit:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                fake._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass                      # clients hanging up on stalls are expected

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # serving -----------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        raw: dict[str, str] = {}
        for pair in parts.query.split("&"):
            name, _, value = pair.partition("=")
            raw[name] = value
        params = {k: unquote(v) for k, v in raw.items()}
        lawd, ym = params.get("LAWD_CD"), params.get("DEAL_YMD")
        page_no = int(params.get("pageNo", "1") or 1)
        num_rows = int(params.get("numOfRows", "10") or 10)
        with self._lock:
            self.hits.append(Hit(parts.path, parts.query, raw.get("serviceKey"), lawd, ym,
                                 page_no, num_rows))
            queue = self.faults.get((lawd or "", ym or ""))
            fault = queue.pop(0) if queue else "ok"

        if parts.path != PATHS[self.endpoint]:
            return self._send(req, *STATIC_FAULTS["http404"])
        if raw.get("serviceKey") != self.expected_raw_key:
            return self._send(req, 200, fixture(CODE30_FILE))
        if fault in STATIC_FAULTS:
            return self._send(req, *STATIC_FAULTS[fault])
        month = self.months.get((lawd or "", ym or ""))
        if month is None:
            body = empty_recording().body(page_no, num_rows)
        else:
            body = month.recording.body(page_no, num_rows, total=month.total, empty=month.empty)
        if fault == "timeout":
            time.sleep(self.stall_seconds)
            return self._send(req, 200, body)
        if fault == "truncated":
            return self._send(req, 200, body[: len(body) // 2])
        if fault == "drop":                 # promise the whole body, send half, hang up
            req.send_response(200)
            req.send_header("Content-Type", "text/xml;charset=UTF-8")
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body[: len(body) // 2])
            req.wfile.flush()
            req.close_connection = True
            try:
                req.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        return self._send(req, 200, body)

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        try:
            req.send_response(status)
            ctype = "application/json" if body.startswith(b"{") else "text/xml;charset=UTF-8"
            req.send_header("Content-Type", ctype)
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body)
        except OSError:
            req.close_connection = True
