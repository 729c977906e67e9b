#!/usr/bin/python3
"""The h5py peers of the W1 and W2 benchmarks (shared/WORKLOADS.md), and the
W2 slice reads. Run by scripts/bench in the same run as simsink; each
command prints one JSON object on stdout.

  peers.py w1-listbuf --file F [--steps N] [--fsync 0|1] [--rows pool|copy]
      h5py, the usual Python way: t and y appended to Python lists, every
      1000 steps written to resizable datasets (resize + slice write, chunks
      of 1000 rows). With --rows pool (the default, issue #4's peer) y
      cycles through 1000 arrays made beforehand and is appended without a
      copy, so the loop pays for buffering and writing, not for producing
      data. With --rows copy one state array is updated in place each step
      (y[0], y[1], as bench_w1 does before each record()) and appended as
      y.copy(), which a list buffer needs when the state is updated in
      place. Timed from before h5py.File() until the file is closed (and
      fsynced with --fsync 1).
  peers.py w2-write --file F [--appends 20] [--shape 10,10000,200]
                    [--chunk 1,1,1250,200] [--fsync 0|1]
      h5py on the same arrays as bench_w2: dataset x of shape
      (0, 10, 10000, 200), resized and written one array per append.
  peers.py w2-read --file F --dataset PATH [--repeat 20] [--index I]
                   [--evict PATH ...]
      Reads of one open dataset x of shape (appends, 10, 10000, 200), warm
      (the whole dataset is read once first): the slice x[:, :, 0:10, :],
      one array's slice x[k, :, 0:10, :] for k = 0, 1, 2, ... in turn
      ("one_slice") and for the same k = I every time ("one_slice_same",
      which a plain file serves from HDF5's chunk cache), and everything
      x[...]. Also the
      time to open the file and read the slice once ("open_slice"). Works
      on a plain HDF5 file and on simsink's campaign view (external link to
      the run view, virtual dataset over the segments) alike.
      --evict (repeatable; a file, or a directory for every file under it)
      first drops those files' pages from the page cache, so that files
      compared start alike: how a page came into the cache matters here.
      Pages first read by the small reads of a slice serve later slices up
      to twice as slowly as pages read in whole or left by a writer
      (docs/performance.md, eleventh round).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import h5py
import numpy as np


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def w1_listbuf(a):
    rng = np.random.default_rng(1)
    pool = [rng.standard_normal(100) for _ in range(1000)]
    state = rng.standard_normal(100)
    copy = a.rows == "copy"
    dt = 1e-3
    steps = a.steps
    t0 = time.perf_counter()
    with h5py.File(a.file, "w") as f:
        d_t = f.create_dataset("t", (0,), maxshape=(None,), dtype="f8", chunks=(1000,))
        d_y = f.create_dataset("y", (0, 100), maxshape=(None, 100), dtype="f8",
                               chunks=(1000, 100))
        ts, ys = [], []
        n = 0
        for step in range(steps):
            t = step * dt
            ts.append(t)
            if copy:
                state[0] = step
                state[1] = t
                ys.append(state.copy())
            else:
                ys.append(pool[step % 1000])
            if len(ts) == 1000:
                d_t.resize((n + 1000,))
                d_t[n:] = ts
                d_y.resize((n + 1000, 100))
                d_y[n:] = np.asarray(ys)
                n += 1000
                ts, ys = [], []
        if ts:
            k = len(ts)
            d_t.resize((n + k,))
            d_t[n:] = ts
            d_y.resize((n + k, 100))
            d_y[n:] = np.asarray(ys)
    if a.fsync:
        fsync_file(a.file)
    seconds = time.perf_counter() - t0
    print(json.dumps({"mode": "h5py-listbuf" + ("-copy" if copy else "") +
                              ("+fsync" if a.fsync else ""),
                      "seconds": seconds, "bytes": steps * 808}))


def w2_write(a):
    shape = tuple(int(x) for x in a.shape.split(","))
    chunk = tuple(int(x) for x in a.chunk.split(","))
    data = (np.arange(int(np.prod(shape)), dtype=np.int64) % 1000).astype(np.float32)
    data = data.reshape(shape)
    t0 = time.perf_counter()
    with h5py.File(a.file, "w") as f:
        x = f.create_dataset("x", (0,) + shape, maxshape=(None,) + shape, dtype="f4",
                             chunks=chunk)
        for i in range(a.appends):
            data.flat[0] = i
            x.resize((i + 1,) + shape)
            x[i] = data
    if a.fsync:
        fsync_file(a.file)
    seconds = time.perf_counter() - t0
    print(json.dumps({"mode": "h5py" + ("+fsync" if a.fsync else ""), "seconds": seconds,
                      "bytes": a.appends * data.nbytes}))


def timed(fn, repeat):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def stats(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def evict(paths):
    """Drops the cached pages of every file at or under each path."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += [os.path.join(d, n) for d, _, names in os.walk(p) for n in names]
        else:
            files.append(p)
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)  # dirty pages cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return len(files)


def w2_read(a):
    evicted = evict(a.evict)
    t0 = time.perf_counter()
    with h5py.File(a.file, "r") as f:
        x = f[a.dataset]
        first = x[:, :, 0:10, :]
        open_slice = time.perf_counter() - t0
        n = x.shape[0]
        i = a.index if a.index is not None else n // 2
        whole = x[...]  # warm: every byte in the page cache
        assert whole.shape == x.shape, (whole.shape, x.shape)
        expect = whole[:, :, 0:10, :]
        assert np.array_equal(first, expect)
        # Spot checks of the values bench_w2 and w2-write store.
        assert whole[i].flat[0] == i and whole[i].flat[1] == 1.0, whole[i].flat[:2]
        del whole
        s_slice = timed(lambda: x[:, :, 0:10, :], a.repeat)
        s_same = timed(lambda: x[i, :, 0:10, :], a.repeat)
        # Another array each time, as when looking through them: a plain
        # file's chunk cache then holds nothing that the next read needs.
        order = iter([k % n for k in range(a.repeat)])
        s_one = timed(lambda: x[next(order), :, 0:10, :], a.repeat)
        s_all = timed(lambda: x[...], max(5, a.repeat // 4))
        shape = list(x.shape)
    print(json.dumps({"file": a.file, "dataset": a.dataset, "shape": shape,
                      "evicted_files": evicted, "open_slice": open_slice,
                      "slice": stats(s_slice), "one_slice": stats(s_one),
                      "one_slice_same": stats(s_same), "all": stats(s_all),
                      "slice_seconds": s_slice, "one_slice_seconds": s_one,
                      "all_seconds": s_all}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("w1-listbuf")
    p.add_argument("--file", required=True)
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--fsync", type=int, default=0)
    p.add_argument("--rows", choices=("pool", "copy"), default="pool")
    p = sub.add_parser("w2-write")
    p.add_argument("--file", required=True)
    p.add_argument("--appends", type=int, default=20)
    p.add_argument("--shape", default="10,10000,200")
    p.add_argument("--chunk", default="1,1,1250,200")
    p.add_argument("--fsync", type=int, default=1)
    p = sub.add_parser("w2-read")
    p.add_argument("--file", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--index", type=int, default=None)
    p.add_argument("--evict", action="append", default=[], metavar="PATH",
                   help="drop this file's pages (every file's, for a directory) first")
    a = ap.parse_args()
    {"w1-listbuf": w1_listbuf, "w2-write": w2_write, "w2-read": w2_read}[a.cmd](a)


if __name__ == "__main__":
    main()
