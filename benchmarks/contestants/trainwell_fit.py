"""trainwell's Trainer on the benchmark network: eager, the compiled step, bf16 autocast, or
DistributedDataParallel (mode ``ddp``, started by ``torch.distributed.run``; rank 0 reports)."""

import os
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from common import Workload, apply_threads, emit, load_arrays  # noqa: E402


def main(workload: str, data: str, warmup: int, epochs: int, mode: str = "eager") -> None:
    from trainwell.nn import build_model
    from trainwell.train import Trainer

    w = Workload.from_json(workload)
    apply_threads()
    x, y = (torch.from_numpy(a) for a in load_arrays(data))
    model = build_model(input_shape=(w.n_inputs,), n_outputs=w.n_classes, task="multiclass",
                        hidden=w.hidden, activation=w.activation, init=w.init,
                        batch_norm="before" if w.batch_norm else "none")
    trainer = Trainer(model, task="multiclass", optimizer=w.optimizer, lr=w.lr, seed=0,
                      compile=(mode == "compiled"),
                      precision="bf16" if mode == "bf16" else "fp32")
    history = trainer.fit(x, y, epochs=warmup + epochs, batch_size=w.batch_size, shuffle=True)
    all_times = [row["time"] for row in history.epochs]
    if os.environ.get("RANK", "0") != "0":
        return  # under DDP rank 0 reports (every worker took the same time per epoch)
    label = mode
    if mode == "ddp":
        label = f"DDP ×{os.environ.get('WORLD_SIZE', '?')}"
    # The first epoch includes compiling the step in compiled mode.
    emit(f"trainwell ({label})", all_times[warmup:], threads=torch.get_num_threads(),
         first_epoch_s=all_times[0])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
         sys.argv[5] if len(sys.argv) > 5 else "eager")
