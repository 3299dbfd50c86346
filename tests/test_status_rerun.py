"""`aptpipe status`, `rerun` and `gc` on a built small pipeline (in-process)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from aptpipe import cli, config, months, storage, tasks
from tests.conftest import TODAY, produced, run_tasks

pytestmark = pytest.mark.slow


def status(capsys, today: dt.date = TODAY) -> dict[str, str]:
    capsys.readouterr()
    assert cli.main(["status", "--today", today.isoformat(), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    return {row["task"]: row["reason"] for row in out["stale"]}


@pytest.fixture
def built(pipeline):
    assert run_tasks([tasks.MonthlyRun(today=TODAY)]).name == "SUCCESS"
    return pipeline


def test_status_reasons(built, capsys, monkeypatch) -> None:
    assert status(capsys) == {}
    # a hyper-parameter change makes the models stale, not the data
    built(train={"max_iter": "41"})
    reasons = status(capsys)
    assert reasons["TrainModel(as_of=202402, window_months=36)"] == "parameter changed (spec)"
    assert {t.split("(")[0] for t in reasons} <= {"TrainModel", "EvaluateModel", "PromoteModel",
                                                  "MonitorMonth", "MonthlyRun"}
    built()
    # open months due on a later day
    later = status(capsys, TODAY + dt.timedelta(days=2))
    assert later["FetchMonth(deal_ym=202403)"].startswith("open month due")
    assert later["FetchMonth(deal_ym=202401)"].startswith("open month due")
    assert "FetchMonth(deal_ym=202312)" not in later
    assert later["CleanMonth(deal_ym=202401)"] == "requirement stale (FetchMonth(deal_ym=202401))"
    # a modified artifact
    cat = config.catalog()
    raw = cat.raw(202306)
    raw.write_bytes(raw.read_bytes())
    assert status(capsys)["FetchMonth(deal_ym=202306)"] == \
        "artifact missing or modified (part-0.parquet)"
    # a code change
    current = tasks.BuildFeatures.code_version
    monkeypatch.setattr(tasks.BuildFeatures, "code_version", "99")
    reasons = status(capsys)
    assert reasons["BuildFeatures(deal_ym=202310)"] == f"code changed ({current} -> 99)"
    monkeypatch.setattr(tasks.BuildFeatures, "code_version", current)
    # a configuration change
    built(synthetic={"seed": "8"})
    reasons = status(capsys)
    assert reasons["FetchMonth(deal_ym=202301)"] == "parameter changed (seed)"


def test_rerun_forces_a_task_and_optionally_its_dependants(built, capsys) -> None:
    cat = config.catalog()
    before = produced(cat.data_dir, cat.models_dir)
    argv = ["rerun", "CleanMonth", "--deal-ym", "202306", "--today", TODAY.isoformat(),
            "--local-scheduler"]
    assert cli.main(argv) == 0
    after = produced(cat.data_dir, cat.models_dir)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {tasks.CleanMonth(deal_ym=202306, today=TODAY).task_id}
    assert cli.main([*argv, "--downstream"]) == 0
    again = produced(cat.data_dir, cat.models_dir)
    changed = {k.split("_")[0] for k in again if again[k] != after[k]}
    assert {"CleanMonth", "MarketState", "BuildFeatures", "TrainModel", "EvaluateModel",
            "PromoteModel", "MonitorMonth"} <= changed
    assert "FetchMonth" not in changed
    assert cli.main(["rerun", "NoSuchTask", "--local-scheduler"]) == 2
    assert cli.main(["rerun", "CleanMonth", "--month", "1", "--local-scheduler"]) == 2


def test_gc_lists_then_deletes_only_unclaimed_data(built, capsys) -> None:
    cat = config.catalog()
    orphan = cat.clean(202201)
    storage.write_parquet(__import__("pandas").DataFrame({"a": [1]}), orphan)
    capsys.readouterr()
    assert cli.main(["gc", "--today", TODAY.isoformat()]) == 0
    out = capsys.readouterr().out
    assert str(orphan) in out and "1 files no current task claims" in out
    assert orphan.exists()
    assert cli.main(["gc", "--today", TODAY.isoformat(), "--yes"]) == 0
    assert not orphan.exists()
    assert status(capsys) == {}
    assert cat.features(months.add_months(months.ym_of(TODAY), -1)).exists()
