#!/usr/bin/env bash
# The premise table of the embedded default: student vs task teacher on each task's
# sub-tasks (the whole val split), and end to end with gold programs on test (both styles),
# student vs the student with `vqa` (and `detect`) replaced by the task's teacher.
#
#   tools/premise.sh WORLD OUT [LIMIT] [SDVP]
#
# WORLD: a world (sdvp world generate); OUT: where runs and premise.md go; LIMIT: test
# examples per end-to-end run (default 400); SDVP: the binary (default target/release/sdvp).
set -euo pipefail
world=${1:?usage: tools/premise.sh WORLD OUT [LIMIT] [SDVP]}
out=${2:?usage: tools/premise.sh WORLD OUT [LIMIT] [SDVP]}
limit=${3:-400}
sdvp=${4:-target/release/sdvp}
weights=${SDVP_WEIGHTS:-$(dirname "$0")/../weights}
mkdir -p "$out"
for task in gqa-world nlvr-world attr-world; do
  "$sdvp" eval subtasks --data "$world" --task "$task" --split val \
    --modules embedded --out "$out/sub-$task-student" > /dev/null
  for teacher in gqa-world nlvr-world; do
    "$sdvp" eval subtasks --data "$world" --task "$task" --split val \
      --modules "embedded,vqa=$weights/teachers/$teacher,detect=$weights/teachers/$teacher" \
      --out "$out/sub-$task-teacher-$teacher" > /dev/null
  done
done
for task in gqa-world nlvr-world attr-world; do
  for style in step python; do
    "$sdvp" eval --data "$world" --task "$task" --split test --style "$style" --limit "$limit" \
      --modules embedded --out "$out/e2e-$task-$style-base" > /dev/null
    for teacher in gqa-world nlvr-world; do
      "$sdvp" eval --data "$world" --task "$task" --split test --style "$style" --limit "$limit" \
        --modules "embedded,vqa=$weights/teachers/$teacher" \
        --out "$out/e2e-$task-$style-vqa-$teacher" > /dev/null
      "$sdvp" eval --data "$world" --task "$task" --split test --style "$style" --limit "$limit" \
        --modules "embedded,vqa=$weights/teachers/$teacher,detect=$weights/teachers/$teacher" \
        --out "$out/e2e-$task-$style-both-$teacher" > /dev/null
    done
  done
done
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def sub(task, who):
    return json.load(open(f"{out}/sub-{task}-{who}/subtasks.json"))["scores"]
lines = ["# Premise table", "", "## Sub-tasks (val): student vs teacher",
         "", "| sub-tasks of | module | metric | student | teacher gqa-world | teacher nlvr-world | n |",
         "|---|---|---|---|---|---|---|"]
for task in ["gqa-world", "nlvr-world", "attr-world"]:
    s = sub(task, "student")
    tg, tn = sub(task, "teacher-gqa-world"), sub(task, "teacher-nlvr-world")
    names = {"accuracy": "accuracy", "ap50_ranked": "AP@0.5 (all boxes ranked by score)",
             "ap50": "AP@0.5 of the boxes above the module's threshold"}
    for kind, metric in [("vqa", "accuracy"), ("detect", "ap50_ranked"), ("detect", "ap50")]:
        if kind in s:
            lines.append(f"| {task} | {kind} | {names[metric]} | {100*s[kind][metric]:.1f} | "
                         f"{100*tg[kind][metric]:.1f} | {100*tn[kind][metric]:.1f} | {s[kind]['n']} |")
lines += ["", "## VQA sub-tasks (val) by question form: accuracy", "",
          "| sub-tasks of | form | student | teacher gqa-world | teacher nlvr-world | n |",
          "|---|---|---|---|---|---|"]
for task in ["gqa-world", "nlvr-world", "attr-world"]:
    s = sub(task, "student")["vqa"]["by_form"]
    tg = sub(task, "teacher-gqa-world")["vqa"]["by_form"]
    tn = sub(task, "teacher-nlvr-world")["vqa"]["by_form"]
    for form, v in s.items():
        lines.append(f"| {task} | {form} | {100*v['accuracy']:.1f} | "
                     f"{100*tg[form]['accuracy']:.1f} | {100*tn[form]['accuracy']:.1f} | {v['n']} |")
lines += ["", "## End to end (gold programs, test): accuracy", "",
          "| task | style | embedded | vqa=teacher gqa | vqa+detect=teacher gqa | vqa=teacher nlvr | vqa+detect=teacher nlvr | n | errors (base) |",
          "|---|---|---|---|---|---|---|---|---|"]
for task in ["gqa-world", "nlvr-world", "attr-world"]:
    for style in ["step", "python"]:
        m = lambda k: json.load(open(f"{out}/e2e-{task}-{style}-{k}/metrics.json"))
        base = m("base")
        row = [f"{100*m(k)['overall']['accuracy']:.1f}" for k in
               ["base", "vqa-gqa-world", "both-gqa-world", "vqa-nlvr-world", "both-nlvr-world"]]
        errs = base["overall"].get("execution_error", 0) + base["overall"].get("invalid_program", 0)
        lines.append(f"| {task} | {style} | " + " | ".join(row) + f" | {base['overall']['total']} | {errs} |")
text = "\n".join(lines) + "\n"
open(f"{out}/premise.md", "w").write(text)
print(text)
PY
