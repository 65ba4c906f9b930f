"""The pytest plugin: inert for ordinary test runs, clash-free options, fail-closed scenario outcomes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from validator.errors import CandidateFailed, EnvironmentNotReady
from validator.pytest_plugin import application, application_state, classify_exception, describe_application
from validator.report import ScenarioFailed, Status, validate_document

pytest_plugins = ["pytester"]

SCENARIO_FILE = """
import pytest
from validator.errors import CandidateFailed, EnvironmentNotReady
from validator.report import ScenarioFailed

@pytest.mark.scenario("good")
def test_ok():
    pass

@pytest.mark.scenario("broken")
def test_first_step():
    pass

@pytest.mark.scenario("broken")
def test_second_step():
    raise ScenarioFailed("init container secret-init of argocd-redis: dial tcp 10.96.0.1:443: i/o timeout",
                         evidence=("diag/diagnosis.md",))

@pytest.fixture
def no_cluster():
    raise EnvironmentNotReady("Docker engine not reachable: no daemon")

@pytest.mark.scenario("env")
def test_needs_cluster(no_cluster):
    pass
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_inert_for_ordinary_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_x():\n    assert 1\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # a fresh process: entry point loading
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "artifacts").exists()  # no verdict, no I/O


def test_options_are_offered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--help")
    result.stdout.fnmatch_lines(["*argocd-mirror: validate*", "*--mirror-candidate=SPEC*",
                                 "*--mirror-keep-cluster*", "*--mirror-wait-timeout=SECONDS*"])
    assert not [line for line in result.outlines if line.lstrip().startswith(("--candidate", "--keep-cluster"))]


def test_the_ha_variant_defaults_to_the_ha_profile(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_profile="from validator.pytest_plugin import MirrorOptions\n"
                                     "def test_p(request):\n"
                                     "    assert MirrorOptions.from_config(request.config).profile == 'ha'\n")
    pytester.runpytest_inprocess("--mirror-variant", "ha").assert_outcomes(passed=1)
    pytester.runpytest_inprocess("--mirror-variant", "install").assert_outcomes(failed=1)


def test_scenario_outcomes_become_a_fail_closed_verdict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scen=SCENARIO_FILE)
    result = pytester.runpytest_inprocess("--mirror-artifacts", "out", "--mirror-candidate", "v2.11.1")
    assert result.ret == 1  # the gate's exit code: a scenario was observed failing
    doc = json.loads((pytester.path / "out" / "verdict.json").read_text())
    validate_document(doc)
    by_name = {s["name"]: s for s in doc["scenarios"]}
    assert by_name["good"]["status"] == "pass"
    assert by_name["broken"]["status"] == "fail"
    assert [s["status"] for s in by_name["broken"]["steps"]] == ["pass", "fail"]
    assert by_name["broken"]["evidence"] == ["diag/diagnosis.md"]
    assert by_name["env"]["status"] == "error"
    assert by_name["env"]["root_cause"] == "test_needs_cluster: Docker engine not reachable: no daemon"
    assert doc["status"] == "fail"
    assert doc["root_cause"] == ("broken: init container secret-init of argocd-redis: "
                                 "dial tcp 10.96.0.1:443: i/o timeout")
    summary = (pytester.path / "out" / "summary.md").read_text().splitlines()[0]
    assert summary == "FAIL v2.11.1: " + doc["root_cause"]


def test_docker_marker_skips_with_reason_and_skips_never_pass(pytester: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{closed_port()}")
    pytester.makepyfile(test_d="import pytest\n@pytest.mark.scenario('fresh-install')\n@pytest.mark.mirror_docker\n"
                               "def test_needs_docker():\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest_inprocess("-rs", "--mirror-artifacts", "out")
    result.stdout.fnmatch_lines(["*SKIPPED*Docker engine not reachable*"])
    assert result.ret == 2  # all skipped is "could not validate", never a pass
    doc = json.loads((pytester.path / "out" / "verdict.json").read_text())
    assert doc["status"] == "error" and "Docker engine not reachable" in doc["root_cause"]


def test_existing_provider_does_not_need_docker(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{closed_port()}")
    pytester.makepyfile(test_d="import pytest\n@pytest.mark.mirror_docker\ndef test_x():\n    pass\n")
    pytester.runpytest_inprocess("--mirror-provider", "existing").assert_outcomes(passed=1)


@pytest.mark.parametrize(("exc", "expected"), [
    (None, (Status.PASS, None, ())),
    (ScenarioFailed("redis down", ("d.md",)), (Status.FAIL, "redis down", ("d.md",))),
    (CandidateFailed("bad\nmanifest"), (Status.FAIL, "bad manifest", ())),
    (AssertionError("objects not Healthy\nassert False"), (Status.FAIL, "objects not Healthy", ())),
    (AssertionError(), (Status.FAIL, "assertion failed", ())),
    (EnvironmentNotReady("no Docker"), (Status.ERROR, "no Docker", ())),
    (KeyError("x"), (Status.ERROR, "internal error: KeyError: 'x'", ())),
])
def test_classify_exception(exc: BaseException | None, expected: tuple[object, ...]) -> None:
    assert classify_exception(exc) == expected


def test_classify_skip() -> None:
    with pytest.raises(pytest.skip.Exception) as info:
        pytest.skip("needs --baseline SPEC")
    assert classify_exception(info.value) == (Status.SKIPPED, "needs --baseline SPEC", ())


def test_application_shape_and_state() -> None:
    app = application("argocd", "argocd", "https://github.com/argoproj/argo-cd.git", "v3.5.1", "manifests",
                      "argocd", include="install.yaml", server_side=True)
    assert app["spec"]["source"] == {"repoURL": "https://github.com/argoproj/argo-cd.git", "targetRevision": "v3.5.1",
                                     "path": "manifests", "directory": {"include": "install.yaml"}}
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert application_state(app) == (False, None)
    app["status"] = {"sync": {"status": "Synced"}, "health": {"status": "Healthy"},
                     "operationState": {"phase": "Succeeded"}}
    assert application_state(app) == (True, None)
    app["status"] = {"sync": {"status": "OutOfSync"}, "health": {"status": "Missing"},
                     "operationState": {"phase": "Failed", "retryCount": 2, "message": "one or more objects failed"},
                     "conditions": [{"type": "ComparisonError", "message": "dial tcp: lookup github.com: i/o timeout"}]}
    assert application_state(app) == (False, "sync failed: one or more objects failed")
    assert describe_application(app) == "sync OutOfSync, health Missing: dial tcp: lookup github.com: i/o timeout"


def test_sync_application_reports_where_it_is_stuck(tmp_path: Path) -> None:
    """Against the API double: the Application is applied server-side, polled, and a failed sync is a FAIL."""
    from tests.apidouble import ApiDouble
    from tests.apidouble.argocd import bundle_from
    from tests.conftest import real_manifest
    from validator.install import install
    from validator.manifests import Bundle
    from validator.pytest_plugin import sync_application

    crds = Bundle([o for o in bundle_from(real_manifest("v2.11.2/install.yaml")) if o.kind == "CustomResourceDefinition"
                   and o.name == "applications.argoproj.io"])
    with ApiDouble() as double:
        api = double.api_client(tmp_path)
        install(api, crds)
        double.script(at=0, kind="Application", name="smoke", namespace="argocd", status={
            "sync": {"status": "OutOfSync"}, "health": {"status": "Missing"},
            "operationState": {"phase": "Failed", "retryCount": 3, "message": "one or more objects failed to apply"},
            "conditions": [{"type": "SyncError", "message": 'namespaces "guestbook" is forbidden'}]})
        app = application("smoke", "argocd", "https://example.invalid/repo.git", "HEAD", "guestbook", "guestbook")
        seen: list[str] = []
        with pytest.raises(ScenarioFailed) as info:
            sync_application(api, app, timeout_s=10, progress=seen.append, poll_s=0.05)
        live = double.get("Application", "smoke", "argocd")
    assert str(info.value) == ("Application smoke: sync failed: one or more objects failed to apply "
                               '(sync OutOfSync, health Missing: namespaces "guestbook" is forbidden)')
    assert live is not None and live["spec"]["source"]["path"] == "guestbook"
    assert seen[0].startswith("Application smoke created")


def test_half_skipped_scenario_names_the_step(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_half="import pytest\npytestmark = pytest.mark.scenario('upgrade')\n"
                                  "def test_a():\n    pass\n"
                                  "def test_b():\n    pytest.skip('needs --baseline SPEC')\n")
    result = pytester.runpytest_inprocess("--mirror-artifacts", "out")
    assert result.ret == 2
    doc = json.loads((pytester.path / "out" / "verdict.json").read_text())
    assert doc["root_cause"] == "upgrade: test_b: needs --baseline SPEC"


def test_a_pass_without_a_resolved_candidate_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_p="import pytest\n@pytest.mark.scenario('fresh-install')\ndef test_a():\n    pass\n")
    result = pytester.runpytest_inprocess("--mirror-artifacts", "out")
    assert result.ret == 2
    doc = json.loads((pytester.path / "out" / "verdict.json").read_text())
    assert (doc["status"], doc["root_cause"]) == ("error", "no candidate was resolved, so nothing was validated")


def test_standalone_pass_with_a_resolved_candidate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_p="import pytest\n@pytest.mark.scenario('fresh-install')\n"
                               "def test_a(candidate_bundle):\n    assert len(candidate_bundle) == 1\n")
    manifest = pytester.path / "install.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm}\n")
    result = pytester.runpytest_inprocess("--mirror-artifacts", "out", "--mirror-candidate", str(manifest))
    assert result.ret == 0
    doc = json.loads((pytester.path / "out" / "verdict.json").read_text())
    assert doc["status"] == "pass" and doc["candidate"]["source"] == "file"
    assert (pytester.path / "out" / "summary.md").read_text().startswith("PASS ")


def write_candidate(pytester: pytest.Pytester) -> Path:
    manifest = pytester.path / "install.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm}\n")
    return manifest


UPGRADE_STEPS = """
import pytest

@pytest.mark.scenario("upgrade")
def test_baseline(candidate_bundle):
    pass

def test_team_check():  # a team's own test beside the scenarios (no scenario marker)
    assert {team_ok}, "team policy violated"

@pytest.mark.scenario("upgrade")
def test_apply():
    pass

@pytest.mark.scenario("upgrade")
def test_healthy():
    pass
"""


@pytest.mark.parametrize(("team_ok", "argv", "cause"), [
    (True, ["-k", "baseline"], "upgrade: steps test_apply, test_healthy not run (deselected)"),
    (True, ["--deselect", "test_u.py::test_healthy"], "upgrade: step test_healthy not run (deselected)"),
    (False, ["-x"], "upgrade: steps test_apply, test_healthy not run (the session stopped before it)"),
])
def test_steps_that_never_ran_make_an_error_never_a_pass(pytester: pytest.Pytester, team_ok: bool, argv: list[str],
                                                        cause: str) -> None:
    """Old: only the steps that ran were judged, so `-k baseline` passed an upgrade that never upgraded."""
    pytester.makepyfile(test_u=UPGRADE_STEPS.format(team_ok=team_ok))
    result = pytester.runpytest_inprocess("--mirror-artifacts", "out", "--mirror-candidate",
                                          str(write_candidate(pytester)), *argv)
    doc = json.loads((pytester.path / "out" / "verdict.json").read_text())
    assert (result.ret, doc["status"], doc["root_cause"]) == (2, "error", cause)
    validate_document(doc)


def test_a_passing_verdict_never_hides_another_failing_test(pytester: pytest.Pytester) -> None:
    """Old: the verdict's exit code replaced pytest's, so the team's failing test beside passing scenarios was 0."""
    pytester.makepyfile(test_u=UPGRADE_STEPS.format(team_ok=False))
    result = pytester.runpytest_inprocess("--mirror-artifacts", "out", "--mirror-candidate",
                                          str(write_candidate(pytester)))
    result.assert_outcomes(passed=3, failed=1)
    assert result.ret == 1
    assert json.loads((pytester.path / "out" / "verdict.json").read_text())["status"] == "pass"


KEEP_CONFTEST = """
import pytest
from pathlib import Path
from validator.pytest_plugin import ClusterPool

class FakeCluster:
    failed = False
    def mark_failed(self):
        self.failed = True

@pytest.fixture(scope="session")
def mirror_clusters(mirror_options, mirror_progress):
    pool = ClusterPool(mirror_options, mirror_progress)
    pool.clusters["main"] = FakeCluster()
    yield pool
    Path("failed-at-teardown").write_text(str(pool.clusters["main"].failed))  # what lifecycle would read

@pytest.fixture
def installed(mirror_clusters):
    {install}
"""


@pytest.mark.parametrize(("install", "step", "failed"), [
    ("from validator.errors import CandidateFailed; raise CandidateFailed('HTTP 422: selector immutable')", "pass",
     True),
    ("pass", "from validator.report import ScenarioFailed; raise ScenarioFailed('Application smoke: sync failed')",
     True),
    ("pass", "assert False, 'not Healthy'", True),
    ("pass", "pytest.skip('needs --baseline SPEC')", False),
    ("pass", "pass", False),
])
def test_a_failed_step_marks_the_clusters_failed(pytester: pytest.Pytester, install: str, step: str,
                                                 failed: bool) -> None:
    """Old: only observe_healthy marked a cluster failed, so an install rejection, a failed sync or a failing
    assertion let --keep-cluster on-failure delete the cluster (and skip `kind export logs`)."""
    pytester.makeconftest(KEEP_CONFTEST.replace("{install}", install))
    pytester.makepyfile(test_k=f"import pytest\n@pytest.mark.scenario('fresh-install')\n"
                               f"def test_step(installed):\n    {step}\n")
    pytester.runpytest_inprocess("--mirror-artifacts", "out")
    assert (pytester.path / "failed-at-teardown").read_text() == str(failed)
