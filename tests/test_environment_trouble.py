"""Registry or network trouble on the runner is "could not validate" (exit 2), never a candidate FAIL (exit 1).

The classifier is pure and fed real-looking kubelet/containerd and Argo CD messages; the two exit paths are
driven against the API double: observe_healthy (an image pull that cannot reach its registry) and
sync_application (an Application whose git source cannot be reached, or does not exist).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apidouble import ApiDouble
from tests.manifest_snippets import deployment
from validator.errors import EnvironmentNotReady, InputError
from validator.failfast import (
    POLICY_LOOKALIKE,
    Thresholds,
    application_source_trouble,
    environment_trouble,
    repo_endpoint,
)
from validator.report import ScenarioFailed

IMAGE = "quay.io/argoproj/argocd:v3.5.1"
RESOLVE = f'failed to pull and unpack image "{IMAGE}": failed to resolve reference "{IMAGE}": failed to do request: ' \
          'Head "https://quay.io/v2/argoproj/argocd/manifests/v3.5.1": '
HUB = 'failed to pull and unpack image "docker.io/library/redis:7.2.4-alpine": failed to copy: httpReadSeeker: ' \
      "failed open: unexpected status code https://registry-1.docker.io/v2/library/redis/manifests/sha256:0e1f: "

ENVIRONMENTAL = [
    ("dns-nxdomain", f"rpc error: code = Unknown desc = {RESOLVE}dial tcp: lookup quay.io on 172.18.0.1:53: "
                     "no such host", "DNS failure"),
    ("dns-temporary", 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: '
                      "Temporary failure in name resolution", "DNS failure"),
    ("dns-servfail", f"{RESOLVE}dial tcp: lookup quay.io on 127.0.0.11:53: server misbehaving", "DNS failure"),
    ("dns-timeout", f"{RESOLVE}dial tcp: lookup quay.io on 10.96.0.10:53: read udp 172.18.0.2:45012->"
                    "10.96.0.10:53: i/o timeout", "DNS timeout"),
    ("docker-hub-rate-limit", f"{HUB}429 Too Many Requests - Server message: toomanyrequests: You have reached your "
                              "pull rate limit. You may increase the limit by authenticating and upgrading: "
                              "https://www.docker.com/increase-rate-limit", "rate limited"),
    ("x509", f"{RESOLVE}tls: failed to verify certificate: x509: certificate signed by unknown authority",
     "TLS failure"),
    ("bad-gateway", f'failed to resolve reference "{IMAGE}": unexpected status from HEAD request to '
                    "https://quay.io/v2/argoproj/argocd/manifests/v3.5.1: 502 Bad Gateway", "server error (HTTP 5xx)"),
    ("http-503", "Error response from daemon: received unexpected HTTP status: 503 Service Unavailable",
     "server error (HTTP 5xx)"),
    ("refused", 'failed to do request: Head "http://localhost:5001/v2/argocd/manifests/v3.5.1": dial tcp '
                "127.0.0.1:5001: connect: connection refused", "connection refused"),
    ("unreachable", f"{RESOLVE}dial tcp [2600:1f18:483:cf00::1]:443: connect: network is unreachable",
     "network unreachable"),
    ("reset", f'{HUB}read tcp 10.2.0.49:42728->23.20.95.219:443: read: connection reset by peer', "connection dropped"),
    ("io-timeout", f"rpc error: code = DeadlineExceeded desc = {RESOLVE}dial tcp 202.53.137.209:443: i/o timeout",
     "network timeout"),
    ("tls-handshake-timeout", 'Error response from daemon: Get "https://registry-1.docker.io/v2/": net/http: TLS '
                              "handshake timeout", "network timeout"),
    ("deadline", "rpc error: code = DeadlineExceeded desc = context deadline exceeded", "network timeout"),
    ("client-timeout", 'Error response from daemon: Get "https://registry-1.docker.io/v2/": net/http: request canceled '
                       "while waiting for connection (Client.Timeout exceeded while awaiting headers)",
     "network timeout"),
    ("backoff-with-cause", f'Back-off pulling image "{IMAGE}": ErrImagePull: {RESOLVE}dial tcp: lookup quay.io: '
                           "no such host", "DNS failure"),  # kubelet >= 1.32 appends the last pull error
]

NOT_ENVIRONMENTAL = [
    ("not-found", "rpc error: code = NotFound desc = failed to pull and unpack image "
                  '"quay.io/argoproj/argocd:v9.9.9": failed to resolve reference "quay.io/argoproj/argocd:v9.9.9": '
                  "quay.io/argoproj/argocd:v9.9.9: not found"),
    ("manifest-unknown", "Error response from daemon: manifest for argoproj/argocd:v9 not found: manifest unknown: "
                         "manifest unknown"),
    ("unauthorized", 'failed to resolve reference "ghcr.io/org/private:1": failed to authorize: failed to fetch '
                     "anonymous token: unexpected status from GET request to https://ghcr.io/token: 401 Unauthorized"),
    ("not-found-after-timeout-words", f"{RESOLVE}i/o timeout retried: quay.io/argoproj/argocd:v9: not found"),
    ("denied", "pull access denied, repository does not exist or may require authorization: server message: "
               "insufficient_scope: authorization failed"),
    ("forbidden", "unexpected status from HEAD request to https://ghcr.io/v2/org/x/manifests/1: 403 Forbidden"),
    ("platform", "no match for platform in manifest: not found"),
    ("bare-backoff", f'Back-off pulling image "{IMAGE}"'),
    ("empty", ""),
]


@pytest.mark.parametrize(("case", "message", "label"), ENVIRONMENTAL, ids=[c[0] for c in ENVIRONMENTAL])
def test_runner_and_registry_failures_are_environmental(case: str, message: str, label: str) -> None:
    assert environment_trouble(message) == label, case


@pytest.mark.parametrize(("case", "message"), NOT_ENVIRONMENTAL, ids=[c[0] for c in NOT_ENVIRONMENTAL])
def test_answers_about_the_image_are_not_environmental(case: str, message: str) -> None:
    """Not found, denied or unknown: the candidate named that image, so it stays the candidate's."""
    assert environment_trouble(message) is None, case


@pytest.mark.parametrize(("url", "endpoint"), [
    ("https://github.com/argoproj/argocd-example-apps.git", ("github.com", 443)),
    ("http://127.0.0.1:8080/repo.git", ("127.0.0.1", 8080)),
    ("git@github.com:argoproj/argo-cd.git", ("github.com", 22)),
    ("ssh://git@gitlab.example.com:2222/team/apps.git", ("gitlab.example.com", 2222)),
    ("", None), ("guestbook", None), ("https://[bad", None), ("https://host:99999/x", None),
])
def test_repo_endpoint(url: str, endpoint: tuple[str, int] | None) -> None:
    assert repo_endpoint(url) == endpoint


# ---------------------------------------------------------------- Application conditions (pure)

REPO = "https://github.com/argoproj/argocd-example-apps.git"
LIST_REFS = ("Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown "
             f'desc = failed to list refs: Get "{REPO}/info/refs?service=git-upload-pack": ')


def app_with(*conditions: tuple[str, str], operation: str | None = None, repo: str = REPO) -> dict[str, Any]:
    status: dict[str, Any] = {"sync": {"status": "Unknown"}, "health": {"status": "Healthy"},
                              "conditions": [{"type": t, "message": m} for t, m in conditions]}
    if operation:
        status["operationState"] = {"phase": "Running", "message": operation}
    return {"spec": {"source": {"repoURL": repo, "path": "guestbook", "targetRevision": "HEAD"}}, "status": status}


@pytest.mark.parametrize(("case", "app", "expected"), [
    ("dns", app_with(("ComparisonError", LIST_REFS + "dial tcp: lookup github.com on 10.96.0.10:53: no such host")),
     ("DNS failure", False, False)),
    ("timeout-to-github", app_with(("ComparisonError", LIST_REFS + "dial tcp 140.82.121.4:443: i/o timeout")),
     ("network timeout", False, True)),
    ("rate-limited-sync", app_with(operation=f'{LIST_REFS.split(": Get")[0]}: unexpected status from {REPO}: '
                                             "429 Too Many Requests"), ("rate limited", False, False)),
    ("path", app_with(("ComparisonError", "Failed to load target state: failed to generate manifest for source 1 of "
                                          "1: rpc error: code = Unknown desc = guestbookx: app path does not exist")),
     ("source not found", True, False)),
    ("repo", app_with(("ComparisonError", "failed to list refs: authentication required: Repository not found.")),
     ("source not found", True, False)),
    ("revision", app_with(("ComparisonError", "rpc error: code = Unknown desc = unable to resolve 'nope' to a "
                                              "commit SHA")), ("source not found", True, False)),
])
def test_application_source_trouble(case: str, app: dict[str, Any], expected: tuple[str, bool, bool]) -> None:
    trouble = application_source_trouble(app)
    assert trouble is not None, case
    assert (trouble.label, trouble.input, trouble.ambiguous) == expected
    assert trouble.ambiguous == (trouble.label in POLICY_LOOKALIKE)
    assert trouble.input or trouble.endpoint == ("github.com", 443)


@pytest.mark.parametrize(("case", "app"), [
    ("controller-to-repo-server", app_with(("ComparisonError", 'rpc error: code = Unavailable desc = connection error: '
                                            'desc = "transport: Error while dialing: dial tcp 10.96.45.12:8081: '
                                            'i/o timeout"'))),
    ("in-cluster-dns", app_with(("ComparisonError", "dial tcp: lookup argocd-repo-server on 10.96.0.10:53: "
                                                    "no such host"))),
    ("sync-forbidden", app_with(("SyncError", 'namespaces "guestbook" is forbidden'))),
    ("no-status", {"spec": {"source": {"repoURL": REPO}}}),
])
def test_in_cluster_failures_stay_the_candidates(case: str, app: dict[str, Any]) -> None:
    """A network error that does not name the repo's host is between Argo CD's own parts (or the API server):
    the candidate's policies or components, so not environment trouble."""
    assert application_source_trouble(app) is None, case


# ---------------------------------------------------------------- end to end against the API double


class _Cluster:
    failed = False

    def mark_failed(self) -> None:
        self.failed = True


def test_an_unreachable_registry_is_could_not_validate_not_a_candidate_failure(tmp_path: Path) -> None:
    """The wait ends on the image-pull rule; observe_healthy still diagnoses, then raises EnvironmentNotReady
    naming the object, the image and the registry's message (root cause first)."""
    from validator.manifests import load_bundle
    from validator.pytest_plugin import MirrorOptions, observe_healthy

    dns = f"{RESOLVE}dial tcp: lookup quay.io on 172.18.0.1:53: no such host"
    bundle = load_bundle(deployment("web", image=IMAGE).encode(), namespace="argocd")
    cluster = _Cluster()
    with ApiDouble(namespaces=("default", "argocd")) as double:
        double.pods("web").waiting("app", "ErrImagePull", dns)
        api = double.api_client()
        from validator.install import install

        install(api, bundle)
        lines: list[str] = []
        with pytest.raises(EnvironmentNotReady) as info:
            observe_healthy(cluster, api, bundle, MirrorOptions(wait_timeout_s=30), lines.append, tmp_path / "diag",
                            "candidate", thresholds=Thresholds(image_pull_grace_s=0.5))
    assert lines[-1].startswith("could not validate: DNS failure: "), lines[-1]  # the progress never says FAIL
    text = info.value.one_line()
    assert text.startswith("DNS failure: Pod/argocd/web-"), text
    assert f'cannot pull "{IMAGE}" (ErrImagePull for ' in text and "no such host" in text
    assert "not the candidate" in text
    assert cluster.failed and (tmp_path / "diag" / "diagnosis.md").is_file()  # diagnostics as for a failure
    assert str(tmp_path / "diag" / "diagnosis.md") in info.value.evidence  # and the verdict lists them


@pytest.mark.parametrize(("message", "environment"), [
    (f"{RESOLVE}dial tcp: lookup quay.io on 172.18.0.1:53: no such host", "DNS failure"),
    (f"{RESOLVE}unexpected status from HEAD request: 403 Forbidden", None),  # not positive evidence: the candidate's
])
def test_a_wait_shorter_than_the_pull_grace_still_says_the_registry_failed(message: str,
                                                                         environment: str | None) -> None:
    """--wait-timeout under image_pull_grace_s: the deadline comes first, but the pull the network is failing is
    still why nothing got Healthy, so the result says so (exit 2), not a plain timeout FAIL (exit 1)."""
    from validator.install import install
    from validator.manifests import load_bundle
    from validator.watch import wait_healthy

    bundle = load_bundle(deployment("web", image=IMAGE).encode(), namespace="argocd")
    with ApiDouble(namespaces=("default", "argocd")) as double:
        double.pods("web").waiting("app", "ErrImagePull", message)
        api = double.api_client()
        install(api, bundle)
        result = wait_healthy(api, bundle, timeout_s=1.5, thresholds=Thresholds())
    assert not result.passed and result.timed_out
    if environment is None:
        assert result.terminal is None and result.root_cause and "not Healthy after 2 s" in result.root_cause
    else:
        assert result.terminal is not None and result.terminal.environment == environment
        assert result.root_cause == result.terminal.root_cause
        assert result.root_cause.startswith("DNS failure: Pod/argocd/web-"), result.root_cause
        assert result.root_cause.endswith(", when the 2 s wait ran out")


@pytest.fixture
def app_double(tmp_path: Path) -> Iterator[tuple[ApiDouble, Any]]:
    from tests.apidouble.argocd import bundle_from
    from tests.conftest import real_manifest
    from validator.install import install
    from validator.manifests import Bundle

    crds = Bundle([o for o in bundle_from(real_manifest("v2.11.2/install.yaml")) if o.kind == "CustomResourceDefinition"
                   and o.name == "applications.argoproj.io"])
    with ApiDouble() as double:
        api = double.api_client(tmp_path)
        install(api, crds)
        yield double, api


def _sync(double: ApiDouble, api: Any, repo: str, message: str, timeout_s: float = 4,
          progress: list[str] | None = None) -> None:
    from validator.pytest_plugin import application, sync_application

    double.script(at=0, kind="Application", name="smoke", namespace="argocd", status={
        "sync": {"status": "Unknown"}, "health": {"status": "Healthy"},
        "conditions": [{"type": "ComparisonError", "message": message}]})
    app = application("smoke", "argocd", repo, "HEAD", "guestbook", "guestbook")
    sync_application(api, app, timeout_s=timeout_s, progress=(progress if progress is not None else []).append,
                     poll_s=0.05)


def test_a_git_host_argo_cd_cannot_resolve_is_could_not_validate_at_once(app_double: tuple[ApiDouble, Any]) -> None:
    double, api = app_double
    started = time.monotonic()
    with pytest.raises(EnvironmentNotReady) as info:
        _sync(double, api, REPO, LIST_REFS + "dial tcp: lookup github.com on 10.96.0.10:53: no such host")
    assert time.monotonic() - started < 3, "raised early, not at the timeout"
    text = info.value.one_line()
    assert text.startswith("DNS failure reaching github.com: Argo CD cannot read the source of Application smoke: ")
    assert "no such host" in text and "not the candidate" in text


def test_a_missing_smoke_path_is_input_not_a_candidate_failure(app_double: tuple[ApiDouble, Any]) -> None:
    double, api = app_double
    with pytest.raises(InputError) as info:
        _sync(double, api, REPO, "rpc error: code = Unknown desc = guestbook: app path does not exist")
    assert info.value.one_line() == (f"Application smoke: source {REPO} path guestbook at HEAD cannot be found: "
                                     '"rpc error: code = Unknown desc = guestbook: app path does not exist"')


def _free_port(listen: bool) -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    if listen:
        sock.listen()
    return sock, sock.getsockname()[1]


def test_a_timeout_the_runner_shares_is_the_environment(app_double: tuple[ApiDouble, Any]) -> None:
    """Argo CD times out reaching the git host, and so does this runner (nothing listens there): exit 2."""
    double, api = app_double
    sock, port = _free_port(listen=False)
    sock.close()
    repo = f"http://127.0.0.1:{port}/apps.git"
    with pytest.raises(EnvironmentNotReady, match=r"^network timeout reaching 127\.0\.0\.1: "):
        _sync(double, api, repo, f'failed to list refs: Get "{repo}/info/refs": dial tcp 127.0.0.1:{port}: i/o timeout')


def test_a_timeout_only_the_cluster_sees_may_be_the_candidates_policy(app_double: tuple[ApiDouble, Any]) -> None:
    """The runner reaches the git host but Argo CD times out: a candidate NetworkPolicy dropping repo-server's
    egress looks exactly like this, so the wait goes on and ends as the candidate's failure."""
    double, api = app_double
    sock, port = _free_port(listen=True)
    repo = f"http://127.0.0.1:{port}/apps.git"
    progress: list[str] = []
    with sock, pytest.raises(ScenarioFailed, match="not Synced and Healthy after 1s"):
        _sync(double, api, repo, f'Get "{repo}/info/refs": dial tcp 127.0.0.1:{port}: i/o timeout', timeout_s=1,
              progress=progress)
    assert progress.count("Argo CD cannot reach 127.0.0.1 but this runner can: still waiting, as the candidate's "
                          "NetworkPolicies may block it") == 1
