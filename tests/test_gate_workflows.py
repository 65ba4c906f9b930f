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
ACTION = WORKFLOWS.parents[1] / "action.yml"
CHECK = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")


def load(name: str) -> dict[Any, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    return {("on" if key is True else key): value for key, value in doc.items()}  # YAML 1.1 reads `on` as True


def load_action() -> dict[Any, Any]:
    return dict(yaml.safe_load(ACTION.read_text()))


def action_step(name_or_id: str) -> dict[str, Any]:
    (step,) = [s for s in load_action()["runs"]["steps"] if name_or_id in (s.get("id"), s.get("name"))]
    return dict(step)


def assert_validates_through_the_cli(steps: list[dict[str, Any]]) -> None:
    """The CLI's own exit code (0 pass, 1 fail, 2 could not validate), not make's (2 for any failure), and every
    input one quoted argument (make would paste them into a shell command line)."""
    runs = "\n".join(line for s in steps for line in str(s.get("run", "")).splitlines()
                     if not line.lstrip().startswith("#"))
    assert "make validate" not in runs
    assert re.search(r'^argocd-mirror validate "\$\w+" "\$\{args\[@\]\}"$', runs, re.MULTILINE), runs
    assert not re.search(r'args="[^"]*\$', runs), "arguments built as one string are split by the shell"


def assert_validates_through_the_action(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A workflow of ours validates with action.yml of its own checkout (which runs the CLI as above); its step."""
    assert not any("argocd-mirror validate" in str(s.get("run", "")) for s in steps)
    (step,) = [s for s in steps if s.get("uses") == "./"]
    assert step["with"]["kind-version"] == "${{ env.KIND_VERSION }}"
    assert step["with"]["artifacts"] == "artifacts"
    assert step["with"]["upload-sarif"] == "false", "a SARIF upload needs security-events: write"
    return dict(step)


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
    validate = assert_validates_through_the_action(job["steps"])
    assert validate["with"]["candidate"].endswith("|| matrix.candidate }}"), "never relabel stable as newest"
    assert validate["with"]["profile"] == "${{ runner.temp }}/profile.yaml"
    assert validate["with"]["kubectl-version"] == "${{ env.KUBECTL_VERSION }}"
    matrix = job["strategy"]["matrix"]
    assert set(matrix["candidate"]) == {"stable", "newest"}
    assert set(matrix["kubernetes"]) <= set(NODE_IMAGES), "every Kubernetes version has a digest-pinned node image"
    assert set(matrix["cni"]) == set(CNIS)
    kubectl_minor = int(nightly["env"]["KUBECTL_VERSION"].split(".")[1])
    assert all(abs(int(k.split(".")[1]) - kubectl_minor) <= 1 for k in matrix["kubernetes"]), \
        "kubectl supports clusters within one minor version of itself"
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    for key in matrix:
        assert f"matrix.{key}" in upload["with"]["name"], f"artifact names must be unique per {key}"


def test_gate_is_callable_and_dispatchable_with_a_version() -> None:
    gate = load("gate.yml")
    assert gate["on"]["workflow_call"]["inputs"]["version"]["required"] is True
    assert "version" in gate["on"]["workflow_dispatch"]["inputs"]
    assert gate["env"]["KIND_VERSION"] == KIND_RELEASE
    steps = gate["jobs"]["validate"]["steps"]
    validate = assert_validates_through_the_action(steps)
    assert {k: validate["with"][k] for k in ("candidate", "baseline", "variant", "profile")} == {
        "candidate": "${{ inputs.version }}", "baseline": "${{ inputs.baseline }}",
        "variant": "${{ inputs.variant }}", "profile": "${{ inputs.profile }}"}
    assert steps.index(validate) > 0 and "actions/checkout@" in steps[0]["uses"], "./ is the checked-out mirror"
    assert gate["on"]["workflow_call"]["outputs"]["verdict"]["value"] == "${{ jobs.validate.outputs.verdict }}"


@pytest.mark.parametrize("path", [WORKFLOWS / "ci.yml", WORKFLOWS / "nightly.yml", WORKFLOWS / "gate.yml", ACTION],
                         ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit_with_the_release_named(path: Path) -> None:
    """A tag can be moved (the supply-chain attack on tj-actions/changed-files did); a commit cannot. The
    comment names the release so Dependabot (.github/dependabot.yml) and readers know what it is. `./` is the
    action of the same checkout."""
    lines = path.read_text().splitlines()
    uses = [line.split("uses:", 1)[1].strip() for line in lines
            if line.strip().lstrip("- ").startswith("uses:")]
    pinned = r"[\w.-]+/[\w.-]+(/[\w.-]+)*@[0-9a-f]{40}  # v\d+\.\d+\.\d+"
    assert uses and all(u == "./" or re.fullmatch(pinned, u) for u in uses), uses


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


def run_action_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A composite step's script as the runner runs `shell: bash` (bash --noprofile --norc -eo pipefail)."""
    assert step["shell"] == "bash"
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=cwd,
                          env={**os.environ, **env}, capture_output=True, text=True, check=True, timeout=60)


@pytest.mark.parametrize(("inputs", "expected"), [
    ({"PROFILE": ""}, ["v3.5.1", "--variant", "ha", "--artifacts", "artifacts"]),  # the CLI then picks ha
    ({"PROFILE": "ha-big"}, ["v3.5.1", "--variant", "ha", "--artifacts", "artifacts", "--profile", "ha-big"]),
    ({"BASELINE": "v3.4.2", "SCENARIOS": "upgrade, rollback"},
     ["v3.5.1", "--variant", "ha", "--artifacts", "artifacts", "--baseline", "v3.4.2", "--scenario", "upgrade",
      "--scenario", "rollback"]),
    ({"PROFILE": "my profile; rm -rf /"},  # an input is one argument, never shell
     ["v3.5.1", "--variant", "ha", "--artifacts", "artifacts", "--profile", "my profile; rm -rf /"]),
])
def test_the_action_passes_each_input_as_one_argument(tmp_path: Path, inputs: dict[str, str],
                                                      expected: list[str]) -> None:
    """Run the action's Validate step with a recording CLI: a profile only when one is named (a default
    `--profile default` judged every HA release on one node), each input one quoted argument."""
    assert load_action()["inputs"]["profile"]["default"] == ""
    inputs_ = load("gate.yml")["on"]
    assert inputs_["workflow_call"]["inputs"]["profile"]["default"] == ""
    assert inputs_["workflow_dispatch"]["inputs"]["profile"]["default"] == ""
    step = action_step("Validate ${{ inputs.candidate }}")
    assert_validates_through_the_cli([step])
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "argocd-mirror").write_text('#!/bin/sh\nshift\nprintf "%s\\n" "$@" > recorded\n')
    (bin_ / "argocd-mirror").chmod(0o755)
    env = {"PATH": f"{bin_}:{os.environ['PATH']}", "CANDIDATE": "v3.5.1", "BASELINE": "", "VARIANT": "ha",
           "PROFILE": "", "SCENARIOS": "", "ARTIFACTS": "artifacts", **inputs}
    run_action_step(step, tmp_path, env)
    assert (tmp_path / "recorded").read_text().splitlines() == expected


def test_the_action_validates_offline_and_pins_what_the_workflows_pin() -> None:
    proc = check_jsonschema(ACTION, schema="vendor.github-actions")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    action = load_action()
    assert action["runs"]["using"] == "composite"
    assert {"candidate", "baseline", "profile", "variant", "scenarios", "kind-version"} <= set(action["inputs"])
    assert set(action["outputs"]) == {"status", "version", "verdict"}
    assert action["inputs"]["kind-version"]["default"] == KIND_RELEASE
    assert action["inputs"]["kubectl-version"]["default"] == load("gate.yml")["env"]["KUBECTL_VERSION"]
    (kind,) = [s for s in action["runs"]["steps"] if "helm/kind-action@" in s.get("uses", "")]
    assert kind["with"] == {"version": "${{ inputs.kind-version }}", "kubectl_version": "${{ inputs.kubectl-version }}",
                            "install_only": True}
    ci_kind = next(s for s in load("ci.yml")["jobs"]["test"]["steps"] if "helm/kind-action@" in s.get("uses", ""))
    assert kind["uses"] == ci_kind["uses"], "one kind-action pin"
    install = action_step("Install argocd-mirror from this action's checkout")
    assert '"$GITHUB_ACTION_PATH"' in install["run"], "the action's own checkout, not whatever PyPI has"
    (upload,) = [s for s in action["runs"]["steps"] if "codeql-action/upload-sarif@" in s.get("uses", "")]
    assert upload["if"].startswith("always() && inputs.upload-sarif == 'true'")
    assert upload["with"]["sarif_file"] == "${{ inputs.artifacts }}/preflight.sarif"
    assert action_step("verdict")["if"] == "always()"


@pytest.mark.parametrize(("verdict", "summary", "expected", "annotation"), [
    (None, None, {"status": "error", "version": "unresolved"},
     "::error title=argocd-mirror error::ERROR stable: could not validate: argocd-mirror wrote no verdict"),
    ('{"status": "pass", "candidate": {"version": "v3.5.1"}}', "PASS stable=v3.5.1 (commit 109ca7c) ...\nmore",
     {"status": "pass", "version": "v3.5.1"}, None),
    ('{"status": "fail", "candidate": {"version": "v2.11.1"}}', "FAIL v2.11.1: 100% of redis down\n\n| table |",
     {"status": "fail", "version": "v2.11.1"}, "::error title=argocd-mirror fail::FAIL v2.11.1: 100%25 of redis down"),
])
def test_the_action_verdict_step_outputs_and_annotates(tmp_path: Path, verdict: str | None, summary: str | None,
                                                       expected: dict[str, str], annotation: str | None) -> None:
    """Its outputs are what callers branch on; a FAIL (or no verdict) is an ::error annotation with the verdict line,
    the first line of summary.md."""
    (tmp_path / "artifacts").mkdir()
    if verdict is not None:
        (tmp_path / "artifacts" / "verdict.json").write_text(verdict)
    if summary is not None:
        (tmp_path / "artifacts" / "summary.md").write_text(summary)
    env = {"GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
           "CANDIDATE": "stable", "ARTIFACTS": "artifacts"}
    proc = run_action_step(action_step("verdict"), tmp_path, env)
    outputs = dict(line.split("=", 1) for line in (tmp_path / "out").read_text().splitlines())
    assert outputs == {**expected, "verdict": "artifacts/verdict.json"}
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    if annotation is None:
        assert errors == []
    else:
        assert len(errors) == 1 and errors[0].startswith(annotation)
    assert (tmp_path / "summary").exists() == (summary is None), "the step summary only when validate wrote none"
