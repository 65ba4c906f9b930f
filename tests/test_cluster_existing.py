"""The `existing` provider against the API double: two locks (explicit flags + marker), and a clean exit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.apidouble import ApiDouble
from tests.fakes import RecordingServer, production  # noqa: F401
from validator.cluster import mirror_cluster
from validator.cluster.existing import MARKER_NAME, snapshot
from validator.cluster.kubeapi import ApiError, request
from validator.cluster.lifecycle import TeardownIncomplete
from validator.errors import EnvironmentNotReady, InputError
from validator.profiles import load_profile

DEFAULT_VERSION = f"v{load_profile('default').kubernetes_version}.4"  # the existing cluster runs the profile's minor
FAST = {"ready_timeout_s": 1.0, "teardown_timeout_s": 1.0, "poll_s": 0.05}
MARKER = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": MARKER_NAME, "namespace": "kube-public"}}
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "applications.argoproj.io"},
       "spec": {"group": "argoproj.io", "scope": "Namespaced",
                "names": {"kind": "Application", "plural": "applications", "singular": "application"},
                "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                              "schema": {"openAPIV3Schema": {"type": "object",
                                                             "x-kubernetes-preserve-unknown-fields": True}}}]}}


def rbac(kind: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": name}}
    if kind == "ClusterRoleBinding":
        body["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
        body["subjects"] = [{"kind": "ServiceAccount", "name": name, "namespace": "argocd"}]
    else:
        body["rules"] = []
    return body


@pytest.fixture
def double() -> Any:
    with ApiDouble(simulate=False, namespaces=("default", "kube-system", "kube-public"), version=DEFAULT_VERSION) as d:
        d.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "vcluster-node"},
                  "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        d.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-keep-me"}})
        d.create(rbac("ClusterRole", "preexisting-role"))
        yield d


@pytest.fixture
def kubeconfig(double: ApiDouble, tmp_path: Path) -> Path:
    return double.kubeconfig(tmp_path / "disposable.kubeconfig", context="ci-throwaway")


def test_refuses_without_explicit_flags(tmp_path: Path, kubeconfig: Path) -> None:
    profile = load_profile("default")
    for kwargs in ({}, {"kubeconfig": kubeconfig}, {"context": "ci-throwaway"}):
        with pytest.raises(InputError, match="needs both --kubeconfig FILE and --context NAME"), \
                mirror_cluster(profile, tmp_path, provider="existing", **kwargs):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize(("content", "expected"), [
    ("clusters: " + "[" * 100_000, "nesting"),  # was an internal RecursionError
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)),
     "alias bomb"),
    (None, "Symlink loop"),  # was an internal RuntimeError
])
def test_hostile_kubeconfigs_are_one_line_bad_input(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "kubeconfig"
    if content is None:
        path.symlink_to(tmp_path / "other")
        (tmp_path / "other").symlink_to(path)
    else:
        path.write_text(content)
    with pytest.raises(InputError, match=expected) as err, \
            mirror_cluster(load_profile("default"), tmp_path, provider="existing", kubeconfig=path, context="x"):
        pass
    assert "\n" not in err.value.one_line()


def test_refuses_unknown_context(tmp_path: Path, kubeconfig: Path) -> None:
    with pytest.raises(InputError, match="context 'prod' not found .*ci-throwaway"), \
            mirror_cluster(load_profile("default"), tmp_path, provider="existing", kubeconfig=kubeconfig,
                           context="prod"):
        pass


def test_refuses_without_marker_and_writes_nothing(double: ApiDouble, tmp_path: Path, kubeconfig: Path) -> None:
    with pytest.raises(EnvironmentNotReady) as err, \
            mirror_cluster(load_profile("default"), tmp_path, provider="existing", kubeconfig=kubeconfig,
                           context="ci-throwaway", progress=lambda m: None, **FAST):
        pytest.fail("must not get a cluster that is not marked disposable")
    assert "not marked disposable (no ConfigMap kube-public/argocd-mirror-disposable)" in str(err.value)
    assert f"kubectl --kubeconfig {kubeconfig} --context ci-throwaway -n kube-public create configmap" in str(err.value)
    assert err.value.exit_code == 2
    assert writes(double) == 0


def writes(double: ApiDouble) -> int:
    return sum(n for (verb, _), n in double.requests.items() if verb not in ("get", "list", "watch", "discovery"))


PREEXISTING_ROLE = ("---\n{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, "
                    "metadata: {name: preexisting-role}}\n")


@pytest.mark.parametrize(("namespace", "extra", "refused"), [
    ("team-keep-me", "", "Namespace/team-keep-me"),  # --namespace naming a namespace that was there
    ("argocd", "---\n{apiVersion: v1, kind: Namespace, metadata: {name: team-keep-me}}\n", "Namespace/team-keep-me"),
    ("argocd", PREEXISTING_ROLE, "ClusterRole/preexisting-role"),  # e.g. another Argo CD's: SSA would take it over
])
def test_refuses_to_install_into_or_over_what_was_there(double: ApiDouble, tmp_path: Path, kubeconfig: Path,
                                                        namespace: str, extra: str, refused: str) -> None:
    """Teardown removes what appeared during the run, so the run may write only what it created: the old guard
    checked the profile's namespace while the install went into --namespace's, and nothing guarded cluster-scoped
    objects, which a forced server-side apply took over and left changed."""
    from validator.manifests import load_bundle
    from validator.pytest_plugin import MirrorOptions, deploy

    bundle = load_bundle(f"{{apiVersion: v1, kind: ConfigMap, metadata: {{name: argocd-cm}}}}\n{extra}".encode(),
                         namespace=namespace)
    double.create(MARKER)
    with mirror_cluster(load_profile("default"), tmp_path, provider="existing", kubeconfig=kubeconfig,
                        context="ci-throwaway", progress=lambda m: None, **FAST) as cluster:
        assert {("Namespace", "team-keep-me"), ("Namespace", "default"), ("ClusterRole", "preexisting-role")} \
            <= cluster.foreign
        assert ("Namespace", "argocd") not in cluster.foreign
        before = writes(double)
        with pytest.raises(EnvironmentNotReady, match=rf"refusing to install .* on ci-throwaway: {refused} existed "
                                                      r"before the run"):
            deploy(cluster, bundle, MirrorOptions(), load_profile("default"), lambda m: None, tmp_path / "out")
        assert writes(double) == before
    assert double.get("ConfigMap", "argocd-cm", namespace) is None


@pytest.mark.parametrize(("version", "nodes", "problem"), [
    ("v1.31.0", 1, r"it runs Kubernetes v1.31.0 but profile default mirrors 1.35"),
    ("v1.35.1+k3s1", 3, r"it has 1 node\(s\) but profile ha mirrors 4"),
])
def test_refuses_a_cluster_that_does_not_mirror_the_profile(tmp_path: Path, version: str, nodes: int,
                                                           problem: str) -> None:
    """Another minor, or fewer nodes than preflight reasoned about: exit 2 (could not validate), nothing written."""
    profile = load_profile("default" if nodes == 1 else "ha")
    with ApiDouble(simulate=False, namespaces=("default", "kube-public"), version=version) as double:
        double.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "only"},
                       "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        double.create(MARKER)
        config = double.kubeconfig(tmp_path / "kubeconfig", context="ci-throwaway")
        before = writes(double)
        with pytest.raises(EnvironmentNotReady, match=r"context ci-throwaway does not mirror production: " + problem), \
                mirror_cluster(profile, tmp_path, provider="existing", kubeconfig=config, context="ci-throwaway",
                               progress=lambda m: None, **FAST):
            pytest.fail("must not get a cluster that does not mirror the profile")
        assert writes(double) == before


def install_like_argocd(api: Any) -> None:
    request(api, "POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": "argocd"}})
    request(api, "POST", "/api/v1/namespaces/argocd/configmaps",
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm", "namespace": "argocd"}})
    request(api, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=CRD)
    for kind, plural in (("ClusterRole", "clusterroles"), ("ClusterRoleBinding", "clusterrolebindings")):
        request(api, "POST", f"/apis/rbac.authorization.k8s.io/v1/{plural}",
                body=rbac(kind, "argocd-application-controller"))


def test_installs_then_leaves_the_cluster_as_found(double: ApiDouble, tmp_path: Path, kubeconfig: Path,
                                                   production: RecordingServer,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("KUBECONFIG", str(production.kubeconfig(home / ".kube" / "config")))
    monkeypatch.setenv("HOME", str(home))
    double.create(MARKER)
    seen: list[str] = []
    with mirror_cluster(load_profile("default"), tmp_path, provider="existing", kubeconfig=kubeconfig,
                        context="ci-throwaway", progress=seen.append, **FAST) as cluster:
        assert cluster.provider == "existing" and cluster.context == "ci-throwaway"
        assert cluster.managed and not cluster.created_by_us
        api = cluster.api_client()
        before = snapshot(api)
        install_like_argocd(api)
        during = snapshot(api)
        assert "argocd" in during["Namespace"] and "applications.argoproj.io" in during["CustomResourceDefinition"]
    after = snapshot(cluster.api_client())
    assert after == before
    assert "team-keep-me" in after["Namespace"] and "preexisting-role" in after["ClusterRole"]
    assert double.get("ConfigMap", MARKER_NAME, "kube-public") is not None  # the marker stays: reusable
    assert any("removed 4 cluster-scoped object(s)" in m for m in seen)
    assert production.requests == []


@contextmanager
def marked_double(tmp_path: Path) -> Iterator[tuple[ApiDouble, Path]]:
    """A disposable-marked cluster with one Ready node, played by the double with its controllers simulated."""
    namespaces = ("default", "kube-system", "kube-public")
    with ApiDouble(simulate=True, namespaces=namespaces, version=DEFAULT_VERSION) as double:
        double.create(MARKER)
        double.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                       "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        yield double, double.kubeconfig(tmp_path / "kubeconfig", context="vcluster")


def use_existing(tmp_path: Path, config: Path) -> Any:
    return mirror_cluster(load_profile("default"), tmp_path, provider="existing", kubeconfig=config,
                          context="vcluster", progress=lambda m: None, **FAST)


def install_application_with_finalizer(api: Any) -> None:
    """Argo CD's CRDs and one Application carrying resources-finalizer, as a real install leaves them."""
    install_like_argocd(api)
    deadline = time.monotonic() + 5
    while True:  # the double serves a CRD's kind once it is Established
        try:
            request(api, "POST", "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications", body={
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": "guestbook", "namespace": "argocd",
                             "finalizers": ["resources-finalizer.argocd.argoproj.io"]}, "spec": {}})
            return
        except ApiError:
            assert time.monotonic() < deadline, "CRD never served"
            time.sleep(0.05)


def test_finalizers_of_our_custom_resources_are_released(tmp_path: Path) -> None:
    """Argo CD Applications carry resources-finalizer; with the controller gone they would block forever."""
    with marked_double(tmp_path) as (double, config):
        with use_existing(tmp_path, config) as cluster:
            api = cluster.api_client()
            install_application_with_finalizer(api)
            double.reset_counts()
        assert double.request_count("patch", "/namespaces/{ns}/applications/{name}") == 1  # counted per template
        assert double.get("Application", "guestbook", "argocd") is None


def test_unclean_teardown_is_reported(double: ApiDouble, tmp_path: Path, kubeconfig: Path) -> None:
    double.create(MARKER)
    with pytest.raises(TeardownIncomplete, match="not left as found after 1s: Namespace/argocd"), \
            mirror_cluster(load_profile("default"), tmp_path, provider="existing", kubeconfig=kubeconfig,
                           context="ci-throwaway", progress=lambda m: None, **FAST) as cluster:
        install_like_argocd(cluster.api_client())
        double.fail(status=500, count=1000, verb="delete", path_contains="/namespaces/argocd")


def test_unreachable_existing_cluster(tmp_path: Path) -> None:
    config = tmp_path / "k"
    config.write_text('{"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "gone", "cluster": '
                      '{"server": "http://127.0.0.1:1"}}], "contexts": [{"name": "gone", "context": '
                      '{"cluster": "gone", "user": "gone"}}], "users": [{"name": "gone", "user": {"token": "t"}}]}')
    with pytest.raises(EnvironmentNotReady, match=r"cannot reach http://127.0.0.1:1 \(context gone\): "), \
            mirror_cluster(load_profile("default"), tmp_path, provider="existing", kubeconfig=config,
                           context="gone", progress=lambda m: None, **FAST):
        pass


def test_real_argocd_install_is_removed_completely(tmp_path: Path) -> None:
    """The real v2.11.2 install.yaml, applied by validator.install, then the existing cluster is as found."""
    from tests.conftest import real_manifest
    from validator.install import install
    from validator.manifests import load_bundle, read_bounded

    path = real_manifest("v2.11.2/install.yaml")
    bundle = load_bundle(read_bounded(path), str(path), namespace="argocd")
    with marked_double(tmp_path) as (double, config):
        with use_existing(tmp_path, config) as cluster:
            api = cluster.api_client()
            before = snapshot(api)
            result = install(api, bundle)
            assert len(result.applied) == len(bundle)
            during = snapshot(api)
            assert len(during["CustomResourceDefinition"]) == 3 and "argocd" in during["Namespace"]
        assert snapshot(cluster.api_client()) == before
        assert not double.objects("Deployment", "argocd") and not double.objects("Pod", "argocd")


def test_teardown_retries_storage_reinitializing_without_a_warning(tmp_path: Path) -> None:
    """Issue #16: right after CRDs were deleted a real API server answered 429 "storage is (re)initializing";
    teardown printed it as a warning and did not retry. Now every call retries it (Retry-After honoured)."""
    messages: list[str] = []
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(0.01)

    with marked_double(tmp_path) as (double, config):
        with mirror_cluster(load_profile("default"), tmp_path, provider="existing", kubeconfig=config,
                            context="vcluster", progress=messages.append, sleep=sleep, retry_s=10, **FAST) as cluster:
            api = cluster.api_client()
            install_application_with_finalizer(api)
            waits.clear()
            for verb in ("list", "patch"):
                double.fail(429, count=2, verb=verb, path_contains="/applications",
                            message="storage is (re)initializing", retry_after_s=2)
            double.fail(503, count=2, verb="delete", path_contains="/customresourcedefinitions/")
        assert double.get("Application", "guestbook", "argocd") is None
        assert double.get("CustomResourceDefinition", "applications.argoproj.io") is None
    assert not [m for m in messages if "warning" in m or "could not" in m], messages
    assert waits.count(2.0) == 4  # the server's Retry-After, twice for the list and twice for the patch
