"""Where raw trades come from: the synthetic market, the MOLIT API, or staged bulk exports.

`fetch_month` is the one entry point the `FetchMonth` task calls; it returns raw rows
(`schema.RAW_COLUMNS`) of one contract month as reported by `as_of`.
"""
from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from aptpipe import config, schema, storage

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


@config.per_config
def fingerprint() -> dict[str, Any]:
    """The configuration raw data depends on (never the service key)."""
    cfg = config.settings()
    out: dict[str, Any] = {"source": cfg.source, "regions": list(config.resolve_regions(cfg.regions))}
    if cfg.source == "synthetic":
        syn = config.synthetic_settings()
        out.update(seed=syn.seed, shock_month=config.shock_month(), shock_pct=syn.shock_pct,
                   trades_per_gu_month=syn.trades_per_gu_month)
    elif cfg.source == "molit":
        out.update(endpoint=config.molit_settings().endpoint)
    return out


def fetch_month(deal_ym: int, as_of: dt.date, catalog: storage.Catalog,
                progress: Progress | None = None) -> pd.DataFrame:
    cfg = config.settings()
    regions = config.resolve_regions(cfg.regions)
    if cfg.source == "synthetic":
        from aptpipe.sources import synthetic
        syn = config.synthetic_settings()
        frame = synthetic.fetch_month(deal_ym, as_of, regions, synthetic.SyntheticConfig(
            seed=syn.seed, shock_month=config.shock_month(), shock_pct=syn.shock_pct,
            trades_per_gu_month=syn.trades_per_gu_month))
        if progress:
            progress(len(regions), len(regions), f"{len(frame)} synthetic trades")
        return frame
    if cfg.source == "molit":
        from aptpipe.sources import molit
        m = config.molit_settings()
        client = molit.MolitClient(config.service_key(), molit.MolitConfig(
            base_url=m.base_url, endpoint=m.endpoint, timeout=m.timeout,
            page_size=m.page_size, retries=m.retries, call_budget=m.call_budget))
        checkpoints = catalog.raw_checkpoints(deal_ym) / f"as_of={as_of.isoformat()}"
        for stale in catalog.raw_checkpoints(deal_ym).glob("as_of=*"):
            if stale != checkpoints:  # an interrupted crawl of an earlier day: data has moved on
                shutil.rmtree(stale, ignore_errors=True)
        frame = molit.crawl_month(client, deal_ym, regions, checkpoints, progress)
        shutil.rmtree(catalog.raw_checkpoints(deal_ym), ignore_errors=True)
        return frame
    return staged_exports(deal_ym, regions, catalog)


@dataclass(frozen=True)
class ImportResult:
    path: Path
    rows: int
    months: dict[int, int]      # contract month -> rows staged
    unplaced: int               # rows without a readable contract month (kept aside)


def stage_export(path: Path, catalog: storage.Catalog) -> ImportResult:
    """Read one bulk export and stage its rows per contract month under `imports/`.

    Each slice is named after the file's content hash, so importing the same file twice
    changes nothing; rows without a readable contract month are kept in `imports/_unplaced`.
    """
    from aptpipe.sources import exports

    frame = exports.read_export(path)
    name = storage.file_sha256(path)[:20] + ".parquet"
    year = pd.to_numeric(frame["dealYear"], errors="coerce")
    month = pd.to_numeric(frame["dealMonth"], errors="coerce")
    deal_ym = year * 100 + month
    placed = deal_ym.notna() & month.between(1, 12)
    counts: dict[int, int] = {}
    for ym, part in frame[placed.to_numpy()].groupby(deal_ym[placed].astype(int), sort=True):
        storage.write_parquet(part.reset_index(drop=True), catalog.imports(int(ym)) / name)
        counts[int(ym)] = len(part)
    unplaced = frame[~placed.to_numpy()]
    if len(unplaced):
        storage.write_parquet(unplaced.reset_index(drop=True),
                              catalog.data_dir / "imports" / "_unplaced" / name)
        log.warning("%s: %d rows without a readable contract month kept in imports/_unplaced",
                    path, len(unplaced))
    return ImportResult(Path(path), len(frame), counts, len(unplaced))


def staged_files(deal_ym: int, catalog: storage.Catalog) -> list[str]:
    return sorted(p.name for p in catalog.imports(deal_ym).glob("*.parquet"))


def staged_exports(deal_ym: int, regions: list[str], catalog: storage.Catalog) -> pd.DataFrame:
    """Rows that `aptpipe import` staged for this month, limited to the configured regions."""
    parts = sorted(catalog.imports(deal_ym).glob("*.parquet"))
    if not parts:
        log.warning("no imported data for %s (run `aptpipe import PATH...` first)", deal_ym)
        return schema.empty_raw()
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    wanted = frame["lawd_cd"].isin(regions) | frame["lawd_cd"].isna()
    return schema.conform_raw(frame[wanted.to_numpy()])
