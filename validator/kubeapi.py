"""The one thin edge to the Kubernetes API: raw JSON through the official client, with retries.

Host, auth and TLS come from an ApiClient built from the run's own kubeconfig (never an ambient one).
Raw paths, not typed models: install, watch, diagnose and the cluster layer handle any kind (CRDs included)
as plain dicts, exactly as the API returns them, which is what health and fail-fast read. Transient
failures (no answer, 429, 5xx) are retried with tenacity; everything else surfaces with the server's message.
`api_retrying` is the one retry policy of every API call the harness makes (install, wait/watch, the NetworkPolicy
probes, the existing provider's checks and teardown): no other module writes its own retry loop for the API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential
from urllib3.util.retry import Retry

from validator.manifests import KubeObject

MAX_RETRY_AFTER_S = 60.0  # API Priority and Fairness asks for up to 32 s; anything longer is not a hint we wait on


class KubeError(Exception):
    """A failed API call: HTTP status (0 = no answer), the Status reason and the server's message, and the
    server's Retry-After (seconds) when it sent one."""

    def __init__(self, status: int, message: str, reason: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.retry_after_s = status, message, reason, retry_after_s

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, throttled, or a server-side error (5xx)."""
        return self.status == 0 or self.status == 429 or self.status >= 500


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, KubeError) and exc.transient


def _retry_after(headers: Any) -> float | None:
    """The Retry-After header in seconds (the API server sends whole seconds with 429 and some 5xx)."""
    raw = (headers or {}).get("Retry-After")
    try:
        value = float(raw) if raw is not None else -1.0
    except ValueError:
        return None
    return min(value, MAX_RETRY_AFTER_S) if value >= 0 else None


def wait_honouring_retry_after(fallback: Callable[[RetryCallState], float]) -> Callable[[RetryCallState], float]:
    """A tenacity wait: the fallback back-off, but never shorter than what the server asked for, as client-go
    does (API Priority and Fairness throttles with 429 + Retry-After; retrying sooner only gets throttled again)."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = exc.retry_after_s if isinstance(exc, KubeError) and exc.retry_after_s else 0.0
        return max(fallback(state), asked)

    return wait


RETRY_WAIT = wait_honouring_retry_after(wait_exponential(multiplier=0.05, max=2))
DEFAULT_RETRY_S = 30.0  # how long one API call keeps retrying a transient answer, unless its caller bounds it


def api_retrying(retry_s: float, sleep: Callable[[float], None] = time.sleep,
                 retry: Callable[[BaseException], bool] = _transient) -> Retrying:
    """THE retry policy for the API (one place, used by Kube.call, the cluster layer's request() and the watches).

    Retries what `retry` says (by default: no answer / connection reset, 429, 5xx, with or without Retry-After)
    with exponential back-off (0.05 s doubling, at most 2 s between tries), never sooner than a Retry-After the
    server sent (itself capped at MAX_RETRY_AFTER_S), and never past `retry_s` after the first try: a wait that
    would cross that deadline is cut to it, so a call spends at most about retry_s + one request timeout. The last
    error is re-raised as it is. `sleep` is injectable so tests can see the waits without taking them.
    """

    def bounded(state: RetryCallState) -> float:
        left = retry_s - (state.seconds_since_start or 0.0)
        return max(0.0, min(RETRY_WAIT(state), left))

    return Retrying(retry=retry_if_exception(retry), stop=stop_after_delay(retry_s), wait=bounded, sleep=sleep,
                    reraise=True)


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the URL space."""

    group: str
    version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str = "", name: str = "", sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return base + ns + f"/{self.plural}" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


# Built-in kinds: no discovery round-trip for what every Argo CD release uses.
_BUILTIN: dict[tuple[str, str], tuple[str, bool]] = {
    ("", "Namespace"): ("namespaces", False), ("", "ConfigMap"): ("configmaps", True),
    ("", "Secret"): ("secrets", True), ("", "ServiceAccount"): ("serviceaccounts", True),
    ("", "Service"): ("services", True), ("", "Pod"): ("pods", True), ("", "Event"): ("events", True),
    ("", "Endpoints"): ("endpoints", True), ("", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("", "ResourceQuota"): ("resourcequotas", True), ("", "LimitRange"): ("limitranges", True),
    ("", "ReplicationController"): ("replicationcontrollers", True), ("", "Node"): ("nodes", False),
    ("apps", "Deployment"): ("deployments", True), ("apps", "StatefulSet"): ("statefulsets", True),
    ("apps", "ReplicaSet"): ("replicasets", True), ("apps", "DaemonSet"): ("daemonsets", True),
    ("batch", "Job"): ("jobs", True), ("batch", "CronJob"): ("cronjobs", True),
    ("networking.k8s.io", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io", "Ingress"): ("ingresses", True),
    ("networking.k8s.io", "IngressClass"): ("ingressclasses", False),
    ("rbac.authorization.k8s.io", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("policy", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("autoscaling", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("apiregistration.k8s.io", "APIService"): ("apiservices", False),
}


# urllib3's default Retry would, on GETs only, sleep whatever a 429's Retry-After says (uncapped, up to 3 times)
# before we ever see the answer; every other failure would reach us at once. One policy instead: ours (tenacity,
# bounded by retry_s and the callers' deadlines, honouring a capped Retry-After on every verb).
_NO_TRANSPORT_RETRIES = Retry(total=0, respect_retry_after_header=False)


def _one_retry_policy(api: ApiClient) -> None:
    """Switch the client's connection pools to _NO_TRANSPORT_RETRIES (once per ApiClient)."""
    pools = getattr(getattr(api, "rest_client", None), "pool_manager", None)
    if pools is None or pools.connection_pool_kw.get("retries") is _NO_TRANSPORT_RETRIES:
        return
    pools.connection_pool_kw["retries"] = _NO_TRANSPORT_RETRIES
    pools.clear()  # pools made before keep their own Retry: drop them (idle connections only)


class Kube:
    """Raw JSON calls through the official client (host, auth and TLS come from the kubeconfig-built ApiClient).

    Raw paths, not typed models: install/watch/diagnose handle any kind (CRDs included) as plain dicts, exactly as
    the API returns them, which is what health and fail-fast read. Transient failures are retried with tenacity.
    """

    def __init__(self, api: ApiClient, timeout_s: float = 30, retry_s: float = DEFAULT_RETRY_S,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        _one_retry_policy(api)
        self.api = api
        self.timeout_s = timeout_s  # every request's own deadline (the client's _request_timeout)
        self.retry_s = retry_s
        self.sleep = sleep
        self._discovered: dict[tuple[str, str], dict[str, Resource]] = {}

    # -- requests ----------------------------------------------------------------------------------
    def send(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
             content_type: str = "application/json", stream: bool = False, timeout: Any = None) -> Any:
        """One request, no retry: parsed JSON (text for non-JSON answers such as logs), or the raw urllib3 response
        when stream=True."""
        timeout = self.timeout_s if timeout is None else timeout
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = self.api.param_serialize(method=method, resource_path=path,
                                          query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
                                          header_params=headers, body=body, auth_settings=["BearerToken"])
        try:
            response = self.api.call_api(*params, _request_timeout=timeout)
        except ApiException as exc:
            raise _error(exc.status or 0, exc.body or exc.reason or "", exc.headers) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(0, f"{method} {path}: API server not reachable: {exc}") from None
        if not 200 <= response.status <= 299:
            try:
                raw = response.read()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise KubeError(0, f"{method} {path}: {exc}") from None
            raise _error(response.status, raw, response.headers)
        if stream:
            return response.response
        try:
            raw = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(0, f"{method} {path}: connection lost: {exc}") from None
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if "json" not in str(response.headers.get("Content-Type", "")):
            return text  # pod logs are text/plain: a log line that happens to be JSON stays a log line
        try:
            return json.loads(text)
        except ValueError:
            return text

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
             content_type: str = "application/json", retry: bool = True) -> Any:
        """One API call returning parsed JSON (or text); transient failures retried for up to retry_s."""
        if not retry or self.retry_s <= 0:
            return self.send(method, path, body, query, content_type, False, self.timeout_s)
        for attempt in api_retrying(self.retry_s, self.sleep):
            with attempt:
                return self.send(method, path, body, query, content_type, False, self.timeout_s)
        raise AssertionError("unreachable")  # pragma: no cover - Retrying either returns or re-raises

    def stream(self, path: str, query: dict[str, Any], read_timeout_s: float) -> Any:
        """Open a watch stream; returns the urllib3 response to read lines from (caller closes it)."""
        return self.send("GET", path, None, query, "application/json", True, (self.timeout_s, read_timeout_s))

    # -- resource mapping --------------------------------------------------------------------------
    def resource(self, api_version: str, kind: str) -> Resource:
        """URL of a kind: built-in table first, then the API server's discovery (CRDs), cached per group version."""
        group, _, version = api_version.rpartition("/")
        known = _BUILTIN.get((group, kind))
        if known is not None:
            return Resource(group, version, known[0], known[1])
        gv = (group, version)
        if gv not in self._discovered or kind not in self._discovered[gv]:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                listing = self.call("GET", path)
            except KubeError as exc:
                if exc.status == 404:
                    raise KubeError(404, f'no matches for kind "{kind}" in version "{api_version}"', "NotFound") \
                        from None
                raise
            self._discovered[gv] = {
                r["kind"]: Resource(group, version, r["name"], bool(r.get("namespaced")))
                for r in listing.get("resources") or [] if "/" not in r.get("name", "")
            }
        found = self._discovered[gv].get(kind)
        if found is None:
            raise KubeError(404, f'no matches for kind "{kind}" in version "{api_version}"', "NotFound")
        return found

    def forget_discovery(self) -> None:
        self._discovered.clear()

    def path_of(self, obj: KubeObject, sub: str = "") -> str:
        return self.resource(obj.api_version, obj.kind).path(obj.namespace, obj.name, sub)


def _error(status: int, raw: Any, headers: Any = None) -> KubeError:
    """A KubeError carrying the Status message the server sent (or the raw text), and its Retry-After."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    retry_after = _retry_after(headers)
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return KubeError(status, str(body.get("message") or text), str(body.get("reason") or ""), retry_after)
    return KubeError(status, " ".join(text.split())[:500] or f"HTTP {status}", retry_after_s=retry_after)


def iter_lines(response: Any) -> Iterator[str]:
    """The non-blank lines of a chunked watch stream as they arrive: the official client's line splitter, so an
    unfinished last line (a stream cut mid-event) is dropped, never handed on as a truncated event."""
    return (line for line in iter_resp_lines(response) if line.strip())
