"""Explain a failed wait, root cause first, with the evidence a reviewer needs to believe it.

The root cause names the producer of the failure, not its victims: when redis' init container cannot
create Secret argocd-redis, the server/repo-server/controller pods sit in CreateContainerConfigError
waiting for that Secret; they are listed as consequences, never blamed. For a failing container the
most telling log line (current and previous run) is quoted, and when it looks like a network failure the
NetworkPolicies selecting the pod are summarised by their egress, since a policy that allows only DNS is
what turns "dial tcp 10.96.0.1:443" into an i/o timeout on an enforcing CNI.

Evidence per unhealthy object: status and conditions, owned pods with container and init-container
states, last log lines of failing containers, events sorted by time, selecting NetworkPolicies.
Written as diagnosis.json and diagnosis.md into the run's artifact directory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient

from validator.files import atomic_write
from validator.health import HealthStatus, container_problem, evidence, hook_annotation, owner_of
from validator.kubeapi import Kube, KubeError, Resource
from validator.manifests import Bundle
from validator.preflight.netpol import policy_types
from validator.preflight.selectors import selector_matches
from validator.watch import WaitResult

LOG_TAIL = 20
_NETWORK_ERROR = re.compile(
    r"(dial tcp [^\"\\\n]*|i/o timeout|connection refused|no route to host|no such host|"
    r"context deadline exceeded|TLS handshake timeout|network is unreachable)", re.IGNORECASE)
_QUOTE = re.compile(r"(dial tcp [^\"\\\n]*|[A-Za-z][^\"\\\n]{0,160}(?:error|failed|timeout|refused|denied|forbidden)"
                    r"[^\"\\\n]{0,80})", re.IGNORECASE)
_MISSING_REF = re.compile(r'(secret|configmap) "([^"]+)" not found|couldn\'t find key (\S+) in (Secret|ConfigMap) '
                          r"[^/]+/(\S+)", re.IGNORECASE)


@dataclass
class Diagnosis:
    """Root cause (one line) and the evidence behind it."""

    root_cause: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    consequences: list[str] = field(default_factory=list)  # objects that only waited for the failing one
    events: list[dict[str, Any]] = field(default_factory=list)
    network_policies: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"root_cause": self.root_cause, "consequences": self.consequences, "evidence": self.evidence,
                "events": self.events, "network_policies": self.network_policies}


# --------------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------------

def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    """Does the policy's podSelector select a pod with these labels? (preflight's selector semantics)"""
    return selector_matches((policy.get("spec") or {}).get("podSelector") or {}, labels)


def egress_summary(policy: dict[str, Any]) -> str | None:
    """'restricts egress to 53/UDP, 53/TCP', 'denies all egress', or None when the policy does not limit egress."""
    spec = policy.get("spec") or {}
    if "Egress" not in policy_types(spec):
        return None
    rules = spec.get("egress") or []
    if not rules:
        return "denies all egress"
    allowed: list[str] = []
    for rule in rules:
        peers = rule.get("to") or []
        ports = rule.get("ports") or []
        where = "" if not peers else " to " + ", ".join(_peer(p) for p in peers)
        if not ports:
            allowed.append(f"all ports{where}")
        for port in ports:
            allowed.append(f"{port.get('port', 'any')}/{port.get('protocol', 'TCP')}{where}")
    if any(a == "all ports" for a in allowed):
        return None  # an unrestricted rule: egress is open
    return "restricts egress to " + ", ".join(dict.fromkeys(allowed))


def _peer(peer: dict[str, Any]) -> str:
    if "ipBlock" in peer:
        return str(peer["ipBlock"].get("cidr"))
    parts = []
    if "namespaceSelector" in peer:
        parts.append("namespaces " + json.dumps((peer["namespaceSelector"] or {}).get("matchLabels") or {}))
    if "podSelector" in peer:
        parts.append("pods " + json.dumps((peer["podSelector"] or {}).get("matchLabels") or {}))
    return " ".join(parts) or "anywhere"


def telling_line(log: str) -> str | None:
    """The fragment of a log that says what went wrong: 'dial tcp 10.96.0.1:443: i/o timeout' rather than the line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _QUOTE.search(line)
        if match:
            return match.group(1).strip().rstrip(".")
    return lines[-1][:200] if lines else None


def waits_for(pod: dict[str, Any]) -> list[str]:
    """'Secret/argocd-redis' for each missing config object a pod's containers wait on (CreateContainerConfigError)."""
    out = []
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in ("CreateContainerConfigError", "CreateContainerError"):
            match = _MISSING_REF.search(waiting.get("message") or "")
            if match:
                kind = (match.group(1) or match.group(4) or "").lower()
                name = match.group(2) or match.group(5)
                out.append(f"{'Secret' if kind == 'secret' else 'ConfigMap'}/{name}")
    return sorted(set(out))


def failing_containers(pod: dict[str, Any]) -> list[tuple[str, bool, dict[str, Any], str]]:
    """(name, is_init, status, problem) for containers visibly failing, init containers first."""
    status = pod.get("status") or {}
    out = []
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for cs in status.get(key) or []:
            problem = container_problem(cs)
            if problem:
                out.append((str(cs.get("name")), init, cs, problem))
    return out


def _short(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _event_time(ev: dict[str, Any]) -> str:
    """When an event last happened. Events from newer components (the scheduler's FailedScheduling) have no
    lastTimestamp/count: they carry eventTime, and repeats in series.lastObservedTime / series.count."""
    return str(_series(ev).get("lastObservedTime") or ev.get("lastTimestamp") or ev.get("eventTime")
               or ev.get("firstTimestamp") or (ev.get("metadata") or {}).get("creationTimestamp") or "")


def _event_order(ev: dict[str, Any]) -> datetime:
    """Chronological, not textual: '...:05Z' sorts after '...:05.123456Z' as strings (second vs microsecond
    precision), so the times are parsed; an unreadable one sorts first."""
    try:
        when = datetime.fromisoformat(_event_time(ev))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _event_count(ev: dict[str, Any]) -> Any:
    return _series(ev).get("count") or ev.get("count") or 1


def _series(ev: dict[str, Any]) -> dict[str, Any]:
    series = ev.get("series")
    return series if isinstance(series, dict) else {}


# --------------------------------------------------------------------------------------------------
# Collection (the I/O edge) and the verdict
# --------------------------------------------------------------------------------------------------

class _Collector:
    """Reads what the diagnosis needs; API errors degrade to 'unavailable' notes, never to a crash."""

    def __init__(self, api: ApiClient, bundle: Bundle, result: WaitResult) -> None:
        self.kube = Kube(api, timeout_s=10, retry_s=2)
        self.bundle = bundle
        self.result = result
        self.notes: list[str] = []
        self.down = False  # after one call failed through its retries, use what the wait saw (bounded time)
        self._logs: dict[tuple[str, str, bool], str | None] = {}  # the root cause and the evidence read the same

    def list(self, api_version: str, kind: str) -> list[dict[str, Any]]:
        fallback = [o for o in self.result.live.values() if o.get("kind") == kind]
        if self.down:
            self.notes.append(f"could not list {kind}: API server unavailable, using the last watched state")
            return fallback
        try:
            res: Resource = self.kube.resource(api_version, kind)
            listing = self.kube.call("GET", res.path(self.bundle.namespace))
        except KubeError as exc:
            self.down = self.down or exc.transient
            self.notes.append(f"could not list {kind}: {exc.message}")
            return fallback
        items = listing.get("items") or []
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
        return items

    def logs(self, pod: dict[str, Any], container: str, previous: bool) -> str | None:
        meta = pod.get("metadata") or {}
        key = (f"{meta.get('namespace')}/{meta.get('name')}/{meta.get('uid')}", container, previous)
        if key not in self._logs:
            self._logs[key] = self._read_logs(pod, container, previous)
        return self._logs[key]

    def _read_logs(self, pod: dict[str, Any], container: str, previous: bool) -> str | None:
        meta = pod.get("metadata") or {}
        path = f"/api/v1/namespaces/{meta.get('namespace')}/pods/{meta.get('name')}/log"
        query = {"container": container, "tailLines": LOG_TAIL, "previous": "true" if previous else None}
        if self.down:
            return None
        try:
            text = self.kube.call("GET", path, query=query)
        except KubeError as exc:
            # only "no answer at all" means the API server is down: a 5xx here is usually the kubelet behind
            # the log proxy (one node), and must not stop the lists and the other pods' logs
            self.down = self.down or exc.status == 0
            if exc.status != 400:  # 400 = no previous run: nothing to say
                self.notes.append(f"logs of {meta.get('name')}/{container}: {exc.message}")
            return None
        return text if isinstance(text, str) else json.dumps(text)


def diagnose(api: ApiClient, bundle: Bundle, result: WaitResult, out_dir: Path) -> Diagnosis:
    """Collect evidence for a failed wait and name the root cause; writes diagnosis.json and diagnosis.md."""
    col = _Collector(api, bundle, result)
    replicasets = col.list("apps/v1", "ReplicaSet")
    pods = _counted_pods(col.list("v1", "Pod"), replicasets, result)
    policies = col.list("networking.k8s.io/v1", "NetworkPolicy")
    events = sorted(col.list("v1", "Event"), key=_event_order)

    failing_pods = [p for p in pods if failing_containers(p)]
    waiting = {_ref(p): waits_for(p) for p in pods if waits_for(p)}
    producers = [p for p in failing_pods if not _only_waiting(p)]
    terminal_pod = next((p for p in pods if result.terminal and _ref(p) == result.terminal.object), None)
    if terminal_pod is not None and not _only_waiting(terminal_pod) and terminal_pod not in producers:
        producers.insert(0, terminal_pod)
    elif terminal_pod is not None and terminal_pod in producers:
        producers.remove(terminal_pod)
        producers.insert(0, terminal_pod)

    diagnosis = Diagnosis(root_cause="")
    involved: set[str] = set()
    for pod in (producers or failing_pods)[:5]:
        diagnosis.evidence.append(_pod_evidence(col, pod, policies))
        involved.add(str((pod.get("metadata") or {}).get("name")))
    for ref, health in sorted(result.health.items()):
        if health.status not in (None, HealthStatus.HEALTHY) and ref not in result.exempt \
                and ref not in result.not_counted:
            live = result.live.get(ref)
            entry: dict[str, Any] = {"object": ref, "health": health.status.value if health.status else None,
                                     "message": health.message}
            if live is not None:
                entry.update(evidence(live))
                entry["pods"] = [_ref(p) for p in _owned_pods(live, pods, replicasets)]
            diagnosis.evidence.append(entry)
            involved.add(_short(ref))
    for ref in result.missing:
        diagnosis.evidence.append({"object": ref, "health": "Missing", "message": "not found in the cluster"})
    diagnosis.consequences = sorted(
        f"{ref}: waits for {', '.join(what)}" for ref, what in waiting.items()
        if not producers or ref not in {_ref(p) for p in producers})
    for ref in diagnosis.consequences:
        involved.add(ref.split(":")[0].rsplit("/", 1)[-1])
    diagnosis.events = [
        {"time": _event_time(ev), "type": ev.get("type"), "reason": ev.get("reason"),
         "object": f"{(ev.get('involvedObject') or {}).get('kind')}/{(ev.get('involvedObject') or {}).get('name')}",
         "message": ev.get("message"), "count": _event_count(ev)}
        for ev in events if (ev.get("involvedObject") or {}).get("name") in involved
        or (ev.get("type") == "Warning"
            and any(_short(r) == (ev.get("involvedObject") or {}).get("name") for r in result.health))]
    diagnosis.network_policies = [
        {"name": (np.get("metadata") or {}).get("name"), "selects": [_ref(p) for p in pods
                                                                       if selects(np, _labels(p))],
         "egress": egress_summary(np) or "unrestricted"}
        for np in policies]
    diagnosis.root_cause = _root_cause(col, result, producers, waiting, policies)
    if col.notes:
        diagnosis.evidence.append({"collection_notes": col.notes})
    write(diagnosis, out_dir)
    return diagnosis


def _counted_pods(pods: list[dict[str, Any]], replicasets: list[dict[str, Any]],
                  result: WaitResult) -> list[dict[str, Any]]:
    """PODS less those of ignore-healthcheck objects: the wait did not judge them, so neither is their failure
    evidence or a root cause. A hook's pods stay: a failing hook fails the sync."""
    ignored = {_ref(p) for ref in result.not_counted if (live := result.live.get(ref)) and not hook_annotation(live)
               for p in _owned_pods(live, pods, replicasets)}
    return [p for p in pods if _ref(p) not in ignored]


def _ref(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"Pod/{meta.get('namespace')}/{meta.get('name')}"


def _labels(pod: dict[str, Any]) -> dict[str, str]:
    return dict((pod.get("metadata") or {}).get("labels") or {})


def _only_waiting(pod: dict[str, Any]) -> bool:
    """True when every failing container of the pod only waits for a missing Secret/ConfigMap."""
    problems = failing_containers(pod)
    return bool(problems) and all(
        ((cs.get("state") or {}).get("waiting") or {}).get("reason") in ("CreateContainerConfigError",
                                                                          "CreateContainerError")
        and _MISSING_REF.search(((cs.get("state") or {}).get("waiting") or {}).get("message") or "")
        for _, _, cs, _ in problems)


def _owned_pods(obj: dict[str, Any], pods: list[dict[str, Any]], replicasets: list[dict[str, Any]]) -> list[Any]:
    uid = (obj.get("metadata") or {}).get("uid")
    owners = {uid} | {(rs.get("metadata") or {}).get("uid") for rs in replicasets
                      if any(o.get("uid") == uid for o in (rs.get("metadata") or {}).get("ownerReferences") or [])}
    return [p for p in pods if any(o.get("uid") in owners for o in (p.get("metadata") or {}).get("ownerReferences")
                                   or [])]


def _pod_evidence(col: _Collector, pod: dict[str, Any], policies: list[dict[str, Any]]) -> dict[str, Any]:
    entry = evidence(pod)
    logs: dict[str, dict[str, str | None]] = {}
    for name, _init, _cs, problem in failing_containers(pod):
        logs[name] = {"problem": problem, "current": col.logs(pod, name, False), "previous": col.logs(pod, name, True)}
    if logs:
        entry["logs"] = logs
    selecting = [p for p in policies if selects(p, _labels(pod))]
    if selecting:
        entry["network_policies"] = [{"name": (p.get("metadata") or {}).get("name"),
                                      "egress": egress_summary(p) or "unrestricted"} for p in selecting]
    return entry


def _root_cause(col: _Collector, result: WaitResult, producers: list[dict[str, Any]],
                waiting: dict[str, list[str]], policies: list[dict[str, Any]]) -> str:
    for pod in producers:
        for name, init, cs, problem in failing_containers(pod):
            owner = owner_of(pod)
            who = _short(owner) if owner else str((pod.get("metadata") or {}).get("name"))
            restarts = int(cs.get("restartCount") or 0)
            what = f"{'init container' if init else 'container'} {name} failing"
            what += f" ({restarts} restarts)" if restarts else ""
            log = (col.logs(pod, name, True) or "") + "\n" + (col.logs(pod, name, False) or "")
            waiting = (cs.get("state") or {}).get("waiting") or {}
            last = ((cs.get("lastState") or {}).get("terminated") or {}).get("message")
            # the back-off message says nothing about why; a pull or config error's message says it all
            said = None if waiting.get("reason") == "CrashLoopBackOff" else waiting.get("message")
            quote = telling_line(log) or last or said
            sentence = f'{who}: {what}: "{quote}"' if quote else f"{who}: {what}: {problem}"
            if _NETWORK_ERROR.search(log):
                limits = [(str((p.get("metadata") or {}).get("name")), egress_summary(p)) for p in policies
                          if selects(p, _labels(pod))]
                limits = [(n, e) for n, e in limits if e]
                if limits:
                    sentence += " - " + "; ".join(f"NetworkPolicy {n} {e}" for n, e in limits)
            return sentence
    if waiting:
        ref, needs = sorted(waiting.items())[0]
        others = len(waiting) - 1
        return (f"{_short(ref)}: cannot start: waits for {', '.join(needs)}, which nothing created"
                + (f" (and {others} more pods wait)" if others else ""))
    if result.root_cause:
        return result.root_cause
    if result.missing:
        return f"missing after install: {', '.join(result.missing[:3])}"
    return "no root cause found: see the evidence"


def render_markdown(d: Diagnosis) -> str:
    out = ["# Diagnosis", "", f"**Root cause:** {d.root_cause}", ""]
    if d.consequences:
        out += ["## Consequences (not the cause)", "", *[f"- {c}" for c in d.consequences], ""]
    out += ["## Evidence", ""]
    for item in d.evidence:
        out.append(f"### {item.get('object', 'notes')}")
        out.append("")
        logs = item.get("logs") or {}
        rest = {k: v for k, v in item.items() if k not in ("logs", "object")}
        out += ["```json", json.dumps(rest, indent=2, default=str)[:6000], "```", ""]
        for container, parts in logs.items():
            for which in ("previous", "current"):
                if parts.get(which):
                    out += [f"Logs of `{container}` ({which} run, last {LOG_TAIL} lines):", "", "```",
                            str(parts[which]).rstrip()[-4000:], "```", ""]
    if d.network_policies:
        out += ["## NetworkPolicies", "", "| policy | selects | egress |", "|---|---|---|"]
        out += [f"| {p['name']} | {', '.join(_short(s) for s in p['selects']) or '-'} | {p['egress']} |"
                for p in d.network_policies]
        out.append("")
    if d.events:
        out += ["## Events (oldest first)", "", "| time | type | reason | object | message |", "|---|---|---|---|---|"]
        out += [f"| {e['time']} | {e['type']} | {e['reason']} | {e['object']} | "
                f"{str(e['message']).replace('|', '/')} (x{e['count']}) |" for e in d.events]
        out.append("")
    return "\n".join(out)


def write(d: Diagnosis, out_dir: Path) -> None:
    atomic_write(Path(out_dir) / "diagnosis.json", json.dumps(d.to_dict(), indent=2, default=str).encode())
    atomic_write(Path(out_dir) / "diagnosis.md", render_markdown(d).encode())
