#!/usr/bin/env bash
# A/B two builds of simsink in alternating runs on the same machine, the
# daemon and the client crossed, to see which side a change helps:
#   tests/bench/ab_builds.sh BUILD_A BUILD_B [w1|w3] [ROUNDS]
# Each build must be configured with -Dbench=true. Each measurement starts its
# own daemon on a fresh directory and ends with SIGTERM and sync; the time is
# client start to flush() (W1: 1M steps of t + y[100]; W3: 64 clients, 1M x
# 808 B rows in all). Prints the median [min-max] per combination.
set -euo pipefail
A=$(realpath "$1") B=$(realpath "$2") work=${3:-w3} rounds=${4:-5}
out=$(mktemp)
run() {  # daemon-build client-build label
  local d; d=$(mktemp -d)
  "$1/daemon/simsinkd" --data-dir "$d/data" --listen "ipc://$d/in.sock" --admin "ipc://$d/adm.sock" --log-level warn &
  local pid=$!
  for _ in $(seq 100); do [ -S "$d/adm.sock" ] && break; sleep 0.05; done
  sleep 0.2
  local t0; t0=$(date +%s%N)
  if [ "$work" = w1 ]; then
    "$2/tests/bench/bench_w1" --mode simsink --connect "ipc://$d/in.sock" --steps 1000000 --campaign w1 >/dev/null
  else
    "$2/tests/bench/bench_w3" --mode simsink --connect "ipc://$d/in.sock" --clients 64 --rows 1000000 --row-bytes 808 --campaign w3 >/dev/null
  fi
  local t1; t1=$(date +%s%N)
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$d"; sync
  echo "$3 $(( (t1 - t0) / 1000000 ))" >> "$out"
}
for _ in $(seq "$rounds"); do
  run "$A" "$A" "daemon-A_client-A"; run "$B" "$A" "daemon-B_client-A"
  run "$A" "$B" "daemon-A_client-B"; run "$B" "$B" "daemon-B_client-B"
done
/usr/bin/python3 - "$out" "$work" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, v = line.split(); d[k].append(int(v) / 1000)
for k in sorted(d):
    v = d[k]
    print(f"{sys.argv[2]} {k}: {statistics.median(v):.3f} s [{min(v):.3f}-{max(v):.3f}] ({len(v)} runs)")
PY
rm -f "$out"
