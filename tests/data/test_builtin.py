import dataclasses
import gzip
import hashlib
import io
import urllib.error

import numpy as np
import pytest

from trainwell.data import DATASETS, builtin, download, load_dataset
from trainwell.data.builtin import BUILTINS, find_files, load_builtin, obtain
from trainwell.data.idx import write_idx
from trainwell.errors import DataError
from trainwell.registry import Entry


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setattr(download.urllib.request, "urlopen", refuse)
    monkeypatch.setattr(builtin.shutil, "which", lambda name: None)


@pytest.fixture
def tiny_fmnist():
    """Fashion-MNIST metadata with 6 training and 4 test images, for files made by hand."""
    return dataclasses.replace(BUILTINS["fashion_mnist"], n_train=6, n_test=4)


def _place_idx(folder, n_train=6, n_test=4, labels_max=9):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", (np.arange(n_train) % (labels_max + 1)).astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", (np.arange(n_test) % 10).astype(np.uint8))


def test_registry_lists_datasets_with_metadata():
    assert DATASETS.names() == ["fashion_mnist", "mnist", "cifar10", "npz", "csv", "images", "npy"]
    meta = DATASETS.get("Fashion-MNIST").meta
    assert meta["class_names"][5:7] == ["Sandal", "Shirt"] and meta["input_shape"] == (28, 28)
    assert meta["license"] == "MIT"
    for entry in (DATASETS.get(n) for n in ("fashion_mnist", "mnist", "cifar10")):
        assert all(len(s) == 64 for s in entry.meta["sha256"].values())
        assert all(u.startswith("http") for urls in entry.meta["urls"].values() for u in urls)


def test_data_dir_env_then_xdg(monkeypatch, tmp_path):
    from trainwell.data import data_dir
    monkeypatch.setenv("TRAINWELL_DATA", str(tmp_path / "d"))
    assert data_dir() == tmp_path / "d"
    monkeypatch.setenv("TRAINWELL_DATA", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir() == tmp_path / "cache" / "trainwell"


def test_missing_dataset_message_says_where_what_and_how(no_network, tmp_path):
    with pytest.raises(DataError) as info:
        obtain(BUILTINS["fashion_mnist"], tmp_path, progress=False)
    msg = str(info.value)
    assert str(tmp_path / "fashion-mnist") in msg
    assert "network is unreachable" in msg and "fashion-mnist.s3-website" in msg
    assert "npm is not on PATH" in msg
    assert "place train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz" in msg
    assert "TRAINWELL_DATA" in msg
    assert "\n" not in msg


def test_missing_cifar_message_explains_the_archive(no_network, tmp_path):
    with pytest.raises(DataError, match=r"extract it in .* data_batch_1, .*test_batch"):
        obtain(BUILTINS["cifar10"], tmp_path, progress=False)


def test_download_off_is_reported(tmp_path):
    with pytest.raises(DataError, match=r"downloading is turned off"):
        obtain(BUILTINS["mnist"], tmp_path, download=False)


def test_hand_placed_files_are_used_without_checksum(tmp_path, tiny_fmnist, no_network):
    _place_idx(tmp_path / "fashion-mnist")
    kind, path = obtain(tiny_fmnist, tmp_path, progress=False)
    raw = load_builtin(tiny_fmnist, kind, path)
    assert raw.x_train.shape == (6, 28, 28) and raw.y_test.tolist() == [0, 1, 2, 3]
    assert raw.scale == 255.0 and raw.class_names[0] == "T-shirt/top"


def test_hand_placed_files_with_wrong_shapes_are_refused(tmp_path, tiny_fmnist):
    _place_idx(tmp_path / "fashion-mnist", n_train=5)
    with pytest.raises(DataError, match=r"training set should be 6 images .* found images \(5, 28, 28\)"):
        load_builtin(tiny_fmnist, *find_files(tiny_fmnist, tmp_path))


def test_labels_out_of_range_in_placed_files_are_refused(tmp_path, tiny_fmnist):
    _place_idx(tmp_path / "fashion-mnist", labels_max=12)
    with pytest.raises(DataError, match=r"labels must lie in 0..4, found 0..5"):
        load_builtin(dataclasses.replace(tiny_fmnist, class_names=["a"] * 5),
                     *find_files(tiny_fmnist, tmp_path))


class _FakeResponse(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_checks_sha256_and_renames(monkeypatch, tmp_path):
    payload = gzip.compress(b"hello")
    good = hashlib.sha256(payload).hexdigest()
    calls = []

    def fake_urlopen(req, timeout):
        calls.append((req.full_url, timeout))
        return _FakeResponse(payload)

    monkeypatch.setattr(download.urllib.request, "urlopen", fake_urlopen)
    dest = tmp_path / "sub" / "f.gz"
    with pytest.raises(DataError, match=r"sha256 .* does not match the pinned 0+"):
        download.download_file(["http://a/f.gz"], dest, sha256="0" * 64, progress=False)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    download.download_file(["http://a/f.gz"], dest, sha256=good, progress=True, timeout=5)
    assert dest.read_bytes() == payload
    assert calls[-1] == ("http://a/f.gz", 5)


def test_download_tries_mirrors_in_order(monkeypatch, tmp_path):
    payload = b"data"

    def fake_urlopen(req, timeout):
        if "first" in req.full_url:
            raise urllib.error.URLError("timed out")
        return _FakeResponse(payload)

    monkeypatch.setattr(download.urllib.request, "urlopen", fake_urlopen)
    out = download.download_file(["http://first/x", "http://second/x"], tmp_path / "x",
                                 sha256=hashlib.sha256(payload).hexdigest(), progress=False)
    assert out.read_bytes() == payload


def test_missing_files_are_downloaded_and_decoded(monkeypatch, tmp_path, tiny_fmnist):
    src = tmp_path / "server"
    _place_idx(src)
    files = {p.name: p.read_bytes() for p in src.iterdir()}
    sums = {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}
    ds = dataclasses.replace(tiny_fmnist, downloads={
        n: ((f"http://mirror/{n}",), sums[n]) for n in tiny_fmnist.files})
    monkeypatch.setattr(download.urllib.request, "urlopen",
                        lambda req, timeout: _FakeResponse(files[req.full_url.rsplit("/", 1)[1]]))
    root = tmp_path / "cache"
    kind, path = obtain(ds, root, progress=False)
    assert (kind, path) == ("files", root / "fashion-mnist")
    assert load_builtin(ds, kind, path).y_train.tolist() == [0, 1, 2, 3, 4, 5]


def test_load_dataset_reads_a_placed_dataset_from_cache_dir(monkeypatch, tmp_path, tiny_fmnist):
    monkeypatch.setitem(DATASETS._entries, "fashion_mnist",
                        Entry("fashion_mnist", tiny_fmnist, "", {"kind": "builtin"}))
    monkeypatch.setitem(BUILTINS, "fashion_mnist", tiny_fmnist)
    _place_idx(tmp_path / "fashion-mnist")
    s = load_dataset("fashion_mnist", cache_dir=tmp_path, validation=2, download=False)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (4, 2, 4)
    assert s.input_shape == (28, 28) and s.n_outputs == 10
