"""Context managers: leaving a run's block closes it (finished), or fails it
with the exception's text; leaving a client's block flushes and closes."""

from __future__ import annotations

import numpy as np
import pytest

import simsink

from conftest import fields, run_row


class Diverged(RuntimeError):
    pass


def test_an_exception_in_the_block_fails_the_run_with_its_text(daemon, client, campaign):
    with pytest.raises(Diverged):
        with client.open_run(campaign, params={"dt": 0.1}) as run:
            rid = run.id
            run.record("t", 0.0)
            run.record("t", 0.1)
            run.set_results(energy=1.0)
            raise Diverged("solver diverged at step 2")
    client.flush()
    db = daemon.catalog()
    status, reason = run_row(db, rid)
    assert status == "failed"
    assert "solver diverged at step 2" in reason and "Diverged" in reason
    assert fields(db, "results", rid) == {}  # a failed run keeps no results
    db.close()
    with daemon.view(campaign) as f:  # the rows recorded before the exception stay
        assert np.array_equal(f[f"runs/{rid}/t"][()], [0.0, 0.1])
        assert f[f"runs/{rid}"].attrs["simsink_status"] == "failed"


def test_leaving_the_block_normally_finishes_the_run_with_its_results(daemon, client, campaign):
    with client.open_run(campaign) as run:
        rid = run.id
        run.record("y", np.arange(3.0))
        run.set_results({"energy": 2.5})
    assert run.closed
    client.flush()
    db = daemon.catalog()
    assert run_row(db, rid) == ("finished", "")
    assert fields(db, "results", rid)["energy"] == ("float", 2.5, "real")
    db.close()


def test_a_run_closed_inside_the_block_is_left_alone(daemon, client, campaign):
    with client.open_run(campaign) as run:
        rid = run.id
        run.close(results={"n": 1})
    client.flush()
    db = daemon.catalog()
    assert run_row(db, rid) == ("finished", "")
    assert fields(db, "results", rid)["n"] == ("int", 1, "integer")
    db.close()


def test_keyboard_interrupt_also_fails_the_run(daemon, client, campaign):
    with pytest.raises(KeyboardInterrupt):
        with client.open_run(campaign) as run:
            rid = run.id
            raise KeyboardInterrupt
    client.flush()
    db = daemon.catalog()
    assert run_row(db, rid)[0] == "failed"
    assert "KeyboardInterrupt" in run_row(db, rid)[1]
    db.close()


def test_the_client_block_flushes_and_closes(daemon, campaign):
    with simsink.connect(daemon.endpoint, timeout=60) as client:
        run = client.open_run(campaign)
        rid = run.id
        for i in range(10):
            run.record("i", i)
        run.close()
    # no explicit flush: leaving the block flushed
    with daemon.view(campaign) as f:
        assert np.array_equal(f[f"runs/{rid}/i"][()], np.arange(10))
    with pytest.raises(simsink.Error) as e:
        client.open_run(campaign)
    assert e.value.code == "CLOSED"


def test_an_exception_in_the_client_block_still_flushes(daemon, campaign):
    with pytest.raises(ValueError):
        with simsink.connect(daemon.endpoint, timeout=60) as client:
            with client.open_run(campaign) as run:
                rid = run.id
                run.record("i", 1)
            raise ValueError("after the run")
    db = daemon.catalog()
    assert run_row(db, rid) == ("finished", "")
    db.close()
