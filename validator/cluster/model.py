"""The cluster a run talks to, reachable only through its own kubeconfig file and context."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes


@dataclass
class Cluster:
    name: str
    kubeconfig: Path
    context: str
    provider: str
    created_by_us: bool
    failed: bool = False  # set by the caller (mark_failed) so keep=on-failure and log export know the verdict
    managed: bool = False  # teardown owes this cluster a cleanup (kind: our cluster; existing: what we installed)
    details: dict[str, Any] = field(default_factory=dict)
    # On a cluster we did not create: (kind, name) of the namespaces and cluster-scoped objects there before the run.
    # Never installed into or over: teardown removes only what appeared during the run, so the candidate's objects
    # would stay behind in such a namespace, and such an object (another Argo CD's ClusterRole) would stay changed.
    foreign: frozenset[tuple[str, str]] = frozenset()

    def api_client(self) -> kubernetes.client.ApiClient:
        """A client built only from our kubeconfig file and context: never KUBECONFIG or ~/.kube/config."""
        return client_for(self.kubeconfig, self.context)

    def mark_failed(self) -> None:
        self.failed = True

    def delete_command(self) -> str | None:
        """How a user deletes a kept cluster by hand (kind clusters we created; an existing cluster is not ours)."""
        if self.provider != "kind" or not self.created_by_us:
            return None
        return shlex.join(["kind", "delete", "cluster", "--name", self.name, "--kubeconfig",
                           str(self.kubeconfig.absolute())])

    def kubectl_command(self, *args: str) -> str:
        """A kubectl command line for the user; absolute, so it works from any directory (--artifacts may be
        relative)."""
        argv = ["kubectl", "--kubeconfig", str(self.kubeconfig.absolute()), "--context", self.context, *args]
        return shlex.join(argv)


def client_for(kubeconfig: Path, context: str) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(kubeconfig), context=context,
                                                    persist_config=False)
