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
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from trainwell.checks import check_device
from trainwell.config.fields import (
    _choice,
    _registry,
)
from trainwell.config.sections import (
    AugmentSection,
    DataSection,
    ModelSection,
    _bounds,
    _Section,
)
from trainwell.config.toml_text import to_toml
from trainwell.errors import ConfigError
from trainwell.train.metrics import check_metric_names
from trainwell.train.weighting import check_class_weight_spec

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
    momentum_form: str = _choice("pytorch", "`pytorch`: b ← βb + g; θ ← θ − ηb, or `keras`: the "
                                 "chapter's m ← βm − ηg; θ ← θ + m (differ under a schedule)",
                                 static=("pytorch", "keras"))
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
    step: str | None = _choice(None, "t counts `iteration`s (default) or `epoch`s (constant rate "
                               "within an epoch, decay_steps in epochs: Keras' "
                               "LearningRateScheduler)", static=("iteration", "epoch"))
    decay_steps: int | None = Field(None, ge=1, description=(
        "power: η0/(1+t/s)^c and exponential: η0·0.1^(t/s) — s in iterations, or in epochs "
        "with `step = \"epoch\"` (default: the whole run)"))
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
        "performance: smallest change that counts as an improvement (Keras: 1e-4)"))
    max_lr: float | str | None = Field(None, description=(
        "onecycle: peak rate (default optimizer.lr); `\"auto\"` = the LR finder's suggestion, "
        "measured before training and saved in the run's recipe.toml"))
    start_div: float | None = Field(None, **_bounds("schedule.start_div"), description=(
        "onecycle: start at max_lr/start_div"))
    final_div: float | None = Field(None, **_bounds("schedule.final_div"), description=(
        "onecycle: end at max_lr/final_div (the chapter's OneCycleScheduler: 10000)"))
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


_MONITORS = ("val_loss", "val_accuracy", "val_mae", "loss", "accuracy", "mae")


class TrainSection(_Section):
    """``[train]``: the loop (→ ``Trainer`` / ``Trainer.fit``), early stopping, checkpoints."""

    section: ClassVar[str] = "train"
    epochs: int = Field(15, **_bounds("train.epochs"), description="passes over the training set")
    batch_size: int = Field(64, **_bounds("train.batch_size"), description="samples per iteration")
    shuffle: bool = Field(True, description="reshuffle the training set every epoch")
    seed: int = Field(0, **_bounds("train.seed"), description="seed of every random draw (init, shuffling, dropout)")
    device: str = Field("auto", description="`auto`, `cpu`, `cuda`, `cuda:N` or `mps`")
    compile: bool | Literal["auto"] = Field("auto", description="compile the whole training step (forward, backward, optimizer update) into one graph: `true`, `false`, or `auto` (compile a run of at least 20,000 steps, 10,000 once the same step is in the disk cache: where it pays for itself); compiling costs seconds to minutes once per network shape (kept in a disk cache), later steps are up to ~1.4x faster")
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
    mlflow: bool = Field(False, description="log the finished run to MLflow: the recipe as parameters, per-epoch and final metrics, report, summary and model as artifacts; needs trainwell[mlflow]")
    mlflow_uri: str = Field("", description="MLflow tracking URI or folder; empty = a local `mlruns/` folder in the working directory")
    metrics: Annotated[list[str], AfterValidator(check_metric_names)] = Field(default_factory=list, description="more metrics every epoch, on training and validation data (computed on the device): `f1`, `precision`, `recall`, `auc`, `top_5` (any `top_N`; multiclass) for classification, `mse`, `rmse`, `r2` for regression")
    label_smoothing: float = Field(0.0, **_bounds("train.label_smoothing"), description="ε of label smoothing for cross_entropy and bce: targets (1 − ε)·one-hot + ε/K, as Keras' `label_smoothing` (0 = off); the reported losses are the smoothed ones")
    class_weight: Annotated[str | list[float] | dict[str, float], AfterValidator(
        lambda v: check_class_weight_spec(v, "train.class_weight"))] = Field("none", description="`none`, `balanced` (class c weighs n / (n_classes · n_c)), one weight per class `[1.0, 3.0]` or `{\"1\" = 3.0}`; multiplies each sample's loss (multiclass, binary)")

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

    @model_validator(mode="after")
    def _label_smoothing(self) -> Recipe:
        # A regression loss named in the recipe: refuse before any data is read.
        ls, m = self.train.label_smoothing, self.model
        if ls and (m.loss in ("mse", "huber") or m.task == "regression"):
            raise ConfigError("train.label_smoothing", ls, "0 with a regression loss (label "
                              "smoothing is for the classification losses cross_entropy, bce)")
        return self

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
