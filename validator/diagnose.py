"""Explain a failed wait, root cause first, with the evidence a reviewer needs to believe it, and what to do.

The root cause names the producer of the failure, not its victims: when redis' init container cannot
create Secret argocd-redis, the server/repo-server/controller pods sit in CreateContainerConfigError
waiting for that Secret; they are listed as consequences, never blamed (failfast.culprits, the order the live
suspect of the wait follows too). For a failing container the log line that carries the failure (current and
previous run) is quoted (telling_line), and the reason is named in words where it is known:

- a NetworkPolicy selecting the pod restricts its egress and the container dialled out and timed out ("dial tcp
  10.96.0.1:443: i/o timeout"): the policy and what it allows; the remedy is the egress rule admitting the API
  server's endpoint (this cluster's kubernetes EndpointSlice), since that is what the policy sees after kube-proxy;
- the container gets no ServiceAccount token (client-go: "no configuration has been provided"): which setting
  removed it (preflight's token_mount on the workload's pod template); the remedy is to mount it.

When the candidate is a release known to have shipped that very bug (KNOWN_FIXES, checked against upstream's tags
and manifests), the remedy says which release fixed it.

Evidence per unhealthy object: status and conditions, owned pods with container and init-container
states, last log lines of failing containers, events sorted by time, selecting NetworkPolicies.
Written as diagnosis.json (everything, raw) and diagnosis.md (for people: cause and remedy first, then short
tables) into the run's artifact directory.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient

from validator.apiserver import ApiServer, api_server_from_cluster
from validator.failfast import culprits, failing_containers, only_waiting, waits_for
from validator.files import atomic_write
from validator.health import HealthStatus, evidence, hook_annotation, owner_of
from validator.kubeapi import Kube, KubeError, Resource
from validator.manifests import Bundle, KubeObject, pod_metadata, pod_spec
from validator.preflight.apineed import api_call, token_mount
from validator.preflight.credentials import brings_kubeconfig
from validator.preflight.netpol import policy_types
from validator.preflight.selectors import Lookup, PodTemplate, selector_matches
from validator.text import code_block, escape_controls, markdown_escape, markdown_text, one_line, strip_ansi
from validator.watch import WaitResult

__all__ = ["KNOWN_FIXES", "Diagnosis", "KnownFix", "diagnose", "egress_summary", "failing_containers", "known_fix",
           "render_markdown", "selects", "telling_line", "waits_for", "write"]

LOG_TAIL = 20
QUOTE_LIMIT = 300  # how much of the telling log line the root cause quotes

# --------------------------------------------------------------------------------------------------
# Known causes, and the releases known to have shipped them (checked against argoproj/argo-cd's tags and manifests:
# the May 2024 releases gave argocd-redis' new secret-init a NetworkPolicy allowing egress to port 53 only; v3.0.0-rc1
# ran HA haproxy's secret-init with automountServiceAccountToken: false).
# --------------------------------------------------------------------------------------------------

API_EGRESS_BLOCKED = "api-egress-blocked"  # a NetworkPolicy keeps a pod that calls the API from reaching it
EGRESS_BLOCKED = "egress-blocked"  # a NetworkPolicy restricts egress and the container's dial timed out
NO_TOKEN = "no-serviceaccount-token"  # an API caller started without a ServiceAccount token


@dataclass(frozen=True)
class KnownFix:
    broken: str  # the release that shipped the bug
    cause: str  # API_EGRESS_BLOCKED | NO_TOKEN
    workloads: tuple[str, ...]  # the workloads the bug broke
    fixed: str  # the release that fixed it
    change: str  # what upstream changed


_REDIS = ("argocd-redis", "argocd-redis-ha-haproxy")
_NO_EGRESS_POLICY = ("argoproj/argo-cd#18367 took Egress out of the argocd-redis and argocd-redis-ha-haproxy "
                     "NetworkPolicies")
KNOWN_FIXES: tuple[KnownFix, ...] = (
    KnownFix("v2.8.19", API_EGRESS_BLOCKED, _REDIS, "v2.8.20", _NO_EGRESS_POLICY),
    KnownFix("v2.9.15", API_EGRESS_BLOCKED, _REDIS, "v2.9.16", _NO_EGRESS_POLICY),
    KnownFix("v2.10.10", API_EGRESS_BLOCKED, _REDIS, "v2.10.11", _NO_EGRESS_POLICY),
    KnownFix("v2.11.1", API_EGRESS_BLOCKED, _REDIS, "v2.11.2", _NO_EGRESS_POLICY),
    KnownFix("v3.0.0-rc1", NO_TOKEN, ("argocd-redis-ha-haproxy",), "v3.0.0-rc2",
             "argoproj/argo-cd#22226 mounts the ServiceAccount token for haproxy"),
)


def known_fix(version: str | None, cause: str, workload: str) -> KnownFix | None:
    """The upstream fix of CAUSE in WORKLOAD when VERSION is a release known to have shipped exactly that bug."""
    return next((fix for fix in KNOWN_FIXES if fix.broken == version and fix.cause == cause
                 and workload in fix.workloads), None)


@dataclass
class Diagnosis:
    """Root cause (one line), what to do about it, and the evidence behind it."""

    root_cause: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    consequences: list[str] = field(default_factory=list)  # objects that only waited for the failing one
    events: list[dict[str, Any]] = field(default_factory=list)
    network_policies: list[dict[str, Any]] = field(default_factory=list)
    remedy: str | None = None  # one line, for a known cause
    cause: str | None = None  # API_EGRESS_BLOCKED, EGRESS_BLOCKED, NO_TOKEN, or None when not known

    def to_dict(self) -> dict[str, Any]:
        return {"root_cause": self.root_cause, "cause": self.cause, "remedy": self.remedy,
                "consequences": self.consequences, "evidence": self.evidence, "events": self.events,
                "network_policies": self.network_policies}


# --------------------------------------------------------------------------------------------------
# Pure helpers: policies
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


ENDPOINTS_COMMAND = "kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes"


def api_egress_rule(api_server: ApiServer | None) -> str:
    """The egress rule (YAML flow style) that admits the API server's endpoints: what a NetworkPolicy judges after
    kube-proxy has translated the kubernetes Service's address."""
    if api_server is None:
        return "{to: [{ipBlock: {cidr: ENDPOINT/32}}], ports: [{port: PORT, protocol: TCP}]}"
    cidrs = list(dict.fromkeys(str(network) for network, _ in api_server.endpoints))[:8]
    ports = sorted({port for _, port in api_server.endpoints})
    peers = ", ".join(f"{{ipBlock: {{cidr: {cidr}}}}}" for cidr in cidrs)
    return f"{{to: [{peers}], ports: [{', '.join(f'{{port: {p}, protocol: TCP}}' for p in ports)}]}}"


# --------------------------------------------------------------------------------------------------
# Pure helpers: the log line that carries the failure
# --------------------------------------------------------------------------------------------------

_NETWORK_ERROR = re.compile(
    r"(dial tcp [^\"\\\n]*|i/o timeout|connection refused|no route to host|no such host|"
    r"context deadline exceeded|TLS handshake timeout|network is unreachable)", re.IGNORECASE)
_DIAL = re.compile(r"dial tcp [^\"\\\n]*", re.IGNORECASE)
_NO_CONFIG = re.compile(r"no configuration has been provided|unable to load in-cluster configuration",
                        re.IGNORECASE)
# Error shapes that say what failed. Strong: they name a cause by themselves. Weak: common in benign lines too
# ("secret not found, creating it"), so they only tip a line that is not explicitly informational.
_STRONG = re.compile(_NETWORK_ERROR.pattern + r"|" + _NO_CONFIG.pattern + r"|x509: |\bUnauthorized\b"
                     r"|OOMKilled|out of memory", re.IGNORECASE)
_WEAK = re.compile(r"\bforbidden\b|\bnot found\b|permission denied|\bno such file or directory\b"
                   r"|\bis invalid\b|\bdenied\b", re.IGNORECASE)
_LOGRUS_LEVEL = re.compile(r"\blevel=\"?([A-Za-z]+)\"?")
_JSON_LEVEL = re.compile(r"\"(?:level|severity|lvl)\"\s*:\s*\"([A-Za-z]+)\"")
_KLOG = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d(?:\.\d+)?\s+\d+\s+[^\]\s]+\]\s?")
_PANIC = re.compile(r"^(?:panic: |fatal error: )")
_ERROR_WORD = re.compile(r"(?:^|[\s\[(])(?:Error|error|ERROR):")
_LEVEL_WORD = re.compile(r"(?:^|[\s\[|])(FATAL|PANIC|CRITICAL|CRIT|ERROR|ERR|WARNING|WARN|INFO|DEBUG|TRACE)"
                         r"(?:[\s\]|:]|$)")
_LEVELS = {"panic": 3, "fatal": 3, "critical": 3, "crit": 3, "dpanic": 3, "error": 2, "err": 2,
           "warning": 1, "warn": 1, "info": -1, "debug": -1, "trace": -1, "notice": -1}
_KLOG_LEVELS = {"F": 3, "E": 2, "W": 1, "I": -1}


def severity(line: str) -> int:
    """How bad a log line says it is: 3 fatal/panic, 2 error, 1 warning, -1 info/debug, 0 when it does not say.

    Read from logrus (`level=fatal`), JSON logs (`"level":"error"`), klog (`F0520 ...`, `E0520 ...`), Go panics
    (`panic: `, `fatal error: `), `Error:`/`error:` (cobra, most CLIs) and a bare level word (`ERROR`, `[WARN]`)."""
    for pattern in (_LOGRUS_LEVEL, _JSON_LEVEL):
        match = pattern.search(line)
        if match and match.group(1).lower() in _LEVELS:
            return _LEVELS[match.group(1).lower()]
    klog = _KLOG.match(line)
    if klog:
        return _KLOG_LEVELS[klog.group(1)]
    if _PANIC.match(line):
        return 3
    word = _LEVEL_WORD.search(line[:60])
    if word:
        return _LEVELS[word.group(1).lower()]
    return 2 if _ERROR_WORD.search(line) else 0


def line_rank(line: str) -> float:
    """How well a line explains a failure; > 0 only for lines that do (error level or a known error shape)."""
    level = severity(line)
    if level < 0:
        return 0.0  # explicitly informational: "level=info msg=\"secret not found, creating\"" explains nothing
    if _STRONG.search(line):
        return max(level, 2) + 0.5
    if _WEAK.search(line):
        return max(level, 1) + 0.25 if level >= 1 else 1.25
    return float(level) if level >= 2 else 0.0


def pick_line(current: str, previous: str = "") -> str | None:
    """The log line that carries the failure, from the previous run's log then the current one's.

    The worst line by line_rank (fatal/error/panic level, known error shapes), the later one on a tie; when no line
    says it failed, the last line of the run that exited (the previous run's when there is one: the current run may
    have printed only its start-up banner so far).
    """
    runs = [[strip_ansi(line).strip() for line in log.splitlines()] for log in (previous, current)]
    runs = [[line for line in run if line] for run in runs]
    best: tuple[float, str] | None = None
    for line in (line for run in runs for line in run):
        rank = line_rank(line)
        if rank > 0 and (best is None or rank >= best[0]):
            best = (rank, line)
    if best is not None:
        return best[1]
    exited = runs[0] or runs[1]
    return exited[-1] if exited else None


def message_of(line: str) -> str:
    """What a log line says, without its logger's frame: a dial error as its `dial tcp ...` fragment; logrus' msg
    (and error) value, a JSON log's msg/message (and error), klog's text after the header, else the line."""
    dial = _DIAL.search(line)
    if dial:
        return dial.group(0).strip().rstrip(".")
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and (doc.get("msg") or doc.get("message")):
            text = str(doc.get("msg") or doc.get("message"))
            error = doc.get("error") or doc.get("err")
            return f"{text}: {error}" if error and str(error) not in text else text
    logrus = re.search(r'\bmsg=("(?:[^"\\]|\\.)*"|\S+)', line)
    if logrus:
        text = _unquote(logrus.group(1))
        error = re.search(r'\berror=("(?:[^"\\]|\\.)*"|\S+)', line)
        return f"{text}: {_unquote(error.group(1))}" if error and _unquote(error.group(1)) not in text else text
    klog = _KLOG.match(line)
    return line[klog.end():].strip() if klog else line.strip()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value))
        except ValueError:
            return value[1:-1]
    return value


def telling_line(current: str, previous: str = "") -> str | None:
    """What a container's logs say went wrong, quotable: 'dial tcp 10.96.0.1:443: i/o timeout' from a fatal line,
    'invalid configuration: no configuration has been provided, ...' rather than a start-up banner."""
    line = pick_line(current, previous)
    if line is None:
        return None
    text = " ".join(escape_controls(message_of(line)).split())
    return text[:QUOTE_LIMIT] if text else None


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
# Pure helpers: the ServiceAccount token
# --------------------------------------------------------------------------------------------------

def _template(pod: Mapping[str, Any], bundle: Bundle | None) -> PodTemplate:
    """The pod template POD was made from (its workload in BUNDLE), else the live pod as its own template."""
    owner = owner_of(pod)
    if owner and bundle is not None:
        kind, _, rest = owner.partition("/")
        namespace, _, name = rest.rpartition("/")
        obj = bundle.get(kind, name, namespace or None)
        spec = pod_spec(obj) if obj is not None else None
        if obj is not None and spec is not None:
            labels = {str(k): str(v) for k, v in (pod_metadata(obj).get("labels") or {}).items()}
            return PodTemplate(obj, labels, spec)
    meta = pod.get("metadata") or {}
    body = {**pod, "apiVersion": "v1", "kind": "Pod", "metadata": {**meta, "name": str(meta.get("name") or "?")}}
    live = KubeObject(body, "live", namespace=str(meta.get("namespace") or ""))
    return PodTemplate(live, dict(meta.get("labels") or {}), dict(pod.get("spec") or {}))


def missing_token(pod: Mapping[str, Any], container: str, bundle: Bundle | None, log: str) -> tuple[str, str] | None:
    """(words, remedy) when CONTAINER runs without a ServiceAccount token and that explains its failure: its log
    says client-go found no configuration, or it runs a known API caller; None otherwise.

    Which setting removed the token comes from preflight's token_mount on the pod's template in the bundle (the
    pod's own setting wins over its ServiceAccount's; a projected serviceAccountToken volume is a token too)."""
    tmpl = _template(pod, bundle)
    spec = next((c for section in ("initContainers", "containers") for c in tmpl.spec.get(section) or []
                 if isinstance(c, dict) and c.get("name") == container), None)
    if spec is None or brings_kubeconfig(spec) or not (_NO_CONFIG.search(log) or api_call(spec)):
        return None
    token = token_mount(Lookup(bundle if bundle is not None else Bundle([])), tmpl)
    if token.mounted:
        return None
    if tmpl.spec.get("automountServiceAccountToken") is not None:
        where = f"Pod {tmpl.owner.name}" if tmpl.owner.kind == "Pod" else f"{tmpl.label}'s pod template"
    else:
        where = f"ServiceAccount {token.account}"
    words = f"no ServiceAccount token: automountServiceAccountToken is false on {where}"
    remedy = (f"mount the token: automountServiceAccountToken: true on {where} (or a projected serviceAccountToken "
              "volume)")
    return words, remedy


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

    def api_server(self) -> ApiServer | None:
        """Where this cluster serves the API (its kubernetes Service and EndpointSlice), or None."""
        if self.down:
            return None
        try:
            service = self.kube.call("GET", "/api/v1/namespaces/default/services/kubernetes")
            slices = self.kube.call("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                                    query={"labelSelector": "kubernetes.io/service-name=kubernetes"})
            return api_server_from_cluster(service, (slices or {}).get("items") or [])
        except KubeError as exc:
            self.notes.append(f"could not read the API server's endpoints: {exc.message}")
        except (AttributeError, TypeError, ValueError) as exc:
            self.notes.append(f"unreadable kubernetes Service or EndpointSlice: {exc}")
        return None


def diagnose(api: ApiClient, bundle: Bundle, result: WaitResult, out_dir: Path) -> Diagnosis:
    """Collect evidence for a failed wait and name the root cause; writes diagnosis.json and diagnosis.md."""
    col = _Collector(api, bundle, result)
    replicasets = col.list("apps/v1", "ReplicaSet")
    pods = _counted_pods(col.list("v1", "Pod"), replicasets, result)
    policies = col.list("networking.k8s.io/v1", "NetworkPolicy")
    events = sorted(col.list("v1", "Event"), key=_event_order)

    failing_pods = [p for p in pods if failing_containers(p)]
    waiting = {_ref(p): waits_for(p) for p in pods if waits_for(p)}
    terminal = result.terminal.object if result.terminal else None
    producers = [dict(p) for p in culprits(failing_pods, first=terminal)[0]]
    terminal_pod = next((p for p in pods if _ref(p) == terminal), None)
    if terminal_pod is not None and not only_waiting(terminal_pod) and terminal_pod not in producers:
        producers.insert(0, terminal_pod)  # e.g. a Failed standalone pod whose containers show no problem now

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
    diagnosis.root_cause, diagnosis.cause, diagnosis.remedy = _root_cause(col, result, producers, waiting, policies)
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


def _ref(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"Pod/{meta.get('namespace')}/{meta.get('name')}"


def _labels(pod: Mapping[str, Any]) -> dict[str, str]:
    return dict((pod.get("metadata") or {}).get("labels") or {})


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
        current, previous = col.logs(pod, name, False), col.logs(pod, name, True)
        logs[name] = {"problem": problem, "current": current, "previous": previous,
                      "line": telling_line(current or "", previous or "")}
    if logs:
        entry["logs"] = logs
    selecting = [p for p in policies if selects(p, _labels(pod))]
    if selecting:
        entry["network_policies"] = [{"name": (p.get("metadata") or {}).get("name"),
                                      "egress": egress_summary(p) or "unrestricted"} for p in selecting]
    return entry


def _version(bundle: Bundle) -> str | None:
    prov = bundle.provenance
    return (getattr(prov, "version", None) or getattr(prov, "image_version", None)) if prov is not None else None


def _calls_api(pod: Mapping[str, Any], container: str, log: str, api_server: ApiServer | None) -> bool:
    """Whether the container's failed dial was the Kubernetes API: it runs a known API caller, its log names an API
    path, or it dialled the kubernetes Service or one of its endpoints."""
    spec = next((c for section in ("initContainers", "containers") for c in (pod.get("spec") or {}).get(section) or []
                 if isinstance(c, dict) and c.get("name") == container), None)
    if spec is not None and api_call(spec):
        return True
    if re.search(r"https://[^/\"\s]+/apis?/|kubernetes\.default", log):
        return True
    if api_server is None:
        return False
    addresses = [*api_server.endpoints, *([api_server.service] if api_server.service else [])]
    for host, port in re.findall(r"dial tcp \[?([0-9a-fA-F.:]+?)\]?:(\d+)", log):
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            continue
        if any(address in network and int(port) == p for network, p in addresses):
            return True
    return False


def _root_cause(col: _Collector, result: WaitResult, producers: list[dict[str, Any]],
                waiting: dict[str, list[str]], policies: list[dict[str, Any]]
                ) -> tuple[str, str | None, str | None]:
    """(root cause, cause key, remedy)."""
    for pod in producers:
        for name, init, cs, problem in failing_containers(pod):
            owner = owner_of(pod)
            who = _short(owner) if owner else str((pod.get("metadata") or {}).get("name"))
            restarts = int(cs.get("restartCount") or 0)
            what = f"{'init container' if init else 'container'} {name} failing"
            what += f" ({restarts} restarts)" if restarts else ""
            current, previous = col.logs(pod, name, False) or "", col.logs(pod, name, True) or ""
            log = previous + "\n" + current
            state_waiting = (cs.get("state") or {}).get("waiting") or {}
            last = ((cs.get("lastState") or {}).get("terminated") or {}).get("message")
            # the back-off message says nothing about why; a pull or config error's message says it all
            said = None if state_waiting.get("reason") == "CrashLoopBackOff" else state_waiting.get("message")
            told = telling_line(current, previous) or (escape_controls(str(last)) if last else None) or said
            told = " ".join(str(told).split())[:QUOTE_LIMIT] if told else None
            sentence = f'{who}: {what}: "{told}"' if told else f"{who}: {what}: {problem}"
            cause, words, remedy = _known_cause(col, pod, name, who, log, policies)
            if words:
                sentence += f" - {words}"
            return sentence, cause, remedy
    if waiting:
        ref, needs = sorted(waiting.items())[0]
        others = len(waiting) - 1
        return (f"{_short(ref)}: cannot start: waits for {', '.join(needs)}, which nothing created"
                + (f" (and {others} more pods wait)" if others else "")), None, None
    if result.root_cause:
        return result.root_cause, None, None
    if result.missing:
        return f"missing after install: {', '.join(result.missing[:3])}", None, None
    return "no root cause found: see the evidence", None, None


def _known_cause(col: _Collector, pod: dict[str, Any], container: str, workload: str, log: str,
                 policies: list[dict[str, Any]]) -> tuple[str | None, str | None, str | None]:
    """(cause key, the reason in words, remedy) when the failure has a known cause, else (None, None, None)."""
    version = _version(col.bundle)
    token = missing_token(pod, container, col.bundle, log)
    if token is not None:
        words, remedy = token
        fix = known_fix(version, NO_TOKEN, workload)
        if fix is not None:
            remedy = f"upstream fixed it in {fix.fixed} ({fix.change}); or {remedy}"
        return NO_TOKEN, words, remedy
    if not _NETWORK_ERROR.search(log):
        return None, None, None
    limits = [(str((p.get("metadata") or {}).get("name")), egress_summary(p)) for p in policies
              if selects(p, _labels(pod))]
    limits = [(n, e) for n, e in limits if e]
    if not limits:
        return None, None, None
    words = "; ".join(f"NetworkPolicy {n} {e}" for n, e in limits)
    names = ", ".join(n for n, _ in limits)
    api_server = col.api_server()
    if not _calls_api(pod, container, log, api_server):
        dial = _DIAL.search(log)
        target = f" for what it dials ({dial.group(0).split(':', 1)[0].removeprefix('dial tcp ')})" if dial else ""
        return EGRESS_BLOCKED, words, f"add an egress rule to NetworkPolicy {names}{target}"
    here = f"here `{api_egress_rule(api_server)}` ({api_server.describe()})" if api_server is not None else \
        f"`{api_egress_rule(None)}`"
    remedy = (f"add to NetworkPolicy {names} an egress rule that admits the API server's endpoints, {here}; "
              f"in production, its own ({ENDPOINTS_COMMAND})")
    fix = known_fix(version, API_EGRESS_BLOCKED, workload)
    if fix is not None:
        remedy = f"upstream fixed it in {fix.fixed} ({fix.change}); or {remedy}"
    return API_EGRESS_BLOCKED, words, remedy


# --------------------------------------------------------------------------------------------------
# diagnosis.md: for people. Cause and remedy first, then per object a short table, events as a table; every
# value from the cluster or a log is escaped (markdown_text, code_block). The raw evidence is diagnosis.json.
# --------------------------------------------------------------------------------------------------

def _md(value: Any, limit: int = 300) -> str:
    return markdown_text("" if value is None else value, limit) or "-"


def _md_code(text: str) -> str:
    """Our own sentence with `code` spans (a remedy): the text between them escaped, the spans kept as code."""
    parts = one_line(text, 2000).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans then
        return _md(text, 2000)
    return "".join(markdown_escape(part) if i % 2 == 0 else f"`{part}`" for i, part in enumerate(parts))


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}",
            *[f"| {' | '.join(_md(cell) for cell in row)} |" for row in rows], ""]


def _state(cs: Mapping[str, Any]) -> str:
    state = cs.get("state") or {}
    for key in ("waiting", "terminated", "running"):
        if key in state:
            detail = state[key] or {}
            return f"{key}: {detail['reason']}" if isinstance(detail, dict) and detail.get("reason") else key
    return "unknown"


def _last_exit(cs: Mapping[str, Any]) -> str:
    term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
    if not term:
        return "-"
    return f"{term.get('exitCode')} ({term.get('reason')})" if term.get("reason") else str(term.get("exitCode"))


def _pod_markdown(item: dict[str, Any]) -> list[str]:
    logs: dict[str, dict[str, Any]] = item.get("logs") or {}
    facts = [("phase", item.get("phase")), ("owner", item.get("owner"))]
    facts += [("NetworkPolicy", f"{p.get('name')}: {p.get('egress')}") for p in item.get("network_policies") or []]
    out = [" · ".join(f"{key} {_md(value)}" for key, value in facts if value), ""]
    rows = []
    for key, label in (("initContainerStatuses", " (init)"), ("containerStatuses", "")):
        for cs in item.get(key) or []:
            name = str(cs.get("name"))
            rows.append([f"{name}{label}", _state(cs), "yes" if cs.get("ready") else "no", cs.get("restartCount", 0),
                         _last_exit(cs), (logs.get(name) or {}).get("line")])
    if rows:
        out += _table(["container", "state", "ready", "restarts", "last exit", "log line"], rows)
    for name, parts in logs.items():
        for which in ("previous", "current"):
            if parts.get(which):
                out += [f"<details><summary>{_md(name)}: {which} run, last {LOG_TAIL} log lines</summary>", "",
                        *code_block(str(parts[which]).rstrip()[-4000:]), "", "</details>", ""]
    return out


def _object_markdown(item: dict[str, Any]) -> list[str]:
    conditions = "; ".join(f"{c.get('type')}={c.get('status')}" + (f" ({c.get('reason')})" if c.get("reason") else "")
                           for c in item.get("conditions") or [])
    pods = ", ".join(_short(p) for p in item.get("pods") or [])
    return _table(["health", "message", "conditions", "pods"],
                  [[item.get("health"), item.get("message"), conditions, pods]])


def render_markdown(d: Diagnosis) -> str:
    out = ["# Diagnosis", "", f"**Root cause:** {_md(d.root_cause, 2000)}", ""]
    if d.remedy:
        out += [f"**Remedy:** {_md_code(d.remedy)}", ""]
    if d.consequences:
        out += ["## Consequences (not the cause)", "", *[f"- {_md(c)}" for c in d.consequences], ""]
    out += ["## Evidence", ""]
    for item in d.evidence:
        if "collection_notes" in item:
            out += ["### Collection notes", "", *[f"- {_md(n)}" for n in item["collection_notes"]], ""]
            continue
        out += [f"### {_md(item.get('object', 'object'))}", ""]
        kind = str(item.get("object", "")).split("/", 1)[0]
        out += _pod_markdown(item) if kind == "Pod" else _object_markdown(item)
    if d.events:
        out += ["## Events (oldest first)", ""]
        out += _table(["time", "type", "reason", "object", "count", "message"],
                      [[e.get("time"), e.get("type"), e.get("reason"), e.get("object"), e.get("count"),
                        e.get("message")] for e in d.events])
    if d.network_policies:
        out += ["## NetworkPolicies", ""]
        out += _table(["policy", "selects", "egress"],
                      [[p["name"], ", ".join(_short(s) for s in p["selects"]), p["egress"]]
                       for p in d.network_policies])
    out.append("The raw evidence (object states, logs, events) is in diagnosis.json.")
    return "\n".join(out) + "\n"


def write(d: Diagnosis, out_dir: Path) -> None:
    atomic_write(Path(out_dir) / "diagnosis.json", json.dumps(d.to_dict(), indent=2, default=str).encode())
    atomic_write(Path(out_dir) / "diagnosis.md", render_markdown(d).encode())
