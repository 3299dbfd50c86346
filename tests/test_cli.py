"""The `aptpipe` command and the plain `luigi` command, as cron would call them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aptpipe import storage
from tests.conftest import REPO, SHARED, SMALL, write_config

pytestmark = pytest.mark.slow


def run(args: list[str], cfg: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(cfg)}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def small_config(tmp_path: Path, **aptpipe: str) -> Path:
    sections = {k: dict(v) for k, v in SMALL.items()}
    sections["aptpipe"].update(data_dir=str(tmp_path / "data"),
                               models_dir=str(tmp_path / "models"), **aptpipe)
    return write_config(tmp_path / "cfg.cfg", sections)


def test_run_status_and_exit_codes(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    aptpipe = [sys.executable, "-m", "aptpipe"]
    status = run([*aptpipe, "status", "--today", "2024-03-15", "--json"], cfg)
    assert status.returncode == 0, status.stderr
    before = json.loads(status.stdout)
    assert before["tasks"] == len(before["stale"]) > 50
    assert {s["reason"] for s in before["stale"]} == {"missing"}

    done = run([*aptpipe, "run", "--today", "2024-03-15", "--local-scheduler"], cfg)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "vs naive baseline" in done.stdout
    assert "print(" not in done.stderr
    after = json.loads(run([*aptpipe, "status", "--today", "2024-03-15", "--json"], cfg).stdout)
    assert after["stale"] == []


def test_failures_exit_non_zero_for_aptpipe_and_plain_luigi(tmp_path: Path) -> None:
    # a start month after the run day: there is nothing to train on
    cfg = small_config(tmp_path, start_month="202403")
    failed = run([sys.executable, "-m", "aptpipe", "run", "--today", "2024-03-15",
                  "--local-scheduler"], cfg)
    assert failed.returncode != 0
    assert "start_month=202403 is too late" in failed.stderr + failed.stdout
    luigi_cli = Path(sys.executable).with_name("luigi")
    plain = run([str(luigi_cli), "--module", "aptpipe.tasks", "MonthlyRun",
                 "--today", "2024-03-15", "--local-scheduler"], cfg)
    assert plain.returncode != 0


def test_plain_luigi_command_runs_the_pipeline(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    luigi_cli = Path(sys.executable).with_name("luigi")
    done = run([str(luigi_cli), "--module", "aptpipe.tasks", "MonthlyRun",
                "--today", "2024-03-15", "--local-scheduler"], cfg)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "models" / "champion.json").exists()


@pytest.mark.skipif(not (SHARED / "realdata").exists(), reason="needs ../shared/realdata")
def test_import_real_export_and_train_on_it(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg.cfg", {"aptpipe": {
        "data_dir": str(tmp_path / "data"), "models_dir": str(tmp_path / "models"),
        "source": "export", "regions": "all", "start_month": "200701",
        "min_train_months": "3"}})
    source = SHARED / "realdata/transactions/rtdown_apt_trade_nationwide_2007_01_09.parquet"
    imported = run([sys.executable, "-m", "aptpipe", "import", str(source)], cfg)
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert "335848 rows staged for 9 months" in imported.stdout
    again = run([sys.executable, "-m", "aptpipe", "import", str(source)], cfg)
    assert again.returncode == 0
    assert len(list((tmp_path / "data/imports/deal_ym=200703").glob("*.parquet"))) == 1

    done = run([sys.executable, "-m", "aptpipe", "run", "--today", "2007-10-01",
                "--local-scheduler"], cfg)
    assert done.returncode == 0, done.stderr[-2000:]
    raw_rows = sum(len(pd.read_parquet(p)) for p in (tmp_path / "data/raw").rglob("*.parquet"))
    assert raw_rows == 335848
    metrics = storage.read_json(tmp_path / "models/candidates/as_of=200709/metrics.json")
    assert metrics["candidate"]["mape"] < metrics["baseline"]["mape"]


def test_unknown_export_layout_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    out = run([sys.executable, "-m", "aptpipe", "import", str(bad)], small_config(tmp_path))
    assert out.returncode == 1
    assert "unrecognised export layout" in out.stderr
