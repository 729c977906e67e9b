"""Disk full: the data directory on a small tmpfs fills up while writers record.

The daemon must stay up, acknowledge nothing it could not commit, answer with
DISK_FULL, keep the admin socket working (status shows it), keep committed
data intact, and resume by itself once space is back; in the end every row
recorded is there exactly once.
"""
import json
import os
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SIMSINK_BUILD_DIR", os.path.join(ROOT, "build"))


def mounted_tmpfs(path, size):
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (CI runs as root)")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = mounted_tmpfs(mnt, "12m")
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def status(admin):
    r = subprocess.run([os.path.join(BUILD, "client/cli/simsink"), "--admin", admin, "--timeout", "5",
                        "status", "--json"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_disk_full_is_reported_survived_and_recovered_from_without_loss(small_fs, tmp_path):
    data = small_fs / "data"
    admin = "ipc://" + str(tmp_path / "admin.sock")
    ingest = "ipc://" + str(tmp_path / "ingest.sock")
    stop = tmp_path / "stop"
    log = open(tmp_path / "daemon.log", "wb")
    daemon = subprocess.Popen([os.path.join(BUILD, "daemon/simsinkd"), "--data-dir", str(data),
                               "--listen", ingest, "--admin", admin, "--commit-interval", "0.2",
                               "--log-level", "warn"], stdout=log, stderr=log)
    writers = []
    try:
        wait_for(lambda: os.path.exists(admin[6:]) and status(admin), 20, "the daemon")
        for k in range(2):
            writers.append((k, tmp_path / f"w{k}.log", subprocess.Popen(
                [os.path.join(BUILD, "tests/fault/fault_writer"), ingest, "full", str(k), str(stop),
                 str(tmp_path / f"w{k}.log"), "2000", "40000"])))

        # 12 MiB fills within seconds at 2 x 40000 rows/s x 136 bytes.
        st = wait_for(lambda: (lambda s: s if s["state"] == "disk_full" else None)(status(admin)),
                      120, "state disk_full")
        assert "disk full" in (st["errors"]["last"] or "")
        assert daemon.poll() is None, "the daemon died on a full disk"
        # The failed commit is retried once a second, not at once in a loop
        # (which kept more than one CPU busy while the disk stayed full).
        before = cpu_seconds(daemon.pid)
        time.sleep(2)
        used = cpu_seconds(daemon.pid) - before
        assert used < 0.5, f"the daemon used {used:.2f} s of CPU in 2 s with the disk full"
        committed_while_full = st["committed"]["rows"]

        # Committed data is intact while the disk is full: the catalog and
        # every view open, and verify (checksums included) finds no problem.
        r = subprocess.run([os.path.join(BUILD, "client/cli/simsink"), "--data-dir", str(data),
                            "verify"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        time.sleep(1.5)
        st = status(admin)
        assert st["state"] == "disk_full"
        assert st["committed"]["rows"] == committed_while_full, "acked while the disk was full"
        for k, wlog, p in writers:
            assert p.poll() is None, f"writer {k} gave up"

        # Space comes back: commits resume by themselves.
        r = subprocess.run(["mount", "-o", "remount,size=512m", str(small_fs)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: status(admin)["state"] == "ok", 60, "state ok after space came back")
        assert status(admin)["committed"]["rows"] > committed_while_full

        stop.touch()
        for k, wlog, p in writers:
            assert p.wait(timeout=120) == 0, f"writer {k} failed"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        for _, _, p in writers:
            if p.poll() is None:
                p.kill()
        if daemon.poll() is None:
            daemon.kill()

    # Every row each writer recorded is there exactly once.
    with h5py.File(data / "full.h5", "r") as f:
        runs = {int(g.attrs["writer"]): g for g in (f["runs"][r] for r in f["runs"])}
        for k, wlog, _ in writers:
            total = int([ln for ln in open(wlog) if ln.startswith("done")][-1].split()[1])
            x = runs[k]["x"][:]
            assert len(x) == total
            assert np.array_equal(x, np.arange(total))
            assert runs[k].attrs["simsink_status"] == "finished"
