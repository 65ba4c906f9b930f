"""Fail-fast: decide, from the history of observations, when waiting longer cannot turn a failure into a pass.

Argo CD's verdicts alone wait too long (a crash-looping init container leaves a Deployment Progressing for 600 s)
or stop too early (a fresh Argo CD install legitimately shows CreateContainerConfigError until redis' init container
writes the `argocd-redis` Secret). This module applies the §6 policy of health-rules.md as a table of rules: each
signal found in an object has a grace period and/or a restart threshold (configuration, see Thresholds); the
history per object records since when each signal has persisted. Pure and clock-free: `now` is passed in.

Signals that are usually a *consequence* of another object's failure (a missing Secret/ConfigMap) are "dependent":
while another pod is still initializing or visibly failing, they wait (bounded), so the root cause named is the
failing producer (redis' `secret-init`), not the components waiting for its output. The same order, producers
before the pods that only wait for what they would create, is what `culprits` gives the live suspect (watch) and
the diagnosis alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from validator.errors import InputError
from validator.health import (
    abnormal,
    condition,
    container_problem,
    container_statuses,
    describe_termination,
    last_termination,
    metadata,
    object_ref,
    owner_of,
    pod_problem,
    quote,
)


@dataclass(frozen=True)
class Thresholds:
    """Grace periods (seconds) and restart threshold of the §6 policy; defaults are the spec's proposals."""

    crashloop_restarts: int = 3
    crashloop_backoff_s: float = 120
    config_error_grace_s: float = 60
    unschedulable_grace_s: float = 60
    image_pull_grace_s: float = 90
    run_container_error_grace_s: float = 30
    replica_failure_grace_s: float = 30
    # Extra (not in the contract's list, defaulted): how much longer a dependent signal (missing Secret/ConfigMap)
    # may wait, beyond its grace, while another pod is initializing or failing and may be what creates the object.
    dependent_wait_s: float = 300

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "thresholds") -> Thresholds:
        """Thresholds from user configuration (a YAML/JSON mapping): unknown keys and bad values are InputErrors."""
        if not isinstance(values, Mapping):
            raise InputError(f"{source}: expected a mapping of threshold names to numbers")
        known = {f.name: f.type for f in fields(cls)}
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise InputError(f"{source}: unknown threshold {key!r} (known: {', '.join(sorted(known))})")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
                raise InputError(f"{source}: {key} must be a non-negative number, got {value!r}")
            if key == "crashloop_restarts" and (not isinstance(value, int) or value < 1):
                raise InputError(f"{source}: crashloop_restarts must be a positive integer, got {value!r}")
            out[key] = value
        return cls(**out)


@dataclass(frozen=True)
class Terminal:
    """A certain failure: what failed, where, and one sentence for the report."""

    object: str  # "Kind/namespace/name"
    container: str | None
    init_container: bool
    reason: str
    message: str
    root_cause: str  # one sentence
    owner: str | None = None  # e.g. "Deployment/argocd/argocd-redis" for a pod
    evidence: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # Set (e.g. "DNS failure") when the runner's network or a registry failed, not the candidate: exit 2, not 1.
    environment: str | None = None


# --------------------------------------------------------------------------------------------------
# The policy table (§6). A rule fires when its signal is present and: immediately (grace 0), or it has
# persisted for its grace, or the container's restartCount reached the threshold.
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    name: str
    grace: str | None  # name of a Thresholds field; None = never by time alone
    immediate: bool = False
    by_restarts: bool = False  # restartCount >= crashloop_restarts fires
    dependent: bool = False  # may be caused by another object: waits while a producer is busy
    blocks_dependents: bool = False  # its presence means "something else may still create what is missing"
    terminal: bool = True  # False: a tracked state that never fires by itself

    def grace_s(self, thresholds: Thresholds) -> float | None:
        return None if self.grace is None else float(getattr(thresholds, self.grace))


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("job-failed", None, immediate=True),
    Rule("progress-deadline", None, immediate=True),
    Rule("crd-rejected", None, immediate=True),
    Rule("pvc-lost", None, immediate=True),
    Rule("hpa-failed", None, immediate=True),
    Rule("pod-failed", None, immediate=True),
    Rule("invalid-image", None, immediate=True, blocks_dependents=True),
    Rule("image-not-found", None, immediate=True, blocks_dependents=True),
    Rule("image-pull", "image_pull_grace_s", blocks_dependents=True),
    Rule("crashloop", "crashloop_backoff_s", by_restarts=True, blocks_dependents=True),
    Rule("restarting", None, by_restarts=True, blocks_dependents=True),
    Rule("config-error", "config_error_grace_s", dependent=True),
    Rule("run-error", "run_container_error_grace_s", blocks_dependents=True),
    Rule("unschedulable", "unschedulable_grace_s"),
    Rule("replica-failure", "replica_failure_grace_s"),
    Rule("initializing", None, blocks_dependents=True, terminal=False),
)}


@dataclass(frozen=True)
class Signal:
    """One problem seen in one observation. `key` identifies it across observations (for persistence)."""

    rule: str
    key: str
    reason: str
    message: str
    container: str | None = None
    init_container: bool = False
    restarts: int = 0
    detail: str = ""  # e.g. 'last exit code 1: "dial tcp ..."'
    image: str = ""  # the container's image, for pull signals


# --------------------------------------------------------------------------------------------------
# Environment trouble: failures of the runner's network or of a remote service (registry, git host), which say
# nothing about the candidate. Positive evidence only: a message that matches nothing here is not environmental.
# --------------------------------------------------------------------------------------------------

_ENVIRONMENT = tuple((label, re.compile(pattern, re.IGNORECASE)) for label, pattern in (
    ("DNS failure", r"no such host|server misbehaving|name resolution|name or service not known"),
    ("DNS timeout", r"lookup \S+.*(?:i/o timeout|timed out|deadline exceeded)"),
    ("rate limited", r"toomanyrequests|too many requests|rate limit|(?:status|code)[^0-9]{0,20}\b429\b"),
    ("TLS failure", r"x509:|\btls: "),
    ("server error (HTTP 5xx)", r"\b5\d\d (?:internal server error|bad gateway|service unavailable|gateway time-?out)"
                                r"|status[^0-9]{0,20}\b5\d\d\b"),
    ("connection refused", r"connection refused"),
    ("network unreachable", r"network is unreachable|no route to host"),
    ("connection dropped", r"connection reset|broken pipe|unexpected EOF|: EOF\b"),
    ("network timeout", r"i/o timeout|deadline ?exceeded|timeout exceeded|handshake timeout|request canceled"
                        r"|timed out|no progress in"),
))

# Labels a NetworkPolicy that silently drops packets produces as well: seen from inside the cluster they implicate
# the candidate's policies as much as the runner's network (image pulls run on the node, outside pod policies).
POLICY_LOOKALIKE = frozenset({"DNS timeout", "connection refused", "network unreachable", "connection dropped",
                              "network timeout"})


def environment_trouble(message: str) -> str | None:
    """A short label ("DNS failure", "rate limited", ...) when MESSAGE shows the network or a remote service
    failing rather than what was asked for, else None. Not-found/denied messages are never environmental."""
    if _NOT_FOUND.search(message):
        return None  # what was asked for does not exist or is denied: that is an answer, not an outage
    return next((label for label, pattern in _ENVIRONMENT if pattern.search(message)), None)


_SOURCE_MISSING = re.compile(r"app path does not exist|repository not found"
                             r"|unable to resolve '[^']*' to a commit SHA", re.IGNORECASE)


@dataclass(frozen=True)
class SourceTrouble:
    """Why Argo CD cannot read an Application's source, which no amount of waiting fixes."""

    label: str  # an environment_trouble label, or "source not found"
    message: str
    input: bool  # the repo, path or revision does not exist: the user's input
    ambiguous: bool  # a POLICY_LOOKALIKE label: only environmental if the runner cannot reach the host either
    endpoint: tuple[str, int] | None = None  # the repo's (host, port) the message names


def repo_endpoint(repo_url: str) -> tuple[str, int] | None:
    """(host, port) of a git URL (https://, http://, ssh://, scp-like git@host:path), for a reachability check."""
    if "://" not in repo_url:
        match = re.match(r"^[^@/\s]+@([^:/\s]+):", repo_url)
        return (match.group(1), 22) if match else None
    try:
        parts = urlsplit(repo_url)
        host, port = parts.hostname, parts.port
    except ValueError:  # e.g. "https://[bad": no endpoint to name
        return None
    return (host, port or {"http": 80, "ssh": 22, "git": 9418}.get(parts.scheme, 443)) if host else None


def application_source_trouble(app: Mapping[str, Any]) -> SourceTrouble | None:
    """The first Application condition (or sync message) saying its source cannot be read: missing, or out of
    reach because of the environment. Network errors count only when they name the repo's host, so an in-cluster
    failure (controller to repo-server, API server) stays the candidate's."""
    spec, status = app.get("spec") or {}, app.get("status") or {}
    sources = [spec.get("source") or {}, *(spec.get("sources") or [])]
    endpoints = [repo_endpoint(str(s.get("repoURL") or "")) for s in sources if isinstance(s, dict)]
    texts = [c.get("message") for c in status.get("conditions") or [] if isinstance(c, dict)]
    texts.append((status.get("operationState") or {}).get("message"))
    for raw in texts:
        text = " ".join(str(raw or "").split())
        if _SOURCE_MISSING.search(text):
            return SourceTrouble("source not found", text, input=True, ambiguous=False)
        label = environment_trouble(text)
        named = next((ep for ep in endpoints if ep and ep[0].lower() in text.lower()), None)
        if label and named:
            return SourceTrouble(label, text, input=False, ambiguous=label in POLICY_LOOKALIKE, endpoint=named)
    return None


# --------------------------------------------------------------------------------------------------
# Detectors: live object -> signals (pure)
# --------------------------------------------------------------------------------------------------

_NOT_FOUND = re.compile(r"not found|manifest unknown|unauthorized", re.IGNORECASE)
_BACKOFF_ONLY = re.compile(r'\s*(?:Back-off pulling image "[^"]*")?\s*')  # kubelet < 1.32 omits the pull error
_CACHE_SYNC = re.compile(r"failed to sync .*cache", re.IGNORECASE)
_PULL = frozenset({"ErrImagePull", "ImagePullBackOff"})
_CONFIG = frozenset({"CreateContainerConfigError", "CreateContainerError"})
_NEVER = frozenset({"InvalidImageName", "ErrImageNeverPull"})


def _container_signals(cs: Mapping[str, Any], init: bool) -> Iterator[Signal]:
    name = str(cs.get("name", ""))
    prefix = f"{'init' if init else 'main'}:{name}:"
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = str(waiting.get("reason") or "")
    message = str(waiting.get("message") or "")
    restarts = int(cs.get("restartCount") or 0)
    last = last_termination(cs)
    detail = f"last {describe_termination(last)}" if abnormal(last) else ""

    def sig(rule: str, family: str, why: str = reason, msg: str = message) -> Signal:
        return Signal(rule, prefix + family, why, msg, name, init, restarts, detail, str(cs.get("image") or ""))

    if reason in _NEVER:
        yield sig("invalid-image", "image")
    elif reason in _PULL:
        yield sig("image-not-found" if _NOT_FOUND.search(message) else "image-pull", "image")
    elif reason == "CrashLoopBackOff":
        yield sig("crashloop", "backoff", msg=_last_words(last) or message)  # own clock: time *in* back-off
    elif reason in _CONFIG:
        if not _CACHE_SYNC.search(message):
            yield sig("config-error", "config")
    elif reason == "RunContainerError":
        yield sig("run-error", "run")
    elif abnormal(last) and not cs.get("ready") and (init or restarts > 0):
        # Terminated non-zero (init) or restarted after an abnormal exit and not ready: counts towards restarts.
        term = last
        yield sig("restarting", "crash", why=str(term.get("reason") or "Error"), msg=_last_words(term))
    for term in (state.get("terminated") or {}, (cs.get("lastState") or {}).get("terminated") or {}):
        if term.get("reason") == "ContainerCannotRun" and term.get("exitCode") != 128:
            yield sig("run-error", "run", why="ContainerCannotRun", msg=str(term.get("message") or ""))
            break
    if init and not reason and state.get("running") is not None and not cs.get("ready"):
        yield sig("initializing", "init")


def _last_words(term: Mapping[str, Any]) -> str:
    return str(term.get("message") or "").strip()


def _pod_signals(obj: Mapping[str, Any]) -> Iterator[Signal]:
    status = obj.get("status") or {}
    phase = status.get("phase")
    if phase == "Failed":
        owner = owner_of(obj)
        # Standalone pods only (health-rules §6 says "not owned by Job or RS"): StatefulSet and DaemonSet pods that
        # fail are replaced by their controllers too, so a Failed one is not terminal either.
        if owner is None and status.get("reason") not in ("Evicted", "Preempting"):
            yield Signal("pod-failed", "pod:failed", str(status.get("reason") or "Failed"),
                         str(status.get("message") or _failed_container_message(obj)))
        return
    for cs in container_statuses(obj, "initContainerStatuses"):
        yield from _container_signals(cs, True)
    for cs in container_statuses(obj):
        yield from _container_signals(cs, False)
    scheduled = condition(obj, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        yield Signal("unschedulable", "pod:unschedulable", "Unschedulable", str(scheduled.get("message") or ""))


def _failed_container_message(obj: Mapping[str, Any]) -> str:
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in container_statuses(obj, key):
            term = (cs.get("state") or {}).get("terminated") or {}
            if abnormal(term):
                return f'container "{cs.get("name")}" {describe_termination(term)}'
    return ""


def _condition_signal(obj: Mapping[str, Any], ctype: str, status: str, rule: str) -> Iterator[Signal]:
    cond = condition(obj, ctype)
    if cond is not None and cond.get("status") == status:
        yield Signal(rule, f"cond:{ctype}", str(cond.get("reason") or ctype), str(cond.get("message") or ""))


def _deployment_signals(obj: Mapping[str, Any]) -> Iterator[Signal]:
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, metadata(obj)
    if spec.get("paused") is True or int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return  # Argo CD does not look at the deadline then (paused, or a new generation not yet observed)
    progressing = condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        yield Signal("progress-deadline", "cond:Progressing", "ProgressDeadlineExceeded",
                     str(progressing.get("message") or ""))
    yield from _condition_signal(obj, "ReplicaFailure", "True", "replica-failure")


def _job_signals(obj: Mapping[str, Any]) -> Iterator[Signal]:
    yield from _condition_signal(obj, "Failed", "True", "job-failed")


def _replicaset_signals(obj: Mapping[str, Any]) -> Iterator[Signal]:
    yield from _condition_signal(obj, "ReplicaFailure", "True", "replica-failure")


def _crd_signals(obj: Mapping[str, Any]) -> Iterator[Signal]:
    yield from _condition_signal(obj, "NamesAccepted", "False", "crd-rejected")
    yield from _condition_signal(obj, "NonStructuralSchema", "True", "crd-rejected")


def _pvc_signals(obj: Mapping[str, Any]) -> Iterator[Signal]:
    if (obj.get("status") or {}).get("phase") == "Lost":
        yield Signal("pvc-lost", "pvc:lost", "Lost", "the PersistentVolumeClaim lost its PersistentVolume")


_HPA_FATAL = frozenset({("AbleToScale", "FailedGetScale"), ("ScalingActive", "InvalidSelector")})


def _hpa_signals(obj: Mapping[str, Any]) -> Iterator[Signal]:
    conds: Any = (obj.get("status") or {}).get("conditions") or []
    if str(obj.get("apiVersion", "")).endswith("/v1"):
        raw = (metadata(obj).get("annotations") or {}).get("autoscaling.alpha.kubernetes.io/conditions")
        try:
            conds = json.loads(raw) if raw else []
        except ValueError:
            conds = []
    for cond in conds if isinstance(conds, list) else []:
        if isinstance(cond, dict) and (cond.get("type"), cond.get("reason")) in _HPA_FATAL:
            yield Signal("hpa-failed", f"cond:{cond.get('type')}", str(cond.get("reason")),
                         str(cond.get("message", "")))


DETECTORS: dict[tuple[str, str], Callable[[Mapping[str, Any]], Iterator[Signal]]] = {
    ("", "Pod"): _pod_signals,
    ("apps", "Deployment"): _deployment_signals,
    ("apps", "ReplicaSet"): _replicaset_signals,
    ("batch", "Job"): _job_signals,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd_signals,
    ("", "PersistentVolumeClaim"): _pvc_signals,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa_signals,
}


def signals(obj: Mapping[str, Any]) -> list[Signal]:
    """Every §6 signal visible in one observation of an object (empty for kinds with no rule)."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    detector = DETECTORS.get((group, str(obj.get("kind", ""))))
    if detector is None or metadata(obj).get("deletionTimestamp"):
        return []  # no rule for the kind, or the object is going away (a replaced pod's SIGTERM exit is no failure)
    try:
        return list(detector(obj))
    except (TypeError, ValueError, AttributeError):
        return []  # malformed status: health.assess reports it as Unknown; nothing certain to fail fast on


# --------------------------------------------------------------------------------------------------
# History and decisions
# --------------------------------------------------------------------------------------------------

@dataclass
class _History:
    ref: str
    first_seen: float
    since: dict[str, float] = field(default_factory=dict)  # signal key -> first time seen (continuously)
    active: dict[str, Signal] = field(default_factory=dict)  # signals in the latest observation
    pull_error: dict[str, str] = field(default_factory=dict)  # signal key -> last message that says why a pull failed
    latest: Mapping[str, Any] = field(default_factory=dict)  # the object as last observed


class FailFast:
    """Feed every observed version of every watched object; get a Terminal as soon as failure is certain."""

    def __init__(self, thresholds: Thresholds = Thresholds()) -> None:  # frozen, so a shared default is safe
        self.thresholds = thresholds
        self._objects: dict[str, _History] = {}
        self._producer_busy_until = float("-inf")  # last time another object blocked dependents
        self._blocking: set[str] = set()  # keys of objects whose latest observation blocks dependents

    @staticmethod
    def _key(obj: Mapping[str, Any]) -> str:
        meta = metadata(obj)
        return str(meta.get("uid") or f"{obj.get('apiVersion')}|{object_ref(obj)}")

    def forget(self, obj: dict[str, Any]) -> None:
        """The object was deleted: its history no longer says anything (a replacement starts afresh)."""
        key = self._key(obj)
        self._objects.pop(key, None)
        self._blocking.discard(key)

    def history(self, obj: Mapping[str, Any]) -> Mapping[str, float]:
        """Since when each signal of this object has persisted (for diagnostics)."""
        hist = self._objects.get(self._key(obj))
        return dict(hist.since) if hist else {}

    def observe(self, obj: dict[str, Any], now: float) -> Terminal | None:
        """Record one observation; return a Terminal if the object's history is certainly terminal, else None."""
        key = self._key(obj)
        hist = self._objects.get(key)
        if hist is None:
            hist = self._objects[key] = _History(object_ref(obj), now)
        found = {sig.key: sig for sig in signals(obj)}
        for gone in hist.since.keys() - found.keys():
            del hist.since[gone]
            hist.pull_error.pop(gone, None)
        for sig_key, sig in found.items():
            hist.since.setdefault(sig_key, now)
            if sig.rule == "image-pull" and not _BACKOFF_ONLY.fullmatch(sig.message):
                hist.pull_error[sig_key] = sig.message
        hist.active, hist.latest = found, obj
        if any(RULES[sig.rule].blocks_dependents for sig in found.values()):
            self._blocking.add(key)
        else:
            self._blocking.discard(key)
        if self._producers_busy(exclude=key):
            self._producer_busy_until = now
        for sig in found.values():
            if self._fires(sig, hist, key, now):
                return self._terminal(obj, sig, now, hist)
        return None

    def environmental_pull(self, now: float, counts: Callable[[Mapping[str, Any]], bool]) -> Terminal | None:
        """A pull the network or a registry is failing, still within its grace: when a wait's deadline comes
        first (a --wait-timeout under image_pull_grace_s), this, not the candidate, is why it is not Healthy."""
        for hist in self._objects.values():
            for sig in hist.active.values():
                if (sig.rule == "image-pull" and counts(hist.latest)
                        and environment_trouble(hist.pull_error.get(sig.key, sig.message))):
                    return self._terminal(hist.latest, sig, now, hist)
        return None

    def _producers_busy(self, exclude: str) -> bool:
        return len(self._blocking) > (exclude in self._blocking)

    def _fires(self, sig: Signal, hist: _History, key: str, now: float) -> bool:
        rule = RULES[sig.rule]
        if not rule.terminal:
            return False
        if rule.immediate:
            return True
        th = self.thresholds
        if rule.by_restarts and sig.restarts >= th.crashloop_restarts:  # restartCount never decreases in a pod
            return True
        grace = rule.grace_s(th)
        if grace is None or now - hist.since[sig.key] < grace:
            return False
        if not rule.dependent:
            return True
        # A missing Secret/ConfigMap may be what a busy producer is about to create: wait while one is busy,
        # and a full grace after it stopped being busy (kubelet retries), but never beyond the bounded extra wait.
        if now - hist.since[sig.key] >= grace + th.dependent_wait_s:
            return True
        if self._producers_busy(exclude=key):
            return False
        return now - self._producer_busy_until >= grace

    def _terminal(self, obj: Mapping[str, Any], sig: Signal, now: float, hist: _History) -> Terminal:
        ref, persisted, hist_key = hist.ref, now - hist.since[sig.key], self._key(obj)
        owner = owner_of(obj)  # a pod's Deployment/StatefulSet/Job, a ReplicaSet's Deployment
        where = ""
        if sig.container is not None:
            where = f"{'init container' if sig.init_container else 'container'} {sig.container}"
        if owner:
            where = f"{where} of {owner}" if where else f"of {owner}"
        head = f"{ref} ({where})" if where else ref
        rule = RULES[sig.rule]
        if rule.by_restarts and sig.restarts >= self.thresholds.crashloop_restarts:
            how = f"{sig.reason} after {sig.restarts} restarts"
        elif not rule.immediate:
            how = f"{sig.reason} for {persisted:.0f} s"
        else:
            how = sig.reason
        message = hist.pull_error.get(sig.key, sig.message)  # a bare back-off message hides why the pull failed
        # Unknown pull errors stay the candidate's (exit 1, as §6 says): exit 2 needs positive evidence that the
        # network or registry failed, else a broken image reference would be waved off as a flake and retried.
        environment = environment_trouble(message) if rule.name == "image-pull" else None
        quoted = f": {quote(message)}" if message else ""
        tail = f", {sig.detail}" if rule.by_restarts and sig.detail else quoted  # detail: the last words
        root_cause = f"{head}: {how}{tail}"
        if environment:  # root cause first: what failed (network, registry), then where it showed
            root_cause = f"{environment}: {head} cannot pull {quote(sig.image or '?')} ({how}){tail}"
        others = sorted(
            f"{h.ref}: {s.reason}" for k, h in self._objects.items() if k != hist_key
            for s in h.active.values() if RULES[s.rule].terminal
        )
        evidence: dict[str, Any] = {"rule": rule.name, "persisted_s": round(persisted, 3), "restarts": sig.restarts,
                                    "observed_for_s": round(now - hist.first_seen, 3)}
        if others:
            evidence["also_failing"] = others
        busy = sorted(self._objects[k].ref for k in self._blocking if k != hist_key and k in self._objects)
        if rule.dependent and busy:
            evidence["busy_producers"] = busy  # still initializing or failing when we gave up waiting for them
        if environment:
            evidence["image"] = sig.image
        return Terminal(ref, sig.container, sig.init_container, sig.reason, message, root_cause, owner, evidence,
                        environment)


# --------------------------------------------------------------------------------------------------
# Producers and victims: which visibly failing pod to name first. One order for the live suspect (watch) and the
# diagnosis: a pod that only waits for a missing Secret/ConfigMap is the consequence of whatever should have created
# it (redis' secret-init creates Secret argocd-redis), so any other failing pod is named before it.
# --------------------------------------------------------------------------------------------------

_MISSING_REF = re.compile(r'(secret|configmap) "([^"]+)" not found|couldn\'t find key (\S+) in (Secret|ConfigMap) '
                          r"[^/]+/(\S+)", re.IGNORECASE)


def _waiting(cs: Mapping[str, Any]) -> Mapping[str, Any]:
    waiting = (cs.get("state") or {}).get("waiting") if isinstance(cs.get("state"), dict) else None
    return waiting if isinstance(waiting, dict) else {}


def waits_for(pod: Mapping[str, Any]) -> list[str]:
    """'Secret/argocd-redis' for each missing config object a pod's containers wait on (CreateContainerConfigError)."""
    out = []
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in container_statuses(pod, key):
            waiting = _waiting(cs)
            if waiting.get("reason") in _CONFIG:
                match = _MISSING_REF.search(str(waiting.get("message") or ""))
                if match:
                    kind = (match.group(1) or match.group(4) or "").lower()
                    name = match.group(2) or match.group(5)
                    out.append(f"{'Secret' if kind == 'secret' else 'ConfigMap'}/{name}")
    return sorted(set(out))


def failing_containers(pod: Mapping[str, Any]) -> list[tuple[str, bool, Mapping[str, Any], str]]:
    """(name, is_init, status, problem) for containers visibly failing, init containers first."""
    out = []
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for cs in container_statuses(pod, key):
            problem = container_problem(cs)
            if problem:
                out.append((str(cs.get("name")), init, cs, problem))
    return out


def only_waiting(pod: Mapping[str, Any]) -> bool:
    """True when every failing container of the pod only waits for a missing Secret/ConfigMap."""
    problems = failing_containers(pod)
    return bool(problems) and all(
        _waiting(cs).get("reason") in _CONFIG and _MISSING_REF.search(str(_waiting(cs).get("message") or ""))
        for _, _, cs, _ in problems)


def initializing(pod: Mapping[str, Any]) -> bool:
    """An init container is running and not done yet: the pod may still create what others wait for."""
    return any(sig.rule == "initializing" for sig in signals(pod))


def culprits(pods: Iterable[Mapping[str, Any]], first: str | None = None
             ) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(producers, victims) among the PODS that visibly fail, each in the given order.

    Victims only wait for a missing Secret/ConfigMap; producers fail for any other reason (a crash-looping init
    container, an image that cannot be pulled, no node to run on) and come first, since what they fail to do is
    likely what the victims wait for. FIRST (an object ref such as a fail-fast Terminal's "Pod/ns/name") leads the
    producers when it is one of them.
    """
    producers: list[Mapping[str, Any]] = []
    victims: list[Mapping[str, Any]] = []
    for pod in pods:
        try:
            failing = bool(failing_containers(pod)) or pod_problem(pod) is not None
        except (TypeError, ValueError, AttributeError):
            continue  # a malformed status: health reports it as Unknown, it names no culprit
        if failing:
            (victims if only_waiting(pod) else producers).append(pod)
    if first is not None:
        producers.sort(key=lambda pod: object_ref(pod) != first)  # stable: the rest keep their order
    return producers, victims
