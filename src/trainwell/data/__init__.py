"""Datasets: Fashion-MNIST, MNIST, CIFAR-10 and your own .npz/.csv files, split and standardized.

Example:
    >>> from trainwell.data import load_dataset, transfer_split
    >>> splits = load_dataset("fashion_mnist", validation=5000)  # doctest: +SKIP
    >>> task_b = transfer_split(splits, task="B", b_train_size=200)  # doctest: +SKIP
"""

from trainwell.data.cache import data_dir
from trainwell.data.files import infer_task, load_csv, load_npz
from trainwell.data.loader import load_dataset, load_raw
from trainwell.data.raw import RawData
from trainwell.data.registry import DATASETS
from trainwell.data.splits import Splits, apply_stats, make_splits, transfer_split
from trainwell.data.validate import validate_arrays

__all__ = ["DATASETS", "RawData", "Splits", "apply_stats", "data_dir", "infer_task", "load_csv",
           "load_dataset", "load_npz", "load_raw", "make_splits", "transfer_split",
           "validate_arrays"]
