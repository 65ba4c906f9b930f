"""Which containers need the Kubernetes API, and how sure we are: the evidence ladder shared by the checks.

A finding that a pod will be cut off from the API server, or will start without credentials for it, is only as
certain as the claim that the pod calls the API at all. Two kinds of evidence, of very different weight:

- **a container runs a program known to call the API** (`argocd admin redis-initial-password`, an Argo CD
  controller or server, `argocd-dex rundex`, a `kubectl` command that talks to a server): certain. Argo CD
  v2.11.1's `secret-init` is this case.
- **only RBAC**: the pod's ServiceAccount is bound to a role with rules and its token is mounted. That says someone
  meant the pod to be *allowed* to call the API, not that any of its containers does. Argo CD's redis-ha haproxy
  (v2.5 to v2.11.0) is bound to a Role granting `get endpoints`, yet haproxy never calls the API: a hunch at best.

The checks turn the first into errors and the second into warnings (or info, when every container runs an image
known not to call the API). docs/preflight.md shows the ladder with the real examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from validator.manifests import KubeObject, containers_of, split_image
from validator.preflight.selectors import Lookup, PodTemplate

# Programs that call the Kubernetes API as soon as they start, and what they do with it. Matched on the program a
# container runs (after entrypoint wrappers), never on a word anywhere in its command line: Argo CD's dex init
# container runs `cp -n /usr/local/bin/argocd /shared/argocd-dex`, which names argocd-dex but calls nothing.
API_PROGRAMS = {
    "argocd-server": "reads its settings and Secrets through the Kubernetes API",
    "argocd-application-controller": "watches and syncs resources through the Kubernetes API",
    "argocd-applicationset-controller": "watches ApplicationSets through the Kubernetes API",
    "argocd-notifications": "watches Applications and reads its ConfigMap through the Kubernetes API",
}
# Programs whose subcommand decides: (program, subcommand words) -> what it does.
API_SUBCOMMANDS = {
    ("argocd", "admin redis-initial-password"): "creates Secret argocd-redis through the Kubernetes API",
    ("argocd-dex", "rundex"): "reads argocd-cm and argocd-secret through the Kubernetes API",
}
ENTRYPOINT_WRAPPERS = frozenset({"entrypoint.sh", "uid_entrypoint.sh", "tini", "dumb-init", "--"})
# kubectl subcommands that never contact a server; any other `kubectl <word>` in a command line does.
KUBECTL_CLIENT_ONLY = frozenset({"kustomize", "completion", "config", "plugin", "help", "options"})
_KUBECTL = re.compile(r"(?:^|[\s;&|(/`])kubectl\s+([A-Za-z][\w-]*)")
# Images of programs that never call the Kubernetes API: RBAC alone on such a pod is context, not a problem.
NON_API_IMAGES = ("redis", "haproxy")

_SA_USER = "system:serviceaccount:"  # a ServiceAccount's user name: system:serviceaccount:<namespace>:<name>
# Groups every service account token is in (RBAC's authenticator adds both), and the prefix of a namespace's.
_EVERY_ACCOUNT = frozenset({"system:serviceaccounts", "system:authenticated"})
_ACCOUNTS_OF = "system:serviceaccounts:"
# ClusterRoles every cluster has (bindings to them grant API access even though the bundle lacks them).
BUILTIN_CLUSTER_ROLES = frozenset({"cluster-admin", "admin", "edit", "view"})


def command_line(container: dict[str, Any]) -> list[str]:
    return [str(part) for part in (container.get("command") or []) + (container.get("args") or [])]


def api_call(container: dict[str, Any]) -> str | None:
    """What the container does with the API ('`argocd admin redis-initial-password`, which creates ...'), or None when
    it runs no program known to call it."""
    words = command_line(container)
    while words and PurePosixPath(words[0]).name in ENTRYPOINT_WRAPPERS:
        words = words[1:]
    if words:
        program = PurePosixPath(words[0]).name
        rest = " ".join(words[1:])
        if program in API_PROGRAMS:
            return f"`{program}`, which {API_PROGRAMS[program]}"
        for (name, sub), why in API_SUBCOMMANDS.items():
            if program == name and (rest + " ").startswith(sub + " "):
                return f"`{name} {sub}`, which {why}"
    for match in _KUBECTL.finditer(" ".join(words)):
        if match.group(1) not in KUBECTL_CLIENT_ONLY:
            return f"`kubectl {match.group(1)}`, which talks to the API server"
    return None


@dataclass(frozen=True)
class TokenMount:
    """Whether the kubelet gives the pod a ServiceAccount token, and which setting decided it."""

    account: str
    mounted: bool
    setting: str  # e.g. "the pod's automountServiceAccountToken: false"


def token_mount(lookup: Lookup, tmpl: PodTemplate) -> TokenMount:
    """The pod's setting wins over its ServiceAccount's; a projected serviceAccountToken volume is a token too."""
    name = str(tmpl.spec.get("serviceAccountName") or tmpl.spec.get("serviceAccount") or "default")
    projected = any(
        isinstance(source, dict) and "serviceAccountToken" in source
        for volume in tmpl.spec.get("volumes") or [] if isinstance(volume, dict)
        for source in (volume.get("projected") or {}).get("sources") or []
    )
    pod_setting = tmpl.spec.get("automountServiceAccountToken")
    if pod_setting is not None:
        return TokenMount(name, pod_setting is not False or projected,
                          f"{tmpl.label}'s pod template sets automountServiceAccountToken: {_yaml(pod_setting)}")
    account = lookup.get("ServiceAccount", name, tmpl.namespace)
    account_setting = account.body.get("automountServiceAccountToken") if account else None
    if account_setting is not None:
        return TokenMount(name, account_setting is not False or projected,
                          f"ServiceAccount {name} sets automountServiceAccountToken: {_yaml(account_setting)}")
    return TokenMount(name, True, "the default (a token is mounted)")


def _yaml(value: Any) -> str:
    """A setting as the manifest spells it (false, not Python's False)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _role_grants(lookup: Lookup, binding: KubeObject) -> bool:
    ref = binding.body.get("roleRef") or {}
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    role = lookup.get(kind, name, binding.namespace if kind == "Role" else "")
    if role is None:
        return kind == "ClusterRole" and is_builtin_cluster_role(name)
    return bool(role.body.get("rules")) or bool(role.body.get("aggregationRule"))


def is_builtin_cluster_role(name: str) -> bool:
    return name in BUILTIN_CLUSTER_ROLES or name.startswith("system:")


class Grants:
    """Which bindings in the bundle grant a ServiceAccount any rules, indexed once for every pod."""

    def __init__(self, lookup: Lookup) -> None:
        self._accounts: dict[tuple[str, str], list[KubeObject]] = {}  # (namespace, account) -> bindings
        self._groups: dict[str, list[KubeObject]] = {}  # namespace ('*' = all) -> bindings
        for binding in lookup.of_kind("RoleBinding", "ClusterRoleBinding"):
            if not _role_grants(lookup, binding):
                continue
            for subject in binding.body.get("subjects") or []:
                if not isinstance(subject, dict):
                    continue
                name = str(subject.get("name", ""))
                if subject.get("kind") == "ServiceAccount":
                    key = (str(subject.get("namespace") or binding.namespace), name)
                    self._accounts.setdefault(key, []).append(binding)
                elif subject.get("kind") == "User" and name.startswith(_SA_USER) and name.count(":") == 3:
                    namespace, account = name.removeprefix(_SA_USER).split(":")  # how RBAC names an account
                    self._accounts.setdefault((namespace, account), []).append(binding)
                elif subject.get("kind") == "Group" and name in _EVERY_ACCOUNT:
                    self._groups.setdefault("*", []).append(binding)
                elif subject.get("kind") == "Group" and name.startswith(_ACCOUNTS_OF):
                    self._groups.setdefault(name.removeprefix(_ACCOUNTS_OF), []).append(binding)

    def of(self, account: str, namespace: str) -> list[KubeObject]:
        """Bindings granting the account rules; a RoleBinding only grants within its own namespace."""
        found = self._accounts.get((namespace, account), []) + self._groups.get(namespace, []) + self._groups.get(
            "*", [])
        unique = {id(b): b for b in found if b.kind == "ClusterRoleBinding" or b.namespace == namespace}
        return list(unique.values())


CERTAIN, RBAC_ONLY, RBAC_ONLY_NON_API_IMAGES = "certain", "rbac-only", "rbac-only-non-api-images"


@dataclass(frozen=True)
class ApiNeed:
    """Why a pod needs the API, how sure that is (`evidence`), and which containers: those running a known API
    caller when there are any, else every container (RBAC names no container)."""

    evidence: str  # CERTAIN | RBAC_ONLY | RBAC_ONLY_NON_API_IMAGES
    reasons: tuple[str, ...]
    containers: tuple[str, ...]

    @property
    def certain(self) -> bool:
        return self.evidence == CERTAIN


def callers(tmpl: PodTemplate) -> list[tuple[str, str]]:
    """(container name, what it does with the API) for each container that runs a known API caller."""
    found = []
    for _, container in containers_of(tmpl.spec):
        call = api_call(container)
        if call is not None:
            found.append((str(container.get("name")), call))
    return found


def api_need(tmpl: PodTemplate, lookup: Lookup, grants: Grants) -> ApiNeed | None:
    """Whether the pod will call the Kubernetes API, with the evidence, or None."""
    known = callers(tmpl)
    reasons = [f"container {name} runs {call}" for name, call in known]
    token = token_mount(lookup, tmpl)
    if token.mounted:
        for binding in grants.of(token.account, tmpl.namespace):
            ref = binding.body.get("roleRef") or {}
            reasons.append(f"ServiceAccount {token.account} is bound by {binding.kind} {binding.name} "
                           f"to {ref.get('kind')} {ref.get('name')} and its token is mounted")
    if not reasons:
        return None
    if known:
        return ApiNeed(CERTAIN, tuple(reasons), tuple(dict.fromkeys(name for name, _ in known)))
    everyone = [c for _, c in containers_of(tmpl.spec)]
    images = {split_image(str(c.get("image", "")))[0].rsplit("/", 1)[-1] for c in everyone}
    evidence = RBAC_ONLY_NON_API_IMAGES if images and images <= set(NON_API_IMAGES) else RBAC_ONLY
    return ApiNeed(evidence, tuple(reasons), tuple(str(c.get("name")) for c in everyone))
