"""trainwell's Trainer on the benchmark network: eager, the compiled step, bf16 autocast, or
DistributedDataParallel (mode ``ddp``, started by ``torch.distributed.run``; rank 0 reports)."""

import os
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from common import Workload, apply_threads, clock, emit, load_arrays  # noqa: E402


def main(workload: str, data: str, warmup: int, epochs: int, mode: str = "eager") -> None:
    from trainwell.nn import build_model
    from trainwell.train import Callback, Trainer

    class EpochClock(Callback):  # epoch times on the benchmark's clock (wall or CPU)
        def __init__(self):
            self.times: list[float] = []

        def on_epoch_start(self, trainer, epoch):
            self.t0 = clock()

        def on_epoch_end(self, trainer, epoch, logs):
            self.times.append(clock() - self.t0)

    w = Workload.from_json(workload)
    apply_threads()
    x, y = (torch.from_numpy(a) for a in load_arrays(data))
    model = build_model(input_shape=(w.n_inputs,), n_outputs=w.n_classes, task="multiclass",
                        hidden=w.hidden, activation=w.activation, init=w.init,
                        batch_norm="before" if w.batch_norm else "none")
    epoch_clock = EpochClock()
    # "default": what fit does without flags in a recipe (compile = "auto") for a run as long as
    # TRAINWELL_BENCH_PLANNED_EPOCHS (default: the benchmark's own epochs) decides it
    compile_ = {"compiled": True, "default": "auto"}.get(mode, False)
    trainer = Trainer(model, task="multiclass", optimizer=w.optimizer, lr=w.lr, seed=0,
                      compile=compile_, callbacks=[epoch_clock],
                      precision="bf16" if mode == "bf16" else "fp32")
    planned = int(os.environ.get("TRAINWELL_BENCH_PLANNED_EPOCHS", "0") or 0)
    if mode == "default" and planned:  # decided as for the planned run
        from trainwell.train.compile_cache import graph_is_cached, resolve_compile
        steps = planned * -(-len(x) // w.batch_size)
        cached = graph_is_cached(trainer._graph_key(w.batch_size))
        trainer.compile_mode = trainer.compile = resolve_compile("auto", steps, cached)
    trainer.fit(x, y, epochs=warmup + epochs, batch_size=w.batch_size, shuffle=True)
    all_times = epoch_clock.times
    if os.environ.get("RANK", "0") != "0":
        return  # under DDP rank 0 reports (every worker took the same time per epoch)
    label = mode
    if mode == "default":
        label = f"default: {'compiled' if trainer.compile else 'eager'}"
    if mode == "ddp":
        label = f"DDP ×{os.environ.get('WORLD_SIZE', '?')}"
    # The first epoch includes compiling the step in compiled mode.
    emit(f"trainwell ({label})", all_times[warmup:], threads=torch.get_num_threads(),
         first_epoch_s=all_times[0])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
         sys.argv[5] if len(sys.argv) > 5 else "eager")
