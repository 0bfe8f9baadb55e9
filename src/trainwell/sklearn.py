"""scikit-learn estimators: trainwell networks inside Pipeline, GridSearchCV, cross_val_score.

``TrainwellClassifier`` and ``TrainwellRegressor`` build a dense network with
:func:`~trainwell.build_model` and train it with :class:`~trainwell.Trainer`; their
parameters are the recipe's fields (``hidden``, ``activation``, ``dropout``, ``optimizer``,
``lr``, ``epochs``, ...), so ``get_params``/``set_params``, ``clone`` and grid searches work
as with any scikit-learn estimator. Needs scikit-learn (``pip install "trainwell[sklearn]"``).

Example:
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.model_selection import GridSearchCV
    >>> from trainwell.sklearn import TrainwellClassifier
    >>> pipe = make_pipeline(StandardScaler(), TrainwellClassifier(hidden=(32,), epochs=5))
    >>> search = GridSearchCV(pipe, {"trainwellclassifier__lr": [1e-3, 1e-2],
    ...                              "trainwellclassifier__activation": ["relu", "elu"]})
    >>> # search.fit(X, y); search.best_params_
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

__all__ = ["TrainwellClassifier", "TrainwellRegressor"]


class _TrainwellEstimator(BaseEstimator):
    _task = "multiclass"

    def __init__(self, hidden: tuple[int, ...] = (100,), activation: str = "relu",
                 init: str = "auto", batch_norm: str = "none", dropout: float = 0.0,
                 optimizer: str = "adam", lr: float = 0.01, schedule: str = "constant",
                 epochs: int = 30, batch_size: int = 32, l1: float = 0.0, l2: float = 0.0,
                 max_norm: float = 0.0, clip_norm: float = 0.0, validation_split: float = 0.0,
                 metrics: tuple[str, ...] | None = None, device: str = "cpu",
                 random_state: int = 0, verbose: int = 0):
        self.hidden = hidden
        self.activation = activation
        self.init = init
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.optimizer = optimizer
        self.lr = lr
        self.schedule = schedule
        self.epochs = epochs
        self.batch_size = batch_size
        self.l1 = l1
        self.l2 = l2
        self.max_norm = max_norm
        self.clip_norm = clip_norm
        self.validation_split = validation_split
        self.metrics = metrics
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _train(self, x: np.ndarray, y: np.ndarray, n_outputs: int, **fit_kwargs: Any) -> None:
        from trainwell.nn import build_model
        from trainwell.train import Trainer

        sw = fit_kwargs.get("sample_weight")
        if sw is not None:
            sw = _check_sample_weight(sw, x, dtype=np.float64, ensure_non_negative=True)
            if not sw.any():
                raise ValueError("sample_weight: all weights are zero; nothing to learn from")
            fit_kwargs["sample_weight"] = sw
        seed = 0 if self.random_state is None else int(self.random_state)
        torch.manual_seed(seed)
        model = build_model(input_shape=x.shape[1], n_outputs=n_outputs, task=self._task,
                            hidden=list(self.hidden), activation=self.activation,
                            init=self.init, batch_norm=self.batch_norm, dropout=self.dropout)
        trainer = Trainer(model, task=self._task, optimizer=self.optimizer, lr=self.lr,
                          schedule=self.schedule, l1=self.l1, l2=self.l2,
                          max_norm=self.max_norm, clip_norm=self.clip_norm,
                          metrics=self.metrics, device=self.device, seed=seed)
        # more samples than a batch holds need at least one batch per step
        self.history_ = trainer.fit(x, y, epochs=int(self.epochs),
                                    batch_size=min(int(self.batch_size), len(x)),
                                    validation_split=self.validation_split,
                                    verbose=self.verbose, **fit_kwargs).to_list()
        # float64 on the CPU: predictions that do not depend on how samples are batched
        self.model_ = trainer.model.to("cpu", torch.float64).eval()

    def _outputs(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "model_")
        x = validate_data(self, X, reset=False, dtype=np.float32)
        dtype = next(self.model_.parameters()).dtype
        with torch.no_grad():
            return self.model_(torch.as_tensor(x, dtype=dtype))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        if self._task == "regression":
            tags.target_tags.multi_output = True
        return tags


class TrainwellClassifier(ClassifierMixin, _TrainwellEstimator):
    """A trainwell network as a scikit-learn classifier (softmax over the classes).

    Parameters are those of :func:`~trainwell.build_model` and :class:`~trainwell.Trainer`
    (the recipe's fields): ``hidden``, ``activation``, ``init``, ``batch_norm``, ``dropout``,
    ``optimizer``, ``lr``, ``schedule``, ``epochs``, ``batch_size``, ``l1``, ``l2``,
    ``max_norm``, ``clip_norm``, ``validation_split``, ``metrics``, ``device``,
    ``random_state`` (the seed), ``verbose``; ``class_weight`` as in scikit-learn
    (``"balanced"`` or ``{label: weight}``).

    Attributes:
        classes_, n_features_in_, model_ (the trained ``nn.Module``, on the CPU),
        history_ (one dict per epoch).
    """

    _task = "multiclass"

    def __init__(self, hidden: tuple[int, ...] = (100,), activation: str = "relu",
                 init: str = "auto", batch_norm: str = "none", dropout: float = 0.0,
                 optimizer: str = "adam", lr: float = 0.01, schedule: str = "constant",
                 epochs: int = 30, batch_size: int = 32, l1: float = 0.0, l2: float = 0.0,
                 max_norm: float = 0.0, clip_norm: float = 0.0, validation_split: float = 0.0,
                 metrics: tuple[str, ...] | None = None, device: str = "cpu",
                 random_state: int = 0, verbose: int = 0, class_weight: Any = None):
        super().__init__(hidden=hidden, activation=activation, init=init,
                         batch_norm=batch_norm, dropout=dropout, optimizer=optimizer, lr=lr,
                         schedule=schedule, epochs=epochs, batch_size=batch_size, l1=l1, l2=l2,
                         max_norm=max_norm, clip_norm=clip_norm,
                         validation_split=validation_split, metrics=metrics, device=device,
                         random_state=random_state, verbose=verbose)
        self.class_weight = class_weight

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TrainwellClassifier:
        x, y = validate_data(self, X, y, dtype=np.float32)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"TrainwellClassifier needs samples of at least 2 classes; y has "
                             f"only {len(self.classes_)} class: {self.classes_.tolist()}")
        cw = self.class_weight
        if isinstance(cw, dict):  # labels → class indices
            cw = {int(encoder.transform([k])[0]): float(v) for k, v in cw.items()}
        self._train(x, encoder.transform(y), len(self.classes_), class_weight=cw,
                    sample_weight=sample_weight)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``."""
        return torch.softmax(self._outputs(X).double(), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        index = self._outputs(X).argmax(dim=1).numpy()
        return self.classes_[index]


class TrainwellRegressor(RegressorMixin, _TrainwellEstimator):
    """A trainwell network as a scikit-learn regressor (MSE; one output per target column).

    Same parameters as :class:`TrainwellClassifier` (without ``class_weight``). Scale the
    targets (``TransformedTargetRegressor``) when they are far from unit scale.
    """

    _task = "regression"

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TrainwellRegressor:
        x, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True, multi_output=True)
        y = np.asarray(y, dtype=np.float32)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        self._train(x, y2, y2.shape[1], sample_weight=sample_weight)
        return self

    def predict(self, X: Any) -> np.ndarray:
        out = self._outputs(X).double().numpy()
        return out.reshape(-1) if self._y_1d else out
