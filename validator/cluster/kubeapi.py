"""The cluster layer's view of the API edge (validator/kubeapi.py): one call, plus readiness.

request() retries a transient answer (no answer / connection reset, 429, 5xx; Retry-After honoured, capped) with
the one policy of validator/kubeapi.api_retrying, for up to retry_s: the existing provider's checks and teardown
and the NetworkPolicy probes go through it. Readiness polls on its own schedule and must see every failure, so
it asks for no retries (retry_s=0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import kubernetes
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from validator.errors import EnvironmentNotReady
from validator.kubeapi import DEFAULT_RETRY_S, Kube, KubeError


class ApiError(KubeError):
    """A failed call as the cluster layer reports it ("HTTP 404: ..."; status 0 = not reachable)."""

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status else self.message


def request(api: kubernetes.client.ApiClient, method: str, path: str, body: Any = None,
            query: dict[str, Any] | None = None, timeout_s: float = 15, content_type: str = "application/json",
            retry_s: float = DEFAULT_RETRY_S, sleep: Callable[[float], None] = time.sleep) -> Any:
    """One API call (each try bounded by timeout_s, transient answers retried for up to retry_s); returns parsed
    JSON (or text), raises ApiError with the last answer."""
    try:
        return Kube(api, timeout_s=timeout_s, retry_s=retry_s, sleep=sleep).call(method, path, body, query,
                                                                                  content_type)
    except KubeError as exc:
        raise ApiError(exc.status, exc.message or "error", exc.reason) from None


def exists(api: kubernetes.client.ApiClient, path: str, retry_s: float = DEFAULT_RETRY_S,
           sleep: Callable[[float], None] = time.sleep) -> bool:
    try:
        request(api, "GET", path, retry_s=retry_s, sleep=sleep)
        return True
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise


class NotReady(Exception):
    pass


def readiness_problem(api: kubernetes.client.ApiClient, expected_nodes: int) -> str | None:
    """Why the cluster is not ready yet (None when /readyz is ok and every expected node is Ready)."""
    try:
        readyz = request(api, "GET", "/readyz", timeout_s=10, retry_s=0)
    except ApiError as exc:
        return f"/readyz failed: {exc}"
    if str(readyz).strip() != "ok":
        return f"/readyz says {str(readyz).strip()[:200]!r}"
    try:
        nodes = request(api, "GET", "/api/v1/nodes", timeout_s=10, retry_s=0).get("items") or []
    except (ApiError, AttributeError) as exc:
        return f"listing nodes failed: {exc}"
    if len(nodes) < expected_nodes:
        return f"{len(nodes)} of {expected_nodes} nodes registered"
    for node in nodes:
        conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
        ready = conditions.get("Ready") or {}
        if ready.get("status") != "True":
            name = (node.get("metadata") or {}).get("name", "?")
            why = ": ".join(x for x in (ready.get("reason"), ready.get("message")) if x)
            return f"node {name} is not Ready" + (f" ({why})" if why else "")
    return None


def wait_ready(api: kubernetes.client.ApiClient, expected_nodes: int, timeout_s: float = 300,
               interval_s: float = 2, sleep: Callable[[float], None] = time.sleep) -> None:
    """Our own readiness check: kind exits 0 even when its --wait times out, so never trust that alone."""
    last: list[str] = ["never checked"]

    def check() -> None:
        problem = readiness_problem(api, expected_nodes)
        if problem:
            last[0] = problem
            raise NotReady(problem)

    try:
        for attempt in Retrying(retry=retry_if_exception_type(NotReady), stop=stop_after_delay(timeout_s),
                                wait=wait_fixed(interval_s), sleep=sleep, reraise=False):
            with attempt:
                check()
    except RetryError:
        raise EnvironmentNotReady(f"cluster not ready after {timeout_s:.0f}s: {last[0]}") from None
