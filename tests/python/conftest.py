"""Fixtures of the Python client tests: the REAL simsinkd on a temporary data
directory (ipc:// sockets), a client connected to it, unique campaign names,
and readers for what the daemon wrote.

Binaries (defaults: the build of the README's test command, <repo>/build):
  SIMSINK_DAEMON  simsinkd          (<repo>/build/daemon/simsinkd)
  SIMSINK_CLI     simsink CLI       (<repo>/build/client/cli/simsink)
  SIMSINK_LIB     libsimsink.so     (see simsink._native: <repo>/build/client/...)

Run: /usr/bin/python3 -m pytest tests/python -q
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON_DIR = REPO / "client" / "python"
if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))

DAEMON = Path(os.environ.get("SIMSINK_DAEMON", REPO / "build" / "daemon" / "simsinkd"))
CLI = Path(os.environ.get("SIMSINK_CLI", REPO / "build" / "client" / "cli" / "simsink"))

import simsink  # noqa: E402


def child_env():
    """Environment for subprocesses (examples, engines): they import the same
    simsink package and library as the tests."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PYTHON_DIR) + (os.pathsep + env["PYTHONPATH"]
                                           if env.get("PYTHONPATH") else "")
    env["SIMSINK_LIB"] = simsink.LIB_PATH
    env["SIMSINK_DAEMON"] = str(DAEMON)
    env["SIMSINK_CLI"] = str(CLI)
    return env


class Daemon:
    """A simsinkd process on its own data directory."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.endpoint = f"ipc://{data_dir}/ingest.sock"
        self.admin = f"ipc://{data_dir}/admin.sock"
        self.log = data_dir.parent / (data_dir.name + ".log")
        self.proc = None

    def start(self):
        for what, path in (("simsinkd", DAEMON), ("the simsink CLI", CLI)):
            if not path.exists():
                pytest.fail(f"{what} not found at {path}: build the project (scripts/build) or "
                            f"set SIMSINK_DAEMON / SIMSINK_CLI", pytrace=False)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(DAEMON), "--data-dir", str(self.data_dir), "--listen", self.endpoint,
                 "--admin", self.admin, "--commit-interval", "0.2"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        last = None
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"simsinkd exited with {self.proc.returncode} at start:\n"
                            + self.log.read_text(errors="replace")[-4000:], pytrace=False)
            r = self.cli("status", check=False, timeout=10)
            if r.returncode == 0:
                return self
            last = r.stderr + r.stdout
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"`simsink --admin {self.admin} status` did not succeed within 30 s:"
                            f" {last}", pytrace=False)
            time.sleep(0.1)

    def cli(self, *args, check=True, timeout=60):
        r = subprocess.run([str(CLI), "--admin", self.admin, *args], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"simsink {' '.join(args)} failed ({r.returncode}): "
                                 f"{r.stderr}{r.stdout}")
        return r

    def stop(self):
        """SIGTERM; simsinkd must commit what is buffered and exit 0."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("simsinkd did not exit within 60 s of SIGTERM")

    # -- readers --------------------------------------------------------------
    def catalog(self):
        """A read-only sqlite3 connection to the catalog."""
        return simsink.open_catalog(self.data_dir)

    def view(self, campaign):
        return simsink.open_view(self.data_dir, campaign)


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    """One simsinkd for the session; at the end it must stop on SIGTERM with
    exit status 0."""
    d = Daemon(tmp_path_factory.mktemp("simsink") / "data").start()
    yield d
    rc = d.stop()
    assert rc == 0, f"simsinkd exited with {rc} on SIGTERM:\n" + d.log.read_text(
        errors="replace")[-4000:]


@pytest.fixture
def client(daemon):
    c = simsink.connect(daemon.endpoint, name="pytest", timeout=60)
    yield c
    c.close()


_used = set()


@pytest.fixture
def campaign(request):
    """A campaign name unique to the test (valid: [A-Za-z0-9_.+-])."""
    base = re.sub(r"[^A-Za-z0-9_.+-]", "-", request.node.name)[:100].strip(".-") or "c"
    name, i = base, 1
    while name in _used:
        i += 1
        name = f"{base}-{i}"
    _used.add(name)
    return name


def run_row(db: sqlite3.Connection, run_id: int):
    """(status, reason) of a run in the catalog."""
    return db.execute("SELECT status, reason FROM runs WHERE id = ?", (run_id,)).fetchone()


def fields(db: sqlite3.Connection, table: str, run_id: int):
    """{name: (type, value, sqlite typeof)} of params or results."""
    return {n: (t, v, tv) for n, t, v, tv in db.execute(
        f"SELECT name, type, value, typeof(value) FROM {table} WHERE run_id = ?", (run_id,))}
