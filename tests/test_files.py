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
