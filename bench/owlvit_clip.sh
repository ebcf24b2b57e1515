#!/usr/bin/env bash
# Side by side: the OWL-ViT detection training step and forward pass, and the CLIP
# contrastive training step and forward pass, in candle and in PyTorch, same config, batch,
# steps and thread count (see bench/src/{owlvit,clip}.rs). For each model the two run
# alternately ROUNDS times (this machine's speed drifts over minutes, so only paired runs
# compare); prints every line, the medians and the ratios of the medians.
# Usage: bench/owlvit_clip.sh [OWLVIT_DIR] [CLIP_DIR] [STEPS] [THREADS] [ROUNDS]
#        (a directory of "skip" skips that model; batches: OWLVIT_BATCH=8, CLIP_BATCH=16;
#        needs python3 with torch + transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
owl=${1:-crates/models/tests/fixtures/owlvit}; clip=${2:-crates/models/tests/fixtures/clip}
steps=${3:-20}; threads=${4:-2}; rounds=${5:-3}
source bench/args.sh
need_count STEPS "$steps" 1 100000; need_count THREADS "$threads" 1 256
need_count ROUNDS "$rounds" 1 100
need_count OWLVIT_BATCH "${OWLVIT_BATCH:-8}" 1 4096; need_count CLIP_BATCH "${CLIP_BATCH:-16}" 1 4096
cargo build --release -q -p sdvp-bench --bin bench-owlvit --bin bench-clip --features mimalloc
log=$(mktemp); trap 'rm -f "$log"' EXIT
run() { # NAME DIR BATCH
  [ "$2" = skip ] && return
  : >"$log"
  echo "== $1: $2, batch $3, $steps steps, $threads threads"
  for _ in $(seq "$rounds"); do
    RAYON_NUM_THREADS=$threads "./target/release/bench-$1" "$2" "$3" "$steps" | tee -a "$log"
    python3 "bench/$1_reference.py" "$2" "$3" "$steps" "$threads" | tail -n 1 | tee -a "$log"
  done
  python3 - "$log" "$1" <<'PY'
import re, statistics, sys
rows = {"candle": [], "pytorch": []}
for line in open(sys.argv[1]):
    m = re.match(r"(candle|pytorch) +params=.*train_ms/step=([0-9.]+) infer_ms/batch=([0-9.]+)", line)
    if m:
        rows[m.group(1)].append((float(m.group(2)), float(m.group(3))))
med = {k: [statistics.median(v[i] for v in rows[k]) for i in (0, 1)] for k in rows}
(ct, ci), (pt, pi) = med["candle"], med["pytorch"]
print(f"{sys.argv[2]} medians over {len(rows['candle'])} paired rounds: candle train {ct:.1f} ms, "
      f"infer {ci:.1f} ms; pytorch train {pt:.1f} ms, infer {pi:.1f} ms")
print(f"{sys.argv[2]} speed vs PyTorch (>1 means candle is faster): training {pt / ct:.2f}x, "
      f"inference {pi / ci:.2f}x")
PY
}
run owlvit "$owl" "${OWLVIT_BATCH:-8}"
run clip "$clip" "${CLIP_BATCH:-16}"
