#!/usr/bin/env bash
# Take-over time after SIGKILL of the trainer process that runs the run's director, over repeated rounds. One run on
# 127.0.0.1, journaled to PostgreSQL: a trainer (moco train --port, one worker), a standby (moco train --standby) and
# two nodes (moco node --join, one worker each), the tiny network of the multi-process tests (ResNet-18 width 4,
# batch 32, synthetic data), so that the times are those of detection, downing, the singleton's move and the
# rendezvous, not of the model. Each round SIGKILLs the trainer that runs the director and measures, from the signal:
#   - "taken over": until the standby prints that it took the run over (it adopted the nodes' workers),
#   - "generation": until it prints the generation it formed,
#   - "next step": until its /metrics shows a step past the one it resumed at,
# then starts the killed trainer again as the new standby before the next round.
# Needs a PostgreSQL database: MOCO_JOURNAL_CONNECTION_STRING (or MOCO_TEST_POSTGRES, as the tests use).
# Usage: bench/takeover.sh [rounds=5]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
export MOCO_JOURNAL_CONNECTION_STRING=${MOCO_JOURNAL_CONNECTION_STRING:-${MOCO_TEST_POSTGRES:-}}
[ -n "$MOCO_JOURNAL_CONNECTION_STRING" ] || { echo "set MOCO_JOURNAL_CONNECTION_STRING to a PostgreSQL database (a standby needs the journal there)" >&2; exit 2; }
. bench/cluster-lib.sh
run_id="takeover-bench-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ports=("$(free_port)" "$(free_port)")
metrics=("$(free_port)" "$(free_port)")
global_step() { curl -s "http://127.0.0.1:${metrics[$1]}/metrics" | awk '/^moco_global_step(\{[^}]*\})? / { print int($2) }'; }
# waits (at most $3 s) until trainer $1's log (of its incarnation $4) matches $2
wait_for() {
  local deadline=$(( $(date +%s) + $3 ))
  until grep -qE "$2" "$out/trainer-$1-$4.log"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "trainer $1 did not print /$2/ within $3 s; it printed:" >&2; tail -30 "$out/trainer-$1-$4.log" >&2; exit 1; }
    sleep 0.02
  done
}
pids=("" "")
incarnation=(0 0)
# starts trainer $1 (0 or 1); with a second argument, as the standby of the trainer at that port
start_trainer() {
  local i=$1
  incarnation[$i]=$((incarnation[$i] + 1))
  local extra=()
  [ $# -gt 1 ] && extra=(--standby --seed-nodes "127.0.0.1:$2")
  MOCO_METRICS_PORT=${metrics[$i]} $moco train --data synthetic:256 --epochs 1000 --batch-size 32 --moco-k 64 --width 4 --moco-dim 16 \
    --bn-splits 4 --knn-every 0 --knn-at-start false --threads 1 --loader-threads 1 --checkpoint-every-steps 0 \
    --port "${ports[$i]}" --min-workers 3 --run-id "$run_id" --run-dir "$out/run-$i" "${extra[@]}" > "$out/trainer-$i-${incarnation[$i]}.log" 2>&1 &
  pids[$i]=$!
}

start_trainer 0
wait_for 0 'waiting for workers' 180 1
start_trainer 1 "${ports[0]}"
wait_for 1 'standing by for run' 180 1
for n in 0 1; do $moco node --join "127.0.0.1:${ports[0]}" --threads 1 --loader-threads 1 > "$out/node-$n.log" 2>&1 & done
wait_for 0 '^epoch 0:' 180 1

echo "| SIGKILL | taken over (s) | generation (s) | next step (s) | resumed at step |"
echo "| ---: | ---: | ---: | ---: | ---: |"
active=0
over_times=()
gen_times=()
step_times=()
for k in $(seq 1 "$rounds"); do
  standby=$((1 - active))
  sleep 2 # into the middle of a chunk
  t0=$(now)
  kill -KILL "${pids[$active]}"
  wait "${pids[$active]}" 2>/dev/null || true
  wait_for "$standby" 'took run \S+ over at step' 120 "${incarnation[$standby]}"
  to_over=$(since "$t0")
  wait_for "$standby" 'worker\(s\), generation [0-9]+' 120 "${incarnation[$standby]}"
  to_generation=$(since "$t0")
  resumed=$(grep -oE 'took run \S+ over at step [0-9]+' "$out/trainer-$standby-${incarnation[$standby]}.log" | tail -1 | grep -oE '[0-9]+$')
  while [ "$(global_step "$standby" || true)" -le "$resumed" ] 2>/dev/null || [ -z "$(global_step "$standby" || true)" ]; do sleep 0.02; done
  to_step=$(since "$t0")
  echo "| $k | $to_over | $to_generation | $to_step | $resumed |"
  over_times+=("$to_over")
  gen_times+=("$to_generation")
  step_times+=("$to_step")
  # the killed trainer comes back as the new standby
  start_trainer "$active" "${ports[$standby]}"
  wait_for "$active" 'standing by for run' 180 "${incarnation[$active]}"
  active=$standby
done

echo
echo "SIGKILL to the take-over:        $(summary "${over_times[@]}")"
echo "SIGKILL to the next generation:  $(summary "${gen_times[@]}")"
echo "SIGKILL to the next step done:   $(summary "${step_times[@]}")"
