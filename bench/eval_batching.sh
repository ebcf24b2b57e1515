#!/usr/bin/env bash
# End-to-end questions/s of `sdvp eval` with neural modules: batched (--max-batch 32) vs one
# question at a time (--max-batch 1), same questions, same weights, same binary, one run.
# Also the peak RSS of each run (GNU time).
# Usage: bench/eval_batching.sh [QUESTIONS=500] [MODULE_SET=a set of the models crate's
#        tiny random checkpoints] [STYLE=step] [WORLD=target/bench-world (made if missing)]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-500}; set_dir=${2:-}; style=${3:-step}; world=${4:-target/bench-world}
cargo build --release -q -p sdvp-cli
sdvp=target/release/sdvp
if [[ ! -f $world/scenes.jsonl ]]; then
  $sdvp world generate --out "$world" --seed 11 --scale small >/dev/null
fi
if [[ -z $set_dir ]]; then
  set_dir=target/bench-modules
  f=$PWD/crates/models/tests/fixtures
  mkdir -p "$set_dir"
  cat >"$set_dir/modules.json" <<JSON
{"vqa": {"arch": "blip-vqa", "weights": "$f/blip"},
 "detect": {"arch": "owlvit", "weights": "$f/owlvit"},
 "verify": {"arch": "clip", "weights": "$f/clip"},
 "classify": {"arch": "clip", "weights": "$f/clip"},
 "depth": {"arch": "dpt", "weights": "$f/dpt"}}
JSON
fi
run() { # max_batch out
  local t0 t1 rss
  t0=$(date +%s.%N)
  /usr/bin/time -o "target/bench-eval-$1.rss" -f "%M" $sdvp eval --data "$world" \
      --task gqa-world --split train --style "$style" --modules "$set_dir" --limit "$n" \
      --max-batch "$1" --restart --out "target/bench-eval-$1" >/dev/null 2>&1
  t1=$(date +%s.%N)
  rss=$(tail -n 1 "target/bench-eval-$1.rss")
  python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.3f} {sys.argv[3]}')" "$t0" "$t1" "$rss"
}
read -r tb rb < <(run 32)
read -r t1 r1 < <(run 1)
python3 - "$n" "$tb" "$t1" "$rb" "$r1" <<'PY'
import sys
n, tb, t1, rb, r1 = int(sys.argv[1]), *map(float, sys.argv[2:4]), *map(int, sys.argv[4:6])
print(f"batched (cap 32): {n/tb:8.1f} questions/s  ({tb:.2f} s, peak RSS {rb/1024:.0f} MiB)")
print(f"one at a time   : {n/t1:8.1f} questions/s  ({t1:.2f} s, peak RSS {r1/1024:.0f} MiB)")
print(f"batching speed-up: {t1/tb:.2f}x")
PY
