"""Hand-written PyTorch loop fed by DataLoader(TensorDataset) (the tutorial way)."""

import sys

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from common import Workload, apply_threads, emit, load_arrays, timed_epochs  # noqa: E402
from contestants.torch_models import plain_model, plain_optimizer  # noqa: E402


def main(workload: str, data: str, warmup: int, epochs: int) -> None:
    w = Workload.from_json(workload)
    apply_threads()
    torch.manual_seed(0)
    x_np, y_np = load_arrays(data)
    loader = DataLoader(TensorDataset(torch.from_numpy(x_np), torch.from_numpy(y_np)),
                        batch_size=w.batch_size, shuffle=True)
    model = plain_model(w)
    opt = plain_optimizer(w, model.parameters())

    def run_epoch():
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    emit("pytorch DataLoader loop", timed_epochs(run_epoch, warmup, epochs),
         threads=torch.get_num_threads())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
