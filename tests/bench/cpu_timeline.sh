#!/usr/bin/env bash
# Where the CPUs go, 20 ms at a time, during one run of a command: samples
# every CPU with `perf record -e cpu-clock -a` (software clock: works on VMs
# without hardware counters) and prints, per 20 ms, the samples that fell on
# idle, on each thread of the daemon by name (simsinkd: the I/O thread,
# writer, segment-writer, shm-lane), on the benchmark's processes and on
# anything else. 100 samples = one CPU busy
# for the whole 20 ms. The figures of docs/performance.md, "Fifth round".
#   tests/bench/cpu_timeline.sh DAEMON_PID COMMAND...
set -euo pipefail
daemon=$1; shift
data=$(mktemp)
perf record -q -e cpu-clock -F 5000 -a -o "$data" -- "$@" >/dev/null 2>&1
perf script -i "$data" -F comm,pid,tid,time 2>/dev/null | awk -v d="$daemon" '
  { t = $NF; sub(":", "", t); if (!t0) t0 = t; b = int((t - t0) * 50)
    split($2, id, "/")
    if ($1 ~ /swapper/) k = "idle"
    else if (id[1] == d) { k = $1; seen[k] = 1 }
    else if ($1 ~ /^bench|^ZMQ|python/) k = "bench"
    else k = "other"
    n[b "," k]++; if (b > last) last = b }
  END {
    cols = "idle"; for (k in seen) cols = cols " " k; cols = cols " bench other"
    ncol = split(cols, c, " ")
    printf "%6s", "ms"; for (i = 1; i <= ncol; i++) printf " %14s", c[i]; print ""
    for (b = 0; b <= last; b++) {
      printf "%6d", b * 20; for (i = 1; i <= ncol; i++) printf " %14d", n[b "," c[i]]; print ""
    } }'
rm -f "$data"
