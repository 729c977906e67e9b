"""ctypes binding to libsimsink's C API (client/include/simsink/simsink.h).

This module is the only place that knows the C signatures. It does not speak
the wire protocol: libsimsink does (one implementation, shared with C, C++
and Fortran users).

Where the library is found, first match wins:

1. the environment variable ``SIMSINK_LIB`` (a path to the .so);
2. next to the package: ``simsink/libsimsink.so*`` inside the package
   directory, then the library directory recorded by ``meson install``
   (``_install.py``, written at install time);
3. the build directory of a source checkout:
   ``<repo>/build/client/libsimsink.so`` (the package lives in
   ``<repo>/client/python/simsink``);
4. ``ctypes.util.find_library("simsink")`` (the system's library path).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

# Error codes of proto/PROTOCOL.md section 7 (== enum simsink_error).
ERROR_NAMES = {
    0: "OK",
    1: "BAD_FRAME",
    2: "BAD_MAGIC",
    3: "BAD_VERSION",
    4: "BAD_TYPE",
    5: "BAD_META",
    6: "NEED_HELLO",
    7: "OUT_OF_ORDER",
    8: "UNKNOWN_RUN",
    9: "UNKNOWN_STREAM",
    10: "RUN_CLOSED",
    11: "BAD_NAME",
    12: "BAD_DTYPE",
    13: "BAD_SHAPE",
    14: "DTYPE_MISMATCH",
    15: "SHAPE_MISMATCH",
    16: "ROW_SIZE",
    17: "ARRAY_EXISTS",
    18: "TOO_LARGE",
    19: "CREDIT_EXCEEDED",
    20: "DISK_FULL",
    21: "IO_ERROR",
    22: "SHUTTING_DOWN",
    23: "INTERNAL",
    24: "TIMEOUT",
    25: "BUSY",
    26: "CLOSED",
    27: "BAD_ARGUMENT",
    28: "DUPLICATE",
    29: "BAD_SHM",
}
ERROR_CODES = {name: code for code, name in ERROR_NAMES.items()}


class simsink_options(ctypes.Structure):
    """struct simsink_options of simsink.h; fill with simsink_options_init."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("blocking", ctypes.c_int32),
        ("max_unacked_bytes", ctypes.c_uint64),
        ("batch_bytes", ctypes.c_uint64),
        ("linger_seconds", ctypes.c_double),
        ("timeout_seconds", ctypes.c_double),
        ("heartbeat_seconds", ctypes.c_double),
        ("close_timeout_seconds", ctypes.c_double),
        ("name", ctypes.c_char_p),
        ("shared_memory", ctypes.c_int32),
    ]


_c_client_p = ctypes.c_void_p
_c_run_p = ctypes.c_void_p
_u64p = ctypes.POINTER(ctypes.c_uint64)

# name: (restype, argtypes)
_SIGNATURES = {
    "simsink_options_init": (None, [ctypes.POINTER(simsink_options)]),
    "simsink_connect": (
        ctypes.c_int,
        [ctypes.c_char_p, ctypes.POINTER(simsink_options), ctypes.POINTER(_c_client_p)],
    ),
    "simsink_client_close": (ctypes.c_int, [_c_client_p]),
    "simsink_flush": (ctypes.c_int, [_c_client_p, ctypes.c_double]),
    "simsink_open_run": (
        ctypes.c_int,
        [_c_client_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_c_run_p)],
    ),
    "simsink_record": (
        ctypes.c_int,
        [_c_run_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, _u64p],
    ),
    "simsink_record_rows": (
        ctypes.c_int,
        [_c_run_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64,
         ctypes.c_int, _u64p],
    ),
    "simsink_put": (
        ctypes.c_int,
        [_c_run_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, _u64p],
    ),
    "simsink_set_attrs": (ctypes.c_int, [_c_run_p, ctypes.c_char_p, ctypes.c_char_p]),
    "simsink_close_run": (ctypes.c_int, [_c_run_p, ctypes.c_char_p]),
    "simsink_fail_run": (ctypes.c_int, [_c_run_p, ctypes.c_char_p]),
    "simsink_release_run": (None, [_c_run_p]),
    "simsink_run_id": (ctypes.c_int, [_c_run_p, ctypes.POINTER(ctypes.c_int64)]),
    "simsink_last_error_code": (ctypes.c_int, []),
    "simsink_last_error_message": (ctypes.c_char_p, []),
    "simsink_error_name": (ctypes.c_char_p, [ctypes.c_int]),
    "simsink_version": (ctypes.c_char_p, []),
}


def _candidates():
    env = os.environ.get("SIMSINK_LIB")
    if env:
        yield env, "SIMSINK_LIB"
        return  # an explicit choice: do not fall back silently to another copy
    here = Path(__file__).resolve().parent
    for p in sorted(here.glob("libsimsink.so*")):
        yield str(p), "the package directory"
    try:
        from . import _install  # written by meson install

        libdir = Path(_install.LIBDIR)
        for name in ("libsimsink.so.0", "libsimsink.so"):
            yield str(libdir / name), "the install libdir"
    except ImportError:
        pass
    repo = here.parent.parent.parent  # <repo>/client/python/simsink -> <repo>
    yield str(repo / "build" / "client" / "libsimsink.so"), "the build directory"
    found = ctypes.util.find_library("simsink")
    if found:
        yield found, "the system library path"


def _load():
    tried = []
    for path, where in _candidates():
        if where != "the system library path" and not os.path.exists(path):
            tried.append(f"{path} ({where}): no such file")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{path} ({where}): {e}")
    raise ImportError(
        "simsink: cannot load libsimsink.so; set SIMSINK_LIB to its path, build the "
        "project (scripts/build) or install it (meson install). Tried: "
        + ("; ".join(tried) if tried else "nothing (ctypes.util.find_library found no libsimsink)")
    )


def load_fastrec():
    """The C fast path of Run.record (simsink._fastrec, built by meson next
    to libsimsink), or None: then record() is pure Python, same behaviour.
    Looked for in the package (installed), then in the build directory.
    SIMSINK_FASTREC=0 turns it off (for comparisons)."""
    if os.environ.get("SIMSINK_FASTREC") == "0":
        return None
    try:
        from . import _fastrec

        return _fastrec
    except ImportError:
        pass
    import importlib.machinery
    import importlib.util

    repo = Path(__file__).resolve().parent.parent.parent.parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = repo / "build" / "client" / "python" / ("_fastrec" + suffix)
        if path.exists():
            try:
                spec = importlib.util.spec_from_file_location("simsink._fastrec", path)
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                return mod
            except ImportError:
                return None
    return None


lib, LIB_PATH = _load()
for _name, (_res, _args) in _SIGNATURES.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

options_init = lib.simsink_options_init
connect = lib.simsink_connect
client_close = lib.simsink_client_close
flush = lib.simsink_flush
open_run = lib.simsink_open_run
record = lib.simsink_record
record_rows = lib.simsink_record_rows
put = lib.simsink_put
set_attrs = lib.simsink_set_attrs
close_run = lib.simsink_close_run
fail_run = lib.simsink_fail_run
release_run = lib.simsink_release_run
run_id = lib.simsink_run_id
last_error_code = lib.simsink_last_error_code
last_error_message = lib.simsink_last_error_message


def version() -> str:
    return lib.simsink_version().decode()


def last_error():
    """(code, message) of the calling thread's last call."""
    code = last_error_code()
    msg = last_error_message()
    return code, (msg.decode("utf-8", "replace") if msg else "")


def error_name(code: int) -> str:
    code = abs(code)
    return ERROR_NAMES.get(code) or lib.simsink_error_name(code).decode()
