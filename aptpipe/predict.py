"""Batch prediction with the champion: any table of trades in, the same rows plus a price out.

Input: anything `aptpipe import` reads (`sources.exports.read_export`: MOLIT exports as CSV,
gzip CSV or parquet; the price may be missing) or a plain CSV/parquet with the canonical
columns (`complex_key` or `lawd_cd`/`umd_nm`/`jibun`/`apt_nm`, `area_m2`, `floor`,
`build_year`, `deal_ym` or `deal_date`).  Rows are priced with the champion model and the market
state as of the champion's `as_of`, through the same `build_features` as training.

Output columns added: `pred_price_manwon`, `pred_flags` (";"-joined: `unseen_complex`,
`fallback_<level>`, `odd_area`, `missing_<field>`, `deal_month_before_state`), `pred_reason`
(why a row could not be priced; empty when it was).  Never raises for a bad row.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aptpipe import clean, features, months, storage
from aptpipe.train import PriceModel

log = logging.getLogger(__name__)

ODD_AREA = (10.0, 300.0)            # m²; outside this the model has little support
PLACEHOLDER_PPM2 = 1000.0           # 만원/m², only to let clean type rows that have no price
ROW = "__row"


@dataclass(frozen=True)
class Champion:
    model_id: str
    model: PriceModel
    state: features.MarketState


def load_champion(catalog: storage.Catalog) -> Champion:
    pointer_path = catalog.champion()
    if not pointer_path.exists():
        raise RuntimeError(f"no champion model at {pointer_path}: run `aptpipe run` first")
    pointer = storage.read_json(pointer_path)
    state_path = catalog.market_state(int(pointer["as_of"]))
    if not state_path.exists():
        raise RuntimeError(f"market state {state_path} of the champion is missing: "
                           f"run `aptpipe run` to rebuild it")
    model = storage.read_pickle(catalog.models_dir / pointer["path"])
    unknown = sorted(set(model.feature_columns) - set(features.FEATURE_COLUMNS))
    if unknown:
        raise RuntimeError(f"champion {pointer['model_id']} needs features this code no longer "
                           f"builds ({', '.join(unknown)}): run `aptpipe run` to train and "
                           "promote a current model")
    return Champion(pointer["model_id"], model, storage.read_pickle(state_path))


def _canonical_from_export(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Type raw export rows with `clean.clean_month`; rows it rejects get a reason."""
    raw = raw.reset_index(drop=True).copy()
    reason = pd.Series(pd.NA, index=raw.index, dtype="string")
    price = pd.to_numeric(raw["dealAmount"].str.replace(",", ""), errors="coerce")
    area = pd.to_numeric(raw["excluUseAr"], errors="coerce")
    has_price = price.notna() & (price > 0)
    # a missing price is fine for prediction: give clean a plausible one, restore NA afterwards
    raw["dealAmount"] = raw["dealAmount"].mask(~has_price, (area * PLACEHOLDER_PPM2).round()
                                               .astype("Int64").astype("string"))
    raw["cdealType"] = pd.NA          # a cancelled trade can still be priced
    raw["source"] = raw.index.astype(str)
    ym = (pd.to_numeric(raw["dealYear"], errors="coerce") * 100
          + pd.to_numeric(raw["dealMonth"], errors="coerce"))
    parts = []
    for value, part in raw.groupby(ym.fillna(-1).astype(int), sort=False):
        result = clean.clean_month(part, int(value))
        parts.append(result.clean)
        if len(result.quarantine):
            rows = result.quarantine["source"].astype(int).to_numpy()
            reason.iloc[rows] = result.quarantine["reason"].to_numpy()
    typed = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(typed):
        typed[ROW] = typed["source"].astype(int)
        typed["price_manwon"] = price.reindex(typed[ROW].to_numpy()).to_numpy()
        typed = typed.sort_values(ROW).reset_index(drop=True)
    return typed, reason


def _canonical_from_plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reset_index(drop=True).copy()
    out[ROW] = np.arange(len(out))
    text = {c: (out[c].astype("string") if c in out.columns
                else pd.Series(pd.NA, index=out.index, dtype="string"))
            for c in ("lawd_cd", "umd_nm", "jibun", "apt_nm", "apt_seq")}
    text["lawd_cd"] = text["lawd_cd"].str.zfill(5)
    for c, v in text.items():
        out[c] = v
    if "complex_key" not in out.columns:
        out["complex_key"] = clean.complex_key(text["lawd_cd"], text["umd_nm"], text["jibun"],
                                               text["apt_nm"], text["apt_seq"])
    if "deal_ym" not in out.columns:
        date = pd.to_datetime(out.get("deal_date"), errors="coerce")
        out["deal_ym"] = (date.dt.year * 100 + date.dt.month) if date is not None else np.nan
    for c in ("area_m2", "floor", "build_year", "deal_ym", "price_manwon"):
        out[c] = pd.to_numeric(out[c], errors="coerce") if c in out.columns else np.nan
    return out


def read_table(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """(original rows as read, canonical rows with a `__row` position, reason per row)."""
    path = Path(path)
    plain = None
    if path.suffix.lower() == ".parquet":
        plain = pd.read_parquet(path)
    elif path.suffix.lower() in (".csv", ".gz"):
        try:
            plain = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
        except (UnicodeDecodeError, pd.errors.ParserError):
            plain = None
    if plain is not None and "area_m2" in plain.columns:
        return plain, _canonical_from_plain(plain), pd.Series(pd.NA, index=plain.index,
                                                              dtype="string")
    from aptpipe.sources import exports

    raw = exports.read_export(path)
    typed, reason = _canonical_from_export(raw)
    return raw, typed, reason


def price_rows(canonical: pd.DataFrame, n_rows: int, champion: Champion,
               reason: pd.Series | None = None) -> pd.DataFrame:
    """pred_price_manwon / pred_flags / pred_reason for positions 0..n_rows-1."""
    pred = np.full(n_rows, np.nan)
    flags: list[list[str]] = [[] for _ in range(n_rows)]
    reasons = (reason.reindex(range(n_rows)) if reason is not None
               else pd.Series(pd.NA, index=range(n_rows), dtype="string")).astype(object)
    reasons = reasons.where(reasons.notna(), None).tolist()
    state = champion.state
    if len(canonical):
        rows = canonical.reset_index(drop=True).copy()
        pos = rows[ROW].to_numpy(int)
        area = pd.to_numeric(rows["area_m2"], errors="coerce")
        for col in ("floor", "build_year", "umd_nm"):
            for i in np.flatnonzero(rows[col].isna().to_numpy()):
                flags[pos[i]].append(f"missing_{col}")
        ym = pd.to_numeric(rows["deal_ym"], errors="coerce")
        next_month = months.add_months(state.as_of, 1)
        early = ym.isna() | (ym <= state.as_of)
        for i in np.flatnonzero(early.to_numpy()):
            flags[pos[i]].append("deal_month_before_state" if pd.notna(ym.iloc[i])
                                 else "missing_deal_ym")
        rows["deal_ym"] = ym.where(~early, next_month).astype("int64")
        odd = (area < ODD_AREA[0]) | (area > ODD_AREA[1])
        for i in np.flatnonzero(odd.fillna(False).to_numpy()):
            flags[pos[i]].append("odd_area")
        bad_area = area.isna() | (area <= 0)
        bad_lawd = ~rows["lawd_cd"].astype("string").fillna("").str.fullmatch(r"\d{5}")
        for i in np.flatnonzero(bad_area.to_numpy()):
            reasons[pos[i]] = reasons[pos[i]] or "invalid area"
        for i in np.flatnonzero(bad_lawd.to_numpy()):
            reasons[pos[i]] = reasons[pos[i]] or "missing district code"
        ok = ~(bad_area | bad_lawd).to_numpy()
        rows = rows[ok].reset_index(drop=True)
        pos = pos[ok]
        if len(rows):
            rows["floor"] = pd.to_numeric(rows["floor"], errors="coerce")
            rows["build_year"] = pd.to_numeric(rows["build_year"], errors="coerce")
            feats = features.build_features(rows, state)
            price = champion.model.predict(feats)
            level = feats["ref_level"].to_numpy(int)
            top = len(features.REF_LEVELS)
            seen = features.seen_complex(feats)
            for i, p in enumerate(price):
                if not seen[i]:
                    flags[pos[i]].append("unseen_complex")
                if 0 < level[i] < top:
                    flags[pos[i]].append("fallback_" + features.REF_LEVELS[top - level[i]]
                                         .removesuffix("_lppm2"))
                if np.isfinite(p) and p > 0:
                    pred[pos[i]] = float(np.round(p))
                else:
                    reasons[pos[i]] = reasons[pos[i]] or "no market level for this district"
    for i in range(n_rows):
        if np.isnan(pred[i]) and reasons[i] is None:
            reasons[i] = "row could not be read"
    return pd.DataFrame({"pred_price_manwon": pred,
                         "pred_flags": [";".join(f) for f in flags],
                         "pred_reason": pd.Series(reasons, dtype="string")})


def predict_file(input_path: Path, output_path: Path, catalog: storage.Catalog) -> pd.DataFrame:
    """Price every row of `input_path` and write them, in order, to `output_path`."""
    output_path = Path(output_path)
    if output_path.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"output {output_path}: use a .csv or .parquet file name")
    champion = load_champion(catalog)
    original, canonical, reason = read_table(Path(input_path))
    priced = price_rows(canonical, len(original), champion, reason)
    out = pd.concat([original.reset_index(drop=True), priced], axis=1)
    out["pred_model_id"] = champion.model_id
    if output_path.suffix.lower() == ".parquet":
        storage.write_parquet(out, output_path)
    else:
        with storage.atomic_path(output_path) as tmp:
            out.to_csv(tmp, index=False, encoding="utf-8")
    log.info("priced %d of %d rows with %s", int(np.isfinite(priced["pred_price_manwon"]).sum()),
             len(out), champion.model_id)
    return out
