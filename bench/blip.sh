#!/usr/bin/env bash
# Side by side: the BLIP VQA training step and greedy inference in candle and in PyTorch,
# same config, batch, steps and thread count; prints both lines and the ratios.
# Usage: bench/blip.sh [CONFIG_DIR] [BATCH] [STEPS] [THREADS]   (needs python3 with torch + transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-crates/models/tests/fixtures/blip}; batch=${2:-16}; steps=${3:-20}; threads=${4:-2}
cargo build --release -q -p sdvp-bench --bin bench-blip --features mimalloc
candle=$(RAYON_NUM_THREADS=$threads ./target/release/bench-blip "$dir" "$batch" "$steps" | tail -n 1)
torch=$(python3 bench/blip_reference.py "$dir" "$batch" "$steps" "$threads" | tail -n 1)
echo "$candle"; echo "$torch"
field() { sed -n "s|.*$1=\([0-9.]*\).*|\1|p" <<<"$2"; }
python3 - "$(field train_ms/step "$candle")" "$(field train_ms/step "$torch")" \
          "$(field infer_ms/batch "$candle")" "$(field infer_ms/batch "$torch")" <<'PY'
import sys
ct, pt, ci, pi = map(float, sys.argv[1:])
print(f"speed vs PyTorch (>1 means candle is faster): training {pt / ct:.2f}x, inference {pi / ci:.2f}x")
PY
