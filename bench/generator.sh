#!/usr/bin/env bash
# Quality of the embedded program generator: on every program task's test split and on its
# held-out phrasings (the `heldout` split, wordings no other split contains), both styles,
# the programs it writes are executed with oracle modules and scored against the answers,
# next to the gold programs on the same questions. Prints a table, the generation failures
# (questions without a valid program, counted as wrong) and the generation speed.
#
#   bench/generator.sh WORLD OUT [SDVP] [LIMIT]
#
# WORLD: a world directory (`sdvp world generate`); OUT: where programs and runs go;
# SDVP: the binary (default target/release/sdvp); LIMIT: questions per split (default 500).
set -euo pipefail
world=${1:?usage: bench/generator.sh WORLD OUT [SDVP] [LIMIT]}
out=${2:?usage: bench/generator.sh WORLD OUT [SDVP] [LIMIT]}
sdvp=${3:-target/release/sdvp}
limit=${4:-500}
mkdir -p "$out"
rows=()
for task in gqa-world nlvr-world attr-world; do
  for split in test heldout; do
    for style in step python; do
      tag="$task-$split-$style"
      start=$(date +%s.%N)
      "$sdvp" generate --data "$world" --task "$task" --split "$split" --style "$style" \
        --generator embedded --limit "$limit" --no-cache --out "$out/$tag.jsonl" \
        > "$out/$tag.generate.log" 2>&1
      end=$(date +%s.%N)
      for programs in "$out/$tag.jsonl" gold; do
        run="$out/run-$tag-$([ "$programs" = gold ] && echo gold || echo gen)"
        "$sdvp" eval --data "$world" --task "$task" --split "$split" --style "$style" \
          --programs "$programs" --modules oracle --limit "$limit" --out "$run" --restart \
          > "$run.log" 2>&1
      done
      rows+=("$tag $start $end")
    done
  done
done
python3 - "$out" "$limit" "${rows[@]}" <<'PY'
import json, sys
out, limit, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def acc(run):
    m = json.load(open(f"{run}/metrics.json"))["overall"]
    return m["accuracy"], m["total"]
print(f"# Embedded generator, oracle modules, at most {limit} questions per split\n")
print("| task | split | style | generated | gold | ratio | no valid program | s/question |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    tag, start, end = r.split()
    task, split, style = tag.rsplit("-", 2)[0], tag.rsplit("-", 2)[1], tag.rsplit("-", 2)[2]
    gen, n = acc(f"{out}/run-{tag}-gen")
    gold, _ = acc(f"{out}/run-{tag}-gold")
    lines = [json.loads(l) for l in open(f"{out}/{tag}.jsonl")]
    failed = sum(1 for l in lines if not l.get("program"))
    per_q = (float(end) - float(start)) / max(len(lines), 1)
    ratio = gen / gold if gold else float("nan")
    print(f"| {task} | {split} | {style} | {100*gen:.1f} | {100*gold:.1f} | {100*ratio:.1f}% | "
          f"{failed}/{len(lines)} | {per_q:.3f} |")
PY
