"""Deep, content-based completeness on a toy three-stage graph (source -> double -> total)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import luigi
import pytest
from luigi.execution_summary import LuigiStatusCode
from luigi.task_register import Register

from aptpipe import freshness, storage
from tests.conftest import run_tasks

ROOT: dict[str, Path] = {}
RUNS: list[str] = []


class Source(freshness.FreshTask):
    key = luigi.Parameter()

    def artifacts(self):
        return {"out": ROOT["dir"] / f"source-{self.key}.json"}

    def produce(self):
        RUNS.append(freshness.describe(self))
        value = json.loads((ROOT["dir"] / "input.json").read_text())[self.key]
        storage.write_json(value, self.artifacts()["out"])
        return {}


class Double(freshness.FreshTask):
    key = luigi.Parameter()

    def requires(self):
        return Source(key=self.key)

    def artifacts(self):
        return {"out": ROOT["dir"] / f"double-{self.key}.json"}

    def produce(self):
        RUNS.append(freshness.describe(self))
        value = storage.read_json(Source(key=self.key).artifacts()["out"])
        factor = 2 if self.code_version == "1" else 3   # "version 2 of the code" triples
        storage.write_json(factor * value, self.artifacts()["out"])
        return {}


class Total(freshness.FreshTask):
    def requires(self):
        return [Double(key="a"), Double(key="b")]

    def artifacts(self):
        return {"out": ROOT["dir"] / "total.json"}

    def produce(self):
        RUNS.append(freshness.describe(self))
        total = sum(storage.read_json(Double(key=k).artifacts()["out"]) for k in "ab")
        storage.write_json(total, self.artifacts()["out"])
        return {}


@pytest.fixture
def graph(tmp_path: Path):
    ROOT["dir"] = tmp_path
    RUNS.clear()
    (tmp_path / "input.json").write_text(json.dumps({"a": 1, "b": 2}))
    Register.clear_instance_cache()   # task instances remember their paths
    freshness.reset()
    yield
    for cls in (Source, Double, Total):
        cls.code_version = "1"


def build() -> list[str]:
    RUNS.clear()
    assert run_tasks([Total()]) == LuigiStatusCode.SUCCESS
    return sorted(RUNS)


def test_second_run_executes_nothing(graph) -> None:
    assert len(build()) == 5
    assert build() == []
    assert storage.read_json(ROOT["dir"] / "total.json") == 6


def test_changed_input_rebuilds_exactly_its_descendants(graph) -> None:
    build()
    (ROOT["dir"] / "input.json").write_text(json.dumps({"a": 5, "b": 2}))
    # the source is an outside input: force it as `aptpipe rerun` does, by dropping its manifest
    storage.manifest_path(Source(key="a").artifacts()["out"]).unlink()
    freshness.reset()  # verdicts are memoised per command
    assert freshness.verdict(Total()).reason == "requirement stale (Double(key=a))"
    assert build() == ["Double(key=a)", "Source(key=a)", "Total()"]
    assert storage.read_json(ROOT["dir"] / "total.json") == 14


def test_identical_content_cuts_off_downstream(graph) -> None:
    build()
    storage.manifest_path(Source(key="a").artifacts()["out"]).unlink()
    assert build() == ["Source(key=a)"]   # Double(a) and Total ran no work: same bytes upstream


def test_code_version_bump_rebuilds_that_stage_and_dependants(graph) -> None:
    build()
    Double.code_version = "2"
    freshness.reset()
    assert freshness.verdict(Double(key="b")).reason == "code changed (1 -> 2)"
    assert build() == ["Double(key=a)", "Double(key=b)", "Total()"]
    assert storage.read_json(ROOT["dir"] / "total.json") == 9
    assert build() == []


def test_modified_artifact_is_detected(graph) -> None:
    build()
    out = Double(key="b").artifacts()["out"]
    out.write_text("999")
    freshness.reset()
    assert freshness.verdict(Double(key="b")).reason == "artifact missing or modified (double-b.json)"
    assert build() == ["Double(key=b)"]   # rebuilt to the same content: Total stays fresh
    assert storage.read_json(ROOT["dir"] / "total.json") == 6


def test_crash_between_artifact_and_manifest_leaves_task_incomplete(graph, monkeypatch) -> None:
    build()
    storage.manifest_path(Source(key="b").artifacts()["out"]).unlink()
    (ROOT["dir"] / "input.json").write_text(json.dumps({"a": 1, "b": 4}))

    def crash(obj, path):  # the artifact is written, then the process dies before the manifest
        if str(path).endswith(storage.MANIFEST_SUFFIX):
            raise KeyboardInterrupt("killed")
        return original(obj, path)

    original = storage.write_json
    monkeypatch.setattr(storage, "write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        Source(key="b").run()
    monkeypatch.setattr(storage, "write_json", original)
    assert storage.read_json(Source(key="b").artifacts()["out"]) == 4   # new bytes on disk
    freshness.reset()
    assert freshness.verdict(Source(key="b")).reason == "missing"
    assert build() == ["Double(key=b)", "Source(key=b)", "Total()"]
    assert storage.read_json(ROOT["dir"] / "total.json") == 10


def test_manifest_records_inputs_and_lineage(graph) -> None:
    build()
    manifest = storage.read_json(storage.manifest_path(ROOT["dir"] / "total.json"))
    assert set(manifest["inputs"]) == {Double(key="a").task_id, Double(key="b").task_id}
    assert manifest["code_version"] == "1" and manifest["packages"]["luigi"]
    art = manifest["artifacts"]["out"]
    assert art["sha256"] == storage.file_sha256(ROOT["dir"] / "total.json")
    assert art["size"] == os.path.getsize(ROOT["dir"] / "total.json")
