import pytest
import torch
import torch.nn.functional as F

from trainwell.errors import ConfigError, DataError
from trainwell.tasks import TASKS, get_task


def test_registry_lists_the_four_tasks():
    assert set(TASKS.names()) == {"multiclass", "binary", "multilabel", "regression"}


def test_multiclass_loss_accuracy_and_probabilities_match_torch():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(10, 4, generator=g), torch.randint(0, 4, (10,), generator=g)
    t = get_task("multiclass")
    assert torch.allclose(t.loss(logits, y), F.cross_entropy(logits, y))
    sums = t.metric_sums(logits, y)
    assert torch.allclose(sums["loss"] / 10, F.cross_entropy(logits, y))
    assert sums["accuracy"].item() == (logits.argmax(1) == y).sum().item()
    assert torch.allclose(t.probabilities(logits).sum(1), torch.ones(10))
    # oracle: softmax by its formula
    e = logits.exp()
    assert torch.allclose(t.probabilities(logits), e / e.sum(1, keepdim=True), atol=1e-6)


@pytest.mark.parametrize("shape", [(8,), (8, 1)])
def test_binary_bce_with_logits_accepts_flat_or_column_targets(shape):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(8, 1, generator=g)
    y = torch.randint(0, 2, (8,), generator=g).float()
    t = get_task("binary")
    p = torch.sigmoid(logits.reshape(-1))
    oracle = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    yy = y.reshape(shape)
    assert torch.allclose(t.loss(logits, yy), oracle, atol=1e-6)
    sums = t.metric_sums(logits, yy)
    assert torch.allclose(sums["loss"] / 8, oracle, atol=1e-6)
    assert sums["accuracy"].item() == ((p > 0.5).float() == y).sum().item()


def test_multilabel_loss_is_mean_bce_per_output_and_accuracy_per_label():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 3, generator=g)
    y = torch.randint(0, 2, (6, 3), generator=g).float()
    t = get_task("multilabel")
    oracle = F.binary_cross_entropy(torch.sigmoid(logits), y)
    assert torch.allclose(t.loss(logits, y), oracle, atol=1e-6)
    sums = t.metric_sums(logits, y)
    assert torch.allclose(sums["loss"] / 6, oracle, atol=1e-6)
    assert torch.allclose(sums["accuracy"] / 6, ((logits > 0).float() == y).float().mean())


def test_regression_mse_huber_and_mae():
    pred = torch.tensor([[0.0], [2.0], [5.0]])
    y = torch.tensor([0.5, 0.0, 1.0])
    mse = get_task("regression")
    assert torch.allclose(mse.loss(pred, y), torch.tensor((0.25 + 4 + 16) / 3))
    hub = get_task("regression", loss="huber")
    # Huber δ=1: 0.5·e² if |e|≤1 else |e|−0.5
    assert torch.allclose(hub.loss(pred, y), torch.tensor((0.125 + 1.5 + 3.5) / 3))
    sums = mse.metric_sums(pred, y)
    assert torch.allclose(sums["mae"], torch.tensor(0.5 + 2 + 4))
    assert torch.equal(mse.probabilities(pred), pred)


def test_unknown_task_and_loss_raise_config_errors_naming_the_field():
    with pytest.raises(ConfigError, match="model.task"):
        get_task("ranking")
    with pytest.raises(ConfigError, match="model.loss.*mse"):
        get_task("regression", loss="hinge")
    with pytest.raises(ConfigError, match="model.loss"):
        get_task("multiclass", loss="huber")


def test_validate_targets_rejects_what_does_not_fit():
    mc = get_task("multiclass")
    with pytest.raises(DataError, match=r"\[0, 2\].*from 0 to 3"):
        mc.validate_targets(torch.tensor([0, 3]), 3)
    with pytest.raises(DataError, match="integer"):
        mc.validate_targets(torch.tensor([0.5, 1.0]), 3)
    with pytest.raises(DataError, match="binary"):
        mc.validate_targets(torch.tensor([0, 1]), 1)
    with pytest.raises(DataError, match="exactly 1 output"):
        get_task("binary").validate_targets(torch.tensor([0.0, 1.0]), 2)
    with pytest.raises(DataError, match="0 or 1"):
        get_task("binary").validate_targets(torch.tensor([0.0, 2.0]), 1)
    with pytest.raises(DataError, match="NaN"):
        get_task("regression").validate_targets(torch.tensor([0.0, float("nan")]), 1)
    with pytest.raises(DataError, match=r"\(N, 3\)"):
        get_task("multilabel").validate_targets(torch.zeros(4, 2), 3)
    mc.validate_targets(torch.tensor([0, 2]), 3)  # fine
    get_task("regression").validate_targets(torch.zeros(4, 2), 2)
