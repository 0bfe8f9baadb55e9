"""The recipe schema: typed sections whose fields, defaults and accepted values users write.

A recipe is a TOML file with the sections ``[data]``, ``[model]``, ``[regularization]``,
``[optimizer]``, ``[schedule]`` and ``[train]`` plus a top-level ``name`` and ``description``.
Every field name equals the keyword argument of the lower layer it feeds
(:func:`trainwell.data.load_dataset`, :func:`trainwell.nn.build_model`,
:func:`trainwell.optim.make_optimizer`, :func:`trainwell.optim.make_schedule`,
:class:`trainwell.train.Trainer`), so a recipe is plain data that the glue unpacks.

The defaults follow the chapter's *Practical Guidelines* (3rd edition, Table 11-3): He
initialization (``init="auto"`` matches the activation), ReLU for a shallow network, no
normalization, early stopping, Nesterov momentum and 1cycle scheduling.

Bad values raise one :class:`~trainwell.errors.ConfigError` naming the dotted field, the value
received and what is accepted, e.g.
``model.activation: received 'relu6'; expected one of sigmoid, tanh, relu, ...``.

Example:
    >>> Recipe().optimizer.name, Recipe().train.epochs
    ('nesterov', 15)
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trainwell.checks import RANGES, check_device
from trainwell.config.fields import (
    _canonical,
    _choice,
    _choices_of,
    _names,
    _registry,
)
from trainwell.config.toml_text import to_toml
from trainwell.errors import ConfigError

__all__ = [
    "Recipe",
    "DataSection",
    "ModelSection",
    "RegularizationSection",
    "OptimizerSection",
    "ScheduleSection",
    "TrainSection",
    "AugmentSection",
    "SECTIONS",
    "schedule_params",
    "UnknownFieldError",
]


def _library_default(name: str) -> Any:
    """A default the optimizer owns (``make_optimizer``'s signature), read when a recipe is made."""
    def default() -> Any:
        from trainwell.optim.optimizers import HYPERPARAMETERS

        return HYPERPARAMETERS[name]

    return default


def _bounds(path: str) -> dict[str, float]:
    """The bounds of a numeric field, from the table the library checks with (one rule each)."""
    return RANGES[path].bounds()


class UnknownFieldError(ConfigError):
    """A recipe key that does not exist: ``train.epoch: unknown field; expected one of ...``."""

    def __init__(self, field: str, value: object, accepted: str | Iterable[object],
                 what: str = "field"):
        super().__init__(field, value, accepted)
        close = difflib.get_close_matches(str(value), [str(a) for a in accepted], n=1) \
            if not isinstance(accepted, str) else []
        hint = f" (did you mean {close[0]}?)" if close else ""
        self.args = (f"{field}: unknown {what}{hint}; expected {self.accepted}",)


# --------------------------------------------------------------------------- sections
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    section: ClassVar[str] = ""

    @field_validator("*", mode="after")
    @classmethod
    def _check_choice(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields[info.field_name]
        choices = _choices_of(field)
        if choices is None or value is None:
            return value
        options, registry = choices
        key = value.strip().lower().replace("-", "_")
        extra = field.json_schema_extra
        if key in extra["static"]:
            return key
        if registry:
            name = _canonical(registry, value)
            if name is not None:
                return name
        raise ConfigError(f"{cls.section}.{info.field_name}", value, options)



class DataSection(_Section):
    """``[data]``: which dataset, how it is split and scaled (→ ``load_dataset``)."""

    section: ClassVar[str] = "data"
    dataset: str = Field("fashion_mnist", description=(
        "a built-in dataset name, `npz`/`csv` (with `path`), or a path to a .npz/.csv file"))
    path: str | None = Field(None, description="file for `dataset = \"npz\"` or `\"csv\"`")
    target: str = Field("target", description="CSV column holding the target")
    validation: int | float = Field(5000, description=(
        "validation set: a count of training samples (int ≥ 0) or a fraction in (0, 1)"))
    stratify: bool = Field(True, description="keep the class proportions in the validation split")
    standardize: bool = Field(True, description="scale features to mean 0, std 1 (train stats)")
    flatten: bool = Field(False, description="flatten each sample to a vector when loading")
    classes: list[int | str] | None = Field(None, description="keep only these classes")
    train_limit: int = Field(0, **_bounds("data.train_limit"), description="use at most this many training samples (0 = all)")
    stream: bool | str = Field("auto", description=(
        "read `images`/`npy` data from disk batch by batch (true), hold it in memory (false), "
        "or stream when it would take over a quarter of the memory (\"auto\")"))
    skip_bad: bool = Field(False, description=(
        "skip unreadable or odd-sized images (counted in the summary) instead of stopping"))
    workers: int = Field(-1, ge=-1, description=(
        "DataLoader worker processes when streaming (-1 = auto: up to 4, 0 on 2 cores)"))

    @field_validator("stream", mode="before")
    @classmethod
    def _stream(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() == "auto"):
            return value if isinstance(value, bool) else "auto"
        raise ConfigError("data.stream", value, '"auto", true or false')

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        if value.lower().endswith((".npz", ".csv")):
            return value
        name = _canonical("dataset", value)
        if name is None:
            raise ConfigError("data.dataset", value,
                              f"one of {', '.join(_names('dataset'))} or a path to a .npz/.csv file")
        return name

    @field_validator("validation")
    @classmethod
    def _validation(cls, value: int | float) -> int | float:
        ok = (value >= 0) if isinstance(value, int) else (0 < value < 1)
        if isinstance(value, bool) or not ok:
            raise ConfigError("data.validation", value,
                              "an integer count ≥ 0 or a fraction in (0, 1)")
        return value

    @model_validator(mode="after")
    def _path_needed(self) -> DataSection:
        if self.dataset in ("npz", "csv") and not self.path:
            raise ConfigError("data.path", self.path,
                              f"a path to a .{self.dataset} file when data.dataset = {self.dataset!r}")
        if self.dataset in ("images", "npy") and not self.path:
            what = "a folder of class subfolders of images (root/<class>/*.png)" \
                if self.dataset == "images" else "a folder holding x.npy and y.npy"
            raise ConfigError("data.path", self.path,
                              f"{what} when data.dataset = {self.dataset!r}")
        return self


class ModelSection(_Section):
    """``[model]``: the network (→ ``build_model``) and its task/loss."""

    section: ClassVar[str] = "model"
    kind: str = _choice("mlp", "`mlp` (dense), `cnn` (convolutional base `conv` + dense "
                        "`hidden`), or `module` (your factory, see `module`)",
                        static=("mlp", "cnn", "module"))
    conv: list[Any] | None = Field(None, description=(
        "kind = \"cnn\": [filters, kernel] (or [filters, kernel, stride]) and \"pool\", "
        "\"avgpool\", \"gap\" items, e.g. [[32, 3], [32, 3], \"pool\", [64, 3], \"pool\"] "
        "(default: that base with two [64, 3])"))
    module: str | None = Field(None, description=(
        "your network: \"package.module:factory\" or \"file.py:factory\", a function of "
        "(input_shape, n_outputs, **[model.args]) returning an nn.Module that outputs logits"))
    args: dict[str, Any] = Field(default_factory=dict, description=(
        "[model.args]: extra keyword arguments of the `module` factory"))
    hidden: list[int] = Field([300, 100], description="units of each hidden layer")
    activation: str = _choice("relu", "hidden-layer activation", registry="activation")
    init: str = _choice("auto", "kernel initializer; `auto` matches the activation "
                        "(glorot: sigmoid/tanh, he: ReLU family/ELU/GELU/Swish/Mish, lecun: SELU)",
                        registry="initializer", static=("auto",))
    init_distribution: str = _choice("normal", "draw initial weights from a normal or a "
                                     "uniform distribution", static=("normal", "uniform"))
    batch_norm: str = _choice("none", "batch normalization in each hidden layer, before or "
                              "after the activation", static=("none", "before", "after"))
    bn_momentum: float = Field(0.99, **_bounds("model.bn_momentum"), description=(
        "Keras convention: running ← running·m + batch·(1−m)"))
    bn_epsilon: float = Field(1e-5, **_bounds("model.bn_epsilon"), description="added to the variance in batch norm")
    leaky_slope: float = Field(0.01, **_bounds("model.leaky_slope"), description="α of leaky_relu")
    task: str = _choice("auto", "`auto` takes the task of the dataset", registry="task",
                        static=("auto",))
    sync_batch_norm: bool = Field(False, description="with several processes (--nproc, "
                                  "torchrun): batch norm statistics over the global batch "
                                  "(SyncBatchNorm, CUDA); off: each process uses its own shard's")
    loss: str = _choice("auto", "`auto` = the task's loss (multiclass: cross_entropy, binary/"
                        "multilabel: bce, regression: mse); huber for regression with outliers",
                        static=("auto", "cross_entropy", "bce", "mse", "huber"))

    @field_validator("hidden", mode="before")
    @classmethod
    def _hidden(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                           for v in value):
            if any(v < 1 for v in value):
                raise ConfigError("model.hidden", value, "a list of integers ≥ 1, e.g. [300, 100]")
            return value
        raise ConfigError("model.hidden", value, "a list of integers ≥ 1, e.g. [300, 100]")

    @field_validator("conv", mode="after")
    @classmethod
    def _conv(cls, value: Any) -> Any:
        if value is None:
            return value
        from trainwell.nn.conv import parse_conv  # the one parser of the block list

        parse_conv(value)
        return value

    @model_validator(mode="after")
    def _kind_fits(self) -> ModelSection:
        if self.kind == "module" and not self.module:
            raise ConfigError("model.module", self.module, "\"package.module:factory\" or "
                              "\"file.py:factory\" when model.kind = \"module\"")
        if self.module and self.kind == "cnn":
            raise ConfigError("model.kind", self.kind, "\"module\" (or leave it out) when "
                              "model.module names your factory")
        if self.conv is not None and self.kind != "cnn":
            raise ConfigError("model.conv", self.conv, "no conv list unless model.kind = "
                              "\"cnn\"")
        return self

    def network_kind(self) -> str:
        """``"module"`` when a factory is named, else ``kind``."""
        return "module" if self.module else self.kind


class RegularizationSection(_Section):
    """``[regularization]``: penalties, dropout and max-norm."""

    section: ClassVar[str] = "regularization"
    l1: float = Field(0.0, **_bounds("regularization.l1"), description="ℓ1 penalty l1·Σ|w| on kernels (not biases)")
    l2: float = Field(0.0, **_bounds("regularization.l2"), description="ℓ2 penalty l2·Σw² on kernels (not biases)")
    dropout: float = Field(0.0, **_bounds("regularization.dropout"), description="dropout rate after each hidden layer")
    dropout_kind: str = _choice("auto", "`auto` = alpha dropout for SELU, standard otherwise",
                                static=("auto", "standard", "alpha"))
    dropout_top_k: int = Field(0, **_bounds("regularization.dropout_top_k"), description=(
        "apply dropout only to the top k hidden layers (0 = all)"))
    input_dropout: float = Field(0.0, **_bounds("regularization.input_dropout"), description="dropout rate on the inputs")
    max_norm: float = Field(0.0, **_bounds("regularization.max_norm"), description=(
        "after each step rescale each unit's incoming weights to ‖w‖₂ ≤ r (0 = off)"))


class OptimizerSection(_Section):
    """``[optimizer]``: the optimizer (→ ``make_optimizer``) and gradient clipping."""

    section: ClassVar[str] = "optimizer"
    name: str = _choice("nesterov", "optimizer", registry="optimizer")
    lr: float = Field(0.05, **_bounds("optimizer.lr"), description="learning rate η (the peak rate under 1cycle)")
    momentum: float = Field(0.9, **_bounds("optimizer.momentum"), description="momentum β (sgd/momentum/nesterov)")
    beta_1: float = Field(0.9, **_bounds("optimizer.beta_1"), description="β1 of Adam-family optimizers")
    beta_2: float = Field(0.999, **_bounds("optimizer.beta_2"), description="β2 of Adam-family optimizers")
    rho: float = Field(0.9, **_bounds("optimizer.rho"), description="decay ρ of RMSProp")
    epsilon: float = Field(default_factory=_library_default("epsilon"),
                           **_bounds("optimizer.epsilon"), description="smoothing term ε")
    weight_decay: float = Field(0.0, **_bounds("optimizer.weight_decay"), description="decoupled weight decay (AdamW) or L2")
    clip_value: float = Field(0.0, **_bounds("optimizer.clip_value"), description="clip each gradient element to [−v, v] (0 = off)")
    clip_norm: float = Field(0.0, **_bounds("optimizer.clip_norm"), description="clip each gradient tensor's ℓ2 norm (0 = off)")
    clip_global_norm: float = Field(0.0, **_bounds("optimizer.clip_global_norm"), description=(
        "clip the ℓ2 norm of all gradients together (0 = off)"))

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerSection:
        if self.name == "nesterov" and self.momentum <= 0:  # make_optimizer refuses it too
            raise ConfigError("optimizer.momentum", self.momentum,
                              "a number in (0, 1) for nesterov")
        return self


_SCHEDULE_REQUIRED: dict[str, tuple[str, ...]] = {"piecewise": ("boundaries", "values")}


def schedule_params() -> dict[str, tuple[str, ...]]:
    """``{schedule name: its parameter names}``, from the schedule registry."""
    return {name: tuple(e.meta.get("params", {})) for name, e in _registry("schedule").items()}


_MAX_LR_ACCEPTED = 'a number > 0 or "auto" (the LR finder\'s suggestion)'


class ScheduleSection(_Section):
    """``[schedule]``: the learning-rate schedule (→ ``make_schedule``), stepped every iteration.

    Parameters left unset take the schedule's own default; parameters of other schedules are
    kept but ignored (so ``--set schedule.name=...`` works on any recipe).
    """

    section: ClassVar[str] = "schedule"
    name: str = _choice("onecycle", "learning-rate schedule", registry="schedule")
    decay_steps: int | None = Field(None, ge=1, description=(
        "power: η0/(1+t/s)^c and exponential: η0·0.1^(t/s) — s in iterations "
        "(default: all iterations of the run)"))
    power: float | None = Field(None, **_bounds("schedule.power"), description="power: exponent c")
    boundaries: list[float] | None = Field(None, description="piecewise: epochs where the rate changes")
    values: list[float] | None = Field(None, description="piecewise: rates, one more than boundaries")
    factor: float | None = Field(None, **_bounds("schedule.factor"), description=(
        "performance: multiply the rate by this after `patience` epochs without improvement"))
    patience: int | None = Field(None, **_bounds("schedule.patience"), description="performance: epochs to wait")
    min_lr: float | None = Field(None, **_bounds("schedule.min_lr"), description="performance: lower bound")
    mode: str | None = _choice(None, "performance: `min` for a loss, `max` for an accuracy",
                               static=("min", "max"))
    min_delta: float | None = Field(None, **_bounds("schedule.min_delta"), description=(
        "performance: smallest change that counts as an improvement"))
    max_lr: float | str | None = Field(None, description=(
        "onecycle: peak rate (default optimizer.lr); `\"auto\"` = the LR finder's suggestion, "
        "measured before training and saved in the run's recipe.toml"))
    start_div: float | None = Field(None, **_bounds("schedule.start_div"), description=(
        "onecycle: start at max_lr/start_div"))
    final_div: float | None = Field(None, **_bounds("schedule.final_div"), description=(
        "onecycle: end at max_lr/final_div"))
    warmup_frac: float | None = Field(None, **_bounds("schedule.warmup_frac"), description=(
        "onecycle: fraction of iterations going up"))
    anneal_frac: float | None = Field(None, **_bounds("schedule.anneal_frac"), description=(
        "onecycle: fraction of iterations for the final anneal"))
    max_momentum: float | None = Field(None, **_bounds("schedule.max_momentum"), description="onecycle: momentum at the start and the end")
    min_momentum: float | None = Field(None, **_bounds("schedule.min_momentum"), description="onecycle: momentum at the peak rate")

    @field_validator("max_lr", mode="before")
    @classmethod
    def _max_lr(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and value > 0):
            return float(value)
        raise ConfigError("schedule.max_lr", value, _MAX_LR_ACCEPTED)

    @model_validator(mode="after")
    def _params_fit_schedule(self) -> ScheduleSection:
        for field in _SCHEDULE_REQUIRED.get(self.name, ()):
            if getattr(self, field) is None:
                raise ConfigError(f"schedule.{field}", None, "a value: schedule "
                                  f"{self.name!r} requires {', '.join(_SCHEDULE_REQUIRED[self.name])}")
        if self.name == "piecewise":
            b, v = self.boundaries or [], self.values or []
            if len(v) != len(b) + 1:
                raise ConfigError("schedule.values", v,
                                  f"{len(b) + 1} rates (one more than the {len(b)} boundaries)")
            if any(x <= 0 for x in v):
                raise ConfigError("schedule.values", v, "rates > 0")
            if any(x <= 0 for x in b) or list(b) != sorted(b):
                raise ConfigError("schedule.boundaries", b, "increasing epochs > 0")
        # rules across fields, with the schedule's own defaults for unset ones (as it builds)
        own = _registry("schedule").get(self.name).meta["params"] if self.name == "onecycle" \
            else {}
        value = {k: getattr(self, k) if getattr(self, k) is not None else own.get(k)
                 for k in ("min_momentum", "max_momentum", "warmup_frac", "anneal_frac")}
        if (value["min_momentum"] is not None and value["max_momentum"] is not None
                and value["min_momentum"] > value["max_momentum"]):
            raise ConfigError("schedule.min_momentum", value["min_momentum"],
                              f"a value ≤ schedule.max_momentum ({value['max_momentum']})")
        if (value["warmup_frac"] is not None and value["anneal_frac"] is not None
                and value["warmup_frac"] + value["anneal_frac"] >= 1):
            raise ConfigError("schedule.warmup_frac", value["warmup_frac"],
                              f"a number < 1 − schedule.anneal_frac = {1 - value['anneal_frac']:g}")
        return self

    def params(self) -> dict[str, Any]:
        """The parameters set for the named schedule (unset ones and other schedules' omitted)."""
        own = schedule_params().get(self.name)
        return {k: v for k, v in self.model_dump().items()
                if k != "name" and v is not None and (own is None or k in own)}


class AugmentSection(_Section):
    """``[augment]``: random changes to each training batch, on the device (off at evaluation)."""

    section: ClassVar[str] = "augment"
    flip: bool = Field(False, description="flip each training image left-right with p = 0.5")
    crop_padding: int = Field(0, ge=0, description=(
        "pad each training image by this many pixels and crop it back at a random offset "
        "(0 = off)"))
    noise_std: float = Field(0.0, ge=0, description=(
        "add Gaussian noise of this std to the (standardized) training inputs (0 = off)"))

    def active(self) -> bool:
        return self.flip or self.crop_padding > 0 or self.noise_std > 0


_MONITORS = ("val_loss", "val_accuracy", "val_mae", "loss", "accuracy", "mae")


class TrainSection(_Section):
    """``[train]``: the loop (→ ``Trainer`` / ``Trainer.fit``), early stopping, checkpoints."""

    section: ClassVar[str] = "train"
    epochs: int = Field(15, **_bounds("train.epochs"), description="passes over the training set")
    batch_size: int = Field(64, **_bounds("train.batch_size"), description="samples per iteration")
    shuffle: bool = Field(True, description="reshuffle the training set every epoch")
    seed: int = Field(0, **_bounds("train.seed"), description="seed of every random draw (init, shuffling, dropout)")
    device: str = Field("auto", description="`auto`, `cpu`, `cuda`, `cuda:N` or `mps`")
    compile: bool = Field(False, description="compile the whole training step (forward, backward, optimizer update) into one graph; the first epoch includes seconds to a minute of compilation, later steps are up to ~1.7x faster")
    early_stopping: bool = Field(True, description="stop when `monitor` stops improving")
    patience: int = Field(10, **_bounds("train.patience"), description="early stopping: epochs without improvement")
    min_delta: float = Field(0.0, **_bounds("train.min_delta"), description="early stopping: smallest improvement")
    monitor: str = _choice("val_loss", "metric for early stopping and the best checkpoint",
                           static=_MONITORS)
    restore_best: bool = Field(True, description="early stopping: restore the best weights")
    checkpoint_every_epochs: int = Field(1, **_bounds("train.checkpoint_every_epochs"), description="checkpoint period in epochs (0 = off)")
    checkpoint_every_steps: int = Field(0, **_bounds("train.checkpoint_every_steps"), description="checkpoint period in iterations (0 = off)")
    diagnose: bool = Field(False, description="record per-layer gradient health (GradientProbe)")
    diagnose_every: int = Field(50, **_bounds("train.diagnose_every"), description="diagnosis: sample every this many iterations")
    precision: str = _choice("fp32", "number format of the forward pass: `bf16` and `fp16` "
                             "run it under autocast (fp16 with a gradient scaler, GPU only); "
                             "weights, validation and metrics stay float32",
                             static=("fp32", "bf16", "fp16"))
    tensorboard: bool = Field(False, description="also log the learning curves (and, with diagnose, the gradient-health statistics) to RUN/tensorboard; needs trainwell[tensorboard]")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device("train.device", value)


SECTIONS: dict[str, type[_Section]] = {
    "data": DataSection,
    "model": ModelSection,
    "regularization": RegularizationSection,
    "optimizer": OptimizerSection,
    "schedule": ScheduleSection,
    "train": TrainSection,
    "augment": AugmentSection,
}
_TOP_LEVEL = ("name", "description", *SECTIONS)


class Recipe(BaseModel):
    """A complete, validated training recipe.

    Build one with :func:`load_recipe`, :func:`resolve` (built-in name or file),
    :func:`recipe_from_dict` or ``Recipe()`` (the defaults), never by ``exec``-ing code.

    Example:
        >>> Recipe().optimizer.name, Recipe().schedule.name, Recipe().model.init
        ('nesterov', 'onecycle', 'auto')
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    name: str = Field("run", description="names the run directory (letters, digits, - _ .)")
    description: str = Field("", description="one line shown by `trainwell recipes`")
    data: DataSection = Field(default_factory=DataSection)
    model: ModelSection = Field(default_factory=ModelSection)
    regularization: RegularizationSection = Field(default_factory=RegularizationSection)
    optimizer: OptimizerSection = Field(default_factory=OptimizerSection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    train: TrainSection = Field(default_factory=TrainSection)
    augment: AugmentSection = Field(default_factory=AugmentSection)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if re.fullmatch(r"[A-Za-z0-9_.\-]+", value) is None or value.startswith("."):
            raise ConfigError("name", value, "letters, digits, '-', '_' or '.' (no spaces)")
        return value

    def to_toml(self) -> str:
        """The recipe as TOML text (``None`` fields are omitted; loading restores them)."""
        return to_toml(self)

    def flat(self) -> dict[str, Any]:
        """``{"model.hidden": [300, 100], ...}`` for every field."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        for sec in SECTIONS:
            for k, v in getattr(self, sec).model_dump().items():
                out[f"{sec}.{k}"] = v
        return out
