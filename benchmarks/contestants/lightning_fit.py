"""PyTorch Lightning ``Trainer.fit`` on the benchmark network."""

import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from common import Workload, emit, load_arrays  # noqa: E402
from contestants.torch_models import plain_model, plain_optimizer  # noqa: E402


def main(workload: str, data: str, warmup: int, epochs: int) -> None:
    import lightning as L

    w = Workload.from_json(workload)
    torch.manual_seed(0)
    x, y = load_arrays(data)
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                        batch_size=w.batch_size, shuffle=True)

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = plain_model(w)

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            return F.cross_entropy(self.net(xb), yb)

        def configure_optimizers(self):
            return plain_optimizer(w, self.parameters())

    class EpochTimer(L.Callback):
        def __init__(self):
            self.times = []

        def on_train_epoch_start(self, trainer, module):
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.times.append(time.perf_counter() - self.t0)

    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=warmup + epochs, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[timer])
    trainer.fit(Module(), loader)
    emit(f"lightning {L.__version__}", timer.times[warmup:])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
