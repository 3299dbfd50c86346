"""The graph.  Thin Luigi tasks: load inputs -> one call into a stage module -> write.

    FetchMonth(M) -> CleanMonth(M) -> MarketState(M) -> MarketState(M+1) -> ...
                                 \\-> BuildFeatures(M) <- MarketState(M-1)
    BuildFeatures(window) -> TrainModel(A) -> EvaluateModel(A) -> PromoteModel(A)
    PromoteModel(T-1) + BuildFeatures(T) -> MonitorMonth(T);   MonthlyRun(today) = both.

Every task is a `FreshTask`: complete means "its manifest matches its code, parameters and
inputs", not merely "its file exists" (see freshness.py).
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

import luigi
import numpy as np
import pandas as pd
from tqdm import tqdm

from aptpipe import clean, config, evaluate, features, monitor, months, registry, sources, storage
from aptpipe import train as train_stage
from aptpipe.freshness import FreshTask, verdict

log = logging.getLogger(__name__)


class TodayParameter(luigi.DateParameter):
    """The run's date ("as the cron job would run on this day"); defaults to the real today."""

    def normalize(self, value: Any) -> dt.date:
        return dt.date.today() if value is None else super().normalize(value)


def _today_param() -> TodayParameter:
    return TodayParameter(default=None, significant=False,
                          description="data as reported by this day (YYYY-MM-DD)")


class AptTask(FreshTask):
    today = _today_param()

    @functools.cached_property
    def catalog(self) -> storage.Catalog:
        return config.catalog()

    def progress(self, done: int, total: int, message: str) -> None:
        self.set_progress_percentage(round(100 * done / max(total, 1)))
        self.set_status_message(message)


class FetchMonth(AptTask):
    """Raw items of one contract month, as the source reports them on `today`."""

    deal_ym = luigi.IntParameter()
    code_version = "1"

    @property
    def resources(self) -> dict[str, int]:  # type: ignore[override]
        return {"molit_api": 1} if config.settings().source == "molit" else {}

    def artifacts(self):
        return {"raw": self.catalog.raw(self.deal_ym)}

    def fingerprint(self):
        return sources.fingerprint()

    def due_reason(self, manifest):
        cfg = config.settings()
        if cfg.source == "export":
            if manifest.get("imports") != sources.staged_files(self.deal_ym, self.catalog):
                return "imported files changed"
            return None
        age = months.months_between(self.deal_ym, months.ym_of(self.today))
        fetched = dt.date.fromisoformat(manifest["as_of"])
        if 0 <= age < cfg.refresh_months and self.today - fetched >= cfg.refresh_interval:
            return f"open month due (last fetched as of {fetched})"
        return None

    def produce(self):
        with tqdm(desc=f"fetch {self.deal_ym}", unit="district", disable=None) as bar:
            def progress(done: int, total: int, message: str) -> None:
                bar.total, bar.n = total, done
                bar.set_postfix_str(message)
                self.progress(done, total, message)

            frame = sources.fetch_month(self.deal_ym, self.today, self.catalog, progress)
        storage.write_parquet(frame, self.catalog.raw(self.deal_ym))
        info = {"rows": {"raw": len(frame)}, "as_of": self.today.isoformat()}
        if config.settings().source == "export":
            info["imports"] = sources.staged_files(self.deal_ym, self.catalog)
        return info


class CleanMonth(AptTask):
    deal_ym = luigi.IntParameter()
    code_version = "1"

    def requires(self):
        return FetchMonth(deal_ym=self.deal_ym, today=self.today)

    def artifacts(self):
        return {"clean": self.catalog.clean(self.deal_ym),
                "quarantine": self.catalog.quarantine(self.deal_ym)}

    def produce(self):
        result = clean.clean_month(pd.read_parquet(self.catalog.raw(self.deal_ym)), self.deal_ym)
        storage.write_parquet(result.clean, self.catalog.clean(self.deal_ym))
        storage.write_parquet(result.quarantine, self.catalog.quarantine(self.deal_ym))
        reasons = result.quarantine["reason"].value_counts().to_dict()
        return {"rows": result.counts(), "quarantine_reasons": reasons}


class MarketState(AptTask):
    """Market aggregates through the end of month `as_of` (the feature store)."""

    as_of = luigi.IntParameter()
    code_version = "3"

    def requires(self):
        if self.as_of < config.start_month():
            return []
        return [MarketState(as_of=months.add_months(self.as_of, -1), today=self.today),
                CleanMonth(deal_ym=self.as_of, today=self.today)]

    def artifacts(self):
        return {"state": self.catalog.market_state(self.as_of)}

    def produce(self):
        if self.as_of < config.start_month():
            state = features.empty_state(self.as_of)
        else:
            previous = storage.read_pickle(
                self.catalog.market_state(months.add_months(self.as_of, -1)))
            state = features.update_state(
                previous, pd.read_parquet(self.catalog.clean(self.as_of)))
        storage.write_pickle(state, self.catalog.market_state(self.as_of))
        return {"rows": {"complexes": len(state.complexes), "recent": len(state.recent)}}


class BuildFeatures(AptTask):
    """Features of month `deal_ym`'s trades, from the market state of the month before."""

    deal_ym = luigi.IntParameter()
    code_version = "3"

    def requires(self):
        return [MarketState(as_of=months.add_months(self.deal_ym, -1), today=self.today),
                CleanMonth(deal_ym=self.deal_ym, today=self.today)]

    def artifacts(self):
        return {"features": self.catalog.features(self.deal_ym)}

    def produce(self):
        state = storage.read_pickle(self.catalog.market_state(months.add_months(self.deal_ym, -1)))
        frame = features.build_features(pd.read_parquet(self.catalog.clean(self.deal_ym)), state)
        storage.write_parquet(frame, self.catalog.features(self.deal_ym))
        return {"rows": {"features": len(frame)}}


class TrainModel(AptTask):
    """A candidate fitted on the training window through `as_of`, plus its hold-out twin's
    predictions for month `as_of` (the same spec fitted on the months before it)."""

    as_of = luigi.IntParameter()
    window_months = luigi.IntParameter(default=36)
    code_version = "4"

    def window(self) -> list[int]:
        first = months.add_months(config.start_month(), config.settings().min_train_months - 1)
        span = months.month_range(max(first, months.add_months(self.as_of, 1 - self.window_months)),
                                  self.as_of)
        if len(span) < 2:
            raise ValueError(
                f"TrainModel(as_of={self.as_of}) needs at least two months of features after "
                f"the warm-up; start_month={config.start_month()} is too late")
        return span

    def requires(self):
        return [BuildFeatures(deal_ym=m, today=self.today) for m in self.window()]

    def fingerprint(self):
        return {"spec": config.train_spec().__dict__}

    def artifacts(self):
        return {"model": self.catalog.candidate_model(self.as_of),
                "holdout": self.catalog.candidate_holdout(self.as_of)}

    def produce(self):
        frame = pd.concat([pd.read_parquet(self.catalog.features(m)) for m in self.window()],
                          ignore_index=True)
        past = frame[frame["deal_ym"] < self.as_of]
        held = frame[(frame["deal_ym"] == self.as_of) & (frame["price_manwon"] > 0)]
        spec = config.train_spec()
        twin = train_stage.fit(past, spec)
        holdout = evaluate.holdout_frame(held.reset_index(drop=True),
                                         twin.predict(held.reset_index(drop=True)))
        model = train_stage.fit(frame, spec)
        storage.write_pickle(model, self.catalog.candidate_model(self.as_of))
        storage.write_parquet(holdout, self.catalog.candidate_holdout(self.as_of))
        return {"rows": {"train": model.n_train, "holdout_train": twin.n_train,
                         "holdout": len(holdout)},
                "train_months": [model.train_months[0], model.train_months[-1]],
                "holdout_train_months": [twin.train_months[0], twin.train_months[-1]],
                "features": list(model.feature_columns)}


class EvaluateModel(AptTask):
    """Candidate (hold-out twin) vs two naive baselines vs current champion, on month `as_of`;
    plus feature validity (permutation importance, per-group ablation) on a cheap subsample."""

    as_of = luigi.IntParameter()
    code_version = "3"

    def requires(self):
        train = TrainModel(as_of=self.as_of, today=self.today)
        return [train, *[BuildFeatures(deal_ym=m, today=self.today) for m in train.window()]]

    def artifacts(self):
        return {"metrics": self.catalog.metrics(self.as_of)}

    def produce(self):
        window = TrainModel(as_of=self.as_of, today=self.today).window()
        frame = pd.concat([pd.read_parquet(self.catalog.features(m)) for m in window],
                          ignore_index=True)
        # the hold-out rows, in the order TrainModel scored them
        month = frame[(frame["deal_ym"] == self.as_of) & (frame["price_manwon"] > 0)]
        month = month.reset_index(drop=True)
        held = pd.read_parquet(self.catalog.candidate_holdout(self.as_of))
        actual = held["price_manwon"].to_numpy(float)
        segments = evaluate.report(held)
        best = evaluate.better_baseline(segments["overall"])
        metrics: dict[str, Any] = {
            "as_of": self.as_of,
            "evaluation_month": self.as_of,
            "candidate": segments["overall"]["model"],
            "baseline": {**segments["overall"][best], "name": best},
            "baselines": {k: segments["overall"][k] for k in evaluate.BASELINES},
            "segments": segments,
            "champion": self._champion(actual, month),
            "validity": evaluate.feature_validity(frame[frame["deal_ym"] < self.as_of], month,
                                                  config.train_spec()),
        }
        metrics["beats_baseline"] = metrics["candidate"]["mape"] < metrics["baseline"]["mape"]
        storage.write_json(metrics, self.catalog.metrics(self.as_of))
        log.info("candidate %s: MAPE %.2f%% vs baseline (%s) %.2f%%", self.as_of,
                 metrics["candidate"]["mape"], best, metrics["baseline"]["mape"])
        return {"rows": {"evaluated": len(held)}}

    def _champion(self, actual: np.ndarray, rows: pd.DataFrame) -> dict[str, Any] | None:
        """The champion's figures on the hold-out rows (`rows`: their features)."""
        pointer = registry.read_champion(self.catalog)
        if pointer is None:
            return None
        info = {"model_id": pointer["model_id"], "as_of": pointer["as_of"],
                "holdout_mape": pointer.get("holdout_mape")}
        if int(pointer["as_of"]) > self.as_of:
            return {**info, "comparable": False,
                    "note": f"champion trained through {pointer['as_of']} has seen month "
                            f"{self.as_of}; not replaced by an older candidate"}
        if int(pointer["as_of"]) == self.as_of:
            # a retrain of the same month (new code or revised data): the champion has seen
            # this month, so compare it through its own hold-out twin, scored on the same month
            if pointer.get("holdout_mape") is None:
                return {**info, "comparable": False, "note": "champion has no hold-out record"}
            return {**info, "comparable": True, "via": "champion's hold-out twin",
                    "accuracy": {"mape": pointer["holdout_mape"]}}
        model = storage.read_pickle(self.catalog.models_dir / pointer["path"])
        return {**info, "comparable": True,
                "accuracy": evaluate.accuracy(actual, model.predict(rows)).as_dict()}


class PromoteModel(AptTask):
    """Decide on the candidate; on promotion, register it and swap the champion pointer."""

    as_of = luigi.IntParameter()
    code_version = "1"

    def requires(self):
        return EvaluateModel(as_of=self.as_of, today=self.today)

    def artifacts(self):
        return {"decision": self.catalog.decision(self.as_of)}

    def produce(self):
        train = TrainModel(as_of=self.as_of, today=self.today)
        model_id = f"m{self.as_of}-{verdict(train).hash[:10]}"
        metrics = storage.read_json(self.catalog.metrics(self.as_of))
        decision = registry.decide(metrics, model_id)
        if decision.promote:
            registry.promote(self.catalog, model_id, self.catalog.candidate_model(self.as_of),
                             {"as_of": self.as_of, "holdout_mape": metrics["candidate"]["mape"]})
        storage.write_json(decision.as_dict(), self.catalog.decision(self.as_of))
        return {"decision": decision.as_dict()}


class MonitorMonth(AptTask):
    """The champion's accuracy on month `deal_ym`'s trades reported so far, and input drift."""

    deal_ym = luigi.IntParameter()
    code_version = "4"

    def requires(self):
        return [BuildFeatures(deal_ym=self.deal_ym, today=self.today),
                PromoteModel(as_of=months.add_months(self.deal_ym, -1), today=self.today)]

    def artifacts(self):
        return {"record": self.catalog.monitoring(self.deal_ym)}

    def produce(self):
        decision = storage.read_json(self.catalog.decision(months.add_months(self.deal_ym, -1)))
        model_id = decision["champion_after"]
        model = storage.read_pickle(self.catalog.registry_model(model_id))
        holdout_mape = decision["champion_holdout_mape"]
        rows = pd.read_parquet(self.catalog.features(self.deal_ym))
        record = monitor.monitor_month(rows, model, model_id,
                                       np.nan if holdout_mape is None else holdout_mape,
                                       self.deal_ym)
        storage.write_json(record.as_dict(), self.catalog.monitoring(self.deal_ym))
        log.info("monitor %s: %s (n=%d, MAPE %.2f%%)", self.deal_ym, record.status, record.n,
                 record.accuracy["mape"])
        return {"status": record.status}


class MonthlyRun(luigi.WrapperTask):
    """The cron entry point: everything a run on `today` should leave fresh."""

    today = TodayParameter(default=None, description="run as the cron job would on this day")

    def requires(self):
        current = months.ym_of(self.today)
        return [PromoteModel(as_of=months.add_months(current, -1), today=self.today),
                MonitorMonth(deal_ym=current, today=self.today)]

    def complete(self) -> bool:
        return all(verdict(r).fresh for r in self.requires())
