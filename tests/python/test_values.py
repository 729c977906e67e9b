"""put() arrays, attributes, params and results: what the daemon stores in the
HDF5 view and the catalog."""

from __future__ import annotations

import json

import numpy as np
import pytest

import simsink

from conftest import fields, run_row


@pytest.mark.parametrize("dtype", ["int8", "uint16", "int64", "float32", "float64", "complex64",
                                   "complex128", "bool"])
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4)])
def test_put_writes_a_write_once_array_exactly(daemon, client, campaign, dtype, shape):
    rng = np.random.default_rng(7)
    a = rng.standard_normal(shape) * 100
    if dtype.startswith("complex"):
        a = a + 1j * rng.standard_normal(shape)
    a = np.asarray(a).astype(dtype)
    if len(shape) >= 2:
        a = np.asfortranarray(a)  # not C-contiguous: put() must copy it in C order
    with client.open_run(campaign) as run:
        run.put("grid/a", a)
        rid = run.id
    client.flush()
    with daemon.view(campaign) as f:
        d = f[f"runs/{rid}/grid/a"]
        assert d.shape == shape
        assert d.dtype == np.dtype(dtype)
        assert np.ascontiguousarray(d[()]).tobytes() == np.ascontiguousarray(a).tobytes()
    db = daemon.catalog()
    kind, dt, sh, rows = db.execute(
        "SELECT kind, dtype, shape, rows FROM streams WHERE run_id = ? AND key = 'grid/a'",
        (rid,)).fetchone()
    db.close()
    assert (kind, dt, json.loads(sh), rows) == ("array", dtype, list(shape), 1)


def test_put_twice_raises_array_exists(client, campaign):
    with client.open_run(campaign) as run:
        run.put("x", np.arange(3))
        with pytest.raises(simsink.Error) as e:
            run.put("x", np.arange(3))
        assert e.value.code == "ARRAY_EXISTS"


PARAMS = {"nx": 64, "beta": 6e-10, "method": "dopri5", "adaptive": True, "whole": 2.0,
          "seeds": [1, 2, 3], "names": ["a", "b"], "weights": [0.5, 1.5],
          "np_int": np.int32(5), "np_float": np.float32(0.25), "np_bool": np.bool_(False),
          "np_arr": np.arange(3)}
RESULTS = {"energy": 1.25, "steps": 1000, "converged": True, "note": "ok", "nx": 65}


def test_params_and_results_are_typed_in_the_catalog(daemon, client, campaign):
    with client.open_run(campaign, params=PARAMS) as run:
        run.record("t", 0.0)
        run.set_results({"energy": 1.25, "steps": 1000})
        run.set_results(converged=True, note="ok", nx=65)
        rid = run.id
    client.flush()
    db = daemon.catalog()
    p = fields(db, "params", rid)
    r = fields(db, "results", rid)
    assert run_row(db, rid) == ("finished", "")
    db.close()
    assert p["nx"] == ("int", 64, "integer")
    assert p["beta"] == ("float", 6e-10, "real")
    assert p["method"] == ("str", "dopri5", "text")
    assert p["adaptive"] == ("bool", 1, "integer")
    assert p["whole"] == ("float", 2.0, "real")  # a whole float stays a float
    assert p["seeds"][0] == "json" and json.loads(p["seeds"][1]) == [1, 2, 3]
    assert json.loads(p["names"][1]) == ["a", "b"]
    assert json.loads(p["weights"][1]) == [0.5, 1.5]
    assert p["np_int"] == ("int", 5, "integer")
    assert p["np_float"] == ("float", 0.25, "real")
    assert p["np_bool"] == ("bool", 0, "integer")
    assert json.loads(p["np_arr"][1]) == [0, 1, 2]
    assert r["energy"] == ("float", 1.25, "real")
    assert r["steps"] == ("int", 1000, "integer")
    assert r["converged"] == ("bool", 1, "integer")
    assert r["note"] == ("str", "ok", "text")
    assert r["nx"] == ("int", 65, "integer")


def test_params_and_results_are_attributes_of_the_run_group(daemon, client, campaign):
    with client.open_run(campaign, params=PARAMS) as run:
        run.record("t", 0.0)
        run.set_results(RESULTS)
        rid = run.id
    client.flush()
    with daemon.view(campaign) as f:
        a = dict(f[f"runs/{rid}"].attrs)
    assert a["nx"] == 64 and a["nx"].dtype == np.int64
    assert a["beta"] == 6e-10 and a["beta"].dtype == np.float64
    assert a["method"] == "dopri5"
    assert bool(a["adaptive"]) is True
    assert list(a["seeds"]) == [1, 2, 3]
    assert [s.decode() if isinstance(s, bytes) else s for s in a["names"]] == ["a", "b"]
    assert a["energy"] == 1.25
    assert a["steps"] == 1000
    assert a["result_nx"] == 65  # a result named like a param gets a prefix
    assert a["simsink_status"] == "finished"
    assert a["simsink_run_id"] == rid
    assert a["simsink_campaign"] == campaign


def test_attributes_of_run_stream_and_array(daemon, client, campaign):
    with client.open_run(campaign, attrs={"description": "a test run"}) as run:
        run.set_attrs("y", units="m", scale=2.5)  # before the stream exists
        run.record("y", np.zeros(3))
        run.set_attrs("y", {"long_name": "position"})
        run.put("grid/x", np.linspace(0, 1, 5))
        run.set_attrs("grid/x", units="s")
        run.set_attrs(code_version="1.2")
        rid = run.id
    client.flush()
    db = daemon.catalog()
    attrs = {k: json.loads(a) for k, a in db.execute(
        "SELECT key, attrs FROM streams WHERE run_id = ?", (rid,))}
    (run_attrs,) = db.execute("SELECT attrs FROM runs WHERE id = ?", (rid,)).fetchone()
    db.close()
    assert attrs["y"] == {"units": "m", "scale": 2.5, "long_name": "position"}
    assert attrs["grid/x"] == {"units": "s"}
    assert json.loads(run_attrs) == {"description": "a test run", "code_version": "1.2"}
    with daemon.view(campaign) as f:
        assert f[f"runs/{rid}/y"].attrs["units"] == "m"
        assert f[f"runs/{rid}/y"].attrs["scale"] == 2.5
        assert f[f"runs/{rid}/grid/x"].attrs["units"] == "s"
        assert f[f"runs/{rid}"].attrs["description"] == "a test run"


def test_run_and_catalog_helpers_read_back_params_results_streams(daemon, client, campaign):
    with client.open_run(campaign, params={"kappa": 3, "method": "rk4"}) as run:
        run.record("t", 1.0)
        run.record("t", 2.0)
        run.set_results(energy=0.5)
        rid = run.id
    client.flush()
    r = simsink.run(daemon.data_dir, rid)
    assert r["params"] == {"kappa": 3, "method": "rk4"}
    assert r["results"] == {"energy": 0.5}
    assert r["status"] == "finished" and r["campaign"] == campaign
    assert r["streams"]["t"] == {"kind": "stream", "dtype": "float64", "shape": [], "rows": 2,
                                 "attrs": {}}
    assert campaign in simsink.campaigns(daemon.data_dir)
