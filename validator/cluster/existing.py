"""The `existing` provider: a cluster someone else made disposable (vcluster, k3d, a CI throwaway cluster).

Two locks before we touch it: --kubeconfig FILE and --context NAME given explicitly (never the ambient
kubeconfig), and the marker ConfigMap kube-public/argocd-mirror-disposable inside the cluster. Teardown
deletes what appeared during the run (namespaces, CRDs, cluster-scoped RBAC, webhooks) and verifies that
the cluster is back to the snapshot taken at the start. Every API call here retries a transient answer (a 429
"storage is (re)initializing" right after CRDs were deleted, a 503, a reset connection) with the one policy of
validator/kubeapi.api_retrying, bounded by retry_s.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes

from validator.cluster.base import Provider
from validator.cluster.kubeapi import ApiError, exists, request, wait_ready
from validator.cluster.kubeconfig import server_of
from validator.cluster.model import Cluster
from validator.cluster.tools import Progress
from validator.errors import EnvironmentNotReady, InputError
from validator.kubeapi import DEFAULT_RETRY_S
from validator.profiles import Profile

MARKER_NAMESPACE = "kube-public"
MARKER_NAME = "argocd-mirror-disposable"
MARKER_PATH = f"/api/v1/namespaces/{MARKER_NAMESPACE}/configmaps/{MARKER_NAME}"

# What a run may install cluster-wide, in deletion order: webhooks first so they cannot block the rest.
TRACKED: tuple[tuple[str, str], ...] = (
    ("MutatingWebhookConfiguration", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"),
    ("ValidatingWebhookConfiguration", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"),
    ("Namespace", "/api/v1/namespaces"),
    ("CustomResourceDefinition", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
    ("ClusterRoleBinding", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"),
    ("ClusterRole", "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
    ("APIService", "/apis/apiregistration.k8s.io/v1/apiservices"),
    ("PriorityClass", "/apis/scheduling.k8s.io/v1/priorityclasses"),
    ("IngressClass", "/apis/networking.k8s.io/v1/ingressclasses"),
)
Snapshot = dict[str, set[str]]


def snapshot(api: kubernetes.client.ApiClient, retry_s: float = DEFAULT_RETRY_S,
             sleep: Callable[[float], None] = time.sleep) -> Snapshot:
    """Names of every tracked cluster-scoped object (a type the server does not serve counts as empty)."""
    result: Snapshot = {}
    for kind, path in TRACKED:
        try:
            items = request(api, "GET", path, retry_s=retry_s, sleep=sleep).get("items") or []
        except ApiError as exc:
            if exc.status != 404:
                raise EnvironmentNotReady(f"cannot list {kind}s on the existing cluster: {exc}") from None
            items = []
        result[kind] = {str(i["metadata"]["name"]) for i in items if isinstance(i, dict) and i.get("metadata")}
    return result


def added(before: Snapshot, after: Snapshot) -> list[tuple[str, str]]:
    """(kind, name) of objects present now and not at the start, in deletion order."""
    return [(kind, name) for kind, _ in TRACKED for name in sorted(after.get(kind, set()) - before.get(kind, set()))]


def profile_mismatch(api: kubernetes.client.ApiClient, profile: Profile, retry_s: float = DEFAULT_RETRY_S,
                     sleep: Callable[[float], None] = time.sleep) -> str | None:
    """Why this cluster cannot stand in for the profile's production (None when it can): a verdict on another
    Kubernetes minor, or on fewer nodes than preflight reasoned about, would not be production's."""
    try:
        version = request(api, "GET", "/version", retry_s=retry_s, sleep=sleep)
        nodes = request(api, "GET", "/api/v1/nodes", retry_s=retry_s, sleep=sleep).get("items") or []
    except (ApiError, AttributeError) as exc:
        return f"cannot read its version and nodes: {exc}"
    git_version = str(version.get("gitVersion", "")) if isinstance(version, dict) else ""
    found = re.match(r"v?(\d+)\.(\d+)", git_version)
    if found is None or f"{found[1]}.{found[2]}" != profile.kubernetes_version:
        return (f"it runs Kubernetes {git_version[:40] or 'of an unknown version'} but profile {profile.name} mirrors "
                f"{profile.kubernetes_version}: use a profile with this cluster's kubernetesVersion, or a cluster "
                "that runs the profile's")
    if len(nodes) < len(profile.nodes):
        return (f"it has {len(nodes)} node(s) but profile {profile.name} mirrors {len(profile.nodes)}: scheduling "
                "would not be production's; use a profile with this cluster's nodes, or a larger cluster")
    return None


def locate(kubeconfig: Path | None, context: str | None) -> tuple[Path, str]:
    """The kubeconfig, resolved, and the server its CONTEXT points at: checked before anything else runs, so a
    typo in either costs no fetch and no preflight; InputError for a missing flag, file or context."""
    if kubeconfig is None or not context:
        raise InputError("the existing provider needs both --kubeconfig FILE and --context NAME, given explicitly "
                         "(the ambient KUBECONFIG and ~/.kube/config are never used)")
    try:
        resolved = Path(kubeconfig).resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop
        raise InputError(f"kubeconfig {kubeconfig}: {exc}") from None
    return resolved, server_of(resolved, context)


class ExistingProvider(Provider):
    name = "existing"

    def __init__(self, profile: Profile, kubeconfig: Path | None, context: str | None, progress: Progress, *,
                 ready_timeout_s: float = 60, teardown_timeout_s: float = 300, poll_s: float = 2,
                 sleep: Callable[[float], None] = time.sleep, retry_s: float | None = None) -> None:
        super().__init__(progress)
        self.profile = profile
        self.kubeconfig = kubeconfig
        self.context = context
        self.ready_timeout_s = ready_timeout_s
        self.teardown_timeout_s = teardown_timeout_s
        self.poll_s = poll_s
        self.sleep = sleep
        # how long one API call retries a transient answer: never longer than the teardown may take as a whole
        self.retry_s = min(DEFAULT_RETRY_S, teardown_timeout_s) if retry_s is None else retry_s
        self.before: Snapshot = {}

    def _request(self, api: kubernetes.client.ApiClient, method: str, path: str, **kwargs: Any) -> Any:
        return request(api, method, path, retry_s=self.retry_s, sleep=self.sleep, **kwargs)

    def _snapshot(self, api: kubernetes.client.ApiClient) -> Snapshot:
        return snapshot(api, self.retry_s, self.sleep)

    def prepare(self) -> Cluster:
        kubeconfig, server = locate(self.kubeconfig, self.context)
        assert self.context  # locate() refuses a missing one
        return Cluster(name=self.context, kubeconfig=kubeconfig, context=self.context, provider=self.name,
                       created_by_us=False, details={"server": server})

    def create(self, cluster: Cluster) -> None:
        api = cluster.api_client()
        try:
            marked = exists(api, MARKER_PATH, self.retry_s, self.sleep)
        except ApiError as exc:
            raise EnvironmentNotReady(f"cannot reach {cluster.details['server']} (context {cluster.context}): "
                                      f"{exc}") from None
        if not marked:
            raise EnvironmentNotReady(
                f"refusing context {cluster.context}: the cluster is not marked disposable (no ConfigMap "
                f"{MARKER_NAMESPACE}/{MARKER_NAME}); create it only if this cluster may be wiped: "
                f"{cluster.kubectl_command('-n', MARKER_NAMESPACE, 'create', 'configmap', MARKER_NAME)}")
        wait_ready(api, expected_nodes=1, timeout_s=self.ready_timeout_s, interval_s=self.poll_s, sleep=self.sleep)
        mismatch = profile_mismatch(api, self.profile, self.retry_s, self.sleep)
        if mismatch:
            raise EnvironmentNotReady(f"context {cluster.context} does not mirror production: {mismatch}")
        self.before = self._snapshot(api)
        cluster.foreign = frozenset((kind, name) for kind, names in self.before.items() for name in names)
        cluster.managed = True  # from here on teardown owns whatever appears
        self.progress(f"using existing disposable cluster {cluster.context} ({cluster.details['server']})")

    def _release_finalizers(self, api: kubernetes.client.ApiClient, crd_name: str) -> None:
        """Strip finalizers from instances of a CRD the run installed: their controller (e.g. Argo CD's
        resources-finalizer) is being deleted with them, so the namespace and the CRD would hang Terminating."""
        try:
            crd = self._request(api, "GET", f"{dict(TRACKED)['CustomResourceDefinition']}/{crd_name}")
            spec = crd.get("spec") or {}
            for version in [v["name"] for v in spec.get("versions") or [] if v.get("served")][:1]:
                prefix = f"/apis/{spec['group']}/{version}"
                for item in self._request(api, "GET", f"{prefix}/{spec['names']['plural']}").get("items") or []:
                    meta = item.get("metadata") or {}
                    if not meta.get("finalizers"):
                        continue
                    ns = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
                    self._request(api, "PATCH", f"{prefix}{ns}/{spec['names']['plural']}/{meta['name']}",
                            body={"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
        except (ApiError, KeyError, TypeError, AttributeError) as exc:
            self.progress(f"warning: could not release finalizers of {crd_name} objects: {exc}")

    def teardown(self, cluster: Cluster) -> list[str]:
        api = cluster.api_client()
        try:
            extra = added(self.before, self._snapshot(api))
        except EnvironmentNotReady as exc:
            return [f"could not verify the cleanup: {exc}"]
        for kind, name in extra:
            if kind == "CustomResourceDefinition":
                self._release_finalizers(api, name)
        for kind, name in extra:
            path = dict(TRACKED)[kind] + f"/{name}"
            try:
                self._request(api, "DELETE", path, body={"propagationPolicy": "Background"})
            except ApiError as exc:
                if exc.status != 404:
                    self.progress(f"warning: deleting {kind} {name} failed: {exc}")
        if extra:
            self.progress(f"removed {len(extra)} cluster-scoped object(s) the run installed; waiting until gone")
        deadline = time.monotonic() + self.teardown_timeout_s
        while True:
            try:
                left = added(self.before, self._snapshot(api))
            except EnvironmentNotReady as exc:
                return [f"could not verify the cleanup: {exc}"]
            if not left:
                return []
            if time.monotonic() >= deadline:
                return [f"existing cluster {cluster.context} not left as found after {self.teardown_timeout_s:.0f}s: "
                        + ", ".join(f"{k}/{n}" for k, n in left[:10])]
            self.sleep(self.poll_s)
