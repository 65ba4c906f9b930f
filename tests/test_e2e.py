"""End to end: `argocd-mirror validate` through the real code paths, with fake kind/docker on PATH and the
Kubernetes API double behind the kubeconfig the fake kind writes.

What is played by doubles: kind and docker (tests/fakes), the API server with its controllers and kubelet
(tests/apidouble), the NetworkPolicy probe pods' outcome, and Argo CD's application-controller writing the
smoke Application's status. Everything of ours runs for real: resolve, preflight, the CLI, pytest with the
plugin and scenarios, cluster lifecycle, NetworkPolicy proof, install, watch, fail-fast, diagnose, reports.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apidouble import ApiDouble
from tests.apidouble.argocd import as_v2_11_1, broken_redis, bundle_from, healthy_redis, redis_secret
from tests.conftest import real_manifest
from tests.fakes import FakeTools, fake_tools  # noqa: F401  (fixture)
from tests.test_candidate import Upstream, upstream  # noqa: F401  (fixture: a local stand-in for GitHub)
from tests.test_cluster_kind import ready_node
from tests.test_cluster_netpol import finish
from tests.test_diagnose import BANNER, NO_CONFIG, NO_CONFIG_LOG, without_token
from tests.test_report import gantt_tasks
from validator.cli import main
from validator.profiles import load_profile
from validator.report import validate_document

SMOKE_APP = "argocd-mirror-smoke"
# what diagnose says about the v2.11.1 redis outage (see tests/test_watch.py)
REDIS_ROOT_CAUSE = 'argocd-redis: init container secret-init failing'


def enforcing_cluster(double: ApiDouble) -> None:
    """One Ready node; the deny-all probe gets blocked and the open probe connects (an enforcing CNI)."""
    double.create(ready_node("argocd-mirror-control-plane"))
    enforcing_probes(double)


def enforcing_probes(double: ApiDouble) -> None:
    """Script the next pair of probe pods (each script fires once, on the next pods of that name)."""
    finish(double, "probe-restricted", "Succeeded", "attempt 1: connected\nattempt 2: blocked\nattempt 3: blocked\n")
    finish(double, "probe-open", "Succeeded", "attempt 1: connected\n")


def argocd_syncs_smoke_app(double: ApiDouble) -> None:
    """Play Argo CD's application-controller for the smoke Application: Synced and Healthy once it exists."""
    double.script(at=0, kind="Application", name=SMOKE_APP, namespace="argocd", status={
        "sync": {"status": "Synced"}, "health": {"status": "Healthy"},
        "operationState": {"phase": "Succeeded", "message": "successfully synced (all tasks run)"},
        "resources": [{"kind": "Deployment", "name": "guestbook-ui", "health": {"status": "Healthy"}}]})


@pytest.fixture
def mirror(fake_tools: FakeTools) -> Iterator[ApiDouble]:  # noqa: F811
    with ApiDouble() as double:
        enforcing_cluster(double)
        argocd_syncs_smoke_app(double)
        fake_tools.api_server(double.url)
        yield double


def v2_11_1_file(tmp_path: Path) -> Path:
    """The real v2.11.2 install.yaml with v2.11.1's redis NetworkPolicy put back, as a candidate file."""
    bundle = as_v2_11_1(bundle_from(real_manifest("v2.11.2/install.yaml")))
    path = tmp_path / "v2.11.1.yaml"
    path.write_text(yaml.safe_dump_all([obj.body for obj in bundle], sort_keys=False))
    return path


def outputs(out: Path) -> tuple[dict[str, Any], list[str], ET.Element]:
    doc = json.loads((out / "verdict.json").read_text())
    validate_document(doc)
    return doc, (out / "summary.md").read_text().splitlines(), ET.parse(out / "junit.xml").getroot()


def junit_outcomes(junit: ET.Element) -> dict[str, str]:
    """testcase name -> passed | failure | error | skipped."""
    result = {}
    for case in junit.iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        result[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return result


def test_passing_candidate(mirror: ApiDouble, fake_tools: FakeTools, tmp_path: Path,  # noqa: F811
                           capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    summary_file = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    healthy_redis(mirror)
    candidate = real_manifest("v2.11.2/install.yaml")
    out = tmp_path / "artifacts"
    code = main(["validate", str(candidate), "--artifacts", str(out), "--wait-timeout", "60"])
    captured = capsys.readouterr()
    stdout = captured.out
    doc, summary, junit = outputs(out)
    assert code == 0, stdout
    assert "dry run: 59 objects accepted by the API server\n" in captured.err  # judged whole before the first apply
    assert doc["status"] == "pass" and doc["candidate"]["image_version"] == "v2.11.2"
    assert [s["name"] for s in doc["scenarios"]] == ["fresh-install", "app-smoke"]
    cases = junit_outcomes(junit)
    assert len(cases) == 5 and set(cases.values()) == {"passed"}, cases
    assert {c.get("classname") for c in junit.iter("testcase")} == {"argocd-mirror.fresh-install",
                                                                     "argocd-mirror.app-smoke"}
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("5", "0", "0")
    assert sorted(p.name for p in out.glob(".*")) == []  # no partial or temp files left behind
    assert summary[0] == stdout.splitlines()[0] == summary_file.read_text().splitlines()[0]
    assert summary[0].startswith(f"PASS {candidate}=v2.11.2 fresh-install ")
    (cluster,) = fake_tools.calls("kind", "create", "cluster")
    assert fake_tools.calls("kind", "delete", "cluster")  # torn down after the pass
    assert "--kubeconfig" in cluster and str(out) in cluster[cluster.index("--kubeconfig") + 1]
    assert mirror.sim.errors == []
    # the timeline in summary.md (and verdict.json): every phase and workload done, in the order they started
    tasks = gantt_tasks((out / "summary.md").read_text())
    names = [name for section, name, *_ in tasks if section == "fresh-install"]
    assert names[0] == "cluster create (main)" and names[-1] == "teardown (main)"
    assert {"policy proof (main)", "apply (candidate)", "policy proof (candidate)", "Deployment argocd-redis",
            "StatefulSet argocd-application-controller"} <= set(names)
    assert {tag for _, _, tag, _, _ in tasks} == {"done"}
    assert [span["name"] for span in doc["scenarios"][0]["timeline"]] == names


def test_v2_11_1_shaped_candidate_stops_at_preflight(mirror: ApiDouble, fake_tools: FakeTools,  # noqa: F811
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    candidate = v2_11_1_file(tmp_path)
    out = tmp_path / "artifacts"
    assert main(["validate", str(candidate), "--artifacts", str(out)]) == 1
    stdout = capsys.readouterr().out
    doc = json.loads((out / "verdict.json").read_text())
    validate_document(doc)
    assert doc["status"] == "fail" and doc["root_cause"].startswith("preflight: ")
    assert "argocd-redis-network-policy" in doc["root_cause"]
    first = (out / "summary.md").read_text().splitlines()[0]
    assert first == stdout.splitlines()[0] == f"FAIL {candidate}=v2.11.2: {doc['root_cause']}"
    assert not fake_tools.calls("kind", "create")  # no cluster time spent on a statically broken candidate
    # what preflight judged, as SARIF for code scanning (action.yml uploads it)
    sarif = json.loads((out / "preflight.sarif").read_text())
    assert [r["ruleId"] for r in sarif["runs"][0]["results"] if r["level"] == "error"] == ["networkpolicy-api-egress"]


def test_preflight_in_validate_labels_what_is_new_against_the_baseline(
        mirror: ApiDouble, fake_tools: FakeTools, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """With --baseline the verdict says which preflight findings the release production runs did not have."""
    out = tmp_path / "artifacts"
    code = main(["validate", str(real_manifest("v2.11.1/install.yaml")), "--baseline",
                 str(real_manifest("v2.11.0/install.yaml")), "--artifacts", str(out)])
    err = capsys.readouterr().err
    doc = json.loads((out / "verdict.json").read_text())
    validate_document(doc)
    assert code == 1 and doc["preflight"][0]["severity"] == "error" and doc["preflight"][0]["baseline"] == "new"
    assert "preflight: 1 error(s) (1 new)" in err
    assert not fake_tools.calls("kind", "create")


def test_v2_11_1_shaped_candidate_fails_on_the_mirror(mirror: ApiDouble, fake_tools: FakeTools,  # noqa: F811
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken_redis(mirror, every=0.1)
    candidate = v2_11_1_file(tmp_path)
    out = tmp_path / "artifacts"
    code = main(["validate", str(candidate), "--artifacts", str(out), "--skip-preflight-errors",
                 "--scenario", "fresh-install", "--keep-cluster", "on-failure"])
    stdout = capsys.readouterr().out
    doc, summary, junit = outputs(out)
    assert code == 1, stdout
    assert doc["status"] == "fail"
    assert REDIS_ROOT_CAUSE in doc["root_cause"] and "argocd-redis-network-policy" in doc["root_cause"]
    assert summary[0] == stdout.splitlines()[0] == f"FAIL {candidate}=v2.11.2: {doc['root_cause']}"
    (scenario,) = doc["scenarios"]
    assert scenario["evidence"] and all(Path(p).is_file() for p in scenario["evidence"])
    assert "error" not in junit_outcomes(junit).values()  # a broken candidate is a failure, never an error
    failures = [case for case in junit.iter("testcase") if case.find("failure") is not None]
    assert failures and any(REDIS_ROOT_CAUSE in ET.tostring(case, encoding="unicode") for case in failures)
    assert not fake_tools.calls("kind", "delete", "cluster")  # kept for inspection (--keep-cluster on-failure)
    assert fake_tools.calls("kind", "export", "logs")
    (kept,) = fake_tools.clusters()
    assert f"  delete main: kind delete cluster --name {kept} --kubeconfig " in stdout  # on stdout, not only stderr
    # the timeline in summary.md: redis never became ready, the components waited on its Secret
    tasks = {name: tag for _, name, tag, _, _ in gantt_tasks((out / "summary.md").read_text())}
    assert tasks["Deployment argocd-redis"] == "crit"
    for workload in ("Deployment argocd-server", "Deployment argocd-repo-server",
                     "StatefulSet argocd-application-controller"):
        assert tasks[f"{workload} waits for Secret argocd-redis"] == "active"
    assert tasks["Deployment argocd-dex-server"] == tasks["apply (candidate)"] == tasks["teardown (main)"] == "done"


def test_production_addressing_the_mirror_cannot_reproduce_is_could_not_validate(
        mirror: ApiDouble, fake_tools: FakeTools, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """A team's candidate whose redis policy admits its production control plane (10.0.0.0/16:443), stated in the
    profile: preflight passes it (right for production); on kind it would time out for an address kind cannot
    have, so the run stops as could not validate, never as a FAIL of the candidate."""
    bundle = as_v2_11_1(bundle_from(real_manifest("v2.11.2/install.yaml")))
    bodies = [obj.body for obj in bundle]
    for body in bodies:
        if body["kind"] == "NetworkPolicy" and body["metadata"]["name"] == "argocd-redis-network-policy":
            body["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": [{"port": 443}]})
    candidate = tmp_path / "team-overlay.yaml"
    candidate.write_text(yaml.safe_dump_all(bodies, sort_keys=False))
    profile = tmp_path / "prod.yaml"
    profile.write_text("name: prod\napiServer:\n  endpoints: ['10.0.12.7:443', '10.0.13.7:443']\n")
    out = tmp_path / "artifacts"
    code = main(["validate", str(candidate), "--profile", str(profile), "--artifacts", str(out),
                 "--scenario", "fresh-install"])
    stdout = capsys.readouterr().out
    doc, _summary, _junit = outputs(out)
    assert code == 2, stdout
    assert [f for f in doc["preflight"] if f["severity"] == "error"] == []
    assert doc["status"] == "error" and "this mirror cannot reproduce production's API server addressing" in \
        doc["root_cause"] and "argocd-redis-network-policy" in doc["root_cause"]
    assert mirror.get("Deployment", "argocd-redis", "argocd") is None  # stopped before any workload
    assert fake_tools.calls("kind", "delete", "cluster")


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["validate", "reproduce"])
def test_a_statically_broken_candidate_fails_without_docker(command: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Resolve and preflight need no cluster: a v2.11.1-like bundle is a FAIL (exit 1) with its provenance and
    findings on a runner without Docker, not 'could not validate'."""
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{closed_port()}")  # an engine that is not there
    out = tmp_path / "out"
    assert main([command, str(v2_11_1_file(tmp_path)), "--artifacts", str(out)]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("FAIL ") and "argocd-redis-network-policy" in first and "secret-init" in first
    doc = json.loads((out / "verdict.json").read_text())
    validate_document(doc)
    assert doc["status"] == "fail" and len(doc["candidate"]["sha256"]) == 64
    assert [f["check"] for f in doc["preflight"] if f["severity"] == "error"] == ["networkpolicy-api-egress"]


def test_every_missing_prerequisite_is_named_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A healthy candidate on a machine with neither Docker nor kind: one exit-2 line naming both."""
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no kind (nor anything else) on PATH
    monkeypatch.delenv("ARGOCD_MIRROR_KIND", raising=False)
    out = tmp_path / "out"
    assert main(["validate", str(real_manifest("v2.11.2/install.yaml")), "--artifacts", str(out)]) == 2
    first = capsys.readouterr().out.splitlines()[0]
    assert "could not validate: missing prerequisites: (1) Docker engine not reachable" in first
    assert "(2) kind is not installed or not on PATH" in first
    doc = json.loads((out / "verdict.json").read_text())
    assert doc["status"] == "error" and doc["candidate"]["image_version"] == "v2.11.2"
    assert (out / "summary.md").read_text().splitlines()[0] == first


def test_offline_without_docker_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`stable` cannot be resolved offline; the same line says Docker is missing too."""
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("ARGOCD_MIRROR_GIT_URL", str(tmp_path / "no-such-repo"))  # fails at once, like no network
    out = tmp_path / "out"
    assert main(["validate", "stable", "--artifacts", str(out)]) == 2
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("ERROR stable: could not validate: could not list tags of")
    assert "; also " in first and "Docker engine not reachable" in first


def wait_for(predicate: Any, timeout_s: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_interrupted_run_never_leaves_a_pass(sig: str, fake_tools: FakeTools, tmp_path: Path) -> None:  # noqa: F811
    import signal
    import subprocess
    import sys

    from validator.report import INTERRUPTED, ScenarioResult, Status, Verdict, write_verdict

    out = tmp_path / "out"
    stale = Verdict(status=Status.PASS, spec="old", candidate=None, started_at="t", finished_at="t",
                    scenarios=[ScenarioResult("fresh-install", Status.PASS)])
    stale.candidate = {"spec": "old", "source": "tag", "variant": "install", "sha256": "0" * 64}
    write_verdict(stale, out, step_summary=False)  # a pass left by an earlier run in the same directory
    fake_tools.setenv("FAKE_KIND_CREATE_SLEEP", "30")
    candidate = str(real_manifest("v2.11.2/install.yaml"))
    proc = subprocess.Popen([sys.executable, "-m", "validator.cli", "validate", candidate, "--artifacts", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: list(fake_tools.state.glob("create-started-*")))
        mid_run = json.loads((out / "verdict.json").read_text())
        assert (mid_run["status"], mid_run["root_cause"]) == ("error", INTERRUPTED)  # the stale pass is gone
        proc.send_signal(getattr(signal, sig))
        stdout, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    doc = json.loads((out / "verdict.json").read_text())
    validate_document(doc)
    assert doc["status"] == "error" and "interrupted" in doc["root_cause"]
    if sig == "SIGINT":
        assert proc.returncode == 2
        assert stdout.splitlines()[0].endswith(": could not validate: interrupted")
        assert fake_tools.calls("kind", "delete", "cluster")  # torn down on Ctrl-C
    else:
        # killed outright: what remains is the marker written at the start, never the stale pass
        first = (out / "summary.md").read_text().splitlines()[0]
        assert first == f"ERROR {candidate}: could not validate: {INTERRUPTED}"


def validate_upgrade_then_rollback(out: Path) -> int:
    """`validate` v2.11.2 over baseline v2.11.0, upgrade and rollback scenarios, artifacts into OUT."""
    return main(["validate", str(real_manifest("v2.11.2/install.yaml")), "--baseline",
                 str(real_manifest("v2.11.0/install.yaml")), "--scenario", "upgrade", "--scenario", "rollback",
                 "--artifacts", str(out), "--wait-timeout", "60"])


def test_upgrade_then_rollback(mirror: ApiDouble, fake_tools: FakeTools, tmp_path: Path,  # noqa: F811
                               capsys: pytest.CaptureFixture[str]) -> None:
    """Baseline v2.11.0 Healthy, v2.11.2 applied over it Healthy, v2.11.0 applied back Healthy: one cluster."""
    healthy_redis(mirror)
    out = tmp_path / "artifacts"
    code = validate_upgrade_then_rollback(out)
    stdout = capsys.readouterr().out
    doc, summary, junit = outputs(out)
    assert code == 0, stdout
    assert [(s["name"], s["status"]) for s in doc["scenarios"]] == [("upgrade", "pass"), ("rollback", "pass")]
    assert summary[0].startswith("PASS ") and ", rollback " in summary[0]
    assert doc["baseline"]["image_version"] == "v2.11.0"
    assert set(junit_outcomes(junit).values()) == {"passed"}
    assert len(fake_tools.calls("kind", "create", "cluster")) == 1  # rollback continues on the upgraded cluster
    server = mirror.get("Deployment", "argocd-server", "argocd")
    assert server is not None  # after the rollback the cluster runs the baseline again
    assert [c["image"] for c in server["spec"]["template"]["spec"]["containers"]] == ["quay.io/argoproj/argocd:v2.11.0"]


def test_ha_on_the_ha_profile(mirror: ApiDouble, fake_tools: FakeTools, tmp_path: Path,  # noqa: F811
                              capsys: pytest.CaptureFixture[str]) -> None:
    """ha/install.yaml (v3.5.1) on the `ha` profile: a 4-node kind config, every HA object Healthy."""
    for worker in ("argocd-mirror-worker", "argocd-mirror-worker2", "argocd-mirror-worker3"):
        mirror.create(ready_node(worker))
    mirror.pods("argocd-redis-ha-haproxy").creates("secret-init", redis_secret())  # HA runs secret-init there
    out = tmp_path / "artifacts"
    code = main(["validate", str(real_manifest("v3.5.1/ha/install.yaml")), "--variant", "ha", "--scenario", "ha",
                 "--artifacts", str(out), "--wait-timeout", "60"])
    stdout = capsys.readouterr().out
    doc, summary, junit = outputs(out)
    assert code == 0, stdout
    assert [(s["name"], s["status"]) for s in doc["scenarios"]] == [("ha", "pass")]
    assert set(junit_outcomes(junit).values()) == {"passed"} and summary[0].startswith("PASS ")
    (create,) = fake_tools.calls("kind", "create", "cluster")
    config = yaml.safe_load(Path(create[create.index("--config") + 1]).read_text())
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker", "worker"]


def test_existing_disposable_cluster(fake_tools: FakeTools, tmp_path: Path,  # noqa: F811
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """--provider existing with explicit kubeconfig/context and the disposability marker: no kind, no Docker,
    and the cluster is left as it was found."""
    with ApiDouble(namespaces=("default", "kube-system", "kube-public"),
                   version=f"v{load_profile('default').kubernetes_version}.0") as double:
        enforcing_cluster(double)
        healthy_redis(double)
        double.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "argocd-mirror-disposable", "namespace": "kube-public"}})
        kubeconfig = double.kubeconfig(tmp_path / "ci-kubeconfig", context="ci-throwaway")
        fake_tools.fail("docker-down")  # the existing provider must not need Docker
        code = main(["validate", str(real_manifest("v2.11.2/install.yaml")), "--provider", "existing",
                     "--kubeconfig", str(kubeconfig), "--context", "ci-throwaway", "--scenario", "fresh-install",
                     "--artifacts", str(tmp_path / "out"), "--wait-timeout", "60"])
        captured = capsys.readouterr()
        stdout = captured.out
        assert code == 0, stdout
        assert double.get("Namespace", "argocd") is None  # what the run installed is gone again
    assert stdout.startswith("PASS ") and not fake_tools.calls("kind")
    # preflight ran before any cluster, on kind's usual addresses: the run says so, and how to state this cluster's
    assert "preflight judges egress NetworkPolicies against kind's usual API server addresses" in captured.err


def test_self_managed_argocd_upgrades_itself(mirror: ApiDouble, fake_tools: FakeTools,  # noqa: F811
                                             upstream: Upstream, tmp_path: Path,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Baseline v2.11.2 runs; an Application `argocd` tracking tag v3.5.1 is created; the double plays Argo CD's
    controller by syncing exactly what the Application names (our server-side install of that tag's manifest)."""
    import threading

    from validator.candidate import resolve
    from validator.install import install

    for tag, real in (("v3.5.1", "v3.5.1/install.yaml"), ("v2.11.2", "v2.11.2/install.yaml")):
        upstream.files[f"/{upstream.commits[tag]}/manifests/install.yaml"] = real_manifest(real).read_bytes()
    sources = upstream.sources(tmp_path)
    for key, value in (("GIT_URL", sources.git_url), ("RAW_URL", sources.raw_url), ("CACHE", str(sources.cache_dir))):
        monkeypatch.setenv(f"ARGOCD_MIRROR_{key}", value)
    healthy_redis(mirror)
    synced: list[dict[str, Any]] = []

    def argocd_controller() -> bool:
        app = mirror.get("Application", "argocd", "argocd")
        if app is None:
            return False
        source = app["spec"]["source"]
        synced.append(source)

        def sync() -> None:
            api = mirror.api_client(tmp_path / "controller")
            wanted = resolve(source["targetRevision"], variant="install")
            install(api, wanted, previous=resolve("v2.11.2"))
            mirror.set_status("Application", "argocd", "argocd", {
                "sync": {"status": "Synced", "revision": upstream.commits[source["targetRevision"]]},
                "health": {"status": "Healthy"}, "operationState": {"phase": "Succeeded"}})

        threading.Thread(target=sync, daemon=True).start()
        return True

    mirror.sim.at(0, argocd_controller)
    out = tmp_path / "artifacts"
    code = main(["validate", "v3.5.1", "--baseline", "v2.11.2", "--scenario", "self-managed", "--artifacts", str(out),
                 "--wait-timeout", "60"])
    stdout = capsys.readouterr().out
    doc, summary, junit = outputs(out)
    assert code == 0, stdout
    assert synced == [{"repoURL": "https://github.com/argoproj/argo-cd.git", "targetRevision": "v3.5.1",
                       "path": "manifests", "directory": {"include": "install.yaml"}}]
    assert summary[0].startswith(f"PASS v3.5.1 (commit {upstream.commits['v3.5.1'][:7]}) self-managed ")
    assert set(junit_outcomes(junit).values()) == {"passed"}
    assert doc["baseline"]["version"] == "v2.11.2"
    server = mirror.get("Deployment", "argocd-server", "argocd")
    assert server is not None and server["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v3.5.1")


def test_the_gate_ignores_the_callers_pytest_addopts(mirror: ApiDouble, fake_tools: FakeTools,  # noqa: F811
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Old: `-k` in PYTEST_ADDOPTS reached the in-process pytest, and an upgrade whose candidate was never applied
    passed (exit 0, the baseline still on the cluster)."""
    healthy_redis(mirror)
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k baseline_is_healthy")
    out = tmp_path / "artifacts"
    code = main(["validate", str(real_manifest("v2.11.2/install.yaml")), "--baseline",
                 str(real_manifest("v2.11.0/install.yaml")), "--scenario", "upgrade", "--artifacts", str(out),
                 "--wait-timeout", "60"])
    captured = capsys.readouterr()
    doc, _, _ = outputs(out)
    assert code == 0, captured.out
    (upgrade,) = doc["scenarios"]
    assert [s["name"] for s in upgrade["steps"]] == ["test_baseline_is_healthy_first",
                                                     "test_candidate_applies_over_baseline",
                                                     "test_every_object_healthy_after_upgrade"]
    server = mirror.get("Deployment", "argocd-server", "argocd")
    assert server is not None and server["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v2.11.2")
    assert "ignoring PYTEST_ADDOPTS='-k baseline_is_healthy'" in captured.err
    assert "ignoring PYTEST_ADDOPTS" in (out / "pytest.log").read_text()
    assert os.environ["PYTEST_ADDOPTS"] == "-k baseline_is_healthy"  # the caller's environment is left as it was


def test_an_install_rejection_keeps_the_cluster_on_failure(mirror: ApiDouble, fake_tools: FakeTools,  # noqa: F811
                                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Old: only a wait that timed out marked the cluster failed, so a 422 at install deleted it and exported no
    logs despite --keep-cluster on-failure."""
    healthy_redis(mirror)
    docs = [d for d in yaml.safe_load_all(real_manifest("v2.11.2/install.yaml").read_text()) if d]
    for d in docs:
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "argocd-dex-server":
            d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "mismatch"  # 422 from the API server
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    out = tmp_path / "artifacts"
    code = main(["validate", str(candidate), "--scenario", "fresh-install", "--keep-cluster", "on-failure",
                 "--artifacts", str(out), "--wait-timeout", "60"])
    stdout = capsys.readouterr().out
    doc, _, _ = outputs(out)
    assert (code, doc["status"]) == (1, "fail"), stdout
    assert "argocd-dex-server" in doc["root_cause"]
    assert not fake_tools.calls("kind", "delete", "cluster")
    assert fake_tools.calls("kind", "export", "logs")
    assert list(fake_tools.clusters())


def test_every_object_the_api_server_rejects_is_named_in_the_fail_line(mirror: ApiDouble, fake_tools: FakeTools,  # noqa: F811
                                                                       tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Two objects of the real manifest the API server refuses (422 with details.causes): the dry run before the
    first apply names both, with the server's messages, in the one root cause; nothing of the candidate was applied."""
    from tests.test_install_dryrun import CM_KEY, REDIS_MOUNT, reject_two

    healthy_redis(mirror)
    reject_two(mirror)
    candidate = real_manifest("v2.11.2/install.yaml")
    out = tmp_path / "artifacts"
    code = main(["validate", str(candidate), "--scenario", "fresh-install", "--artifacts", str(out),
                 "--wait-timeout", "60"])
    captured = capsys.readouterr()
    doc, summary, junit = outputs(out)
    assert (code, doc["status"]) == (1, "fail"), captured.out
    cause = doc["root_cause"]
    assert cause.startswith("fresh-install: API server rejected 2 object(s) (dry run): "
                            "ConfigMap argocd/argocd-cm ("), cause
    assert f'ConfigMap "argocd-cm" is invalid: data[bad key]: {" ".join(CM_KEY.split())}; ' in cause
    assert f'Deployment argocd/argocd-redis ({candidate} document ' in cause
    assert cause.endswith(f'Deployment.apps "argocd-redis" is invalid: {REDIS_MOUNT}: Not found: "data"')
    assert summary[0] == captured.out.splitlines()[0] == f"FAIL {candidate}=v2.11.2: {cause}"
    assert "error" not in junit_outcomes(junit).values()  # the candidate's failure, not could-not-validate
    assert mirror.get("ConfigMap", "argocd-cm", "argocd") is None  # refused before the first real apply
    assert mirror.get("Deployment", "argocd-server", "argocd") is None
    assert "dry run: " not in captured.err  # no "accepted" progress line for a refused candidate


@pytest.mark.parametrize(("change", "cause"), [
    ("deselect", "upgrade: steps test_candidate_applies_over_baseline, test_every_object_healthy_after_upgrade "
                 "not run (deselected)"),
    ("drop rollback", "rollback: not run"),
])
def test_the_gate_fails_closed_on_an_incomplete_run(change: str, cause: str, mirror: ApiDouble,
                                                    fake_tools: FakeTools, tmp_path: Path,  # noqa: F811
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """However steps or scenarios get left out of the inner pytest (here: its command line), the verdict is
    could-not-validate. Old: a pass of whatever ran."""
    from validator.commands import validate

    healthy_redis(mirror)
    from validator.packaged import scenarios_dir

    rollback = str(scenarios_dir() / validate.SCENARIOS["rollback"][0])
    original = validate.pytest_args

    def changed(*args: Any) -> list[str]:
        argv = original(*args)
        return [*argv, "-k", "baseline_is_healthy"] if change == "deselect" else [a for a in argv if a != rollback]

    monkeypatch.setattr(validate, "pytest_args", changed)
    out = tmp_path / "artifacts"
    code = validate_upgrade_then_rollback(out)
    stdout = capsys.readouterr().out
    doc, summary, _ = outputs(out)
    assert (code, doc["status"], doc["root_cause"]) == (2, "error", cause), stdout
    assert summary[0].endswith(f": could not validate: {cause}")


def test_a_secret_init_without_a_token_fails_quoting_its_fatal_line(mirror: ApiDouble, fake_tools: FakeTools,  # noqa: F811
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Acceptance: argocd-redis' pod template sets automountServiceAccountToken: false (preflight's api-credentials
    error, skipped to reproduce); secret-init logs its banner, then client-go's fatal line. The FAIL line quotes the
    fatal line, not the banner, and names the missing token; the step summary draws the timeline."""
    bundle = without_token(bundle_from(real_manifest("v2.11.2/install.yaml")))
    candidate = tmp_path / "no-token.yaml"
    candidate.write_text(yaml.safe_dump_all([obj.body for obj in bundle], sort_keys=False))
    mirror.pods("argocd-redis").crashloop("secret-init", log=NO_CONFIG_LOG, attempt=f"{BANNER}\n", every=0.1)
    out = tmp_path / "artifacts"
    code = main(["validate", str(candidate), "--artifacts", str(out), "--skip-preflight-errors",
                 "--scenario", "fresh-install", "--wait-timeout", "60"])
    stdout = capsys.readouterr().out
    doc, summary, _junit = outputs(out)
    assert code == 1, stdout
    assert any(f["check"] == "api-credentials" and f["severity"] == "error" for f in doc["preflight"])
    first = stdout.splitlines()[0]
    assert first == summary[0]
    assert first.startswith(f"FAIL {candidate}=v2.11.2: fresh-install: argocd-redis: init container secret-init "
                            "failing ("), first
    assert first.endswith(f'"{NO_CONFIG}" - no ServiceAccount token: automountServiceAccountToken is false on '
                          "Deployment argocd-redis's pod template"), first
    assert BANNER.strip() not in first
    tasks = {name: tag for _, name, tag, _, _ in gantt_tasks((out / "summary.md").read_text())}
    assert tasks["Deployment argocd-redis"] == "crit"
