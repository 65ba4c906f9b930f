"""Context safety: accept only the kubeconfig we created (kind) or the one named explicitly (existing)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from validator.errors import EnvironmentNotReady, InputError
from validator.manifests import load_config_document


def load(path: Path) -> dict[str, Any]:
    doc = load_config_document(path, "kubeconfig")
    if not isinstance(doc, dict):
        raise InputError(f"kubeconfig {path} is not a kubeconfig (not a mapping)")
    return doc


def _named(doc: dict[str, Any], section: str, name: str) -> dict[str, Any] | None:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            inner = entry.get(section[:-1])
            return inner if isinstance(inner, dict) else {}
    return None


def server_of(path: Path, context: str) -> str:
    """The API server URL that `context` in `path` points at; InputError if the context is not there."""
    doc = load(path)
    ctx = _named(doc, "contexts", context)
    if ctx is None:
        names = [c.get("name") for c in doc.get("contexts") or [] if isinstance(c, dict)]
        raise InputError(f"context {context!r} not found in {path} (it has: {', '.join(map(str, names)) or 'none'})")
    cluster = _named(doc, "clusters", str(ctx.get("cluster", "")))
    if not cluster or not cluster.get("server"):
        raise InputError(f"context {context!r} in {path} names no cluster with a server")
    return str(cluster["server"])


def is_loopback(server: str) -> bool:
    host = urlsplit(server).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_kind_kubeconfig(path: Path, cluster_name: str) -> str:
    """Refuse anything but context kind-<our name> pointing at a loopback server; returns the context."""
    context = f"kind-{cluster_name}"
    try:
        server = server_of(path, context)
    except InputError as exc:
        raise EnvironmentNotReady(f"refusing the kubeconfig kind wrote: {exc}") from None
    if not is_loopback(server):
        raise EnvironmentNotReady(
            f"refusing to talk to {server}: the kubeconfig kind wrote for {cluster_name} must point at a loopback "
            "address (127.0.0.1); something else edited it")
    if urlsplit(server).scheme not in ("https", "http"):
        raise EnvironmentNotReady(f"refusing API server URL {server!r}")
    return context
