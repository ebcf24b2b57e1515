#!/usr/bin/env python3
"""Check `sdvp model run` against transformers on random checkpoints of random small configs.

For each architecture (blip-vqa, clip, owlvit, dpt) and each of --configs random draws of
widths, depths, heads, patch and image sizes, this builds a randomly initialised model with
transformers, saves it with `save_pretrained` (plus a tokenizer.json and the image
processor's preprocessor_config.json), runs `sdvp model run --json` on a test image, and
compares with transformers' own outputs: BLIP greedy ids exactly and the first-step top-5
logits, CLIP logits_per_image, OWL-ViT top-10 patch scores and pixel boxes, DPT depth
statistics. Prints the max abs difference per check and exits 1 if any exceeds --tol.

    python3 tools/check_model_run.py --sdvp target/debug/sdvp --configs 4
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures_blip import make_tokenizer as blip_tokenizer  # noqa: E402
from make_fixtures_clip_owlvit import tiny_tokenizer, test_image  # noqa: E402

QUESTIONS = ["what color is the cube?", "how many spheres are there?", "which side is it?"]
TEXTS = ["a photo of a red cube", "blue sphere", "a small metal cylinder", "cat"]


def randomize(model, std, norm_std=0.1):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n.lower():
                p.add_(norm_std * torch.randn_like(p))
            elif n.endswith("bias"):
                p.copy_(torch.randn_like(p) * std)
            elif p.dim() > 1:
                p.copy_(torch.randn_like(p) * std)


def run_sdvp(exe, arch, d, image, texts):
    cmd = [exe, "model", "run", "--arch", arch, "--weights", d, "--json"]
    if image is not None:
        cmd += ["--image", image]
    for t in texts:
        cmd += ["--text", t]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr}")
    return json.loads(out.stdout)


def heads_width(rng, choices=(1, 2, 4)):
    h = rng.choice(choices)
    return h, h * rng.choice([8, 12, 16])


def check_blip(exe, rng, d, image):
    from transformers import BlipConfig, BlipForQuestionAnswering, BlipImageProcessor

    tok, vocab = blip_tokenizer()
    # The VQA decoder cross-attends to the question encoding with the vision width, so
    # BLIP VQA needs one width for both towers (transformers fails otherwise too).
    th, tw = heads_width(rng)
    vh, vw = th, tw
    size, patch = rng.choice([(32, 8), (48, 16), (64, 16), (40, 8)])
    text = dict(vocab_size=vocab, hidden_size=tw, intermediate_size=2 * tw,
                num_hidden_layers=rng.randint(1, 3), num_attention_heads=th,
                max_position_embeddings=32, bos_token_id=5, sep_token_id=3, eos_token_id=3,
                pad_token_id=0)
    vision = dict(hidden_size=vw, intermediate_size=2 * vw, num_hidden_layers=rng.randint(1, 3),
                  num_attention_heads=vh, image_size=size, patch_size=patch)
    model = BlipForQuestionAnswering(BlipConfig(text_config=text, vision_config=vision)).eval()
    randomize(model, 0.15)
    model.save_pretrained(d)
    tok.save(os.path.join(d, "tokenizer.json"))
    proc = BlipImageProcessor(size={"height": size, "width": size})
    proc.save_pretrained(d)
    q = rng.choice(QUESTIONS)
    got = run_sdvp(exe, "blip-vqa", d, image, [q])
    pixels = proc(Image.open(image).convert("RGB"), return_tensors="pt")["pixel_values"]
    ids = torch.tensor([tok.encode(q).ids])
    with torch.no_grad():
        ref_ids = model.generate(input_ids=ids, pixel_values=pixels, max_length=20)[0].tolist()
        img = model.vision_model(pixel_values=pixels).last_hidden_state
        qe = model.text_encoder(input_ids=ids, attention_mask=torch.ones_like(ids),
                                encoder_hidden_states=img).last_hidden_state
        logits = model.text_decoder(input_ids=torch.tensor([[5]]), encoder_hidden_states=qe,
                                    encoder_attention_mask=torch.ones_like(ids)).logits[0, -1]
    # transformers pads a finished answer; ours ends at [SEP] (an unfinished one is as is).
    if 3 in ref_ids:
        ref_ids = ref_ids[: ref_ids.index(3) + 1]
    top = torch.topk(logits, 5)
    diffs = {"ids_equal": 0.0 if got["token_ids"] == ref_ids else float("inf")}
    ours = {e["id"]: e["logit"] for e in got["first_step_top5"]}
    diffs["top5_ids_equal"] = 0.0 if list(ours) == top.indices.tolist() else float("inf")
    diffs["top5_logits"] = max(abs(ours.get(i, float("inf")) - v)
                               for i, v in zip(top.indices.tolist(), top.values.tolist()))
    return diffs, f"text {tw}/{text['num_hidden_layers']}L vision {vw}/{vision['num_hidden_layers']}L {size}px/{patch}"


def check_clip(exe, rng, d, image):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    vocab = 64
    th, tw = heads_width(rng)
    vh, vw = heads_width(rng)
    size, patch = rng.choice([(32, 8), (48, 16), (64, 16), (56, 8)])
    cfg = CLIPConfig(
        text_config=dict(vocab_size=vocab, hidden_size=tw, intermediate_size=2 * tw,
                         num_hidden_layers=rng.randint(1, 3), num_attention_heads=th,
                         max_position_embeddings=16, eos_token_id=vocab - 1,
                         bos_token_id=vocab - 2, pad_token_id=0,
                         hidden_act=rng.choice(["quick_gelu", "gelu"])),
        vision_config=dict(hidden_size=vw, intermediate_size=2 * vw,
                           num_hidden_layers=rng.randint(1, 3), num_attention_heads=vh,
                           image_size=size, patch_size=patch),
        projection_dim=rng.choice([8, 16, 32]))
    model = CLIPModel(cfg).eval()
    randomize(model, 0.1)
    with torch.no_grad():
        model.logit_scale.fill_(2.0)
    model.save_pretrained(d)
    tok = tiny_tokenizer(vocab)
    tok.save(os.path.join(d, "tokenizer.json"))
    proc = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    proc.save_pretrained(d)
    texts = rng.sample(TEXTS, 3)
    got = run_sdvp(exe, "clip", d, image, texts)
    pixels = proc(Image.open(image).convert("RGB"), return_tensors="pt")["pixel_values"]
    enc = [tok.encode(t).ids for t in texts]
    n = max(map(len, enc))
    ids = torch.tensor([e + [0] * (n - len(e)) for e in enc])
    mask = torch.tensor([[1] * len(e) + [0] * (n - len(e)) for e in enc])
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits_per_image[0]
    return {"logits_per_image": float(np.abs(np.array(got["logits_per_image"]) - ref.numpy()).max())}, \
        f"text {tw} vision {vw} {size}px/{patch} act {cfg.text_config.hidden_act}"


def check_owlvit(exe, rng, d, image):
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTImageProcessor

    vocab = 64
    th, tw = heads_width(rng)
    vh, vw = heads_width(rng)
    size, patch = rng.choice([(32, 8), (48, 16), (64, 16), (48, 8)])
    cfg = OwlViTConfig(
        text_config=dict(vocab_size=vocab, hidden_size=tw, intermediate_size=2 * tw,
                         num_hidden_layers=rng.randint(1, 3), num_attention_heads=th,
                         max_position_embeddings=16, eos_token_id=vocab - 1,
                         bos_token_id=vocab - 2, pad_token_id=0),
        vision_config=dict(hidden_size=vw, intermediate_size=2 * vw,
                           num_hidden_layers=rng.randint(1, 3), num_attention_heads=vh,
                           image_size=size, patch_size=patch),
        # The class head maps patches to the text width and compares them with projected
        # queries, so OWL-ViT needs projection_dim == text hidden size (as every release).
        projection_dim=tw)
    model = OwlViTForObjectDetection(cfg).eval()
    randomize(model, 0.05)
    model.save_pretrained(d)
    tok = tiny_tokenizer(vocab)
    tok.save(os.path.join(d, "tokenizer.json"))
    proc = OwlViTImageProcessor(size={"height": size, "width": size},
                                crop_size={"height": size, "width": size}, do_center_crop=False)
    proc.save_pretrained(d)
    queries = rng.sample(TEXTS, 2)
    got = run_sdvp(exe, "owlvit", d, image, queries)
    im = Image.open(image).convert("RGB")
    pixels = proc(im, return_tensors="pt")["pixel_values"]
    enc = [tok.encode(t).ids for t in queries]
    ids = torch.tensor([e + [0] * (16 - len(e)) for e in enc])
    mask = torch.tensor([[1] * len(e) + [0] * (16 - len(e)) for e in enc])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, pixel_values=pixels)
    w, h = im.size
    ds, db = 0.0, 0.0
    for j, det in enumerate(got["detections"]):
        s = torch.sigmoid(out.logits[0, :, j])
        order = torch.argsort(-s, stable=True)[:10]
        b = out.pred_boxes[0, order]
        corners = torch.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2,
                               b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], -1)
        corners = corners * torch.tensor([w, h, w, h])
        ds = max(ds, float(np.abs(np.array(det["scores"]) - s[order].numpy()).max()))
        db = max(db, float(np.abs(np.array(det["boxes"]) - corners.numpy()).max()))
    return {"scores": ds, "boxes_px": db}, f"text {tw} vision {vw} {size}px/{patch}"


def check_dpt(exe, rng, d, image):
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    heads, width = heads_width(rng, (2, 4))
    layers = rng.choice([4, 8])
    size, patch = rng.choice([(32, 8), (64, 16), (48, 8)])
    neck = rng.choice([[8, 16, 24, 32], [16, 16, 32, 32]])
    idx = sorted(rng.sample(range(layers), 4))
    cfg = DPTConfig(hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                    intermediate_size=2 * width, image_size=size, patch_size=patch,
                    backbone_out_indices=idx, neck_hidden_sizes=neck,
                    fusion_hidden_size=rng.choice([16, 24]), head_in_index=-1,
                    readout_type=rng.choice(["project", "ignore", "add"]))
    model = DPTForDepthEstimation(cfg).eval()
    randomize(model, 0.05, 0.05)
    model.save_pretrained(d)
    proc = DPTImageProcessor(size={"height": size, "width": size})
    proc.save_pretrained(d)
    got = run_sdvp(exe, "dpt", d, image, [])
    pixels = proc(Image.open(image).convert("RGB"), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        depth = model(pixel_values=pixels).predicted_depth
    g = got["depth"]
    diffs = {"shape_equal": 0.0 if g["shape"] == list(depth.shape) else float("inf"),
             "mean": abs(g["mean"] - float(depth.mean())),
             "min": abs(g["min"] - float(depth.min())),
             "max": abs(g["max"] - float(depth.max()))}
    return diffs, f"{width}/{layers}L {size}px/{patch} neck {neck} readout {cfg.readout_type}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sdvp", default="target/release/sdvp")
    ap.add_argument("--configs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    worst, checks, failed = 0.0, 0, []
    with tempfile.TemporaryDirectory() as tmp:
        image = os.path.join(tmp, "image.png")
        test_image().save(image)
        for name, fn in [("blip-vqa", check_blip), ("clip", check_clip),
                         ("owlvit", check_owlvit), ("dpt", check_dpt)]:
            for k in range(args.configs):
                d = os.path.join(tmp, f"{name}-{k}")
                diffs, desc = fn(args.sdvp, rng, d, image)
                for key, v in diffs.items():
                    checks += 1
                    worst = max(worst, v) if np.isfinite(v) else worst
                    if not v <= args.tol:
                        failed.append(f"{name} #{k} ({desc}) {key}: {v}")
                print(f"{name:8} #{k} {desc:55} " + " ".join(f"{k2}={v:.2e}" for k2, v in diffs.items()))
    print(f"{checks} checks, worst finite diff {worst:.2e}, {len(failed)} over {args.tol}")
    for f in failed:
        print("FAIL", f)
    sys.exit(1 if failed or checks == 0 else 0)


if __name__ == "__main__":
    main()
