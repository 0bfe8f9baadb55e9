"""Hand-written PyTorch loop over tensors indexed by a permutation (the usual minimal loop)."""

import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from common import Workload, apply_threads, emit, load_arrays, timed_epochs  # noqa: E402
from contestants.torch_models import plain_model, plain_optimizer  # noqa: E402


def main(workload: str, data: str, warmup: int, epochs: int, compile_model: bool = False) -> None:
    w = Workload.from_json(workload)
    apply_threads()
    torch.manual_seed(0)
    x_np, y_np = load_arrays(data)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    model = plain_model(w)
    opt = plain_optimizer(w, model.parameters())
    fwd = torch.compile(model) if compile_model else model
    n = x.shape[0]

    def run_epoch():
        perm = torch.randperm(n)
        for i in range(0, n, w.batch_size):
            idx = perm[i:i + w.batch_size]
            loss = F.cross_entropy(fwd(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    name = "pytorch loop + torch.compile(model)" if compile_model else "pytorch loop (tensor index)"
    first: list[float] = []
    times = timed_epochs(run_epoch, warmup, epochs, first)
    emit(name, times, threads=torch.get_num_threads(), first_epoch_s=first[0] if first else None)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
         len(sys.argv) > 5 and sys.argv[5] == "compile")
