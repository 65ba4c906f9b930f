"""Fresh install: the candidate installed from zero on a mirror cluster built from scratch.

Run: pytest --pyargs validator.scenarios.test_fresh_install --mirror-candidate stable
(or: argocd-mirror validate --scenario fresh-install)
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.scenario("fresh-install"), pytest.mark.mirror_docker]


def test_mirror_enforces_networkpolicy(mirror_cluster):
    """The mirror blocks egress under a deny-all policy, as production does; otherwise nothing below counts."""
    assert mirror_cluster.details["networkpolicy"]["enforced"] is True


def test_every_object_applies(installed_argocd, candidate_bundle):
    """Every object of the candidate is accepted by the API server (server-side apply by default)."""
    assert len(installed_argocd.install.applied) == len(candidate_bundle)


def test_every_object_becomes_healthy(installed_argocd):
    """Argo CD's own health verdict, init containers included, is Healthy for every object it checks."""
    wait = installed_argocd.wait
    assert wait.passed, wait.root_cause
    assert not wait.missing, f"objects never appeared: {', '.join(wait.missing)}"
