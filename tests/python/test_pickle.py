"""A Client pickles as (endpoint, options) and reconnects lazily in the process
that uses it: handed to multiprocessing workers (spawn and fork), or
inherited across fork()."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle

import numpy as np
import pytest

import simsink

from conftest import fields, run_row

STEPS = 50


def record_one(args):
    """A worker task: one run, its rows and results, then flush."""
    client, campaign, i = args
    with client.open_run(campaign, params={"i": i, "pid": os.getpid()}) as run:
        for step in range(STEPS):
            run.record("t", step * 0.5)
            run.record("y", np.full(4, i * 1000 + step, dtype=np.int32))
        run.set_results(total=i * STEPS)
        rid = run.id
    client.flush()
    return rid, os.getpid()


def check_runs(daemon, campaign, done):
    """Each (run id, pid) of `done` is a finished run recorded by that pid."""
    db = daemon.catalog()
    for rid, pid in done:
        assert run_row(db, rid) == ("finished", "")
        p = fields(db, "params", rid)
        assert p["pid"][1] == pid
        i = p["i"][1]
        assert fields(db, "results", rid)["total"][1] == i * STEPS
    db.close()
    with daemon.view(campaign) as f:
        for rid, _ in done:
            i = int(f[f"runs/{rid}"].attrs["i"])
            y = f[f"runs/{rid}/y"][()]
            assert np.array_equal(y[:, 0], i * 1000 + np.arange(STEPS))
            assert np.array_equal(f[f"runs/{rid}/t"][()], np.arange(STEPS) * 0.5)


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_a_pickled_client_records_from_pool_workers(daemon, client, campaign, method):
    ctx = mp.get_context(method)
    with ctx.Pool(2) as pool:
        done = pool.map(record_one, [(client, campaign, i) for i in range(4)])
    assert len({rid for rid, _ in done}) == 4
    assert os.getpid() not in {pid for _, pid in done}
    check_runs(daemon, campaign, done)
    # the parent's own connection is unaffected
    assert record_one((client, campaign, 99))[1] == os.getpid()


def _inherited(client, campaign, i, queue):
    try:
        queue.put(record_one((client, campaign, i)))
    except BaseException as e:  # report, so the parent's assertion says what happened
        queue.put(repr(e))


def test_a_client_inherited_across_fork_reconnects_in_the_child(daemon, client, campaign):
    # the parent uses its client before and after the fork
    parent_before = record_one((client, campaign, 50))
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_inherited, args=(client, campaign, i, q)) for i in range(2)]
    for p in procs:
        p.start()
    done = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert all(isinstance(d, tuple) for d in done), done
    assert os.getpid() not in {pid for _, pid in done}
    parent_after = record_one((client, campaign, 51))
    check_runs(daemon, campaign, done + [parent_before, parent_after])


def _use_parents_run(run, queue):
    try:
        run.record("new_key", 1.0)
        queue.put("no error")
    except simsink.Error as e:
        queue.put(e.code)


def test_a_run_opened_before_fork_cannot_be_used_in_the_child(daemon, client, campaign):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    with client.open_run(campaign) as run:
        run.record("t", 1.0)
        p = ctx.Process(target=_use_parents_run, args=(run, q))
        p.start()
        assert q.get(timeout=60) == "CLOSED"
        p.join(60)
        run.record("t", 2.0)  # still fine in the parent
        rid = run.id
    client.flush()
    with daemon.view(campaign) as f:
        assert np.array_equal(f[f"runs/{rid}/t"][()], [1.0, 2.0])


def test_pickle_round_trip_keeps_endpoint_and_options_and_connects_lazily(daemon, campaign):
    c = simsink.connect(daemon.endpoint, name="pickled", block_rows=5, timeout=30)
    c2 = pickle.loads(pickle.dumps(c))
    assert c2.endpoint == c.endpoint
    assert c2.options == {"name": "pickled", "block_rows": 5, "timeout": 30}
    assert "not connected" in repr(c2)
    rid, pid = record_one((c2, campaign, 7))
    assert pid == os.getpid()
    c2.close()
    with pytest.raises(simsink.Error) as e:  # closed, although its connection lives on
        c2.open_run(campaign)
    assert e.value.code == "CLOSED"
    c.close()
    check_runs(daemon, campaign, [(rid, pid)])


def test_a_run_does_not_pickle(client, campaign):
    with client.open_run(campaign) as run:
        with pytest.raises(TypeError):
            pickle.dumps(run)
