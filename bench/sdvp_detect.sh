#!/usr/bin/env bash
# Detect distillation: one `detect` step from the embedded default on each target task, and
# the four-step stepwise plan (vqa then detect on gqa-world, then on nlvr-world, each step
# from the last, earlier steps replayed). Every module set is evaluated end to end on all
# three tasks (attr-world unseen), both styles; the table goes to OUT/detect.md.
#
#   bench/sdvp_detect.sh WORLD OUT [SDVP] [LIMIT] [PROGRAMS]
#
# WORLD: a world (sdvp world generate --seed 0 --scale small); OUT: runs (rerunning resumes);
# SDVP: the binary (default target/release/sdvp); LIMIT: test questions per cell (default
# 400); PROGRAMS: gold (default) or embedded, for mining (test programs are gold).
set -euo pipefail
world=${1:?usage: bench/sdvp_detect.sh WORLD OUT [SDVP] [LIMIT] [PROGRAMS]}
out=${2:?usage: bench/sdvp_detect.sh WORLD OUT [SDVP] [LIMIT] [PROGRAMS]}
sdvp=${3:-target/release/sdvp}
limit=${4:-400}
programs=${5:-gold}
mkdir -p "$out"
step() { # name task module modules [earlier...]
  local name=$1 task=$2 module=$3 modules=$4
  shift 4
  local earlier=()
  for e in "$@"; do earlier+=(--earlier "$e"); done
  "$sdvp" distill --data "$world" --task "$task" --module "$module" --modules "$modules" \
    --programs "$programs" "${earlier[@]}" --out "$out/$name" | tail -2 | head -1
}
evaluate() { # modules name
  for task in gqa-world nlvr-world attr-world; do
    for style in step python; do
      "$sdvp" eval --data "$world" --task "$task" --split test --style "$style" \
        --limit "$limit" --modules "$1" --out "$out/eval/$2-$task-$style" > /dev/null
    done
  done
}
evaluate embedded base
step detect-nlvr nlvr-world detect embedded; evaluate "$out/detect-nlvr" detect-nlvr
step detect-gqa gqa-world detect embedded; evaluate "$out/detect-gqa" detect-gqa
step s1 gqa-world vqa embedded; evaluate "$out/s1" s1
step s2 gqa-world detect "$out/s1" "$out/s1"; evaluate "$out/s2" s2
step s3 nlvr-world vqa "$out/s2" "$out/s1" "$out/s2"; evaluate "$out/s3" s3
step s4 nlvr-world detect "$out/s3" "$out/s1" "$out/s2" "$out/s3"; evaluate "$out/s4" s4
python3 - "$out" "$limit" <<'PY'
import json, sys
out, limit = sys.argv[1], sys.argv[2]
runs = [("base", "Base"), ("detect-nlvr", "detect@nlvr only"), ("detect-gqa", "detect@gqa only"),
        ("s1", "1: vqa@gqa"), ("s2", "2: +detect@gqa"), ("s3", "3: +vqa@nlvr"), ("s4", "4: +detect@nlvr")]
lines = [f"# Detect distillation ({limit} test questions per cell, accuracy %)", ""]
for style in ["step", "python"]:
    lines += [f"## {style} programs", "", "| task | " + " | ".join(c for _, c in runs) + " |",
              "|---" * (len(runs) + 1) + "|"]
    for task in ["gqa-world", "nlvr-world", "attr-world"]:
        cells = []
        for r, _ in runs:
            m = json.load(open(f"{out}/eval/{r}-{task}-{style}/metrics.json"))
            cells.append(f"{100 * m['overall']['accuracy']:.1f}")
        lines.append(f"| {task}{' (unseen)' if task == 'attr-world' else ''} | " + " | ".join(cells) + " |")
    lines.append("")
open(f"{out}/detect.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
