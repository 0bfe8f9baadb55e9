"""Networks: activations, initializers, dense and conv blocks, the builders (mlp, cnn, your
factory), constraints, BN folding, summaries, I/O."""

from trainwell.nn.activations import (
    ACTIVATIONS,
    auto_initializer,
    list_activations,
    make_activation,
)
from trainwell.nn.blocks import dense_block, fold_batch_norm, make_dropout
from trainwell.nn.builder import (
    MODEL_KINDS,
    SelfNormalizationWarning,
    build_cnn,
    build_model,
    check_self_normalizing_inputs,
)
from trainwell.nn.constraints import apply_max_norm
from trainwell.nn.factory import build_from_factory
from trainwell.nn.init import INITIALIZERS, init_variance, initialize_linear
from trainwell.nn.io import clone_model, load_model, load_model_info, load_weights, save_model
from trainwell.nn.mc import mc_dropout_mode
from trainwell.nn.summary import Summary, SummaryRow, model_summary

__all__ = [
    "ACTIVATIONS", "INITIALIZERS", "make_activation", "auto_initializer", "list_activations",
    "initialize_linear", "init_variance", "dense_block", "make_dropout", "fold_batch_norm",
    "build_model", "build_cnn", "build_from_factory", "MODEL_KINDS",
    "SelfNormalizationWarning", "check_self_normalizing_inputs", "apply_max_norm", "model_summary", "Summary", "SummaryRow",
    "save_model", "load_model", "load_weights", "load_model_info", "clone_model",
    "mc_dropout_mode",
]
