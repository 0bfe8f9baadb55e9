"""Recipe sections: the base class that checks choices, ``[data]``, ``[model]``, ``[augment]``.

The other sections and the :class:`~trainwell.config.schema.Recipe` itself live in
:mod:`trainwell.config.schema`, which re-exports these.
"""

from __future__ import annotations

import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trainwell.checks import RANGES
from trainwell.config.fields import _bounds_text, _canonical, _choice, _choices_of, _names
from trainwell.errors import ConfigError

__all__ = ["DataSection", "ModelSection", "AugmentSection"]


def _bounds(path: str) -> dict[str, float]:
    """The bounds of a numeric field, from the table the library checks with (one rule each)."""
    return RANGES[path].bounds()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    section: ClassVar[str] = ""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: Any) -> Any:
        ann = cls.model_fields[info.field_name].annotation  # pydantic would read true as 1
        if isinstance(value, bool) and ann is not bool and bool not in typing.get_args(ann):
            text = str(ann)
            noun = "an integer" if "int" in text and "float" not in text else "a number"
            raise ConfigError(f"{cls.section}.{info.field_name}", value,
                              _bounds_text(cls.model_fields[info.field_name], noun))
        return value

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
    hidden: list[int] = Field([300, 100], description="units of each hidden layer; "
                              "`{layers = 100, units = 100}` is 100 layers of 100 units")
    activation: str = _choice("relu", "hidden-layer activation", registry="activation")
    init: str = _choice("auto", "kernel initializer; `auto` matches the activation "
                        "(glorot: sigmoid/tanh, he: ReLU family/ELU/GELU/Swish/Mish, lecun: SELU)",
                        registry="initializer", static=("auto",))
    init_distribution: str = _choice(
        "truncated_normal", "draw initial weights from a truncated normal (Keras' "
        "`he_normal`/`lecun_normal`: cut at ±2 std, same σ²; steadier in very deep nets), a "
        "normal N(0, σ²) or a uniform distribution",
        static=("normal", "truncated_normal", "uniform"))
    output_init: str = _choice("same", "the output layer's initializer: `same` follows `init` "
                               "(glorot for `auto`), or a name (Keras: glorot)",
                               registry="initializer", static=("same",))
    batch_norm: str = _choice("none", "batch normalization in each hidden layer, before or "
                              "after the activation", static=("none", "before", "after"))
    bn_momentum: float = Field(0.99, **_bounds("model.bn_momentum"), description=(
        "Keras convention: running ← running·m + batch·(1−m)"))
    input_batch_norm: bool = Field(False, description="batch norm on the (flattened) inputs, "
                                   "as in the chapter's batch-norm model")
    bn_epsilon: float = Field(1e-5, **_bounds("model.bn_epsilon"), description=(
        "ε added to the variance in batch norm (PyTorch 1e-5; Keras 1e-3)"))
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
        from trainwell.nn.builder import expand_hidden  # the builder's own check

        return expand_hidden(value)

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

class AugmentSection(_Section):
    """``[augment]``: random changes to each training batch, on the device (off at evaluation)."""

    section: ClassVar[str] = "augment"
    flip: bool = Field(False, description="flip each training image left-right with p = 0.5")
    crop_padding: int = Field(0, **_bounds("augment.crop_padding"), description=(
        "pad each training image by this many pixels and crop it back at a random offset "
        "(0 = off)"))
    noise_std: float = Field(0.0, **_bounds("augment.noise_std"), description=(
        "add Gaussian noise of this std to the (standardized) training inputs (0 = off)"))

    def active(self) -> bool:
        return self.flip or self.crop_padding > 0 or self.noise_std > 0
