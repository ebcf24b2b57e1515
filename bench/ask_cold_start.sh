#!/usr/bin/env bash
# Cold start to answer of `sdvp ask` with the embedded generator and modules: the whole
# process (start, lazy weight loading, generation, execution, exit), run RUNS times after
# one warm-up per question, on world test questions of both styles. Prints min / median /
# max wall seconds per configuration (hyperfine-style; the goal is a median under 0.5 s).
#
#   bench/ask_cold_start.sh WORLD [SDVP] [RUNS]
set -euo pipefail
world=${1:?usage: bench/ask_cold_start.sh WORLD [SDVP] [RUNS]}
sdvp=${2:-target/release/sdvp}
runs=${3:-10}
python3 - "$world" "$sdvp" "$runs" <<'PY'
import json, os, statistics, subprocess, sys, time
world, sdvp, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
cases = []
for task in ["gqa-world", "nlvr-world"]:
    ex = json.loads(open(os.path.join(world, task, "test.jsonl")).readline())
    images = [os.path.join(world, i["path"]) for i in ex["images"]]
    for style in ["step", "python"]:
        cmd = [sdvp, "ask", "--style", style, "--image", images[0]]
        if len(images) > 1:
            cmd += ["--image2", images[1]]
        cases.append((task, style, ex["question"], cmd + [ex["question"]]))
print(f"# sdvp ask, cold process per run, {runs} runs after 1 warm-up\n")
print("| task | style | min s | median s | max s | exit | answer |")
print("|---|---|---|---|---|---|---|")
for task, style, q, cmd in cases:
    subprocess.run(cmd, capture_output=True)
    times, last = [], None
    for _ in range(runs):
        t = time.perf_counter()
        last = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
    answer = next((l[len("answer: "):] for l in last.stdout.splitlines() if l.startswith("answer: ")), "-")
    print(f"| {task} | {style} | {min(times):.3f} | {statistics.median(times):.3f} | "
          f"{max(times):.3f} | {last.returncode} | {answer} |")
PY
