"""Fake kind/docker/kubectl on PATH, a fake Docker engine for the SDK, and a recording "production" server.

Use from any test module:

    from tests.fakes import fake_tools  # noqa: F401  (the pytest fixture)

    def test_x(fake_tools):
        fake_tools.fail("wait-timeout")           # cue a failure (FAKE_KIND_FAIL)
        fake_tools.api_server("http://127.0.0.1:PORT")  # kubeconfig server kind writes (e.g. ApiDouble.url)
        ... run code that calls kind ...
        assert fake_tools.calls("kind", "delete")  # recorded argv lists

See tests/fakes/README.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.kubeconfigs import write_kubeconfig

BIN = Path(__file__).resolve().parent / "bin"
DOCKER_API_VERSION = "1.50"


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1:<free port> running in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeDockerd(_Server):
    """Enough of the Docker Engine API for docker.from_env().ping(): /version and /_ping.

    With FAKE_KIND_FAIL containing docker-down (read per request) it drops the connection unanswered,
    which the SDK reports exactly like an engine that is not there.
    """

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if "docker-down" in os.environ.get("FAKE_KIND_FAIL", ""):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                path = self.path.split("?")[0].rstrip("/")
                if path.endswith("/_ping"):
                    body, ctype = b"OK", "text/plain"
                elif path.endswith("/version"):
                    body = json.dumps({"ApiVersion": DOCKER_API_VERSION, "MinAPIVersion": "1.24",
                                       "Version": "28.2.2", "Os": "linux", "Arch": "amd64"}).encode()
                    ctype = "application/json"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Api-Version", DOCKER_API_VERSION)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

        super().__init__(Handler)


class RecordingServer(_Server):
    """Poses as "production": answers every request with 200 {} and records it. Tests assert it saw nothing."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                outer.requests.append((self.command, self.path))
                body = b'{"kind":"Status","items":[]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path, context: str = "production") -> Path:
        return write_kubeconfig(path, self.url, context, "production-token")


class FakeTools:
    """Environment for the fakes; `calls()` returns what they recorded."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, dockerd: FakeDockerd) -> None:
        self.root = root
        self.log = root / "calls.jsonl"
        self.state = root / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.monkeypatch = monkeypatch
        self.dockerd = dockerd
        # python3 from this interpreter's bin first, so the fakes' #!/usr/bin/env python3 finds PyYAML.
        path = os.pathsep.join([str(BIN), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        self.env = {"PATH": path, "FAKE_LOG": str(self.log), "FAKE_KIND_STATE": str(self.state),
                    "DOCKER_HOST": f"tcp://127.0.0.1:{dockerd.port}", "FAKE_KIND_FAIL": "",
                    "ARGOCD_MIRROR_STATE": str(root / "owners")}  # owner markers (sweep --orphans), never ~/.cache
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        for key in ("FAKE_KIND_VERSION", "FAKE_KIND_API_SERVER", "FAKE_KIND_CREATE_SLEEP", "FAKE_KIND_DELETE_SLEEP",
                    "FAKE_KIND_EXPORT_SLEEP", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
            monkeypatch.delenv(key, raising=False)

    def setenv(self, key: str, value: str) -> None:
        self.env[key] = value
        self.monkeypatch.setenv(key, value)

    def fail(self, *cues: str) -> None:
        """Cue failures: docker-down, docker-missing, create-exists, create-error, wait-timeout, wrong-context,
        delete-error, export-error, kubectl-error, old-engine, pull-error (no `docker save --platform`)."""
        self.setenv("FAKE_KIND_FAIL", ",".join(cues))

    def kind_version(self, version: str) -> None:
        self.setenv("FAKE_KIND_VERSION", version)

    def api_server(self, url: str) -> None:
        self.setenv("FAKE_KIND_API_SERVER", url)

    def calls(self, tool: str | None = None, *words: str) -> list[list[str]]:
        """argv lists recorded for `tool` whose leading positional words start with `words`."""
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            entry = json.loads(line)
            positional = [a for a in entry["argv"] if not a.startswith("-")]
            if (tool is None or entry["tool"] == tool) and positional[: len(words)] == list(words):
                out.append(entry["argv"])
        return out

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def clusters(self) -> dict[str, Any]:
        path = self.state / "clusters.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def add_cluster(self, name: str, age_s: float, nodes: tuple[str, ...] = ("control-plane",)) -> None:
        """A cluster that exists already, created `age_s` seconds ago (for the sweeper)."""
        clusters = self.clusters()
        created = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_s)
        clusters[name] = {"created": created.strftime("%Y-%m-%dT%H:%M:%S.%f000Z"), "image": "kindest/node:fake",
                          "nodes": [f"{name}-{n}" for n in nodes], "config": {}}
        (self.state / "clusters.json").write_text(json.dumps(clusters))


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTools]:
    """Fake kind/docker/kubectl first on PATH, a fake Docker engine on DOCKER_HOST; yields the recorder."""
    with FakeDockerd() as dockerd:
        yield FakeTools(tmp_path / "fakes", monkeypatch, dockerd)  # type: ignore[arg-type]


@pytest.fixture
def production() -> Iterator[RecordingServer]:
    """A recording HTTP server posing as a production cluster; `production.requests` must stay empty."""
    with RecordingServer() as server:
        yield server  # type: ignore[misc]
