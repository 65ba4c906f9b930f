"""install(): order, apply modes, rejections, upgrade/rollback with prune, image checks, over HTTP to the double."""

from __future__ import annotations

from typing import Any

import pytest

from tests.apidouble import ApiDouble
from tests.apidouble.argocd import bundle_from, healthy_redis
from tests.conftest import real_manifest
from tests.manifest_snippets import deployment
from validator.errors import CandidateFailed, EnvironmentNotReady, InputError, MirrorError
from validator.failfast import Thresholds
from validator.install import (
    LAST_APPLIED,
    apply_one,
    image_mismatches,
    install,
    normalize_image,
    phases,
    with_deletions,
)
from validator.kubeapi import KubeError, Resource
from validator.manifests import Bundle, KubeObject, load_bundle
from validator.watch import wait_healthy

FAST = Thresholds(config_error_grace_s=3, dependent_wait_s=6)

CRD_AND_CR = b"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}
---
""" + deployment("web").encode()


@pytest.fixture(scope="module")
def v2_11_2() -> Bundle:
    return bundle_from(real_manifest("v2.11.2/install.yaml"))


@pytest.fixture(scope="module")
def v2_11_0() -> Bundle:
    return bundle_from(real_manifest("v2.11.0/install.yaml"))


def _paths(double: ApiDouble, verb: str) -> list[str]:
    return [path for v, path in double.request_log if v == verb]


def test_order_namespace_policies_crds_established_hook_then_workloads_and_crs() -> None:
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    seen: dict[str, Any] = {}
    with ApiDouble(crd_establish_s=0.3) as double:
        api = double.api_client()

        def hook(client: Any) -> None:  # what the harness uses to prove NetworkPolicy enforcement
            seen["netpol"] = double.get("NetworkPolicy", "web", "argocd") is not None
            seen["deployment"] = double.get("Deployment", "web", "argocd")
            seen["client"] = client

        result = install(api, bundle, before_workloads=hook)
        applies = _paths(double, "apply")
        assert applies[0] == "/api/v1/namespaces/argocd"  # the namespace first
        order = [p.rsplit("/", 2)[-2] for p in applies]
        assert order.index("networkpolicies") < order.index("customresourcedefinitions") < order.index("deployments")
        assert order[-1] == "widgets"  # custom resources last
        assert seen == {"netpol": True, "deployment": None, "client": api}
        assert result.established == ["widgets.example.com"]
        assert double.get("Widget", "w1", "argocd") is not None
        # the CR went in only after a watch saw the CRD Established (the double serves the kind only then)
        log = double.request_log
        assert ("watch", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions") in log
        assert log.index(("watch", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")) < log.index(
            ("apply", "/apis/example.com/v1/namespaces/argocd/widgets/w1"))
        assert result.applied[-1] == "Widget.example.com/argocd/w1"


def test_server_side_apply_sends_field_manager_and_force() -> None:
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble() as double:
        install(double.api_client(), bundle)
        deployment = double.get("Deployment", "web", "argocd")
    assert deployment is not None
    assert [m["manager"] for m in deployment["metadata"]["managedFields"]] == ["argocd-mirror"]
    assert LAST_APPLIED not in (deployment["metadata"].get("annotations") or {})


def test_client_side_apply_hits_the_annotation_limit_like_users_do(upstream_manifests: Any) -> None:
    big = bundle_from(real_manifest("v3.5.1/install.yaml"))
    with ApiDouble() as double, pytest.raises(CandidateFailed) as failure:
        install(double.api_client(), big, mode="client-side")
    message = failure.value.one_line()
    assert "metadata.annotations: Too long: may not be more than 262144 bytes" in message
    assert "CustomResourceDefinition" in message
    with ApiDouble() as double:  # the same candidate applies fine server-side
        result = install(double.api_client(), big, mode="server-side")
        assert len(result.applied) == len(big)


def test_client_side_apply_stores_last_applied_and_updates() -> None:
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble() as double:
        api = double.api_client()
        install(api, bundle, mode="client-side")
        install(api, bundle, mode="client-side")  # second run updates instead of creating
        deployment = double.get("Deployment", "web", "argocd")
    assert deployment is not None
    assert '"name":"web"' in deployment["metadata"]["annotations"][LAST_APPLIED]


class _RecordingKube:
    """Just enough of validator.kubeapi.Kube to see the requests apply_one makes (GET: 404, or `live`)."""

    def __init__(self, live: dict[str, Any] | None = None) -> None:
        self.live, self.calls = live, []  # type: list[tuple[str, dict[str, Any] | None]]

    def resource(self, api_version: str, kind: str) -> Resource:
        return Resource("", "v1", "configmaps", True)

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
             content_type: str = "application/json") -> Any:
        self.calls.append((method, query))
        if method == "GET":
            if self.live is None:
                raise KubeError(404, "not found", "NotFound")
            return self.live
        return {}


@pytest.mark.parametrize(("mode", "live", "writes"), [
    ("server-side", None, ["PATCH"]), ("client-side", None, ["POST"]), ("client-side", {"metadata": {}}, ["PATCH"])])
def test_every_write_asks_for_strict_field_validation_as_kubectl_and_argo_cd_do(
        mode: str, live: dict[str, Any] | None, writes: list[str]) -> None:
    kube = _RecordingKube(live)
    apply_one(kube, KubeObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
                               namespace="argocd"), mode)  # type: ignore[arg-type]
    sent = [(method, query) for method, query in kube.calls if method != "GET"]
    assert [method for method, _ in sent] == writes
    assert all(query and query["fieldValidation"] == "Strict" for _, query in sent)


def test_with_deletions_drops_only_what_the_previous_apply_set() -> None:
    previous = {"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"old": "x", "keep": "y"}, "gone": {"k": 1}}
    new = {"metadata": {"labels": {"a": "1"}}, "data": {"keep": "z"}}
    assert with_deletions(new, previous) == {
        "metadata": {"labels": {"a": "1", "b": None}}, "data": {"keep": "z", "old": None}, "gone": None}
    assert with_deletions(new, {}) == new  # first apply, or an object never applied client-side


def test_client_side_upgrade_removes_fields_the_new_version_dropped_and_keeps_others() -> None:
    def config_map(data: str, labels: str) -> Bundle:
        return load_bundle(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm, labels: {labels}}}\n"
                           f"data: {data}\n".encode(), namespace="argocd")

    with ApiDouble() as double:
        api = double.api_client()
        install(api, config_map("{old: x, keep: y}", "{a: '1', b: '2'}"), mode="client-side")
        double.script(0, "ConfigMap", "cm", "argocd", patch={"metadata": {"annotations": {"by-controller": "v"}}})
        double.sim.tick()
        install(api, config_map("{keep: z}", "{a: '1'}"), mode="client-side")
        live = double.get("ConfigMap", "cm", "argocd")
    assert live is not None
    assert live["data"] == {"keep": "z"} and live["metadata"]["labels"] == {"a": "1"}
    assert live["metadata"]["annotations"]["by-controller"] == "v"  # not ours to delete, as with kubectl


def test_a_namespace_still_terminating_is_the_mirrors_problem() -> None:
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble(simulate=False) as double:
        double.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"},
                       "status": {"phase": "Terminating"}})
        with pytest.raises(EnvironmentNotReady, match="namespace argocd is still being deleted"):
            install(double.api_client(), bundle)


def test_client_side_create_whose_retry_finds_it_created_updates_instead() -> None:
    """A POST that landed but whose answer was lost is retried and answered 409 AlreadyExists: not a rejection."""
    bundle = load_bundle(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n", namespace="argocd")
    with ApiDouble() as double:
        api = double.api_client()
        install(api, bundle, mode="client-side")
        double.fail(404, count=1, verb="get", path_contains="/configmaps/cm")  # as if the GET raced the create
        install(api, bundle, mode="client-side")
        live = double.get("ConfigMap", "cm", "argocd")
    assert live is not None and live["data"] == {"a": "b"}


def test_rejected_object_fails_install_with_server_message() -> None:
    bad = load_bundle(deployment("broken", pod_app="other").encode(), source="bad.yaml", namespace="argocd")
    with ApiDouble() as double, pytest.raises(CandidateFailed) as failure:
        install(double.api_client(), bad)
    text = failure.value.one_line()  # judged by the dry run, before anything was applied (test_install_dryrun.py)
    assert text.startswith("API server rejected 1 object(s) (dry run): Deployment argocd/broken (bad.yaml document 1 "
                           '(line 2)): Deployment.apps "broken" is invalid: ')
    assert "`selector` does not match template `labels`" in text
    assert failure.value.exit_code == 1


def test_custom_resource_without_crd_fails() -> None:
    bundle = load_bundle(b"apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n", namespace="argocd")
    with ApiDouble() as double, pytest.raises(CandidateFailed, match='no matches for kind "Gadget"'):
        install(double.api_client(), bundle)


def test_unknown_mode_is_input_error() -> None:
    with pytest.raises(InputError, match="unknown apply mode"):
        install(None, load_bundle(CRD_AND_CR), mode="replace")  # type: ignore[arg-type]


def test_api_server_errors_are_retried() -> None:
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble() as double:
        double.fail(500, count=2, verb="apply")
        double.fail(429, count=1, verb="apply")
        result = install(double.api_client(), bundle)
    assert len(result.applied) == len(bundle)


def test_storage_reinitializing_during_install_and_wait_same_verdict_no_warning() -> None:
    """Issue #16: 429 "storage is (re)initializing" twice (and a 503) on install's writes, discovery and the
    wait's lists: retried by the one policy, the verdict is the one without faults and nothing is reported."""
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    reinit = "storage is (re)initializing"
    with ApiDouble() as double:
        api = double.api_client()
        double.fail(429, count=2, verb="apply", message=reinit)
        double.fail(503, count=2, verb="discovery", message=reinit)
        progress: list[str] = []
        result = install(api, bundle, progress=progress.append)
        double.fail(429, count=2, verb="list", message=reinit)
        verdict = wait_healthy(api, bundle, timeout_s=30, thresholds=FAST, progress=progress.append)
    assert len(result.applied) == len(bundle) and verdict.passed
    assert not [m for m in progress if "warning" in m or "could not" in m], progress


def _without(bundle: Bundle, kind: str, name: str) -> Bundle:
    return Bundle([o for o in bundle if (o.kind, o.name) != (kind, name)], namespace=bundle.namespace)


def test_upgrade_then_rollback_with_prune(v2_11_0: Bundle, v2_11_2: Bundle) -> None:
    # The candidate drops a ConfigMap the baseline had; rollback brings it back.
    candidate = _without(v2_11_2, "ConfigMap", "argocd-gpg-keys-cm")
    extra = KubeObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "candidate-only"}},
                       namespace="argocd")
    candidate = Bundle([*candidate.objects, extra], namespace="argocd")
    with ApiDouble() as double:
        healthy_redis(double)
        api = double.api_client()
        install(api, v2_11_0)
        assert wait_healthy(api, v2_11_0, timeout_s=30, thresholds=FAST).passed
        server = double.get("Deployment", "argocd-server", "argocd")
        assert server is not None and server["spec"]["template"]["spec"]["containers"][0]["image"].endswith("v2.11.0")

        up = install(api, candidate, previous=v2_11_0)
        assert up.pruned == ["ConfigMap/argocd/argocd-gpg-keys-cm"]
        assert double.get("ConfigMap", "argocd-gpg-keys-cm", "argocd") is None
        upgraded = wait_healthy(api, candidate, timeout_s=30, thresholds=FAST)
        assert upgraded.passed, upgraded.root_cause
        pods = double.objects("Pod", "argocd")
        images = {c["image"] for p in pods for c in p["spec"]["containers"] if "argocd:" in c["image"]}
        assert images == {"quay.io/argoproj/argocd:v2.11.2"}  # old-revision pods are gone

        back = install(api, v2_11_0, previous=candidate)
        only_in_candidate = {str(r) for r in candidate.index} - {str(r) for r in v2_11_0.index}
        assert "ConfigMap/argocd/candidate-only" in only_in_candidate
        assert "Role.rbac.authorization.k8s.io/argocd/argocd-redis" in only_in_candidate  # v2.11.2's secret-init RBAC
        assert set(back.pruned) == only_in_candidate
        assert double.get("Role", "argocd-redis", "argocd") is None
        assert double.get("ConfigMap", "argocd-gpg-keys-cm", "argocd") is not None
        rolled = wait_healthy(api, v2_11_0, timeout_s=30, thresholds=FAST)
        assert rolled.passed, rolled.root_cause


def test_running_image_differs_from_candidate_fails(v2_11_2: Bundle) -> None:
    with ApiDouble() as double:
        healthy_redis(double)
        double.pods("argocd-server").image("argocd-server", "quay.io/argoproj/argocd:v2.11.1")
        api = double.api_client()
        install(api, v2_11_2)
        result = wait_healthy(api, v2_11_2, timeout_s=30, thresholds=FAST)
    assert not result.passed
    assert result.root_cause is not None and result.root_cause.startswith("image mismatch: Pod/argocd/argocd-server-")
    assert "runs quay.io/argoproj/argocd:v2.11.1, the candidate specifies quay.io/argoproj/argocd:v2.11.2" in (
        result.root_cause)


def test_phases_split() -> None:
    prereq, rest, custom = phases(load_bundle(CRD_AND_CR, namespace="argocd"))
    assert [o.kind for o in prereq] == ["NetworkPolicy", "CustomResourceDefinition"]
    assert [o.kind for o in rest] == ["Deployment"]
    assert [o.kind for o in custom] == ["Widget"]


@pytest.mark.parametrize(("a", "b", "same"), [
    ("redis:7.0.14-alpine", "docker.io/library/redis:7.0.14-alpine", True),
    ("ghcr.io/dexidp/dex:v2.38.0", "ghcr.io/dexidp/dex:v2.38.0", True),
    ("nginx", "docker.io/library/nginx:latest", True),
    ("quay.io/argoproj/argocd:v2.11.2", "quay.io/argoproj/argocd:v2.11.1", False),
    ("localhost:5001/x:1", "localhost:5001/x:1", True),
])
def test_normalize_image(a: str, b: str, same: bool) -> None:
    assert (normalize_image(a) == normalize_image(b)) is same


def test_image_mismatch_skips_old_revision_pods_and_checks_digests() -> None:
    digest = "sha256:" + "a" * 64
    workload = {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d"},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": f"repo/x@{digest}"}]}}}}

    def pod(spec_image: str, image: str, image_id: str) -> dict[str, Any]:
        return {"metadata": {"name": "p", "namespace": "ns"},
                "spec": {"containers": [{"name": "c", "image": spec_image}]},
                "status": {"containerStatuses": [{"name": "c", "image": image, "imageID": image_id,
                                                  "state": {"running": {}}}]}}

    assert image_mismatches(workload, [pod(f"repo/x@{digest}", "docker.io/repo/x", f"docker.io/repo/x@{digest}")]) == []
    assert image_mismatches(workload, [pod("repo/x:old", "repo/x:old", "x")]) == []  # older revision: skipped
    assert image_mismatches(workload, [pod(f"repo/x@{digest}", digest, f"docker.io/repo/x@{digest}")]) == []
    wrong = image_mismatches(workload, [pod(f"repo/x@{digest}", "docker.io/repo/x", "docker.io/repo/x@sha256:" +
                                            "b" * 64)])
    assert len(wrong) == 1 and "container c runs docker.io/repo/x" in wrong[0]


def test_crd_names_not_accepted_fails_install() -> None:
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble(crd_establish_s=5) as double:
        double.script(at=0, kind="CustomResourceDefinition", name="widgets.example.com", status={"conditions": [
            {"type": "NamesAccepted", "status": "False", "reason": "PluralConflict",
             "message": '"widgets" is already in use'},
            {"type": "Established", "status": "False", "reason": "NotAccepted", "message": "not all names accepted"}]})
        with pytest.raises(CandidateFailed, match='widgets.example.com: names not accepted: "widgets" is already'):
            install(double.api_client(), bundle)


def test_crd_established_while_its_watch_version_expired_is_seen_on_the_relist() -> None:
    """List (not yet Established), then the CRD is Established and history compacted before the watch starts:
    the watch gets 410, and only the relist's items can say Established (no event will come)."""
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble(crd_establish_s=0.3) as double:
        double.slow(1.0, count=1, verb="watch", path_contains="customresourcedefinitions")
        double.at(0.7, double.expire_watches)
        result = install(double.api_client(), bundle, crd_timeout_s=5)
        assert double.request_count("list", "customresourcedefinitions") >= 2  # the 410 made it list again
    assert "CustomResourceDefinition.apiextensions.k8s.io/widgets.example.com" in [str(r) for r in result.applied]


def test_discovery_lagging_behind_established_is_waited_for_not_blamed_on_the_candidate() -> None:
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble(crd_establish_s=0.2) as double:
        double.fail(404, count=3, verb="discovery", path_contains="/apis/example.com/v1",
                    message="the server could not find the requested resource")
        install(double.api_client(), bundle)
        assert double.get("Widget", "w1", "argocd") is not None
        assert double.request_count("discovery", "/apis/example.com/v1") >= 4


def test_a_kind_no_crd_serves_still_fails_the_candidate_at_once() -> None:
    bundle = load_bundle(b"apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n", namespace="argocd")
    with ApiDouble() as double, pytest.raises(CandidateFailed, match='no matches for kind "Gadget"'):
        install(double.api_client(), bundle)


def test_crd_never_established_fails_install_at_its_deadline() -> None:
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble(crd_establish_s=60) as double, pytest.raises(CandidateFailed, match="not Established within 1 s"):
        install(double.api_client(), bundle, crd_timeout_s=1)


def test_a_crd_watch_that_keeps_failing_is_not_blamed_on_the_candidate() -> None:
    """The watch answers 503 throughout while the CRD gets Established: the deadline's fresh list is the last word
    (it was "not Established", a candidate FAIL, for what was an API server outage)."""
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble(crd_establish_s=0.5) as double:
        double.fail(503, count=100000, verb="watch", path_contains="customresourcedefinitions")
        result = install(double.api_client(), bundle, crd_timeout_s=2)
    assert "CustomResourceDefinition.apiextensions.k8s.io/widgets.example.com" in [str(r) for r in result.applied]


def test_prune_never_deletes_the_namespace_the_candidate_lives_in() -> None:
    with_ns = load_bundle(b"apiVersion: v1\nkind: Namespace\nmetadata: {name: argocd}\n---\n"
                          b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", namespace="argocd")
    without = load_bundle(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n", namespace="argocd")
    with ApiDouble() as double:
        api = double.api_client()
        install(api, with_ns)
        result = install(api, without, previous=with_ns)
        assert result.pruned == ["ConfigMap/argocd/a"]
        assert double.get("ConfigMap", "b", "argocd") is not None


@pytest.mark.parametrize(("status", "message", "error"), [
    (403, 'deployments.apps "web" is forbidden: User "system:anonymous" cannot patch resource "deployments"',
     "EnvironmentNotReady"),
    (401, "Unauthorized", "EnvironmentNotReady"),
    (403, 'admission webhook "policy.example.com" denied the request: images must be signed', "CandidateFailed"),
    (403, 'deployments.apps "web" is forbidden: unable to create new content in namespace argocd because it is '
          'being terminated', "EnvironmentNotReady"),
])
def test_access_problems_are_not_blamed_on_the_candidate(status: int, message: str, error: str) -> None:
    bundle = load_bundle(CRD_AND_CR, namespace="argocd")
    with ApiDouble() as double:
        double.fail(status, count=1, verb="apply", path_contains="/deployments/", message=message)
        with pytest.raises(MirrorError) as failure:
            install(double.api_client(), bundle)
    assert type(failure.value).__name__ == error
    assert message in failure.value.one_line()
