"""Rollback: after the upgrade, the baseline applied again is Healthy (the manual `kubectl apply` made routine).

Run: pytest --pyargs validator.scenarios.test_rollback --mirror-candidate stable --mirror-baseline v3.4.2
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.scenario("rollback"), pytest.mark.mirror_docker]


def test_baseline_applies_over_candidate(rolled_back_argocd, baseline_bundle):
    """Every object of the baseline is accepted again; what only the candidate had is pruned."""
    assert len(rolled_back_argocd.install.applied) == len(baseline_bundle)


def test_every_object_healthy_after_rollback(rolled_back_argocd):
    wait = rolled_back_argocd.wait
    assert wait.passed, wait.root_cause
    assert not wait.missing, f"objects never appeared: {', '.join(wait.missing)}"
