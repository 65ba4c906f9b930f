"""One interface for every way of getting a disposable cluster (like kind's internal providers package)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from validator.cluster.model import Cluster
from validator.cluster.tools import Progress


class Provider(ABC):
    """prepare() checks the environment without side effects; create() makes the cluster usable;
    teardown() leaves nothing behind and returns what it could not clean (empty list = clean)."""

    name: str

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    @abstractmethod
    def prepare(self) -> Cluster: ...

    @abstractmethod
    def create(self, cluster: Cluster) -> None: ...

    @abstractmethod
    def teardown(self, cluster: Cluster) -> list[str]: ...

    def export_logs(self, cluster: Cluster, dest: Path) -> Path | None:
        """Node-level logs for diagnostics; providers without node access export nothing. May raise: the
        caller only warns, since diagnostics must never stand in the way of the teardown."""
        return None

    def exists(self, cluster: Cluster) -> bool:
        """Whether there is still something to keep (a failed create may have removed it all)."""
        return True

    def keep_hint(self, cluster: Cluster) -> list[str]:
        return [f"kubeconfig: {cluster.kubeconfig} (context {cluster.context})",
                f"inspect it with: {cluster.kubectl_command('get', 'pods', '-A')}"]
