"""Context safety of the user-facing commands: with KUBECONFIG and HOME pointing at "production" (a recording
HTTP server), `validate`, `reproduce` and `sweep` run end to end and not one request reaches it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apidouble import ApiDouble
from tests.apidouble.argocd import broken_redis, healthy_redis
from tests.conftest import real_manifest
from tests.fakes import FakeTools, RecordingServer, fake_tools, production  # noqa: F401  (fixtures)
from tests.test_e2e import argocd_syncs_smoke_app, enforcing_cluster, enforcing_probes, v2_11_1_file
from validator.cli import main


@pytest.fixture
def ambient(production: RecordingServer, tmp_path: Path,  # noqa: F811
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """~/.kube/config and $KUBECONFIG both name "production" as the current context."""
    home = tmp_path / "home"
    config = production.kubeconfig(home / ".kube" / "config")
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.setenv("HOME", str(home))
    before = config.read_text()
    yield config
    assert config.read_text() == before, "the ambient kubeconfig was modified"
    assert production.requests == [], f"requests reached production: {production.requests}"


def test_validate_reproduce_sweep_never_reach_production(ambient: Path, fake_tools: FakeTools,  # noqa: F811
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    candidate = real_manifest("v2.11.2/install.yaml")
    with ApiDouble() as double:
        enforcing_cluster(double)
        argocd_syncs_smoke_app(double)
        healthy_redis(double)
        fake_tools.api_server(double.url)
        assert main(["validate", str(candidate), "--artifacts", str(tmp_path / "validate")]) == 0
        enforcing_probes(double)
        argocd_syncs_smoke_app(double)
        assert main(["reproduce", str(candidate), "--artifacts", str(tmp_path / "reproduce")]) == 0
        out = capsys.readouterr().out
        assert "The cluster is kept for you to explore; when done, run its delete line" in out
        (kept_name,) = [n for n in fake_tools.clusters() if n.startswith("argocd-mirror-")]
        assert f"  delete main: kind delete cluster --name {kept_name} --kubeconfig {tmp_path / 'reproduce'}" in out
        assert f"--kubeconfig {tmp_path / 'reproduce'}" in out  # its own kubeconfig, never the ambient one
    kept = [name for name in fake_tools.clusters() if name.startswith("argocd-mirror-")]
    assert len(kept) == 1  # validate deleted its cluster, reproduce kept its own
    assert main(["sweep", "--older-than", "0"]) == 0
    assert fake_tools.clusters() == {}
    assert all(entry["kubeconfig_env"] is None for entry in fake_tools.entries())  # no child saw KUBECONFIG
    for argv in fake_tools.calls("kind"):
        if "--kubeconfig" in argv:
            assert not argv[argv.index("--kubeconfig") + 1].startswith(str(ambient.parent.parent))


def test_failing_run_with_diagnostics_never_reaches_production(ambient: Path, fake_tools: FakeTools,  # noqa: F811
                                                               tmp_path: Path) -> None:
    with ApiDouble() as double:
        enforcing_cluster(double)
        broken_redis(double, every=0.1)
        fake_tools.api_server(double.url)
        code = main(["validate", str(v2_11_1_file(tmp_path)), "--artifacts", str(tmp_path / "out"),
                     "--skip-preflight-errors", "--scenario", "fresh-install"])
    assert code == 1
    assert fake_tools.calls("kind", "export", "logs")  # diagnostics ran, through our kubeconfig only
