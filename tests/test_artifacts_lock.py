"""Concurrent runs and the artifacts directory: one run owns it (flock on <artifacts>/.lock), the others fall back
to <artifacts>/run-<timestamp>-<pid>/, so nothing there is ever a mix of two runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.apidouble import ApiDouble
from tests.apidouble.argocd import healthy_redis
from tests.conftest import real_manifest
from tests.fakes import FakeTools, fake_tools  # noqa: F401  (fixture)
from tests.test_e2e import argocd_syncs_smoke_app, enforcing_cluster, outputs, wait_for
from validator.artifacts_lock import LOCK_NAME, claim_artifacts
from validator.cli import main

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import sys, time
from pathlib import Path
from validator.artifacts_lock import claim_artifacts

with claim_artifacts(Path(sys.argv[1])) as claim:
    print("HOLDING", claim.out, flush=True)
    time.sleep(60)
"""


def test_a_second_claim_falls_back_and_the_first_release_frees_the_directory(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    with claim_artifacts(out) as first:
        assert first.out == out and not first.fell_back
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
        with claim_artifacts(out) as second:  # flock is per open file: a second claim conflicts in-process too
            assert second.fell_back and second.holder == str(os.getpid())
            assert second.out.parent == out and second.out.name.startswith("run-")
            assert second.out.name.endswith(f"-{os.getpid()}") and second.out.is_dir()
    assert not (out / LOCK_NAME).exists()  # nothing left behind in artifacts/
    with claim_artifacts(out) as third:
        assert third.out == out and not third.fell_back


def test_a_killed_holder_frees_the_directory(tmp_path: Path) -> None:
    """The kernel drops the lock of a dead process: `kill -9` leaves no stale lock, only a stale file."""
    out = tmp_path / "artifacts"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("HOLDING")
        with claim_artifacts(out) as claim:
            assert claim.fell_back and claim.holder == str(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert (out / LOCK_NAME).exists()
    with claim_artifacts(out) as claim:
        assert claim.out == out and not claim.fell_back


def test_two_concurrent_validate_runs_both_finish_without_mixing(fake_tools: FakeTools, tmp_path: Path,  # noqa: F811
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A subprocess `validate` holds artifacts/ (its kind create sleeps 1 s), an in-process one starts meanwhile.
    Each has its own fake kind state and API double: only the artifacts directory is shared."""
    out = tmp_path / "artifacts"
    candidate = str(real_manifest("v2.11.2/install.yaml"))
    argv = ["validate", candidate, "--artifacts", str(out), "--wait-timeout", "60"]
    with ApiDouble() as theirs, ApiDouble() as ours:
        for double in (theirs, ours):
            enforcing_cluster(double)
            argocd_syncs_smoke_app(double)
            healthy_redis(double)
        fake_tools.api_server(ours.url)
        other = tmp_path / "other-fakes"
        other.mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_KIND_API_SERVER": theirs.url,
               "FAKE_KIND_STATE": str(other / "state"), "FAKE_LOG": str(other / "calls.jsonl"),
               "FAKE_KIND_CREATE_SLEEP": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "validator.cli", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            wait_for(lambda: list((other / "state").glob("create-started-*")) or proc.poll() is not None)
            assert proc.poll() is None, proc.communicate()  # it holds artifacts/ now, in its kind create
            code = main(argv)
            their_stdout, their_stderr = proc.communicate(timeout=120)
        finally:
            proc.kill()
    captured = capsys.readouterr()
    assert proc.returncode == 0, their_stdout + their_stderr
    assert code == 0, captured.out + captured.err
    (mine,) = out.glob("run-*")
    assert f"{out}/ is in use by another run (pid {proc.pid}): this run writes to {mine}/" in captured.err
    assert "in use by another run" not in their_stderr
    (their_cluster,) = [entry["argv"] for entry in map(json.loads, (other / "calls.jsonl").read_text().splitlines())
                        if entry["tool"] == "kind" and entry["argv"][:2] == ["create", "cluster"]]
    (my_cluster,) = fake_tools.calls("kind", "create", "cluster")
    names = {create[create.index("--name") + 1] for create in (their_cluster, my_cluster)}
    assert len(names) == 2
    for where, stdout, create in ((out, their_stdout, their_cluster), (mine, captured.out, my_cluster)):
        doc, summary, _ = outputs(where)  # complete and valid (validate_document)
        assert doc["status"] == "pass" and summary[0] == stdout.splitlines()[0]
        assert {Path(path).parent for path in doc["artifacts"].values()} == {where}  # its own paths
        assert Path(create[create.index("--kubeconfig") + 1]).is_relative_to(where)  # its cluster's files too
        (other_name,) = names - {create[create.index("--name") + 1]}
        config = (where / "clusters" / "main" / "kind-config.yaml").read_text()  # kind's config names the cluster
        assert create[create.index("--name") + 1] in config and other_name not in config
    assert sorted(p.name for p in out.glob(".*")) == [] and not list(mine.glob("run-*"))
