"""The timing loop the PyTorch references share (blip, owlvit, clip), the same as
bench/src/harness.rs times the candle side: 3 warm-up training steps, then STEPS timed
ones (forward, backward, global-norm clip at 1.0, AdamW at lr 1e-4), then 2 warm-up and
STEPS timed inference calls under no_grad. Prints the line bench/*.sh parse."""
import sys
import time

import torch


def args(default_dir, default_batch):
    """CONFIG_DIR BATCH STEPS THREADS from the command line (defaults for missing ones);
    sets torch's thread count and seed."""
    argv = sys.argv

    def number(i, name, default, top):
        if len(argv) <= i:
            return default
        if not argv[i].isdigit() or not 1 <= int(argv[i]) <= top:
            sys.exit(f"{name} `{argv[i]}`: expected a whole number from 1 to {top}")
        return int(argv[i])

    cdir = argv[1] if len(argv) > 1 else default_dir
    batch = number(2, "BATCH", default_batch, 4096)
    steps = number(3, "STEPS", 20, 100000)
    threads = number(4, "THREADS", 2, 256)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return cdir, batch, steps, threads


def run(model, loss_fn, infer_fn, steps, batch, threads, extra=""):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)

    def train_step():
        model.train()
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(3):
        train_step()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = train_step()
    train_ms = (time.perf_counter() - t0) * 1e3 / steps
    model.eval()
    with torch.no_grad():
        for _ in range(2):
            infer_fn()
        t1 = time.perf_counter()
        for _ in range(steps):
            infer_fn()
        infer_ms = (time.perf_counter() - t1) * 1e3 / steps
    n = sum(p.numel() for p in model.parameters())
    print(f"pytorch params={n} batch={batch} threads={threads} train_ms/step={train_ms:.2f} "
          f"infer_ms/batch={infer_ms:.2f} last_loss={loss:.4f}{extra}")
