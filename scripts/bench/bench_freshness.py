"""Benchmark: freshness checks and incremental runs on a 20-year all-Seoul synthetic history.

Prints, side by side in one run:
* a no-op `aptpipe run` versus a bare Luigi no-op run of one trivial task (target: <= 10x);
* `aptpipe status` on the same graph;
* a one-new-month incremental build versus the full build from scratch, both without model
  training (target: <= 10 %).

Usage: python scripts/bench/bench_freshness.py [--years 20] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def best_of(n: int, args: list[str], env: dict[str, str], cwd: Path) -> float:
    return min(timed(args, env, cwd) for _ in range(n))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--years", type=int, default=20)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--trades-per-gu-month", type=float, default=250.0)
    args = p.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="aptpipe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    today = dt.date(2026, 1, 15)
    next_month = dt.date(2026, 2, 15)
    start = f"{2026 - args.years}01"
    cfg = work / "bench.cfg"
    cfg.write_text(textwrap.dedent(f"""
        [aptpipe]
        data_dir = {work / 'data'}
        models_dir = {work / 'models'}
        source = synthetic
        regions = seoul
        start_month = {start}
        [synthetic]
        trades_per_gu_month = {args.trades_per_gu_month}
        [core]
        autoload_range = false
        """))
    os.environ["LUIGI_CONFIG_PATH"] = str(cfg)
    env = {**os.environ}

    import luigi  # after LUIGI_CONFIG_PATH is set

    from aptpipe import freshness, months, tasks

    def data_tasks(day: dt.date) -> list[luigi.Task]:
        train = tasks.TrainModel(as_of=months.add_months(months.ym_of(day), -1), today=day)
        return [*train.requires(), tasks.BuildFeatures(deal_ym=months.ym_of(day), today=day)]

    def build(task_list: list[luigi.Task]) -> float:
        freshness.reset()
        t0 = time.perf_counter()
        result = luigi.build(task_list, local_scheduler=True, detailed_summary=True,
                             log_level="WARNING")
        if not result.scheduling_succeeded or result.status.name not in ("SUCCESS",):
            raise SystemExit(f"build failed: {result.summary_text}")
        return time.perf_counter() - t0

    print(f"workdir {work}; all Seoul, {start}..{months.ym_of(today)}, "
          f"{args.trades_per_gu_month:g} trades per 구-month", flush=True)
    full = build(data_tasks(today))
    n_trades = sum(int(__import__("pandas").read_parquet(p, columns=["sggCd"]).shape[0])
                   for p in (work / "data" / "raw").rglob("part-0.parquet"))
    print(f"full data build (no training): {full:8.1f} s   ({n_trades:,} raw trades)", flush=True)
    train_s = build([tasks.MonthlyRun(today=today)])
    print(f"training, evaluation, promotion, monitoring: {train_s:.1f} s (not compared)")

    trivial = work / "trivial.py"
    trivial.write_text(textwrap.dedent(f"""
        import luigi
        class Trivial(luigi.Task):
            def output(self):
                return luigi.LocalTarget({str(work / 'trivial.done')!r})
            def run(self):
                self.output().open('w').close()
        """))
    bare = [sys.executable, "-m", "luigi", "--module", "trivial", "Trivial", "--local-scheduler"]
    env_bare = {**env, "PYTHONPATH": str(work)}
    timed(bare, env_bare, work)  # creates the output
    bare_s = best_of(3, bare, env_bare, work)
    noop = [sys.executable, "-m", "aptpipe", "run", "--today", today.isoformat(),
            "--local-scheduler"]
    noop_s = best_of(3, noop, env, REPO)
    status_s = best_of(3, [sys.executable, "-m", "aptpipe", "status", "--today",
                           today.isoformat()], env, REPO)
    incremental = build(data_tasks(next_month))
    n_tasks = len(data_tasks(today))
    print()
    print(f"{'measure':<48}{'seconds':>10}")
    print(f"{'bare luigi no-op (1 trivial task, subprocess)':<48}{bare_s:>10.2f}")
    print(f"{'aptpipe run no-op (subprocess)':<48}{noop_s:>10.2f}   "
          f"ratio {noop_s / bare_s:.1f}x (target <= 10x)")
    print(f"{'aptpipe status (subprocess)':<48}{status_s:>10.2f}")
    print(f"{'full data build from scratch':<48}{full:>10.2f}")
    print(f"{'one new month (incl. open-month refetch)':<48}{incremental:>10.2f}   "
          f"{100 * incremental / full:.1f}% of full (target <= 10%)")
    print(f"graph: {n_tasks} top-level data tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
