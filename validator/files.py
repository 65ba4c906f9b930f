"""File edges every module shares: bounded reads (never unbounded memory) and atomic writes (never partial files)."""

from __future__ import annotations

import os
from pathlib import Path

from validator.errors import InputError


def read_bounded(path: Path, max_bytes: int, what: str = "file") -> bytes:
    """Read PATH, holding at most MAX_BYTES + 1 bytes; a directory, unreadable or oversized file is an InputError."""
    try:
        if path.is_dir():
            raise InputError(f"{path}: is a directory, not a {what}")
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputError(f"{path}: over the {max_bytes}-byte {what} limit")
    return data


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so readers never see a partial file; mode follows the umask like open()."""
    import tempfile  # reading is the hot path (preflight); writing pays for this import

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
