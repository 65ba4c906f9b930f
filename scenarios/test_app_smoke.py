"""App smoke: the freshly installed candidate can still deploy an application (repo: --smoke-repo/--smoke-path,
default argoproj/argocd-example-apps guestbook) to Synced and Healthy.

Run: pytest --pyargs validator.scenarios.test_app_smoke --mirror-candidate stable
"""

from __future__ import annotations

import pytest

from validator.pytest_plugin import application, sync_application

pytestmark = [pytest.mark.scenario("app-smoke"), pytest.mark.mirror_docker]

SMOKE_APP = "argocd-mirror-smoke"


@pytest.fixture(scope="module")
def smoke_app(installed_argocd, mirror_options, mirror_progress):
    app = application(SMOKE_APP, installed_argocd.bundle.namespace, mirror_options.smoke_repo,
                      mirror_options.smoke_revision, mirror_options.smoke_path, dest_namespace=SMOKE_APP)
    return sync_application(installed_argocd.api, app, mirror_options.wait_timeout_s, mirror_progress)


def test_argocd_deploys_an_application(smoke_app):
    status = smoke_app["status"]
    assert (status["sync"]["status"], status["health"]["status"]) == ("Synced", "Healthy")


def test_application_resources_are_healthy(smoke_app):
    unhealthy = [f"{r.get('kind')}/{r.get('name')}: {r.get('health', {}).get('status')}"
                 for r in smoke_app["status"].get("resources") or []
                 if r.get("health") and r["health"].get("status") != "Healthy"]
    assert not unhealthy, f"resources not Healthy: {', '.join(unhealthy)}"
