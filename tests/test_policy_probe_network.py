"""The API double's pod network (tests/apidouble/network.py): the test infrastructure that the policy probe
tests trust must itself be right about which dials an enforcing CNI lets through."""

from __future__ import annotations

from typing import Any

import pytest

from tests.apidouble import Network
from validator.cluster.netpol import open_script, restricted_script

REDIS = {"app.kubernetes.io/name": "argocd-redis"}


def policy(selector: dict[str, Any], types: list[str] | None = None,
           egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": selector}
    if types is not None:
        spec["policyTypes"] = types
    if egress is not None:
        spec["egress"] = egress
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "argocd"}, "spec": spec}


DNS = {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}


@pytest.mark.parametrize("policies, reachable", [
    ([], True),
    ([policy({}, ["Egress"])], False),                                         # deny-all egress
    ([policy({"matchLabels": {"app.kubernetes.io/name": "other"}}, ["Egress"])], True),  # selects another pod
    ([policy({"matchLabels": REDIS}, ["Ingress"])], True),                     # ingress only
    ([policy({"matchLabels": REDIS}, None, [DNS])], False),                    # egress rules default Egress in
    ([policy({"matchLabels": REDIS}, ["Ingress", "Egress"], [DNS])], False),   # v2.11.1
    ([policy({"matchLabels": REDIS}, ["Egress"], [DNS, {"ports": [{"port": 6443}]}])], True),
    ([policy({"matchLabels": REDIS}, ["Egress"], [{"ports": [{"port": 443}]}])], False),  # judged after DNAT
    ([policy({"matchLabels": REDIS}, ["Egress"], [{"ports": [{"port": 6000, "endPort": 7000}]}])], True),
    ([policy({"matchLabels": REDIS}, ["Egress"], [{"ports": [{"port": 6443, "protocol": "UDP"}]}])], False),
    ([policy({}, ["Egress"], [{"to": [{"ipBlock": {"cidr": "172.18.0.0/16"}}]}])], True),
    ([policy({}, ["Egress"], [{"to": [{"ipBlock": {"cidr": "172.18.0.0/16", "except": ["172.18.0.0/24"]}}]}])],
     False),
    ([policy({}, ["Egress"], [{"to": [{"podSelector": {}}]}])], False),       # pods are not the API server
    ([policy({"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["x"]}]},
             ["Egress"])], False),
    ([policy({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, ["Egress"])], True),
])
def test_enforcing_network(policies: list[dict[str, Any]], reachable: bool) -> None:
    assert Network().api_reachable(REDIS, policies) is reachable


def test_leaky_and_broken_networks() -> None:
    deny = [policy({}, ["Egress"])]
    assert Network(enforcing=False).api_reachable(REDIS, deny) is True
    assert Network(pod_network=False).api_reachable(REDIS, []) is False


def probe(script: str) -> dict[str, Any]:
    return {"metadata": {"name": "p", "labels": REDIS}, "spec": {"containers": [{"command": ["sh", "-c", script]}]}}


@pytest.mark.parametrize("lag, attempts, code", [(0, 10, 0), (3, 5, 0), (3, 4, 1), (10, 10, 1)])
def test_lag_lets_a_new_pods_first_dials_through(lag: int, attempts: int, code: int) -> None:
    network = Network(lag_dials=lag)
    try:
        rc, out = network.run(probe(restricted_script(attempts)), [policy({}, ["Egress"])])
    finally:
        network.close()
    assert rc == code, out
    assert out.count(": connected") == min(lag, attempts)
    (name, dials, _), = network.runs
    assert name == "p" and set(dials) == {"-z -w 3 10.96.0.1 443"}


def test_open_probe_and_unsupported_commands() -> None:
    network = Network()
    try:
        assert network.run(probe(open_script(3)), []) == (0, "attempt 1: connected\n")
        assert network.run(probe(open_script(3)), [policy({}, ["Egress"])])[0] == 1
        odd = {"metadata": {"name": "x"}, "spec": {"containers": [{"command": ["nc", "-z"]}]}}
        assert network.run(odd, [])[0] == 127
    finally:
        network.close()
