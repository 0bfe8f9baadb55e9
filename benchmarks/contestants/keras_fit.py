"""Keras 3 ``model.fit`` on the benchmark network; the backend comes from KERAS_BACKEND."""

import os
import sys

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from common import Workload, clock, emit, load_arrays  # noqa: E402


def main(workload: str, data: str, warmup: int, epochs: int) -> None:
    import keras

    w = Workload.from_json(workload)
    keras.utils.set_random_seed(0)
    x, y = load_arrays(data)
    act = {"selu": "selu", "swish": "swish"}[w.activation]
    init = {"lecun": "lecun_normal", "he": "he_normal"}[w.init]
    layers = [keras.Input((w.n_inputs,))]
    for units in w.hidden:
        layers.append(keras.layers.Dense(units, kernel_initializer=init))
        if w.batch_norm:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.Activation(act))
    layers.append(keras.layers.Dense(w.n_classes))
    model = keras.Sequential(layers)
    opt = keras.optimizers.SGD(w.lr) if w.optimizer == "sgd" else keras.optimizers.Nadam(w.lr)
    model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = clock()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(clock() - self.t0)

    timer = EpochTimer()
    model.fit(x, y, batch_size=w.batch_size, epochs=warmup + epochs, verbose=0, shuffle=True,
              callbacks=[timer])
    emit(f"keras {keras.__version__} ({os.environ.get('KERAS_BACKEND', 'default')})",
         timer.times[warmup:])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
