"""HA: the candidate's ha/install.yaml on the `ha` profile (one control plane, three workers).

Run: pytest --pyargs validator.scenarios.test_ha --mirror-candidate stable
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.scenario("ha"), pytest.mark.mirror_docker]


def test_ha_manifests_are_the_candidates_release(ha_bundle, candidate_bundle):
    """The HA manifests come from the very release under test, not from whatever `stable` is now."""
    assert ha_bundle.provenance.variant == "ha"
    assert ha_bundle.provenance.version == candidate_bundle.provenance.version


def test_every_ha_object_becomes_healthy(ha_argocd):
    """redis-ha, its haproxy and every replicated component are Healthy across the nodes."""
    wait = ha_argocd.wait
    assert wait.passed, wait.root_cause
    assert not wait.missing, f"objects never appeared: {', '.join(wait.missing)}"
