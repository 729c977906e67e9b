"""simsink: record simulation data through one writer (simsinkd) into HDF5 +
a SQLite catalog.

    import numpy as np, simsink
    with simsink.connect("tcp://master:5555") as client:
        with client.open_run("sweep", params={"nx": 64, "method": "dopri5"}) as run:
            for step in range(n):
                run.record("t", step * dt)
                run.record("y", y)
            run.put("grid/x", x)
            run.set_results({"energy": e})
        client.flush()

    df = simsink.runs("/data", where="method = 'dopri5'", campaign="sweep")
    with simsink.open_view("/data", "sweep") as f: ...

Recording goes through libsimsink (the C library, via ctypes); see
simsink._native for where it is looked up (SIMSINK_LIB first).
"""

from ._native import LIB_PATH
from ._native import version as _lib_version
from .catalog import QueryError, campaigns, open_catalog, open_view, run, runs, view_path
from .client import DTYPES, Client, Error, Run, connect

__version__ = _lib_version()

__all__ = [
    "connect",
    "Client",
    "Run",
    "Error",
    "DTYPES",
    "open_catalog",
    "runs",
    "run",
    "campaigns",
    "open_view",
    "view_path",
    "QueryError",
    "LIB_PATH",
    "__version__",
]
