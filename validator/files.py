"""File edges every module shares: bounded reads (never unbounded memory or time) and atomic writes (never partial
files, and never a device or a symlink replaced by a file)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from validator.errors import InputError

STREAM_DEADLINE_S = 120.0  # a pipe, FIFO or device must deliver its whole input within this


def read_bounded(path: Path, max_bytes: int, what: str = "file", deadline_s: float = STREAM_DEADLINE_S) -> bytes:
    """Read PATH, holding at most MAX_BYTES + 1 bytes; a directory, unreadable or oversized file is an InputError.

    Pipes, FIFOs and devices (`<(kustomize build)`, /dev/stdin) are read too, but without blocking: a FIFO
    nobody writes to would otherwise hang the run, so they get DEADLINE_S to deliver everything.
    """
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{path}: is a directory, not a {what}")
        if stat.S_ISREG(mode):
            with path.open("rb") as fh:
                data = fh.read(max_bytes + 1)
        else:
            data = _read_stream(path, max_bytes, what, deadline_s)
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputError(f"{path}: over the {max_bytes}-byte {what} limit")
    return data


def _read_stream(path: Path, max_bytes: int, what: str, deadline_s: float) -> bytes:
    import select

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO for reading blocks until a writer comes
    try:
        chunks: list[bytes] = []
        size, deadline = 0, time.monotonic() + deadline_s
        while size <= max_bytes:
            try:  # read first: a FIFO no writer ever opened reads as end of input, where select() would wait
                chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            except BlockingIOError:  # a writer, but no data yet
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                    raise InputError(f"{path}: the {what} did not arrive within {deadline_s:.0f} s (a writer "
                                     "that never finishes?)") from None
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, deadline_s: float = STREAM_DEADLINE_S) -> None:
    """Write via a temp file and rename, so readers never see a partial file; mode follows the umask like open().

    A symlink is followed (its target is replaced, the link stays), and what is not a regular file (/dev/stdout,
    /dev/null, a FIFO) is written in place: renaming over it would replace a device with a file. A FIFO (or a
    pipe behind /dev/stdout) gets DEADLINE_S for a reader to come and take everything, as reads do.
    """
    try:
        mode: int | None = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISFIFO(mode):
        _write_stream(path, data, deadline_s)
        return
    if mode is not None and not stat.S_ISREG(mode):
        with path.open("wb") as fh:  # a directory fails here, as IsADirectoryError
            fh.write(data)
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))

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


def _write_stream(path: Path, data: bytes, deadline_s: float) -> None:
    """Write DATA into a FIFO without blocking forever: open() waits for a reader and write() for a slow one."""
    import errno
    import select

    deadline = time.monotonic() + deadline_s
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if time.monotonic() >= deadline:
                raise InputError(f"{path}: nobody opened the FIFO for reading within {deadline_s:.0f} s") from None
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    try:
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                raise InputError(f"{path}: the reader took less than the whole report within {deadline_s:.0f} s")
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
