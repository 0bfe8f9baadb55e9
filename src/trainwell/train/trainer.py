"""The Trainer: a thin, fast loop over tensors that already live on the device.

Each batch is one call of the training step (:class:`~trainwell.train.step.TrainStep`:
forward, loss + ℓ1/ℓ2 kernel penalty, backward, ``on_after_backward``, clip, optimizer step,
max-norm, learning-rate schedule — the one update body, compiled or not). Metrics accumulate in
device tensors and are read once per epoch (the one host sync, marked below).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

import trainwell.train.distributed as distributed
from trainwell.checks import check_field
from trainwell.errors import ConfigError, TrainwellRuntimeWarning
from trainwell.tasks import Task
from trainwell.train.batches import BatchIterator
from trainwell.train.callbacks import Callback, CallbackList, CancelStep
from trainwell.train.checkpoint import find_checkpoint
from trainwell.train.device import _is_streamed, resolve_device
from trainwell.train.history import History
from trainwell.train.metrics import MetricSet, check_metrics
from trainwell.train.precision import Precision
from trainwell.train.rng import seed_everything
from trainwell.train.step import TrainStep
from trainwell.train.trainer_eval import EvaluationMixin
from trainwell.train.trainer_inputs import InputsMixin
from trainwell.train.trainer_phases import PhasesMixin
from trainwell.train.trainer_state import CHECKPOINT_FORMAT, StateMixin
from trainwell.train.weighting import fit_weights, resolve_task, with_weights

__all__ = ["Trainer", "resolve_device", "CHECKPOINT_FORMAT"]


class Trainer(InputsMixin, PhasesMixin, EvaluationMixin, StateMixin):
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
        self._decide_compile(batch_size)  # compile = "auto": is the run long enough?
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
        self.train_step.reguard()  # callbacks may have changed the network since the last epoch
        sums = self._sums
        loss_sum = sums["loss"]
        extra = [(k, sums[k]) for k in self.task.metrics]
        batch_start, batch_end = cbs.batch_start, cbs.batch_end
        extra_sums = self.task.extra_sums
        world = distributed.world_size()
        # a batch source that does not shard itself (no world_size of N): take this worker's part
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
