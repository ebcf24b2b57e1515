#!/usr/bin/env python3
"""Build the tiny random checkpoints the `local` generator backend is tested against.

Writes crates/generate/tests/fixtures/qwen2_tiny/ (and likewise llama_tiny/, a Llama 3 with
its header-token chat template and llama3 rope scaling):
  config.json, model.safetensors      a 2-layer, hidden-32 model with random weights
  tokenizer.json, tokenizer_config.json
                                      a byte-level BPE trained here on a few program lines,
                                      with the family's special tokens and chat template
  expected.json                       the chat prompt, its token ids as the reference
                                      tokenizer + template produce them, the logits of the
                                      first generated position, and the greedy token ids

The Rust test (crates/generate/tests/local_qwen2.rs, feature `local`) must reproduce the
prompt ids and the greedy ids exactly. Weights are drawn with a larger spread than the
usual init so the logits are well separated and greedy decoding does not hinge on float
rounding differences between PyTorch and candle.

Usage: python3 tools/make_fixture_qwen2.py   (needs torch, transformers, tokenizers)
"""

import json
import os

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

FIXTURES = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "crates", "generate", "tests", "fixtures",
)
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eot_id|>",
]
# Llama 3's template, less the tool-use and date preamble parts: bos, then header-token turns
# with trimmed contents.
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "BOX0=LOC(image=IMAGE,object='red cube')",
    "ANSWER0=COUNT(box=BOX0)",
    "FINAL_RESULT=RESULT(var=ANSWER0)",
    "IMAGE0=CROP(image=IMAGE,box=BOX0)",
    "ANSWER1=VQA(image=IMAGE0,question='What color is the ball?')",
    "def execute_command(image):\n    patch = ImagePatch(image)\n    return patch.simple_query('How many?')",
    "Write a program that answers the question about the scene.",
    "Question: how many blue spheres are left of the green cylinder?",
]
N_NEW = 24
SEED = 1234


def build_tokenizer(specials):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tok


def qwen2_model(vocab, tok):
    return Qwen2ForCausalLM(Qwen2Config(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        max_window_layers=2,
        sliding_window=256,
        use_sliding_window=False,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        hidden_act="silu",
        bos_token_id=tok.token_to_id("<|endoftext|>"),
        eos_token_id=tok.token_to_id("<|im_end|>"),
        torch_dtype="float32",
    ))


def llama_model(vocab, tok):
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64,
        },
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        hidden_act="silu",
        bos_token_id=tok.token_to_id("<|begin_of_text|>"),
        eos_token_id=[tok.token_to_id("<|end_of_text|>"), tok.token_to_id("<|eot_id|>")],
        torch_dtype="float32",
    ))


KINDS = {
    # name: (specials, chat template, eos token, bos token, pad token, model builder)
    "qwen2_tiny": (QWEN_SPECIALS, CHATML, "<|im_end|>", None, "<|endoftext|>", qwen2_model),
    "llama_tiny": (LLAMA_SPECIALS, LLAMA3, "<|eot_id|>", "<|begin_of_text|>",
                   "<|end_of_text|>", llama_model),
}


def build(name):
    specials, template, eos_token, bos_token, pad_token, make_model = KINDS[name]
    out_dir = os.path.join(FIXTURES, name)
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    raw = build_tokenizer(specials)
    raw.save(os.path.join(out_dir, "tokenizer.json"))
    tok = PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(out_dir, "tokenizer.json"),
        eos_token=eos_token,
        bos_token=bos_token,
        pad_token=pad_token,
    )
    tok.chat_template = template
    tok_config = {
        "chat_template": template,
        "eos_token": eos_token,
        "pad_token": pad_token,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    if bos_token:
        tok_config["bos_token"] = bos_token
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=1)

    vocab = raw.get_vocab_size()
    model = make_model(vocab, raw).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
            if pname.endswith(".bias"):
                p.mul_(0.5)
    model.save_pretrained(out_dir, safe_serialization=True)
    # transformers writes its own generation_config.json; the Rust side needs none.
    gen_cfg = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)

    # The user text ends in a newline, as the project's prompts do ("Program:\n"): Llama 3's
    # template trims it, ChatML keeps it.
    system = "Write a program that answers the question about the scene."
    user = "Question: how many blue spheres are left of the green cylinder?\nProgram:\n"
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]
    prompt_text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = raw.encode(prompt_text, add_special_tokens=False).ids
    ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        first_logits = model(ids).logits[0, -1].tolist()
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=N_NEW,
            min_new_tokens=N_NEW,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=raw.token_to_id(pad_token),
        )
    greedy = out[0, len(prompt_ids):].tolist()
    top = sorted(first_logits, reverse=True)
    expected = {
        "system": system,
        "user": user,
        "prompt_text": prompt_text,
        "prompt_ids": prompt_ids,
        "first_logits": first_logits,
        "greedy_ids": greedy,
        "greedy_text": raw.decode(greedy, skip_special_tokens=True),
        "first_step_margin": top[0] - top[1],
    }
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f)
    total = sum(os.path.getsize(os.path.join(out_dir, n)) for n in os.listdir(out_dir))
    print(f"wrote {out_dir}: vocab {vocab}, {len(prompt_ids)} prompt ids, greedy {greedy}, "
          f"first-step margin {top[0] - top[1]:.4f}, {total} bytes")


def main():
    for name in KINDS:
        build(name)


if __name__ == "__main__":
    main()
