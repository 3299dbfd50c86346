"""Benchmark: aptpipe's `parse_page` vs the common xmltodict -> DataFrame approach.

Builds one response of 100,000 items by repeating the real `<item>` elements of a recorded
강남구 2024-05 response (324 items) inside the real envelope -- and, for the crawler's real
regime, a page of 1,000 items parsed 100 times -- then parses each with

* aptpipe:  `aptpipe.sources.molit.parse_page` (for these single-line English-tag responses
  its numpy "bulk" path; RAW_COLUMNS);
* baseline: `xmltodict.parse`, take response/body/items/item (a dict when there is one item),
  `pandas.DataFrame`, then every column stripped, blank -> null and commas removed from
  dealAmount, the way PublicDataReader post-processes (written from that description).

Runs are interleaved and the best of `--repeat` is reported (with the median and every run),
because this machine is shared.  `--also REV` times the `parse_page` of an earlier git revision
in the same loop (before/after).  Checks all give the same number of rows and the same values.
Needs `xmltodict` (bench only):

    pip install -e '.[bench]'
    python scripts/bench/bench_parse.py [--items 100000] [--repeat 3] [--also REV]
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def parser_at(rev: str) -> Callable[[bytes], pd.DataFrame]:
    """`parse_page` of aptpipe/sources/molit.py as it was at git revision `rev`."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:aptpipe/sources/molit.py"],
                            check=True, capture_output=True).stdout
    path = Path(tempfile.mkdtemp()) / "molit_at_rev.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("molit_at_rev", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up there
    spec.loader.exec_module(module)
    return lambda body: module.parse_page(body, "11680").items


def race(body: bytes, n: int, repeat: int, label: str, contenders: dict[str, Callable],
         calls: int = 1) -> tuple[float, bool]:
    """Time every parser on `body` (`calls` times per run, `repeat` interleaved runs); print
    best, median and all runs per parser."""
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    frames: dict[str, pd.DataFrame] = {}
    for _ in range(repeat):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                frames[name] = fn(body)
            runs[name].append((time.perf_counter() - t0) / calls)
    base = frames["xmltodict"]
    same = True
    for name, frame in frames.items():
        assert len(frame) == n, (name, len(frame), n)
        same &= all(frame[c].equals(base[c].astype("string")) for c in base.columns)
    print(label)
    best = {name: min(times) for name, times in runs.items()}
    width = max(map(len, contenders))
    for name, times in runs.items():
        print(f"  {name:>{width}}: {n:,} rows in {best[name] * 1000:,.1f} ms "
              f"= {n / best[name]:,.0f} rows/s (median {statistics.median(times) * 1000:,.1f} "
              f"ms; runs: {', '.join(f'{t * 1000:,.0f}' for t in times)} ms)")
    ratio = best["xmltodict"] / best["aptpipe"]
    for name in runs:
        if name != "xmltodict":
            print(f"  ratio best/best: {name} {best['xmltodict'] / best[name]:.1f}x faster, "
                  f"median/median "
                  f"{statistics.median(runs['xmltodict']) / statistics.median(runs[name]):.1f}x "
                  f"(target >= 5x)")
    print(f"  same row count and same values in the {len(base.columns)} shared columns: {same}")
    return ratio, same


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--page-items", type=int, default=1000,
                    help="also time pages of about this size (the crawler's page size)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--also", metavar="REV", help="also time parse_page as of this git revision")
    args = ap.parse_args()
    try:
        import xmltodict  # noqa: F401
    except ImportError:
        print("xmltodict is needed for the baseline: pip install xmltodict", file=sys.stderr)
        return 2

    contenders: dict[str, Callable] = {"aptpipe": aptpipe}
    if args.also:
        contenders[f"aptpipe@{args.also}"] = parser_at(args.also)
    contenders["xmltodict"] = baseline
    body, n = build_body(args.items)
    _, same_big = race(body, n, args.repeat,
                       f"one response: {n:,} items, {len(body) / 1e6:.1f} MB "
                       f"(best of {args.repeat})", contenders)
    page, m = build_body(args.page_items)
    calls = max(1, args.items // m)
    _, same_page = race(page, m, args.repeat,
                        f"page-sized response: {m:,} items, {len(page) / 1e3:.0f} kB, "
                        f"{calls} calls per run (best of {args.repeat})", contenders, calls)
    return 0 if same_big and same_page else 1


if __name__ == "__main__":
    raise SystemExit(main())
