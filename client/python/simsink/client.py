"""The recording side: Client, Run, Error.

Speed: W1 (a loop of ``record("t", float)`` + ``record("y", float64[100])``)
is decided by the cost of one ``record()`` call, so the Python side batches.
Each stream of a run keeps one preallocated numpy block (up to ``block_rows``
rows and about ``block_bytes`` bytes); ``record()`` compares the value's type,
dtype and shape with the stream's (a few attribute reads), copies the value
into the next row of the block (``buf[n] = value``: the only copy in Python)
and crosses into libsimsink once per full block (``simsink_record_rows``).
Blocks are also handed over, in recording order, before every control call
(``put``, ``set_attrs``, ``set_results``, ``close``, ``fail``, ``flush``) and
by a background ticker when a block has sat for ``block_linger`` seconds while
recording goes on (the next ``record()`` of that stream hands it over), so a
slow simulation's rows still reach the daemon promptly.

Thread-safety: a Client may be shared by threads; a Run is meant to be used
by one thread, the one that opened it (its blocks are not locked; flush()
hands over only the blocks of runs opened by the calling thread).
"""

from __future__ import annotations

import atexit
import ctypes
import json
import math
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Mapping

import numpy as np

from . import _native

_fastrec = _native.load_fastrec()  # the C fast path of Run.record, or None
_StreamBase = _fastrec.StreamBase if _fastrec else object
_RunBase = _fastrec.RunBase if _fastrec else object

__all__ = ["Error", "Client", "Run", "connect", "DTYPES"]

# ---------------------------------------------------------------------------
# errors


class Error(Exception):
    """An error reported by libsimsink or by the daemon.

    ``code`` is the protocol's error name ("DTYPE_MISMATCH", "BAD_NAME", ...),
    ``errno`` (alias ``code_num``) its number (proto/PROTOCOL.md section 7),
    ``message`` the explanation.
    """

    def __init__(self, code, message=""):
        if isinstance(code, str):
            name = code
            num = _native.ERROR_CODES.get(code, 0)
        else:
            num = abs(int(code))
            name = _native.error_name(num)
        self.code = name
        self.errno = num
        self.message = message
        super().__init__(f"{name}: {message}" if message else name)

    @property
    def code_num(self):
        return self.errno

    def __reduce__(self):  # survives pickling (Dask, multiprocessing)
        return (Error, (self.errno, self.message))


def _raise_last(rc):
    code, msg = _native.last_error()
    if code == 0:
        code = -rc
    raise Error(code, msg)


# ---------------------------------------------------------------------------
# dtypes

# numpy dtype -> protocol code (== simsink_dtype of the C API)
DTYPES = {
    np.dtype("int8"): 1,
    np.dtype("int16"): 2,
    np.dtype("int32"): 3,
    np.dtype("int64"): 4,
    np.dtype("uint8"): 5,
    np.dtype("uint16"): 6,
    np.dtype("uint32"): 7,
    np.dtype("uint64"): 8,
    np.dtype("float32"): 9,
    np.dtype("float64"): 10,
    np.dtype("complex64"): 11,
    np.dtype("complex128"): 12,
    np.dtype("bool"): 13,
}
_DTYPE_NAMES = {dt: dt.name for dt in DTYPES}
# exact Python scalar types -> dtype
_PY_SCALARS = {
    bool: np.dtype("bool"),
    int: np.dtype("int64"),
    float: np.dtype("float64"),
    complex: np.dtype("complex128"),
}

if sys.byteorder != "little":  # pragma: no cover
    raise ImportError("simsink: the wire carries little-endian arrays; this host is big-endian")


_CANON = {(dt.kind, dt.itemsize): dt for dt in DTYPES}


def _canonical(dt):
    """The protocol dtype (one of the DTYPES keys, native byte order) of a
    numpy dtype, or None if the protocol has no such type."""
    if dt.fields is not None or dt.subdtype is not None:
        return None
    return _CANON.get((dt.kind, dt.itemsize))


# exact scalar types that a scalar stream of a dtype accepts without a check
_SCALAR_TYPES = {}
for _dt in DTYPES:
    _ts = {t for t, d in _PY_SCALARS.items() if d is _dt} | {_dt.type}
    for _t in (np.longlong, np.ulonglong, np.intc, np.uintc, np.byte, np.ubyte, np.short,
               np.ushort, np.single, np.double, np.csingle, np.cdouble, np.bool_):
        if _canonical(np.dtype(_t)) is _dt:
            _ts.add(_t)
    _SCALAR_TYPES[_dt] = frozenset(_ts)
_ndarray = np.ndarray


def _describe(value):
    """(dtype, shape, array-like) of a value given to record()/put()."""
    t = type(value)
    dt = _PY_SCALARS.get(t)
    if dt is not None:
        return dt, (), value
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, np.generic):
        arr = np.asarray(value)
    elif isinstance(value, (bool, int, float, complex)):  # subclasses
        return _PY_SCALARS[[k for k in _PY_SCALARS if isinstance(value, k)][0]], (), value
    else:
        try:
            arr = np.asarray(value)
        except Exception as e:
            raise Error("BAD_ARGUMENT", f"cannot record a {t.__name__}: {e}") from None
    dt = _canonical(arr.dtype)
    if dt is None:
        raise Error(
            "BAD_DTYPE",
            f"numpy dtype {arr.dtype} has no simsink type (int8..uint64, float32, float64, "
            "complex64, complex128, bool)",
        )
    return dt, arr.shape, arr


def _shape_str(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


# ---------------------------------------------------------------------------
# params, results, attributes -> JSON


def _jsonable(v, what, name):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, what, name) for x in v]
    raise Error(
        "BAD_ARGUMENT",
        f"{what} {name!r}: a {type(v).__name__} is not a number, bool, string or flat list of them",
    )


def _fields_json(fields, what):
    if fields is None:
        return None
    if not isinstance(fields, Mapping):
        raise Error("BAD_ARGUMENT", f"{what} must be a dict, not {type(fields).__name__}")
    obj = {}
    for k, v in fields.items():
        if not isinstance(k, str):
            raise Error("BAD_NAME", f"{what}: name {k!r} is not a string")
        obj[k] = _jsonable(v, what, k)
    try:
        return json.dumps(obj, allow_nan=False).encode()
    except ValueError:
        bad = [k for k, v in obj.items() if not _finite(v)]
        raise Error("BAD_ARGUMENT", f"{what} {', '.join(map(repr, bad))}: not finite (JSON "
                    "cannot carry NaN or infinity)") from None


def _finite(v):
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    return True


# ---------------------------------------------------------------------------
# process state: fork detection, exit handling, the block ticker

_pid = os.getpid()  # this process; updated in a forked child
_fork_gen = 0  # bumped in every forked child


def _after_fork_in_child():
    global _pid, _fork_gen, _ticker
    _pid = os.getpid()
    _fork_gen += 1
    _ticker = None  # threads do not survive fork
    _shared.clear()  # the parent's connections are not ours (never touch them)
    _live_runs.clear()
    _exit_hooked.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_live_clients = weakref.WeakSet()  # clients that may hold unsent rows or a connection
_live_runs = weakref.WeakSet()  # runs with blocks, for the ticker
_shared = {}  # (endpoint, options) -> _Native, connections made after unpickling/fork
_exit_hooked = set()
_lock = threading.Lock()


def _at_exit():
    """Hands over buffered rows and closes every connection of this process."""
    if os.getpid() != _pid:
        return
    for c in list(_live_clients):
        try:
            c.close()
        except Exception as e:  # noqa: BLE001 - exit: report, never raise
            print(f"simsink: closing a client at exit: {e}", file=sys.stderr)
    for key, nat in list(_shared.items()):
        try:
            nat.close()
        except Exception as e:  # noqa: BLE001
            print(f"simsink: closing a connection at exit: {e}", file=sys.stderr)
        _shared.pop(key, None)


atexit.register(_at_exit)


def _hook_exit():
    """In a multiprocessing child (which leaves by os._exit, skipping atexit),
    also run _at_exit from multiprocessing's finalizers."""
    if _pid in _exit_hooked:
        return
    _exit_hooked.add(_pid)
    if "multiprocessing" in sys.modules:
        try:
            from multiprocessing import util

            util.Finalize(None, _at_exit, exitpriority=100)
        except Exception:  # noqa: BLE001 - best effort
            pass


_ticker = None


def _ensure_ticker(period):
    global _ticker
    if _ticker is not None or period <= 0:
        return
    with _lock:
        if _ticker is None:
            t = threading.Thread(target=_tick, args=(period, _fork_gen), name="simsink-ticker",
                                 daemon=True)
            _ticker = t
            t.start()


def _tick(period, gen):
    """Every `period` s, marks stream blocks that held rows through a whole
    period without being handed over: their next record() hands them over.
    It only lowers a stream's threshold; it never touches a block itself
    (record() is not locked), so it cannot race with record()."""
    seen = weakref.WeakKeyDictionary()  # stream -> ships count at the previous tick
    while gen == _fork_gen:
        time.sleep(period)
        try:
            runs = list(_live_runs)
        except RuntimeError:
            continue
        for run in runs:
            for s in list(run._streams.values()):
                if s.o > 0:
                    if seen.get(s) == s.ships:
                        s.limit = 0
                    seen[s] = s.ships
                else:
                    seen.pop(s, None)


# ---------------------------------------------------------------------------
# connections


class _Native:
    """One simsink_client* of this process."""

    __slots__ = ("ptr", "pid", "gen", "__weakref__")

    def __init__(self, endpoint, opts):
        o = _native.simsink_options()
        _native.options_init(ctypes.byref(o))
        for k, v in opts.items():
            if k in _C_OPTIONS and v is not None:
                if k == "name":
                    v = v.encode()
                elif k in ("blocking", "shared_memory"):
                    v = 1 if v else 0
                elif k in ("timeout", "linger", "heartbeat", "close_timeout"):
                    k = k + "_seconds"
                setattr(o, k, v)
        p = ctypes.c_void_p()
        rc = _native.connect(endpoint.encode(), ctypes.byref(o), ctypes.byref(p))
        if rc:
            _raise_last(rc)
        self.ptr = p.value
        self.pid = _pid
        self.gen = _fork_gen
        _hook_exit()

    def usable(self):
        return self.ptr is not None and self.gen == _fork_gen

    def flush(self, timeout):
        rc = _native.flush(self.ptr, -1.0 if timeout is None else float(timeout))
        if rc:
            _raise_last(rc)

    def close(self):
        ptr, self.ptr = self.ptr, None
        if ptr is None or self.gen != _fork_gen:
            return  # closed already, or the parent's: never touch it after fork
        rc = _native.client_close(ptr)
        if rc:
            _raise_last(rc)


_C_OPTIONS = ("blocking", "max_unacked_bytes", "batch_bytes", "linger", "timeout", "heartbeat",
              "close_timeout", "name", "shared_memory")
# block_bytes None: libsimsink's batch_bytes (1 MiB unless set), so that one
# simsink_record_rows call fills about one APPEND message.
_PY_OPTIONS = {"block_rows": 4096, "block_bytes": None, "block_linger": 0.1}


class Client:
    """A connection to a simsinkd daemon (``simsink.connect(endpoint)``).

    Options (all keyword, None = libsimsink's default): ``name`` (shown by
    the daemon), ``blocking`` (False: BUSY instead of waiting when
    ``max_unacked_bytes`` are unacknowledged), ``max_unacked_bytes``,
    ``batch_bytes``, ``linger``, ``timeout`` (flush()/run.id wait, seconds),
    ``heartbeat``, ``close_timeout``, ``shared_memory`` (True: a daemon on
    this host reads the batches from shared memory instead of the socket);
    Python-side batching: ``block_rows``
    (4096), ``block_bytes`` (batch_bytes, 1 MiB), ``block_linger`` (0.1 s; 0: only full
    blocks and control calls hand rows over).

    A Client pickles as (endpoint, options): the copy connects lazily in the
    process that uses it (connections made this way are shared by the copies
    in one process and closed when it exits). After ``fork()`` the child's
    Client reconnects the same way; runs opened before the fork belong to
    the parent.
    """

    def __init__(self, endpoint, **options):
        if not isinstance(endpoint, str) or not endpoint:
            raise Error("BAD_ARGUMENT", "endpoint must be a non-empty string")
        unknown = set(options) - set(_C_OPTIONS) - set(_PY_OPTIONS)
        if unknown:
            raise TypeError(f"unknown simsink option(s): {', '.join(sorted(unknown))}")
        self._endpoint = endpoint
        self._options = dict(options)
        py = {**_PY_OPTIONS, **{k: v for k, v in options.items() if k in _PY_OPTIONS}}
        self._block_rows = int(py["block_rows"])
        self._block_bytes = int(py["block_bytes"] or options.get("batch_bytes") or (1 << 20))
        self._block_linger = float(py["block_linger"] or 0)
        if self._block_rows < 1 or self._block_bytes < 1:
            raise Error("BAD_ARGUMENT", "block_rows and block_bytes must be positive")
        self._native = None
        self._owned = False
        self._closed = False
        self._runs = set()  # open runs of this process
        self._lock = threading.Lock()
        _live_clients.add(self)

    # -- connection ----------------------------------------------------------
    @property
    def endpoint(self):
        return self._endpoint

    @property
    def options(self):
        return dict(self._options)

    def _connect_owned(self):
        self._native = _Native(self._endpoint, self._options)
        self._owned = True
        return self

    def _nat(self):
        nat = self._native
        if self._closed:
            raise Error("CLOSED", "the Client is closed")
        if nat is not None and nat.gen == _fork_gen and nat.ptr is not None:
            return nat
        with self._lock:
            nat = self._native
            if nat is not None and nat.gen == _fork_gen and nat.ptr is not None:
                return nat
            # First use after unpickling, or after fork: a connection of this
            # process, shared by every copy of this client here.
            if nat is not None and nat.gen != _fork_gen:
                self._runs = set()  # the parent's runs
            key = (self._endpoint, tuple(sorted((k, v) for k, v in self._options.items()
                                                if k in _C_OPTIONS)))
            with _lock:
                shared = _shared.get(key)
                if shared is None or shared.ptr is None:
                    shared = _shared[key] = _Native(self._endpoint, self._options)
            self._native = shared
            self._owned = False
            _live_clients.add(self)
            return shared

    def __getstate__(self):
        return {"endpoint": self._endpoint, "options": self._options}

    def __setstate__(self, state):
        self.__init__(state["endpoint"], **state["options"])

    def __repr__(self):
        state = "closed" if self._closed else ("connected" if self._native else "not connected")
        return f"<simsink.Client {self._endpoint!r} {state}>"

    # -- runs ----------------------------------------------------------------
    def open_run(self, campaign, params=None, attrs=None):
        """Opens a run of `campaign` with typed `params` (a dict of numbers,
        bools, strings, flat lists). Use as a context manager: leaving the
        block closes the run (finished), or fails it with the exception's
        text."""
        nat = self._nat()
        pj = _fields_json(params, "params")
        if not isinstance(campaign, str):
            raise Error("BAD_NAME", f"campaign must be a string, not {type(campaign).__name__}")
        h = ctypes.c_void_p()
        rc = _native.open_run(nat.ptr, campaign.encode(), pj, ctypes.byref(h))
        if rc:
            _raise_last(rc)
        run = Run(self, nat, h.value, campaign, params)
        self._runs.add(run)
        if attrs:
            run.set_attrs(None, attrs)
        return run

    def flush(self, timeout=None):
        """Returns once everything recorded so far through this client is
        committed by the daemon (durable, visible in the view and catalog).
        Raises Error (TIMEOUT after `timeout` seconds; or an error the daemon
        reported for an earlier call).

        Rows still in the blocks of runs opened by another thread are not
        handed over here (a run's blocks belong to the thread that records
        it); they go at that run's next block, control call or close."""
        nat = self._nat()
        me = threading.get_ident()
        for run in list(self._runs):
            if run._tid == me:
                run._ship_all()
        # Waits in slices, so that Python handles signals (Ctrl-C) meanwhile.
        deadline = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
        while True:
            left = 0.5 if deadline is None else min(0.5, max(0.0, deadline - time.monotonic()))
            rc = _native.flush(nat.ptr, left)
            if rc == 0:
                return
            code, msg = _native.last_error()
            if code != _native.ERROR_CODES["TIMEOUT"] or (
                    deadline is not None and time.monotonic() >= deadline):
                raise Error(code or -rc, msg)

    def close(self):
        """Hands over buffered rows, flushes (libsimsink's close_timeout) and
        disconnects. Runs still open are left running (the daemon marks them
        lost later). A client made by unpickling shares its process's
        connection: close() then flushes and leaves the connection to the
        process's exit."""
        if self._closed:
            return
        nat = self._native
        if nat is None or nat.gen != _fork_gen or nat.ptr is None:
            self._closed = True
            self._runs = set()
            return
        err = None
        for run in list(self._runs):
            try:
                run._ship_all()
            except Error as e:
                err = err or e
        self._closed = True
        try:
            if self._owned:
                nat.close()
            else:
                nat.flush(self._options.get("close_timeout", 10.0))
        finally:
            if self._owned:
                for run in list(self._runs):
                    run._release()
            self._runs = set()
            _live_clients.discard(self)
        if err:
            raise err

    def __enter__(self):
        self._nat()
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            self.close()
            return
        try:
            self.close()
        except Exception as e:  # noqa: BLE001 - keep the original exception
            print(f"simsink: closing the client after {et.__name__}: {e}", file=sys.stderr)

    def __del__(self):
        try:
            if not self._closed and self._owned and self._native is not None \
                    and self._native.gen == _fork_gen:
                self.close()
        except Exception:  # noqa: BLE001
            pass


def connect(endpoint, **options):
    """Connects to simsinkd at `endpoint` ("tcp://host:5555",
    "ipc:///path/ingest.sock") and returns a Client (a context manager).
    The connection is made in the background: this does not wait for the
    daemon. See Client for the options."""
    return Client(endpoint, **options)._connect_owned()


# ---------------------------------------------------------------------------
# runs

_BLOCK_POOL = {}  # (dtype, row shape, rows) -> [idle blocks], reused across runs
_BLOCK_POOL_BYTES = [0]
_BLOCK_POOL_MAX = 64 << 20


def _take_block(dt, shape, rows):
    key = (dt, shape, rows)
    with _lock:
        free = _BLOCK_POOL.get(key)
        if free:
            b = free.pop()
            _BLOCK_POOL_BYTES[0] -= b.nbytes
            return b
    return np.empty((rows,) + shape, dtype=dt)


def _give_block(b):
    if b is None:
        return
    with _lock:
        if _BLOCK_POOL_BYTES[0] + b.nbytes <= _BLOCK_POOL_MAX:
            _BLOCK_POOL.setdefault((b.dtype, b.shape[1:], b.shape[0]), []).append(b)
            _BLOCK_POOL_BYTES[0] += b.nbytes


class _Stream(_StreamBase):
    """A stream of a run and its block.

    Position `o` counts elements of the flat block when rows are 1-D and
    the block's memoryview can take them (k = elements per row > 0), else
    rows (k = 0). `limit` is the position at which the block is handed over
    (the block's end; lowered to 0 by the ticker); `full` its reset value.
    With the C fast path (_fastrec), o, k, limit, full and ptr live in its
    StreamBase, with what it needs to copy a row itself: rowbytes (0: never),
    itemsize, fmt (the buffer format of the dtype), cshape_t (the row shape)
    and scalar ('d'/'q': Python floats/ints go in as float64/int64)."""

    __slots__ = ("key", "ckey", "dtype", "code", "shape", "ndim", "cshape", "buf", "mv", "rows",
                 "stype", "stypes", "fshape", "direct", "ships", "__weakref__") + (
        () if _fastrec else ("o", "k", "limit", "full", "ptr"))


# numpy dtypes whose memoryview format the memoryview type can assign
# (not complex: memoryview has no 'Z' formats)
_MV_OK = {dt for dt in DTYPES if dt.kind != "c"}


class Run(_RunBase):
    """A run (``client.open_run(...)``): record streams, put arrays, set
    attributes and results, then close (or leave the ``with`` block)."""

    __slots__ = ("_client", "_nat", "_h", "_gen", "_tid", "campaign", "params",
                 "_results", "_closed", "_id", "__weakref__") + (() if _fastrec else ("_streams",))

    def __init__(self, client, nat, h, campaign, params):
        self._client = client
        self._nat = nat
        self._h = h
        self._gen = _fork_gen
        self._tid = threading.get_ident()  # the thread that opened it (see Client.flush)
        self._streams = {}
        self.campaign = campaign
        self.params = dict(params) if params else {}
        self._results = {}
        self._closed = False
        self._id = None

    def __repr__(self):
        state = "closed" if self._closed else "open"
        rid = f" id {self._id}" if self._id is not None else ""
        return f"<simsink.Run of {self.campaign!r}{rid} {state}>"

    # -- checks --------------------------------------------------------------
    def _handle(self):
        if self._gen != _fork_gen:
            raise Error("CLOSED", f"run of {self.campaign!r} was opened in another process "
                        "(before a fork); open a new run in this process")
        if self._closed or self._h is None:
            raise Error("CLOSED", f"run of {self.campaign!r} is closed")
        if self._nat.ptr is None:
            raise Error("CLOSED", "the Client of this run is closed")
        return self._h

    def _what(self):
        return f"run of campaign {self.campaign!r}" + (
            f" (run id {self._id})" if self._id is not None else "")

    # -- recording -------------------------------------------------------------
    def _record_py(self, key, value):
        """Appends one row to stream `key`. The first record fixes the
        stream's dtype and row shape: a Python int/float/bool/complex records
        as int64/float64/bool/complex128, a numpy scalar or array keeps its
        dtype. A later record of another dtype or shape raises Error
        (DTYPE_MISMATCH / SHAPE_MISMATCH) and records nothing."""
        # The fast paths; everything else goes through _record_checked.
        try:
            s = self._streams[key]
        except KeyError:
            return self._record_first(key, value)
        k = s.k
        if k:
            # 1-D rows: the memoryview assignment itself checks the value's
            # format (= dtype) and length, and copies (strided sources too).
            o = s.o
            o2 = o + k
            try:
                s.mv[o:o2] = value
            except (ValueError, TypeError, NotImplementedError, BufferError):
                return self._record_checked(s, value)
            s.o = o2
            if o2 >= s.limit:
                self._ship(s)
            return
        t = type(value)
        if t is s.stype or t in s.stypes:  # scalar streams
            o = s.o
            try:
                s.mv[o] = value
            except (ValueError, TypeError, OverflowError):
                return self._record_checked(s, value)
        elif t is _ndarray and value.dtype is s.dtype and value.shape == s.fshape:
            o = s.o
            s.buf[o] = value
        else:
            return self._record_checked(s, value)
        o += 1
        s.o = o
        if o >= s.limit:
            self._ship(s)

    def _check_match(self, s, dt, shape):
        if dt is not s.dtype:
            raise Error("DTYPE_MISMATCH",
                        f"stream {s.key!r} of {self._what()} is {s.dtype.name}, "
                        f"this record is {dt.name}")
        if shape != s.shape:
            raise Error("SHAPE_MISMATCH",
                        f"stream {s.key!r} of {self._what()} has rows of shape "
                        f"{_shape_str(s.shape)}, this record has {_shape_str(shape)}")

    def _record_direct(self, s, val):
        self._handle()
        try:
            arr = np.ascontiguousarray(val, dtype=s.dtype)
        except (OverflowError, ValueError, TypeError) as e:
            raise Error("BAD_ARGUMENT", f"stream {s.key!r}: {e}") from None
        self._call_rows(s, arr.ctypes.data, 1)

    def _store(self, s, val):
        """Copies a checked value into the next row of the block."""
        row = s.o // s.k if s.k else s.o
        try:
            s.buf[row] = val
        except (OverflowError, ValueError, TypeError) as e:
            raise Error("BAD_ARGUMENT", f"stream {s.key!r}: {e}") from None
        s.o += s.k or 1
        if s.o >= s.limit:
            self._ship(s)

    def _record_checked(self, s, value):
        dt, shape, val = _describe(value)
        self._check_match(s, dt, shape)
        if s.direct:
            return self._record_direct(s, val)
        if s.buf is None:
            self._handle()  # closed (raises)
        self._store(s, val)

    def _record_first(self, key, value):
        h = self._handle()
        if not isinstance(key, str):
            raise Error("BAD_NAME", f"key must be a string, not {type(key).__name__}")
        dt, shape, val = _describe(value)
        s = self._declare(h, key, dt, shape)
        if s.direct:
            return self._record_direct(s, val)
        self._store(s, val)

    def _declare(self, h, key, dt, shape):
        """Declares the stream in libsimsink (0 rows: checks the key, shape
        and name conflicts now, at the first record) and sets up its block."""
        ckey = key.encode()
        ndim = len(shape)
        cshape = (ctypes.c_uint64 * ndim)(*shape) if ndim else None
        rc = _native.record_rows(h, ckey, DTYPES[dt], None, 0, ndim, cshape)
        if rc:
            _raise_last(rc)
        c = self._client
        row_bytes = dt.itemsize * int(np.prod(shape, dtype=np.int64))
        rows = max(1, min(c._block_rows, c._block_bytes // max(1, row_bytes)))
        s = _Stream()
        s.key, s.ckey, s.dtype, s.code = key, ckey, dt, DTYPES[dt]
        s.shape, s.ndim, s.cshape = shape, ndim, cshape
        s.o, s.k, s.ships, s.rows = 0, 0, 0, rows
        s.stype, s.stypes, s.fshape = None, frozenset(), None
        s.direct = rows == 1
        if s.direct:  # rows of block_bytes or more: no Python block, one call per row
            s.buf, s.mv, s.ptr, s.full = None, None, 0, 1
        else:
            s.buf = _take_block(dt, shape, rows)
            s.ptr = s.buf.ctypes.data
            s.mv = s.buf
            s.full = rows
            if ndim == 0:
                s.stypes = _SCALAR_TYPES[dt]
                s.stype = next((t for t, d in _PY_SCALARS.items() if d is dt), dt.type)
                if dt in _MV_OK:
                    s.mv = memoryview(s.buf)
            elif ndim == 1 and dt in _MV_OK:
                s.k = shape[0]
                s.full = rows * s.k
                s.mv = memoryview(s.buf.reshape(-1))
            s.fshape = shape
        s.limit = s.full
        if _fastrec and not s.direct:
            # What the C fast path needs to copy a row itself.
            s.rowbytes = row_bytes
            s.itemsize = dt.itemsize
            s.fmt = memoryview(s.buf[:1]).format.encode()
            s.cshape_t = tuple(shape)
            s.scalar = "d" if (ndim == 0 and dt == np.float64) else (
                "q" if (ndim == 0 and dt == np.int64) else "\0")
        self._streams[key] = s
        if c._block_linger > 0 and not s.direct:
            _live_runs.add(self)
            _ensure_ticker(c._block_linger)
        return s

    def _call_rows(self, s, ptr, nrows):
        rc = _native.record_rows(self._h, s.ckey, s.code, ptr, nrows, s.ndim, s.cshape)
        if rc:
            _raise_last(rc)

    def _ship(self, s):
        """Hands the stream's block to libsimsink (which copies it)."""
        n = s.o // s.k if s.k else s.o
        s.o = 0
        s.limit = s.full
        s.ships += 1
        if n:
            self._handle()
            self._call_rows(s, s.ptr, n)

    def _ship_all(self):
        if self._gen != _fork_gen or self._h is None:
            return
        for s in self._streams.values():
            if s.o:
                self._ship(s)

    def record_rows(self, key, rows):
        """Appends len(rows) rows at once: `rows` is an array whose first
        axis counts rows (the rest is the row shape). The cheap way when the
        rows already are in one array."""
        h = self._handle()
        arr = rows if isinstance(rows, np.ndarray) else np.asarray(rows)
        if arr.ndim < 1:
            raise Error("BAD_SHAPE", f"record_rows of {key!r}: need an array of rows, got a scalar")
        dt, _, _ = _describe(arr[:0])
        shape = arr.shape[1:]
        s = self._streams.get(key)
        if s is None:
            s = self._declare(h, key, dt, shape)
        else:
            self._check_match(s, dt, shape)
        if arr.shape[0] == 0:
            return
        if s.o:
            self._ship(s)  # keeps the stream's rows in order
        arr = np.ascontiguousarray(arr, dtype=dt)
        self._call_rows(s, arr.ctypes.data, arr.shape[0])

    # -- control calls (each hands over the run's blocks first) ---------------
    def put(self, key, value):
        """Writes the write-once array `key` (any rank; numpy dtypes as for
        record())."""
        h = self._handle()
        if not isinstance(key, str):
            raise Error("BAD_NAME", f"key must be a string, not {type(key).__name__}")
        dt, shape, val = _describe(value)
        self._ship_all()
        arr = np.ascontiguousarray(val, dtype=dt)
        ndim = len(shape)
        cshape = (ctypes.c_uint64 * ndim)(*shape) if ndim else None
        rc = _native.put(h, key.encode(), DTYPES[dt], arr.ctypes.data, ndim, cshape)
        if rc:
            _raise_last(rc)

    def set_attrs(self, key=None, attrs=None, **kwargs):
        """Sets attributes of stream/array `key`, or of the run when key is
        None: ``run.set_attrs("y", units="m")``, ``run.set_attrs(None,
        {"a.b": 1})``, ``run.set_attrs(description="...")``."""
        if isinstance(key, Mapping) and attrs is None:
            key, attrs = None, key
        merged = dict(attrs or {})
        merged.update(kwargs)
        h = self._handle()
        aj = _fields_json(merged, "attrs")
        self._ship_all()
        rc = _native.set_attrs(h, None if key is None else str(key).encode(), aj)
        if rc:
            _raise_last(rc)

    def set_results(self, results=None, **kwargs):
        """Sets result values (merged with earlier ones), sent when the run
        closes."""
        self._handle()
        merged = dict(results or {})
        merged.update(kwargs)
        _fields_json(merged, "results")  # checked now, at the offending call
        self._ship_all()
        self._results.update(merged)

    @property
    def results(self):
        return dict(self._results)

    @property
    def id(self):
        """The global run id (waits until the daemon committed the run's
        opening, up to the client's `timeout`). Read it while the run is
        open; once read it stays available after close()."""
        if self._id is None:
            if self._gen != _fork_gen or self._h is None:
                raise Error("CLOSED", "the run's id is known only if read while the run is "
                            "open (run.id before close() or the end of the with block)")
            out = ctypes.c_int64()
            rc = _native.run_id(self._handle(), ctypes.byref(out))
            if rc:
                _raise_last(rc)
            self._id = out.value
        return self._id

    @property
    def closed(self):
        return self._closed

    def close(self, results=None):
        """Ends the run as finished with its results (set_results() plus
        `results`). Hands over its rows; does not wait for the daemon (use
        client.flush())."""
        if results:
            self.set_results(results)
        h = self._handle()
        try:
            self._ship_all()
        except Error as e:
            why = f"recording failed: {e}".encode("utf-8", "replace")
            self._end(lambda: _native.fail_run(h, why))
            raise
        rj = _fields_json(self._results, "results") if self._results else None
        self._end(lambda: _native.close_run(h, rj))

    def fail(self, reason=""):
        """Ends the run as failed with `reason`. Rows recorded so far stay."""
        h = self._handle()
        try:
            self._ship_all()
        except Error:
            pass  # the run fails anyway; its status matters more
        self._end(lambda: _native.fail_run(h, str(reason).encode("utf-8", "replace")))

    def _end(self, call):
        self._closed = True
        rc = call()  # frees the handle, also on failure
        self._h = None
        self._drop_blocks()
        if rc:
            _raise_last(rc)

    def _release(self):
        """The client closed under us: free the handle without ending the run."""
        if self._h is not None and self._gen == _fork_gen:
            _native.release_run(self._h)
        self._h = None
        self._closed = True
        self._drop_blocks()

    def _drop_blocks(self):
        self._client._runs.discard(self)
        _live_runs.discard(self)
        for s in self._streams.values():
            s.mv = None  # releases the memoryview's export before the block is reused
            _give_block(s.buf)
            s.buf = None
            s.ptr = 0  # the block is another run's from now on: no fast path may write it
            s.o = s.k = 0
            s.stype, s.stypes, s.fshape = None, frozenset(), None
        self._streams = {}

    def __reduce__(self):
        raise TypeError("a simsink Run cannot be pickled: pickle the Client and open the run "
                        "in the process that records it")

    if not _fastrec:
        record = _record_py
    else:
        record = _fastrec.RunBase.record  # calls _record_py for whatever it does not handle

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if self._closed:
            return
        if et is None:
            self.close()
            return
        reason = "".join(traceback.format_exception_only(et, ev)).strip()
        try:
            self.fail(reason)
        except Exception as e:  # noqa: BLE001 - keep the original exception
            print(f"simsink: failing the run after {et.__name__}: {e}", file=sys.stderr)
