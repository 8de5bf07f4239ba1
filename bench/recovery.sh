#!/usr/bin/env bash
# Recovery time after SIGKILL (or SIGTERM: a graceful leave) of a worker node, over repeated rounds. One run on 127.0.0.1: the trainer
# (moco train --port, one worker) and two nodes (moco node --join, one worker each), the tiny network of the
# multi-process tests (ResNet-18 width 4, batch 32, synthetic data), so that the times are those of detection,
# regrouping and rendezvous, not of the model. Each round signals one node and measures, from the signal:
#   - "generation": until the trainer prints the next generation (the survivors regrouped; the next chunk is sent),
#   - "next step": until the trainer's /metrics shows a step past the one the survivors resumed at,
# then starts a new node and waits until it has joined (3 workers again) before the next round.
# With TERM the node finishes the chunk of steps it holds before it leaves (at most 50 steps), so "generation" includes
# that chunk's rest and no step is redone.
# Usage: bench/recovery.sh [rounds=5] [signal=KILL|TERM]
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-5}
signal=${2:-KILL}
case "$signal" in KILL|TERM) ;; *) echo "signal must be KILL or TERM, not $signal" >&2; exit 2 ;; esac
. bench/cluster-lib.sh
port=$(free_port)
metrics=$(free_port)
global_step() { curl -s "http://127.0.0.1:$metrics/metrics" | awk '/^moco_global_step(\{[^}]*\})? / { print int($2) }'; }
# waits (at most $2 s) until the trainer's log has $1 lines matching the generation line
wait_generations() {
  local deadline=$(( $(date +%s) + $2 ))
  while [ "$(grep -c '^generation [0-9]*:' "$out/train.log" || true)" -lt "$1" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "no generation line $1 within $2 s; the trainer printed:" >&2; tail -20 "$out/train.log" >&2; exit 1; }
    sleep 0.02
  done
}

MOCO_METRICS_PORT=$metrics $moco train --data synthetic:256 --epochs 1000 --batch-size 32 --moco-k 64 --width 4 --moco-dim 16 \
  --bn-splits 4 --knn-every 0 --knn-at-start false --threads 1 --loader-threads 1 --checkpoint-every-steps 0 \
  --port "$port" --min-workers 3 --run-dir "$out/run" > "$out/train.log" 2>&1 &
start_node() { $moco node --join "127.0.0.1:$port" --threads 1 --loader-threads 1 > "$out/node-$1.log" 2>&1 & echo $!; }
nodes=("$(start_node 0)" "$(start_node 1)")
deadline=$(( $(date +%s) + 180 ))
until grep -q '^epoch 0:' "$out/train.log"; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "the run did not start; the trainer printed:" >&2; cat "$out/train.log" >&2; exit 1; }
  sleep 0.2
done

echo "| SIG$signal | generation (s) | next step (s) | resumed at step |"
echo "| ---: | ---: | ---: | ---: |"
generations=0
gen_times=()
step_times=()
for k in $(seq 1 "$kills"); do
  generations=$(grep -c '^generation [0-9]*:' "$out/train.log" || true)
  sleep 2 # into the middle of a chunk
  victim=${nodes[0]}
  t0=$(now)
  kill -"$signal" "$victim"
  wait_generations $((generations + 1)) 120
  to_generation=$(since "$t0")
  resumed=$(grep '^generation [0-9]*:' "$out/train.log" | tail -1 | sed -E 's/.*resumes at step ([0-9]+).*/\1/')
  while [ "$(global_step || echo 0)" -le "$resumed" ]; do sleep 0.02; done
  to_step=$(since "$t0")
  echo "| $k | $to_generation | $to_step | $resumed |"
  gen_times+=("$to_generation")
  step_times+=("$to_step")
  # a new node takes the lost one's place
  nodes=("${nodes[1]}" "$(start_node $((k + 1)))")
  wait_generations $((generations + 2)) 120
done

echo
echo "SIG$signal to the next generation: $(summary "${gen_times[@]}")"
echo "SIG$signal to the next step done:  $(summary "${step_times[@]}")"
