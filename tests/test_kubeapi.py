"""The API edge (validator/kubeapi.py) against the HTTP double: Retry-After, log bodies, stream line splitting."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tenacity import RetryCallState

from tests.apidouble import ApiDouble
from validator.kubeapi import MAX_RETRY_AFTER_S, RETRY_WAIT, Kube, KubeError, _retry_after, iter_lines

NAMESPACES = "/api/v1/namespaces"


def _throttled_once(retry_after_s: int) -> KubeError:
    """What one throttled list raises, with the Retry-After the double sent."""
    with ApiDouble(simulate=False) as double:
        double.fail(429, count=1, verb="list", retry_after_s=retry_after_s)
        with pytest.raises(KubeError) as throttled:
            Kube(double.api_client()).send("GET", NAMESPACES)
    return throttled.value


def test_a_throttled_answer_carries_its_retry_after() -> None:
    throttled = _throttled_once(1)
    assert (throttled.status, throttled.retry_after_s, throttled.transient) == (429, 1.0, True)
    assert _throttled_once(86400).retry_after_s == MAX_RETRY_AFTER_S  # an absurd ask is capped
    assert [_retry_after(h) for h in ({"Retry-After": "soon"}, {"Retry-After": "-3"}, {}, None)] == [None] * 4


def test_a_throttled_call_is_retried_no_sooner_than_asked() -> None:
    """API Priority and Fairness answers 429 with Retry-After: retrying sooner only gets throttled again."""
    with ApiDouble(simulate=False) as double:
        double.fail(429, count=1, verb="list", retry_after_s=1)
        start = time.monotonic()
        assert Kube(double.api_client()).call("GET", NAMESPACES)["kind"] == "NamespaceList"
        assert time.monotonic() - start >= 0.95  # waited what the server asked, not the 0.05 s back-off
        assert double.request_count("list") == 2


def _after(exc: BaseException, attempt: int = 1) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


@pytest.mark.parametrize("exc, at_least, at_most", [
    (KubeError(429, "throttled", retry_after_s=7), 7, 7),
    (KubeError(503, "unavailable"), 0, 2),  # no header: the exponential back-off alone
    (KubeError(0, "no answer"), 0, 2),
    (OSError("reset"), 0, 2),
])
def test_retry_wait_is_the_back_off_or_the_servers_ask_whichever_is_longer(exc: BaseException, at_least: float,
                                                                          at_most: float) -> None:
    assert at_least <= RETRY_WAIT(_after(exc)) <= at_most


def test_a_log_line_that_looks_like_json_stays_text() -> None:
    with ApiDouble() as double:
        double.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}})
        double.pods("web").crashloop("app", log='{"level":"fatal","msg":"boom"}\n', every=0.1)
        double.create({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "argocd"},
                       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
                           "metadata": {"labels": {"app": "web"}},
                           "spec": {"containers": [{"name": "app", "image": "web:1"}]}}}})
        kube = Kube(double.api_client())
        deadline = time.monotonic() + 5
        while not (pods := double.objects("Pod", "argocd")) or not _restarted(pods[0]):
            assert time.monotonic() < deadline, "the double never restarted the pod"
            time.sleep(0.05)
        name = pods[0]["metadata"]["name"]
        log = kube.call("GET", f"/api/v1/namespaces/argocd/pods/{name}/log",
                        query={"container": "app", "previous": "true"})
    assert log == '{"level":"fatal","msg":"boom"}\n'


def _restarted(pod: dict[str, Any]) -> bool:
    return any(s.get("restartCount", 0) >= 1 for s in (pod.get("status") or {}).get("containerStatuses") or [])


class _Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def stream(self, amt: Any = None, decode_content: bool = False) -> Any:
        return iter(self.chunks)


def test_stream_lines_split_across_chunks_and_a_cut_last_line_is_dropped() -> None:
    stream = _Chunks(b'{"type":"ADDED"}\n{"ty', b'pe":"MODIFIED"}\n\n', b'{"type":"DELE')  # cut mid-event
    assert list(iter_lines(stream)) == ['{"type":"ADDED"}', '{"type":"MODIFIED"}']


STORAGE_REINIT = "storage is (re)initializing"  # what a real API server answered right after CRDs were deleted


@pytest.mark.parametrize("status", [429, 503])
def test_the_one_retry_policy_honours_retry_after_with_an_injected_sleep(status: int) -> None:
    """Kube.call and the cluster layer's request() share api_retrying: a 429/503 with Retry-After is retried after
    exactly what the server asked (capped), without one is retried after the short back-off; no real waiting."""
    from validator.cluster.kubeapi import request
    with ApiDouble(simulate=False) as double:
        for call in (lambda sleep: Kube(double.api_client(), sleep=sleep).call("GET", NAMESPACES),
                     lambda sleep: request(double.api_client(), "GET", NAMESPACES, sleep=sleep)):
            waits: list[float] = []
            double.fail(status, count=2, verb="list", message=STORAGE_REINIT, retry_after_s=3)
            assert call(waits.append)["kind"] == "NamespaceList"
            assert waits == [3.0, 3.0]
            double.fail(status, count=2, verb="list", message=STORAGE_REINIT)
            waits.clear()
            assert call(waits.append)["kind"] == "NamespaceList"
            assert len(waits) == 2 and all(0 < w <= 2 for w in waits)


def test_retries_stop_at_the_calls_deadline_and_raise_the_last_answer() -> None:
    """A Retry-After longer than what is left of retry_s is cut to the deadline; then the last error surfaces."""
    with ApiDouble(simulate=False) as double:
        double.fail(429, count=100, verb="list", message=STORAGE_REINIT, retry_after_s=50)
        waits: list[float] = []
        with pytest.raises(KubeError, match=r"storage is \(re\)initializing") as raised:
            Kube(double.api_client(), retry_s=0.5, sleep=lambda s: (waits.append(s), time.sleep(s))).call(
                "GET", NAMESPACES)
    assert raised.value.status == 429
    assert waits and all(w <= 0.5 for w in waits) and sum(waits) <= 0.5


def test_a_hung_try_ends_at_its_request_timeout_and_is_retried() -> None:
    """Every try carries its own deadline (the client's _request_timeout): a server that never answers one try
    costs that timeout, then the policy retries it like a reset connection (status 0)."""
    from validator.cluster.kubeapi import request
    with ApiDouble(simulate=False) as double:
        double.slow(2.0, count=1, verb="list")
        waits: list[float] = []
        start = time.monotonic()
        assert request(double.api_client(), "GET", NAMESPACES, timeout_s=0.3, sleep=waits.append)["kind"] \
            == "NamespaceList"
        assert time.monotonic() - start < 1.5 and len(waits) == 1
