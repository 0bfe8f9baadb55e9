"""Time to accuracy: train a built-in Fashion-MNIST recipe until the test accuracy reaches a target.

The clock runs from the first training step to the end of the epoch that reaches the target
(test-set evaluation after each epoch is not counted). Prints one JSON line with the time,
the epochs and the accuracy reached. Usage (via ``benchmarks/run.py --tta``)::

    python time_to_accuracy.py <recipe> <target> <eager|compiled>
"""

import json
import sys
import time


def main(recipe_name: str, target: float, mode: str) -> None:
    import torch

    from trainwell.compose import build_from_recipe
    from trainwell.recipe import apply_overrides, resolve
    from trainwell.train import Callback

    recipe = apply_overrides(resolve(recipe_name),
                             [f"train.compile={'true' if mode == 'compiled' else 'false'}"])
    class Stopwatch(Callback):
        def __init__(self):
            self.start = 0.0
            self.excluded = 0.0
            self.reached = None
            self.curve = []

        def on_fit_start(self, t):
            self.start = time.perf_counter()

        def on_epoch_end(self, t, epoch, logs):
            t0 = time.perf_counter()
            elapsed = t0 - self.start - self.excluded  # training time only
            acc = t.evaluate(splits.x_test, splits.y_test)["accuracy"]
            self.excluded += time.perf_counter() - t0
            self.curve.append({"epoch": epoch, "test_accuracy": acc, "seconds": elapsed})
            if self.reached is None and acc >= target:
                self.reached = {"epoch": epoch, "test_accuracy": acc, "seconds": elapsed}
                t.stop_training = True

    watch = Stopwatch()
    splits, _, trainer = build_from_recipe(recipe, callbacks=[watch], progress=False)
    trainer.fit(splits.x_train, splits.y_train, epochs=recipe.train.epochs,
                batch_size=recipe.train.batch_size,
                validation_data=(splits.x_val, splits.y_val))
    print(json.dumps({"recipe": recipe_name, "mode": mode, "target": target,
                      "reached": watch.reached, "curve": watch.curve,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "eager")
