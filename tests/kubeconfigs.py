"""One kubeconfig writer for the test doubles (API double, fake production API server)."""

from __future__ import annotations

import json
from pathlib import Path


def write_kubeconfig(path: Path, server: str, context: str, token: str) -> Path:
    """A single-context kubeconfig with a bearer token. JSON, which is also YAML: the kubernetes client, kubectl
    and the fake kind (which reads it as JSON) all take it."""
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": context,
           "clusters": [{"name": context, "cluster": {"server": server}}],
           "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
           "users": [{"name": context, "user": {"token": token}}], "preferences": {}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path
