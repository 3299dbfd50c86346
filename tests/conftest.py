"""Shared fixtures: an isolated pipeline configuration on tmp_path roots."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import luigi
import luigi.configuration
import pytest
from luigi.execution_summary import LuigiStatusCode
from luigi.task_register import Register

from aptpipe import freshness, storage

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# A small market: 4 구, 15 months of history before the run day.
SMALL = {
    "aptpipe": {"regions": "11680,11320,11440,11710", "start_month": "202301",
                "min_train_months": "4", "refresh_months": "3"},
    "synthetic": {"seed": "7", "trades_per_gu_month": "250"},
    # fewer, larger boosting steps: these tests are about the pipeline, not the last 0.1 % of
    # accuracy (tests/test_model_quality.py fits the shipped TrainSpec)
    "train": {"max_iter": "40", "learning_rate": "0.25"},
}
TODAY = dt.date(2024, 3, 15)


def write_config(path: Path, sections: dict[str, dict[str, str]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {v}" for k, v in values.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def use_config(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make `path` the LUIGI_CONFIG_PATH override and drop every cached config and task."""
    parser = luigi.configuration.LuigiConfigParser
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(path))  # for subprocesses
    monkeypatch.setattr(parser, "_config_paths", [*parser._config_paths, str(path)])
    parser._instance = None
    Register.clear_instance_cache()
    freshness.reset()


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[Callable[..., Path]]:
    """Returns configure(**overrides) -> config path; roots live under tmp_path."""

    def configure(**overrides: dict[str, str]) -> Path:
        sections = {k: dict(v) for k, v in SMALL.items()}
        sections["aptpipe"].update(data_dir=str(tmp_path / "data"),
                                   models_dir=str(tmp_path / "models"))
        for section, values in overrides.items():
            sections.setdefault(section, {}).update(values)
        path = write_config(tmp_path / "test-luigi.cfg", sections)
        use_config(monkeypatch, path)
        return path

    configure()
    yield configure
    luigi.configuration.LuigiConfigParser._instance = None
    Register.clear_instance_cache()
    freshness.reset()


def run_tasks(tasks: list[luigi.Task], workers: int = 1) -> LuigiStatusCode:
    freshness.reset()
    result = luigi.build(tasks, local_scheduler=True, workers=workers, detailed_summary=True,
                         log_level="WARNING")
    return result.status


def produced(*roots: Path) -> dict[str, str]:
    """task_id -> finished_at of every manifest under `roots` (what has been (re)built)."""
    out = {}
    for root in roots:
        for path in root.rglob(f"*{storage.MANIFEST_SUFFIX}"):
            manifest = storage.read_json(path)
            out[manifest["task_id"]] = manifest["finished_at"] + manifest["hash"]
    return out
