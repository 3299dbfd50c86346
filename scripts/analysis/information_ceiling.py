"""How far can any model get on the real time-forward splits?  (issue 6's 0.65× target)

Fits the shipped model three times on each real split in `../shared/realdata` (the splits of
`tests/test_model_quality.py`), each time with more information about the month being priced,
and prints MAPE against the better naive baseline on the same rows:

1. `shipped`: the features as served (the market state through the month before);
2. `+ earlier same-month`: also the mean price per m² of the same unit type's and the same
   complex's trades on *earlier contract days of the same month* (allowed by "trades before the
   one being priced", but not available when serving from a monthly state);
3. `+ whole same-month (peeks)`: the same means over *all other* trades of the month, later
   ones included: a leak, shown only as the ceiling of what same-month information buys.

Usage (needs ../shared/realdata; about 2 minutes on one core):

    OMP_NUM_THREADS=1 python scripts/analysis/information_ceiling.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from aptpipe import evaluate, features  # noqa: E402
from tests.test_model_quality import REAL, feature_months  # noqa: E402

EXTRA = ("sm_ut", "sm_ut_n", "sm_cx", "sm_cx_n")


def same_month(frame: pd.DataFrame, earlier_only: bool) -> pd.DataFrame:
    """`frame` plus the mean log price per m² (relative to `ref_lppm2`) and count of the same
    unit type's / complex's other trades in the month: on earlier contract days, or all."""
    out = frame.copy()
    work = pd.DataFrame({
        "complex_key": frame["complex_key"].astype("string"),
        "akey": features.area_key(frame["area_m2"]),
        "day": pd.to_datetime(frame["deal_date"]).dt.day,
        "lp": np.log(frame["price_manwon"].to_numpy(float) / frame["area_m2"].to_numpy(float)),
    })
    for name, keys in (("sm_ut", ["complex_key", "akey"]), ("sm_cx", ["complex_key"])):
        if earlier_only:
            daily = work.groupby([*keys, "day"])["lp"].agg(["sum", "size"]).reset_index()
            cum = daily.groupby(keys)[["sum", "size"]].cumsum()
            daily["s"] = cum["sum"] - daily["sum"]
            daily["n"] = cum["size"] - daily["size"]
            got = work.merge(daily[[*keys, "day", "s", "n"]], on=[*keys, "day"], how="left")
            total, count = got["s"].to_numpy(), got["n"].to_numpy()
        else:
            group = work.groupby(keys)["lp"]
            total = (group.transform("sum") - work["lp"]).to_numpy()
            count = (group.transform("size") - 1).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = np.where(count > 0, total / count, np.nan) - frame["ref_lppm2"].to_numpy()
        out[name + "_n"] = count.astype(float)
    return out


def score(by_month: dict[int, pd.DataFrame], cut: int, columns: tuple[str, ...]) -> str:
    overall = evaluate.time_forward(by_month, cut, columns=columns)["report"]["overall"]
    best = evaluate.better_baseline(overall)
    mape, base = overall["model"]["mape"], overall[best]["mape"]
    return (f"MAPE {mape:5.2f} %  median APE {overall['model']['median_ape']:4.2f} %  "
            f"better baseline {base:5.2f} %  ratio {mape / base:.3f}")


def main() -> int:
    if not REAL.exists():
        print(f"needs {REAL}")
        return 1
    splits = {
        "Seoul 2024-03..05": (sorted((REAL / "seoul_monthly").glob("2024*.csv.gz")), 202402),
        "nationwide 2007-07..09": ([REAL / "rtdown_apt_trade_nationwide_2007_01_09.parquet"],
                                   200706),
    }
    for label, (paths, cut) in splits.items():
        by_month = feature_months(paths)
        print(label)
        print(f"  shipped                    {score(by_month, cut, features.FEATURE_COLUMNS)}")
        for name, earlier in (("+ earlier same-month     ", True),
                              ("+ whole same-month (peek)", False)):
            extended = {m: same_month(f, earlier) for m, f in by_month.items()}
            print(f"  {name}  {score(extended, cut, (*features.FEATURE_COLUMNS, *EXTRA))}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
