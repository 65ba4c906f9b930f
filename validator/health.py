"""Argo CD's health verdicts (v3.5 baseline), computed from live objects, plus our stricter init-container view.

Why reimplement instead of asking Argo CD: the mirror must judge objects while Argo CD itself is the thing being
installed (and may be broken). The rules follow /work/shared/design/health-rules.md §2-§5 (gitops-engine's Go checks
and the built-in Lua checks for CRD, CronJob and PDB), message templates included, so a verdict reads exactly as the
Argo CD UI would show it. Everything here is pure: live object JSON in, verdict out; no I/O, no clock.

Speed matters (the watcher assesses every event): dispatch is one dict lookup on (group, kind), objects are read in
place (never copied), and the common paths avoid exceptions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class HealthStatus(StrEnum):
    """Argo CD's health codes (gitops-engine health.go)."""

    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"


# Best to worst (healthOrder / IsWorse): aggregation keeps the worst. Unknown is the worst.
ORDER: dict[HealthStatus, int] = {status: i for i, status in enumerate(HealthStatus)}


@dataclass(frozen=True)
class Health:
    """One object's verdict. status None means Argo CD has no health check for the kind (not assessed)."""

    status: HealthStatus | None
    message: str = ""


NO_HEALTH = Health(None)
HOOK_FINALIZER = "argocd.argoproj.io/hook-finalizer"

_H, _S, _P, _D, _U = (HealthStatus.HEALTHY, HealthStatus.SUSPENDED, HealthStatus.PROGRESSING,
                      HealthStatus.DEGRADED, HealthStatus.UNKNOWN)
_PENDING_DELETION = Health(_P, "Pending deletion")
_HEALTHY = Health(_H)
_PROGRESSING = Health(_P)


class _Malformed(ValueError):
    """A field has the wrong type: Argo CD's typed conversion would fail, so the verdict is Unknown."""


# --------------------------------------------------------------------------------------------------
# Tolerant field access (missing integer fields count as 0, as in Go's zero values)
# --------------------------------------------------------------------------------------------------

def _map(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Malformed(f"{key}: expected an object, got {type(value).__name__}")
    return value


def _list(parent: Mapping[str, Any], key: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(f"{key}: expected a list, got {type(value).__name__}")
    return value


def _int(parent: Mapping[str, Any], key: str) -> int:
    value = parent.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{key}: expected an integer, got {value!r}")
    return value


def _opt_int(parent: Mapping[str, Any], key: str) -> int | None:
    return None if parent.get(key) is None else _int(parent, key)


def _str(parent: Mapping[str, Any], key: str) -> str:
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Malformed(f"{key}: expected a string, got {value!r}")
    return value


def conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """status.conditions as a list of mappings (malformed entries are an error, not silently skipped)."""
    conds = _list(_map(obj, "status"), "conditions")
    for cond in conds:
        if not isinstance(cond, dict):
            raise _Malformed("status.conditions: expected objects")
    return conds


def condition(obj: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    """The first condition of a type, as Argo CD's getXCondition helpers return it."""
    for cond in conditions(obj):
        if cond.get("type") == ctype:
            return cond
    return None


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """obj.metadata, or {} when absent or not an object (live JSON from a broken server must not crash us)."""
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def object_ref(obj: Mapping[str, Any]) -> str:
    """'Kind/namespace/name' (or 'Kind/name' when cluster-scoped): how verdicts and root causes name objects."""
    meta = metadata(obj)
    kind, name, ns = obj.get("kind", "?"), meta.get("name", "?"), meta.get("namespace")
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def _gvk(group: str, version: str, kind: str) -> str:
    """Go's schema.GroupVersionKind.String(), used verbatim in Argo CD's 'unsupported ... GVK' errors."""
    return f"{group}/{version}, Kind={kind}"


# --------------------------------------------------------------------------------------------------
# Per-kind checks (health-rules.md §4). Signature: (obj, meta, version, strict) -> Health.
# --------------------------------------------------------------------------------------------------

Check = Callable[[Mapping[str, Any], Mapping[str, Any], str, bool], Health]


def _require(version: str, supported: tuple[str, ...], group: str, kind: str, label: str) -> None:
    if version not in supported:
        raise _Unsupported(f"unsupported {label} GVK: {_gvk(group, version, kind)}")


class _Unsupported(Exception):
    """The check exists but not for this API version: Argo CD reports Unknown with this text."""


def _deployment(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    _require(version, ("v1",), "apps", "Deployment", "Deployment")
    spec, status = _map(obj, "spec"), _map(obj, "status")
    if spec.get("paused") is True:
        return Health(_S, "Deployment is paused")
    if _int(meta, "generation") > _int(status, "observedGeneration"):
        return Health(_P, "Waiting for rollout to finish: observed deployment generation less than desired generation")
    progressing = condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(_D, f'Deployment "{meta.get("name", "")}" exceeded its progress deadline')
    replicas = _opt_int(spec, "replicas")
    updated = _int(status, "updatedReplicas")
    if replicas is not None and updated < replicas:
        return Health(_P, f"Waiting for rollout to finish: {updated} out of {replicas} new replicas have been "
                          "updated...")
    current = _int(status, "replicas")
    if current > updated:
        return Health(_P, f"Waiting for rollout to finish: {current - updated} old replicas are pending termination...")
    available = _int(status, "availableReplicas")
    if available < updated:
        return Health(_P, f"Waiting for rollout to finish: {available} of {updated} updated replicas are available...")
    return _HEALTHY


def _statefulset(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    _require(version, ("v1",), "apps", "StatefulSet", "StatefulSet")
    spec, status = _map(obj, "spec"), _map(obj, "status")
    observed = _int(status, "observedGeneration")
    if observed == 0 or _int(meta, "generation") > observed:
        return Health(_P, "Waiting for statefulset spec update to be observed...")
    replicas = _opt_int(spec, "replicas")
    ready = _int(status, "readyReplicas")
    if replicas is not None and ready < replicas:
        return Health(_P, f"Waiting for {replicas - ready} pods to be ready...")
    strategy = _map(spec, "updateStrategy")
    stype = strategy.get("type")
    updated = _int(status, "updatedReplicas")
    if stype == "RollingUpdate" and strategy.get("rollingUpdate") is not None:
        partition = _opt_int(_map(strategy, "rollingUpdate"), "partition")
        if replicas is not None and partition is not None and updated < replicas - partition:
            return Health(_P, f"Waiting for partitioned roll out to finish: {updated} out of {replicas - partition} "
                              "new pods have been updated...")
        return Health(_H, f"partitioned roll out complete: {updated} new pods have been updated...")
    if stype == "OnDelete":
        return Health(_H, f"statefulset has {ready} ready pods")
    update_rev, current_rev = _str(status, "updateRevision"), _str(status, "currentRevision")
    if update_rev != current_rev:
        return Health(_P, f"waiting for statefulset rolling update to complete {updated} pods at revision "
                          f"{update_rev}...")
    return Health(_H, f"statefulset rolling update complete {_int(status, 'currentReplicas')} pods at revision "
                      f"{current_rev}...")


def _daemonset(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    _require(version, ("v1",), "apps", "DaemonSet", "DaemonSet")
    spec, status = _map(obj, "spec"), _map(obj, "status")
    if _int(meta, "generation") > _int(status, "observedGeneration"):
        return Health(_P, "Waiting for rollout to finish: observed daemon set generation less than desired generation")
    desired, updated = _int(status, "desiredNumberScheduled"), _int(status, "updatedNumberScheduled")
    if _map(spec, "updateStrategy").get("type") == "OnDelete":
        return Health(_H, f"daemon set {updated} out of {desired} new pods have been updated")
    name = meta.get("name", "")
    if updated < desired:
        return Health(_P, f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods '
                          "have been updated...")
    available = _int(status, "numberAvailable")
    if available < desired:
        return Health(_P, f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods '
                          "are available...")
    return _HEALTHY


def _replicaset(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    _require(version, ("v1",), "apps", "ReplicaSet", "ReplicaSet")
    spec, status = _map(obj, "spec"), _map(obj, "status")
    if _int(meta, "generation") > _int(status, "observedGeneration"):
        return Health(_P, "Waiting for rollout to finish: observed replica set generation less than desired generation")
    failure = condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return Health(_D, _str(failure, "message"))
    replicas = _opt_int(spec, "replicas")
    available = _int(status, "availableReplicas")
    if replicas is not None and available < replicas:
        return Health(_P, f"Waiting for rollout to finish: {available} out of {replicas} new replicas are available...")
    return _HEALTHY


def is_error_reason(reason: str) -> bool:
    """Argo CD's test for a failing waiting reason: starts with Err, ends with Error or BackOff (health_pod.go)."""
    return reason.startswith("Err") or reason.endswith("Error") or reason.endswith("BackOff")


def container_statuses(obj: Mapping[str, Any], key: str = "containerStatuses") -> list[Mapping[str, Any]]:
    """status.containerStatuses / initContainerStatuses, validated as objects."""
    statuses = _list(_map(obj, "status"), key)
    for cs in statuses:
        if not isinstance(cs, dict):
            raise _Malformed(f"status.{key}: expected objects")
    return statuses


def _terminated_message(cs: Mapping[str, Any]) -> str:
    """Argo CD's getFailMessage for a Failed pod."""
    term = _map(_map(cs, "state"), "terminated")
    if not term:
        return ""
    if term.get("message"):
        return _str(term, "message")
    if term.get("reason") == "OOMKilled":
        return "OOMKilled"
    code = _int(term, "exitCode")
    return f'container "{cs.get("name", "")}" failed with exit code {code}' if code else ""


def _pod_ready(obj: Mapping[str, Any]) -> bool:
    ready = condition(obj, "Ready")
    return ready is not None and ready.get("status") == "True"


def _pod(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    _require(version, ("v1",), "", "Pod", "Pod")
    health = _argo_pod(obj)
    if strict and health.status is _P:
        problem = init_container_problem(obj)
        if problem is not None:
            return Health(_D, problem)
    return health


def _argo_pod(obj: Mapping[str, Any]) -> Health:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    policy = spec.get("restartPolicy") or "Always"
    message = _str(status, "message")
    if policy == "Always":
        messages = [
            _str(waiting, "message")
            for cs in container_statuses(obj)
            if (waiting := _map(_map(cs, "state"), "waiting")) and is_error_reason(_str(waiting, "reason"))
        ]
        if messages:
            return Health(_D, ", ".join(messages))
    phase = status.get("phase")
    if phase == "Pending":
        return Health(_P, message)
    if phase == "Succeeded":
        return Health(_H, message)
    if phase == "Failed":
        if message:
            return Health(_D, message)
        for cs in container_statuses(obj, "initContainerStatuses") + container_statuses(obj):
            if fail := _terminated_message(cs):
                return Health(_D, fail)
        return Health(_D, "")
    if phase == "Running":
        if policy != "Always":
            return Health(_P, message)
        if _pod_ready(obj):
            return Health(_H, message)
        if any(_map(cs, "lastState").get("terminated") is not None for cs in container_statuses(obj)):
            return Health(_D, message)
        return Health(_P, message)
    return Health(_U, message)


def last_termination(cs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The most recent termination of a container: the current state if terminated, else lastState."""
    return _map(_map(cs, "state"), "terminated") or _map(_map(cs, "lastState"), "terminated")


def abnormal(term: Mapping[str, Any]) -> bool:
    """A termination that is a failure: non-zero exit or OOMKilled."""
    return bool(term) and (_int(term, "exitCode") != 0 or term.get("reason") == "OOMKilled")


def quote(message: str, limit: int = 400) -> str:
    """A message quoted for a one-line sentence: double quotes unless it contains some; bounded length."""
    text = " ".join(message.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"'{text}'" if '"' in text else f'"{text}"'


def describe_termination(term: Mapping[str, Any]) -> str:
    """'exit code 1: "dial tcp ..."' - the last words of a container, for messages and root causes."""
    if not term:
        return ""
    text = f"exit code {_int(term, 'exitCode')}"
    if term.get("reason") and term.get("reason") not in ("Error", "Completed"):
        text += f" ({term['reason']})"
    msg = _str(term, "message").strip()
    return f"{text}: {quote(msg)}" if msg else text


def init_container_problem(obj: Mapping[str, Any]) -> str | None:
    """Our strict view (Argo CD ignores init containers): the first failing init container, described, or None.

    Failing = waiting with an error reason (CrashLoopBackOff, ErrImagePull, ...; InvalidImageName too), terminated
    non-zero, or restarted after an abnormal exit and not yet done. This is what catches the v2.11.1 redis outage
    (T22) instead of 600 s of Progressing.
    """
    for cs in container_statuses(obj, "initContainerStatuses"):
        name = cs.get("name", "")
        state = _map(cs, "state")
        waiting = _map(state, "waiting")
        reason = _str(waiting, "reason")
        last = last_termination(cs)
        if reason and (is_error_reason(reason) or reason == "InvalidImageName"):
            text = f'init container "{name}": {reason}'
            if waiting.get("message"):
                text += f": {waiting['message']}"
            if abnormal(last):
                text += f"; restarts {_int(cs, 'restartCount')}, last {describe_termination(last)}"
            return text
        term = _map(state, "terminated")
        if term and abnormal(term):
            return f'init container "{name}" terminated with {describe_termination(term)}'
        if not cs.get("ready") and abnormal(last):
            return (f'init container "{name}" is restarting after {describe_termination(last)} '
                    f"(restarts {_int(cs, 'restartCount')})")
    return None


def _job(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    _require(version, ("v1",), "batch", "Job", "Job")
    failed = finished = suspended = False
    message = fail_message = ""
    for cond in conditions(obj):
        ctype = cond.get("type")
        if ctype == "Failed":
            failed = finished = True
            fail_message = _str(cond, "message")
        elif ctype == "Complete":
            finished = True
            message = _str(cond, "message")
        elif ctype == "Suspended":
            finished = True
            message = _str(cond, "message")
            suspended = suspended or cond.get("status") == "True"
    if not finished:
        return _PROGRESSING
    if failed:
        return Health(_D, fail_message)
    if suspended:
        return Health(_S, fail_message)
    return Health(_H, message)


def _pvc(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    _require(version, ("v1",), "", "PersistentVolumeClaim", "PersistentVolumeClaim")
    phase = _map(obj, "status").get("phase")
    if phase == "Bound":
        return _HEALTHY
    if phase == "Pending":
        return _PROGRESSING
    if phase == "Lost":
        return Health(_D)
    return Health(_U)


def _lb_ingress(obj: Mapping[str, Any]) -> bool:
    return bool(_list(_map(_map(obj, "status"), "loadBalancer"), "ingress"))


def _service(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    _require(version, ("v1",), "", "Service", "Service")
    if _map(obj, "spec").get("type") == "LoadBalancer" and not _lb_ingress(obj):
        return _PROGRESSING
    return _HEALTHY


def _ingress(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    return _HEALTHY if _lb_ingress(obj) else _PROGRESSING


def _apiservice(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    _require(version, ("v1", "v1beta1"), "apiregistration.k8s.io", "APIService", "APIService")
    available = condition(obj, "Available")
    if available is None:
        return Health(_P, "Waiting to be processed")
    text = f"{_str(available, 'reason')}: {_str(available, 'message')}"
    return Health(_H if available.get("status") == "True" else _P, text)


def _lua_concat(prefix: str, cond: Mapping[str, Any]) -> str:
    """Lua's `prefix .. condition.message`: a nil message is a script error, which Argo CD reports as Unknown."""
    if cond.get("message") is None:
        raise _Malformed(f"attempt to concatenate a nil value (field 'message' of condition {cond.get('type')})")
    return prefix + _str(cond, "message")


def _crd(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    conds = conditions(obj)
    if not conds:
        return Health(_P, "Status conditions not found")
    established = False
    for cond in conds:
        ctype, cstatus = cond.get("type"), cond.get("status")
        if ctype == "Terminating" and cstatus == "True":
            return Health(_P, _lua_concat("CRD is terminating: ", cond))
        if ctype == "NamesAccepted" and cstatus == "False":
            return Health(_D, _lua_concat("CRD names have not been accepted: ", cond))
        if ctype == "NonStructuralSchema" and cstatus == "True":
            return Health(_D, _lua_concat("Schema violations found: ", cond))
        if ctype == "Established":
            if cstatus == "True":
                established = True
            elif cond.get("reason") == "Installing":
                return Health(_P, "CRD is being installed")
    if not established:
        return Health(_D, "CRD is not established")
    return Health(_H, "CRD is healthy")


_HPA_DEGRADED = frozenset({
    ("AbleToScale", "FailedGetScale"), ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"), ("ScalingActive", "InvalidSelector"),
    ("ScalingActive", "FailedGetObjectMetric"), ("ScalingActive", "FailedGetPodsMetric"),
    ("ScalingActive", "FailedGetExternalMetric"), ("ScalingActive", "FailedComputeMetricsReplicas"),
})
_WAITING_TO_AUTOSCALE = Health(_P, "Waiting to Autoscale")


def _hpa(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    if version == "v2":
        conds = conditions(obj)
    elif version == "v1":
        raw = _map(meta, "annotations").get("autoscaling.alpha.kubernetes.io/conditions")
        if raw is None:
            return _WAITING_TO_AUTOSCALE
        try:
            conds = json.loads(raw)
        except (TypeError, ValueError) as exc:
            raise _Unsupported(f"failed to convert conditions annotation to typed: {exc}") from None
        if not isinstance(conds, list) or not all(isinstance(c, dict) for c in conds):
            raise _Unsupported("failed to convert conditions annotation to typed: expected a list of conditions")
    else:
        raise _Unsupported(f"unsupported HPA GVK: {_gvk('autoscaling', version, 'HorizontalPodAutoscaler')}")
    if not conds:
        return _WAITING_TO_AUTOSCALE
    for cond in conds:  # v3.5: any degraded pair wins over a healthy condition listed earlier
        if (cond.get("type"), cond.get("reason")) in _HPA_DEGRADED:
            return Health(_D, _str(cond, "message"))
    for cond in conds:
        if cond.get("type") in ("AbleToScale", "ScalingLimited") and cond.get("status") == "True":
            return Health(_H, _str(cond, "message"))
    return _WAITING_TO_AUTOSCALE


def _cronjob(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    """Built-in Lua batch/CronJob/health.lua as of v3.2+ (§4.15): a suspended CronJob is Healthy
    (argo-cd issue #24428; docs/operator-manual/upgrading/3.1-3.2.md), not Suspended."""
    if _map(obj, "spec").get("suspend") is True:
        return Health(_H, "CronJob is Suspended")
    status = obj.get("status")
    if status is None:
        return Health(_P, "Waiting for CronJob")
    status = _map(obj, "status")
    scheduled = status.get("lastScheduleTime")
    if scheduled is None:
        return Health(_H, "CronJob has not been scheduled yet")
    succeeded = status.get("lastSuccessfulTime")
    if succeeded is None:
        return Health(_H, "The CronJob never completed successfully. It may not be healthy")
    if _list(status, "active"):
        return Health(_H, "The job is running. Its last execution may not have been successful")
    if str(succeeded) < str(scheduled):  # RFC 3339 UTC strings compare like the Lua does
        return Health(_D, "CronJob has not completed its last execution successfully")
    return Health(_H, "CronJob has completed its last execution successfully")


def _pdb(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    """Built-in Lua policy/PodDisruptionBudget/health.lua."""
    health = Health(_P, "Waiting for status")
    for cond in conditions(obj):
        reason = cond.get("reason")
        if reason is None:
            raise _Malformed("attempt to concatenate a nil value (field 'reason')")
        if cond.get("status") == "False" and reason != "InsufficientPods":
            return Health(_D, f"PodDisruptionBudget has {reason}")
        health = Health(_H, f"PodDisruptionBudget has {reason}")
    return health


def _applicationset(obj: Mapping[str, Any], meta: Mapping[str, Any], version: str, strict: bool) -> Health:
    """Built-in Lua argoproj.io/ApplicationSet/health.lua (§4.15): conditions in this order of precedence."""
    conds = conditions(obj)
    for ctype, status, verdict in (("ErrorOccurred", "True", _D), ("ResourcesUpToDate", "False", _D),
                                   ("RolloutProgressing", "True", _P), ("ResourcesUpToDate", "True", _H)):
        for cond in conds:
            if cond.get("type") == ctype and cond.get("status") == status:
                return Health(verdict, _str(cond, "message"))
    return Health(_P, "Waiting for the status to be reported")


# (group, kind) -> check. Kinds absent here have no health in Argo CD (§5), including argoproj.io/Application.
CHECKS: dict[tuple[str, str], Check] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _pvc,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("policy", "PodDisruptionBudget"): _pdb,
    ("extensions", "Ingress"): _ingress,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("apiregistration.k8s.io", "APIService"): _apiservice,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("argoproj.io", "ApplicationSet"): _applicationset,
}


def assess(obj: dict[str, Any], strict: bool = False) -> Health:
    """Argo CD's verdict for one live object (strict=True adds the init-container view for Pods).

    Never raises on odd input: a field of the wrong type gives Unknown with the reason, as Argo CD's failed
    typed conversion does, so a malformed object can never read Healthy.
    """
    meta = metadata(obj)
    if meta.get("deletionTimestamp") and HOOK_FINALIZER not in (meta.get("finalizers") or ()):
        return _PENDING_DELETION
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return Health(_U, "object has no apiVersion/kind")
    group, _, version = api_version.rpartition("/")
    check = CHECKS.get((group, kind))
    if check is None:
        return NO_HEALTH
    try:
        return check(obj, meta, version, strict)
    except _Unsupported as exc:
        return Health(_U, str(exc))
    except (_Malformed, TypeError, ValueError, AttributeError) as exc:
        return Health(_U, f"failed to convert unstructured {kind} to typed: {exc}")


# --------------------------------------------------------------------------------------------------
# Environment exemptions, owners, root causes
# --------------------------------------------------------------------------------------------------

DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")  # the beta key is still honoured
SELECTED_NODE = "volume.kubernetes.io/selected-node"  # set by the scheduler once a pod consumes the claim


@dataclass(frozen=True)
class StorageClasses:
    """The cluster's StorageClasses as far as a Pending PVC's exemption needs them (read by the caller, so this
    module stays pure). `error` set means they could not be read: then no PVC is exempt (fail closed)."""

    binding_modes: Mapping[str, str] = field(default_factory=dict)  # class name -> volumeBindingMode
    default: str | None = None  # the class a claim without spec.storageClassName gets
    error: str | None = None

    @classmethod
    def from_items(cls, items: Iterable[Any]) -> StorageClasses:
        """From a storage.k8s.io/v1 StorageClass list. An unset volumeBindingMode is Immediate (the API default);
        with several default classes the newest wins, as in Kubernetes since 1.26."""
        modes: dict[str, str] = {}
        defaults: list[tuple[str, str]] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            meta = metadata(item)
            name, mode = meta.get("name"), item.get("volumeBindingMode") or "Immediate"
            if not isinstance(name, str) or not isinstance(mode, str):
                continue
            modes[name] = mode
            annotations = meta.get("annotations")
            if isinstance(annotations, dict) and any(annotations.get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS):
                defaults.append((str(meta.get("creationTimestamp") or ""), name))
        newest = max((ts for ts, _ in defaults), default=None)
        return cls(modes, min((n for ts, n in defaults if ts == newest), default=None))


def _pvc_binding(obj: Mapping[str, Any], storage: StorageClasses | None) -> tuple[bool, str]:
    """Whether a Pending claim only waits for its first consumer (§6: exempt), and why, in words for the report.

    Only a WaitForFirstConsumer class (the one named, or the default when the field is absent; "" means no class)
    with no node selected and no pre-bound volume qualifies: a missing class, an Immediate class or a claim for a
    pre-provisioned volume that stays Pending is a real problem Argo CD calls Progressing, and must block a pass.
    """
    if storage is None or storage.error:
        return False, f"StorageClasses could not be read ({storage.error if storage else 'not given'}), so a " \
                      "Pending claim is not exempt"
    spec = _map(obj, "spec")
    node = _map(metadata(obj), "annotations").get(SELECTED_NODE)
    if node is not None:
        return False, f"a pod consumes it (node {node} selected), yet no volume is bound"
    if spec.get("volumeName"):
        return False, f"pre-bound to PersistentVolume {spec.get('volumeName')}, which it waits for, not for a consumer"
    requested = spec.get("storageClassName")
    if requested == "":
        return False, 'storageClassName "" asks for a pre-provisioned PersistentVolume and none is bound'
    name = storage.default if requested is None else requested
    if not isinstance(name, str):
        return False, "no storageClassName and the cluster has no default StorageClass"
    mode = storage.binding_modes.get(name)
    which = f"StorageClass {name}" + (" (the cluster default)" if requested is None else "")
    if mode is None:
        return False, f"{which} does not exist"
    if mode != "WaitForFirstConsumer":
        return False, f"{which} has volumeBindingMode {mode}, so Pending is not waiting for a consumer"
    return True, ("PersistentVolumeClaim is Pending with no consumer scheduled: "
                  f"{which} binds only when a pod uses it (WaitForFirstConsumer)")


def stuck_claim(obj: dict[str, Any], health: Health, storage: StorageClasses | None) -> str | None:
    """Why a Progressing PVC that is *not* exempt is stuck (for progress and root causes), else None."""
    if health.status is not _P or obj.get("kind") != "PersistentVolumeClaim" or obj.get("apiVersion") != "v1" \
            or metadata(obj).get("deletionTimestamp"):
        return None
    try:
        exempt, why = _pvc_binding(obj, storage)
    except (ValueError, AttributeError):
        return None
    return None if exempt else why


def environment_exempt(obj: dict[str, Any], health: Health, storage: StorageClasses | None = None) -> str | None:
    """Why this object can never become Healthy on a bare kind cluster, or None.

    Only Progressing verdicts that depend on infrastructure the mirror deliberately lacks qualify (§6 last row);
    callers report these separately and never count them as Healthy. A Pending PVC needs `storage` (see
    _pvc_binding): without it nothing proves the claim merely waits for a consumer, so it is not exempt.
    """
    if health.status is not _P or metadata(obj).get("deletionTimestamp"):
        return None
    kind = obj.get("kind")
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    try:
        if kind == "Service" and group == "" and _map(obj, "spec").get("type") == "LoadBalancer":
            return ("LoadBalancer Service has no external address: the mirror cluster has no load-balancer "
                    "implementation")
        if kind == "Ingress" and group in ("networking.k8s.io", "extensions"):
            return "Ingress has no load-balancer status: the mirror cluster runs no ingress controller"
        if kind == "PersistentVolumeClaim" and group == "":
            exempt, why = _pvc_binding(obj, storage)
            return why if exempt else None
        if kind == "APIService" and group == "apiregistration.k8s.io":
            service = _map(_map(obj, "spec"), "service")
            if service:
                return (f"APIService is backed by Service {service.get('namespace')}/{service.get('name')}, "
                        f"not available on the mirror cluster ({health.message or 'no Available condition'})")
    except (ValueError, AttributeError):
        return None
    return None


def owner_of(obj: Mapping[str, Any]) -> str | None:
    """The workload that owns a pod, as 'Kind/namespace/name': a ReplicaSet created by a Deployment maps to the
    Deployment (RS name minus '-<pod-template-hash>'), so root causes can name e.g. argocd-redis."""
    meta = metadata(obj)
    owners = meta.get("ownerReferences") or []
    if not isinstance(owners, list):
        return None
    controller = next((o for o in owners if isinstance(o, dict) and o.get("controller")), None)
    if controller is None and owners and isinstance(owners[0], dict):
        controller = owners[0]
    if controller is None:
        return None
    kind, name = controller.get("kind", "?"), str(controller.get("name", "?"))
    ns = meta.get("namespace")
    labels = meta.get("labels")
    template_hash = labels.get("pod-template-hash") if isinstance(labels, dict) else None
    if kind == "ReplicaSet" and isinstance(template_hash, str) and template_hash and name.endswith(f"-{template_hash}"):
        kind, name = "Deployment", name[: -len(template_hash) - 1]
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def explain(obj: dict[str, Any], health: Health) -> str | None:
    """A one-sentence root cause for a non-healthy verdict, naming object, container, reason and message.

    Argo CD's Pod message is often empty (the reason sits in container state or a condition), so pods are
    described from their containers: init containers first, since a failing init blocks everything after it.
    """
    if health.status in (None, _H):
        return None
    ref = object_ref(obj)
    try:
        if obj.get("kind") == "Pod":
            detail = pod_problem(obj)
            if detail is not None:
                return f"{ref}{detail}"
        cond = _problem_condition(obj)
    except (ValueError, TypeError, AttributeError):
        cond = None
    text = health.message or (f"{cond.get('reason')}: {cond.get('message', '')}" if cond else "")
    return f"{ref}: {health.status.value}" + (f": {text}" if text else "")


def _problem_condition(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for cond in conditions(obj):
        bad_when_true = cond.get("type") in _BAD_WHEN_TRUE and cond.get("status") == "True"
        if bad_when_true or (cond.get("reason") and cond.get("status") in ("False", "Unknown")):
            return cond
    return None


_BAD_WHEN_TRUE = frozenset({"ReplicaFailure", "Failed", "NonStructuralSchema", "Terminating"})


def pod_problem(obj: Mapping[str, Any]) -> str | None:
    """' (init container secret-init of Deployment/argocd/argocd-redis): CrashLoopBackOff after 3 restarts, ...'.

    The suffix that turns a pod reference into a root-cause sentence, or None when nothing is visibly wrong.
    """
    owner = owner_of(obj)
    of = f" of {owner}" if owner else ""
    for key, label in (("initContainerStatuses", "init container"), ("containerStatuses", "container")):
        for cs in container_statuses(obj, key):
            text = container_problem(cs)
            if text is not None:
                return f" ({label} {cs.get('name', '')}{of}): {text}"
    scheduled = condition(obj, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False":
        return f"{of}: {scheduled.get('reason', 'NotScheduled')}: {scheduled.get('message', '')}".lstrip()
    status = _map(obj, "status")
    if status.get("phase") == "Failed":
        return f"{of}: Failed: {status.get('reason') or ''} {status.get('message') or ''}".rstrip()
    return None


def container_problem(cs: Mapping[str, Any]) -> str | None:
    """'CrashLoopBackOff after 3 restarts, last exit code 1: "dial tcp ..."' for a failing container, else None."""
    waiting = _map(_map(cs, "state"), "waiting")
    reason = _str(waiting, "reason")
    last = last_termination(cs)
    restarts = _int(cs, "restartCount")
    if reason and (is_error_reason(reason) or reason == "InvalidImageName"):
        if abnormal(last):
            return f"{reason} after {restarts} restarts, last {describe_termination(last)}"
        msg = _str(waiting, "message")
        return f"{reason}: {quote(msg)}" if msg else reason
    term = _map(_map(cs, "state"), "terminated")
    if abnormal(term):
        return f"terminated with {describe_termination(term)}"
    if not cs.get("ready") and abnormal(last):
        return f"restarted {restarts} times, last {describe_termination(last)}"
    return None


def evidence(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a report needs to show why: phase, non-True conditions, container states (never the whole object)."""
    out: dict[str, Any] = {"object": object_ref(obj)}
    try:
        status = _map(obj, "status")
        if status.get("phase"):
            out["phase"] = status.get("phase")
        conds = [
            {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k) is not None}
            for c in conditions(obj)
        ]
        if conds:
            out["conditions"] = conds
        if obj.get("kind") == "Pod":
            if owner := owner_of(obj):
                out["owner"] = owner
            for key in ("initContainerStatuses", "containerStatuses"):
                states = [
                    {"name": cs.get("name"), "ready": cs.get("ready"), "restartCount": cs.get("restartCount", 0),
                     "state": cs.get("state"), "lastState": cs.get("lastState") or None}
                    for cs in container_statuses(obj, key)
                ]
                if states:
                    out[key] = states
    except (ValueError, TypeError, AttributeError) as exc:
        out["malformed"] = str(exc)
    return out


# --------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Aggregate:
    """App-level health: the worst member in Argo CD's order; nil-health and exempt objects listed apart.

    status is Healthy when nothing was assessed, as in Argo CD; callers that need evidence of a pass must also
    check `assessed` (a gate must never pass on nothing observed).
    """

    status: HealthStatus
    worst: tuple[str, ...]  # refs at the worst status (sorted), empty when all Healthy
    members: Mapping[str, Health] = field(default_factory=dict)
    not_assessed: tuple[str, ...] = ()  # no Argo CD health check for the kind (reported as "not assessed")
    exempt: Mapping[str, str] = field(default_factory=dict)  # ref -> why it cannot be Healthy on the mirror

    @property
    def assessed(self) -> int:
        return len(self.members)

    @property
    def healthy(self) -> bool:
        return self.status is _H

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for health in self.members.values():
            assert health.status is not None
            out[health.status.value] = out.get(health.status.value, 0) + 1
        return dict(sorted(out.items()))


HOOK_ANNOTATIONS = ("argocd.argoproj.io/hook", "helm.sh/hook")
IGNORE_HEALTHCHECK = "argocd.argoproj.io/ignore-healthcheck"


def app_health_exclusion(obj: Mapping[str, Any]) -> str | None:
    """Why Argo CD's app health leaves this live object out (controller/health.go setApplicationHealth, §4.14),
    or None when it counts: hooks (Skip hooks too) and objects annotated ignore-healthcheck: "true"."""
    annotations = metadata(obj).get("annotations")
    if not isinstance(annotations, dict):
        return None
    if annotations.get(IGNORE_HEALTHCHECK) == "true":
        return f'annotated {IGNORE_HEALTHCHECK}: "true"'
    hook = hook_annotation(obj)
    return f"hook ({hook})" if hook else None


def hook_annotation(obj: Mapping[str, Any]) -> str | None:
    """'key: value' of the annotation that makes OBJ a sync hook (gitops-engine's hook.IsHook), else None. Helm
    marks CRDs `helm.sh/hook: crd-install`, but they are not hooks."""
    annotations = metadata(obj).get("annotations")
    if not isinstance(annotations, dict):
        return None
    return next((f"{key}: {annotations[key]}" for key in HOOK_ANNOTATIONS
                 if key in annotations and annotations[key] != "crd-install"), None)


def counts_toward_app_health(obj: Mapping[str, Any]) -> bool:
    """Whether Argo CD's app health would include this live object; callers should not feed others to aggregate."""
    return app_health_exclusion(obj) is None


def worse(a: HealthStatus, b: HealthStatus) -> HealthStatus:
    """The worse of two codes (IsWorse)."""
    return b if ORDER[b] > ORDER[a] else a


def aggregate(entries: Iterable[tuple[str, Health]], exempt: Mapping[str, str] | None = None) -> Aggregate:
    """Worst wins (Healthy < Suspended < Progressing < Missing < Degraded < Unknown); independent of input order.

    `exempt` maps refs to environment_exempt() reasons: those are excluded from the status but listed, never
    silently counted Healthy. A ref given twice keeps its worse verdict.
    """
    exempt = dict(exempt or {})
    members: dict[str, Health] = {}
    not_assessed: set[str] = set()
    for ref, health in entries:
        if health.status is None:
            not_assessed.add(ref)
            continue
        if ref in exempt:
            continue
        seen = members.get(ref)
        if seen is None or _rank(health) > _rank(seen):
            members[ref] = health
    not_assessed -= members.keys()
    status = _H
    for health in members.values():
        assert health.status is not None
        status = worse(status, health.status)
    worst = tuple(sorted(ref for ref, h in members.items() if h.status is status)) if status is not _H else ()
    return Aggregate(status, worst, dict(sorted(members.items())), tuple(sorted(not_assessed - exempt.keys())),
                     dict(sorted((ref, why) for ref, why in exempt.items())))


def _rank(health: Health) -> tuple[int, str]:
    assert health.status is not None
    return ORDER[health.status], health.message


# --------------------------------------------------------------------------------------------------
# kstatus, for comparison (health-rules.md §2-§4; kubernetes-sigs/cli-utils pkg/kstatus/status)
# --------------------------------------------------------------------------------------------------

class KStatus(StrEnum):
    """kstatus codes: what Flux, Helm 4 and kpt would say about the same object."""

    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class KResult:
    status: KStatus
    message: str


_CUR, _INP, _FAIL = KStatus.CURRENT, KStatus.IN_PROGRESS, KStatus.FAILED
SCHEDULE_WINDOW_S = 15  # kstatus gives a pod this long to be scheduled before calling it Failed


def kstatus(obj: dict[str, Any], age_s: float | None = None) -> KResult:
    """kstatus' verdict for one live object, so a report can show where it and Argo CD disagree (paused
    Deployments, Failed pods, unschedulable pods, OnDelete StatefulSets, ...).

    age_s is the object's age (for the 15 s unschedulable window of Pods); unknown age reads as inside the window.
    Pure and bounded like assess(); a malformed object gives Unknown with the reason.
    """
    meta = metadata(obj)
    if meta.get("deletionTimestamp"):
        return KResult(KStatus.TERMINATING, "Resource scheduled for deletion")
    try:
        generation, observed = meta.get("generation"), _map(obj, "status").get("observedGeneration")
        if generation is not None and observed is not None and _int(meta, "generation") != observed:
            return KResult(_INP, f"{obj.get('kind')} generation is {generation}, but latest observed generation is "
                                 f"{observed}")
        for cond in conditions(obj):
            if cond.get("type") == "Reconciling" and cond.get("status") == "True":
                return KResult(_INP, _str(cond, "message"))
            if cond.get("type") == "Stalled" and cond.get("status") == "True":
                return KResult(_FAIL, _str(cond, "message"))
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        rule = _KSTATUS.get((group, str(obj.get("kind", ""))))
        if rule is not None:
            return rule(obj, meta, age_s)
        ready = condition(obj, "Ready")
        if ready is not None and ready.get("status") == "True":
            return KResult(_CUR, "Resource is Ready")
        if ready is not None and ready.get("status") in ("False", "Unknown"):
            return KResult(_INP, _str(ready, "message"))
        return KResult(_CUR, "Resource is current")
    except (ValueError, TypeError, AttributeError) as exc:
        return KResult(KStatus.UNKNOWN, str(exc))


KRule = Callable[[Mapping[str, Any], Mapping[str, Any], "float | None"], KResult]


def _k_counts(checks: Iterable[tuple[bool, str]], done: str) -> KResult:
    """The first check that holds gives InProgress with its message; none holding gives Current `done`."""
    for failing, message in checks:
        if failing:
            return KResult(_INP, message)
    return KResult(_CUR, done)


def _k_deployment(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    progressing = spec.get("progressDeadlineSeconds") is None
    available = False
    for cond in conditions(obj):
        if cond.get("type") == "Progressing":
            if cond.get("reason") == "ProgressDeadlineExceeded":
                return KResult(_FAIL, "Progress deadline exceeded")
            new_rs_available = cond.get("status") == "True" and cond.get("reason") == "NewReplicaSetAvailable"
            progressing = progressing or new_rs_available
        elif cond.get("type") == "Available" and cond.get("status") == "True":
            available = True
    want = 1 if spec.get("replicas") is None else _int(spec, "replicas")
    have, updated = _int(status, "replicas"), _int(status, "updatedReplicas")
    ready, avail = _int(status, "readyReplicas"), _int(status, "availableReplicas")
    return _k_counts([
        (want > have, f"Replicas: {have}/{want}"), (want > updated, f"Updated: {updated}/{want}"),
        (have > want, f"Pending termination: {have - want}"), (updated > avail, f"Available: {avail}/{updated}"),
        (want > ready, f"Ready: {ready}/{want}"), (not progressing, "ReplicaSet not Available"),
        (not available, "Deployment not Available"),
    ], f"Deployment is available. Replicas: {have}")


def _k_statefulset(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    strategy = _map(spec, "updateStrategy")
    if strategy.get("type") == "OnDelete":
        return KResult(_CUR, "StatefulSet is using the ondelete update strategy")
    want = 1 if spec.get("replicas") is None else _int(spec, "replicas")
    have, ready = _int(status, "replicas"), _int(status, "readyReplicas")
    updated, current = _int(status, "updatedReplicas"), _int(status, "currentReplicas")
    rolling = _map(strategy, "rollingUpdate")
    partition = -1 if rolling.get("partition") is None else _int(rolling, "partition")
    head = [(want > have, f"Replicas: {have}/{want}"), (want > ready, f"Ready: {ready}/{want}"),
            (have > want, f"Pending termination: {have - want}")]
    if partition != -1:
        return _k_counts([*head, (updated < want - partition, f"updated: {updated}/{want - partition}")],
                         f"Partition rollout complete. updated: {updated}")
    return _k_counts([
        *head, (want > current, f"current: {current}/{want}"),
        (_str(status, "currentRevision") != _str(status, "updateRevision"),
         "Waiting for updated revision to match current"),
    ], f"All replicas scheduled as expected. Replicas: {have}")


def _k_daemonset(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    status = _map(obj, "status")
    kind = obj.get("kind")
    if meta.get("generation") is None:
        return KResult(_INP, f"{kind} metadata.generation not found")
    if status.get("observedGeneration") is None:
        return KResult(_INP, f"{kind} status.observedGeneration not found")
    if status.get("desiredNumberScheduled") is None:
        return KResult(_INP, "Missing .status.desiredNumberScheduled")
    desired = _int(status, "desiredNumberScheduled")
    current, updated = _int(status, "currentNumberScheduled"), _int(status, "updatedNumberScheduled")
    available, ready = _int(status, "numberAvailable"), _int(status, "numberReady")
    return _k_counts([
        (desired > current, f"Current: {current}/{desired}"), (desired > updated, f"Updated: {updated}/{desired}"),
        (desired > available, f"Available: {available}/{desired}"), (desired > ready, f"Ready: {ready}/{desired}"),
    ], f"All replicas scheduled as expected. Replicas: {desired}")


def _k_replicaset(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    failure = condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return KResult(_INP, "Replica Failure condition. Check Pods")
    want = 1 if spec.get("replicas") is None else _int(spec, "replicas")
    labelled, available = _int(status, "fullyLabeledReplicas"), _int(status, "availableReplicas")
    ready, have = _int(status, "readyReplicas"), _int(status, "replicas")
    return _k_counts([
        (want > labelled, f"Labelled: {labelled}/{want}"), (want > available, f"Available: {available}/{want}"),
        (want > ready, f"Ready: {ready}/{want}"), (have > want, f"Pending termination: {have - want}"),
    ], f"ReplicaSet is available. Replicas: {have}")


def _k_pod(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    phase = _str(_map(obj, "status"), "phase")
    if phase == "Succeeded":
        return KResult(_CUR, "Pod has completed successfully")
    if phase == "Failed":
        return KResult(_CUR, "Pod has completed, but not successfully")
    if phase == "Running":
        if _pod_ready(obj):
            return KResult(_CUR, "Pod is Ready")
        looping = [str(cs.get("name")) for cs in container_statuses(obj)
                   if _map(_map(cs, "state"), "waiting").get("reason") == "CrashLoopBackOff"]
        if looping:
            return KResult(_FAIL, f"Containers in CrashLoop state: {','.join(looping)}")
        return KResult(_INP, "Pod is running but is not Ready")
    if phase == "Pending":
        scheduled = condition(obj, "PodScheduled")
        if scheduled is not None and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
            if age_s is None or age_s < SCHEDULE_WINDOW_S:
                return KResult(_INP, "Pod has not been scheduled")
            return KResult(_FAIL, "Pod could not be scheduled")
        return KResult(_INP, "Pod is in the Pending phase")
    if phase == "":
        return KResult(_INP, "Pod phase not available")
    return KResult(KStatus.UNKNOWN, f"unknown phase {phase}")


def _k_job(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    parallelism = 1 if spec.get("parallelism") is None else _int(spec, "parallelism")
    completions = parallelism if spec.get("completions") is None else _int(spec, "completions")
    succeeded, active, failed = _int(status, "succeeded"), _int(status, "active"), _int(status, "failed")
    for cond in conditions(obj):
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return KResult(_CUR, f"Job Completed. succeeded: {succeeded}/{completions}")
        if cond.get("type") == "Failed":
            return KResult(_FAIL, f"Job Failed. failed: {failed}/{completions}")
        if cond.get("type") == "Suspended":
            return KResult(_CUR, "Job is suspended")
    if not status.get("startTime"):
        return KResult(_INP, "Job not started")
    return KResult(_CUR, f"Job in progress. success:{succeeded}, active: {active}, failed: {failed}")


def _k_pvc(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    phase = _map(obj, "status").get("phase") or "unknown"
    return KResult(_CUR, "PVC is Bound") if phase == "Bound" else KResult(_INP, f"PVC is not Bound. phase: {phase}")


def _k_service(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    spec = _map(obj, "spec")
    if spec.get("type") == "LoadBalancer" and not spec.get("clusterIP"):
        return KResult(_INP, "ClusterIP not set. Service type: LoadBalancer")
    return KResult(_CUR, "Service is ready")


def _k_crd(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    for cond in conditions(obj):
        if cond.get("type") == "NamesAccepted" and cond.get("status") == "False":
            return KResult(_FAIL, _str(cond, "message"))
        if cond.get("type") == "Established":
            if cond.get("status") == "False" and cond.get("reason") != "Installing":
                return KResult(_FAIL, _str(cond, "message"))
            if cond.get("status") == "True":
                return KResult(_CUR, "CRD is established")
    return KResult(_INP, "Install in progress")


def _k_always(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    return KResult(_CUR, "Resource is always ready")


def _k_pdb(obj: Mapping[str, Any], meta: Mapping[str, Any], age_s: float | None) -> KResult:
    return KResult(_CUR, "AllowedDisruptions has been computed.")


_KSTATUS: dict[tuple[str, str], KRule] = {
    ("", "Service"): _k_service, ("", "Pod"): _k_pod, ("", "Secret"): _k_always, ("", "ConfigMap"): _k_always,
    ("", "PersistentVolumeClaim"): _k_pvc, ("apps", "StatefulSet"): _k_statefulset,
    ("apps", "DaemonSet"): _k_daemonset, ("extensions", "DaemonSet"): _k_daemonset,
    ("apps", "Deployment"): _k_deployment, ("extensions", "Deployment"): _k_deployment,
    ("apps", "ReplicaSet"): _k_replicaset, ("extensions", "ReplicaSet"): _k_replicaset,
    ("policy", "PodDisruptionBudget"): _k_pdb, ("batch", "CronJob"): _k_always, ("batch", "Job"): _k_job,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _k_crd,
}
