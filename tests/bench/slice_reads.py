#!/usr/bin/python3
"""Median time of one slice read x[:, :, 0:10, :] of a 4-d dataset, in a
process of its own, depending on how the file's pages came into the cache.

    tests/bench/slice_reads.py FILE DATASET [--reads 300] [--whole-first]
                               [--evict PATH ...]

--evict drops the pages of PATH (every file under it, for a directory)
first, as `peers.py w2-read --evict` does; --whole-first reads the whole
dataset once before the timed slices. Without either, the slices read
whatever the cache holds. Prints one JSON line (milliseconds).
docs/performance.md, eleventh round: pages first read by a slice's small
reads serve later slices up to twice as slowly as pages first read in
whole.

    f=DATA/w2-0.h5 d=runs/1/x
    tests/bench/slice_reads.py $f $d --evict $f --evict ${f%.h5}              # slice first
    tests/bench/slice_reads.py $f $d                                          # same pages again
    tests/bench/slice_reads.py $f $d --evict $f --evict ${f%.h5} --whole-first
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import evict  # noqa: E402  (the same page dropping as the suite's reads)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("dataset")
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--whole-first", action="store_true",
                    help="read the whole dataset once before the timed slices")
    ap.add_argument("--evict", action="append", default=[], metavar="PATH",
                    help="drop this file's pages (every file's, for a directory) first")
    a = ap.parse_args()
    if a.reads < 1:
        ap.error("--reads must be at least 1")
    evicted = evict(a.evict)
    with h5py.File(a.file, "r") as f:
        if not isinstance(f.get(a.dataset), h5py.Dataset):
            ap.error(f"{a.file} has no dataset {a.dataset}")
        x = f[a.dataset]
        if x.ndim != 4:
            ap.error(f"{a.dataset} in {a.file} has {x.ndim} dimensions, not 4")
        if a.whole_first:
            x[...]
        ms = []
        for _ in range(a.reads):
            t0 = time.perf_counter()
            x[:, :, 0:10, :]
            ms.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"file": a.file, "dataset": a.dataset, "evicted_files": evicted,
                      "whole_first": a.whole_first, "reads": a.reads,
                      "median_ms": statistics.median(ms), "min_ms": min(ms)}))


if __name__ == "__main__":
    main()
