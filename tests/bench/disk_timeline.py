#!/usr/bin/python3
"""What the disk does during one run of a command, 10 ms at a time.

  tests/bench/disk_timeline.py [--device vda] [--every 0.002] [--bin 0.01] -- COMMAND...

Samples /proc/diskstats every EVERY seconds while COMMAND runs (its output
goes through) and prints, per bin of BIN seconds from its start: MB the
device completed writing, the device's busy milliseconds (io_ticks, which
the kernel counts in jiffies, so 4 ms steps here), and the most requests
in flight seen. Then the totals. Bins with nothing written and nothing in
flight are time the disk waited (docs/performance.md, twelfth round: the
first 30-40 ms of a W1 run through the daemon).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def sample(device: str) -> tuple[int, int, int]:
    """Sectors written, busy ms, requests in flight."""
    with open("/proc/diskstats") as f:
        for line in f:
            p = line.split()
            if p[2] == device:
                return int(p[9]), int(p[12]), int(p[11])
    sys.exit(f"disk_timeline: no device {device} in /proc/diskstats")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="vda", help="a name from /proc/diskstats (default vda)")
    ap.add_argument("--every", type=float, default=0.002, help="seconds between samples")
    ap.add_argument("--bin", type=float, default=0.01, help="seconds per printed bin")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND...")
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("give a command after --")
    if a.every <= 0 or a.bin <= 0:
        ap.error("--every and --bin must be positive")

    rows = []
    t0 = time.monotonic()
    rows.append((0.0, *sample(a.device)))
    proc = subprocess.Popen(cmd)
    while proc.poll() is None:
        rows.append((time.monotonic() - t0, *sample(a.device)))
        time.sleep(a.every)
    rows.append((time.monotonic() - t0, *sample(a.device)))

    bins: dict[int, list] = {}
    for r in rows:
        bins.setdefault(int(r[0] / a.bin), []).append(r)
    prev = rows[0]
    print(f"{'ms':>6} {'MB':>6} {'busy':>5} {'inflight':>8}")
    for k in range(max(bins) + 1):
        rs = bins.get(k)
        if not rs:
            continue
        last = rs[-1]
        mb = (last[1] - prev[1]) * 512 / 1e6
        print(f"{k * a.bin * 1e3:6.0f} {mb:6.1f} {last[2] - prev[2]:5d} {max(x[3] for x in rs):8d}")
        prev = last
    end = rows[-1]
    print(f"total: {end[0]:.3f} s, {(end[1] - rows[0][1]) * 512 / 1e6:.1f} MB written, "
          f"disk busy {end[2] - rows[0][2]} ms")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
