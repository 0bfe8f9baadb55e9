"""Transfer learning: reuse on a clone, freeze/unfreeze, optimizer state, two-phase fine-tuning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError, DataError
from trainwell.nn import build_model, load_model, save_model
from trainwell.transfer import (
    blocks,
    check_input_shape,
    expected_input_shape,
    fine_tune,
    freeze,
    frozen_blocks,
    make_trainable_optimizer,
    resize_images,
    reuse_layers,
    unfreeze,
)


def _source(batch_norm: str = "none", hidden=(16, 12, 8)) -> nn.Sequential:
    torch.manual_seed(0)
    return build_model(input_shape=(6, 6), n_outputs=5, hidden=list(hidden), activation="relu",
                       batch_norm=batch_norm)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _data(n: int = 64, seed: int = 0, shape=(6, 6)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    y = (x.reshape(n, -1)[:, 0] > 0).float()
    return x, y


# -- reuse -----------------------------------------------------------------------------------------
def test_reused_layers_keep_the_source_weights_and_get_a_new_head():
    src = _source()
    new = reuse_layers(src, n_outputs=1, task="binary")
    assert [n for n, _ in new.named_children()] == ["flatten", "hidden1", "hidden2", "hidden3",
                                                     "output"]
    for name in ("hidden1", "hidden2", "hidden3"):
        assert torch.equal(getattr(new, name).linear.weight, getattr(src, name).linear.weight)
        # a copy, not the same tensor
        assert getattr(new, name).linear.weight.data_ptr() != \
            getattr(src, name).linear.weight.data_ptr()
    assert new.output.in_features == 8 and new.output.out_features == 1
    assert torch.count_nonzero(new.output.bias) == 0
    assert new.trainwell_config["n_outputs"] == 1 and new.trainwell_config["task"] == "binary"
    assert new(torch.randn(3, 6, 6)).shape == (3, 1)


def test_reuse_first_k_hidden_layers_only():
    src = _source()
    new = reuse_layers(src, n_outputs=3, reuse=2)
    assert [n for n, _ in blocks(new)] == ["hidden1", "hidden2", "output"]
    assert new.output.in_features == 12
    assert new.trainwell_config["hidden"] == [16, 12]
    assert new.trainwell_transfer["reused"] == ["hidden1", "hidden2"]


def test_reuse_rejects_a_layer_count_out_of_range_naming_the_field():
    with pytest.raises(ConfigError, match=r"transfer\.reuse.*1 to 3"):
        reuse_layers(_source(), n_outputs=1, reuse=4)
    with pytest.raises(ConfigError, match="transfer.n_outputs"):
        reuse_layers(_source(), n_outputs=0)


def test_source_model_is_untouched_by_reuse_freeze_and_training():
    src = _source(batch_norm="before")
    before = _snapshot(src)
    requires = [p.requires_grad for p in src.parameters()]
    new = reuse_layers(src, n_outputs=1, task="binary")
    freeze(new)
    opt = torch.optim.SGD([p for p in new.parameters() if p.requires_grad], lr=0.5)
    unfreeze(new)
    opt = torch.optim.SGD(new.parameters(), lr=0.5)
    new.train()
    x, y = _data()
    for _ in range(3):
        loss = nn.functional.binary_cross_entropy_with_logits(new(x).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = src.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [p.requires_grad for p in src.parameters()] == requires


def test_reuse_on_a_plain_sequential_keeps_the_activation_below_the_head():
    torch.manual_seed(0)
    src = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    new = reuse_layers(src, n_outputs=2)
    assert isinstance(new[3], nn.ReLU) and new.output.in_features == 6
    one = reuse_layers(src, n_outputs=2, reuse=1)
    assert [type(m).__name__ for m in one] == ["Linear", "ReLU", "Linear"]
    assert torch.equal(one[0].weight, src[0].weight)


def test_reuse_from_a_saved_model_folder_and_the_result_round_trips(tmp_path):
    src = _source()
    save_model(src, tmp_path / "run" / "model")
    new = reuse_layers(tmp_path / "run", n_outputs=1, task="binary", reuse=2)
    assert torch.equal(new.hidden1.linear.weight, src.hidden1.linear.weight)
    save_model(new, tmp_path / "b")
    again = load_model(tmp_path / "b")
    x = torch.randn(4, 6, 6)
    new.eval()
    assert torch.allclose(again(x), new(x))


def test_reuse_from_a_folder_without_a_model_says_what_it_needs(tmp_path):
    with pytest.raises(DataError, match="run directory"):
        reuse_layers(tmp_path, n_outputs=1)


# -- freeze / unfreeze -----------------------------------------------------------------------------
def test_freeze_by_default_freezes_every_hidden_block_not_the_head():
    new = reuse_layers(_source(), n_outputs=1, task="binary")
    assert freeze(new) == ["hidden1", "hidden2", "hidden3"]
    assert all(not p.requires_grad for n, p in new.named_parameters() if n.startswith("hidden"))
    assert all(p.requires_grad for p in new.output.parameters())


def test_freeze_top_k_leaves_the_top_k_hidden_blocks_trainable_and_by_name():
    new = reuse_layers(_source(), n_outputs=1)
    assert freeze(new, top_k=1) == ["hidden1", "hidden2"]
    unfreeze(new)
    assert frozen_blocks(new) == []
    assert freeze(new, names=["hidden2"]) == ["hidden2"]
    with pytest.raises(ConfigError, match="freeze.names"):
        freeze(new, names=["hidden9"])
    with pytest.raises(ConfigError, match="freeze.top_k"):
        freeze(new, top_k=7)


def test_unfreeze_top_k_counts_hidden_blocks_from_the_top():
    new = reuse_layers(_source(), n_outputs=1)
    freeze(new)
    assert unfreeze(new, top_k=1) == ["hidden1", "hidden2"]
    assert unfreeze(new, top_k=2) == ["hidden1"]
    assert unfreeze(new, "all") == []
    freeze(new)
    assert unfreeze(new, names="hidden1") == ["hidden2", "hidden3"]
    with pytest.raises(ConfigError, match=r"unfreeze\.top_k.*\"all\""):
        unfreeze(new, top_k="most")


def test_frozen_parameters_get_no_optimizer_state_and_do_not_change():
    new = reuse_layers(_source(), n_outputs=1, task="binary")
    freeze(new)
    opt = make_trainable_optimizer(new, "adam", lr=0.05)
    frozen = [p for n, p in new.named_parameters() if n.startswith("hidden")]
    before = [p.detach().clone() for p in frozen]
    head_before = new.output.weight.detach().clone()
    x, y = _data()
    for _ in range(3):
        loss = nn.functional.binary_cross_entropy_with_logits(new(x).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    state_ids = {id(p) for p in opt.state}
    assert not state_ids & {id(p) for p in frozen}
    assert id(new.output.weight) in state_ids
    assert all(torch.equal(a, p) for a, p in zip(before, frozen, strict=True))
    assert not torch.equal(head_before, new.output.weight)


def test_everything_frozen_is_a_clear_error():
    model = nn.Sequential(nn.Linear(3, 2))
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ConfigError, match="frozen"):
        make_trainable_optimizer(model, "sgd", lr=0.1)


def test_batch_norm_of_a_frozen_block_stays_in_inference_mode_while_training():
    new = reuse_layers(_source(batch_norm="before"), n_outputs=1, task="binary")
    freeze(new)
    new.train()                       # what a trainer does at each epoch
    bn = new.hidden1.bn
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    new(torch.randn(32, 6, 6) * 3 + 2)
    assert not bn.training
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    unfreeze(new)
    new.train()
    new(torch.randn(32, 6, 6) * 3 + 2)
    assert bn.training and not torch.equal(bn.running_mean, mean)


# -- input sizes -----------------------------------------------------------------------------------
def test_input_size_mismatch_error_says_what_the_source_expects():
    model = reuse_layers(_source(), n_outputs=1)
    assert expected_input_shape(model) == (6, 6)
    with pytest.raises(DataError, match=r"expects inputs of shape \(6, 6\) \(36 features\)"):
        check_input_shape(model, torch.randn(2, 8, 8))
    flat = torch.randn(2, 36)
    assert check_input_shape(model, flat) is flat      # same features, accepted as is


def test_resize_path_fits_images_to_the_source_input_size():
    model = reuse_layers(_source(), n_outputs=1)
    x = torch.rand(3, 12, 12)
    out = check_input_shape(model, x, resize=True)
    assert out.shape == (3, 6, 6)
    ref = torch.nn.functional.interpolate(x.unsqueeze(1), size=(6, 6), mode="bilinear",
                                          align_corners=False).squeeze(1)
    assert torch.allclose(out, ref)
    model(out)                           # fits the network


def test_resize_images_constant_image_stays_constant_and_channels_adapt():
    x = torch.full((2, 3, 10, 10), 0.25)
    assert torch.allclose(resize_images(x, (1, 5, 5)), torch.full((2, 1, 5, 5), 0.25))
    gray = torch.full((2, 7, 7), 0.5)
    assert resize_images(gray, (3, 4, 4)).shape == (2, 3, 4, 4)


def test_resize_refuses_flat_inputs_with_a_clear_message():
    model = nn.Sequential(nn.Linear(36, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(DataError, match="flat inputs of 36"):
        check_input_shape(model, torch.randn(2, 8, 8), resize=True)


# -- two-phase fine-tuning -------------------------------------------------------------------------
def test_fine_tune_freezes_then_unfreezes_with_the_reduced_learning_rate():
    new = reuse_layers(_source(), n_outputs=1, task="binary")
    x, y = _data(96)
    hidden_before = new.hidden1.linear.weight.detach().clone()
    seen: list[tuple[int, bool, torch.Tensor]] = []

    from trainwell.train import Callback

    class Spy(Callback):
        def on_epoch_end(self, t, epoch, logs):
            seen.append((epoch, new.hidden1.linear.weight.requires_grad,
                         new.hidden1.linear.weight.detach().clone()))

    history = fine_tune(new, x, y, frozen_epochs=2, epochs=5, lr=0.05, lr_factor=0.1,
                        validation_data=_data(32, seed=1), callbacks=[Spy()], device="cpu")
    rows = history.epochs
    assert [r["phase"] for r in rows] == ["frozen"] * 2 + ["unfrozen"] * 3
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["lr"] == pytest.approx(0.05) and rows[-1]["lr"] == pytest.approx(0.005)
    assert "val_loss" in rows[0]
    # phase 1: hidden weights frozen and unchanged; phase 2: they train again
    assert [s[1] for s in seen] == [False, False, True, True, True]
    assert torch.equal(seen[1][2], hidden_before)
    assert not torch.equal(seen[-1][2], hidden_before)


def test_fine_tune_unfreeze_top_k_leaves_lower_blocks_frozen():
    new = reuse_layers(_source(), n_outputs=1, task="binary")
    low = new.hidden1.linear.weight.detach().clone()
    top = new.hidden3.linear.weight.detach().clone()
    x, y = _data(64)
    fine_tune(new, x, y, frozen_epochs=1, epochs=3, lr=0.05, unfreeze=1, device="cpu")
    assert torch.equal(new.hidden1.linear.weight, low)
    assert not torch.equal(new.hidden3.linear.weight, top)


def test_fine_tune_rejects_bad_schedules_before_training():
    new = reuse_layers(_source(), n_outputs=1, task="binary")
    x, y = _data(16)
    with pytest.raises(ConfigError, match="train.epochs"):
        fine_tune(new, x, y, frozen_epochs=5, epochs=3)
    with pytest.raises(ConfigError, match="transfer.lr_factor"):
        fine_tune(new, x, y, lr_factor=2.0)
    with pytest.raises(ConfigError, match="transfer.unfreeze"):
        fine_tune(new, x, y, unfreeze=9)
    with pytest.raises(DataError, match="expects inputs of shape"):
        fine_tune(new, torch.randn(16, 5, 5), y)


def test_phase_plot_names_the_actual_lr_factor_and_counts_whole_epochs(tmp_path, monkeypatch):
    import trainwell.report.plots as plots
    from trainwell.transfer import plot_fine_tune

    figures = []
    saved = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: (figures.append(fig),
                                                                 saved(fig, path))[1])
    rows = [dict(epoch=1, loss=0.7, accuracy=0.6, lr=1e-3, phase="frozen"),
            dict(epoch=2, loss=0.6, accuracy=0.7, lr=1e-4, phase="unfrozen")]
    path = plot_fine_tune(rows, tmp_path / "phases.png")
    assert path.is_file()
    ax = figures[0].axes[0]
    assert any("lr × 0.1" in t.get_text() for t in ax.texts)
    assert all(float(t).is_integer() for t in ax.get_xticks())
