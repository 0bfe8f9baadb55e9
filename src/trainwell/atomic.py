"""The one way trainwell replaces a file: atomically, exclusively, and saying when the disk is full.

Every file trainwell rewrites (checkpoints, ``manifest.json``, ``summary.json``, the history,
``recipe.toml``, the saved model, plots, the report) goes through :func:`atomic_write`:

* the new bytes go to a temporary file in the same folder, created with
  ``O_CREAT | O_EXCL | O_NOFOLLOW`` under a fresh random name, so a symlink or file planted
  where the temporary file goes is never followed or written through, and two processes never
  share one temporary file;
* the file is fsynced and renamed over the target (``os.replace``: a symlink at the target is
  replaced, its destination is untouched); the folder is fsynced;
* on any failure the temporary file is removed; a full disk (or a file-size limit) becomes a
  :class:`DiskFullError` that says how much space the file needs and how much is free.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from trainwell.errors import TrainwellError

__all__ = ["atomic_write", "DiskFullError", "remove_stale_temp_files", "fsync_dir",
           "check_writable_folder"]

_NOSPACE = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
          | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
# .<name>.<pid>.<random>.tmp: the pid lets a later process remove what a killed one left.
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


class DiskFullError(TrainwellError, OSError):
    """No space left (or a file-size limit) while writing a file; nothing partial is left."""


def _size(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: not every system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_exclusive(path: Path) -> tuple[int, Path]:
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:  # taken (or planted): draw another name
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path))


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[BinaryIO], None], *,
                 fsync: bool = True, before_replace: Callable[[], None] | None = None) -> Path:
    """Replace ``path`` with ``data`` so that readers see the old file or the new, never a mix.

    Args:
        path: the file to write (its folder must exist).
        data: bytes, text (written as UTF-8, newlines untouched), or a function that writes
            to the binary file object it receives.
        fsync: flush the file and its folder to the disk (default True).
        before_replace: called once the new file is complete, just before the rename
            (checkpoints move the current file to ``<stem>.prev.pt`` there).

    Raises:
        DiskFullError: no space left on the device (or a file-size limit); the temporary
            file is removed and ``path`` is unchanged.

    Example:
        >>> atomic_write("runs/x/summary.json", '{"status": "completed"}')  # doctest: +SKIP
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = _open_exclusive(path)
    written = None
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                if isinstance(data, bytes):
                    f.write(data)
                else:
                    data(f)
                f.flush()
            finally:
                written = f.tell()
            if fsync:
                os.fsync(f.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno in _NOSPACE:
            raise _disk_full(path, len(data) if isinstance(data, bytes) else written,
                             exc) from None
        raise
    if fsync:
        fsync_dir(path.parent)
    return path


def _disk_full(path: Path, needed: int | None, exc: OSError) -> DiskFullError:
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    what = "a file-size limit was reached" if exc.errno == errno.EFBIG else \
        "no space left on the device"
    need = f"about {_size(needed)}" if needed else "more space"
    return DiskFullError(f"{what} while writing {path}: it needs {need} ({_size(free)} free); "
                         f"free some space and run the command again (nothing partial was left "
                         f"behind; the previous {path.name}, if any, is intact)")


def remove_stale_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Delete temporary files in ``directory`` left by processes that no longer run."""
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP.match(p.name)
        if m is None or int(m["pid"]) == os.getpid() or _alive(int(m["pid"])):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def check_writable_folder(folder: Path | str, field: str = "--out") -> None:
    """Refuse, before any work, a folder where nothing can be written (read-only, a file on
    the way, no permission): the nearest existing folder of ``folder`` is tried with a
    temporary file, removed at once.

    Raises:
        ConfigError: naming ``field``, with the system's reason.
    """
    import tempfile

    from trainwell.errors import ConfigError

    p = Path(folder).absolute()
    probe = p
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        where = "that path is a file" if probe == p else f"{probe}, a parent of it, is a file"
        raise ConfigError(field, str(folder), f"a folder that can be written ({where})")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise ConfigError(field, str(folder), f"a folder that can be written ({probe}: "
                          f"{exc.strerror or exc})") from None
