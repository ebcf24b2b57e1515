#!/usr/bin/env bash
# SDVP ablations on one step (vqa on gqa-world from the embedded default): each filter off,
# no forgetting guard, hard labels, less mined data, step programs only. Every variant is
# evaluated end to end on gqa-world (target) and attr-world (unseen), both styles.
#
#   bench/sdvp_ablations.sh WORLD OUT [SDVP] [LIMIT]
#
# WORLD: a world (sdvp world generate --seed 0 --scale small); OUT: runs (rerunning resumes);
# SDVP: the binary (default target/release/sdvp); LIMIT: test questions per cell (default 400).
set -euo pipefail
world=${1:?usage: bench/sdvp_ablations.sh WORLD OUT [SDVP] [LIMIT]}
out=${2:?usage: bench/sdvp_ablations.sh WORLD OUT [SDVP] [LIMIT]}
sdvp=${3:-target/release/sdvp}
limit=${4:-400}
mkdir -p "$out"
declare -A variants=(
  [default]=""
  [no-consistency]="--no-consistency"
  [no-confidence]="--min-confidence 0"
  [no-filters]="--no-consistency --min-confidence 0"
  [no-dedup]="--no-dedup"
  [lambda-0]="--lambda 0"
  [hard-labels]="--labels hard"
  [mine-250]="--mine-limit 250"
  [step-programs-only]="--style step"
)
order="default no-consistency no-confidence no-filters no-dedup lambda-0 hard-labels mine-250 step-programs-only"
evaluate() { # modules name
  for task in gqa-world attr-world; do
    for style in step python; do
      "$sdvp" eval --data "$world" --task "$task" --split test --style "$style" --limit "$limit" \
        --modules "$1" --out "$out/eval/$2-$task-$style" > /dev/null 2>&1
    done
  done
}
evaluate embedded base
for v in $order; do
  # shellcheck disable=SC2086
  "$sdvp" distill --data "$world" --task gqa-world --modules embedded ${variants[$v]} \
    --out "$out/$v" > "$out/$v.log" 2>&1
  evaluate "$out/$v" "$v"
done
python3 - "$out" $order <<'PY'
import json, sys
out, names = sys.argv[1], sys.argv[2:]
acc = lambda n, t, s: json.load(open(f"{out}/eval/{n}-{t}-{s}/metrics.json"))["overall"]["accuracy"]
print("| variant | kept | val sub-tasks before → after | gqa step | gqa python | attr step (unseen) | attr python (unseen) |")
print("|---|---|---|---|---|---|---|")
row = lambda n: " | ".join(f"{100*acc(n, t, s):.1f}" for t in ["gqa-world", "attr-world"] for s in ["step", "python"])
print(f"| base (no SDVP) | — | — | {row('base')} |")
for n in names:
    st = json.load(open(f"{out}/{n}/step.json"))
    b = dict(st["before"])["task_accuracy"]; a = dict(st["training"]["best"])["task_accuracy"]
    print(f"| {n} | {st['counts']['kept']} | {100*b:.1f} → {100*a:.1f} | {row(n)} |")
PY
