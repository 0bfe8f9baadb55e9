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
