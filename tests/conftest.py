"""Shared fixtures for the validator's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml  # noqa: F401  (see below)

# PyYAML is imported before any in-process pytester run: pytester drops the modules first imported during a run,
# and libyaml's C extension is not imported twice, so a PyYAML imported again would have event classes libyaml
# does not emit (validator.manifests: "unexpected YAML event StreamStartEvent"). The pytest plugin imports
# nothing heavy until a run uses it, so it no longer loads PyYAML at the start of every session.

# Real upstream Argo CD manifests, copied unchanged with their license (see the README there).
UPSTREAM_MANIFESTS = Path(__file__).resolve().parent / "fixtures" / "upstream" / "argo-cd"


@pytest.fixture(scope="session")
def upstream_manifests() -> Path:
    """The directory of real upstream manifests: <tag>/install.yaml, <tag>/ha/install.yaml, ..."""
    return UPSTREAM_MANIFESTS


def real_manifest(relative: str) -> Path:
    """A real upstream manifest by '<tag>/<path>'; a missing one is a broken test, not a skip."""
    path = UPSTREAM_MANIFESTS / relative
    if not path.is_file():
        raise FileNotFoundError(f"no vendored upstream manifest {path}: copy it from argoproj/argo-cd with its tag")
    return path
