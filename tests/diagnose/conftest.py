"""Fixtures of the diagnosis tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def flush_denormals():
    """Saturated sigmoid networks produce denormal floats, 10× slower on CPUs; flush them."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.fixture(autouse=True)
def one_thread():
    """The networks here are tiny: one thread avoids contention with other test processes."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
