"""Loss and metrics of a model on a dataset, in eval mode (no dropout, no batch-norm update)."""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate_model"]


def evaluate_model(model: Any, x: Any, y: Any, *, task: str = "multiclass",
                   batch_size: int = 1024, device: Any = None) -> dict[str, float]:
    """Mean loss and metrics of ``model`` on ``(x, y)`` in eval mode (no RNG, no BN update)."""
    import torch

    from trainwell.tasks import get_task

    t = get_task(task) if isinstance(task, str) else task
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    sums: dict[str, Any] = {}
    n = int(len(x))
    if n == 0:
        return {}
    with torch.no_grad():
        for lo in range(0, n, batch_size):
            xb = x[lo:lo + batch_size].to(device)
            yb = t.prepare_targets(y[lo:lo + batch_size]).to(device) \
                if hasattr(t, "prepare_targets") else y[lo:lo + batch_size].to(device)
            for k, v in t.metric_sums(model(xb), yb).items():
                sums[k] = sums[k] + v.double() if k in sums else v.double()
    model.train(was_training)
    return {k: float(v) / n for k, v in sums.items()}  # host sync: once per evaluation
