#!/usr/bin/env python3
"""Load each shipped student checkpoint of weights/ in transformers and compare its outputs
with `sdvp model run` on a few world images.

Checks: BLIP VQA greedy answer ids (exact) and first-step top-5 logits; CLIP
logits_per_image; OWL-ViT top-10 patch scores and pixel boxes per query; DPT depth map
statistics. The tokenizers and image processors are the shipped files themselves
(tokenizer.json through PreTrainedTokenizerFast, preprocessor_config.json through
AutoImageProcessor). Prints the max abs difference per check; exits 1 above --tol.

    python3 tools/check_shipped.py --sdvp target/release/sdvp --weights weights --world W
"""
import argparse
import glob
import os
import sys

import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_model_run import run_sdvp  # noqa: E402


def tok(d):
    return PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tokenizer.json"))


def check_blip(exe, d, image, question):
    from transformers import BlipForQuestionAnswering
    model = BlipForQuestionAnswering.from_pretrained(d).eval()
    proc = AutoImageProcessor.from_pretrained(d)
    t = tok(d)
    got = run_sdvp(exe, "blip-vqa", d, image, [question])
    pixels = proc(Image.open(image).convert("RGB"), return_tensors="pt")["pixel_values"]
    ids = torch.tensor([t(question)["input_ids"]])
    with torch.no_grad():
        ref = model.generate(input_ids=ids, pixel_values=pixels, max_length=10)[0].tolist()
        img = model.vision_model(pixel_values=pixels).last_hidden_state
        qe = model.text_encoder(input_ids=ids, attention_mask=torch.ones_like(ids),
                                encoder_hidden_states=img).last_hidden_state
        logits = model.text_decoder(input_ids=torch.tensor([[5]]), encoder_hidden_states=qe,
                                    encoder_attention_mask=torch.ones_like(ids)).logits[0, -1]
    if 3 in ref:
        ref = ref[: ref.index(3) + 1]
    top = torch.topk(logits, 5)
    ours = {e["id"]: e["logit"] for e in got["first_step_top5"]}
    return {
        "ids_equal": 0.0 if got["token_ids"] == ref else float("inf"),
        "top5_logits": max(abs(ours.get(i, float("inf")) - v)
                           for i, v in zip(top.indices.tolist(), top.values.tolist())),
    }, f"answer {got.get('answer')!r}"


def check_clip(exe, d, image, texts):
    from transformers import CLIPModel
    model = CLIPModel.from_pretrained(d).eval()
    proc = AutoImageProcessor.from_pretrained(d)
    t = tok(d)
    got = run_sdvp(exe, "clip", d, image, texts)
    pixels = proc(Image.open(image).convert("RGB"), return_tensors="pt")["pixel_values"]
    enc = [t(x)["input_ids"] for x in texts]
    n = max(map(len, enc))
    ids = torch.tensor([e + [0] * (n - len(e)) for e in enc])
    mask = torch.tensor([[1] * len(e) + [0] * (n - len(e)) for e in enc])
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits_per_image[0]
    best = texts[int(ref.argmax())]
    return {"logits_per_image": float(np.abs(np.array(got["logits_per_image"]) - ref.numpy()).max())}, \
        f"best {best!r}"


def check_owlvit(exe, d, image, queries):
    from transformers import OwlViTForObjectDetection
    model = OwlViTForObjectDetection.from_pretrained(d).eval()
    proc = AutoImageProcessor.from_pretrained(d)
    t = tok(d)
    got = run_sdvp(exe, "owlvit", d, image, queries)
    im = Image.open(image).convert("RGB")
    pixels = proc(im, return_tensors="pt")["pixel_values"]
    enc = [t(q)["input_ids"][:16] for q in queries]
    ids = torch.tensor([e + [0] * (16 - len(e)) for e in enc])
    mask = torch.tensor([[1] * len(e) + [0] * (16 - len(e)) for e in enc])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, pixel_values=pixels)
    w, h = im.size
    ds, db, top = 0.0, 0.0, []
    for j, det in enumerate(got["detections"]):
        s = torch.sigmoid(out.logits[0, :, j])
        order = torch.argsort(-s, stable=True)[:10]
        b = out.pred_boxes[0, order]
        corners = torch.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2,
                               b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], -1)
        corners = corners * torch.tensor([w, h, w, h])
        ds = max(ds, float(np.abs(np.array(det["scores"]) - s[order].numpy()).max()))
        db = max(db, float(np.abs(np.array(det["boxes"]) - corners.numpy()).max()))
        top.append(round(float(s[order[0]]), 3))
    return {"scores": ds, "boxes_px": db}, f"top scores {top}"


def check_dpt(exe, d, image):
    from transformers import DPTForDepthEstimation
    model = DPTForDepthEstimation.from_pretrained(d).eval()
    proc = AutoImageProcessor.from_pretrained(d)
    got = run_sdvp(exe, "dpt", d, image, [])
    pixels = proc(Image.open(image).convert("RGB"), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        depth = model(pixel_values=pixels).predicted_depth
    g = got["depth"]
    return {"shape_equal": 0.0 if g["shape"] == list(depth.shape) else float("inf"),
            "mean": abs(g["mean"] - float(depth.mean())),
            "min": abs(g["min"] - float(depth.min())),
            "max": abs(g["max"] - float(depth.max()))}, f"mean {g['mean']:.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sdvp", default="target/release/sdvp")
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--world", required=True)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()
    torch.set_num_threads(2)
    images = sorted(glob.glob(os.path.join(a.world, "images", "pretrain-val-*.png")))[: a.images]
    if not images:
        sys.exit(f"no pretrain val images under {a.world}/images")
    w = a.weights
    checks = [
        ("blip-vqa", lambda im: check_blip(a.sdvp, f"{w}/vqa", im, "what color is the star?")),
        ("clip", lambda im: check_clip(a.sdvp, f"{w}/clip", im,
                                       ["a photo of red", "a photo of blue star", "a photo of no red star"])),
        ("owlvit", lambda im: check_owlvit(a.sdvp, f"{w}/detect", im, ["star", "red object"])),
    ]
    if os.path.isdir(f"{w}/depth"):
        checks.append(("dpt", lambda im: check_dpt(a.sdvp, f"{w}/depth", im)))
    worst, n = 0.0, 0
    for arch, f in checks:
        for im in images:
            diffs, info = f(im)
            n += len(diffs)
            worst_here = max(diffs.values())
            worst = max(worst, worst_here)
            print(f"{arch:9s} {os.path.basename(im)}: " +
                  ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()) + f"  ({info})")
    print(f"{n} checks, worst {worst:.2e}")
    sys.exit(0 if worst <= a.tol and n > 0 else 1)


if __name__ == "__main__":
    main()
