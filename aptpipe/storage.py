"""The catalog of artifact paths, and atomic writes.

Every path the pipeline reads or writes is a pure function of task parameters and lives here.
Every write goes to a temporary file in the destination folder and is renamed into place, so a
crash never leaves a half-written file under a final name.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class Catalog:
    """Where each artifact lives under the two roots."""

    data_dir: Path
    models_dir: Path

    # data side -------------------------------------------------------------
    def raw(self, deal_ym: int) -> Path:
        return self.data_dir / "raw" / f"deal_ym={deal_ym}" / "part-0.parquet"

    def raw_checkpoints(self, deal_ym: int) -> Path:
        return self.data_dir / "raw" / f"deal_ym={deal_ym}" / "_checkpoints"

    def imports(self, deal_ym: int) -> Path:
        """Folder of bulk-export slices staged by `aptpipe import` for one contract month."""
        return self.data_dir / "imports" / f"deal_ym={deal_ym}"

    def clean(self, deal_ym: int) -> Path:
        return self.data_dir / "clean" / f"deal_ym={deal_ym}.parquet"

    def quarantine(self, deal_ym: int) -> Path:
        return self.data_dir / "quarantine" / f"deal_ym={deal_ym}.parquet"

    def market_state(self, as_of: int) -> Path:
        return self.data_dir / "state" / f"as_of={as_of}.pkl"

    def features(self, deal_ym: int) -> Path:
        return self.data_dir / "features" / f"deal_ym={deal_ym}.parquet"

    def monitoring(self, deal_ym: int) -> Path:
        return self.data_dir / "monitoring" / f"deal_ym={deal_ym}.json"

    # model side ------------------------------------------------------------
    def candidate_dir(self, as_of: int) -> Path:
        return self.models_dir / "candidates" / f"as_of={as_of}"

    def candidate_model(self, as_of: int) -> Path:
        return self.candidate_dir(as_of) / "model.pkl"

    def candidate_holdout(self, as_of: int) -> Path:
        return self.candidate_dir(as_of) / "holdout.parquet"

    def metrics(self, as_of: int) -> Path:
        return self.candidate_dir(as_of) / "metrics.json"

    def decision(self, as_of: int) -> Path:
        return self.models_dir / "decisions" / f"as_of={as_of}.json"

    def registry_model(self, model_id: str) -> Path:
        return self.models_dir / "registry" / model_id / "model.pkl"

    def champion(self) -> Path:
        return self.models_dir / "champion.json"


def manifest_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, else delete it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_pickle(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def write_json(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str)
                       + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_pickle(path: Path) -> Any:
    with open(path, "rb") as fh:
        return pickle.load(fh)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
