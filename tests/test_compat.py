"""`argocd-mirror compat` and validator.compat: the team's own Argo CD configuration across an upgrade.

Everything here reads the shipped tables (validator/compat/data): no network, no argo-cd clone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import real_manifest
from validator.cli import main
from validator.compat import compat_findings, dex_sub_subjects, team_config
from validator.errors import InputError
from validator.manifests import load_bundle
from validator.preflight.output import SCHEMA_PATH

GUIDE = "https://argo-cd.readthedocs.io/en/stable/operator-manual/upgrading/"
FINDINGS_SCHEMA = json.loads(SCHEMA_PATH.read_text())
SARIF_SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "preflight" / "sarif-2.1.0-minimal.schema.json")
                          .read_text())


def config_maps(path: Path, **data: dict[str, str]) -> Path:
    """A --config file with one ConfigMap per keyword (argocd_cm=... names argocd-cm)."""
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name.replace("_", "-"),
                                                                   "namespace": "argocd"}, "data": values}
            for name, values in data.items()]
    path.write_text(yaml.safe_dump_all(docs))
    return path


def compat(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["compat", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def json_findings(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code, out, err = compat(capsys, *argv, "-o", "json")
    assert len(err.splitlines()) == 1 and err.startswith(("compat PASS ", "compat FAIL ")), err  # the summary
    document = json.loads(out)
    jsonschema.validate(document, FINDINGS_SCHEMA)
    return code, document["findings"]


def summary(findings: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(severity, the key or rule it is about) for each finding."""
    return {(f["severity"], f["evidence"].get("rule") or f["evidence"].get("key") or
             next(iter(f["evidence"].get("keys", {})), "?").rsplit(".", 1)[0] + ".*") for f in findings}


# --------------------------------------------------------------------------------------------------
# the acceptance cases
# --------------------------------------------------------------------------------------------------


def test_v2_14_to_v3_0_label_tracking_and_legacy_repositories_name_both_guide_sections(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A small team argocd-cm: no application.resourceTrackingMethod (label tracking), repositories the v1 way."""
    config = config_maps(tmp_path / "argocd-cm.yaml", argocd_cm={
        "url": "https://argocd.example.com",
        "repositories": "- url: https://github.com/example/private\n  passwordSecret: {name: repo, key: password}\n"})
    code, findings = json_findings(capsys, "--baseline", "v2.14.0", "v3.0.0", "--config", str(config))
    by_rule = {f["evidence"].get("rule"): f for f in findings}
    tracking, repos = by_rule["tracking-method-default"], by_rule["legacy-repository-config"]
    assert tracking["severity"] == "warning"
    assert tracking["reason"].endswith(f"read {GUIDE}2.14-3.0/#use-annotation-based-tracking-by-default")
    assert "label" in tracking["reason"] and "annotation" in tracking["reason"]
    assert repos["severity"] == "error"  # v3.0.0 no longer reads the key: certain, and the repositories vanish
    assert repos["reason"].endswith(f"read {GUIDE}2.14-3.0/#removed-support-for-legacy-repo-config-in-argocd-cm")
    assert "argocd-cm repositories" in repos["reason"] and repos["evidence"]["folded"]  # the key finding, folded in
    assert not any(f["evidence"].get("key") == "repositories" for f in findings)  # ... and not reported twice
    assert repos["objects"] == ["ConfigMap/argocd/argocd-cm"]
    assert repos["locations"] == [{"source": str(config), "document": 1, "line": 1}]
    assert all(f["baseline"] == "new" for f in findings)
    assert code == 1


def test_the_same_from_a_rendered_overlay_without_any_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The candidate is the team's rendered overlay: its version is the Argo CD image it runs, its ConfigMaps are
    the team's, and `--baseline v2.14.0` is read from the table (nothing is fetched)."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"},
         "data": {"repository.credentials": "- url: https://github.com/example\n"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "argocd-server"},
         "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {
             "containers": [{"name": "argocd-server", "image": "quay.io/argoproj/argocd:v3.0.0"}]}}}}]))
    code, out, err = compat(capsys, "--baseline", "v2.14.0", str(overlay))
    assert code == 1 and err == ""
    assert out.splitlines()[0].startswith(f"compat {overlay}=v3.0.0: ")
    assert f"{GUIDE}2.14-3.0/#removed-support-for-legacy-repo-config-in-argocd-cm" in out
    assert f"{GUIDE}2.14-3.0/#use-annotation-based-tracking-by-default" in out


def test_v3_0_to_v3_1_server_login_attempts_expiration_is_an_error(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """v3.1's manifests no longer pass server.login.attempts.expiration to argocd-server (argo-cd 30a0088c84)."""
    config = config_maps(tmp_path / "params.yaml", argocd_cmd_params_cm={
        "server.login.attempts.expiration": "12h", "server.insecure": "true"})
    code, findings = json_findings(capsys, "--baseline", "v3.0.0", "v3.1.0", "--config", str(config))
    assert code == 1
    assert [(f["severity"], f["evidence"]["key"]) for f in findings] == [
        ("error", "server.login.attempts.expiration")]  # server.insecure is read by both: nothing to say
    error = findings[0]
    assert "v3.1.0 no longer reads it" in error["reason"] and error["evidence"]["changedIn"] == "v3.1.0"
    assert error["reason"].endswith(f"read {GUIDE}3.0-3.1/")  # the guide does not mention it: its top
    assert error["objects"] == ["ConfigMap/argocd/argocd-cmd-params-cm"]


def test_on_a_patch_line_the_same_key_is_read_and_nothing_is_said(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = config_maps(tmp_path / "params.yaml", argocd_cmd_params_cm={"server.login.attempts.expiration": "12h"})
    code, findings = json_findings(capsys, "--baseline", "v3.0.0", "v3.0.23", "--config", str(config))
    assert (code, findings) == (0, [])


# The default changes that really exist from v2.14.0 to v3.0.0 for a team that sets nothing (each checked in the
# argo-cd history: docs/compat.md lists them with their source), and the rules whose Detection holds then.
V2_14_TO_V3_0_DEFAULTS = {
    ("warning", "resource.exclusions"),  # v3.0.0's install.yaml ships it, v2.14.0's does not
    ("warning", "resource.customizations.ignoreResourceUpdates.*"),  # 8 keys v3.0.0's install.yaml ships
    ("warning", "server.rbac.disableApplicationFineGrainedRBACInheritance"),  # false -> true
    ("warning", "timeout.reconciliation.jitter"),  # 0s -> 60s (ARGOCD_RECONCILIATION_JITTER)
    ("warning", "controller.resource.health.persist"),  # true -> false
    ("warning", "controller.cluster.cache.batch.events.processing"),  # false -> true
    *(("warning", f"{component}.log.format") for component in (
        "controller", "server", "reposerver", "dexserver", "notificationscontroller", "applicationsetcontroller")),
}
V2_14_TO_V3_0_RULES = {
    ("warning", "tracking-method-default"),  # label -> annotation
    ("warning", "logs-rbac-enforced"),
    ("warning", "status-field-ignored"),
    ("warning", "ignore-differences-on-updates"),
    ("info", "apply-nested-selectors-ignored"),  # no ApplicationSet to look at: not checked
}


def test_a_config_that_sets_nothing_gets_exactly_the_default_changes_that_exist(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_maps(tmp_path / "empty.yaml", argocd_cm={}, argocd_cmd_params_cm={}, argocd_rbac_cm={})
    code, findings = json_findings(capsys, "--baseline", "v2.14.0", "v3.0.0", "--config", str(config))
    assert code == 0
    assert summary(findings) == V2_14_TO_V3_0_DEFAULTS | V2_14_TO_V3_0_RULES
    persist = next(f for f in findings if f["evidence"].get("key") == "controller.resource.health.persist")
    assert (persist["evidence"]["old"], persist["evidence"]["new"]) == ("true", "false")
    assert persist["reason"].endswith(f"read {GUIDE}2.14-3.0/#health-status-in-the-application-cr")
    # v3.0 -> v3.1: no default a team relies on changes
    code, findings = json_findings(capsys, "--baseline", "v3.0.0", "v3.1.0", "--config", str(config))
    assert (code, findings) == (0, [])


def test_a_bare_version_without_config_is_the_upstream_manifests_as_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    code, findings = json_findings(capsys, "--baseline", "v2.14.0", "v3.0.0")
    assert code == 0 and summary(findings) == V2_14_TO_V3_0_DEFAULTS | V2_14_TO_V3_0_RULES


def test_what_the_team_sets_is_not_a_default_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_maps(tmp_path / "set.yaml", argocd_cm={"application.resourceTrackingMethod": "label",
                                                           "resource.exclusions": "- kinds: [Lease]\n"},
                         argocd_cmd_params_cm={"server.log.format": "text"})
    _, findings = json_findings(capsys, "--baseline", "v2.14.0", "v3.0.0", "--config", str(config))
    about = {key for _, key in summary(findings)}
    assert not about & {"tracking-method-default", "resource.exclusions", "server.log.format"}
    assert "controller.log.format" in about


def test_what_the_baseline_shipped_counts_as_unset_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """argocd-cm read from a cluster that runs v3.0.0 carries v3.0.0's shipped resource.exclusions: not the team's.
    Rolling back to v2.14.0, whose manifests ship none, changes that default."""
    from validator.compat import load_table

    shipped = load_table().shipped("argocd-cm", "resource.exclusions", "v3.0.0")
    assert shipped is not None
    config = config_maps(tmp_path / "from-cluster.yaml", argocd_cm={"resource.exclusions": shipped})
    _, findings = json_findings(capsys, "--baseline", "v3.0.0", "v2.14.0", "--config", str(config))
    exclusions = next(f for f in findings if f["evidence"].get("key") == "resource.exclusions")
    assert exclusions["severity"] == "warning" and exclusions["evidence"]["old"] == shipped
    assert "new" not in exclusions["evidence"]  # v2.14.0 ships none and has no code default


def test_the_rendered_upstream_config_counts_as_unset(capsys: pytest.CaptureFixture[str]) -> None:
    """v3.5.1's install.yaml ships argocd-cm data (resource.exclusions...): shipped, not set by the team."""
    bundle = load_bundle(real_manifest("v3.5.1/install.yaml").read_bytes())
    findings = compat_findings(bundle, None, candidate_version="v3.5.1", baseline_version="v3.0.0", strict=True)
    assert not [f for f in findings if f.severity == "error"]
    assert not [f for f in findings if f.evidence.get("kind") == "unknown-key"]


# --------------------------------------------------------------------------------------------------
# rules whose condition the guide states
# --------------------------------------------------------------------------------------------------


def rule_findings(tmp_path: Path, **data: dict[str, str]) -> dict[str, Any]:
    config = team_config(None, [config_maps(tmp_path / "cm.yaml", **data)])
    found = compat_findings(None, None, config=config, candidate_version="v3.0.0", baseline_version="v2.14.0")
    return {f.evidence.get("rule") or f.evidence.get("key"): f for f in found}


def test_logs_rbac_follows_the_guides_detection(tmp_path: Path) -> None:
    affected = rule_findings(tmp_path, argocd_cm={}, argocd_rbac_cm={})
    assert affected["logs-rbac-enforced"].severity == "warning"
    readonly = rule_findings(tmp_path, argocd_cm={}, argocd_rbac_cm={"policy.default": "role:readonly"})
    assert "logs-rbac-enforced" not in readonly
    custom = rule_findings(tmp_path, argocd_cm={}, argocd_rbac_cm={"policy.default": "role:mine"})
    assert "role:mine" in custom["logs-rbac-enforced"].reason
    # "server.rbac.log.enforce.enable: true" is unaffected: the key is no longer read, and that is only info
    enforced = rule_findings(tmp_path, argocd_cm={"server.rbac.log.enforce.enable": "true"}, argocd_rbac_cm={})
    assert "logs-rbac-enforced" not in enforced
    assert enforced["server.rbac.log.enforce.enable"].severity == "info"
    # "false" without a default policy: affected, and the ignored key makes it an error
    ignored = rule_findings(tmp_path, argocd_cm={"server.rbac.log.enforce.enable": "false"}, argocd_rbac_cm={})
    assert ignored["logs-rbac-enforced"].severity == "error"
    assert "server.rbac.log.enforce.enable" not in ignored
    # without argocd-rbac-cm the rule cannot tell
    unknown = rule_findings(tmp_path, argocd_cm={})
    assert unknown["logs-rbac-enforced"].severity == "info" and "not checked" in unknown["logs-rbac-enforced"].reason


def test_dex_sub_claims_in_rbac_policies(tmp_path: Path) -> None:
    guide_example = "ChdleGFtcGxlQGFyZ29wcm9qLmlvEgJkZXhfY29ubl9pZA"  # from the 2.14-3.0 guide
    policy = (f"g, {guide_example}, role:example\np, {guide_example}, applications, *, *, allow\n"
              "g, example@argoproj.io, role:example\np, role:example, logs, get, */*, allow\n")
    assert dex_sub_subjects({"policy.csv": policy}) == [(guide_example, "example@argoproj.io", "dex_conn_id")]
    assert dex_sub_subjects({"policy.team.csv": "g, my-team, role:admin\n", "scopes": guide_example}) == []
    dex = {"dex.config": "connectors: []\n"}
    found = rule_findings(tmp_path, argocd_cm=dex, argocd_rbac_cm={"policy.csv": policy})
    assert found["dex-sub-claim"].severity == "warning" and "example@argoproj.io" in found["dex-sub-claim"].reason
    assert found["dex-sub-claim"].reason.endswith("#changes-to-rbac-with-dex-sso-authentication")
    assert "dex-sub-claim" not in rule_findings(tmp_path, argocd_cm={}, argocd_rbac_cm={"policy.csv": policy})


def test_nested_selectors_in_the_bundles_applicationsets() -> None:
    """The guide's own example: a matrix of a merge whose cluster generator has a selector."""
    nested = {"matrix": {"generators": [{"list": {"elements": []}}, {"merge": {"generators": [
        {"list": {"elements": []}}, {"cluster": {}, "selector": {"matchLabels": {"app": "guestbook"}}}]}}]}}
    docs = [{"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": name},
             "spec": {"generators": [nested], **extra}}
            for name, extra in (("guestbook", {}), ("opted-in", {"applyNestedSelectors": True}))]
    docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"}, "data": {}})
    bundle = load_bundle(yaml.safe_dump_all(docs).encode())
    found = compat_findings(bundle, None, candidate_version="v3.0.0", baseline_version="v2.14.0", strict=True)
    rule = next(f for f in found if f.evidence.get("rule") == "apply-nested-selectors-ignored")
    assert rule.severity == "warning" and rule.objects == ("ApplicationSet.argoproj.io/argocd/guestbook",)


def test_rules_apply_only_to_upgrades_that_cross_their_release(tmp_path: Path) -> None:
    config = team_config(None, [config_maps(tmp_path / "cm.yaml", argocd_cm={})])
    for baseline, candidate in (("v3.0.0", "v3.2.0"), ("v2.13.0", "v2.14.21"), ("v3.0.0", "v2.14.0")):
        found = compat_findings(None, None, config=config, candidate_version=candidate, baseline_version=baseline)
        assert not [f for f in found if f.evidence.get("rule")], (baseline, candidate)


# --------------------------------------------------------------------------------------------------
# formats, preflight and validate
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "sarif"])
def test_every_preflight_format(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_maps(tmp_path / "params.yaml", argocd_cmd_params_cm={"server.login.attempts.expiration": "1h"})
    code, out, err = compat(capsys, "--baseline", "v3.0.0", "v3.1.0", "--config", str(config), "-o", fmt)
    # the one-line summary goes to stderr, except for text on stdout, which already ends with it
    assert code == 1 and (err == "" if fmt == "text" else err.startswith("compat FAIL v3.1.0"))
    if fmt == "json":
        jsonschema.validate(json.loads(out), FINDINGS_SCHEMA)
    elif fmt == "sarif":
        log = json.loads(out)
        jsonschema.validate(log, SARIF_SCHEMA)
        result = log["runs"][0]["results"][0]
        assert (result["ruleId"], result["level"], result["baselineState"]) == ("compat", "error", "new")
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == config.as_uri()
    elif fmt == "markdown":
        assert "| error (new) | compat |" in out
    else:
        assert "ERROR   [compat] new: argocd-cmd-params-cm server.login.attempts.expiration is set" in out


def overlay_of_v3_5_1(tmp_path: Path, params: dict[str, str]) -> Path:
    """v3.5.1's install.yaml as a team overlay renders it: argocd-cmd-params-cm with the team's keys."""
    text = real_manifest("v3.5.1/install.yaml").read_text()
    anchor = "    app.kubernetes.io/part-of: argocd\n  name: argocd-cmd-params-cm\n"
    assert text.count(anchor) == 1
    data = "".join(f"  {key}: {json.dumps(value)}\n" for key, value in params.items())
    path = tmp_path / "rendered.yaml"
    path.write_text(text.replace(anchor, anchor + "data:\n" + data))
    return path


def test_preflight_with_a_baseline_reports_compat_findings_as_new(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rendered = overlay_of_v3_5_1(tmp_path, {"server.login.attempts.expiration": "12h"})
    code = main(["preflight", str(rendered), "--baseline", str(real_manifest("v2.11.2/install.yaml")),
                 "-o", "json"])
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, FINDINGS_SCHEMA)
    errors = [f for f in document["findings"] if f["severity"] == "error"]
    assert code == 1 and [(f["check"], f["baseline"], f["evidence"]["key"]) for f in errors] == [
        ("compat", "new", "server.login.attempts.expiration")]
    assert errors[0]["locations"][0]["source"] == str(rendered)
    # without --baseline there is no upgrade to judge
    assert main(["preflight", str(rendered), "-o", "json"]) == 0
    assert not [f for f in json.loads(capsys.readouterr().out)["findings"] if f["check"] == "compat"]


def test_validate_puts_compat_findings_into_the_verdicts_preflight_list(tmp_path: Path) -> None:
    from validator.candidate import resolve
    from validator.commands.validate import _preflight
    from validator.profiles import load_profile
    from validator.progress import silent
    from validator.report import Status, Verdict

    candidate = resolve(str(overlay_of_v3_5_1(tmp_path, {"server.login.attempts.expiration": "12h"})))
    baseline = resolve(str(real_manifest("v2.11.2/install.yaml")))
    verdict = Verdict(status=Status.ERROR, spec="rendered.yaml", root_cause="interrupted")
    errors = _preflight(verdict, candidate, baseline, load_profile("default"), "server-side", (), silent)
    assert [e.split(":")[0] for e in errors] == ["compat"]
    compat_entries = [f for f in verdict.preflight if f["check"] == "compat"]
    assert compat_entries and all(f["baseline"] == "new" for f in compat_entries)
    schema = json.loads((Path(__file__).parents[1] / "validator" / "verdict.schema.json").read_text())
    jsonschema.validate(verdict.to_dict(), schema)


def test_preflight_notes_when_a_version_is_not_in_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    """v2.14.0's manifests run v2.14.0-rc7 images, so a file of them claims an rc: compat says it did not run
    (info), and preflight's own verdict is unchanged."""
    baseline = load_bundle(real_manifest("v2.14.0/install.yaml").read_bytes())
    found = compat_findings(load_bundle(real_manifest("v3.5.1/install.yaml").read_bytes()), baseline,
                            candidate_version="v3.5.1", baseline_version="v2.14.0-rc7")
    assert [(f.severity, f.reason.split(":")[0]) for f in found] == [
        ("info", "configuration compatibility not checked")]
    with pytest.raises(InputError, match="release candidate"):
        compat_findings(None, baseline, candidate_version="v3.5.1", baseline_version="v2.14.0-rc7", strict=True)


# --------------------------------------------------------------------------------------------------
# bad input: exit 2, one line
# --------------------------------------------------------------------------------------------------


def bad(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = compat(capsys, *argv)
    assert (code, out) == (2, ""), (code, out, err)
    assert err.count("\n") == 1 and err.startswith("argocd-mirror compat: could not check: "), err
    return err


def test_a_config_file_that_is_not_a_configmap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: argocd-secret}\n")
    assert "document 1 (line 1): is a Secret, not a ConfigMap" in bad(
        capsys, "--baseline", "v2.14.0", "v3.0.0", "--config", str(secret))
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    assert "is a YAML list, not a ConfigMap" in bad(capsys, "--baseline", "v2.14.0", "v3.0.0", "--config",
                                                    str(listing))
    unquoted = config_maps(tmp_path / "bool.yaml", argocd_cm={})
    unquoted.write_text(unquoted.read_text().replace("data: {}", "data: {exec.enabled: true}"))
    assert "data.exec.enabled is a bool, not a string" in bad(capsys, "--baseline", "v2.14.0", "v3.0.0",
                                                              "--config", str(unquoted))
    other = config_maps(tmp_path / "other.yaml", argocd_notifications_cm={})
    assert "no argocd-cm, argocd-cmd-params-cm, argocd-rbac-cm among" in bad(
        capsys, "--baseline", "v2.14.0", "v3.0.0", "--config", str(other))
    assert "no such file or directory" in bad(capsys, "--baseline", "v2.14.0", "v3.0.0", "--config",
                                              str(tmp_path / "missing.yaml"))


def test_a_yaml_bomb_is_refused_while_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}, *a{i - 1}]" for i in range(1, 6)]  # 10**6 scalars: over compat's bound, not the manifests''
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm}\nlol:\n"
                    + "".join(f"  {line}\n" for line in lines))
    assert "more than 200000 YAML nodes" in bad(capsys, "--baseline", "v2.14.0", "v3.0.0", "--config", str(bomb))


def test_a_version_the_table_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    assert "newer than the table" in bad(capsys, "--baseline", "v3.5.1", "v9.0.0")
    assert "release candidate" in bad(capsys, "--baseline", "v3.0.0-rc1", "v3.1.0")
    assert "v2.7.0' is not in the table" in bad(capsys, "--baseline", "v2.7.0", "v3.1.0")
    with pytest.raises(SystemExit) as usage:  # --baseline is required: argparse's one line, exit 2
        main(["compat", "v3.1.0"])
    assert usage.value.code == 2 and "required: --baseline" in capsys.readouterr().err


def test_an_overlay_whose_version_cannot_be_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unpinned = tmp_path / "cm-only.yaml"
    unpinned.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm}\ndata: {}\n")
    assert "candidate's Argo CD version is unknown" in bad(capsys, "--baseline", "v2.14.0", str(unpinned))
    code, _, _ = compat(capsys, "--baseline", "v2.14.0", str(unpinned), "--candidate-version", "v3.0.0")
    assert code == 0
