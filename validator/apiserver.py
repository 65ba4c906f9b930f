"""Where a pod reaches the Kubernetes API, as NetworkPolicy sees the dial.

A pod dials the `kubernetes` Service (10.96.0.1:443 on kind); kube-proxy rewrites that to one of the
Service's endpoints before the CNI judges the packet against NetworkPolicy, so the endpoints (the
control-plane node, TCP 6443 on kind) are what an egress rule must admit. Where they are differs by cluster:
kind puts them on its docker network (usually 172.18.0.0/16, but Docker picks the subnet), EKS on VPC
addresses at 443, and a cluster someone else made anywhere. Hence three sources, one type:
- KIND_API_SERVER, kind's usual addresses: what preflight assumes for the mirror by default;
- a profile's `apiServer:`, production's addresses as the team states them (preflight then judges those);
- the cluster's own `kubernetes` EndpointSlice, discovered, for the probes that run on that cluster.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from validator.errors import InputError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = tuple[Network, int]  # a network (a single address is a /32 or /128) and a TCP port
MAX_ENDPOINTS = 64  # API servers have a handful; networks cover the rest (each one costs a pass over the rules)


def format_address(address: Address) -> str:
    network, port = address
    host = str(network.network_address) if network.num_addresses == 1 else str(network)
    return f"[{host}]:{port}" if network.version == 6 else f"{host}:{port}"


@dataclass(frozen=True)
class ApiServer:
    """The `kubernetes` Service (what pods dial; None when not stated) and its endpoints (what policy judges)."""

    endpoints: tuple[Address, ...]
    service: Address | None
    source: str  # said with every verdict, so a reader knows which cluster's addresses it was judged against

    def describe(self) -> str:
        """'172.18.0.0/16:6443 (kind's usual addresses)'."""
        return f"{', '.join(format_address(e) for e in self.endpoints)} ({self.source})"


KIND_API_SERVER = ApiServer(endpoints=((ipaddress.ip_network("172.18.0.0/16"), 6443),),
                            service=(ipaddress.ip_network("10.96.0.1/32"), 443), source="kind's usual addresses")


def parse_address(text: Any, what: str) -> Address:
    """'10.0.0.0/16:443', '10.0.1.5:443' or '[fd00::/64]:443' -> (network, port); InputError otherwise."""
    value = str(text).strip() if isinstance(text, (str, int)) else ""
    host, sep, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    try:
        if not sep or not re.fullmatch("[0-9]{1,5}", port) or not 0 < int(port) < 65536 \
                or (":" in host and not bracketed):
            raise ValueError  # an IPv6 address needs its brackets, or its last group reads as the port
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        raise InputError(f"{what}: {text!r} is not ADDRESS[/PREFIX]:PORT (e.g. 10.0.0.0/16:443, "
                         "[fd00::/64]:443)") from None
    return network, int(port)


def api_server_from_profile(raw: Any, profile: str) -> ApiServer:
    """A profile's `apiServer: {endpoints: [...], service: IP:PORT}`: production's API server as pods reach it."""
    where = f"profile {profile}: apiServer"
    if not isinstance(raw, dict) or set(raw) - {"endpoints", "service"}:
        raise InputError(f"{where} must be a mapping with endpoints (a list of ADDRESS[/PREFIX]:PORT) and "
                         "optionally service (the kubernetes Service's IP:PORT)")
    endpoints = raw.get("endpoints")
    if not isinstance(endpoints, list) or not 0 < len(endpoints) <= MAX_ENDPOINTS:
        raise InputError(f"{where}.endpoints must be a list of 1 to {MAX_ENDPOINTS} ADDRESS[/PREFIX]:PORT, where the "
                         "kubernetes Service's endpoints are (kubectl get endpointslices -n default "
                         "-l kubernetes.io/service-name=kubernetes)")
    service = raw.get("service")
    return ApiServer(endpoints=tuple(parse_address(e, f"{where}.endpoints") for e in endpoints),
                     service=parse_address(service, f"{where}.service") if service is not None else None,
                     source=f"profile {profile}")


def api_server_from_cluster(service: dict[str, Any], slices: Iterable[dict[str, Any]]) -> ApiServer | None:
    """The `kubernetes` Service and its EndpointSlices as a cluster serves them; None when no endpoint is listed.

    Endpoints marked not ready are left out: kube-proxy sends no traffic to them.
    """
    endpoints: list[Address] = []
    for piece in slices:
        ports = [p.get("port") for p in piece.get("ports") or [] if (p.get("protocol") or "TCP") == "TCP"]
        for endpoint in piece.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                endpoints += [(ipaddress.ip_network(address), int(port)) for port in ports if isinstance(port, int)]
    if not endpoints:
        return None
    spec = service.get("spec") or {}
    https = [p.get("port") for p in spec.get("ports") or [] if isinstance(p.get("port"), int)]
    cluster_ip = spec.get("clusterIP")
    service_address = ((ipaddress.ip_network(cluster_ip), https[0])
                       if cluster_ip and cluster_ip != "None" and https else None)
    return ApiServer(endpoints=tuple(dict.fromkeys(endpoints)), service=service_address,
                     source="this cluster's kubernetes EndpointSlice")
