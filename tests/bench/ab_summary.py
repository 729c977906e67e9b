#!/usr/bin/python3
"""Median [min-max] per label of an A/B script's "LABEL SECONDS" lines
(the label may contain spaces; the seconds are the last word).
    ab_summary.py FILE     (used by ab_pool.sh, ab_live.sh, segment_rounds.sh)"""
import statistics
import sys

runs = {}
for line in open(sys.argv[1]):
    k, v = line.rsplit(None, 1)
    runs.setdefault(k, []).append(float(v))
for k, v in sorted(runs.items()):
    print(f"{k}: {statistics.median(v):.3f} [{min(v):.3f}-{max(v):.3f}] s, {len(v)} runs")
