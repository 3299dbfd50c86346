"""scripts/cron_daily.sh as cron runs it: real processes, a real flock, a real SMTP sink."""
from __future__ import annotations

import email
import email.policy
import fcntl
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aptpipe import config, storage
from tests.conftest import REPO, TODAY

# A lighter market than conftest's SMALL (2 구, 9 months): these tests are about processes,
# locks and files, not the model, and each runs the whole graph more than once.
LIGHT = {"aptpipe": {"regions": "11680,11320", "start_month": "202307", "min_train_months": "3"},
         "synthetic": {"trades_per_gu_month": "100"}}

CRON = REPO / "scripts" / "cron_daily.sh"
CRONTAB = REPO / "scripts" / "crontab.example"
EXIT_LOCKED = 75
SECRET = "cron-test-SECRET-key-0123456789"


def aptpipe_exe() -> str:
    beside = Path(sys.executable).with_name("aptpipe")
    return str(beside) if beside.exists() else (shutil.which("aptpipe") or "aptpipe")


def cron_env(log_dir: Path, **extra: str) -> dict[str, str]:
    # LUIGI_CONFIG_PATH comes from the `pipeline` fixture (monkeypatch.setenv)
    return {**os.environ, "APTPIPE": aptpipe_exe(), "APTPIPE_HOME": str(REPO),
            "APTPIPE_LOG_DIR": str(log_dir), **extra}


def run_cron(log_dir: Path, *args: str, timeout: float = 300, **extra: str
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CRON), *args], env=cron_env(log_dir, **extra),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process exited ({proc.returncode}) before {what}")
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


# ----------------------------------------------------------------------------------------------
def test_crontab_example_line_calls_cron_daily() -> None:
    lines = [ln for ln in CRONTAB.read_text().splitlines() if ln.strip() and
             not ln.lstrip().startswith("#")]
    jobs = [ln for ln in lines if not re.match(r"^[A-Z_]+=", ln)]
    assert len(jobs) == 1
    fields = jobs[0].split(None, 5)
    minute, hour, dom, month, dow, command = fields
    assert 0 <= int(minute) < 60 and 0 <= int(hour) < 24 and (dom, month, dow) == ("*",) * 3
    assert command.split()[0].endswith("scripts/cron_daily.sh")
    env = dict(ln.split("=", 1) for ln in lines if re.match(r"^[A-Z_]+=", ln))
    assert env["APTPIPE"].endswith("/bin/aptpipe") and "TZ" in env


def test_second_run_while_locked_exits_75_and_says_so(pipeline, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    lock = log_dir / "cron_daily.lock"
    with open(lock, "a+") as held:            # another cron_daily.sh holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.truncate(0)
        held.write("424242\n")
        held.flush()
        started = time.monotonic()
        result = run_cron(log_dir, "--today", TODAY.isoformat(), "--local-scheduler",
                          timeout=60)
        assert time.monotonic() - started < 30   # it did not wait for the lock
    assert result.returncode == EXIT_LOCKED, result.stderr
    assert "another run is still going (pid 424242" in result.stderr
    assert "not starting a second one" in (log_dir / "cron_daily.log").read_text()
    assert not (tmp_path / "data").exists()      # nothing ran
    # the lock is free again: a stale lock file (pid of a dead run) does not block
    result = run_cron(log_dir, "--help", timeout=60)
    assert result.returncode == 0, result.stderr
    assert lock.read_text().strip() != "424242"


@pytest.mark.slow
def test_daily_run_logs_passes_args_and_blocks_an_overlapping_run(pipeline,
                                                                 tmp_path: Path) -> None:
    pipeline(**LIGHT)
    log_dir = tmp_path / "log"
    first = subprocess.Popen(["bash", str(CRON), "--today", TODAY.isoformat(),
                              "--local-scheduler", "--workers", "2"],
                             env=cron_env(log_dir), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = log_dir / "cron_daily.log"
        # the first run holds the lock: its pid is in the lock file and its start line logged
        wait_for(lambda: log.exists() and "cron_daily start" in log.read_text(), 60,
                 "the first run to start", first)
        assert (log_dir / "cron_daily.lock").read_text().strip() == str(first.pid)
        second = run_cron(log_dir, "--today", TODAY.isoformat(), "--local-scheduler",
                          timeout=60)
        assert second.returncode == EXIT_LOCKED, second.stderr
        assert f"pid {first.pid}" in second.stderr
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, log.read_text()[-3000:]
    assert out == "" and err == ""                       # cron mails nothing on success
    text = log.read_text()
    assert f"cron_daily start (pid {first.pid}): {aptpipe_exe()} run --today {TODAY}" in text
    assert f"cron_daily end (pid {first.pid}): exit 0" in text
    assert "Luigi Execution Summary" in text and "promotion:" in text
    assert storage.read_json(config.catalog().champion())["as_of"] == 202402

    # the next day's run (same --today here) has nothing to do and appends to the same log
    again = run_cron(log_dir, "--today", TODAY.isoformat(), "--local-scheduler")
    assert again.returncode == 0, again.stderr
    assert log.read_text().count("cron_daily end") == 2


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free loopback port that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with sink._lock:
                    sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                    sink.messages.append(message)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()   # returns once the server answers
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def received(self) -> list[email.message.EmailMessage]:
        with self._lock:
            return list(self.messages)


@pytest.mark.slow
def test_failed_task_exits_nonzero_and_luigi_emails_the_failure(pipeline,
                                                               tmp_path: Path) -> None:
    pytest.importorskip("aiosmtpd")
    with SmtpSink() as smtp:
        # no trades at all: every stage up to the features runs, TrainModel.run() fails
        pipeline(aptpipe=LIGHT["aptpipe"], synthetic={"trades_per_gu_month": "0"},
                 email={"receiver": "ops@example.test", "method": "smtp",
                        "sender": "aptpipe@example.test", "prefix": "[aptpipe]"},
                 smtp={"host": "127.0.0.1", "port": str(smtp.port), "timeout": "10"})
        log_dir = tmp_path / "log"
        result = run_cron(log_dir, "--today", TODAY.isoformat(), "--local-scheduler",
                          APTPIPE_SERVICE_KEY=SECRET)
        assert result.returncode == 1, (log_dir / "cron_daily.log").read_text()[-3000:]
        assert "failed with exit 1" in result.stderr          # for cron's MAILTO
        log = (log_dir / "cron_daily.log").read_text()
        assert "cron_daily end" in log and "exit 1" in log
        # the mail is sent before aptpipe exits; no waiting needed, but allow for delivery
        messages = wait_for(smtp.received, 30, "the failure e-mail")
    failures = [m for m in messages if "FAILED" in m["Subject"]]
    assert len(failures) == 1, [m["Subject"] for m in messages]
    mail = failures[0]
    assert mail["Subject"].startswith("[aptpipe] Luigi: TrainModel(")
    assert mail["To"] == "ops@example.test" and mail["From"] == "aptpipe@example.test"
    assert smtp.envelopes[0] == ("aptpipe@example.test", ["ops@example.test"])
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "A task failed when running" in body
    assert "Traceback (most recent call last)" in body and "as_of" in body
    for text in (body, mail.as_string(), log):
        assert SECRET not in text
