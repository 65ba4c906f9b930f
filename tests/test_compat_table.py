"""The shipped compatibility table (validator/compat/data/argocd-config.json) and its generator.

The table is checked against facts read by hand in the argo-cd history (the commands are in docs/compat.md);
the generator is run on a tiny synthetic repository built here with git, so no clone of argo-cd is needed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from validator.compat import TABLE_PATH, load_rules, load_table
from validator.compat.generate import (
    dump,
    env_defaults,
    evaluate,
    generate,
    go_declarations,
    guide_sections,
    manifest_facts,
    rbac_keys,
    settings_defaults,
    settings_keys,
    slugify,
)

# `git tag | grep -E '^vX\.Y\.[0-9]+$'` per minor on argoproj/argo-cd, 2026-12-08: the highest patch of each line.
LAST_PATCH = {"2.8": 21, "2.9": 22, "2.10": 20, "2.11": 14, "2.12": 13, "2.13": 9, "2.14": 21,
              "3.0": 23, "3.1": 16, "3.2": 12, "3.3": 14, "3.4": 7, "3.5": 1}
# `git rev-parse TAG^{commit}`
COMMITS = {"v2.14.0": "4745e08d4fbd9b115e208880eac9a63119a8821c", "v3.0.0": "e98f483bfd5781df2592fef1aeed1148f150d9c9",
           "v3.1.0": "03c4ad854c1e6d922a121cd40f505d9bc6e402da", "v3.5.1": "109ca7ca71139e514114499d294a492e7910a965"}


def test_every_final_release_from_v2_8_is_in_the_table() -> None:
    table = load_table()
    expected = [f"v{minor}.{patch}" for minor, last in LAST_PATCH.items() for patch in range(last + 1)]
    assert [tag for tag, _ in table.releases] == expected  # version order, no rc, nothing missing
    assert len(expected) == 206
    assert {tag: table.commit(tag) for tag in COMMITS} == COMMITS


def test_the_table_agrees_with_facts_read_by_hand() -> None:
    table = load_table()
    # git grep -c '"repositories"' v2.14.21 v3.0.0 -- util/settings/  (settings.go reads it in 2.14 only)
    for key in ("repositories", "repository.credentials", "helm.repositories", "server.rbac.log.enforce.enable"):
        assert table.reads("argocd-cm", key, "v2.14.21") and not table.reads("argocd-cm", key, "v3.0.0"), key
    # git grep server.login.attempts.expiration v3.0.23 v3.1.0 -- manifests/install.yaml (argo-cd 30a0088c84)
    assert table.reads("argocd-cmd-params-cm", "server.login.attempts.expiration", "v3.0.23")
    assert not table.reads("argocd-cmd-params-cm", "server.login.attempts.expiration", "v3.1.0")
    assert table.maps["argocd-cmd-params-cm"]["aliases"]["server.login.attempts.expiration"] == [
        "ARGOCD_SERVER_LOGIN_ATTEMPTS_EXPIRATION"]
    # util/argo/resource_tracking.go GetTrackingMethod: `return TrackingMethodLabel` (v2.14.0), `...Annotation`
    # (v3.0.0); from v3.0.2 the default sits in util/settings/settings.go GetTrackingMethod
    for version, method in (("v2.8.0", "label"), ("v2.14.21", "label"), ("v3.0.0", "annotation"),
                            ("v3.0.2", "annotation"), ("v3.5.1", "annotation")):
        assert table.default("argocd-cm", "application.resourceTrackingMethod", version) == (method, "code")
    # env.ParseBoolFromEnv("ARGOCD_APPLICATION_CONTROLLER_PERSIST_RESOURCE_HEALTH", true|false)
    assert table.default("argocd-cmd-params-cm", "controller.resource.health.persist", "v2.14.0") == ("true", "code")
    assert table.default("argocd-cmd-params-cm", "controller.resource.health.persist", "v3.0.0") == ("false", "code")
    # env.ParseNumFromEnv("ARGOCD_APPLICATIONSET_CONTROLLER_MAX_RESOURCES_STATUS_COUNT", 0 -> 5000, ...)
    key = "applicationsetcontroller.status.max.resources.count"
    assert table.default("argocd-cmd-params-cm", key, "v3.3.7")[0] == "0"
    assert table.default("argocd-cmd-params-cm", key, "v3.3.8")[0] == "5000"
    # defaultAppResyncPeriodJitter = 60 in v3.0.0's controller command; 0*time.Second before
    assert table.default("argocd-cm", "timeout.reconciliation.jitter", "v2.14.0")[0] == "0s"
    assert table.default("argocd-cm", "timeout.reconciliation.jitter", "v3.0.0")[0] == "60s"
    # git show v3.0.0:manifests/install.yaml: argocd-cm ships resource.exclusions; v2.14.0's argocd-cm has no data
    exclusions = table.shipped("argocd-cm", "resource.exclusions", "v3.0.0")
    assert exclusions is not None and "- Lease" in exclusions and "CiliumIdentity" in exclusions
    assert table.shipped("argocd-cm", "resource.exclusions", "v2.14.0") is None
    # resource.customizations.* keys and accounts.<name> are read by prefix; policy.<name>.csv by pattern
    assert table.reads("argocd-cm", "resource.customizations.health.argoproj.io_Rollout", "v2.8.0")
    assert table.reads("argocd-cm", "accounts.alice.enabled", "v3.5.1")
    assert table.reads("argocd-rbac-cm", "policy.team-a.csv", "v3.5.1")
    assert not table.reads("argocd-cm", "no.such.key", "v3.5.1")


def test_the_guides_anchors_are_mkdocs_anchors() -> None:
    """Anchors as docs/operator-manual/upgrading/2.14-3.0.md renders on argo-cd.readthedocs.io (Python-Markdown's
    toc: code spans keep their text, dots go, and repeated headings get _1, _2)."""
    table = load_table()
    sections = {s["title"]: s for s in table.guides["2.14-3.0"]["sections"]}
    assert sections["Use Annotation-Based Tracking by Default"]["anchor"] == "use-annotation-based-tracking-by-default"
    assert sections["Default `resource.exclusions` configurations"]["anchor"] == \
        "default-resourceexclusions-configurations"
    assert sections["Removed support for legacy repo config in argocd-cm"]["keys"] == [
        "helm.repositories", "repositories", "repository.credentials"]  # from its kubectl jsonpath
    assert table.guides["2.14-3.0"]["to"] == "v3.0.0" and table.guides["3.4-3.5"]["to"] == "v3.5.0"
    assert next(iter(table.guides)) == "2.7-2.8" and len(table.guides) == 13
    for rule in load_rules():  # every hand-written rule points at a section that exists
        assert rule.anchor in {s["anchor"] for s in table.guides[rule.guide]["sections"]}, rule.id
        assert rule.to == table.guides[rule.guide]["to"]


def test_the_data_file_is_compact_and_versioned() -> None:
    raw = json.loads(TABLE_PATH.read_text())
    assert raw["schemaVersion"] == 1 and TABLE_PATH.stat().st_size < 200_000
    assert dump(raw) == TABLE_PATH.read_text()  # written by the generator, byte for byte


# --------------------------------------------------------------------------------------------------
# the generator's extractors, on snippets of the real code shapes
# --------------------------------------------------------------------------------------------------


def test_slugify_is_python_markdowns() -> None:
    assert slugify("Fine-Grained RBAC for application `update` and `delete` sub-resources") == \
        "fine-grained-rbac-for-application-update-and-delete-sub-resources"
    assert slugify("Helm Upgraded to 3.18.4") == "helm-upgraded-to-3184"
    assert slugify("Using `cluster.inClusterEnabled: \"false\"`") == "using-clusterinclusterenabled-false"
    assert slugify("See [the docs](../x.md) **now**") == "see-the-docs-now"


def test_guide_sections_count_every_heading_for_unique_anchors() -> None:
    text = ("# v1 to 2\n## Change A\n#### Detection\n`a.key` set\n```sh\n# not a heading\n```\n"
            "## Detection\n### Change `b.key`\n"
            "## Legacy\n```shell\nkubectl get cm x -o=jsonpath=\"[{.data.c}, {.data['d\\.key']}]\"\n```\n")
    sections = guide_sections(text, {"a.key", "b.key", "c", "d.key"})
    assert [(s["level"], s["anchor"], s.get("keys")) for s in sections] == [
        (2, "change-a", ["a.key"]), (2, "detection_1", None), (3, "change-bkey", ["b.key"]),
        (2, "legacy", ["c", "d.key"])]


SETTINGS = '''package settings
const (
\t// settingURLKey designates the key where Argo CD's external URL is set
\tsettingURLKey = "url"
\tsettingsResourceTrackingMethodKey = "application.resourceTrackingMethod"
\tresourceCustomizationsKey = "resource.customizations"
\tsettingsBinaryUrlsKey = "help.download"
\taccountsKeyPrefix = "accounts"
\tinClusterEnabledKey = "cluster.inClusterEnabled"
\tgaAnonymizeUsers = "ga.anonymizeusers"
\tsettingServerSignatureKey = "server.secretkey"
\tdefaultInClusterEnabledFlag = true
)
func (mgr *SettingsManager) GetTrackingMethod() (string, error) {
\ttm := argoCDCM.Data[settingsResourceTrackingMethodKey]
\tif tm == "" {
\t\treturn string(v1alpha1.TrackingMethodAnnotation), nil
\t}
\treturn tm, nil
}
func x() {
\tsettings.URL = argoCDCM.Data[settingURLKey]
\tanonymize := argoCDCM.Data[gaAnonymizeUsers] != "false"
\tsecretKey, ok := argoCDSecret.Data[settingServerSignatureKey]
\tif val, ok := argoCDCM.Data[settingsBinaryUrlsKey+"."+archType]; ok {}
\tif !strings.HasPrefix(k, resourceCustomizationsKey) {}
\tif !strings.HasPrefix(key, accountsKeyPrefix+".") {}
\tname = strings.TrimPrefix(name, ".")
\tif !strings.HasPrefix(val, "$") {}
\tif inClusterEnabled, ok := argoCDCM.Data[inClusterEnabledKey]; ok {
\t\treturn inClusterEnabled != "false", nil
\t}
\treturn defaultInClusterEnabledFlag, nil
}
'''


def test_settings_keys_and_defaults_from_go_source() -> None:
    found = settings_keys({"util/settings/settings.go": SETTINGS}, callers="")
    assert set(found.exact) == {"url", "application.resourceTrackingMethod", "cluster.inClusterEnabled",
                                "ga.anonymizeusers"}
    assert found.patterns == {"help.download.*", "resource.customizations*", "accounts.*"}
    assert "server.secretkey" not in found.exact  # argocd-secret, not argocd-cm
    shared = go_declarations('package v1alpha1\nconst (\n\tTrackingMethodAnnotation TrackingMethod = "annotation"\n)\n')
    assert settings_defaults({"s.go": SETTINGS}, shared, tracking="") == {
        "application.resourceTrackingMethod": "annotation", "cluster.inClusterEnabled": "true",
        "ga.anonymizeusers": "true"}
    rbac = rbac_keys('const (\n\tConfigMapPolicyCSVKey = "policy.csv"\n\tGlobMatchMode = "glob"\n)\n'
                     'if strings.HasPrefix(key, "policy.") &&\n\t\tstrings.HasSuffix(key, ".csv") {}\n')
    assert set(rbac.exact) == {"policy.csv"} and rbac.patterns == {"policy.*.csv"}


def test_env_defaults_and_their_evaluation() -> None:
    declarations = go_declarations("package x\nconst (\n\tdefaultAppResyncPeriod = 120\n\tjitter = 60\n"
                                   "\tgrace = defaultAppResyncPeriod + jitter\n)\n")
    lines = [("cmd/a.go", 'f(env.ParseBoolFromEnv("ARGOCD_A", true), "x")'),
             ("cmd/a.go", 'f(int64(env.ParseDurationFromEnv("ARGOCD_B", grace*time.Second, 0, math.MaxInt64)))'),
             ("cmd/a.go", 'f(env.StringFromEnv(common.EnvC, "json"))'),
             ("cmd/a.go", 'f(env.StringsFromEnv("ARGOCD_D", []string{}, ","))'),
             ("cmd/a.go", 'f(env.StringFromEnv("ARGOCD_E", someFunc()))')]
    defaults = env_defaults(lines, {"EnvC": "ARGOCD_C"}, lambda path: declarations)
    assert dict(defaults) == {"ARGOCD_A": {"true"}, "ARGOCD_B": {"180s"}, "ARGOCD_C": {"json"}, "ARGOCD_D": {""},
                              "ARGOCD_E": {"expr:someFunc()"}}
    assert evaluate("24*time.Hour", {}) == "86400s" and evaluate("math.MaxInt64", {}) is None


def test_manifest_facts_read_config_map_key_refs_and_shipped_data() -> None:
    manifest = """apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm}
data: {resource.exclusions: "- kinds: [Lease]"}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: skipped.argoproj.io}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: argocd-server}
spec:
  template:
    spec:
      containers:
      - name: argocd-server
        env:
        - name: ARGOCD_SERVER_INSECURE
          valueFrom: {configMapKeyRef: {name: argocd-cmd-params-cm, key: server.insecure, optional: true}}
"""
    refs, shipped = manifest_facts(manifest)
    assert refs == {"argocd-cmd-params-cm": {"server.insecure": {"ARGOCD_SERVER_INSECURE"}}}
    assert shipped == {"argocd-cm": {"resource.exclusions": "- kinds: [Lease]"}}


# --------------------------------------------------------------------------------------------------
# the generator end to end, on a synthetic repository with two releases
# --------------------------------------------------------------------------------------------------


def _commit(repo: Path, files: dict[str, str], tag: str) -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "-A"], check=True, capture_output=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", tag], check=True, capture_output=True)
    subprocess.run([*git, "tag", tag], check=True, capture_output=True)


def _deployment(key: str, env: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: argocd-server}}
spec:
  template:
    spec:
      containers:
      - name: s
        env:
        - name: {env}
          valueFrom: {{configMapKeyRef: {{name: argocd-cmd-params-cm, key: {key}}}}}
"""


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_generator_on_a_synthetic_repository(tmp_path: Path) -> None:
    repo = tmp_path / "argo-cd"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    server = 'command.Flags().StringVar(&x, "y", env.StringFromEnv("ARGOCD_SERVER_LOG_FORMAT", "{}"), "z")\n'
    base = {"util/settings/settings.go": SETTINGS,
            "util/rbac/rbac.go": 'const (\n\tConfigMapPolicyCSVKey = "policy.csv"\n)\n',
            "docs/operator-manual/upgrading/2.14-3.0.md": "# 2.14 to 3.0\n## Renamed `server.log.format`\n"}
    for tag, key, default in (("v2.9.0", "server.logformat", "text"), ("v2.14.0", "server.logformat", "text"),
                              ("v2.14.1-rc1", "server.logformat", "x"), ("v3.0.0", "server.log.format", "json")):
        _commit(repo, {**base, "manifests/install.yaml": _deployment(key, "ARGOCD_SERVER_LOG_FORMAT"),
                       "cmd/server.go": server.replace("{}", default)}, tag)
    table = generate(repo, since="v2.9.0")
    assert [tag for tag, _ in table["releases"]] == ["v2.9.0", "v2.14.0", "v3.0.0"]  # version order, no rc
    params = table["configMaps"]["argocd-cmd-params-cm"]
    assert params["keys"] == {"server.log.format": [["v3.0.0", "v3.0.0"]], "server.logformat": [["v2.9.0", "v2.14.0"]]}
    assert params["defaults"]["server.logformat"] == [[[["v2.9.0", "v2.14.0"]], "text"]]
    assert table["configMaps"]["argocd-cm"]["patterns"]["accounts.*"] == [["v2.9.0", "v3.0.0"]]
    assert table["guides"]["2.14-3.0"]["sections"] == [
        {"level": 2, "title": "Renamed `server.log.format`", "anchor": "renamed-serverlogformat",
         "keys": ["server.log.format"]}]
    # the runtime reads it: the renamed key is an error that names its replacement
    from validator.compat import Table

    loaded = Table(json.loads(dump(table)))
    assert loaded.replacements("argocd-cmd-params-cm", "server.logformat", "v3.0.0") == ["server.log.format"]
    monkeypatch_table(loaded)


def monkeypatch_table(loaded: object) -> None:
    """compat_findings on the synthetic table: the ignored key names what replaced it."""
    import validator.compat as compat

    original = compat.load_table
    compat.load_table = lambda *args: loaded  # type: ignore[assignment,misc]
    try:
        config = compat.TeamConfig()
        config.data["argocd-cmd-params-cm"]["server.logformat"] = "json"
        config.seen.add("argocd-cmd-params-cm")
        found = [f for f in compat.compat_findings(None, None, config=config, candidate_version="v3.0.0",
                                                   baseline_version="v2.14.0", strict=True)
                 if not f.evidence.get("rule")]  # the shipped rules (for v3.0.0) have nothing to look at here
    finally:
        compat.load_table = original  # type: ignore[assignment]
    assert [(f.severity, f.evidence.get("replacement")) for f in found] == [("error", ["server.log.format"])], found
    assert "no longer reads it (it reads server.log.format instead)" in found[0].reason
    assert found[0].reason.endswith("upgrading/2.14-3.0/#renamed-serverlogformat")
