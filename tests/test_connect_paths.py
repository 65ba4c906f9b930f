"""The printed kubectl and delete lines work from any directory, whatever --artifacts was (issue #15)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.apidouble import ApiDouble
from tests.apidouble.argocd import healthy_redis
from tests.conftest import real_manifest
from tests.fakes import FakeTools, fake_tools  # noqa: F401  (fixture)
from tests.test_e2e import mirror  # noqa: F401  (fixture)
from validator.cli import main
from validator.cluster.model import Cluster


def test_commands_name_the_kubeconfig_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cluster = Cluster("argocd-mirror-x", Path("artifacts/clusters/main/kubeconfig"), "kind-argocd-mirror-x", "kind",
                      created_by_us=True)
    absolute = str(tmp_path / "artifacts/clusters/main/kubeconfig")
    assert shlex.split(cluster.kubectl_command("get", "pods", "-A")) == [
        "kubectl", "--kubeconfig", absolute, "--context", "kind-argocd-mirror-x", "get", "pods", "-A"]
    assert shlex.split(cluster.delete_command() or "") == [
        "kind", "delete", "cluster", "--name", "argocd-mirror-x", "--kubeconfig", absolute]


def test_reproduce_with_relative_artifacts_prints_absolute_commands(
        mirror: ApiDouble, fake_tools: FakeTools, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--quiet too: the verdict line, then only how to reach and delete the kept cluster."""
    healthy_redis(mirror)
    monkeypatch.chdir(tmp_path)
    code = main(["reproduce", str(real_manifest("v2.11.2/install.yaml")), "--artifacts", "art",
                 "--scenario", "fresh-install", "--wait-timeout", "60", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert captured.err == ""
    verdict, *connect = captured.out.splitlines()
    assert verdict.startswith("PASS ")
    (kept,) = fake_tools.clusters()
    assert [line.split(": ", 1)[0] for line in connect] == ["  cluster main", "  delete main"]
    for line in connect:
        argv = shlex.split(line.split(": ", 1)[1])
        kubeconfig = Path(argv[argv.index("--kubeconfig") + 1])
        assert kubeconfig.is_absolute() and kubeconfig.is_relative_to(tmp_path / "art"), line
    assert f"kind delete cluster --name {kept} --kubeconfig {tmp_path / 'art'}" in connect[1]
