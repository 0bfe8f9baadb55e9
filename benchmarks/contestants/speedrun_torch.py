"""Speedrun race contestant: a hand-written PyTorch loop of the recipe's network and schedule.

Linear (no bias) → BatchNorm1d → ReLU per hidden layer, He normal init, AdamW with the 1cycle
rate and β1 set before every step, label-smoothed cross-entropy, the recipe's precision (bf16:
forward under CPU autocast), all data as tensors in memory. Prints one JSON line: the test
accuracy and the seconds spent training.

    python speedrun_torch.py SEED
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from speedrun_setup import fashion_mnist, speedrun  # noqa: E402


def main(seed: int) -> None:
    import torch
    from torch import nn

    cfg = speedrun()
    torch.manual_seed(seed)
    x, y, xt, yt = (torch.from_numpy(a) for a in fashion_mnist())
    layers, width = [], 784
    for units in cfg.hidden:
        layers += [nn.Linear(width, units, bias=False),
                   nn.BatchNorm1d(units, eps=cfg.bn_epsilon, momentum=1 - cfg.bn_momentum),
                   nn.ReLU()]
        width = units
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            eps=1e-7, fused=True)
    bf16 = cfg.precision == "bf16"
    n, batch = len(x), cfg.batch_size
    steps = -(-n // batch)
    total, step = cfg.epochs * steps, 0
    started = time.perf_counter()
    for _ in range(cfg.epochs):
        perm = torch.randperm(n)
        for i in range(steps):
            idx = perm[i * batch:(i + 1) * batch]
            lr, beta1 = cfg.lr_and_beta1(step, total)
            for group in opt.param_groups:
                group["lr"], group["betas"] = lr, (beta1, group["betas"][1])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(x[idx])
            loss = nn.functional.cross_entropy(logits.float(), y[idx],
                                               label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    trained = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        accuracy = float((model(xt).argmax(1) == yt).float().mean())  # host sync: the result
    print(json.dumps({"test_accuracy": accuracy, "train_seconds": trained,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
