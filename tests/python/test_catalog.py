"""Read helpers: simsink.runs() (DataFrame or list of dicts, the --where
language), open_catalog(), open_view()."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pandas as pd
import pytest

import simsink

SWEEP = [
    # params, results, fail?
    ({"beta": 1e-10, "kappa": 1, "method": "dopri5", "adaptive": True}, {"energy": 0.5}, False),
    ({"beta": 5e-10, "kappa": 2, "method": "dopri5", "adaptive": False}, {"energy": 1.5}, False),
    ({"beta": 9e-10, "kappa": 3, "method": "rk4", "adaptive": True}, {"energy": 2.5}, False),
    ({"beta": 2e-10, "kappa": 4, "method": "it's"}, {"energy": 3.5, "status": "x"}, False),
    ({"beta": 7e-10, "kappa": 5, "method": "dopri853"}, {}, True),
    ({"beta": "high", "kappa": 6.5}, {"energy": -1.0}, False),  # a str beta in one run
]


@pytest.fixture(scope="module")
def sweep(daemon):
    """Campaign 'catalog-sweep' (runs above) plus one run of 'catalog-other'.
    Returns the run ids in SWEEP order."""
    ids = []
    with simsink.connect(daemon.endpoint, timeout=60) as client:
        for params, results, fail in SWEEP:
            run = client.open_run("catalog-sweep", params=params)
            ids.append(run.id)
            run.record("t", 0.0)
            if fail:
                run.fail("diverged")
            else:
                run.close(results=results)
        with client.open_run("catalog-other", params={"beta": 1e-10, "method": "dopri5"}) as r:
            r.record("t", 0.0)
            other = r.id
        client.flush()
    return ids, other


def test_runs_returns_a_dataframe_of_params_and_results(daemon, sweep):
    ids, _ = sweep
    df = simsink.runs(daemon.data_dir, campaign="catalog-sweep")
    assert isinstance(df, pd.DataFrame)
    assert list(df.index) == ids
    assert df.index.name == "id"
    assert list(df.columns[:7]) == ["campaign", "status", "host", "pid", "started", "ended",
                                    "reason"]
    assert df.loc[ids[0], "beta"] == 1e-10
    assert df.loc[ids[1], "method"] == "dopri5"
    assert df.loc[ids[2], "energy"] == 2.5
    assert bool(df.loc[ids[0], "adaptive"]) is True
    assert df.loc[ids[4], "status"] == "failed" and df.loc[ids[4], "reason"] == "diverged"
    assert math.isnan(df.loc[ids[4], "energy"])  # a failed run has no results
    # a result named like a run column is prefixed
    assert df.loc[ids[3], "results.status"] == "x"
    assert set(df["status"]) == {"finished", "failed"}


def test_runs_without_pandas_returns_a_list_of_dicts(daemon, sweep):
    ids, _ = sweep
    rows = simsink.runs(daemon.data_dir, campaign="catalog-sweep", as_frame=False)
    assert [r["id"] for r in rows] == ids
    r0 = rows[0]
    assert r0["beta"] == 1e-10 and r0["kappa"] == 1 and r0["method"] == "dopri5"
    assert r0["adaptive"] is True and r0["energy"] == 0.5
    assert isinstance(r0["kappa"], int) and isinstance(r0["beta"], float)


WHERES = [
    ("beta > 1e-10 and method = 'dopri5'", [1]),
    ("method like 'dopri%'", [0, 1, 4]),
    ("params.kappa >= 2 or (results.energy < 1 and not status = 'failed')", [0, 1, 2, 3, 4, 5]),
    ("kappa = 6.5", [5]),
    ("beta = 'high'", [5]),
    ("status = 'failed'", [4]),
    ("adaptive = true", [0, 2]),
    ("method = \"it's\"", [3]),
    ("method = 'it''s'", [3]),
    ("not beta > 1", [0, 1, 2, 3, 4, 5]),
    ("energy < 0", [5]),
    ("id >= 0 and campaign = 'catalog-sweep'", [0, 1, 2, 3, 4, 5]),
    ("results.status = 'x'", [3]),
]


@pytest.mark.parametrize("where,expect", WHERES)
def test_where_selects_the_expected_runs(daemon, sweep, where, expect):
    ids, _ = sweep
    df = simsink.runs(daemon.data_dir, where=where, campaign="catalog-sweep")
    assert list(df.index) == [ids[i] for i in expect]


def test_where_without_campaign_spans_campaigns(daemon, sweep):
    ids, other = sweep
    df = simsink.runs(daemon.data_dir, where="beta <= 1e-10 and method = 'dopri5'")
    assert ids[0] in df.index and other in df.index
    assert df.loc[other, "campaign"] == "catalog-other"


@pytest.mark.parametrize("where", [w for w, _ in WHERES])
def test_where_matches_the_cli(daemon, sweep, where):
    """The Python translation of --where selects what `simsink runs` does."""
    r = daemon.cli("--data-dir", str(daemon.data_dir), "runs", "--json", "--where", where,
                   "--campaign", "catalog-sweep")
    cli = json.loads(r.stdout)
    py = simsink.runs(daemon.data_dir, where=where, campaign="catalog-sweep", as_frame=False)
    assert [x["id"] for x in py] == [x["id"] for x in cli]
    db = simsink.open_catalog(daemon.data_dir)
    found = simsink.catalog.find_runs(db, where=where, campaign="catalog-sweep")
    db.close()
    for a, b in zip(found, cli):
        assert a["params"] == b["params"] and a["results"] == b["results"]


@pytest.mark.parametrize("where,message", [
    ("nosuchname > 1", "unknown name 'nosuchname' at column 1"),
    ("beta => 1", "unknown operator '=>' at column 6"),
    ("beta >", "expected a value after '>' at column 7"),
    ("(beta > 1", "expected ')' at column 10"),
    ("beta > 1)", "unbalanced ')' at column 9"),
    ("beta > 1 && kappa < 2", "unexpected '&' at column 10"),
    ("pid = 'x'", "'pid' at column 1 is a number"),
    ("method like 3", "expected a quoted pattern after 'like'"),
    ("method = 'open", "unterminated string"),
    ("beta > 1e", "malformed number '1e'"),
    ("not " * 101 + "beta > 1", "nested too deeply"),
])
def test_where_errors_name_the_place(daemon, sweep, where, message):
    with pytest.raises(simsink.QueryError) as e:
        simsink.runs(daemon.data_dir, where=where)
    assert message in str(e.value)


def test_status_and_limit_filters(daemon, sweep):
    ids, _ = sweep
    assert list(simsink.runs(daemon.data_dir, campaign="catalog-sweep", status="failed").index) \
        == [ids[4]]
    assert list(simsink.runs(daemon.data_dir, campaign="catalog-sweep", limit=2).index) == ids[:2]


def test_open_catalog_is_read_only(daemon, sweep):
    db = simsink.open_catalog(daemon.data_dir)
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] >= len(SWEEP)
    with pytest.raises(Exception):
        db.execute("DELETE FROM runs")
    db.close()


def test_open_view_returns_an_h5py_file(daemon, sweep):
    ids, _ = sweep
    with simsink.open_view(daemon.data_dir, "catalog-sweep") as f:
        assert isinstance(f, h5py.File)
        assert f.mode == "r"
        assert np.array_equal(f[f"runs/{ids[0]}/t"][()], [0.0])
        assert f[f"runs/{ids[0]}"].attrs["method"] == "dopri5"
    with pytest.raises(FileNotFoundError):
        simsink.open_view(daemon.data_dir, "no-such-campaign")
    with pytest.raises(FileNotFoundError):
        simsink.open_catalog(daemon.data_dir / "nowhere")
