#!/usr/bin/python3
"""W1 from Python: simsink's Python client against the h5py list-buffer pattern.

W1 (shared/WORKLOADS.md): STEPS steps (default 1,000,000), each recording
t (float64 scalar) and y (float64[100]); 808 bytes per step.

  simsink  run.record("t", step * dt); run.record("y", y) per step, then
           client.flush() (returns when the daemon committed everything:
           segment written, renamed, catalog committed, view rewritten).
           Timed from before connect to the end of flush. Two daemons:
           "nofsync" runs with --fsync false, like the peer (which does not
           fsync either): the like-for-like comparison; "fsync" is the
           default, durable configuration (segments fsynced before the ack).
  h5py     the list-buffer pattern: t and y appended to Python lists, every
           1000 steps written to resizable h5py datasets (resize + slice
           write, chunks of 1000 rows), no fsync; timed from before opening
           the file to after closing it.

Two ways a simulation may hold its state y, both measured:
  fresh    every step's y is a new array (here: a pool of 1000 distinct
           arrays made beforehand, so that neither side pays for producing
           data); the peer appends references.
  inplace  one array updated in place every step (y[0] = step); the peer
           must append y.copy(), or all its rows would be the last state.
simsink's record() copies in both cases.

Each measurement is run once to warm up, then REPEATS times, alternating
the sides; the report gives median and min-max seconds, MB/s and the ratio
simsink / h5py of the medians (< 1: simsink is faster). The data of the last
repeat of every side is checked.

For reference, when the C++ W1 bench is built (build/tests/bench/bench_w1,
or --cxx PATH), W1 through the C++ client on the same daemon is timed too
("cxx/<mode>"): the difference to "simsink/<mode>" is what the Python side
costs.

Every measurement gets a fresh simsinkd on a fresh data directory under
--dir (default: the system's temporary directory; the peer's file goes
there too, same disk), deleted and synced afterwards, so that write-back of
earlier repeats does not slow later ones (the peer's file likewise). Or
--connect ENDPOINT records to a running daemon (mode "connect"; not
checked).

  /usr/bin/python3 tests/bench/w1_python.py --out /tmp/w1.json
  /usr/bin/python3 tests/bench/w1_python.py --steps 200000 --repeats 5 --out w1.json

Environment: SIMSINK_DAEMON (default <repo>/build/daemon/simsinkd),
SIMSINK_LIB (see simsink._native), PYTHONPATH=<repo>/client/python.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "client" / "python"))

import h5py  # noqa: E402
import numpy as np  # noqa: E402

import simsink  # noqa: E402

ROW = 100
POOL = 1000
DT = 1e-3
STATES = ("fresh", "inplace")


def make_pool():
    rng = np.random.default_rng(1)
    return [rng.standard_normal(ROW) for _ in range(POOL)]


def run_simsink(endpoint, steps, pool, state):
    t0 = time.perf_counter()
    client = simsink.connect(endpoint)
    run = client.open_run(f"w1{state}", params={"steps": steps, "state": state})
    record = run.record
    if state == "fresh":
        for step in range(steps):
            record("t", step * DT)
            record("y", pool[step % POOL])
    else:
        y = pool[0].copy()
        for step in range(steps):
            y[0] = step
            record("t", step * DT)
            record("y", y)
    rid = run.id  # the OPEN_RUN was committed long ago: does not wait
    run.close()
    loop = time.perf_counter() - t0
    client.flush()
    total = time.perf_counter() - t0
    client.close()
    return total, loop, rid


def run_h5py(path, steps, pool, state):
    t0 = time.perf_counter()
    with h5py.File(path, "w") as f:
        dt_ = f.create_dataset("t", (0,), maxshape=(None,), dtype="f8", chunks=(1000,))
        dy = f.create_dataset("y", (0, ROW), maxshape=(None, ROW), dtype="f8", chunks=(1000, ROW))
        ts, ys = [], []
        n = 0
        y = pool[0].copy()
        for step in range(steps):
            ts.append(step * DT)
            if state == "fresh":
                ys.append(pool[step % POOL])
            else:
                y[0] = step
                ys.append(y.copy())
            if len(ts) == 1000:
                dt_.resize((n + 1000,))
                dt_[n:] = ts
                dy.resize((n + 1000, ROW))
                dy[n:] = np.asarray(ys)
                n += 1000
                ts, ys = [], []
        if ts:
            k = len(ts)
            dt_.resize((n + k,))
            dt_[n:] = ts
            dy.resize((n + k, ROW))
            dy[n:] = np.asarray(ys)
    return time.perf_counter() - t0


def check(t, y, steps, pool, state, what):
    assert t.shape == (steps,), (what, t.shape)
    assert y.shape == (steps, ROW), (what, y.shape)
    assert np.array_equal(t, np.arange(steps) * DT), what
    for i in list(range(0, steps, 997)) + [steps - 1]:  # every 997th row, and the last
        if state == "fresh":
            assert np.array_equal(y[i], pool[i % POOL]), (what, i)
        else:
            assert y[i][0] == i and np.array_equal(y[i][1:], pool[0][1:]), (what, i)


def run_cxx(binary, endpoint, steps):
    r = subprocess.run([binary, "--mode", "simsink", "--connect", endpoint, "--steps", str(steps),
                        "--campaign", "w1cxx"], capture_output=True, text=True, check=True)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["seconds"], out["loop"]


def start_daemon(data_dir, fsync):
    binary = os.environ.get("SIMSINK_DAEMON", str(REPO / "build" / "daemon" / "simsinkd"))
    endpoint = f"ipc://{data_dir}/ingest.sock"
    proc = subprocess.Popen([binary, "--data-dir", str(data_dir), "--listen", endpoint,
                             "--admin", f"ipc://{data_dir}/admin.sock", "--log-level", "warn",
                             "--fsync", "true" if fsync else "false"])
    deadline = time.time() + 20
    while not os.path.exists(f"{data_dir}/ingest.sock"):
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"simsinkd ({binary}) did not start")
        time.sleep(0.05)
    return proc, endpoint


def stop_daemon(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def summary(xs, mb):
    med = statistics.median(xs)
    return {"seconds": xs, "median": med, "min": min(xs), "max": max(xs),
            "mb_per_s_median": mb / med}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dir", default=None, help="where the h5py file and data dirs go")
    ap.add_argument("--connect", default=None, help="use a running simsinkd at this endpoint")
    ap.add_argument("--modes", default="nofsync,fsync",
                    help="daemons to run: nofsync (--fsync false), fsync (default settings)")
    ap.add_argument("--states", default="fresh,inplace", help="fresh and/or inplace")
    ap.add_argument("--cxx", default=str(REPO / "build" / "tests" / "bench" / "bench_w1"),
                    help="the C++ W1 bench, for reference ('' or a missing file: skipped)")
    ap.add_argument("--out", required=True, help="write the JSON results here")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    modes = ["connect"] if args.connect else [m for m in args.modes.split(",") if m]
    if not modes or not set(modes) <= {"nofsync", "fsync", "connect"}:
        ap.error("--modes: nofsync and/or fsync")
    states = [s for s in args.states.split(",") if s]
    if not states or not set(states) <= set(STATES):
        ap.error("--states: fresh and/or inplace")

    pool = make_pool()
    work = Path(tempfile.mkdtemp(prefix="w1py-", dir=args.dir))
    cxx = args.cxx if args.cxx and os.path.exists(args.cxx) else None
    mb = args.steps * (8 + 8 * ROW) / 1e6
    sides = [("simsink", m, s) for m in modes for s in states] + [("h5py", "", s) for s in states]
    if cxx:
        sides += [("cxx", m, "") for m in modes]
    name = {side: "/".join(x for x in side if x) for side in sides}
    totals = {side: [] for side in sides}
    loops = {side: [] for side in sides}
    checked = []
    proc = None
    print(f"W1 from Python: {args.steps} steps, {mb:.0f} MB; warm-up, then "
          f"{args.repeats} repeats", file=sys.stderr)
    try:
        for i in range(args.repeats + 1):  # i == 0: warm-up
            last = i == args.repeats
            line = []
            order = sides if i % 2 == 0 else sides[::-1]
            for side in order:
                kind, mode, state = side
                data = work / f"{name[side].replace('/', '-')}-{i}"
                if kind == "h5py":
                    peer_file = work / f"w1_h5py_{state}.h5"
                    tot = loop = run_h5py(peer_file, args.steps, pool, state)
                    if last:
                        with h5py.File(peer_file, "r") as f:
                            check(f["t"][:], f["y"][:], args.steps, pool, state, name[side])
                        checked.append(name[side])
                    peer_file.unlink()
                else:
                    # A fresh daemon per measurement (see the module doc).
                    if mode == "connect":
                        endpoint = args.connect
                    else:
                        proc, endpoint = start_daemon(data, fsync=(mode == "fsync"))
                    if kind == "cxx":
                        tot, loop = run_cxx(cxx, endpoint, args.steps)
                    else:
                        tot, loop, rid = run_simsink(endpoint, args.steps, pool, state)
                        if last and proc is not None:
                            with simsink.open_view(data, f"w1{state}") as f:
                                check(f[f"runs/{rid}/t"][:], f[f"runs/{rid}/y"][:], args.steps,
                                      pool, state, name[side])
                            checked.append(name[side])
                    if proc is not None:
                        stop_daemon(proc)
                        proc = None
                        shutil.rmtree(data, ignore_errors=True)
                os.sync()
                if i:
                    totals[side].append(tot)
                    loops[side].append(loop)
                line.append(f"{name[side]} {tot:.3f}")
            print(f"  {'warm-up' if i == 0 else f'repeat {i}'} (s): " + ", ".join(line),
                  file=sys.stderr)

        result = {
            "workload": "W1 from Python",
            "steps": args.steps,
            "megabytes": mb,
            "repeats": args.repeats,
            "results": {name[side]: {**summary(totals[side], mb),
                                     "loop_only": summary(loops[side], mb)} for side in sides},
            "ratios_simsink_over_h5py": {
                name[side]: statistics.median(totals[side])
                / statistics.median(totals[("h5py", "", side[2])])
                for side in sides if side[0] == "simsink"},
            "data_checked": checked,
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "h5py": h5py.__version__,
            "libsimsink": simsink.LIB_PATH,
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "loadavg_at_end": os.getloadavg(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        for side in sides:
            r = result["results"][name[side]]
            ratio = result["ratios_simsink_over_h5py"].get(name[side])
            print(f"{name[side]:24s} median {r['median']:.3f} s [{r['min']:.3f}-{r['max']:.3f}]"
                  f" {r['mb_per_s_median']:5.0f} MB/s"
                  + (f"  ratio to h5py/{side[2]} {ratio:.2f}" if ratio else ""))
        print(f"-> {args.out}")
    finally:
        if proc is not None:
            stop_daemon(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
