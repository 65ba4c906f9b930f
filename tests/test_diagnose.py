"""diagnose: the pure pieces (policy selection, egress summary, log quoting, waiters) and a degraded API."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.apidouble import ApiDouble
from tests.apidouble.argocd import broken_redis, bundle_from
from tests.conftest import real_manifest
from tests.manifest_snippets import deployment
from validator.diagnose import (
    API_EGRESS_BLOCKED,
    NO_TOKEN,
    Diagnosis,
    egress_summary,
    known_fix,
    render_markdown,
    selects,
    telling_line,
    waits_for,
    write,
)
from validator.diagnose import diagnose as run_diagnose
from validator.failfast import Thresholds
from validator.health import Health, HealthStatus
from validator.install import install
from validator.manifests import Bundle, KubeObject, load_bundle
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


BANNER = "Checking for initial Redis password in secret argocd/argocd-redis at key auth. "
NO_CONFIG = ("invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER environment "
             "variable")
NO_CONFIG_LOG = f'{BANNER}\ntime="2024-05-20T10:00:30Z" level=fatal msg="{NO_CONFIG}"\n'


@pytest.mark.parametrize(("current", "previous", "line"), [
    # a dial error is quoted as its fragment, from the fatal line that carries it
    ('starting\ntime="x" level=fatal msg="failed: Post \\"https://10.96.0.1:443/api\\": dial tcp 10.96.0.1:443: '
     'i/o timeout"\n', "", "dial tcp 10.96.0.1:443: i/o timeout"),
    # logrus fatal over the banner before it, as its msg
    (NO_CONFIG_LOG, "", NO_CONFIG),
    # the run that crashed said why; the restarted attempt has printed only its banner so far
    (f"{BANNER}\n", NO_CONFIG_LOG, NO_CONFIG),
    # nothing says it failed: the last line of the run that exited (the previous one), not the new banner
    (f"{BANNER}\n", f"{BANNER}\nexiting with 1\n", "exiting with 1"),
    ("all good\nexiting now\n", "", "exiting now"),
    ("", "", None),
    # klog: E/F lines over I lines, without the header
    ("I0520 10:00:01.000000       1 main.go:10] starting\nE0520 10:00:30.123456       1 main.go:42] "
     "failed to sync cache: timed out\nI0520 10:00:31.000000       1 main.go:50] shutting down\n", "",
     "failed to sync cache: timed out"),
    ("W0520 10:00:01.000000       1 x.go:1] slow\nF0520 10:00:30.000000       1 x.go:2] cannot start: quota\n", "",
     "cannot start: quota"),
    # a Go panic over its goroutine dump
    ("serving\npanic: runtime error: invalid memory address or nil pointer dereference\n\ngoroutine 1 [running]:\n"
     "main.main()\n\t/src/main.go:12 +0x1d\n", "",
     "panic: runtime error: invalid memory address or nil pointer dereference"),
    # cobra's Error: over the usage text after it
    ("Error: unknown flag: --redis-addr\nUsage:\n  argocd-server [flags]\n", "", "Error: unknown flag: --redis-addr"),
    # JSON logs: msg and error
    ('{"level":"info","msg":"starting"}\n{"level":"error","msg":"cannot load settings","error":"secrets '
     '\\"argocd-secret\\" is forbidden"}\n{"level":"info","msg":"retrying"}\n', "",
     'cannot load settings: secrets "argocd-secret" is forbidden'),
    # an informational "not found" explains nothing; the shape of an error in a warning does
    ('level=info msg="secret not found, creating it"\nlevel=info msg="done"\n', "", "done"),
    ('level=warning msg="dial tcp 10.0.0.1:6379: connect: connection refused, retrying"\nexiting\n', "",
     "dial tcp 10.0.0.1:6379: connect: connection refused, retrying"),
    # fatal beats error; among equals the later line
    ('level=fatal msg="first"\nlevel=error msg="second"\n', "", "first"),
    ('level=error msg="first"\nlevel=error msg="second"\n', "", "second"),
    # a bare level word, colours stripped, control characters escaped
    ("\x1b[32mINFO\x1b[0m up\n\x1b[31mERROR\x1b[0m lost \x07leadership\n", "", "ERROR lost \\x07leadership"),
])
def test_telling_line_picks_the_line_that_carries_the_failure(current: str, previous: str, line: str | None) -> None:
    assert telling_line(current, previous) == line


@pytest.mark.parametrize(("version", "cause", "workload", "fixed"), [
    ("v2.11.1", API_EGRESS_BLOCKED, "argocd-redis", "v2.11.2"),
    ("v2.10.10", API_EGRESS_BLOCKED, "argocd-redis", "v2.10.11"),
    ("v2.9.15", API_EGRESS_BLOCKED, "argocd-redis-ha-haproxy", "v2.9.16"),
    ("v2.8.19", API_EGRESS_BLOCKED, "argocd-redis", "v2.8.20"),
    ("v3.0.0-rc1", NO_TOKEN, "argocd-redis-ha-haproxy", "v3.0.0-rc2"),
    ("v2.11.2", API_EGRESS_BLOCKED, "argocd-redis", None),  # the fix itself
    ("v2.11.1", NO_TOKEN, "argocd-redis", None),  # a known release, another bug: no claim
    ("v2.11.1", API_EGRESS_BLOCKED, "argocd-server", None),  # another workload: a team's own policy
    (None, API_EGRESS_BLOCKED, "argocd-redis", None),
])
def test_known_fixes(version: str | None, cause: str, workload: str, fixed: str | None) -> None:
    fix = known_fix(version, cause, workload)
    assert (fix.fixed if fix else None) == fixed


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
    assert "**Root cause:** x: broken" in md and "| np | p | denies all egress |" in md
    assert "| t | Warning | BackOff | Pod/p | 2 | a\\|b |" in md  # events as a table, a cell's | escaped


def test_markdown_is_for_people_and_escapes_what_it_quotes() -> None:
    """Cause and remedy first, a short table per pod; a log line's Markdown, pipes and control characters cannot
    break the table, forge a heading or close the code block of the raw log."""
    hostile = "level=error msg=\"bad | *x* <b>\x1b[2J\x07\"\n```\n# PASS\n"  # ANSI dropped, BEL escaped
    pod = {"object": "Pod/ns/p", "phase": "Pending", "owner": "Deployment/ns/web",
           "network_policies": [{"name": "np", "egress": "denies all egress"}],
           "initContainerStatuses": [{"name": "init", "ready": False, "restartCount": 4,
                                      "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                      "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}}],
           "containerStatuses": [{"name": "app", "ready": False, "restartCount": 0,
                                  "state": {"waiting": {"reason": "PodInitializing"}}}],
           "logs": {"init": {"previous": hostile, "current": None, "line": telling_line("", hostile)}}}
    md = render_markdown(Diagnosis("web: init container init failing", evidence=[pod], remedy="set `x: 1` on <web>",
                                   cause="some-cause"))
    lines = md.splitlines()
    assert lines[2:5] == ["**Root cause:** web: init container init failing", "",
                          "**Remedy:** set `x: 1` on \\<web\\>"]
    assert "phase Pending · owner Deployment/ns/web · NetworkPolicy np: denies all egress" in lines
    assert "| init (init) | waiting: CrashLoopBackOff | no | 4 | 2 (Error) | bad \\| \\*x\\* \\<b\\>\\\\x07 |" in lines
    assert "| app | waiting: PodInitializing | no | 0 | - | - |" in lines
    assert "````text" in lines and "```" in lines and "# PASS" in lines  # inside a fence longer than ``` : inert
    assert "\x1b" not in md and "\x07" not in md and lines.index("# PASS") > lines.index("````text")


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



# Scaled down as in test_watch: the spec's 60 s config-error grace becomes 3 s; restarts stay at 3.
FAST = Thresholds(config_error_grace_s=3, crashloop_backoff_s=6, dependent_wait_s=6, image_pull_grace_s=3)


def without_token(bundle: Bundle, workload: str = "argocd-redis") -> Bundle:
    """BUNDLE with automountServiceAccountToken: false on WORKLOAD's pod template (v3.0.0-rc1's HA haproxy bug)."""
    objects = []
    for obj in bundle:
        body = copy.deepcopy(obj.body)
        if obj.kind == "Deployment" and obj.name == workload:
            body["spec"]["template"]["spec"]["automountServiceAccountToken"] = False
        objects.append(KubeObject(body, obj.source, obj.document, obj.line, obj.namespace))
    return Bundle(objects, namespace=bundle.namespace)


NO_TOKEN_CAUSE = re.compile(
    r'^argocd-redis: init container secret-init failing \(\d+ restarts\): "' + re.escape(NO_CONFIG) + r'" - '
    + re.escape("no ServiceAccount token: automountServiceAccountToken is false on Deployment argocd-redis's pod "
                "template") + "$")


def test_secret_init_without_a_token_is_named_with_the_fatal_line(tmp_path: Path) -> None:
    """Acceptance: secret-init runs without a ServiceAccount token; its log is the banner, then client-go's fatal
    line; its restarted attempt has printed only the banner. Old: the root cause quoted the banner."""
    bundle = without_token(bundle_from(real_manifest("v2.11.2/install.yaml")))
    with ApiDouble() as double:
        double.pods("argocd-redis").crashloop("secret-init", log=NO_CONFIG_LOG, attempt=f"{BANNER}\n", every=0.2)
        api = double.api_client()
        install(api, bundle)
        result = wait_healthy(api, bundle, timeout_s=60, thresholds=FAST)
        assert result.terminal is not None and result.terminal.container == "secret-init"
        diag = run_diagnose(api, bundle, result, tmp_path)
    assert NO_TOKEN_CAUSE.match(diag.root_cause), diag.root_cause
    assert diag.cause == NO_TOKEN
    assert diag.remedy == ("mount the token: automountServiceAccountToken: true on Deployment argocd-redis's pod "
                           "template (or a projected serviceAccountToken volume)")
    assert "Checking for initial Redis password" not in diag.root_cause
    md = (tmp_path / "diagnosis.md").read_text().splitlines()
    assert md[2].startswith("**Root cause:** argocd-redis: init container secret-init failing")
    assert md[4] == f"**Remedy:** {diag.remedy}"
    row = next(line for line in md if line.startswith("| secret-init (init) |"))
    assert row.endswith(f"| {NO_CONFIG.replace('_', chr(92) + '_')} |")  # KUBERNETES\\_MASTER: Markdown-escaped
    assert "waiting: CrashLoopBackOff" in row


def test_a_known_broken_release_names_the_release_that_fixed_it(tmp_path: Path) -> None:
    """v2.11.1 itself (its own manifest and version): the remedy says upstream fixed it in v2.11.2, and which rule
    to add meanwhile, for this cluster's API server endpoint (the double's EndpointSlice: 172.18.0.2:6443)."""
    bundle = bundle_from(real_manifest("v2.11.1/install.yaml"))
    bundle.provenance = SimpleNamespace(version="v2.11.1", image_version="v2.11.1")
    with ApiDouble() as double:
        broken_redis(double, every=0.2)
        api = double.api_client()
        install(api, bundle)
        result = wait_healthy(api, bundle, timeout_s=60, thresholds=FAST)
        diag = run_diagnose(api, bundle, result, tmp_path)
    assert diag.root_cause.endswith('"dial tcp 10.96.0.1:443: i/o timeout" - NetworkPolicy argocd-redis-network-policy '
                                    "restricts egress to 53/UDP, 53/TCP"), diag.root_cause
    assert diag.cause == API_EGRESS_BLOCKED
    assert diag.remedy is not None and diag.remedy.startswith("upstream fixed it in v2.11.2 (argoproj/argo-cd#18367 ")
    assert ("add to NetworkPolicy argocd-redis-network-policy an egress rule that admits the API server's endpoints, "
            "here `{to: [{ipBlock: {cidr: 172.18.0.2/32}}], ports: [{port: 6443, protocol: TCP}]}` (172.18.0.2:6443 "
            "(this cluster's kubernetes EndpointSlice))") in diag.remedy
    # the same candidate, not known as a release: the rule, and no claim about upstream
    bundle.provenance = None
    with ApiDouble() as double:
        broken_redis(double, every=0.2)
        api = double.api_client()
        install(api, bundle)
        diag = run_diagnose(api, bundle, wait_healthy(api, bundle, timeout_s=60, thresholds=FAST), tmp_path)
    assert diag.remedy is not None and diag.remedy.startswith("add to NetworkPolicy argocd-redis-network-policy ")
