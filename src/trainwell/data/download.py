"""Checked downloads: streamed with urllib to a temp file, sha256 verified, then renamed."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from trainwell.errors import DataError

__all__ = ["download_file", "sha256_of", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 30.0  # seconds without data before a source counts as unreachable
_CHUNK = 1 << 16


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, tmp: Path, *, timeout: float, progress: bool, label: str) -> str:
    """Stream ``url`` into ``tmp``; returns the sha256 of what was written."""
    h = hashlib.sha256()
    req = urllib.request.Request(url, headers={"User-Agent": "trainwell"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(tmp, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        bar = None
        if progress:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            from trainwell.console import make_console
            bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                           TransferSpeedColumn(), TimeRemainingColumn(),
                           console=make_console(stderr=True), transient=True)
        task = bar.add_task(label, total=total) if bar else None
        try:
            if bar:
                bar.start()
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                h.update(chunk)
                if bar:
                    bar.update(task, advance=len(chunk))
        finally:
            if bar:
                bar.stop()
    return h.hexdigest()


def download_file(urls: str | Sequence[str], dest: str | Path, *, sha256: str | None,
                  timeout: float = DEFAULT_TIMEOUT, progress: bool = True) -> Path:
    """Download the first reachable of ``urls`` to ``dest`` and check its sha256.

    The bytes go to a temp file in ``dest``'s folder that is renamed only after the checksum
    matches, so an interrupted or corrupt download never leaves a file that looks complete.

    Args:
        urls: one URL or mirrors tried in order.
        dest: final path.
        sha256: expected hex digest (None skips the check).
        timeout: seconds of socket inactivity before giving up on a source (default 30).
        progress: show a rich progress bar on stderr (default True).

    Raises:
        DataError: listing every URL tried and why it failed.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for url in urls:
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            digest = _fetch(url, tmp, timeout=timeout, progress=progress, label=dest.name)
            if sha256 is not None and digest != sha256.lower():
                failures.append(f"{url}: sha256 {digest} does not match the pinned {sha256}")
                continue
            tmp.replace(dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"{url}: {reason}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(f"could not download {dest.name}: " + "; ".join(failures))
