#!/usr/bin/env python3
"""Load the shipped program generator (weights/generator) in transformers and compare it
with `sdvp model run --arch llama` on world questions of every task and both styles.

Checks per question: the condition ids from the shipped tokenizer.json (through
PreTrainedTokenizerFast, special tokens placed as the generator's layout says), the top-5
logits after the condition, and the greedy program (token ids exactly). Prints the max abs
logit difference and the number of identical greedy programs; exits 1 on any mismatch
above --tol or any differing program.

    python3 tools/check_generator.py --sdvp target/release/sdvp --weights weights/generator \
        --world W [--n 4]
"""
import argparse
import json
import os
import sys

import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_model_run import run_sdvp  # noqa: E402


def condition(tok, task, style, question):
    ids = [tok.convert_tokens_to_ids("<s>"), tok.convert_tokens_to_ids(f"<task:{task}>"),
           tok.convert_tokens_to_ids(f"<style:{style}>")]
    ids += tok(question.strip(), add_special_tokens=False)["input_ids"]
    ids.append(tok.convert_tokens_to_ids("<program>"))
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sdvp", default="target/release/sdvp")
    ap.add_argument("--weights", default="weights/generator")
    ap.add_argument("--world", required=True)
    ap.add_argument("--n", type=int, default=4, help="questions per task and style")
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()
    model = LlamaForCausalLM.from_pretrained(a.weights).eval()
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(a.weights, "tokenizer.json"))
    eos = tok.convert_tokens_to_ids("</s>")
    worst, same, total, bad_ids = 0.0, 0, 0, 0
    for task in ["gqa-world", "nlvr-world", "attr-world"]:
        lines = open(os.path.join(a.world, task, "test.jsonl")).read().splitlines()[: a.n]
        for line in lines:
            q = json.loads(line)["question"]
            for style in ["step", "python"]:
                got = run_sdvp(a.sdvp, "llama", a.weights, None, [q, task, style])
                ids = condition(tok, task, style, q)
                bad_ids += ids != got["condition_ids"]
                x = torch.tensor([ids])
                with torch.no_grad():
                    logits = model(x).logits[0, -1]
                    gen = model.generate(x, max_new_tokens=400, do_sample=False,
                                         eos_token_id=eos, pad_token_id=0)[0, len(ids):].tolist()
                if eos in gen:
                    gen = gen[: gen.index(eos)]
                ours = {e["id"]: e["logit"] for e in got["first_step_top5"]}
                top = torch.topk(logits, 5)
                d = max(abs(ours.get(i, float("inf")) - v)
                        for i, v in zip(top.indices.tolist(), top.values.tolist()))
                worst = max(worst, d)
                same += gen == got["token_ids"]
                total += 1
    print(f"{total} generations compared: condition ids differ in {bad_ids}, "
          f"max |top-5 logit diff| {worst:.2e}, identical greedy programs {same}/{total}")
    sys.exit(0 if total > 0 and bad_ids == 0 and worst <= a.tol and same == total else 1)


if __name__ == "__main__":
    main()
