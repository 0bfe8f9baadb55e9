"""An eager run never imports torch's compiler (about a second of start-up), and training is
the same before and after something imports it. (The same fresh process shows that `fit`
leaves matplotlib to the figure worker.)

One subprocess (a fresh interpreter is the only place where torch._dynamo is not loaded yet):
a tiny ``trainwell fit`` through the CLI, every optimizer of the registry trained a few steps
(with state_dict / load_state_dict / zero_grad), then ``import torch._dynamo`` and the same
training again, which must give the same weights bit for bit.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.hardening._helpers import env, write_recipe

SCRIPT = textwrap.dedent("""
    import sys
    import torch
    from trainwell.cli import main
    try:
        main(["fit", sys.argv[1], "--out", sys.argv[2], "--quiet"])
    except SystemExit as e:
        assert e.code in (0, None), e.code
    assert "torch._dynamo" not in sys.modules, "a plain eager fit imported torch._dynamo"
    # the figures were drawn by the figure worker: this process never loaded matplotlib
    assert "matplotlib" not in sys.modules
    import pathlib
    (run,) = pathlib.Path(sys.argv[2]).iterdir()
    assert {p.name for p in (run / "plots").iterdir()} >= {"loss.png", "accuracy.png",
                                                          "confusion_matrix.png"}
    assert "confusion_matrix.png" in (run / "report.html").read_text()

    from trainwell.optim.lazy_dynamo import deferred_methods
    from trainwell.optim import OPTIMIZERS, make_optimizer
    deferred = deferred_methods()
    assert "Optimizer.add_param_group" in deferred and "Adam.step" in deferred, deferred

    def train(name):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        opt = make_optimizer(model.parameters(), name, lr=0.01)
        x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        opt.load_state_dict(opt.state_dict())
        opt.step()
        return [p.detach().clone() for p in model.parameters()]

    before = {name: train(name) for name in OPTIMIZERS.names()}
    assert "torch._dynamo" not in sys.modules, "an optimizer imported torch._dynamo"

    import torch._dynamo  # anything may import it: torch's own methods are back
    assert deferred_methods() == []
    assert torch.optim.Adam.step.__wrapped__.__name__ == "step"  # torch's _use_grad again
    for name, weights in before.items():
        for a, b in zip(weights, train(name)):
            assert torch.equal(a, b), name
    print("ok")
""")


def test_eager_fit_and_optimizers_do_not_import_the_compiler(tmp_path):
    recipe = write_recipe(tmp_path, epochs=1)
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(recipe), str(tmp_path / "runs")],
                         capture_output=True, text=True, env=env(), cwd=root, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr
