#!/usr/bin/env python3
"""PyTorch side of the CLIP benchmark (see bench/src/clip.rs): the same config, inputs
(BATCH image-text pairs, texts of 8 tokens), symmetric contrastive loss (cross-entropy
over the image-text logits both ways), clipping and AdamW, and one forward pass for
inference, on the same number of threads.

python3 bench/clip_reference.py [CONFIG_DIR] [BATCH] [STEPS] [THREADS]
"""
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel

import harness  # bench/harness.py, next to this file

LEN = 8


def main():
    cdir, batch, steps, threads = harness.args("crates/models/tests/fixtures/clip", 16)
    config = CLIPConfig.from_pretrained(cdir)
    model = CLIPModel(config)
    vocab = config.text_config.vocab_size
    size = config.vision_config.image_size
    r, c = torch.meshgrid(torch.arange(batch), torch.arange(LEN), indexing="ij")
    ids = 1 + (r * 7 + c * 13) % (vocab - 3)
    ids[:, 0], ids[:, -1] = vocab - 2, vocab - 1
    mask = torch.ones_like(ids)
    px = (torch.arange(batch * 3 * size * size) % 97).float().view(batch, 3, size, size) / 48.0 - 1.0
    target = torch.arange(batch)

    def loss_fn():
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=px).logits_per_image
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        return loss

    harness.run(model, loss_fn, lambda: model(input_ids=ids, attention_mask=mask, pixel_values=px),
                steps, batch, threads, f" attn={config._attn_implementation}")


if __name__ == "__main__":
    main()
