"""Speedrun race contestant: Keras 3 on JAX, written to be as fast as Keras allows.

The recipe's network (Dense without bias → BatchNormalization → ReLU per hidden layer, He
normal init, Dense output), AdamW with trainwell's 1cycle (a LearningRateSchedule for the rate
and β1 cycled from the optimizer's own iteration counter, inside the compiled step), label
smoothing through one-hot targets, XLA-compiled train step (``jit_compile=True``), all data as
numpy arrays in memory. Prints one JSON line: the test accuracy and the seconds spent training.

    KERAS_BACKEND=jax python speedrun_keras.py SEED [STEPS_PER_EXECUTION]
"""

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from speedrun_setup import fashion_mnist, speedrun  # noqa: E402


def onecycle_adamw(cfg, total: int):
    """AdamW with trainwell's 1cycle: the rate from a LearningRateSchedule, β1 from the
    optimizer's iteration counter, both piecewise linear and computed inside the jitted step."""
    import keras
    from keras import ops

    t1, t2 = cfg.warmup_frac * total, (1 - cfg.anneal_frac) * total
    hi, lo = cfg.lr, cfg.lr / cfg.start_div
    lr_points = [(0.0, lo), (t1, hi), (t2, lo), (float(total), hi / cfg.final_div)]
    b1_points = [(0.0, cfg.max_momentum), (t1, cfg.min_momentum), (t2, cfg.max_momentum)]

    def piecewise(step, points):
        # Linear between (t, value) points, flat after the last one.
        step = ops.cast(step, "float32")
        out = ops.full((), points[-1][1], "float32")
        for (a, va), (b, vb) in reversed(list(zip(points, points[1:], strict=False))):
            f = ops.clip((step - a) / (b - a), 0.0, 1.0)
            out = ops.where(step < b, va + (vb - va) * f, out)
        return out

    class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return piecewise(step, lr_points)

    class CycledAdamW(keras.optimizers.AdamW):
        """AdamW whose β1 follows the 1cycle momentum (read at every update)."""

        @property
        def beta_1(self):
            return piecewise(self.iterations, b1_points)

        @beta_1.setter
        def beta_1(self, value):  # Adam's constructor assigns the float; the cycle wins
            pass

    return CycledAdamW(learning_rate=OneCycle(), weight_decay=cfg.weight_decay, epsilon=1e-7)


def main(seed: int, steps_per_execution: int) -> None:
    import keras

    cfg = speedrun()
    keras.utils.set_random_seed(seed)
    if cfg.precision == "bf16" and os.environ.get("SPEEDRUN_KERAS_BF16") == "1":
        # Off by default: on this CPU XLA's bf16 steps were slower than float32 ones.
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    x, y, xt, yt = fashion_mnist()
    y_hot = keras.utils.to_categorical(y, 10).astype("float32")
    total = cfg.epochs * -(-len(x) // cfg.batch_size)
    he = keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")
    layers = [keras.Input((784,))]
    for units in cfg.hidden:
        layers += [keras.layers.Dense(units, use_bias=False, kernel_initializer=he),
                   keras.layers.BatchNormalization(momentum=cfg.bn_momentum,
                                                   epsilon=cfg.bn_epsilon),
                   keras.layers.ReLU()]
    layers.append(keras.layers.Dense(10, kernel_initializer=he, dtype="float32"))
    model = keras.Sequential(layers)
    model.compile(onecycle_adamw(cfg, total),
                  keras.losses.CategoricalCrossentropy(from_logits=True,
                                                       label_smoothing=cfg.label_smoothing),
                  jit_compile=True, steps_per_execution=steps_per_execution)
    started = time.perf_counter()
    model.fit(x, y_hot, batch_size=cfg.batch_size, epochs=cfg.epochs, shuffle=True, verbose=0)
    trained = time.perf_counter() - started
    logits = model.predict(xt, batch_size=len(xt), verbose=0)
    accuracy = float((logits.argmax(1) == yt).mean())
    print(json.dumps({"test_accuracy": accuracy, "train_seconds": trained,
                      "keras": keras.__version__, "backend": keras.backend.backend()}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1)
