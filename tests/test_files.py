"""Bounded reads and atomic writes: the file edges every command relies on."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from validator.errors import InputError
from validator.files import atomic_write, read_bounded


def test_atomic_write_replaces_whole_files_with_umask_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out" / "verdict.json"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["verdict.json"]  # no temp file left behind


def test_atomic_write_failure_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "verdict.json"
    atomic_write(target, b"old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_read_bounded_refuses_big_files_directories_and_missing_ones(tmp_path: Path) -> None:
    big = tmp_path / "kubeconfig"
    big.write_bytes(b"x" * 101)
    assert read_bounded(big, 101, "kubeconfig") == b"x" * 101
    with pytest.raises(InputError, match="over the 100-byte kubeconfig limit"):
        read_bounded(big, 100, "kubeconfig")
    with pytest.raises(InputError, match="is a directory, not a profile"):
        read_bounded(tmp_path, 100, "profile")
    with pytest.raises(InputError, match="cannot read pin file"):
        read_bounded(tmp_path / "nope", 100, "pin file")


def test_atomic_write_never_replaces_a_device_or_a_fifo(tmp_path: Path) -> None:
    """`-o /dev/stdout` or `-o /dev/null` must write to the device; renaming a file over it replaced /dev/full."""
    atomic_write(Path("/dev/null"), b"discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so opening for writing does not block
    try:
        atomic_write(fifo, b"through the pipe")
        assert os.read(reader, 100) == b"through the pipe"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_fifo_nobody_reads_is_refused_in_bounded_time(tmp_path: Path) -> None:
    """`preflight -o FIFO` with no reader blocked in open() for ever; a reader that stops reading, in write()."""
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"report.fifo: nobody opened the FIFO for reading within 0 s"):
        atomic_write(fifo, b"x", deadline_s=0.2)
    stalled_reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opens, never reads: the pipe buffer fills
    try:
        with pytest.raises(InputError, match=r"report.fifo: the reader took less than the whole report within 0 s"):
            atomic_write(fifo, b"y" * (1 << 20), deadline_s=0.2)
    finally:
        os.close(stalled_reader)


def test_a_fifo_reader_that_comes_late_gets_the_whole_report(tmp_path: Path) -> None:
    """A reader may start after the writer (`argocd-mirror preflight -o f & cat f`); more than a pipe buffer."""
    import threading
    import time

    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    report = bytes(range(256)) * 4096  # 1 MiB, sixteen pipe buffers
    received = bytearray()

    def late_reader() -> None:
        time.sleep(0.2)
        with fifo.open("rb") as fh:
            while chunk := fh.read(7000):
                received.extend(chunk)

    thread = threading.Thread(target=late_reader)
    thread.start()
    atomic_write(fifo, report, deadline_s=30)
    thread.join(30)
    assert bytes(received) == report


def test_atomic_write_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"


def test_a_fifo_nobody_writes_to_is_refused_in_bounded_time(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert read_bounded(fifo, 100) == b""  # no writer: end of input at once, not a hang
    writer_end = os.open(fifo, os.O_RDWR)  # a writer that never writes
    try:
        with pytest.raises(InputError, match=r"fifo.yaml: the manifest did not arrive within 0 s \(a writer"):
            read_bounded(fifo, 100, "manifest", deadline_s=0.2)
    finally:
        os.close(writer_end)


def test_pipes_and_devices_are_read_with_the_size_bound(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"kind: ConfigMap\n")
    os.close(write_end)
    assert read_bounded(Path(f"/dev/fd/{read_end}"), 100) == b"kind: ConfigMap\n"
    os.close(read_end)
    with pytest.raises(InputError, match="over the 1000-byte manifest limit"):
        read_bounded(Path("/dev/zero"), 1000, "manifest")
