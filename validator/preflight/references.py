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
from validator.preflight.apineed import command_line, is_builtin_cluster_role
from validator.preflight.selectors import Lookup, PodTemplate, pod_templates
from validator.profiles import Profile
from validator.releases import ARGOCD_IMAGE
from validator.text import some

CHECK = "references"
QUOTED = 5  # references a one-line reason names before "N more"
RELEASE_SOURCES = ("stable", "tag")  # a release's version is what it claims to be, not a guess from a name
IMAGE_VERSION_WAIVER = "image-version="  # --accept-image-version V accepts the error for image-version=V
UNPINNED, ALWAYS, MOVING = "not pinned by digest", "pulled on every start (imagePullPolicy Always)", "on a moving tag"
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
            if REDIS_PASSWORD_COMMAND in " ".join(command_line(container)):
                known.setdefault(("Secret", "argocd-redis"), f"init container {container.get('name')} of {tmpl.label}")
    return known


# What a pod does while an object it refers to is missing, by how it refers to it.
POD_CONSEQUENCE = {
    "volume": "its pods stay ContainerCreating (FailedMount) until it exists",
    "env": "its containers wait in CreateContainerConfigError until it exists",
    "ServiceAccount": "the ServiceAccount admission refuses its pods (FailedCreate: serviceaccount not found)",
}


def _consequence(kind: str, where: str) -> str:
    if kind == "ServiceAccount":
        return POD_CONSEQUENCE["ServiceAccount"]
    return POD_CONSEQUENCE["volume" if where.startswith("volume") else "env"]


def _missing_references(bundle: Bundle) -> list[Finding]:
    known = runtime_created(bundle)
    lookup = Lookup(bundle)
    missing: dict[tuple[str, str], list[tuple[str, str]]] = {}
    awaited: dict[tuple[str, str], list[tuple[str, str]]] = {}  # created at runtime by the bundle's own pods
    unbound: dict[tuple[str, str], list[tuple[str, str]]] = {}  # RBAC naming what is not there: grants nothing
    consequence: dict[tuple[str, str], str] = {}  # what the first pod referring to it will do without it
    for tmpl in pod_templates(bundle):
        for kind, name, optional, where in pod_references(tmpl):
            if optional or (kind, name) in ALWAYS_PRESENT or lookup.get(kind, name, tmpl.namespace):
                continue
            target = awaited if (kind, name) in known else missing
            target.setdefault((kind, name), []).append((str(tmpl.owner.ref), f"{tmpl.label} ({where})"))
            consequence.setdefault((kind, name), _consequence(kind, where))
    for binding in lookup.of_kind("RoleBinding", "ClusterRoleBinding"):
        ref = binding.body.get("roleRef") or {}
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        builtin = kind == "ClusterRole" and is_builtin_cluster_role(name)
        if not builtin and not lookup.get(kind, name, binding.namespace if kind == "Role" else ""):
            unbound.setdefault((kind, name), []).append((str(binding.ref), f"{binding.kind} {binding.name} (roleRef)"))
        for subject in binding.body.get("subjects") or []:
            if not isinstance(subject, dict) or subject.get("kind") != "ServiceAccount":
                continue
            namespace = subject.get("namespace") or binding.namespace
            account = str(subject.get("name", ""))
            if namespace == bundle.namespace and ("ServiceAccount", account) not in known and not lookup.get(
                    "ServiceAccount", account, namespace) and ("ServiceAccount", account) not in missing:
                unbound.setdefault(("ServiceAccount", account), []).append(
                    (str(binding.ref), f"{binding.kind} {binding.name} (subject)"))
    findings = [
        Finding(CHECK, "info", tuple(dict.fromkeys(ref for ref, _ in users)),
                f"{kind} {name} is created at runtime by {known[(kind, name)]}; "
                f"{len(users)} reference(s) wait for it until then",
                {"kind": kind, "name": name, "created_by": known[(kind, name)],
                 "referenced_by": [how for _, how in users]})
        for (kind, name), users in awaited.items()
    ]
    findings += [
        Finding(CHECK, "warning", tuple(dict.fromkeys(ref for ref, _ in users)),
                f"{kind} {name} is referenced by {', '.join(some((how for _, how in users), QUOTED))} but is neither "
                f"in the bundle nor known to be created at runtime: {consequence[(kind, name)]}",
                {"kind": kind, "name": name, "referenced_by": [how for _, how in users]})
        for (kind, name), users in missing.items()
    ]
    return findings + [
        Finding(CHECK, "info", tuple(dict.fromkeys(ref for ref, _ in users)),
                f"{kind} {name} is named by {', '.join(some((how for _, how in users), QUOTED))} but is not in the "
                "bundle: the API accepts the binding, and it grants nothing until that object exists",
                {"kind": kind, "name": name, "referenced_by": [how for _, how in users]})
        for (kind, name), users in unbound.items()
    ]


def _argocd_image_versions(bundle: Bundle, version: str) -> dict[str, list[tuple[str, str]]]:
    """Other versions the Argo CD images name -> [(owner ref, 'Kind name/container')]. An image pinned by digest
    alone names no version: pinning by digest is what we recommend, not a mismatch."""
    others: dict[str, list[tuple[str, str]]] = {}
    for tmpl in pod_templates(bundle):
        for _, container in containers_of(tmpl.spec):
            repo, tag, digest = split_image(str(container.get("image", "")))
            named = tag or ("latest" if digest is None else None)
            if repo == ARGOCD_IMAGE and named is not None and named != version:
                others.setdefault(named, []).append((str(tmpl.owner.ref), f"{tmpl.label}/{container.get('name')}"))
    return others


def _image_integrity(bundle: Bundle) -> list[Finding]:
    """A release whose manifests run another build's images (v2.14.0's name v2.14.0-rc7): production would run
    that other build, so a gate on the release must not pass it unnoticed. Certain for a release (tag or stable),
    whose version is the claim; for a URL or file the version is only read from its name, so a warning."""
    provenance = bundle.provenance
    version = getattr(provenance, "version", None)
    if not version:
        return []
    others = _argocd_image_versions(bundle, version)
    if not others:
        return []
    users = [user for found in others.values() for user in found]
    images = ", ".join(f"{ARGOCD_IMAGE}:{other}" for other in sorted(others))
    containers = ", ".join(some((how for _, how in users), QUOTED))
    release = getattr(provenance, "source", None) in RELEASE_SOURCES
    evidence = {"resolved_version": version, "image_versions": sorted(others),
                "containers": [how for _, how in users]}
    objects = tuple(dict.fromkeys(ref for ref, _ in users))
    if release:
        accept = " ".join(f"--accept-image-version {other}" for other in sorted(others))
        return [Finding(
            CHECK, "error", objects,
            f"release {version}'s manifests run {images} in {len(users)} container(s) ({containers}): production "
            f"would run that build, not {version}; pin a release whose images match, or pass {accept} to accept it",
            evidence, waiver=tuple(f"{IMAGE_VERSION_WAIVER}{other}" for other in sorted(others)))]
    return [Finding(
        CHECK, "warning", objects,
        f"the candidate's name says {version} but its manifests run {images} in {len(users)} container(s) "
        f"({containers}): the gate validates that build", evidence)]


def _image_hygiene(bundle: Bundle) -> list[Finding]:
    """One line for every image that makes a run unrepeatable (:latest, no digest, pulled on every start)."""
    flags: dict[str, set[str]] = {}
    for tmpl in pod_templates(bundle):
        for _, container in containers_of(tmpl.spec):
            image = str(container.get("image", ""))
            _, tag, digest = split_image(image)
            found = flags.setdefault(image, set())
            if tag == "latest" or (tag is None and digest is None):
                found.add(MOVING)
            if digest is None:
                found.add(UNPINNED)
            if container.get("imagePullPolicy") == "Always" or (container.get("imagePullPolicy") is None
                                                                and tag in (None, "latest") and digest is None):
                found.add(ALWAYS)
    flagged = {image: sorted(found) for image, found in flags.items() if found}
    if not flagged:
        return []
    tally = ", ".join(f"{sum(flag in found for found in flagged.values())} {flag}"
                      for flag in (UNPINNED, ALWAYS, MOVING) if any(flag in found for found in flagged.values()))
    return [Finding(CHECK, "info", (),
                    f"{len(flagged)} image(s) make a run harder to repeat: {tally} "
                    f"({', '.join(some(flagged, QUOTED))})",
                    {"images": flagged})]


def check(bundle: Bundle, profile: Profile, apply_mode: str) -> list[Finding]:
    return _image_integrity(bundle) + _missing_references(bundle) + _image_hygiene(bundle)
