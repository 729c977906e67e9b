#!/usr/bin/python3
"""Crash harness: proves that nothing acknowledged is ever lost or duplicated.

8 writer processes (fault_writer) record deterministic rows through the real
client library into the real daemon, while the daemon is killed with SIGKILL
over and over: at random moments, and (through failpoints armed with
SIMSINK_FAILPOINTS) exactly inside commits and compactions. After every
restart it checks that

  - every row a writer saw acknowledged (flush() returned) is present, exactly
    once, with its exact value (row i of "x" is i; a loss or a duplicate
    shifts every later value);
  - every segment file and view opens with the HDF5 library (h5py);
  - the catalog passes PRAGMA integrity_check.

At the end, with the daemon stopped, `simsink verify` (checksums included)
must find the catalog, segment files and views in exact agreement.

At the end the writers close their runs and every row they ever recorded must
be there exactly once. Usage:

  /usr/bin/python3 tests/fault/crash_harness.py --kills 50          # full run
  /usr/bin/python3 tests/fault/crash_harness.py --kills 8 --quick   # CI size

Exits 0 when every check passed, 1 otherwise; prints a summary and writes it
as JSON with --json FILE.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAMPAIGN = "crash"
FAILPOINTS = ("segment-renamed=0.004,catalog-commit=0.004,catalog-committed=0.004,"
              "views-written=0.004,compact-written=0.08,compact-committed=0.08")


class Failure(Exception):
    pass


class Harness:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.work = tempfile.mkdtemp(prefix="simsink-crash-")
        self.data = os.path.join(self.work, "data")
        self.ingest = "ipc://" + os.path.join(self.work, "ingest.sock")
        self.admin = "ipc://" + os.path.join(self.work, "admin.sock")
        self.stop_file = os.path.join(self.work, "stop")
        self.daemon = None
        self.daemon_log = open(os.path.join(self.work, "daemon.log"), "ab")
        self.writers = []
        self.rng = random.Random(args.seed)
        self.stats = {"kills": 0, "random_kills": 0, "failpoint_kills": {}, "checks": 0,
                      "rows_checked": 0, "lost": 0, "duplicated": 0, "writers": args.writers}

    # ---- processes -------------------------------------------------------

    def cli(self, *argv, timeout=60):
        return subprocess.run([os.path.join(self.build, "client/cli/simsink"), "--admin", self.admin,
                               "--data-dir", self.data, *argv],
                              capture_output=True, text=True, timeout=timeout)

    def start_daemon(self):
        env = dict(os.environ)
        if not self.args.no_failpoints:
            env["SIMSINK_FAILPOINTS"] = FAILPOINTS
        self.daemon = subprocess.Popen(
            [os.path.join(self.build, "daemon/simsinkd"), "--data-dir", self.data,
             "--listen", self.ingest, "--admin", self.admin, "--commit-interval", "0.1",
             "--compact-min-segments", "4", "--compact-small-bytes", "2M",
             "--compact-grace", "5", "--lost-timeout", "3600", "--log-level", "warn",
             # Commits here are a few MB: split them into three segments
             # written on three threads, so that kills meet that path too.
             "--write-threads", "3", "--write-split-bytes", "64K"] + self.args.daemon_arg,
            stdout=self.daemon_log, stderr=self.daemon_log, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.daemon.poll() is not None:
                # Killed by a failpoint during start-up work: that is a kill too.
                self.count_exit()
                self.daemon = subprocess.Popen(self.daemon.args, stdout=self.daemon_log,
                                               stderr=self.daemon_log, env=env)
                continue
            if os.path.exists(self.admin[6:]):
                r = subprocess.run([os.path.join(self.build, "client/cli/simsink"), "--admin",
                                    self.admin, "--timeout", "0.5", "status"],
                                   capture_output=True)
                if r.returncode == 0:
                    return
            time.sleep(0.05)
        raise Failure("daemon did not come up within 60 s")

    def count_exit(self):
        rc = self.daemon.wait()
        if rc != -signal.SIGKILL:
            raise Failure(f"daemon exited with {rc}, not by SIGKILL (see {self.work}/daemon.log)")
        self.stats["kills"] += 1
        point = self.last_failpoint()
        self.stats["failpoint_kills"][point] = self.stats["failpoint_kills"].get(point, 0) + 1

    def last_failpoint(self):
        self.daemon_log.flush()
        with open(os.path.join(self.work, "daemon.log"), "rb") as f:
            f.seek(max(0, os.path.getsize(f.name) - 4096))
            hits = re.findall(rb"failpoint ([a-z-]+): killing", f.read())
        return hits[-1].decode() if hits else "unknown"

    def start_writers(self):
        for k in range(self.args.writers):
            log = os.path.join(self.work, f"writer-{k}.log")
            p = subprocess.Popen([os.path.join(self.build, "tests/fault/fault_writer"), self.ingest,
                                  CAMPAIGN, str(k), self.stop_file, log, str(self.args.rows_per_flush),
                                  str(self.args.rate)])
            self.writers.append((k, p, log))

    def acked(self, log):
        """Rows the writer saw acknowledged (last line of its log)."""
        try:
            with open(log) as f:
                lines = [ln.split()[-1] for ln in f if ln.strip()]
        except FileNotFoundError:
            return 0
        return int(lines[-1]) if lines else 0

    # ---- checks ------------------------------------------------------------

    def check(self, final=False):
        self.stats["checks"] += 1
        db = sqlite3.connect(f"file:{self.data}/catalog.sqlite?mode=ro", uri=True, timeout=30)
        try:
            ok = db.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                raise Failure(f"catalog integrity_check: {ok}")
            for (f,) in db.execute("SELECT file FROM segments"):
                path = os.path.join(self.data, f)
                if not os.path.exists(path):
                    continue  # replaced by a compaction since the query: checked through the view
                with h5py.File(path, "r"):
                    pass
            runs = dict(db.execute("SELECT CAST(p.value AS INTEGER), p.run_id FROM params p "
                                   "WHERE p.name = 'writer'").fetchall())
            status = dict(db.execute("SELECT id, status FROM runs").fetchall())
        finally:
            db.close()
        view = os.path.join(self.data, CAMPAIGN + ".h5")
        with h5py.File(view, "r") as f:
            for k, _, log in self.writers:
                acked = self.acked(log)
                if k not in runs:
                    if acked:
                        raise Failure(f"writer {k}: {acked} rows acknowledged but no run in the catalog")
                    continue
                rid = runs[k]
                g = f["runs"][str(rid)] if str(rid) in f["runs"] else None
                x = g["x"][:] if g is not None and "x" in g else np.zeros(0, np.int64)
                y = g["y"][:] if g is not None and "y" in g else np.zeros((0, 16))
                n = len(x)
                if n < acked:
                    self.stats["lost"] += acked - n
                    raise Failure(f"writer {k} (run {rid}): {acked} rows acknowledged, {n} present")
                expect = np.arange(n, dtype=np.int64)
                bad = np.nonzero(x != expect)[0]
                if len(bad):
                    self.stats["duplicated"] += 1
                    i = int(bad[0])
                    raise Failure(f"writer {k} (run {rid}): row {i} holds {x[i]}, expected {i} "
                                  f"(a lost or duplicated row)")
                # y is checked on its own: a batch may be sealed between a
                # step's x and y records, so a commit may hold one more x.
                if len(y) < acked:
                    self.stats["lost"] += acked - len(y)
                    raise Failure(f"writer {k}: {acked} rows acknowledged, y has {len(y)}")
                ny = len(y)
                want_y = np.arange(ny, dtype=np.int64)[:, None] * 16 + np.arange(16)[None, :] + k * 0.5
                if ny and not np.array_equal(y, want_y):
                    raise Failure(f"writer {k}: y values differ (a lost or duplicated row)")
                if final and ny != n:
                    raise Failure(f"writer {k}: x has {n} rows, y has {ny}")
                self.stats["rows_checked"] += n
                if final:
                    self.stats["rows_final"] = self.stats.get("rows_final", 0) + n
                if final:
                    with open(log) as lf:
                        done = [ln for ln in lf if ln.startswith("done")]
                    total = int(done[-1].split()[1]) if done else -1
                    if total != n:
                        raise Failure(f"writer {k}: recorded {total} rows, {n} present")
                    if status.get(rid) != "finished":
                        raise Failure(f"writer {k}: run {rid} is {status.get(rid)}, not finished")
        # Every run view opens too (the campaign view was opened above).
        for name in os.listdir(os.path.join(self.data, CAMPAIGN)):
            if name.startswith("run-") and name.endswith(".h5"):
                try:
                    with h5py.File(os.path.join(self.data, CAMPAIGN, name), "r"):
                        pass
                except FileNotFoundError:
                    pass  # replaced by a rename since the listing
        if final:
            # The daemon is stopped: the catalog, segments (with checksums)
            # and views must agree exactly.
            r = self.cli("verify", CAMPAIGN, timeout=600)
            if r.returncode != 0:
                raise Failure("simsink verify: " + r.stdout + r.stderr)
            self.stats["verify"] = r.stdout.strip().splitlines()[-1]

    # ---- the run -----------------------------------------------------------

    def run(self):
        t0 = time.time()
        self.start_daemon()
        self.start_writers()
        while self.stats["kills"] < self.args.kills:
            deadline = time.time() + self.rng.uniform(0.2, self.args.max_uptime)
            while time.time() < deadline and self.daemon.poll() is None:
                time.sleep(0.02)
            if self.daemon.poll() is None:
                self.daemon.send_signal(signal.SIGKILL)
                self.daemon.wait()
                self.stats["kills"] += 1
                self.stats["random_kills"] += 1
            else:
                self.count_exit()
            for k, p, _ in self.writers:
                if p.poll() is not None:
                    raise Failure(f"writer {k} exited with {p.returncode} while the daemon restarted")
            self.start_daemon()
            self.check()
            if not self.args.quiet:
                print(f"kill {self.stats['kills']}/{self.args.kills}: "
                      f"{self.stats['rows_checked']} rows checked so far", flush=True)
        # Stop: writers close their runs and flush; the daemon stops cleanly.
        # Failpoints stay armed: a daemon killed now is restarted as before.
        open(self.stop_file, "w").close()
        deadline = time.time() + 180
        while any(p.poll() is None for _, p, _ in self.writers):
            if time.time() > deadline:
                k = next(k for k, p, _ in self.writers if p.poll() is None)
                raise Failure(f"writer {k} did not finish within 180 s")
            if self.daemon.poll() is not None:
                self.count_exit()
                self.start_daemon()
            time.sleep(0.05)
        for k, p, _ in self.writers:
            if p.returncode != 0:
                raise Failure(f"writer {k} exited with {p.returncode}")
        self.daemon.send_signal(signal.SIGTERM)
        rc = self.daemon.wait(timeout=120)
        if rc == -signal.SIGKILL:  # a failpoint in the final commit: restart and stop again
            self.stats["kills"] += 1
            self.start_daemon()
            self.daemon.send_signal(signal.SIGTERM)
            rc = self.daemon.wait(timeout=120)
        if rc != 0:
            raise Failure(f"daemon exited with {rc} on SIGTERM")
        self.check(final=True)
        self.stats["seconds"] = round(time.time() - t0, 1)

    def cleanup(self, keep):
        for _, p, _ in self.writers:
            if p.poll() is None:
                p.kill()
        if self.daemon and self.daemon.poll() is None:
            self.daemon.kill()
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=50, help="daemon kills (default 50)")
    ap.add_argument("--writers", type=int, default=8, help="writer processes (default 8)")
    ap.add_argument("--rate", type=float, default=20000, help="rows per second per writer")
    ap.add_argument("--rows-per-flush", type=int, default=2000)
    ap.add_argument("--max-uptime", type=float, default=2.0,
                    help="longest daemon life between kills, seconds")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--build", default=os.environ.get("SIMSINK_BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--no-failpoints", action="store_true", help="random kills only")
    ap.add_argument("--quick", action="store_true", help="smaller writers' rate (CI)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", help="write the summary to this file")
    ap.add_argument("--daemon-arg", action="append", default=[],
                    help="one more argument for simsinkd (repeat it: --daemon-arg=--direct-io "
                         "--daemon-arg=true)")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if args.quick:
        args.rate = min(args.rate, 5000)
    h = Harness(args)
    ok = True
    try:
        h.run()
    except Failure as e:
        ok = False
        h.stats["failure"] = str(e)
        print(f"FAILED: {e}\n(work directory kept: {h.work}, seed {args.seed})", file=sys.stderr)
    finally:
        h.cleanup(keep=args.keep or not ok)
    s = h.stats
    inside = sum(v for k, v in s["failpoint_kills"].items())
    print(f"crash harness (seed {args.seed}): {s['kills']} kills survived "
          f"({s['random_kills']} at random moments, {inside} at failpoints {s['failpoint_kills']}), "
          f"{s['writers']} writers, {s['checks']} checks re-reading {s['rows_checked']} rows in all, "
          f"{s.get('rows_final', 0)} distinct rows at the end, "
          f"lost {s['lost']}, duplicated {s['duplicated']}: {'ok' if ok else 'FAILED'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**s, "seed": args.seed, "ok": ok}, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
