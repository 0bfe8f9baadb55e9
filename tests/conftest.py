"""Suite-wide settings: one torch thread.

The tests train tiny networks, for which a single thread is fastest; on a 2-core CI machine two
threads per process only fight each other (and any subprocess a test starts inherits the
environment variable).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
