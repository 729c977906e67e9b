"""Read helpers over a data directory: the SQLite catalog and the HDF5 views.

Everything here only reads, and may run while the daemon writes (the catalog
is in WAL mode; a view file is replaced atomically by each commit). The
catalog's schema is described in docs/catalog.md.

    import simsink
    df = simsink.runs("/data/sweep", where="beta > 1e-10 and method = 'dopri5'")
    with simsink.open_view("/data/sweep", "sweep") as f:
        y = f[f"runs/{df.index[0]}/y"][:]
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path

from . import _where
from ._where import QueryError

__all__ = ["open_catalog", "runs", "run", "open_view", "view_path", "campaigns", "QueryError"]

RUN_COLUMNS = ("id", "campaign", "status", "host", "pid", "started", "ended", "reason")


def _catalog_path(data_dir):
    p = Path(data_dir)
    if p.is_dir():
        p = p / "catalog.sqlite"
    return p


def open_catalog(data_dir):
    """A read-only sqlite3 connection to DATA_DIR/catalog.sqlite (data_dir
    may also be the path of the .sqlite file itself). Never write to it:
    the daemon is its only writer."""
    path = _catalog_path(data_dir)
    if not path.exists():
        raise FileNotFoundError(f"no simsink catalog at {path}")
    uri = path.resolve().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 5000")
    return db


def _typed(type_, value):
    if type_ == "int":
        return int(value)
    if type_ == "float":
        return math.nan if value is None else float(value)
    if type_ == "bool":
        return bool(value)
    if type_ == "str":
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _fields(db, table, run_ids):
    """{run_id: {name: typed value}} of params or results."""
    out = {rid: {} for rid in run_ids}
    if not run_ids:
        return out
    ids = list(run_ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        q = (f"SELECT run_id, name, type, value FROM {table} "
             f"WHERE run_id IN ({','.join('?' * len(chunk))}) ORDER BY run_id, name")
        for rid, name, type_, value in db.execute(q, chunk):
            out[rid][name] = _typed(type_, value)
    return out


def find_runs(db, where=None, campaign=None, status=None, limit=None):
    """The runs (list of dicts: run columns, "params", "results") matching
    the filters, in id order, from an open catalog connection."""
    sql = ("SELECT r.id, c.name, r.status, r.host, r.pid, r.started, r.ended, r.reason "
           "FROM runs r JOIN campaigns c ON c.id = r.campaign_id WHERE 1")
    args = []
    if campaign:
        sql += " AND c.name = ?"
        args.append(campaign)
    if status:
        sql += " AND r.status = ?"
        args.append(status)
    db.execute("BEGIN")  # one snapshot for the runs and their fields
    try:
        if where and where.strip():
            wsql, wargs = _where.translate(db, where)
            sql += " AND (" + wsql + ")"
            args += wargs
        sql += " ORDER BY r.id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = db.execute(sql, args).fetchall()
        ids = [r[0] for r in rows]
        params = _fields(db, "params", ids)
        results = _fields(db, "results", ids)
    finally:
        db.execute("COMMIT")
    out = []
    for r in rows:
        d = dict(zip(RUN_COLUMNS, r))
        d["ended"] = d["ended"] if d["ended"] is not None else math.nan
        d["params"] = params[d["id"]]
        d["results"] = results[d["id"]]
        out.append(d)
    return out


def _flatten(found):
    """One flat dict per run: run columns, then params, then results.
    A param named like a run column is "params.NAME"; a result named like a
    run column or a param of any of these runs is "results.NAME"."""
    param_names = {n for r in found for n in r["params"]}
    flat = []
    for r in found:
        d = {k: r[k] for k in RUN_COLUMNS}
        for n, v in r["params"].items():
            d[f"params.{n}" if n in RUN_COLUMNS else n] = v
        for n, v in r["results"].items():
            d[f"results.{n}" if n in RUN_COLUMNS or n in param_names else n] = v
        flat.append(d)
    return flat


def runs(data_dir, where=None, campaign=None, status=None, limit=None, as_frame=None):
    """Params and results of the runs of a data directory, one row per run.

    where: the expression language of ``simsink runs --where`` (docs/catalog.md),
    e.g. ``"beta > 1e-10 and method = 'dopri5'"``; campaign, status: exact
    filters; limit: at most that many runs (lowest ids first).

    Returns a pandas DataFrame indexed by run id (columns: campaign, status,
    host, pid, started, ended, reason, then the params, then the results; a
    run without some param has NaN/None there) if pandas is available (or
    as_frame=True), else a list of dicts (with "id").
    """
    db = open_catalog(data_dir)
    try:
        flat = _flatten(find_runs(db, where=where, campaign=campaign, status=status, limit=limit))
    finally:
        db.close()
    if as_frame is False:
        return flat
    try:
        import pandas as pd
    except ImportError:
        if as_frame:
            raise
        return flat
    columns = list(RUN_COLUMNS)
    for d in flat:
        for k in d:
            if k not in columns:
                columns.append(k)
    df = pd.DataFrame.from_records(flat, columns=columns)
    return df.set_index("id")


def run(data_dir, run_id):
    """One run as a dict (run columns, "params", "results", "attrs", and
    "streams": {key: {kind, dtype, shape, rows, attrs}}), or KeyError."""
    db = open_catalog(data_dir)
    try:
        found = find_runs(db, where=f"id = {int(run_id)}")
        if not found:
            raise KeyError(f"no run {run_id} in {data_dir}")
        r = found[0]
        (attrs,) = db.execute("SELECT attrs FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        r["attrs"] = json.loads(attrs) if attrs else {}
        r["streams"] = {
            key: {"kind": kind, "dtype": dtype, "shape": json.loads(shape), "rows": rows,
                  "attrs": json.loads(a) if a else {}}
            for key, kind, dtype, shape, rows, a in db.execute(
                "SELECT key, kind, dtype, shape, rows, attrs FROM streams WHERE run_id = ? "
                "ORDER BY key", (int(run_id),))
        }
        return r
    finally:
        db.close()


def campaigns(data_dir):
    """Names of the campaigns of a data directory, in creation order."""
    db = open_catalog(data_dir)
    try:
        return [n for (n,) in db.execute("SELECT name FROM campaigns ORDER BY id")]
    finally:
        db.close()


def view_path(data_dir, campaign):
    """DATA_DIR/<campaign>.h5"""
    return os.path.join(os.fspath(data_dir), f"{campaign}.h5")


def open_view(data_dir, campaign, **kwargs):
    """The campaign's HDF5 view (``h5py.File``, read-only): /runs/<id>/<key>
    datasets, params and results as attributes of /runs/<id>. It holds every
    row committed when it was opened; reopen it to see newer commits."""
    import h5py

    path = view_path(data_dir, campaign)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no view of campaign {campaign!r} at {path} (nothing committed "
                                "yet, or another campaign name)")
    return h5py.File(path, "r", **kwargs)
