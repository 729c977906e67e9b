#!/usr/bin/env bash
# A/B of the daemon's lent arenas: alternating runs on fresh daemons with
# --shm-pool 0 (every client makes its own arena) and the default (1G).
#   tests/bench/ab_pool.sh [w1|w3-1|w3-64] [PAIRS] [BUILD]
# Each daemon gets one warm-up run (which leaves warm memory in its pool, as
# a service's earlier jobs would), then the timed run; SIGTERM, delete and
# sync follow. Prints each timed run: seconds (client start to flush()),
# the clients' user and system CPU seconds and minor faults, the daemon's
# CPU ticks during the timed run; then the median [min-max] per setting.
set -euo pipefail
work=${1:-w1} pairs=${2:-6}
B=$(realpath "${3:-$(dirname "$0")/../../build}")
out=$(mktemp)
bench() {  # endpoint campaign
  case $work in
    w1) "$B/tests/bench/bench_w1" --mode simsink --connect "$1" --steps 1000000 --campaign "$2" ;;
    w3-1) "$B/tests/bench/bench_w3" --mode simsink --connect "$1" --clients 1 --campaign "$2" ;;
    w3-64) "$B/tests/bench/bench_w3" --mode simsink --connect "$1" --clients 64 --campaign "$2" ;;
    *) echo "unknown workload $work (w1, w3-1, w3-64)" >&2; exit 2 ;;
  esac
}
for _ in $(seq "$pairs"); do
  for pool in 0 1G; do
    d=$(mktemp -d -p "${TMPDIR:-/tmp}")
    "$B/daemon/simsinkd" --data-dir "$d/data" --listen "ipc://$d/in.sock" --admin "ipc://$d/adm.sock" \
      --log-level error --shm-pool "$pool" &
    pid=$!
    for _ in $(seq 100); do [ -S "$d/adm.sock" ] && break; sleep 0.05; done
    bench "ipc://$d/in.sock" warm >/dev/null 2>&1
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    res=$( { /usr/bin/time -f "CPU %U %S %R" bash -c "$(declare -f bench); work=$work B=$B bench ipc://$d/in.sock timed"; } 2>&1 )
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    secs=$(echo "$res" | grep -o '"seconds": [0-9.]*' | head -1 | awk '{print $2}')
    echo "pool=$pool $secs clients(user sys minflt)=$(echo "$res" | grep '^CPU' | cut -d' ' -f2-) daemon_ticks=$((t1 - t0))"
    echo "pool=$pool $secs" >> "$out"
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$d"; sync
  done
done
/usr/bin/python3 "$(dirname "$0")/ab_summary.py" "$out"
rm -f "$out"
