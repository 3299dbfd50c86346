"""A real luigid (aptpipe.scheduler) on a free loopback port, state and history under tmp_path:
the pipeline run through it, its JSON API, its task history, its visualiser in headless
Chromium, and two `aptpipe run` processes sharing one graph."""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import luigi.configuration
import pytest
from luigi.task_register import Register

from aptpipe import freshness, scheduler
from tests.conftest import REPO, SMALL, TODAY, use_config, write_config

CHROMIUM = Path("/usr/bin/chromium")
LUIGID_SH = REPO / "scripts" / "luigid.sh"
# the lighter market of test_crash/test_cron: this file is about luigid, not the model
LIGHT = {"aptpipe": {"regions": "11680,11320", "start_month": "202307", "min_train_months": "3"},
         "synthetic": {"trades_per_gu_month": "100"}}
FAMILIES = ("FetchMonth", "CleanMonth", "MarketState", "BuildFeatures", "TrainModel",
            "EvaluateModel", "PromoteModel", "MonitorMonth", "MonthlyRun")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def aptpipe_exe() -> str:
    beside = Path(sys.executable).with_name("aptpipe")
    return str(beside) if beside.exists() else (shutil.which("aptpipe") or "aptpipe")


def api(port: int, method: str, **arguments) -> dict:
    """luigid's JSON API, as the visualiser calls it: GET /api/<method>?data=<json>."""
    query = urllib.parse.urlencode({"data": json.dumps(arguments)})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/{method}?{query}",
                                timeout=30) as resp:
        return json.load(resp)["response"]


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket LISTENing on `port` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1])
                          if len(address) == 8 else address)
    return found


def graph_ids(config_path: Path) -> set[str]:
    """Task ids of MonthlyRun(TODAY) under `config_path`, computed in this process."""
    from aptpipe import tasks

    with pytest.MonkeyPatch.context() as mp:
        use_config(mp, config_path)
        seen: set[str] = set()
        stack = [tasks.MonthlyRun(today=TODAY)]
        while stack:
            task = stack.pop()
            if task.task_id not in seen:
                seen.add(task.task_id)
                stack.extend(freshness.requirements(task))
    luigi.configuration.LuigiConfigParser._instance = None
    Register.clear_instance_cache()
    freshness.reset()
    return seen


def history(db: Path) -> dict[str, Counter]:
    """task_id -> Counter of its events in luigid's task-history database."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT t.task_id, e.event_name FROM tasks t "
                            "JOIN task_events e ON e.task_id = t.id").fetchall()
    out: dict[str, Counter] = {}
    for task_id, event in rows:
        out.setdefault(task_id, Counter())[event] += 1
    return out


def run_config(root: Path, port: int, **extra: dict[str, str]) -> Path:
    sections = {k: dict(v) for k, v in SMALL.items()}
    for section, values in LIGHT.items():
        sections[section].update(values)
    sections["aptpipe"].update(data_dir=str(root / "data"), models_dir=str(root / "models"))
    sections["core"] = {"scheduler_host": "127.0.0.1", "scheduler_port": str(port)}
    sections["coordination"] = {"poll_seconds": "1"}
    for section, values in extra.items():
        sections.setdefault(section, {}).update(values)
    return write_config(root / "run-luigi.cfg", sections)


# lifecycle -----------------------------------------------------------------------------------
def test_luigid_sh_start_status_stop(tmp_path: Path) -> None:
    state_dir, port = tmp_path / "luigid", free_port()
    env = {**os.environ, "APTPIPE_PYTHON": sys.executable}

    def sh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(LUIGID_SH), *args, "--state-dir", str(state_dir)],
                              env=env, capture_output=True, text=True, timeout=120)

    started = sh("start", "--port", str(port))
    try:
        assert started.returncode == 0, started.stderr
        status = sh("status", "--json")
        assert status.returncode == 0
        info = json.loads(status.stdout)
        assert info["running"] and info["url"] == f"http://127.0.0.1:{port}"
        assert info["history"] == f"sqlite:///{state_dir / 'task-history.sqlite'}"
        pid = info["pid"]
        assert (state_dir / "luigid.pid").read_text().strip() == str(pid)
        config = (state_dir / "luigid.cfg").read_text()
        assert "record_task_history = true" in config
        assert f"state_path = {state_dir / 'state.pickle'}" in config
        assert listening_addresses(port) == {"127.0.0.1"}   # loopback only
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("HEAD", "/")
        assert conn.getresponse().status == 204
        conn.close()
        again = sh("start", "--port", str(port))           # idempotent
        assert again.returncode == 0 and f"pid {pid}" in again.stdout
        other = sh("start", "--port", str(free_port()))    # same state dir, other port
        assert other.returncode == 2 and "stop it first" in other.stderr
    finally:
        stopped = sh("stop")
    assert stopped.returncode == 0 and "stopped luigid" in stopped.stdout
    assert not (state_dir / "luigid.pid").exists()
    assert (state_dir / "state.pickle").stat().st_size > 0     # dumped on SIGTERM
    assert "Scheduler starting up" in (state_dir / "logs" / "luigi-server.log").read_text()
    down = sh("status")
    assert down.returncode == scheduler.EXIT_NOT_RUNNING and "not running" in down.stdout
    assert sh("stop").returncode == 0                        # stopping twice is fine


def test_foreground_luigid_as_a_container_runs_it(tmp_path: Path) -> None:
    """`luigid.sh start --foreground` (docker-compose's command) becomes luigid: same pid,
    log on stderr, SIGTERM saves the state and exits 0."""
    state_dir, port = tmp_path / "luigid", free_port()
    env = {**os.environ, "APTPIPE_PYTHON": sys.executable}
    proc = subprocess.Popen(["bash", str(LUIGID_SH), "start", "--foreground", "--port",
                             str(port), "--state-dir", str(state_dir)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not scheduler.status(state_dir).running:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "luigid did not come up"
            time.sleep(0.05)
        assert scheduler.status(state_dir).pid == proc.pid     # exec'd, not forked
        assert listening_addresses(port) == {"127.0.0.1"}
        proc.terminate()                                        # what `docker stop` sends
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "Scheduler starting up" in err and "shutting down" in err
    assert (state_dir / "state.pickle").exists()
    assert not scheduler.status(state_dir).running


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(scheduler.SchedulerError, match="already in use"):
            scheduler.start(tmp_path / "luigid", port=port)
    assert not (tmp_path / "luigid" / "luigid.pid").exists()


def test_luigid_config_database_url_and_history_guard(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    paths = scheduler.Paths(tmp_path)
    url = "postgresql://luigi:p%40ss@db.internal:5432/luigi"
    text = scheduler.render_config(paths, db_connection=url,
                                   extra={"scheduler": {"retry_delay": "300"}})
    cfg = tmp_path / "luigid.cfg"
    cfg.write_text(text)
    parser = luigi.configuration.LuigiConfigParser()
    parser.read([str(cfg)])
    assert parser.get("task_history", "db_connection") == url   # '%' survives interpolation
    assert parser.get("scheduler", "retry_delay") == "300"
    assert parser.getboolean("scheduler", "record_task_history")
    assert scheduler.hide_password(url) == "postgresql://luigi:***@db.internal:5432/luigi"
    off = scheduler.render_config(paths, record_task_history=False)
    assert "record_task_history = false" in off and "[task_history]" not in off

    real = scheduler.importlib.metadata.version
    monkeypatch.setattr(scheduler.importlib.metadata, "version",
                        lambda name: "2.0.36" if name == "sqlalchemy" else real(name))
    with pytest.raises(scheduler.SchedulerError, match="#3227"):
        scheduler.start(tmp_path / "luigid", port=free_port())
    assert not (tmp_path / "luigid" / "luigid.pid").exists()


# one run through luigid, inspected several ways ---------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("served")
    port = free_port()
    state_dir = root / "luigid"
    scheduler.start(state_dir, port=port)
    try:
        config_path = run_config(root, port)
        run = subprocess.run([aptpipe_exe(), "run", "--today", TODAY.isoformat()], cwd=REPO,
                             env={**os.environ, "LUIGI_CONFIG_PATH": str(config_path)},
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=900)
        yield SimpleNamespace(port=port, state_dir=state_dir, run=run,
                              paths=scheduler.Paths(state_dir), ids=graph_ids(config_path))
    finally:
        scheduler.stop(state_dir)


@pytest.mark.slow
def test_run_through_luigid_every_task_done_in_the_api(served) -> None:
    assert served.run.returncode == 0, served.run.stderr[-3000:]
    log = served.run.stdout + served.run.stderr
    assert "using the local scheduler" not in log
    done = api(served.port, "task_list", status="DONE", upstream_status="", limit=False)
    assert set(done) == served.ids
    assert {t["name"] for t in done.values()} == set(FAMILIES)
    assert all(t["params"]["today"] == TODAY.isoformat() for t in done.values())
    graph = api(served.port, "graph")
    assert set(graph) == served.ids and {t["status"] for t in graph.values()} == {"DONE"}
    # the visualiser's dependency view of the cron entry point covers the whole run
    monthly = next(i for i, t in done.items() if t["name"] == "MonthlyRun")
    assert set(api(served.port, "dep_graph", task_id=monthly)) == served.ids
    fetch = next(t for t in done.values() if t["name"] == "FetchMonth")
    assert fetch["progress_percentage"] == 100 and "synthetic trades" in fetch["status_message"]


@pytest.mark.slow
def test_task_history_database_has_every_task_done_once(served) -> None:
    assert served.run.returncode == 0
    events = history(served.paths.history_db)
    assert set(events) == served.ids
    for task_id, counts in events.items():
        assert counts["RUNNING"] == 1 and counts["DONE"] == 1, (task_id, counts)
        assert counts["FAILED"] == 0
    with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/history", timeout=30) as resp:
        page = resp.read().decode()
    assert all(family in page for family in FAMILIES)        # history UI renders (SQLAlchemy)


@pytest.mark.slow
def test_visualiser_renders_the_run_in_headless_chromium(served, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (/usr/bin/chromium)")
    assert served.run.returncode == 0
    url = f"http://127.0.0.1:{served.port}/static/visualiser/index.html"
    page = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    assert page.returncode == 0, page.stderr[-2000:]
    dom = page.stdout
    # rendered by the page's JavaScript from /api/task_list: the family list, the task table
    assert f"of {len(served.ids)} entries" in dom
    done = api(served.port, "task_list", status="DONE", upstream_status="", limit=False)
    for family, count in Counter(t["name"] for t in done.values()).items():
        badge = (rf'<li data-task="{family}">\s*<a[^>]*>\s*<span class="badge">{count}</span>'
                 rf'\s*{family}</a>')
        assert re.search(badge, dom), f"no sidebar entry '{count} {family}'"
    assert 'data-display-name="FetchMonth(deal_ym=202403, today=2024-03-15)"' in dom


@pytest.mark.slow
def test_restarted_luigid_keeps_its_state(served) -> None:
    assert served.run.returncode == 0
    scheduler.stop(served.state_dir)
    assert served.paths.state.exists()
    scheduler.start(served.state_dir, port=served.port)
    done = api(served.port, "task_list", status="DONE", upstream_status="", limit=False)
    assert set(done) == served.ids


# several workers, several processes ----------------------------------------------------------
@pytest.mark.slow
def test_two_runs_at_once_share_the_graph_each_task_once(pipeline, tmp_path: Path) -> None:
    from tests.test_crash import check_artifacts

    port = free_port()
    state_dir = tmp_path / "luigid"
    scheduler.start(state_dir, port=port)
    try:
        pipeline(**LIGHT, core={"scheduler_host": "127.0.0.1", "scheduler_port": str(port)},
                 coordination={"poll_seconds": "1"})
        config_path = Path(os.environ["LUIGI_CONFIG_PATH"])
        procs = []
        for name in ("a", "b"):
            with open(tmp_path / f"{name}.log", "wb") as out:
                procs.append(subprocess.Popen(
                    [aptpipe_exe(), "run", "--today", TODAY.isoformat(), "--workers", "2"],
                    cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT))
        codes = [p.wait(timeout=900) for p in procs]
        logs = {n: (tmp_path / f"{n}.log").read_text() for n in ("a", "b")}
        assert codes == [0, 0], {n: text[-2500:] for n, text in logs.items()}
        ids = graph_ids(config_path)
        events = history(scheduler.Paths(state_dir).history_db)
    finally:
        scheduler.stop(state_dir)
    assert set(events) == ids
    ran = {task_id: counts["RUNNING"] for task_id, counts in events.items()}
    assert set(ran.values()) == {1}, {t: n for t, n in ran.items() if n != 1}
    assert all(counts["DONE"] == 1 and counts["FAILED"] == 0 for counts in events.values())
    pipeline(**LIGHT)                       # back in this process: check every artifact
    manifests = check_artifacts(Path(tmp_path / "data"), Path(tmp_path / "models"))
    assert len(manifests) == len(ids) - 1  # every task but the MonthlyRun wrapper
    # each finished_at is one production: no task was produced twice in the two processes
    assert len({m["finished_at"] for m in manifests.values()}) == len(manifests)
