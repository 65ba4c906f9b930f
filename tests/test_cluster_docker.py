"""The real thing: kind + Docker. Runs in .github/workflows (GitHub-hosted runners); skipped here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from validator.cluster import mirror_cluster, prove_networkpolicy_enforced
from validator.errors import EnvironmentNotReady
from validator.profiles import load_profile


def _docker_reason() -> str | None:
    if shutil.which("kind") is None:
        return "kind is not installed (needs kind v0.33.0 and a Docker engine)"
    from validator.cluster.tools import docker_ping

    try:
        docker_ping(timeout_s=3)
    except EnvironmentNotReady as exc:
        return f"no Docker engine here: {exc.one_line()[:160]}"
    return None


@pytest.mark.docker
@pytest.mark.parametrize("profile", ["default", "calico"])
def test_real_cluster_enforces_networkpolicy_and_is_deleted(tmp_path: Path, profile: str) -> None:
    reason = _docker_reason()
    if reason:
        pytest.skip(reason)
    with mirror_cluster(load_profile(profile), tmp_path) as cluster:
        prove_networkpolicy_enforced(cluster)
        name = cluster.name
    import subprocess

    clusters = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True, check=True).stdout
    assert name not in clusters.split()
