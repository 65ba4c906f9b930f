"""Upgrade: production's current version (--baseline) installed and Healthy, then the candidate applied over it.

Run: pytest --pyargs validator.scenarios.test_upgrade --mirror-candidate stable --mirror-baseline v3.4.2
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.scenario("upgrade"), pytest.mark.mirror_docker]


def test_baseline_is_healthy_first(baseline_installed):
    """The starting point is sound: a failed upgrade from a broken baseline would prove nothing."""
    assert baseline_installed.wait.passed, baseline_installed.wait.root_cause


def test_candidate_applies_over_baseline(upgraded_argocd, candidate_bundle):
    """Every object of the candidate is accepted over the running baseline; what it dropped is pruned."""
    assert len(upgraded_argocd.install.applied) == len(candidate_bundle)


def test_every_object_healthy_after_upgrade(upgraded_argocd):
    wait = upgraded_argocd.wait
    assert wait.passed, wait.root_cause
    assert not wait.missing, f"objects never appeared: {', '.join(wait.missing)}"
