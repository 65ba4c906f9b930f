"""References and images: what the pods will look for at runtime, and what they will run.

A Secret, ConfigMap, ServiceAccount or Role that a workload needs but nothing creates leaves pods in
CreateContainerConfigError (as v2.11.1's server/repo-server/controller were, waiting for Secret
argocd-redis). Some objects are created at runtime, not shipped: those are known and named with their
creator instead of being reported. Images: `:latest`, undigested and pull-always images make a
validation unrepeatable (info); an Argo CD image whose tag is not the resolved version means the
gate would test something other than what it claims (a kustomize base at ref=stable saying :latest).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from validator.manifests import Bundle, containers_of, split_image
from validator.preflight import Finding
from validator.preflight.apineed import is_builtin_cluster_role
from validator.preflight.selectors import Lookup, PodTemplate, pod_templates
from validator.profiles import Profile
from validator.releases import ARGOCD_IMAGE

CHECK = "references"
REDIS_PASSWORD_COMMAND = "argocd admin redis-initial-password"

# Objects that exist without being in any manifest, and who creates them.
ALWAYS_PRESENT = {
    ("ServiceAccount", "default"): "the ServiceAccount controller (in every namespace)",
    ("ConfigMap", "kube-root-ca.crt"): "kube-controller-manager's root CA publisher (in every namespace)",
    ("Secret", "argocd-initial-admin-secret"): "argocd-server on first start",
}


def _ref(kind: str, name: Any, optional: Any, where: str) -> Iterator[tuple[str, str, bool, str]]:
    if name:
        yield kind, str(name), optional is True, where


def pod_references(tmpl: PodTemplate) -> Iterator[tuple[str, str, bool, str]]:
    """(kind, name, optional, where) for every object a pod template refers to by name."""
    spec = tmpl.spec
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    yield from _ref("ServiceAccount", account, False, "serviceAccountName")
    for secret in spec.get("imagePullSecrets") or []:
        if isinstance(secret, dict):
            yield from _ref("Secret", secret.get("name"), True, "imagePullSecrets")  # kubelet only warns
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        where = f"volume {volume.get('name')}"
        if isinstance(volume.get("secret"), dict):
            yield from _ref("Secret", volume["secret"].get("secretName"), volume["secret"].get("optional"), where)
        if isinstance(volume.get("configMap"), dict):
            yield from _ref("ConfigMap", volume["configMap"].get("name"), volume["configMap"].get("optional"), where)
        for source in (volume.get("projected") or {}).get("sources") or []:
            for key, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
                if isinstance(source, dict) and isinstance(source.get(key), dict):
                    yield from _ref(kind, source[key].get("name"), source[key].get("optional"), where)
    for _, container in containers_of(spec):
        where = f"container {container.get('name')}"
        for env in container.get("env") or []:
            source = (env.get("valueFrom") or {}) if isinstance(env, dict) else {}
            for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                if isinstance(source.get(key), dict):
                    yield from _ref(kind, source[key].get("name"), source[key].get("optional"),
                                    f"{where} env {env.get('name')}")
        for env_from in container.get("envFrom") or []:
            for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                if isinstance(env_from, dict) and isinstance(env_from.get(key), dict):
                    yield from _ref(kind, env_from[key].get("name"), env_from[key].get("optional"),
                                    f"{where} envFrom")


def runtime_created(bundle: Bundle) -> dict[tuple[str, str], str]:
    """(kind, name) -> creator, for objects this bundle's own pods or the cluster create at runtime."""
    known = dict(ALWAYS_PRESENT)
    for tmpl in pod_templates(bundle):
        for _, container in containers_of(tmpl.spec):
            line = " ".join(str(p) for p in (container.get("command") or []) + (container.get("args") or []))
            if REDIS_PASSWORD_COMMAND in line:
                known.setdefault(("Secret", "argocd-redis"),
                                 f"init container {container.get('name')} of {tmpl.label} (`{REDIS_PASSWORD_COMMAND}`, "
                                 "Argo CD >= v2.11)")
    return known


def _missing_references(bundle: Bundle) -> list[Finding]:
    known = runtime_created(bundle)
    lookup = Lookup(bundle)
    missing: dict[tuple[str, str], list[tuple[str, str]]] = {}
    awaited: dict[tuple[str, str], list[tuple[str, str]]] = {}  # created at runtime by the bundle's own pods
    for tmpl in pod_templates(bundle):
        for kind, name, optional, where in pod_references(tmpl):
            if optional or (kind, name) in ALWAYS_PRESENT or lookup.get(kind, name, tmpl.namespace):
                continue
            target = awaited if (kind, name) in known else missing
            target.setdefault((kind, name), []).append((str(tmpl.owner.ref), f"{tmpl.label} ({where})"))
    for binding in lookup.of_kind("RoleBinding", "ClusterRoleBinding"):
        ref = binding.body.get("roleRef") or {}
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        builtin = kind == "ClusterRole" and is_builtin_cluster_role(name)
        if not builtin and not lookup.get(kind, name, binding.namespace if kind == "Role" else ""):
            missing.setdefault((kind, name), []).append((str(binding.ref), f"{binding.kind} {binding.name} (roleRef)"))
        for subject in binding.body.get("subjects") or []:
            if not isinstance(subject, dict) or subject.get("kind") != "ServiceAccount":
                continue
            namespace = subject.get("namespace") or binding.namespace
            account = str(subject.get("name", ""))
            if namespace == bundle.namespace and ("ServiceAccount", account) not in known and not lookup.get(
                    "ServiceAccount", account, namespace):
                missing.setdefault(("ServiceAccount", account), []).append(
                    (str(binding.ref), f"{binding.kind} {binding.name} (subject)"))
    waits = [
        Finding(CHECK, "info", tuple(dict.fromkeys(ref for ref, _ in users)),
                f"{kind} {name} is not in the bundle: it is created at runtime by {known[(kind, name)]}; "
                f"{', '.join(how for _, how in users)} wait(s) for it (CreateContainerConfigError until then)",
                {"kind": kind, "name": name, "created_by": known[(kind, name)],
                 "referenced_by": [how for _, how in users]})
        for (kind, name), users in awaited.items()
    ]
    return waits + [
        Finding(CHECK, "warning", tuple(dict.fromkeys(ref for ref, _ in users)),
                f"{kind} {name} is referenced by {', '.join(how for _, how in users)} but is neither in the bundle "
                "nor known to be created at runtime: pods will wait in CreateContainerConfigError (or RBAC will "
                "not apply)",
                {"kind": kind, "name": name, "referenced_by": [how for _, how in users]})
        for (kind, name), users in missing.items()
    ]


def _image_findings(bundle: Bundle) -> list[Finding]:
    version = getattr(bundle.provenance, "version", None)
    notes: dict[str, dict[str, Any]] = {}
    findings = []
    for tmpl in pod_templates(bundle):
        for _, container in containers_of(tmpl.spec):
            image = str(container.get("image", ""))
            repo, tag, digest = split_image(image)
            entry = notes.setdefault(image, {"flags": set(), "users": [], "owners": []})
            entry["users"].append(f"{tmpl.label}/{container.get('name')}")
            entry["owners"].append(str(tmpl.owner.ref))
            if tag == "latest" or (tag is None and digest is None):
                entry["flags"].add("uses :latest (moving tag)")
            if digest is None:
                entry["flags"].add("not pinned by digest")
            if container.get("imagePullPolicy") == "Always" or (container.get("imagePullPolicy") is None
                                                                 and tag in (None, "latest") and digest is None):
                entry["flags"].add("imagePullPolicy Always (pulled on every start)")
            # a digest alone names no version to compare: pinning by digest is what we recommend, not a mismatch
            named = tag is not None or digest is None
            if version and repo == ARGOCD_IMAGE and named and (tag or "latest") != version:
                findings.append(Finding(
                    CHECK, "warning", (str(tmpl.owner.ref),),
                    f"{tmpl.label}: container {container.get('name')} runs {image} but the candidate resolved to "
                    f"{version}: the gate would validate a different Argo CD than it reports",
                    {"image": image, "resolved_version": version}))
    for image, entry in notes.items():
        if entry["flags"]:
            findings.append(Finding(
                CHECK, "info", tuple(dict.fromkeys(entry["owners"])),
                f"image {image}: {', '.join(sorted(entry['flags']))}",
                {"image": image, "flags": sorted(entry["flags"]), "containers": entry["users"]}))
    return findings


def check(bundle: Bundle, profile: Profile, apply_mode: str) -> list[Finding]:
    return _missing_references(bundle) + _image_findings(bundle)
