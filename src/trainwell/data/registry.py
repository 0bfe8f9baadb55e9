"""``DATASETS``: the built-in datasets and the user file formats, with their metadata."""

from __future__ import annotations

from trainwell.data.builtin import BUILTINS
from trainwell.data.files import load_csv, load_npz
from trainwell.data.folders import load_folder_dataset
from trainwell.registry import Registry

__all__ = ["DATASETS"]

DATASETS = Registry("dataset")

for _ds in BUILTINS.values():
    DATASETS.register(
        _ds.name, _ds, description=_ds.title, kind="builtin", class_names=list(_ds.class_names),
        input_shape=_ds.input_shape, n_train=_ds.n_train, n_test=_ds.n_test,
        license=_ds.license, homepage=_ds.homepage, folder=_ds.folder,
        urls={f: list(u) for f, (u, _) in _ds.downloads.items()},
        sha256={f: s for f, (_, s) in _ds.downloads.items()},
        aliases={"fashion_mnist": ("fmnist",), "cifar10": ("cifar_10",)}.get(_ds.name, ()))

DATASETS.register("npz", load_npz, kind="file", suffix=".npz",
                  description="your arrays: x, y and optionally x_test, y_test (.npz)")
DATASETS.register("csv", load_csv, kind="file", suffix=".csv",
                  description="your table: numeric feature columns and a target column (.csv)")
DATASETS.register("images", load_folder_dataset, kind="folder",
                  description="your images: root/<class>/*.png|jpg (or root/train + root/test), "
                              "read with Pillow, in memory or streamed")
DATASETS.register("npy", load_folder_dataset, kind="folder",
                  description="your arrays: a folder with x.npy, y.npy (and optionally "
                              "x_test.npy, y_test.npy), memory-mapped, in memory or streamed")
