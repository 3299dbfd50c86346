"""`aptpipe predict`: the champion prices any table of trades, row for row, never crashing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from luigi.execution_summary import LuigiStatusCode

from aptpipe import cli, config, months, predict, storage, tasks
from tests.conftest import TODAY, run_tasks

pytestmark = pytest.mark.slow


def test_predict_round_trip_on_a_small_pipeline(pipeline, tmp_path: Path, capsys) -> None:
    assert run_tasks([tasks.MonthlyRun(today=TODAY)]) == LuigiStatusCode.SUCCESS
    cat = config.catalog()
    champion = storage.read_json(cat.champion())
    month = months.add_months(int(champion["as_of"]), 1)
    trades = pd.read_parquet(cat.clean(month)).head(60).reset_index(drop=True)
    # the same rows the pipeline priced for monitoring: predict must agree with the champion
    model = storage.read_pickle(cat.models_dir / champion["path"])
    expected = model.predict(pd.read_parquet(cat.features(month)).head(60))

    odd = trades.copy()
    odd.loc[0, "complex_key"] = "brand-new-complex"
    odd.loc[1, "area_m2"] = 5.0
    odd.loc[2, "floor"] = pd.NA
    odd.loc[3, "area_m2"] = np.nan
    odd.loc[4, "lawd_cd"] = pd.NA
    odd.loc[5, ["lawd_cd", "complex_key"]] = ["99999", "nowhere"]  # a district never seen
    odd = odd.drop(columns=["price_manwon"])
    for suffix in (".csv", ".parquet"):
        source = tmp_path / f"in{suffix}"
        if suffix == ".csv":
            odd.to_csv(source, index=False)
        else:
            odd.to_parquet(source, index=False)
        target = tmp_path / f"out{suffix}"
        assert cli.main(["predict", "--input", str(source), "--output", str(target)]) == 0
        out = pd.read_csv(target) if suffix == ".csv" else pd.read_parquet(target)
        assert len(out) == len(odd)
        assert out["complex_key"].astype(str).tolist() == odd["complex_key"].astype(str).tolist()
        ok = np.arange(6, len(odd))
        np.testing.assert_allclose(out.loc[ok, "pred_price_manwon"], np.round(expected[ok]),
                                   rtol=1e-6)
        assert out.loc[ok, "pred_reason"].isna().all()
        assert "unseen_complex" in out.loc[0, "pred_flags"] and out.loc[0, "pred_price_manwon"] > 0
        assert "odd_area" in out.loc[1, "pred_flags"] and out.loc[1, "pred_price_manwon"] > 0
        assert "missing_floor" in out.loc[2, "pred_flags"] and out.loc[2, "pred_price_manwon"] > 0
        assert out.loc[3, "pred_reason"] == "invalid area"
        assert out.loc[4, "pred_reason"] == "missing district code"
        assert out.loc[5, "pred_reason"] == "no market level for this district"
        assert out.loc[[3, 4, 5], "pred_price_manwon"].isna().all()
    assert "rows priced with" in capsys.readouterr().out


def test_predict_reads_raw_exports_without_prices(pipeline, tmp_path: Path) -> None:
    assert run_tasks([tasks.MonthlyRun(today=TODAY)]) == LuigiStatusCode.SUCCESS
    cat = config.catalog()
    champion = predict.load_champion(cat)
    raw = pd.read_parquet(cat.raw(months.add_months(champion.state.as_of, 1))).head(40)
    raw = raw.reset_index(drop=True)
    raw.loc[0, "dealAmount"] = pd.NA
    raw.loc[1, "dealYear"] = "nonsense"
    raw.loc[2, "cdealType"] = "O"                 # cancelled later: still a priceable unit
    canonical, reason = predict._canonical_from_export(raw)
    priced = predict.price_rows(canonical, len(raw), champion, reason)
    assert len(priced) == len(raw)
    assert priced.loc[0, "pred_price_manwon"] > 0 and priced.loc[2, "pred_price_manwon"] > 0
    assert pd.isna(priced.loc[1, "pred_price_manwon"]) and priced.loc[1, "pred_reason"]
    assert priced["pred_price_manwon"].notna().sum() >= len(raw) - 3
