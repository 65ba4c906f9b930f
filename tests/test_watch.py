"""Acceptance: the real install + wait + diagnose code over HTTP against the API double (real kubernetes client)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
