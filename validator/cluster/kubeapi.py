"""Raw JSON requests through the official client (auth, TLS and host from the kubeconfig), plus readiness.

Raw paths instead of typed models: the cluster layer only needs a few fields, must tolerate partial
objects, and one generic path keeps namespaces, CRDs, RBAC and webhooks in a single table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from validator.errors import EnvironmentNotReady


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


def request(api: kubernetes.client.ApiClient, method: str, path: str, body: Any = None,
            query: dict[str, Any] | None = None, timeout_s: float = 15, content_type: str = "application/json") -> Any:
    """One API call; returns parsed JSON (or text), raises ApiError (status 0 = not reachable)."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    params = api.param_serialize(method=method, resource_path=path, query_params=list((query or {}).items()),
                                 header_params=headers, body=body, auth_settings=["BearerToken"])
    try:
        response = api.call_api(*params, _request_timeout=timeout_s)
        status, raw = response.status, response.read()
    except ApiException as exc:
        status = exc.status or 0
        raw = exc.body if exc.body is not None else (exc.reason or "")
    except Exception as exc:  # urllib3 connection errors, timeouts: the server is not reachable
        raise ApiError(0, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")
    try:
        data: Any = json.loads(text) if text.strip()[:1] in ("{", "[") else text
    except ValueError:
        data = text
    if not 200 <= status < 300:
        message = data.get("message") if isinstance(data, dict) else text.strip()[:200]
        raise ApiError(status, str(message or "error"))
    return data


def exists(api: kubernetes.client.ApiClient, path: str) -> bool:
    try:
        request(api, "GET", path)
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
        readyz = request(api, "GET", "/readyz", timeout_s=10)
    except ApiError as exc:
        return f"/readyz failed: {exc}"
    if str(readyz).strip() != "ok":
        return f"/readyz says {str(readyz).strip()[:200]!r}"
    try:
        nodes = request(api, "GET", "/api/v1/nodes", timeout_s=10).get("items") or []
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
