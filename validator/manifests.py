"""Bounded, safe loading of Kubernetes manifests into an indexed bundle.

Why not ``yaml.load_all``: PyYAML's composer builds a node graph first and takes most of the time, it
expands nothing but lets alias "bombs" through to whoever walks the result, and its C composer
recurses on deep nesting. Here objects are built straight from libyaml's event stream: one pass
that also counts expanded nodes (so alias bombs are refused), bounds nesting depth, and records the
line of every document for error messages. Scalars are resolved with PyYAML's own YAML 1.1 resolver
(``yes``/``no``/``on``/``off`` are booleans, as in Kubernetes), so objects equal PyYAML's; the one
deliberate difference is that unquoted timestamps stay strings, as Kubernetes' YAML decoder keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from validator import files
from validator.errors import InputError

try:  # the C event parser is what makes this fast; the pure-Python one is a correct fallback
    from yaml._yaml import CParser as _EventParser
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    _EventParser = yaml.SafeLoader  # type: ignore[assignment,misc]


@dataclass(frozen=True)
class Limits:
    """Bounds on what one manifest may cost us: memory and time stay proportional to these."""

    max_bytes: int = 16 * 1024 * 1024
    max_documents: int = 10_000
    max_nodes: int = 2_000_000  # after alias expansion: this is what stops "billion laughs"
    max_depth: int = 128


DEFAULT_LIMITS = Limits()

# Kinds that are cluster-scoped in every Kubernetes version we support. CRDs in the bundle add theirs.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace", "Node", "PersistentVolume", "StorageClass", "CSIDriver", "CSINode", "VolumeAttachment",
        "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "APIService", "PriorityClass",
        "RuntimeClass", "IngressClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding", "CertificateSigningRequest", "FlowSchema",
        "PriorityLevelConfiguration", "ComponentStatus", "PodSecurityPolicy", "IPAddress", "ServiceCIDR",
        "DeviceClass", "ResourceSlice", "StorageVersionMigration", "VolumeAttributesClass",
    }
)

# Argo CD's sync order by kind (gitops-engine sync_tasks.go kindOrder, itself Helm's install order):
# what must exist first (namespaces, policies, accounts, config, CRDs, RBAC) precedes the workloads.
APPLY_ORDER = (
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
    "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList",
    "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
    "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
)
_ORDER_INDEX = {kind: i for i, kind in enumerate(APPLY_ORDER)}


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Identity of an object as the API server sees it: group, kind, namespace ('' if cluster-scoped), name."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"


DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a namespace name (RFC 1123 label)


def group_of(api_version: str) -> str:
    """'apps/v1' -> 'apps'; 'v1' -> '' (the core group)."""
    return api_version.rpartition("/")[0]


@dataclass
class KubeObject:
    """One manifest object with where it came from, so findings can point at the source."""

    body: dict[str, Any]
    source: str = "<manifest>"
    document: int = 0
    line: int = 0
    namespace: str = ""  # effective namespace after defaulting; '' for cluster-scoped

    @property
    def api_version(self) -> str:
        return str(self.body["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def group(self) -> str:
        return group_of(self.api_version)

    @cached_property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.group, self.kind, self.namespace, self.name)

    @property
    def where(self) -> str:
        return f"{self.source} document {self.document} (line {self.line})"


@dataclass
class Bundle:
    """The objects of one candidate, indexed by identity, plus its provenance (set by the resolver)."""

    objects: list[KubeObject]
    namespace: str = "argocd"
    provenance: Any = None  # validator.candidate.Provenance; Any keeps this module free of I/O imports
    index: dict[ObjectRef, KubeObject] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {obj.ref: obj for obj in self.objects}

    def __len__(self) -> int:
        return len(self.objects)

    def __iter__(self) -> Iterator[KubeObject]:
        return iter(self.objects)

    def of_kind(self, *kinds: str) -> list[KubeObject]:
        return [obj for obj in self.objects if obj.kind in kinds]

    def get(self, kind: str, name: str, namespace: str | None = None, group: str | None = None) -> KubeObject | None:
        """Look an object up by kind and name (namespace defaults to the bundle's for namespaced kinds)."""
        for obj in self.objects:
            same = (obj.kind, obj.name) == (kind, name)
            if same and group in (None, obj.group) and namespace in (None, obj.namespace):
                return obj
        return None

    def in_apply_order(self) -> list[KubeObject]:
        """Objects in Argo CD's kind order (stable within a kind); unknown kinds (custom resources) last."""
        return sorted(self.objects, key=lambda o: _ORDER_INDEX.get(o.kind, len(APPLY_ORDER)))

    def kind_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for obj in self.objects:
            counts[obj.kind] = counts.get(obj.kind, 0) + 1
        return dict(sorted(counts.items()))


# --------------------------------------------------------------------------------------------------
# YAML -> Python objects, from events
# --------------------------------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_RESOLVER = yaml.resolver.Resolver()
_IMPLICIT = yaml.resolver.Resolver.yaml_implicit_resolvers
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_MERGE = object()  # marks a '<<' key


def _resolve_plain(value: str) -> str:
    """The tag PyYAML's YAML 1.1 resolver gives a plain scalar (fast path: most start with a letter)."""
    for tag, regexp in _IMPLICIT.get(value[:1] if value else "", ()):
        if regexp.match(value):
            return tag
    return _TAG + "str"


def _scalar(event: yaml.ScalarEvent) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        if not event.implicit[0]:
            return event.value  # quoted or block scalar: a string
        tag = _resolve_plain(event.value)
    if tag == _TAG + "str" or tag == _TAG + "timestamp":
        return event.value
    if tag == _TAG + "merge":
        return _MERGE
    node = yaml.ScalarNode(tag, event.value)
    if tag == _TAG + "int":
        return _CONSTRUCTOR.construct_yaml_int(node)
    if tag == _TAG + "bool":
        return _CONSTRUCTOR.construct_yaml_bool(node)
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "float":
        return _CONSTRUCTOR.construct_yaml_float(node)
    raise _Refused(f"unsupported YAML tag {tag}", event.start_mark)


class _Refused(Exception):
    def __init__(self, reason: str, mark: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = (mark.line + 1) if mark is not None else 0


_PLAIN_CONTAINER_TAGS = {None, "!", _TAG + "map", _TAG + "seq"}
_NO_KEY = object()  # a mapping waiting for its next key
# Event classes bound once: the loop below compares exact types, and module attribute lookups add up.
_SCALAR, _ALIAS = yaml.ScalarEvent, yaml.AliasEvent
_MAPPING_START, _MAPPING_END = yaml.MappingStartEvent, yaml.MappingEndEvent
_SEQUENCE_START, _SEQUENCE_END = yaml.SequenceStartEvent, yaml.SequenceEndEvent
_DOCUMENT_START, _DOCUMENT_END = yaml.DocumentStartEvent, yaml.DocumentEndEvent
_STREAM_START, _STREAM_END = yaml.StreamStartEvent, yaml.StreamEndEvent
# Plain scalars repeat a lot (keys such as `description`, values such as `string`): resolving each
# distinct short one once saves a third of the load. Bounded, so hostile input cannot grow it.
_PLAIN_CACHE_MAX_LEN, _PLAIN_CACHE_MAX_ENTRIES = 64, 4096


def _documents(text: str, limits: Limits) -> Iterator[tuple[Any, int]]:
    """Yield (document, first line) for each YAML document, enforcing the limits while building.

    The hot loop of every load: dispatch is on the exact event type and the open containers live in
    parallel stacks, because attribute lookups and isinstance chains here cost more than libyaml.
    """
    get_event = _EventParser(text).get_event
    plain: dict[str, Any] = {}
    anchors: dict[str, tuple[Any, int]] = {}
    containers: list[Any] = []  # open mappings and sequences, innermost last
    keys: list[Any] = []  # per open container: the mapping key awaiting its value, or _NO_KEY
    frames: list[tuple[str | None, int, list[Any]] | None] = []  # (anchor, nodes at start, merges)
    nodes = doc_line = 0
    max_nodes, max_depth = limits.max_nodes, limits.max_depth
    result: Any = None
    try:
        while True:
            event: Any = get_event()  # typed by the exact-type dispatch below
            kind = type(event)
            if kind is _SCALAR:
                if not doc_line:  # the document's first node, where a reader looks
                    doc_line = event.start_mark.line + 1
                nodes += 1
                if event.tag is None and event.implicit[0]:
                    value = plain.get(event.value, _NO_KEY)
                    if value is _NO_KEY:
                        value = _scalar(event)
                        if len(event.value) <= _PLAIN_CACHE_MAX_LEN and len(plain) < _PLAIN_CACHE_MAX_ENTRIES:
                            plain[event.value] = value
                else:
                    value = _scalar(event)
                if event.anchor:
                    anchors[event.anchor] = (value, 1)
            elif kind is _MAPPING_START or kind is _SEQUENCE_START:
                if not doc_line:
                    doc_line = event.start_mark.line + 1
                if event.tag not in _PLAIN_CONTAINER_TAGS:
                    raise _Refused(f"unsupported YAML tag {event.tag}", event.start_mark)
                if len(containers) >= max_depth:
                    raise _Refused(f"nesting deeper than {max_depth} levels", event.start_mark)
                nodes += 1
                is_mapping = kind is _MAPPING_START
                containers.append({} if is_mapping else [])
                keys.append(_NO_KEY)
                frames.append((event.anchor, nodes, []) if event.anchor or is_mapping else None)
                continue
            elif kind is _MAPPING_END or kind is _SEQUENCE_END:
                value, frame = containers.pop(), frames.pop()
                keys.pop()
                if frame is not None:
                    anchor, nodes_at_start, merges = frame
                    for merged in merges:  # explicit keys win, then earlier merges win (YAML merge spec)
                        for k, v in merged.items():
                            value.setdefault(k, v)
                    if anchor:
                        anchors[anchor] = (value, nodes - nodes_at_start + 1)
            elif kind is _ALIAS:
                if not doc_line:
                    doc_line = event.start_mark.line + 1
                if event.anchor not in anchors:
                    raise _Refused(f"unknown alias *{event.anchor}", event.start_mark)
                value, size = anchors[event.anchor]
                nodes += size
            elif kind is _DOCUMENT_START:
                doc_line, result, anchors = 0, None, {}
                continue
            elif kind is _DOCUMENT_END:
                yield result, doc_line
                continue
            elif kind is _STREAM_START:
                continue
            elif event is None or kind is _STREAM_END:
                return
            else:  # pragma: no cover - libyaml emits no other events
                raise _Refused(f"unexpected YAML event {kind.__name__}", event.start_mark)

            if nodes > max_nodes:
                raise _Refused(
                    f"more than {max_nodes} YAML nodes after alias expansion (an alias bomb?)",
                    event.start_mark,
                )
            if not containers:
                result = value
                continue
            top = containers[-1]
            if type(top) is list:
                top.append(value)
            elif keys[-1] is _NO_KEY:
                if type(value) is dict or type(value) is list:
                    raise _Refused("a mapping key that is itself a mapping or sequence", event.start_mark)
                keys[-1] = value
            else:
                if keys[-1] is _MERGE:
                    merges = value if isinstance(value, list) else [value]
                    if not all(isinstance(m, dict) for m in merges):
                        raise _Refused("a '<<' merge whose value is not a mapping", event.start_mark)
                    frames[-1][2].extend(merges)  # type: ignore[index]  # a mapping always has a frame
                else:
                    if keys[-1] in top:  # kubectl's YAML-to-JSON refuses these; a silent last-wins would hide one
                        raise _Refused(f"duplicate mapping key {keys[-1]!r:.80}", event.start_mark)
                    top[keys[-1]] = value
                keys[-1] = _NO_KEY
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _Refused(f"invalid YAML: {exc.problem or exc.context}", mark) from None
    except yaml.YAMLError as exc:
        raise _Refused(f"invalid YAML: {exc}") from None


# --------------------------------------------------------------------------------------------------
# bytes -> objects -> bundle
# --------------------------------------------------------------------------------------------------


def decode(data: bytes, source: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """Bytes to text, refusing what no manifest is: oversized, binary, or not UTF-8."""
    if len(data) > limits.max_bytes:
        raise InputError(f"{source}: {len(data)} bytes is over the {limits.max_bytes}-byte manifest limit")
    if b"\x00" in data:
        raise InputError(f"{source}: binary data (NUL bytes), not a YAML manifest")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{source}: line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x})") from None
    return text.removeprefix("\ufeff")


def parse_yaml_documents(text: str, source: str, limits: Limits = DEFAULT_LIMITS) -> list[tuple[Any, int]]:
    """All documents with their first line; bad YAML becomes a one-line InputError."""
    docs: list[tuple[Any, int]] = []
    try:
        for doc in _documents(text, limits):
            docs.append(doc)
            if len(docs) > limits.max_documents:
                raise _Refused(f"more than {limits.max_documents} YAML documents", None)
    except _Refused as exc:
        where = f" document {len(docs) + 1}" + (f" line {exc.line}" if exc.line else "")
        raise InputError(f"{source}:{where}: {exc.reason}") from None
    return docs


def _flatten(doc: Any) -> Iterable[Any]:
    """kubectl accepts `kind: List` (and `*List`) wrappers and applies their items."""
    if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        yield from doc["items"]
    else:
        yield doc


def _check_object(obj: Any, where: str) -> dict[str, Any]:
    if isinstance(obj, list):
        raise InputError(f"{where}: is a YAML list, not a Kubernetes object")
    if not isinstance(obj, dict):
        raise InputError(f"{where}: is a {type(obj).__name__} scalar, not a Kubernetes object")
    missing = [f for f in ("apiVersion", "kind") if not isinstance(obj.get(f), str) or not obj.get(f)]
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        missing.append("metadata.name")
    if missing:
        raise InputError(f"{where}: not a Kubernetes object: missing {', '.join(missing)}")
    return obj


def mapping_at(body: Any, *path: str) -> dict[str, Any]:
    """body[path[0]][path[1]]..., or {} where any step is missing or not a mapping: a malformed object is the
    schema check's finding, and must not crash the checks that only look for their fields."""
    for key in path:
        body = body.get(key) if isinstance(body, dict) else None
    return body if isinstance(body, dict) else {}


def crd_kind(body: dict[str, Any]) -> tuple[str, str]:
    """The (group, kind) a CustomResourceDefinition serves."""
    return str(mapping_at(body, "spec").get("group", "")), str(mapping_at(body, "spec", "names").get("kind", ""))


def cluster_scoped_kinds(bodies: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """(group, kind) pairs that are cluster-scoped, including the bundle's own cluster-scoped CRDs."""
    return {crd_kind(body) for body in bodies if body.get("kind") == "CustomResourceDefinition"
            and mapping_at(body, "spec").get("scope") == "Cluster"}


def _is_cluster_scoped(body: dict[str, Any], crd_scoped: set[tuple[str, str]]) -> bool:
    group = group_of(body["apiVersion"])
    if (group, body["kind"]) in crd_scoped:
        return True
    builtin = "." not in group or group.endswith(".k8s.io")
    return builtin and body["kind"] in CLUSTER_SCOPED_KINDS


def load_objects(
    data: bytes, source: str = "<manifest>", namespace: str = "argocd", limits: Limits = DEFAULT_LIMITS
) -> list[KubeObject]:
    """Parse, check and namespace-default every object, as `kubectl apply -n NAMESPACE -f` would."""
    text = decode(data, source, limits)
    objects: list[tuple[dict[str, Any], int, int]] = []
    for index, (doc, line) in enumerate(parse_yaml_documents(text, source, limits), start=1):
        if doc is None:
            continue  # empty documents (a trailing '---') are skipped, as kubectl does
        for item in _flatten(doc):
            objects.append((_check_object(item, f"{source}: document {index} (line {line})"), index, line))
    if not objects:
        raise InputError(f"{source}: no Kubernetes objects found (empty input)")

    crd_scoped = cluster_scoped_kinds(body for body, _, _ in objects)
    result: list[KubeObject] = []
    seen: dict[ObjectRef, KubeObject] = {}
    for body, index, line in objects:
        effective = ""
        if not _is_cluster_scoped(body, crd_scoped):
            declared = body["metadata"].get("namespace")
            if declared and declared != namespace:
                raise InputError(
                    f"{source}: document {index} (line {line}): the namespace from the provided object "
                    f'"{declared}" does not match the namespace "{namespace}"'
                )
            effective = namespace
        obj = KubeObject(body, source=source, document=index, line=line, namespace=effective)
        if obj.ref in seen:
            raise InputError(f"{source}: document {index} (line {line}): duplicate object {obj.ref} "
                             f"(first in document {seen[obj.ref].document})")
        seen[obj.ref] = obj
        result.append(obj)
    return result


def load_bundle(data: bytes, source: str = "<manifest>", namespace: str = "argocd",
                limits: Limits = DEFAULT_LIMITS) -> Bundle:
    return Bundle(load_objects(data, source, namespace, limits), namespace=namespace)


# A small configuration file (a profile, a kubeconfig): one document, and bombs or deep nesting refused while parsing.
CONFIG_LIMITS = Limits(max_bytes=1_000_000, max_documents=1, max_nodes=100_000, max_depth=32)


def load_config_document(path: Path, what: str) -> Any:
    """The one YAML document of a small configuration file (None if empty), read and parsed under CONFIG_LIMITS."""
    source = f"{what} {path}"
    text = decode(files.read_bounded(path, CONFIG_LIMITS.max_bytes, what), source, CONFIG_LIMITS)
    documents = parse_yaml_documents(text, source, CONFIG_LIMITS)
    return documents[0][0] if documents else None


def read_bounded(path: Path, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Read a local manifest without ever holding more than the size limit in memory."""
    return files.read_bounded(path, limits.max_bytes, "manifest")


_IMAGE_TAG = re.compile(r"^(?P<repo>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """'quay.io/argoproj/argocd:v3.5.1' -> ('quay.io/argoproj/argocd', 'v3.5.1', None)."""
    match = _IMAGE_TAG.match(image)
    if not match:
        return image, None, None
    return match["repo"], match["tag"], match["digest"]


# Where each pod-running kind keeps its pod template (the mapping with `metadata` and `spec`).
_POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (), "CronJob": ("spec", "jobTemplate", "spec", "template"),
    **{kind: ("spec", "template") for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                                               "ReplicationController")},
}


def pod_spec(obj: KubeObject) -> dict[str, Any] | None:
    """The pod spec of a workload or pod, or None for kinds that run no pods."""
    path = _POD_TEMPLATE_PATHS.get(obj.kind)
    return None if path is None else mapping_at(obj.body, *path, "spec")


def pod_metadata(obj: KubeObject) -> dict[str, Any]:
    """The metadata its pods get (labels, annotations); {} for kinds that run no pods."""
    path = _POD_TEMPLATE_PATHS.get(obj.kind)
    return {} if path is None else mapping_at(obj.body, *path, "metadata")


def containers_of(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """('initContainers'|'containers'|'ephemeralContainers', container) for every container of a pod spec."""
    for section in ("initContainers", "containers", "ephemeralContainers"):
        containers = spec.get(section)
        for container in containers if isinstance(containers, list) else ():
            if isinstance(container, dict):
                yield section, container
