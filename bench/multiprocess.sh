#!/usr/bin/env bash
# Step throughput of cifar-small (ResNet-18 width 16, batch 256, synthetic data) with one process against two
# processes on this machine (moco train --port + moco node --join over the TCP ring), same run, same cores.
# Prints each run's epoch lines; compare the img/s of the timed epoch (epoch 1; epoch 0 includes warm-up).
# Usage: bench/multiprocess.sh [epochs=2] [images=5120]
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-2}; images=${2:-5120}
. bench/cluster-lib.sh
common=(--preset cifar-small --data "synthetic:$images" --epochs "$epochs" --knn-every 0 --knn-at-start false)
cores=$(nproc)

echo "== 1 process, 1 worker, $cores torch threads"
$moco train "${common[@]}" --threads "$cores" --run-dir "$out/one" | grep -E "^epoch"

echo "== 1 process, 2 workers, $((cores / 2)) torch thread(s) each"
$moco train "${common[@]}" --devices 2 --threads "$cores" --run-dir "$out/two" | grep -E "^epoch"

echo "== 2 processes (train --port + node --join), 1 worker each, $((cores / 2)) torch thread(s) each"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$moco train "${common[@]}" --threads $((cores / 2)) --port "$port" --min-workers 2 --run-dir "$out/multi" > "$out/train.log" &
train=$!
sleep 3
$moco node --join "127.0.0.1:$port" --threads $((cores / 2)) > "$out/node.log" &
wait $train
grep -E "^epoch" "$out/train.log"
