"""Issue #16 item 4: every profile shape is either built by kind exactly as preflight reasons about it, or refused
at load time (InputError, exit 2) with a reason, before any cluster exists.

`what_kind_builds` models, independently of validator.cluster.kindconfig, what kind v0.33 + kubeadm + kubelet do
with a generated config (kind's kubeadminit/config actions, kubeadm's taint default, the kubelet's --node-labels
rule), and the tests hold the result against Profile.schedulable_nodes() (what preflight counts).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apidouble import ApiDouble
from tests.fakes import FakeTools, fake_tools  # noqa: F401
from validator.cluster import kind as kind_provider
from validator.cluster import mirror_cluster
from validator.cluster.kindconfig import api_labels, kind_config, node_names, validate_kind_config
from validator.errors import EnvironmentNotReady, InputError
from validator.manifests import load_bundle
from validator.preflight import run_preflight
from validator.profiles import Profile, profile_from_dict

CP = "node-role.kubernetes.io/control-plane"


class KindCreateFails(Exception):
    pass


def _is_kubernetes_label(key: str) -> bool:  # cmd/kubelet/app/options isKubernetesLabel
    namespace = key.split("/", 1)[0] if "/" in key else ""
    return any(namespace == d or namespace.endswith("." + d) for d in ("kubernetes.io", "k8s.io"))


def _is_kubelet_label(key: str) -> bool:  # k8s.io/kubelet/pkg/apis IsKubeletLabel
    allowed = {"kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
               "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
               "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type", "kubernetes.io/os",
               "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch"}
    namespace = key.split("/", 1)[0] if "/" in key else ""
    return key in allowed or any(namespace == d or namespace.endswith("." + d)
                                 for d in ("kubelet.kubernetes.io", "node.kubernetes.io"))


def what_kind_builds(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Each node's final taints (key, effect) and --node-labels, as kind would leave them."""
    config = yaml.safe_load(yaml.safe_dump(config))  # what kind reads
    validate_kind_config(config)
    built = []
    for index, node in enumerate(config["nodes"]):
        # the bootstrap control plane runs `kubeadm init`, every other node `kubeadm join`
        first_cp = node["role"] == "control-plane" and index == next(
            i for i, n in enumerate(config["nodes"]) if n["role"] == "control-plane")
        wanted = "InitConfiguration" if first_cp else "JoinConfiguration"
        registration = None
        for patch in node.get("kubeadmConfigPatches") or []:
            doc = yaml.safe_load(patch)
            if doc["kind"] == wanted and "taints" in (doc.get("nodeRegistration") or {}):
                registration = doc["nodeRegistration"]["taints"]
        if registration is None:  # kubeadm: unset (nil) -> the control-plane taint on control planes
            taints = [(CP, "NoSchedule")] if node["role"] == "control-plane" else []
        else:
            taints = [(t["key"], t["effect"]) for t in registration]
        labels = node.get("labels") or {}
        refused = sorted(k for k in labels if _is_kubernetes_label(k) and not _is_kubelet_label(k))
        if refused:
            raise KindCreateFails(f"kubelet: unknown 'kubernetes.io' or 'k8s.io' labels specified with "
                                  f"--node-labels: {refused}")
        built.append({"role": node["role"], "taints": taints, "labels": dict(labels)})
    if len(built) == 1:  # kubeadminit: `kubectl taint nodes --all node-role.kubernetes.io/control-plane-`
        if not any(k == CP for k, _ in built[0]["taints"]):
            raise KindCreateFails('failed to remove control plane taint: taint "node-role.kubernetes.io/'
                                  'control-plane" not found')
        built[0]["taints"] = [t for t in built[0]["taints"] if t[0] != CP]
    return built


def schedulable_on_kind(profile: Profile) -> int:
    built = what_kind_builds(kind_config(profile, "argocd-mirror-abcd1234"))
    return sum(not any(effect in ("NoSchedule", "NoExecute") for _, effect in n["taints"]) for n in built)


def nodes(*roles: str, **extra: Any) -> dict[str, Any]:
    return {"nodes": [{"role": r, **extra} for r in roles]}


@pytest.mark.parametrize(("raw", "schedulable"), [
    (nodes("control-plane"), 1),  # kind untaints a one-node cluster
    (nodes("control-plane", "worker", "worker"), 2),  # ...but not a control plane beside workers
    (nodes("control-plane", "control-plane", "control-plane"), 0),  # nor three control planes (was: 3)
    (nodes("control-plane", "control-plane", "control-plane", taints=[]), 3),  # unless untainted explicitly
    ({"nodes": [{"role": "control-plane"}, {"role": "control-plane", "taints": []}, {"role": "control-plane"}]}, 1),
    (nodes("control-plane", "control-plane", "control-plane", "worker", "worker"), 2),
    ({"nodes": [{"role": "control-plane", "taints": []}, {"role": "worker"}]}, 2),
    ({"nodes": [{"role": "control-plane", "taints": [{"key": "dedicated", "value": "infra",
                                                      "effect": "NoSchedule"}]}]}, 0),
    ({"nodes": [{"role": "control-plane", "taints": [{"key": "soft", "effect": "PreferNoSchedule"}]}]}, 1),
    ({"nodes": [{"role": "control-plane"}, {"role": "worker", "taints": [{"key": "gpu", "effect": "NoExecute"}]}]},
     0),
])
def test_preflight_counts_the_schedulable_nodes_kind_builds(raw: dict[str, Any], schedulable: int) -> None:
    profile = profile_from_dict(raw, "p")
    assert len(profile.schedulable_nodes()) == schedulable == schedulable_on_kind(profile)


def test_custom_taints_on_a_lone_control_plane_survive_kinds_untaint_step() -> None:
    """kubeadm puts exactly the patched taints; kind's `kubectl taint ... control-plane-` then fails when the
    control-plane taint is not among them. The patch adds it for kind to remove: the node ends as the profile."""
    taint = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
    profile = profile_from_dict({"nodes": [{"role": "control-plane", "taints": [taint]}]}, "p")
    (node,) = kind_config(profile, "n")["nodes"]
    assert [yaml.safe_load(p)["nodeRegistration"]["taints"] for p in node["kubeadmConfigPatches"]] == [
        [taint, {"key": CP, "effect": "NoSchedule"}]] * 2
    assert what_kind_builds(kind_config(profile, "n"))[0]["taints"] == [("dedicated", "NoSchedule")]
    assert [(t.key, t.effect) for t in profile.nodes[0].taints] == [("dedicated", "NoSchedule")]  # preflight's view


def test_the_model_catches_what_the_old_config_did() -> None:
    """The shapes the old kind config got wrong, through the same model: a lone control plane with custom taints
    failed kind create, three untainted control planes kept kubeadm's taint."""
    with pytest.raises(KindCreateFails, match="not found"):
        what_kind_builds({"apiVersion": "kind.x-k8s.io/v1alpha4", "kind": "Cluster", "nodes": [
            {"role": "control-plane", "kubeadmConfigPatches": [
                "kind: InitConfiguration\nnodeRegistration:\n  taints: [{key: a, effect: NoSchedule}]\n"]}]})
    with pytest.raises(KindCreateFails, match="--node-labels"):
        what_kind_builds({"apiVersion": "kind.x-k8s.io/v1alpha4", "kind": "Cluster", "nodes": [
            {"role": "control-plane", "labels": {"node-role.kubernetes.io/infra": ""}}]})


@pytest.mark.parametrize("effect", ["NoSchedule", "PreferNoSchedule", "NoExecute"])
def test_a_lone_control_plane_cannot_keep_the_control_plane_taint(effect: str) -> None:
    with pytest.raises(InputError, match=r"profile p: node 0: kind removes every node-role.kubernetes.io/"
                                         r"control-plane taint from a one-node cluster .* add a worker"):
        profile_from_dict({"nodes": [{"role": "control-plane", "taints": [{"key": CP, "effect": effect}]}]}, "p")
    kept = profile_from_dict({"nodes": [{"role": "control-plane", "taints": [{"key": CP, "effect": effect}]},
                                        {"role": "worker"}]}, "p")  # with a worker kind leaves it alone
    assert schedulable_on_kind(kept) == len(kept.schedulable_nodes())


def test_a_lone_control_plane_cannot_keep_the_label_kind_removes() -> None:
    label = "node.kubernetes.io/exclude-from-external-load-balancers"
    with pytest.raises(InputError, match=f"profile p: node 0: kind removes the {label} label from a one-node cluster"):
        profile_from_dict({"nodes": [{"role": "control-plane", "labels": {label: ""}}]}, "p")
    assert profile_from_dict({"nodes": [{"labels": {label: ""}}, {"role": "worker"}]}, "p").nodes[0].labels


def test_labels_the_kubelet_refuses_are_set_through_the_api_and_preflight_sees_them_all() -> None:
    labels = {"node-role.kubernetes.io/infra": "", "team.k8s.io/owner": "ops", "pool": "infra",
              "topology.kubernetes.io/zone": "eu-1a", "node.kubernetes.io/instance-type": "m5",
              "example.node.kubernetes.io/disk": "ssd", "kubelet.kubernetes.io/x": "1", "example.com/gpu": "a100"}
    profile = profile_from_dict({"nodes": [{"role": "control-plane"}, {"role": "worker"},
                                           {"role": "worker", "labels": labels}]}, "p")
    config = kind_config(profile, "argocd-mirror-abcd1234")
    built = what_kind_builds(config)  # every node joins: nothing refused reaches --node-labels
    late = api_labels(profile, "argocd-mirror-abcd1234")
    assert late == {"argocd-mirror-abcd1234-worker2": {"node-role.kubernetes.io/infra": "", "team.k8s.io/owner": "ops"}}
    assert {**built[2]["labels"], **late["argocd-mirror-abcd1234-worker2"]} == labels == profile.nodes[2].labels
    assert set(built[2]["labels"]) == {"pool", "topology.kubernetes.io/zone", "node.kubernetes.io/instance-type",
                                       "example.node.kubernetes.io/disk", "kubelet.kubernetes.io/x", "example.com/gpu"}


def test_kind_node_names() -> None:
    profile = profile_from_dict(nodes("control-plane", "worker", "control-plane", "worker", "worker"), "p")
    assert node_names(profile, "c") == ["c-control-plane", "c-worker", "c-control-plane2", "c-worker2", "c-worker3"]


@pytest.mark.parametrize(("labels", "reason"), [
    ({"bad key!": "x"}, "key 'bad key!' is not a valid label name"),
    ({"Example.com/x": "x"}, "is not a valid label name"),  # the prefix is a lowercase DNS subdomain
    ({"x" * 64: "x"}, "is not a valid label name"),
    ({"pool": "a,b"}, "pool='a,b' has an invalid value"),  # kind joins --node-labels with commas
    ({"pool": "-a"}, "has an invalid value"),
])
def test_invalid_labels_are_refused_at_load_time(labels: dict[str, str], reason: str) -> None:
    with pytest.raises(InputError, match=f"profile p: node 0: label .*{re.escape(reason)}"):
        profile_from_dict({"nodes": [{"labels": labels}]}, "p")


def test_invalid_taint_keys_are_refused_at_load_time() -> None:
    with pytest.raises(InputError, match="profile p: node 0: taint a b=:NoSchedule has an invalid key or value"):
        profile_from_dict({"nodes": [{"taints": [{"key": "a b", "effect": "NoSchedule"}]}]}, "p")


HA_SPREAD = b"""
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread, namespace: argocd}
spec:
  replicas: 3
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - {labelSelector: {matchLabels: {app: spread}}, topologyKey: kubernetes.io/hostname}
      containers: [{name: c, image: nginx:1.27}]
"""


def test_preflight_judges_three_control_planes_as_kind_builds_them() -> None:
    """Three control planes, no worker: kind keeps kubeadm's taint on all three, so preflight must not place pods
    there (it used to count three schedulable nodes); `taints: []` makes all three schedulable, on both sides."""
    bundle = load_bundle(HA_SPREAD)
    tainted = profile_from_dict(nodes("control-plane", "control-plane", "control-plane"), "three")
    untainted = profile_from_dict(nodes("control-plane", "control-plane", "control-plane", taints=[]), "three")
    found = [f for f in run_preflight(bundle, tainted) if f.severity == "error"]
    assert found and "Deployment.apps/argocd/spread" in found[0].objects
    assert [f for f in run_preflight(bundle, untainted) if f.severity == "error"] == []


# ---------------------------------------------------------------------------------------------------------
# the API labels on a (fake) kind cluster
# ---------------------------------------------------------------------------------------------------------

NAME = "argocd-mirror-0000abcd"


def _ready(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


@pytest.fixture
def named(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> FakeTools:  # noqa: F811
    monkeypatch.setattr(kind_provider, "new_cluster_name", lambda: NAME)
    return fake_tools


def test_labels_the_kubelet_refuses_are_on_the_node_before_the_run_uses_it(named: FakeTools, tmp_path: Path) -> None:
    profile = profile_from_dict({"nodes": [{"role": "control-plane", "labels": {
        "node-role.kubernetes.io/infra": "", "pool": "infra"}}]}, "p")
    seen: list[str] = []
    with ApiDouble(simulate=False) as double:
        double.create(_ready(f"{NAME}-control-plane"))
        named.api_server(double.url)
        with mirror_cluster(profile, tmp_path, progress=seen.append, ready_timeout_s=1.0, ready_interval_s=0.05):
            node = double.get("Node", f"{NAME}-control-plane")
            assert node is not None
            assert node["metadata"]["labels"] == {"kubernetes.io/os": "linux", "node-role.kubernetes.io/infra": ""}
    config = yaml.safe_load((tmp_path / "kind-config.yaml").read_text())
    assert config["nodes"][0]["labels"] == {"pool": "infra"}  # the kubelet sets this one
    assert f"labelling node {NAME}-control-plane: node-role.kubernetes.io/infra=" in seen


def test_a_node_that_cannot_be_labelled_is_could_not_validate(named: FakeTools, tmp_path: Path) -> None:
    profile = profile_from_dict({"nodes": [{"role": "control-plane", "labels": {"node-role.kubernetes.io/infra": ""}}]},
                                "p")
    with ApiDouble(simulate=False) as double:
        double.create(_ready("someone-else-control-plane"))  # Ready, but not the name kind gives our node
        named.api_server(double.url)
        with pytest.raises(EnvironmentNotReady, match=f"labelling node {NAME}-control-plane failed: HTTP 404"), \
                mirror_cluster(profile, tmp_path, progress=lambda m: None, ready_timeout_s=1.0,
                               ready_interval_s=0.05):
            pytest.fail("the body must not run on a node without the profile's labels")
    assert named.calls("kind", "delete", "cluster")
