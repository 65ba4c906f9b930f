"""Fail-fast policy (§6): each rule at its threshold (not a second earlier), configuration, history, dependents,
and the property that a history showing only progress never fires. Times are synthetic `now` values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validator.errors import InputError
from validator.failfast import RULES, FailFast, Terminal, Thresholds, signals

from .test_health_vectors import cond, obj


def first_terminal(timeline: Iterable[tuple[float, dict[str, Any]]], ff: FailFast | None = None
                   ) -> tuple[float, Terminal] | None:
    ff = ff or FailFast()
    for now, live in timeline:
        terminal = ff.observe(live, now)
        if terminal is not None:
            return now, terminal
    return None


def pod(name: str = "web-0", phase: str = "Pending", init: list[dict[str, Any]] | None = None,
        containers: list[dict[str, Any]] | None = None, conditions: list[dict[str, Any]] | None = None,
        owner: tuple[str, str] | None = ("StatefulSet", "web"), **status: Any) -> dict[str, Any]:
    st_: dict[str, Any] = {"phase": phase, **status}
    if init is not None:
        st_["initContainerStatuses"] = init
    if containers is not None:
        st_["containerStatuses"] = containers
    if conditions is not None:
        st_["conditions"] = conditions
    meta: dict[str, Any] = {"uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return obj("v1", "Pod", name=name, spec={"restartPolicy": "Always"}, status=st_, **meta)


def wait(reason: str, message: str = "", name: str = "app", restarts: int = 0,
         last: dict[str, Any] | None = None) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": name, "restartCount": restarts, "ready": False,
                          "state": {"waiting": {"reason": reason, "message": message}}}
    if last is not None:
        cs["lastState"] = {"terminated": last}
    return cs


def steady(live: dict[str, Any], *times: float) -> list[tuple[float, dict[str, Any]]]:
    return [(t, live) for t in times]


# ---------------------------------------------------------------- immediate rules

IMMEDIATE = [
    ("job-failed", obj("batch/v1", "Job", status={"conditions": [
        cond("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]}),
     "BackoffLimitExceeded"),
    ("progress-deadline", obj("apps/v1", "Deployment", name="web", gen=1, spec={"replicas": 1}, status={
        "observedGeneration": 1, "conditions": [
            cond("Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "web-1" has timed out.')]}),
     "ProgressDeadlineExceeded"),
    ("crd-names", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", status={"conditions": [
        cond("NamesAccepted", "False", "PluralConflict", "taken")]}), "PluralConflict"),
    ("crd-schema", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", status={"conditions": [
        cond("NonStructuralSchema", "True", "Violations", "bad")]}), "Violations"),
    ("pvc-lost", obj("v1", "PersistentVolumeClaim", status={"phase": "Lost"}), "Lost"),
    ("hpa", obj("autoscaling/v2", "HorizontalPodAutoscaler", status={"conditions": [
        cond("AbleToScale", "False", "FailedGetScale", "no such deployment")]}), "FailedGetScale"),
    ("standalone-failed", pod(phase="Failed", owner=None, containers=[
        {"name": "app", "state": {"terminated": {"exitCode": 2}}}]), "Failed"),
    ("invalid-image-init", pod(init=[wait("InvalidImageName", 'couldn\'t parse image "Bad:Name"', "setup")]),
     "InvalidImageName"),
    ("never-pull", pod(containers=[wait("ErrImageNeverPull", "image not present with pull policy Never")]),
     "ErrImageNeverPull"),
    ("pull-not-found", pod(containers=[wait("ErrImagePull", 'quay.io/argoproj/argocd:v9: not found')]),
     "ErrImagePull"),
    ("pull-manifest-unknown", pod(containers=[wait("ErrImagePull", "manifest unknown: manifest unknown")]),
     "ErrImagePull"),
    ("pull-unauthorized", pod(containers=[wait("ErrImagePull", "401 Unauthorized")]), "ErrImagePull"),
    ("crashloop-at-threshold", pod(containers=[wait("CrashLoopBackOff", "back-off 40s", restarts=3,
                                                    last={"exitCode": 1})]), "CrashLoopBackOff"),
]


@pytest.mark.parametrize(("case", "live", "reason"), IMMEDIATE, ids=[c[0] for c in IMMEDIATE])
def test_immediate_rules_fire_on_first_sight(case: str, live: dict[str, Any], reason: str) -> None:
    hit = first_terminal([(100.0, live)])
    assert hit is not None, case
    assert hit[1].reason == reason
    assert hit[1].root_cause.startswith(hit[1].object)


NEVER_ALONE = [
    ("paused-deadline", obj("apps/v1", "Deployment", gen=1, spec={"paused": True}, status={
        "observedGeneration": 1, "conditions": [cond("Progressing", "Unknown", "ProgressDeadlineExceeded")]})),
    ("job-pod-failed", pod(phase="Failed", owner=("Job", "migrate"))),
    ("evicted", pod(phase="Failed", owner=None, reason="Evicted", message="The node was low on resource")),
    ("cache-sync", pod(containers=[wait("CreateContainerConfigError", "failed to sync secret cache: timed out")])),
    ("cannot-run-128", pod(containers=[{"name": "app", "restartCount": 0, "state": {"terminated": {
        "reason": "ContainerCannotRun", "exitCode": 128}}}])),
    ("restarted-twice", pod(phase="Running", containers=[{"name": "app", "restartCount": 2, "ready": False,
                                                          "state": {"running": {}},
                                                          "lastState": {"terminated": {"exitCode": 137}}}])),
    ("lb-service", obj("v1", "Service", spec={"type": "LoadBalancer"}, status={"loadBalancer": {}})),
    ("ingress", obj("networking.k8s.io/v1", "Ingress", status={})),
    ("crd-installing", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", status={"conditions": [
        cond("Established", "False", "Installing")]})),
]


@pytest.mark.parametrize(("case", "live"), NEVER_ALONE, ids=[c[0] for c in NEVER_ALONE])
def test_not_terminal_however_long(case: str, live: dict[str, Any]) -> None:
    assert first_terminal(steady(live, 0, 60, 600, 3600, 86_400)) is None


# ---------------------------------------------------------------- grace periods, exactly at the boundary

GRACED = [
    ("image-pull", pod(containers=[wait("ImagePullBackOff", 'Back-off pulling image "registry.local/x:1"')]), 90),
    ("config-error", pod(containers=[wait("CreateContainerConfigError", 'secret "db" not found')]), 60),
    ("create-error", pod(containers=[wait("CreateContainerError", 'configmap "cm" not found')]), 60),
    ("run-error", pod(containers=[wait("RunContainerError", "exec: not a file")]), 30),
    ("cannot-run", pod(containers=[{"name": "app", "restartCount": 0, "state": {"terminated": {
        "reason": "ContainerCannotRun", "exitCode": 1, "message": "oci runtime error"}}}]), 30),
    ("unschedulable", pod(conditions=[cond("PodScheduled", "False", "Unschedulable", "0/1 nodes are available")]), 60),
    ("crashloop-backoff-time", pod(containers=[wait("CrashLoopBackOff", "back-off", restarts=1,
                                                    last={"exitCode": 1})]), 120),
    ("rs-replica-failure", obj("apps/v1", "ReplicaSet", gen=1, status={"observedGeneration": 1, "conditions": [
        cond("ReplicaFailure", "True", "FailedCreate", "exceeded quota")]}), 30),
    ("deploy-replica-failure", obj("apps/v1", "Deployment", gen=1, status={"observedGeneration": 1, "conditions": [
        cond("ReplicaFailure", "True", "FailedCreate", 'pods "x" is forbidden: violates PodSecurity')]}), 30),
]


@pytest.mark.parametrize(("case", "live", "grace"), GRACED, ids=[c[0] for c in GRACED])
def test_graced_rules_fire_exactly_at_their_grace(case: str, live: dict[str, Any], grace: float) -> None:
    base = 1000.0
    assert first_terminal(steady(live, base, base + grace - 0.001)) is None
    hit = first_terminal(steady(live, base, base + grace - 0.001, base + grace))
    assert hit is not None and hit[0] == base + grace
    assert f"for {grace:.0f} s" in hit[1].root_cause or "restarts" in hit[1].root_cause


def test_thresholds_are_configuration() -> None:
    crash = pod(containers=[wait("CrashLoopBackOff", restarts=3, last={"exitCode": 1})])
    patient = FailFast(Thresholds(crashloop_restarts=5, crashloop_backoff_s=1000))
    assert first_terminal(steady(crash, 0, 10), patient) is None
    config = pod(containers=[wait("CreateContainerConfigError", 'secret "db" not found')])
    assert first_terminal(steady(config, 0, 5), FailFast(Thresholds(config_error_grace_s=5))) is not None
    assert {r.grace for r in RULES.values() if r.grace} <= set(Thresholds.__dataclass_fields__)


def test_pull_error_families_share_one_clock() -> None:
    err = pod(containers=[wait("ErrImagePull", "rpc error: connection refused")])
    backoff = pod(containers=[wait("ImagePullBackOff", 'Back-off pulling image "x"')])
    hit = first_terminal([(0, err), (20, backoff), (40, err), (60, backoff), (89, err), (90, backoff)])
    assert hit is not None and hit[0] == 90


def test_a_signal_that_clears_restarts_its_grace() -> None:
    bad = pod(containers=[wait("CreateContainerConfigError", 'secret "db" not found')])
    ok = pod(containers=[{"name": "app", "restartCount": 0, "ready": False, "state": {"running": {}}}])
    assert first_terminal([(0, bad), (50, ok), (55, bad), (110, bad)]) is None
    assert first_terminal([(0, bad), (50, ok), (55, bad), (115, bad)]) is not None


def test_restart_count_threshold_counts_slow_crashes() -> None:
    live = pod(phase="Running", containers=[{"name": "app", "restartCount": 3, "ready": False,
                                             "state": {"running": {}},
                                             "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}])
    hit = first_terminal([(0, live)])
    assert hit is not None
    assert hit[1].reason == "OOMKilled"
    assert "after 3 restarts, last exit code 137 (OOMKilled)" in hit[1].root_cause


def test_forget_drops_history() -> None:
    ff = FailFast()
    bad = pod(containers=[wait("CreateContainerConfigError", 'secret "db" not found')])
    assert ff.observe(bad, 0) is None
    assert ff.history(bad)
    ff.forget(bad)
    assert ff.history(bad) == {}
    assert ff.observe(bad, 61) is None  # a recreated object starts its grace afresh
    assert ff.observe(bad, 121) is not None


def test_malformed_objects_give_no_signal() -> None:
    assert signals(obj("v1", "Pod", status={"phase": "Pending", "containerStatuses": [{"restartCount": "x"}]})) == []
    assert signals({"kind": "Pod"}) == []


# ---------------------------------------------------------------- dependents wait for busy producers

def test_config_error_waits_while_another_pod_initializes_but_not_forever() -> None:
    ff = FailFast()
    producer = pod("redis-0", init=[{"name": "secret-init", "restartCount": 0, "ready": False,
                                     "state": {"running": {}}}])
    consumer = pod("server-0", containers=[wait("CreateContainerConfigError", 'secret "argocd-redis" not found')])
    for t in range(0, 360, 10):
        assert ff.observe(producer, t) is None
        assert ff.observe(consumer, t + 1) is None, t
    assert ff.observe(consumer, 360) is None  # first seen at 1: grace 60 + bounded extra wait 300
    hit = ff.observe(consumer, 361)
    assert hit is not None and hit.container == "app"
    assert "CreateContainerConfigError for 360 s" in hit.root_cause
    assert hit.evidence["busy_producers"] == ["Pod/argocd/redis-0"]


def test_config_error_gets_a_fresh_grace_after_the_producer_finishes() -> None:
    ff = FailFast()
    busy = pod("redis-0", init=[{"name": "secret-init", "restartCount": 0, "ready": False,
                                 "state": {"running": {}}}])
    done = pod("redis-0", init=[{"name": "secret-init", "restartCount": 0, "ready": True,
                                 "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}])
    consumer = pod("server-0", containers=[wait("CreateContainerConfigError", 'secret "argocd-redis" not found')])
    assert ff.observe(busy, 0) is None
    assert ff.observe(consumer, 1) is None
    assert ff.observe(busy, 100) is None
    assert ff.observe(consumer, 100) is None  # grace long over, but the producer was busy until now
    assert ff.observe(done, 101) is None
    assert ff.observe(consumer, 159) is None  # kubelet gets a full grace to retry after the producer finished
    assert ff.observe(consumer, 160) is not None


# ---------------------------------------------------------------- property: progress never fires

def _progress_states(name: str) -> list[dict[str, Any]]:
    """The states a healthy pod passes through, in order."""
    running = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    return [
        pod(name, conditions=[cond("PodScheduled", "True")]),
        pod(name, init=[{"name": "init", "restartCount": 0, "ready": False, "state": running}],
            containers=[wait("PodInitializing", name="app")]),
        pod(name, init=[{"name": "init", "restartCount": 0, "ready": True,
                         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            containers=[wait("ContainerCreating", name="app")]),
        pod(name, phase="Running", containers=[{"name": "app", "restartCount": 0, "ready": False,
                                                "state": running}]),
        pod(name, phase="Running", containers=[{"name": "app", "restartCount": 0, "ready": True, "state": running}],
            conditions=[cond("Ready", "True")]),
    ]


def _deploy_states(name: str) -> list[dict[str, Any]]:
    def d(og: int, updated: int, avail: int, reason: str) -> dict[str, Any]:
        return obj("apps/v1", "Deployment", name=name, gen=1, spec={"replicas": 2}, status={
            "observedGeneration": og, "replicas": updated, "updatedReplicas": updated, "availableReplicas": avail,
            "conditions": [cond("Progressing", "True", reason)]}, uid=f"uid-{name}")
    return [d(0, 0, 0, "NewReplicaSetCreated"), d(1, 1, 0, "ReplicaSetUpdated"), d(1, 2, 1, "ReplicaSetUpdated"),
            d(1, 2, 2, "NewReplicaSetAvailable")]


def _other_states(name: str) -> list[dict[str, Any]]:
    crd = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
    return [obj(*crd, name=name, status={}),
            obj(*crd, name=name, status={"conditions": [cond("Established", "False", "Installing")]}),
            obj(*crd, name=name, status={"conditions": [cond("Established", "True", "InitialNamesAccepted")]}),
            obj("batch/v1", "Job", name=name, status={"active": 1}),
            obj("batch/v1", "Job", name=name, status={"conditions": [cond("Complete", "True")]})]


LINES = [_progress_states, _deploy_states, _other_states]


@st.composite
def progress_histories(draw: st.DrawFn) -> list[tuple[float, dict[str, Any]]]:
    """Several objects, each observed along its own monotone path of progress, interleaved, at arbitrary times."""
    n = draw(st.integers(1, 4))
    cursors = []
    for i in range(n):
        states = draw(st.sampled_from(LINES))(f"o{i}")
        steps = draw(st.lists(st.integers(0, 2), min_size=1, max_size=12))  # 0 = observe again, else advance
        cursors.append((states, steps))
    events: list[tuple[int, dict[str, Any]]] = []
    for idx, (states, steps) in enumerate(cursors):
        pos = 0
        for step in steps:
            pos = min(pos + (step > 0), len(states) - 1)
            events.append((idx, states[pos]))
    order = draw(st.permutations(range(len(events))))
    # keep each object's own sequence in order while interleaving objects
    per_object: dict[int, list[dict[str, Any]]] = {}
    for idx, live in events:
        per_object.setdefault(idx, []).append(live)
    timeline: list[tuple[float, dict[str, Any]]] = []
    now = 0.0
    for k in order:
        idx = events[k][0]
        if per_object[idx]:
            now += draw(st.floats(0, 900))
            timeline.append((now, per_object[idx].pop(0)))
    return timeline


@settings(max_examples=200, deadline=None)
@given(progress_histories())
def test_failfast_never_fires_on_progress(timeline: list[tuple[float, dict[str, Any]]]) -> None:
    assert first_terminal(timeline) is None


def test_terminating_objects_give_no_signal() -> None:
    going = pod(phase="Running", containers=[{"name": "app", "restartCount": 5, "ready": False,
                                              "state": {"terminated": {"exitCode": 143}},
                                              "lastState": {"terminated": {"exitCode": 137}}}])
    assert signals(going)
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert signals(going) == []


def test_malformed_container_lists_give_no_signal() -> None:
    assert signals(obj("v1", "Pod", status={"phase": "Pending", "containerStatuses": "nope"})) == []
    assert signals(obj("batch/v1", "Job", status={"conditions": {"type": "Failed"}})) == []


def test_thresholds_from_configuration() -> None:
    th = Thresholds.from_mapping({"crashloop_restarts": 5, "config_error_grace_s": 90.5})
    assert (th.crashloop_restarts, th.config_error_grace_s, th.image_pull_grace_s) == (5, 90.5, 90)
    for bad in ({"crashloop": 3}, {"image_pull_grace_s": -1}, {"image_pull_grace_s": "90"},
                {"crashloop_restarts": 0}, {"crashloop_restarts": 2.5}, {"unschedulable_grace_s": True}, [1]):
        with pytest.raises(InputError) as err:
            Thresholds.from_mapping(bad)  # type: ignore[arg-type]
        assert "\n" not in str(err.value)


def test_replicaset_failures_name_their_deployment() -> None:
    refused = 'pods "argocd-server-7d9c6f-" is forbidden: violates PodSecurity'
    rs = obj("apps/v1", "ReplicaSet", name="argocd-server-7d9c6f", gen=1, status={
        "observedGeneration": 1, "conditions": [cond("ReplicaFailure", "True", "FailedCreate", refused)]},
        ownerReferences=[{"kind": "Deployment", "name": "argocd-server", "controller": True}])
    hit = first_terminal(steady(rs, 0, 30))
    assert hit is not None
    assert hit[1].owner == "Deployment/argocd/argocd-server"
    assert hit[1].root_cause == (
        "ReplicaSet/argocd/argocd-server-7d9c6f (of Deployment/argocd/argocd-server): FailedCreate for 30 s: "
        """'pods "argocd-server-7d9c6f-" is forbidden: violates PodSecurity'""")


def test_backoff_time_counts_only_continuous_back_off() -> None:
    """'120 s in back-off' is time spent in one back-off, not since the first crash: slow starters that need a
    couple of restarts are judged by the restart threshold (3), as the spec intends."""
    last = {"exitCode": 137, "reason": "Error"}
    backoff = pod(containers=[wait("CrashLoopBackOff", "back-off 20s", restarts=2, last=last)])
    running = pod(phase="Running", containers=[{"name": "app", "restartCount": 2, "ready": False,
                                                "state": {"running": {}}, "lastState": {"terminated": last}}])
    assert first_terminal([(0, backoff), (20, running), (100, running), (110, backoff), (200, backoff)]) is None
    hit = first_terminal([(0, backoff), (20, running), (110, backoff), (230, backoff)])
    assert hit is not None and "CrashLoopBackOff for 120 s" in hit[1].root_cause


# ---------------------------------------------------------------- environment trouble: not the candidate (exit 2)

QUAY = "quay.io/argoproj/argocd:v3.5.1"
NO_SUCH_HOST = "dial tcp: lookup quay.io: no such host"


def pulling(reason: str, message: str) -> dict[str, Any]:
    return pod(containers=[{**wait(reason, message), "image": QUAY}])


def test_a_pull_the_network_fails_is_an_environmental_terminal() -> None:
    live = pulling("ImagePullBackOff", f'Back-off pulling image "{QUAY}": ErrImagePull: {NO_SUCH_HOST}')
    hit = first_terminal(steady(live, 0, 45, 91))
    assert hit is not None and hit[0] == 91
    assert (hit[1].environment, hit[1].evidence["image"]) == ("DNS failure", QUAY)
    assert hit[1].root_cause.startswith(f'DNS failure: {hit[1].object} (container app of StatefulSet/')
    assert f'cannot pull "{QUAY}" (ImagePullBackOff for 91 s): ' in hit[1].root_cause
    assert hit[1].root_cause.endswith(f"{NO_SUCH_HOST}'")


def test_the_pull_error_survives_a_bare_back_off_message() -> None:
    """Before Kubernetes 1.32 the ImagePullBackOff message is only 'Back-off pulling image "x"': the last
    ErrImagePull message says why, and decides."""
    err = pulling("ErrImagePull", f"failed to pull and unpack image {QUAY!r}: {NO_SUCH_HOST}")
    backoff = pulling("ImagePullBackOff", f'Back-off pulling image "{QUAY}"')
    hit = first_terminal([(0, err), (30, backoff), (60, err), (90, backoff)])
    assert hit is not None and hit[1].reason == "ImagePullBackOff"
    assert hit[1].environment == "DNS failure" and hit[1].message == err["status"]["containerStatuses"][0][
        "state"]["waiting"]["message"]


def test_pull_answers_and_unknown_pull_errors_stay_the_candidates() -> None:
    """Not found is immediate and the candidate's; an unrecognised pull error waits its grace and, failing
    closed towards what was observed (a workload that cannot start), is the candidate's too."""
    hit = first_terminal([(0, pulling("ErrImagePull", f"{QUAY}: not found"))])
    assert hit is not None and hit[0] == 0 and hit[1].environment is None
    forbidden = pulling("ErrImagePull", "unexpected status from HEAD request to https://quay.io/v2/: 403 Forbidden")
    hit = first_terminal(steady(forbidden, 0, 90))
    assert hit is not None and hit[1].environment is None and "image" not in hit[1].evidence
    assert ": ErrImagePull for 90 s: " in hit[1].root_cause
