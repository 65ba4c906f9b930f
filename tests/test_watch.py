"""Acceptance: the real install + wait + diagnose code over HTTP against the API double (real kubernetes client)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.apidouble import ApiDouble
from tests.apidouble.argocd import as_v2_11_1, broken_redis, bundle_from, healthy_redis, redis_secret
from tests.conftest import real_manifest
from tests.manifest_snippets import deployment
from validator.diagnose import diagnose
from validator.errors import EnvironmentNotReady
from validator.failfast import Thresholds
from validator.health import HealthStatus
from validator.install import install
from validator.manifests import Bundle, load_bundle
from validator.watch import wait_healthy

# Scaled down: the spec's 60 s config-error grace becomes 3 s, 120 s back-off 6 s; restarts stay at 3.
FAST = Thresholds(config_error_grace_s=3, crashloop_backoff_s=6, dependent_wait_s=6, image_pull_grace_s=3,
                  unschedulable_grace_s=3, run_container_error_grace_s=3, replica_failure_grace_s=3)
ROOT_CAUSE = ('argocd-redis: init container secret-init failing (3 restarts): "dial tcp 10.96.0.1:443: i/o timeout"'
              " - NetworkPolicy argocd-redis-network-policy restricts egress to 53/UDP, 53/TCP")


@pytest.fixture(scope="module")
def v2_11_2() -> Bundle:
    return bundle_from(real_manifest("v2.11.2/install.yaml"))


def _slow_rollout(double: ApiDouble, seconds: float = 1.0) -> None:
    """Make the main components take a while, so the wait really watches them turn Healthy."""
    for name in ("argocd-server", "argocd-repo-server", "argocd-application-controller"):
        double.pods(name).ready_after(seconds)


@contextmanager
def _installed(bundle: Bundle, *setup: Callable[[ApiDouble], None]) -> Iterator[tuple[ApiDouble, Any]]:
    """A running API double, scripted by each `setup(double)`, with `bundle` installed through the real client."""
    with ApiDouble() as double:
        for step in setup:
            step(double)
        api = double.api_client()
        install(api, bundle)
        yield double, api


def test_healthy_rollout_passes_within_2s_of_last_healthy(v2_11_2: Bundle) -> None:
    with _installed(v2_11_2, healthy_redis, partial(_slow_rollout, seconds=1.5)) as (double, api):
        lines: list[str] = []
        changed: list[float] = []  # when the double changed a bundle workload (the last one = last turned Healthy)
        kinds = ("Deployment", "StatefulSet")
        double.store.listeners.append(lambda _t, rt, _o: changed.append(time.monotonic()) if rt.kind in kinds else 0)
        result = wait_healthy(api, v2_11_2, timeout_s=30, thresholds=FAST, progress=lines.append, progress_every_s=0.2)
        verdict_at = time.monotonic()
        assert result.passed, result.root_cause
        assert verdict_at - changed[-1] < 2.0  # measured on the server side too
        assert result.root_cause is None and result.terminal is None and not result.missing
        assert len(result.health) == len(v2_11_2)
        assert result.last_change_s is not None and result.last_change_s > 0.5  # it really waited for the rollout
        assert result.elapsed_s - result.last_change_s < 2.0
        assert any("Progressing" in line for line in lines)  # live view: objects by state while waiting
        assert lines[-1].startswith("PASS")
        assert double.sim.errors == []
        # every workload's span ends when it turned Healthy: the slow ones late, the others early
        spans = {span.name: span for span in result.timeline}
        assert {span.state for span in spans.values()} == {"ok"} and len(spans) == 7
        assert spans["Deployment argocd-server"].end_s > 1.0 > spans["Deployment argocd-redis"].end_s
        assert max(span.end_s for span in spans.values()) <= result.elapsed_s


def test_v2_11_1_redis_timeline_fails_fast_with_root_cause(v2_11_2: Bundle, tmp_path: Path) -> None:
    candidate = as_v2_11_1(v2_11_2)
    with _installed(candidate, partial(broken_redis, every=0.2)) as (_double, api):
        result = wait_healthy(api, candidate, timeout_s=60, thresholds=FAST)
        assert not result.passed and not result.timed_out
        assert result.elapsed_s < 10  # fail-fast, well before the 60 s deadline
        assert result.terminal is not None and result.terminal.container == "secret-init"
        assert result.terminal.init_container and "argocd-redis" in (result.terminal.owner or "")
        diag = diagnose(api, candidate, result, tmp_path)
    assert diag.root_cause == ROOT_CAUSE
    for waiter in ("argocd-server", "argocd-repo-server", "argocd-application-controller"):
        assert waiter not in diag.root_cause
        assert any(waiter in c and "Secret/argocd-redis" in c for c in diag.consequences)
    assert (tmp_path / "diagnosis.json").is_file()
    markdown = (tmp_path / "diagnosis.md").read_text()
    assert markdown.splitlines()[2] == f"**Root cause:** {ROOT_CAUSE}"
    assert "dial tcp 10.96.0.1:443: i/o timeout" in markdown  # the previous run's log is in the evidence
    assert "BackOff" in markdown  # events


def test_transient_config_error_resolves_and_passes(v2_11_2: Bundle) -> None:
    """The Secret appears after 1.5 s (the field's 20 s, scaled down): a grace of 3 s lets it through."""
    with _installed(v2_11_2) as (double, api):
        appears = double.elapsed() + 1.5
        double.script(at=appears, create=redis_secret())  # secret-init succeeds but writes nothing; someone else does
        result = wait_healthy(api, v2_11_2, timeout_s=30, thresholds=FAST)
        assert result.passed, result.root_cause
        assert double.elapsed() >= appears  # the verdict came after the Secret appeared
        failed = [e for e in double.objects("Event", "argocd") if e["reason"] == "Failed"]
        assert any(e["involvedObject"]["name"].startswith("argocd-redis-") and
                   e["message"] == 'Error: secret "argocd-redis" not found' for e in failed)  # the error was real


def test_missing_secret_nobody_creates_fails_after_grace(v2_11_2: Bundle, tmp_path: Path) -> None:
    with _installed(v2_11_2) as (_double, api):
        result = wait_healthy(api, v2_11_2, timeout_s=60, thresholds=FAST)
        assert not result.passed and result.terminal is not None
        assert result.terminal.reason == "CreateContainerConfigError"
        diag = diagnose(api, v2_11_2, result, tmp_path)
    assert "waits for Secret/argocd-redis, which nothing created" in diag.root_cause


def _chaos(double: ApiDouble) -> None:
    """500s on lists, a dropped watch, a 410 mid-run, a slow answer (times relative to now: after the install)."""
    now = double.elapsed()
    double.fail(500, count=3, verb="list")
    double.fail(503, count=1, verb="watch")
    double.fail(410, count=1, verb="watch", message="too old resource version: 1 (2)")  # as an HTTP status
    double.slow(0.3, count=2, verb="watch")
    double.at(now + 0.6, lambda: double.drop_watches())
    double.at(now + 0.9, lambda: double.expire_watches())
    double.at(now + 1.1, lambda: double.drop_watches(abrupt=True))


def test_faults_same_pass_verdict(v2_11_2: Bundle) -> None:
    with _installed(v2_11_2, healthy_redis, partial(_slow_rollout, seconds=2.0)) as (double, api):
        kinds = len({(o.group, o.kind) for o in v2_11_2} | {("", "Pod"), ("apps", "ReplicaSet")})
        _chaos(double)
        result = wait_healthy(api, v2_11_2, timeout_s=30, thresholds=FAST)
        assert result.passed, result.root_cause
        assert result.watches > kinds  # streams were re-opened
        assert result.relists > kinds  # and the 410 made them relist
        assert result.elapsed_s - (result.last_change_s or 0) < 2.0


def test_faults_same_fail_verdict(v2_11_2: Bundle, tmp_path: Path) -> None:
    candidate = as_v2_11_1(v2_11_2)
    with _installed(candidate, partial(broken_redis, every=0.4)) as (double, api):
        _chaos(double)
        result = wait_healthy(api, candidate, timeout_s=60, thresholds=FAST)
        assert not result.passed and result.terminal is not None
        assert result.terminal.container == "secret-init"
        assert diagnose(api, candidate, result, tmp_path).root_cause == ROOT_CAUSE


def test_deadline_without_terminal_signal_is_a_fail_with_suspect() -> None:
    bundle = load_bundle(deployment("slow").encode(), namespace="argocd")
    with ApiDouble(namespaces=("default", "argocd")) as double:
        double.pods("slow").ready_after(60)
        api = double.api_client()
        install(api, bundle)
        result = wait_healthy(api, bundle, timeout_s=1.5, thresholds=FAST)
    assert not result.passed and result.timed_out and result.terminal is None
    assert 1.4 < result.elapsed_s < 3.5
    assert result.root_cause and "1 of 1 objects not Healthy after 2 s" in result.root_cause
    assert "Deployment/argocd/slow: Progressing: Waiting for rollout to finish" in result.root_cause


def test_object_deleted_mid_run_is_missing_not_pass() -> None:
    bundle = load_bundle(b"""
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
---
""" + deployment("web").encode(), namespace="argocd")
    with ApiDouble(namespaces=("default", "argocd")) as double:
        double.pods("web").ready_after(1.0)
        double.script(at=0.3, kind="ConfigMap", name="cm", namespace="argocd", delete=True)
        api = double.api_client()
        install(api, bundle)
        result = wait_healthy(api, bundle, timeout_s=30, thresholds=FAST, missing_grace_s=1.0)
    assert not result.passed and not result.timed_out
    assert result.missing == ["ConfigMap/argocd/cm"]
    assert result.root_cause is not None
    assert result.root_cause.startswith("ConfigMap/argocd/cm is missing: applied by the install but not in the cluster")
    assert result.elapsed_s < 5


def test_unwatchable_api_is_could_not_validate(v2_11_2: Bundle) -> None:
    with ApiDouble() as double:
        api = double.api_client()
        double.fail(403, count=100, verb="list", path_contains="/pods",
                    message='pods is forbidden: User "x" cannot list resource "pods"')
        started = time.monotonic()
        with pytest.raises(EnvironmentNotReady, match="forbidden"):
            wait_healthy(api, v2_11_2, timeout_s=10, thresholds=FAST)
        assert time.monotonic() - started < 5  # not retried until the deadline: a 403 will not heal


def test_requests_are_per_kind_not_per_object(v2_11_2: Bundle) -> None:
    with _installed(v2_11_2, healthy_redis, partial(_slow_rollout, seconds=0.8)) as (double, api):
        double.reset_counts()
        result = wait_healthy(api, v2_11_2, timeout_s=30, thresholds=FAST)
        assert result.passed
        kinds = len({(o.group, o.kind) for o in v2_11_2} | {("", "Pod"), ("apps", "ReplicaSet")})
        assert double.request_count("list") == kinds
        assert double.request_count("watch") == kinds
        assert double.request_count("get") == 0
        assert double.request_count() == 2 * kinds


@pytest.mark.parametrize(("manifest", "producer"), [
    ("v3.5.1/install.yaml", "argocd-redis"),
    ("v3.5.1/ha/install.yaml", "argocd-redis-ha-haproxy"),  # HA: haproxy's secret-init writes the Secret
])
def test_current_release_shapes_pass(manifest: str, producer: str) -> None:
    bundle = bundle_from(real_manifest(manifest))
    def secret_init_writes_the_secret(double: ApiDouble) -> None:
        double.pods(producer).creates("secret-init", redis_secret())

    with _installed(bundle, secret_init_writes_the_secret) as (double, api):
        result = wait_healthy(api, bundle, timeout_s=30, thresholds=FAST)
        assert result.passed, result.root_cause
        assert len(result.health) == len(bundle)
        statefulsets = double.objects("StatefulSet", "argocd")
        assert statefulsets and all(s["status"]["readyReplicas"] == s["spec"].get("replicas", 1) for s in statefulsets)


# ---------------------------------------------------------------- PVC exemption (health-rules §6, last row)

STANDARD = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer", "metadata": {
                "name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}
FAST_CLASS = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "example.com/none",
              "volumeBindingMode": "Immediate", "metadata": {"name": "fast"}}


def _claim_bundle(storage_class: str | None) -> Bundle:
    """A healthy Deployment plus PVC `data` (no consumer), asking for `storage_class` (None: the field is absent)."""
    field = "" if storage_class is None else f', storageClassName: "{storage_class}"'
    return load_bundle(f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data}}
spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}{field}}}
---
{deployment("web")}""".encode(), namespace="argocd")


@contextmanager
def _pending_claim(bundle: Bundle, *setup: Callable[[ApiDouble], None]) -> Iterator[tuple[ApiDouble, Any]]:
    """kind's StorageClasses, `bundle` installed, and PVC `data` held Pending as no volume ever binds."""
    with ApiDouble(namespaces=("default", "argocd")) as double:
        double.create(STANDARD)
        double.create(FAST_CLASS)
        for step in setup:
            step(double)
        api = double.api_client()
        install(api, bundle)
        double.set_status("PersistentVolumeClaim", "data", "argocd", {"phase": "Pending"})
        yield double, api


@pytest.mark.parametrize(("storage_class", "why"), [
    ("does-not-exist", "StorageClass does-not-exist does not exist"),
    ("", 'storageClassName "" asks for a pre-provisioned PersistentVolume and none is bound'),
    ("fast", "StorageClass fast has volumeBindingMode Immediate, so Pending is not waiting for a consumer"),
])
def test_pending_claim_not_waiting_for_a_consumer_blocks_the_pass(storage_class: str, why: str) -> None:
    """Argo CD calls these claims Progressing and they will not bind: the wait must end not Healthy, naming why."""
    bundle = _claim_bundle(storage_class)
    with _pending_claim(bundle) as (_double, api):
        result = wait_healthy(api, bundle, timeout_s=1.5, thresholds=FAST)
    assert not result.passed and result.timed_out and result.terminal is None
    assert result.exempt == {}
    assert result.health["PersistentVolumeClaim/argocd/data"].status is HealthStatus.PROGRESSING
    assert result.root_cause and "1 of 2 objects not Healthy" in result.root_cause
    assert f"PersistentVolumeClaim/argocd/data: Progressing ({why})" in result.root_cause


@pytest.mark.parametrize("storage_class", [None, "standard"])
def test_pending_claim_under_wait_for_first_consumer_stays_exempt(storage_class: str | None) -> None:
    """kind's default `standard` class binds only for a consumer: such a claim is exempt (reported, not Healthy)."""
    bundle = _claim_bundle(storage_class)
    with _pending_claim(bundle) as (double, api):
        double.reset_counts()
        result = wait_healthy(api, bundle, timeout_s=30, thresholds=FAST)
        assert double.request_count("list", "/storageclasses") == 1  # once per wait, not per event
    assert result.passed, result.root_cause
    default = " (the cluster default)" if storage_class is None else ""
    assert result.exempt == {"PersistentVolumeClaim/argocd/data": (
        f"PersistentVolumeClaim is Pending with no consumer scheduled: StorageClass standard{default} binds only "
        "when a pod uses it (WaitForFirstConsumer)")}
    assert result.health["PersistentVolumeClaim/argocd/data"].status is HealthStatus.PROGRESSING


def test_unreadable_storage_classes_fail_closed() -> None:
    """Without the StorageClasses nothing proves the claim only waits for a consumer: no exemption, and said so."""
    bundle = _claim_bundle("standard")
    forbidden = ('storageclasses.storage.k8s.io is forbidden: User "x" cannot list resource "storageclasses" in API '
                 'group "storage.k8s.io" at the cluster scope')

    def deny(double: ApiDouble) -> None:
        double.fail(403, count=100, verb="list", path_contains="/storageclasses", message=forbidden)

    with _pending_claim(bundle, deny) as (_double, api):
        lines: list[str] = []
        result = wait_healthy(api, bundle, timeout_s=1.5, thresholds=FAST, progress=lines.append)
    assert not result.passed and result.timed_out and result.exempt == {}
    assert lines[0] == f"listing StorageClasses: {forbidden}: Pending PersistentVolumeClaims will not be exempted " \
                       "(fail closed)"
    assert result.root_cause and f"StorageClasses could not be read (listing StorageClasses: {forbidden})" \
        in result.root_cause


# ---------------------------------------------------------------- objects outside app health (health-rules §4.14)

IGNORED = 'annotated argocd.argoproj.io/ignore-healthcheck: "true"'
ANNOTATIONS = {IGNORED: '{argocd.argoproj.io/ignore-healthcheck: "true"}',
               "hook (argocd.argoproj.io/hook: PostSync)": "{argocd.argoproj.io/hook: PostSync}"}


def _with_stuck(annotations: str | None) -> Bundle:
    """Deployment `web` plus Deployment `stuck`, annotated with `annotations` (a YAML flow mapping) if given."""
    stuck = deployment("stuck")
    if annotations:
        stuck = stuck.replace("metadata: {name: stuck}", f"metadata: {{name: stuck, annotations: {annotations}}}")
    return load_bundle(f"{deployment('web')}---{stuck}".encode(), namespace="argocd")


@pytest.mark.parametrize("why", list(ANNOTATIONS))
def test_objects_outside_app_health_do_not_block_the_pass(why: str) -> None:
    """Argo CD leaves hooks and ignore-healthcheck objects out of app health: never Healthy must not block a pass,
    and the report still lists them as not counted."""
    bundle = _with_stuck(ANNOTATIONS[why])
    with ApiDouble(namespaces=("default", "argocd")) as double:
        double.pods("stuck").ready_after(600)
        api = double.api_client()
        install(api, bundle)
        lines: list[str] = []
        result = wait_healthy(api, bundle, timeout_s=30, thresholds=FAST, progress=lines.append)
    assert result.passed, result.root_cause
    assert result.elapsed_s < 10
    assert result.not_counted == {"Deployment.apps/argocd/stuck": why}
    assert result.health["Deployment.apps/argocd/stuck"].status is HealthStatus.PROGRESSING  # reported as it is
    assert lines[-1].startswith("PASS: ") and f"not counted: Deployment.apps/argocd/stuck ({why})" in lines[-1]


def test_the_same_object_counted_blocks_the_pass() -> None:
    bundle = _with_stuck(None)
    with ApiDouble(namespaces=("default", "argocd")) as double:
        double.pods("stuck").ready_after(600)
        api = double.api_client()
        install(api, bundle)
        result = wait_healthy(api, bundle, timeout_s=1.5, thresholds=FAST)
    assert not result.passed and result.timed_out and result.not_counted == {}
    assert result.root_cause and "Deployment/argocd/stuck: Progressing" in result.root_cause


HOOK = "hook (argocd.argoproj.io/hook: PostSync)"


@pytest.mark.parametrize("why", [IGNORED, HOOK, None])
def test_fail_fast_signals_of_uncounted_objects_do_not_stop_the_wait(why: str | None) -> None:
    """Pods of an ignored Deployment crash-loop: a fail-fast signal there says nothing about app health. A hook
    is not waited for either, but one that fails fails the sync in Argo CD: it still stops the run."""
    ignored = why == IGNORED
    bundle = _with_stuck(ANNOTATIONS[why] if why else None)
    with ApiDouble(namespaces=("default", "argocd")) as double:
        double.pods("stuck").crashloop("app", log="boom", every=0.1)
        double.pods("web").ready_after(2.0)  # the crash loop reaches its restart threshold first
        api = double.api_client()
        install(api, bundle)
        result = wait_healthy(api, bundle, timeout_s=30, thresholds=FAST)
    if ignored:
        assert result.passed and result.terminal is None, result.root_cause
        assert result.last_change_s is not None and result.last_change_s > 1.0  # it waited for web
    else:
        assert not result.passed and result.terminal is not None and result.terminal.reason == "CrashLoopBackOff"
        assert "stuck" in (result.terminal.owner or "")


def test_pods_of_an_uncounted_deployment_are_known_before_their_replicaset_is_listed() -> None:
    """Lists arrive in any order: a pod seen before its ReplicaSet still belongs to the ignored Deployment."""
    from validator.watch import _State

    bundle = _with_stuck(ANNOTATIONS[IGNORED])
    state = _State(bundle, FAST, started=0.0)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "stuck-5d8f-abcde", "namespace": "argocd", "uid": "p1", "labels": {"pod-template-hash": "5d8f"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "stuck-5d8f", "uid": "rs1",
                             "controller": True}]},
        "spec": {"containers": [{"name": "app", "image": "bad image"}]},
        "status": {"phase": "Pending", "containerStatuses": [{"name": "app", "ready": False, "restartCount": 0,
                                                             "state": {"waiting": {"reason": "InvalidImageName"}}}]}}
    assert state.upsert(pod, 1.0) is None  # InvalidImageName stops at once, but not for an ignored Deployment
    assert str(state.uncounted_root(pod)) == "Deployment.apps/argocd/stuck"
    counted = _State(_with_stuck(None), FAST, started=0.0)
    terminal = counted.upsert(pod, 1.0)
    assert terminal is not None and terminal.reason == "InvalidImageName"


WAITERS = ("argocd-server", "argocd-repo-server", "argocd-application-controller")


def test_live_suspect_names_secret_init_not_the_pods_waiting_for_its_secret(v2_11_2: Bundle) -> None:
    """Acceptance: while secret-init crash-loops (no fail-fast here: the thresholds are out of reach), every progress
    line names it as the suspect from the moment it is visible, never the components waiting for Secret
    argocd-redis; so does the root cause when the wait runs out. Old: argocd-application-controller-0's
    CreateContainerConfigError, a consequence, was the suspect throughout."""
    candidate = as_v2_11_1(v2_11_2)
    patient = replace(FAST, crashloop_restarts=10_000, crashloop_backoff_s=600, config_error_grace_s=600)
    with _installed(candidate, partial(broken_redis, every=0.2)) as (_double, api):
        lines: list[str] = []
        result = wait_healthy(api, candidate, timeout_s=3, thresholds=patient, progress=lines.append,
                              progress_every_s=0.2)
    suspects = [line.split("; suspect: ", 1)[1] for line in lines if "; suspect: " in line]
    named = [i for i, suspect in enumerate(suspects) if "(init container secret-init of " in suspect]
    assert named, suspects
    for suspect in suspects[named[0]:]:
        assert suspect.startswith("Pod/argocd/argocd-redis-") and "init container secret-init" in suspect, suspect
        assert not any(f"Pod/argocd/{waiter}" in suspect for waiter in WAITERS), suspect
    assert result.timed_out and result.root_cause is not None
    assert "(init container secret-init of Deployment/argocd/argocd-redis)" in result.root_cause
    assert "CreateContainerConfigError" not in result.root_cause
    # the run's timeline: redis failed, the components waited on its Secret, the rest became Healthy
    spans = {span.name: span for span in result.timeline}
    assert spans["Deployment argocd-redis"].state == "failed"
    for waiter, kind in (("argocd-server", "Deployment"), ("argocd-repo-server", "Deployment"),
                         ("argocd-application-controller", "StatefulSet")):
        assert spans[f"{kind} {waiter} waits for Secret argocd-redis"].state == "waiting"
    assert spans["Deployment argocd-dex-server"].state == "ok"
    assert spans["Deployment argocd-dex-server"].end_s < spans["Deployment argocd-redis"].end_s <= result.elapsed_s
    assert len(spans) == len([o for o in candidate if o.kind in ("Deployment", "StatefulSet")])
