"""`argocd-mirror preflight` end to end through the CLI: exit codes, formats and their schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import real_manifest
from validator.cli import main
from validator.preflight.output import SCHEMA_PATH, SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures" / "preflight"
V2111 = str(FIXTURES / "redis-v2.11.1.yaml")
FINDINGS_SCHEMA = json.loads(SCHEMA_PATH.read_text())
SARIF_SCHEMA = json.loads((FIXTURES / "sarif-2.1.0-minimal.schema.json").read_text())


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["preflight", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def validate(document: object, schema: dict) -> None:
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=str)
    assert not errors, [e.message for e in errors[:5]]


def test_error_exits_1_and_text_names_the_problem(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, V2111)
    assert code == 1 and err == ""
    assert "ERROR   [networkpolicy-api-egress] Deployment argocd-redis: container secret-init" in out
    assert out.rstrip().splitlines()[-1].startswith("FAIL: 1 error(s)")


def test_clean_bundle_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, str(FIXTURES / "redis-v2.11.0.yaml"))
    assert code == 0 and out.rstrip().splitlines()[-1].startswith("PASS: 0 error(s)")


def test_json_output_matches_its_versioned_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, V2111, "-o", "json")
    document = json.loads(out)
    validate(document, FINDINGS_SCHEMA)
    assert code == 1 and document["schemaVersion"] == SCHEMA_VERSION and document["passed"] is False
    first = document["findings"][0]
    assert first["check"] == "networkpolicy-api-egress" and first["severity"] == "error"
    assert first["locations"][0]["source"].endswith("redis-v2.11.1.yaml") and first["locations"][0]["line"] > 1
    assert document["candidate"]["source"] == "file" and len(document["candidate"]["sha256"]) == 64


def test_the_findings_schema_rejects_what_it_should() -> None:
    validator = jsonschema.Draft202012Validator(FINDINGS_SCHEMA)
    good = {"$schema": FINDINGS_SCHEMA["$id"], "schemaVersion": "1.0",
            "tool": {"name": "argocd-mirror", "version": "0"}, "candidate": None,
            "profile": {"name": "p", "kubernetesVersion": "1.35", "nodes": 1, "cni": "kindnet"},
            "applyMode": "server-side", "objects": 0, "passed": True,
            "summary": {"error": 0, "warning": 0, "info": 0}, "findings": []}
    assert validator.is_valid(good)
    bad_finding = {"check": "x", "severity": "fatal", "objects": [], "reason": "r", "evidence": {}, "locations": []}
    assert not validator.is_valid({**good, "findings": [bad_finding]})
    assert not validator.is_valid({**good, "schemaVersion": "2.0"})


def test_sarif_output_is_sarif_2_1_0(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the manifest is outside the working tree: an absolute file:// URI
    code, out, _ = cli(capsys, str(FIXTURES / "schema-errors.yaml"), "-o", "sarif")
    log = json.loads(out)
    validate(log, SARIF_SCHEMA)
    assert code == 1 and log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
    located = [r for r in run["results"] if r.get("locations")]
    uri = located[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.startswith("file://") and uri.endswith("schema-errors.yaml")
    for rule in run["tool"]["driver"]["rules"]:  # code scanning shows `help` beside every alert
        assert "docs/preflight.md#checks" in rule["help"]["markdown"] and rule["helpUri"].endswith("#checks")


def test_sarif_paths_in_the_checkout_are_relative_to_srcroot(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """In CI the working directory is the checkout: code scanning can only annotate repository-relative paths."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    _, out, _ = cli(capsys, "tests/fixtures/preflight/schema-errors.yaml", "-o", "sarif")
    log = json.loads(out)
    validate(log, SARIF_SCHEMA)
    run = log["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": root.as_uri() + "/"}}
    artifacts = [loc["physicalLocation"]["artifactLocation"] for r in run["results"] for loc in r.get("locations", [])]
    assert artifacts and all(a == {"uri": "tests/fixtures/preflight/schema-errors.yaml", "uriBaseId": "%SRCROOT%"}
                             for a in artifacts)


def test_sarif_fingerprints_track_a_finding_across_releases(capsys: pytest.CaptureFixture[str]) -> None:
    """The same defect in the next release (other version, digest, counts) keeps its fingerprint; another check,
    object or defect gets another."""
    from validator.preflight import Finding
    from validator.preflight.output import fingerprint

    a = Finding("references", "error", ("Deployment.apps/argocd/argocd-server",),
                "runs quay.io/argoproj/argocd:v2.14.0-rc7, not v2.14.0 (3 containers)", {})
    later = Finding("references", "error", ("Deployment.apps/argocd/argocd-server",),
                    "runs quay.io/argoproj/argocd:v2.15.1-rc2, not v2.15.1 (4 containers)", {})
    assert fingerprint(a) == fingerprint(later) and len(fingerprint(a)) == 64
    assert fingerprint(a) != fingerprint(Finding("schema", "error", a.objects, a.reason, {}))
    assert fingerprint(a) != fingerprint(Finding("references", "error", ("Deployment.apps/argocd/x",), a.reason, {}))
    _, out, _ = cli(capsys, V2111, "-o", "sarif")
    results = json.loads(out)["runs"][0]["results"]
    prints = [r["partialFingerprints"]["argocdMirrorFinding/v1"] for r in results]
    assert len(set(prints)) == len(prints)
    _, again, _ = cli(capsys, V2111, "-o", "sarif")
    assert [r["partialFingerprints"] for r in json.loads(again)["runs"][0]["results"]] == \
        [r["partialFingerprints"] for r in results]


def test_the_minimal_sarif_schema_is_not_a_rubber_stamp() -> None:
    validator = jsonschema.Draft202012Validator(SARIF_SCHEMA)
    assert not validator.is_valid({"version": "2.0.0", "runs": []})
    assert not validator.is_valid({"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]})
    assert not validator.is_valid({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
                                                                  "results": [{"level": "fatal", "message": {}}]}]})
    misspelt = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
                                              "results": [{"ruleID": "a", "message": {"text": "t"}}]}]}
    assert not validator.is_valid(misspelt)  # property names are closed, as in the official schema


def test_markdown_output_and_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    code, out, _ = cli(capsys, V2111, "-o", "markdown", "--output-file", str(target))
    text = target.read_text()
    assert code == 1 and out == ""
    assert text.startswith("### ❌ preflight failed") and "| error | networkpolicy-api-egress |" in text


def test_a_report_to_a_file_still_says_pass_or_fail_on_stderr(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    target = tmp_path / "preflight.sarif"
    code, out, err = cli(capsys, V2111, "-o", "sarif", "--output-file", str(target))
    assert code == 1 and out == "" and json.loads(target.read_text())["version"] == "2.1.0"
    assert err.splitlines() == [f"preflight FAIL {V2111}=v2.11.1: 1 error(s), 0 warning(s), 2 info"]
    code, out, err = cli(capsys, str(FIXTURES / "redis-v2.11.0.yaml"), "-o", "json")
    assert code == 0 and json.loads(out)["passed"] is True and err.startswith("preflight PASS ")
    _, out, err = cli(capsys, V2111)  # text on stdout already ends with the verdict: not said twice
    assert err == "" and out.rstrip().splitlines()[-1].startswith("FAIL: 1 error(s)")


@pytest.mark.parametrize(("old", "new_spelling"), [
    (["--format", "json"], "use -o json"),
    (["--format", "json", "--output", "{dir}/report.json"], "use --output-file {dir}/report.json"),
    (["-o", "{dir}/report.json"], "use --output-file {dir}/report.json"),
])
def test_the_old_spellings_still_work_for_one_release(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      old: list[str], new_spelling: str) -> None:
    argv = [a.format(dir=tmp_path) for a in old]
    code, out, err = cli(capsys, V2111, *argv)
    report = (tmp_path / "report.json").read_text() if (tmp_path / "report.json").exists() else out
    notes = [line for line in err.splitlines() if "deprecated" in line]
    assert code == 1 and notes and notes[-1].endswith(new_spelling.format(dir=tmp_path))
    assert all(n.startswith("argocd-mirror preflight: note: ") for n in notes)
    if "--format" in old:
        assert json.loads(report)["passed"] is False
    else:  # the old `-o FILE` wrote the text report there, and still does
        assert report.rstrip().splitlines()[-1].startswith("FAIL: 1 error(s)")


def test_o_json_is_the_format_not_a_file_named_json(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, V2111, "-o", "json")
    assert code == 1 and json.loads(out)["passed"] is False and "deprecated" not in err
    assert list(tmp_path.iterdir()) == []


def test_apply_mode_and_check_filter(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, V2111, "--check", "schema", "--check", "references", "-o", "json")
    assert code == 0 and {f["check"] for f in json.loads(out)["findings"]} <= {"schema", "references"}


@pytest.mark.parametrize("argv", [
    ["/no/such/file.yaml"],
    [V2111, "--profile", "no-such-profile"],
    [V2111, "--check", "no-such-check"],
])
def test_could_not_check_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("argocd-mirror preflight: could not check:")


def test_bad_yaml_through_the_real_entry_point_is_one_line_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "validator.cli", "preflight", str(broken)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_real_v351_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(real_manifest("v3.5.1/install.yaml"))
    code, out, _ = cli(capsys, path, "-o", "json")
    validate(json.loads(out), FINDINGS_SCHEMA)
    assert code == 0
    code, out, _ = cli(capsys, path, "--apply-mode", "client-side")
    assert code == 1 and "applicationsets.argoproj.io" in out


SPREAD_ACROSS_THREE_NODES = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: argocd-redis-ha-haproxy}
spec:
  replicas: 3
  selector: {matchLabels: {app: haproxy}}
  template:
    metadata: {labels: {app: haproxy}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - {labelSelector: {matchLabels: {app: haproxy}}, topologyKey: kubernetes.io/hostname}
      containers: [{name: haproxy, image: "haproxy:2.9.4@sha256:%s"}]
""" % ("0" * 64)


def test_the_ha_variant_is_judged_on_the_ha_profile(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """HA manifests need three nodes: `--variant ha` without --profile must not judge them on one node (the
    gate workflow passed `--profile default` and failed every healthy HA release)."""
    spread = tmp_path / "ha-install.yaml"
    spread.write_text(SPREAD_ACROSS_THREE_NODES)
    code, out, _ = cli(capsys, str(spread))
    assert code == 1 and "[scheduling]" in out
    assert cli(capsys, str(spread), "--variant", "ha")[0] == 0
    assert cli(capsys, str(spread), "--variant", "ha", "--profile", "default")[0] == 1  # a named profile wins


def test_the_profiles_namespace_is_where_the_candidate_goes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A profile mirrors production's namespace; --namespace still overrides it."""
    profile = tmp_path / "team-b.yaml"
    profile.write_text('name: team-b\nkubernetesVersion: "1.35"\nnamespace: team-b\nnodes: [{role: control-plane}]\n')
    _, out, _ = cli(capsys, V2111, "--profile", str(profile), "-o", "json")
    assert "Deployment.apps/team-b/argocd-redis" in json.loads(out)["findings"][0]["objects"]
    _, out, _ = cli(capsys, V2111, "--profile", str(profile), "--namespace", "ops", "-o", "json")
    assert "Deployment.apps/ops/argocd-redis" in json.loads(out)["findings"][0]["objects"]


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_names_cannot_forge_report_lines_or_drive_the_terminal(fmt: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A Deployment named 'x<ESC>[2J<ESC>[31mPWNED<LF>PASS: 0 error(s)<CR>' printed a forged PASS line."""
    name = "x\x1b[2J\x1b[31mPWNED\nPASS: 0 error(s)\r"
    manifest = tmp_path / "m.yaml"
    manifest.write_text(json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                                    "spec": {"selector": {}, "template": {"spec": {"containers": "x"}}}}))
    code, out, _ = cli(capsys, str(manifest), "-o", fmt)
    assert code == 1
    assert "\x1b" not in out and "\r" not in out and "\\x1b[2J" in out
    assert not any(line.startswith("PASS") for line in out.splitlines())


def test_baseline_labels_findings_new_first_and_shows_the_profiles_once(capsys: pytest.CaptureFixture[str]) -> None:
    """v2.11.1 HA against the v2.11.0 HA production ran: the outage is new; the haproxy rollout warning comes from
    the 3-worker profile, so it is shown once, apart, with no label."""
    code, out, _ = cli(capsys, str(real_manifest("v2.11.1/ha/install.yaml")), "--variant", "ha",
                       "--baseline", str(real_manifest("v2.11.0/ha/install.yaml")))
    lines = out.rstrip().splitlines()
    assert code == 1 and "compared with" in lines[0] and lines[0].endswith("=v2.11.0")
    assert lines[1].startswith("  ERROR   [networkpolicy-api-egress] new: Deployment argocd-redis-ha-haproxy")
    assert lines[2] == "  from profile ha, the same for any release:"
    assert lines[3].startswith("  WARNING [scheduling] Deployment argocd-redis-ha-haproxy: installs, but")
    assert lines[-1] == "FAIL: 1 error(s) (1 new), 1 warning(s), 2 info (not shown; -v shows them)"
    assert len(lines) == 5  # fits on one screen


def test_findings_the_baseline_shares_are_labelled_so(capsys: pytest.CaptureFixture[str]) -> None:
    """v2.11.2 (the fix) against v2.11.1: nothing new; the runtime Secret and the image notes are the same defects,
    though the image tags differ (versions are blanked when findings are matched)."""
    code, out, _ = cli(capsys, str(real_manifest("v2.11.2/install.yaml")), "--baseline",
                       str(real_manifest("v2.11.1/install.yaml")), "-o", "json")
    document = json.loads(out)
    validate(document, FINDINGS_SCHEMA)
    assert code == 0 and [(f["check"], f["baseline"]) for f in document["findings"]] == [
        ("references", "also-in-baseline"), ("references", "also-in-baseline")]
    assert document["baseline"]["path"].endswith("v2.11.1/install.yaml")


def test_info_is_hidden_unless_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(real_manifest("v3.5.1/install.yaml"))
    _, quiet, _ = cli(capsys, path)
    _, verbose, _ = cli(capsys, path, "-v")
    assert "INFO" not in quiet and "2 info (not shown; -v shows them)" in quiet
    assert verbose.count("  INFO    [references]") == 2 and "not shown" not in verbose
    assert len(quiet.splitlines()) == 2


def test_accept_image_version_turns_that_error_into_a_warning(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """v2.14.0's manifests run v2.14.0-rc7 images. Resolved as the release (a tag), that is an error; a team
    that knows can accept exactly that version."""
    import validator.commands.preflight as command
    from validator.candidate import Provenance

    real = command.resolve

    def as_release(spec: str, **kwargs: object) -> object:
        bundle = real(spec, **kwargs)  # type: ignore[arg-type]
        bundle.provenance = Provenance(**{**bundle.provenance.to_dict(), "source": "tag", "version": "v2.14.0"})
        return bundle

    monkeypatch.setattr(command, "resolve", as_release)
    path = str(real_manifest("v2.14.0/install.yaml"))
    code, out, _ = cli(capsys, path)
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("  ERROR")]
    assert len(errors) == 1, errors  # one line for the bundle, not one per container
    assert "release v2.14.0's manifests run quay.io/argoproj/argocd:v2.14.0-rc7 in" in errors[0]
    code, out, _ = cli(capsys, path, "--accept-image-version", "v2.14.0-rc7")
    assert code == 0 and "(accepted: image-version=v2.14.0-rc7)" in out
