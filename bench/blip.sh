#!/usr/bin/env bash
# Side by side: the BLIP VQA training step and greedy inference in candle and in PyTorch,
# same config, batch, steps and thread count. The two run alternately ROUNDS times (this
# machine's speed drifts by 20% over minutes, so only paired runs compare); prints every
# line, the medians, the ratios of the medians, and candle's achieved GFLOP/s.
# Usage: bench/blip.sh [CONFIG_DIR] [BATCH] [STEPS] [THREADS] [ROUNDS]
#        (needs python3 with torch + transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-crates/models/tests/fixtures/blip}; batch=${2:-16}; steps=${3:-20}; threads=${4:-2}; rounds=${5:-3}
source bench/args.sh
need_count BATCH "$batch" 1 4096; need_count STEPS "$steps" 1 100000
need_count THREADS "$threads" 1 256; need_count ROUNDS "$rounds" 1 100
cargo build --release -q -p sdvp-bench --bin bench-blip --features mimalloc
log=$(mktemp); trap 'rm -f "$log"' EXIT
for _ in $(seq "$rounds"); do
  RAYON_NUM_THREADS=$threads ./target/release/bench-blip "$dir" "$batch" "$steps" | tee -a "$log"
  python3 bench/blip_reference.py "$dir" "$batch" "$steps" "$threads" | tail -n 1 | tee -a "$log"
done
python3 - "$log" <<'PY'
import re, statistics, sys
rows = {"candle": [], "pytorch": []}
flops = None
for line in open(sys.argv[1]):
    m = re.match(r"(candle|pytorch) +params=.*train_ms/step=([0-9.]+) infer_ms/batch=([0-9.]+)", line)
    if m:
        rows[m.group(1)].append((float(m.group(2)), float(m.group(3))))
    f = re.search(r"train_gflop/step=([0-9.]+)", line)
    if f:
        flops = float(f.group(1))
med = {k: [statistics.median(v[i] for v in rows[k]) for i in (0, 1)] for k in rows}
(ct, ci), (pt, pi) = med["candle"], med["pytorch"]
print(f"medians over {len(rows['candle'])} paired rounds: candle train {ct:.1f} ms, infer {ci:.1f} ms; "
      f"pytorch train {pt:.1f} ms, infer {pi:.1f} ms")
print(f"speed vs PyTorch (>1 means candle is faster): training {pt / ct:.2f}x, inference {pi / ci:.2f}x")
if flops:
    # 2 FMA units x 8 f32 lanes x 2 FLOP per cycle per core (AVX2; Zen 4 runs AVX-512 at the
    # same rate), at the clock /proc/cpuinfo reports.
    mhz = [float(l.split(":")[1]) for l in open("/proc/cpuinfo") if l.startswith("cpu MHz")]
    per_core = f"{32 * max(mhz) / 1000:.0f}" if mhz else "unknown"
    print(f"training matmul GFLOP/step {flops:.2f}: candle {flops / ct * 1e3:.1f} GFLOP/s, "
          f"pytorch {flops / pt * 1e3:.1f} GFLOP/s (FMA ceiling about {per_core} per core)")
PY
