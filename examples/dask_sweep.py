#!/usr/bin/python3
"""A parameter sweep on Dask, recorded through simsink.

A dask.distributed LocalCluster runs one task per parameter set
(client.submit + as_completed). Every task gets the same simsink Client
(pickled: it reconnects in the worker process), opens its own run, records
its time series (t, y[nx], a complex field qhat[64, 33] every few steps),
writes a grid once, and closes the run with its results. Afterwards the
results table comes from the catalog, not from the futures.

  /usr/bin/python3 examples/dask_sweep.py --connect tcp://master:5555 \\
      --data-dir /data/simsink --campaign sweep --tasks 16 --steps 1000 --workers 2

With a real cluster, replace LocalCluster by your scheduler's address
(distributed.Client("tcp://scheduler:8786")); nothing else changes.
Exit status 0 when every task's run is in the catalog as finished.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
from pathlib import Path

try:
    import simsink
except ImportError:  # running from a source checkout without PYTHONPATH
    _here = Path(__file__).resolve().parent.parent / "client" / "python"
    sys.path.insert(0, str(_here))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_here),
                                                             os.environ.get("PYTHONPATH")]))
    import simsink

import numpy as np


def simulate(client, campaign, params, steps):
    """One task, run in a Dask worker: a toy advection-damping model."""
    rng = np.random.default_rng(params["seed"])
    nx, dt = params["nx"], params["dt"]
    y = params["initial_amp"] * rng.standard_normal(nx)
    with client.open_run(campaign, params=params) as run:
        run.put("grid/x", np.linspace(0.0, params["lx"], nx, endpoint=False))
        run.set_attrs("y", units="1", description="state vector")
        for step in range(steps):
            y = y - dt * (params["kappa"] * (y - np.roll(y, 1)) + params["beta"] * 1e9 * y)
            run.record("t", step * dt)
            run.record("y", y)
            if step % params["qhat_every"] == 0:
                run.record("qhat", np.fft.rfft2(np.outer(y[:64], y[-64:])))  # (64, 33) complex
        energy = float(0.5 * np.dot(y, y))
        run.set_results(energy=energy, steps=steps)
        run_id = run.id
    client.flush()  # durable before the task reports success
    return {"run_id": run_id, "energy": energy, "pid": os.getpid()}


def sweep(tasks):
    grid = itertools.product([1e-10, 5e-10, 9e-10], [0.5, 1.0, 2.0], ["dopri5", "rk4"])
    for i, (beta, kappa, method) in zip(range(tasks), itertools.cycle(grid)):
        yield {"nx": 100, "lx": 1.0, "beta": beta, "kappa": kappa, "method": method,
               "dt": 1e-3, "initial_amp": 1.0, "seed": 1000 + i, "task": i, "qhat_every": 100}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connect", required=True, help="simsinkd ingest endpoint")
    ap.add_argument("--data-dir", required=True, help="simsinkd's data directory (to read)")
    ap.add_argument("--campaign", default="dask-sweep")
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from dask.distributed import Client, LocalCluster, as_completed

    recorder = simsink.connect(args.connect)
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as dask:
        futures = [dask.submit(simulate, recorder, args.campaign, p, args.steps, pure=False)
                   for p in sweep(args.tasks)]
        done = []
        for fut in as_completed(futures):
            r = fut.result()
            done.append(r)
            print(f"run {r['run_id']}: energy {r['energy']:.6g} (worker pid {r['pid']})",
                  flush=True)
    recorder.close()

    # The results table, from the catalog.
    table = simsink.runs(args.data_dir, campaign=args.campaign, as_frame=False)
    ours = {r["run_id"] for r in done}
    rows = [r for r in table if r["id"] in ours]
    print(f"\n{len(rows)} runs of campaign {args.campaign!r} in {args.data_dir}:")
    print("id\tstatus\tbeta\tkappa\tmethod\tenergy")
    for r in rows:
        print(f"{r['id']}\t{r['status']}\t{r['beta']:g}\t{r['kappa']:g}\t{r['method']}\t"
              f"{r.get('energy', float('nan')):.6g}")
    ok = len(rows) == args.tasks and all(r["status"] == "finished" for r in rows)
    if not ok:
        print("error: not every task's run is finished in the catalog", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
