"""api-credentials: a container that calls the Kubernetes API without a ServiceAccount token, on real manifests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.conftest import real_manifest
from validator.candidate import resolve
from validator.manifests import Bundle, load_bundle
from validator.preflight import Finding, checks
from validator.profiles import load_profile

V351 = resolve(str(real_manifest("v3.5.1/install.yaml")))


def edit(bundle: Bundle, kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> Bundle:
    bodies = [copy.deepcopy(o.body) for o in bundle]
    for body in bodies:
        if body["kind"] == kind and body["metadata"]["name"] == name:
            change(body)
    return load_bundle(yaml.safe_dump_all(bodies).encode())


def credentials(bundle: Bundle) -> list[Finding]:
    return checks()["api-credentials"](bundle, load_profile("default"), "server-side")


@pytest.mark.parametrize("path", ["v2.11.0/install.yaml", "v2.11.0/ha/install.yaml", "v2.11.2/install.yaml",
                                  "v3.5.1/install.yaml", "v3.5.1/ha/install.yaml", "v3.5.1/namespace-install.yaml",
                                  "v3.5.1/core-install.yaml"])
def test_real_releases_give_every_api_caller_a_token(path: str) -> None:
    """repo-server and redis-ha-server run without a token, and call no API: nothing to report."""
    assert credentials(resolve(str(real_manifest(path)))) == []


def test_secret_init_without_a_token_on_the_pod_template_is_an_error() -> None:
    def no_token(body: dict[str, Any]) -> None:
        body["spec"]["template"]["spec"]["automountServiceAccountToken"] = False

    found = credentials(edit(V351, "Deployment", "argocd-redis", no_token))
    assert [(f.severity, f.evidence["container"]) for f in found] == [("error", "secret-init")]
    reason = found[0].reason
    assert "`argocd admin redis-initial-password`, which creates Secret argocd-redis" in reason
    assert "Deployment argocd-redis's pod template sets automountServiceAccountToken: false" in reason
    assert "invalid configuration: no configuration has been provided" in reason


def test_a_service_account_that_opts_out_removes_the_token_of_every_pod_using_it() -> None:
    def opt_out(body: dict[str, Any]) -> None:
        body["automountServiceAccountToken"] = False

    found = credentials(edit(V351, "ServiceAccount", "argocd-server", opt_out))
    assert [f.evidence["container"] for f in found] == ["argocd-server"]
    assert "ServiceAccount argocd-server sets automountServiceAccountToken: false" in found[0].reason


def test_the_pod_setting_wins_over_its_service_account() -> None:
    def opt_out(body: dict[str, Any]) -> None:
        body["automountServiceAccountToken"] = False

    def opt_in(body: dict[str, Any]) -> None:
        body["spec"]["template"]["spec"]["automountServiceAccountToken"] = True

    bundle = edit(edit(V351, "ServiceAccount", "argocd-server", opt_out), "Deployment", "argocd-server", opt_in)
    assert credentials(bundle) == []


@pytest.mark.parametrize("remedy", [
    lambda c, spec: c.setdefault("env", []).append({"name": "KUBECONFIG", "value": "/etc/kube/config"}),
    lambda c, spec: c.setdefault("args", []).append("--kubeconfig=/etc/kube/config"),
    lambda c, spec: spec.setdefault("volumes", []).append(
        {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}),
])
def test_credentials_from_elsewhere_are_not_reported(remedy: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    def change(body: dict[str, Any]) -> None:
        spec = body["spec"]["template"]["spec"]
        spec["automountServiceAccountToken"] = False
        remedy(spec["initContainers"][0], spec)

    assert credentials(edit(V351, "Deployment", "argocd-redis", change)) == []


def test_the_real_v300_rc1_ha_haproxy_secret_init_had_no_token() -> None:
    """Caught on a real release: v3.0.0-rc1's HA haproxy gained secret-init while its pod template still said
    automountServiceAccountToken: false (argo-cd#22226 turned it on in rc2)."""
    found = credentials(resolve(str(real_manifest("v3.0.0-rc1/ha/install.yaml"))))
    assert [(f.severity, f.evidence["owner"], f.evidence["container"]) for f in found] == [
        ("error", "Deployment.apps/argocd/argocd-redis-ha-haproxy", "secret-init")]
