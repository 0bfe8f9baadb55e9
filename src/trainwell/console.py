"""The rich consoles trainwell prints through: wrapped for a terminal, never for a log.

In a terminal (or a notebook) rich fits the output to the window. Anywhere else (a log file,
CI, a pipe) a fixed 80-column width would split run paths, ``--resume`` hints and table rows
mid-name; there lines are printed whole and tables take their natural width.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["make_console", "LOG_WIDTH"]

#: The width tables may take when the output is not a terminal (wider ones wrap their cells).
LOG_WIDTH = 400


def make_console(*, stderr: bool = False, **kwargs: Any) -> Any:
    """A ``rich.console.Console``; outside a terminal or notebook, one that never wraps lines.

    A ``width`` given here, or the ``COLUMNS`` environment variable, is kept as it is.
    """
    from rich.console import Console

    console = Console(stderr=stderr, **kwargs)
    if (console.is_terminal or console.is_jupyter or "width" in kwargs
            or os.environ.get("COLUMNS", "").isdigit()):
        return console
    return Console(stderr=stderr, width=LOG_WIDTH, soft_wrap=True, **kwargs)
