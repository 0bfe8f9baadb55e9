"""The compiled training step (``compile = true``) lives in :mod:`trainwell.train.step`.

There is one step body; compiling only changes how it is run. This module keeps the names it
has always exported.
"""

from trainwell.train.step import StepOutput, TrainStep, make_train_step, needs_eager_step

__all__ = ["StepOutput", "TrainStep", "make_train_step", "needs_eager_step"]
