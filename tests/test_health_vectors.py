"""The 40 test vectors of health-rules.md §7, table-driven: live object in, Argo CD v3.5 verdict and message out."""

from __future__ import annotations

from typing import Any

import pytest

from validator.health import Health, HealthStatus, KResult, KStatus, assess, kstatus

H, S, P, D, U = (HealthStatus.HEALTHY, HealthStatus.SUSPENDED, HealthStatus.PROGRESSING, HealthStatus.DEGRADED,
                 HealthStatus.UNKNOWN)


def obj(api: str, kind: str, name: str = "x", gen: int | None = None, spec: dict[str, Any] | None = None,
        status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "argocd", **meta}
    if gen is not None:
        metadata["generation"] = gen
    out: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": metadata}
    if spec is not None:
        out["spec"] = spec
    if status is not None:
        out["status"] = status
    return out


def cond(ctype: str, status: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    out = {"type": ctype, "status": status}
    if reason is not None:
        out["reason"] = reason
    if message is not None:
        out["message"] = message
    return out


def deploy(**kw: Any) -> dict[str, Any]:
    return obj("apps/v1", "Deployment", **kw)


def sts(**kw: Any) -> dict[str, Any]:
    return obj("apps/v1", "StatefulSet", **kw)


def ds(**kw: Any) -> dict[str, Any]:
    return obj("apps/v1", "DaemonSet", **kw)


def pod(policy: str, phase: str, containers: list[dict[str, Any]] | None = None,
        init: list[dict[str, Any]] | None = None, conditions: list[dict[str, Any]] | None = None,
        **meta: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if containers is not None:
        status["containerStatuses"] = containers
    if init is not None:
        status["initContainerStatuses"] = init
    if conditions is not None:
        status["conditions"] = conditions
    return obj("v1", "Pod", spec={"restartPolicy": policy}, status=status, **meta)


def waiting(reason: str, message: str | None = None, name: str = "app", **extra: Any) -> dict[str, Any]:
    w: dict[str, Any] = {"reason": reason}
    if message is not None:
        w["message"] = message
    return {"name": name, "state": {"waiting": w}, **extra}


STS_BASE = {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}
STS_STATUS = {"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3, "currentReplicas": 3, "replicas": 3}
CRASH_MSG = "back-off 1m20s restarting failed container=app pod=web-0_argocd(1234)"
HPA_ABLE = cond("AbleToScale", "True", "SucceededGetScale",
                "the HPA controller was able to get the target's current scale")
HPA_METRIC = cond("ScalingActive", "False", "FailedGetResourceMetric",
                  "the HPA was unable to compute the replica count: failed to get cpu utilization")

VECTORS: list[tuple[str, dict[str, Any], HealthStatus | None, str]] = [
    ("T1", deploy(gen=2, spec={"replicas": 3}, status={
        "observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
        "conditions": [cond("Available", "True"), cond("Progressing", "True", "NewReplicaSetAvailable")]}), H, ""),
    ("T2", deploy(gen=1, spec={"replicas": 3}, status={
        "observedGeneration": 1, "replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3}),
     P, "Waiting for rollout to finish: 1 out of 3 new replicas have been updated..."),
    ("T3", deploy(gen=1, spec={"replicas": 3}, status={
        "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}),
     P, "Waiting for rollout to finish: 2 of 3 updated replicas are available..."),
    ("T4", deploy(gen=5, spec={"replicas": 3}, status={
        "observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}),
     P, "Waiting for rollout to finish: observed deployment generation less than desired generation"),
    ("T5", deploy(gen=3, spec={"paused": True, "replicas": 3}, status={
        "observedGeneration": 3, "replicas": 3, "updatedReplicas": 1}), S, "Deployment is paused"),
    ("T6", deploy(gen=3, spec={"paused": True, "replicas": 3, "progressDeadlineSeconds": 600}, status={
        "observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
        "conditions": [cond("Available", "True"), cond("Progressing", "Unknown", "DeploymentPaused")]}),
     S, "Deployment is paused"),
    ("T7", deploy(name="web", gen=1, spec={"replicas": 1}, status={
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0,
        "conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "web-1" has timed out')]}),
     D, 'Deployment "web" exceeded its progress deadline'),
    ("T8", obj("apps/v1", "ReplicaSet", gen=1, spec={"replicas": 2}, status={
        "observedGeneration": 1, "availableReplicas": 0,
        "conditions": [cond("ReplicaFailure", "True", "FailedCreate", 'pods "x-" is forbidden: exceeded quota: q')]}),
     D, 'pods "x-" is forbidden: exceeded quota: q'),
    ("T9", sts(gen=1, spec=STS_BASE, status=STS_STATUS),
     H, "partitioned roll out complete: 3 new pods have been updated..."),
    ("T10", sts(gen=1, spec=STS_BASE, status={**STS_STATUS, "updatedReplicas": 1}),
     P, "Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated..."),
    ("T11", sts(gen=1, spec={"replicas": 3,
                             "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}},
                status={**STS_STATUS, "updatedReplicas": 1}),
     H, "partitioned roll out complete: 1 new pods have been updated..."),
    ("T12", sts(gen=1, spec={"replicas": 3, "updateStrategy": {"type": "OnDelete"}},
                status={"observedGeneration": 1, "replicas": 3, "readyReplicas": 1}),
     P, "Waiting for 2 pods to be ready..."),
    ("T13", sts(gen=1, spec={"replicas": 3}, status={}), P, "Waiting for statefulset spec update to be observed..."),
    ("T14", ds(gen=1, status={"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2,
                              "updatedNumberScheduled": 2, "numberAvailable": 2, "numberReady": 2,
                              "numberMisscheduled": 1}), H, ""),
    ("T15", ds(name="ds", gen=1, status={"observedGeneration": 1, "desiredNumberScheduled": 3,
                                         "currentNumberScheduled": 3, "updatedNumberScheduled": 1,
                                         "numberAvailable": 3, "numberReady": 3}),
     P, 'Waiting for daemon set "ds" rollout to finish: 1 out of 3 new pods have been updated...'),
    ("T16", ds(gen=1, spec={"updateStrategy": {"type": "OnDelete"}}, status={
        "observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
        "updatedNumberScheduled": 0, "numberAvailable": 3}), H, "daemon set 0 out of 3 new pods have been updated"),
    ("T17", ds(gen=1, status={}),
     P, "Waiting for rollout to finish: observed daemon set generation less than desired generation"),
    ("T18", pod("Always", "Running", [{"name": "app", "restartCount": 4,
                                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": CRASH_MSG}},
                                        "lastState": {"terminated": {"exitCode": 1}}}]), D, CRASH_MSG),
    ("T19", pod("Always", "Pending", [waiting("ImagePullBackOff", 'Back-off pulling image "nginx:nope"')]),
     D, 'Back-off pulling image "nginx:nope"'),
    ("T20", pod("Always", "Pending", [waiting("CreateContainerConfigError", 'secret "db" not found')]),
     D, 'secret "db" not found'),
    ("T21", pod("Always", "Pending", [waiting("InvalidImageName")]), P, ""),
    ("T22", pod("Always", "Pending", [waiting("PodInitializing", name="redis")],
                init=[{"name": "secret-init", "restartCount": 3,
                       "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
     P, ""),
    ("T23", pod("Always", "Pending", conditions=[
        cond("PodScheduled", "False", "Unschedulable", "0/1 nodes are available: 1 Insufficient cpu.")],
        creationTimestamp="2026-01-01T00:00:00Z"), P, ""),
    ("T24", pod("Always", "Running", [{"name": "app", "restartCount": 1, "state": {"running": {}},
                                        "lastState": {"terminated": {"reason": "Error", "exitCode": 137}}}],
                conditions=[cond("Ready", "False")]), D, ""),
    ("T25", pod("Never", "Failed", init=[{"name": "migrate", "state": {"terminated": {"exitCode": 2}}}]),
     D, 'container "migrate" failed with exit code 2'),
    ("T26", pod("Never", "Failed", [{"name": "app",
                                      "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]),
     D, "OOMKilled"),
    ("T27", pod("Never", "Pending", [waiting("ImagePullBackOff")]), P, ""),
    ("T28", pod("Never", "Running", [{"name": "app", "ready": True, "state": {"running": {}}}],
                conditions=[cond("Ready", "True")]), P, ""),
    ("T29", obj("batch/v1", "Job", status={"startTime": "2026-01-01T00:00:00Z", "active": 1}), P, ""),
    ("T30", obj("batch/v1", "Job", spec={"backoffLimit": 6}, status={"failed": 7, "conditions": [
        cond("FailureTarget", "True"),
        cond("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]}),
     D, "Job has reached the specified backoff limit"),
    ("T31", obj("batch/v1", "Job", spec={"suspend": True}, status={"conditions": [
        cond("Suspended", "True", "JobSuspended", "Job suspended")]}), S, ""),
    ("T32", obj("batch/v1", "Job", spec={"suspend": False}, status={
        "active": 1, "startTime": "2026-01-01T00:00:00Z",
        "conditions": [cond("Suspended", "False", "JobResumed", "Job resumed")]}), H, "Job resumed"),
    ("T33a", obj("v1", "PersistentVolumeClaim", status={"phase": "Pending"}), P, ""),
    ("T33b", obj("v1", "PersistentVolumeClaim", status={"phase": "Lost"}), D, ""),
    ("T34", obj("v1", "Service", spec={"type": "LoadBalancer", "clusterIP": "10.96.0.10"},
                status={"loadBalancer": {}}), P, ""),
    ("T35", obj("networking.k8s.io/v1", "Ingress", spec={"rules": []}, status={"loadBalancer": {}}), P, ""),
    ("T36", obj("apiregistration.k8s.io/v1", "APIService", status={"conditions": [cond(
        "Available", "False", "MissingEndpoints",
        'endpoints for service/metrics-server in "kube-system" have no addresses')]}),
     P, 'MissingEndpoints: endpoints for service/metrics-server in "kube-system" have no addresses'),
    ("T37", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", status={"conditions": [
        cond("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
        cond("Established", "False", "Installing", "the initial names have been accepted")]}),
     P, "CRD is being installed"),
    ("T38", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", status={"conditions": [
        cond("NamesAccepted", "False", "PluralConflict", '"apps" is already in use'),
        cond("Established", "False", "NotAccepted", "not all names are accepted")]}),
     D, 'CRD names have not been accepted: "apps" is already in use'),
    ("T39", obj("autoscaling/v2", "HorizontalPodAutoscaler", status={"conditions": [HPA_ABLE, HPA_METRIC]}),
     D, HPA_METRIC["message"]),
    ("T40a", obj("v1", "Namespace", status={"phase": "Active"}), None, ""),
    ("T40b", obj("v1", "Namespace", status={"phase": "Terminating"}, deletionTimestamp="2026-01-01T00:00:00Z"),
     P, "Pending deletion"),
    ("T40c", obj("argoproj.io/v1alpha1", "Application", status={"health": {"status": "Degraded"}}), None, ""),
]


@pytest.mark.parametrize(("vector", "live", "status", "message"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector(vector: str, live: dict[str, Any], status: HealthStatus | None, message: str) -> None:
    assert assess(live) == Health(status, message)


def test_all_forty_vectors_are_covered() -> None:
    numbers = {int(v[0][1:].rstrip("abc")) for v in VECTORS}
    assert numbers == set(range(1, 41))


# Strict mode changes only pods whose init containers fail; every other vector keeps Argo CD's verdict.
STRICT_CHANGES = {"T22"}


@pytest.mark.parametrize(("vector", "live", "status", "message"), VECTORS, ids=[v[0] for v in VECTORS])
def test_strict_agrees_with_argo_outside_init_containers(vector: str, live: dict[str, Any],
                                                        status: HealthStatus | None, message: str) -> None:
    if vector in STRICT_CHANGES:
        strict = assess(live, strict=True)
        assert strict.status is D
        assert 'init container "secret-init": CrashLoopBackOff' in strict.message
    else:
        assert assess(live, strict=True) == Health(status, message)


# kstatus' view of the same vectors (§7 last column): where it disagrees with Argo CD is the point of the table.
KC, KI, KF = KStatus.CURRENT, KStatus.IN_PROGRESS, KStatus.FAILED
PENDING = (KI, "Pod is in the Pending phase")
NOT_DONE = (KC, "Pod has completed, but not successfully")
JOB_RUNNING = (KC, "Job in progress. success:0, active: 1, failed: 0")
CURRENT = (KC, "Resource is current")
KSTATUS: dict[str, tuple[KStatus, str]] = {
    "T1": (KC, "Deployment is available. Replicas: 3"), "T2": (KI, "Updated: 1/3"), "T3": (KI, "Available: 2/3"),
    "T4": (KI, "Deployment generation is 5, but latest observed generation is 4"), "T5": (KI, "Updated: 1/3"),
    "T6": (KI, "ReplicaSet not Available"), "T7": (KF, "Progress deadline exceeded"),
    "T8": (KI, "Replica Failure condition. Check Pods"), "T9": (KC, "Partition rollout complete. updated: 3"),
    "T10": (KI, "updated: 1/3"), "T11": (KC, "Partition rollout complete. updated: 1"),
    "T12": (KC, "StatefulSet is using the ondelete update strategy"), "T13": (KI, "Replicas: 0/3"),
    "T14": (KC, "All replicas scheduled as expected. Replicas: 2"), "T15": (KI, "Updated: 1/3"),
    "T16": (KI, "Updated: 0/3"), "T17": (KI, "DaemonSet status.observedGeneration not found"),
    "T18": (KF, "Containers in CrashLoop state: app"), "T19": PENDING, "T20": PENDING, "T21": PENDING,
    "T22": PENDING, "T23": (KF, "Pod could not be scheduled"), "T24": (KI, "Pod is running but is not Ready"),
    "T25": NOT_DONE, "T26": NOT_DONE, "T27": PENDING, "T28": (KC, "Pod is Ready"), "T29": JOB_RUNNING,
    "T30": (KF, "Job Failed. failed: 7/1"), "T31": (KC, "Job is suspended"), "T32": JOB_RUNNING,
    "T33a": (KI, "PVC is not Bound. phase: Pending"), "T33b": (KI, "PVC is not Bound. phase: Lost"),
    "T34": (KC, "Service is ready"), "T35": CURRENT, "T36": CURRENT, "T37": (KI, "Install in progress"),
    "T38": (KF, '"apps" is already in use'), "T39": CURRENT, "T40a": CURRENT,
    "T40b": (KStatus.TERMINATING, "Resource scheduled for deletion"), "T40c": CURRENT,
}


@pytest.mark.parametrize(("vector", "live", "status", "message"), VECTORS, ids=[v[0] for v in VECTORS])
def test_kstatus_vector(vector: str, live: dict[str, Any], status: HealthStatus | None, message: str) -> None:
    assert kstatus(live, age_s=120) == KResult(*KSTATUS[vector])


def test_kstatus_gives_an_unschedulable_pod_15_seconds() -> None:
    t23 = next(v[1] for v in VECTORS if v[0] == "T23")
    assert kstatus(t23, age_s=14.9) == KResult(KI, "Pod has not been scheduled")
    assert kstatus(t23) == KResult(KI, "Pod has not been scheduled")  # unknown age: not yet
    assert kstatus(t23, age_s=15) == KResult(KF, "Pod could not be scheduled")
