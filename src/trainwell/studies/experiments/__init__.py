"""Experiments that reproduce the chapter's studies over several random seeds and write a run directory.

- :func:`run_transfer_study`: task A / task B on Fashion-MNIST (Géron, *Hands-On Machine Learning*, ch. 11): B from scratch
  vs B on A, per seed, mean and standard deviation.
- :func:`run_pretrain_study`: few labels, from scratch vs greedy layer-wise pretrained.
"""

from trainwell.studies.experiments.pretrain_study import (
    PretrainStudyConfig,
    PretrainStudyResult,
    run_pretrain_study,
)
from trainwell.studies.experiments.transfer_study import (
    TransferStudyConfig,
    TransferStudyResult,
    run_transfer_study,
    synthetic_fashion,
)

__all__ = [
    "TransferStudyConfig", "TransferStudyResult", "run_transfer_study", "synthetic_fashion",
    "PretrainStudyConfig", "PretrainStudyResult", "run_pretrain_study",
]
