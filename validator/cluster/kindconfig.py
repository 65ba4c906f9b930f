"""A kind.x-k8s.io/v1alpha4 Cluster config from a Profile, checked against kind's own field list.

kind decodes its config strictly ("unable to decode config" on any unknown field), so we validate the
generated document against the v1alpha4 fields (pkg/apis/config/v1alpha4/types.go) before handing it
over: a typo fails here with a precise path instead of deep inside `kind create cluster`.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml

from validator.profiles import Profile, Taint

API_VERSION = "kind.x-k8s.io/v1alpha4"
CALICO_POD_SUBNET = "192.168.0.0/16"  # Calico's default IP pool (tigera docs, kind.mdx)
_DEFAULT_CP_TAINT = (Taint("node-role.kubernetes.io/control-plane", "NoSchedule"),)

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


def kind_config(profile: Profile, name: str) -> dict[str, Any]:
    """The kind config for a profile (the node image is passed with --image, which overrides every node)."""
    has_workers = any(n.role == "worker" for n in profile.nodes)
    nodes: list[dict[str, Any]] = []
    for spec in profile.nodes:
        node: dict[str, Any] = {"role": spec.role}
        if spec.labels:
            node["labels"] = dict(spec.labels)
        default_taints = _DEFAULT_CP_TAINT if (spec.role == "control-plane" and has_workers) else ()
        if spec.taints != default_taints:  # `taints: []` too: kubeadm taints a control plane unless told "none"
            node["kubeadmConfigPatches"] = _taint_patches(spec.taints)
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
