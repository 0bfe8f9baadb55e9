"""Where datasets live on disk: ``$TRAINWELL_DATA``, else the user cache directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["data_dir", "user_cache_dir", "trainwell_cache_dir"]


def data_dir() -> Path:
    """The root folder of trainwell's datasets.

    ``$TRAINWELL_DATA`` when set and non-empty; otherwise ``$XDG_CACHE_HOME/trainwell``
    (``~/.cache/trainwell`` on Linux, ``~/Library/Caches/trainwell`` on macOS,
    ``%LOCALAPPDATA%\\trainwell`` on Windows). The folder is not created here.

    Layout: ``<root>/fashion-mnist/*.gz``, ``<root>/mnist/*.gz``,
    ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}``.

    Example:
        >>> import os; os.environ["TRAINWELL_DATA"] = "/tmp/tw"; str(data_dir())
        '/tmp/tw'
    """
    env = os.environ.get("TRAINWELL_DATA", "").strip()
    if env:
        return Path(env).expanduser()
    return user_cache_dir()


def user_cache_dir() -> Path:
    """trainwell's folder in the user cache directory (the platform's convention)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return Path(xdg).expanduser() / "trainwell"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "trainwell"
    if sys.platform.startswith("win") and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "trainwell"
    return Path.home() / ".cache" / "trainwell"


def trainwell_cache_dir(kind: str) -> Path:
    """Where trainwell keeps one kind of cache (``compile``, ``decoded``):
    ``$TRAINWELL_CACHE/<kind>`` when set, else ``<kind>`` in the user cache folder — never
    inside a data folder, which may be shared or read-only. Not created here."""
    env = os.environ.get("TRAINWELL_CACHE", "").strip()
    root = Path(env).expanduser() if env else user_cache_dir()
    return root / kind
