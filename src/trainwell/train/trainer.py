"""The Trainer: a thin, fast loop over tensors that already live on the device.

Each batch is one call of the training step (:class:`~trainwell.train.step.TrainStep`:
forward, loss + ℓ1/ℓ2 kernel penalty, backward, ``on_after_backward``, clip, optimizer step,
max-norm, learning-rate schedule — the one update body, compiled or not). Metrics accumulate in
device tensors and are read once per epoch (the one host sync, marked below).
"""

from __future__ import annotations

import copy
import signal
import threading
import time
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

import trainwell.train.distributed as distributed
from trainwell.checks import check_field
from trainwell.errors import CheckpointError, ConfigError, DataError, TrainwellRuntimeWarning
from trainwell.tasks import TASKS, Task
from trainwell.train.batches import BatchIterator
from trainwell.train.callbacks import Callback, CallbackList, CancelStep
from trainwell.train.checkpoint import find_checkpoint
from trainwell.train.history import History
from trainwell.train.metrics import MetricSet, check_metrics
from trainwell.train.phases import PhaseSchedule
from trainwell.train.precision import Precision
from trainwell.train.rng import get_rng_state, seed_everything, set_rng_state
from trainwell.train.step import TrainStep, needs_eager_step
from trainwell.train.weighting import fit_weights, resolve_task, with_weights

__all__ = ["Trainer", "resolve_device", "CHECKPOINT_FORMAT"]

#: Version of the checkpoint dict layout written by :meth:`Trainer.state_dict`.
CHECKPOINT_FORMAT = 1


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _is_streamed(x: Any) -> bool:
    """Features read from disk per batch (trainwell.data.stream.StreamedPart)."""
    return type(x).__name__ == "StreamedPart" and hasattr(x, "read")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, then Apple's MPS, else CPU; anything else is passed
    to torch.device. A torchrun worker on CUDA gets ``cuda:LOCAL_RANK``."""
    if isinstance(device, torch.device):
        dev = device
    elif device in (None, "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else
                           "mps" if _mps_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ConfigError("train.device", device, "auto, cpu, cuda, cuda:N or mps") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", device, "auto or cpu (CUDA is not available here)")
    if dev.type == "mps" and not _mps_available():
        raise ConfigError("train.device", device, "auto or cpu (MPS is not available here)")
    if dev.type == "cuda" and dev.index is None and distributed.launched_by_torchrun():
        dev = torch.device("cuda", distributed.local_rank())  # one GPU per worker
    return dev


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)


class Trainer:
    """Train any ``nn.Module`` that outputs logits, with the practices of the chapter built in.

    Args:
        model: the network (moved to ``device``).
        task: ``multiclass`` (default), ``binary``, ``multilabel`` or ``regression``, or a Task.
        loss: ``None`` (the task's default), ``huber`` / ``mse`` / ``bce`` / ``cross_entropy``,
            or any loss object: an ``nn.Module`` such as ``nn.CrossEntropyLoss(weight=w)``
            or a function ``(logits, y) -> scalar``.
        metrics: more metrics by name, computed on the device every epoch (train and
            ``val_``): ``f1``, ``precision``, ``recall``, ``auc``, ``top_5``, ``mae``,
            ``rmse``, ``r2``, ... (see :mod:`trainwell.train.metrics`; needs torchmetrics).
        optimizer: a registered name (``sgd``, ``momentum``, ``nesterov``, ``adagrad``,
            ``rmsprop``, ``adam``, ``adamax``, ``nadam``, ``adamw``) or a ``torch.optim``
            optimizer already built over the model's parameters.
        lr: the (base) learning rate η0 (default 0.01).
        optimizer_params: other hyperparameters for ``make_optimizer`` (momentum, beta_1, ...).
        schedule: a registered schedule name (default ``constant``) or a ``Schedule``; the lr
            is set from it before every step (η_t = schedule.lr_at(t)); performance scheduling
            gets the validation loss (training loss without validation data) after each epoch.
        schedule_params: the schedule's parameters (decay_steps, factor, patience, ...).
        clip_value, clip_norm, clip_global_norm: gradient clipping thresholds (0 = off).
        l1, l2: kernel penalties added to the loss: l1·Σ|w| + l2·Σw² (0 = off).
        max_norm: r > 0 rescales each hidden unit's incoming weights to ‖w‖₂ ≤ r after every
            step (0 = off).
        callbacks: :class:`Callback` instances (EarlyStopping, ModelCheckpoint, NanGuard, ...).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ...
        seed: seeds torch, NumPy, Python ``random`` and the shuffling generator (default 0).
        compile: compile the whole step (forward, backward, clipping, optimizer update,
            max-norm) into one graph with ``torch.compile`` (see ``trainwell.train.step``;
            the first step takes seconds to compile); on any failure trainwell
            warns once and trains eagerly. ``"auto"``: compile only a run long enough to
            pay for it (:mod:`trainwell.train.compile_cache`); default False.
        precision: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"`` (autocast forward; fp16
            with a gradient scaler, refused on a CPU) or a
            :class:`~trainwell.train.precision.Precision`: see :mod:`trainwell.train.precision`.
        sync_batch_norm: under DistributedDataParallel, batch norm with statistics over the
            global batch (SyncBatchNorm, CUDA only); default False: each process normalizes
            with its own shard's statistics.

    Many processes: inside a ``torchrun`` worker (``WORLD_SIZE`` > 1) the Trainer joins the
    process group, wraps the model in DistributedDataParallel and gives each worker a disjoint
    shard of every global batch of ``batch_size`` samples; metrics are summed over the workers,
    so ``history`` is the same on every worker. :meth:`state_dict` is then collective (every
    worker must call it: it gathers their random states).

    Attributes:
        history (History), step (optimizer steps done), epoch (epochs completed),
        stop_training (set by callbacks), status (``running``, ``completed``, ``stopped``,
        ``diverged``, ``interrupted``), divergence (details when diverged).

    Interrupting: Ctrl-C (SIGINT) or SIGTERM (what docker, systemd, SLURM and Kubernetes
    send) during ``fit`` finishes the current step, sets status ``interrupted``, lets
    callbacks react (``ModelCheckpoint`` writes ``last.pt``), then re-raises
    ``KeyboardInterrupt``; :attr:`interrupt_signal` tells which signal it was. A second
    signal interrupts at once, without a checkpoint (the step may be half done). A signal
    that was ignored when ``fit`` started (SIGINT under ``nohup`` or in a background job)
    stays ignored: the process that started trainwell asked for that.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
        >>> t = Trainer(nn.Sequential(nn.Linear(4, 3)), optimizer="adam", lr=0.01)
        >>> hist = t.fit(x, y, epochs=2, batch_size=16)
        >>> len(hist), t.step
        (2, 8)
    """

    def __init__(self, model: nn.Module, *, task: str | Task = "multiclass",
                 loss: str | None = None,
                 optimizer: str | torch.optim.Optimizer = "sgd", lr: float = 0.01,
                 optimizer_params: dict[str, Any] | None = None,
                 schedule: Any = "constant", schedule_params: dict[str, Any] | None = None,
                 clip_value: float = 0.0, clip_norm: float = 0.0, clip_global_norm: float = 0.0,
                 l1: float = 0.0, l2: float = 0.0, max_norm: float = 0.0,
                 callbacks: Iterable[Callback] = (), device: str | torch.device = "auto",
                 seed: int = 0, compile: bool | str = False, precision: str | Precision = "fp32",
                 sync_batch_norm: bool = False, metrics: Iterable[str] | None = None):
        if not isinstance(model, nn.Module):
            raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("train.seed", seed, "an integer")
        self.task = resolve_task(task, loss)
        self.metrics = check_metrics(metrics, self.task.name)
        self._metric_sets: tuple[MetricSet, MetricSet] | None = None
        self._auto_progress = None  # the ProgressCallback that fit(verbose=...) adds
        self.device = distributed.setup(resolve_device(device))
        self.precision = precision if isinstance(precision, Precision) else \
            Precision(precision, self.device)
        self.lr = check_field("optimizer.lr", lr)   # the recipe's own rule (trainwell.checks)
        for field, v in (("optimizer.clip_value", clip_value), ("optimizer.clip_norm", clip_norm),
                         ("optimizer.clip_global_norm", clip_global_norm),
                         ("regularization.l1", l1), ("regularization.l2", l2),
                         ("regularization.max_norm", max_norm)):
            check_field(field, v)
        self.clip = {"clip_value": clip_value, "clip_norm": clip_norm,
                     "clip_global_norm": clip_global_norm}
        self.l1, self.l2, self.max_norm = float(l1), float(l2), float(max_norm)
        self.seed = seed
        seed_everything(seed)
        self.model = model.to(self.device)
        if sync_batch_norm and distributed.is_distributed() and self.device.type != "cuda":
            raise ConfigError("model.sync_batch_norm", True, "false on a CPU (SyncBatchNorm "
                              "needs CUDA; each process then uses its own batch statistics)")
        # What the step calls: the DistributedDataParallel wrapper under torchrun, whose
        # backward averages the gradients over the workers; self.model stays the network.
        self._ddp = distributed.wrap_model(self.model, self.device,
                                           sync_batch_norm=sync_batch_norm)
        self.model = distributed.unwrap(self._ddp)
        if distributed.rank() > 0:  # its own dropout masks (the weights came from rank 0)
            torch.manual_seed(seed + 7919 * distributed.rank())
        if isinstance(optimizer, torch.optim.Optimizer):
            self._adopt_optimizer(optimizer)
        else:
            from trainwell.optim import make_optimizer
            self.optimizer = make_optimizer(self.model.parameters(), optimizer, lr=self.lr,
                                            **(optimizer_params or {}))
        self.optimizer_name = optimizer if isinstance(optimizer, str) else type(optimizer).__name__
        self.schedule_spec = schedule
        self.schedule_params = dict(schedule_params or {})
        self.schedule = None if isinstance(schedule, str) else schedule
        self.callbacks = CallbackList(callbacks)
        if isinstance(compile, str) and compile != "auto":
            raise ConfigError("train.compile", compile, "true, false or \"auto\"")
        # "auto": decided in fit() from the run's length (train/compile_cache.py)
        self.compile_mode: bool | str = compile
        self.compile = compile != "auto" and bool(compile)
        if compile == "auto" and (distributed.is_distributed() or self.precision.enabled):
            self.compile_mode = False  # the compiled graph is one fp32 process
        if self.compile and (distributed.is_distributed() or self.precision.enabled):
            warnings.warn("train.compile: the whole-step compile runs one process in fp32; "
                          "this run trains op by op", TrainwellRuntimeWarning, stacklevel=2)
            self.compile = False
        self._loss_weight = 1.0  # ≠ 1 on a batch that does not split evenly over the workers
        self.train_step: TrainStep | None = None  # the update body (train/step.py)
        self._after_backward_cbs: tuple[Callback, ...] = ()
        self.generator = torch.Generator().manual_seed(seed)  # shuffling only (CPU, resumable)

        self.history = History()
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.epochs = 0
        self.steps_per_epoch = 0
        self.stop_training = False
        self.status = "new"
        self.divergence: dict[str, Any] | None = None
        self.last_loss: torch.Tensor | None = None
        self._epoch_gen_state: torch.Tensor | None = None
        self._sums: dict[str, torch.Tensor] = {}
        self._seen = 0
        self._pending: dict[str, Any] | None = None  # checkpoint parts applied at fit start
        self._resumed = False
        self._interrupt = False
        self._hard_interrupt = False  # a second signal: stopped mid-step, nothing saved
        self.interrupt_signal: int | None = None
        self._epoch_t0 = 0.0
        self._epoch_time_before = 0.0  # of the current epoch, before a resume
        self._fit_t0: float | None = None
        self._train_time_before = 0.0  # of the whole run, before a resume
        self._data: dict[str, Any] | None = None  # n, batch_size, shuffle of the last fit
        self.augment: Any = None  # [augment]: a function (batch, key) → batch, training only
        self.workers = 0          # DataLoader worker processes for streamed data

    # ------------------------------------------------------------------ inputs
    def _as_tensor(self, x: Any, field: str) -> torch.Tensor:
        try:
            t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
        except Exception as e:
            raise DataError(f"{field}: cannot be turned into a tensor ({e})") from e
        return t

    def _prepare(self, x: Any, y: Any, field: str) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Validate ``x``/``y`` (and the model's output) before any step; move them to device."""
        if _is_streamed(x):
            return self._prepare_streamed(x, y, field)
        x = self._as_tensor(x, f"{field}.x")
        y = self._as_tensor(y, f"{field}.y")
        if x.dim() == 0 or y.dim() == 0:
            raise DataError(f"{field}: x and y need a sample dimension; received shapes "
                            f"{tuple(x.shape)} and {tuple(y.shape)}")
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{field}: x has {x.shape[0]} samples but y has {y.shape[0]}")
        if x.shape[0] == 0:
            raise DataError(f"{field}: no samples")
        if x.is_complex() or x.dtype == torch.bool:
            raise DataError(f"{field}.x: features must be real numbers; received {x.dtype}")
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()),
                     torch.float32)
        x_in, y_in = x, y
        x = x.to(self.device, dtype=dtype)  # once per fit: batches are then slices of it
        n_outputs = self._dry_run(x, field)
        self.task.validate_targets(y, n_outputs, f"{field}.y")
        try:
            from trainwell.data import validate_arrays
        except ImportError:  # the data layer is optional for the trainer
            validate_arrays = None
        if validate_arrays is not None and self.task.name in TASKS:  # + features NaN/Inf
            validate_arrays(x_in, y_in, task=self.task.name, n_outputs=n_outputs,
                            input_shape=tuple(x.shape[1:]), where=f"{field}.x")
        elif not bool(torch.isfinite(x).all()):  # host sync: once per fit, before training
            raise DataError(f"{field}.x: contains NaN or Inf; clean or impute the features")
        y = self.task.prepare_targets(y).to(self.device)
        return x, y, n_outputs

    def _prepare_streamed(self, x: Any, y: Any, field: str) -> tuple[Any, torch.Tensor, int]:
        """Streamed features stay on disk (the data layer checked them in its one pass);
        targets move to the device; the model is tried on the first two samples."""
        y = self._as_tensor(y, f"{field}.y")
        if len(x) != y.shape[0]:
            raise DataError(f"{field}: x has {len(x)} samples but y has {y.shape[0]}")
        if len(x) == 0:
            raise DataError(f"{field}: no samples")
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()),
                     torch.float32)
        n_outputs = self._dry_run(x[:2].to(self.device, dtype=dtype), field)
        self.task.validate_targets(y, n_outputs, f"{field}.y")
        return x, self.task.prepare_targets(y).to(self.device), n_outputs

    def _dry_run(self, x: torch.Tensor, field: str) -> int:
        """One forward pass on 2 samples in eval mode (no RNG use, no BN update)."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                out = self.model(x[:2])
        except Exception as e:
            expects = ""
            cfg = getattr(_unwrap(self.model), "trainwell_config", None)
            if isinstance(cfg, dict) and "input_shape" in cfg:
                expects = f"; the model expects inputs of shape {tuple(cfg['input_shape'])}"
            raise DataError(f"{field}.x: samples of shape {tuple(x.shape[1:])} do not fit the "
                            f"model{expects} ({type(e).__name__}: {e})") from e
        finally:
            self.model.train(was_training)
        if not isinstance(out, torch.Tensor):
            raise ConfigError("model", type(out).__name__, "a model returning one tensor of logits")
        if out.dim() == 1:
            return 1
        if out.dim() != 2:
            raise DataError(f"{field}: the model outputs shape {tuple(out.shape)} per batch; "
                            f"trainwell expects (batch, n_outputs) logits")
        return int(out.shape[1])

    # ------------------------------------------------------------------ schedule
    def _build_schedule(self) -> None:
        if self.schedule is not None and not isinstance(self.schedule_spec, str):
            return
        from trainwell.optim import make_schedule
        base_lr = self.lr
        self.schedule = make_schedule(self.schedule_spec, base_lr=base_lr,
                                      steps_per_epoch=self.steps_per_epoch, epochs=self.epochs,
                                      **self.schedule_params)

    def _adopt_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        # The optimizer's own lr is η0; per-group lrs become scales the schedule keeps.
        groups = optimizer.param_groups
        self.lr = float(groups[0]["lr"]) / groups[0].get("lr_scale", 1.0)
        for g in groups:
            g.setdefault("lr_scale", float(g["lr"]) / self.lr)

    def start_phase(self, optimizer: torch.optim.Optimizer | None = None, *,
                    epochs: int | None = None) -> None:
        """Begin a phase of this fit: a new optimizer and/or the schedule started again.

        Call it from a callback (``on_fit_start`` or ``on_epoch_end``), e.g. after unfreezing
        layers (:class:`~trainwell.train.Unfreeze`). The optimizer's lr becomes η0; a named
        schedule starts again from its first step at the current step, spanning ``epochs``
        epochs (default: the rest of the run); the training step is rebuilt over the
        parameters that are trainable now.
        """
        if optimizer is not None:
            self._adopt_optimizer(optimizer)
            self.optimizer_name = type(optimizer).__name__
        if isinstance(self.schedule_spec, str):
            from trainwell.optim import make_schedule

            n = epochs if epochs is not None else max(self.epochs - self.epoch, 1)
            inner = make_schedule(self.schedule_spec, base_lr=self.lr,
                                  steps_per_epoch=self.steps_per_epoch, epochs=n,
                                  **self.schedule_params)
            self.schedule = inner if self.step == 0 else PhaseSchedule(inner, start=self.step)
        self._apply_lr()
        self._setup_step()

    def add_callbacks(self, callbacks: Iterable[Callback]) -> None:
        """Callbacks that join a running fit (e.g. a phase's early stopping): they get
        ``on_fit_start`` now and every event from the next one on."""
        new = list(callbacks)
        if not new:
            return
        self.callbacks = CallbackList([*self.callbacks, *new])
        for cb in sorted(new, key=lambda c: c.order):
            cb.on_fit_start(self)
        if self.train_step is not None:
            self._setup_step()

    def _apply_lr(self) -> None:
        from trainwell.optim import apply_schedule
        apply_schedule(self.optimizer, self.schedule, self.step)

    # ------------------------------------------------------------------ the step
    def _train_step(self, xb: torch.Tensor, yb: torch.Tensor, step: int) -> torch.Tensor:
        """Global step ``step`` on one batch (the one update body: train/step.py); returns
        the logits. No host sync in here."""
        out = self.train_step(xb, yb, step)
        self.last_loss = out.loss  # NanGuard reads it every k steps
        if out.penalty is not None:
            self._sums["penalty"].add_(out.penalty, alpha=len(yb))
        return out.logits

    def _after_backward(self, step: int, loss: torch.Tensor) -> None:
        """The ``on_after_backward`` event, dispatched by the step when gradients are ready."""
        self.last_loss = loss
        cancel = None
        for cb in self._after_backward_cbs:  # probes, NaN checks
            try:
                cb.on_after_backward(self, step)
            except CancelStep as signal_:  # every callback still sees the gradients
                cancel = signal_
        if cancel is not None:
            raise cancel

    # ------------------------------------------------------------------ fit
    def fit(self, x: Any, y: Any, *, epochs: int = 10, batch_size: int = 32,
            validation_data: tuple[Any, Any] | None = None, shuffle: bool = True,
            resume_from: Any = None, drop_last: bool = False, verbose: str | int = "auto",
            validation_split: float = 0.0, class_weight: Any = None,
            sample_weight: Any = None) -> History:
        """Train for ``epochs`` epochs; returns :attr:`history`.

        Args:
            x, y: training features and targets (tensors or arrays; moved to the device once).
            epochs: epochs to train in this call; with ``resume_from`` (or after
                :meth:`load_state_dict`), the total the run should reach (default 10).
            batch_size: samples per step (default 32; the last partial batch is kept).
            validation_data: ``(x_val, y_val)`` evaluated after every epoch (eval mode).
            shuffle: reshuffle the training set every epoch (default True).
            drop_last: leave out the last partial batch of each epoch (default False).
            resume_from: a checkpoint file or directory (``last.pt``, falling back to
                ``last.prev.pt``) to continue exactly where it stopped, mid-epoch included.
            verbose: ``"auto"``/1: a progress bar in a terminal or notebook and one line per
                epoch; 2: the line per epoch only; 0: nothing (as in Keras). A
                :class:`ProgressCallback` among the callbacks takes precedence.
            validation_split: the fraction of ``(x, y)`` (the last samples, before
                shuffling) held out as validation data, when ``validation_data`` is None.
            class_weight: ``"balanced"`` (n / (n_classes · n_c)), ``{class: weight}`` or one
                weight per class; multiplies each sample's loss (multiclass, binary).
            sample_weight: one weight per training sample; multiplies its loss.

        Raises:
            ConfigError / DataError: bad arguments or data, before any step.
            CheckpointError: ``resume_from`` has no usable checkpoint.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError("train.epochs", epochs, "an integer >= 1")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError("train.batch_size", batch_size, "an integer >= 1")
        from trainwell.train.fitargs import split_validation, use_progress
        x, y, validation_data, sample_weight = split_validation(
            self, x, y, validation_split, validation_data, sample_weight)
        task = with_weights(self.task, class_weight is not None or sample_weight is not None,
                            tuple(y.shape[1:]))
        if task is not self.task:
            self.task, self.train_step = task, None  # the step holds the loss function
        x, y, n_outputs = self._prepare(x, y, "train")
        weights = fit_weights(self._unpack_targets(y)[0],
                              task=self.task.name, n_outputs=n_outputs,
                              class_weight=class_weight, sample_weight=sample_weight)
        if weights is not None:
            y[:, -1] = weights.to(y)
        self._ensure_metric_sets(n_outputs)
        use_progress(self, verbose)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ConfigError("validation_data", type(validation_data).__name__,
                                  "a pair (x_val, y_val)")
            xv, yv, _ = self._prepare(*validation_data, "validation")
            val = (xv, yv)
        if resume_from is not None:
            _, state = find_checkpoint(resume_from, map_location="cpu")
            self.load_state_dict(state)
        world = distributed.world_size()
        distributed.check_shards(int(len(x)), batch_size, world)
        if not isinstance(drop_last, bool):
            raise ConfigError("drop_last", drop_last, "True or False")
        if _is_streamed(x):  # read from disk per batch, in the in-memory order
            from trainwell.data.stream import StreamingBatches
            batches = StreamingBatches(x, y, batch_size=batch_size, shuffle=shuffle,
                                       generator=self.generator, device=self.device,
                                       workers=self.workers, rank=distributed.rank(),
                                       world_size=world, drop_last=drop_last)
        else:
            batches = BatchIterator(x, y, batch_size=batch_size, shuffle=shuffle,
                                    generator=self.generator, rank=distributed.rank(),
                                    world_size=world, drop_last=drop_last)
        if len(batches) == 0:
            raise ConfigError("train.batch_size", batch_size, f"at most the {len(x)} "
                              "training samples when the last partial batch is left out")
        if self.augment is not None:  # [augment]: per training batch, on the device
            from trainwell.data.augment import AugmentedBatches
            batches = AugmentedBatches(batches, self.augment)
        data = {"n": int(len(x)), "batch_size": batch_size, "shuffle": bool(shuffle)}
        if drop_last:
            data["drop_last"] = True
        saved, self._data = self._data, data
        if self._resumed and self.batch_in_epoch and saved and saved != data:
            raise ConfigError("resume_from", saved,
                              f"the same training set size, batch_size and shuffle as the "
                              f"interrupted run to continue mid-epoch (received {data})")
        self.steps_per_epoch = len(batches)
        self.epochs = epochs if self._resumed else self.epoch + epochs
        self._build_schedule()
        if self._pending is not None:
            self._apply_pending()
        self._apply_lr()
        if self.compile_mode == "auto":
            from trainwell.train.compile_cache import resolve_compile
            self.compile = resolve_compile("auto", self.steps_per_epoch * self.epochs)
        self._setup_step()
        if not self._resumed:
            self.stop_training = False
        if not self.stop_training:  # a resumed run that had stopped only runs on_fit_end
            self.status = "running"
        self._resumed = False
        cbs = self.callbacks
        previous_handler = self._install_sigint()
        self._fit_t0 = time.perf_counter()
        try:
            cbs.call("on_fit_start", self)
            while self.epoch < self.epochs and not self.stop_training:
                self._run_epoch(batches, val)
            if self.status == "running":
                self.status = "stopped" if self.stop_training else "completed"
            self.callbacks.call("on_fit_end", self)  # callbacks that joined in a phase too
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                self.status = "interrupted"
            elif self.status == "running":
                self.status = "failed"
            self.callbacks.call("on_exception", self, exc)
            raise
        finally:
            self._train_time_before = self.train_time
            self._fit_t0 = None
            self._restore_sigint(previous_handler)
        return self.history

    @property
    def train_time(self) -> float:
        """Seconds spent in ``fit`` over the whole run, resumes included (up to the last
        checkpoint of an interrupted part)."""
        now = time.perf_counter() - self._fit_t0 if self._fit_t0 is not None else 0.0
        return self._train_time_before + now

    def _setup_step(self) -> None:
        """The step object for this fit: reused while the trainable parameters and the
        optimizer stay the same (a compiled graph is kept), rebuilt after (un)freezing."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        ts = self.train_step
        if ts is None or ts.optimizer is not self.optimizer \
                or list(map(id, ts.params)) != list(map(id, params)):
            ts = self.train_step = TrainStep(
                self.model, self.task.loss, self.optimizer, **self.clip, l1=self.l1,
                l2=self.l2, max_norm=self.max_norm, compile=self.compile,
                precision=self.precision, forward=self._ddp,
                compile_options=self._compile_options())
        ts.set_schedule(self.schedule)
        cbs = self.callbacks
        self._after_backward_cbs = cbs.after_backward
        ts.after_backward = self._after_backward if cbs.after_backward else None
        eager = cbs.eager_step
        ts.needs_eager = (lambda step: needs_eager_step(eager, step)) if eager else None

    def _compile_options(self) -> dict[str, Any] | None:
        """On CUDA, CUDA graphs too: inductor replays the whole step's kernels at once where
        the step allows it (it skips them itself otherwise). Untested without a GPU."""
        if self.device.type != "cuda":
            return None
        return {"options": {"triton.cudagraphs": True}}

    def _ensure_metric_sets(self, n_outputs: int) -> None:
        if self.metrics and self._metric_sets is None:
            self._metric_sets = tuple(  # (train, evaluation)
                MetricSet(self.metrics, self.task.name, n_outputs, self.device,
                          unpack=self._unpack_targets) for _ in range(2))

    def _unpack_targets(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        unpack = getattr(self.task, "unpack", None)  # weighted targets: (targets, weights)
        return unpack(y) if unpack is not None else (y, None)

    def _new_sums(self) -> dict[str, torch.Tensor]:
        penalized = self.l1 > 0 or self.l2 > 0
        names = ["loss", *self.task.metrics] + (["penalty"] if penalized else [])
        return {k: torch.zeros((), dtype=torch.float64, device=self.device) for k in names}

    def _run_epoch(self, batches: BatchIterator, val) -> None:
        cbs = self.callbacks
        epoch = self.epoch + 1
        if self.batch_in_epoch == 0:
            self._epoch_gen_state = self.generator.get_state()
            self._sums, self._seen = self._new_sums(), 0
        else:  # resuming mid-epoch: redraw the same permutation from the saved state
            self.generator.set_state(self._epoch_gen_state)
        perm = batches.permutation()
        cbs.call("on_epoch_start", self, epoch)
        # an epoch resumed mid-way keeps the time it had taken before the interruption
        t0 = self._epoch_t0 = time.perf_counter() - (
            self._epoch_time_before if self.batch_in_epoch else 0.0)
        self._epoch_time_before = 0.0
        self.model.train()
        sums = self._sums
        loss_sum = sums["loss"]
        extra = [(k, sums[k]) for k in self.task.metrics]
        batch_start, batch_end = cbs.batch_start, cbs.batch_end
        extra_sums = self.task.extra_sums
        world = distributed.world_size()
        # a batch source that does not shard itself (streamed data): take this worker's part
        shard_here = world > 1 and getattr(batches, "world_size", 1) != world
        named = self._metric_sets[0] if self._metric_sets else None
        for i in range(self.batch_in_epoch, len(batches)):
            xb, yb = batches.batch(perm, i)
            if world > 1:
                n_global = len(yb) if shard_here else batches.global_size(i)
                if shard_here:
                    xb, yb = distributed.shard(xb), distributed.shard(yb)
                self._loss_weight = distributed.loss_weight(len(yb), n_global, world)
                self.train_step.loss_weight = self._loss_weight
            step = self.step
            for cb in batch_start:
                cb.on_batch_start(self, step)
            logits = self._train_step(xb, yb, step)
            n = len(yb)
            # Metrics stay on the device: no host sync here.
            loss_sum.add_(self.last_loss, alpha=n)
            for (_, acc), v in zip(extra, extra_sums(logits.detach(), yb).values(), strict=True):
                acc.add_(v)
            if named is not None:  # metrics by name (torchmetrics), on the device
                named.update(logits, yb)
            self._seen += n
            self.step = step + 1
            self.batch_in_epoch = i + 1
            for cb in batch_end:
                cb.on_batch_end(self, step)
            if self.stop_training or self._interrupt:
                break
        if self._interrupt:
            raise KeyboardInterrupt
        self._end_epoch(epoch, val, t0)

    def _end_epoch(self, epoch: int, val, t0: float) -> None:
        cbs = self.callbacks
        # host sync: the one read of the epoch's metrics (all sums in one transfer), summed
        # over the workers first under DDP (one all-reduce per epoch).
        seen = torch.tensor(float(self._seen), dtype=torch.float64, device=self.device)
        totals = distributed.all_reduce_sum(torch.stack([*self._sums.values(), seen])).tolist()
        sums = dict(zip(self._sums, totals[:-1], strict=True))
        n = max(int(totals[-1]), 1)
        logs: dict[str, Any] = {"epoch": epoch}
        logs.update({k: v / n for k, v in sums.items()})
        if self._metric_sets:
            logs.update(self._metric_sets[0].compute())
        if val is not None:
            distributed.broadcast_buffers(self.model)  # every worker validates rank 0's model
            logs.update({f"val_{k}": v for k, v in self._evaluate(*val).items()})
        # The lr of the epoch's last step (the optimizer already holds the next step's).
        logs["lr"] = (float(self.schedule.lr_at(max(self.step - 1, 0))) if self.schedule
                      is not None else float(self.optimizer.param_groups[0]["lr"]))
        logs["steps"] = self.step
        logs["time"] = time.perf_counter() - t0
        cbs.call("on_validation_end", self, epoch, logs)
        if self.schedule is not None and self.status != "diverged":
            metric = logs.get("val_loss", logs.get("loss"))
            self.schedule.on_epoch_end(epoch, metric)
            if not self.train_step.per_step_lr:
                self._apply_lr()
        self.epoch = epoch
        self.batch_in_epoch = 0
        self._epoch_gen_state = None
        self.history.append(logs)
        cbs.call("on_epoch_end", self, epoch, logs)

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024
                  ) -> dict[str, float]:
        # float32: validation and the reported metrics never run under autocast
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, torch.Tensor] = {}
        named = self._metric_sets[1] if self._metric_sets else None
        with torch.no_grad():
            for lo in range(0, x.shape[0], batch_size):
                xb = x[lo:lo + batch_size]
                if _is_streamed(x):  # read from disk: move (and cast) each chunk
                    xb = xb.to(self.device, dtype=next(
                        (p.dtype for p in self.model.parameters() if p.is_floating_point()),
                        torch.float32))
                logits, yb = self.model(xb), y[lo:lo + batch_size]
                part = self.task.metric_sums(logits, yb)
                for k, v in part.items():
                    sums[k] = sums[k] + v if k in sums else v.to(torch.float64)
                if named is not None:
                    named.update(logits, yb)
        self.model.train(was_training)
        n = x.shape[0]
        values = torch.stack(list(sums.values())).tolist()  # host sync: once per evaluation
        out = {k: v / n for k, v in zip(sums, values, strict=True)}
        if named is not None:
            out.update(named.compute())
        return out

    def evaluate(self, x: Any, y: Any, *, batch_size: int = 1024) -> dict[str, float]:
        """Mean loss and metrics on ``(x, y)`` in eval mode (dropout off, BN running stats)."""
        x, y, n_outputs = self._prepare(x, y, "evaluate")
        self._ensure_metric_sets(n_outputs)
        return self._evaluate(x, y, batch_size)

    def predict_proba(self, x: Any, *, batch_size: int = 1024) -> torch.Tensor:
        """Probabilities (softmax / sigmoid; raw outputs for regression) on the CPU."""
        x = self._as_tensor(x, "predict.x")
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()),
                     torch.float32)
        x = x.to(self.device, dtype=dtype)
        was_training = self.model.training
        self.model.eval()
        outs = []
        with torch.no_grad():
            for lo in range(0, x.shape[0], batch_size):
                outs.append(self.task.probabilities(self.model(x[lo:lo + batch_size])))
        self.model.train(was_training)
        return torch.cat(outs).cpu()  # host sync: the result goes back to the caller

    def predict(self, x: Any, *, batch_size: int = 1024) -> torch.Tensor:
        """Class indices (multiclass), 0/1 (binary, multilabel) or values (regression)."""
        p = self.predict_proba(x, batch_size=batch_size)
        if self.task.name == "multiclass":
            return p.argmax(dim=-1)
        if self.task.name in ("binary", "multilabel"):
            return (p > 0.5).long()
        return p

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: plain tensors and primitives.

        Keys: ``format``, ``model`` (the uncompiled model's state_dict), ``optimizer``,
        ``schedule``, ``callbacks`` (by stable key), ``rng`` (torch CPU/CUDA, NumPy, Python),
        ``generator`` (shuffling) and ``epoch_generator`` (its state at the start of the
        current epoch), ``batch_in_epoch``, ``sums``/``seen`` (the current epoch's metric
        sums), ``step``, ``epoch``, ``epochs``, ``history``, ``status``, ``stop_training``.
        """
        return {
            "format": CHECKPOINT_FORMAT,
            "model": {k: v.detach().clone() for k, v in _unwrap(self.model).state_dict().items()},
            # A snapshot: torch's optimizer state_dict shares tensors updated in place.
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "callbacks": self.callbacks.state_dict(),
            "rng": get_rng_state(),
            # under DDP, every worker's own random state (dropout masks), by rank
            "rng_ranks": (distributed.all_gather_object(get_rng_state())
                          if distributed.is_distributed() else None),
            "precision": self.precision.state_dict(),
            "generator": self.generator.get_state(),
            "epoch_generator": self._epoch_gen_state,
            "batch_in_epoch": self.batch_in_epoch,
            "sums": {k: v.detach().cpu().clone() for k, v in self._sums.items()},
            "seen": self._seen,
            "step": self.step,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "history": self.history.to_list(),
            "status": self.status,
            "stop_training": self.stop_training,
            "divergence": self.divergence,
            "data": self._data,
            "epoch_time": (time.perf_counter() - self._epoch_t0) if self.batch_in_epoch else 0.0,
            "train_time": self.train_time,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next ``fit`` continues where it stopped.

        Raises:
            CheckpointError: the state does not come from a trainwell Trainer or does not fit
                this model.
        """
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError("not a trainwell training checkpoint (format "
                                  f"{state.get('format') if isinstance(state, dict) else None})")
        try:
            _unwrap(self.model).load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"the checkpoint does not fit this model/optimizer: {e}") from e
        self.callbacks.load_state_dict(state["callbacks"])
        self.generator.set_state(state["generator"])
        self._epoch_gen_state = state["epoch_generator"]
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self._sums = {k: v.to(self.device) for k, v in state["sums"].items()}
        self._seen = int(state["seen"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.epochs = int(state["epochs"])
        self.history = History(state["history"])
        self.status = state["status"]
        self.stop_training = bool(state["stop_training"])
        self.divergence = state.get("divergence")
        self._data = state.get("data")
        self._epoch_time_before = float(state.get("epoch_time") or 0.0)
        self._train_time_before = float(state.get("train_time") or 0.0)
        ranks = state.get("rng_ranks")
        if ranks and len(ranks) == distributed.world_size():
            set_rng_state(ranks[distributed.rank()])
        else:
            set_rng_state(state["rng"])
        self.precision.load_state_dict(state.get("precision"))
        self._pending = {"schedule": state["schedule"]}  # applied once fit builds the schedule
        self._resumed = True

    def _apply_pending(self) -> None:
        sched = self._pending.get("schedule") if self._pending else None
        if sched is not None and self.schedule is not None:
            self.schedule.load_state_dict(sched)
        self._pending = None

    # ------------------------------------------------------------------ Ctrl-C and SIGTERM
    def _install_sigint(self) -> dict[int, Any]:
        self._interrupt = self._hard_interrupt = False
        self.interrupt_signal = None
        if threading.current_thread() is not threading.main_thread() \
                or distributed.is_distributed():  # torchrun's launcher stops the workers
            return {}

        def handler(signum, frame):
            if self._interrupt:  # a second signal: stop now
                self._hard_interrupt = True
                raise KeyboardInterrupt
            self._interrupt = True  # finish the current step, then stop cleanly
            self.interrupt_signal = signum

        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
            if sig is None:
                continue
            try:
                current = signal.getsignal(sig)
                if current is signal.SIG_IGN or current is None:  # nohup, background jobs
                    continue
                previous[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass
        return previous

    def _restore_sigint(self, previous: dict[int, Any]) -> None:
        for sig, handler in (previous or {}).items():
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError, TypeError):
                pass
