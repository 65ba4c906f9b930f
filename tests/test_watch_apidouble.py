"""The API double speaks the apiserver's wire protocol to the real kubernetes client (the seam other tests trust)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.apidouble import ApiDouble

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}


def _ns(double: ApiDouble, name: str = "argocd") -> None:
    double.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def test_kubeconfig_discovery_and_version(tmp_path: Path) -> None:
    with ApiDouble(version="v1.30.4") as double:
        path = double.kubeconfig(tmp_path / "kc", context="kind-mirror")
        api = config.new_client_from_config(config_file=str(path), context="kind-mirror")
        assert client.VersionApi(api).get_code().git_version == "v1.30.4"
        groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
        assert {"apps", "apiextensions.k8s.io", "networking.k8s.io"} <= groups
        resources = {r.name for r in client.CoreV1Api(api).get_api_resources().resources}
        assert {"pods", "pods/log", "secrets", "events"} <= resources
        api.close()


def test_simulated_rollout_and_owned_objects() -> None:
    with ApiDouble() as double:
        _ns(double)
        api = double.api_client()
        client.AppsV1Api(api).create_namespaced_deployment("argocd", DEPLOYMENT)
        time.sleep(0.5)
        dep = client.AppsV1Api(api).read_namespaced_deployment("web", "argocd")
        assert (dep.status.ready_replicas, dep.status.observed_generation) == (2, 1)
        assert dep.status.conditions[1].reason == "NewReplicaSetAvailable"
        rs = client.AppsV1Api(api).list_namespaced_replica_set("argocd").items
        pods = client.CoreV1Api(api).list_namespaced_pod("argocd", label_selector="app=web").items
        assert len(rs) == 1 and len(pods) == 2
        assert all(p.metadata.owner_references[0].uid == rs[0].metadata.uid for p in pods)
        client.AppsV1Api(api).delete_namespaced_deployment("web", "argocd")
        assert client.CoreV1Api(api).list_namespaced_pod("argocd").items == []  # garbage collected


def test_watch_resumes_and_410_is_an_error_event() -> None:
    with ApiDouble(simulate=False) as double:
        _ns(double)
        api = double.api_client()
        core = client.CoreV1Api(api)
        listing = core.list_namespaced_config_map("argocd")
        rv = listing.metadata.resource_version
        core.create_namespaced_config_map("argocd", {"metadata": {"name": "a"}, "data": {"k": "1"}})
        core.patch_namespaced_config_map("a", "argocd", {"data": {"k": "2"}})
        events = [(e["type"], e["object"].data["k"]) for e in watch.Watch().stream(
            core.list_namespaced_config_map, "argocd", resource_version=rv, timeout_seconds=1)]
        assert events == [("ADDED", "1"), ("MODIFIED", "2")]

        double.expire_watches()
        raw = core.list_namespaced_config_map("argocd", watch=True, resource_version=rv, timeout_seconds=1,
                                              _preload_content=False)
        line = json.loads(raw.data.decode().splitlines()[0])
        assert line == {"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"too old resource version: {rv} ({double.store.compacted_rv})", "reason": "Expired",
            "code": 410}}


def test_server_side_apply_create_merge_conflict_and_force() -> None:
    with ApiDouble(simulate=False) as double:
        _ns(double)
        api = double.api_client()
        path = "/apis/apps/v1/namespaces/argocd/deployments/web"

        def apply(body: dict, **query: str) -> tuple[int, dict]:
            params = api.param_serialize("PATCH", path, query_params=list(query.items()), body=body,
                                         header_params={"Content-Type": "application/apply-patch+yaml"})
            response = api.call_api(*params)
            return response.status, json.loads(response.read())

        status, created = apply(DEPLOYMENT, fieldManager="mirror")
        assert status == 201 and created["metadata"]["generation"] == 1
        status, body = apply(DEPLOYMENT)
        assert status == 422 and "fieldManager: Required value" in body["message"]
        client.AppsV1Api(api).patch_namespaced_deployment("web", "argocd", {"spec": {"replicas": 5}})
        changed = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicas": 3}}
        live = double.get("Deployment", "web", "argocd")
        assert live is not None
        live["metadata"]["managedFields"].append({"manager": "kubectl-edit", "operation": "Update"})
        double.store.replace(double.store.type_of_kind("apps/v1", "Deployment"), live)  # type: ignore[arg-type]
        status, body = apply(changed, fieldManager="mirror")
        assert status == 409
        assert body["message"].startswith('Apply failed with 1 conflict: conflict with "kubectl-edit"')
        status, body = apply(changed, fieldManager="mirror", force="true")
        assert status == 200 and body["spec"]["replicas"] == 3 and body["metadata"]["generation"] == 3


def test_annotation_limit_and_invalid_workload_texts() -> None:
    with ApiDouble(simulate=False) as double:
        _ns(double)
        core = client.CoreV1Api(double.api_client())
        with pytest.raises(ApiException) as too_big:
            core.create_namespaced_config_map("argocd", {"metadata": {"name": "x", "annotations": {"a": "b" * 262144}}})
        assert too_big.value.status == 422
        assert json.loads(too_big.value.body)["message"] == (
            'ConfigMap "x" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes')
        with pytest.raises(ApiException) as missing_ns:
            core.create_namespaced_config_map("nope", {"metadata": {"name": "x"}})
        assert missing_ns.value.status == 404


def test_logs_current_previous_and_tail() -> None:
    with ApiDouble() as double:
        _ns(double)
        double.pods("web").crashloop("app", log="one\ntwo\nthree\n", every=0.1)
        api = double.api_client()
        client.AppsV1Api(api).create_namespaced_deployment("argocd", {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"],
                                                                                             "replicas": 1}})
        time.sleep(0.5)
        core = client.CoreV1Api(api)
        pod = core.list_namespaced_pod("argocd").items[0]
        assert pod.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
        assert pod.status.container_statuses[0].restart_count >= 2
        assert core.read_namespaced_pod_log(pod.metadata.name, "argocd", container="app", previous=True,
                                            tail_lines=2) == "two\nthree\n"
        with pytest.raises(ApiException) as bad:
            core.read_namespaced_pod_log(pod.metadata.name, "argocd", container="nope")
        assert bad.value.status == 400
        events = core.list_namespaced_event("argocd", field_selector=f"involvedObject.name={pod.metadata.name}")
        assert "BackOff" in {e.reason for e in events.items}


def test_faults_and_request_counting() -> None:
    with ApiDouble(simulate=False) as double:
        api = double.api_client()
        core = client.CoreV1Api(api)
        double.fail(503, count=1, verb="list")
        with pytest.raises(ApiException) as failure:
            core.list_namespace()
        assert failure.value.status == 503
        assert core.list_namespace().items  # only `count` requests fail
        assert double.request_count("list") == 2
        assert ("list", "/api/v1/namespaces") in double.requests


def test_repeated_apply_is_a_no_op() -> None:
    with ApiDouble(simulate=False) as double:
        _ns(double)
        api = double.api_client()
        path = "/apis/apps/v1/namespaces/argocd/deployments/web"
        versions = []
        for _ in range(2):
            params = api.param_serialize("PATCH", path, query_params=[("fieldManager", "m")], body=DEPLOYMENT,
                                         header_params={"Content-Type": "application/apply-patch+yaml"})
            versions.append(json.loads(api.call_api(*params).read())["metadata"]["resourceVersion"])
        assert versions[0] == versions[1]


def test_dry_run_answers_like_a_write_and_stores_nothing() -> None:
    """dryRun=All (the typed client's dry_run="All") on create, apply, patch, update and delete: the usual checks and
    answer, no stored change, no event; scripted rejections come as the apiserver's 422 Status with details.causes."""
    with ApiDouble(simulate=False) as double:
        _ns(double)
        api = double.api_client()
        apps = client.AppsV1Api(api)
        rv = double.store.rv
        created = apps.create_namespaced_deployment("argocd", DEPLOYMENT, dry_run="All")
        assert created.metadata.uid and created.metadata.resource_version is None
        params = api.param_serialize("PATCH", "/apis/apps/v1/namespaces/argocd/deployments/web", body=DEPLOYMENT,
                                     query_params=[("fieldManager", "m"), ("dryRun", "All")],
                                     header_params={"Content-Type": "application/apply-patch+yaml"})
        assert api.call_api(*params).status == 201
        assert double.store.rv == rv and double.get("Deployment", "web", "argocd") is None
        live = apps.create_namespaced_deployment("argocd", DEPLOYMENT)
        rv = double.store.rv
        patched = apps.patch_namespaced_deployment("web", "argocd", {"spec": {"replicas": 5}}, dry_run="All")
        assert (patched.spec.replicas, patched.metadata.generation) == (5, 2)
        replaced = apps.replace_namespaced_deployment("web", "argocd", {**DEPLOYMENT, "spec": {
            **DEPLOYMENT["spec"], "replicas": 7}}, dry_run="All")
        assert replaced.spec.replicas == 7 and replaced.metadata.resource_version == live.metadata.resource_version
        apps.delete_namespaced_deployment("web", "argocd", dry_run="All")
        stored = double.get("Deployment", "web", "argocd")
        assert double.store.rv == rv and stored is not None and stored["spec"]["replicas"] == 2
        with pytest.raises(ApiException) as unsupported:
            apps.patch_namespaced_deployment("web", "argocd", {"spec": {"replicas": 5}}, dry_run="Some")
        assert unsupported.value.status == 400
        double.reject("Deployment", "web", "argocd", field="spec.replicas", message="Invalid value: -1: must be >= 0")
        with pytest.raises(ApiException) as rejected:
            apps.patch_namespaced_deployment("web", "argocd", {"spec": {"replicas": -1}}, dry_run="All")
        assert json.loads(rejected.value.body) == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Invalid", "code": 422,
            "message": 'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be >= 0',
            "details": {"name": "web", "group": "apps", "kind": "Deployment", "causes": [
                {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be >= 0",
                 "field": "spec.replicas"}]}}
        assert [verb for verb, _ in double.request_log if verb.startswith("dry-run-")] == [
            "dry-run-create", "dry-run-apply", "dry-run-patch", "dry-run-update", "dry-run-delete", "dry-run-patch",
            "dry-run-patch"]


def test_storage_classes_are_served_cluster_scoped() -> None:
    """The watcher reads StorageClasses to decide PVC exemptions: the double serves them like the apiserver."""
    with ApiDouble(simulate=False) as double:
        api = double.api_client()
        storage = client.StorageV1Api(api)
        storage.create_storage_class({"metadata": {"name": "standard"}, "provisioner": "rancher.io/local-path",
                                      "volumeBindingMode": "WaitForFirstConsumer"})
        assert [(c.metadata.name, c.volume_binding_mode) for c in storage.list_storage_class().items] == [
            ("standard", "WaitForFirstConsumer")]
        groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
        assert "storage.k8s.io" in groups
        assert double.request_count("list", "/apis/storage.k8s.io/v1/storageclasses") == 1
