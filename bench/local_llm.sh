#!/usr/bin/env bash
# Latency of the embedded program generator next to the local-LLM path, on the same questions.
#
#   bench/local_llm.sh WORLD OUT [SDVP] [N] [SHAPE] [TASK] [STYLE]
#
# WORLD: a world directory; OUT: scratch directory; SDVP: the binary (default
# target/release/sdvp); N: test questions (default 4); SHAPE: a shape of
# tools/make_llm_shape.py (default qwen2.5-0.5b); TASK, STYLE: default gqa-world, step.
#
# No LLM checkpoint can be downloaded here, so the local model is the published shape with
# random weights (tools/make_llm_shape.py, needs numpy, safetensors and tokenizers from pip).
# Its latency is that of the real model as long as it generates as many tokens: random
# weights never end a program, so decoding is capped at the gold programs' median length in
# the shape's tokenizer. The local path's prompt (system text and in-context examples, the
# `--examples` default) is captured by pointing the openai backend at a stub server, and its
# token count taken with the same tokenizer. Each side is one `sdvp generate` process, so
# model loading is included; per-question times are printed without it too.
set -euo pipefail
source "$(dirname "$0")/args.sh"
world=${1:?usage: bench/local_llm.sh WORLD OUT [SDVP] [N] [SHAPE] [TASK] [STYLE]}
out=${2:?usage: bench/local_llm.sh WORLD OUT [SDVP] [N] [SHAPE] [TASK] [STYLE]}
sdvp=${3:-target/release/sdvp}
n=${4:-4}
need_count N "$n" 2 1000
shape=${5:-qwen2.5-0.5b}
task=${6:-gqa-world}
style=${7:-step}
mkdir -p "$out"
ckpt="$out/$shape"
[ -f "$ckpt/model.safetensors" ] || python3 "$(dirname "$0")/../tools/make_llm_shape.py" --shape "$shape" --out "$ckpt"
common=(--data "$world" --task "$task" --split test --style "$style" --no-cache)

# The prompts the local path sends: a stub OpenAI server records them.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$port" "$out/prompts.jsonl" <<'PY' &
import http.server, json, sys
port, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open(log, "a") as f:
            f.write(json.dumps(body["messages"]) + "\n")
        reply = json.dumps({"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(reply.encode())
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
stub=$!
trap 'kill $stub 2>/dev/null || true' EXIT
sleep 1
rm -f "$out/prompts.jsonl"
"$sdvp" generate "${common[@]}" --limit "$n" --generator openai --base-url "http://127.0.0.1:$port/v1" \
  --resamples 0 --out "$out/stub.jsonl" > "$out/stub.log" 2>&1 || true
kill $stub 2>/dev/null || true
"$sdvp" generate "${common[@]}" --limit "$n" --generator gold --out "$out/gold.jsonl" > "$out/gold.log" 2>&1
tokens=$(python3 - "$ckpt/tokenizer.json" "$out/gold.jsonl" "$out/prompts.jsonl" <<'PY'
import json, statistics, sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
programs = [json.loads(l)["program"] for l in open(sys.argv[2])]
prompts = [json.loads(l) for l in open(sys.argv[3])]
chatml = lambda m: "".join(f"<|im_start|>{x['role']}\n{x['content']}<|im_end|>\n" for x in m) + "<|im_start|>assistant\n"
gen = statistics.median(len(tok.encode(p).ids) for p in programs)
pro = statistics.median(len(tok.encode(chatml(m)).ids) for m in prompts)
print(int(gen), int(pro), len(prompts))
PY
)
read -r gen_tokens prompt_tokens captured <<< "$tokens"
[ "$captured" -eq "$n" ] || { echo "captured $captured prompts, expected $n" >&2; exit 1; }

timed() { # LOG COMMAND...: seconds the command took (the script stops if it fails)
  local log=$1 s e; shift
  s=$(date +%s.%N)
  "$@" > "$log" 2>&1 || { echo "failed: $* (see $log)" >&2; exit 1; }
  e=$(date +%s.%N)
  python3 -c "print($e-$s)"
}
t_emb=$(timed "$out/embedded.log" "$sdvp" generate "${common[@]}" --limit "$n" \
  --generator embedded --out "$out/embedded.jsonl")
t_emb1=$(timed "$out/embedded1.log" "$sdvp" generate "${common[@]}" --limit 1 \
  --generator embedded --out "$out/embedded1.jsonl")
t_loc=$(timed "$out/local.log" "$sdvp" generate "${common[@]}" --limit "$n" --generator local \
  --checkpoint "$ckpt" --resamples 0 --max-tokens "$gen_tokens" --out "$out/local.jsonl")
t_loc1=$(timed "$out/local1.log" "$sdvp" generate "${common[@]}" --limit 1 --generator local \
  --checkpoint "$ckpt" --resamples 0 --max-tokens "$gen_tokens" --out "$out/local1.jsonl")
python3 - "$n" "$shape" "$prompt_tokens" "$gen_tokens" "$t_emb" "$t_emb1" "$t_loc" "$t_loc1" <<'PY'
import sys
n, shape = int(sys.argv[1]), sys.argv[2]
pt, gt = int(sys.argv[3]), int(sys.argv[4])
emb, emb1, loc, loc1 = map(float, sys.argv[5:9])
per = lambda total, one: (total - one) / (n - 1) if n > 1 else float("nan")
print(f"# Program generation latency, {n} test questions, 2 cores\n")
print("| generator | process, all questions (s) | process, 1 question (s) | per question, load excluded (s) |")
print("|---|---|---|---|")
print(f"| embedded (weights/generator) | {emb:.2f} | {emb1:.2f} | {per(emb, emb1):.3f} |")
print(f"| local {shape} (random weights) | {loc:.2f} | {loc1:.2f} | {per(loc, loc1):.2f} |")
print(f"\nlocal prompt: median {pt} tokens; decoding capped at {gt} tokens (gold programs' median)")
print("in the shape's tokenizer. Per question = (all − one) / (N − 1): the process start and")
print("model loading cancel out.")
PY
