"""Scenario: the Argo CD v2.11.1 outage replayed as a watch timeline (synthetic clock), and its fixed twin.

Broken: argocd-redis' init container secret-init cannot reach the API (NetworkPolicy allows only port 53), times
out ("dial tcp 10.96.0.1:443: i/o timeout") and restarts with kubelet back-off, while argocd-server, repo-server
and the application controller sit in CreateContainerConfigError waiting for the Secret secret-init would create.
The engine must stop within 3 restarts, blame secret-init of argocd-redis, and not blame the waiting components
(whose 60 s grace expires long before). Fixed: secret-init succeeds after 5 s, the components start: Healthy,
no fail-fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from validator.failfast import FailFast, Terminal, culprits
from validator.health import HealthStatus, aggregate, assess, explain, object_ref
from validator.manifests import containers_of, load_bundle, pod_spec, read_bounded

from .conftest import real_manifest

NS = "argocd"
TIMEOUT = "dial tcp 10.96.0.1:443: i/o timeout"
MISSING = 'secret "argocd-redis" not found'
RUNNING = {"running": {"startedAt": "2024-05-16T00:00:00Z"}}
# Component Deployments (and the controller's StatefulSet) that read Secret argocd-redis through env secretKeyRef.
WAITERS = {"argocd-server": "Deployment", "argocd-repo-server": "Deployment",
           "argocd-application-controller": "StatefulSet"}


def _pod(name: str, owner_kind: str, owner: str, template_hash: str | None, status: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "uid": f"uid-{name}",
                            "ownerReferences": [{"kind": owner_kind, "name": owner, "controller": True}]}
    if template_hash:
        meta["labels"] = {"pod-template-hash": template_hash}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"restartPolicy": "Always"},
            "status": status}


def redis_pod(init: dict[str, Any], main: dict[str, Any], phase: str = "Pending",
              ready: bool = False) -> dict[str, Any]:
    status = {"phase": phase, "initContainerStatuses": [{"name": "secret-init", **init}],
              "containerStatuses": [{"name": "redis", **main}],
              "conditions": [{"type": "PodScheduled", "status": "True"},
                             {"type": "Ready", "status": "True" if ready else "False"}]}
    return _pod("argocd-redis-6b9f7c5d8-xk2lp", "ReplicaSet", "argocd-redis-6b9f7c5d8", "6b9f7c5d8", status)


def waiter_pod(component: str, state: dict[str, Any], phase: str = "Pending", ready: bool = False) -> dict[str, Any]:
    kind = WAITERS[component]
    if kind == "StatefulSet":
        name, owner_kind, owner, template = f"{component}-0", "StatefulSet", component, None
    else:
        name, owner_kind, owner, template = f"{component}-7d9c6f-abcde", "ReplicaSet", f"{component}-7d9c6f", "7d9c6f"
    status = {"phase": phase, "containerStatuses": [{"name": component.removeprefix("argocd-"), **state}],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return _pod(name, owner_kind, owner, template, status)


def workload(name: str, kind: str, ready: int) -> dict[str, Any]:
    meta = {"name": name, "namespace": NS, "generation": 1, "uid": f"uid-{name}"}
    if kind == "StatefulSet":
        status = {"observedGeneration": 1, "replicas": 1, "readyReplicas": ready, "updatedReplicas": 1,
                  "currentReplicas": 1, "currentRevision": f"{name}-1", "updateRevision": f"{name}-1"}
        spec: dict[str, Any] = {"replicas": 1, "updateStrategy": {"type": "RollingUpdate",
                                                                  "rollingUpdate": {"partition": 0}}}
    else:
        status = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": ready,
                  "availableReplicas": ready,
                  "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}
        spec = {"replicas": 1}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec, "status": status}


def config_error() -> dict[str, Any]:
    return {"restartCount": 0, "ready": False,
            "state": {"waiting": {"reason": "CreateContainerConfigError", "message": MISSING}}}


FAILED_RUN = {"exitCode": 1, "reason": "Error", "message": TIMEOUT,
              "startedAt": "2024-05-16T00:00:00Z", "finishedAt": "2024-05-16T00:00:30Z"}


def secret_init_broken(t: float) -> dict[str, Any]:
    """Kubelet's real cadence: each attempt times out after 30 s, then back-off 10 s, 20 s, 40 s, ... ."""
    start, failures = 0.0, 0
    while True:
        end = start + 30
        if t < end:
            state: dict[str, Any] = {"restartCount": failures, "ready": False, "state": RUNNING}
            if failures:
                state["lastState"] = {"terminated": FAILED_RUN}
            return state
        failures += 1
        backoff = min(10 * 2 ** (failures - 1), 300)
        if t < end + backoff:
            return {"restartCount": failures, "ready": False, "lastState": {"terminated": FAILED_RUN},
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                                          "message": f"back-off {backoff}s restarting failed container=secret-init "
                                                     "pod=argocd-redis-6b9f7c5d8-xk2lp_argocd(1f0e)"}}}
        start = end + backoff


def broken_timeline(step: float = 5, until: float = 600) -> Iterator[tuple[float, dict[str, Any]]]:
    t = 0.0
    while t <= until:
        yield t, redis_pod(secret_init_broken(t), {"restartCount": 0, "ready": False,
                                                    "state": {"waiting": {"reason": "PodInitializing"}}})
        for component, kind in WAITERS.items():
            if t >= 2:
                yield t + 0.5, waiter_pod(component, config_error())
            yield t + 0.6, workload(component, kind, 0)
        yield t + 0.7, workload("argocd-redis", "Deployment", 0)
        t += step


def fixed_timeline(step: float = 1, until: float = 120) -> Iterator[tuple[float, dict[str, Any]]]:
    t = 0.0
    while t <= until:
        if t < 5:
            init = {"restartCount": 0, "ready": False, "state": RUNNING}
            main = {"restartCount": 0, "ready": False, "state": {"waiting": {"reason": "PodInitializing"}}}
            yield t, redis_pod(init, main)
        else:
            done = {"restartCount": 0, "ready": True, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            yield t, redis_pod(done, {"restartCount": 0, "ready": t >= 8, "state": RUNNING}, "Running", t >= 8)
        for component, kind in WAITERS.items():
            if 2 <= t < 12:  # kubelet retries config errors on its own sync period after the Secret appears at 5 s
                yield t + 0.5, waiter_pod(component, config_error())
            elif t >= 12:
                up = t >= 20
                yield t + 0.5, waiter_pod(component, {"restartCount": 0, "ready": up, "state": RUNNING}, "Running", up)
            yield t + 0.6, workload(component, kind, int(t >= 21))
        yield t + 0.7, workload("argocd-redis", "Deployment", int(t >= 9))
        t += step


def run(timeline: Iterator[tuple[float, dict[str, Any]]]) -> tuple[float, Terminal, dict[str, dict[str, Any]]] | None:
    ff = FailFast()
    latest: dict[str, dict[str, Any]] = {}
    for now, live in timeline:
        latest[object_ref(live)] = live
        terminal = ff.observe(live, now)
        if terminal is not None:
            return now, terminal, latest
    return None


def test_broken_v2_11_1_redis_is_terminal_within_three_restarts_and_blames_secret_init() -> None:
    hit = run(broken_timeline())
    assert hit is not None, "fail-fast never fired"
    now, terminal, latest = hit
    # Waiting components' 60 s grace expired at ~62 s; the verdict still waited for the real culprit.
    assert now > 62
    assert now <= 125  # third failure at 120 s (30 s attempts, back-off 10 s and 20 s), observed every 5 s
    assert terminal.object == "Pod/argocd/argocd-redis-6b9f7c5d8-xk2lp"
    assert terminal.container == "secret-init" and terminal.init_container
    assert terminal.owner == "Deployment/argocd/argocd-redis"
    assert terminal.reason == "CrashLoopBackOff"
    assert terminal.message == TIMEOUT
    assert terminal.root_cause == (
        "Pod/argocd/argocd-redis-6b9f7c5d8-xk2lp (init container secret-init of Deployment/argocd/argocd-redis): "
        f'CrashLoopBackOff after 3 restarts, last exit code 1: "{TIMEOUT}"')
    assert terminal.evidence["restarts"] <= 3
    for component in WAITERS:
        assert component not in terminal.root_cause
    # The waiting components are listed as collateral evidence, not as the cause.
    assert any("argocd-server" in line and "CreateContainerConfigError" in line
               for line in terminal.evidence["also_failing"])
    # Argo CD's own verdicts at that moment: the redis pod and every Deployment still read Progressing...
    redis = latest["Pod/argocd/argocd-redis-6b9f7c5d8-xk2lp"]
    assert assess(redis).status is HealthStatus.PROGRESSING
    workloads = [(ref, assess(o)) for ref, o in latest.items() if o["kind"] != "Pod"]
    assert aggregate(workloads).status is HealthStatus.PROGRESSING
    # ...while our strict view names the init container, and the waiting pods read Degraded by Argo's own rule.
    strict = assess(redis, strict=True)
    assert strict.status is HealthStatus.DEGRADED and 'init container "secret-init"' in strict.message
    assert TIMEOUT in (explain(redis, strict) or "")


def test_broken_timeline_without_the_dependency_rule_would_blame_a_waiting_component() -> None:
    """Guards the test above: the waiting pods alone do trip the 60 s grace when nothing else is going on."""
    ff = FailFast()
    fired = [ff.observe(live, now) for now, live in broken_timeline(until=120) if live["kind"] == "Pod"
             and "redis" not in live["metadata"]["name"]]
    first = next(t for t in fired if t is not None)
    assert first.reason == "CreateContainerConfigError"
    assert first.root_cause.startswith("Pod/argocd/argocd-server-7d9c6f-abcde (container server of "
                                       "Deployment/argocd/argocd-server): CreateContainerConfigError for 6")


def test_fixed_timeline_is_healthy_with_no_fail_fast() -> None:
    ff = FailFast()
    latest: dict[str, dict[str, Any]] = {}
    for now, live in fixed_timeline():
        latest[object_ref(live)] = live
        assert ff.observe(live, now) is None, (now, object_ref(live))
    final = aggregate((ref, assess(o, strict=True)) for ref, o in latest.items())
    assert final.status is HealthStatus.HEALTHY, final
    assert final.assessed == len(latest) == 8


def test_scenario_models_the_real_manifest() -> None:
    """The facts the scenario relies on, read from upstream v2.11.2 (same layout as v2.11.1)."""
    path = real_manifest("v2.11.2/install.yaml")
    bundle = load_bundle(read_bounded(path), str(path))
    redis = bundle.get("Deployment", "argocd-redis")
    assert redis is not None
    inits = [c["name"] for section, c in containers_of(pod_spec(redis) or {}) if section == "initContainers"]
    assert "secret-init" in inits
    for component, kind in WAITERS.items():
        found = bundle.get(kind, component)
        assert found is not None, component
        refs = [
            env["valueFrom"]["secretKeyRef"]["name"]
            for section, c in containers_of(pod_spec(found) or {}) if section == "containers"
            for env in c.get("env", [])
            if "secretKeyRef" in (env.get("valueFrom") or {})
        ]
        assert "argocd-redis" in refs, component


def test_culprits_name_the_producer_before_the_pods_waiting_for_its_secret() -> None:
    """One order for the live suspect and the diagnosis: secret-init's pod first, the pods that only wait for the
    Secret it would create after it, whatever order they come in."""
    initializing = {"restartCount": 0, "ready": False, "state": {"waiting": {"reason": "PodInitializing"}}}
    waiters = [waiter_pod(component, config_error()) for component in WAITERS]
    for t in (35.0, 45.0):  # in back-off, and running again after a failed attempt
        redis = redis_pod(secret_init_broken(t), initializing)
        producers, victims = culprits([*waiters, redis])
        assert producers == [redis] and victims == waiters, t
    healthy = waiter_pod("argocd-server", {"restartCount": 0, "ready": True, "state": RUNNING}, "Running", True)
    assert culprits([healthy]) == ([], [])
    # a fail-fast Terminal's pod leads the producers
    other = redis_pod(secret_init_broken(35.0), initializing)
    other["metadata"]["name"] = "argocd-redis-6b9f7c5d8-other"
    assert culprits([redis, other], first=object_ref(other))[0] == [other, redis]


def test_live_suspect_is_the_producer_once_it_fails() -> None:
    """The watcher's suspect (progress lines, a timed-out root cause) follows culprits: the waiting pods are Degraded
    as much as redis' pod, but they are named only while nothing else visibly fails."""
    from validator.failfast import Thresholds
    from validator.manifests import Bundle
    from validator.watch import _State

    state = _State(Bundle([]), Thresholds(), started=0.0)
    waiters = [waiter_pod(component, config_error()) for component in WAITERS]
    for pod in waiters:
        state.upsert(pod, 5.0)
    initializing = {"restartCount": 0, "ready": False, "state": {"waiting": {"reason": "PodInitializing"}}}
    state.upsert(redis_pod(secret_init_broken(5.0), initializing), 5.0)  # secret-init still on its first attempt
    early = state.suspect() or ""
    assert "CreateContainerConfigError" in early and "argocd-redis-6b9f7c5d8-xk2lp still initializing" in early
    state.upsert(redis_pod(secret_init_broken(35.0), initializing), 35.0)  # it failed: the cause is visible
    assert (state.suspect() or "").startswith("Pod/argocd/argocd-redis-6b9f7c5d8-xk2lp (init container secret-init "
                                              "of Deployment/argocd/argocd-redis): CrashLoopBackOff")
