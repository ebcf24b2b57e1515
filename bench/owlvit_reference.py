#!/usr/bin/env python3
"""PyTorch side of the OWL-ViT benchmark (see bench/src/owlvit.rs): the same config,
inputs (BATCH images, 4 queries of 8 tokens each), stand-in detection loss (sigmoid
cross-entropy of every logit against a fixed 0/1 target plus L1 of every box against a
fixed box), clipping and AdamW, and one forward pass for inference, on the same number
of threads.

python3 bench/owlvit_reference.py [CONFIG_DIR] [BATCH] [STEPS] [THREADS]
"""
import torch
import torch.nn.functional as F
from transformers import OwlViTConfig, OwlViTForObjectDetection

import harness  # bench/harness.py, next to this file

QUERIES, LEN = 4, 8


def main():
    cdir, batch, steps, threads = harness.args("crates/models/tests/fixtures/owlvit", 8)
    config = OwlViTConfig.from_pretrained(cdir)
    model = OwlViTForObjectDetection(config)
    vocab = config.text_config.vocab_size
    size = config.vision_config.image_size
    grid = size // config.vision_config.patch_size
    rows = batch * QUERIES
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(LEN), indexing="ij")
    ids = 1 + (r * 7 + c * 13) % (vocab - 3)
    ids[:, 0], ids[:, -1] = vocab - 2, vocab - 1
    mask = torch.ones_like(ids)
    px = (torch.arange(batch * 3 * size * size) % 97).float().view(batch, 3, size, size) / 48.0 - 1.0
    b, p, q = torch.meshgrid(torch.arange(batch), torch.arange(grid * grid), torch.arange(QUERIES), indexing="ij")
    labels = ((b * 3 + p * 5 + q) % 11 == 0).float()
    b, p = b[..., 0], p[..., 0]
    cx = 0.1 + 0.8 * ((b + p) % 9).float() / 8.0
    cy = 0.1 + 0.8 * ((b + 2 * p) % 7).float() / 6.0
    boxes = torch.stack([cx, cy, torch.full_like(cx, 0.2), torch.full_like(cx, 0.2)], -1)

    def loss_fn():
        out = model(input_ids=ids, attention_mask=mask, pixel_values=px)
        loss = (F.binary_cross_entropy_with_logits(out.logits, labels)
                + F.l1_loss(out.pred_boxes, boxes))
        return loss

    harness.run(model, loss_fn, lambda: model(input_ids=ids, attention_mask=mask, pixel_values=px),
                steps, batch, threads, f" attn={config._attn_implementation}")


if __name__ == "__main__":
    main()
