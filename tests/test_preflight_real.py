"""Preflight on the real upstream Argo CD manifests (../shared/manifests; skipped cleanly when absent)."""

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
