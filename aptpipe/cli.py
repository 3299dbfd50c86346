"""The `aptpipe` command.  The only module that prints; it turns Luigi results into exit codes."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import luigi
import luigi.configuration

from aptpipe import config, freshness, months, scheduler, storage

log = logging.getLogger(__name__)

def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def _scheduler_reachable() -> tuple[bool, str]:
    core = luigi.configuration.get_config()
    host = core.get("core", "scheduler_host", "localhost")
    port = core.getint("core", "scheduler_port", 8082)
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True, f"{host}:{port}"
    except OSError:
        return False, f"{host}:{port}"


def build(tasks: list[luigi.Task], local_scheduler: bool, workers: int) -> bool:
    """Run `tasks`; True when every task succeeded."""
    freshness.reset()
    if not local_scheduler:
        reachable, where = _scheduler_reachable()
        if not reachable:
            log.warning("central scheduler at %s is not reachable: using the local scheduler",
                        where)
            local_scheduler = True
    # luigi gives its own logger a handler: keep its records from reaching ours twice
    logging.getLogger("luigi-interface").propagate = False
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    return scheduler.build_until_complete(tasks, local_scheduler=local_scheduler,
                                          workers=workers, log_level=level)


def cmd_run(args: argparse.Namespace) -> int:
    from aptpipe.tasks import MonthlyRun

    ok = build([MonthlyRun(today=args.today)], args.local_scheduler, args.workers)
    _print_outcome(args.today)
    return 0 if ok else 1


def _print_outcome(today: dt.date) -> None:
    catalog = config.catalog()
    current = months.ym_of(today)
    as_of = months.add_months(current, -1)
    metrics_path = catalog.metrics(as_of)
    if metrics_path.exists():
        m = storage.read_json(metrics_path)
        print(f"model through {as_of}: hold-out MAPE {m['candidate']['mape']:.2f}% "
              f"(median APE {m['candidate']['median_ape']:.2f}%) vs naive baseline "
              f"{m['baseline']['mape']:.2f}% on {m['candidate']['n']} trades of {as_of}")
    if catalog.decision(as_of).exists():
        d = storage.read_json(catalog.decision(as_of))
        print(f"promotion: {'promoted' if d['promote'] else 'kept champion'} "
              f"({d['reason']}); champion = {d['champion_after']}")
    if catalog.monitoring(current).exists():
        r = storage.read_json(catalog.monitoring(current))
        print(f"monitoring {current}: {r['status']} (n={r['n']}, "
              f"MAPE {r['accuracy']['mape']:.2f}%)")


def _graph(today: dt.date) -> list[luigi.Task]:
    """Every task of the run on `today`, each after all of its requirements."""
    from aptpipe.tasks import MonthlyRun

    seen: set[str] = set()
    order: list[luigi.Task] = []
    stack: list[tuple[luigi.Task, bool]] = [(t, False) for t in MonthlyRun(today=today).requires()]
    while stack:
        task, expanded = stack.pop()
        if expanded:
            order.append(task)
            continue
        if task.task_id in seen:
            continue
        seen.add(task.task_id)
        stack.append((task, True))
        stack.extend((r, False) for r in freshness.requirements(task) if r.task_id not in seen)
    return order


def cmd_status(args: argparse.Namespace) -> int:
    freshness.reset()
    stale = []
    order = _graph(args.today)
    for task in order:
        v = freshness.verdict(task)
        if not v.fresh:
            stale.append({"task": freshness.describe(task), "reason": v.reason})
    if args.json:
        print(json.dumps({"today": args.today.isoformat(), "tasks": len(order),
                          "stale": stale}, ensure_ascii=False, indent=2))
    else:
        print(f"{len(stale)} of {len(order)} tasks would run (today = {args.today}):")
        for row in stale:
            print(f"  {row['task']}: {row['reason']}")
    return 0


def _task_from_args(name: str, extra: list[str], today: dt.date) -> luigi.Task:
    from aptpipe import tasks

    cls = getattr(tasks, name, None)
    if not (isinstance(cls, type) and issubclass(cls, freshness.FreshTask)):
        names = sorted(n for n, c in vars(tasks).items() if isinstance(c, type)
                       and issubclass(c, freshness.FreshTask) and c is not tasks.AptTask)
        raise ValueError(f"unknown task {name!r}; one of: {', '.join(names)}")
    params = dict(cls.get_params())
    values: dict[str, object] = {}
    it = iter(extra)
    for flag in it:
        key = flag.lstrip("-").replace("-", "_")
        if not flag.startswith("--") or key not in params or key == "today":
            raise ValueError(f"{name} has no parameter {flag!r}; parameters: "
                             + ", ".join(f"--{k.replace('_', '-')}" for k in params
                                         if k != "today"))
        try:
            values[key] = params[key].parse(next(it))
        except StopIteration:
            raise ValueError(f"{flag} needs a value") from None
    return cls(today=today, **values)


def cmd_rerun(args: argparse.Namespace, extra: list[str]) -> int:
    from aptpipe.tasks import MonthlyRun

    task = _task_from_args(args.task, extra, args.today)
    forced = [task]
    if args.downstream:
        graph = _graph(args.today)
        depends: dict[str, bool] = {task.task_id: True}
        for node in graph:  # requirements first
            depends[node.task_id] = depends.get(node.task_id, False) or any(
                depends.get(r.task_id, False) for r in freshness.requirements(node))
        forced += [t for t in graph if depends[t.task_id] and t.task_id != task.task_id]
    for node in forced:
        node.manifest_path().unlink(missing_ok=True)
        print(f"forcing {freshness.describe(node)}")
    ok = build([task, MonthlyRun(today=args.today)], args.local_scheduler, args.workers)
    return 0 if ok else 1


GC_FAMILIES = ("raw", "clean", "quarantine", "state", "features")
TMP_MIN_AGE_S = 3600


def cmd_gc(args: argparse.Namespace) -> int:
    catalog = config.catalog()
    claimed: set[Path] = set()
    for task in _graph(args.today):
        for path in task.artifacts().values():
            claimed |= {path.resolve(), storage.manifest_path(path).resolve()}
    now = dt.datetime.now().timestamp()
    garbage = []
    for family in GC_FAMILIES:
        for path in sorted((catalog.data_dir / family).rglob("*")):
            if path.is_file() and path.resolve() not in claimed:
                garbage.append(path)
    for root in (catalog.data_dir, catalog.models_dir):
        garbage += [p for p in sorted(root.rglob("*.tmp"))
                    if p not in garbage and now - p.stat().st_mtime > TMP_MIN_AGE_S]
    for path in garbage:
        print(("deleting " if args.yes else "") + str(path))
        if args.yes:
            path.unlink(missing_ok=True)
    print(f"{len(garbage)} files no current task claims"
          + ("" if args.yes or not garbage else " (run with --yes to delete them)"))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from aptpipe import sources

    catalog = config.catalog()
    failed = 0
    for path in args.paths:
        try:
            result = sources.stage_export(path, catalog)
        except (OSError, ValueError) as exc:
            print(f"aptpipe import: {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        span = f"{min(result.months)}..{max(result.months)}" if result.months else "no months"
        print(f"{path}: {result.rows} rows staged for {len(result.months)} months ({span})"
              + (f"; {result.unplaced} rows without a contract month kept aside"
                 if result.unplaced else ""))
    if not failed:
        print("set `[aptpipe] source = export` and run `aptpipe run` to build on them")
    return 1 if failed else 0


def cmd_predict(args: argparse.Namespace) -> int:
    from aptpipe import predict

    out = predict.predict_file(args.input, args.output, config.catalog())
    priced = int(out["pred_price_manwon"].notna().sum())
    print(f"{args.output}: {priced} of {len(out)} rows priced with {out['pred_model_id'].iloc[0]}"
          if len(out) else f"{args.output}: no rows")
    return 0


def _scheduler_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="scheduler_command", required=True)
    for name, text in (("start", "start luigid in the background"),
                       ("stop", "stop luigid (it saves its state)"),
                       ("status", "is luigid running? (exit 0 yes, 3 no)")):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("--state-dir", default=None,
                         help=f"pid, state, logs and task history (default: "
                              f"${scheduler.STATE_DIR_ENV} or {scheduler.DEFAULT_STATE_DIR})")
        sub.add_argument("--json", action="store_true", help="print the status as JSON")
        if name == "start":
            sub.add_argument("--host", default=scheduler.DEFAULT_HOST,
                             help="address to listen on (default 127.0.0.1; the API has no "
                                  "authentication)")
            sub.add_argument("--port", type=int, default=scheduler.DEFAULT_PORT)
            sub.add_argument("--db", default=None, metavar="URL",
                             help="task history database (default: SQLite in the state dir; "
                                  "e.g. postgresql://user@host/luigi)")
            sub.add_argument("--no-history", action="store_true",
                             help="do not record task history")
            sub.add_argument("--foreground", action="store_true",
                             help="become luigid (log to stderr) instead of starting it in "
                                  "the background: for containers and systemd")
    parser.set_defaults(func=cmd_scheduler)


def cmd_scheduler(args: argparse.Namespace) -> int:
    if args.scheduler_command == "start":
        result = scheduler.start(args.state_dir, args.host, args.port,
                                 record_task_history=not args.no_history,
                                 db_connection=args.db, foreground=args.foreground)
    elif args.scheduler_command == "stop":
        result = scheduler.stop(args.state_dir)
    else:
        result = scheduler.status(args.state_dir)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(f"luigid: {result.message}" + (f"; task history: {result.history}"
                                              if result.running and result.history else ""))
    if args.scheduler_command == "status" and not result.running:
        return scheduler.EXIT_NOT_RUNNING
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aptpipe", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the daily job: fetch, clean, features, train, evaluate, "
                                     "promote, monitor (only what is stale)")
    run.add_argument("--today", type=_date, default=dt.date.today(),
                     help="run as the cron job would on this day (default: today)")
    run.add_argument("--local-scheduler", action="store_true",
                     help="do not use the central luigid scheduler")
    run.add_argument("--workers", type=int, default=1)
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="list what a run would rebuild, and why")
    status.add_argument("--today", type=_date, default=dt.date.today())
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    _scheduler_arguments(sub.add_parser(
        "scheduler", help="start, stop or inspect the central luigid scheduler"))

    rerun = sub.add_parser("rerun", help="force one task (and with --downstream its "
                                          "dependants) to rebuild, then run the graph",
                           epilog="task parameters follow, e.g. `rerun CleanMonth "
                                  "--deal-ym 202403`")
    rerun.add_argument("task", help="task family, e.g. CleanMonth")
    rerun.add_argument("--downstream", action="store_true")
    rerun.add_argument("--today", type=_date, default=dt.date.today())
    rerun.add_argument("--local-scheduler", action="store_true")
    rerun.add_argument("--workers", type=int, default=1)
    rerun.set_defaults(func=cmd_rerun, takes_extra=True)

    gc = sub.add_parser("gc", help="list (and with --yes delete) data files no current task "
                                   "claims; models, decisions and monitoring are kept")
    gc.add_argument("--today", type=_date, default=dt.date.today())
    gc.add_argument("--yes", action="store_true")
    gc.set_defaults(func=cmd_gc)

    imp = sub.add_parser("import", help="stage MOLIT bulk exports (CSV/parquet) as raw data "
                                        "for `source = export`")
    imp.add_argument("paths", nargs="+", type=Path)
    imp.set_defaults(func=cmd_import)

    pred = sub.add_parser("predict", help="price a table of trades with the champion model")
    pred.add_argument("--input", type=Path, required=True,
                      help="export (CSV/gzip/parquet) or canonical CSV/parquet")
    pred.add_argument("--output", type=Path, required=True, help=".csv or .parquet")
    pred.set_defaults(func=cmd_predict)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra and not getattr(args, "takes_extra", False):
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args, extra) if getattr(args, "takes_extra", False) else args.func(args)
    except (ValueError, RuntimeError) as exc:
        print(f"aptpipe: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
