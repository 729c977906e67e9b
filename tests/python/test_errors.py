"""Errors: raised as simsink.Error with the protocol's code, at the offending
call, leaving what was recorded before intact."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import simsink

from conftest import run_row


def test_dtype_mismatch_raises_at_the_offending_record(daemon, client, campaign):
    with client.open_run(campaign) as run:
        run.record("y", np.zeros(4))
        run.record("y", np.ones(4))
        with pytest.raises(simsink.Error) as e:
            run.record("y", np.ones(4, dtype=np.float32))
        assert e.value.code == "DTYPE_MISMATCH"
        assert e.value.errno == e.value.code_num == 14
        assert "'y'" in e.value.message and "float32" in e.value.message
        run.record("y", np.full(4, 2.0))  # the stream goes on
        rid = run.id
    client.flush()
    with daemon.view(campaign) as f:
        assert np.array_equal(f[f"runs/{rid}/y"][()], [[0] * 4, [1] * 4, [2] * 4])


@pytest.mark.parametrize("first,bad", [
    (1.5, 1),                                  # float64 stream, Python int
    (1, 1.5),                                  # int64 stream, Python float
    (True, 1),                                 # bool stream, Python int
    (np.float32(1), 1.0),                      # float32 stream, Python float (float64)
    (np.int16(1), np.int32(1)),
    (1 + 1j, np.complex64(1)),
    (np.zeros(3, np.uint8), np.zeros(3, np.int8)),
    (np.zeros((2, 2), complex), np.zeros((2, 2))),
])
def test_each_dtype_mismatch_is_detected(client, campaign, first, bad):
    with client.open_run(campaign) as run:
        run.record("s", first)
        with pytest.raises(simsink.Error) as e:
            run.record("s", bad)
        assert e.value.code == "DTYPE_MISMATCH"


@pytest.mark.parametrize("first,bad", [
    (np.zeros(3), np.zeros(4)),
    (np.zeros(3), np.zeros((1, 3))),           # would broadcast: still a mismatch
    (np.zeros(3), 0.0),                        # a scalar into a row stream
    (0.0, np.zeros(1)),                        # a row into a scalar stream
    (np.zeros((2, 3)), np.zeros((3, 2))),
    (np.zeros((2, 3), complex), np.zeros((2, 3, 1), complex)),
    (np.zeros(3, bool), [True, False]),
])
def test_shape_mismatch_raises(client, campaign, first, bad):
    with client.open_run(campaign) as run:
        run.record("s", first)
        with pytest.raises(simsink.Error) as e:
            run.record("s", bad)
        assert e.value.code == "SHAPE_MISMATCH"


def test_same_dtype_in_another_form_is_accepted(daemon, client, campaign):
    """numpy scalars, 0-d arrays, lists, byte-swapped and strided arrays of
    the stream's dtype and shape are all fine."""
    with client.open_run(campaign) as run:
        run.record("t", 1.0)
        run.record("t", np.float64(2.0))
        run.record("t", np.array(3.0))
        run.record("y", np.array([1, 2, 3], dtype=np.int64))
        run.record("y", [4, 5, 6])
        run.record("y", np.array([7, 8, 9], dtype=">i8"))
        run.record("y", np.arange(10, 16)[::2])
        run.record("y", np.array([13, 14, 15], dtype=np.longlong))
        rid = run.id
    client.flush()
    with daemon.view(campaign) as f:
        assert np.array_equal(f[f"runs/{rid}/t"][()], [1, 2, 3])
        assert np.array_equal(f[f"runs/{rid}/y"][()].ravel(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12,
                                                               14, 13, 14, 15])


def test_bad_campaign_name_raises_bad_name(client):
    for name in ["bad name", "../x", ".hidden", "", "a/b", "x" * 129]:
        with pytest.raises(simsink.Error) as e:
            client.open_run(name)
        assert e.value.code == "BAD_NAME", name
        assert e.value.errno == 11


@pytest.mark.parametrize("key", ["/lead", "trail/", "a//b", "a/../b", "sp ace", "", "x" * 256])
def test_bad_key_raises_bad_name_at_the_first_record(client, campaign, key):
    with client.open_run(campaign) as run:
        with pytest.raises(simsink.Error) as e:
            run.record(key, 1.0)
        assert e.value.code == "BAD_NAME"
        with pytest.raises(simsink.Error) as e:
            run.put(key, np.zeros(2))
        assert e.value.code == "BAD_NAME"


def test_a_key_that_is_a_group_of_another_raises_bad_name(client, campaign):
    with client.open_run(campaign) as run:
        run.record("a", 1.0)
        with pytest.raises(simsink.Error) as e:
            run.record("a/b", 1.0)
        assert e.value.code == "BAD_NAME"


@pytest.mark.parametrize("value", [np.zeros(3, np.float16), np.zeros(2, "U3"), object(),
                                   np.zeros(2, [("a", "i4")]), np.datetime64("2020-01-01")])
def test_types_without_a_simsink_dtype_raise(client, campaign, value):
    with client.open_run(campaign) as run:
        with pytest.raises(simsink.Error) as e:
            run.record("x", value)
        assert e.value.code in ("BAD_DTYPE", "BAD_ARGUMENT")


def test_bad_params_raise_before_anything_is_sent(client, campaign):
    with pytest.raises(simsink.Error) as e:
        client.open_run(campaign, params={"bad name": 1})
    assert e.value.code == "BAD_NAME"
    with pytest.raises(simsink.Error) as e:
        client.open_run(campaign, params={"x": float("nan")})
    assert e.value.code == "BAD_ARGUMENT"
    with pytest.raises(simsink.Error) as e:
        client.open_run(campaign, params={"x": {"nested": 1}})
    assert e.value.code == "BAD_ARGUMENT"
    with client.open_run(campaign) as run:
        with pytest.raises(simsink.Error) as e:
            run.set_results({"e": float("inf")})
        assert e.value.code == "BAD_ARGUMENT"


def test_int_too_large_for_int64_raises(client, campaign):
    with client.open_run(campaign) as run:
        run.record("i", 1)
        with pytest.raises(simsink.Error) as e:
            run.record("i", 2**64)
        assert e.value.code == "BAD_ARGUMENT"


def test_calls_on_a_closed_run_raise_closed(client, campaign):
    run = client.open_run(campaign)
    run.record("t", 1.0)
    run.close()
    for call in (lambda: run.record("t", 2.0), lambda: run.record("new", 1.0),
                 lambda: run.put("a", np.zeros(1)), lambda: run.set_attrs(x=1), run.close,
                 lambda: run.fail("x")):
        with pytest.raises(simsink.Error) as e:
            call()
        assert e.value.code == "CLOSED"


def test_calls_on_a_closed_client_raise_closed(daemon, campaign):
    c = simsink.connect(daemon.endpoint)
    c.close()
    with pytest.raises(simsink.Error) as e:
        c.open_run(campaign)
    assert e.value.code == "CLOSED"
    c.close()  # idempotent


def test_flush_without_a_daemon_times_out(tmp_path, campaign):
    c = simsink.connect(f"ipc://{tmp_path}/nobody.sock", close_timeout=0.2)
    run = c.open_run(campaign)
    run.record("t", 1.0)
    with pytest.raises(simsink.Error) as e:
        c.flush(timeout=0.3)
    assert e.value.code == "TIMEOUT"
    run.close()
    with pytest.raises(simsink.Error):
        c.close()  # data was never acknowledged: close says so


def test_a_bad_endpoint_raises_at_connect():
    with pytest.raises(simsink.Error) as e:
        simsink.connect("nonsense://x")
    assert e.value.code == "BAD_ARGUMENT"


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError):
        simsink.connect("ipc:///tmp/x", no_such_option=1)


def test_error_pickles_with_code_and_message():
    e = simsink.Error("SHAPE_MISMATCH", "stream 'y'")
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.code, e2.errno, e2.message, str(e2)) == (e.code, 15, "stream 'y'",
                                                         "SHAPE_MISMATCH: stream 'y'")
    assert isinstance(e2, Exception)


def test_a_failed_close_still_ends_the_run(daemon, client, campaign):
    run = client.open_run(campaign)
    rid = run.id
    run.fail("gave up")
    client.flush()
    db = daemon.catalog()
    assert run_row(db, rid) == ("failed", "gave up")
    db.close()
