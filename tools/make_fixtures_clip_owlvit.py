#!/usr/bin/env python3
"""Parity fixtures for the Rust CLIP and OWL-ViT (crates/models/src/{clip,owlvit}.rs).

Builds each architecture with random weights using Hugging Face transformers, saves
config.json, model.safetensors, tokenizer.json, inputs and reference outputs (and the
gradients of a simple loss) so the Rust tests can compare without Python.

    python3 tools/make_fixtures_clip_owlvit.py              # tiny -> crates/models/tests/fixtures/
    python3 tools/make_fixtures_clip_owlvit.py --real-size  # base-patch32 shapes -> tools/real_size/

Needs: torch, transformers (5.x), safetensors, tokenizers, pillow.
"""

import argparse
import json
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, processors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = (
    "a photo of the an red green blue yellow purple gray small large big tiny cube sphere "
    "cylinder cone metal rubber shiny matte left right behind front on under is there any "
    "how many what color shape object thing cat dog person car"
).split()


def tiny_tokenizer(vocab_size):
    """Word-level tokenizer: id 0 is the pad '!', the two last ids are BOS and EOS."""
    vocab = {"!": 0, "[UNK]": 1}
    for w in WORDS:
        vocab[w] = len(vocab)
    assert len(vocab) <= vocab_size - 2
    vocab["<|startoftext|>"] = vocab_size - 2
    vocab["<|endoftext|>"] = vocab_size - 1
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", vocab_size - 2), ("<|endoftext|>", vocab_size - 1)],
    )
    return tok


def encode(tok, texts, max_len):
    """Pads with id 0 to max_len (truncating before EOS), returns ids and attention mask."""
    ids, mask = [], []
    for t in texts:
        e = tok.encode(t).ids
        if len(e) > max_len:
            e = e[: max_len - 1] + [e[-1]]
        ids.append(e + [0] * (max_len - len(e)))
        mask.append([1] * len(e) + [0] * (max_len - len(e)))
    return torch.tensor(ids, dtype=torch.int64), torch.tensor(mask, dtype=torch.int64)


def test_image():
    """A smooth 50x37 RGB test image (non-square, so resize and crop both matter)."""
    h, w = 37, 50
    y, x = np.mgrid[0:h, 0:w]
    r = 127.5 + 127.5 * np.sin(x / 5.0)
    g = 255.0 * y / (h - 1)
    b = 127.5 + 127.5 * np.cos((x + y) / 7.0)
    arr = np.stack([r, g, b], -1).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def save_dir(out, model, config_dict, tensors, tok):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config_dict, f, indent=1, sort_keys=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    # Buffers that transformers recomputes are not part of real checkpoints either.
    sd = {k: v for k, v in sd.items() if not k.endswith("position_ids") and k != "box_bias"}
    save_file(sd, os.path.join(out, "model.safetensors"))
    save_file({k: v.detach().contiguous() for k, v in tensors.items()},
              os.path.join(out, "reference.safetensors"))
    if tok is not None:
        tok.save(os.path.join(out, "tokenizer.json"))


def grads_of(model, names):
    params = dict(model.named_parameters())
    return {"grad." + n: params[n].grad.clone() for n in names}


def make_clip(out, real):
    from transformers import CLIPConfig, CLIPModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    torch.manual_seed(0)
    if real:
        cfg = CLIPConfig()
        tok, vocab, max_len, img = None, cfg.text_config.vocab_size, 77, 224
        bos, eos = vocab - 2, vocab - 1
    else:
        vocab, max_len, img = 64, 12, 32
        cfg = CLIPConfig(
            text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=2,
                             max_position_embeddings=max_len, eos_token_id=vocab - 1,
                             bos_token_id=vocab - 2, pad_token_id=0, hidden_act="quick_gelu"),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=2, image_size=img, patch_size=8,
                               hidden_act="gelu"),
            projection_dim=16,
        )
        tok = tiny_tokenizer(vocab)
        bos, eos = vocab - 2, vocab - 1
    cfg._attn_implementation = "eager"
    model = CLIPModel(cfg).eval()
    # Non-trivial norms and scale, so the parity test exercises them.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.add_(0.1 * torch.randn_like(p))
        model.logit_scale.fill_(2.0)
    if tok is not None:
        texts = ["a photo of a red cube", "blue sphere", "how many small metal cylinder is there"]
        input_ids, attention_mask = encode(tok, texts, max_len)
    else:
        input_ids = torch.zeros(3, 20, dtype=torch.int64)
        attention_mask = torch.zeros(3, 20, dtype=torch.int64)
        for i, n in enumerate([7, 12, 20]):
            input_ids[i, 0] = bos
            input_ids[i, 1:n - 1] = torch.randint(1, vocab - 2, (n - 2,))
            input_ids[i, n - 1] = eos
            attention_mask[i, :n] = 1
    pixel_values = torch.randn(2, 3, img, img)
    pixel_values.requires_grad_(False)
    outs = model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values)
    w = torch.linspace(-1.0, 1.0, outs.logits_per_image.numel()).reshape(outs.logits_per_image.shape)
    loss = (outs.logits_per_image * w).sum() + outs.text_embeds.pow(2).sum() * 0.0
    loss.backward()
    names = ["text_projection.weight", "visual_projection.weight", "logit_scale",
             "vision_model.embeddings.patch_embedding.weight",
             "text_model.encoder.layers.0.self_attn.q_proj.weight",
             "vision_model.pre_layrnorm.weight", "text_model.embeddings.token_embedding.weight"]
    tensors = dict(
        input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
        logits_per_image=outs.logits_per_image, text_embeds=outs.text_embeds,
        image_embeds=outs.image_embeds, loss=loss.reshape(1),
        text_last_hidden=outs.text_model_output.last_hidden_state,
        vision_last_hidden=outs.vision_model_output.last_hidden_state,
        **grads_of(model, names),
    )
    if not real:
        proc = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
        image = test_image()
        os.makedirs(out, exist_ok=True)
        image.save(os.path.join(out, "image.png"))
        tensors["processed_pixel_values"] = proc(images=image, return_tensors="pt")["pixel_values"]
        with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
            json.dump(proc.to_dict(), f, indent=1, sort_keys=True, default=str)
    save_dir(out, model, cfg.to_dict(), tensors, tok)


def make_owlvit(out, real):
    from transformers import OwlViTConfig, OwlViTForObjectDetection
    from transformers.models.owlvit.image_processing_pil_owlvit import OwlViTImageProcessorPil

    torch.manual_seed(1)
    if real:
        cfg = OwlViTConfig()
        tok, vocab, max_len, img = None, cfg.text_config.vocab_size, 16, 768
    else:
        vocab, max_len, img = 64, 16, 32
        cfg = OwlViTConfig(
            text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=2,
                             max_position_embeddings=max_len, eos_token_id=vocab - 1,
                             bos_token_id=vocab - 2, pad_token_id=0),
            vision_config=dict(hidden_size=24, intermediate_size=48, num_hidden_layers=2,
                               num_attention_heads=2, image_size=img, patch_size=8),
            projection_dim=32,
        )
        tok = tiny_tokenizer(vocab)
    bos, eos = vocab - 2, vocab - 1
    cfg._attn_implementation = "eager"
    model = OwlViTForObjectDetection(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.add_(0.1 * torch.randn_like(p))
            # At 768 wide, the default init drives the heads' outputs into the thousands
            # (box pre-sigmoid ~6000), where f32 rounding alone moves boxes by 1e-3; trained
            # checkpoints have O(1) head outputs, so use a trained-like scale.
            if real and n.startswith(("box_head.", "class_head.")) and n.endswith("weight"):
                p.normal_(0.0, 0.02)
    # Two images, two queries each; the last query is padding (id 0 first -> masked).
    if tok is not None:
        input_ids, attention_mask = encode(tok, ["red cube", "a photo of a cat", "blue sphere", "x"], max_len)
    else:
        input_ids = torch.zeros(4, max_len, dtype=torch.int64)
        attention_mask = torch.zeros(4, max_len, dtype=torch.int64)
        for i, n in enumerate([5, 9, 16]):
            input_ids[i, 0] = bos
            input_ids[i, 1:n - 1] = torch.randint(1, vocab - 2, (n - 2,))
            input_ids[i, n - 1] = eos
            attention_mask[i, :n] = 1
    input_ids[3] = 0
    attention_mask[3] = 0
    attention_mask[3, 0] = 1
    pixel_values = torch.randn(2, 3, img, img)
    outs = model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values)
    valid = outs.logits > -1e30
    w = torch.linspace(-1.0, 1.0, outs.logits.numel()).reshape(outs.logits.shape)
    wb = torch.linspace(1.0, -1.0, outs.pred_boxes.numel()).reshape(outs.pred_boxes.shape)
    loss = (torch.where(valid, outs.logits, 0.0) * w).sum() + (outs.pred_boxes * wb).sum()
    loss.backward()
    names = ["box_head.dense0.weight", "class_head.dense0.weight", "class_head.logit_scale.weight",
             "layer_norm.weight", "owlvit.vision_model.post_layernorm.weight",
             "owlvit.text_projection.weight",
             "owlvit.vision_model.embeddings.patch_embedding.weight"]
    tensors = dict(
        input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
        logits=outs.logits, pred_boxes=outs.pred_boxes, text_embeds=outs.text_embeds,
        image_embeds=outs.image_embeds, class_embeds=outs.class_embeds, loss=loss.reshape(1),
        **grads_of(model, names),
    )
    if not real:
        proc = OwlViTImageProcessorPil(size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32})
        os.makedirs(out, exist_ok=True)
        test_image().save(os.path.join(out, "image.png"))
        tensors["processed_pixel_values"] = proc(images=test_image(), return_tensors="pt")["pixel_values"]
        with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
            json.dump(proc.to_dict(), f, indent=1, sort_keys=True, default=str)
        # Post-processing reference (threshold 0.0 keeps everything; no NMS in transformers).
        res = proc.post_process_object_detection(outs, threshold=0.0, target_sizes=[(37, 50), (37, 50)])
        tensors["post_scores_0"] = res[0]["scores"].detach()
        tensors["post_boxes_0"] = res[0]["boxes"].detach()
        tensors["post_labels_0"] = res[0]["labels"].detach()
    save_dir(out, model, cfg.to_dict(), tensors, tok)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real-size", action="store_true", help="base-patch32 shapes into tools/real_size/")
    args = ap.parse_args()
    if args.real_size:
        base = os.path.join(ROOT, "tools", "real_size")
    else:
        base = os.path.join(ROOT, "crates", "models", "tests", "fixtures")
    make_clip(os.path.join(base, "clip"), args.real_size)
    make_owlvit(os.path.join(base, "owlvit"), args.real_size)
    print("wrote fixtures under", base)


if __name__ == "__main__":
    main()
