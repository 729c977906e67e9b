#!/usr/bin/env bash
# A/B two builds of simsink the way the suite runs them: one long-lived
# daemon per build (each in a session of its own, as a service), one
# discarded warm-up run on each, then alternating timed runs with `sync`
# before each. Prints every run and the median [min-max] per build.
#   tests/bench/ab_live.sh BUILD_A BUILD_B [w1|w3-1|w3-64|w4] [ROUNDS] [-- DAEMON FLAGS]
# Both builds must be configured with -Dbench=true. The same build twice
# with different daemon flags is an A/B of a setting:
#   tests/bench/ab_live.sh build build w3-64 6 -- --write-threads 1   (A gets the flags)
# Three variables give A more (each empty by default):
#   AB_CLIENT_A     options for A's bench_w3 runs (w3-1, w3-64), split into
#                   words, e.g. the client's window: "--max-unacked 512M"
#   AB_PREFIX_A     a command A's daemon is started under, split into words,
#                   e.g. "nice -n -10"
#   AB_AUTOGROUP_A  the nice value of A's daemon's session (its autogroup,
#                   /proc/PID/autogroup), which is what shares the CPUs out
#                   between the daemon and the workers when autogroup is on
set -euo pipefail
A=$(realpath "$1") B=$(realpath "$2") work=${3:-w1} rounds=${4:-5}
shift $(( $# < 4 ? $# : 4 ))
flags_a=()
if [ "${1:-}" = "--" ]; then shift; flags_a=("$@"); fi
declare -A dir pid
for x in A B; do
  d=$(mktemp -d -p "${TMPDIR:-/tmp}"); dir[$x]=$d
  build=${!x}
  extra=() prefix=()
  if [ "$x" = A ]; then extra=("${flags_a[@]}"); read -ra prefix <<< "${AB_PREFIX_A:-}"; fi
  "${prefix[@]}" setsid "$build/daemon/simsinkd" --data-dir "$d/data" --listen "ipc://$d/in.sock" \
    --admin "ipc://$d/adm.sock" --log-level warn "${extra[@]}" &
  pid[$x]=$!
  for _ in $(seq 100); do [ -S "$d/adm.sock" ] && break; sleep 0.05; done
  if [ "$x" = A ] && [ -n "${AB_AUTOGROUP_A:-}" ]; then
    daemon=$(pgrep -f -- "--data-dir $d/data" | head -1)
    echo "$AB_AUTOGROUP_A" > "/proc/$daemon/autogroup"
    echo "A: $(cat "/proc/$daemon/autogroup")" >&2
  fi
done
run() {  # A|B campaign -> seconds
  local b=${!1} e="ipc://${dir[$1]}/in.sock" client=()
  if [ "$1" = A ]; then read -ra client <<< "${AB_CLIENT_A:-}"; fi
  case $work in
    w1) "$b/tests/bench/bench_w1" --mode simsink --connect "$e" --steps 1000000 --campaign "$2" ;;
    w3-1) "$b/tests/bench/bench_w3" --mode simsink --connect "$e" --clients 1 --campaign "$2" "${client[@]}" ;;
    w3-64) "$b/tests/bench/bench_w3" --mode simsink --connect "$e" --clients 64 --campaign "$2" "${client[@]}" ;;
    w4) "$b/tests/bench/bench_w4" --mode simsink --connect "$e" --runs 1000 --procs 16 --campaign "$2" ;;
    *) echo "unknown workload $work (w1, w3-1, w3-64, w4)" >&2; exit 2 ;;
  esac | grep -o '"seconds": [0-9.]*' | awk '{print $2}'
}
out=$(mktemp)
run A warm >/dev/null; run B warm >/dev/null
for i in $(seq "$rounds"); do
  for x in A B; do sync; echo "$x $(run $x "c$i")" | tee -a "$out"; done
done
kill -TERM "${pid[A]}" "${pid[B]}"; wait || true
rm -rf "${dir[A]}" "${dir[B]}"
/usr/bin/python3 "$(dirname "$0")/ab_summary.py" "$out"
rm -f "$out"
