"""A tiny kube-controller-manager + kubelet, so applied workloads roll out unless a script says otherwise.

It reconciles on a short tick: Deployments get a ReplicaSet per pod-template hash, ReplicaSets and
StatefulSets get Pods, Pods walk Pending -> Running/Ready, owners' statuses are rolled up from their pods,
CRDs become Established and start serving their kind. The kubelet part is deliberately faithful where
the v2.11.1 incident lives: a container whose env references a missing Secret/ConfigMap key waits in
CreateContainerConfigError with the kubelet's message, and init containers run in order before the rest.
Scripts (PodScript, timed actions) bend that default into scenarios.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .network import Network, is_probe
from .store import ApiError, ResourceType, Store, now_rfc3339


@dataclass
class ContainerScript:
    """How one container of a workload's pods behaves (times are seconds since the pod was created)."""

    crashloop_log: str | None = None  # crash-loops with this log (restartCount += 1 every restart_every_s)
    attempt_log: str | None = None  # crash-looping: what the current attempt has logged so far (default crashloop_log)
    restart_every_s: float = 0.2
    exit_code: int = 1
    waiting_reason: str | None = None  # waits with this reason/message until `until_s` (None = forever)
    waiting_message: str = ""
    until_s: float | None = None
    delay_s: float = 0.0  # extra time before it completes (init) or becomes ready (main)
    log: str = ""
    image: str | None = None  # what the kubelet reports as running (to simulate an image mismatch)
    creates: list[dict[str, Any]] = field(default_factory=list)  # objects an init container creates on success


class PodScript:
    """Builder for the behaviour of the pods of one workload (Deployment/StatefulSet/Pod name)."""

    def __init__(self) -> None:
        self.containers: dict[str, ContainerScript] = {}
        self.ready_after_s = 0.0

    def _c(self, name: str) -> ContainerScript:
        return self.containers.setdefault(name, ContainerScript())

    def crashloop(self, container: str, log: str, every: float = 0.2, exit_code: int = 1,
                  attempt: str | None = None) -> PodScript:
        """The container (init or main) exits `exit_code` after logging `log`, restarting every `every` s. `attempt`:
        the current log instead (a restarted attempt caught mid-way, e.g. its start-up banner only); the previous
        run's log (`previous=true`) stays `log`."""
        c = self._c(container)
        c.crashloop_log, c.restart_every_s, c.exit_code, c.attempt_log = log, every, exit_code, attempt
        return self

    init_crashloop = crashloop

    def waiting(self, container: str, reason: str, message: str = "", until: float | None = None) -> PodScript:
        c = self._c(container)
        c.waiting_reason, c.waiting_message, c.until_s = reason, message, until
        return self

    def delay(self, container: str, seconds: float) -> PodScript:
        self._c(container).delay_s = seconds
        return self

    def logs(self, container: str, text: str) -> PodScript:
        self._c(container).log = text
        return self

    def image(self, container: str, image: str) -> PodScript:
        self._c(container).image = image
        return self

    def creates(self, container: str, *objects: dict[str, Any]) -> PodScript:
        """When init container `container` completes, these objects are created (as secret-init does)."""
        self._c(container).creates.extend(objects)
        return self

    def ready_after(self, seconds: float) -> PodScript:
        self.ready_after_s = seconds
        return self


STARTED_AT = "2026-01-01T00:00:00Z"  # fixed, so re-computed statuses compare equal and cause no churn


def template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = owner["metadata"]["uid"]
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def _strip_volatile(status: Any) -> Any:
    return json.dumps(status, sort_keys=True)


class Simulator:
    """Reconciles the store on a tick; scripts and timed actions shape what it does."""

    def __init__(self, store: Store, tick_s: float = 0.05, pod_start_s: float = 0.05,
                 crd_establish_s: float = 0.05, node: str = "kind-control-plane") -> None:
        self.store = store
        self.tick_s, self.pod_start_s, self.crd_establish_s, self.node = tick_s, pod_start_s, crd_establish_s, node
        self.scripts: dict[str, PodScript] = {}
        self.frozen: set[tuple[str, str, str]] = set()  # (kind, ns, name) whose status scripts own
        self.born: dict[str, float] = {}  # uid -> monotonic creation time
        self.workload: dict[str, str] = {}  # pod uid -> workload name
        self.fired: set[tuple[str, str]] = set()  # (pod uid, init container) whose `creates` ran
        self.event_keys: dict[tuple[str, str, str], str] = {}  # (pod, reason, message) -> event name
        self.actions: list[tuple[float, int, Callable[[], bool]]] = []
        self.seq = itertools.count()
        self.t0 = time.monotonic()
        self.stop_event = threading.Event()
        self.enabled = True
        self.thread: threading.Thread | None = None
        self.errors: list[str] = []
        self.network = Network()  # runs argocd-mirror's policy probe pods (see network.py)
        self.probe_logs: dict[str, str] = {}  # pod uid -> stdout of its finished probe script

    # -- scheduling --------------------------------------------------------------------------------
    def at(self, seconds: float, action: Callable[[], bool]) -> None:
        """Run `action` at t0+seconds; it returns False to be retried next tick (e.g. object not there yet)."""
        with self.store.lock:
            heapq.heappush(self.actions, (self.t0 + seconds, next(self.seq), action))

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="apidouble-sim", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread:
            self.thread.join(timeout=5)
        self.network.close()

    def _run(self) -> None:
        while not self.stop_event.wait(self.tick_s):
            try:
                self.tick()
            except Exception as exc:  # keep simulating; tests can assert on .errors
                self.errors.append(repr(exc))

    def tick(self) -> None:
        now = time.monotonic()
        with self.store.lock:
            while self.actions and self.actions[0][0] <= now:
                _when, seq, action = heapq.heappop(self.actions)
                if not action():
                    heapq.heappush(self.actions, (now + self.tick_s, seq, action))
            if not self.enabled:
                return
            self._crds(now)
            for dep in self.store.all_of("Deployment"):
                self._deployment(dep)
            for sts in self.store.all_of("StatefulSet"):
                self._statefulset(sts)
            for rs in self.store.all_of("ReplicaSet"):
                self._replicaset(rs)
            for job in self.store.all_of("Job"):
                self._job(job)
            for pod in self.store.all_of("Pod"):
                self._kubelet(pod, now)
            for rs in self.store.all_of("ReplicaSet"):
                self._rs_status(rs)
            for dep in self.store.all_of("Deployment"):
                self._deployment_status(dep)
            for sts in self.store.all_of("StatefulSet"):
                self._sts_status(sts)

    # -- helpers -----------------------------------------------------------------------------------
    def rt(self, kind: str) -> ResourceType:
        for rt in self.store.types.values():
            if rt.kind == kind:
                return rt
        raise KeyError(kind)

    def _set_status(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if (obj["kind"], meta.get("namespace", ""), meta["name"]) in self.frozen:
            return
        if _strip_volatile(obj.get("status")) != _strip_volatile(status):
            self.store.replace(self.rt(obj["kind"]), {**obj, "status": status}, status_only=True)

    def _pods_of(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for p in self.store.all_of("Pod") if _owned_by(p, owner)]

    def _create_pod(self, owner: dict[str, Any], name: str, workload: str, extra_labels: dict[str, str]) -> None:
        template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
        meta = template.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": owner["metadata"]["namespace"],
                            "labels": {**(meta.get("labels") or {}), **extra_labels},
                            "annotations": meta.get("annotations") or {}, "ownerReferences": [_owner_ref(owner)]},
               "spec": {**(template.get("spec") or {}), "nodeName": self.node},
               "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}}
        created = self.store.create(self.rt("Pod"), pod)
        uid = created["metadata"]["uid"]
        self.born[uid] = time.monotonic()
        self.workload[uid] = workload
        self.event(created, "Normal", "Scheduled",
                   f"Successfully assigned {created['metadata']['namespace']}/{name} to {self.node}")

    def event(self, obj: dict[str, Any], etype: str, reason: str, message: str) -> None:
        """Record a core/v1 Event as the kubelet/controllers would (repeats bump count)."""
        meta = obj["metadata"]
        key = (meta.get("uid", ""), reason, message)
        now = now_rfc3339()
        rt = self.rt("Event")
        if key in self.event_keys:
            existing = self.store.get(rt, meta.get("namespace", "default"), self.event_keys[key])
            if existing:
                existing["count"] = int(existing.get("count", 1)) + 1
                existing["lastTimestamp"] = now
                self.store.replace(rt, existing)
            return
        name = f"{meta['name']}.{next(self.seq):016x}"
        self.event_keys[key] = name
        self.store.create(rt, {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": meta.get("namespace", "default")},
            "involvedObject": {"kind": obj["kind"], "namespace": meta.get("namespace", ""), "name": meta["name"],
                               "uid": meta.get("uid", ""), "apiVersion": obj["apiVersion"]},
            "reason": reason, "message": message, "type": etype, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now, "source": {"component": "kubelet", "host": self.node}})

    # -- controllers -------------------------------------------------------------------------------
    def _crds(self, now: float) -> None:
        for crd in self.store.all_of("CustomResourceDefinition"):
            uid = crd["metadata"]["uid"]
            self.born.setdefault(uid, now)
            spec = crd.get("spec") or {}
            names = spec.get("names") or {}
            established = now - self.born[uid] >= self.crd_establish_s
            conditions = [{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                           "message": "no conflicts found"},
                          {"type": "Established", "status": "True" if established else "False",
                           "reason": "InitialNamesAccepted" if established else "Installing",
                           "message": "the initial names have been accepted" if established
                           else "the CRD is being installed"}]
            stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
            self._set_status(crd, {"conditions": conditions, "acceptedNames": names, "storedVersions": stored})
            if established:
                for version in spec.get("versions") or []:
                    if version.get("served", True):
                        self.store.register(ResourceType(spec.get("group", ""), version["name"], names.get("kind", ""),
                                                         names.get("plural", ""), spec.get("scope") != "Cluster",
                                                         tuple(names.get("shortNames") or ())))

    def _deployment(self, dep: dict[str, Any]) -> None:
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        hash_ = template_hash(template)
        replicas = int(spec.get("replicas", 1))
        ns = dep["metadata"]["namespace"]
        found = False
        for rs in self.store.all_of("ReplicaSet"):
            if not _owned_by(rs, dep):
                continue
            if rs["metadata"].get("labels", {}).get("pod-template-hash") == hash_:
                found = True
                if int((rs.get("spec") or {}).get("replicas", 0)) != replicas:
                    self.store.replace(self.rt("ReplicaSet"), {**rs, "spec": {**rs["spec"], "replicas": replicas}})
            elif int((rs.get("spec") or {}).get("replicas", 0)) != 0:  # old revision: scale down (Recreate-like)
                self.store.replace(self.rt("ReplicaSet"), {**rs, "spec": {**rs["spec"], "replicas": 0}})
        if not found:
            labels = {**((template.get("metadata") or {}).get("labels") or {}), "pod-template-hash": hash_}
            tmpl = copy.deepcopy(template)
            tmpl.setdefault("metadata", {})["labels"] = labels
            self.store.create(self.rt("ReplicaSet"), {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{dep['metadata']['name']}-{hash_}", "namespace": ns, "labels": labels,
                             "ownerReferences": [_owner_ref(dep)]},
                "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": tmpl}})

    def _workload_of(self, rs: dict[str, Any]) -> str:
        for ref in rs["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Deployment":
                return str(ref["name"])
        return str(rs["metadata"]["name"])

    def _adopt_orphans(self, rs: dict[str, Any]) -> None:
        """The ReplicaSet controller's ClaimPods: a pod with no controller whose labels the selector matches
        becomes this ReplicaSet's, and counts (and may be deleted) as one of its replicas."""
        wanted = ((rs.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        for pod in self.store.all_of("Pod"):
            meta = pod["metadata"]
            if (meta.get("namespace") != rs["metadata"]["namespace"] or not wanted
                    or any(ref.get("controller") for ref in meta.get("ownerReferences") or [])
                    or any((meta.get("labels") or {}).get(k) != v for k, v in wanted.items())):
                continue
            refs = [*(meta.get("ownerReferences") or []), _owner_ref(rs)]
            self.store.replace(self.rt("Pod"), {**pod, "metadata": {**meta, "ownerReferences": refs}})

    def _replicaset(self, rs: dict[str, Any]) -> None:
        self._adopt_orphans(rs)
        want = int((rs.get("spec") or {}).get("replicas", 1))
        pods = sorted(self._pods_of(rs), key=lambda p: p["metadata"]["name"])
        for pod in pods[want:]:
            self.store.delete(self.rt("Pod"), pod["metadata"]["namespace"], pod["metadata"]["name"])
        for i in range(len(pods), want):
            suffix = hashlib.sha256(f"{rs['metadata']['uid']}-{i}".encode()).hexdigest()[:5]
            self._create_pod(rs, f"{rs['metadata']['name']}-{suffix}", self._workload_of(rs), {})

    def _statefulset(self, sts: dict[str, Any]) -> None:
        spec = sts.get("spec") or {}
        revision = f"{sts['metadata']['name']}-{template_hash(spec.get('template') or {})}"
        want = int(spec.get("replicas", 1))
        pods = {p["metadata"]["name"]: p for p in self._pods_of(sts)}
        for name, pod in pods.items():
            index = int(name.rsplit("-", 1)[1])
            if index >= want or pod["metadata"]["labels"].get("controller-revision-hash") != revision:
                self.store.delete(self.rt("Pod"), pod["metadata"]["namespace"], name)
        current = {p["metadata"]["name"] for p in self._pods_of(sts)}
        for i in range(want):
            name = f"{sts['metadata']['name']}-{i}"
            if name not in current:
                self._create_pod(sts, name, sts["metadata"]["name"], {"controller-revision-hash": revision})

    def _job(self, job: dict[str, Any]) -> None:
        pods = self._pods_of(job)
        if not pods and not (job.get("status") or {}).get("conditions"):
            self._create_pod(job, f"{job['metadata']['name']}-{job['metadata']['uid'][:5]}", job["metadata"]["name"],
                             {})
            return
        done = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
        if done:
            self._set_status(job, {"succeeded": 1, "conditions": [
                {"type": "Complete", "status": "True", "reason": "Completed", "message": "Reached expected number "
                 "of succeeded pods"}]})
        else:
            self._set_status(job, {"active": len(pods), "startTime": STARTED_AT})

    # -- kubelet -----------------------------------------------------------------------------------
    def _config_error(self, pod: dict[str, Any], container: dict[str, Any]) -> str | None:
        """The kubelet's CreateContainerConfigError message for a missing non-optional env source, if any."""
        ns = pod["metadata"]["namespace"]
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            for ref_key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                ref = source.get(ref_key)
                if not ref or ref.get("optional"):
                    continue
                obj = self.store.get(self.rt(kind), ns, ref.get("name", ""))
                if obj is None:
                    return f'{kind.lower()} "{ref.get("name")}" not found'
                data = {**(obj.get("data") or {}), **(obj.get("stringData") or {}), **(obj.get("binaryData") or {})}
                if ref.get("key") not in data:
                    return f"couldn't find key {ref.get('key')} in {kind} {ns}/{ref.get('name')}"
        for source in container.get("envFrom") or []:
            for ref_key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                ref = source.get(ref_key)
                if ref and not ref.get("optional") and self.store.get(self.rt(kind), ns, ref.get("name", "")) is None:
                    return f'{kind.lower()} "{ref.get("name")}" not found'
        return None

    def _container_status(self, pod: dict[str, Any], c: dict[str, Any], script: ContainerScript | None,
                          t: float, init: bool) -> tuple[dict[str, Any], str]:
        """(status, outcome) where outcome is 'done' (init completed), 'running', 'ready' or 'blocked'."""
        image = (script.image if script and script.image else None) or c.get("image", "")
        status: dict[str, Any] = {"name": c["name"], "image": image, "imageID": f"{image}@sha256:{'0' * 64}",
                                  "restartCount": 0, "ready": False, "started": False}
        started_at = STARTED_AT
        if script and script.crashloop_log is not None:
            restarts = int(t / script.restart_every_s)
            status["restartCount"] = restarts
            if restarts == 0:
                status["state"] = {"running": {"startedAt": started_at}}
                status["started"] = True
            else:
                backoff = min(10 * 2 ** (restarts - 1), 300)
                status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                    f"back-off {backoff}s restarting failed container={c['name']} "
                    f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})")}}
                status["lastState"] = {"terminated": {"exitCode": script.exit_code, "reason": "Error",
                                                      "startedAt": started_at, "finishedAt": started_at}}
                self.event(pod, "Warning", "BackOff", f"Back-off restarting failed container {c['name']} in pod "
                           f"{pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})")
            return status, "blocked"
        if script and script.waiting_reason and (script.until_s is None or t < script.until_s):
            status["state"] = {"waiting": {"reason": script.waiting_reason, "message": script.waiting_message}}
            return status, "blocked"
        if not init:
            error = self._config_error(pod, c)
            if error:
                status["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": error}}
                self.event(pod, "Warning", "Failed", f"Error: {error}")
                return status, "blocked"
        delay = script.delay_s if script else 0.0
        if t < delay:
            status["state"] = {"running": {"startedAt": started_at}}
            status["started"] = True
            return status, "running"
        if init:
            status["state"] = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started_at,
                                              "finishedAt": started_at}}
            return status, "done"
        status["state"] = {"running": {"startedAt": started_at}}
        status["started"], status["ready"] = True, True
        return status, "ready"

    def _probe(self, pod: dict[str, Any], t: float) -> None:
        """Run a policy probe pod's script once against self.network; it then stays Succeeded/Failed."""
        meta = pod["metadata"]
        namespace = meta["namespace"]
        if meta["uid"] in self.probe_logs or t < self.pod_start_s or ("Pod", namespace, meta["name"]) in self.frozen:
            return
        policies = [p for p in self.store.all_of("NetworkPolicy") if p["metadata"].get("namespace") == namespace]
        code, out = self.network.run(pod, policies)
        self.probe_logs[meta["uid"]] = out
        (c,) = pod["spec"]["containers"]
        reason = "Completed" if code == 0 else "Error"
        self._set_status(pod, {
            "phase": "Succeeded" if code == 0 else "Failed", "hostIP": "172.18.0.2", "podIP": "10.244.0.11",
            "startTime": STARTED_AT, "qosClass": "Burstable",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
                           {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"},
                           {"type": "Ready", "status": "False", "reason": "PodCompleted"}],
            "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "ready": False, "restartCount": 0,
                                   "imageID": f"{c.get('image', '')}@sha256:{'0' * 64}", "started": False,
                                   "state": {"terminated": {"exitCode": code, "reason": reason,
                                                            "startedAt": STARTED_AT, "finishedAt": STARTED_AT}}}]})

    def _kubelet(self, pod: dict[str, Any], now: float) -> None:
        uid = pod["metadata"]["uid"]
        born = self.born.setdefault(uid, now)
        if is_probe(pod):
            self._probe(pod, now - born)
            return
        workload = self.workload.get(uid, pod["metadata"]["name"])
        script = self.scripts.get(workload) or PodScript()
        t = now - born
        spec = pod.get("spec") or {}
        if t < self.pod_start_s:
            return
        t -= self.pod_start_s
        status: dict[str, Any] = {"phase": "Pending", "hostIP": "172.18.0.2", "podIP": "10.244.0.10",
                                  "startTime": "2026-01-01T00:00:00Z", "qosClass": "BestEffort"}
        init_statuses, main_statuses = [], []
        initialized = True
        blocked_init = None
        for c in spec.get("initContainers") or []:
            if not initialized:
                init_statuses.append(_initializing(c))
                continue
            cs, outcome = self._container_status(pod, c, script.containers.get(c["name"]), t, init=True)
            init_statuses.append(cs)
            if outcome == "done":
                if (uid, c["name"]) not in self.fired:
                    self.fired.add((uid, c["name"]))
                    for obj in (script.containers.get(c["name"]) or ContainerScript()).creates:
                        rt = self.store.type_of_kind(obj["apiVersion"], obj["kind"])
                        if rt and self.store.get(rt, pod["metadata"]["namespace"], obj["metadata"]["name"]) is None:
                            self.store.create(rt, obj, pod["metadata"]["namespace"])
            else:
                initialized, blocked_init = False, c["name"]
        all_ready = initialized
        any_running = False
        for c in spec.get("containers") or []:
            if not initialized:
                main_statuses.append(_initializing(c))
                continue
            cs, outcome = self._container_status(pod, c, script.containers.get(c["name"]), t, init=False)
            if outcome == "ready" and t < script.ready_after_s:
                cs["ready"], outcome = False, "running"
            main_statuses.append(cs)
            all_ready = all_ready and outcome == "ready"
            any_running = any_running or outcome in ("ready", "running") or "running" in cs.get("state", {})
        if initialized and any_running:
            status["phase"] = "Running"
        owner_kinds = {ref.get("kind") for ref in pod["metadata"].get("ownerReferences") or []}
        if "Job" in owner_kinds and all_ready:
            status["phase"] = "Succeeded"
            for cs in main_statuses:
                cs["ready"], cs["state"] = False, {"terminated": {"exitCode": 0, "reason": "Completed"}}
        conditions = [{"type": "PodScheduled", "status": "True"},
                      {"type": "Initialized", "status": "True" if initialized else "False"},
                      {"type": "ContainersReady", "status": "True" if all_ready else "False"},
                      {"type": "Ready", "status": "True" if all_ready else "False"}]
        if blocked_init:
            conditions[1].update(reason="ContainersNotInitialized",
                                 message=f"containers with incomplete status: [{blocked_init}]")
        status["conditions"] = conditions
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        status["containerStatuses"] = main_statuses
        self._set_status(pod, status)

    def logs(self, ns: str, pod_name: str, container: str, previous: bool) -> str | None:
        with self.store.lock:
            pod = self.store.get(self.rt("Pod"), ns, pod_name)
            if pod is None:
                return None
            if pod["metadata"]["uid"] in self.probe_logs and not previous:
                return self.probe_logs[pod["metadata"]["uid"]]
            script = self.scripts.get(self.workload.get(pod["metadata"]["uid"], pod_name))
            cs = script.containers.get(container) if script else None
            if previous:
                statuses = [*(pod.get("status") or {}).get("initContainerStatuses", []),
                            *(pod.get("status") or {}).get("containerStatuses", [])]
                restarted = any(s["name"] == container and s.get("restartCount", 0) > 0 for s in statuses)
                if not restarted:
                    return None
                return cs.crashloop_log if cs and cs.crashloop_log is not None else ""
            if cs is None:
                return ""
            if cs.crashloop_log is not None:
                return cs.attempt_log if cs.attempt_log is not None else cs.crashloop_log
            return cs.log

    # -- roll-ups ----------------------------------------------------------------------------------
    @staticmethod
    def _ready(pod: dict[str, Any]) -> bool:
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (pod.get("status") or {}).get("conditions") or [])

    def _rs_status(self, rs: dict[str, Any]) -> None:
        pods = self._pods_of(rs)
        ready = sum(self._ready(p) for p in pods)
        self._set_status(rs, {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                              "availableReplicas": ready,
                              "observedGeneration": rs["metadata"].get("generation", 1)})

    def _deployment_status(self, dep: dict[str, Any]) -> None:
        spec = dep.get("spec") or {}
        want = int(spec.get("replicas", 1))
        hash_ = template_hash(spec.get("template") or {})
        replicas = updated = ready = 0
        for rs in self.store.all_of("ReplicaSet"):
            if _owned_by(rs, dep):
                st = rs.get("status") or {}
                replicas += int(st.get("replicas", 0))
                ready += int(st.get("readyReplicas", 0))
                if rs["metadata"].get("labels", {}).get("pod-template-hash") == hash_:
                    updated = int(st.get("replicas", 0))
        complete = updated == want and ready >= want and replicas == want
        name = dep["metadata"]["name"]
        conditions = [
            {"type": "Available", "status": "True" if ready >= want else "False",
             "reason": "MinimumReplicasAvailable" if ready >= want else "MinimumReplicasUnavailable",
             "message": "Deployment has minimum availability." if ready >= want
             else "Deployment does not have minimum availability."},
            {"type": "Progressing", "status": "True",
             "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
             "message": f'ReplicaSet "{name}-{hash_}" has successfully progressed.' if complete
             else f'ReplicaSet "{name}-{hash_}" is progressing.'}]
        status: dict[str, Any] = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": replicas,
                                  "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
                                  "conditions": conditions}
        if replicas - ready > 0:
            status["unavailableReplicas"] = replicas - ready
        self._set_status(dep, status)

    def _sts_status(self, sts: dict[str, Any]) -> None:
        spec = sts.get("spec") or {}
        revision = f"{sts['metadata']['name']}-{template_hash(spec.get('template') or {})}"
        pods = self._pods_of(sts)
        ready = sum(self._ready(p) for p in pods)
        updated = sum(p["metadata"].get("labels", {}).get("controller-revision-hash") == revision for p in pods)
        self._set_status(sts, {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(pods),
                               "readyReplicas": ready, "currentReplicas": updated, "updatedReplicas": updated,
                               "availableReplicas": ready, "currentRevision": revision, "updateRevision": revision,
                               "collisionCount": 0})


__all__ = ["ApiError", "ContainerScript", "PodScript", "Simulator"]


def _initializing(container: dict[str, Any]) -> dict[str, Any]:
    """The status the kubelet reports for a container still behind an unfinished init container."""
    return {"name": container["name"], "image": container.get("image", ""), "imageID": "", "ready": False,
            "restartCount": 0, "started": False, "state": {"waiting": {"reason": "PodInitializing"}}}
