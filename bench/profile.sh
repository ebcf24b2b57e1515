#!/usr/bin/env bash
# Where a model bench's time goes: `perf record` of one candle bench (training or inference
# alone), its flat profile grouped by kind of code, and the top symbols.
#
#   bench/profile.sh MODEL CONFIG_DIR PHASE [BATCH] [STEPS] [THREADS] [OUT_FILE]
#
# MODEL: blip, owlvit or clip (bench/src/MODEL.rs); CONFIG_DIR: as for that bench (e.g.
# bench/configs/blip-mid); PHASE: train or infer; BATCH (default 16), STEPS (default 20),
# THREADS (default 2); OUT_FILE: where the report goes (default stdout). The checked-in
# reports are in bench/profiles/. Needs `perf` (linux-perf) and permission to sample
# (kernel.perf_event_paranoid <= 2, or root).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bench/profile.sh blip|owlvit|clip CONFIG_DIR train|infer [BATCH] [STEPS] [THREADS] [OUT_FILE]"
model=${1:?$usage}; dir=${2:?$usage}; phase=${3:?$usage}
batch=${4:-16}; steps=${5:-20}; threads=${6:-2}; out=${7:-/dev/stdout}
source bench/args.sh
case "$model" in blip|owlvit|clip) ;; *) echo "MODEL \`$model\`: expected blip, owlvit or clip" >&2; exit 2;; esac
case "$phase" in train|infer) ;; *) echo "PHASE \`$phase\`: expected train or infer" >&2; exit 2;; esac
[ -f "$dir/config.json" ] || { echo "CONFIG_DIR $dir: no config.json" >&2; exit 2; }
need_count BATCH "$batch" 1 4096; need_count STEPS "$steps" 1 100000; need_count THREADS "$threads" 1 256
command -v perf > /dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 2; }
cargo build --release -q -p sdvp-bench --bin "bench-$model" --features mimalloc
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
SDVP_BENCH_PHASE=$phase RAYON_NUM_THREADS=$threads perf record -q -F 997 -o "$tmp/perf.data" \
  "./target/release/bench-$model" "$dir" "$batch" "$steps" > "$tmp/bench.txt" 2> "$tmp/perf.err" \
  || { cat "$tmp/perf.err" >&2; exit 1; }
perf report -i "$tmp/perf.data" --stdio --no-children --sort dso,symbol --percent-limit 0 \
  2> /dev/null > "$tmp/report.txt"
python3 - "$tmp/report.txt" "$tmp/bench.txt" "$model" "$dir" "$phase" "$batch" "$steps" "$threads" > "$out" <<'PY'
import re, sys
report, bench, model, cfg, phase, batch, steps, threads = sys.argv[1:]
rows = []
for line in open(report):
    m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
    if m:
        sym = re.sub(r"(\s+-)+\s*$", "", m.group(4)).strip()
        rows.append((float(m.group(1)), m.group(2), m.group(3), sym))
if not rows:
    sys.exit(f"{report}: perf recorded no samples")
# First matching group wins; the order puts the specific before the general.
GROUPS = [
    ("gemm (matmul microkernels and packing)", r"^gemm|gemm_f32|gemm_common|gemm::"),
    ("sdvp-kernels (fused ops)", r"sdvp_kernels"),
    ("memset / memcpy", r"mem(set|cpy|move)|__memset|__memcpy|__memmove"),
    ("allocator (mimalloc, malloc)", r"^_?mi_|mimalloc|malloc|^free|cfree|realloc"),
    ("rayon, scheduling, futex", r"rayon|crossbeam|sched_yield|futex|__schedule|finish_task_switch"),
    ("candle element-wise and copies", r"candle_core|candle_nn"),
]
shares = {g: 0.0 for g, _ in GROUPS}
kernel = other = 0.0
for pct, dso, kind, sym in rows:
    for g, pat in GROUPS:
        if re.search(pat, sym):
            shares[g] += pct
            break
    else:
        if kind == "k":
            kernel += pct
        else:
            other += pct
total = sum(r[0] for r in rows)
print(f"# bench-{model} {cfg}, {phase}, batch {batch}, {steps} steps, {threads} thread(s)\n")
print("bench output:")
for line in open(bench):
    print("    " + line.rstrip())
print(f"\n{len(rows)} symbols, {total:.1f}% of samples attributed\n")
print("| where | share of samples |")
print("|---|---|")
for g, _ in GROUPS:
    print(f"| {g} | {shares[g]:.1f}% |")
print(f"| operating system kernel (page faults, zeroing, other) | {kernel:.1f}% |")
print(f"| everything else | {other:.1f}% |")
print("\ntop 30 symbols:\n")
for pct, dso, kind, sym in sorted(rows, key=lambda r: -r[0])[:30]:
    print(f"  {pct:6.2f}%  [{kind}] {sym[:150]}")
PY
