"""The CI workflows: schema-valid offline (check-jsonschema's vendored GitHub schema) and true to our pins."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from validator.cluster.images import KIND_RELEASE, MIN_KIND, NODE_IMAGES
from validator.profiles import CNIS

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"
CHECK = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")


def load(name: str) -> dict[Any, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    return {("on" if key is True else key): value for key, value in doc.items()}  # YAML 1.1 reads `on` as True


def assert_validates_through_the_cli(steps: list[dict[str, Any]]) -> None:
    """The CLI's own exit code (0 pass, 1 fail, 2 could not validate), not make's (2 for any failure), and every
    input one quoted argument (make would paste them into a shell command line)."""
    runs = "\n".join(line for s in steps for line in str(s.get("run", "")).splitlines()
                     if not line.lstrip().startswith("#"))
    assert "make validate" not in runs
    assert re.search(r'^\.venv/bin/argocd-mirror validate "\$\w+" "\$\{args\[@\]\}"$', runs, re.MULTILINE), runs
    assert not re.search(r'args="[^"]*\$', runs), "arguments built as one string are split by the shell"


def check_jsonschema(*files: Path, schema: str = "vendor.github-workflows") -> subprocess.CompletedProcess[str]:
    if CHECK is None:
        pytest.skip("check-jsonschema is not installed (dev dependency)")
    # Any network use would go through a proxy that refuses: the vendored schema must be all it needs.
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    return subprocess.run([CHECK, "--builtin-schema", schema, *map(str, files)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_every_workflow_validates_offline() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "nightly.yml", "gate.yml"}
    proc = check_jsonschema(*files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    steps:\n      - run: true\n")  # no runs-on
    proc = check_jsonschema(broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_ci_lints_types_and_tests() -> None:
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    runs = " ".join(step.get("run", "") for step in ci["jobs"]["test"]["steps"])
    assert "make lint" in runs and "make test" in runs
    # the docker-marked tests run for real there, with the kind we pin (a runner's own kind may be older)
    assert ci["env"]["KIND_VERSION"] == KIND_RELEASE
    (kind,) = [s for s in ci["jobs"]["test"]["steps"] if "helm/kind-action@" in s.get("uses", "")]
    assert kind["with"] == {"version": "${{ env.KIND_VERSION }}", "install_only": True}


def test_nightly_schedule_matrix_and_pins() -> None:
    nightly = load("nightly.yml")
    (cron,) = [entry["cron"] for entry in nightly["on"]["schedule"]]
    assert cron.split()[0] not in ("0", "00", "*"), "not on the hour"
    assert "workflow_dispatch" in nightly["on"]
    assert nightly["env"]["KIND_VERSION"] == KIND_RELEASE
    assert tuple(int(x) for x in KIND_RELEASE[1:].split(".")) >= MIN_KIND
    job = nightly["jobs"]["validate"]
    assert job["if"] == "${{ !cancelled() }}", "stable must not be skipped because finding the newest failed"
    (validate,) = [s for s in job["steps"] if s.get("name") == "Validate"]
    assert validate["env"]["CANDIDATE"].endswith("|| matrix.candidate }}"), "never relabel stable as newest"
    matrix = job["strategy"]["matrix"]
    assert set(matrix["candidate"]) == {"stable", "newest"}
    assert set(matrix["kubernetes"]) <= set(NODE_IMAGES), "every Kubernetes version has a digest-pinned node image"
    assert set(matrix["cni"]) == set(CNIS)
    kind_step = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("helm/kind-action@"))
    assert kind_step["with"] == {"version": "${{ env.KIND_VERSION }}", "install_only": True,
                                 "kubectl_version": "${{ env.KUBECTL_VERSION }}"}
    kubectl_minor = int(nightly["env"]["KUBECTL_VERSION"].split(".")[1])
    assert all(abs(int(k.split(".")[1]) - kubectl_minor) <= 1 for k in matrix["kubernetes"]), \
        "kubectl supports clusters within one minor version of itself"
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    for key in matrix:
        assert f"matrix.{key}" in upload["with"]["name"], f"artifact names must be unique per {key}"
    assert_validates_through_the_cli(job["steps"])


def test_gate_is_callable_and_dispatchable_with_a_version() -> None:
    gate = load("gate.yml")
    assert gate["on"]["workflow_call"]["inputs"]["version"]["required"] is True
    assert "version" in gate["on"]["workflow_dispatch"]["inputs"]
    assert gate["env"]["KIND_VERSION"] == KIND_RELEASE
    steps = gate["jobs"]["validate"]["steps"]
    assert_validates_through_the_cli(steps)
    assert gate["on"]["workflow_call"]["outputs"]["verdict"]["value"] == "${{ jobs.validate.outputs.verdict }}"


@pytest.mark.parametrize("name", ["ci.yml", "nightly.yml", "gate.yml"])
def test_actions_are_pinned_to_a_commit_with_the_release_named(name: str) -> None:
    """A tag can be moved (the supply-chain attack on tj-actions/changed-files did); a commit cannot. The
    comment names the release so Dependabot (.github/dependabot.yml) and readers know what it is."""
    lines = (WORKFLOWS / name).read_text().splitlines()
    uses = [line.split("uses:", 1)[1].strip() for line in lines
            if line.strip().lstrip("- ").startswith("uses:")]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+", u) for u in uses), uses


def test_dependabot_keeps_the_pinned_actions_current() -> None:
    path = WORKFLOWS.parent / "dependabot.yml"
    proc = check_jsonschema(path, schema="vendor.dependabot")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = yaml.safe_load(path.read_text())
    assert config["version"] == 2
    assert {"package-ecosystem": "github-actions", "directory": "/"}.items() <= config["updates"][0].items()


@pytest.mark.parametrize(("verdict", "expected"), [
    (None, {"status": "error", "version": "unresolved", "artifact": "gate-unresolved-install-7-1"}),
    ('{"status": "pass", "candidate": {"version": "v3.5.1"}}',
     {"status": "pass", "version": "v3.5.1", "artifact": "gate-v3.5.1-install-7-1"}),
    ('{"status": "fail", "candidate": null}',
     {"status": "fail", "version": "unresolved", "artifact": "gate-unresolved-install-7-1"}),
])
def test_gate_verdict_step_outputs(tmp_path: Path, verdict: str | None, expected: dict[str, str]) -> None:
    """Run the gate's Verdict step script as the runner would: its outputs are what callers branch on."""
    (step,) = [s for s in load("gate.yml")["jobs"]["validate"]["steps"] if s.get("id") == "verdict"]
    (tmp_path / "artifacts").mkdir()
    if verdict is not None:
        (tmp_path / "artifacts" / "verdict.json").write_text(verdict)
    env = {**os.environ, "GITHUB_OUTPUT": str(tmp_path / "out"), "RUN": "7-1", "VARIANT": "install"}
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, check=True, timeout=60)
    assert dict(line.split("=", 1) for line in (tmp_path / "out").read_text().splitlines()) == expected


@pytest.mark.parametrize(("profile", "expected"), [
    ("", ["v3.5.1", "--variant", "ha", "--artifacts", "artifacts"]),  # the CLI then picks the ha profile
    ("ha-big", ["v3.5.1", "--variant", "ha", "--artifacts", "artifacts", "--profile", "ha-big"]),
])
def test_gate_passes_a_profile_only_when_one_is_named(tmp_path: Path, profile: str, expected: list[str]) -> None:
    """Run the gate's Validate step as the runner would, with a recording CLI: a default `--profile default`
    judged every HA release on one node."""
    inputs = load("gate.yml")["on"]
    assert inputs["workflow_call"]["inputs"]["profile"]["default"] == ""
    assert inputs["workflow_dispatch"]["inputs"]["profile"]["default"] == ""
    (step,) = [s for s in load("gate.yml")["jobs"]["validate"]["steps"] if "argocd-mirror validate" in s.get("run", "")]
    (tmp_path / "Makefile").write_text(".venv/bin/argocd-mirror:\n\t@true\n")
    cli = tmp_path / ".venv" / "bin" / "argocd-mirror"
    cli.parent.mkdir(parents=True)
    cli.write_text('#!/bin/sh\nshift\nprintf "%s\\n" "$@" > recorded\n')
    cli.chmod(0o755)
    env = {**os.environ, "VERSION": "v3.5.1", "BASELINE": "", "VARIANT": "ha", "PROFILE": profile}
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, check=True, timeout=60)
    assert (tmp_path / "recorded").read_text().splitlines() == expected
