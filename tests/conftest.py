"""Suite-wide settings: one torch thread.

The tests train tiny networks, for which a single thread is fastest; on a 2-core CI machine two
threads per process only fight each other (and any subprocess a test starts inherits the
environment variable).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)


import signal  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _python_sigint_handler():
    """Every test starts with Python's own Ctrl-C handler, however the suite was launched
    (a background job or ``nohup`` starts it with SIGINT ignored)."""
    try:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread
        yield
        return
    yield
    signal.signal(signal.SIGINT, previous)
