"""Every dtype x row rank 0..3 recorded through the Python client comes back
exactly (bit for bit) from DATA_DIR/<campaign>.h5 read with h5py."""

from __future__ import annotations

import json
import time

import h5py
import numpy as np
import pytest

import simsink

DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32",
          "float64", "complex64", "complex128", "bool"]
ROW_SHAPES = {0: (), 1: (5,), 2: (3, 4), 3: (2, 3, 4)}
ROWS = 6


def sample(dt, shape, rng):
    """Values of dtype dt covering its range (extremes, NaN/inf, -0.0)."""
    dt = np.dtype(dt)
    n = int(np.prod(shape, dtype=np.int64))
    if dt.kind == "b":
        a = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        a[: min(n, 2)] = [info.min, info.max][: min(n, 2)]
    elif dt.kind == "f":
        a = (rng.standard_normal(n) * 1e3).astype(dt)
        special = np.array([np.nan, np.inf, -np.inf, -0.0, np.finfo(dt).tiny], dtype=dt)
        a[: min(n, 5)] = special[: min(n, 5)]
    else:
        part = np.float32 if dt == np.complex64 else np.float64
        a = (rng.standard_normal(n).astype(part) + 1j * rng.standard_normal(n).astype(part))
        a = a.astype(dt)
        if n:
            a[0] = complex(np.nan, -0.0)
    return a.reshape(shape)


def row_variants(dt, shape, rng):
    """ROWS rows of one stream, given to record() in different forms: numpy
    scalars / 0-d arrays / Python scalars (rank 0); contiguous, strided,
    Fortran-ordered and byte-swapped arrays (rank >= 1). Returns (values to
    record, the rows expected)."""
    dt = np.dtype(dt)
    expected = [sample(dt, shape, rng) for _ in range(ROWS)]
    given = []
    for i, row in enumerate(expected):
        if not shape:
            if i % 3 == 0:
                given.append(row[()])  # numpy scalar (np.generic)
            elif i % 3 == 1:
                given.append(np.array(row))  # 0-d array
            else:
                given.append(row[()])
        elif i == 1:  # strided: every other element of a bigger array
            big = np.zeros(shape[:-1] + (2 * shape[-1],), dtype=dt)
            big[..., ::2] = row
            given.append(big[..., ::2])
        elif i == 2 and len(shape) >= 2:
            given.append(np.asfortranarray(row))
        elif i == 3 and dt.itemsize > 1:
            given.append(row.astype(dt.newbyteorder(">")))
        else:
            given.append(row.copy())
    return given, expected


def same_bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def recorded(daemon):
    """One run of campaign 'roundtrip' with a stream per dtype x rank, plus
    Python-scalar streams; flushed. Returns (run id, expected rows)."""
    rng = np.random.default_rng(20240611)
    expected = {}
    with simsink.connect(daemon.endpoint, timeout=60) as client:
        with client.open_run("roundtrip", params={"what": "every dtype x rank"}) as run:
            given = {}
            for dt in DTYPES:
                for rank, shape in ROW_SHAPES.items():
                    key = f"{dt}/r{rank}"
                    given[key], expected[key] = row_variants(dt, shape, rng)
            # interleave the streams row by row, as a simulation would
            for i in range(ROWS):
                for key, rows in given.items():
                    run.record(key, rows[i])
            py = {"py/int": [1, -2, 2**63 - 1, -(2**63), 0, 7],
                  "py/float": [0.5, -1e300, float("inf"), float("nan"), -0.0, 3.0],
                  "py/bool": [True, False, True, True, False, False],
                  "py/complex": [1 + 2j, -0.5j, complex("nan+1j"), 0j, 3 + 0j, 1e-300 + 1e300j]}
            pydt = {"py/int": "int64", "py/float": "float64", "py/bool": "bool",
                    "py/complex": "complex128"}
            for key, values in py.items():
                for v in values:
                    run.record(key, v)
                expected[key] = [np.array(v, dtype=pydt[key]) for v in values]
            run_id = run.id
        client.flush()
    return run_id, expected


@pytest.mark.parametrize("rank", sorted(ROW_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_and_rank_round_trip_exactly(daemon, recorded, dtype, rank):
    run_id, expected = recorded
    key = f"{dtype}/r{rank}"
    want = np.stack(expected[key]).astype(dtype)
    with daemon.view("roundtrip") as f:
        d = f[f"runs/{run_id}/{key}"]
        assert d.shape == (ROWS,) + ROW_SHAPES[rank]
        got = d[()]
    assert got.dtype == np.dtype(dtype), f"{key}: h5py reads {got.dtype}"
    assert same_bits(got, want), f"{key}: values differ\n{got}\n{want}"


@pytest.mark.parametrize("key,dtype", [("py/int", "int64"), ("py/float", "float64"),
                                       ("py/bool", "bool"), ("py/complex", "complex128")])
def test_python_scalars_record_as_int64_float64_bool_complex128(daemon, recorded, key, dtype):
    run_id, expected = recorded
    with daemon.view("roundtrip") as f:
        got = f[f"runs/{run_id}/{key}"][()]
    assert got.dtype == np.dtype(dtype)
    assert same_bits(got, np.stack(expected[key]))


def test_catalog_lists_every_stream_with_dtype_shape_rows(daemon, recorded):
    run_id, _ = recorded
    db = daemon.catalog()
    rows = {k: (dt, json.loads(sh), n) for k, dt, sh, n in db.execute(
        "SELECT key, dtype, shape, rows FROM streams WHERE run_id = ?", (run_id,))}
    db.close()
    for dt in DTYPES:
        for rank, shape in ROW_SHAPES.items():
            assert rows[f"{dt}/r{rank}"] == (dt, list(shape), ROWS)


def test_bool_and_complex_are_h5py_native_types(daemon, recorded):
    run_id, _ = recorded
    with daemon.view("roundtrip") as f:
        b = f[f"runs/{run_id}/bool/r1"]
        c = f[f"runs/{run_id}/complex128/r2"]
        # bool: an HDF5 enum {FALSE=0, TRUE=1} of int8; complex: compound {r, i}
        assert h5py.check_enum_dtype(b.dtype) is not None or b.dtype == np.bool_
        assert b.dtype == np.bool_
        assert c.id.get_type().get_class() == h5py.h5t.COMPOUND
        assert c.dtype == np.complex128


@pytest.mark.parametrize("block_rows", [1, 7, 4096])
def test_rows_keep_their_order_across_blocks_and_control_calls(daemon, campaign, block_rows):
    """Blocks handed over when full, at set_attrs/put (ordering points) and at
    close: every row arrives once, in order."""
    n = 100
    with simsink.connect(daemon.endpoint, block_rows=block_rows, timeout=60) as client:
        with client.open_run(campaign) as run:
            for i in range(n):
                run.record("i", i)
                run.record("v", np.full(3, i, dtype=np.float32))
                run.record("m", np.full((2, 2), i, dtype=np.int16))
                if i % 13 == 0:
                    run.set_attrs("v", step=i)
                if i == 50:
                    run.put("half", np.arange(4))
            rid = run.id
        client.flush()
    with daemon.view(campaign) as f:
        g = f[f"runs/{rid}"]
        assert np.array_equal(g["i"][()], np.arange(n))
        assert np.array_equal(g["v"][()], np.repeat(np.arange(n, dtype=np.float32), 3).reshape(n, 3))
        assert np.array_equal(g["m"][()][:, 1, 1], np.arange(n, dtype=np.int16))
        assert np.array_equal(g["half"][()], np.arange(4))


def test_rows_larger_than_a_block_go_straight_through(daemon, campaign):
    """block_bytes smaller than a row: each record crosses into libsimsink."""
    with simsink.connect(daemon.endpoint, block_bytes=64, timeout=60) as client:
        with client.open_run(campaign) as run:
            base = np.arange(200, dtype=np.float64).reshape(2, 100)
            for i in range(5):
                run.record("big", base[:, ::2] + i)  # 100 float64, strided
                run.record("small", i)
            rid = run.id
        client.flush()
    with daemon.view(campaign) as f:
        got = f[f"runs/{rid}/big"][()]
        assert got.shape == (5, 2, 50)
        for i in range(5):
            assert np.array_equal(got[i], base[:, ::2] + i)
        assert np.array_equal(f[f"runs/{rid}/small"][()], np.arange(5))


def test_a_slow_simulation_s_rows_reach_the_daemon_without_flush(daemon, campaign):
    """A block that sits for block_linger while recording goes on is handed
    over at the stream's next record: rows get committed without flush()."""
    with simsink.connect(daemon.endpoint, block_linger=0.05, timeout=60) as client:
        with client.open_run(campaign) as run:
            rid = run.id
            for i in range(3):
                run.record("t", float(i))
            time.sleep(0.5)
            run.record("t", 3.0)  # hands the block (4 rows) over
            db = daemon.catalog()
            deadline = time.monotonic() + 20
            rows = 0
            while time.monotonic() < deadline:
                r = db.execute("SELECT rows FROM streams WHERE run_id = ? AND key = 't'",
                               (rid,)).fetchone()
                rows = r[0] if r else 0
                if rows >= 4:
                    break
                time.sleep(0.1)
            db.close()
            assert rows >= 4, "rows recorded 0.5 s ago were not committed without a flush"
        client.flush()
