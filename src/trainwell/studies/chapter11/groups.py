"""The groups and variants of ``trainwell study chapter11``: the notebook's experiments of
Géron's chapter 11 as built-in recipes, with the values the book prints.

Every recipe-based variant is a built-in recipe (``trainwell recipes`` lists them, ``trainwell
fit NAME`` trains one alone). The book prints accuracies only for the transfer-learning
experiment (2nd edition: model A 92.05 % validation accuracy, model B 97.05 % and model B on A
99.35 % test accuracy, one run each); elsewhere the table shows "—".
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Variant", "Group", "GROUPS", "group_names", "select_groups", "recipe_names"]


@dataclass(frozen=True)
class Variant:
    """One row of a group's table.

    Attributes:
        name: the variant's name (lower case, as in ``--json``).
        recipe: the built-in recipe it trains ("" for variants measured by a study workflow).
        metric: the column the book's value is compared with: ``final_val_accuracy`` or
            ``test_accuracy``.
        book: the book's printed value of ``metric`` (a fraction), or None when it prints none.
        mc_samples: > 0: not trained, but the model of ``derived_from`` evaluated with MC
            dropout (the mean of this many stochastic passes).
        derived_from: the variant whose trained model this one evaluates.
        note: one line for the report.
        book_n: how many examples the book's value was measured on (its sampling error).
        differences: what trainwell does differently from the book's code for this variant
            (said in the report when the gap exceeds one run's spread); "" when none is known.
    """

    name: str
    recipe: str = ""
    metric: str = "final_val_accuracy"
    book: float | None = None
    mc_samples: int = 0
    derived_from: str = ""
    note: str = ""
    book_n: int = 5000
    differences: str = ""


#: What the transfer setup was checked against in the book's code (the same for every arm).
_TRANSFER_SAME = ("same split (the 8 classes' validation images for A, the 2,000 test shirts "
                  "and sandals and the first 200 training ones for B), network, Keras' "
                  "glorot-uniform init, plain SGD at 1e-3, batch 32 and epochs")


@dataclass(frozen=True)
class Group:
    """A group of variants trained with the same seeds (same data order and initial weights).

    Attributes:
        name: ``--only`` name. title: the table's title.
        kind: ``recipes`` (each variant a built-in recipe), ``transfer``, ``pretraining``.
        expensive: minutes per seed on a CPU (100-layer nets, 25-epoch schedules, exercise).
        quick: recipe overrides for ``--quick`` (synthetic data, seconds).
    """

    name: str
    title: str
    variants: tuple[Variant, ...]
    kind: str = "recipes"
    expensive: bool = False
    quick: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""


_QUICK = ("train.epochs=2", "train.batch_size=64")

GROUPS: tuple[Group, ...] = (
    Group("deep_nets", "Deep nets: 100 dense layers of 100 units, SGD 1e-3, 5 epochs", (
        Variant("selu", "chapter11_deep_selu", note="SELU, LeCun init, truncated normal (Keras)"),
        Variant("relu", "chapter11_deep_relu", note="ReLU, He init, truncated normal (Keras)"),
        Variant("selu_normal", "chapter11_deep_selu_normal", note="SELU, LeCun, plain normal"),
        Variant("relu_normal", "chapter11_deep_relu_normal", note="ReLU, He, plain normal"),
    ), expensive=True, quick=("model.hidden={layers = 12, units = 16}", *_QUICK),
        note="Standardized inputs. The two distributions have the same variance; the truncated "
             "one has no weight beyond 2 std (Keras' lecun_normal/he_normal)."),
    Group("batch_norm", "Batch norm: 300-100 ReLU/He + input BN, SGD 0.01, 2 epochs", (
        Variant("after", "chapter11_bn_after"),
        Variant("before", "chapter11_bn_before"),
    ), quick=("model.hidden=[32, 16]", *_QUICK)),
    Group("optimizers", "Faster optimizers at lr 1e-3: 3x100 ReLU/He, 10 epochs", tuple(
        Variant(name, f"chapter11_opt_{name}") for name in (
            "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamax", "nadam", "adamw")),
        quick=("model.hidden=[32, 32]", *_QUICK),
        note="AdamW uses the book's weight_decay = 1e-5: at lr 1e-3 the decay step rounds away "
             "in float32, so it trains exactly like Adam."),
    Group("schedules", "Learning-rate schedules: 3x100 ReLU/He, 25 epochs", (
        Variant("exponential", "chapter11_sched_exponential"),
        Variant("piecewise", "chapter11_sched_piecewise"),
        Variant("plateau", "chapter11_sched_plateau"),
        Variant("1cycle", "chapter11_sched_1cycle"),
        Variant("1cycle_momentum", "chapter11_sched_1cycle_momentum"),
        Variant("1cycle_momentum_keras", "chapter11_sched_1cycle_momentum_keras",
                note="the chapter's momentum form m ← βm − ηg; θ ← θ + m"),
    ), expensive=True, quick=("model.hidden=[32, 32]", "train.epochs=3", "train.batch_size=64"),
        note="Exponential and piecewise step once per epoch, like Keras' LearningRateScheduler."),
    Group("regularization", "Regularization: 100-100 ReLU/He, momentum SGD 0.01, 10 epochs", (
        Variant("dropout", "chapter11_reg_dropout"),
        Variant("mc_dropout", metric="test_accuracy", mc_samples=100, derived_from="dropout",
                note="the dropout model, mean of 100 passes with dropout on"),
        Variant("max_norm", "chapter11_reg_max_norm"),
    ), quick=("model.hidden=[32, 16]", *_QUICK)),
    Group("transfer", "Transfer learning: task A (8 classes) → task B (shirt vs sandal, 200 "
                      "images), 300-100-50-50-50 SELU, SGD 1e-3", (
        Variant("a", "transfer_fashion_a", book=0.9205, note="validation accuracy after 20 "
                "epochs (book: 92.05 %)", book_n=4000),
        Variant("b_scratch", "transfer_fashion_b", metric="test_accuracy", book=0.9705,
                book_n=2000),
        Variant("b_on_a", "transfer_fashion_b", metric="test_accuracy", book=0.9935,
                note="4 frozen epochs, then 16 unfrozen at the same lr 1e-3", book_n=2000,
                differences="the book builds B on A from model A's own layer objects and "
                            "clones A to keep it; trainwell copies the weights: the same "
                            "training"),
        Variant("b_on_a_lr1e-4", "transfer_fashion_b", metric="test_accuracy",
                note="phase 2 at lr 1e-4 (the 3rd edition's setting)"),
    ), kind="transfer",
        note="The book (2nd edition) prints one run: 97.05 % from scratch, 99.35 % on A. Its "
             "3rd edition reports 91.85 % vs 93.85 % for another task B."),
    Group("pretraining", "Unsupervised pretraining: 500 labels, greedy layer-wise "
                         "autoencoders vs from scratch", (
        Variant("scratch", metric="test_accuracy"),
        Variant("pretrained", metric="test_accuracy"),
    ), kind="pretraining"),
    Group("exercise", "Exercise 11.8 (Fashion-MNIST counterpart): 10x100 layers", (
        Variant("swish", "compare_fashion_swish", note="Swish/He, Nadam, early stopping"),
        Variant("bn", "compare_fashion_bn", note="+ batch norm"),
        Variant("selu", "compare_fashion_selu", note="SELU/LeCun, standardized inputs"),
        Variant("alpha_dropout", "compare_fashion_alpha_dropout", note="SELU + alpha dropout"),
        Variant("mc_alpha_dropout", metric="test_accuracy", mc_samples=100,
                derived_from="alpha_dropout", note="MC alpha dropout, 100 passes"),
        Variant("1cycle", "compare_fashion_1cycle", note="Nesterov + 1cycle"),
    ), expensive=True, quick=("model.hidden={layers = 4, units = 16}", *_QUICK)),
)


def group_names() -> list[str]:
    """Every group's name, in the study's order."""
    return [g.name for g in GROUPS]


def select_groups(only: str | list[str] | None) -> list[Group]:
    """The groups named in ``only`` (comma-separated text or a list), all when None.

    Raises:
        ConfigError: ``--only`` naming an unknown group, listing the groups.
    """
    from trainwell.errors import ConfigError

    if only is None or (isinstance(only, str) and not only.strip()):
        return list(GROUPS)
    names = [n.strip().lower() for n in (only.split(",") if isinstance(only, str) else only)
             if n.strip()]
    known = {g.name: g for g in GROUPS}
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise ConfigError("--only", only, "group names separated by commas: "
                          + ", ".join(known))
    return [g for g in GROUPS if g.name in names]


def recipe_names() -> list[str]:
    """The built-in recipes the study trains (each visible in ``trainwell recipes``)."""
    seen: list[str] = []
    for g in GROUPS:
        for v in g.variants:
            if v.recipe and v.recipe not in seen:
                seen.append(v.recipe)
    return seen
