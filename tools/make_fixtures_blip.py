#!/usr/bin/env python3
"""Build BLIP VQA parity fixtures with Hugging Face transformers.

Default: a tiny random BlipForQuestionAnswering (hidden 32, 2 layers, 2 heads, 32x32
images, 8x8 patches, a 40-word WordPiece vocabulary) written to
crates/models/tests/fixtures/blip/: config.json, model.safetensors, tokenizer.json,
reference.safetensors (inputs and reference outputs) and reference.json (token ids).

--real-size: blip-vqa-base shapes (random weights) into tools/real_size/blip/
(git-ignored), for the ignored Rust test `real_size_parity`.

Weights are drawn with a larger spread than transformers' init (std 0.02) so that
logits are far from uniform and generation is decisive, making the checks sharper.
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BlipConfig, BlipForQuestionAnswering

WORDS = ("what color is the shape left right of cube sphere cylinder red blue green "
         "yellow big small how many are there yes no one two three metal rubber which "
         "side square circle it a").split()


def make_tokenizer():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    vocab = {t: i for i, t in enumerate(specials + WORDS + ["?", "."])}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return tok, len(vocab)


def encode(tok, texts, dec=False):
    ids = [tok.encode(t).ids for t in texts]
    if dec:  # answers start with [DEC] instead of [CLS], as BLIP's VQA training does
        ids = [[5] + x[1:] for x in ids]
    n = max(len(x) for x in ids)
    mask = [[1] * len(x) + [0] * (n - len(x)) for x in ids]
    ids = [x + [0] * (n - len(x)) for x in ids]
    return torch.tensor(ids), torch.tensor(mask)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--real-size", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tok, vocab = make_tokenizer()
    if args.real_size:
        out = os.path.join(root, "tools", "real_size", "blip")
        text = dict(vocab_size=vocab, num_attention_heads=12, bos_token_id=5, sep_token_id=3,
                    eos_token_id=3, pad_token_id=0)
        vision = dict()
        image, std, wstd = 384, 0.02, 0.02
    else:
        out = os.path.join(root, "crates", "models", "tests", "fixtures", "blip")
        text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2, max_position_embeddings=32, bos_token_id=5,
                    sep_token_id=3, eos_token_id=3, pad_token_id=0)
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, image_size=32, patch_size=8)
        image, std, wstd = 32, 0.1, 0.15
    os.makedirs(out, exist_ok=True)
    config = BlipConfig(text_config=text, vision_config=vision)
    model = BlipForQuestionAnswering(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn_like(p) * std)
            elif "LayerNorm" in name or "layer_norm" in name or "layernorm" in name:
                p.copy_(1.0 + torch.randn_like(p) * std)
            else:
                p.copy_(torch.randn_like(p) * wstd)
    model.save_pretrained(out, safe_serialization=True)
    tok.save(os.path.join(out, "tokenizer.json"))

    pixels = torch.randn(2, 3, image, image)
    q_ids, q_mask = encode(tok, ["what color is the cube?", "how many spheres are there?"])
    a_ids, a_mask = encode(tok, ["red", "two metal"], dec=True)
    c_ids, c_mask = encode(tok, ["red", "blue", "two metal", "no"], dec=True)
    g_ids, g_mask = encode(tok, ["what color is it?", "which side is it?"])
    ref, meta = {}, {}
    ref.update(pixel_values=pixels, q_ids=q_ids, q_mask=q_mask, a_ids=a_ids, a_mask=a_mask,
               c_ids=c_ids, c_mask=c_mask, g_ids=g_ids)
    with torch.no_grad():
        img = model.vision_model(pixel_values=pixels).last_hidden_state
        q = model.text_encoder(input_ids=q_ids, attention_mask=q_mask, encoder_hidden_states=img,
                               encoder_attention_mask=torch.ones(img.shape[:-1], dtype=torch.long)).last_hidden_state
        logits = model.text_decoder(input_ids=a_ids, attention_mask=a_mask, encoder_hidden_states=q,
                                    encoder_attention_mask=q_mask).logits
        ref.update(vision_embeds=img, question_embeds=q, decoder_logits=logits)
        # Ranking: sum of log p of every kept token after [DEC], per question x candidate.
        b, n = q.shape[0], c_ids.shape[0]
        qq = q.repeat_interleave(n, 0)
        qm = q_mask.repeat_interleave(n, 0)
        cc, cm = c_ids.repeat(b, 1), c_mask.repeat(b, 1)
        cl = model.text_decoder(input_ids=cc, attention_mask=cm, encoder_hidden_states=qq,
                                encoder_attention_mask=qm).logits
        lp = torch.log_softmax(cl[:, :-1], -1).gather(-1, cc[:, 1:, None])[..., 0]
        ref["rank_scores"] = (lp * cm[:, 1:]).sum(-1).view(b, n)
        meta["greedy"] = model.generate(input_ids=g_ids, pixel_values=pixels, max_length=8).tolist()
        meta["beam"] = model.generate(input_ids=g_ids, pixel_values=pixels, max_length=8,
                                      num_beams=3).tolist()
    # Loss with label smoothing 0.1 and padding ignored (-100), and its gradients.
    model.zero_grad()
    img = model.vision_model(pixel_values=pixels).last_hidden_state
    q = model.text_encoder(input_ids=q_ids, attention_mask=q_mask, encoder_hidden_states=img,
                           encoder_attention_mask=torch.ones(img.shape[:-1], dtype=torch.long)).last_hidden_state
    logits = model.text_decoder(input_ids=a_ids, attention_mask=a_mask, encoder_hidden_states=q,
                                encoder_attention_mask=q_mask).logits
    labels = a_ids.masked_fill(a_mask == 0, -100)[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab), labels.reshape(-1),
                                             ignore_index=-100, label_smoothing=0.1)
    loss.backward()
    ref["loss"] = loss.detach().reshape(1)
    params = dict(model.named_parameters())
    for name in ["vision_model.embeddings.patch_embedding.weight",
                 "vision_model.encoder.layers.0.self_attn.qkv.weight",
                 "text_encoder.encoder.layer.1.crossattention.self.key.weight",
                 "text_decoder.bert.embeddings.word_embeddings.weight",
                 "text_decoder.cls.predictions.bias",
                 "text_decoder.bert.encoder.layer.0.attention.output.LayerNorm.weight"]:
        ref["grad." + name] = params[name].grad.detach().clone()
    # transformers' own loss on unpadded answers (labels = decoder inputs), for the
    # convention check: its label smoothing comes from text_config.label_smoothing.
    with torch.no_grad():
        a1, _ = encode(tok, ["red", "blue"], dec=True)
        ref["hf_loss_ids"] = a1
        ref["hf_loss"] = model(input_ids=q_ids, pixel_values=pixels, attention_mask=q_mask,
                               labels=a1).loss.reshape(1)
        meta["hf_label_smoothing"] = float(getattr(model.text_decoder, "label_smoothing", 0.0))
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(out, meta)


if __name__ == "__main__":
    main()
