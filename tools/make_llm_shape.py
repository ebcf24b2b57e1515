#!/usr/bin/env python3
"""Write a checkpoint with a real small LLM's shape and random weights, for latency only.

No LLM checkpoint can be downloaded here, but the time a decoder takes per token depends on
its shape, not on its weights. This writes a Hugging Face directory the `local` generator
backend loads (`--generator local:DIR`):

  config.json             the published config of the chosen model (layers, widths, heads,
                          KV heads, vocabulary, tied embeddings), float32
  model.safetensors       every tensor the architecture has, drawn N(0, 0.02) (norms 1)
  tokenizer.json,         a byte-level BPE with `--vocab` entries trained here on the Python
  tokenizer_config.json   standard library's sources (code and English docstrings: text like
                          a program prompt) plus the model family's special tokens and its
                          ChatML template. It is not the model's own tokenizer, so prompt
                          token counts are an estimate; the bench prints them.

Random weights never choose the end token, so decoding runs to `--max-tokens`: the bench
sets that to the length of the gold programs, in this tokenizer.

Usage: python3 tools/make_llm_shape.py --shape qwen2.5-0.5b --out DIR [--vocab 32000]
Needs numpy, safetensors and tokenizers (pip).
"""

import argparse
import glob
import json
import os
import sysconfig

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

# Published configs (config.json on the Hugging Face hub), the fields the shape depends on.
QWEN25_05B = dict(
    architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=896,
    intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
    num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
    hidden_act="silu", use_sliding_window=False, sliding_window=32768,
    max_window_layers=24, qkv_bias=True,
)
SHAPES = {
    "qwen2.5-0.5b": QWEN25_05B,
    # Same family: only the widths, depth and heads differ.
    "qwen2.5-1.5b": dict(
        QWEN25_05B, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
        num_attention_heads=12, max_window_layers=28,
    ),
}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tensors(c, rng):
    h, inter, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = h // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * hd

    def normal(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    out = {"model.embed_tokens.weight": normal(v, h), "model.norm.weight": np.ones(h, np.float32)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = np.ones(h, np.float32)
        out[p + "post_attention_layernorm.weight"] = np.ones(h, np.float32)
        for name, rows in (("q_proj", h), ("k_proj", kv), ("v_proj", kv)):
            out[p + f"self_attn.{name}.weight"] = normal(rows, h)
            if c["qkv_bias"]:
                out[p + f"self_attn.{name}.bias"] = normal(rows)
        out[p + "self_attn.o_proj.weight"] = normal(h, h)
        out[p + "mlp.gate_proj.weight"] = normal(inter, h)
        out[p + "mlp.up_proj.weight"] = normal(inter, h)
        out[p + "mlp.down_proj.weight"] = normal(h, inter)
    if not c["tie_word_embeddings"]:
        out["lm_head.weight"] = normal(v, h)
    return out


def tokenizer(vocab):
    lib = sysconfig.get_paths()["stdlib"]
    files = sorted(glob.glob(os.path.join(lib, "*.py")))
    if not files:
        raise SystemExit(f"no Python sources under {lib} to train the tokenizer on")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train(files, trainer=trainer)
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    c = dict(SHAPES[a.shape])
    if not 300 <= a.vocab <= c["vocab_size"]:
        raise SystemExit(f"--vocab {a.vocab}: must be in 300..={c['vocab_size']}")
    os.makedirs(a.out, exist_ok=True)
    tok = tokenizer(a.vocab)
    tok.save(os.path.join(a.out, "tokenizer.json"))
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": CHATML, "eos_token": "<|im_end|>",
                   "pad_token": "<|endoftext|>", "tokenizer_class": "PreTrainedTokenizerFast"},
                  f, indent=1)
    qkv_bias = c.pop("qkv_bias")
    config = dict(c, bos_token_id=tok.token_to_id("<|endoftext|>"),
                  eos_token_id=tok.token_to_id("<|im_end|>"), torch_dtype="float32",
                  attention_dropout=0.0, use_cache=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    weights = tensors(dict(c, qkv_bias=qkv_bias), np.random.default_rng(a.seed))
    save_file(weights, os.path.join(a.out, "model.safetensors"))
    n = sum(w.size for w in weights.values())
    print(f"{a.out}: {a.shape}, {n / 1e6:.1f}M parameters, tokenizer of {tok.get_vocab_size()}")


if __name__ == "__main__":
    main()
