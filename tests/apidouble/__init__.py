"""In-process Kubernetes API double: real HTTP, real `kubernetes` client, scripted timelines, faults.

Test infrastructure only (see README.md in this directory for the DSL). Typical use::

    with ApiDouble() as double:
        double.pods("argocd-redis").crashloop("secret-init", log="dial tcp 10.96.0.1:443: i/o timeout")
        api = double.api_client()          # a kubernetes.client.ApiClient built from double.kubeconfig(...)
        ...
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.kubeconfigs import write_kubeconfig

from .network import API_ENDPOINT, Network
from .server import Fault, Faults, Server
from .sim import ContainerScript, PodScript, Simulator
from .store import ApiError, ResourceType, Store

__all__ = ["ApiDouble", "ApiError", "ContainerScript", "Fault", "Network", "PodScript", "ResourceType"]


def kubernetes_service(address: str, port: int) -> list[dict[str, Any]]:
    """The `kubernetes` Service and the EndpointSlice kube-apiserver keeps for it, as on a kind cluster."""
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "labels": {
            "component": "apiserver", "provider": "kubernetes"}},
         "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                  "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "kubernetes", "labels": {
            "kubernetes.io/service-name": "kubernetes"}},
         "addressType": "IPv6" if ":" in address else "IPv4",
         "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]},
    ]


class ApiDouble:
    """An apiserver on 127.0.0.1:<free port> with a controller/kubelet simulator behind it."""

    def __init__(self, simulate: bool = True, version: str = "v1.31.0", tick_s: float = 0.05,
                 pod_start_s: float = 0.05, crd_establish_s: float = 0.05, history: int = 100_000,
                 namespaces: Iterable[str] = ("default", "kube-system"),
                 api_endpoint: tuple[str, int] = API_ENDPOINT) -> None:
        self.store = Store(history=history)
        self.faults = Faults()
        self.sim = Simulator(self.store, tick_s=tick_s, pod_start_s=pod_start_s, crd_establish_s=crd_establish_s)
        self.sim.enabled = simulate
        self.server = Server(self.store, self.faults, version=version, logs=self.sim.logs)
        for ns in namespaces:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.sim.network.api_endpoint = api_endpoint
        if "default" in namespaces:
            for obj in kubernetes_service(*api_endpoint):
                self.create(obj, "default")
        self._clients: list[Any] = []
        self._scratch: list[Path] = []  # kubeconfig directories api_client() made: removed on exit

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> ApiDouble:
        self.server.start()
        self.sim.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients:
            client.close()
        for directory in self._scratch:
            shutil.rmtree(directory, ignore_errors=True)
        self.sim.stop()
        self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def kubeconfig(self, path: Path, context: str = "apidouble") -> Path:
        """Write a kubeconfig for this double (as kind would for a cluster) and return its path."""
        return write_kubeconfig(path, self.url, context, "apidouble")

    def api_client(self, tmp: Path | None = None) -> Any:
        """A real kubernetes.client.ApiClient for this double, built the production way from a kubeconfig."""
        import tempfile

        from kubernetes import config as kconfig

        if tmp:
            directory = Path(tmp)
        else:
            directory = Path(tempfile.mkdtemp(prefix="apidouble-"))
            self._scratch.append(directory)
        path = self.kubeconfig(directory / "kubeconfig", "apidouble")
        client = kconfig.new_client_from_config(config_file=str(path), context="apidouble")
        self._clients.append(client)
        return client

    # -- direct state access (bypasses HTTP and request counting) ----------------------------------
    def _rt(self, obj: dict[str, Any]) -> ResourceType:
        rt = self.store.type_of_kind(obj["apiVersion"], obj["kind"])
        if rt is None:
            raise KeyError(f"the double does not serve {obj['apiVersion']} {obj['kind']}")
        return rt

    def create(self, obj: dict[str, Any], namespace: str = "") -> dict[str, Any]:
        return self.store.create(self._rt(obj), obj, namespace)

    def get(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        for rt in list(self.store.types.values()):
            if rt.kind == kind:
                return self.store.get(rt, namespace, name)
        return None

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.store.lock:
            return [copy.deepcopy(o) for o in self.store.all_of(kind)
                    if namespace is None or o["metadata"].get("namespace") == namespace]

    def set_status(self, kind: str, name: str, namespace: str, status: dict[str, Any], hold: bool = True) -> None:
        """Overwrite an object's status now; with hold=True the simulator stops managing it."""
        with self.store.lock:
            obj = self.get(kind, name, namespace)
            if obj is None:
                raise KeyError(f"{kind}/{namespace}/{name} does not exist")
            if hold:
                self.sim.frozen.add((kind, namespace, name))
            self.store.replace(self._rt(obj), {**obj, "status": status}, status_only=True)

    def release(self, kind: str, name: str, namespace: str) -> None:
        """Hand an object's status back to the simulator."""
        self.sim.frozen.discard((kind, namespace, name))

    def reject(self, kind: str, name: str, namespace: str = "", field: str = "", message: str = "Invalid value",
               reason: str = "FieldValueInvalid") -> None:
        """Answer every write of that object (create, update, patch, apply; dry run or not) with 422 Invalid, as
        validation does: each call adds one details.causes entry {reason, message, field}, and the Status message
        aggregates them ('Deployment.apps "x" is invalid: <field>: <message>')."""
        with self.store.lock:
            self.store.rejections.setdefault((kind, namespace, name), []).append(
                {"reason": reason, "message": message, "field": field})

    # -- scenario DSL ------------------------------------------------------------------------------
    @property
    def network(self) -> Network:
        """The pod network argocd-mirror's policy probe pods meet (network.py): `.enforcing`, `.lag_dials`,
        `.pod_network`; `.runs` records each probe run."""
        return self.sim.network

    def pods(self, workload: str) -> PodScript:
        """The behaviour script for pods of a Deployment/StatefulSet/Job (or a bare Pod) of that name."""
        return self.sim.scripts.setdefault(workload, PodScript())

    def script(self, at: float, kind: str | None = None, name: str | None = None, namespace: str = "",
               status: dict[str, Any] | None = None, patch: dict[str, Any] | None = None,
               create: dict[str, Any] | None = None, delete: bool = False, hold: bool = True) -> None:
        """At `at` seconds after the double started (or as soon after as the object exists): set status,
        merge-patch, create or delete an object."""
        from .server import merge_patch

        def action() -> bool:
            if create is not None:
                rt = self._rt(create)
                meta = create["metadata"]
                if self.store.get(rt, meta.get("namespace", namespace), meta["name"]) is None:
                    self.store.create(rt, create, meta.get("namespace", namespace))
                return True
            assert kind and name
            obj = self.get(kind, name, namespace)
            if obj is None:
                return False
            rt = self._rt(obj)
            if delete:
                self.store.delete(rt, namespace, name)
            elif status is not None:
                if hold:
                    self.sim.frozen.add((kind, namespace, name))
                self.store.replace(rt, {**obj, "status": status}, status_only=True)
            elif patch is not None:
                self.store.replace(rt, merge_patch(obj, patch), keep_status="status" not in patch)
            return True

        self.sim.at(at, action)

    def at(self, seconds: float, action: Callable[[], object]) -> None:
        """Run any callable (e.g. a fault: `lambda: double.drop_watches()`) at `seconds` after start."""
        self.sim.at(seconds, lambda: (action(), True)[1])

    def elapsed(self) -> float:
        """Seconds since the double started (the clock `script(at=...)` uses)."""
        return time.monotonic() - self.sim.t0

    # -- faults and metering -----------------------------------------------------------------------
    def fail(self, status: int = 500, count: int = 1, verb: str | None = None, path_contains: str | None = None,
             message: str | None = None, retry_after_s: int | None = None) -> None:
        """Answer the next `count` matching requests with `status` (500, 503, 429, ...), with a Retry-After
        header when given (API Priority and Fairness sends one with every 429)."""
        self.faults.fail(status, count, verb, path_contains, message, retry_after_s)

    def slow(self, delay_s: float, count: int = 1, verb: str | None = None, path_contains: str | None = None) -> None:
        self.faults.slow(delay_s, count, verb, path_contains)

    def drop_watches(self, abrupt: bool = False) -> None:
        """End every open watch stream now (abrupt: cut the connection without the final chunk)."""
        self.faults.abrupt_drop = abrupt
        self.faults.drop_generation += 1
        with self.store.lock:
            self.store.changed.notify_all()

    def expire_watches(self) -> None:
        """Compact history: open watches get an ERROR 410 event, resumes from old versions get 410."""
        with self.store.lock:
            self.store.rv += 1
            self.store.compact()

    @property
    def requests(self) -> dict[tuple[str, str], int]:
        with self.server.requests_lock:
            return dict(self.server.requests)

    def request_count(self, verb: str | None = None, path_contains: str | None = None) -> int:
        return sum(n for (v, path), n in self.requests.items()
                   if verb in (None, v) and (path_contains is None or path_contains in path))

    @property
    def request_log(self) -> list[tuple[str, str]]:
        """(verb, raw path) of every request in arrival order."""
        with self.server.requests_lock:
            return list(self.server.log)

    def reset_counts(self) -> None:
        with self.server.requests_lock:
            self.server.requests.clear()
            self.server.log.clear()
