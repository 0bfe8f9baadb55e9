"""A recipe made into a run: assemble it (compose), fit it into a run directory (run), transfer
and pretraining runs, the LR range test, the diagnosis and uncertainty drivers.

Modules here use the engine (nn, optim, data, train), diagnose, config and report; studies and
the CLI use them.
"""
