"""Selector semantics shared by the checks: label selectors, node selector terms, taints, pod templates.

One place for Kubernetes' matching rules so NetworkPolicy, anti-affinity and scheduling checks agree
(a selector that means "everything" in one check must not mean "nothing" in another).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from validator.manifests import Bundle, KubeObject, mapping_at, pod_metadata, pod_spec


class Lookup:
    """Objects by (kind, namespace, name) and by kind, built once per check: Bundle.get scans the whole
    bundle, and a check that looks something up for every pod would be quadratic in the manifest size."""

    def __init__(self, bundle: Bundle) -> None:
        self._objects = {(o.kind, o.namespace, o.name): o for o in bundle}
        self._kinds: dict[str, list[KubeObject]] = {}
        for obj in bundle:
            self._kinds.setdefault(obj.kind, []).append(obj)

    def get(self, kind: str, name: str, namespace: str = "") -> KubeObject | None:
        """namespace '' for cluster-scoped kinds."""
        return self._objects.get((kind, namespace, name))

    def of_kind(self, *kinds: str) -> list[KubeObject]:
        return [obj for kind in kinds for obj in self._kinds.get(kind, ())]


def _requirement(labels: Mapping[str, str], key: str, operator: str, values: list[Any]) -> bool:
    """One matchExpressions requirement (label selector or node selector: In/NotIn/Exists/DoesNotExist/Gt/Lt)."""
    present = key in labels
    value = labels.get(key)
    texts = [str(v) for v in values] if isinstance(values, list) else []
    if operator == "In":
        return present and value in texts
    if operator == "NotIn":
        return not present or value not in texts
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(texts) == 1:
        try:
            left, right = int(str(value)), int(texts[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False  # unknown operator: the API server would reject it; never match


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: empty selects everything; matchLabels AND matchExpressions."""
    if selector is None:
        return True
    if not isinstance(selector, Mapping):
        return False  # malformed (the schema check reports it): select nothing rather than guess
    for key, expected in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(expected):
            return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, Mapping) or not _requirement(
                labels, str(expr.get("key", "")), str(expr.get("operator", "")), expr.get("values") or []):
            return False
    return True


def node_term_matches(term: Mapping[str, Any], labels: Mapping[str, str], name: str) -> bool:
    """One nodeSelectorTerm: all matchExpressions (labels) and matchFields (metadata.name) must hold; an empty
    term matches no node (core/v1 NodeSelectorTerm)."""
    if not term.get("matchExpressions") and not term.get("matchFields"):
        return False
    for expr in term.get("matchExpressions") or []:
        if not _requirement(labels, str(expr.get("key", "")), str(expr.get("operator", "")), expr.get("values") or []):
            return False
    for expr in term.get("matchFields") or []:
        if not _requirement({"metadata.name": name}, str(expr.get("key", "")), str(expr.get("operator", "")),
                            expr.get("values") or []):
            return False
    return True


def tolerates(tolerations: Sequence[Mapping[str, Any]], key: str, value: str, effect: str) -> bool:
    """Whether any toleration matches a taint (v1.Toleration.ToleratesTaint)."""
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != effect:
            continue
        operator = tol.get("operator") or "Equal"
        if operator == "Exists" and (not tol.get("key") or tol.get("key") == key):
            return True
        if operator == "Equal" and tol.get("key") == key and str(tol.get("value") or "") == value:
            return True
    return False


@dataclass(frozen=True)
class PodTemplate:
    """The pods a workload will create: where, with which labels and spec, how many."""

    owner: KubeObject
    labels: dict[str, str]
    spec: dict[str, Any]

    @property
    def namespace(self) -> str:
        return self.owner.namespace

    @property
    def replicas(self) -> int:
        """Desired pod count (DaemonSets are counted per node by the caller)."""
        spec = mapping_at(self.owner.body, "spec")
        if self.owner.kind in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"):
            value = spec.get("replicas", 1)
        elif self.owner.kind == "Job":
            value = spec.get("parallelism", 1)
        else:
            value = 1
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 1

    @property
    def label(self) -> str:
        return f"{self.owner.kind} {self.owner.name}"


def pod_templates(bundle: Bundle) -> Iterator[PodTemplate]:
    """Every pod template in the bundle (workloads and bare pods)."""
    for obj in bundle:
        spec = pod_spec(obj)
        if spec is None:
            continue
        labels = {str(k): str(v) for k, v in mapping_at(pod_metadata(obj), "labels").items()}
        if obj.kind == "Job":  # the Job controller labels its pods with its name too: policies select by it
            labels = {"batch.kubernetes.io/job-name": obj.name, "job-name": obj.name, **labels}
        yield PodTemplate(obj, labels, spec)
