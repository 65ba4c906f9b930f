"""Preflight checks on small hand-written manifests: each check positive and negative."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validator.candidate import Provenance
from validator.errors import InputError, MirrorError
from validator.manifests import Bundle, KubeObject, load_bundle, read_bounded
from validator.preflight import Finding, checks, counts, has_error, run_preflight
from validator.preflight.annotation_size import (
    LAST_APPLIED,
    TOTAL_ANNOTATION_SIZE_LIMIT,
    annotations_size,
    last_applied,
)
from validator.preflight.netpol import policy_types, rule_admits
from validator.preflight.schema import schema_version_for, schema_versions
from validator.preflight.selectors import selector_matches, tolerates
from validator.profiles import load_profile, profile_from_dict

FIXTURES = Path(__file__).parent / "fixtures" / "preflight"
DEFAULT = load_profile("default")
HA = load_profile("ha")


def fixture(name: str) -> Bundle:
    path = FIXTURES / name
    return load_bundle(read_bounded(path), source=str(path))


def bundle_of(*bodies: dict[str, Any], namespace: str = "argocd") -> Bundle:
    return load_bundle(yaml.safe_dump_all(bodies).encode(), namespace=namespace)


def edited(bundle: Bundle, kind: str, name: str, edit: Any) -> Bundle:
    """A copy of the bundle with one object's body changed by edit(body)."""
    bodies = [copy.deepcopy(o.body) for o in bundle]
    for body in bodies:
        if body["kind"] == kind and body["metadata"]["name"] == name:
            edit(body)
    return bundle_of(*bodies)


def only(findings: list[Finding], check: str, severity: str | None = None) -> list[Finding]:
    return [f for f in findings if f.check == check and (severity is None or f.severity == severity)]


def run(bundle: Bundle, name: str, profile: Any = DEFAULT, mode: str = "server-side") -> list[Finding]:
    return checks()[name](bundle, profile, mode)


# --------------------------------------------------------------------------------------------------
# selectors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ({}, {"a": "1"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, {"a": "1"}, False),
])
def test_label_selector_semantics(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_tolerations_match_taints_as_the_scheduler_does() -> None:
    assert tolerates([{"operator": "Exists"}], "node-role.kubernetes.io/control-plane", "", "NoSchedule")
    assert tolerates([{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}], "k", "v", "NoSchedule")
    assert not tolerates([{"key": "k", "value": "v", "effect": "NoExecute"}], "k", "v", "NoSchedule")
    assert not tolerates([{"key": "k", "value": "other"}], "k", "v", "NoSchedule")


# --------------------------------------------------------------------------------------------------
# 1. NetworkPolicy egress vs pods that need the API (the v2.11.1 class)
# --------------------------------------------------------------------------------------------------

V2111 = "redis-v2.11.1.yaml"


def test_v2111_redis_pattern_is_an_error_naming_owner_container_policy_and_ports() -> None:
    findings = run(fixture(V2111), "networkpolicy-api-egress")
    assert len(findings) == 1
    finding = findings[0]
    assert finding.severity == "error"
    assert finding.objects == ("Deployment.apps/argocd/argocd-redis",
                               "NetworkPolicy.networking.k8s.io/argocd/argocd-redis-network-policy")
    for text in ("Deployment argocd-redis", "container secret-init", "argocd-redis-network-policy", "53/UDP,53/TCP"):
        assert text in finding.reason
    assert finding.evidence["containers"] == ["secret-init"]
    assert finding.evidence["allowed_egress"] == ["53/UDP,53/TCP to any destination"]
    assert any("RoleBinding argocd-redis" in r for r in finding.evidence["needs_api_because"])


def _no_egress_type(body: dict[str, Any]) -> None:
    body["spec"]["policyTypes"] = ["Ingress"]
    del body["spec"]["egress"]


def _allow_api(body: dict[str, Any]) -> None:
    body["spec"]["egress"].append({"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]})


@pytest.mark.parametrize("fix", [_no_egress_type, _allow_api], ids=["egress-removed", "egress-443-6443-allowed"])
def test_fixed_forms_of_v2111_are_clean(fix: Any) -> None:
    bundle = edited(fixture(V2111), "NetworkPolicy", "argocd-redis-network-policy", fix)
    assert run(bundle, "networkpolicy-api-egress") == []


def test_v2110_shape_restricted_egress_without_api_need_is_fine() -> None:
    assert run(fixture("redis-v2.11.0.yaml"), "networkpolicy-api-egress") == []


def test_policy_types_default_to_ingress_plus_egress_only_when_egress_rules_exist() -> None:
    assert policy_types({"egress": [{"ports": [{"port": 53}]}]}) == ["Ingress", "Egress"]
    assert policy_types({"egress": []}) == ["Ingress"]
    assert policy_types({}) == ["Ingress"]
    assert policy_types({"policyTypes": ["Egress"]}) == ["Egress"]


def test_implicit_egress_policy_type_still_blocks() -> None:
    def implicit(body: dict[str, Any]) -> None:
        del body["spec"]["policyTypes"]
    bundle = edited(fixture(V2111), "NetworkPolicy", "argocd-redis-network-policy", implicit)
    assert [f.severity for f in run(bundle, "networkpolicy-api-egress")] == ["error"]


def test_only_port_443_allowed_is_an_error_because_policy_is_enforced_after_the_dnat() -> None:
    """cert-manager's webhook policy allowed 443 and 53 and timed out (its PR #5788): kindnet and Calico judge the
    packet after kube-proxy rewrote 10.96.0.1:443 to the endpoint, node:6443."""
    def only_443(body: dict[str, Any]) -> None:
        body["spec"]["egress"].append({"ports": [{"protocol": "TCP", "port": 443}]})
    findings = run(edited(fixture(V2111), "NetworkPolicy", "argocd-redis-network-policy", only_443),
                   "networkpolicy-api-egress")
    assert [f.severity for f in findings] == ["error"]
    assert "no rule admits the API server's endpoint(s) 172.18.0.0/16:6443 (kind's usual addresses); it admits " \
           "the kubernetes Service 10.96.0.1:443, but policy is enforced after the Service address is rewritten" \
           in findings[0].reason
    assert findings[0].evidence["admits_service"] is True and findings[0].evidence["admits_endpoints"] is False


def test_6443_to_part_of_the_node_network_is_a_warning() -> None:
    def some_nodes(body: dict[str, Any]) -> None:
        body["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "172.18.0.0/16", "except": ["172.18.0.0/24"]}}],
                                       "ports": [{"port": 6443}]})
    findings = run(edited(fixture(V2111), "NetworkPolicy", "argocd-redis-network-policy", some_nodes),
                   "networkpolicy-api-egress")
    assert [f.severity for f in findings] == ["warning"]
    assert "depends on the endpoint's address" in findings[0].reason


def test_match_expressions_selecting_the_pod_count_and_not_selecting_do_not() -> None:
    def selects(body: dict[str, Any]) -> None:
        body["spec"]["podSelector"] = {"matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "In", "values": ["argocd-redis", "x"]}]}

    def misses(body: dict[str, Any]) -> None:
        body["spec"]["podSelector"] = {"matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["argocd-redis"]}]}
    name = "argocd-redis-network-policy"
    assert run(edited(fixture(V2111), "NetworkPolicy", name, selects), "networkpolicy-api-egress")
    assert run(edited(fixture(V2111), "NetworkPolicy", name, misses), "networkpolicy-api-egress") == []


def test_empty_pod_selector_selects_every_pod() -> None:
    def everything(body: dict[str, Any]) -> None:
        body["spec"]["podSelector"] = {}
    assert run(edited(fixture(V2111), "NetworkPolicy", "argocd-redis-network-policy", everything),
               "networkpolicy-api-egress")


def test_policy_in_another_namespace_does_not_select() -> None:
    bundle = fixture(V2111)
    moved = [KubeObject(o.body, o.source, o.document, o.line, "other" if o.kind == "NetworkPolicy" else o.namespace)
             for o in bundle]
    assert run(Bundle(moved), "networkpolicy-api-egress") == []


def test_rbac_without_known_command_needs_api_unless_token_not_mounted() -> None:
    def plain_init(body: dict[str, Any]) -> None:
        body["spec"]["template"]["spec"]["initContainers"][0]["command"] = ["sh", "-c", "true"]
    bundle = edited(fixture(V2111), "Deployment", "argocd-redis", plain_init)
    finding = run(bundle, "networkpolicy-api-egress")[0]
    assert finding.evidence["containers"] == ["secret-init", "redis"]  # bound SA: every container may call

    def no_token(body: dict[str, Any]) -> None:
        body["automountServiceAccountToken"] = False
    assert run(edited(bundle, "ServiceAccount", "argocd-redis", no_token), "networkpolicy-api-egress") == []


def test_cluster_role_binding_and_group_subjects_count_as_api_need() -> None:
    base = [copy.deepcopy(o.body) for o in fixture(V2111) if o.kind not in ("Role", "RoleBinding")]
    for body in base:
        if body["kind"] == "Deployment":
            body["spec"]["template"]["spec"]["initContainers"][0]["command"] = ["true"]
    assert run(bundle_of(*base), "networkpolicy-api-egress") == []
    cluster_role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"},
                    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}
    for subject in ({"kind": "ServiceAccount", "name": "argocd-redis", "namespace": "argocd"},
                    {"kind": "Group", "name": "system:serviceaccounts:argocd"},
                    {"kind": "Group", "name": "system:serviceaccounts"},
                    {"kind": "Group", "name": "system:authenticated"},  # every token is in it too
                    {"kind": "User", "name": "system:serviceaccount:argocd:argocd-redis"}):  # RBAC's name for it
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "b"}, "subjects": [subject],
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"}}
        # RBAC alone is a hunch (no container runs a known API caller): a warning, never an error
        assert [f.severity for f in run(bundle_of(*base, cluster_role, binding), "networkpolicy-api-egress")] == [
            "warning"]
    for elsewhere in ({"kind": "ServiceAccount", "name": "argocd-redis", "namespace": "elsewhere"},
                      {"kind": "Group", "name": "system:serviceaccountsargocd"},  # no such group
                      {"kind": "User", "name": "system:serviceaccount:elsewhere:argocd-redis"}):
        other_ns = {**binding, "subjects": [elsewhere]}
        assert run(bundle_of(*base, cluster_role, other_ns), "networkpolicy-api-egress") == []


def test_a_job_selected_by_the_label_its_controller_adds_is_checked() -> None:
    """Jobs' pods carry batch.kubernetes.io/job-name (and job-name); charts select them by it."""
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "init-redis"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "init", "image": "quay.io/argoproj/argocd:v2.11.1",
                "command": ["argocd", "admin", "redis-initial-password"]}]}}}}
    dns_only = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "init-redis"},
                "spec": {"podSelector": {"matchLabels": {"batch.kubernetes.io/job-name": "init-redis"}},
                         "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}}
    (finding,) = run(bundle_of(job, dns_only), "networkpolicy-api-egress")
    assert finding.severity == "error" and finding.objects[0] == "Job.batch/argocd/init-redis"


@pytest.mark.parametrize(("rule", "target", "port", "expected"), [
    ({}, "10.96.0.1", 443, True),
    ({"ports": [{"port": 443}]}, "10.96.0.1", 443, True),
    ({"ports": [{"port": 443, "protocol": "UDP"}]}, "10.96.0.1", 443, False),
    ({"ports": [{"port": 400, "endPort": 500}]}, "10.96.0.1", 443, True),
    # endPort is inclusive (networking/v1: "port range port..endPort, inclusive"): both boundaries admit
    ({"ports": [{"port": 6000, "endPort": 6443}]}, "172.18.0.0/16", 6443, True),
    ({"ports": [{"port": 6443, "endPort": 7000}]}, "172.18.0.0/16", 6443, True),
    ({"ports": [{"port": 6000, "endPort": 6442}]}, "172.18.0.0/16", 6443, False),
    ({"ports": [{"port": 6444, "endPort": 7000}]}, "172.18.0.0/16", 6443, False),
    ({"ports": [{"port": "https"}]}, "10.96.0.1", 443, False),
    ({"to": [{"ipBlock": {"cidr": "10.96.0.0/12"}}]}, "10.96.0.1", 443, True),
    ({"to": [{"ipBlock": {"cidr": "10.96.0.0/12", "except": ["10.96.0.0/24"]}}]}, "10.96.0.1", 443, False),
    ({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}, "172.18.0.0/16", 6443, True),
    ({"to": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]}, "172.18.0.0/16", 6443, False),
    ({"to": [{"ipBlock": {"cidr": "172.18.255.0/24"}}]}, "172.18.0.0/16", 6443, None),  # part: depends on the node
    ({"to": [{"ipBlock": {"cidr": "172.18.0.0/16", "except": ["172.18.0.0/24"]}}]}, "172.18.0.0/16", 6443, None),
    ({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["172.16.0.0/12"]}}]}, "172.18.0.0/16", 6443, False),
    ({"to": [{"ipBlock": {"cidr": "172.18.255.0/24"}}, {"ipBlock": {"cidr": "0.0.0.0/0"}}]}, "172.18.0.0/16", 6443,
     True),
    ({"to": [{"podSelector": {}}]}, "10.96.0.1", 443, False),
])
def test_egress_rule_admission(rule: dict[str, Any], target: str, port: int, expected: bool | None) -> None:
    import ipaddress
    address: Any = ipaddress.ip_network(target) if "/" in target else ipaddress.ip_address(target)
    assert rule_admits(rule, address, port) is expected


# --------------------------------------------------------------------------------------------------
# 2. client-side apply annotation size
# --------------------------------------------------------------------------------------------------


def _configmap(value: str, annotations: dict[str, str] | None = None) -> Bundle:
    meta: dict[str, Any] = {"name": "big"}
    if annotations is not None:
        meta["annotations"] = annotations
    return bundle_of({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": value}})


def test_last_applied_is_kubectls_compact_sorted_json_with_empty_annotations_and_namespace() -> None:
    obj = _configmap("a<b>&c\u2028").objects[0]
    assert last_applied(obj) == (
        '{"apiVersion":"v1","data":{"k":"a\\u003cb\\u003e\\u0026c\\u2028"},"kind":"ConfigMap",'
        '"metadata":{"annotations":{},"name":"big","namespace":"argocd"}}\n')
    stale = _configmap("x", {LAST_APPLIED: "old", "team": "a"}).objects[0]
    assert '"annotations":{"team":"a"}' in last_applied(stale) and "old" not in last_applied(stale)


def test_size_limit_is_exact_and_counts_all_annotations() -> None:
    empty = annotations_size(_configmap("").objects[0])[0]
    at_limit = _configmap("x" * (TOTAL_ANNOTATION_SIZE_LIMIT - empty))
    assert annotations_size(at_limit.objects[0])[0] == TOTAL_ANNOTATION_SIZE_LIMIT
    assert run(at_limit, "client-side-apply-size", mode="client-side") == []
    over = _configmap("x" * (TOTAL_ANNOTATION_SIZE_LIMIT - empty + 1))
    findings = run(over, "client-side-apply-size", mode="client-side")
    assert [f.objects for f in findings] == [("ConfigMap/argocd/big",)]
    assert "server-side" in findings[0].reason and findings[0].evidence["annotations_bytes"] == 262145
    # another annotation pushes an object at the limit over it (the limit is on the total)
    tagged = _configmap("x" * (TOTAL_ANNOTATION_SIZE_LIMIT - empty - 4), {"a": "b"})
    # 4 bytes less data, but "a"+"b" counted as an annotation (2) and inside the JSON as "a":"b" (7)
    assert annotations_size(tagged.objects[0])[0] == TOTAL_ANNOTATION_SIZE_LIMIT - 4 + 2 + 7
    assert run(tagged, "client-side-apply-size", mode="client-side")


def test_size_is_not_checked_for_server_side_apply() -> None:
    over = _configmap("x" * TOTAL_ANNOTATION_SIZE_LIMIT)
    assert run(over, "client-side-apply-size", mode="server-side") == []


def test_multibyte_characters_count_as_bytes() -> None:
    empty = annotations_size(_configmap("").objects[0])[0]
    value = "é" * ((TOTAL_ANNOTATION_SIZE_LIMIT - empty) // 2 + 1)  # 2 bytes each in UTF-8
    assert run(_configmap(value), "client-side-apply-size", mode="client-side")


# --------------------------------------------------------------------------------------------------
# 3. scheduling against the profile
# --------------------------------------------------------------------------------------------------


def test_required_anti_affinity_needs_as_many_nodes_as_replicas() -> None:
    bundle = fixture("scheduling-ha.yaml")
    findings = run(bundle, "scheduling", DEFAULT)
    assert [f.severity for f in findings] == ["error"]
    assert "3 replicas" in findings[0].reason and findings[0].evidence["domains"] == ["mirror-control-plane"]
    assert run(bundle, "scheduling", HA) == []  # 3 workers (the control plane keeps its taint)
    two = profile_from_dict({"nodes": [{"role": "control-plane"}, {"role": "worker"}, {"role": "worker"}]}, "two")
    assert "only 2 schedulable" in run(bundle, "scheduling", two)[0].reason


def test_tolerating_the_control_plane_taint_adds_it_as_a_domain() -> None:
    two = profile_from_dict({"nodes": [{"role": "control-plane"}, {"role": "worker"}, {"role": "worker"}]}, "two")

    def tolerate(body: dict[str, Any]) -> None:
        body["spec"]["template"]["spec"]["tolerations"] = [{"key": "node-role.kubernetes.io/control-plane",
                                                            "operator": "Exists", "effect": "NoSchedule"}]
    assert run(edited(fixture("scheduling-ha.yaml"), "StatefulSet", "redis-ha", tolerate), "scheduling", two) == []


def test_node_selector_affinity_and_requests_nothing_satisfies() -> None:
    findings = run(fixture("scheduling-placement.yaml"), "scheduling", DEFAULT)
    reasons = {f.objects[0] if f.objects else "total": f.reason for f in findings}
    assert "no node of profile default satisfies" in reasons["Deployment.apps/argocd/wants-ssd"]
    assert "no node of profile default satisfies" in reasons["Deployment.apps/argocd/wants-arm-zone"]
    assert "more than any eligible node" in reasons["Deployment.apps/argocd/hungry"]
    assert "all pods together request 8000m CPU" in reasons["total"]
    labelled = profile_from_dict({"nodes": [{"role": "control-plane", "labels": {
        "disktype": "ssd", "topology.kubernetes.io/zone": "eu-west-1a"}, "allocatable": {"cpu": "16"}}]}, "big")
    assert run(fixture("scheduling-placement.yaml"), "scheduling", labelled) == []


def test_size_verdicts_are_errors_only_on_node_sizes_the_profile_states() -> None:
    """A kind node has what its Docker host (or VM) has: on the default profile's assumed 2 CPU / 7Gi, a pod too big
    is a warning that says so; on sizes the profile states, an error."""
    hungry = [o.body for o in fixture("scheduling-placement.yaml") if o.name == "hungry"]
    assumed = run(bundle_of(*hungry), "scheduling", DEFAULT)
    assert {f.severity for f in assumed} == {"warning"} and all("node sizes assumed" in f.reason for f in assumed)
    stated = profile_from_dict({"nodes": [{"role": "control-plane", "allocatable": {"cpu": "2", "memory": "7Gi"}}]},
                               "stated")
    certain = run(bundle_of(*hungry), "scheduling", stated)
    assert {f.severity for f in certain} == {"error"} and not any("assumed" in f.reason for f in certain)


def test_init_container_requests_count_as_their_maximum_not_their_sum() -> None:
    from validator.preflight.scheduling import requests
    spec = {"initContainers": [{"resources": {"requests": {"cpu": "500m"}}}, {"resources": {"requests": {"cpu": "1"}}}],
            "containers": [{"resources": {"requests": {"cpu": "200m", "memory": "64Mi"}}},
                           {"resources": {"requests": {"cpu": "300m"}}}]}
    assert requests(spec) == (1000, 64 * 1024**2)


def test_sidecars_add_limits_default_requests_and_overhead_counts() -> None:
    """component-helpers PodRequests: sidecars (restartPolicy Always) run beside the containers; an init
    container runs beside the sidecars started before it; a limit alone is the request."""
    from validator.preflight.scheduling import requests
    spec = {"initContainers": [{"restartPolicy": "Always", "resources": {"requests": {"cpu": "300m"}}},
                               {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
            "containers": [{"resources": {"requests": {"cpu": "200m", "memory": "64Mi"}}}],
            "overhead": {"cpu": "50m"}}
    assert requests(spec) == (1300 + 50, 1024**3)  # init 1 CPU + the 300m sidecar beside it, then overhead


def _ha_redis_term(term: dict[str, Any]) -> Bundle:
    def with_term(body: dict[str, Any]) -> None:
        anti = body["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        anti["requiredDuringSchedulingIgnoredDuringExecution"][0].update(term)
    return edited(fixture("scheduling-ha.yaml"), "StatefulSet", "redis-ha", with_term)


@pytest.mark.parametrize(("term", "errors"), [
    ({}, 1),
    ({"namespaces": ["argocd"]}, 1),
    ({"namespaceSelector": {}}, 1),  # every namespace, its own included
    ({"namespaces": ["elsewhere"]}, 0),  # repels other namespaces' pods, not its own replicas
    ({"namespaceSelector": {"matchLabels": {"team": "x"}}}, 0),  # depends on namespace labels: no certainty
    # the union of both fields: its own namespace listed, or selected by the label every namespace carries
    ({"namespaces": ["argocd"], "namespaceSelector": {"matchLabels": {"team": "x"}}}, 1),
    ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "argocd"}}}, 1),
    ({"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["argocd", "x"]}]}}, 1),
    ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}}, 0),
    ({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}}, 0),  # unknown
    ({"mismatchLabelKeys": ["app.kubernetes.io/name"]}, 0),  # its own replicas share that value: not repelled
])
def test_anti_affinity_bounds_replicas_only_when_it_reaches_its_own_namespace(term: dict[str, Any],
                                                                               errors: int) -> None:
    assert len(run(_ha_redis_term(term), "scheduling", DEFAULT)) == errors


@pytest.mark.parametrize(("constraint", "expected"), [
    ({"topologyKey": "topology.kubernetes.io/zone"}, "no eligible node of the profile has that label"),
    ({"topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}, None),
    ({"topologyKey": "kubernetes.io/hostname"}, None),  # one domain, no minDomains: all pods fit, skewed or not
    ({"topologyKey": "kubernetes.io/hostname", "minDomains": 3}, "beyond 1 pod(s)"),
    ({"topologyKey": "kubernetes.io/hostname", "minDomains": 3, "maxSkew": 3}, None),
])
def test_topology_spread_that_cannot_hold_on_the_profile(constraint: dict[str, Any], expected: str | None) -> None:
    def spread(body: dict[str, Any]) -> None:
        spec = body["spec"]["template"]["spec"]
        del spec["affinity"]
        spec["topologySpreadConstraints"] = [{"maxSkew": 1, "labelSelector": {"matchLabels": {
            "app": "redis-ha"}}, **constraint}]
    findings = run(edited(fixture("scheduling-ha.yaml"), "StatefulSet", "redis-ha", spread), "scheduling", DEFAULT)
    assert [f.reason for f in findings if expected and expected in f.reason] == [f.reason for f in findings]
    assert len(findings) == (1 if expected else 0)


def big(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """A Deployment `big` running POD_SPEC."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "big"},
            "spec": {"selector": {"matchLabels": {"app": "big"}},
                     "template": {"metadata": {"labels": {"app": "big"}}, "spec": pod_spec}}}


@pytest.mark.parametrize(("cpu", "flagged"), [("1050m", False), ("1051m", True)])
def test_a_lone_kind_node_has_1050m_free_of_2_cpus(cpu: str, flagged: bool) -> None:
    """2000m less kube-apiserver 250m, controller-manager 200m, scheduler 100m, etcd 100m, two CoreDNS 100m each
    and kindnet 100m (once: it was also counted in the control plane's share, leaving 950m)."""
    findings = run(bundle_of(big({"containers": [{"name": "a", "image": "x:1",
                                                  "resources": {"requests": {"cpu": cpu}}}]})), "scheduling")
    assert bool(findings) is flagged, [f.reason for f in findings]


@pytest.mark.parametrize(("profile", "flagged"), [
    ({"kubernetesVersion": "1.35"}, True),  # PodLevelResources: beta, on by default since 1.34
    ({"kubernetesVersion": "1.33"}, False),
    ({"kubernetesVersion": "1.35", "featureGates": {"PodLevelResources": False}}, False),
])
def test_pod_level_requests_are_what_the_scheduler_places(profile: dict[str, Any], flagged: bool) -> None:
    pod = {"resources": {"requests": {"cpu": "8"}}, "containers": [{"name": "a", "image": "x:1"}]}
    findings = run(bundle_of(big(pod)), "scheduling", profile_from_dict(profile, "p"))
    assert bool(findings) is flagged, [f.reason for f in findings]


@pytest.mark.parametrize(("replicas", "extra", "error"), [
    (4, {}, True),  # the tainted control plane is a domain with 0 pods for ever: 1 per worker
    (3, {}, False),
    (4, {"nodeTaintsPolicy": "Honor"}, False),  # not counted then: 2/1/1 over the workers is within maxSkew
])
def test_a_tainted_control_plane_still_counts_for_the_spread_minimum(replicas: int, extra: dict[str, Any],
                                                                      error: bool) -> None:
    """nodeTaintsPolicy defaults to Ignore: a node the pod cannot use is still a domain of the global minimum."""
    pod = {"containers": [{"name": "a", "image": "x:1"}], "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app": "big"}}, **extra}]}
    deployment = big(pod)
    deployment["spec"]["replicas"] = replicas
    findings = run(bundle_of(deployment), "scheduling", load_profile("ha"))
    reasons = [f.reason for f in findings]
    assert [("minimum stays 0" in r) for r in reasons] == ([True] if error else []), reasons


def test_a_daemonset_no_node_matches_runs_no_pod_and_is_no_error() -> None:
    """A GPU or Windows node agent in an overlay: on nodes without the label the DaemonSet controller makes no
    pod (desired 0, Healthy in Argo CD's and our health), so it is information, not a scheduling error."""
    daemonset = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "gpu-agent"},
                 "spec": {"selector": {"matchLabels": {"app": "gpu"}}, "template": {
                     "metadata": {"labels": {"app": "gpu"}},
                     "spec": {"nodeSelector": {"gpu": "true"}, "containers": [{"name": "a", "image": "x:1"}]}}}}
    (finding,) = run(bundle_of(daemonset), "scheduling")
    assert (finding.severity, finding.objects) == ("info", ("DaemonSet.apps/argocd/gpu-agent",))
    assert "runs no pod on this profile" in finding.reason


def test_scaled_to_zero_and_empty_node_selector_terms() -> None:
    def zero(body: dict[str, Any]) -> None:
        body["spec"]["replicas"] = 0
    assert run(edited(fixture("scheduling-ha.yaml"), "StatefulSet", "redis-ha", zero), "scheduling", DEFAULT) == []
    from validator.preflight.selectors import node_term_matches
    assert not node_term_matches({}, {"kubernetes.io/os": "linux"}, "n")  # an empty term matches no node


# --------------------------------------------------------------------------------------------------
# 4. schema and API removals
# --------------------------------------------------------------------------------------------------


def test_schema_errors_unknown_field_wrong_type_missing_field_removed_api_unknown_kind() -> None:
    findings = run(fixture("schema-errors.yaml"), "schema")
    by_object = {f.objects[0]: f for f in findings if f.objects}
    typo = by_object["Deployment.apps/argocd/typo"]
    assert typo.severity == "error"
    errors = " | ".join(typo.evidence["errors"])
    assert "spec.replicas: 'three' is not of type integer" in errors
    assert "imagePullPolcy: unknown field" in errors
    assert "spec.template.spec.containers[1]: required field 'name' is missing" in errors
    pdb = by_object["PodDisruptionBudget.policy/argocd/old-pdb"]
    assert pdb.severity == "error" and "removed in Kubernetes 1.25" in pdb.reason and "policy/v1" in pdb.reason
    assert by_object["HorizontalPodAutoscaler.autoscaling/argocd/old-hpa"].severity == "error"
    assert "has no kind Deploymnt" in by_object["Deploymnt.apps/argocd/misspelt-kind"].reason


def test_deprecated_but_served_api_is_a_warning_on_older_kubernetes() -> None:
    old = profile_from_dict({"kubernetesVersion": "1.25"}, "old")
    hpa = [o.body for o in fixture("schema-errors.yaml") if o.kind == "HorizontalPodAutoscaler"]
    findings = run(bundle_of(*hpa), "schema", old)
    assert [(f.severity, "deprecated since Kubernetes 1.23" in f.reason) for f in findings] == [("warning", True)]


def test_valid_objects_pass_the_schema() -> None:
    assert run(fixture(V2111), "schema") == []


def test_custom_resources_are_checked_against_the_crd_in_the_bundle() -> None:
    findings = run(fixture("schema-crd.yaml"), "schema")
    by_object = {f.objects[0]: f for f in findings}
    assert "Widget.example.com/argocd/good" not in by_object
    bad = " | ".join(by_object["Widget.example.com/argocd/bad"].evidence["errors"])
    assert "spec.size: '3' is not of type integer" in bad and "spec.colour: unknown field" in bad
    assert "spec.color: 'green' is not one of ['red', 'blue']" in bad
    assert "does not serve version v2" in by_object["Widget.example.com/argocd/future"].reason
    orphan = by_object["Gadget.other.example.org/argocd/orphan"]
    assert orphan.severity == "info" and "not schema-checked" in orphan.reason


def test_custom_resources_are_defaulted_and_null_pruned_before_validation_as_the_api_server_does() -> None:
    crd = next(o.body for o in fixture("schema-crd.yaml") if o.kind == "CustomResourceDefinition")
    schema = copy.deepcopy(crd)
    spec_schema = schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["properties"]["size"]["default"] = 1  # required, but defaulted
    spec_schema["properties"]["mode"] = {"oneOf": [{"type": "string", "maxLength": 3}, {"type": "string"}]}

    def widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}
    findings = run(bundle_of(schema, widget("defaulted", {}), widget("nulled", {"color": None, "size": 2}),
                             widget("both", {"size": 1, "mode": "ab"})), "schema")
    assert [(f.objects[0], f.severity) for f in findings] == [("Widget.example.com/argocd/both", "error")]
    assert "matches 2 alternatives of oneOf" in " ".join(findings[0].evidence["errors"])


def test_a_junctor_branch_restricts_values_without_making_other_fields_unknown() -> None:
    """Structural schemas: anyOf/oneOf/allOf branches may only validate values of fields declared outside them,
    so a branch naming `a` must not call a declared `c` unknown."""
    crd = copy.deepcopy(next(o.body for o in fixture("schema-crd.yaml") if o.kind == "CustomResourceDefinition"))
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    root["properties"]["spec"] = {"type": "object", "properties": {k: {"type": "string"} for k in "abc"},
                                  "anyOf": [{"properties": {"a": {"minLength": 1}}, "required": ["a"]},
                                            {"required": ["b"]}]}

    def widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}
    findings = run(bundle_of(crd, widget("ok", {"a": "x", "c": "y"}), widget("neither", {"c": "y"}),
                             widget("typo", {"a": "x", "d": "y"})), "schema")
    by_object = {f.objects[0]: " | ".join(f.evidence["errors"]) for f in findings}
    assert set(by_object) == {"Widget.example.com/argocd/neither", "Widget.example.com/argocd/typo"}, by_object
    assert "required field" in by_object["Widget.example.com/argocd/neither"]  # no branch holds
    assert "spec.d: unknown field" in by_object["Widget.example.com/argocd/typo"]  # the outer schema still decides


def test_a_crd_that_requires_metadata_accepts_every_object() -> None:
    """Argo CD's CRDs say `required: [metadata, spec]` at the root: metadata is always there (the API server's
    ObjectMeta), so an AppProject beside them is valid; it was an error once metadata was set aside."""
    crd = copy.deepcopy(next(o.body for o in fixture("schema-crd.yaml") if o.kind == "CustomResourceDefinition"))
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    root["required"] = ["metadata", "spec"]
    root.setdefault("properties", {})["metadata"] = {"type": "object"}  # says nothing of name, labels...
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "w", "labels": {"team": "a"}}, "spec": {"size": 1}}
    assert run(bundle_of(crd, widget), "schema") == []
    no_spec = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}}
    (finding,) = run(bundle_of(crd, no_spec), "schema")
    assert "(root): required field 'spec' is missing" in " ".join(finding.evidence["errors"])


def test_kinds_of_crd_served_k8s_io_groups_are_not_schema_errors() -> None:
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"}}
    (finding,) = run(bundle_of(route), "schema")
    assert finding.severity == "info" and "not schema-checked" in finding.reason  # the Gateway API is CRDs


def test_schema_version_is_the_newest_shipped_not_newer_than_the_profile() -> None:
    versions = schema_versions()
    assert (1, 35) in versions
    assert schema_version_for((1, 35)) == (1, 35)
    assert schema_version_for((1, 99)) == versions[-1]
    assert schema_version_for((1, 10)) == versions[0]
    findings = run(fixture(V2111), "schema", profile_from_dict({"kubernetesVersion": "1.99"}, "future"))
    assert [f.severity for f in findings] == ["info"] and "no schemas for Kubernetes 1.99" in findings[0].reason


# --------------------------------------------------------------------------------------------------
# 5. references and images
# --------------------------------------------------------------------------------------------------


def test_missing_references_are_warnings_and_runtime_created_ones_are_not() -> None:
    findings = run(fixture("references.yaml"), "references")
    warnings = {f.evidence["name"]: f for f in only(findings, "references", "warning") if "name" in f.evidence}
    assert set(warnings) == {"app-token", "app-sa"}
    assert warnings["app-sa"].objects == ("Deployment.apps/argocd/app",)
    assert "ServiceAccount admission refuses its pods" in warnings["app-sa"].reason
    assert "container app env TOKEN" in warnings["app-token"].reason
    assert "CreateContainerConfigError" in warnings["app-token"].reason


def test_rbac_naming_a_missing_role_is_info_not_a_pod_failure() -> None:
    """The API accepts a RoleBinding whose Role does not exist; it grants nothing. No pod waits for it."""
    infos = {f.evidence["name"]: f for f in only(run(fixture("references.yaml"), "references"), "references", "info")
             if "name" in f.evidence}
    assert "grants nothing until that object exists" in infos["app-role"].reason
    assert "CreateContainerConfigError" not in infos["app-role"].reason


def test_argocd_redis_secret_is_known_when_secret_init_creates_it() -> None:
    findings = run(fixture(V2111), "references")
    assert only(findings, "references", "warning") == []
    waits = [f for f in findings if f.evidence.get("name") == "argocd-redis"]
    assert [f.severity for f in waits] == ["info"]
    assert waits[0].evidence["created_by"].startswith("init container secret-init of Deployment argocd-redis")

    def drop_init(body: dict[str, Any]) -> None:
        del body["spec"]["template"]["spec"]["initContainers"]
    without = edited(fixture(V2111), "Deployment", "argocd-redis", drop_init)
    warnings = only(run(without, "references"), "references", "warning")
    assert [f.evidence["name"] for f in warnings] == ["argocd-redis"]


def test_images_latest_undigested_and_pull_always_are_one_info() -> None:
    infos = [f for f in only(run(fixture("references.yaml"), "references"), "references", "info") if "images" in
             f.evidence]
    assert len(infos) == 1  # one line for every image, not one per image
    flags = infos[0].evidence["images"]
    assert "on a moving tag" in flags["busybox"]
    assert "pulled on every start (imagePullPolicy Always)" in flags["busybox"]  # the default for :latest
    assert flags["quay.io/argoproj/argocd:latest"]
    assert infos[0].reason.startswith("2 image(s) make a run harder to repeat: 2 not pinned by digest")
    pinned = run(fixture("scheduling-ha.yaml"), "references")
    assert pinned == []  # digest-pinned, IfNotPresent by default


def provenance(source: str, version: str) -> Provenance:
    return Provenance(spec=version if source == "tag" else "x", source=source, variant="install", version=version,
                      commit=None, url=None, path=None, sha256="0" * 64, size=1, fetched_at="now", image_version=None)


def test_a_release_running_another_versions_images_is_one_error_a_team_can_accept() -> None:
    bundle = fixture("references.yaml")
    assert not [f for f in run(bundle, "references") if "resolved_version" in f.evidence]  # no version: no claim
    bundle.provenance = provenance("stable", "v3.5.1")
    mismatch = [f for f in run(bundle, "references") if "resolved_version" in f.evidence]
    assert [(f.severity, f.evidence["image_versions"]) for f in mismatch] == [("error", ["latest"])]
    assert mismatch[0].waiver == ("image-version=latest",)
    assert "--accept-image-version latest" in mismatch[0].reason
    accepted = [f for f in run_preflight(bundle, DEFAULT, only=("references",), accepted=("image-version=latest",))
                if "resolved_version" in f.evidence]
    assert [f.severity for f in accepted] == ["warning"] and "(accepted: image-version=latest)" in accepted[0].reason
    other = run_preflight(bundle, DEFAULT, only=("references",), accepted=("image-version=v3.5.0",))
    assert has_error(other)  # accepting another version accepts nothing here
    bundle.provenance = provenance("url", "v3.5.1")  # a version read from a URL is a name, not a release's claim
    assert [f.severity for f in run(bundle, "references") if "resolved_version" in f.evidence] == ["warning"]


def test_an_image_pinned_by_digest_alone_names_no_version() -> None:
    bundle = fixture("references.yaml")
    by_digest = f"quay.io/argoproj/argocd@sha256:{'a' * 64}"
    digest_only = edited(bundle, "Deployment", next(o.name for o in bundle if o.kind == "Deployment"),
                         lambda body: body["spec"]["template"]["spec"]["containers"][0].update(image=by_digest))
    digest_only.provenance = provenance("stable", "v3.5.1")
    assert not [f for f in run(digest_only, "references") if "resolved_version" in f.evidence]


# --------------------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------------------


def test_run_preflight_orders_worst_first_and_filters_checks() -> None:
    findings = run_preflight(fixture("references.yaml"), DEFAULT)
    ranks = [("error", "warning", "info").index(f.severity) for f in findings]
    assert ranks == sorted(ranks) and counts(findings)["warning"] == 2 and not has_error(findings)
    assert run_preflight(fixture(V2111), DEFAULT, only=("schema",)) == []
    with pytest.raises(InputError, match="unknown check"):
        run_preflight(fixture(V2111), DEFAULT, only=("nope",))
    with pytest.raises(InputError, match="apply mode"):
        run_preflight(fixture(V2111), DEFAULT, apply_mode="sideways")


def test_findings_are_json_serialisable_and_one_line() -> None:
    bundle = fixture(V2111)
    for finding in run_preflight(bundle, DEFAULT) + run_preflight(fixture("schema-errors.yaml"), DEFAULT):
        json.dumps(finding.to_dict())
        assert "\n" not in finding.reason
    with pytest.raises(ValueError):
        Finding("x", "fatal", (), "r")


# --------------------------------------------------------------------------------------------------
# malformed input: findings or a one-line MirrorError, never a crash
# --------------------------------------------------------------------------------------------------



def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


_BASE = [copy.deepcopy(o.body) for o in fixture(V2111)] + [copy.deepcopy(o.body) for o in fixture("scheduling-ha.yaml")]
_PATHS = _paths(_BASE)
_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.text(max_size=5),
                  st.lists(st.text(max_size=3), max_size=2),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(_PATHS) - 1), junk=_JUNK)
def test_malformed_objects_give_findings_not_crashes(index: int, junk: Any) -> None:
    bodies = copy.deepcopy(_BASE)
    *parents, last = _PATHS[index]
    target: Any = bodies
    for key in parents:
        target = target[key]
    target[last] = junk
    try:
        bundle = bundle_of(*bodies)
    except InputError:
        return  # refused at load time, with its own one-line error
    try:
        findings = run_preflight(bundle, DEFAULT, "client-side")
    except MirrorError as exc:
        assert "\n" not in exc.one_line()
        return
    for finding in findings:
        json.dumps(finding.to_dict())


def test_a_check_crashing_on_a_schema_valid_bundle_is_could_not_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from validator.preflight import scheduling

    def broken(bundle: Bundle, profile: Any, mode: str) -> list[Finding]:
        raise KeyError("bug")
    monkeypatch.setattr(scheduling, "check", broken)
    with pytest.raises(MirrorError, match="check scheduling could not evaluate") as caught:
        run_preflight(fixture(V2111), DEFAULT)
    assert caught.value.exit_code == 2
    # on a bundle the schema rejects, the same crash is blamed on the candidate (exit 1), with the schema errors
    findings = run_preflight(fixture("schema-errors.yaml"), DEFAULT, only=("scheduling",))
    assert {f.check for f in findings if f.severity == "error"} == {"scheduling", "schema"}


def _haproxy_like(strategy: dict[str, Any] | None) -> Bundle:
    """The StatefulSet fixture as a Deployment (Argo CD's redis-ha haproxy shape), with the given strategy."""
    def as_deployment(body: dict[str, Any]) -> None:
        body["kind"] = "Deployment"
        del body["spec"]["serviceName"]
        if strategy is not None:
            body["spec"]["strategy"] = strategy
    return edited(fixture("scheduling-ha.yaml"), "StatefulSet", "redis-ha", as_deployment)


@pytest.mark.parametrize(("strategy", "stalls"), [
    (None, True),  # defaults 25%/25% of 3: surge 1, unavailable 0 (argoproj/argo-cd#16627)
    ({"type": "RollingUpdate"}, True),
    ({"rollingUpdate": {"maxUnavailable": "33%"}}, True),  # 0.99 rounds down to 0
    ({"rollingUpdate": {"maxUnavailable": "34%"}}, False),  # 1.02 rounds down to 1
    ({"rollingUpdate": {"maxUnavailable": 1}}, False),
    ({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}}, False),  # both 0: the controller allows 1
    ({"type": "Recreate"}, False),
    ({"type": "", "rollingUpdate": {"maxSurge": None}}, True),  # "" and null are defaulted like absent fields
    ({"rollingUpdate": {"maxUnavailable": -1}}, False),  # refused by the API server: not ours to judge
    ({"rollingUpdate": {"maxUnavailable": "²%"}}, False),  # not IsValidPercent (str.isdigit() would take it)
])
def test_rolling_update_that_can_never_progress_on_the_profile(strategy: dict[str, Any] | None, stalls: bool) -> None:
    findings = run(_haproxy_like(strategy), "scheduling", HA)  # 3 schedulable workers for 3 replicas
    assert [f.severity for f in findings] == (["warning"] if stalls else [])
    if stalls:
        assert "an upgrade can never finish its rollout" in findings[0].reason
        assert findings[0].evidence["domains"] == ["mirror-worker", "mirror-worker2", "mirror-worker3"]


def test_rolling_update_progresses_with_a_spare_node_and_a_statefulset_never_surges() -> None:
    four = profile_from_dict({"nodes": [{"role": "control-plane"}] + [{"role": "worker"}] * 4}, "four")
    assert run(_haproxy_like(None), "scheduling", four) == []
    assert run(fixture("scheduling-ha.yaml"), "scheduling", HA) == []  # StatefulSets replace pod by pod


@pytest.mark.parametrize(("rolling", "replicas", "resolved"), [
    ({}, 3, (1, 0)), ({}, 10, (3, 2)), ({"maxSurge": "0%", "maxUnavailable": "0%"}, 3, (0, 1)),
    ({"maxSurge": 2, "maxUnavailable": "50%"}, 3, (2, 1)), ({"maxSurge": "x%"}, 3, None),
])
def test_rolling_update_budget_rounds_as_the_deployment_controller(
        rolling: dict[str, Any], replicas: int, resolved: tuple[int, int] | None) -> None:
    from validator.preflight.scheduling import rolling_update_budget
    budget = rolling_update_budget({"spec": {"strategy": {"rollingUpdate": rolling}}}, replicas)
    assert (budget[2:] if budget else None) == resolved



def _device_class(api_version: str, kind: str = "DeviceClass") -> Bundle:
    return bundle_of({"apiVersion": api_version, "kind": kind, "metadata": {"name": "gpu"}, "spec": {}})


@pytest.mark.parametrize(("api_version", "kind", "runtime_config", "expected"), [
    ("apps/v1", "Deployment", {}, True),
    ("resource.k8s.io/v1", "DeviceClass", {}, True),
    ("resource.k8s.io/v1beta2", "DeviceClass", {}, False),  # a beta added after 1.24: off by default
    ("admissionregistration.k8s.io/v1alpha1", "MutatingAdmissionPolicy", {}, False),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", {}, True),  # a legacy beta, served until its removal
    ("resource.k8s.io/v1beta2", "DeviceClass", {"resource.k8s.io/v1beta2": "true"}, True),
    ("resource.k8s.io/v1beta2", "DeviceClass", {"api/beta": "true"}, True),
    ("resource.k8s.io/v1beta2", "DeviceClass", {"api/beta": "true", "resource.k8s.io/v1beta2": "false"}, False),
    ("resource.k8s.io/v1beta2", "DeviceClass", {"resource.k8s.io/v1beta2/deviceclasses": "true"}, True),
    ("resource.k8s.io/v1beta2", "ResourceClaim", {"resource.k8s.io/v1beta2/deviceclasses": "true"}, False),
    ("admissionregistration.k8s.io/v1alpha1", "MutatingAdmissionPolicy",
     {"api/all": "false", "api/alpha": "true"}, True),  # the stage key applies after api/all
    ("apps/v1", "Deployment", {"api/all": "false"}, False),
    ("v1", "ConfigMap", {"api/all": "false", "api/ga": "true"}, True),
    ("v1", "ConfigMap", {"/v1/configmaps": "false"}, False),  # "/v1" is the core group (ParseGroupVersion)
])
def test_served_follows_kube_apiserver_defaults_and_runtime_config(
        api_version: str, kind: str, runtime_config: dict[str, str], expected: bool) -> None:
    from validator.preflight.schema import served
    assert served(api_version, kind, runtime_config) is expected


def test_apis_the_profile_does_not_serve_are_errors_unless_it_enables_them() -> None:
    found = run(_device_class("resource.k8s.io/v1beta2"), "schema")
    assert [f.severity for f in found] == ["error"]
    assert "does not serve apiVersion resource.k8s.io/v1beta2 by default" in found[0].reason
    assert 'runtimeConfig: {resource.k8s.io/v1beta2: "true"}' in found[0].reason
    enabled = profile_from_dict({"runtimeConfig": {"resource.k8s.io/v1beta2": "true"}}, "dra")
    assert run(_device_class("resource.k8s.io/v1beta2"), "schema", enabled) == []
    assert run(_device_class("resource.k8s.io/v1"), "schema") == []
    alpha = run(bundle_of({"apiVersion": "admissionregistration.k8s.io/v1alpha1", "kind": "MutatingAdmissionPolicy",
                           "metadata": {"name": "p"}, "spec": {}}), "schema")
    assert [(f.severity, "an alpha API" in f.reason) for f in alpha] == [("error", True)]



@pytest.mark.parametrize(("version", "gates", "stalls"), [
    ("1.35", {}, False), ("1.31", {}, False),  # beta, on by default from 1.31; GA in 1.33
    ("1.30", {}, True), ("1.31", {"MatchLabelKeysInPodAffinity": False}, True),
    ("1.33", {"MatchLabelKeysInPodAffinity": False}, False),  # GA: the gate is locked on
])
def test_match_label_keys_on_the_pod_template_hash_lets_revisions_pass(version: str, gates: dict[str, bool],
                                                                       stalls: bool) -> None:
    """matchLabelKeys: [pod-template-hash] makes a term repel only the pod's own revision (the fix upstream
    recommends), so the surge pod of a new revision may share a node with an old one."""
    def per_revision(body: dict[str, Any]) -> None:
        term = body["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"][0]
        term["matchLabelKeys"] = ["pod-template-hash"]
    bundle = edited(_haproxy_like(None), "Deployment", "redis-ha", per_revision)
    three = profile_from_dict({"kubernetesVersion": version, "featureGates": gates,
                               "nodes": [{"role": "control-plane"}] + [{"role": "worker"}] * 3}, "three")
    assert [f.severity for f in run(bundle, "scheduling", three)] == (["warning"] if stalls else [])


def test_a_runtime_config_group_version_the_version_lacks_is_bad_input() -> None:
    """kube-apiserver refuses to start on it ("unknown api groups"): the profile is wrong, not the candidate."""
    typo = profile_from_dict({"runtimeConfig": {"resource.k8s.io/v1beta9": "true"}}, "typo")
    with pytest.raises(InputError, match="runtimeConfig resource.k8s.io/v1beta9: Kubernetes 1.35 has no API"):
        run(_device_class("resource.k8s.io/v1"), "schema", typo)
    core = profile_from_dict({"runtimeConfig": {"/v1/configmaps": "true", "api/beta": "true"}}, "core")
    assert run(_device_class("resource.k8s.io/v1"), "schema", core) == []
