"""Schema and API-removal check against the profile's Kubernetes version, offline.

Built-in kinds are validated against the strict JSON schemas that the kubernetes-validate package ships
per Kubernetes minor (the newest not newer than the profile's), through the lean walker in schemawalk:
unknown fields, wrong types, missing required fields and bad enums are errors, as the API server's
strict field validation (kubectl's default) would reject them. apiVersions removed by that minor are
errors with the replacement named; deprecated ones are warnings. Custom resources are validated against
the CRDs in the bundle; without their CRD they are reported as unchecked (info).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from validator.errors import EnvironmentNotReady, InputError
from validator.manifests import Bundle, KubeObject, crd_kind
from validator.preflight import Finding
from validator.preflight.schemawalk import Compiler, Node, validate
from validator.profiles import RUNTIME_CONFIG_STAGES, Profile

CHECK = "schema"
MAX_ERRORS_PER_OBJECT = 5


@dataclass(frozen=True)
class Lifecycle:
    deprecated: tuple[int, int] | None
    removed: tuple[int, int] | None
    replacement: str


def _l(deprecated: str | None, removed: str | None, replacement: str) -> Lifecycle:
    def minor(text: str | None) -> tuple[int, int] | None:
        return (1, int(text.split(".")[1])) if text else None
    return Lifecycle(minor(deprecated), minor(removed), replacement)


# (apiVersion, kind) -> lifecycle, from the Kubernetes deprecated API migration guide. "*" = every kind.
API_LIFECYCLE: dict[tuple[str, str], Lifecycle] = {
    **{("extensions/v1beta1", k): _l("1.9", "1.16", "apps/v1") for k in ("Deployment", "DaemonSet", "ReplicaSet")},
    **{(v, k): _l("1.9", "1.16", "apps/v1") for v in ("apps/v1beta1", "apps/v1beta2")
       for k in ("Deployment", "DaemonSet", "ReplicaSet", "StatefulSet")},
    ("extensions/v1beta1", "NetworkPolicy"): _l("1.9", "1.16", "networking.k8s.io/v1"),
    ("extensions/v1beta1", "PodSecurityPolicy"): _l("1.10", "1.16", "policy/v1beta1 (itself removed in 1.25)"),
    ("extensions/v1beta1", "Ingress"): _l("1.14", "1.22", "networking.k8s.io/v1"),
    ("networking.k8s.io/v1beta1", "Ingress"): _l("1.19", "1.22", "networking.k8s.io/v1"),
    ("networking.k8s.io/v1beta1", "IngressClass"): _l("1.19", "1.22", "networking.k8s.io/v1"),
    ("admissionregistration.k8s.io/v1beta1", "MutatingWebhookConfiguration"):
        _l("1.16", "1.22", "admissionregistration.k8s.io/v1"),
    ("admissionregistration.k8s.io/v1beta1", "ValidatingWebhookConfiguration"):
        _l("1.16", "1.22", "admissionregistration.k8s.io/v1"),
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"): _l("1.16", "1.22", "apiextensions.k8s.io/v1"),
    ("apiregistration.k8s.io/v1beta1", "APIService"): _l("1.19", "1.22", "apiregistration.k8s.io/v1"),
    ("authentication.k8s.io/v1beta1", "TokenReview"): _l("1.19", "1.22", "authentication.k8s.io/v1"),
    ("authorization.k8s.io/v1beta1", "*"): _l("1.19", "1.22", "authorization.k8s.io/v1"),
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"): _l("1.19", "1.22", "certificates.k8s.io/v1"),
    ("coordination.k8s.io/v1beta1", "Lease"): _l("1.19", "1.22", "coordination.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1beta1", "*"): _l("1.17", "1.22", "rbac.authorization.k8s.io/v1"),
    ("scheduling.k8s.io/v1beta1", "PriorityClass"): _l("1.14", "1.22", "scheduling.k8s.io/v1"),
    **{("storage.k8s.io/v1beta1", k): _l("1.19", "1.22", "storage.k8s.io/v1")
       for k in ("CSIDriver", "CSINode", "StorageClass", "VolumeAttachment")},
    ("batch/v1beta1", "CronJob"): _l("1.21", "1.25", "batch/v1"),
    ("discovery.k8s.io/v1beta1", "EndpointSlice"): _l("1.21", "1.25", "discovery.k8s.io/v1"),
    ("events.k8s.io/v1beta1", "Event"): _l("1.19", "1.25", "events.k8s.io/v1"),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): _l("1.22", "1.25", "autoscaling/v2"),
    ("policy/v1beta1", "PodDisruptionBudget"): _l("1.21", "1.25", "policy/v1"),
    ("policy/v1beta1", "PodSecurityPolicy"): _l("1.21", "1.25", "Pod Security Admission (no replacement kind)"),
    ("node.k8s.io/v1beta1", "RuntimeClass"): _l("1.20", "1.25", "node.k8s.io/v1"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): _l("1.23", "1.26", "autoscaling/v2"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "*"): _l("1.23", "1.26", "flowcontrol.apiserver.k8s.io/v1"),
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity"): _l("1.24", "1.27", "storage.k8s.io/v1"),
    ("flowcontrol.apiserver.k8s.io/v1beta2", "*"): _l("1.26", "1.29", "flowcontrol.apiserver.k8s.io/v1"),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "*"): _l("1.29", "1.32", "flowcontrol.apiserver.k8s.io/v1"),
    ("v1", "ComponentStatus"): _l("1.19", None, "none (query the components' health endpoints)"),
    ("v1", "Endpoints"): _l("1.33", None, "discovery.k8s.io/v1 EndpointSlice"),
}


def lifecycle(api_version: str, kind: str) -> Lifecycle | None:
    return API_LIFECYCLE.get((api_version, kind)) or API_LIFECYCLE.get((api_version, "*"))


def _plural(kind: str) -> str:
    """The resource name of a built-in kind (Deployment -> deployments, IngressClass -> ingressclasses)."""
    lower = kind.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in tuple("aeiou"):
        return lower[:-1] + "ies"
    return lower + "s"


def api_stage(api_version: str) -> str:
    """'alpha', 'beta' or 'ga': the maturity an apiVersion names (what --runtime-config's api/* keys match)."""
    version = api_version.rpartition("/")[2]
    return "alpha" if "alpha" in version else "beta" if "beta" in version else "ga"


def served(api_version: str, kind: str, runtime_config: Mapping[str, str]) -> bool:
    """Whether kube-apiserver serves a built-in apiVersion/kind, given --runtime-config (pkg/controlplane).

    By default GA versions are served, alpha never, and beta only the betas that predate KEP-3136 (1.24):
    those are exactly the ones API_LIFECYCLE tracks until their removal, which the caller reports itself.
    Every beta added since is off until enabled. --runtime-config applies in kube-apiserver's order: api/all,
    then api/ga|beta|alpha, then the group/version, and a group/version/resource key wins over them all.
    """
    stage = api_stage(api_version)
    enabled = stage == "ga" or (stage == "beta" and lifecycle(api_version, kind) is not None)
    group_version = api_version if "/" in api_version else f"/{api_version}"  # --runtime-config's core group: /v1
    for key in ("api/all", f"api/{stage}", group_version, f"{group_version}/{_plural(kind)}"):
        if key in runtime_config:
            enabled = runtime_config[key] == "true"
    return enabled


# --------------------------------------------------------------------------------------------------
# the schemas kubernetes-validate ships (read-only package data), loaded once per Kubernetes minor
# --------------------------------------------------------------------------------------------------


def _schema_root() -> Path:
    """kubernetes-validate's schema directory, found without importing the package (whose import pulls in
    jsonschema, referencing and PyYAML's loader: a tenth of a second we do not need)."""
    spec = importlib.util.find_spec("kubernetes_validate")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        root = Path(location) / "kubernetes-json-schema"
        if root.is_dir():
            return root
    raise EnvironmentNotReady(
        "the kubernetes-validate package (offline Kubernetes schemas) is not installed: "
        "pip install kubernetes-validate")


@lru_cache(maxsize=1)
def schema_versions() -> tuple[tuple[int, int], ...]:
    found = set()
    for entry in _schema_root().iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+-local-strict", entry.name)
        if match:
            found.add((int(match[1]), int(match[2])))
    return tuple(sorted(found))


def schema_version_for(minor: tuple[int, int]) -> tuple[int, int]:
    """The newest shipped schema version not newer than `minor` (the oldest if all are newer)."""
    versions = schema_versions()
    if not versions:
        raise EnvironmentNotReady("kubernetes-validate ships no schemas")
    older = [v for v in versions if v <= minor]
    return older[-1] if older else versions[0]


@dataclass
class Schemas:
    """One Kubernetes minor's definitions, indexed by (group, version, kind), with one shared compiler."""

    version: tuple[int, int]
    by_gvk: dict[tuple[str, str, str], str]
    compiler: Compiler

    @property
    def groups(self) -> frozenset[str]:
        """API groups kube-apiserver itself serves in this version. *.k8s.io is not enough: the Gateway API
        (gateway.networking.k8s.io) and snapshots (snapshot.storage.k8s.io) come from CRDs."""
        return frozenset(group for group, _, _ in self.by_gvk)

    def node(self, group: str, version: str, kind: str) -> Node | None:
        name = self.by_gvk.get((group, version, kind))
        return self.compiler.compile(self.compiler.defs[name]) if name else None


_PROPS = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"


def _type_crd_unions(defs: dict[str, Any]) -> None:
    """Give the CRD schema unions their real shape (the published schemas leave them untyped).

    Without this, everything under `items`/`additionalProperties` of a CRD's schema goes unchecked, and
    a typo there ('tpye') would only surface when the API server rejects the CRD.
    """
    if _PROPS not in defs:
        return
    props = {"$ref": f"#/$defs/{_PROPS}"}
    unions = {"OrArray": {"type": "array", "items": props}, "OrBool": {"type": "boolean"},
              "OrStringArray": {"type": "array", "items": {"type": "string"}}}
    for suffix, other in unions.items():
        if _PROPS + suffix in defs:
            defs[_PROPS + suffix] = {"oneOf": [props, other]}


@lru_cache(maxsize=4)
def load_schemas(version: tuple[int, int]) -> Schemas:
    path = _schema_root() / f"v{version[0]}.{version[1]}.0-local-strict" / "_definitions.json"
    defs: dict[str, Any] = json.loads(path.read_bytes())["$defs"]
    _type_crd_unions(defs)
    by_gvk: dict[tuple[str, str, str], str] = {}
    for name, schema in defs.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            key = (str(gvk.get("group", "")), str(gvk.get("version", "")), str(gvk.get("kind", "")))
            by_gvk.setdefault(key, name)
    return Schemas(version, by_gvk, Compiler(defs, "kubernetes"))


# --------------------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------------------


def _crd_versions(bundle: Bundle) -> dict[tuple[str, str], tuple[KubeObject, dict[str, dict[str, Any]]]]:
    """(group, kind) -> (CRD, {version name: version entry}) for every CRD in the bundle."""
    result = {}
    for crd in bundle.of_kind("CustomResourceDefinition"):
        spec = crd.body.get("spec") or {}
        versions = {str(v.get("name")): v for v in spec.get("versions") or [] if isinstance(v, dict)}
        result[crd_kind(crd.body)] = (crd, versions)
    return result


def _errors_finding(obj: KubeObject, errors: list[str], against: str) -> Finding:
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return Finding(CHECK, "error", (str(obj.ref),),
                   f"{obj.kind} {obj.name}: invalid against {against}: {errors[0]}{more}",
                   {"errors": errors[:MAX_ERRORS_PER_OBJECT], "source": obj.where})


def _check_custom(obj: KubeObject, crd: KubeObject, versions: dict[str, dict[str, Any]],
                  compilers: dict[int, Compiler]) -> list[Finding]:
    version = obj.api_version.rpartition("/")[2]
    entry = versions.get(version)
    if entry is None or entry.get("served") is False:
        return [Finding(CHECK, "error", (str(obj.ref),),
                        f"{obj.kind} {obj.name}: CRD {crd.name} in the bundle does not serve version {version} "
                        f"(serves {', '.join(n for n, v in versions.items() if v.get('served') is not False)})",
                        {"source": obj.where})]
    schema = (entry.get("schema") or {}).get("openAPIV3Schema")
    if not isinstance(schema, dict):
        return []
    compiler = compilers.setdefault(id(crd), Compiler({}, "crd"))
    errors = validate(compiler.resource_root(schema), obj.body, limit=MAX_ERRORS_PER_OBJECT)
    return [_errors_finding(obj, errors, f"CRD {crd.name} version {version}")] if errors else []


def _check_runtime_config(profile: Profile, schemas: Schemas, label: str) -> None:
    """A runtimeConfig group/version the Kubernetes version lacks stops kube-apiserver from starting ("unknown api
    groups", "has not been registered"): the profile is wrong, not the candidate, so it is bad input."""
    known = {(group, version) for group, version, _ in schemas.by_gvk}
    for key in profile.runtime_config:
        if key in RUNTIME_CONFIG_STAGES:
            continue
        group, version = key.split("/")[:2]
        if (group, version) not in known:
            raise InputError(f"profile {profile.name}: runtimeConfig {key}: {label} has no API {group or 'core'}/"
                             f"{version}, and kube-apiserver would refuse to start")


def _not_served(obj: KubeObject, label: str) -> Finding:
    stage = "an alpha API (alpha is never on by default)" if api_stage(obj.api_version) == "alpha" else \
        "a beta API added since 1.24, which are off by default (KEP-3136)"
    return Finding(
        CHECK, "error", (str(obj.ref),),
        f"{obj.kind} {obj.name}: {label} does not serve apiVersion {obj.api_version} by default: it is {stage}, so "
        f"applying it fails with 'no matches for kind \"{obj.kind}\"'. If production enables it, state "
        f'`runtimeConfig: {{{obj.api_version}: "true"}}` (and any feature gate it needs) in the profile: the mirror '
        "enables it too",
        {"apiVersion": obj.api_version, "source": obj.where})


def check(bundle: Bundle, profile: Profile, apply_mode: str) -> list[Finding]:
    target = profile.kubernetes_minor
    used = schema_version_for(target)
    schemas = load_schemas(used)
    label = f"Kubernetes {target[0]}.{target[1]}"
    findings: list[Finding] = []
    if used != target:
        findings.append(Finding(CHECK, "info", (),
                                f"no schemas for {label} shipped; validated against {used[0]}.{used[1]} instead",
                                {"profile_version": f"{target[0]}.{target[1]}",
                                 "schema_version": f"{used[0]}.{used[1]}"}))
    _check_runtime_config(profile, schemas, label)
    crds = _crd_versions(bundle)
    served_groups = schemas.groups
    compilers: dict[int, Compiler] = {}
    unchecked: dict[str, list[str]] = {}
    for obj in bundle:
        group, version = obj.group, obj.api_version.rpartition("/")[2]
        life = lifecycle(obj.api_version, obj.kind)
        if life and life.removed and target >= life.removed:
            findings.append(Finding(
                CHECK, "error", (str(obj.ref),),
                f"{obj.kind} {obj.name}: apiVersion {obj.api_version} was removed in Kubernetes "
                f"1.{life.removed[1]} (profile runs {target[0]}.{target[1]}); use {life.replacement}",
                {"apiVersion": obj.api_version, "removed_in": f"1.{life.removed[1]}", "replacement": life.replacement,
                 "source": obj.where}))
            continue
        if life and life.deprecated and target >= life.deprecated:
            findings.append(Finding(
                CHECK, "warning", (str(obj.ref),),
                f"{obj.kind} {obj.name}: apiVersion {obj.api_version} is deprecated since Kubernetes "
                f"1.{life.deprecated[1]}" + (f" and removed in 1.{life.removed[1]}" if life.removed else "")
                + f"; use {life.replacement}",
                {"apiVersion": obj.api_version, "deprecated_in": f"1.{life.deprecated[1]}", "source": obj.where}))
        if (group, obj.kind) in crds:
            crd, versions = crds[(group, obj.kind)]
            findings.extend(_check_custom(obj, crd, versions, compilers))
            continue
        node = schemas.node(group, version, obj.kind)
        if node is None:
            if group in served_groups and life is None:
                findings.append(Finding(
                    CHECK, "error", (str(obj.ref),),
                    f"{obj.kind} {obj.name}: {label} has no kind {obj.kind} in apiVersion {obj.api_version}",
                    {"apiVersion": obj.api_version, "kind": obj.kind, "source": obj.where}))
            else:
                unchecked.setdefault(f"{obj.kind}.{group}", []).append(str(obj.ref))
            continue
        if not served(obj.api_version, obj.kind, profile.runtime_config):
            findings.append(_not_served(obj, label))
        errors = validate(node, obj.body, limit=MAX_ERRORS_PER_OBJECT)
        if errors:
            findings.append(_errors_finding(obj, errors, f"the {used[0]}.{used[1]} schema"))
    for kind, refs in unchecked.items():
        findings.append(Finding(CHECK, "info", tuple(refs),
                                f"{len(refs)} {kind} object(s) not schema-checked: no schema for them here (custom "
                                "resources need their CRD in the bundle or installed beforehand)", {"kind": kind}))
    return findings
