"""The pytest plugin as a good citizen of every pytest run in its environment, and what a standalone scenario run
reports: clash-free options, its own markers, no work unless used, failures that read as the candidate's."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from validator.pytest_plugin import Driver
from validator.report import Status, decide, validate_document

pytest_plugins = ["pytester"]

# The options the two plugins that share our vocabulary register, names and kinds as they ship them:
# pytest-kind 22.11.1 (pytest_kind/plugin.py) and pytest-profiling 1.8.1 (pytest_profiling.py).
KIND_LIKE = """
def pytest_addoption(parser):
    group = parser.getgroup("kind")
    group.addoption("--cluster-name", default="pytest-kind")
    group.addoption("--keep-cluster", action="store_true")
    group.addoption("--kubeconfig", default=None)
    group.addoption("--kind-image", default=None, action="store")
    group.addoption("--kind-bin", default=None, action="store")
    group.addoption("--kind-kubectl-bin", default=None, action="store")
"""
PROFILING_LIKE = """
def pytest_addoption(parser):
    group = parser.getgroup("Profiling")
    group.addoption("--profile", action="store_true")
    group.addoption("--profile-svg", action="store_true")
    group.addoption("--pstats-dir", nargs=1)
    group.addoption("--element-number", action="store", type=int, default=20)
    group.addoption("--strip-dirs", action="store_true")
"""
# Another project's test: its own `docker` marker, their options, ours beside them.
OTHER_PROJECT = """
import sys
import pytest

@pytest.mark.docker
def test_their_own(request):
    opt = request.config.getoption
    assert (opt("keep_cluster"), opt("kubeconfig"), opt("cluster_name"), opt("kind_bin")) == (
        True, "theirs", "c", "/opt/kind")
    assert (opt("profile"), opt("profile_svg"), opt("element_number")) == (True, True, 5)
    assert (opt("mirror_kubeconfig"), opt("mirror_profile"), opt("mirror_keep")) == ("ours", "ha", "always")
"""
THEIR_ARGS = ("--keep-cluster", "--kubeconfig", "theirs", "--cluster-name", "c", "--kind-bin", "/opt/kind",
              "--profile", "--profile-svg", "--element-number", "5",
              "--mirror-kubeconfig", "ours", "--mirror-profile", "ha", "--mirror-keep-cluster")
OURS = "validator.pytest_plugin"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def other_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(kind_like=KIND_LIKE, profiling_like=PROFILING_LIKE, test_theirs=OTHER_PROJECT)
    pytester.makeini("[pytest]\nmarkers =\n    docker: their own marker\naddopts = --strict-markers\n")
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{closed_port()}")  # no engine: none of our business


@pytest.mark.parametrize("order", [(OURS, "kind_like", "profiling_like"), ("kind_like", "profiling_like", OURS),
                                   ("profiling_like", OURS, "kind_like")])
def test_other_plugins_keep_their_options_in_any_load_order(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            order: tuple[str, ...]) -> None:
    """Old: bare --keep-cluster/--kubeconfig/--profile; loaded before pytest-kind or pytest-profiling, every run of
    any project failed with `conflicting option string`, and a test marked `docker` was skipped by our ping."""
    other_project(pytester, monkeypatch)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the load order is the -p order
    result = pytester.runpytest_subprocess(*[arg for name in order for arg in ("-p", name)], *THEIR_ARGS)
    result.assert_outcomes(passed=1)
    assert "argocd-mirror" not in result.stdout.str()  # nothing of ours in their report
    assert not (pytester.path / "artifacts").exists()


def test_other_plugins_beside_our_entry_point(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """As installed: ours through the pytest11 entry point, theirs after it."""
    other_project(pytester, monkeypatch)
    result = pytester.runpytest_subprocess("-p", "kind_like", "-p", "profiling_like", *THEIR_ARGS)
    result.assert_outcomes(passed=1)


def test_a_plain_run_does_no_work_of_ours(pytester: pytest.Pytester) -> None:
    """Loaded into every pytest run, the plugin makes no state, reads no profile and imports nothing heavy there."""
    pytester.makepyfile(test_plain="""
import sys
from validator.pytest_plugin import STATE

def test_x(request):
    assert STATE not in request.config.stash
    heavy = {"validator.profiles", "validator.candidate", "validator.cluster.tools", "docker", "kubernetes",
             "jsonschema"}
    assert not heavy & set(sys.modules), heavy & set(sys.modules)
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                                           "-p", "no:benchmark")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "artifacts").exists()


BROKEN_CANDIDATE = """
import pytest
from validator.errors import EnvironmentNotReady
from validator.report import ScenarioFailed

@pytest.fixture(scope="session")
def installed():  # what installed_argocd raises when the candidate never gets Healthy
    raise ScenarioFailed('argocd-redis: init container secret-init failing (3 restarts): "dial tcp 10.96.0.1:443: '
                         'i/o timeout"', evidence=("out/diagnostics/fresh-install/diagnosis.md",
                                                   "out/diagnostics/fresh-install/diagnosis.json"))

@pytest.fixture(scope="session")
def second_cluster():
    raise EnvironmentNotReady("Docker engine not reachable: no daemon")

@pytest.mark.scenario("fresh-install")
def test_every_object_applies(installed):
    pass

@pytest.mark.scenario("fresh-install")
def test_every_object_becomes_healthy(installed):
    pass

@pytest.mark.scenario("ha")
def test_every_ha_object_becomes_healthy(second_cluster):
    pass
"""


def test_a_broken_candidate_is_a_failure_with_its_root_cause(pytester: pytest.Pytester) -> None:
    """Old: `ERROR at setup of test_every_object_applies` with the plugin's traceback, and a JUnit <error>, which
    reporters read as a broken suite rather than a failed release."""
    pytester.makepyfile(test_s=BROKEN_CANDIDATE)
    result = pytester.runpytest_inprocess("--mirror-artifacts", "out", "--junitxml", "junit.xml", "-rfE", "-vv")
    result.assert_outcomes(failed=2, errors=1)
    root_cause = 'argocd-redis: init container secret-init failing (3 restarts): "dial tcp 10.96.0.1:443: i/o timeout"'
    result.stdout.fnmatch_lines([
        f"FAILED test_s.py::test_every_object_applies - candidate failed: {root_cause}",
        "ERROR test_s.py::test_every_ha_object_becomes_healthy - could not validate: Docker engine not reachable: "
        "no daemon",
    ])
    result.stdout.fnmatch_lines(["evidence: out/diagnostics/fresh-install/diagnosis.md, "
                                 "out/diagnostics/fresh-install/diagnosis.json"])
    text = result.stdout.str()
    assert "pytest_plugin.py" not in text and "Traceback" not in text and "raise " not in text
    cases = {case.get("name"): case for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    applies = cases["test_every_object_applies"]
    assert [child.tag for child in applies if child.tag in ("failure", "error")] == ["failure"]
    assert applies.find("failure").get("message", "").startswith(f"candidate failed: {root_cause}")  # type: ignore
    assert [c.tag for c in cases["test_every_ha_object_becomes_healthy"] if c.tag in ("failure", "error")] == [
        "error"]
    doc = json.loads((pytester.path / "out" / "verdict.json").read_text())
    validate_document(doc)
    assert (doc["status"], doc["root_cause"]) == ("fail", f"fresh-install: {root_cause}")
    assert doc["scenarios"][0]["evidence"] == ["out/diagnostics/fresh-install/diagnosis.json",
                                               "out/diagnostics/fresh-install/diagnosis.md"]
    result.stdout.fnmatch_lines(["*= argocd-mirror =*", f"FAIL stable: fresh-install: {root_cause}",
                                 "verdict: out/verdict.json, summary: out/summary.md"])


def test_setup_only_still_reports_the_failure_at_setup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=BROKEN_CANDIDATE)
    result = pytester.runpytest_inprocess("--mirror-artifacts", "out", "--setup-only", "-k", "applies")
    result.assert_outcomes(errors=1)


SCENARIOS_NEEDING_MORE = """
import pytest

@pytest.mark.scenario("fresh-install")
def test_applies(candidate_bundle):
    assert len(candidate_bundle) == 1

@pytest.mark.scenario("upgrade")
def test_baseline_first(baseline_bundle):
    pass

@pytest.mark.scenario("upgrade")
def test_candidate_over_it(candidate_bundle):  # no baseline of its own: its scenario needs one
    pass

@pytest.mark.scenario("ha")
def test_ha(ha_bundle):
    pass

def test_team_check():  # a team's own test beside the scenarios
    pass
"""


def write_candidate(pytester: pytest.Pytester) -> Path:
    manifest = pytester.path / "install.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm}\n")
    return manifest


def test_a_plain_run_leaves_out_what_it_cannot_run_and_can_pass(pytester: pytest.Pytester) -> None:
    """Old: without --baseline, upgrade/rollback/self-managed skipped, and a skip is an error of the verdict: a
    plain run could never pass. Now they are deselected whole (as is ha for a file candidate), and said so."""
    pytester.makepyfile(test_s=SCENARIOS_NEEDING_MORE)
    result = pytester.runpytest_inprocess("--mirror-artifacts", "out", "--mirror-candidate",
                                          str(write_candidate(pytester)))
    result.assert_outcomes(passed=2, deselected=3)
    assert result.ret == 0
    doc = json.loads((pytester.path / "out" / "verdict.json").read_text())
    assert doc["status"] == "pass" and [s["name"] for s in doc["scenarios"]] == ["fresh-install"]
    result.stdout.fnmatch_lines([
        "*= argocd-mirror =*",
        "left out: upgrade: they need --mirror-baseline SPEC (the Argo CD version production runs now)",
        "left out: ha: they need a release candidate (stable or a tag) or --mirror-variant ha",
        "PASS *install.yaml=* fresh-install *",
        "verdict: out/verdict.json, summary: out/summary.md",
    ])


def test_the_gate_leaves_nothing_out(pytester: pytest.Pytester) -> None:
    """Under `argocd-mirror validate` (a Driver) a step that cannot run is run and reported, so the gate fails
    closed: its verdict is an error, never a pass of the scenarios that happened to run."""
    pytester.makepyfile(test_s=SCENARIOS_NEEDING_MORE)
    driver = Driver()
    pytester.runpytest_inprocess("--mirror-artifacts", "out", "--mirror-candidate", str(write_candidate(pytester)),
                                 plugins=[driver])
    assert [(r.name, r.status) for r in driver.results] == [
        ("fresh-install", Status.PASS), ("upgrade", Status.ERROR), ("ha", Status.SKIPPED)]
    assert decide(driver.results, expected=["fresh-install", "upgrade", "ha"])[0] == Status.ERROR


def test_the_readme_line_collects_the_shipped_scenarios(pytester: pytest.Pytester) -> None:
    """`pytest --pyargs validator.scenarios --mirror-candidate v3.5.1`, from a directory that is not a checkout."""
    result = pytester.runpytest_subprocess("--pyargs", "validator.scenarios", "--mirror-candidate", "v3.5.1",
                                           "--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*test_app_smoke.py::test_argocd_deploys_an_application",
                                 "*test_fresh_install.py::test_every_object_applies",
                                 "*test_ha.py::test_every_ha_object_becomes_healthy",
                                 "left out: rollback, self-managed, upgrade: they need --mirror-baseline SPEC*",
                                 "7/15 tests collected (8 deselected)*"])
