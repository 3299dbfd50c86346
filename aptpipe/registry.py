"""Promotion rule and the champion pointer.

A candidate trained through month M is compared with the champion on month M's trades: the
candidate through its hold-out twin (the same spec fitted on months < M), the champion as it is
(it was trained before M).  Both have therefore never seen those trades.
"""
from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aptpipe import storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    as_of: int
    candidate_id: str
    promote: bool
    reason: str
    champion_before: str | None
    champion_after: str | None
    champion_holdout_mape: float | None   # the hold-out MAPE of the champion after the decision

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(metrics: dict[str, Any], candidate_id: str, tolerance: float = 0.0) -> Decision:
    """Promote when there is no comparable champion, or the candidate is not worse than the
    champion on the same unseen month (MAPE within `tolerance`, a fraction)."""
    as_of = int(metrics["as_of"])
    champ = metrics.get("champion")
    cand_mape = metrics["candidate"]["mape"]
    if champ is None:
        return Decision(as_of, candidate_id, True, "no champion yet", None, candidate_id,
                        cand_mape)
    before = champ["model_id"]
    kept = champ.get("holdout_mape")
    if not champ.get("comparable", False):
        return Decision(as_of, candidate_id, False, champ.get("note", "champion not comparable"),
                        before, before, kept)
    champ_mape = champ["accuracy"]["mape"]
    if cand_mape <= champ_mape * (1 + tolerance):
        return Decision(as_of, candidate_id, True,
                        f"candidate MAPE {cand_mape:.2f}% <= champion {champ_mape:.2f}%",
                        before, candidate_id, cand_mape)
    return Decision(as_of, candidate_id, False,
                    f"candidate MAPE {cand_mape:.2f}% > champion {champ_mape:.2f}%", before, before,
                    kept)


def read_champion(catalog: storage.Catalog) -> dict[str, Any] | None:
    path = catalog.champion()
    return storage.read_json(path) if path.exists() else None


def promote(catalog: storage.Catalog, model_id: str, candidate: Path,
            info: dict[str, Any]) -> None:
    """Copy the candidate into the registry (immutable) and swap the champion pointer."""
    target = catalog.registry_model(model_id)
    if not target.exists():
        with storage.atomic_path(target) as tmp:
            shutil.copyfile(candidate, tmp)
    pointer = {"model_id": model_id, "path": str(target.relative_to(catalog.models_dir)),
               "promoted_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               **info}
    storage.write_json(pointer, catalog.champion())
    log.info("champion is now %s", model_id)
