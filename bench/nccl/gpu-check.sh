#!/usr/bin/env bash
# The GPU data plane and GPU training, checked in one short call on a machine with NVIDIA GPUs and no .NET SDK.
# Runs published, self-contained output only (build it where the SDK and nuget.org are, see bench/nccl/README.md):
#
#   bench/nccl/gpu-check.sh MOCO_DIR CHECK_DIR [OUT]
#
# MOCO_DIR   build/publish.sh --variant cuda MOCO_DIR                     (holds ./moco)
# CHECK_DIR  dotnet publish bench/nccl/MoCo.NcclCheck -c Release -r linux-x64 --self-contained \
#              -p:MoCoTorchBackend=cuda -o CHECK_DIR                       (holds ./moco-nccl-check)
# OUT        where the runs and logs go (default ./gpu-check-out)
#
# Steps, each bounded by STEP_TIMEOUT seconds (default 240): the NCCL binding check on 2 GPUs; `moco train` on cuda
# with --devices 1 (fp32, then bf16-mixed) and --devices 2, all with moco.data-plane.backend = nccl, a few steps of
# a tiny synthetic run each; then `moco knn` on the 1-device run's checkpoint, and the same run on the CPU. libnccl and libcudart must be
# findable (LD_LIBRARY_PATH, or the CUDA image's). One PASS/FAIL/SKIP line per step; exit 0 when none failed.
set -uo pipefail

moco_dir="${1:?usage: gpu-check.sh MOCO_DIR CHECK_DIR [OUT]}"
check_dir="${2:?usage: gpu-check.sh MOCO_DIR CHECK_DIR [OUT]}"
out="${3:-gpu-check-out}"
step_timeout="${STEP_TIMEOUT:-240}"
moco="$moco_dir/moco"
check="$check_dir/moco-nccl-check"
for f in "$moco" "$check"; do
  [ -x "$f" ] || { echo "gpu-check: $f is missing or not executable (see bench/nccl/README.md)" >&2; exit 2; }
done
mkdir -p "$out"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
echo "gpu-check: $gpus GPU(s); output in $out"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true

failed=0
# step NAME EXPECT... -- COMMAND...: runs COMMAND under the timeout into OUT/NAME.log; PASS when it exits 0 and the log
# holds every EXPECT string
step() {
  local name="$1"; shift
  local expect=()
  while [ "$1" != "--" ]; do expect+=("$1"); shift; done
  shift
  local log="$out/$name.log" start=$SECONDS
  timeout "$step_timeout" "$@" >"$log" 2>&1
  local code=$?
  local missing=""
  for e in "${expect[@]}"; do
    grep -qF -- "$e" "$log" || missing="$missing '$e'"
  done
  if [ $code -eq 0 ] && [ -z "$missing" ]; then
    echo "PASS $name ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    echo "FAIL $name (exit $code$([ $code -eq 124 ] && echo ', timed out')${missing:+; log lacks$missing}); last lines of $log:"
    tail -n 15 "$log" | sed 's/^/    /'
  fi
}
skip() { echo "SKIP $1: $2"; }

tiny=(--data synthetic:512 --epochs 1 --batch-size 64 --moco-k 256 --width 8 --moco-dim 16 --bn-splits 4
      --knn-every 1 --knn-at-start false --threads 4)
export MOCO_DATA_PLANE_BACKEND=nccl

if [ "$gpus" -ge 2 ]; then
  step nccl-check "0 failed" -- "$check" 2
else
  skip nccl-check "needs 2 GPUs"
fi

if [ "$gpus" -ge 1 ]; then
  step train-cuda-1 "device: CUDA, worker 0 on cuda:0" "data plane: NCCL" "done: 8 steps" -- \
    "$moco" train "${tiny[@]}" --device cuda --devices 1 --run-dir "$out/cuda-1"
  step train-cuda-1-bf16 "device: CUDA" "done: 8 steps" -- \
    "$moco" train "${tiny[@]}" --device cuda --devices 1 --precision bf16-mixed --run-dir "$out/cuda-1-bf16"
  # the checkpoint the CUDA run wrote (from CPU copies of its tensors) verifies and evaluates
  step knn-of-cuda-checkpoint "top-1" -- "$moco" knn --checkpoint "$out/cuda-1"
else
  skip train-cuda-1 "no GPU"
fi

if [ "$gpus" -ge 2 ]; then
  step train-cuda-2 "device: CUDA, workers 0-1 on cuda:0-1" "data plane: NCCL" "2 worker(s), generation 1" "done: 8 steps" -- \
    "$moco" train "${tiny[@]}" --device cuda --devices 2 --run-dir "$out/cuda-2"
else
  skip train-cuda-2 "needs 2 GPUs"
fi

# the same 1-worker run on the CPU, for the kNN line to compare by eye (the metrics are in each run's metrics.csv)
MOCO_DATA_PLANE_BACKEND=auto step train-cpu-1 "device: CPU" "done: 8 steps" -- \
  "$moco" train "${tiny[@]}" --device cpu --devices 1 --run-dir "$out/cpu-1"
for run in cpu-1 cuda-1 cuda-1-bf16 cuda-2; do
  [ -f "$out/$run/metrics.csv" ] && echo "$run: $(tail -n 1 "$out/$run/metrics.csv")"
done

echo "gpu-check: $failed step(s) failed"
[ $failed -eq 0 ]
