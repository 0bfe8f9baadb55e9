"""Few labels, many unlabeled images: from scratch vs greedy layer-wise pretraining.

The chapter ("Unsupervised Pretraining") names the technique without an experiment, so the setup
is trainwell's: Fashion-MNIST (pixels / 255), every training image as unlabeled data, only the
first ``n_labels`` training images with their labels; the network of the transfer study
(dense SELU 300-100-50-50-50, Keras default init). One arm trains it from scratch on the
labelled images; the other first trains each hidden layer as a shallow autoencoder on all
the unlabeled images (:func:`~trainwell.workflows.pretrain.greedy_pretrain`), then fine-tunes the whole
network on the same labelled images with the same optimizer and epochs. Test accuracy on the
full test set, per seed, mean and standard deviation.

Example:
    >>> r = run_pretrain_study(seeds=[0], quick=True, out=None, quiet=True)
    >>> sorted(r.stats)
    ['gain', 'pretrained', 'scratch']
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainwell.studies.experiments.transfer_study import (
    _load_fashion,
    _pct,
    mean_std,
    parse_seeds,
    plot_bars,
    print_table,
    seed_table,
    synthetic_fashion,
)

__all__ = ["PretrainStudyConfig", "PretrainStudyResult", "run_pretrain_study"]

ARMS = (("scratch", "from scratch"), ("pretrained", "greedy layer-wise pretrained"))


@dataclass
class PretrainStudyConfig:
    """The pretraining comparison's setup; ``quick()`` is a seconds-long variant."""

    hidden: tuple[int, ...] = (300, 100, 50, 50, 50)
    activation: str = "selu"
    init: str = "glorot"
    init_distribution: str = "uniform"
    n_labels: int = 500
    epochs_per_layer: int = 5
    pretrain_optimizer: str = "adam"
    pretrain_lr: float = 1e-3
    pretrain_batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 32
    device: str = "auto"

    @classmethod
    def quick(cls) -> PretrainStudyConfig:
        """A small network and few epochs, for the synthetic dataset (tests, smoke runs)."""
        return cls(hidden=(32, 16), n_labels=40, epochs_per_layer=3, pretrain_lr=3e-3,
                   lr=3e-3, epochs=8, device="cpu")


@dataclass
class PretrainStudyResult:
    """Per-seed test accuracies of both arms, their statistics, the run directory."""

    rows: list[dict[str, Any]]
    stats: dict[str, dict[str, float]]
    config: PretrainStudyConfig
    run_dir: Path | None = None
    layers: list[list[Any]] = field(default_factory=list)
    histories: dict[str, Any] = field(default_factory=dict)


def _build(splits: Any, config: PretrainStudyConfig, seed: int) -> Any:
    from trainwell.nn import SelfNormalizationWarning, build_model

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelfNormalizationWarning)
        return build_model(input_shape=tuple(splits.input_shape), n_outputs=splits.n_outputs,
                           task="multiclass", hidden=list(config.hidden),
                           activation=config.activation, init=config.init,
                           init_distribution=config.init_distribution)


def _train(model: Any, x: torch.Tensor, y: torch.Tensor, splits: Any,
           config: PretrainStudyConfig, seed: int) -> tuple[Any, float]:
    from trainwell.train import Trainer
    from trainwell.train.evaluate import evaluate_model

    trainer = Trainer(model, task="multiclass", optimizer=config.optimizer, lr=config.lr,
                      seed=seed, device=config.device)
    history = trainer.fit(x, y, epochs=config.epochs, batch_size=config.batch_size,
                          validation_data=(splits.x_val, splits.y_val), verbose=0)
    acc = float(evaluate_model(model, splits.x_test, splits.y_test)["accuracy"])
    return history, acc


def run_pretrain_study(seeds: Sequence[int] = (0, 1, 2), *, splits: Any = None,
                       config: PretrainStudyConfig | None = None,
                       data_dir: str | os.PathLike | None = None,
                       out: str | os.PathLike | None = "runs", quick: bool = False,
                       quiet: bool = False, console: Any = None) -> PretrainStudyResult:
    """For each seed: train from scratch on few labels vs pretrain greedily, then fine-tune.

    Args:
        seeds: random seeds (initialization, batch order); default ``(0, 1, 2)``.
        splits: a labelled :class:`~trainwell.data.Splits` (default: Fashion-MNIST, or the
            synthetic dataset with ``quick``). All its training inputs serve as unlabeled data;
            only the first ``config.n_labels`` keep their labels.
        config: the setup (default :class:`PretrainStudyConfig`, or ``.quick()``).
        data_dir: where Fashion-MNIST is (default ``$TRAINWELL_DATA`` / the user cache).
        out: folder for the run directory (``None``: write nothing).
        quick: synthetic data and a small setup: seconds.
        quiet: print nothing.
        console: a ``rich`` console.

    Returns:
        :class:`PretrainStudyResult`.
    """
    from trainwell.errors import ConfigError
    from trainwell.workflows.pretrain import greedy_pretrain

    seeds = parse_seeds(seeds)
    if config is None:
        config = PretrainStudyConfig.quick() if quick else PretrainStudyConfig()
    if console is None and not quiet:
        from trainwell.console import make_console

        console = make_console()
    if quiet:
        console = None
    if splits is None:
        splits = synthetic_fashion() if quick else _load_fashion(data_dir, progress=not quiet)
    n = len(splits.y_train)
    if isinstance(config.n_labels, bool) or not isinstance(config.n_labels, int) \
            or not 0 < config.n_labels <= n:
        raise ConfigError("--labels", config.n_labels, f"an integer in 1..{n}")
    x_lab, y_lab = splits.x_train[:config.n_labels], splits.y_train[:config.n_labels]
    if console is not None:
        console.print(f"[bold]Pretraining study[/bold] on {splits.name}: {n} unlabeled images, "
                      f"{config.n_labels} labelled; seeds {seeds}")
    rows: list[dict[str, Any]] = []
    histories: dict[str, Any] = {}
    layers: list[list[Any]] = []
    for seed in seeds:
        t0 = time.perf_counter()
        scratch = _build(splits, config, seed)
        hist_s, acc_s = _train(scratch, x_lab, y_lab, splits, config, seed)
        pre = _build(splits, config, seed)     # the same starting weights as the scratch arm
        res = greedy_pretrain(pre, splits.x_train, config.epochs_per_layer,
                              batch_size=config.pretrain_batch_size,
                              optimizer=config.pretrain_optimizer, lr=config.pretrain_lr,
                              seed=seed, device=config.device)
        hist_p, acc_p = _train(res.model, x_lab, y_lab, splits, config, seed)
        if not layers:
            layers = [["layer", "autoencoder", "MSE before", "MSE after"], *res.table()]
        rows.append({"seed": seed, "scratch": acc_s, "pretrained": acc_p, "gain": acc_p - acc_s})
        histories[str(seed)] = {"scratch": hist_s.to_list(), "pretrained": hist_p.to_list(),
                                "reconstruction": [asdict(r) for r in res.layers]}
        if console is not None:
            console.print(f"seed {seed}: test accuracy from scratch {_pct(acc_s)}, pretrained "
                          f"{_pct(acc_p)} ({time.perf_counter() - t0:.0f} s)")
    stats = {k: mean_std([r[k] for r in rows]) for k in ("scratch", "pretrained", "gain")}
    result = PretrainStudyResult(rows=rows, stats=stats, config=config, layers=layers,
                                 histories=histories)
    table = seed_table(rows, ARMS, stats)
    if console is not None:
        print_table(table, f"Test accuracy with {config.n_labels} labels", console)
        g = stats["gain"]
        console.print(f"pretraining gain: {100 * g['mean']:+.2f} ± {100 * g['std']:.2f} points "
                      f"(mean ± std over {len(rows)} seeds)")
    if out is not None:
        result.run_dir = _write_run(result, splits, table, out, quick)
        if console is not None:
            console.print(f"results: {result.run_dir}")
    return result


def _write_run(result: PretrainStudyResult, splits: Any, table: list[list[str]],
               out: str | os.PathLike, quick: bool) -> Path:
    from trainwell.report.rundir import (
        add_summary_section,
        new_run_dir,
        write_report,
        write_summary,
    )

    c = result.config
    run = new_run_dir(out, "pretrain-study" + ("-quick" if quick else ""))
    (run / "study.json").write_text(json.dumps({
        "config": asdict(c), "rows": result.rows, "stats": result.stats,
        "histories": result.histories}, indent=2, default=str), encoding="utf-8")
    plot_bars(result.rows, ARMS, result.stats, run / "plots" / "pretrain_study.png",
              f"{c.n_labels} labels: test accuracy over {len(result.rows)} seeds (mean ± std)")
    write_summary(run, {
        "name": "pretrain-study", "kind": "study", "status": "completed",
        "message": f"pretraining study over {len(result.rows)} seeds", "run_dir": str(run),
        "dataset": {"name": splits.name, "task": "multiclass"},
        "study": {"config": asdict(c), "rows": result.rows, "stats": result.stats},
        "metrics": {"final": {f"{k}_test_accuracy_mean": v["mean"]
                              for k, v in result.stats.items() if k != "gain"}},
        "seed": [r["seed"] for r in result.rows], "versions": {"torch": torch.__version__},
        "sections": []})
    add_summary_section(run, f"Few labels ({c.n_labels}): test accuracy per seed", table, text=(
        f"Data: {splits.name}; all {len(splits.y_train)} training inputs as unlabeled data, the "
        f"first {c.n_labels} with labels. Network: dense {'-'.join(map(str, c.hidden))} "
        f"{c.activation}, {c.init} {c.init_distribution} init. Pretraining: each hidden layer "
        f"a shallow autoencoder (layer → linear decoder, MSE) for {c.epochs_per_layer} epochs "
        f"({c.pretrain_optimizer}, lr {c.pretrain_lr:g}, batch {c.pretrain_batch_size}), on "
        f"the codes of the layer below. Both arms then train all layers on the labelled images "
        f"with {c.optimizer}, lr {c.lr:g}, batch {c.batch_size}, {c.epochs} epochs, from the "
        "same initial weights. Accuracies on the test set."))
    if result.layers:
        add_summary_section(run, "Greedy pretraining: reconstruction error per layer "
                                 f"(seed {result.rows[0]['seed']})", result.layers)
    write_report(run)
    return run
