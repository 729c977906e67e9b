#!/usr/bin/env bash
# Runs segment_pipeline configurations and the W1 write floor (bench_w1
# --mode write) in interleaved rounds, `sync` before each, and prints the
# median [min-max] of each (docs/performance.md, eighth round).
#   tests/bench/segment_rounds.sh BUILD DIR ROUNDS 'FLAGS' ['FLAGS' ...]
# e.g. tests/bench/segment_rounds.sh build /work/segp 6 '--mode serial --commit 64' \
#        '--mode overlap --commit 64' '--mode append --commit 64'
# BUILD must be configured with -Dbench=true (and ISA-L found).
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
build=$(realpath "$1") dir=$2 rounds=$3
shift 3
mkdir -p "$dir"
out=$(mktemp)
seconds() { grep -o '"seconds": [0-9.]*' | awk '{print $2}'; }
for _ in $(seq "$rounds"); do
  for flags in "$@"; do
    sync
    # shellcheck disable=SC2086  # FLAGS are words on purpose
    echo "$flags $("$build/tests/bench/segment_pipeline" --dir "$dir" $flags | seconds)" >> "$out"
  done
  # Twice, the first discarded: the segment writers drop their pages as
  # they go, so the page cache the plain writer needs would otherwise be
  # memory this VM has handed back to its host (fourth round), and the
  # floor would measure that instead of the disk.
  for keep in 0 1; do
    sync
    s=$("$build/tests/bench/bench_w1" --mode write --file "$dir/w1.bin" | seconds)
    rm -f "$dir/w1.bin"
    if [ "$keep" = 1 ]; then echo "bench_w1 --mode write $s" >> "$out"; fi
  done
done
/usr/bin/python3 "$(dirname "$0")/ab_summary.py" "$out"
rm -f "$out"
