"""NetworkPolicy positive control: prove enforcement on this very cluster before trusting any pass.

Two probe pods dial the API server's ClusterIP (the same `dial tcp 10.96.0.1:443` the v2.11.1
secret-init made; by IP from the injected KUBERNETES_SERVICE_* env, so DNS plays no part):
- `probe-restricted` sits under a deny-all-egress NetworkPolicy and must end up blocked;
- `probe-open` has no policy and must connect (otherwise the pod network, not policy, is broken).
Enforcement may lag (kindnet's kube-network-policies lets a new pod's first packets through), so the
restricted probe retries and counts as blocked after two consecutive failures within its attempts.
Enforcement absent -> EnvironmentNotReady: "could not validate", never a pass.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from validator.cluster.kubeapi import ApiError, request
from validator.cluster.model import Cluster
from validator.cluster.tools import Progress, stderr_progress
from validator.errors import EnvironmentNotReady

PROBE_NAMESPACE = "argocd-mirror-probe"
# busybox's nc has -z/-w; override with ARGOCD_MIRROR_PROBE_IMAGE (e.g. a digest-pinned or preloaded image).
PROBE_IMAGE = os.environ.get("ARGOCD_MIRROR_PROBE_IMAGE", "busybox:1.37.0")
LABEL = "argocd-mirror/probe"
_DIAL = 'nc -z -w 3 "$KUBERNETES_SERVICE_HOST" "$KUBERNETES_SERVICE_PORT"'


def restricted_script(attempts: int) -> str:
    """Exit 0 once two consecutive dials fail (blocked), 1 if it never got blocked."""
    return (f'b=0; i=0; while [ $i -lt {attempts} ]; do i=$((i+1)); '
            f'if {_DIAL}; then echo "attempt $i: connected"; b=0; '
            f'else echo "attempt $i: blocked"; b=$((b+1)); [ $b -ge 2 ] && exit 0; fi; sleep 1; done; exit 1')


def open_script(attempts: int) -> str:
    """Exit 0 on the first successful dial, 1 if the API server was never reachable."""
    return (f'i=0; while [ $i -lt {attempts} ]; do i=$((i+1)); '
            f'if {_DIAL}; then echo "attempt $i: connected"; exit 0; fi; echo "attempt $i: failed"; sleep 1; done; '
            f'exit 1')


def probe_objects(image: str, attempts: int) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, body) in creation order: the policy exists before any probe pod starts."""
    ns = PROBE_NAMESPACE
    meta_labels = {"app.kubernetes.io/managed-by": "argocd-mirror"}

    def pod(name: str, role: str, script: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": {**meta_labels, LABEL: role}},
                "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                         "automountServiceAccountToken": False,
                         # admissible under the "restricted" Pod Security Standard some disposable clusters enforce
                         "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                             "seccompProfile": {"type": "RuntimeDefault"}},
                         "containers": [{"name": "probe", "image": image, "imagePullPolicy": "IfNotPresent",
                                         "command": ["sh", "-c", script],
                                         "securityContext": {"allowPrivilegeEscalation": False,
                                                             "capabilities": {"drop": ["ALL"]}},
                                         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                                       "limits": {"memory": "32Mi"}}}]}}

    return [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": ns, "labels": meta_labels}}),
        (f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
         {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "deny-all-egress", "namespace": ns, "labels": meta_labels},
          "spec": {"podSelector": {"matchLabels": {LABEL: "restricted"}}, "policyTypes": ["Egress"]}}),
        (f"/api/v1/namespaces/{ns}/pods", pod("probe-restricted", "restricted", restricted_script(attempts))),
        (f"/api/v1/namespaces/{ns}/pods", pod("probe-open", "open", open_script(attempts))),
    ]


def pod_state(pod: dict[str, Any]) -> tuple[str, str]:
    """(phase, why it waits) of a probe pod; 'why' names e.g. ImagePullBackOff."""
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return phase, f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
    return phase, ""


def verdict(restricted: str, open_: str, logs: dict[str, str]) -> str | None:
    """None when enforcement is proven, else why the run cannot be trusted. Pure, for tests."""
    def tail(name: str) -> str:
        return " | ".join(logs.get(name, "").strip().splitlines()[-3:]) or "no output"

    if open_ != "Succeeded":
        return ("could not validate: the unrestricted probe pod could not reach the API server, so the pod network "
                f"is broken and NetworkPolicy enforcement cannot be proven ({tail('probe-open')})")
    if restricted != "Succeeded":
        return ("could not validate: NetworkPolicy is not enforced on this cluster: a pod under a deny-all-egress "
                f"policy still reached the API server ({tail('probe-restricted')}); use kind >= v0.24 with its default "
                "kindnet and node image, or the calico profile; kernels without nftables/nfqueue (e.g. WSL2) fail open")
    return None


def prove_networkpolicy_enforced(cluster: Cluster, timeout_s: float = 180, image: str = PROBE_IMAGE,
                                 attempts: int = 10, poll_s: float = 2, progress: Progress = stderr_progress,
                                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Raise EnvironmentNotReady unless a deny-all-egress policy demonstrably blocks egress here."""
    api = cluster.api_client()
    ns_path = f"/api/v1/namespaces/{PROBE_NAMESPACE}"
    progress(f"proving NetworkPolicy enforcement (probe image {image})")
    try:
        _delete_and_wait(api, ns_path, timeout_s, poll_s, sleep)  # a leftover from an interrupted run
        for path, body in probe_objects(image, attempts):
            request(api, "POST", path, body=body)
        phases = _wait_terminated(api, timeout_s, poll_s, sleep)
        logs = {name: _logs(api, name) for name in phases}
        problem = verdict(phases["probe-restricted"], phases["probe-open"], logs)
        cluster.details["networkpolicy"] = {"enforced": problem is None, "phases": phases, "logs": logs}
        if problem:
            raise EnvironmentNotReady(problem)
        progress("NetworkPolicy is enforced (deny-all-egress probe blocked, open probe connected)")
    except ApiError as exc:
        raise EnvironmentNotReady(f"could not validate: NetworkPolicy probe failed: {exc}") from None
    finally:
        try:
            _delete_and_wait(api, ns_path, timeout_s, poll_s, sleep)
        except (ApiError, EnvironmentNotReady) as exc:
            progress(f"warning: probe namespace {PROBE_NAMESPACE} not cleaned up: {exc}")


def _wait_terminated(api: Any, timeout_s: float, poll_s: float, sleep: Callable[[float], None]) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    names = ("probe-restricted", "probe-open")
    while True:
        states = {n: pod_state(request(api, "GET", f"/api/v1/namespaces/{PROBE_NAMESPACE}/pods/{n}")) for n in names}
        if all(phase in ("Succeeded", "Failed") for phase, _ in states.values()):
            return {n: phase for n, (phase, _) in states.items()}
        if time.monotonic() >= deadline:
            stuck = "; ".join(f"{n} {p}{' (' + why + ')' if why else ''}" for n, (p, why) in states.items())
            raise EnvironmentNotReady(f"could not validate: NetworkPolicy probe pods did not finish within "
                                      f"{timeout_s:.0f}s: {stuck}")
        sleep(poll_s)


def _logs(api: Any, name: str) -> str:
    try:
        return str(request(api, "GET", f"/api/v1/namespaces/{PROBE_NAMESPACE}/pods/{name}/log"))[-4000:]
    except ApiError:
        return ""


def _delete_and_wait(api: Any, path: str, timeout_s: float, poll_s: float, sleep: Callable[[float], None]) -> None:
    try:
        request(api, "DELETE", path)
    except ApiError as exc:
        if exc.status == 404:
            return
        raise
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            request(api, "GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        if time.monotonic() >= deadline:
            raise EnvironmentNotReady(f"{path} still exists {timeout_s:.0f}s after deletion")
        sleep(poll_s)
