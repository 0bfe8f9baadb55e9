"""Image folders and .npy pairs, in memory or streamed: the same batches in the same order,
the same final weights, an exact mid-epoch resume, and one error per unusable input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainwell.data.folders import load_folder_dataset
from trainwell.data.stream import StreamedPart, StreamingBatches, streaming_stats
from trainwell.nn import build_cnn
from trainwell.train import BatchIterator, Callback, ModelCheckpoint, Trainer


def _write_images(root: Path, n_per_class: int = 24, size: int = 8, classes: int = 3,
                  mode: str = "L") -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            a = rng.integers(0, 120, (size, size) if mode == "L" else (size, size, 3))
            a[2 * c:2 * c + 2] = 250                      # the class is a bright band
            Image.fromarray(a.astype(np.uint8), mode).save(root / f"c{c}" / f"{i:03}.png")
    return root


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    return _write_images(tmp_path_factory.mktemp("imgs"))


@pytest.fixture(scope="module")
def npy_root(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("npy")
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 150)
    x = rng.integers(0, 256, (150, 6, 6)).astype(np.uint8)
    x[np.arange(150), y, y] = 255
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", y)
    return d


def _model(shape):
    torch.manual_seed(0)
    return build_cnn(input_shape=shape, n_outputs=3, conv=[[4, 3], "pool"], hidden=[8],
                     batch_norm="before", dropout=0.3)


@pytest.mark.parametrize("which", ["image_root", "npy_root"])
def test_streamed_batches_equal_in_memory_batches(which, request):
    root = request.getfixturevalue(which)
    mem = load_folder_dataset(root, validation=20, stream=False)
    st = load_folder_dataset(root, validation=20, stream=True)
    assert isinstance(st.x_train, StreamedPart) and isinstance(mem.x_train, torch.Tensor)
    assert torch.equal(st.mean, mem.mean) and torch.equal(st.std, mem.std)
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(st, f"x_{part}")[:], getattr(mem, f"x_{part}"))
        assert torch.equal(getattr(st, f"y_{part}"), getattr(mem, f"y_{part}"))
    a = BatchIterator(mem.x_train, mem.y_train, batch_size=7, seed=3)
    b = StreamingBatches(st.x_train, st.y_train, batch_size=7, seed=3)
    for _ in range(2):   # two epochs: two permutations from the same generator
        for (xa, ya), (xb, yb) in zip(a.epoch(), b.epoch(), strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_streaming_statistics_equal_the_two_pass_formula():
    x = torch.randn(1000, 5, 3) * 4 + 2
    chunks = (x[lo:lo + 128] for lo in range(0, 1000, 128))
    mean, std = streaming_stats(chunks, (5, 3), 1e-7)
    assert torch.allclose(mean, x.double().mean(0).float(), atol=1e-6)
    assert torch.allclose(std, x.double().std(0, unbiased=False).float(), atol=1e-6)


@pytest.mark.parametrize("which", ["image_root", "npy_root"])
def test_streamed_training_ends_with_the_in_memory_weights(which, request):
    root = request.getfixturevalue(which)
    out = []
    for stream in (False, True):
        s = load_folder_dataset(root, validation=20, stream=stream)
        t = Trainer(_model(s.input_shape), optimizer="adam", lr=0.01, seed=5, device="cpu")
        t.fit(s.x_train, s.y_train, epochs=2, batch_size=16,
              validation_data=(s.x_val, s.y_val))
        out.append((t.model.state_dict(), t.history.to_list()))
    (wa, ha), (wb, hb) = out
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    strip = [{k: v for k, v in e.items() if k != "time"} for e in ha]
    assert strip == [{k: v for k, v in e.items() if k != "time"} for e in hb]


def test_streamed_run_resumed_mid_epoch_ends_like_the_uninterrupted_run(image_root, tmp_path):
    from trainwell.data.augment import Augment

    class Halt(Callback):
        def on_batch_end(self, trainer, step):
            if trainer.step == trainer.steps_per_epoch + 1:   # epoch 2, after its 1st batch
                raise KeyboardInterrupt

    def trainer(callbacks=()):
        t = Trainer(_model(s.input_shape), optimizer="nesterov", lr=0.05, seed=2,
                    device="cpu", callbacks=list(callbacks))
        t.augment = Augment(flip=True, crop_padding=1, noise_std=0.05, seed=2,
                            input_shape=s.input_shape)
        return t

    s = load_folder_dataset(image_root, validation=20, stream=True)
    full = trainer()
    full.fit(s.x_train, s.y_train, epochs=3, batch_size=14)
    halted = trainer([ModelCheckpoint(tmp_path, every_steps=1), Halt()])
    with pytest.raises(KeyboardInterrupt):
        halted.fit(s.x_train, s.y_train, epochs=3, batch_size=14)
    assert halted.batch_in_epoch == 1 and halted.steps_per_epoch > 2
    resumed = trainer()
    resumed.fit(s.x_train, s.y_train, epochs=3, batch_size=14, resume_from=tmp_path)
    assert resumed.step == full.step
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_workers_read_the_same_batches(npy_root):
    s = load_folder_dataset(npy_root, validation=20, stream=True)
    a = StreamingBatches(s.x_train, s.y_train, batch_size=16, seed=1, workers=0)
    b = StreamingBatches(s.x_train, s.y_train, batch_size=16, seed=1, workers=2)
    for (xa, ya), (xb, yb) in zip(a.epoch(), b.epoch(), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_colour_images_are_channels_first_and_train_test_folders_are_used(tmp_path):
    _write_images(tmp_path / "train", n_per_class=6, mode="RGB")
    _write_images(tmp_path / "test", n_per_class=3, mode="RGB")
    s = load_folder_dataset(tmp_path, validation=3, stream=False)
    assert s.input_shape == (3, 8, 8)
    assert len(s.x_test) == 9 and len(s.x_train) + len(s.x_val) == 18
    assert s.class_names == ["c0", "c1", "c2"]


def test_skip_bad_skips_and_counts_unreadable_images(tmp_path):
    root = _write_images(tmp_path / "imgs", n_per_class=10)
    (root / "c1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    s = load_folder_dataset(root, validation=5, stream=False, skip_bad=True)
    assert s.skipped == [str(root / "c1" / "broken.png")]
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == 30


def test_an_image_folder_validation_set_holds_every_class(image_root):
    s = load_folder_dataset(image_root, validation=12, stream=False)
    assert set(s.y_val.tolist()) == {0, 1, 2}
    assert set(s.y_test.tolist()) == {0, 1, 2}
