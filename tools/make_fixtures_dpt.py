#!/usr/bin/env python3
"""Parity fixtures for the Rust DPT depth model (crates/models/src/dpt.rs).

Builds random DPTForDepthEstimation models (pure ViT backbone, is_hybrid false) with
Hugging Face transformers and saves config.json, model.safetensors,
preprocessor_config.json, image.png and reference.safetensors (inputs, intermediate
states, predicted_depth, and a depth loss with some of its gradients).

    python3 tools/make_fixtures_dpt.py              # tiny -> crates/models/tests/fixtures/dpt/
    python3 tools/make_fixtures_dpt.py --real-size  # Intel/dpt-large shapes -> tools/real_size/dpt/
    python3 tools/make_fixtures_dpt.py --check-export DIR  # a Rust-written checkpoint in transformers

The tiny directory also holds `variant/`: readout "add", batch norm in the fusion
residual units, no qkv bias, three stages.

Weights are drawn with a larger spread than transformers' init (std 0.02, zero position
embeddings) so that the depth map is far from constant and the checks are sharp.

Needs: torch, transformers (5.x), safetensors, pillow, numpy.
"""

import argparse
import json
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import DPTConfig, DPTForDepthEstimation
from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SSI_EPS = 1e-6


def test_image():
    """A smooth 50x37 RGB image (non-square, so keep_aspect_ratio matters)."""
    h, w = 37, 50
    y, x = np.mgrid[0:h, 0:w]
    r = 127.5 + 127.5 * np.sin(x / 5.0)
    g = 255.0 * y / (h - 1)
    b = 127.5 + 127.5 * np.cos((x + y) / 7.0)
    arr = np.stack([r, g, b], -1).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def randomize(model, bias_std=0.1):
    """Fan-in scaled weights, spread biases and norms, non-zero CLS and positions."""
    transposed = {n + ".weight" for n, m in model.named_modules()
                  if isinstance(m, torch.nn.ConvTranspose2d)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("cls_token") or name.endswith("position_embeddings"):
                p.copy_(torch.randn_like(p) * 0.5)
            elif "layernorm" in name or "batch_norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + torch.randn_like(p) * 0.1)
            elif name.endswith("bias"):
                p.copy_(torch.randn_like(p) * bias_std)
            else:
                # ConvTranspose2d weights are [in, out, k, k]; one output sees `in` inputs.
                fan_in = p.shape[0] if name in transposed else p[0].numel()
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.2)
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand_like(b))


def calibrate_head(model, px):
    """The head ends in a ReLU: rescale its last 1x1 conv so that its input to the ReLU
    is about N(0.3, 0.4) on `px`, keeping most of the depth map alive (not all zero)."""
    last = model.head.head[4]
    seen = {}
    hook = last.register_forward_hook(lambda m, i, o: seen.update(z=o - m.bias[None, :, None, None]))
    with torch.no_grad():
        model(pixel_values=px)
        hook.remove()
        z = seen["z"]
        k = 0.4 / z.std()
        last.weight.mul_(k)
        last.bias.fill_(0.3 - (z.mean() * k).item())


def ssi_loss(pred, target, mask):
    """Scale-and-shift-invariant MSE (MiDaS), batch-based reduction, as in dpt.rs."""
    m = mask.to(pred.dtype)
    a00 = (m * pred * pred).sum((1, 2))
    a01 = (m * pred).sum((1, 2))
    a11 = m.sum((1, 2))
    b0 = (m * pred * target).sum((1, 2))
    b1 = (m * target).sum((1, 2))
    det = a00 * a11 - a01 * a01 + SSI_EPS
    scale = (a11 * b0 - a01 * b1) / det
    shift = (a00 * b1 - a01 * b0) / det
    res = scale[:, None, None] * pred + shift[:, None, None] - target
    return (m * res * res).sum() / (2.0 * m.sum())


def loss_target(shape):
    """A closed-form target and mask (the Rust test rebuilds them): t in [0.5, 1],
    every fifth pixel masked out."""
    b, h, w = shape
    bb, yy, xx = np.meshgrid(np.arange(b), np.arange(h), np.arange(w), indexing="ij")
    t = 0.75 + 0.25 * np.sin(0.37 * yy + 0.11 * xx + 1.3 * bb)
    m = ((7 * yy + 3 * xx + bb) % 5 != 0).astype(np.float64)
    return torch.tensor(t, dtype=torch.float32), torch.tensor(m, dtype=torch.float32)


def l1_loss(pred, target, mask):
    m = mask.to(pred.dtype)
    return (m * (pred - target).abs()).sum() / m.sum()


def depth_with_grid(model, pixel_values, patch):
    """transformers' own modules, with the patch grid handed to the neck so that
    non-square inputs work (DPTReassembleStage accepts patch_height/width)."""
    out = model.dpt(pixel_values, output_hidden_states=True)
    idx = model.config.backbone_out_indices
    hs = [h for i, h in enumerate(out.hidden_states[1:]) if i in idx]
    _, _, h, w = pixel_values.shape
    neck = model.neck(hs, h // patch, w // patch)
    return hs, neck, model.head(neck)


def build(out, cfg_kwargs, proc_kwargs, sizes, grad_names, real=False, batch=2):
    torch.manual_seed(0)
    config = DPTConfig(**cfg_kwargs)
    model = DPTForDepthEstimation(config).eval()
    randomize(model)
    h0, w0 = sizes[""]
    calibrate_head(model, torch.randn(batch, 3, h0, w0, generator=torch.Generator().manual_seed(5)))
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    proc = DPTImageProcessorPil(**proc_kwargs)
    proc.save_pretrained(out)
    patch = config.patch_size
    ref = {}
    with torch.no_grad():
        for tag, (h, w) in sizes.items():
            px = torch.randn(batch if tag == "" else 1, 3, h, w)
            ref["pixel_values" + tag] = px
            hs, neck, depth = depth_with_grid(model, px, patch)
            if h == w:
                # The plain transformers forward (square grids only) must agree.
                plain = model(pixel_values=px).predicted_depth
                assert torch.equal(plain, depth), "explicit-grid path differs"
            ref["predicted_depth" + tag] = depth
            if tag == "":
                for i, t in enumerate(hs):
                    ref[f"backbone_hidden_states.{i}"] = t
                # The last fusion state is checked through the depth map it alone feeds.
                for i, t in enumerate(neck[:-1]):
                    ref[f"fusion_hidden_states.{i}"] = t
            frac0 = (depth == 0).float().mean().item()
            print(f"{out}: depth{tag} {tuple(depth.shape)} mean {depth.mean():.4f} "
                  f"std {depth.std():.4f} zero fraction {frac0:.3f}")
        if not real:
            image = test_image()
            image.save(os.path.join(out, "image.png"))
            px = proc(images=image, return_tensors="pt")["pixel_values"]
            ref["processed_pixel_values"] = px
            ref["processed_depth"] = depth_with_grid(model, px, patch)[2]
    if grad_names:
        px = ref["pixel_values"]
        model.zero_grad()
        depth = model(pixel_values=px).predicted_depth
        target, mask = loss_target(depth.shape)
        loss = ssi_loss(depth, target, mask)
        loss.backward()
        ref["ssi_loss"] = loss.detach().reshape(1)
        ref["l1_loss"] = l1_loss(depth.detach(), target, mask).reshape(1)
        params = dict(model.named_parameters())
        for n in grad_names:
            ref["grad." + n] = params[n].grad.detach().clone()
    save_file({k: v.detach().contiguous() for k, v in ref.items()},
              os.path.join(out, "reference.safetensors"))
    print(out, "reference tensors:", len(ref))


TINY = dict(hidden_size=24, num_hidden_layers=4, num_attention_heads=2, intermediate_size=48,
            image_size=32, patch_size=8, backbone_out_indices=[0, 1, 2, 3],
            neck_hidden_sizes=[4, 8, 12, 16], reassemble_factors=[4, 2, 1, 0.5],
            fusion_hidden_size=8, readout_type="project")
VARIANT = dict(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
               image_size=32, patch_size=8, backbone_out_indices=[0, 1, 2],
               neck_hidden_sizes=[4, 8, 8], reassemble_factors=[2, 1, 0.5],
               fusion_hidden_size=8, readout_type="add", qkv_bias=False,
               use_batch_norm_in_fusion_residual=True, hidden_act="gelu_new",
               layer_norm_eps=1e-6)
GRADS = [
    "dpt.embeddings.patch_embeddings.projection.weight",
    "dpt.embeddings.position_embeddings",
    "dpt.embeddings.cls_token",
    "dpt.encoder.layer.0.attention.attention.query.weight",
    "dpt.encoder.layer.2.layernorm_after.weight",
    "neck.reassemble_stage.readout_projects.1.0.weight",
    "neck.reassemble_stage.layers.0.resize.weight",
    "neck.reassemble_stage.layers.0.resize.bias",
    "neck.reassemble_stage.layers.3.resize.weight",
    "neck.convs.2.weight",
    "neck.fusion_stage.layers.1.residual_layer1.convolution1.weight",
    "neck.fusion_stage.layers.3.projection.weight",
    "head.head.0.weight",
    "head.head.4.bias",
]


def check_export(d):
    from safetensors.torch import load_file
    model = DPTForDepthEstimation.from_pretrained(d).eval()
    missing = set(model.state_dict()) - set(load_file(os.path.join(d, "model.safetensors")))
    missing = {k for k in missing if not k.endswith("num_batches_tracked")}
    assert not missing, f"tensors transformers wants but the export lacks: {sorted(missing)}"
    DPTImageProcessorPil.from_pretrained(d)
    ref = load_file(os.path.join(d, "rust_output.safetensors"))
    with torch.no_grad():
        depth = model(pixel_values=ref["pixel_values"]).predicted_depth
    diff = (depth - ref["predicted_depth"]).abs().max().item()
    zero = (depth == 0).float().mean().item()
    print(f"{d}: transformers vs Rust predicted_depth {tuple(depth.shape)} (mean {depth.mean():.4f}, "
          f"zero fraction {zero:.3f}): max abs diff {diff:.3e}")
    assert zero < 0.9, "depth map is (almost) all zero: the check would be vacuous"
    scale = max(1.0, depth.abs().max().item())
    print(f"relative to the largest depth ({scale:.2f}): {diff / scale:.3e}")
    assert diff / scale <= 1e-5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--real-size", action="store_true")
    ap.add_argument("--check-export", metavar="DIR",
                    help="load a checkpoint the Rust test `export_for_transformers` wrote, "
                         "compare transformers' depth with the Rust one")
    args = ap.parse_args()
    if args.check_export:
        check_export(args.check_export)
        return
    if args.real_size:
        # Intel/dpt-large shapes.
        cfg = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                   intermediate_size=4096, image_size=384, patch_size=16,
                   backbone_out_indices=[5, 11, 17, 23], neck_hidden_sizes=[256, 512, 1024, 1024],
                   fusion_hidden_size=256, readout_type="project")
        proc = dict(size={"height": 384, "width": 384}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
        build(os.path.join(ROOT, "tools", "real_size", "dpt"), cfg, proc, {"": (384, 384)}, [],
              real=True, batch=1)
        return
    base = os.path.join(ROOT, "crates", "models", "tests", "fixtures", "dpt")
    proc = dict(size={"height": 32, "width": 32}, keep_aspect_ratio=True, ensure_multiple_of=8,
                image_mean=[0.5] * 3, image_std=[0.5] * 3)
    # 40 px: a 5x5 grid, so positions are interpolated and the fusion stage resizes
    # odd-sized residuals (align_corners=False).
    build(base, TINY, proc, {"": (32, 32), "_40": (40, 40), "_32x48": (32, 48)}, GRADS)
    proc_v = dict(size={"height": 24, "width": 24}, do_pad=True, size_divisor=16,
                  image_mean=[0.4, 0.5, 0.6], image_std=[0.2, 0.3, 0.4])
    build(os.path.join(base, "variant"), VARIANT, proc_v, {"": (32, 32), "_24x40": (24, 40)}, [])


if __name__ == "__main__":
    main()
