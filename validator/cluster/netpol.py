"""NetworkPolicy positive controls: prove enforcement on this very cluster before trusting any pass.

Generic control (`prove_networkpolicy_enforced`, once per cluster): two probe pods dial the API server's
ClusterIP (the same `dial tcp 10.96.0.1:443` the v2.11.1 secret-init made; by IP from the injected
KUBERNETES_SERVICE_* env, so DNS plays no part):
- `probe-restricted` sits under a deny-all-egress NetworkPolicy and must end up blocked;
- `probe-open` has no policy and must connect (otherwise the pod network, not policy, is broken).
Enforcement may lag (kindnet's kube-network-policies lets a new pod's first packets through), so the
restricted probe retries and counts as blocked after two consecutive failures within its attempts.

Candidate control (`prove_candidate_policies`, per install, before any workload): for every
egress-restricting NetworkPolicy of the candidate, a new pod the policy selects must meet the outcome the
static evaluation (validator.preflight.netpol) predicts. A blocked probe also means the policy is
programmed, so the candidate's own pods start under it as in a long-running cluster, instead of winning
the race that hides a v2.11.1-style bug. Enforcement absent -> EnvironmentNotReady: "could not validate",
never a pass.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient

from validator.apiserver import KIND_API_SERVER, ApiServer
from validator.cluster.apiserver import discover_api_server
from validator.cluster.kubeapi import ApiError, request
from validator.cluster.model import Cluster
from validator.cluster.tools import Progress, stderr_progress
from validator.errors import EnvironmentNotReady
from validator.manifests import Bundle, KubeObject, mapping_at
from validator.preflight.netpol import (
    EgressPolicies,
    _egress_rules,
    admits_api,
    describe_rule,
    restricted_api_pods,
    restricts_egress,
    some,
)
from validator.preflight.selectors import Lookup, PodTemplate, selector_matches

PROBE_NAMESPACE = "argocd-mirror-probe"
# busybox's nc has -z/-w; override with ARGOCD_MIRROR_PROBE_IMAGE (e.g. a digest-pinned or preloaded image).
PROBE_IMAGE = os.environ.get("ARGOCD_MIRROR_PROBE_IMAGE", "busybox:1.37.0")
LABEL = "argocd-mirror/probe"
POLICY_ROLE = "policy"  # LABEL value of the probes that stand in for a candidate's pods
MANAGED = {"app.kubernetes.io/managed-by": "argocd-mirror"}
BLOCKED, CONNECT = "blocked", "connect"
_DIAL = 'nc -z -w 3 "$KUBERNETES_SERVICE_HOST" "$KUBERNETES_SERVICE_PORT"'
_POD_NAME_MAX = 63  # the pod's hostname is its name: keep it a DNS label


def restricted_script(attempts: int) -> str:
    """Exit 0 once two consecutive dials fail (blocked), 1 if it never got blocked."""
    return (f'b=0; i=0; while [ $i -lt {attempts} ]; do i=$((i+1)); '
            f'if {_DIAL}; then echo "attempt $i: connected"; b=0; '
            f'else echo "attempt $i: blocked"; b=$((b+1)); [ $b -ge 2 ] && exit 0; fi; sleep 1; done; exit 1')


def open_script(attempts: int) -> str:
    """Exit 0 on the first successful dial, 1 if the API server was never reachable."""
    return (f'i=0; while [ $i -lt {attempts} ]; do i=$((i+1)); '
            f'if {_DIAL}; then echo "attempt $i: connected"; exit 0; fi; echo "attempt $i: failed"; sleep 1; done; '
            f'exit 1')


def probe_pod(name: str, namespace: str, labels: dict[str, str], script: str, image: str,
              namespace_uid: str | None = None) -> dict[str, Any]:
    """A run-once pod that dials the API server, with no ServiceAccount token (it needs none, and must not
    look like a pod that uses the API).

    Its Namespace (NAMESPACE_UID), when given, becomes its controller: it carries a workload's labels, and a
    ReplicaSet or DaemonSet left by a previous install would otherwise adopt it as a replica (and delete a
    real pod, or it) during an upgrade. A Namespace outlives its pods, so nothing garbage-collects it either.
    """
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if namespace_uid:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Namespace", "name": namespace,
                                        "uid": namespace_uid, "controller": True, "blockOwnerDeletion": False}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                     "automountServiceAccountToken": False,
                     # admissible under the "restricted" Pod Security Standard some disposable clusters enforce
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "probe", "image": image, "imagePullPolicy": "IfNotPresent",
                                     "command": ["sh", "-c", script],
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}},
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                                   "limits": {"memory": "32Mi"}}}]}}


def probe_objects(image: str, attempts: int) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, body) in creation order: the policy exists before any probe pod starts."""
    ns = PROBE_NAMESPACE

    def pod(name: str, role: str, script: str) -> dict[str, Any]:
        return probe_pod(name, ns, {**MANAGED, LABEL: role}, script, image)

    return [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": ns, "labels": dict(MANAGED)}}),
        (f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
         {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "deny-all-egress", "namespace": ns, "labels": dict(MANAGED)},
          "spec": {"podSelector": {"matchLabels": {LABEL: "restricted"}}, "policyTypes": ["Egress"]}}),
        (f"/api/v1/namespaces/{ns}/pods", pod("probe-restricted", "restricted", restricted_script(attempts))),
        (f"/api/v1/namespaces/{ns}/pods", pod("probe-open", "open", open_script(attempts))),
    ]


def pod_state(pod: dict[str, Any]) -> tuple[str, str]:
    """(phase, why it waits) of a probe pod; 'why' names e.g. ImagePullBackOff."""
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return phase, f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
    return phase, ""


def _tail(log: str) -> str:
    return " | ".join(log.strip().splitlines()[-3:]) or "no output"


def verdict(restricted: str, open_: str, logs: dict[str, str]) -> str | None:
    """None when enforcement is proven, else why the run cannot be trusted. Pure, for tests."""
    if open_ != "Succeeded":
        return ("could not validate: the unrestricted probe pod could not reach the API server, so the pod network "
                f"is broken and NetworkPolicy enforcement cannot be proven ({_tail(logs.get('probe-open', ''))})")
    if restricted != "Succeeded":
        return ("could not validate: NetworkPolicy is not enforced on this cluster: a pod under a deny-all-egress "
                f"policy still reached the API server ({_tail(logs.get('probe-restricted', ''))}); use kind >= v0.24 "
                "with its default kindnet and node image, or the calico profile; kernels without nftables/nfqueue "
                "(e.g. WSL2) fail open")
    return None


def prove_networkpolicy_enforced(cluster: Cluster, timeout_s: float = 180, image: str = PROBE_IMAGE,
                                 attempts: int = 10, poll_s: float = 2, progress: Progress = stderr_progress,
                                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Raise EnvironmentNotReady unless a deny-all-egress policy demonstrably blocks egress here."""
    api = cluster.api_client()
    ns_path = f"/api/v1/namespaces/{PROBE_NAMESPACE}"
    progress(f"proving NetworkPolicy enforcement (probe image {image})")
    try:
        _delete_and_wait(api, ns_path, timeout_s, poll_s, sleep)  # a leftover from an interrupted run
        for path, body in probe_objects(image, attempts):
            _create(api, path, body)
        phases = _wait_terminated(api, PROBE_NAMESPACE, ("probe-restricted", "probe-open"), timeout_s, poll_s, sleep)
        logs = {name: _logs(api, PROBE_NAMESPACE, name) for name in phases}
        problem = verdict(phases["probe-restricted"], phases["probe-open"], logs)
        cluster.details["networkpolicy"] = {"enforced": problem is None, "phases": phases, "logs": logs}
        if problem:
            raise EnvironmentNotReady(problem)
        progress("NetworkPolicy is enforced (deny-all-egress probe blocked, open probe connected)")
    except ApiError as exc:
        raise EnvironmentNotReady(f"could not validate: NetworkPolicy probe failed: {exc}") from None
    finally:
        try:
            _delete_and_wait(api, ns_path, timeout_s, poll_s, sleep)
        except (ApiError, EnvironmentNotReady) as exc:
            progress(f"warning: probe namespace {PROBE_NAMESPACE} not cleaned up: {exc}")


# --------------------------------------------------------------------------------------------------
# The candidate's own egress policies, proven on new pods before the candidate's workloads start
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PolicyProbe:
    """One probe pod standing in for the pods an egress-restricting policy of the candidate selects."""

    policy: str  # "namespace/name" of the NetworkPolicy
    pod: str
    namespace: str
    labels: dict[str, str]
    expect: str  # BLOCKED or CONNECT, from the static evaluation
    why: str  # what the selecting policies admit, for the progress line and the error

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods/{self.pod}"


def selector_labels(selector: Any) -> dict[str, str] | None:
    """Labels a podSelector selects: matchLabels plus one value per `In` and a marker per `Exists`.

    NotIn/DoesNotExist are met by leaving their key out; any other operator, or an `In` that contradicts
    matchLabels, gives None. The caller re-checks the final labels (ours added) with preflight's
    selector_matches, the one place that defines selector semantics.
    """
    if not isinstance(selector, dict):
        return None
    labels = {str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()}
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            return None
        key, operator, values = str(expr.get("key", "")), expr.get("operator"), expr.get("values") or []
        if operator == "In" and values:
            if key in labels and labels[key] not in [str(v) for v in values]:
                return None
            labels.setdefault(key, str(values[0]))
        elif operator == "Exists":
            labels.setdefault(key, "argocd-mirror-probe")
        elif operator not in ("NotIn", "DoesNotExist"):
            return None
    return labels


def probe_name(policy: str) -> str:
    """`argocd-mirror-probe-<policy>`, shortened with a hash so distinct long names stay distinct."""
    name = f"argocd-mirror-probe-{policy}"
    if len(name) <= _POD_NAME_MAX:
        return name
    digest = hashlib.sha256(policy.encode()).hexdigest()[:8]
    return f"{name[:_POD_NAME_MAX - 9].rstrip('.-')}-{digest}"


def plan_policy_probes(bundle: Bundle, api_server: ApiServer = KIND_API_SERVER) -> tuple[list[PolicyProbe], list[str]]:
    """(probes, notes on policies skipped) for every egress-restricting NetworkPolicy of the bundle. Pure.

    The expected outcome is preflight's, judged against API_SERVER (the cluster's own endpoints): all policies
    selecting the probe's labels together admit every endpoint -> CONNECT, none -> BLOCKED (policy is enforced
    after the Service DNAT, so 443 to the Service alone does not help: a probe shows it); admitting only part of
    them depends on the endpoint a dial gets, so no probe.
    """
    lookup = Lookup(bundle)
    restricting = EgressPolicies(lookup)
    probes: list[PolicyProbe] = []
    notes: list[str] = []
    for policy in lookup.of_kind("NetworkPolicy"):
        if not restricts_egress(policy):
            continue
        ref = f"{policy.namespace}/{policy.name}"
        selector = mapping_at(policy.body, "spec").get("podSelector") or {}
        wanted = selector_labels(selector)
        labels = {**(wanted or {}), **MANAGED, LABEL: POLICY_ROLE}
        if wanted is None or not selector_matches(selector, labels):
            notes.append(f"NetworkPolicy {ref} not probed: no simple label set satisfies its podSelector {selector}")
            continue
        name = probe_name(policy.name)
        body = probe_pod(name, policy.namespace, labels, "", "")
        selecting = restricting.selecting(PodTemplate(KubeObject(body, namespace=policy.namespace), labels,
                                                      body["spec"]))
        rules = _egress_rules(selecting)
        endpoint_ok = admits_api(rules, api_server)
        allowed = "; ".join(some(describe_rule(r) for r in rules)) or "nothing (deny all egress)"
        why = (f"{', '.join(some(p.name for p in selecting))} allow(s) egress to {allowed}; "
               f"the API server is at {api_server.describe()}")
        if endpoint_ok is None:
            notes.append(f"NetworkPolicy {ref} not probed: it admits only part of the API server endpoint(s) "
                         f"{api_server.describe()}, so the outcome depends on the endpoint a dial gets")
            continue
        probes.append(PolicyProbe(ref, name, policy.namespace, labels, CONNECT if endpoint_ok else BLOCKED, why))
    return probes, notes


def unmirrored_api_access(bundle: Bundle, mirror: ApiServer, production: ApiServer) -> list[str]:
    """Pods whose policies admit production's API server but not the mirror's. Pure.

    On the mirror they would time out for an address it cannot reproduce and the candidate would FAIL for
    nothing production would see; the other way round, preflight (judging production's) already errs.
    """
    return [f"{pod.tmpl.label}: NetworkPolicy {', '.join(some(p.name for p in pod.policies))} admit(s) the API "
            f"server at "
            f"{production.describe()} but not at {mirror.describe()}"
            for pod in restricted_api_pods(bundle)
            if admits_api(pod.rules, production) is True and admits_api(pod.rules, mirror) is not True]


def policy_verdict(probe: PolicyProbe, phase: str, log: str) -> str | None:
    """None when the probe met its expectation, else why the mirror cannot be trusted. Pure, for tests."""
    if phase == "Succeeded":
        return None
    labels = ",".join(f"{k}={v}" for k, v in probe.labels.items() if k != LABEL and k not in MANAGED)
    if probe.expect == BLOCKED:
        return (f"could not validate: NetworkPolicy {probe.policy} is not enforced for a new pod: probe pod "
                f"{probe.pod} ({labels or 'no labels'}) it selects still reached the API server ({_tail(log)}) "
                f"although {probe.why}; the candidate's pods would start unrestricted "
                "(kindnet lets a new pod's first packets through until its policies are programmed)")
    return (f"could not validate: NetworkPolicy {probe.policy} admits egress to the API server ({probe.why}), but "
            f"probe pod {probe.pod} ({labels or 'no labels'}) it selects could not reach it ({_tail(log)}); "
            "the mirror would blame the candidate for this cluster's network")


def prove_candidate_policies(cluster_or_api: Cluster | ApiClient, bundle: Bundle, timeout_s: float = 180,
                             image: str = PROBE_IMAGE, attempts: int = 10, poll_s: float = 2,
                             progress: Progress = stderr_progress,
                             sleep: Callable[[float], None] = time.sleep,
                             production: ApiServer | None = None) -> list[dict[str, Any]]:
    """Raise EnvironmentNotReady unless every egress-restricting policy of BUNDLE acts on a new pod as
    predicted; run between the policies' apply and the first workload (install's before_workloads).
    PRODUCTION (a profile's `apiServer:`): also unless the policies treat this cluster's API server as they
    treat production's, since a mirror that cannot reproduce production's addressing cannot judge the candidate.

    The probe pods are deleted, and gone, before this returns: the watcher must never see them as the
    candidate's. Returns one record per probe (policy, expect, phase, log) for the evidence.
    """
    cluster, api = ((cluster_or_api, cluster_or_api.api_client()) if isinstance(cluster_or_api, Cluster)
                    else (None, cluster_or_api))
    if not any(restricts_egress(policy) for policy in bundle.of_kind("NetworkPolicy")):
        return []
    api_server, unknown = discover_api_server(api)
    if api_server is None:
        api_server = KIND_API_SERVER
        progress(f"could not read where this cluster serves the API ({unknown}); expecting "
                 f"{api_server.describe()}, and a probe that disagrees stops the run as could not validate")
    if cluster is not None:
        cluster.details["api_server"] = api_server.describe()
    unmirrored = unmirrored_api_access(bundle, api_server, production) if production else []
    if unmirrored:
        raise EnvironmentNotReady(
            "could not validate: this mirror cannot reproduce production's API server addressing: "
            + "; ".join(unmirrored) + ". Admit both in the candidate's policies, or validate on a cluster addressed "
            "like production (--provider existing)")
    probes, notes = plan_policy_probes(bundle, api_server)
    for note in notes:
        progress(note)
    if not probes:
        return []
    progress(f"proving {len(probes)} egress NetworkPolic{'y' if len(probes) == 1 else 'ies'} of the candidate "
             f"with new pods before its workloads start (probe image {image})")
    records: list[dict[str, Any]] = []
    created: list[PolicyProbe] = []
    failing = True
    try:
        namespace_uids = {ns: request(api, "GET", f"/api/v1/namespaces/{ns}")["metadata"]["uid"]
                          for ns in dict.fromkeys(p.namespace for p in probes)}  # each probe's controller
        for probe in probes:
            _delete_and_wait(api, probe.path, timeout_s, poll_s, sleep)  # a leftover from an interrupted run
            script = restricted_script(attempts) if probe.expect == BLOCKED else open_script(attempts)
            progress(f"NetworkPolicy {probe.policy}: probe {probe.pod} must be {probe.expect} ({probe.why})")
            _create(api, f"/api/v1/namespaces/{probe.namespace}/pods", probe_pod(
                probe.pod, probe.namespace, probe.labels, script, image, namespace_uids[probe.namespace]))
            created.append(probe)
        for namespace in dict.fromkeys(p.namespace for p in probes):
            mine = [p for p in probes if p.namespace == namespace]
            phases = _wait_terminated(api, namespace, tuple(p.pod for p in mine), timeout_s, poll_s, sleep)
            for probe in mine:
                log = _logs(api, namespace, probe.pod)
                records.append({"policy": probe.policy, "pod": probe.pod, "expect": probe.expect,
                                "phase": phases[probe.pod], "log": log})
                problem = policy_verdict(probe, phases[probe.pod], log)
                if problem:
                    raise EnvironmentNotReady(problem)
                early = sum(line.endswith(": connected") for line in log.splitlines())
                lag = f" after {early} early connection(s)" if probe.expect == BLOCKED and early else ""
                progress(f"NetworkPolicy {probe.policy} is enforced for a new pod (probe {probe.expect}{lag})")
        failing = False
    except ApiError as exc:
        raise EnvironmentNotReady(f"could not validate: NetworkPolicy probe of the candidate failed: {exc}") from None
    finally:
        if cluster is not None:
            cluster.details.setdefault("policy_probes", []).extend(records)
        _remove_probes(api, created, timeout_s, poll_s, sleep, progress if failing else None)
    return records


def _remove_probes(api: Any, probes: list[PolicyProbe], timeout_s: float, poll_s: float,
                   sleep: Callable[[float], None], warn: Progress | None) -> None:
    """Delete every probe and wait until all are gone. A leftover could pass for a candidate pod, so this fails
    closed, unless the run already fails (`warn` given): then the first error stands and this one is a warning."""
    try:
        gone = [probe for probe in probes if not _delete(api, probe.path)]
        for probe in probes:
            if probe not in gone:
                _wait_gone(api, probe.path, timeout_s, poll_s, sleep)
    except (ApiError, EnvironmentNotReady) as exc:
        if warn is not None:
            warn(f"warning: probe pods not cleaned up: {exc}")
            return
        raise EnvironmentNotReady(f"could not validate: probe pods not cleaned up: {exc}") from None


def _wait_terminated(api: Any, namespace: str, names: tuple[str, ...], timeout_s: float, poll_s: float,
                     sleep: Callable[[float], None]) -> dict[str, str]:
    """Phases of the named pods once all have finished; quick first looks, then every poll_s."""
    deadline = time.monotonic() + timeout_s
    delay = min(0.25, poll_s)
    while True:
        states = {n: pod_state(request(api, "GET", f"/api/v1/namespaces/{namespace}/pods/{n}")) for n in names}
        if all(phase in ("Succeeded", "Failed") for phase, _ in states.values()):
            return {n: phase for n, (phase, _) in states.items()}
        if time.monotonic() >= deadline:
            stuck = "; ".join(f"{n} {p}{' (' + why + ')' if why else ''}" for n, (p, why) in states.items())
            raise EnvironmentNotReady(f"could not validate: NetworkPolicy probe pods did not finish within "
                                      f"{timeout_s:.0f}s: {stuck}")
        sleep(delay)
        delay = min(delay * 2, poll_s)


def _logs(api: Any, namespace: str, name: str) -> str:
    try:
        return str(request(api, "GET", f"/api/v1/namespaces/{namespace}/pods/{name}/log"))[-4000:]
    except ApiError:
        return ""


def _create(api: Any, path: str, body: dict[str, Any]) -> None:
    """POST one probe object. A 409 AlreadyExists can only be our own create landing before a reset connection made
    the retry policy send it again: every probe object was deleted and confirmed gone just before."""
    try:
        request(api, "POST", path, body=body)
    except ApiError as exc:
        if exc.status != 409 or exc.reason != "AlreadyExists":
            raise


def _delete(api: Any, path: str) -> bool:
    """DELETE; False when it was already gone."""
    try:
        request(api, "DELETE", path)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _delete_and_wait(api: Any, path: str, timeout_s: float, poll_s: float, sleep: Callable[[float], None]) -> None:
    if _delete(api, path):
        _wait_gone(api, path, timeout_s, poll_s, sleep)


def _wait_gone(api: Any, path: str, timeout_s: float, poll_s: float, sleep: Callable[[float], None]) -> None:
    deadline = time.monotonic() + timeout_s
    delay = min(0.25, poll_s)
    while True:
        try:
            request(api, "GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        if time.monotonic() >= deadline:
            raise EnvironmentNotReady(f"{path} still exists {timeout_s:.0f}s after deletion")
        sleep(delay)
        delay = min(delay * 2, poll_s)
