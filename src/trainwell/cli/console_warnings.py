"""trainwell's warnings as one ``warning: <message>`` line on stderr while a CLI command runs.

Python users get trainwell's warnings as ordinary :mod:`warnings` (categories in
:mod:`trainwell.errors`), with the file and line Python adds. On the command line that
location means nothing to a user, so each command swaps :func:`warnings.showwarning` for one
that prints a :class:`~trainwell.errors.TrainwellWarning` like the ``error:`` lines: one line,
no path, no source line. Only the display changes: filters (``-W``, ``PYTHONWARNINGS``,
``warnings.simplefilter``) still decide what is shown, and the previous display comes back
when the command ends.

Other libraries' warnings (torch, optuna, ...) keep Python's format: they are about that
library, and their path says which one.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from trainwell.errors import TrainwellWarning

__all__ = ["is_trainwell_warning", "warning_line", "one_line_warnings"]


def is_trainwell_warning(category: Any) -> bool:
    """True for trainwell's own warning categories (subclasses of ``TrainwellWarning``)."""
    return isinstance(category, type) and issubclass(category, TrainwellWarning)


def warning_line(message: Warning | str) -> str:
    """The CLI's text of a warning: ``warning: <message>`` on one line.

    Example:
        >>> warning_line("skipping last.pt;\\nfalling back")
        'warning: skipping last.pt; falling back\\n'
    """
    return "warning: " + " ".join(str(message).split()) + "\n"


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Within the block, trainwell's warnings are shown as one ``warning:`` line on stderr."""
    previous = warnings.showwarning

    def showwarning(message: Warning | str, category: type[Warning], filename: str,
                    lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
        if not is_trainwell_warning(category):
            previous(message, category, filename, lineno, file, line)
            return
        try:
            (file or sys.stderr).write(warning_line(message))
        except (OSError, AttributeError):   # no usable stderr: the warning is lost, as Python's
            pass

    warnings.showwarning = showwarning
    try:
        yield
    finally:
        warnings.showwarning = previous
