"""End to end: the whole graph on a small synthetic market, on tmp_path roots."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from luigi.execution_summary import LuigiStatusCode

from aptpipe import config, freshness, months, storage, tasks
from tests.conftest import TODAY, produced, run_tasks

pytestmark = pytest.mark.slow


def test_monthly_run_end_to_end_then_nothing_to_do(pipeline, tmp_path: Path) -> None:
    status = run_tasks([tasks.MonthlyRun(today=TODAY)])
    assert status == LuigiStatusCode.SUCCESS
    cat = config.catalog()
    current = months.ym_of(TODAY)
    as_of = months.add_months(current, -1)
    for ym in months.month_range(202301, current):
        raw = pd.read_parquet(cat.raw(ym))
        cleaned = pd.read_parquet(cat.clean(ym))
        quarantined = pd.read_parquet(cat.quarantine(ym))
        counts = storage.read_json(storage.manifest_path(cat.clean(ym)))["rows"]
        assert counts["raw"] == len(raw) == (len(cleaned) + len(quarantined)
                                             + counts["cancelled"])
        assert cat.features(ym).exists() == (ym >= 202304)  # from the end of the warm-up
    # the current month is only partly reported on the 15th
    assert len(pd.read_parquet(cat.raw(current))) < 0.8 * len(pd.read_parquet(cat.raw(as_of)))

    metrics = storage.read_json(cat.metrics(as_of))
    assert metrics["candidate"]["n"] > 200
    assert metrics["candidate"]["mape"] < metrics["baseline"]["mape"]
    assert metrics["beats_baseline"] is True
    champion = storage.read_json(cat.champion())
    assert champion["as_of"] == as_of
    assert (cat.models_dir / champion["path"]).exists()
    record = storage.read_json(cat.monitoring(current))
    assert record["model_id"] == champion["model_id"] and record["n"] > 0

    before = produced(cat.data_dir, cat.models_dir)
    assert run_tasks([tasks.MonthlyRun(today=TODAY)]) == LuigiStatusCode.SUCCESS
    assert produced(cat.data_dir, cat.models_dir) == before  # nothing rebuilt
    assert all(freshness.verdict(t).fresh for t in tasks.MonthlyRun(today=TODAY).requires())


def test_failed_write_leaves_no_artifact_and_next_run_repairs(pipeline, monkeypatch) -> None:
    cat = config.catalog()
    original = pd.DataFrame.to_parquet

    def broken(self, path, *args, **kwargs):
        if "clean" in Path(path).parent.name:
            Path(path).write_bytes(b"PAR1 half a file")
            raise OSError("disk full (simulated)")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    task = tasks.CleanMonth(deal_ym=202301, today=TODAY)
    assert run_tasks([task]) == LuigiStatusCode.FAILED
    assert cat.raw(202301).exists()                      # upstream work is kept
    assert not cat.clean(202301).exists()
    assert not storage.manifest_path(cat.clean(202301)).exists()
    assert not list(cat.clean(202301).parent.glob("*.tmp"))
    monkeypatch.setattr(pd.DataFrame, "to_parquet", original)
    raw_manifest = storage.read_json(storage.manifest_path(cat.raw(202301)))
    assert run_tasks([task]) == LuigiStatusCode.SUCCESS
    assert storage.read_json(storage.manifest_path(cat.raw(202301))) == raw_manifest  # not refetched
    assert len(pd.read_parquet(cat.clean(202301))) > 0


def test_open_months_refetch_and_cascade_only_where_content_changed(pipeline) -> None:
    cat = config.catalog()
    later = TODAY + dt.timedelta(days=3)
    assert run_tasks([tasks.MonthlyRun(today=TODAY)]) == LuigiStatusCode.SUCCESS
    before = produced(cat.data_dir, cat.models_dir)
    stale = {freshness.describe(t): freshness.verdict(t).reason
             for t in [tasks.FetchMonth(deal_ym=ym, today=later)
                       for ym in months.month_range(202301, months.ym_of(later))]}
    due = {k for k, v in stale.items() if v and v.startswith("open month due")}
    assert due == {f"FetchMonth(deal_ym={ym})" for ym in (202401, 202402, 202403)}
    assert run_tasks([tasks.MonthlyRun(today=later)]) == LuigiStatusCode.SUCCESS
    after = produced(cat.data_dir, cat.models_dir)
    rebuilt = {k for k in after if after[k] != before.get(k)}
    families = {k.split("_")[0] for k in rebuilt}
    assert "FetchMonth" in families
    # settled months were not touched
    settled = [k for k in rebuilt if k.startswith(("FetchMonth", "CleanMonth"))
               and any(f"deal_ym_{ym}" in k for ym in range(202301, 202313))]
    assert settled == []
    json.dumps(sorted(rebuilt))
