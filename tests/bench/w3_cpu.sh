#!/usr/bin/env bash
# Where the CPU of W3 runs goes: the worker processes (bench_w3's
# workers_cpu_seconds, fork to exit) and the daemon, by thread, over each
# run. Threads that ended during the run (the segment writers of each
# commit) are counted together from the process's total.
#   tests/bench/w3_cpu.sh BUILD ENDPOINT DAEMON_PID ROUNDS CLIENTS [CLIENTS ...]
# e.g. tests/bench/w3_cpu.sh build ipc:///tmp/d/in.sock 1234 4 1 64
# Each round runs every CLIENTS count once, in the order given, `sync`
# before each (docs/performance.md, thirteenth round).
set -euo pipefail
if [ $# -lt 5 ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
build=$(realpath "$1") endpoint=$2 pid=$3 rounds=$4
shift 4
[ -d "/proc/$pid" ] || { echo "w3_cpu.sh: no process $pid" >&2; exit 2; }
ticks() {  # the daemon's threads "name ticks", then "(all) ticks" for the process
  local f a
  for f in /proc/"$pid"/task/*; do
    read -r -a a < <(sed 's/^.*) //' "$f/stat")
    echo "$(tr ' ' '_' < "$f/comm") $(( a[11] + a[12] ))"
  done
  read -r -a a < <(sed 's/^.*) //' "/proc/$pid/stat")
  echo "(all) $(( a[11] + a[12] ))"
}
hz=$(getconf CLK_TCK)
for r in $(seq "$rounds"); do
  for n in "$@"; do
    before=$(ticks)
    sync
    out=$("$build/tests/bench/bench_w3" --mode simsink --connect "$endpoint" --clients "$n" \
      --campaign "cpu-$r-$n")
    after=$(ticks)
    /usr/bin/python3 - "$out" "$before" "$after" "$hz" <<'EOF'
import collections, json, sys
run = json.loads(sys.argv[1])
hz = int(sys.argv[4])
def parse(text):
    c = collections.Counter()
    for line in text.splitlines():
        name, value = line.rsplit(" ", 1)
        c[name] += int(value)
    return c
b, a = parse(sys.argv[2]), parse(sys.argv[3])
total = (a["(all)"] - b["(all)"]) / hz
live = {k: (a[k] - b.get(k, 0)) / hz for k in a if k != "(all)"}
ended = total - sum(live.values())
parts = sorted(live.items(), key=lambda kv: -kv[1]) + [("ended threads (segment writers)", ended)]
print(f"{run['clients']:3d} clients {run['seconds']:.3f} s | workers {run['workers_cpu_seconds']:.2f}"
      f" CPU-s | daemon {total:.2f} CPU-s: "
      + ", ".join(f"{k} {v:.2f}" for k, v in parts if v > 0.004))
EOF
  done
done
