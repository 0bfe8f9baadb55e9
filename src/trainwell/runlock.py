"""One process at a time in a run directory.

``fit`` (new or resumed) holds an exclusive lock on ``RUN/.lock`` while it trains and writes.
A second ``fit --resume RUN`` is refused with "RUN is in use by process N". The lock is an
``flock`` on that file, which the operating system releases when the process ends, however it
ends: a lock left by a process that was killed is simply taken over (the file stays, holding
the last owner's process id). Where ``flock`` does not exist (Windows) runs are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from trainwell.atomic import remove_stale_temp_files
from trainwell.errors import TrainwellError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunLock", "RunInUseError", "LOCK_FILE"]

LOCK_FILE = ".lock"


class RunInUseError(TrainwellError):
    """Another process is training in (or writing to) this run directory."""


class RunLock:
    """``with RunLock(run_dir): ...`` — exclusive use of a run directory.

    Taking the lock also removes the temporary files a killed process left behind.

    Raises:
        RunInUseError: another live process holds it.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if fcntl is None or self._fd is not None:
            return self
        path = self.run_dir / LOCK_FILE
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise RunInUseError(f"{self.run_dir} cannot be locked for this run ({path}: "
                                f"{exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunInUseError(f"{self.run_dir} is in use by process {owner}; wait for it to "
                                f"finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        for folder in (self.run_dir, self.run_dir / "checkpoints", self.run_dir / "model"):
            remove_stale_temp_files(folder)
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()
