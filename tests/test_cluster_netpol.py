"""NetworkPolicy positive control: the probe scripts in a real shell, the orchestration against the API double."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.apidouble import ApiDouble
from validator.cluster import Cluster, prove_networkpolicy_enforced
from validator.cluster.netpol import PROBE_NAMESPACE, open_script, restricted_script, verdict
from validator.errors import EnvironmentNotReady

SH = shutil.which("sh")


def run_script(tmp_path: Path, script: str, dials: str) -> tuple[int, str]:
    """Run a probe script with a fake `nc` answering from `dials` ('1' = connected, '0' = blocked) and no sleep."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "dials").write_text(dials)
    (bin_dir / "nc").write_text(
        f'#!/bin/sh\nd=$(cat {tmp_path}/dials); c=$(printf %.1s "$d"); printf %s "${{d#?}}" > {tmp_path}/dials\n'
        f'echo "$@" >> {tmp_path}/nc-args\n[ "$c" = 1 ]\n')
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert SH
    proc = subprocess.run([SH, "-c", script], env=env, capture_output=True, text=True, timeout=10, check=False)
    return proc.returncode, proc.stdout


@pytest.mark.parametrize("dials, code", [
    ("0000000000", 0),   # enforced from the first packet
    ("1100000000", 0),   # enforcement lag: first dials get through, then blocked twice -> proven
    ("1111111111", 1),   # never blocked: not enforced
    ("0101010101", 1),   # flapping is not proof
    ("1111111100", 0),   # blocked on the last two attempts
])
def test_restricted_probe_needs_two_consecutive_blocks(tmp_path: Path, dials: str, code: int) -> None:
    rc, out = run_script(tmp_path, restricted_script(10), dials)
    assert rc == code, out
    assert (tmp_path / "nc-args").read_text().splitlines()[0] == "-z -w 3 10.96.0.1 443"  # by IP: no DNS involved


@pytest.mark.parametrize("dials, code", [("1", 0), ("0001", 0), ("0000000000", 1)])
def test_open_probe_needs_one_connection(tmp_path: Path, dials: str, code: int) -> None:
    rc, out = run_script(tmp_path, open_script(10), dials)
    assert rc == code, out


def test_verdict_table() -> None:
    logs = {"probe-restricted": "attempt 1: connected\nattempt 2: connected", "probe-open": "attempt 1: failed"}
    assert verdict("Succeeded", "Succeeded", logs) is None
    assert "NetworkPolicy is not enforced" in str(verdict("Failed", "Succeeded", logs))
    assert "attempt 2: connected" in str(verdict("Failed", "Succeeded", logs))
    assert "pod network is broken" in str(verdict("Succeeded", "Failed", logs))
    assert "pod network is broken" in str(verdict("Failed", "Failed", logs))


# ---------------------------------------------------------------------------------------------------------
# orchestration against the API double
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def double() -> Any:
    with ApiDouble(simulate=False) as d:
        yield d


@pytest.fixture
def cluster(double: ApiDouble, tmp_path: Path) -> Cluster:
    path = double.kubeconfig(tmp_path / "kubeconfig", context="kind-argocd-mirror-test")
    return Cluster("argocd-mirror-test", path, "kind-argocd-mirror-test", "kind", True)


def finish(double: ApiDouble, pod: str, phase: str, log: str) -> None:
    double.pods(pod).logs("probe", log)
    double.script(at=0, kind="Pod", name=pod, namespace=PROBE_NAMESPACE, status={"phase": phase})


def capture_policy(double: ApiDouble) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def grab() -> bool:
        found = double.objects("NetworkPolicy", PROBE_NAMESPACE)
        seen.extend(found)
        return bool(found)

    double.sim.at(0, grab)
    return seen


def prove(cluster: Cluster, **kw: Any) -> list[str]:
    seen: list[str] = []
    prove_networkpolicy_enforced(cluster, timeout_s=kw.pop("timeout_s", 5), poll_s=0.02, progress=seen.append, **kw)
    return seen


def test_enforced(double: ApiDouble, cluster: Cluster) -> None:
    policies = capture_policy(double)
    finish(double, "probe-restricted", "Succeeded", "attempt 1: connected\nattempt 2: blocked\nattempt 3: blocked\n")
    finish(double, "probe-open", "Succeeded", "attempt 1: connected\n")
    seen = prove(cluster, image="registry.local/busybox:1.37.0")
    assert "NetworkPolicy is enforced" in seen[-1]
    assert cluster.details["networkpolicy"]["enforced"] is True
    assert "attempt 3: blocked" in cluster.details["networkpolicy"]["logs"]["probe-restricted"]
    assert double.get("Namespace", PROBE_NAMESPACE) is None  # cleaned up
    assert policies and policies[0]["spec"] == {"podSelector": {"matchLabels": {"argocd-mirror/probe": "restricted"}},
                                                "policyTypes": ["Egress"]}


def test_probe_pods_are_restricted_pss_compliant() -> None:
    from validator.cluster.netpol import probe_objects

    pods = [body for _, body in probe_objects("busybox:1.37.0", 10) if body["kind"] == "Pod"]
    assert [p["metadata"]["name"] for p in pods] == ["probe-restricted", "probe-open"]
    for pod in pods:
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["seccompProfile"]
        (container,) = spec["containers"]
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        assert spec["restartPolicy"] == "Never" and container["imagePullPolicy"] == "IfNotPresent"


def test_not_enforced_is_could_not_validate(double: ApiDouble, cluster: Cluster) -> None:
    finish(double, "probe-restricted", "Failed", "attempt 9: connected\nattempt 10: connected\n")
    finish(double, "probe-open", "Succeeded", "attempt 1: connected\n")
    with pytest.raises(EnvironmentNotReady) as err:
        prove(cluster)
    assert str(err.value).startswith("could not validate: NetworkPolicy is not enforced on this cluster")
    assert "attempt 10: connected" in str(err.value) and err.value.exit_code == 2
    assert double.get("Namespace", PROBE_NAMESPACE) is None


def test_broken_pod_network(double: ApiDouble, cluster: Cluster) -> None:
    finish(double, "probe-restricted", "Succeeded", "attempt 1: blocked\nattempt 2: blocked\n")
    finish(double, "probe-open", "Failed", "attempt 10: failed\n")
    with pytest.raises(EnvironmentNotReady, match="unrestricted probe pod could not reach the API server"):
        prove(cluster)


def test_probe_pods_stuck(double: ApiDouble, cluster: Cluster) -> None:
    waiting = {"phase": "Pending", "containerStatuses": [{"name": "probe", "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "busybox:1.37.0"'}}}]}
    double.script(at=0, kind="Pod", name="probe-open", namespace=PROBE_NAMESPACE, status=waiting)
    with pytest.raises(EnvironmentNotReady, match="did not finish within 0s: .*probe-open Pending .ImagePullBackOff"):
        prove(cluster, timeout_s=0.3)
    assert double.get("Namespace", PROBE_NAMESPACE) is None


def test_leftover_probe_namespace_is_replaced(double: ApiDouble, cluster: Cluster) -> None:
    double.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROBE_NAMESPACE}})
    double.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe-open", "namespace": PROBE_NAMESPACE},
                   "spec": {"containers": [{"name": "probe", "image": "old"}]}})
    finish(double, "probe-restricted", "Succeeded", "")
    double.script(at=0.2, kind="Pod", name="probe-open", namespace=PROBE_NAMESPACE, status={"phase": "Succeeded"})
    prove(cluster)
