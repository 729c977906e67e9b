#!/usr/bin/python3
"""MPI ranks recording through simsink: every rank is its own run.

Each rank connects its own client, opens a run with its parameters (the
rank picks its kappa from a small sweep), records its time series and
closes the run with its results. Rank 0 gathers the run ids and, given
--data-dir, prints the results table from the catalog.

  mpirun -n 4 /usr/bin/python3 examples/mpi_ranks.py --connect tcp://master:5555 \\
      --campaign mpi --steps 1000 [--data-dir /data/simsink]
  (as root in a container: mpirun --allow-run-as-root --oversubscribe -n 4 ...)

Exit status 0 when every rank's run is recorded (and, with --data-dir,
finished in the catalog).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

try:
    import simsink
except ImportError:  # running from a source checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client" / "python"))
    import simsink

import numpy as np
from mpi4py import MPI


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connect", required=True, help="simsinkd ingest endpoint")
    ap.add_argument("--campaign", default="mpi")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--data-dir", default=None, help="simsinkd's data directory (to read)")
    args = ap.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    params = {"rank": rank, "size": size, "kappa": 0.5 * (rank + 1), "nx": 100, "dt": 1e-3,
              "method": "euler", "seed": 7 + rank}
    rng = np.random.default_rng(params["seed"])
    y = rng.standard_normal(params["nx"])
    error = None
    run_id = -1
    try:
        with simsink.connect(args.connect, name=f"mpi-rank-{rank}") as client:
            with client.open_run(args.campaign, params=params) as run:
                for step in range(args.steps):
                    y = y - params["dt"] * params["kappa"] * (y - np.roll(y, 1))
                    run.record("t", step * params["dt"])
                    run.record("y", y)
                run.set_results(energy=float(0.5 * np.dot(y, y)), rank_pid=os.getpid())
                run_id = run.id
            client.flush()
    except Exception as e:  # noqa: BLE001 - reported through rank 0
        error = f"rank {rank}: {e}"

    gathered = comm.gather((run_id, error), root=0)
    if rank != 0:
        return 0
    errors = [e for _, e in gathered if e]
    ids = [rid for rid, _ in gathered]
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    print(f"{size} ranks recorded runs {ids} of campaign {args.campaign!r}")
    ok = not errors
    if args.data_dir and ok:
        rows = [r for r in simsink.runs(args.data_dir, campaign=args.campaign, as_frame=False)
                if r["id"] in ids]
        print("id\trank\tkappa\tstatus\tenergy")
        for r in rows:
            print(f"{r['id']}\t{r['rank']}\t{r['kappa']:g}\t{r['status']}\t{r['energy']:.6g}")
        ok = len(rows) == size and all(r["status"] == "finished" for r in rows)
        if not ok:
            print("error: not every rank's run is finished in the catalog", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    rc = main()
    # every rank leaves with rank 0's verdict
    sys.exit(MPI.COMM_WORLD.bcast(rc, root=0))
