"""Promotion decisions and the champion pointer."""
from __future__ import annotations

from pathlib import Path

from aptpipe import registry, storage


def metrics(cand: float, champ: dict | None) -> dict:
    return {"as_of": 202405, "candidate": {"mape": cand}, "champion": champ}


def test_first_model_becomes_champion() -> None:
    d = registry.decide(metrics(9.0, None), "m1")
    assert d.promote and d.champion_after == "m1" and d.champion_holdout_mape == 9.0


def test_promote_only_when_not_worse_on_the_same_month() -> None:
    champ = {"model_id": "m0", "comparable": True, "accuracy": {"mape": 6.0},
             "holdout_mape": 5.5}
    better = registry.decide(metrics(5.9, champ), "m1")
    assert better.promote and better.champion_before == "m0" and better.champion_after == "m1"
    worse = registry.decide(metrics(6.1, champ), "m1")
    assert not worse.promote and worse.champion_after == "m0"
    assert worse.champion_holdout_mape == 5.5
    assert "6.10% > champion 6.00%" in worse.reason


def test_incomparable_champion_is_kept() -> None:
    champ = {"model_id": "m9", "comparable": False, "note": "champion has seen month"}
    d = registry.decide(metrics(1.0, champ), "m1")
    assert not d.promote and d.champion_after == "m9" and d.reason == "champion has seen month"


def test_promote_copies_into_registry_and_swaps_pointer(tmp_path: Path) -> None:
    cat = storage.Catalog(tmp_path / "data", tmp_path / "models")
    candidate = tmp_path / "model.pkl"
    storage.write_pickle({"w": 1}, candidate)
    registry.promote(cat, "m202405-abc", candidate, {"as_of": 202405, "holdout_mape": 5.0})
    pointer = registry.read_champion(cat)
    assert pointer["model_id"] == "m202405-abc" and pointer["as_of"] == 202405
    assert storage.read_pickle(cat.models_dir / pointer["path"]) == {"w": 1}
    candidate.unlink()  # the registry copy does not depend on the candidate
    assert storage.read_pickle(cat.registry_model("m202405-abc")) == {"w": 1}
