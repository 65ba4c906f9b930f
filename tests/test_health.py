"""Health rules beyond the §7 vectors: version gating, malformed input, remaining rule branches, exemptions,
owners, root-cause sentences, and aggregation (with hypothesis properties)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from validator.health import (
    ORDER,
    Health,
    HealthStatus,
    KResult,
    KStatus,
    StorageClasses,
    aggregate,
    app_health_exclusion,
    assess,
    counts_toward_app_health,
    environment_exempt,
    evidence,
    explain,
    kstatus,
    object_ref,
    owner_of,
    stuck_claim,
)

from .test_health_vectors import cond, deploy, obj, pod, sts, waiting

H, S, P, M, D, U = list(HealthStatus)
IGNORE = "argocd.argoproj.io/ignore-healthcheck"


# ---------------------------------------------------------------- dispatch, versions, malformed input

@pytest.mark.parametrize(("api", "kind", "message"), [
    ("apps/v1beta2", "Deployment", "unsupported Deployment GVK: apps/v1beta2, Kind=Deployment"),
    ("apps/v1beta1", "StatefulSet", "unsupported StatefulSet GVK: apps/v1beta1, Kind=StatefulSet"),
    ("apps/v1beta2", "DaemonSet", "unsupported DaemonSet GVK: apps/v1beta2, Kind=DaemonSet"),
    ("apps/v1beta2", "ReplicaSet", "unsupported ReplicaSet GVK: apps/v1beta2, Kind=ReplicaSet"),
    ("v2", "Pod", "unsupported Pod GVK: /v2, Kind=Pod"),
    ("batch/v1beta1", "Job", "unsupported Job GVK: batch/v1beta1, Kind=Job"),
    ("apiregistration.k8s.io/v2", "APIService",
     "unsupported APIService GVK: apiregistration.k8s.io/v2, Kind=APIService"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler",
     "unsupported HPA GVK: autoscaling/v2beta2, Kind=HorizontalPodAutoscaler"),
])
def test_unsupported_api_versions_are_unknown(api: str, kind: str, message: str) -> None:
    assert assess(obj(api, kind, status={})) == Health(U, message)


def test_ingress_any_version_of_both_groups() -> None:
    live = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    for api in ("extensions/v1beta1", "networking.k8s.io/v1", "networking.k8s.io/v1beta1"):
        assert assess(obj(api, "Ingress", status=live)).status is H


@pytest.mark.parametrize(("api", "kind"), [
    ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ServiceAccount"), ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"), ("argoproj.io/v1alpha1", "AppProject"),
    ("example.com/v1", "Deployment"),  # same kind, other group: not Argo CD's check
])
def test_kinds_without_a_check_have_no_health(api: str, kind: str) -> None:
    assert assess(obj(api, kind)) == Health(None)


def test_deletion_applies_to_every_kind_unless_hook_finalizer() -> None:
    for api, kind in (("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("apiextensions.k8s.io/v1",
                                                                         "CustomResourceDefinition")):
        gone = obj(api, kind, deletionTimestamp="2026-01-01T00:00:00Z")
        assert assess(gone) == Health(P, "Pending deletion")
    hook = obj("v1", "Pod", spec={"restartPolicy": "Never"}, status={"phase": "Succeeded"},
               deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["argocd.argoproj.io/hook-finalizer"])
    assert assess(hook).status is H


@pytest.mark.parametrize("live", [
    deploy(spec={"replicas": "three"}, status={}),
    deploy(spec=[], status={}),
    obj("v1", "Pod", spec={}, status={"phase": "Running", "containerStatuses": "nope"}),
    obj("v1", "Pod", spec={}, status={"phase": "Running", "conditions": [1, 2]}),
    sts(gen=True, spec={}, status={"observedGeneration": 1}),
    obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", status={"conditions": [
        {"type": "NamesAccepted", "status": "False"}]}),  # the Lua concatenates a nil message: script error
    obj("autoscaling/v1", "HorizontalPodAutoscaler", annotations={"autoscaling.alpha.kubernetes.io/conditions": "{"}),
])
def test_malformed_objects_are_unknown_never_healthy(live: dict[str, Any]) -> None:
    health = assess(live)
    assert health.status is U
    assert health.message


def test_objects_without_api_version_or_metadata_do_not_crash() -> None:
    assert assess({}).status is U
    assert assess({"apiVersion": "v1", "kind": "ConfigMap", "metadata": None}) == Health(None)


# ---------------------------------------------------------------- rule branches not in §7

def test_deployment_old_replicas_pending_termination() -> None:
    live = deploy(gen=1, spec={"replicas": 2}, status={"observedGeneration": 1, "replicas": 3, "updatedReplicas": 2,
                                                       "availableReplicas": 2})
    assert assess(live) == Health(P, "Waiting for rollout to finish: 1 old replicas are pending termination...")


def test_deployment_deadline_ignored_until_generation_observed() -> None:
    live = deploy(name="web", gen=2, spec={"replicas": 1}, status={
        "observedGeneration": 1, "conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded")]})
    assert assess(live).status is P


def test_statefulset_without_partition_block_uses_revisions() -> None:
    base = {"replicas": 2, "updateStrategy": {"type": "RollingUpdate"}}
    status = {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 1, "currentReplicas": 2,
              "currentRevision": "web-1", "updateRevision": "web-2"}
    assert assess(sts(gen=1, spec=base, status=status)) == Health(
        P, "waiting for statefulset rolling update to complete 1 pods at revision web-2...")
    status["updateRevision"] = "web-1"
    assert assess(sts(gen=1, spec=base, status=status)) == Health(
        H, "statefulset rolling update complete 2 pods at revision web-1...")


def test_statefulset_ondelete_ready() -> None:
    live = sts(gen=1, spec={"replicas": 1, "updateStrategy": {"type": "OnDelete"}},
               status={"observedGeneration": 1, "readyReplicas": 1})
    assert assess(live) == Health(H, "statefulset has 1 ready pods")


def test_daemonset_available_lagging() -> None:
    live = obj("apps/v1", "DaemonSet", name="ds", gen=1, status={
        "observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 1})
    assert assess(live) == Health(P, 'Waiting for daemon set "ds" rollout to finish: 1 of 3 updated pods are '
                                     "available...")


def test_replicaset_branches() -> None:
    rs = obj("apps/v1", "ReplicaSet", gen=2, spec={"replicas": 2}, status={"observedGeneration": 1})
    assert assess(rs) == Health(P, "Waiting for rollout to finish: observed replica set generation less than desired "
                                   "generation")
    rs = obj("apps/v1", "ReplicaSet", gen=1, spec={"replicas": 2}, status={"observedGeneration": 1,
                                                                           "availableReplicas": 1})
    assert assess(rs) == Health(P, "Waiting for rollout to finish: 1 out of 2 new replicas are available...")
    rs["status"]["availableReplicas"] = 2
    assert assess(rs) == Health(H, "")


def test_pod_branches() -> None:
    ready = [cond("Ready", "True")]
    assert assess(pod("Always", "Running", [{"name": "a", "state": {"running": {}}}], conditions=ready)).status is H
    assert assess(pod("Always", "Running", [{"name": "a", "state": {"running": {}}}])).status is P
    assert assess(pod("Always", "Succeeded")).status is H
    assert assess(pod("Always", "Unknown")).status is U
    failed = pod("Never", "Failed")
    failed["status"]["message"] = "The node was low on resource: memory."
    assert assess(failed) == Health(D, "The node was low on resource: memory.")
    # The waiting rule joins every failing regular container's message, in order.
    two = pod("Always", "Pending", [waiting("ErrImagePull", "a"), waiting("ContainerCreating", "x", name="b"),
                                    waiting("CreateContainerError", "c", name="c")])
    assert assess(two) == Health(D, "a, c")
    # restartPolicy absent (as in an unapplied manifest) reads as Always.
    unset = obj("v1", "Pod", spec={}, status={"phase": "Pending", "containerStatuses": [waiting("ErrImagePull", "m")]})
    assert assess(unset) == Health(D, "m")


def test_job_complete_keeps_message() -> None:
    live = obj("batch/v1", "Job", status={"conditions": [cond("Complete", "True", message="done")]})
    assert assess(live) == Health(H, "done")


@pytest.mark.parametrize(("conditions", "expected"), [
    ([], Health(P, "Status conditions not found")),
    ([cond("Terminating", "True", message="deleting")], Health(P, "CRD is terminating: deleting")),
    ([cond("Established", "True"), cond("NonStructuralSchema", "True", message="bad")],
     Health(D, "Schema violations found: bad")),
    ([cond("NamesAccepted", "True")], Health(D, "CRD is not established")),
    ([cond("NamesAccepted", "True"), cond("Established", "True")], Health(H, "CRD is healthy")),
])
def test_crd(conditions: list[dict[str, Any]], expected: Health) -> None:
    assert assess(obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", status={"conditions": conditions})) \
        == expected


def test_hpa_v1_annotation_and_v2_healthy() -> None:
    v1 = obj("autoscaling/v1", "HorizontalPodAutoscaler")
    assert assess(v1) == Health(P, "Waiting to Autoscale")
    v1["metadata"]["annotations"] = {"autoscaling.alpha.kubernetes.io/conditions": "[]"}
    assert assess(v1) == Health(P, "Waiting to Autoscale")
    able = {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale", "message": "ok"}
    v1["metadata"]["annotations"] = {"autoscaling.alpha.kubernetes.io/conditions": json.dumps([able])}
    assert assess(v1) == Health(H, "ok")
    v2 = obj("autoscaling/v2", "HorizontalPodAutoscaler", status={"conditions": [
        cond("ScalingActive", "True", "ValidMetricFound", "fine"), cond("ScalingLimited", "True", "TooFew", "min")]})
    assert assess(v2) == Health(H, "min")


def test_apiservice_local_is_healthy_with_reason_and_message() -> None:
    live = obj("apiregistration.k8s.io/v1", "APIService", status={"conditions": [
        cond("Available", "True", "Local", "Local APIServices are always available")]})
    assert assess(live) == Health(H, "Local: Local APIServices are always available")
    assert assess(obj("apiregistration.k8s.io/v1beta1", "APIService", status={})) == Health(
        P, "Waiting to be processed")


def test_cronjob_and_pdb_lua_checks() -> None:
    cj = obj("batch/v1", "CronJob", spec={"suspend": True})
    assert assess(cj) == Health(H, "CronJob is Suspended")  # Healthy since v3.2 (argo-cd #24428), not Suspended
    assert assess(obj("batch/v1", "CronJob", spec={})) == Health(P, "Waiting for CronJob")
    never = obj("batch/v1", "CronJob", spec={}, status={"lastScheduleTime": "2026-01-02T00:00:00Z"})
    assert assess(never) == Health(H, "The CronJob never completed successfully. It may not be healthy")
    failed = obj("batch/v1", "CronJob", spec={}, status={"lastScheduleTime": "2026-01-02T00:00:00Z",
                                                          "lastSuccessfulTime": "2026-01-01T00:00:00Z"})
    assert assess(failed).status is D
    pdb = obj("policy/v1", "PodDisruptionBudget", status={})
    assert assess(pdb) == Health(P, "Waiting for status")
    pdb["status"]["conditions"] = [cond("DisruptionAllowed", "False", "InsufficientPods")]
    assert assess(pdb) == Health(H, "PodDisruptionBudget has InsufficientPods")
    pdb["status"]["conditions"] = [cond("DisruptionAllowed", "False", "SyncFailed")]
    assert assess(pdb) == Health(D, "PodDisruptionBudget has SyncFailed")


def test_applicationset_lua_check_precedence() -> None:
    appset = obj("argoproj.io/v1alpha1", "ApplicationSet", status={})
    assert assess(appset) == Health(P, "Waiting for the status to be reported")
    appset["status"]["conditions"] = [cond("ResourcesUpToDate", "True", "ApplicationSetUpToDate", "up to date"),
                                      cond("RolloutProgressing", "True", "ApplicationSetModified", "rolling out")]
    assert assess(appset) == Health(P, "rolling out")  # RolloutProgressing outranks ResourcesUpToDate=True
    appset["status"]["conditions"].append(cond("ErrorOccurred", "True", "ApplicationGenerationFromParamsError", "bad"))
    assert assess(appset) == Health(D, "bad")
    appset["status"]["conditions"] = [cond("ResourcesUpToDate", "True", "ApplicationSetUpToDate", "All up to date")]
    assert assess(appset) == Health(H, "All up to date")


def test_strict_init_container_views() -> None:
    pull = pod("Always", "Pending", init=[waiting("ErrImagePull", 'pull "x:nope": not found', name="fetch")])
    assert assess(pull) == Health(P, "")
    assert assess(pull, strict=True) == Health(D, 'init container "fetch": ErrImagePull: pull "x:nope": not found')
    exited = pod("OnFailure", "Pending", init=[{"name": "migrate", "state": {"terminated": {
        "exitCode": 3, "message": "schema locked"}}}])
    assert assess(exited, strict=True) == Health(D, 'init container "migrate" terminated with exit code 3: '
                                                    '"schema locked"')
    retrying = pod("Always", "Pending", init=[{"name": "secret-init", "restartCount": 1, "ready": False,
                                               "state": {"running": {}},
                                               "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}])
    assert assess(retrying, strict=True).status is D
    fine = pod("Always", "Pending", init=[{"name": "copy", "state": {"terminated": {"exitCode": 0}}}])
    assert assess(fine, strict=True) == Health(P, "")


# ---------------------------------------------------------------- exemptions, owners, root causes

def test_environment_exemptions() -> None:
    lb = obj("v1", "Service", spec={"type": "LoadBalancer"}, status={"loadBalancer": {}})
    assert "load-balancer" in (environment_exempt(lb, assess(lb)) or "")
    ing = obj("networking.k8s.io/v1", "Ingress", status={})
    assert "ingress controller" in (environment_exempt(ing, assess(ing)) or "")
    pvc = obj("v1", "PersistentVolumeClaim", status={"phase": "Pending"})
    assert "WaitForFirstConsumer" in (environment_exempt(pvc, assess(pvc), KIND_STORAGE) or "")
    pvc["metadata"]["annotations"] = {"volume.kubernetes.io/selected-node": "kind-worker"}
    assert environment_exempt(pvc, assess(pvc), KIND_STORAGE) is None  # a consumer exists: a real problem
    api = obj("apiregistration.k8s.io/v1", "APIService", spec={"service": {"namespace": "kube-system",
                                                                            "name": "metrics-server"}}, status={})
    assert "kube-system/metrics-server" in (environment_exempt(api, assess(api)) or "")
    # Never exempt what is healthy, degraded, or not environment-dependent.
    ok_lb = obj("v1", "Service", spec={"type": "LoadBalancer"}, status={"loadBalancer": {"ingress": [{"ip": "1"}]}})
    assert environment_exempt(ok_lb, assess(ok_lb)) is None
    lost = obj("v1", "PersistentVolumeClaim", status={"phase": "Lost"})
    assert environment_exempt(lost, assess(lost)) is None
    stuck = deploy(gen=1, spec={"replicas": 1}, status={"observedGeneration": 1})
    assert environment_exempt(stuck, assess(stuck)) is None


# kind's classes: `standard` (default, WaitForFirstConsumer), plus an Immediate one and a class with no mode set
KIND_STORAGE = StorageClasses.from_items([
    {"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
     "volumeBindingMode": "WaitForFirstConsumer"},
    {"metadata": {"name": "fast"}, "volumeBindingMode": "Immediate"},
    {"metadata": {"name": "legacy"}},
])
WFFC_EXEMPT = ("PersistentVolumeClaim is Pending with no consumer scheduled: StorageClass standard binds only when "
               "a pod uses it (WaitForFirstConsumer)")


def pending_claim(**spec: Any) -> dict[str, Any]:
    return obj("v1", "PersistentVolumeClaim", spec={"accessModes": ["ReadWriteOnce"], **spec},
               status={"phase": "Pending"})


@pytest.mark.parametrize(("spec", "storage", "exempt", "stuck"), [
    ({"storageClassName": "standard"}, KIND_STORAGE, WFFC_EXEMPT, None),
    ({}, KIND_STORAGE, WFFC_EXEMPT.replace("standard", "standard (the cluster default)"), None),
    ({"storageClassName": "does-not-exist"}, KIND_STORAGE, None, "StorageClass does-not-exist does not exist"),
    ({"storageClassName": ""}, KIND_STORAGE, None,
     'storageClassName "" asks for a pre-provisioned PersistentVolume and none is bound'),
    ({"storageClassName": "fast"}, KIND_STORAGE, None,
     "StorageClass fast has volumeBindingMode Immediate, so Pending is not waiting for a consumer"),
    ({"storageClassName": "legacy"}, KIND_STORAGE, None,  # the API defaults an unset mode to Immediate
     "StorageClass legacy has volumeBindingMode Immediate, so Pending is not waiting for a consumer"),
    ({}, StorageClasses({"standard": "WaitForFirstConsumer"}), None,
     "no storageClassName and the cluster has no default StorageClass"),
    ({"storageClassName": "standard", "volumeName": "pv-1"}, KIND_STORAGE, None,
     "pre-bound to PersistentVolume pv-1, which it waits for, not for a consumer"),
    ({"storageClassName": "standard"}, StorageClasses(error="listing StorageClasses: forbidden"), None,
     "StorageClasses could not be read (listing StorageClasses: forbidden), so a Pending claim is not exempt"),
    ({"storageClassName": "standard"}, None, None,
     "StorageClasses could not be read (not given), so a Pending claim is not exempt"),
])
def test_pending_pvc_is_exempt_only_under_wait_for_first_consumer(
        spec: dict[str, Any], storage: StorageClasses | None, exempt: str | None, stuck: str | None) -> None:
    """§6 exempts "PVC Pending under WaitForFirstConsumer with no consumer" only: any other Pending claim is
    Progressing in Argo CD and must block a pass, and unknown StorageClasses prove nothing (fail closed)."""
    pvc = pending_claim(**spec)
    health = assess(pvc)
    assert health == Health(P)
    assert environment_exempt(pvc, health, storage) == exempt
    assert stuck_claim(pvc, health, storage) == stuck


def test_stuck_claim_only_speaks_of_pending_claims() -> None:
    bound = obj("v1", "PersistentVolumeClaim", spec={"storageClassName": "nope"}, status={"phase": "Bound"})
    assert stuck_claim(bound, assess(bound), KIND_STORAGE) is None
    deleting = pending_claim(storageClassName="nope")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert stuck_claim(deleting, assess(deleting), KIND_STORAGE) is None  # "Pending deletion" is another story
    malformed = pending_claim(storageClassName="nope")
    malformed["metadata"]["annotations"] = "junk"
    assert stuck_claim(malformed, assess(malformed), KIND_STORAGE) is None
    assert environment_exempt(malformed, assess(malformed), KIND_STORAGE) is None


def test_storage_classes_default_as_kubernetes_picks_it() -> None:
    def sc(name: str, created: str, key: str = "storageclass.kubernetes.io/is-default-class",
           value: str = "true") -> dict[str, Any]:
        return {"metadata": {"name": name, "creationTimestamp": created, "annotations": {key: value}},
                "volumeBindingMode": "WaitForFirstConsumer"}

    assert StorageClasses.from_items([]).default is None
    assert StorageClasses.from_items([sc("a", "2026-01-01T00:00:00Z", value="false")]).default is None
    beta = sc("old", "2026-01-01T00:00:00Z", key="storageclass.beta.kubernetes.io/is-default-class")
    assert StorageClasses.from_items([beta]).default == "old"
    newest = [sc("b", "2026-01-02T00:00:00Z"), sc("a", "2026-01-01T00:00:00Z"), sc("c", "2026-01-02T00:00:00Z")]
    assert StorageClasses.from_items(newest).default == "b"  # newest, then the first name (since Kubernetes 1.26)
    junk = StorageClasses.from_items(["x", {"metadata": {}}, {"metadata": {"name": "m"}, "volumeBindingMode": 3}])
    assert junk == StorageClasses()


def redis_pod(**status: Any) -> dict[str, Any]:
    return obj("v1", "Pod", name="argocd-redis-6b9f7c-xyz", spec={"restartPolicy": "Always"}, status=status,
               labels={"pod-template-hash": "6b9f7c"}, uid="redis-uid",
               ownerReferences=[{"kind": "ReplicaSet", "name": "argocd-redis-6b9f7c", "controller": True}])


def test_owner_of_maps_replicaset_to_deployment() -> None:
    assert owner_of(redis_pod()) == "Deployment/argocd/argocd-redis"
    sts_pod = obj("v1", "Pod", name="ctrl-0", ownerReferences=[{"kind": "StatefulSet", "name": "ctrl",
                                                                "controller": True}])
    assert owner_of(sts_pod) == "StatefulSet/argocd/ctrl"
    bare_rs = obj("v1", "Pod", name="p", ownerReferences=[{"kind": "ReplicaSet", "name": "rs", "controller": True}])
    assert owner_of(bare_rs) == "ReplicaSet/argocd/rs"
    assert owner_of(obj("v1", "Pod")) is None
    assert object_ref(obj("v1", "Namespace", name="argocd", namespace=None)) == "Namespace/argocd"


def test_explain_names_object_container_reason_and_last_words() -> None:
    live = redis_pod(phase="Pending", initContainerStatuses=[{
        "name": "secret-init", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                     "message": "dial tcp 10.96.0.1:443: i/o timeout"}}}])
    health = assess(live, strict=True)
    assert explain(live, health) == (
        "Pod/argocd/argocd-redis-6b9f7c-xyz (init container secret-init of Deployment/argocd/argocd-redis): "
        'CrashLoopBackOff after 3 restarts, last exit code 1: "dial tcp 10.96.0.1:443: i/o timeout"')
    assert explain(live, Health(H)) is None
    unsched = pod("Always", "Pending", conditions=[cond("PodScheduled", "False", "Unschedulable", "0/1 nodes")])
    assert explain(unsched, assess(unsched)) == "Pod/argocd/x: Unschedulable: 0/1 nodes"
    rs = obj("apps/v1", "ReplicaSet", gen=1, spec={"replicas": 1}, status={"observedGeneration": 1, "conditions": [
        cond("ReplicaFailure", "True", "FailedCreate", "quota")]})
    assert explain(rs, assess(rs)) == "ReplicaSet/argocd/x: Degraded: quota"
    lost = obj("v1", "PersistentVolumeClaim", status={"phase": "Lost"})
    assert explain(lost, assess(lost)) == "PersistentVolumeClaim/argocd/x: Degraded"


def test_evidence_is_bounded_to_the_useful_fields() -> None:
    live = redis_pod(phase="Pending", conditions=[cond("Ready", "False", "ContainersNotReady")],
                     containerStatuses=[waiting("PodInitializing", name="redis")])
    ev = evidence(live)
    assert ev["owner"] == "Deployment/argocd/argocd-redis"
    assert ev["phase"] == "Pending"
    assert ev["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert "spec" not in ev


# ---------------------------------------------------------------- aggregation

def test_aggregate_worst_wins_and_reports_not_assessed_and_exempt() -> None:
    agg = aggregate([("Deployment/a", Health(H)), ("Deployment/b", Health(P, "rolling")),
                     ("ConfigMap/c", Health(None)), ("Service/lb", Health(P))],
                    exempt={"Service/lb": "no LB on kind"})
    assert agg.status is P
    assert agg.worst == ("Deployment/b",)
    assert agg.not_assessed == ("ConfigMap/c",)
    assert agg.exempt == {"Service/lb": "no LB on kind"}
    assert agg.assessed == 2
    assert agg.counts() == {"Healthy": 1, "Progressing": 1}
    assert not agg.healthy
    only_exempt = aggregate([("Service/lb", Health(P))], exempt={"Service/lb": "no LB"})
    assert only_exempt.healthy and only_exempt.assessed == 0 and only_exempt.exempt


def test_aggregate_argo_order() -> None:
    order = [H, S, P, M, D, U]
    for better, worse in itertools.pairwise(order):
        assert aggregate([("a", Health(better)), ("b", Health(worse))]).status is worse


refs = st.sampled_from([f"Kind/ns/o{i}" for i in range(8)])
healths = st.builds(Health, st.sampled_from([*HealthStatus, None]), st.sampled_from(["", "m1", "m2"]))
entry_lists = st.lists(st.tuples(refs, healths), max_size=20)


@given(entry_lists, st.randoms(use_true_random=False))
def test_aggregate_is_order_independent(entries: list[tuple[str, Health]], rnd: Any) -> None:
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    assert aggregate(entries) == aggregate(shuffled)


@given(entry_lists)
def test_aggregate_is_never_better_than_its_worst_member(entries: list[tuple[str, Health]]) -> None:
    agg = aggregate(entries)
    for ref, health in entries:
        if health.status is not None:
            assert ORDER[agg.status] >= ORDER[health.status]
            assert ref not in agg.not_assessed
    statuses = [h.status for _, h in entries if h.status is not None]
    assert agg.status is (max(statuses, key=ORDER.__getitem__) if statuses else H)


def test_hooks_and_ignored_objects_do_not_count_toward_app_health() -> None:
    assert counts_toward_app_health(obj("apps/v1", "Deployment"))
    assert counts_toward_app_health(obj("apps/v1", "Deployment", annotations={IGNORE: "false"}))
    assert not counts_toward_app_health(obj("apps/v1", "Deployment", annotations={IGNORE: "true"}))
    assert not counts_toward_app_health(obj("batch/v1", "Job", annotations={"argocd.argoproj.io/hook": "PreSync"}))
    assert not counts_toward_app_health(obj("batch/v1", "Job", annotations={"helm.sh/hook": "pre-install"}))
    crd = obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", annotations={"helm.sh/hook": "crd-install"})
    assert counts_toward_app_health(crd)  # Helm's CRD marker is not a hook (gitops-engine helm hook.IsHook)
    assert counts_toward_app_health(obj("v1", "Pod", annotations="junk"))
    assert not counts_toward_app_health(obj("batch/v1", "Job", annotations={"argocd.argoproj.io/hook": "Skip"}))


def test_app_health_exclusion_says_why() -> None:
    assert app_health_exclusion(obj("apps/v1", "Deployment", annotations={IGNORE: "true"})) == \
        'annotated argocd.argoproj.io/ignore-healthcheck: "true"'
    assert app_health_exclusion(obj("batch/v1", "Job", annotations={"argocd.argoproj.io/hook": "PreSync"})) == \
        "hook (argocd.argoproj.io/hook: PreSync)"
    assert app_health_exclusion(obj("batch/v1", "Job", annotations={"helm.sh/hook": "post-install"})) == \
        "hook (helm.sh/hook: post-install)"
    assert app_health_exclusion(obj("apps/v1", "Deployment", annotations={IGNORE: "false"})) is None


def test_kstatus_generic_rules() -> None:
    custom = obj("example.com/v1", "Widget", gen=2, status={"observedGeneration": 2, "conditions": [
        cond("Ready", "False", "Waiting", "backend not reachable")]})
    assert kstatus(custom) == KResult(KStatus.IN_PROGRESS, "backend not reachable")
    custom["status"]["conditions"] = [cond("Ready", "True")]
    assert kstatus(custom) == KResult(KStatus.CURRENT, "Resource is Ready")
    custom["status"]["conditions"] = [cond("Stalled", "True", "Broken", "gave up")]
    assert kstatus(custom) == KResult(KStatus.FAILED, "gave up")
    custom["status"]["conditions"] = [cond("Reconciling", "True", "Working", "busy")]
    assert kstatus(custom) == KResult(KStatus.IN_PROGRESS, "busy")
    custom["status"]["observedGeneration"] = 3  # kstatus: any difference; Argo CD: only generation > observed
    assert kstatus(custom).message == "Widget generation is 2, but latest observed generation is 3"
    assert kstatus(obj("v1", "ConfigMap")) == KResult(KStatus.CURRENT, "Resource is always ready")
    assert kstatus(pod("Always", "Weird")).status is KStatus.UNKNOWN
    assert kstatus(obj("apps/v1", "Deployment", spec={"replicas": "x"})).status is KStatus.UNKNOWN
