"""Preflight on the real upstream Argo CD manifests (vendored under tests/fixtures/upstream)."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.conftest import real_manifest
from validator.candidate import resolve
from validator.manifests import load_bundle
from validator.preflight import has_error, run_preflight
from validator.profiles import load_profile

DEFAULT = load_profile("default")


def errors(findings: list) -> list:
    return [f for f in findings if f.severity == "error"]


@pytest.mark.parametrize("release", ["v2.11.0", "v2.11.2", "v3.5.1"])
def test_real_install_manifests_have_no_error_server_side(release: str) -> None:
    bundle = resolve(str(real_manifest(f"{release}/install.yaml")))
    findings = run_preflight(bundle, DEFAULT, "server-side")
    assert errors(findings) == [], [f.reason for f in errors(findings)]


SELF_MANAGED = b"""
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: platform}
spec: {sourceRepos: ["*"], destinations: [{namespace: "*", server: "https://kubernetes.default.svc"}]}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: argocd}
spec:
  project: platform
  source: {repoURL: "https://github.com/argoproj/argo-cd.git", targetRevision: v3.5.1, path: manifests}
  destination: {server: "https://kubernetes.default.svc", namespace: argocd}
"""


def test_argo_cds_own_custom_resources_beside_its_crds_are_valid() -> None:
    """An overlay adding an AppProject and the self-managing Application: Argo CD's CRDs require metadata."""
    bundle = load_bundle(real_manifest("v3.5.1/install.yaml").read_bytes() + SELF_MANAGED, namespace="argocd")
    findings = run_preflight(bundle, DEFAULT, "server-side", only=("schema",))
    assert errors(findings) == [], [f.reason for f in errors(findings)]
    assert {"AppProject", "Application"} <= {o.kind for o in bundle}


def test_v351_client_side_apply_fails_on_the_applicationset_crd_only() -> None:
    bundle = resolve(str(real_manifest("v3.5.1/install.yaml")))
    found = errors(run_preflight(bundle, DEFAULT, "client-side"))
    assert [f.objects for f in found] == [
        ("CustomResourceDefinition.apiextensions.k8s.io/applicationsets.argoproj.io",)]
    assert found[0].check == "client-side-apply-size" and found[0].evidence["annotations_bytes"] > 262144


def test_v351_ha_needs_three_schedulable_nodes() -> None:
    bundle = resolve(str(real_manifest("v3.5.1/ha/install.yaml")), variant="ha")
    on_one = errors(run_preflight(bundle, DEFAULT))
    assert on_one and {f.check for f in on_one} == {"scheduling"}
    assert "StatefulSet.apps/argocd/argocd-redis-ha-server" in {o for f in on_one for o in f.objects}
    assert errors(run_preflight(bundle, load_profile("ha"))) == []


def test_v2111_rebuilt_from_real_v2112_with_v2110_redis_policy_is_caught() -> None:
    """v2.11.1 = v2.11.2's redis (secret-init + RBAC) under v2.11.0's DNS-only egress policy."""
    new = resolve(str(real_manifest("v2.11.2/install.yaml")))
    old = resolve(str(real_manifest("v2.11.0/install.yaml")))
    old_policy = old.get("NetworkPolicy", "argocd-redis-network-policy")
    assert old_policy is not None
    bodies = [copy.deepcopy(old_policy.body if (o.kind, o.name) == ("NetworkPolicy", old_policy.name) else o.body)
              for o in new]
    broken = load_bundle(yaml.safe_dump_all(bodies).encode())
    found = errors(run_preflight(broken, DEFAULT))
    assert [(f.check, f.evidence["containers"]) for f in found] == [("networkpolicy-api-egress", ["secret-init"])]
    assert not has_error(run_preflight(new, DEFAULT))


def test_v351_ha_on_three_workers_warns_that_haproxy_upgrades_stall() -> None:
    """argoproj/argo-cd#16627: 3 haproxy replicas, required anti-affinity, default 25%/25% rolling update."""
    bundle = resolve(str(real_manifest("v3.5.1/ha/install.yaml")), variant="ha")
    warnings = [f for f in run_preflight(bundle, load_profile("ha")) if f.severity == "warning"]
    assert [(f.check, f.objects) for f in warnings] == [
        ("scheduling", ("Deployment.apps/argocd/argocd-redis-ha-haproxy",))]
    assert warnings[0].evidence["resolved_surge"] == 1


def netpol(findings: list) -> list:
    return [f for f in findings if f.check == "networkpolicy-api-egress"]


@pytest.mark.parametrize("path", ["v2.11.1/install.yaml", "v2.11.1/ha/install.yaml"])
def test_real_v2111_secret_init_cut_off_from_the_api_is_an_error_in_every_variant(path: str) -> None:
    """The outage itself, on the real v2.11.1 manifests: a certain API caller under a DNS-only egress policy."""
    profile = load_profile("ha" if path.startswith("v2.11.1/ha") else "default")
    found = errors(netpol(run_preflight(resolve(str(real_manifest(path))), profile)))
    owners = {f.evidence["owner"] for f in found}
    expected = {"Deployment.apps/argocd/argocd-redis"} if "ha" not in path else {
        "Deployment.apps/argocd/argocd-redis-ha-haproxy"}
    assert owners == expected, [f.reason for f in found]
    assert all(f.evidence["containers"] == ["secret-init"] for f in found)
    assert all("`argocd admin redis-initial-password`, which creates Secret argocd-redis" in f.reason for f in found)


def test_real_v2110_ha_haproxy_bound_to_a_role_is_not_an_error() -> None:
    """v2.5.0-rc1..v2.11.0 HA: haproxy's ServiceAccount may `get endpoints`, but neither config-init (copies a
    config, resolves the announce Services through DNS) nor haproxy calls the API. RBAC alone is no evidence of
    a call; with only redis/haproxy images it is context (info), never an error."""
    findings = netpol(run_preflight(resolve(str(real_manifest("v2.11.0/ha/install.yaml"))), load_profile("ha")))
    haproxy = [f for f in findings if f.evidence["owner"] == "Deployment.apps/argocd/argocd-redis-ha-haproxy"]
    assert [f.severity for f in haproxy] == ["info"], [f.reason for f in findings]
    assert haproxy[0].evidence["api_need_evidence"] == "rbac-only-non-api-images"
    assert "no container runs a program known to call it" in haproxy[0].reason
    assert errors(findings) == []


def test_rbac_only_on_a_pod_that_runs_other_images_is_a_warning() -> None:
    """The same haproxy pod with a sidecar of an unknown image: RBAC might be for it, so a warning (a likely
    problem), still not an error."""
    bundle = resolve(str(real_manifest("v2.11.0/ha/install.yaml")))
    bodies = [copy.deepcopy(o.body) for o in bundle]
    for body in bodies:
        if body["kind"] == "Deployment" and body["metadata"]["name"] == "argocd-redis-ha-haproxy":
            body["spec"]["template"]["spec"]["containers"].append({"name": "agent", "image": "example.com/agent:1"})
    findings = netpol(run_preflight(load_bundle(yaml.safe_dump_all(bodies).encode()), load_profile("ha")))
    assert [f.severity for f in findings if "haproxy" in f.evidence["owner"]] == ["warning"]
