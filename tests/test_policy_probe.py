"""The candidate's own egress NetworkPolicies, proven on new pods before its workloads start (issue #7 item 1).

Planning and verdicts are pure; the orchestration runs through the real install() against the API double,
whose pod network (tests/apidouble/network.py) executes the probe's own shell script with a fake `nc`, so
the outcome comes from our script meeting an enforcing (or leaky, or lagging, or broken) network.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apidouble import ApiDouble
from tests.apidouble.argocd import as_v2_11_1, broken_redis, bundle_from
from tests.conftest import real_manifest
from validator.cluster import Cluster
from validator.cluster.netpol import (
    BLOCKED,
    CONNECT,
    LABEL,
    POLICY_ROLE,
    PolicyProbe,
    plan_policy_probes,
    policy_verdict,
    probe_name,
    prove_candidate_policies,
    selector_labels,
)
from validator.errors import EnvironmentNotReady
from validator.install import install
from validator.manifests import Bundle, load_bundle

REDIS = "argocd-redis"
POLICY = "argocd-redis-network-policy"
PROBE = f"argocd-mirror-probe-{POLICY}"
DNS_ONLY = [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]
DNS_AND_API = [*DNS_ONLY, {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}]


def netpol(name: str, selector: dict[str, Any], types: list[str], egress: list[dict[str, Any]] | None = None,
           namespace: str = "argocd") -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": selector, "policyTypes": types}
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def redis_deployment() -> dict[str, Any]:
    """argocd-redis as v2.11.1 shipped it: init container secret-init calls the API to create its Secret."""
    labels = {"app.kubernetes.io/name": REDIS}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": REDIS, "namespace": "argocd"},
            "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                "serviceAccountName": REDIS,
                "initContainers": [{"name": "secret-init", "image": "quay.io/argoproj/argocd:v2.11.1",
                                    "command": ["argocd", "admin", "redis-initial-password"]}],
                "containers": [{"name": "redis", "image": "redis:7.0.15-alpine"}]}}}}


def bundle_of(*policies: dict[str, Any]) -> Bundle:
    """The policies plus v2.11.1's redis Deployment, in namespace argocd."""
    return load_bundle(yaml.safe_dump_all([*policies, redis_deployment()]).encode(), namespace="argocd")


V2_11_1 = [netpol(POLICY, {"matchLabels": {"app.kubernetes.io/name": REDIS}}, ["Ingress", "Egress"], DNS_ONLY)]
FIXED = [netpol(POLICY, {"matchLabels": {"app.kubernetes.io/name": REDIS}}, ["Ingress", "Egress"], DNS_AND_API)]
INGRESS_ONLY = [netpol(POLICY, {"matchLabels": {"app.kubernetes.io/name": REDIS}}, ["Ingress"])]


# ---------------------------------------------------------------------------------------------------------
# planning (pure)
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("selector, labels", [
    ({}, {}),
    ({"matchLabels": {"a": "1"}}, {"a": "1"}),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["cache", "db"]}]}, {"tier": "cache"}),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": "argocd-mirror-probe"}),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["x"]},
                                                      {"key": "c", "operator": "DoesNotExist"}]}, {"a": "1"}),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
     {"a": "1"}),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "a", "operator": "In", "values": ["2"]}]}, None),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, None),
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, None),
    ("not a selector", None),
])
def test_selector_labels(selector: Any, labels: dict[str, str] | None) -> None:
    assert selector_labels(selector) == labels


def test_v2_11_1_redis_policy_is_probed_expecting_blocked() -> None:
    probes, notes = plan_policy_probes(bundle_of(*V2_11_1))
    assert notes == []
    (probe,) = probes
    assert (probe.policy, probe.pod, probe.namespace, probe.expect) == (f"argocd/{POLICY}", PROBE, "argocd", BLOCKED)
    assert probe.labels["app.kubernetes.io/name"] == REDIS and probe.labels[LABEL] == POLICY_ROLE
    assert "53/UDP,53/TCP to any destination" in probe.why


def test_real_v2_11_1_shape_and_ha_plan() -> None:
    """The real manifests: v2.11.1's redis policy and v3.5.1 HA's redis-ha-server policy are probed, blocked;
    v2.11.2 and v3.5.1 (Ingress-only policies) need no probe at all."""
    v2_11_2 = bundle_from(real_manifest("v2.11.2/install.yaml"))
    assert plan_policy_probes(v2_11_2) == ([], [])
    assert plan_policy_probes(bundle_from(real_manifest("v3.5.1/install.yaml"))) == ([], [])
    (probe,), _ = plan_policy_probes(as_v2_11_1(v2_11_2))
    assert (probe.policy, probe.expect) == (f"argocd/{POLICY}", BLOCKED)
    (ha,), _ = plan_policy_probes(bundle_from(real_manifest("v3.5.1/ha/install.yaml")))
    assert (ha.policy, ha.expect, ha.labels["app.kubernetes.io/name"]) == (
        "argocd/argocd-redis-ha-server-network-policy", BLOCKED, "argocd-redis-ha")


def test_policy_admitting_443_and_6443_expects_connect() -> None:
    (probe,), notes = plan_policy_probes(bundle_of(*FIXED))
    assert probe.expect == CONNECT and notes == []


def test_ingress_only_policies_need_no_probe() -> None:
    assert plan_policy_probes(bundle_of(*INGRESS_ONLY)) == ([], [])


def test_outcome_counts_every_policy_selecting_the_probe() -> None:
    """Policies add up: a namespace-wide deny-all plus one admitting the API for redis -> redis connects,
    anything else (the deny-all's own probe, no labels) stays blocked."""
    deny_all = netpol("deny-all", {}, ["Egress"])
    probes, _ = plan_policy_probes(bundle_of(deny_all, *FIXED))
    assert {p.policy: p.expect for p in probes} == {"argocd/deny-all": BLOCKED, f"argocd/{POLICY}": CONNECT}
    assert "deny-all, argocd-redis-network-policy allow(s) egress" in next(p.why for p in probes if p.expect == CONNECT)


def test_service_only_policy_is_probed_expecting_blocked() -> None:
    """443 to the kubernetes Service alone: enforced after the DNAT, the pod is judged going to node:6443."""
    service_only = netpol("service-only", {"matchLabels": {"app": "a"}}, ["Egress"],
                          [{"to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}], "ports": [{"port": 443}]}])
    (probe,), notes = plan_policy_probes(bundle_of(service_only))
    assert (probe.policy, probe.expect, notes) == ("argocd/service-only", BLOCKED, [])


def test_partial_or_unsatisfiable_policies_are_skipped_with_a_note() -> None:
    part_of_the_node_network = netpol("some-nodes", {"matchLabels": {"app": "a"}}, ["Egress"],
                                      [{"to": [{"ipBlock": {"cidr": "172.18.0.0/24"}}], "ports": [{"port": 6443}]}])
    odd = netpol("odd", {"matchExpressions": [{"key": "x", "operator": "In", "values": []}]}, ["Egress"])
    probes, notes = plan_policy_probes(bundle_of(part_of_the_node_network, odd))
    assert probes == []
    assert any("some-nodes not probed" in n and "depends on the endpoint a dial gets" in n for n in notes)
    assert any("odd not probed: no simple label set satisfies its podSelector" in n for n in notes)


def test_probe_names_are_short_and_distinct() -> None:
    a, b = probe_name("x" * 80 + "-a"), probe_name("x" * 80 + "-b")
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert probe_name(POLICY) == PROBE


def test_verdicts() -> None:
    blocked = PolicyProbe(f"argocd/{POLICY}", PROBE, "argocd", {"app.kubernetes.io/name": REDIS, LABEL: POLICY_ROLE},
                          BLOCKED, "argocd-redis-network-policy allow(s) egress to 53/UDP,53/TCP to any destination")
    assert policy_verdict(blocked, "Succeeded", "") is None
    leak = policy_verdict(blocked, "Failed", "attempt 9: connected\nattempt 10: connected\n")
    assert leak and leak.startswith(f"could not validate: NetworkPolicy argocd/{POLICY} is not enforced for a new pod")
    assert "app.kubernetes.io/name=argocd-redis" in leak and "attempt 10: connected" in leak
    assert LABEL not in leak
    connect = PolicyProbe(blocked.policy, PROBE, "argocd", blocked.labels, CONNECT, "admits 443")
    broken = policy_verdict(connect, "Failed", "attempt 10: failed")
    assert broken and "admits egress to the API server" in broken and "blame the candidate" in broken


# ---------------------------------------------------------------------------------------------------------
# orchestration: real install() against the API double, whose network runs the probe script
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def double() -> Any:
    with ApiDouble() as d:
        yield d


def capture_probe_pod(double: ApiDouble, name: str = PROBE) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def grab() -> bool:
        pod = double.get("Pod", name, "argocd")
        if pod is not None:
            seen.append(copy.deepcopy(pod))
        return pod is not None

    double.sim.at(0, grab)
    return seen


def install_probed(double: ApiDouble, bundle: Bundle, progress: list[str], **kw: Any) -> Any:
    api = double.api_client()
    return install(api, bundle, progress=progress.append, before_workloads=lambda client: prove_candidate_policies(
        client, bundle, timeout_s=kw.pop("timeout_s", 10), poll_s=0.05, progress=progress.append, **kw))


def test_v2_11_1_policy_blocks_the_probe_before_redis_starts(double: ApiDouble) -> None:
    """kindnet's lag: the first two dials get through, then blocked twice -> proven; the probe is gone before
    any workload is applied, and the redis pods start under a programmed policy."""
    double.network.lag_dials = 2
    pods = capture_probe_pod(double)
    progress: list[str] = []
    install_probed(double, bundle_of(*V2_11_1), progress)
    (name, dials, code), = double.network.runs
    assert (name, code) == (PROBE, 0) and dials[0] == "-z -w 3 10.96.0.1 443" and len(dials) == 4
    assert f"NetworkPolicy argocd/{POLICY}: probe {PROBE} must be blocked" in "\n".join(progress)
    assert f"NetworkPolicy argocd/{POLICY} is enforced for a new pod (probe blocked after 2 early connection(s))" \
        in progress
    # the probe: selected by the policy, ours, controlled by its Namespace (so nothing adopts it), no token
    (pod,) = pods[:1]
    assert pod["metadata"]["labels"] == {"app.kubernetes.io/name": REDIS, "app.kubernetes.io/managed-by":
                                         "argocd-mirror", LABEL: POLICY_ROLE}
    namespace = double.get("Namespace", "argocd")
    assert namespace is not None
    assert pod["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Namespace", "name": "argocd",
                                                   "uid": namespace["metadata"]["uid"], "controller": True,
                                                   "blockOwnerDeletion": False}]
    assert pod["spec"]["automountServiceAccountToken"] is False
    (container,) = pod["spec"]["containers"]  # the generic control's hardened pod: admissible under PSS restricted
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    # ordering in the double's request log: policy applied < probe created < probe deleted and gone < workloads
    log = double.request_log
    probe_path = f"/api/v1/namespaces/argocd/pods/{PROBE}"
    policy_at = log.index(("apply", f"/apis/networking.k8s.io/v1/namespaces/argocd/networkpolicies/{POLICY}"))
    created_at = log.index(("create", "/api/v1/namespaces/argocd/pods"))
    deleted_at = max(i for i, entry in enumerate(log) if entry == ("delete", probe_path))
    last_look = max(i for i, entry in enumerate(log) if entry == ("get", probe_path))
    workload_at = log.index(("apply", f"/apis/apps/v1/namespaces/argocd/deployments/{REDIS}"))
    assert policy_at < created_at < deleted_at < last_look < workload_at
    assert double.get("Pod", PROBE, "argocd") is None
    assert double.get("Deployment", REDIS, "argocd") is not None
    assert double.sim.errors == []


def test_a_previous_installs_bare_replicaset_does_not_adopt_the_probe(double: ApiDouble) -> None:
    """Upgrade: a ReplicaSet selecting the same labels as the policy already runs. The probe must neither
    become one of its replicas nor make it delete the pod it has (the double adopts orphans as ClaimPods does)."""
    labels = {"app.kubernetes.io/name": REDIS}
    double.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}})
    double.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": "old-redis", "namespace": "argocd"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                       "metadata": {"labels": labels}, "spec": {"containers": [{"name": "redis", "image": "redis"}]}}}})
    double.sim.tick()
    (before,) = double.objects("Pod", "argocd")
    install_probed(double, bundle_of(*V2_11_1), [])
    (name, _dials, code), = double.network.runs
    assert (name, code) == (PROBE, 0)
    assert [p["metadata"]["name"] for p in double.objects("Pod", "argocd")
            if p["metadata"]["name"].startswith("old-redis")] == [before["metadata"]["name"]]


def test_probe_that_connects_every_time_is_could_not_validate(double: ApiDouble) -> None:
    double.network.enforcing = False  # a CNI that ignores NetworkPolicy
    progress: list[str] = []
    with pytest.raises(EnvironmentNotReady) as err:
        install_probed(double, bundle_of(*V2_11_1), progress)
    message = str(err.value)
    assert message.startswith(f"could not validate: NetworkPolicy argocd/{POLICY} is not enforced for a new pod")
    assert "attempt 10: connected" in message and err.value.exit_code == 2
    assert double.get("Pod", PROBE, "argocd") is None  # cleaned up on the failure path too
    assert double.get("Deployment", REDIS, "argocd") is None  # no workload started on an unproven mirror


def test_fixed_policy_probe_must_connect(double: ApiDouble) -> None:
    progress: list[str] = []
    install_probed(double, bundle_of(*FIXED), progress)
    (name, dials, code), = double.network.runs
    assert (name, code, len(dials)) == (PROBE, 0, 1)
    assert f"NetworkPolicy argocd/{POLICY} is enforced for a new pod (probe connect)" in progress
    assert double.get("Deployment", REDIS, "argocd") is not None


def test_a_policy_admitting_443_to_the_service_only_is_proven_blocking(double: ApiDouble) -> None:
    """The probe dials 10.96.0.1:443 as the pods do; the network judges it after the DNAT (node:6443)."""
    service_only = [netpol(POLICY, {"matchLabels": {"app.kubernetes.io/name": REDIS}}, ["Ingress", "Egress"],
                           [*DNS_ONLY, {"to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}], "ports": [{"port": 443}]}])]
    progress: list[str] = []
    install_probed(double, bundle_of(*service_only), progress)
    (name, _dials, code), = double.network.runs
    assert (name, code) == (PROBE, 0)
    assert f"NetworkPolicy argocd/{POLICY} is enforced for a new pod (probe blocked)" in progress


def test_fixed_policy_on_a_broken_pod_network_is_not_blamed_on_the_candidate(double: ApiDouble) -> None:
    double.network.pod_network = False
    with pytest.raises(EnvironmentNotReady, match=f"NetworkPolicy argocd/{POLICY} admits egress to the API server"):
        install_probed(double, bundle_of(*FIXED), [])
    assert double.get("Pod", PROBE, "argocd") is None


def test_ingress_only_bundle_creates_no_probe_pods(double: ApiDouble) -> None:
    progress: list[str] = []
    install_probed(double, bundle_of(*INGRESS_ONLY), progress)
    assert not [entry for entry in double.request_log if "/pods" in entry[1]]
    assert double.network.runs == [] and not any("probe" in line for line in progress)


def test_stuck_probe_times_out_and_is_removed(double: ApiDouble) -> None:
    waiting = {"phase": "Pending", "containerStatuses": [{"name": "probe", "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "busybox:1.37.0"'}}}]}
    double.script(at=0, kind="Pod", name=PROBE, namespace="argocd", status=waiting)
    with pytest.raises(EnvironmentNotReady, match=f"did not finish within 0s: {PROBE} Pending .ImagePullBackOff"):
        install_probed(double, bundle_of(*V2_11_1), [], timeout_s=0.3)
    assert double.get("Pod", PROBE, "argocd") is None


def test_leftover_probe_is_replaced(double: ApiDouble, tmp_path: Path) -> None:
    """A probe left by an interrupted run is deleted first; a Cluster target records the evidence."""
    double.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}})
    double.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": PROBE, "namespace": "argocd",
                                                                   "labels": {"stale": "yes"}},
                   "spec": {"containers": [{"name": "probe", "image": "old"}]}})
    for policy in V2_11_1:
        double.create(policy)
    cluster = Cluster("t", double.kubeconfig(tmp_path / "kubeconfig", "kind-t"), "kind-t", "kind", True)
    records = prove_candidate_policies(cluster, bundle_of(*V2_11_1), timeout_s=10, poll_s=0.05, progress=[].append)
    assert [(r["policy"], r["expect"], r["phase"]) for r in records] == [(f"argocd/{POLICY}", BLOCKED, "Succeeded")]
    assert cluster.details["policy_probes"] == records and "attempt 2: blocked" in records[0]["log"]


# ---------------------------------------------------------------------------------------------------------
# wiring: the plugin's deploy() runs the probe for the bundle it installs
# ---------------------------------------------------------------------------------------------------------


def test_plugin_deploy_probes_before_workloads_then_judges_the_candidate(double: ApiDouble, tmp_path: Path) -> None:
    """v2.11.1 on an enforcing mirror: the probe proves the policy (not exit 2), then redis' secret-init fails
    under it and the candidate is judged (exit 1)."""
    from validator.profiles import load_profile
    from validator.pytest_plugin import MirrorOptions, deploy
    from validator.report import ScenarioFailed

    broken_redis(double, every=0.1)
    double.network.lag_dials = 1
    cluster = Cluster("t", double.kubeconfig(tmp_path / "kubeconfig", "kind-t"), "kind-t", "kind", True)
    progress: list[str] = []
    with pytest.raises(ScenarioFailed, match="secret-init"):
        deploy(cluster, bundle_of(*V2_11_1), MirrorOptions(wait_timeout_s=20), load_profile("default"),
               progress.append, tmp_path / "diag")
    enforced = progress.index(f"NetworkPolicy argocd/{POLICY} is enforced for a new pod "
                              "(probe blocked after 1 early connection(s))")
    applied = next(i for i, line in enumerate(progress) if line.startswith("applied "))
    assert enforced < applied
    assert double.network.runs[0][2] == 0 and double.get("Pod", PROBE, "argocd") is None


def test_storage_reinitializing_during_the_install_and_its_probes_is_retried(double: ApiDouble) -> None:
    """Issue #16: a transient 429 "storage is (re)initializing" (and a 503) on the install's writes and on the
    probe's create/get/delete is retried by the one policy: same verdict, no warning, nothing left behind."""
    double.network.lag_dials = 2
    reinit = "storage is (re)initializing"
    double.fail(429, count=2, verb="apply", message=reinit)
    double.fail(429, count=2, verb="create", path_contains="/pods", message=reinit)
    double.fail(503, count=2, verb="get", path_contains=f"/pods/{PROBE}")
    double.fail(429, count=1, verb="delete", path_contains=f"/pods/{PROBE}", message=reinit)
    progress: list[str] = []
    install_probed(double, bundle_of(*V2_11_1), progress)
    assert f"NetworkPolicy argocd/{POLICY} is enforced for a new pod (probe blocked after 2 early connection(s))" \
        in progress
    assert not [m for m in progress if "warning" in m or "could not" in m], progress
    assert double.get("Pod", PROBE, "argocd") is None
