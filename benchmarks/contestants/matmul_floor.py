"""The matmul floor: only the matrix products of one training step, times steps per epoch.

Forward ``y = x Wᵀ`` per layer, backward ``dX = dY W`` (all but the first layer) and
``dW = dYᵀ X`` per layer, at the workload's batch size. No activation, loss, optimizer or
framework: no training loop on this machine can be faster than this.
"""

import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from common import Workload, apply_threads, clock, emit, steps_per_epoch  # noqa: E402


def main(workload: str, data: str, warmup: int, epochs: int) -> None:
    w = Workload.from_json(workload)
    apply_threads()
    sizes = [w.n_inputs, *w.hidden, w.n_classes]
    b = w.batch_size
    ws = [torch.randn(o, i) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]
    xs = [torch.randn(b, i) for i in sizes[:-1]]
    dys = [torch.randn(b, o) for o in sizes[1:]]

    def step():
        for i, (wt, x, dy) in enumerate(zip(ws, xs, dys, strict=True)):
            torch.mm(x, wt.t())
            torch.mm(dy.t(), x)
            if i > 0:
                torch.mm(dy, wt)

    reps = 2000
    for _ in range(200):
        step()
    per_step = []
    for _ in range(5):
        t0 = clock()
        for _ in range(reps):
            step()
        per_step.append((clock() - t0) / reps)
    spe = steps_per_epoch(w)
    emit("matmul floor", [t * spe for t in per_step], per_step_ms=min(per_step) * 1e3)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
