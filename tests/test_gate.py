"""`argocd-mirror pin`: targeted edits on real-world pin files, refused without a matching passing verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_candidate import Upstream, upstream  # noqa: F401  (fixture: a local stand-in for GitHub)
from validator.candidate import resolve
from validator.cli import main
from validator.gate import find_pins, leftovers, rewrite, variant_of
from validator.report import ScenarioResult, Status, Verdict, start_run, write_verdict

APPLICATION = """\
# Argo CD manages itself. Bump targetRevision only through `argocd-mirror pin`.
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: argocd
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/argoproj/argo-cd.git
    targetRevision: stable   # moving tag: pin me
    path: manifests
    directory:
      include: install.yaml
  destination:
    server: https://kubernetes.default.svc
    namespace: argocd
  syncPolicy:
    automated: {prune: false, selfHeal: true}
---
# not Argo CD itself: must stay untouched
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook}
spec:
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    targetRevision: HEAD
    path: guestbook
"""

KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: argocd
resources:
  # upstream, pinned
  - https://github.com/argoproj/argo-cd/manifests/cluster-install?ref=v3.4.0
  - argocd-cm-patch.yaml  # local
patches:
  - path: argocd-cmd-params-cm.yaml
"""

README = """\
## Installing Argo CD

```sh
kubectl create namespace argocd
kubectl apply -n argocd --server-side -f https://raw.githubusercontent.com/argoproj/argo-cd/v3.4.0/manifests/install.yaml
```

Docs: https://argo-cd.readthedocs.io/en/v3.4.0/ (not a pin)
"""


@pytest.fixture
def env(upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Upstream:  # noqa: F811
    sources = upstream.sources(tmp_path)
    monkeypatch.setenv("ARGOCD_MIRROR_GIT_URL", sources.git_url)
    monkeypatch.setenv("ARGOCD_MIRROR_RAW_URL", sources.raw_url)
    monkeypatch.setenv("ARGOCD_MIRROR_CACHE", str(sources.cache_dir))
    return upstream


APPLICATION_WITH_INCLUDE = APPLICATION.replace("include: install.yaml", "include: {include}")

def verdict_for(tmp_path: Path, spec: str = "stable", variant: str = "install", status: Status = Status.PASS,
                scenario_name: str = "fresh-install", baseline: str | None = None, **prov_overrides: str) -> Path:
    """A verdict.json as a real run writes it, for the candidate resolved from the local upstream."""
    prov = {**resolve(spec, variant=variant).provenance.to_dict(), **prov_overrides}
    scenario = ScenarioResult(scenario_name, Status.PASS if status == Status.PASS else Status.FAIL, 90,
                              None if status == Status.PASS else "argocd-redis never became ready")
    verdict = Verdict(status=status, spec=spec, candidate=prov, scenarios=[scenario], started_at="t0",
                      finished_at="t1", root_cause=scenario.root_cause and f"fresh-install: {scenario.root_cause}")
    if baseline:
        verdict.baseline = resolve(baseline, variant=variant).provenance.to_dict()
    out = tmp_path / f"run-{status.value}-{variant}-{baseline}"
    write_verdict(verdict, out, step_summary=False)
    return out / "verdict.json"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_application_pin_changes_only_the_token(env: Upstream, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    app = write(tmp_path, "argocd-app.yaml", APPLICATION)
    app.chmod(0o644)
    assert main(["pin", str(app), "--verdict", str(verdict_for(tmp_path))]) == 0
    after = app.read_text()
    assert after == APPLICATION.replace("targetRevision: stable   #", "targetRevision: v3.5.1   #")
    assert app.stat().st_mode & 0o777 == 0o644
    out = capsys.readouterr().out
    assert "pinned v3.5.1 at line 11 (application: stable)" in out
    assert "-    targetRevision: stable   # moving tag: pin me" in out


@pytest.mark.parametrize(("baseline", "note"), [
    (None, "note: the verdict did not upgrade from v2.11.2 (the pinned version it replaces; its baseline was none)"),
    ("v3.5.0-rc1", "note: the verdict did not upgrade from v2.11.2 (the pinned version it replaces; its baseline was "
                   "v3.5.0-rc1)"),
    ("v2.11.2", None),
])
def test_pin_says_when_the_upgrade_it_makes_was_not_tested(env: Upstream, tmp_path: Path, baseline: str | None,
                                                          note: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    """A pass proves a fresh install; production will upgrade from what the file pins, which only a --baseline
    run at that version tested."""
    app = write(tmp_path, "argocd-app.yaml", APPLICATION.replace("targetRevision: stable", "targetRevision: v2.11.2"))
    assert main(["pin", str(app), "--verdict", str(verdict_for(tmp_path, baseline=baseline)), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert (note in err) if note else err == ""


def test_quoted_revision_and_applicationset_template_keep_their_quotes() -> None:
    text = 'spec:\n  template:\n    spec:\n      source:\n        repoURL: "https://github.com/argoproj/argo-cd"\n' \
           "        targetRevision: 'v3.4.0'\n        path: manifests/ha\n        directory: {include: install.yaml}\n"
    (site,) = find_pins(text)
    assert (text[site.start:site.end], site.variant, site.line) == ("v3.4.0", "ha", 6)


def test_kustomization_ref(env: Upstream, tmp_path: Path) -> None:
    kust = write(tmp_path, "kustomization.yaml", KUSTOMIZATION)
    assert main(["pin", str(kust), "--verdict", str(verdict_for(tmp_path))]) == 0
    assert kust.read_text() == KUSTOMIZATION.replace("?ref=v3.4.0", "?ref=v3.5.1")


@pytest.mark.parametrize("resource", [
    "https://github.com/argoproj/argo-cd/manifests/cluster-install?version=v3.4.0",  # kustomize: version = ref
    "git@github.com:argoproj/argo-cd.git//manifests/cluster-install?ref=v3.4.0",
    "https://GitHub.com/ArgoProj/argo-cd//manifests/cluster-install?ref=v3.4.0",  # hosts and names fold case
    "git::https://github.com/argoproj/argo-cd.git//manifests/cluster-install?timeout=120&ref=v3.4.0",
])
def test_kustomize_remote_resource_forms(resource: str) -> None:
    text = f"resources:\n  - {resource}\n"
    (site,) = find_pins(text)
    assert (site.old, site.kind, site.variant) == ("v3.4.0", "kustomize-ref", "install")


def test_ssh_repo_url_and_an_aliased_source_are_pinned_once() -> None:
    text = ("spec:\n  sources:\n    - &upstream {repoURL: ssh://git@github.com/argoproj/argo-cd.git, "
            "targetRevision: v3.4.0, path: manifests/cluster-install}\n    - *upstream\n")
    sites = find_pins(text)
    assert [s.old for s in sites] == ["v3.4.0"]  # the alias is the same node: one span, rewritten once
    assert rewrite(text, sites, "v3.5.1").count("v3.5.1") == 1 and "v3.4.0" not in rewrite(text, sites, "v3.5.1")


def test_leftover_argocd_versions_are_named_and_comments_ignored() -> None:
    text = ("resources:\n  - https://github.com/argoproj/argo-cd/manifests/cluster-install?ref=v3.5.1\n"
            "images:\n  - name: quay.io/argoproj/argocd\n    newTag: v3.4.0\n"
            "# was github.com/argoproj/argo-cd v3.4.0 before the pin\n"
            "patches: [{patch: 'image: quay.io/argoproj/argocd:v3.4.0'}]  # an override\n")
    assert leftovers(text, "v3.5.1") == [
        "line 7: patches: [{patch: 'image: quay.io/argoproj/argocd:v3.4.0'}]",
        "line 5: newTag v3.4.0 of image quay.io/argoproj/argocd"]
    assert leftovers(KUSTOMIZATION.replace("v3.4.0", "v3.5.1"), "v3.5.1") == []


def test_the_shared_crds_beside_a_variant_are_pinned_together(env: Upstream, tmp_path: Path) -> None:
    """Upstream's namespace-install docs add manifests/crds beside the variant: both move, the CRDs fit any."""
    text = ("resources:\n  - https://github.com/argoproj/argo-cd/manifests/crds?ref=v3.4.0\n"
            "  - https://github.com/argoproj/argo-cd/manifests/ha/cluster-install?ref=v3.4.0\n")
    kust = write(tmp_path, "kustomization.yaml", text)
    assert main(["pin", str(kust), "--verdict", str(verdict_for(tmp_path, variant="ha"))]) == 0
    assert kust.read_text() == text.replace("v3.4.0", "v3.5.1")


def test_pin_refuses_to_leave_an_image_tag_behind(env: Upstream, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    text = KUSTOMIZATION + "images:\n  - name: quay.io/argoproj/argocd\n    newTag: v3.4.0\n"
    kust = write(tmp_path, "kustomization.yaml", text)
    assert main(["pin", str(kust), "--verdict", str(verdict_for(tmp_path))]) == 2
    assert "would still name another Argo CD version (line 12: newTag v3.4.0" in capsys.readouterr().err
    assert kust.read_text() == text


def test_readme_raw_url_dry_run_prints_diff_and_changes_nothing(env: Upstream, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    readme = write(tmp_path, "README.md", README)
    assert main(["pin", str(readme), "--verdict", str(verdict_for(tmp_path)), "--dry-run"]) == 0
    assert readme.read_text() == README
    out = capsys.readouterr().out
    assert "+kubectl apply -n argocd --server-side -f https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.1/" \
           "manifests/install.yaml" in out
    assert "readthedocs.io/en/v3.5.1" not in out  # only pins move
    assert main(["pin", str(readme), "--verdict", str(verdict_for(tmp_path))]) == 0
    assert main(["pin", str(readme), "--verdict", str(verdict_for(tmp_path))]) == 0  # idempotent
    assert "already pinned to v3.5.1" in capsys.readouterr().out


@pytest.mark.parametrize(("path", "variant"), [
    ("manifests/install.yaml", "install"), ("manifests/ha/install.yaml", "ha"),
    ("manifests/cluster-install", "install"), ("manifests/ha/namespace-install.yaml", None),
    ("manifests/core-install.yaml", "core-install"), ("manifests/crds", "any"),  # shared by every variant
])
def test_variant_of(path: str, variant: str | None) -> None:
    assert variant_of(path) == variant


def test_refuses_a_pin_for_another_variant(env: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = write(tmp_path, "README.md", README.replace("manifests/install.yaml", "manifests/ha/install.yaml"))
    assert main(["pin", str(readme), "--verdict", str(verdict_for(tmp_path))]) == 2
    assert "pins the ha manifests but the verdict validated the install variant" in capsys.readouterr().err
    assert main(["pin", str(readme), "--verdict", str(verdict_for(tmp_path, variant="ha"))]) == 0


def test_an_ha_only_pass_does_not_pin_the_variant_it_never_installed(env: Upstream, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`validate v3.5.1 --scenario ha` installs ha/install.yaml only; its verdict names install.yaml, which was
    preflighted but never installed, so it must not move an install.yaml pin."""
    app = write(tmp_path, "app.yaml", APPLICATION)
    assert main(["pin", str(app), "--verdict", str(verdict_for(tmp_path, scenario_name="ha"))]) == 2
    assert "passed only the ha scenario, which installed the ha manifests, not the install ones" in \
        capsys.readouterr().err
    assert app.read_text() == APPLICATION
    ha_app = write(tmp_path, "ha-app.yaml", APPLICATION.replace("path: manifests\n", "path: manifests/ha\n"))
    assert main(["pin", str(ha_app), "--verdict", str(verdict_for(tmp_path, variant="ha", scenario_name="ha"))]) == 0


@pytest.mark.parametrize("include", ["'{namespace-install.yaml}'", "'*namespace-install.yaml'", "core-install.y*ml"])
def test_an_include_glob_is_no_variant(include: str) -> None:
    """Argo CD's directory.include takes globs and brace lists: reading one as `install` let an install pass move a
    namespace-install or core-install Application."""
    app = APPLICATION_WITH_INCLUDE.replace("{include}", include)
    assert [site.variant for site in find_pins(app)] == [None]


def test_refuses_failed_errored_and_foreign_verdicts(env: Upstream, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    app = write(tmp_path, "app.yaml", APPLICATION)
    assert main(["pin", str(app), "--verdict", str(verdict_for(tmp_path, status=Status.FAIL))]) == 1
    assert "FAIL verdict" in capsys.readouterr().err
    # the tested bytes differ from what the tag serves now (tag moved, or another manifest was validated)
    assert main(["pin", str(app), "--verdict", str(verdict_for(tmp_path, sha256="0" * 64))]) == 2
    assert "now resolves to commit" in capsys.readouterr().err
    assert main(["pin", str(app), "--verdict", str(verdict_for(tmp_path, source="file", version=""))]) == 2
    assert "only stable or tag candidates can be pinned" in capsys.readouterr().err
    assert main(["pin", str(app), "--verdict", str(tmp_path / "missing.json")]) == 2
    interrupted = tmp_path / "interrupted"
    start_run(interrupted, "stable")
    assert main(["pin", str(app), "--verdict", str(interrupted / "verdict.json")]) == 2
    assert "is not a pass (status error: interrupted" in capsys.readouterr().err
    assert app.read_text() == APPLICATION  # nothing was touched by any refusal


def test_no_pin_found_and_binary_input(env: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    verdict = verdict_for(tmp_path)
    assert main(["pin", str(write(tmp_path, "x.yaml", "a: 1\n")), "--verdict", str(verdict)]) == 2
    assert "no Argo CD pin" in capsys.readouterr().err
    blob = tmp_path / "blob"
    blob.write_bytes(b"\xff\xfe\x00")
    assert main(["pin", str(blob), "--verdict", str(verdict)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_broken_yaml_still_gets_url_pins() -> None:
    text = "{{ helm template }}\nurl: https://raw.githubusercontent.com/argoproj/argo-cd/v2.11.0/manifests/install.yaml"
    (site,) = find_pins(text)
    assert (site.old, site.kind, site.variant) == ("v2.11.0", "raw-url", "install")


def test_gate_uses_verdict_provenance_not_the_spec(env: Upstream, tmp_path: Path) -> None:
    # a verdict for the tag itself (not stable) pins the same way
    kust = write(tmp_path, "kustomization.yaml", KUSTOMIZATION)
    assert main(["pin", str(kust), "--verdict", str(verdict_for(tmp_path, spec="v3.5.1"))]) == 0
    assert "?ref=v3.5.1" in kust.read_text()
