"""Configuration: luigi.Config sections read from luigi.cfg (and LUIGI_CONFIG_PATH overrides).

Secrets never live here: the MOLIT key is read from the environment only (`service_key()`).
"""
from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import luigi
import luigi.configuration
import pandas as pd

from aptpipe import months, storage
from aptpipe.train import TrainSpec

T = TypeVar("T")
SERVICE_KEY_ENV = "APTPIPE_SERVICE_KEY"
SOURCES = ("synthetic", "molit", "export")


class aptpipe(luigi.Config):  # noqa: N801 - section name in luigi.cfg
    data_dir = luigi.Parameter(default="data")
    models_dir = luigi.Parameter(default="models")
    source = luigi.ChoiceParameter(choices=SOURCES, default="synthetic")
    regions = luigi.Parameter(default="seoul")
    start_month = luigi.IntParameter(default=202401)
    refresh_months = luigi.IntParameter(default=3)
    refresh_interval = luigi.TimeDeltaParameter(default=dt.timedelta(days=1))
    min_train_months = luigi.IntParameter(default=6)


class synthetic(luigi.Config):  # noqa: N801
    seed = luigi.IntParameter(default=7)
    shock_month = luigi.Parameter(default="")
    shock_pct = luigi.FloatParameter(default=-15.0)
    trades_per_gu_month = luigi.FloatParameter(default=150.0)


class molit(luigi.Config):  # noqa: N801
    base_url = luigi.Parameter(default="https://apis.data.go.kr/1613000")
    endpoint = luigi.ChoiceParameter(choices=("general", "dev"), default="general")
    timeout = luigi.FloatParameter(default=30.0)
    page_size = luigi.IntParameter(default=1000)
    retries = luigi.IntParameter(default=5)
    call_budget = luigi.IntParameter(default=9000)


class train(luigi.Config):  # noqa: N801 - the model's hyper-parameters (TrainSpec)
    max_iter = luigi.IntParameter(default=TrainSpec.max_iter)
    learning_rate = luigi.FloatParameter(default=TrainSpec.learning_rate)
    max_leaf_nodes = luigi.IntParameter(default=TrainSpec.max_leaf_nodes)
    min_samples_leaf = luigi.IntParameter(default=TrainSpec.min_samples_leaf)
    l2_regularization = luigi.FloatParameter(default=TrainSpec.l2_regularization)
    quantile = luigi.FloatParameter(default=TrainSpec.quantile)


def per_config(fn: Callable[[], T]) -> Callable[[], T]:
    """Memoise `fn` for the current configuration (a new config parser means a new value).

    Reading a luigi.Config section costs milliseconds; the freshness check of a long history
    asks for the same settings thousands of times.
    """
    cache: dict[int, tuple[object, T]] = {}

    @functools.wraps(fn)
    def wrapper() -> T:
        parser = luigi.configuration.get_config()
        hit = cache.get(id(parser))
        if hit is None or hit[0] is not parser:
            hit = cache[id(parser)] = (parser, fn())
        return hit[1]

    return wrapper


@per_config
def settings() -> aptpipe:
    return aptpipe()


@per_config
def synthetic_settings() -> synthetic:
    return synthetic()


@per_config
def molit_settings() -> molit:
    return molit()


@per_config
def train_spec() -> TrainSpec:
    section = train()
    return TrainSpec(max_iter=section.max_iter, learning_rate=section.learning_rate,
                     max_leaf_nodes=section.max_leaf_nodes,
                     min_samples_leaf=section.min_samples_leaf,
                     l2_regularization=section.l2_regularization, quantile=section.quantile)


@per_config
def catalog() -> storage.Catalog:
    cfg = settings()
    return storage.Catalog(Path(cfg.data_dir), Path(cfg.models_dir))


@functools.lru_cache(maxsize=1)
def district_table() -> pd.DataFrame:
    """The shipped nationwide 시군구 code list (see aptpipe/data)."""
    text = importlib.resources.files("aptpipe.data").joinpath(
        "lawd_cd_sigungu_nationwide.csv").read_text(encoding="utf-8")
    return pd.read_csv(io.StringIO(text), dtype={"lawd_cd": str, "sido_cd": str})


@functools.lru_cache(maxsize=16)
def resolve_regions(spec: str) -> tuple[str, ...]:
    """'seoul', 'nationwide' (the 252 codes MOLIT serves today), 'all' (every code ever,
    for bulk exports of old years) or a comma list of 5-digit LAWD_CD -> sorted codes."""
    table = district_table()
    text = spec.strip().lower()
    if text == "all":
        return tuple(sorted(table["lawd_cd"]))
    if text == "seoul":
        return tuple(sorted(table.loc[table["is_seoul"] & table["crawl_recommended_2025"],
                                      "lawd_cd"]))
    if text == "nationwide":
        return tuple(sorted(table.loc[table["crawl_recommended_2025"], "lawd_cd"]))
    codes = [c.strip() for c in spec.split(",") if c.strip()]
    known = set(table["lawd_cd"])
    bad = [c for c in codes if len(c) != 5 or not c.isdigit() or c not in known]
    if bad or not codes:
        raise ValueError(f"[aptpipe] regions: unknown district code(s) {bad or spec!r}; "
                         "use 'seoul', 'nationwide', 'all' or 5-digit LAWD_CD codes")
    return tuple(sorted(set(codes)))


@per_config
def start_month() -> int:
    return months.parse_ym(settings().start_month)


def shock_month() -> int | None:
    text = str(synthetic_settings().shock_month).strip()
    return months.parse_ym(text) if text else None


def service_key() -> str:
    """The MOLIT key, from the environment only."""
    key = os.environ.get(SERVICE_KEY_ENV, "").strip()
    if not key:
        raise RuntimeError(f"source = molit needs the MOLIT service key in the environment "
                           f"variable {SERVICE_KEY_ENV}")
    return key
