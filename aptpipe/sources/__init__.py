"""Where raw trades come from: the synthetic market, the MOLIT API, or staged bulk exports.

`fetch_month` is the one entry point the `FetchMonth` task calls; it returns raw rows
(`schema.RAW_COLUMNS`) of one contract month as reported by `as_of`.
"""
from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from typing import Any

import pandas as pd

from aptpipe import config, schema, storage

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


def fingerprint() -> dict[str, Any]:
    """The configuration raw data depends on (never the service key)."""
    cfg = config.aptpipe()
    out: dict[str, Any] = {"source": cfg.source, "regions": config.resolve_regions(cfg.regions)}
    if cfg.source == "synthetic":
        syn = config.synthetic()
        out.update(seed=syn.seed, shock_month=config.shock_month(), shock_pct=syn.shock_pct,
                   trades_per_gu_month=syn.trades_per_gu_month)
    elif cfg.source == "molit":
        out.update(endpoint=config.molit().endpoint)
    return out


def fetch_month(deal_ym: int, as_of: dt.date, catalog: storage.Catalog,
                progress: Progress | None = None) -> pd.DataFrame:
    cfg = config.aptpipe()
    regions = config.resolve_regions(cfg.regions)
    if cfg.source == "synthetic":
        from aptpipe.sources import synthetic
        syn = config.synthetic()
        frame = synthetic.fetch_month(deal_ym, as_of, regions, synthetic.SyntheticConfig(
            seed=syn.seed, shock_month=config.shock_month(), shock_pct=syn.shock_pct,
            trades_per_gu_month=syn.trades_per_gu_month))
        if progress:
            progress(len(regions), len(regions), f"{len(frame)} synthetic trades")
        return frame
    if cfg.source == "molit":
        from aptpipe.sources import molit
        m = config.molit()
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


def staged_exports(deal_ym: int, regions: list[str], catalog: storage.Catalog) -> pd.DataFrame:
    """Rows that `aptpipe import` staged for this month, limited to the configured regions."""
    parts = sorted(catalog.imports(deal_ym).glob("*.parquet"))
    if not parts:
        log.warning("no imported data for %s (run `aptpipe import PATH...` first)", deal_ym)
        return schema.empty_raw()
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    wanted = frame["lawd_cd"].isin(regions) | frame["lawd_cd"].isna()
    return schema.conform_raw(frame[wanted.to_numpy()])
