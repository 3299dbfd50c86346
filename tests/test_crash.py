"""Crash safety: `kill -9` a real `aptpipe run` at several points, then run again.

After a kill, whatever has a manifest must be intact (sha256 of every artifact equals its
manifest's); the rerun must exit 0, must not recompute what was complete before the kill, and
leftover temporary files (`.<name>.<random>.tmp`, from writes the kill interrupted) must never be
taken for artifacts.  (Runs leave them behind; `aptpipe gc` sweeps old ones.)
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from aptpipe import config, storage
from tests.conftest import REPO, TODAY, produced

# A lighter market than conftest's SMALL (2 구, 9 months): these tests are about processes,
# locks and files, not the model, and each runs the whole graph more than once.
LIGHT = {"aptpipe": {"regions": "11680,11320", "start_month": "202307", "min_train_months": "3"},
         "synthetic": {"trades_per_gu_month": "100"}}

pytestmark = pytest.mark.slow


def aptpipe_exe() -> str:
    beside = Path(sys.executable).with_name("aptpipe")
    return str(beside) if beside.exists() else (shutil.which("aptpipe") or "aptpipe")


def graph(today=TODAY) -> list:
    """Every task of `MonthlyRun(today)`, in the configuration of the current test."""
    from aptpipe import freshness, tasks

    seen: dict[str, object] = {}
    stack = [tasks.MonthlyRun(today=today)]
    while stack:
        task = stack.pop()
        if task.task_id not in seen:
            seen[task.task_id] = task
            stack.extend(freshness.requirements(task))
    return list(seen.values())


def check_artifacts(*roots: Path) -> dict[str, dict]:
    """Every manifest under `roots` belongs to a task of the run and describes intact artifacts
    (sha256 and size as recorded).  Returns task_id -> manifest of the complete tasks."""
    from aptpipe.freshness import FreshTask

    out = {}
    for task in graph():
        if not isinstance(task, FreshTask) or not task.manifest_path().exists():
            continue
        manifest = storage.read_json(task.manifest_path())
        assert manifest["task_id"] == task.task_id
        for name, path in task.artifacts().items():
            rec = manifest["artifacts"][name]
            assert rec["path"] == path.name and not path.name.endswith(".tmp")
            assert path.exists(), f"{task.task_id}: artifact {name} missing"
            assert storage.file_sha256(path) == rec["sha256"], f"{path} is corrupt"
            assert path.stat().st_size == rec["size"]
        out[task.task_id] = manifest
    on_disk = {storage.read_json(p)["task_id"] for root in roots
               for p in root.rglob(f"*{storage.MANIFEST_SUFFIX}")}
    assert on_disk == set(out), f"manifests of unknown tasks: {sorted(on_disk - set(out))}"
    return out


def temporary_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots if root.exists() for p in root.rglob("*.tmp"))


def stale_tasks() -> list[str]:
    """What `aptpipe status` would list (in-process: the same verdicts, no extra process)."""
    from aptpipe import freshness

    freshness.reset()
    return [freshness.describe(t) for t in graph() if not freshness.verdict(t).fresh]


def run_and_kill(trigger: Path, workers: int, log: Path, local: bool = True
                 ) -> subprocess.Popen:
    """Start a run in its own process group; SIGKILL the whole group as soon as `trigger`
    exists (polled every few ms: the kill lands inside or right after that write)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [aptpipe_exe(), "run", "--today", TODAY.isoformat(), "--workers", str(workers),
             *(["--local-scheduler"] if local else [])],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while not trigger.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended ({proc.returncode}) before {trigger} appeared:\n"
                            + log.read_text()[-3000:])
            if time.monotonic() > deadline:
                pytest.fail(f"{trigger} did not appear within 300 s")
            time.sleep(0.002)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # the forked task processes of --workers N died with the group: nothing writes any more
    return proc


POINTS = {
    # name: (folder whose appearance triggers the kill, --workers)
    "during-fetch": (lambda cat: cat.data_dir / "raw", 1),
    "during-clean": (lambda cat: cat.data_dir / "clean", 2),
    "while-writing-a-model": (lambda cat: cat.models_dir / "candidates", 1),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_kill_minus_9_then_rerun_repairs_without_recomputing(pipeline, tmp_path: Path,
                                                             point: str) -> None:
    pipeline(**LIGHT)
    cat = config.catalog()
    roots = (cat.data_dir, cat.models_dir)
    trigger, workers = POINTS[point]
    run_and_kill(trigger(cat), workers, tmp_path / "killed.log")

    # what a kill leaves behind: complete tasks with intact artifacts, and maybe temporaries
    survived = check_artifacts(*roots)
    before = produced(*roots)
    leftovers = temporary_files(*roots)
    for tmp in leftovers:
        assert tmp.name.startswith(".") and tmp.name.endswith(".tmp")
    if point == "while-writing-a-model":
        # killed inside TrainModel: its candidate folder exists, its manifest does not yet
        assert not any(m["task_family"] == "TrainModel" for m in survived.values())

    env = dict(os.environ)
    rerun = subprocess.run([aptpipe_exe(), "run", "--today", TODAY.isoformat(),
                            "--local-scheduler", "--workers", str(workers)],
                           cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]

    after = produced(*roots)
    kept = {task: stamp for task, stamp in before.items() if after.get(task) == stamp}
    assert kept == before, f"recomputed after the kill: {sorted(set(before) - set(kept))}"
    assert len(after) > len(before)
    manifests = check_artifacts(*roots)
    assert set(manifests) == set(after)
    assert stale_tasks() == []

    # temporaries are never artifacts: no manifest names one, and a reader of a partition
    # folder (pyarrow skips dot-files) sees exactly the artifact
    artifact_paths = {path for task in graph() if hasattr(task, "artifacts")
                      for path in task.artifacts().values()}
    assert not artifact_paths & set(temporary_files(*roots))
    # nor do the names readers glob for match them (they are hidden dot-files)
    for tmp in leftovers:
        assert not any(tmp.match(g) for g in ("part-*.parquet", "*.parquet", "*.pkl", "*.json"))
    for task in graph():
        for path in getattr(task, "artifacts", dict)().values():
            if path.suffix == ".parquet":
                pd.read_parquet(path)


def test_kill_minus_9_of_a_run_through_luigid_then_rerun(pipeline, tmp_path: Path) -> None:
    """luigid believes a killed worker still runs its task until the worker misses its pings
    for `worker_disconnect_delay`; then it fails the task and a rerun (which waits for it,
    see scheduler.build_until_complete) runs it again."""
    from aptpipe import scheduler
    from tests.test_scheduler import api, free_port, history

    port, state_dir = free_port(), tmp_path / "luigid"
    # luigi's defaults (60 s, pruned every 60 s) would make this test wait two minutes
    scheduler.start(state_dir, port=port, extra_config={
        "scheduler": {"worker_disconnect_delay": "3", "prune_on_get_work": "true"}})
    try:
        pipeline(**LIGHT, core={"scheduler_host": "127.0.0.1", "scheduler_port": str(port)},
                 coordination={"poll_seconds": "1"})
        cat = config.catalog()
        roots = (cat.data_dir, cat.models_dir)
        run_and_kill(cat.models_dir / "candidates", 1, tmp_path / "killed.log", local=False)
        train = next(t.task_id for t in graph() if t.task_family == "TrainModel")
        running = api(port, "task_list", status="RUNNING", upstream_status="", limit=False)
        assert set(running) == {train}                  # held by the dead worker
        before = produced(*roots)
        rerun = subprocess.run([aptpipe_exe(), "run", "--today", TODAY.isoformat()],
                               cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        events = history(scheduler.Paths(state_dir).history_db)
    finally:
        scheduler.stop(state_dir)
    after = produced(*roots)
    assert {t: after.get(t) for t in before} == before
    check_artifacts(*roots)
    assert stale_tasks() == []
    # started twice (killed, then rerun), done once; luigid fails a dead worker's task in its
    # state only, so the history has no FAILED event for it
    assert events[train]["RUNNING"] == 2 and events[train]["DONE"] == 1
    done_once = {t for t, c in events.items() if t != train and c["RUNNING"] == 1}
    assert done_once == set(events) - {train}
