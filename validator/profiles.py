"""Profiles: what the mirror must share with production (Kubernetes version, nodes, CNI, apply mode).

A profile is a small YAML file shipped with the package (scenarios/profiles/ in the repository, selectable by
name: validator.packaged) or any path. Preflight
reads it to judge scheduling and API removals; the cluster layer turns it into a kind config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from validator.apiserver import ApiServer, api_server_from_profile
from validator.errors import InputError
from validator.failfast import Thresholds
from validator.manifests import DNS_LABEL, load_config_document
from validator.packaged import profiles_dir
from validator.quantity import cpu_millis, memory_bytes

CNIS = ("kindnet", "calico")
APPLY_MODES = ("server-side", "client-side")
ROLES = ("control-plane", "worker")


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""


CONTROL_PLANE_TAINT = Taint("node-role.kubernetes.io/control-plane", "NoSchedule")  # kubeadm's, on every control plane


@dataclass(frozen=True)
class NodeSpec:
    """One node as the scheduler will see it."""

    role: str = "control-plane"
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    allocatable_cpu_millis: int = 2000
    allocatable_memory_bytes: int = 7 * 1024**3
    allocatable_pods: int = 110
    # False: the sizes above are an assumption (a GitHub-hosted runner); a kind node really has whatever its
    # Docker host or VM has, so size-based verdicts on an assumption are warnings, not errors
    allocatable_declared: bool = False


@dataclass(frozen=True)
class Profile:
    name: str
    kubernetes_version: str = "1.35"  # major.minor; the cluster layer maps it to a digest-pinned node image
    nodes: tuple[NodeSpec, ...] = (NodeSpec(),)
    cni: str = "kindnet"
    apply_mode: str = "server-side"
    namespace: str = "argocd"
    fail_fast: Thresholds = field(default_factory=Thresholds)  # `failFast:` grace periods for slow environments
    # kube-apiserver --runtime-config and cluster-wide feature gates, as production sets them: kind passes both
    # through, so the mirror serves the same alpha/beta APIs (preflight reads runtime_config for the same reason)
    runtime_config: dict[str, str] = field(default_factory=dict)
    feature_gates: dict[str, bool] = field(default_factory=dict)
    # where production's pods reach the API server (the kubernetes Service's endpoints): preflight judges egress
    # policies against it; None means kind's usual addresses (validator.apiserver)
    api_server: ApiServer | None = None

    @property
    def kubernetes_minor(self) -> tuple[int, int]:
        major, minor = self.kubernetes_version.split(".")[:2]
        return int(major), int(minor)

    def schedulable_nodes(self) -> tuple[NodeSpec, ...]:
        """Nodes a pod without tolerations may land on: the node taints are what the kind config yields (kubeadm
        taints every control plane and kind removes that taint only from a one-node cluster, see _node)."""
        return tuple(n for n in self.nodes if not any(t.effect in ("NoSchedule", "NoExecute") for t in n.taints))


TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_SCALAR = (str, int, float, bool)


def _taint(raw: Any) -> Taint:
    if not isinstance(raw, dict) or not isinstance(raw.get("key"), str) or raw.get("effect") not in TAINT_EFFECTS \
            or not isinstance(raw.get("value", ""), _SCALAR):
        raise ValueError(f"a taint needs a string key and an effect of {', '.join(TAINT_EFFECTS)}, not {raw!r:.80}")
    return Taint(raw["key"], raw["effect"], str(raw.get("value", "")))


def _labels(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, _SCALAR) for k, v in raw.items()):
        raise ValueError(f"labels must map names to plain values, not {raw!r:.80}")
    return {k: str(v) for k, v in raw.items()}


# apimachinery validation.IsQualifiedName / IsValidLabelValue: the kubelet refuses other --node-labels, the API
# server other label keys and taint keys
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def is_qualified_name(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if "/" in key and not (len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and bool(_LABEL_NAME.fullmatch(name))


def is_label_value(value: str) -> bool:
    return value == "" or (len(value) <= 63 and bool(_LABEL_NAME.fullmatch(value)))


# k8s.io/kubelet/pkg/apis/well_known_labels.go (IsKubeletLabel) as cmd/kubelet/app/options ValidateKubeletFlags
# applies it: a --node-labels key in the kubernetes.io or k8s.io namespaces (or a subdomain of them) must be one
# of these or be under [*.]kubelet.kubernetes.io / [*.]node.kubernetes.io, or the kubelet exits ("unknown
# 'kubernetes.io' or 'k8s.io' labels specified with --node-labels") and the node never joins.
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
})
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
# kubeadm labels every control plane so; kind removes it again from a one-node cluster (kubeadminit)
EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"


def _in_namespace(namespace: str, domains: tuple[str, ...]) -> bool:
    return any(namespace == d or namespace.endswith(f".{d}") for d in domains)


def kubelet_may_set(key: str) -> bool:
    """Whether the kubelet accepts this label in --node-labels, which is where kind puts a node's `labels`."""
    namespace = key.split("/", 1)[0] if "/" in key else ""
    if key in KUBELET_LABELS or not _in_namespace(namespace, ("kubernetes.io", "k8s.io")):
        return True
    return _in_namespace(namespace, KUBELET_LABEL_NAMESPACES)


def _checked_labels(labels: dict[str, str], index: int) -> dict[str, str]:
    for key, value in labels.items():
        if not is_qualified_name(key):
            raise InputError(f"node {index}: label key {key!r:.80} is not a valid label name ([prefix/]name, e.g. "
                             "pool or example.com/pool)")
        if not is_label_value(value):
            raise InputError(f"node {index}: label {key}={value!r:.80} has an invalid value (at most 63 letters, "
                             "digits, '-', '_' or '.', starting and ending with a letter or digit)")
    return labels


def _allocatable(raw: dict[str, Any], key: str, default: str, parse: Any) -> int:
    value = parse(raw.get(key, default))
    if value < 0:
        raise ValueError(f"allocatable {key} must not be negative, not {raw.get(key)!r}")
    return int(value)


def _pods(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ValueError(f"allocatable pods must be a whole number >= 0, not {raw!r:.80}")
    return raw


def _node(raw: Any, index: int, lone: bool) -> NodeSpec:
    """One node; `lone`: the profile has no other node (a control plane, since one is required)."""
    if not isinstance(raw, dict):
        raise InputError(f"node {index} must be a mapping")
    role = raw.get("role", "control-plane")
    if role not in ROLES:
        raise InputError(f"node {index}: role must be one of {', '.join(ROLES)}")
    taints = tuple(_taint(t) for t in raw.get("taints") or [])
    for taint in taints:
        if not is_qualified_name(taint.key) or not is_label_value(taint.value):
            raise InputError(f"node {index}: taint {taint.key}={taint.value}:{taint.effect} has an invalid key or "
                             "value (the same rules as a label's)")
    if role == "control-plane" and not lone and "taints" not in raw:
        # kubeadm taints every control plane; kind removes that taint only when the cluster has a single node
        # (kubeadminit: `if len(allNodes) == 1`), so three control planes and no worker keep it on all three
        taints = (CONTROL_PLANE_TAINT,)
    if lone and any(t.key == CONTROL_PLANE_TAINT.key for t in taints):
        raise InputError(f"node {index}: kind removes every {CONTROL_PLANE_TAINT.key} taint from a one-node cluster "
                         f"(`kubectl taint nodes --all {CONTROL_PLANE_TAINT.key}-`), so the mirror cannot keep it; "
                         "add a worker (the control plane then keeps it) or leave it out")
    labels = _checked_labels(_labels(raw.get("labels") or {}), index)
    if lone and EXCLUDE_FROM_LB_LABEL in labels:
        raise InputError(f"node {index}: kind removes the {EXCLUDE_FROM_LB_LABEL} label from a one-node cluster "
                         "(`kubectl label nodes --all ...-`), so the mirror cannot keep it; add a worker or leave "
                         "it out")
    alloc = raw.get("allocatable") or {}
    return NodeSpec(
        role=role,
        labels=labels,
        taints=taints,
        allocatable_cpu_millis=_allocatable(alloc, "cpu", "2", cpu_millis),
        allocatable_memory_bytes=_allocatable(alloc, "memory", "7Gi", memory_bytes),
        allocatable_pods=_pods(alloc.get("pods", 110)),
        allocatable_declared=bool(alloc.get("cpu") is not None and alloc.get("memory") is not None),
    )


# --runtime-config keys: api/{all,ga,beta,alpha}, or group/version[/resource] with the resource lowercase plural
# ("/v1" is the core group). kube-apiserver refuses to start on other shapes and on groups it does not have.
RUNTIME_CONFIG_STAGES = ("api/all", "api/ga", "api/beta", "api/alpha")
_GROUP_VERSION_KEY = re.compile(r"([a-z0-9]([a-z0-9.-]*[a-z0-9])?)?/v\d+((alpha|beta)\d+)?(/[a-z0-9-]+)?")


def _valid_runtime_key(key: Any) -> bool:
    if key in RUNTIME_CONFIG_STAGES:
        return True
    # "api/v1" reads as group "api", which kube-apiserver does not have: the core group is "/v1"
    return isinstance(key, str) and bool(_GROUP_VERSION_KEY.fullmatch(key)) and not key.startswith("api/")


def _runtime_config(raw: Any, name: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise InputError(f"profile {name}: runtimeConfig must be a mapping of group/version to true or false")
    result = {}
    for key, value in raw.items():
        if not _valid_runtime_key(key):
            raise InputError(f"profile {name}: runtimeConfig key {key!r} is not api/all|ga|beta|alpha or "
                             "group/version[/resource] (e.g. resource.k8s.io/v1beta1, /v1 for the core group)")
        text = str(value).lower() if isinstance(value, (bool, str)) else ""
        if text not in ("true", "false"):
            raise InputError(f"profile {name}: runtimeConfig {key} must be true or false, not {value!r}")
        result[key] = text
    return result


def _feature_gates(raw: Any, name: str) -> dict[str, bool]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) and re.fullmatch(r"[A-Z][A-Za-z0-9]*", k)
                                            and isinstance(v, bool) for k, v in raw.items()):
        raise InputError(f"profile {name}: featureGates must map gate names (e.g. MutatingAdmissionPolicy) "
                         "to true or false")
    return dict(raw)


def profile_from_dict(raw: Any, name: str) -> Profile:
    if not isinstance(raw, dict):
        raise InputError(f"profile {name}: must be a YAML mapping")
    known = {"name", "kubernetesVersion", "nodes", "cni", "applyMode", "namespace", "description", "failFast",
             "runtimeConfig", "featureGates", "apiServer"}
    unknown = sorted(str(key) for key in set(raw) - known)  # YAML keys may be ints or null
    if unknown:
        raise InputError(f"profile {name}: unknown field(s) {', '.join(unknown)}")
    version = str(raw.get("kubernetesVersion", "1.35"))
    if not re.fullmatch(r"1\.[1-9][0-9]", version):
        raise InputError(f"profile {name}: kubernetesVersion must look like 1.35, not {version!r}")
    for key, valid in (("name", lambda v: isinstance(v, str) and v.strip()),
                       ("namespace", lambda v: isinstance(v, str) and DNS_LABEL.fullmatch(v))):
        if key in raw and not valid(raw[key]):
            raise InputError(f"profile {name}: {key} must be a {'DNS label' if key == 'namespace' else 'string'}, "
                             f"not {raw[key]!r:.80}")
    nodes_raw = raw.get("nodes") or [{"role": "control-plane"}]
    if not isinstance(nodes_raw, list):
        raise InputError(f"profile {name}: nodes must be a list")
    try:
        nodes = tuple(_node(n, i, len(nodes_raw) == 1) for i, n in enumerate(nodes_raw))
    except InputError as exc:
        raise InputError(f"profile {name}: {exc}") from None
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"profile {name}: malformed node ({exc})") from None
    if not any(n.role == "control-plane" for n in nodes):
        raise InputError(f"profile {name}: needs at least one control-plane node")
    cni = raw.get("cni", "kindnet")
    if cni not in CNIS:
        raise InputError(f"profile {name}: cni must be one of {', '.join(CNIS)}")
    mode = raw.get("applyMode", "server-side")
    if mode not in APPLY_MODES:
        raise InputError(f"profile {name}: applyMode must be one of {', '.join(APPLY_MODES)}")
    fail_fast = Thresholds.from_mapping(raw.get("failFast") or {}, f"profile {name}: failFast")
    return Profile(name=str(raw.get("name", name)), kubernetes_version=version, nodes=nodes, cni=cni,
                   apply_mode=mode, namespace=str(raw.get("namespace", "argocd")), fail_fast=fail_fast,
                   runtime_config=_runtime_config(raw.get("runtimeConfig") or {}, name),
                   feature_gates=_feature_gates(raw.get("featureGates") or {}, name),
                   api_server=api_server_from_profile(raw["apiServer"], name) if "apiServer" in raw else None)


def default_profile_name(variant: str) -> str:
    """The profile a run uses when none is named: HA manifests need the ha profile's three workers, in preflight
    and on the cluster alike; every other variant fits the default one."""
    return "ha" if variant == "ha" else "default"


def available_profiles() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def load_profile(name_or_path: str = "default") -> Profile:
    """A profile by name (a shipped one: scenarios/profiles/NAME.yaml in the repository) or by path.

    A bare name (no suffix, no directory) is a shipped profile when there is one, whatever the working directory
    holds: an `ha/` overlay directory where the command runs must not shadow the ha profile (./ha is that path).
    """
    path = Path(name_or_path)
    if name_or_path and not path.suffix and path.name == name_or_path:
        shipped = profiles_dir() / f"{name_or_path}.yaml"
        if shipped.is_file() or not path.exists():
            path = shipped
    if not path.exists() or path.is_dir():  # a pipe is fine: `--profile <(render-profile prod)`
        raise InputError(f"unknown profile {name_or_path!r}: choose one of {', '.join(available_profiles())} or a path")
    return profile_from_dict(load_config_document(path, "profile"), path.stem)
