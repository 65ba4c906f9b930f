"""install()'s server-side dry run: the whole bundle judged by the API server (dryRun=All, the apply's own request)
before anything is applied, every rejection reported at once; over HTTP to the API double."""

from __future__ import annotations

import functools

import pytest

import validator.install
from tests.apidouble import ApiDouble
from tests.conftest import real_manifest
from tests.manifest_snippets import deployment
from tests.test_install import CRD_AND_CR
from validator.errors import CandidateFailed, EnvironmentNotReady, MirrorError
from validator.install import DEFERRED, NO_DRY_RUN_WEBHOOK, install
from validator.kubeapi import Kube
from validator.manifests import Bundle, load_bundle

WRITES = ("apply", "create", "patch", "update", "delete")  # real writes; dry runs are logged as dry-run-<verb>

REDIS_MOUNT = "spec.template.spec.containers[0].volumeMounts[0].name"
CM_KEY = ("Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
          "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")

# What a team adds to the upstream manifest: resources of the CRDs the manifest itself brings.
ARGO_CRS = b"""
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: team-a}
spec:
  sourceRepos: ['*']
  destinations: [{namespace: '*', server: 'https://kubernetes.default.svc'}]
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook}
spec:
  project: team-a
  source: {repoURL: 'https://github.com/argoproj/argocd-example-apps.git', path: guestbook, targetRevision: HEAD}
  destination: {server: 'https://kubernetes.default.svc', namespace: default}
"""
CRS = ["AppProject.argoproj.io/argocd/team-a", "Application.argoproj.io/argocd/guestbook"]


def with_crs(tag: str) -> Bundle:
    path = real_manifest(f"{tag}/install.yaml")
    return load_bundle(path.read_bytes() + ARGO_CRS, source=str(path), namespace="argocd")


def real_writes(double: ApiDouble) -> list[tuple[str, str]]:
    return [(verb, path) for verb, path in double.request_log if verb in WRITES]


def reject_two(double: ApiDouble) -> None:
    """The API server's 422s for two objects of the real v2.11.2 manifest, with their details.causes."""
    double.reject("Deployment", "argocd-redis", "argocd", field=REDIS_MOUNT, message='Not found: "data"',
                  reason="FieldValueNotFound")
    double.reject("ConfigMap", "argocd-cm", "argocd", field="data[bad key]", message=CM_KEY)


@pytest.mark.parametrize("mode", ["server-side", "client-side"])
def test_every_rejected_object_is_named_in_one_failure_and_nothing_is_applied(mode: str) -> None:
    path = real_manifest("v2.11.2/install.yaml")
    bundle = load_bundle(path.read_bytes(), source="install.yaml", namespace="argocd")
    with ApiDouble(namespaces=("default", "kube-system", "argocd")) as double:
        reject_two(double)
        before = double.store.rv
        with pytest.raises(CandidateFailed) as failure:
            install(double.api_client(), bundle, mode=mode)
        assert double.store.rv == before  # the store is as it was: nothing written, no event
        assert [o.ref for o in bundle if double.get(o.kind, o.name, o.namespace) is not None] == []
        assert real_writes(double) == []
        dry_verb = "dry-run-apply" if mode == "server-side" else "dry-run-create"
        assert double.request_count(dry_verb) == len(bundle)  # all judged, in one pass: none skipped
    text = str(failure.value)
    redis, cm = bundle.get("Deployment", "argocd-redis"), bundle.get("ConfigMap", "argocd-cm")
    assert redis is not None and cm is not None
    assert text == (
        "API server rejected 2 object(s) (dry run): "
        f"ConfigMap argocd/argocd-cm (install.yaml document {cm.document} (line {cm.line})): "
        f'ConfigMap "argocd-cm" is invalid: data[bad key]: {CM_KEY}; '
        f"Deployment argocd/argocd-redis (install.yaml document {redis.document} (line {redis.line})): "
        f'Deployment.apps "argocd-redis" is invalid: {REDIS_MOUNT}: Not found: "data"')
    assert failure.value.exit_code == 1


@pytest.mark.parametrize(("tag", "mode"), [("v3.5.1", "server-side"), ("v2.11.2", "client-side")])
def test_a_healthy_bundle_passes_with_custom_resources_of_its_own_crds_deferred(tag: str, mode: str) -> None:
    """Nothing is created by a dry run, so resources of a CRD the bundle brings cannot be judged yet: deferred, never
    rejected (the double answers 404 for a kind no Established CRD serves); the real apply then installs them."""
    bundle = with_crs(tag)
    progress: list[str] = []
    with ApiDouble() as double:
        result = install(double.api_client(), bundle, mode=mode, progress=progress.append)
        assert all(double.get(o.kind, o.name, o.namespace) is not None for o in bundle)
    assert result.dry_run is not None
    assert result.dry_run.rejected == []
    assert result.dry_run.not_checked == dict.fromkeys(CRS, DEFERRED)
    assert result.dry_run.accepted == [str(o.ref) for o in bundle.in_apply_order() if str(o.ref) not in CRS]
    assert f"dry run: {len(bundle) - 2} objects accepted by the API server (2 {DEFERRED})" in progress
    assert progress.index(f"dry run: {len(bundle) - 2} objects accepted by the API server (2 {DEFERRED})") < \
        progress.index(f"applied {len(bundle)} objects ({mode} apply)")
    assert len(result.applied) == len(bundle)


def test_custom_resources_are_judged_once_the_cluster_serves_their_crd_as_the_candidate_has_it() -> None:
    """Re-applying over itself: the CRDs are served unchanged, so the dry run judges the resources too. Over v2.14.0
    (other CRD schemas), judging them against the old CRDs could refuse what the new ones accept: deferred."""
    candidate, baseline = with_crs("v3.5.1"), with_crs("v2.14.0")
    with ApiDouble() as double:
        api = double.api_client()
        install(api, baseline)
        upgrade = install(api, candidate, previous=baseline)
        again = install(api, candidate, previous=candidate)
        double.reject("AppProject", "team-a", "argocd", field="spec.destinations[0].server", message="Invalid value")
        with pytest.raises(CandidateFailed, match=r"rejected 1 object\(s\) \(dry run\): AppProject argocd/team-a "):
            install(api, candidate, previous=candidate)
    assert upgrade.dry_run is not None and upgrade.dry_run.not_checked == dict.fromkeys(CRS, DEFERRED)
    assert again.dry_run is not None and again.dry_run.not_checked == {}
    assert set(CRS) <= set(again.dry_run.accepted) and len(again.dry_run.accepted) == len(candidate)


def test_a_deferred_resource_is_still_judged_by_the_real_apply() -> None:
    bundle = load_bundle(CRD_AND_CR, source="crs.yaml", namespace="argocd")
    progress: list[str] = []
    with ApiDouble() as double:
        double.reject("Widget", "w1", "argocd", field="spec.size", message="Invalid value: 3: must be less than 3")
        with pytest.raises(CandidateFailed) as failure:
            install(double.api_client(), bundle, progress=progress.append)
        assert double.get("Deployment", "web", "argocd") is not None  # the rest went in: the dry run accepted it
    assert progress[0] == f"dry run: 3 objects accepted by the API server (1 {DEFERRED})"
    assert failure.value.one_line().startswith(
        'apply Widget.example.com/argocd/w1 (crs.yaml document 2 (line 11)) rejected by the API server: '
        'Widget.example.com "w1" is invalid: spec.size: Invalid value: 3: must be less than 3')


def test_a_transient_error_during_the_dry_run_is_retried() -> None:
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble() as double:
        double.fail(503, count=2, verb="dry-run-apply", path_contains="/deployments/")
        double.fail(429, count=1, verb="dry-run-apply", path_contains="/deployments/", retry_after_s=0)
        result = install(double.api_client(), bundle)
        assert double.request_count("dry-run-apply", "/deployments/") == 4
    assert result.dry_run is not None and result.dry_run.rejected == [] and len(result.applied) == len(bundle)


def test_an_api_server_failing_throughout_the_dry_run_is_could_not_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validator.install, "Kube", functools.partial(Kube, retry_s=0.5))
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble() as double:
        double.fail(503, count=10**6, verb="dry-run-apply", path_contains="/deployments/")
        with pytest.raises(EnvironmentNotReady) as failure:
            install(double.api_client(), bundle)
        assert real_writes(double) == [("apply", "/api/v1/namespaces/argocd")]  # the namespace, nothing of the bundle
    assert failure.value.one_line() == ("dry run of Deployment.apps/argocd/web: API server failing: the server is "
                                        "currently unable to handle the request")
    assert failure.value.exit_code == 2


def test_rejections_seen_before_the_api_server_failed_are_still_the_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """Observed rejections are a FAIL whatever comes next; the line says the rest got no verdict."""
    monkeypatch.setattr(validator.install, "Kube", functools.partial(Kube, retry_s=0.5))
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble() as double:
        double.reject("NetworkPolicy", "web", "argocd", field="spec.podSelector", message="Invalid value")
        double.fail(503, count=10**6, verb="dry-run-apply", path_contains="/deployments/")
        with pytest.raises(CandidateFailed) as failure:
            install(double.api_client(), bundle)
    text = failure.value.one_line()
    assert text.startswith("API server rejected 1 object(s) (dry run): NetworkPolicy argocd/web (")
    assert text.endswith("(and no verdict on the rest: dry run of Deployment.apps/argocd/web: API server failing: "
                         "the server is currently unable to handle the request)")


BARE_POD = b"""
apiVersion: v1
kind: Namespace
metadata: {name: argocd}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {serviceAccountName: sa, containers: [{name: c, image: 'registry.k8s.io/pause:3.10'}]}
"""


@pytest.mark.parametrize(("status", "message", "outcome"), [
    # what a real API server answers when the dry run checks a prerequisite the bundle creates before it
    (403, 'pods "p" is forbidden: error looking up service account argocd/sa: serviceaccount "sa" not found', DEFERRED),
    (404, 'namespaces "argocd" not found', DEFERRED),
    (400, 'admission webhook "sidecar.example.com" does not support dry run', NO_DRY_RUN_WEBHOOK),
    # ... and what it answers about the candidate, or about us
    (403, 'pods "p" is forbidden: error looking up service account argocd/other: serviceaccount "other" not found',
     "CandidateFailed"),
    (403, 'admission webhook "policy.example.com" denied the request: images must be signed', "CandidateFailed"),
    (403, 'pods "p" is forbidden: User "system:anonymous" cannot patch resource "pods"', "EnvironmentNotReady"),
    (401, "Unauthorized", "EnvironmentNotReady"),
])
def test_what_a_dry_run_refusal_means(status: int, message: str, outcome: str) -> None:
    bundle = load_bundle(BARE_POD, namespace="argocd")
    with ApiDouble() as double:
        double.fail(status, count=1, verb="dry-run-apply", path_contains="/pods/p", message=message)
        if outcome in (DEFERRED, NO_DRY_RUN_WEBHOOK):
            result = install(double.api_client(), bundle)
            assert result.dry_run is not None and result.dry_run.not_checked == {"Pod/argocd/p": outcome}
            assert double.get("Pod", "p", "argocd") is not None  # the real apply judged it, and took it
            return
        with pytest.raises(MirrorError) as failure:
            install(double.api_client(), bundle)
        assert double.get("Pod", "p", "argocd") is None and double.get("ServiceAccount", "sa", "argocd") is None
    assert type(failure.value).__name__ == outcome
    assert message in failure.value.one_line()
    if outcome == "CandidateFailed":
        assert failure.value.one_line().startswith("API server rejected 1 object(s) (dry run): Pod argocd/p (")


def test_a_workload_without_selector_and_one_with_a_foreign_selector_are_both_reported() -> None:
    """The double's own validation (no script): two broken Deployments, one line."""
    docs = deployment("a", pod_app="other") + "---\n" + deployment("b", pod_app="b") + "---\n" + deployment("c")
    bundle = load_bundle(docs.encode(), namespace="argocd")
    del bundle.objects[1].body["spec"]["selector"]
    with ApiDouble() as double, pytest.raises(CandidateFailed) as failure:
        install(double.api_client(), bundle)
    text = failure.value.one_line()
    assert text.startswith("API server rejected 2 object(s) (dry run): Deployment argocd/a (")
    assert "`selector` does not match template `labels`" in text
    assert text.endswith('; Deployment argocd/b (<manifest> document 2 (line 12)): Deployment.apps "b" is invalid: '
                         "spec.selector: Required value")
