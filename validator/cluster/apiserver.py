"""Where this cluster serves the Kubernetes API: its `kubernetes` Service and EndpointSlices.

The probes' expectations must be computed against the cluster they run on, not kind's usual addresses:
Docker picks the `kind` network's subnet (172.19.0.0/16 when 172.18 is taken), and `--provider existing`
clusters are anywhere.
"""

from __future__ import annotations

from typing import Any

from validator.apiserver import ApiServer, api_server_from_cluster
from validator.cluster.kubeapi import ApiError, request

SERVICE_PATH = "/api/v1/namespaces/default/services/kubernetes"
SLICES_PATH = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


def discover_api_server(api: Any) -> tuple[ApiServer | None, str]:
    """(where the cluster serves the API, "") or (None, why it could not be read)."""
    try:
        service = request(api, "GET", SERVICE_PATH)
        slices = request(api, "GET", SLICES_PATH,
                         query={"labelSelector": "kubernetes.io/service-name=kubernetes"}).get("items") or []
        found = api_server_from_cluster(service, slices)
    except ApiError as exc:
        return None, str(exc)
    except (AttributeError, TypeError, ValueError) as exc:  # a malformed object: judge by reality (the probes)
        return None, f"unreadable kubernetes Service or EndpointSlice ({type(exc).__name__}: {exc})"
    return (found, "") if found else (None, "the kubernetes EndpointSlice lists no ready endpoint")
