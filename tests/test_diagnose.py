"""diagnose: the pure pieces (policy selection, egress summary, log quoting, waiters) and a degraded API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.apidouble import ApiDouble
from tests.manifest_snippets import deployment
from validator.diagnose import Diagnosis, egress_summary, render_markdown, selects, telling_line, waits_for, write
from validator.diagnose import diagnose as run_diagnose
from validator.failfast import Thresholds
from validator.health import Health, HealthStatus
from validator.install import install
from validator.manifests import load_bundle
from validator.watch import WaitResult, wait_healthy


def _np(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": spec}


@pytest.mark.parametrize(("spec", "summary"), [
    ({"podSelector": {}, "policyTypes": ["Ingress"]}, None),
    ({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, "denies all egress"),
    ({"podSelector": {}, "policyTypes": ["Egress"],
      "egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]},
     "restricts egress to 53/UDP, 53/TCP"),
    ({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 443}]}]},
     "restricts egress to 443/TCP to 10.0.0.0/8"),
    ({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}, None),  # allow-all egress rule
    ({"podSelector": {}, "egress": []}, None),  # no egress rules and no policyTypes: defaulted to Ingress only
])
def test_egress_summary(spec: dict[str, Any], summary: str | None) -> None:
    assert egress_summary(_np(spec)) == summary


def test_selects_match_labels_and_expressions() -> None:
    policy = _np({"podSelector": {"matchLabels": {"app": "redis"},
                                  "matchExpressions": [{"key": "tier", "operator": "In", "values": ["cache"]}]}})
    assert selects(policy, {"app": "redis", "tier": "cache"})
    assert not selects(policy, {"app": "redis", "tier": "web"})
    assert not selects(policy, {"app": "server", "tier": "cache"})
    assert selects(_np({"podSelector": {}}), {"anything": "x"})


def test_telling_line_prefers_the_error_fragment() -> None:
    log = ('starting\ntime="x" level=fatal msg="failed: Post \\"https://10.96.0.1:443/api\\": '
           'dial tcp 10.96.0.1:443: i/o timeout"\n')
    assert telling_line(log) == "dial tcp 10.96.0.1:443: i/o timeout"
    assert telling_line("all good\nexiting now\n") == "exiting now"
    assert telling_line("") is None


def test_waits_for_names_the_missing_object() -> None:
    def pod(message: str) -> dict[str, Any]:
        return {"status": {"containerStatuses": [{"name": "c", "state": {"waiting": {
            "reason": "CreateContainerConfigError", "message": message}}}]}}

    assert waits_for(pod('secret "argocd-redis" not found')) == ["Secret/argocd-redis"]
    assert waits_for(pod("couldn't find key auth in Secret argocd/argocd-redis")) == ["Secret/argocd-redis"]
    assert waits_for(pod('configmap "cm" not found')) == ["ConfigMap/cm"]
    assert waits_for({"status": {}}) == []


def test_events_sort_by_when_they_last_happened_whatever_their_shape() -> None:
    from validator.diagnose import _event_count, _event_order

    core_v1 = {"reason": "BackOff", "lastTimestamp": "2026-01-01T00:00:05Z", "count": 4}
    scheduler = {"reason": "FailedScheduling", "eventTime": "2026-01-01T00:00:01.000000Z",  # no lastTimestamp/count
                 "series": {"count": 7, "lastObservedTime": "2026-01-01T00:00:09.500000Z"}}
    precise = {"reason": "Pulled", "eventTime": "2026-01-01T00:00:05.250000Z"}  # after :05Z, before as text
    garbled = {"reason": "Odd", "lastTimestamp": "yesterday"}
    ordered = sorted([scheduler, precise, core_v1, garbled], key=_event_order)
    assert [e["reason"] for e in ordered] == ["Odd", "BackOff", "Pulled", "FailedScheduling"]
    assert [_event_count(e) for e in (core_v1, scheduler, precise)] == [4, 7, 1]


def test_write_json_and_markdown(tmp_path: Path) -> None:
    d = Diagnosis("x: broken", evidence=[{"object": "Pod/ns/p", "logs": {"c": {"previous": "boom", "current": None}}}],
                  consequences=["Pod/ns/q: waits for Secret/s"],
                  events=[{"time": "t", "type": "Warning", "reason": "BackOff", "object": "Pod/p", "message": "a|b",
                           "count": 2}],
                  network_policies=[{"name": "np", "selects": ["Pod/ns/p"], "egress": "denies all egress"}])
    write(d, tmp_path)
    assert json.loads((tmp_path / "diagnosis.json").read_text())["root_cause"] == "x: broken"
    md = (tmp_path / "diagnosis.md").read_text()
    assert md == render_markdown(d)
    assert "**Root cause:** x: broken" in md and "| np | p | denies all egress |" in md and "a/b (x2)" in md


def test_degraded_api_still_writes_a_diagnosis(tmp_path: Path) -> None:
    bundle = load_bundle(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n", namespace="argocd")
    result = WaitResult(passed=False, root_cause="1 of 1 objects not Healthy", terminal=None,
                        health={"ConfigMap/argocd/cm": Health(HealthStatus.MISSING, "")}, elapsed_s=1.0,
                        missing=["ConfigMap/argocd/cm"], timed_out=True)
    with ApiDouble() as double:
        double.fail(500, count=1000)
        diag = run_diagnose(double.api_client(), bundle, result, tmp_path)
    assert diag.root_cause == "1 of 1 objects not Healthy"
    notes = [e for e in diag.evidence if "collection_notes" in e]
    assert notes and any("could not list Pod" in n for n in notes[0]["collection_notes"])
    assert (tmp_path / "diagnosis.md").is_file()


WEB = deployment("web", image="nginx:nope").encode()


@pytest.mark.parametrize(("script", "cause"), [
    (lambda d: d.pods("web").waiting("app", "ErrImagePull",
                                     'rpc error: code = NotFound desc = failed to pull and unpack image '
                                     '"docker.io/library/nginx:nope": not found'),
     'web: container app failing: "rpc error: code = NotFound desc = failed to pull and unpack image '),
    (lambda d: d.pods("web").crashloop("app", log="", every=0.1, exit_code=137),
     "web: container app failing (3 restarts): CrashLoopBackOff after 3 restarts, last exit code 137"),
])
def test_root_cause_for_other_failures(script: Any, cause: str, tmp_path: Path) -> None:
    bundle = load_bundle(WEB, namespace="argocd")
    with ApiDouble(namespaces=("default", "argocd")) as double:
        script(double)
        api = double.api_client()
        install(api, bundle)
        result = wait_healthy(api, bundle, timeout_s=30, thresholds=Thresholds(image_pull_grace_s=0.5))
        assert not result.passed and result.terminal is not None
        diag = run_diagnose(api, bundle, result, tmp_path)
    assert diag.root_cause.startswith(cause), diag.root_cause
    assert "NetworkPolicy" not in diag.root_cause


def test_a_kubelet_that_cannot_serve_logs_does_not_stop_the_rest_of_the_evidence(tmp_path: Path) -> None:
    """Logs go through the kubelet: its 5xx is one node's problem, not an unavailable API server, so the next
    pod's logs are still read. The unreadable pod is the root cause's, which is read first."""
    names = ("crash-a", "crash-b")
    bundle = load_bundle("---".join(deployment(n, "x:1") for n in names).encode(), namespace="argocd")
    with ApiDouble(namespaces=("default", "argocd")) as double:
        for name in names:
            double.pods(name).crashloop("app", log=f"{name} says boom\n", every=0.1, exit_code=1)
        api = double.api_client()
        install(api, bundle)
        result = wait_healthy(api, bundle, timeout_s=30, thresholds=Thresholds())
        assert result.terminal is not None
        off_node = next(n for n in names if n in result.terminal.object)
        other = next(n for n in names if n != off_node)
        double.fail(500, count=1000, verb="logs", path_contains=f"/pods/{off_node}-",
                    message='Get "https://172.18.0.3:10250/containerLogs/argocd/...": dial tcp 172.18.0.3:10250: '
                            "connect: connection refused")
        diag = run_diagnose(api, bundle, result, tmp_path)
    notes = [n for e in diag.evidence for n in e.get("collection_notes", [])]
    assert any("10250: connect: connection refused" in n for n in notes)
    assert diag.root_cause.startswith(f"{off_node}: container app failing"), diag.root_cause
    assert f"{other} says boom" in json.dumps(diag.evidence)


def test_an_ignored_workload_is_neither_evidence_nor_root_cause(tmp_path: Path) -> None:
    """A crash-looping ignore-healthcheck Deployment did not stop the wait, so it must not be named as the cause
    when something else (here a missing image) fails it."""
    ignored = deployment("sidecar-addon", "x:1").replace(
        "metadata: {name: sidecar-addon}",
        'metadata: {name: sidecar-addon, annotations: {argocd.argoproj.io/ignore-healthcheck: "true"}}')
    bundle = load_bundle(f"{ignored}---{deployment('web', image='nginx:nope')}".encode(), namespace="argocd")
    with ApiDouble(namespaces=("default", "argocd")) as double:
        double.pods("sidecar-addon").crashloop("app", log="addon says boom\n", every=0.1, exit_code=1)
        double.pods("web").waiting("app", "ErrImagePull", 'failed to pull "docker.io/library/nginx:nope": not found')
        api = double.api_client()
        install(api, bundle)
        result = wait_healthy(api, bundle, timeout_s=30, thresholds=Thresholds())
        assert not result.passed and "Deployment.apps/argocd/sidecar-addon" in result.not_counted
        diag = run_diagnose(api, bundle, result, tmp_path)
    assert diag.root_cause.startswith("web: container app failing"), diag.root_cause
    assert "sidecar-addon" not in json.dumps(diag.evidence)

