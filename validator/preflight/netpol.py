"""NetworkPolicy egress vs pods that need the Kubernetes API: the class of the Argo CD v2.11.1 outage.

v2.11.1's argocd-redis gained init container secret-init (`argocd admin redis-initial-password`, which
creates Secret argocd-redis through the API) while NetworkPolicy argocd-redis-network-policy selected
the pod with policyTypes [Ingress, Egress] and egress to port 53 only. On a CNI that enforces policy the
init container timed out dialling 10.96.0.1:443 and Argo CD never came up. This check finds that
statically: pod templates selected by an egress-restricting policy whose rules do not admit the API server
endpoint (TCP 6443 on the control-plane node), while the pod needs the API. How sure that need is decides the
severity (validator.preflight.apineed): a known API caller is an error, RBAC alone a warning at most.

Why the endpoint and not the `kubernetes` Service (10.96.0.1:443) the pod dials: NetworkPolicy is enforced
after kube-proxy has rewritten the Service address to the endpoint (kindnet's kube-network-policies filters
at POSTROUTING, Calico's dataplanes likewise; calico#5129, cert-manager PR #5788 hit exactly this), so a rule
admitting only 443 to the Service still times the pod out. Both CNIs argocd-mirror builds work this way.
Where the endpoints are is the profile's `apiServer:` when stated (production's addresses), else kind's
usual ones (validator.apiserver).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from validator.apiserver import KIND_API_SERVER, ApiServer, format_address
from validator.manifests import Bundle, KubeObject, mapping_at
from validator.preflight import Finding
from validator.preflight.apineed import RBAC_ONLY, ApiNeed, Grants, api_need
from validator.preflight.selectors import Lookup, PodTemplate, pod_templates, selector_matches
from validator.profiles import Profile
from validator.text import some as bounded

CHECK = "networkpolicy-api-egress"

def policy_types(spec: dict[str, Any]) -> list[str]:
    """Effective policyTypes: as given, else Ingress plus Egress when egress rules exist (API defaulting)."""
    declared = spec.get("policyTypes")
    if declared:
        return [str(t) for t in declared]
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def restricts_egress(policy: KubeObject) -> bool:
    return "Egress" in policy_types(mapping_at(policy.body, "spec"))


def _port_admits(entry: dict[str, Any], port: int) -> bool:
    if str(entry.get("protocol") or "TCP") != "TCP":
        return False
    value = entry.get("port")
    if value is None:
        return True  # no port: every port of the protocol
    if not isinstance(value, int) or isinstance(value, bool):
        return False  # a named port resolves on destination pods; the API server is no pod
    end = entry.get("endPort")
    return value <= port <= end if isinstance(end, int) else value == port


def _peer_admits(peer: dict[str, Any], target: Any) -> bool | None:
    """Whether one `to` peer admits the target: an address, or the network the endpoint's address comes from,
    where covering only part of it gives None (it depends on which address the node gets)."""
    block = peer.get("ipBlock")
    if not isinstance(block, dict):
        return False  # pod/namespace selectors pick pods; the API server runs on the host network
    try:
        cidr = ipaddress.ip_network(str(block.get("cidr")), strict=False)
        excepts = [ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or []]
    except ValueError:
        return False
    if isinstance(target, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return target in cidr and not any(target in e for e in excepts)
    if cidr.version != target.version or not cidr.overlaps(target):
        return False
    holes = [e for e in excepts if e.version == target.version and e.overlaps(target)]
    if any(target.subnet_of(e) for e in holes):
        return False
    return None if holes or not target.subnet_of(cidr) else True


def rule_admits(rule: dict[str, Any], target: Any, port: int) -> bool | None:
    """Whether an egress rule admits TCP `port` to `target` (None: only part of a target network); empty
    ports/to mean all ports/destinations."""
    ports = rule.get("ports") or []
    if ports and not any(_port_admits(p, port) for p in ports if isinstance(p, dict)):
        return False
    peers = [p for p in rule.get("to") or [] if isinstance(p, dict)]
    if not peers:
        return True
    verdicts = [_peer_admits(p, target) for p in peers]
    return True if True in verdicts else (None if None in verdicts else False)


def admitted(rules: Iterable[dict[str, Any]], target: Any, port: int) -> bool | None:
    """The rules together (a union): True if one admits, else None if one might, else False."""
    verdicts = [rule_admits(r, target, port) for r in rules]
    return True if True in verdicts else (None if None in verdicts else False)


def admits_api(rules: list[dict[str, Any]], api: ApiServer) -> bool | None:
    """Whether the rules admit the API server: True when they admit every endpoint, False when none, else None
    (kube-proxy picks an endpoint per connection, so admitting some of them makes the pod's dials a lottery)."""
    verdicts = {admitted(rules, network, port) for network, port in api.endpoints}
    return verdicts.pop() if len(verdicts) == 1 else None


def api_server_of(profile: Profile) -> ApiServer:
    """The API server preflight judges policies against: production's when the profile states it, else kind's."""
    return profile.api_server or KIND_API_SERVER


def describe_rule(rule: dict[str, Any]) -> str:
    """'53/UDP,53/TCP to any' - how the evidence shows what a rule allows."""
    ports = ",".join(
        f"{p.get('port', '*')}{'-' + str(p['endPort']) if p.get('endPort') else ''}/{p.get('protocol') or 'TCP'}"
        for p in rule.get("ports") or [] if isinstance(p, dict)
    ) or "all ports"
    peers = rule.get("to") or []
    where = "any destination" if not peers else "; ".join(
        f"ipBlock {p['ipBlock'].get('cidr')}" if isinstance(p.get("ipBlock"), dict)
        else "pods " + str({k: v for k, v in p.items() if k in ("podSelector", "namespaceSelector")})
        for p in peers if isinstance(p, dict)
    )
    return f"{ports} to {where}"


class EgressPolicies:
    """The NetworkPolicies that restrict egress, indexed by the label pairs a pod must have to be selected (one
    matchLabels pair, or each value of one `In` expression), so that finding those selecting a pod does not
    compare every pod with every policy."""

    def __init__(self, lookup: Lookup) -> None:
        self._keyed: dict[tuple[str, str, str], list[tuple[int, KubeObject, dict[str, Any]]]] = {}
        self._unkeyed: dict[str, list[tuple[int, KubeObject, dict[str, Any]]]] = {}
        self._selected: dict[tuple[str, frozenset[tuple[str, str]]], list[KubeObject]] = {}
        for order, policy in enumerate(lookup.of_kind("NetworkPolicy")):
            if not restricts_egress(policy):
                continue
            selector = mapping_at(policy.body, "spec").get("podSelector") or {}
            entry = (order, policy, selector)
            pairs = _required_pairs(selector)
            if pairs is None:
                self._unkeyed.setdefault(policy.namespace, []).append(entry)
            for key, value in pairs or ():
                self._keyed.setdefault((policy.namespace, key, value), []).append(entry)

    def selecting(self, tmpl: PodTemplate) -> list[KubeObject]:
        """The egress-restricting policies in the pod's namespace whose podSelector selects it, in bundle order.
        Pods with the same labels share the answer (replicas of one template, workloads of one app)."""
        key = (tmpl.namespace, frozenset(tmpl.labels.items()))
        if key not in self._selected:
            candidates = list(self._unkeyed.get(tmpl.namespace, []))
            for label, value in tmpl.labels.items():
                candidates += self._keyed.get((tmpl.namespace, label, value), [])
            self._selected[key] = [policy for _, policy, selector in sorted(candidates, key=lambda c: c[0])
                                   if selector_matches(selector, tmpl.labels)]
        return self._selected[key]


def _required_pairs(selector: Any) -> set[tuple[str, str]] | None:
    """Label pairs of which a selected pod must have one (None: no such narrowing). A selector ANDs its terms, so
    one matchLabels pair, or one `In` expression's values, is a necessary condition."""
    if not isinstance(selector, dict):
        return None
    labels = selector.get("matchLabels")
    if isinstance(labels, dict) and labels:
        key, value = next(iter(labels.items()))
        return {(str(key), str(value))}
    for expr in selector.get("matchExpressions") or []:
        if isinstance(expr, dict) and expr.get("operator") == "In" and isinstance(expr.get("values"), list):
            return {(str(expr.get("key")), str(value)) for value in expr["values"]}
    return None


def _egress_rules(policies: Iterable[KubeObject]) -> list[dict[str, Any]]:
    return [rule for policy in policies for rule in mapping_at(policy.body, "spec").get("egress") or []
            if isinstance(rule, dict)]


@dataclass(frozen=True)
class RestrictedApiPod:
    """A pod template that needs the API while egress-restricting policies select it, with their rules."""

    tmpl: PodTemplate
    need: ApiNeed
    policies: list[KubeObject]
    rules: list[dict[str, Any]]


def restricted_api_pods(bundle: Bundle) -> Iterator[RestrictedApiPod]:
    """Every pod template whose API access depends on the egress rules: where the API server is decides the rest."""
    lookup = Lookup(bundle)
    restricting = EgressPolicies(lookup)
    grants: Grants | None = None
    for tmpl in pod_templates(bundle):
        if tmpl.spec.get("hostNetwork") is True:
            continue  # NetworkPolicy does not apply to host-network pods
        policies = restricting.selecting(tmpl)
        if not policies:
            continue
        grants = grants or Grants(lookup)
        need = api_need(tmpl, lookup, grants)
        if need is not None:
            yield RestrictedApiPod(tmpl, need, policies, _egress_rules(policies))


QUOTED = 10  # policies and rules a finding names: thousands selecting thousands of pods must not cost gigabytes


def some(items: Iterable[str], total: int | None = None) -> list[str]:
    """text.some with the QUOTED limit of findings."""
    return bounded(items, QUOTED, total)


def check(bundle: Bundle, profile: Profile, apply_mode: str) -> list[Finding]:
    findings = []
    api = api_server_of(profile)
    judged: dict[tuple[int, ...], tuple[bool | None, bool]] = {}  # by the selecting policies (bundle objects)
    for pod in restricted_api_pods(bundle):
        tmpl, need, policies, rules = pod.tmpl, pod.need, pod.policies, pod.rules
        selected_by = tuple(map(id, policies))
        if selected_by not in judged:
            judged[selected_by] = (admits_api(rules, api),
                                   api.service is not None and admitted(rules, *api.service) is True)
        endpoint_ok, service_ok = judged[selected_by]
        if endpoint_ok is True:
            continue
        names = ", ".join(some((p.name for p in policies), total=len(policies)))
        allowed = some((describe_rule(r) for r in rules), total=len(rules)) or ["nothing (deny all egress)"]
        evidence = {
            "owner": str(tmpl.owner.ref), "containers": list(need.containers),
            "policies": some((p.name for p in policies), total=len(policies)), "allowed_egress": allowed,
            "needs_api_because": list(need.reasons), "api_need_evidence": need.evidence,
            "admits_service": service_ok, "admits_endpoints": endpoint_ok,
            "api_service": format_address(api.service) if api.service else None,
            "api_endpoints": [format_address(e) for e in api.endpoints], "api_server_source": api.source,
        }
        objects = (str(tmpl.owner.ref), *(str(p.ref) for p in policies[:QUOTED]))
        if need.certain:
            head = f"{tmpl.label}: {need.reasons[0]},"
        else:
            head = (f"{tmpl.label} may need the Kubernetes API ({need.reasons[0]}; no container runs a program known "
                    "to call it)")
        head += f" but NetworkPolicy {names} restricts egress to {'; '.join(allowed)}"
        if endpoint_ok is None:
            findings.append(Finding(
                CHECK, "warning" if need.certain else "info", objects,
                f"{head}: it admits only part of the API server's endpoint(s) {api.describe()}, so whether the "
                "pod reaches the API depends on the endpoint's address", evidence))
            continue
        after_dnat = (f"; it admits the kubernetes Service {format_address(api.service)}, but policy is enforced "
                      "after the Service address is rewritten to the endpoint" if service_ok and api.service else "")
        blocked = f"no rule admits the API server's endpoint(s) {api.describe()}{after_dnat}"
        if need.certain:
            findings.append(Finding(
                CHECK, "error", objects,
                f"{head}: {blocked}, so it will time out dialling the API (the Argo CD v2.11.1 redis outage); "
                "admit egress to the API server's endpoints in the policy", evidence))
        else:
            findings.append(Finding(
                CHECK, "warning" if need.evidence == RBAC_ONLY else "info", objects,
                f"{head}: {blocked}; if one of its containers does call the API it will time out", evidence))
    return findings
