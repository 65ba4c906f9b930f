"""One run per artifacts directory: concurrent `validate` runs never mix their files.

A run takes an exclusive, non-blocking flock on `<artifacts>/.lock` and holds it until it ends; the kernel drops it
when the process dies however it dies (a signal, `kill -9`), so a stale lock cannot exist. A run that finds the lock
held by a live run writes to `<artifacts>/run-<UTC timestamp>-<pid>/` instead, so the default location always
holds the complete artifacts of exactly one run.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = ".lock"


@dataclass(frozen=True)
class Claim:
    out: Path  # where this run writes
    holder: str | None = None  # pid of the run holding the artifacts directory when this run fell back, else None

    @property
    def fell_back(self) -> bool:
        return self.holder is not None


def _try_lock(path: Path) -> int | None:
    """An fd holding PATH's flock, or None when a live process holds it. The file is unlinked on release, so the
    lock counts only if the locked inode is still the one at PATH (a releasing run may have removed it)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # O_CLOEXEC by default: children never inherit it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # locked a file its holder had just removed: start over on the current one


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"


@contextmanager
def claim_artifacts(artifacts: Path) -> Iterator[Claim]:
    """Yield where this run writes: ARTIFACTS when it could lock it, else a run-<timestamp>-<pid>/ inside it."""
    artifacts.mkdir(parents=True, exist_ok=True)
    lock = artifacts / LOCK_NAME
    fd = _try_lock(lock)
    if fd is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        out = artifacts / f"run-{stamp}-{os.getpid()}"
        out.mkdir(parents=True, exist_ok=True)
        yield Claim(out, _holder(lock))
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield Claim(artifacts)
    finally:
        try:  # remove while still holding it, then release: see _try_lock
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                lock.unlink()
        except OSError:
            pass
        os.close(fd)
