#!/usr/bin/env python3
"""PyTorch side of the BLIP VQA benchmark (see bench/src/blip.rs): the same config,
batch shapes, loss (cross-entropy, label smoothing 0.1), clipping and AdamW, and greedy
decoding of up to 6 tokens, on the same number of threads.

python3 bench/blip_reference.py [CONFIG_DIR] [BATCH] [STEPS] [THREADS]
"""
import torch

from transformers import BlipConfig, BlipForQuestionAnswering

import harness  # bench/harness.py, next to this file


def main():
    cdir, batch, steps, threads = harness.args("crates/models/tests/fixtures/blip", 16)
    config = BlipConfig.from_pretrained(cdir)
    model = BlipForQuestionAnswering(config)
    t = config.text_config
    size = config.vision_config.image_size
    q = torch.randint(6, t.vocab_size, (batch, 12)); q[:, 0] = 2
    a = torch.randint(6, t.vocab_size, (batch, 4)); a[:, 0] = t.bos_token_id
    px = (torch.arange(batch * 3 * size * size) % 97).float().view(batch, 3, size, size) / 48.0 - 1.0

    def loss_fn():
        img = model.vision_model(pixel_values=px).last_hidden_state
        qe = model.text_encoder(input_ids=q, encoder_hidden_states=img).last_hidden_state
        logits = model.text_decoder(input_ids=a, encoder_hidden_states=qe).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, t.vocab_size),
                                                 a[:, 1:].reshape(-1), label_smoothing=0.1)
        return loss

    harness.run(model, loss_fn, lambda: model.generate(input_ids=q, pixel_values=px, max_length=6),
                steps, batch, threads)


if __name__ == "__main__":
    main()
