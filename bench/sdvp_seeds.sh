#!/usr/bin/env bash
# The SDVP protocol over seeds: `sdvp demo` with distillation seeds 0, 1, 2 on world 0 (the
# world the shipped weights were trained on) and seed 0 on a second world (seed 1, whose
# images no shipped model has seen); prints mean ± sd of every cell and of the gains.
#
#   bench/sdvp_seeds.sh OUT [SDVP] [LIMIT]
#
# OUT: where worlds and runs go (rerunning resumes); SDVP: the binary (default
# target/release/sdvp); LIMIT: test questions per task and style (default 400).
set -euo pipefail
out=${1:?usage: bench/sdvp_seeds.sh OUT [SDVP] [LIMIT]}
sdvp=${2:-target/release/sdvp}
limit=${3:-400}
mkdir -p "$out"
for w in 0 1; do
  [ -f "$out/world$w/scenes.jsonl" ] || "$sdvp" world generate --seed "$w" --scale small --out "$out/world$w" > /dev/null
done
runs=()
for run in "0 0" "0 1" "0 2" "1 0"; do
  set -- $run
  dir="$out/world$1-seed$2"
  "$sdvp" demo --world "$out/world$1" --seed "$2" --limit "$limit" --out "$dir" > "$dir.log" 2>&1
  runs+=("$dir/summary.json")
done
python3 - "${runs[@]}" <<'PY'
import json, statistics, sys
runs = [json.load(open(p)) for p in sys.argv[1:]]
def ms(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{100*statistics.mean(xs):.1f} ± {100*sd:.1f}"
print(f"# SDVP over {len(runs)} runs (distillation seeds 0-2 on world 0, seed 0 on world 1)\n")
for style, get in [("step", lambda r: r["tasks"]), ("python", lambda r: r["python"]["tasks"])]:
    print(f"## {style} programs\n")
    print("| task | Base | +SDVP | SDVP − Base | Replace-with-teacher | Replace − Base | Teacher alone |")
    print("|---|---|---|---|---|---|---|")
    for task in get(runs[0]):
        cells = [get(r)[task] for r in runs]
        col = lambda k: [c[k] for c in cells]
        gain = [c["sdvp"] - c["base"] for c in cells]
        rgain = [c["replace_teacher"] - c["base"] for c in cells]
        unseen = " (unseen)" if task in runs[0]["unseen"] else ""
        print(f"| {task}{unseen} | {ms(col('base'))} | {ms(col('sdvp'))} | {ms(gain)} | "
              f"{ms(col('replace_teacher'))} | {ms(rgain)} | {ms(col('teacher'))} |")
    print()
PY
