"""Argo CD scenario pieces for the double: the bundles and pod behaviours the acceptance tests replay."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from validator.manifests import Bundle, KubeObject, load_bundle, read_bounded

from . import ApiDouble

REDIS_TIMEOUT_LOG = (
    'time="2024-05-20T10:00:30Z" level=fatal msg="failed to create secret argocd-redis: Post '
    '\\"https://10.96.0.1:443/api/v1/namespaces/argocd/secrets\\": dial tcp 10.96.0.1:443: i/o timeout"\n'
)

# The egress rule v2.11.1 shipped in argocd-redis-network-policy (argoproj/argo-cd#18356; removed by #18367).
V2_11_1_REDIS_EGRESS = {"egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}],
                        "policyTypes": ["Ingress", "Egress"]}


def redis_secret(namespace: str = "argocd") -> dict[str, Any]:
    """What redis' secret-init writes on success (argocd admin redis-initial-password)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "argocd-redis", "namespace": namespace},
            "type": "Opaque", "data": {"auth": "cGFzc3dvcmQ="}}


def bundle_from(path: Any, namespace: str = "argocd") -> Bundle:
    return load_bundle(read_bounded(Path(path)), source=str(path), namespace=namespace)


def as_v2_11_1(bundle: Bundle) -> Bundle:
    """A v2.11.2 bundle with the v2.11.1 redis NetworkPolicy (egress to DNS only) put back."""
    objects = []
    for obj in bundle:
        body = copy.deepcopy(obj.body)
        if obj.kind == "NetworkPolicy" and obj.name == "argocd-redis-network-policy":
            body["spec"].update(copy.deepcopy(V2_11_1_REDIS_EGRESS))
        objects.append(KubeObject(body, obj.source, obj.document, obj.line, obj.namespace))
    return Bundle(objects, namespace=bundle.namespace)


def healthy_redis(double: ApiDouble, namespace: str = "argocd") -> None:
    """secret-init succeeds and creates the Secret the other components wait for (v2.11.2 on a good cluster)."""
    double.pods("argocd-redis").creates("secret-init", redis_secret(namespace))


def broken_redis(double: ApiDouble, every: float = 0.15) -> None:
    """v2.11.1 on an enforcing CNI: secret-init cannot reach the API server and crash-loops."""
    double.pods("argocd-redis").crashloop("secret-init", log=REDIS_TIMEOUT_LOG, every=every)
