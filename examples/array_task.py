#!/usr/bin/python3
"""One task of a batch job array, recorded through simsink.

The task's index comes from SLURM_ARRAY_TASK_ID (as under `sbatch --array`);
it picks the task's parameters from a small sweep, records one run (t, y[nx],
a grid) and closes it with its results. See examples/job_array.sh.

  SLURM_ARRAY_TASK_ID=3 /usr/bin/python3 examples/array_task.py \\
      --connect tcp://master:5555 --campaign array --steps 1000
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connect", required=True, help="simsinkd ingest endpoint")
    ap.add_argument("--campaign", default="array")
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    index = os.environ.get("SLURM_ARRAY_TASK_ID")
    if index is None:
        ap.error("SLURM_ARRAY_TASK_ID is not set (run me as a job array task)")
    index = int(index)

    betas = [1e-10, 3e-10, 5e-10, 7e-10, 9e-10]
    params = {"task": index, "beta": betas[index % len(betas)], "kappa": 1.0 + index // 5,
              "method": "dopri5" if index % 2 == 0 else "rk4", "nx": 100, "dt": 1e-3,
              "seed": 4242 + index, "job_id": os.environ.get("SLURM_ARRAY_JOB_ID", "local")}
    rng = np.random.default_rng(params["seed"])
    y = rng.standard_normal(params["nx"])
    with simsink.connect(args.connect, name=f"array-task-{index}") as client:
        with client.open_run(args.campaign, params=params) as run:
            run.put("grid/x", np.linspace(0.0, 1.0, params["nx"], endpoint=False))
            for step in range(args.steps):
                y = y - params["dt"] * (params["kappa"] * (y - np.roll(y, 1))
                                        + params["beta"] * 1e9 * y)
                run.record("t", step * params["dt"])
                run.record("y", y)
            run.set_results(energy=float(0.5 * np.dot(y, y)))
            run_id = run.id
        client.flush()
    print(f"task {index}: run {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
