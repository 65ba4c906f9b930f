"""The double's object store: resource types, objects with resourceVersions, and a bounded event log.

One lock guards everything; watchers wait on a condition and read the event log from their
resourceVersion, so a watch is a cursor into one shared history, as with the apiserver's watch cache.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

ANNOTATION_LIMIT = 262144  # apimachinery TotalAnnotationSizeLimitB


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """'deployments.apps' as the apiserver names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_qualified(self) -> str:
        """'Deployment.apps' as the apiserver names the kind in 'is invalid' messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


BUILTIN_TYPES = [
    ResourceType("", "v1", "Namespace", "namespaces", False),
    ResourceType("", "v1", "ConfigMap", "configmaps", True),
    ResourceType("", "v1", "Secret", "secrets", True),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True),
    ResourceType("", "v1", "Service", "services", True),
    ResourceType("", "v1", "Pod", "pods", True),
    ResourceType("", "v1", "Event", "events", True),
    ResourceType("", "v1", "Endpoints", "endpoints", True),
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    ResourceType("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
    ResourceType("", "v1", "Node", "nodes", False),
    ResourceType("apps", "v1", "Deployment", "deployments", True),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", True),
    ResourceType("batch", "v1", "Job", "jobs", True),
    ResourceType("batch", "v1", "CronJob", "cronjobs", True),
    ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True),
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    ResourceType("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False),
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True),
    ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True),
    ResourceType("storage.k8s.io", "v1", "StorageClass", "storageclasses", False),
]


class ApiError(Exception):
    """An error the double answers with a Kubernetes Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}
        self.retry_after_s = retry_after_s  # sent as the Retry-After header and details.retryAfterSeconds
        if retry_after_s is not None:
            self.details = {**self.details, "retryAfterSeconds": retry_after_s}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def invalid(rt: ResourceType, name: str, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid as apimachinery's errors.NewInvalid builds it: one StatusCause (reason, message, field) per field
    error, and a message aggregating them ('<Kind.group> "<name>" is invalid: [f1: m1, f2: m2]'; no brackets for
    one)."""
    each = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    summary = each[0] if len(each) == 1 else f"[{', '.join(each)}]"
    return ApiError(422, "Invalid", f'{rt.kind_qualified} "{name}" is invalid: {summary}',
                    {"name": name, "group": rt.group, "kind": rt.kind, "causes": [dict(c) for c in causes]})


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found',
                    {"name": name, "group": rt.group, "kind": rt.plural})


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _spec_part(obj: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in obj.items() if k not in ("metadata", "status")}, sort_keys=True)


def _without_rv(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}


def match_labels(labels: dict[str, str], selector: str | None) -> bool:
    """Equality-based label selectors: 'a=b,c!=d,e,!f' (what list/watch callers use)."""
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def match_fields(obj: dict[str, Any], selector: str | None) -> bool:
    """Field selectors 'metadata.name=x,involvedObject.kind=Pod' (equality and !=)."""
    if not selector:
        return True
    for term in selector.split(","):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if _field(obj, key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if _field(obj, key.strip()) != value.strip():
                return False
    return True


@dataclass
class WatchEvent:
    rv: int
    type: str
    rt: ResourceType
    obj: dict[str, Any]


class Store:
    """Objects by (type, namespace, name), a global resourceVersion, and the event history watches read."""

    def __init__(self, history: int = 100_000) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.types: dict[tuple[str, str], ResourceType] = {}  # (group, plural) -> type
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}  # (group, plural, ns, name)
        self.events: list[WatchEvent] = []
        self.rv = 100
        self.compacted_rv = 0  # watches from a resourceVersion below this get 410 Gone
        self.history = history
        self.listeners: list[Callable[[str, ResourceType, dict[str, Any]], None]] = []
        self.rejections: dict[tuple[str, str, str], list[dict[str, str]]] = {}  # (kind, ns, name) -> 422 causes
        for rt in BUILTIN_TYPES:
            self.register(rt)

    # -- types -------------------------------------------------------------------------------------
    def register(self, rt: ResourceType) -> None:
        with self.lock:
            self.types[(rt.group, rt.plural)] = rt

    def unregister(self, group: str, plural: str) -> None:
        with self.lock:
            self.types.pop((group, plural), None)

    def type_for(self, group: str, plural: str) -> ResourceType | None:
        return self.types.get((group, plural))

    def type_of_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group = api_version.rpartition("/")[0]
        for rt in self.types.values():
            if rt.group == group and rt.kind == kind:
                return rt
        return None

    # -- reads -------------------------------------------------------------------------------------
    def get(self, rt: ResourceType, ns: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.get((rt.group, rt.plural, ns if rt.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, rt: ResourceType, ns: str | None, labels: str | None = None,
             fields: str | None = None) -> tuple[list[dict[str, Any]], int]:
        with self.lock:
            items = [copy.deepcopy(o) for (g, p, n, _), o in self.objects.items()
                     if (g, p) == (rt.group, rt.plural) and (not ns or n == ns)
                     and match_labels((o["metadata"].get("labels") or {}), labels) and match_fields(o, fields)]
            return items, self.rv

    def all_of(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [o for o in self.objects.values() if o.get("kind") == kind]

    # -- writes ------------------------------------------------------------------------------------
    def _emit(self, etype: str, rt: ResourceType, obj: dict[str, Any]) -> None:
        self.events.append(WatchEvent(self.rv, etype, rt, copy.deepcopy(obj)))
        if len(self.events) > self.history:
            drop = len(self.events) - self.history
            self.compacted_rv = self.events[drop - 1].rv
            del self.events[:drop]
        self.changed.notify_all()
        for listener in list(self.listeners):
            listener(etype, rt, obj)

    def validate(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """The checks every write of OBJ passes (scripted rejections first), as validation in the apiserver."""
        name = obj["metadata"]["name"]
        scripted = self.rejections.get((rt.kind, obj["metadata"].get("namespace", "") if rt.namespaced else "", name))
        if scripted:
            raise invalid(rt, name, scripted)
        annotations = obj["metadata"].get("annotations") or {}
        size = sum(len(k) + len(str(v)) for k, v in annotations.items())
        if size > ANNOTATION_LIMIT:
            raise invalid(rt, name, [{"reason": "FieldValueTooLong", "field": "metadata.annotations",
                                      "message": f"Too long: may not be more than {ANNOTATION_LIMIT} bytes"}])
        if rt.kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"):
            spec = obj.get("spec") or {}
            selector = (spec.get("selector") or {}).get("matchLabels")
            if not spec.get("selector"):
                raise invalid(rt, name, [{"reason": "FieldValueRequired", "field": "spec.selector",
                                          "message": "Required value"}])
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if selector and any(labels.get(k) != v for k, v in selector.items()):
                raise invalid(rt, name, [{"reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
                                          "message": f"Invalid value: {json.dumps(labels)}: `selector` does not "
                                                     "match template `labels`"}])

    def create(self, rt: ResourceType, obj: dict[str, Any], ns: str = "", dry_run: bool = False) -> dict[str, Any]:
        """Store a new object; dry_run: every check, the answer a create would get, nothing stored (no
        resourceVersion, no event), as the apiserver does for dryRun=All."""
        with self.lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            name = meta.get("name")
            if not name:
                raise ApiError(422, "Invalid", f"{rt.kind} in version \"{rt.version}\" cannot be handled: "
                               "name or generateName is required")
            ns = (ns or meta.get("namespace") or "default") if rt.namespaced else ""
            if rt.namespaced:
                meta["namespace"] = ns
                nsr = self.types[("", "namespaces")]
                if rt.kind != "Event" and (nsr.group, nsr.plural, "", ns) not in self.objects:
                    raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                                   {"name": ns, "kind": "namespaces"})
            key = (rt.group, rt.plural, ns, name)
            if key in self.objects:
                raise ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists',
                               {"name": name, "group": rt.group, "kind": rt.plural})
            self.validate(rt, obj)
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=now_rfc3339())
            if dry_run:
                return copy.deepcopy(obj)
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            self.objects[key] = obj
            self._emit("ADDED", rt, obj)
            return copy.deepcopy(obj)

    def replace(self, rt: ResourceType, obj: dict[str, Any], status_only: bool = False,
                keep_status: bool = True, dry_run: bool = False) -> dict[str, Any]:
        """Write a new version (spec changes bump generation); status_only touches only .status; dry_run: the
        would-be object (old resourceVersion), nothing stored."""
        with self.lock:
            meta = obj["metadata"]
            ns = meta.get("namespace", "") if rt.namespaced else ""
            key = (rt.group, rt.plural, ns, meta["name"])
            old = self.objects.get(key)
            if old is None:
                raise not_found(rt, meta["name"])
            if status_only:
                new = copy.deepcopy(old)
                new["status"] = copy.deepcopy(obj.get("status"))
            else:
                new = copy.deepcopy(obj)
                self.validate(rt, new)
                new["apiVersion"], new["kind"] = rt.api_version, rt.kind
                for field in ("uid", "creationTimestamp", "generation", "namespace"):
                    if field in old["metadata"]:
                        new["metadata"][field] = old["metadata"][field]
                if keep_status and "status" in old:
                    new["status"] = old["status"]
                if _spec_part(new) != _spec_part(old):
                    new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
            if _without_rv(new) == _without_rv(old):
                return copy.deepcopy(old)  # no-op writes do not bump resourceVersion, as in the apiserver
            if dry_run:
                new["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
                return copy.deepcopy(new)
            self.rv += 1
            new["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[key] = new
            self._emit("MODIFIED", rt, new)
            return copy.deepcopy(new)

    def delete(self, rt: ResourceType, ns: str, name: str) -> dict[str, Any]:
        with self.lock:
            key = (rt.group, rt.plural, ns if rt.namespaced else "", name)
            obj = self.objects.pop(key, None)
            if obj is None:
                raise not_found(rt, name)
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._emit("DELETED", rt, obj)
            uid = obj["metadata"].get("uid")
            owned = [(self.types.get((g, p)), n, nm) for (g, p, n, nm), o in self.objects.items()
                     if any(ref.get("uid") == uid for ref in (o["metadata"].get("ownerReferences") or []))
                     or (rt.kind == "Namespace" and n == name)]
            for child_rt, child_ns, child_name in owned:  # background garbage collection
                if child_rt is not None and (child_rt.group, child_rt.plural, child_ns, child_name) in self.objects:
                    self.delete(child_rt, child_ns, child_name)
            return obj

    def compact(self) -> None:
        """Forget all history: any watch resuming from an older resourceVersion now gets 410 Gone."""
        with self.lock:
            self.compacted_rv = self.rv
            self.events.clear()
            self.changed.notify_all()

    def events_since(self, rv: int) -> Iterator[WatchEvent]:
        """History after rv (caller holds the lock); raises ApiError(410) when rv was compacted away."""
        if rv < self.compacted_rv:
            raise ApiError(410, "Expired", f"too old resource version: {rv} ({self.compacted_rv})")
        lo, hi = 0, len(self.events)
        while lo < hi:  # events are in rv order: binary search the first newer one
            mid = (lo + hi) // 2
            if self.events[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return iter(self.events[lo:])
