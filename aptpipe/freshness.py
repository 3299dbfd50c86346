"""Content-fingerprint freshness: manifests and deep completeness for Luigi tasks.

Luigi calls a task complete when its output exists.  aptpipe calls it complete (fresh) when:

* its manifest exists (written last, atomically, after every artifact),
* the recorded `code_version` and parameters equal the task's current ones,
* every artifact is still the file the manifest describes (size and mtime),
* task-specific due checks pass (e.g. an open month whose last fetch is old),
* every requirement is fresh and its content hash equals the one recorded as read.

Verdicts are memoised per process; each memo entry is keyed by the stat of the task's manifest,
so it is dropped as soon as the task rewrites (or loses) its manifest.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import luigi
from luigi.task import flatten

from aptpipe import storage

log = logging.getLogger(__name__)

PACKAGES = ("aptpipe", "luigi", "pandas", "pyarrow", "scikit-learn", "numpy")


@dataclass(frozen=True)
class Verdict:
    fresh: bool
    reason: str | None      # why the task would run (None when fresh)
    hash: str | None        # content hash of the task's artifacts (when fresh)


_memo: dict[str, tuple[Any, Verdict]] = {}


def reset() -> None:
    """Forget every memoised verdict (start of a run, or after forcing a task)."""
    _memo.clear()


def _token(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        return storage.read_json(path)
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def describe(task: luigi.Task) -> str:
    params = ", ".join(f"{k}={v}" for k, v in task.to_str_params(only_significant=True).items())
    return f"{task.task_family}({params})"


def requirements(task: luigi.Task) -> list[luigi.Task]:
    """The task's requirements, computed once per task instance (Luigi reuses instances)."""
    cached = task.__dict__.get("_aptpipe_requirements")
    if cached is None:
        cached = task.__dict__["_aptpipe_requirements"] = list(flatten(task.requires()))
    return cached


class FreshTask(luigi.Task):
    """Base of every aptpipe task: artifacts with a manifest, deep content-based completeness.

    Subclasses define `artifacts()` (name -> path, the first one carries the manifest),
    `produce()` (write the artifacts; return a dict of row counts / stats for the manifest),
    and may define `fingerprint()` (configuration the result depends on) and
    `due_reason(manifest)` (a time-based reason to rerun).
    """

    code_version: str = "1"

    def artifacts(self) -> dict[str, Path]:
        raise NotImplementedError

    def produce(self) -> dict[str, Any]:
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        return {}

    def due_reason(self, manifest: dict[str, Any]) -> str | None:
        return None

    # ------------------------------------------------------------------------------------
    # computed once per instance: Luigi reuses task instances, and a long history asks often
    @functools.cached_property
    def _manifest_path(self) -> Path:
        return storage.manifest_path(next(iter(self.artifacts().values())))

    def manifest_path(self) -> Path:
        return self._manifest_path

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(self.manifest_path()))

    @functools.cached_property
    def _params_record(self) -> dict[str, Any]:
        return {"params": self.to_str_params(only_significant=True),
                "config": json.loads(json.dumps(self.fingerprint(), sort_keys=True, default=str))}

    def params_record(self) -> dict[str, Any]:
        return self._params_record

    @functools.cached_property
    def memo_key(self) -> str:
        # insignificant parameters (the run's `today`) can change a verdict too
        return self.task_id + repr(sorted(self.to_str_params().items()))

    def complete(self) -> bool:
        return verdict(self).fresh

    def run(self) -> None:
        mpath = self.manifest_path()
        inputs = {req.task_id: verdict(req).hash for req in requirements(self)}
        if any(h is None for h in inputs.values()):
            raise RuntimeError(f"{describe(self)}: a requirement is not fresh")
        manifest = read_manifest(mpath)
        if manifest is not None and _own_reason(self, manifest) is None \
                and _inputs_reason(manifest, inputs) is None:
            # An upstream rerun produced identical content: nothing to redo (early cut-off).
            log.info("%s: inputs unchanged, kept as is", describe(self))
            os.utime(mpath)  # new stat token, so memoised verdicts are re-read
            return
        mpath.unlink(missing_ok=True)  # a crash from here on leaves the task incomplete
        started = dt.datetime.now(dt.timezone.utc)
        info = self.produce() or {}
        artifacts = {}
        for name, path in self.artifacts().items():
            st = os.stat(path)
            artifacts[name] = {"path": path.name, "sha256": storage.file_sha256(path),
                               "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        content = hashlib.sha256("".join(a["sha256"] for a in artifacts.values()).encode())
        manifest = {
            "task_family": self.task_family,
            "task_id": self.task_id,
            **self.params_record(),
            "code_version": self.code_version,
            "hash": content.hexdigest(),
            "artifacts": artifacts,
            "inputs": inputs,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
            "packages": package_versions(),
            **info,
        }
        storage.write_json(manifest, mpath)


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _own_reason(task: FreshTask, manifest: dict[str, Any] | None) -> str | None:
    """Why `task` itself is stale, judged from its manifest alone (not its inputs)."""
    if manifest is None:
        return "missing"
    if manifest.get("code_version") != task.code_version:
        return f"code changed ({manifest.get('code_version')} -> {task.code_version})"
    current = task.params_record()
    for part in ("params", "config"):
        if manifest.get(part) != current[part]:
            old, new = manifest.get(part) or {}, current[part]
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            return f"parameter changed ({', '.join(keys)})"
    for name, path in task.artifacts().items():
        rec = manifest.get("artifacts", {}).get(name)
        st = _token(path)
        if rec is None or st is None or (st[2], st[1]) != (rec["size"], rec["mtime_ns"]):
            return f"artifact missing or modified ({path.name})"
    return task.due_reason(manifest)


def _inputs_reason(manifest: dict[str, Any], inputs: dict[str, str | None]) -> str | None:
    """Why a task is stale because what it read differs from its requirements' content now."""
    recorded = manifest.get("inputs", {})
    for req_id, h in inputs.items():
        if recorded.get(req_id) != h:
            return f"input changed ({req_id})"
    if set(recorded) - set(inputs):
        return "requirements changed"
    return None


def verdict(task: luigi.Task) -> Verdict:
    """Deep freshness of `task`, walking its requirements iteratively (graphs are deep)."""
    if not isinstance(task, FreshTask):
        return Verdict(bool(task.complete()), None, "external")
    stack: list[tuple[FreshTask, bool]] = [(task, False)]
    while stack:
        current, expanded = stack.pop()
        if _cached(current) is not None:
            continue
        reqs = [r for r in requirements(current)]
        if not expanded:
            stack.append((current, True))
            stack.extend((r, False) for r in reqs if isinstance(r, FreshTask)
                         and _cached(r) is None)
            continue
        _store(current, _judge(current, reqs))
    result = _cached(task)
    assert result is not None
    return result


def _cached(task: FreshTask) -> Verdict | None:
    entry = _memo.get(task.memo_key)
    if entry is None:
        return None
    token, result = entry
    return result if token == _token(task.manifest_path()) else None


def _store(task: FreshTask, result: Verdict) -> None:
    _memo[task.memo_key] = (_token(task.manifest_path()), result)


def _judge(task: FreshTask, reqs: Iterable[luigi.Task]) -> Verdict:
    manifest = read_manifest(task.manifest_path())
    reason = _own_reason(task, manifest)
    if reason or manifest is None:
        return Verdict(False, reason, None)
    inputs: dict[str, str | None] = {}
    for req in reqs:
        req_verdict = _cached(req) if isinstance(req, FreshTask) else verdict(req)
        if req_verdict is None or not req_verdict.fresh:
            return Verdict(False, f"requirement stale ({describe(req)})", None)
        inputs[req.task_id] = req_verdict.hash
    reason = _inputs_reason(manifest, inputs)
    if reason:
        return Verdict(False, reason, None)
    return Verdict(True, None, manifest["hash"])
