"""Thin edges to external programs (kind, kubectl, docker): argument lists only, never a shell.

Every child runs without KUBECONFIG/KIND_CLUSTER_NAME in its environment and gets --kubeconfig/--name
explicitly, so nothing we start can read or edit the user's ambient kubeconfig.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

from validator.errors import EnvironmentNotReady

Progress = Callable[[str], None]

DOCKER_REMEDY = ("start the Docker engine (Docker Desktop, or `sudo systemctl start docker`) or point DOCKER_HOST "
                 "at a running one; kind runs every node as a Docker container")
_AMBIENT = ("KUBECONFIG", "KIND_CLUSTER_NAME")
_OWN_SESSION: ContextVar[bool] = ContextVar("own_session", default=False)


def stderr_progress(message: str) -> None:
    """A progress line on stderr; a terminal that is gone (SIGHUP, a closed pipe) must not stop the teardown."""
    with suppress(OSError, ValueError):
        print(f"argocd-mirror: {message}", file=sys.stderr, flush=True)


def child_env() -> dict[str, str]:
    """os.environ without the variables that would point a child at someone else's cluster."""
    return {k: v for k, v in os.environ.items() if k not in _AMBIENT}


def find_tool(name: str, remedy: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EnvironmentNotReady(f"{name} is not installed or not on PATH: {remedy}")
    return path


@contextmanager
def own_session() -> Iterator[None]:
    """While inside, run() starts children in a session of their own (teardown: see lifecycle.signals_deferred).

    A terminal's Ctrl-C goes to the whole foreground process group; a `kind delete` in it would die half way.
    Outside their group such children end only by finishing or by their timeout.
    """
    token = _OWN_SESSION.set(True)
    try:
        yield
    finally:
        _OWN_SESSION.reset(token)


def run(argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run a program to completion (text output, no shell); a hang becomes EnvironmentNotReady."""
    try:
        # kind create stays in our group so Ctrl-C also stops its docker children (killing kind alone would not)
        return subprocess.run(list(argv), capture_output=True, text=True, encoding="utf-8", errors="replace",
                              timeout=timeout_s, env=child_env(), stdin=subprocess.DEVNULL, check=False,
                              start_new_session=_OWN_SESSION.get())
    except subprocess.TimeoutExpired:
        raise EnvironmentNotReady(f"`{' '.join(argv[:3])}` did not finish within {timeout_s:.0f}s") from None
    except OSError as exc:
        raise EnvironmentNotReady(f"could not run {argv[0]}: {exc.strerror or exc}") from None


def last_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The most telling line of a failed command: kind's 'ERROR: ...' line, else the last non-empty one."""
    lines = [ln.strip() for ln in (proc.stderr or "").splitlines() + (proc.stdout or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors[0] if errors else lines[-1] if lines else f"exit status {proc.returncode}")[:400]


def classify_kind_failure(proc: subprocess.CompletedProcess[str], name: str) -> EnvironmentNotReady:
    """Map kind's error texts (cmd/kind/app/main.go: 'ERROR: ...', exit 1) to a remedy a human can follow."""
    text = f"{proc.stderr}\n{proc.stdout}"
    if "Cannot connect to the Docker daemon" in text or "failed to get docker info" in text:
        return EnvironmentNotReady(f"Docker engine not reachable (kind: {last_error(proc)}): {DOCKER_REMEDY}")
    if 'executable file not found' in text and "docker" in text:
        return EnvironmentNotReady(
            f"the docker CLI is not installed (kind needs it): install Docker ({last_error(proc)})")
    if "node(s) already exist for a cluster with the name" in text:
        return EnvironmentNotReady(
            f"a kind cluster named {name!r} already exists (name clash; never reused): delete it with "
            f"`kind delete cluster --name {name}` or run `argocd-mirror sweep`, then retry")
    return EnvironmentNotReady(f"kind failed: {last_error(proc)}")


def docker_ping(timeout_s: float = 10) -> None:
    """Reach the Docker engine through the SDK before anything else, for one clear message instead of kind's.

    The SDK honours DOCKER_HOST but not the docker CLI's contexts (docker/docker-py#3146), while kind runs the
    CLI, which does: with Docker Desktop, colima or OrbStack the engine often lives only in a context. So
    without DOCKER_HOST the current context's endpoint is tried too, rather than refusing an engine kind can use.
    """
    import docker  # local: importing the SDK is slow and only this edge needs it

    timeout = int(max(1, timeout_s))
    try:
        _ping(lambda: docker.from_env(timeout=timeout), timeout_s)
        return
    except Exception as exc:  # DockerException, requests' ConnectionError, ... all mean "not reachable"
        failure = exc
    endpoint = None if os.environ.get("DOCKER_HOST") else docker_context_endpoint(timeout_s)
    sdk_default = {docker.constants.DEFAULT_UNIX_SOCKET.removeprefix("http+"), docker.constants.DEFAULT_NPIPE}
    if endpoint in sdk_default:
        endpoint = None  # the default context: the SDK tried that engine already
    if endpoint:
        try:
            _ping(lambda: docker.DockerClient(base_url=endpoint, timeout=timeout), timeout_s)
            return
        except Exception as exc:
            failure = exc
    detail = " ".join(str(failure).split())[:300]
    where = f"; docker context endpoint {endpoint}" if endpoint else ""
    raise EnvironmentNotReady(f"Docker engine not reachable ({detail}{where}): {DOCKER_REMEDY}") from None


def _ping(connect: Callable[[], Any], timeout_s: float) -> None:
    """GET /_ping within TIMEOUT_S overall. The SDK's timeout is per socket read, so an endpoint that answers a byte
    at a time would hold the run forever: the ping runs in a daemon thread that is abandoned at the deadline."""
    outcome: list[BaseException | None] = []

    def ping() -> None:
        try:
            client = connect()
            try:
                client.ping()
            finally:
                client.close()
            outcome.append(None)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=ping, name="docker-ping", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        raise TimeoutError(f"no complete answer to /_ping within {timeout_s:g} s")
    if outcome[0] is not None:
        raise outcome[0]


def docker_context_endpoint(timeout_s: float) -> str | None:
    """The engine address of the docker CLI's current context (`docker context inspect`), if there is a CLI."""
    cli = shutil.which("docker")
    if cli is None:
        return None
    try:
        proc = run([cli, "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"], timeout_s)
    except EnvironmentNotReady:
        return None
    endpoint = proc.stdout.strip() if proc.returncode == 0 else ""
    return endpoint or None
