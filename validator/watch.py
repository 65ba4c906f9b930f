"""Wait, driven by watches, until every bundle object is Healthy, a fail-fast rule fires, or the deadline passes.

One list+watch per resource kind in play (the bundle's kinds plus the Pods and ReplicaSets they own), never
one per object and never a sleep-poll: API load is independent of the number of objects. Each stream resumes
from the last resourceVersion seen, relists on 410 Gone, and reconnects after dropped streams and transient
errors (connection reset, 429, 5xx) with tenacity back-off. Every observed version goes through
health.assess (strict) and failfast.FailFast.observe; a local timer re-observes non-Healthy objects so grace
periods expire even when nothing changes on the wire. The verdict is computed on every change, so a pass is
reported as soon as the last object turns Healthy.

The live suspect names causes before consequences, in the diagnosis' order (failfast.culprits): a pod that only
waits for a missing Secret is named only when no other pod visibly fails. Each bundle workload's span (from first
seen to Healthy, or to the end of the wait) is kept for the run's timeline (WaitResult.timeline).

As in Argo CD's app health (health-rules §4.14), hooks and objects annotated ignore-healthcheck are not waited for
(only for their existence) and their fail-fast signals, or their pods', do not stop the wait; they are reported as
not counted. Pending PVCs are exempt only under a WaitForFirstConsumer StorageClass, read once per wait.
"""

from __future__ import annotations

import contextlib
import copy
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import urllib3
from kubernetes.client import ApiClient

from validator.errors import EnvironmentNotReady
from validator.failfast import FailFast, Terminal, Thresholds, culprits, initializing, waits_for
from validator.health import (
    Health,
    HealthStatus,
    StorageClasses,
    app_health_exclusion,
    assess,
    environment_exempt,
    explain,
    hook_annotation,
    owner_of,
    pod_problem,
    stuck_claim,
)
from validator.install import image_mismatches
from validator.kubeapi import Kube, KubeError, Resource, api_retrying, iter_lines
from validator.manifests import Bundle, KubeObject, ObjectRef, group_of
from validator.text import some
from validator.timeline import FAILED, OK, WAITING, Span

Progress = Callable[[str], None]
_OWNED_KINDS = (("v1", "Pod"), ("apps/v1", "ReplicaSet"))
_RANK = {HealthStatus.UNKNOWN: 5, HealthStatus.DEGRADED: 4, HealthStatus.MISSING: 3, HealthStatus.PROGRESSING: 2,
         HealthStatus.SUSPENDED: 1}
_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"})
STORAGE_CLASSES_PATH = "/apis/storage.k8s.io/v1/storageclasses"


@dataclass
class WaitResult:
    """The outcome of the wait; `passed` is True only for an observed, complete pass."""

    passed: bool
    root_cause: str | None
    terminal: Terminal | None
    health: dict[str, Health]
    elapsed_s: float
    exempt: dict[str, str] = field(default_factory=dict)  # ref -> why it cannot be Healthy on the mirror
    not_counted: dict[str, str] = field(default_factory=dict)  # ref -> why Argo CD's app health leaves it out
    missing: list[str] = field(default_factory=list)
    timed_out: bool = False
    last_change_s: float | None = None  # when (since start) the last bundle object changed health
    live: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # last seen object per ref
    watches: int = 0  # watch streams opened (initial + reconnects)
    relists: int = 0
    cpu_s: float = 0.0  # CPU time of the watcher threads (main loop included)
    started: float | None = None  # time.monotonic() when the wait started: the origin of `timeline`
    timeline: list[Span] = field(default_factory=list)  # each bundle workload, first seen -> Healthy or the end


@dataclass
class _Event:
    type: str  # ADDED | MODIFIED | DELETED | SYNC | FATAL
    kind_key: tuple[str, str]
    obj: dict[str, Any] | None = None
    items: list[dict[str, Any]] | None = None
    error: str | None = None


def _key(api_version: str, kind: str, namespace: str, name: str) -> ObjectRef:
    return ObjectRef(group_of(api_version), kind, namespace, name)


def ref_of(obj: Mapping[str, Any]) -> ObjectRef:
    meta = obj.get("metadata") or {}
    return _key(str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(meta.get("namespace") or ""),
                str(meta.get("name", "")))


class _KindWatch(threading.Thread):
    """List once, then watch from the list's resourceVersion; resume, relist on 410, back off on errors."""

    def __init__(self, kube: Kube, res: Resource, api_version: str, kind: str, namespace: str,
                 out: queue.Queue[_Event], stop: threading.Event, deadline: float, stream_timeout_s: int) -> None:
        super().__init__(name=f"watch-{res.plural}", daemon=True)
        self.kube, self.res, self.api_version, self.kind = kube, res, api_version, kind
        self.namespace = namespace if res.namespaced else ""
        self.out, self.stop, self.deadline, self.stream_timeout_s = out, stop, deadline, stream_timeout_s
        self.rv: str | None = None
        self.response: Any = None
        self.watches = 0
        self.relists = 0
        self.cpu_s = 0.0

    @property
    def kind_key(self) -> tuple[str, str]:
        return (self.api_version, self.kind)

    def run(self) -> None:
        try:
            for attempt in api_retrying(max(0.0, self.deadline - time.monotonic()), self.kube.sleep,
                                        retry=self._retryable):
                with attempt:
                    self._session()
        except Exception as exc:
            if not self.stop.is_set():
                msg = exc.message if isinstance(exc, KubeError) else str(exc)
                self.out.put(_Event("FATAL", self.kind_key, error=f"watching {self.res.plural}: {msg}"))
        finally:
            self.cpu_s = time.thread_time()

    def _retryable(self, exc: BaseException) -> bool:
        if self.stop.is_set():
            return False
        if isinstance(exc, KubeError):
            return exc.transient
        return isinstance(exc, urllib3.exceptions.HTTPError | OSError | ValueError)

    def _session(self) -> None:
        """Keep watching until stopped; a clean stream end resumes at once, errors go to the retry policy."""
        while not self.stop.is_set():
            if self.rv is None:
                listing = self.kube.send("GET", self.res.path(self.namespace))
                self.relists += 1
                items = listing.get("items") or []
                for item in items:  # list items carry no kind/apiVersion
                    item.setdefault("apiVersion", self.api_version)
                    item.setdefault("kind", self.kind)
                self.rv = str((listing.get("metadata") or {}).get("resourceVersion") or "")
                self.out.put(_Event("SYNC", self.kind_key, items=items))
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return
            query = {"watch": "true", "resourceVersion": self.rv, "allowWatchBookmarks": "true",
                     "timeoutSeconds": max(1, min(self.stream_timeout_s, int(remaining) + 1))}
            try:
                self.response = self.kube.stream(self.res.path(self.namespace), query, self.stream_timeout_s + 30)
            except KubeError as exc:
                if exc.status != 410:
                    raise
                self.rv = None  # some servers answer a too-old resourceVersion with HTTP 410 itself: relist
                continue
            self.watches += 1
            drained = False
            try:
                if self.stop.is_set():  # stopped while connecting: close() may have missed this stream
                    return
                for line in iter_lines(self.response):
                    event = json.loads(line)
                    etype, obj = event.get("type"), event.get("object") or {}
                    if etype == "ERROR":
                        if obj.get("code") == 410:
                            self.rv = None  # too old: relist
                            break
                        raise KubeError(int(obj.get("code") or 500), str(obj.get("message", "watch error")))
                    self.rv = str((obj.get("metadata") or {}).get("resourceVersion") or self.rv)
                    if etype == "BOOKMARK":
                        continue
                    obj.setdefault("apiVersion", self.api_version)
                    obj.setdefault("kind", self.kind)
                    self.out.put(_Event(str(etype), self.kind_key, obj=obj))
                else:
                    drained = True
            finally:
                # a fully read stream may go back to the pool; one left mid-stream must not be reused
                self.response.release_conn() if drained else self.response.close()
                self.response = None

    def close(self) -> None:
        response = self.response
        if response is not None:
            with contextlib.suppress(Exception):  # closing a stream from another thread is best-effort
                response.shutdown() if hasattr(response, "shutdown") else response.close()


class _State:
    """The live picture: last object per ref, its health, and what the verdict needs."""

    def __init__(self, bundle: Bundle, thresholds: Thresholds, started: float,
                 storage: StorageClasses | None = None) -> None:
        self.bundle = bundle
        self.expected: dict[ObjectRef, KubeObject] = dict(bundle.index)
        self.live: dict[ObjectRef, dict[str, Any]] = {}
        self.health: dict[ObjectRef, Health] = {}
        self.exempt: dict[ObjectRef, str] = {}
        self.storage = storage
        self.stuck: dict[ObjectRef, str] = {}  # Pending PVCs that are not exempt -> why they are stuck
        self.not_counted: dict[ObjectRef, str] = {}  # from the bundle until the live object is seen (Argo reads live)
        self.hooks: set[ObjectRef] = set()  # not counted, but a hook that fails fails the sync in Argo CD
        for ref, kobj in self.expected.items():
            self._classify(ref, kobj.body)
        self.failfast = FailFast(thresholds)
        self.started = started
        self.since: dict[ObjectRef, float] = {}  # when each bundle object last changed health
        self.first_seen: dict[ObjectRef, float] = {}  # bundle workloads: when the watch first saw them
        self.healthy_since: dict[ObjectRef, float] = {}  # bundle workloads: since when they are Healthy
        self.last_change: float | None = None
        self.unsatisfied: set[ObjectRef] = set(self.expected)
        self.signalled: set[ObjectRef] = set()  # objects with fail-fast signals whose grace may expire
        self.absent_since: dict[ObjectRef, float] = {}
        self.missing: set[ObjectRef] = set(self.expected)  # bundle objects not (or no longer) in the cluster

    def _classify(self, ref: ObjectRef, obj: dict[str, Any]) -> None:
        """Record whether Argo CD's app health leaves the object out (the live object's annotations win)."""
        why = app_health_exclusion(obj)
        if why:
            self.not_counted[ref] = why
        else:
            self.not_counted.pop(ref, None)
        if hook_annotation(obj) and why:
            self.hooks.add(ref)
        else:
            self.hooks.discard(ref)

    def uncounted_root(self, obj: Mapping[str, Any]) -> ObjectRef | None:
        """The not-counted bundle object that `obj` is or belongs to (controller chain: Pod -> ReplicaSet ->
        Deployment), else None: a fail-fast signal there says nothing about the app's health."""
        for _ in range(3):
            ref = ref_of(obj)
            if ref in self.not_counted:
                return ref
            meta = obj.get("metadata") or {}
            owners = [o for o in meta.get("ownerReferences") or [] if isinstance(o, dict)]
            owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
            if owner is None:
                return None
            parent = _key(str(owner.get("apiVersion", "")), str(owner.get("kind", "")),
                          str(meta.get("namespace") or ""), str(owner.get("name", "")))
            if parent in self.not_counted:
                return parent
            if parent not in self.live:  # e.g. its ReplicaSet not listed yet: owner_of names the Deployment
                named = owner_of(obj)
                return next((r for r in self.not_counted if f"{r.kind}/{r.namespace}/{r.name}" == named), None)
            obj = self.live[parent]
        return None

    def counts(self, obj: Mapping[str, Any]) -> bool:
        """Whether a fail-fast signal on OBJ may end the wait: not on an ignore-healthcheck object (or its pods).
        A hook is not waited for either, but one that fails fails the sync in Argo CD, so its signals count."""
        root = self.uncounted_root(obj)
        return root is None or root in self.hooks

    def _counted(self, terminal: Terminal | None, obj: dict[str, Any]) -> Terminal | None:
        return terminal if terminal is not None and self.counts(obj) else None

    def upsert(self, obj: dict[str, Any], now: float) -> Terminal | None:
        ref = ref_of(obj)
        expected = ref in self.expected
        self.live[ref] = obj
        self.missing.discard(ref)
        if expected:
            self._classify(ref, obj)
        terminal = self._counted(self.failfast.observe(obj, now), obj)
        if self.failfast.history(obj):  # a fail-fast signal is pending: its grace must be re-checked over time
            self.signalled.add(ref)
        else:
            self.signalled.discard(ref)
        if not expected and obj.get("kind") != "Pod":
            return terminal
        health = assess(obj, strict=True)
        if self.health.get(ref) != health:
            self.since[ref] = now
            if expected:
                self.last_change = now
        self.health[ref] = health
        if expected and ref.kind in _WORKLOADS:
            self.first_seen.setdefault(ref, now)
            if health.status is HealthStatus.HEALTHY:
                self.healthy_since.setdefault(ref, now)
            else:
                self.healthy_since.pop(ref, None)
        if not expected:
            return terminal
        why = environment_exempt(obj, health, self.storage)
        if why:
            self.exempt[ref] = why
        else:
            self.exempt.pop(ref, None)
        stuck = stuck_claim(obj, health, self.storage)
        if stuck:
            self.stuck[ref] = stuck
        else:
            self.stuck.pop(ref, None)
        if health.status in (None, HealthStatus.HEALTHY) or why or ref in self.not_counted:
            self.unsatisfied.discard(ref)
        else:
            self.unsatisfied.add(ref)
        return terminal

    def remove(self, obj: dict[str, Any], now: float) -> None:
        ref = ref_of(obj)
        self.live.pop(ref, None)
        self.health.pop(ref, None)
        self.exempt.pop(ref, None)
        self.stuck.pop(ref, None)
        self.failfast.forget(obj)
        self.signalled.discard(ref)
        self.healthy_since.pop(ref, None)
        if ref in self.expected:
            self._classify(ref, self.expected[ref].body)
            self.unsatisfied.add(ref)
            self.missing.add(ref)
            self.since[ref] = now
            self.last_change = now

    def sync(self, kind_key: tuple[str, str], items: list[dict[str, Any]], now: float) -> Terminal | None:
        """A fresh list replaces everything known of that kind: objects absent from it were deleted meanwhile."""
        group, kind = group_of(kind_key[0]), kind_key[1]
        present = {ref_of(o) for o in items}
        for ref in [r for r in self.live if (r.group, r.kind) == (group, kind) and r not in present]:
            self.remove(self.live[ref], now)
        terminal = None
        for item in items:
            terminal = self.upsert(item, now) or terminal
        return terminal

    def recheck(self, now: float) -> Terminal | None:
        """Re-observe objects with pending fail-fast signals, so grace periods expire without a new event."""
        for ref in list(self.signalled):
            terminal = self._counted(self.failfast.observe(self.live[ref], now), self.live[ref])
            if terminal is not None:
                return terminal
        return None

    def absent(self, now: float) -> tuple[ObjectRef, float] | None:
        """The bundle object missing the longest, with since when (first seen absent after the lists)."""
        for ref in [r for r in self.absent_since if r not in self.missing]:
            del self.absent_since[ref]
        for ref in self.missing:
            self.absent_since.setdefault(ref, now)
        if not self.absent_since:
            return None
        ref = min(self.absent_since, key=lambda r: (self.absent_since[r], str(r)))
        return ref, self.absent_since[ref]

    def image_problems(self) -> list[str]:
        """Pods (owned directly or through a ReplicaSet) running other images than their bundle workload asks for."""
        children: dict[str, list[dict[str, Any]]] = {}  # owner uid -> owned Pods and ReplicaSets
        for obj in self.live.values():
            if obj.get("kind") in ("Pod", "ReplicaSet"):
                for owner in (obj.get("metadata") or {}).get("ownerReferences") or []:
                    children.setdefault(str(owner.get("uid")), []).append(obj)
        problems: list[str] = []
        for ref, obj in self.live.items():
            if ref not in self.expected or obj.get("kind") not in _WORKLOADS:
                continue
            pods: list[dict[str, Any]] = []
            for child in children.get(str((obj.get("metadata") or {}).get("uid")), []):
                if child.get("kind") == "Pod":
                    pods.append(child)
                else:
                    uid = str((child.get("metadata") or {}).get("uid"))
                    pods += [p for p in children.get(uid, []) if p.get("kind") == "Pod"]
            if pods:
                problems += image_mismatches(obj, pods)
        return problems

    def status(self, now: float) -> dict[str, Any]:
        """The live picture as data (progress.Progress.status renders it): counts per state, the slowest object
        and for how long it has been in its state, the suspect, what is not counted, and `line`, the same as
        summary() (the plain, non-terminal form)."""
        counts: dict[str, int] = {}
        for ref in self.expected:
            state = ("Missing" if ref not in self.live else "Not counted" if ref in self.not_counted else
                     "Exempt" if ref in self.exempt else
                     (self.health[ref].status or HealthStatus.HEALTHY).value if ref in self.health else "Unknown")
            counts[state] = counts.get(state, 0) + 1
        not_counted = [f"{ref} ({why})" for ref, why in sorted(self.not_counted.items(), key=lambda i: str(i[0]))]
        slowest: str | None = None
        slowest_s: float | None = None
        suspect: str | None = None
        text = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        if not_counted:
            text += "; not counted: " + _some(not_counted)
        pending = [r for r in self.unsatisfied]
        if pending:
            oldest = min(pending, key=lambda r: self.since.get(r, self.started))
            slowest, slowest_s = str(oldest), now - self.since.get(oldest, self.started)
            text += f"; slowest: {slowest} ({slowest_s:.0f}s)"
            suspect = self.suspect()
            if suspect:
                text += f"; suspect: {suspect}"
        return {"counts": dict(sorted(counts.items())), "total": len(self.expected), "pending": len(pending),
                "slowest": slowest, "slowest_s": slowest_s, "suspect": suspect, "not_counted": not_counted,
                "elapsed_s": now - self.started, "line": text}

    def summary(self, now: float) -> str:
        return str(self.status(now)["line"])

    def culprit(self) -> tuple[dict[str, Any], str] | None:
        """The pod most likely to blame now, and its sentence: a producer (failfast.culprits) before any pod that
        only waits for a missing Secret/ConfigMap, the worst verdict first within each; None when no pod fails."""
        pods: list[dict[str, Any]] = []
        for ref, health in self.health.items():
            obj = self.live.get(ref)
            if obj is not None and obj.get("kind") == "Pod" and health.status in _RANK and pod_problem(obj) \
                    and not self.uncounted_root(obj):
                pods.append(obj)
        producers, victims = culprits(pods)
        for group in (producers, victims):
            best: tuple[int, dict[str, Any], str] | None = None
            for pod in group:
                health = self.health[ref_of(pod)]
                text = explain(dict(pod), health)
                rank = _RANK.get(health.status, 0) if health.status is not None else 0
                if text and (best is None or rank > best[0]):
                    best = (rank, dict(pod), text)
            if best is None:
                continue
            _, pod, text = best
            if group is victims:
                busy = [str(ref_of(p).name) for p in self.live.values() if p.get("kind") == "Pod" and initializing(p)]
                if busy:
                    text += f" (while {_some(sorted(busy))} still initializing)"
            return pod, text
        return None

    def suspect(self) -> str | None:
        """The likeliest culprit now: the worst failing producer pod, else the worst pod waiting on a missing
        Secret/ConfigMap, else the slowest object."""
        found = self.culprit()
        if found:
            return found[1]
        if not self.unsatisfied:
            return None
        slowest = min(self.unsatisfied, key=lambda r: (self.since.get(r, self.started), str(r)))
        if slowest not in self.live:
            return f"{slowest}: Missing"
        current = self.health.get(slowest)
        text = (explain(self.live[slowest], current) if current else None) or str(slowest)
        return f"{text} ({self.stuck[slowest]})" if slowest in self.stuck else text

    def spans(self, end: float, blamed: str | None) -> list[Span]:
        """Each bundle workload from first seen (or the wait's start) to Healthy; BLAMED ('Kind/ns/name', the
        failure's workload) ends failed, the others not Healthy end waiting, named with what their pods wait for."""
        waits: dict[str, set[str]] = {}
        for obj in self.live.values():
            owner = owner_of(obj) if obj.get("kind") == "Pod" else None
            if owner:
                waits.setdefault(owner, set()).update(w.replace("/", " ") for w in waits_for(obj))
        out = []
        for ref in self.expected:
            if ref.kind not in _WORKLOADS:
                continue
            start = self.first_seen.get(ref, self.started)
            short = f"{ref.kind}/{ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind}/{ref.name}"
            name = f"{ref.kind} {ref.name}"
            if ref in self.healthy_since and ref not in self.unsatisfied:
                out.append(Span(name, start - self.started, self.healthy_since[ref] - self.started, OK))
                continue
            if short == blamed:
                state = FAILED
            else:
                state = WAITING
                if waits.get(short):
                    name += " waits for " + ", ".join(sorted(waits[short]))
                elif ref not in self.live:
                    name += " missing"
            out.append(Span(name, start - self.started, end - self.started, state))
        return sorted(out, key=lambda s: (s.start_s, s.name))


def _blamed(terminal: Terminal | None, culprit: tuple[dict[str, Any], str] | None) -> str | None:
    """The workload ('Kind/ns/name') a failure is on: the Terminal's owner (or object), else the suspect pod's."""
    if terminal is not None:
        return terminal.owner or terminal.object
    return owner_of(culprit[0]) if culprit else None


def _some(items: Iterable[str], limit: int = 3) -> str:
    """'a, b, c and 2 more': text.some for one-line progress and root causes."""
    listed = some(items, limit)
    return ", ".join(listed[:limit]) + (f" and {listed[limit]}" if len(listed) > limit else "")


def storage_classes(kube: Kube, bundle: Bundle) -> StorageClasses | None:
    """The cluster's StorageClasses, read once per wait and only when the bundle has PVCs (else None: no API call).

    A failed list (e.g. 403) is recorded as the error, so no Pending PVC is exempt: fail closed, never a wrong pass.
    """
    if not any(o.kind == "PersistentVolumeClaim" and o.group == "" for o in bundle):
        return None
    try:
        listing = kube.call("GET", STORAGE_CLASSES_PATH)
    except KubeError as exc:
        return StorageClasses(error=f"listing StorageClasses: {exc.message}")
    items = listing.get("items") if isinstance(listing, dict) else None
    if not isinstance(items, list):
        return StorageClasses(error="listing StorageClasses: the answer has no items")
    return StorageClasses.from_items(items)


def _streams_client(api: Any, streams: int) -> Any:
    """A client for the watch streams with a pool big enough to keep one connection per kind.

    Built from a copy of the given client's configuration (host, credentials, TLS: from the cluster's own
    kubeconfig), never from ambient config; the default pool of 10 would discard connections on every reconnect.
    """
    config = copy.copy(api.configuration)
    config.connection_pool_maxsize = max(int(getattr(config, "connection_pool_maxsize", 0) or 0), streams + 4)
    return ApiClient(configuration=config)


def kinds_in_play(kube: Kube, bundle: Bundle) -> list[tuple[str, str, Resource]]:
    """(apiVersion, kind, resource) for each distinct kind of the bundle, plus Pods and ReplicaSets."""
    seen: dict[tuple[str, str], tuple[str, str, Resource]] = {}
    for api_version, kind in [(o.api_version, o.kind) for o in bundle] + list(_OWNED_KINDS):
        group = group_of(api_version)
        if (group, kind) not in seen:
            seen[(group, kind)] = (api_version, kind, kube.resource(api_version, kind))
    return list(seen.values())


DEFAULT_THRESHOLDS = Thresholds()


def wait_healthy(api: Any, bundle: Bundle, timeout_s: float = 600, thresholds: Thresholds = DEFAULT_THRESHOLDS,
                 progress: Progress | None = None, progress_every_s: float = 5.0, recheck_s: float = 0.25,
                 stream_timeout_s: int = 300, missing_grace_s: float = 30.0) -> WaitResult:
    """Watch until pass, fail-fast, or deadline. Raises EnvironmentNotReady if the API cannot be watched.

    A bundle object still absent `missing_grace_s` after every kind was listed fails the run: it was applied, so
    something removed it (or the install never created it), and waiting for the deadline would not change that.
    """
    started = time.monotonic()
    cpu_started = time.thread_time()
    deadline = started + timeout_s
    setup = Kube(api, retry_s=min(30.0, timeout_s))
    try:
        kinds = kinds_in_play(setup, bundle)
    except KubeError as exc:
        raise EnvironmentNotReady(f"cannot map the bundle's kinds: {exc.message}") from None
    storage = storage_classes(setup, bundle)
    if progress and storage and storage.error:
        progress(f"{storage.error}: Pending PersistentVolumeClaims will not be exempted (fail closed)")
    streams = _streams_client(api, len(kinds))
    kube = Kube(streams, retry_s=min(30.0, timeout_s))
    stop = threading.Event()
    events: queue.Queue[_Event] = queue.Queue()
    watchers = [_KindWatch(kube, res, av, kind, bundle.namespace, events, stop, deadline, stream_timeout_s)
                for av, kind, res in kinds]
    for watcher in watchers:
        watcher.start()
    state = _State(bundle, thresholds, started, storage)
    synced: set[tuple[str, str]] = set()
    terminal: Terminal | None = None
    fatal: str | None = None
    root_cause: str | None = None
    passed = False
    next_recheck = started + recheck_s
    # a progress with a status() method (validator.progress.Progress) gets the picture as data: a terminal shows
    # it as one block updated in place (as often as its `status_every_s` asks), anything else as today's line
    report: Callable[[Mapping[str, Any] | None], None] | None = getattr(progress, "status", None)
    every_s = min(progress_every_s, float(getattr(progress, "status_every_s", None) or progress_every_s))
    next_progress = started + every_s
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            try:
                ev = events.get(timeout=max(0.0, min(next_recheck, deadline) - now))
            except queue.Empty:
                ev = None
            now = time.monotonic()
            batch = [ev] if ev else []
            while len(batch) < 1000:  # drain what is queued before judging (one verdict per burst)
                try:
                    batch.append(events.get_nowait())
                except queue.Empty:
                    break
            for item in batch:
                if item.type == "FATAL":
                    fatal = item.error
                elif item.type == "SYNC":
                    synced.add(item.kind_key)
                    terminal = state.sync(item.kind_key, item.items or [], now) or terminal
                elif item.type == "DELETED" and item.obj is not None:
                    state.remove(item.obj, now)
                elif item.obj is not None:
                    terminal = state.upsert(item.obj, now) or terminal
            if fatal:
                break
            if now >= next_recheck:
                terminal = terminal or state.recheck(now)
                next_recheck = now + recheck_s
            if terminal is not None:
                root_cause = terminal.root_cause
                break
            absent = state.absent(now) if len(synced) == len(watchers) else None
            if absent is not None and now - absent[1] >= missing_grace_s:
                root_cause = (f"{absent[0]} is missing: applied by the install but not in the cluster for "
                              f"{now - absent[1]:.0f} s")
                break
            if len(synced) == len(watchers) and not state.unsatisfied:
                problems = state.image_problems()
                if problems:
                    root_cause = f"image mismatch: {problems[0]}" + (
                        f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                else:
                    passed = True
                break
            if progress and now >= next_progress:
                if report is not None:
                    report({**state.status(now), "timeout_s": timeout_s})
                else:
                    progress(state.summary(now))
                next_progress = now + every_s
        if report is not None:  # the block's last frame: the picture when the wait ended
            report({**state.status(time.monotonic()), "timeout_s": timeout_s, "final": True})
    finally:
        if report is not None:
            report(None)  # the wait is over (however it ended): the block stops updating, lines follow it
        stop.set()
        for watcher in watchers:
            watcher.close()
        for watcher in watchers:
            watcher.join(timeout=2)
        streams.close()
    if fatal:
        raise EnvironmentNotReady(fatal)
    now = time.monotonic()
    missing = sorted(str(r) for r in state.expected if r not in state.live)
    timed_out = not passed and terminal is None and root_cause is None
    if timed_out:
        terminal = state.failfast.environmental_pull(now, counts=state.counts)
    if timed_out and terminal is not None:
        root_cause = f"{terminal.root_cause}, when the {timeout_s:.0f} s wait ran out"
        terminal = replace(terminal, root_cause=root_cause)
    elif timed_out:
        suspect = state.suspect()
        lead = f"{len(state.unsatisfied)} of {len(state.expected)} objects not Healthy after {timeout_s:.0f} s"
        root_cause = f"{lead}: {suspect}" if suspect else (
            f"{lead}: missing {', '.join(missing[:3])}" if missing else lead)
        claims = [f"{ref}: {why}" for ref, why in sorted(state.stuck.items(), key=lambda i: str(i[0]))
                  if ref in state.unsatisfied and why not in root_cause]
        if claims:
            root_cause += f"; stuck claims: {_some(claims)}"
    if progress:
        verdict = "PASS" if passed else "could not validate" if terminal and terminal.environment else "FAIL"
        progress(f"{verdict}: {root_cause or state.summary(now)}")
    spans = state.spans(now, None if passed else _blamed(terminal, state.culprit()))
    health = {str(r): h for r, h in state.health.items() if r in state.expected}
    return WaitResult(
        passed=passed, root_cause=None if passed else root_cause, terminal=terminal, health=health,
        elapsed_s=now - started, exempt={str(r): why for r, why in state.exempt.items()}, missing=missing,
        not_counted={str(r): why for r, why in state.not_counted.items()},
        timed_out=timed_out, last_change_s=(state.last_change - started) if state.last_change else None,
        live={str(r): o for r, o in state.live.items()}, watches=sum(w.watches for w in watchers),
        relists=sum(w.relists for w in watchers),
        cpu_s=(time.thread_time() - cpu_started) + sum(w.cpu_s for w in watchers), started=started, timeline=spans)
