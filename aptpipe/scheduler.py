"""Run Luigi's central scheduler (`luigid`) for aptpipe: start, stop, status.

Everything luigid needs lives in one directory (`state_dir`, default `var/luigid`):

    luigid.cfg            the configuration written for luigid (its only LUIGI_CONFIG_PATH)
    luigid.pid            the pid of the running luigid
    luigid.json           how it was started (address, port, pid, paths), for `status`/`stop`
    state.pickle          the scheduler's state, dumped by luigid when it stops, loaded on start
    task-history.sqlite   task history (`[scheduler] record_task_history`), unless a database
                          URL (e.g. postgresql://...) is given
    logs/                 luigi-server.log (luigid's log) and luigid.out (its stdout/stderr)

luigid binds to 127.0.0.1 by default: its HTTP API has no authentication at all (anyone who
reaches the port can read every task's parameters and errors, and mark tasks done), so it must
never listen on an address reachable by untrusted hosts (see docs/operations.md).

Task history needs SQLAlchemy < 2 with luigi 3.8 (Luigi #3227, DESIGN §8): `start` refuses to
start luigid with history on SQLAlchemy 2 rather than let it die on its first request.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import http.client
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import luigi
import luigi.rpc
from luigi.execution_summary import LuigiRunResult, LuigiStatusCode

from aptpipe import freshness, storage

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8082
DEFAULT_STATE_DIR = "var/luigid"
STATE_DIR_ENV = "APTPIPE_SCHEDULER_DIR"
EXIT_NOT_RUNNING = 3  # LSB `status` convention: program is not running


class SchedulerError(RuntimeError):
    """luigid could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class Paths:
    """The files of one luigid instance, all under `state_dir`."""

    state_dir: Path

    @property
    def config(self) -> Path:
        return self.state_dir / "luigid.cfg"

    @property
    def pid(self) -> Path:
        return self.state_dir / "luigid.pid"

    @property
    def info(self) -> Path:
        return self.state_dir / "luigid.json"

    @property
    def state(self) -> Path:
        return self.state_dir / "state.pickle"

    @property
    def history_db(self) -> Path:
        return self.state_dir / "task-history.sqlite"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def log(self) -> Path:
        """luigid's own log (written by luigid because it is started with --logdir)."""
        return self.log_dir / "luigi-server.log"

    @property
    def output(self) -> Path:
        """luigid's stdout and stderr (tracebacks from before logging is set up land here)."""
        return self.log_dir / "luigid.out"


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    host: str | None
    port: int | None
    state_dir: Path
    message: str
    history: str | None = None     # task history database (password hidden), None when off

    @property
    def url(self) -> str | None:
        if self.host is None or self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["state_dir"] = str(self.state_dir)
        out["url"] = self.url
        return out


# ---------------------------------------------------------------------------------------------
def resolve_state_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """`state_dir`, else $APTPIPE_SCHEDULER_DIR, else var/luigid (relative to the cwd)."""
    chosen = state_dir or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR
    return Path(chosen).expanduser().resolve()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def hide_password(url: str) -> str:
    """A database URL fit for logs and `status` output."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def _ini_value(value: str) -> str:
    # luigi's parser interpolates: '%' must be doubled; '${VAR}' is left for luigid to expand
    # from its environment (a way to keep a database password out of the file).
    return str(value).replace("%", "%%")


def render_config(paths: Paths, *, record_task_history: bool = True,
                  db_connection: str | None = None,
                  extra: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """The text of luigid.cfg."""
    sections: dict[str, dict[str, str]] = {
        "scheduler": {"state_path": str(paths.state),
                      "record_task_history": "true" if record_task_history else "false"},
    }
    if record_task_history:
        sections["task_history"] = {"db_connection": db_connection or sqlite_url(paths.history_db)}
    for section, values in (extra or {}).items():
        sections.setdefault(section, {}).update({k: str(v) for k, v in values.items()})
    lines = ["# Written by `aptpipe scheduler start`; rewritten at every start (edit the call, "
             "not this file).", ""]
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_ini_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def check_history_backend(db_connection: str | None) -> None:
    """Refuse configurations that make luigid's task history fail (DESIGN §8)."""
    try:
        version = importlib.metadata.version("sqlalchemy")
    except importlib.metadata.PackageNotFoundError:
        raise SchedulerError("task history needs SQLAlchemy 1.4 (pip install 'sqlalchemy<2'), "
                             "or start the scheduler with task history off") from None
    if int(version.split(".")[0]) >= 2:
        raise SchedulerError(
            f"luigid's task history does not work with SQLAlchemy {version} (Luigi issue #3227):"
            " install 'sqlalchemy>=1.4,<2' in luigid's environment, or start the scheduler "
            "with task history off")
    scheme = urllib.parse.urlsplit(db_connection or "sqlite://").scheme
    if scheme.startswith("postgresql"):
        driver = scheme.partition("+")[2] or "psycopg2"
        module = {"psycopg2": "psycopg2", "pg8000": "pg8000", "psycopg": "psycopg"}.get(driver)
        if module and importlib.util.find_spec(module) is None:
            raise SchedulerError(f"task history on {scheme}:// needs the {module} package in "
                                 f"luigid's environment (pip install {module})")


def _luigid_command() -> list[str]:
    beside = Path(sys.executable).with_name("luigid")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("luigid")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from luigi.cmdline import luigid; "
                                  "luigid(sys.argv[1:])"]


# process helpers ------------------------------------------------------------------------------
def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our own child (a test, or a long-lived parent)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited already
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def _is_luigid(pid: int, info: Mapping[str, Any] | None) -> bool:
    """True when `pid` is the luigid we started (not a recycled pid of another program)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return _alive(pid)  # no /proc: trust the pid file
    if pid == os.getpid():  # in a container the pid of a previous luigid may be ours now
        return False
    args = [part.decode(errors="replace") for part in cmdline if part]
    is_luigid = any(os.path.basename(a) == "luigid" or "luigi.cmdline import luigid" in a
                    for a in args[:3])
    return is_luigid and (info is None or str(info.get("port")) in args)


def _listening(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """luigid's health check: HEAD / answers 204."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("HEAD", "/")
        return conn.getresponse().status == 204
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _read_info(paths: Paths) -> dict[str, Any] | None:
    try:
        return storage.read_json(paths.info)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _cleanup(paths: Paths) -> None:
    paths.pid.unlink(missing_ok=True)
    paths.info.unlink(missing_ok=True)


# the API ------------------------------------------------------------------------------------
def status(state_dir: str | os.PathLike[str] | None = None) -> Status:
    """Is the luigid of `state_dir` running and answering?"""
    paths = Paths(resolve_state_dir(state_dir))
    info = _read_info(paths)
    pid = _read_pid(paths.pid)
    host = info.get("host") if info else None
    port = info.get("port") if info else None
    history = info.get("history") if info else None
    if pid is None:
        return Status(False, None, host, port, paths.state_dir, "not running (no pid file)",
                      history)
    if not _alive(pid) or not _is_luigid(pid, info):
        return Status(False, pid, host, port, paths.state_dir,
                      f"not running (stale pid file: process {pid} is gone)", history)
    if host is None or port is None or not _answers(host, port):
        return Status(False, pid, host, port, paths.state_dir,
                      f"process {pid} is alive but luigid does not answer on "
                      f"{host}:{port}; see {paths.log} and {paths.output}", history)
    return Status(True, pid, host, port, paths.state_dir,
                  f"running (pid {pid}) on http://{host}:{port}", history)


def start(state_dir: str | os.PathLike[str] | None = None, host: str = DEFAULT_HOST,
          port: int = DEFAULT_PORT, *, record_task_history: bool = True,
          db_connection: str | None = None,
          extra_config: Mapping[str, Mapping[str, str]] | None = None,
          timeout: float = 30.0, foreground: bool = False) -> Status:
    """Start luigid in the background (its own session, so it outlives the caller) and wait
    until it answers.  Starting an already running luigid of the same address is a no-op.

    `foreground=True` replaces the calling process by luigid instead (for a container's main
    process or a systemd service): same files, but its log goes to stderr; never returns."""
    paths = Paths(resolve_state_dir(state_dir))
    current = status(paths.state_dir)
    if current.running:
        if (current.host, current.port) != (host, port):
            raise SchedulerError(f"luigid of {paths.state_dir} already runs on "
                                 f"{current.host}:{current.port}; stop it first")
        log.info("luigid already %s", current.message)
        return current
    if current.pid is not None and _alive(current.pid) and _is_luigid(current.pid, None):
        raise SchedulerError(f"luigid (pid {current.pid}) is alive but not answering; "
                             f"stop it first (aptpipe scheduler stop)")
    if record_task_history:
        check_history_backend(db_connection)
    if _listening(host, port):
        raise SchedulerError(f"{host}:{port} is already in use by another program; "
                             "choose another --port")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("luigid will listen on %s: its API has no authentication; make sure only "
                    "trusted hosts can reach %s:%d", host, host, port)

    paths.log_dir.mkdir(parents=True, exist_ok=True)
    config = render_config(paths, record_task_history=record_task_history,
                           db_connection=db_connection, extra=extra_config)
    with storage.atomic_path(paths.config) as tmp:
        tmp.write_text(config, encoding="utf-8")
    os.chmod(paths.config, 0o600)  # may hold a database password
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(paths.config)}
    env.pop("LUIGI_CONFIG_PARSER", None)
    command = [*_luigid_command(), "--address", host, "--port", str(port)]
    history = (hide_password(db_connection or sqlite_url(paths.history_db))
               if record_task_history else None)
    info = {"host": host, "port": port, "command": command,
            "config": str(paths.config), "state": str(paths.state), "log": str(paths.log),
            "history": history,
            "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if foreground:
        _write_pid(paths, {**info, "pid": os.getpid(), "log": "stderr"})
        os.chdir(paths.state_dir)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(command[0], command, env)  # luigid keeps this pid
    command += ["--logdir", str(paths.log_dir)]
    info["command"] = command
    with open(paths.output, "ab") as out:
        out.write(f"--- {dt.datetime.now().isoformat(timespec='seconds')} "
                  f"{' '.join(command)}\n".encode())
        out.flush()
        # cwd = state_dir, so that luigid does not also read a luigi.cfg of the caller's cwd
        proc = subprocess.Popen(command, cwd=paths.state_dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    _children[proc.pid] = proc  # keep the handle: no "still running" warning, and reaping
    _write_pid(paths, {**info, "pid": proc.pid})

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _cleanup(paths)
            raise SchedulerError(
                f"luigid exited at start (code {proc.returncode}); last lines of "
                f"{paths.output}:\n{_tail(paths.output)}\n{_tail(paths.log)}")
        if _answers(host, port, timeout=1.0):
            log.info("luigid running (pid %d) on http://%s:%d, state in %s", proc.pid, host,
                     port, paths.state_dir)
            return status(paths.state_dir)
        time.sleep(0.05)  # polling interval, not synchronisation
    _terminate(proc.pid, timeout=5.0)
    _cleanup(paths)
    raise SchedulerError(f"luigid did not answer on {host}:{port} within {timeout:.0f} s; "
                         f"see {paths.output} and {paths.log}")


_children: dict[int, subprocess.Popen[bytes]] = {}


def _write_pid(paths: Paths, info: dict[str, Any]) -> None:
    storage.write_json(info, paths.info)
    with storage.atomic_path(paths.pid) as tmp:
        tmp.write_text(f"{info['pid']}\n")


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM (luigid dumps its state and exits), then SIGKILL after `timeout`.
    True when the process had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            _children.pop(pid, None)
            return False
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    _children.pop(pid, None)
    return True


def stop(state_dir: str | os.PathLike[str] | None = None, timeout: float = 30.0) -> Status:
    """Stop the luigid of `state_dir` (it saves its state to state.pickle on the way out)."""
    paths = Paths(resolve_state_dir(state_dir))
    info = _read_info(paths)
    pid = _read_pid(paths.pid)
    if pid is None or not _alive(pid) or not _is_luigid(pid, info):
        _cleanup(paths)
        return Status(False, None, None, None, paths.state_dir, "not running")
    killed = _terminate(pid, timeout)
    _cleanup(paths)
    message = (f"luigid (pid {pid}) did not stop within {timeout:.0f} s and was killed; "
               "its state was not saved") if killed else f"stopped luigid (pid {pid})"
    log.info("%s", message)
    return Status(False, pid, info.get("host") if info else None,
                  info.get("port") if info else None, paths.state_dir, message)


# running the pipeline through a shared luigid -----------------------------------------------
class coordination(luigi.Config):  # noqa: N801 - section name in luigi.cfg
    """[coordination]: how long `aptpipe run` waits for tasks that other workers are running."""

    wait_for_others = luigi.TimeDeltaParameter(
        default=dt.timedelta(hours=6),
        description="give up (exit non-zero) when other workers still hold tasks after this")
    poll_seconds = luigi.FloatParameter(default=5.0, description="re-check interval")


OK_CODES = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
# Luigi reports tasks that *another* worker of the same luigid ran or is running as "not granted
# run permission" (NOT_RUN) or does not report them at all (SUCCESS): neither is a failure here.
_WAITABLE = (*OK_CODES, LuigiStatusCode.NOT_RUN)


def _graph_ids(tasks: list[luigi.Task]) -> set[str]:
    seen: set[str] = set()
    stack = list(tasks)
    while stack:
        task = stack.pop()
        if task.task_id not in seen:
            seen.add(task.task_id)
            stack.extend(freshness.requirements(task))
    return seen


def _held_by_others(result: LuigiRunResult, ids: set[str]) -> list[str]:
    """Tasks of our graph that luigid reports RUNNING (on other workers: ours has finished)."""
    remote = getattr(result.worker, "_scheduler", None)
    if remote is None or not isinstance(remote, luigi.rpc.RemoteScheduler):
        return []
    running = remote.task_list(status="RUNNING", upstream_status="", limit=False) or {}
    return sorted(set(running) & ids)


def build_until_complete(tasks: list[luigi.Task], *, local_scheduler: bool, workers: int,
                         wait_for_others: dt.timedelta | None = None,
                         poll_seconds: float | None = None, **build_kwargs: Any) -> bool:
    """Run `tasks` (luigi.build); True only when they are all complete afterwards.

    Through a shared luigid, several `aptpipe run` processes (cron on several hosts, an ad hoc
    run during the nightly one) split the graph: luigid gives each task to one worker only.
    A run whose remaining tasks are held by other workers waits for them (polling luigid) and
    then builds again, so that exit 0 always means "the pipeline is complete", and a task that
    failed elsewhere (or whose worker died) is retried here and reported here.
    """
    cfg = coordination()
    patience = wait_for_others if wait_for_others is not None else cfg.wait_for_others
    poll = poll_seconds if poll_seconds is not None else cfg.poll_seconds
    deadline = time.monotonic() + patience.total_seconds()
    ids: set[str] | None = None
    idle_rounds = 0
    while True:
        freshness.reset()
        result = luigi.build(tasks, local_scheduler=local_scheduler, workers=workers,
                             detailed_summary=True, **build_kwargs)
        if result.status not in _WAITABLE:
            return False
        freshness.reset()
        if all(task.complete() for task in tasks):
            return True
        if local_scheduler:
            return False
        ids = ids if ids is not None else _graph_ids(tasks)
        held = _held_by_others(result, ids)
        if not held:
            # another worker may be between two tasks: look again at once, a few times
            idle_rounds += 1
            if idle_rounds > 3:
                log.error("the run ended (%s) but %s is not complete, and no other worker is "
                          "running any of its tasks", result.status.name,
                          ", ".join(freshness.describe(t) for t in tasks))
                return False
            continue
        idle_rounds = 0
        if time.monotonic() + poll > deadline:
            log.error("gave up after waiting %s for tasks run by other workers: %s", patience,
                      ", ".join(held[:5]))
            return False
        log.info("waiting for %d task(s) that other workers are running (%s%s)", len(held),
                 ", ".join(held[:3]), ", ..." if len(held) > 3 else "")
        time.sleep(poll)  # waiting on another process's work (not test synchronisation)
