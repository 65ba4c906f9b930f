"""A kind.x-k8s.io/v1alpha4 Cluster config from a Profile, checked against kind's own field list.

kind decodes its config strictly ("unable to decode config" on any unknown field), so we validate the
generated document against the v1alpha4 fields (pkg/apis/config/v1alpha4/types.go) before handing it
over: a typo fails here with a precise path instead of deep inside `kind create cluster`.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml

from validator.profiles import CONTROL_PLANE_TAINT, NodeSpec, Profile, Taint, kubelet_may_set

API_VERSION = "kind.x-k8s.io/v1alpha4"
CALICO_POD_SUBNET = "192.168.0.0/16"  # Calico's default IP pool (tigera docs, kind.mdx)

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_STR_LIST = {"type": "array", "items": {"type": "string"}}
_PATCH_6902 = {
    "type": "object", "additionalProperties": False, "required": ["kind", "patch"],
    "properties": {k: {"type": "string"} for k in ("group", "version", "kind", "patch")},
}
_MOUNT = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "containerPath": {"type": "string"}, "hostPath": {"type": "string"}, "readOnly": {"type": "boolean"},
        "selinuxRelabel": {"type": "boolean"},
        "propagation": {"enum": ["None", "HostToContainer", "Bidirectional"]},
    },
}
_PORT = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "containerPort": {"type": "integer"}, "hostPort": {"type": "integer"},
        "listenAddress": {"type": "string"}, "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
    },
}
_NODE = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "role": {"enum": ["control-plane", "worker"]}, "image": {"type": "string"}, "labels": _STR_MAP,
        "extraMounts": {"type": "array", "items": _MOUNT}, "extraPortMappings": {"type": "array", "items": _PORT},
        "gpus": {"type": "string"}, "kubeadmConfigPatches": _STR_LIST,
        "kubeadmConfigPatchesJSON6902": {"type": "array", "items": _PATCH_6902},
    },
}
_NETWORKING = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "ipFamily": {"enum": ["ipv4", "ipv6", "dual"]}, "apiServerPort": {"type": "integer"},
        "apiServerAddress": {"type": "string"}, "podSubnet": {"type": "string"},
        "serviceSubnet": {"type": "string"}, "disableDefaultCNI": {"type": "boolean"},
        "kubeProxyMode": {"enum": ["iptables", "ipvs", "nftables", "none"]}, "dnsSearch": _STR_LIST,
    },
}
# The v1alpha4 field list as JSON Schema: additionalProperties false everywhere mirrors kind's strict decoding.
V1ALPHA4_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["apiVersion", "kind"],
    "properties": {
        "apiVersion": {"const": API_VERSION}, "kind": {"const": "Cluster"}, "name": {"type": "string"},
        "nodes": {"type": "array", "items": _NODE, "minItems": 1}, "networking": _NETWORKING,
        "featureGates": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "runtimeConfig": _STR_MAP, "kubeadmConfigPatches": _STR_LIST,
        "kubeadmConfigPatchesJSON6902": {"type": "array", "items": _PATCH_6902},
        "containerdConfigPatches": _STR_LIST, "containerdConfigPatchesJSON6902": _STR_LIST,
    },
}


def _taint_patches(taints: tuple[Taint, ...]) -> list[str]:
    """kubeadm sets node taints at registration; kind has no taint field, so patch the kubeadm config. An empty
    list is written as `taints: []`, which kubeadm reads as "no taints" (unset would be its control-plane taint).

    Every node's generated config carries both an InitConfiguration and a JoinConfiguration (kind keeps the
    latter "solely so it can be patched"): the first control-plane node inits, every other node, extra
    control planes included, joins. Patching both reaches each node whatever its turn.
    """
    registration = {"taints": [{"key": t.key, "effect": t.effect, **({"value": t.value} if t.value else {})}
                               for t in taints]}
    return [yaml.safe_dump({"kind": kind, "nodeRegistration": registration}, sort_keys=False)
            for kind in ("InitConfiguration", "JoinConfiguration")]


def registration_taints(spec: NodeSpec, lone: bool) -> tuple[Taint, ...] | None:
    """The kubeadm nodeRegistration.taints that leave the node with exactly spec.taints once kind is done; None
    when kubeadm's default already does (unset: the control-plane taint on a control plane, none on a worker).

    On a one-node cluster kind then runs `kubectl taint nodes --all node-role.kubernetes.io/control-plane-`
    (kubeadminit), which fails ("taint ... not found", and `kind create` with it) when kubeadm did not put that
    taint there: so a lone control plane with taints of its own is registered with them *and* the control-plane
    taint, which kind's step then removes. (The profile loader refuses a lone node tainted with that key itself.)
    """
    if lone:
        return (*spec.taints, CONTROL_PLANE_TAINT) if spec.taints else None
    default = (CONTROL_PLANE_TAINT,) if spec.role == "control-plane" else ()
    return None if spec.taints == default else spec.taints  # `taints: []` too: kubeadm's default is not "none"


def node_names(profile: Profile, name: str) -> list[str]:
    """The Node names kind gives the profile's nodes, in order (providers/common MakeNodeNamer: <cluster>-<role>,
    then <cluster>-<role>2, 3, ... per role)."""
    seen: dict[str, int] = {}
    names = []
    for spec in profile.nodes:
        seen[spec.role] = seen.get(spec.role, 0) + 1
        names.append(f"{name}-{spec.role}{seen[spec.role] if seen[spec.role] > 1 else ''}")
    return names


def api_labels(profile: Profile, name: str) -> dict[str, dict[str, str]]:
    """Labels the kubelet refuses in --node-labels (e.g. node-role.kubernetes.io/infra), per Node name: kind would
    pass them there and the node would never join, so they stay out of the kind config and are set through the
    API once the nodes are Ready, before anything of the candidate runs."""
    labels = {node: {k: v for k, v in spec.labels.items() if not kubelet_may_set(k)}
              for node, spec in zip(node_names(profile, name), profile.nodes, strict=True)}
    return {node: values for node, values in labels.items() if values}


def kind_config(profile: Profile, name: str) -> dict[str, Any]:
    """The kind config for a profile (the node image is passed with --image, which overrides every node)."""
    lone = len(profile.nodes) == 1
    nodes: list[dict[str, Any]] = []
    for spec in profile.nodes:
        node: dict[str, Any] = {"role": spec.role}
        kubelet_labels = {k: v for k, v in spec.labels.items() if kubelet_may_set(k)}  # the rest: api_labels()
        if kubelet_labels:
            node["labels"] = kubelet_labels
        taints = registration_taints(spec, lone)
        if taints is not None:
            node["kubeadmConfigPatches"] = _taint_patches(taints)
        nodes.append(node)
    config: dict[str, Any] = {"kind": "Cluster", "apiVersion": API_VERSION, "name": name, "nodes": nodes}
    if profile.cni == "calico":
        config["networking"] = {"disableDefaultCNI": True, "podSubnet": CALICO_POD_SUBNET}
    if profile.runtime_config:  # kind hands these to kube-apiserver as --runtime-config
        config["runtimeConfig"] = dict(profile.runtime_config)
    if profile.feature_gates:  # and these to every component as --feature-gates
        config["featureGates"] = dict(profile.feature_gates)
    validate_kind_config(config)
    return config


def validate_kind_config(config: Any) -> None:
    """Raise ValueError naming the offending path if kind's strict decoder would reject the config."""
    errors = sorted(jsonschema.Draft202012Validator(V1ALPHA4_SCHEMA).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "<root>"
        raise ValueError(f"invalid kind config at {where}: {first.message}")


def render(config: dict[str, Any]) -> bytes:
    return yaml.safe_dump(config, sort_keys=False).encode()
