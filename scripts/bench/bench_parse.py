"""Benchmark: aptpipe's `parse_page` vs the common xmltodict -> DataFrame approach.

Builds one response of 100,000 items by repeating the real `<item>` elements of a recorded
강남구 2024-05 response (324 items) inside the real envelope -- and, for the crawler's real
regime, a page of 1,000 items parsed 100 times -- then parses each with

* aptpipe:  `aptpipe.sources.molit.parse_page` (expat events -> string columns, RAW_COLUMNS);
* baseline: `xmltodict.parse`, take response/body/items/item (a dict when there is one item),
  `pandas.DataFrame`, then every column stripped, blank -> null and commas removed from
  dealAmount, the way PublicDataReader post-processes (written from that description).

Runs are interleaved and the best of `--repeat` is reported, because this machine is shared.
Checks both give the same number of rows and the same values.  Needs `xmltodict` (bench only):

    /work/venv/bin/pip install xmltodict
    /work/venv/bin/python scripts/bench/bench_parse.py [--items 100000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from aptpipe.sources.molit import parse_page  # noqa: E402

SOURCE_FILES = (
    Path("/work/shared/realdata/xml/molit_new_apt_trade_11680_202405_merged_asof_2025-06-20.xml"),
    ROOT / "tests/fixtures/molit/molit_new_apt_trade_11680_202405_merged_asof_2025-06-20.xml",
)


def build_body(n: int) -> tuple[bytes, int]:
    """A response of exactly `n` items: the recorded items repeated in order."""
    src = next(p for p in SOURCE_FILES if p.exists()).read_bytes()
    items = re.findall(rb"<item>.*?</item>", src, re.S)
    header = re.search(rb"<header>.*?</header>", src, re.S)
    assert items and header
    chosen = (items * (-(-n // len(items))))[:n]
    body = (b'<?xml version="1.0" encoding="utf-8" standalone="yes"?><response>'
            + header.group(0) + b"<body><items>" + b"".join(chosen) + b"</items>"
            + b"<numOfRows>%d</numOfRows><pageNo>1</pageNo><totalCount>%d</totalCount>"
              b"</body></response>" % (n, n))
    return body, n


def baseline(body: bytes) -> pd.DataFrame:
    import xmltodict

    doc = xmltodict.parse(body)
    items = doc["response"]["body"]["items"]["item"]
    if isinstance(items, dict):
        items = [items]
    df = pd.DataFrame(items).astype("string")
    for col in df.columns:
        df[col] = df[col].str.strip()
    df = df.replace("", pd.NA)
    df["dealAmount"] = df["dealAmount"].str.replace(",", "", regex=False)
    return df


def aptpipe(body: bytes) -> pd.DataFrame:
    return parse_page(body, "11680").items


def race(body: bytes, n: int, repeat: int, label: str, calls: int = 1) -> tuple[float, bool]:
    """Time both parsers on `body` (`calls` times per run, best of `repeat`); print a block."""
    best = {"aptpipe": float("inf"), "xmltodict": float("inf")}
    frames: dict[str, pd.DataFrame] = {}
    for _ in range(repeat):
        for name, fn in (("aptpipe", aptpipe), ("xmltodict", baseline)):
            t0 = time.perf_counter()
            for _ in range(calls):
                frames[name] = fn(body)
            best[name] = min(best[name], (time.perf_counter() - t0) / calls)
    ours, base = frames["aptpipe"], frames["xmltodict"]
    assert len(ours) == len(base) == n, (len(ours), len(base), n)
    same = all(ours[c].equals(base[c].astype("string")) for c in base.columns)
    print(label)
    for name in ("aptpipe", "xmltodict"):
        print(f"  {name:>9}: {len(frames[name]):,} rows in {best[name] * 1000:,.1f} ms "
              f"= {n / best[name]:,.0f} rows/s")
    ratio = best["xmltodict"] / best["aptpipe"]
    print(f"  ratio: aptpipe {ratio:.1f}x faster (target >= 5x); same row count: "
          f"{len(ours) == len(base)}; same values in the {len(base.columns)} shared columns: "
          f"{same}")
    return ratio, same


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--page-items", type=int, default=1000,
                    help="also time pages of about this size (the crawler's page size)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    try:
        import xmltodict  # noqa: F401
    except ImportError:
        print("xmltodict is needed for the baseline: pip install xmltodict", file=sys.stderr)
        return 2

    body, n = build_body(args.items)
    _, same_big = race(body, n, args.repeat,
                       f"one response: {n:,} items, {len(body) / 1e6:.1f} MB "
                       f"(best of {args.repeat})")
    page, m = build_body(args.page_items)
    calls = max(1, args.items // m)
    _, same_page = race(page, m, args.repeat,
                        f"page-sized response: {m:,} items, {len(page) / 1e3:.0f} kB, "
                        f"{calls} calls per run (best of {args.repeat})", calls)
    return 0 if same_big and same_page else 1


if __name__ == "__main__":
    raise SystemExit(main())
