"""Self-managed: the baseline runs, and an Application `argocd` tracking the candidate's tag upgrades Argo CD
through Argo CD itself (targetRevision = the tag, path manifests, directory.include install.yaml), as teams run it.

Run: pytest --pyargs validator.scenarios.test_self_managed --mirror-candidate stable --mirror-baseline v3.4.2
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.scenario("self-managed"), pytest.mark.mirror_docker]


def test_application_tracks_the_candidate_tag(self_managed_argocd, candidate_bundle):
    source = self_managed_argocd.install["spec"]["source"]
    assert source["targetRevision"] == candidate_bundle.provenance.version
    assert source["repoURL"] == "https://github.com/argoproj/argo-cd.git"


def test_argocd_synced_itself_to_healthy(self_managed_argocd):
    status = self_managed_argocd.install["status"]
    assert (status["sync"]["status"], status["health"]["status"]) == ("Synced", "Healthy")


def test_every_object_of_the_candidate_healthy(self_managed_argocd):
    wait = self_managed_argocd.wait
    assert wait.passed, wait.root_cause
