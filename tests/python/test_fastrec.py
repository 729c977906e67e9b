"""The C fast path of Run.record (simsink._fastrec): built by the README's
build, used by default, and recording exactly what the pure-Python path
records, for the values it copies itself and those it hands back."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import simsink
from simsink import client as sc

from conftest import REPO, child_env


def test_the_fast_path_is_built_and_used():
    if os.environ.get("SIMSINK_FASTREC") == "0":
        pytest.skip("SIMSINK_FASTREC=0 turns the fast path off")
    assert sc._fastrec is not None, "simsink._fastrec was not found: is the build complete?"
    assert issubclass(sc.Run, sc._fastrec.RunBase)
    assert sc.Run.record is sc._fastrec.RunBase.record


def _record_everything(run):
    """Every kind of value on the streams the fast path serves (float64 and
    int64 scalars, 1-D rows, n-d rows) and on others, mixed, so that the two
    paths alternate within one block. Returns each call's error code (None
    when it recorded)."""
    row = np.arange(6, dtype=np.float64)
    grid = np.arange(12, dtype=np.float32).reshape(3, 4)
    values = []
    for i in range(300):
        values += [
            ("f", i * 0.5),                       # Python float: C
            ("f", np.float64(i) + 0.25),          # numpy scalar: C (buffer)
            ("f", i),                             # an int into a float64 stream: Python
            ("n", i),                             # Python int: C
            ("n", np.int64(-i)),                  # numpy int64: C (buffer)
            ("n", 2**70),                         # does not fit int64: Python
            ("y", row + i),                       # contiguous row: C
            ("y", np.arange(12.0)[::2] + i),      # strided row: Python
            ("y", [float(i)] * 6),                # a list: Python
            ("y", (row + i).astype(">f8")),       # big-endian: Python converts
            ("y", np.zeros(5)),                   # wrong length: Python
            ("y", np.float32(1.0)),               # a scalar for a row: Python
            ("g", grid + i),                      # 2-D row: C (k == 0)
            ("g", np.asfortranarray(grid + i)),   # Fortran order: Python
            ("g", (grid + i).astype(np.float64)),  # another dtype: Python
            ("b", i % 3 == 0),                    # bool: Python
            ("c", complex(i, -i)),                # complex128: Python
            ("f", "text"),                        # not a number: Python
        ]
    outcome = []
    for key, value in values:
        try:
            run.record(key, value)
            outcome.append(None)
        except simsink.Error as e:
            outcome.append(e.code)
    return outcome


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "pure-python"])
def test_both_paths_record_the_same_rows(daemon, campaign, fast):
    """The same values through the fast path (this process) and through the
    pure-Python path (a child with SIMSINK_FASTREC=0): the same calls
    succeed and fail with the same codes, and the same rows are stored."""
    if fast and sc._fastrec is None:
        pytest.skip("the fast path is not built")
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(REPO / "tests" / "python")!r})
        import simsink
        from simsink import client as sc
        assert (sc._fastrec is not None) == {fast!r}
        from test_fastrec import _record_everything
        with simsink.connect({daemon.endpoint!r}, timeout=60, block_rows=64) as client:
            with client.open_run({campaign!r}) as run:
                outcome = _record_everything(run)
                rid = run.id
            client.flush()
        print(json.dumps({{"rid": rid, "outcome": outcome}}))
    """)
    env = {**child_env(), "SIMSINK_FASTREC": "1" if fast else "0"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    import json

    res = json.loads(r.stdout.splitlines()[-1])
    per_step = ([None, None, "DTYPE_MISMATCH", None, None, "BAD_ARGUMENT", None, None, None,
                 None, "SHAPE_MISMATCH", "DTYPE_MISMATCH", None, None, "DTYPE_MISMATCH", None,
                 None, "BAD_DTYPE"])
    assert res["outcome"][:len(per_step)] == per_step
    assert res["outcome"] == per_step * 300
    i = np.arange(300)
    row = np.arange(6, dtype=np.float64)
    grid = np.arange(12, dtype=np.float32).reshape(3, 4)
    want = {
        "f": np.stack([i * 0.5, i + 0.25], axis=1).reshape(-1),
        "n": np.stack([i, -i], axis=1).reshape(-1).astype(np.int64),
        "y": np.concatenate([np.stack([row + k, np.arange(12.0)[::2] + k, np.full(6, float(k)),
                                       row + k]) for k in range(300)]),
        "g": np.concatenate([np.stack([grid + k, grid + k]) for k in range(300)]),
        "b": i % 3 == 0,
        "c": i - 1j * i,
    }
    with daemon.view(campaign) as f:
        g = f[f"runs/{res['rid']}"]
        for key, expected in want.items():
            got = g[key][()]
            assert got.shape == expected.shape, key
            assert np.array_equal(got, expected), key
