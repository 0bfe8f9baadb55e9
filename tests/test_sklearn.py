"""scikit-learn estimators: the estimator checks, clone, Pipeline and GridSearchCV."""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from trainwell.sklearn import TrainwellClassifier, TrainwellRegressor  # noqa: E402

# Checks trainwell's estimators fail on purpose, and why.
SKIPPED = {
    "check_sample_weight_equivalence_on_dense_data":
        "mini-batch SGD with shuffling: a sample of weight 2 is not the same as the sample "
        "twice (the batches differ), so the fits differ beyond 1e-7",
}


@pytest.mark.slow
@pytest.mark.parametrize("estimator", [TrainwellClassifier(hidden=(32,), epochs=20),
                                       TrainwellRegressor(hidden=(32,), epochs=20)],
                         ids=["classifier", "regressor"])
def test_scikit_learn_estimator_checks(estimator):
    results = check_estimator(estimator, expected_failed_checks=SKIPPED, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in results) > 50


def _blobs():
    x, y = make_classification(n_samples=160, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    return x * 10 + 3, np.array(["cat", "dog", "emu"])[y]  # unscaled, string labels


def test_classifier_fits_predicts_and_keeps_its_parameters():
    x, y = _blobs()
    clf = TrainwellClassifier(hidden=(16,), epochs=5, lr=0.01, class_weight={"emu": 2.0})
    params = clf.get_params()
    assert params["hidden"] == (16,) and params["lr"] == 0.01 and "class_weight" in params
    pipe = make_pipeline(StandardScaler(), clf).fit(x, y)
    proba = pipe.predict_proba(x)
    assert proba.shape == (160, 3) and np.allclose(proba.sum(1), 1)
    assert set(pipe.predict(x)) <= {"cat", "dog", "emu"}
    assert len(pipe[-1].history_) == 5
    twin = clone(clf).set_params(lr=0.05)
    assert twin.lr == 0.05 and clf.lr == 0.01 and not hasattr(twin, "model_")


def test_grid_search_over_two_recipe_fields_in_a_pipeline():
    x, y = _blobs()
    pipe = make_pipeline(StandardScaler(), TrainwellClassifier(epochs=8))
    grid = {"trainwellclassifier__hidden": [(2,), (32,)],
            "trainwellclassifier__lr": [1e-4, 0.02]}
    search = GridSearchCV(pipe, grid, cv=2).fit(x, y)
    scores = dict(zip(map(str, search.cv_results_["params"]),
                      search.cv_results_["mean_test_score"], strict=True))
    assert len(scores) == 4
    best = search.best_params_
    assert best == {"trainwellclassifier__hidden": (32,), "trainwellclassifier__lr": 0.02}
    # the parameters reach the network: a near-zero learning rate learns nearly nothing
    assert max(scores.values()) - min(scores.values()) > 0.2
    assert search.best_estimator_[-1].model_[0][0].out_features == 32  # hidden1's linear


def test_regressor_single_and_multi_output():
    x, y = make_regression(n_samples=120, n_features=4, noise=0.1, random_state=0)
    y = y / y.std()
    reg = TrainwellRegressor(hidden=(32,), epochs=40).fit(x, y)
    assert reg.predict(x).shape == (120,) and reg.score(x, y) > 0.8
    y2 = np.stack([y, -y], axis=1)
    assert TrainwellRegressor(epochs=2).fit(x, y2).predict(x).shape == (120, 2)
