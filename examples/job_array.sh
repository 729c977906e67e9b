#!/usr/bin/env bash
# A batch job array recorded through simsink: N independent processes, each
# with its index in SLURM_ARRAY_TASK_ID, each recording its own run
# (examples/array_task.py, or the C++ example worker with --worker cxx).
#
# Locally (emulates `sbatch --array=0-(N-1)`: starts all N, waits for all):
#   examples/job_array.sh N ENDPOINT CAMPAIGN [STEPS]
# Under Slurm, submit this script as the array; each task then runs once:
#   sbatch --array=0-99 examples/job_array.sh 100 tcp://master:5555 sweep 1000
#
# Environment: PYTHON (default /usr/bin/python3); SIMSINK_WORKER=cxx runs the
# C++ worker ($SIMSINK_BUILD_DIR/examples/simsink-example-worker) instead.
# Exit status: 0 when every task succeeded; the failed indices are listed.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 N ENDPOINT CAMPAIGN [STEPS]" >&2
  exit 2
fi
n=$1 endpoint=$2 campaign=$3 steps=${4:-1000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
python=${PYTHON:-/usr/bin/python3}

task() {  # runs one task; its index is in SLURM_ARRAY_TASK_ID
  if [ "${SIMSINK_WORKER:-python}" = cxx ]; then
    "${SIMSINK_BUILD_DIR:-$root/build}/examples/simsink-example-worker" --connect "$endpoint" \
      --campaign "$campaign" --steps "$steps" --id "$SLURM_ARRAY_TASK_ID" \
      --seed $((1000 + SLURM_ARRAY_TASK_ID))
  else
    "$python" "$here/array_task.py" --connect "$endpoint" --campaign "$campaign" --steps "$steps"
  fi
}

if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then  # inside a real job array: this task only
  task
  exit
fi

pids=()
for i in $(seq 0 $((n - 1))); do
  SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_JOB_ID=$$ task &
  pids+=($!)
done
failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("$i")
done
if ((${#failed[@]})); then
  echo "job_array: tasks ${failed[*]} failed" >&2
  exit 1
fi
echo "job_array: $n tasks finished"
