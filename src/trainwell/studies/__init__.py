"""Many runs: side-by-side comparisons (compare), hyperparameter search (tune) and the chapter's
experiments (experiments/). Built on :mod:`trainwell.workflows`; the CLI uses them.
"""
