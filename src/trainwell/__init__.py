"""trainwell: train deep neural networks well.

Every practice of "Training Deep Neural Networks" — initialization, nonsaturating activations,
batch norm, gradient clipping, transfer learning, fast optimizers, learning-rate schedules,
l1/l2, dropout, MC dropout, max-norm, early stopping, tuning — on PyTorch, with a diagnosis of
gradient health and side-by-side reports.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
