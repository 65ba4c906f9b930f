"""A pod network for the double, only as far as argocd-mirror's policy probe pods need one.

Pods labelled `argocd-mirror/probe: policy` are run for real: the kubelet part executes the container's
`sh -c` script on the host with a fake `nc` (the network's verdict per dial) and a no-op `sleep`, then the
pod ends Succeeded or Failed with the script's exit code and its stdout as the log. So what the validator
concludes comes from its own script meeting this network, never from a verdict scripted in advance.

The network is a deliberately small, independent model of an enforcing CNI (not the validator's preflight
code): the dial to the API server is judged after the Service DNAT, as kindnet's kube-network-policies and
Calico see it, i.e. TCP 6443 to the control-plane node 172.18.0.2. A pod is restricted when a stored
NetworkPolicy of its namespace with Egress in its (defaulted) policyTypes selects it; it may then connect
only when one egress rule of those policies admits that port and destination. Knobs (`double.network`):
`enforcing=False` lets everything through (a CNI that ignores policy), `lag_dials=N` lets a new pod's first N
dials through before enforcement starts (kindnet's programming lag), `pod_network=False` drops every dial.
`api_endpoint` is where the Service DNATs to; ApiDouble(api_endpoint=...) moves it and the `kubernetes`
EndpointSlice together (a `kind` docker network Docker put on 172.19.0.0/16, say).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROBE_LABEL = ("argocd-mirror/probe", "policy")
API_ENDPOINT = ("172.18.0.2", 6443)  # where the Service 10.96.0.1:443 DNATs to, by default

_NC = '#!/bin/sh\nn=$(cat "$DIALS_SEEN"); echo $((n+1)) > "$DIALS_SEEN"\n' \
      'echo "$@" >> "$DIALS_ARGS"\n[ "$n" -lt "$DIALS_LAG" ] && exit 0\n[ "$DIALS_STEADY" = 1 ]\n'


def _selects(selector: Any, labels: Mapping[str, str]) -> bool:
    if not isinstance(selector, dict):
        return False
    if any(labels.get(k) != str(v) for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}.get(op, False)
        if not ok:
            return False
    return True


def _admits(rule: dict[str, Any], endpoint: tuple[str, int]) -> bool:
    address, port = ipaddress.ip_address(endpoint[0]), endpoint[1]
    ports = rule.get("ports") or []
    port_ok = not ports or any(
        (p.get("protocol") or "TCP") == "TCP" and (
            p.get("port") is None or p.get("port") == port
            or (isinstance(p.get("port"), int) and isinstance(p.get("endPort"), int)
                and p["port"] <= port <= p["endPort"]))
        for p in ports)
    peers = rule.get("to") or []
    peer_ok = not peers or any(
        isinstance(peer.get("ipBlock"), dict)
        and address in ipaddress.ip_network(peer["ipBlock"]["cidr"], strict=False)
        and not any(address in ipaddress.ip_network(e, strict=False) for e in peer["ipBlock"].get("except") or [])
        for peer in peers)
    return port_ok and peer_ok


@dataclass
class Network:
    """The double's CNI; see the module docstring. `runs` keeps (pod name, dial args, exit code) per probe."""

    enforcing: bool = True
    lag_dials: int = 0
    pod_network: bool = True
    api_endpoint: tuple[str, int] = API_ENDPOINT
    runs: list[tuple[str, list[str], int]] = field(default_factory=list)
    _bin: Path | None = None

    def api_reachable(self, labels: Mapping[str, str], policies: Iterable[dict[str, Any]]) -> bool:
        """Steady state for a pod with these labels among these NetworkPolicies of its namespace."""
        if not self.pod_network:
            return False
        if not self.enforcing:
            return True
        rules: list[dict[str, Any]] = []
        restricted = False
        for policy in policies:
            spec = policy.get("spec") or {}
            types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
            if "Egress" in types and _selects(spec.get("podSelector") or {}, labels):
                restricted = True
                rules += spec.get("egress") or []
        return not restricted or any(_admits(r, self.api_endpoint) for r in rules)

    def run(self, pod: dict[str, Any], policies: Iterable[dict[str, Any]]) -> tuple[int, str]:
        """Run the pod's one container script against this network: (exit code, stdout)."""
        labels = pod["metadata"].get("labels") or {}
        steady = self.api_reachable(labels, policies)
        lag = self.lag_dials if self.pod_network and self.enforcing else 0
        (container,) = pod["spec"]["containers"]
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if argv[:2] != ["sh", "-c"] or len(argv) != 3:
            return 127, f"the double runs only `sh -c SCRIPT` probes, got {argv}\n"
        work = Path(tempfile.mkdtemp(prefix="apidouble-probe-"))
        try:
            (work / "seen").write_text("0")
            env = {"PATH": f"{self._tools()}:/usr/bin:/bin", "DIALS_SEEN": str(work / "seen"),
                   "DIALS_ARGS": str(work / "args"), "DIALS_LAG": str(lag), "DIALS_STEADY": "1" if steady else "0",
                   "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
            proc = subprocess.run([shutil.which("sh") or "/bin/sh", "-c", argv[2]], env=env, capture_output=True,
                                  text=True, timeout=20, check=False)
            args = (work / "args").read_text().splitlines() if (work / "args").exists() else []
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.runs.append((pod["metadata"]["name"], args, proc.returncode))
        return proc.returncode, proc.stdout

    def _tools(self) -> Path:
        if self._bin is None:
            self._bin = Path(tempfile.mkdtemp(prefix="apidouble-net-"))
            (self._bin / "nc").write_text(_NC)
            (self._bin / "sleep").write_text("#!/bin/sh\nexit 0\n")
            for tool in self._bin.iterdir():
                tool.chmod(0o755)
        return self._bin

    def close(self) -> None:
        if self._bin is not None:
            shutil.rmtree(self._bin, ignore_errors=True)
            self._bin = None


def is_probe(pod: dict[str, Any]) -> bool:
    key, value = PROBE_LABEL
    return (pod["metadata"].get("labels") or {}).get(key) == value
