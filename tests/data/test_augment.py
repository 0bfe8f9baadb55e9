"""Augmentation on the device: flips mirror whole images, padded crops are shifts, noise has
the asked std, draws are seeded per batch, and evaluation never sees any of it."""

from __future__ import annotations

import pytest
import torch

from trainwell.data.augment import Augment, AugmentedBatches, flip, pad_crop
from trainwell.errors import ConfigError
from trainwell.train import BatchIterator, Trainer


def test_flip_mirrors_some_images_left_right_and_leaves_the_others():
    x = torch.randn(200, 3, 5, 7)
    out = flip(x, torch.Generator().manual_seed(0))
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert bool((mirrored | same).all())
    assert 60 < int(mirrored.sum()) < 140        # p = 0.5


def test_pad_crop_is_a_shift_with_zero_fill():
    x = torch.arange(1, 26, dtype=torch.float32).reshape(1, 5, 5).repeat(50, 1, 1)
    out = pad_crop(x, torch.Generator().manual_seed(1), 2)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for img, src in zip(out, padded, strict=True):   # each output is one 5×5 window
        windows = [src[dy:dy + 5, dx:dx + 5] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(img, w) for w in windows)
    assert len({tuple(img.flatten().tolist()) for img in out}) > 5   # offsets differ
    chw = pad_crop(torch.randn(4, 3, 6, 6), torch.Generator().manual_seed(2), 1)
    assert chw.shape == (4, 3, 6, 6)


def test_noise_has_the_asked_std_and_draws_are_seeded_by_key():
    aug = Augment(noise_std=0.5, seed=3, input_shape=(100,))
    x = torch.zeros(64, 100)
    a, b, c = aug(x, 7), aug(x, 7), aug(x, 8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.std().item() == pytest.approx(0.5, rel=0.05)


def test_augmented_batches_keep_the_order_and_labels():
    x, y = torch.randn(30, 4, 4), torch.arange(30)
    plain = BatchIterator(x, y, batch_size=8, seed=0)
    aug = AugmentedBatches(BatchIterator(x, y, batch_size=8, seed=0),
                           Augment(flip=True, seed=0, input_shape=(4, 4)))
    for (xa, ya), (xb, yb) in zip(plain.epoch(), aug.epoch(), strict=True):
        assert torch.equal(ya, yb)
        assert all(torch.equal(u, v) or torch.equal(u.flip(-1), v) for u, v in zip(xa, xb,
                                                                                 strict=True))


def test_evaluation_is_not_augmented():
    torch.manual_seed(0)
    x, y = torch.randn(40, 6, 6), torch.randint(0, 2, (40,))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 2))
    t = Trainer(model, device="cpu")
    before = t.evaluate(x, y)
    t.augment = Augment(flip=True, crop_padding=2, noise_std=3.0, input_shape=(6, 6))
    assert t.evaluate(x, y) == before


def test_flip_and_crop_need_images():
    with pytest.raises(ConfigError, match="augment.crop_padding"):
        Augment(crop_padding=2, input_shape=(784,))
