"""Scheduling feasibility against the profile's nodes, before a cluster exists.

A mirror with fewer nodes than production turns HA manifests into Pending pods, which the gate would
otherwise only learn after minutes of waiting. Checked: node selectors, required node affinity and
tolerations against the profile's nodes (with the labels kind puts on them), required pod
anti-affinity on a topology key against the number of topology domains, and requests against
allocatable (minus what kind's own system pods request).
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from validator.errors import InputError
from validator.manifests import Bundle, containers_of, mapping_at
from validator.preflight import Finding
from validator.preflight.selectors import PodTemplate, node_term_matches, pod_templates, selector_matches, tolerates
from validator.profiles import NodeSpec, Profile
from validator.quantity import cpu_millis, memory_bytes

CHECK = "scheduling"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by the API server (1.21+)

# What kind's own pods request (cpu millis, memory bytes): kube-apiserver 250m, controller-manager 200m,
# scheduler 100m, etcd 100m/100Mi, two CoreDNS 100m/70Mi each on the control plane; kindnet 100m/50Mi per node.
CONTROL_PLANE_RESERVED = (250 + 200 + 100 + 100 + 2 * 100, (100 + 140) * 1024**2)  # kindnet: PER_NODE_RESERVED
PER_NODE_RESERVED = (100, 50 * 1024**2)
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "amd64")


@dataclass(frozen=True)
class Node:
    """A profile node as the scheduler sees it: name, labels kind sets, taints, free capacity."""

    name: str
    labels: dict[str, str]
    spec: NodeSpec
    free_cpu: int
    free_memory: int


def profile_nodes(profile: Profile) -> list[Node]:
    """Name and label the profile's nodes as kind does (kind-control-plane, kind-worker, kind-worker2...)."""
    nodes: list[Node] = []
    workers = 0
    for spec in profile.nodes:
        if spec.role == "control-plane":
            index = len([n for n in nodes if n.spec.role == "control-plane"])
            name = "mirror-control-plane" + (str(index + 1) if index else "")
            reserved = (CONTROL_PLANE_RESERVED[0] + PER_NODE_RESERVED[0],
                        CONTROL_PLANE_RESERVED[1] + PER_NODE_RESERVED[1])
        else:
            workers += 1
            name = "mirror-worker" + (str(workers) if workers > 1 else "")
            reserved = PER_NODE_RESERVED
        labels = {"kubernetes.io/os": "linux", "kubernetes.io/arch": _ARCH, "kubernetes.io/hostname": name,
                  "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": _ARCH}
        if spec.role == "control-plane":
            labels["node-role.kubernetes.io/control-plane"] = ""
        labels.update(spec.labels)
        nodes.append(Node(name, labels, spec, spec.allocatable_cpu_millis - reserved[0],
                          spec.allocatable_memory_bytes - reserved[1]))
    return nodes


def eligible(tmpl: PodTemplate, node: Node) -> bool:
    """Node selector, required node affinity and taints (NoSchedule/NoExecute) all allow the pod here."""
    return matches_affinity(tmpl, node) and tolerated(tmpl, node)


def matches_affinity(tmpl: PodTemplate, node: Node) -> bool:
    """The pod's nodeSelector and required node affinity allow this node."""
    spec = tmpl.spec
    for key, value in (spec.get("nodeSelector") or {}).items():
        if node.labels.get(str(key)) != str(value):
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    return not terms or any(node_term_matches(t, node.labels, node.name) for t in terms if isinstance(t, dict))


def tolerated(tmpl: PodTemplate, node: Node) -> bool:
    """The pod tolerates the node's NoSchedule/NoExecute taints."""
    tolerations = [t for t in tmpl.spec.get("tolerations") or [] if isinstance(t, dict)]
    return all(tolerates(tolerations, t.key, t.value, t.effect)
               for t in node.spec.taints if t.effect in ("NoSchedule", "NoExecute"))


def _container_requests(container: dict[str, Any]) -> tuple[int, int]:
    """(cpu millis, memory bytes) a container requests; a limit without a request is its request (defaulting)."""
    resources = container.get("resources") or {}
    req, lim = resources.get("requests") or {}, resources.get("limits") or {}
    cpu, memory = req.get("cpu", lim.get("cpu")), req.get("memory", lim.get("memory"))
    return (cpu_millis(cpu) if cpu is not None else 0, memory_bytes(memory) if memory is not None else 0)


def pod_level_resources(profile: Profile) -> bool:
    """Whether the scheduler reads pod-level requests: the PodLevelResources gate, beta and on by default since
    Kubernetes 1.34, unless the profile's featureGates say otherwise."""
    return profile.feature_gates.get("PodLevelResources", profile.kubernetes_minor >= (1, 34))


def requests(spec: dict[str, Any], pod_level: bool = True) -> tuple[int, int]:
    """Effective pod requests (cpu millis, memory bytes), as the scheduler computes them (component-helpers
    PodRequests): the sum of the containers and of the sidecars (init containers with restartPolicy Always),
    at least the largest init container plus the sidecars started before it, plus the pod's overhead. With
    POD_LEVEL (the PodLevelResources gate), a cpu or memory the pod states in spec.resources replaces the sum."""
    total = [0, 0]  # containers and sidecars
    sidecars = [0, 0]  # sidecars started so far
    init_peak = [0, 0]
    for section, container in containers_of(spec):
        need = _container_requests(container)
        if section == "containers":
            total = [total[0] + need[0], total[1] + need[1]]
        elif section == "initContainers" and container.get("restartPolicy") == "Always":
            total = [total[0] + need[0], total[1] + need[1]]
            sidecars = [sidecars[0] + need[0], sidecars[1] + need[1]]
            init_peak = [max(init_peak[0], sidecars[0]), max(init_peak[1], sidecars[1])]
        elif section == "initContainers":
            init_peak = [max(init_peak[0], need[0] + sidecars[0]), max(init_peak[1], need[1] + sidecars[1])]
    summed = [max(total[0], init_peak[0]), max(total[1], init_peak[1])]
    resources = spec.get("resources") or {}
    if pod_level and isinstance(resources, dict):
        stated = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}  # a limit defaults it
        pod = _container_requests({"resources": resources})
        summed = [pod[0] if "cpu" in stated else summed[0], pod[1] if "memory" in stated else summed[1]]
    overhead = _container_requests({"resources": {"requests": spec.get("overhead") or {}}})
    return summed[0] + overhead[0], summed[1] + overhead[1]


def _covers_own_namespace(term: dict[str, Any], namespace: str) -> bool:
    """Whether a pod-affinity term certainly looks at the pod's own namespace. The term covers the union of its
    `namespaces` and what its namespaceSelector selects; neither given means the pod's own. Of a namespace's labels
    only the one the API server sets on every namespace (NAMESPACE_NAME_LABEL) is known here."""
    selector = term.get("namespaceSelector")
    listed = term.get("namespaces") or []
    if selector is None:
        return not listed or namespace in listed
    if namespace in listed:
        return True
    if not isinstance(selector, dict):
        return False
    keys = set(selector.get("matchLabels") or {}) | {
        e.get("key") for e in selector.get("matchExpressions") or [] if isinstance(e, dict)}
    # a requirement on any other label (even NotIn/DoesNotExist) depends on labels we do not know
    return keys <= {NAMESPACE_NAME_LABEL} and selector_matches(selector, {NAMESPACE_NAME_LABEL: namespace})


def _self_repelling_domains(tmpl: PodTemplate, nodes: list[Node]) -> Iterator[tuple[dict[str, Any], str, list[str]]]:
    """(term, topology key, domains among `nodes`) for each required anti-affinity term that certainly repels the
    workload's own replicas from each other: at most one of its pods per domain."""
    terms = ((((tmpl.spec.get("affinity") or {}).get("podAntiAffinity") or {})
              .get("requiredDuringSchedulingIgnoredDuringExecution")) or [])
    for term in terms:
        if not isinstance(term, dict) or term.get("labelSelector") is None:
            continue  # a nil selector matches no pods
        if not selector_matches(term["labelSelector"], tmpl.labels):
            continue  # only terms that repel the workload's own replicas bound its replica count
        if not _covers_own_namespace(term, tmpl.namespace) or term.get("mismatchLabelKeys"):
            continue  # the term may not reach the workload's own replicas: nothing certain to report
        key = str(term.get("topologyKey", ""))
        if any(key not in n.labels for n in nodes):
            continue  # nodes without the key are not constrained by the term
        yield term, key, sorted({n.labels[key] for n in nodes})


Repelling = list[tuple[dict[str, Any], str, list[str]]]  # what _self_repelling_domains yields, for one template


def _anti_affinity_findings(tmpl: PodTemplate, nodes: list[Node], replicas: int,
                            repelling: Repelling) -> list[Finding]:
    findings = []
    for term, key, domains in repelling:
        if replicas > len(domains):
            findings.append(Finding(
                CHECK, "error", (str(tmpl.owner.ref),),
                f"{tmpl.label}: {replicas} replicas with required pod anti-affinity on {key} but the profile has "
                f"only {len(domains)} schedulable node(s) for it: {replicas - len(domains)} pod(s) will stay Pending "
                "(use a profile with enough workers, e.g. --profile ha)",
                {"replicas": replicas, "topology_key": key, "domains": domains, "nodes": [n.name for n in nodes],
                 "label_selector": term.get("labelSelector")},
            ))
    return findings


def _scaled(value: Any, total: int, round_up: bool) -> int | None:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, 'N%' of total rounded up or down; None for what the
    API server's validation refuses (negative, or a string that is not digits and '%')."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, str) and _PERCENT.fullmatch(value):
        share = int(value[:-1]) * total
        return -(-share // 100) if round_up else share // 100
    return None


_PERCENT = re.compile(r"[0-9]+%")  # validation's IsValidPercent; str.isdigit() would take '²%'


def _or_default(value: Any) -> Any:
    return "25%" if value is None else value


class RollingBudget(NamedTuple):
    max_surge: Any  # as written, or the 25% default
    max_unavailable: Any
    surge: int  # as the deployment controller resolves them
    unavailable: int


def rolling_update_budget(deployment: dict[str, Any], replicas: int) -> RollingBudget | None:
    """(maxSurge, maxUnavailable as written or defaulted, surge, unavailable as the deployment controller resolves
    them) for a RollingUpdate Deployment; None for Recreate or unreadable values. Defaults are 25%/25%; surge
    rounds up, unavailable down, and when both resolve to 0 the controller allows 1 unavailable (ResolveFenceposts)."""
    strategy = mapping_at(deployment, "spec", "strategy")
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":  # defaulting treats "" and null as unset
        return None
    rolling = mapping_at(strategy, "rollingUpdate")
    max_surge, max_unavailable = _or_default(rolling.get("maxSurge")), _or_default(rolling.get("maxUnavailable"))
    surge, unavailable = _scaled(max_surge, replicas, True), _scaled(max_unavailable, replicas, False)
    if surge is None or unavailable is None:
        return None
    return RollingBudget(max_surge, max_unavailable, surge, 1 if surge == unavailable == 0 else unavailable)


def _match_label_keys_enforced(profile: Profile) -> bool:
    """Whether the scheduler honours podAffinityTerm.matchLabelKeys (MatchLabelKeysInPodAffinity: beta and on
    by default from 1.31, GA in 1.33)."""
    gate = profile.feature_gates.get("MatchLabelKeysInPodAffinity")
    if profile.kubernetes_minor >= (1, 33):
        return True
    return gate if gate is not None else profile.kubernetes_minor >= (1, 31)


def _rollout_findings(tmpl: PodTemplate, replicas: int, repelling: Repelling, profile: Profile) -> list[Finding]:
    """A Deployment whose replicas fill every domain of a self-repelling term, and whose rolling update may not
    take a pod away before adding one, can install but never roll: the surge pod has nowhere to go and no old
    pod may leave (Argo CD's HA haproxy on three nodes, argoproj/argo-cd#16627). Upgrades stall, then go Degraded."""
    budget = rolling_update_budget(tmpl.owner.body, replicas) if tmpl.owner.kind == "Deployment" else None
    if budget is None or budget.unavailable > 0:
        return []
    per_revision = _match_label_keys_enforced(profile)  # then old and new revisions do not repel each other
    full = next(((key, domains) for term, key, domains in repelling
                 if replicas == len(domains)
                 and not (per_revision and "pod-template-hash" in (term.get("matchLabelKeys") or []))), None)
    if full is None:
        return []
    key, domains = full
    return [Finding(
        CHECK, "warning", (str(tmpl.owner.ref),),
        f"{tmpl.label}: installs, but an upgrade can never finish its rollout: {replicas} replicas with required pod "
        f"anti-affinity on {key} fill all {len(domains)} schedulable node(s) of profile {profile.name}, and its "
        f"rolling update (maxSurge {budget.max_surge} = {budget.surge}, maxUnavailable {budget.max_unavailable} = 0) "
        "must add a pod before removing one, so the new pod stays Pending until the progress deadline and Argo CD "
        "reports it Degraded (set maxUnavailable: 1, or give the profile one more node)",
        {"replicas": replicas, "topology_key": key, "domains": domains, "maxSurge": budget.max_surge,
         "maxUnavailable": budget.max_unavailable, "resolved_surge": budget.surge, "resolved_unavailable": 0,
         "upstream": "https://github.com/argoproj/argo-cd/issues/16627"},
        origin="profile",  # every release with this rollout strategy meets it on exactly this many nodes
    )]


def _counted_nodes(tmpl: PodTemplate, constraint: dict[str, Any], nodes: list[Node]) -> list[Node]:
    """The nodes whose domains a spread constraint counts: nodeAffinityPolicy Honor (the default) keeps those the
    pod's node affinity allows; nodeTaintsPolicy Ignore (the default) keeps tainted ones the pod cannot use."""
    return [n for n in nodes
            if (constraint.get("nodeAffinityPolicy") == "Ignore" or matches_affinity(tmpl, n))
            and (constraint.get("nodeTaintsPolicy") != "Honor" or tolerated(tmpl, n))]


def _spread_findings(tmpl: PodTemplate, nodes: list[Node], replicas: int,
                     all_nodes: list[Node] | None = None) -> list[Finding]:
    """topologySpreadConstraints that must hold (DoNotSchedule) and certainly cannot for the workload's own pods
    (podtopologyspread filtering): no eligible node has the topology key; or the global minimum stays 0, because
    minDomains asks for more domains than the profile has or a counted domain (a tainted control plane, under the
    default nodeTaintsPolicy Ignore) can take none of its pods, leaving pods beyond maxSkew per domain Pending."""
    findings = []
    for constraint in tmpl.spec.get("topologySpreadConstraints") or []:
        if not isinstance(constraint, dict) or constraint.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
            continue  # ScheduleAnyway only scores
        key = str(constraint.get("topologyKey", ""))
        domains = sorted({n.labels[key] for n in nodes if key in n.labels})
        counted = {n.labels[key] for n in _counted_nodes(tmpl, constraint, all_nodes or nodes) if key in n.labels}
        idle = sorted(counted - set(domains))  # counted for the minimum, but no pod of ours can land there
        own = constraint.get("labelSelector") is not None and selector_matches(constraint.get("labelSelector"),
                                                                                tmpl.labels)
        max_skew, min_domains = constraint.get("maxSkew", 1), constraint.get("minDomains") or 1
        evidence = {"topology_key": key, "domains": domains, "replicas": replicas, "maxSkew": max_skew,
                    "minDomains": min_domains, "nodes": [n.name for n in nodes]}
        if not domains:
            findings.append(Finding(
                CHECK, "error", (str(tmpl.owner.ref),),
                f"{tmpl.label}: topologySpreadConstraint on {key} (DoNotSchedule) but no eligible node of the profile "
                "has that label: its pods will stay Pending", evidence))
        elif own and isinstance(max_skew, int) and idle and replicas > len(domains) * max_skew:
            findings.append(Finding(
                CHECK, "error", (str(tmpl.owner.ref),),
                f"{tmpl.label}: {replicas} replicas, topologySpreadConstraint on {key} (DoNotSchedule) counts "
                f"{', '.join(idle)} as a domain (nodeTaintsPolicy {constraint.get('nodeTaintsPolicy') or 'Ignore'}) "
                f"where none of its pods can run, so the minimum stays 0: beyond {len(domains) * max_skew} pod(s) "
                "(maxSkew per domain) they stay Pending", {**evidence, "idle_domains": idle}))
        elif own and isinstance(max_skew, int) and isinstance(min_domains, int) and min_domains > len(domains) \
                and replicas > len(domains) * max_skew:
            findings.append(Finding(
                CHECK, "error", (str(tmpl.owner.ref),),
                f"{tmpl.label}: {replicas} replicas, topologySpreadConstraint on {key} with minDomains {min_domains} "
                f"but the profile has {len(domains)} domain(s): beyond {len(domains) * max_skew} pod(s) "
                "(maxSkew per domain) they stay Pending", evidence))
    return findings


def _size_severity(nodes: list[Node]) -> str:
    """An error only when the profile states the nodes' sizes; on assumed sizes, a warning."""
    return "error" if nodes and all(n.spec.allocatable_declared for n in nodes) else "warning"


def _assumed(nodes: list[Node]) -> str:
    if all(n.spec.allocatable_declared for n in nodes):
        return ""
    return (" (node sizes assumed: a kind node has what its Docker host has; state `allocatable: {cpu, memory}` "
            "per node in the profile to make this certain)")


def check(bundle: Bundle, profile: Profile, apply_mode: str) -> list[Finding]:
    nodes = profile_nodes(profile)
    pod_level = pod_level_resources(profile)
    findings: list[Finding] = []
    total_cpu = total_memory = pods = 0
    for tmpl in pod_templates(bundle):
        if tmpl.owner.kind != "DaemonSet" and tmpl.replicas == 0:
            continue  # scaled to zero: no pod to place
        fits = [n for n in nodes if eligible(tmpl, n)]
        if not fits and tmpl.owner.kind == "DaemonSet":  # no pod is made, and Argo CD calls that Healthy
            findings.append(Finding(
                CHECK, "info", (str(tmpl.owner.ref),),
                f"{tmpl.label}: no node of profile {profile.name} matches its nodeSelector, required node affinity and "
                "tolerations, so it runs no pod on this profile (0 desired, Healthy)",
                {"nodeSelector": tmpl.spec.get("nodeSelector") or {},
                 "tolerations": tmpl.spec.get("tolerations") or []}))
            continue
        if not fits:
            findings.append(Finding(
                CHECK, "error", (str(tmpl.owner.ref),),
                f"{tmpl.label}: no node of profile {profile.name} satisfies its nodeSelector, required node affinity "
                "and tolerations: its pods will stay Pending",
                {"nodeSelector": tmpl.spec.get("nodeSelector") or {}, "tolerations": tmpl.spec.get("tolerations") or [],
                 "nodes": {n.name: {"labels": n.labels, "taints": [f"{t.key}:{t.effect}" for t in n.spec.taints]}
                           for n in nodes}},
            ))
            continue
        replicas = len(fits) if tmpl.owner.kind == "DaemonSet" else tmpl.replicas
        repelling = list(_self_repelling_domains(tmpl, fits))
        findings.extend(_anti_affinity_findings(tmpl, fits, replicas, repelling))
        findings.extend(_rollout_findings(tmpl, replicas, repelling, profile))
        findings.extend(_spread_findings(tmpl, fits, replicas, nodes))
        try:
            cpu, memory = requests(tmpl.spec, pod_level)
        except (InputError, ValueError) as exc:
            findings.append(Finding(CHECK, "error", (str(tmpl.owner.ref),),
                                    f"{tmpl.label}: unparseable resource request ({exc})", {}))
            continue
        biggest = max(fits, key=lambda n: (n.free_cpu, n.free_memory))
        if cpu > max(n.free_cpu for n in fits) or memory > max(n.free_memory for n in fits):
            findings.append(Finding(
                CHECK, _size_severity(fits), (str(tmpl.owner.ref),),
                f"{tmpl.label}: one pod requests {cpu}m CPU / {memory // 1024**2}Mi memory, more than any eligible "
                f"node of profile {profile.name} has free ({biggest.free_cpu}m / {biggest.free_memory // 1024**2}Mi)"
                + _assumed(fits),
                {"pod_cpu_millis": cpu, "pod_memory_bytes": memory,
                 "free": {n.name: [n.free_cpu, n.free_memory] for n in fits}},
            ))
        total_cpu, total_memory, pods = total_cpu + cpu * replicas, total_memory + memory * replicas, pods + replicas
    untainted = [n for n in nodes if not n.spec.taints]
    free_cpu = sum(max(n.free_cpu, 0) for n in untainted)
    free_memory = sum(max(n.free_memory, 0) for n in untainted)
    if total_cpu > free_cpu or total_memory > free_memory:
        findings.append(Finding(
            CHECK, _size_severity(untainted), (),
            f"all pods together request {total_cpu}m CPU / {total_memory // 1024**2}Mi memory but the untainted nodes "
            f"of profile {profile.name} have {free_cpu}m / {free_memory // 1024**2}Mi free after kind's system pods"
            + _assumed(untainted),
            {"requested_cpu_millis": total_cpu, "requested_memory_bytes": total_memory, "pods": pods,
             "free_cpu_millis": free_cpu, "free_memory_bytes": free_memory},
        ))
    return findings
