"""The examples of the three engines at small size, against the real daemon,
and the data they recorded: Dask (LocalCluster, 2 workers), MPI (mpirun
-n 2 and 4) and a batch job array of 4 processes (Python task and C++
worker). dask.distributed, mpi4py and mpirun come with scripts/setup-deps:
missing, these tests fail rather than skip."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import DAEMON, REPO, child_env, fields, run_row

EXAMPLES = REPO / "examples"
STEPS = 300


def run_example(cmd, timeout=300, env=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       env={**child_env(), **(env or {})}, cwd=REPO)
    assert r.returncode == 0, f"{cmd[0]} ... exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def campaign_runs(db, campaign):
    return [rid for (rid,) in db.execute(
        "SELECT r.id FROM runs r JOIN campaigns c ON c.id = r.campaign_id WHERE c.name = ? "
        "ORDER BY r.id", (campaign,))]


def check_series(daemon, campaign, ids, steps, qhat_every=None):
    """Every run has t = 0, dt, ... and a finite y of shape (steps, 100)
    (and qhat (steps/qhat_every, 64, 33) complex128)."""
    db = daemon.catalog()
    for rid in ids:
        assert run_row(db, rid) == ("finished", ""), rid
        dt = fields(db, "params", rid)["dt"][1]
        assert fields(db, "results", rid)["energy"][0] == "float"
    db.close()
    with daemon.view(campaign) as f:
        for rid in ids:
            g = f[f"runs/{rid}"]
            assert np.allclose(g["t"][()], np.arange(steps) * dt)
            y = g["y"][()]
            assert y.shape == (steps, 100) and np.isfinite(y).all()
            if qhat_every:
                q = g["qhat"]
                assert q.shape == (len(range(0, steps, qhat_every)), 64, 33)
                assert q.dtype == np.complex128
                # qhat is the rfft2 of the outer product of the recorded y
                k = 1
                want = np.fft.rfft2(np.outer(y[k * qhat_every][:64], y[k * qhat_every][-64:]))
                assert np.allclose(q[k], want)


def test_dask_sweep_with_two_workers(daemon, campaign):
    tasks = 6
    r = run_example([sys.executable, EXAMPLES / "dask_sweep.py", "--connect", daemon.endpoint,
                     "--data-dir", daemon.data_dir, "--campaign", campaign, "--tasks", tasks,
                     "--steps", STEPS, "--workers", 2])
    db = daemon.catalog()
    ids = campaign_runs(db, campaign)
    assert len(ids) == tasks
    seeds = {fields(db, "params", rid)["seed"][1] for rid in ids}
    assert len(seeds) == tasks  # one run per parameter set
    db.close()
    check_series(daemon, campaign, ids, STEPS, qhat_every=100)
    assert f"{tasks} runs of campaign" in r.stdout
    with daemon.view(campaign) as f:
        for rid in ids:
            assert f[f"runs/{rid}/grid/x"].shape == (100,)
            assert f[f"runs/{rid}/y"].attrs["units"] == "1"


@pytest.mark.parametrize("ranks", [2, 4])
def test_mpi_ranks_each_record_their_own_run(daemon, campaign, ranks):
    mpirun = shutil.which("mpirun")
    assert mpirun, "mpirun not found (README set-up installs openmpi-bin)"
    run_example([mpirun, "--allow-run-as-root", "--oversubscribe", "-n", ranks,
                 "/usr/bin/python3", EXAMPLES / "mpi_ranks.py", "--connect", daemon.endpoint,
                 "--campaign", campaign, "--steps", STEPS, "--data-dir", daemon.data_dir])
    db = daemon.catalog()
    ids = campaign_runs(db, campaign)
    got = sorted(fields(db, "params", rid)["rank"][1] for rid in ids)
    assert got == list(range(ranks))
    assert {fields(db, "params", rid)["size"][1] for rid in ids} == {ranks}
    db.close()
    check_series(daemon, campaign, ids, STEPS)


@pytest.mark.parametrize("worker", ["python", "cxx"])
def test_job_array_of_four_processes(daemon, campaign, worker):
    """Four processes with SLURM_ARRAY_TASK_ID 0..3: the Python task
    (examples/array_task.py) or the C++ example worker."""
    env = {"SIMSINK_WORKER": worker, "SIMSINK_BUILD_DIR": str(DAEMON.parent.parent)}
    if worker == "cxx":
        binary = DAEMON.parent.parent / "examples" / "simsink-example-worker"
        assert binary.exists(), f"{binary} not built"
    r = run_example(["bash", EXAMPLES / "job_array.sh", 4, daemon.endpoint, campaign, STEPS],
                    env=env)
    assert "4 tasks finished" in r.stdout
    db = daemon.catalog()
    ids = campaign_runs(db, campaign)
    index = "task" if worker == "python" else "worker"
    assert sorted(fields(db, "params", rid)[index][1] for rid in ids) == [0, 1, 2, 3]
    if worker == "python":
        assert len({fields(db, "params", rid)["job_id"][1] for rid in ids}) == 1
    db.close()
    check_series(daemon, campaign, ids, STEPS)
    if worker == "python":
        with daemon.view(campaign) as f:
            for rid in ids:
                assert np.allclose(f[f"runs/{rid}/grid/x"][()],
                                   np.linspace(0, 1, 100, endpoint=False))


def test_job_array_task_without_an_index_refuses(daemon):
    env = child_env()
    env.pop("SLURM_ARRAY_TASK_ID", None)
    r = subprocess.run([sys.executable, EXAMPLES / "array_task.py", "--connect", daemon.endpoint],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "SLURM_ARRAY_TASK_ID" in r.stderr
