"""Shared fixtures for the validator's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_MANIFESTS = Path(__file__).resolve().parents[1].parent / "shared" / "manifests" / "argo-cd"


@pytest.fixture(scope="session")
def shared_manifests() -> Path:
    """../shared/manifests/argo-cd, or a clean skip where this checkout has no shared/ beside it."""
    if not SHARED_MANIFESTS.is_dir():
        pytest.skip(f"real upstream manifests not present at {SHARED_MANIFESTS}")
    return SHARED_MANIFESTS


def real_manifest(relative: str) -> Path:
    """A path under ../shared/manifests/argo-cd, skipping the calling test when it is absent."""
    path = SHARED_MANIFESTS / relative
    if not path.is_file():
        pytest.skip(f"real upstream manifest not present: {path}")
    return path
