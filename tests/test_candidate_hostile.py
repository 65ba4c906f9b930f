"""Candidate resolution against hostile input: malformed URLs, servers that send protocol garbage or drip a
byte at a time, and a `kubectl kustomize` that floods stdout or panics. Every one must end as a single line
and exit 2, in bounded time and memory. Local servers and a fake kubectl only: no network."""

from __future__ import annotations

import contextlib
import http.server
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from validator import upstream
from validator.candidate import resolve
from validator.cli import main
from validator.errors import FetchError, InputError
from validator.manifests import Limits
from validator.releases import Sources

Respond = Callable[[http.server.BaseHTTPRequestHandler], None]


@dataclass
class Hostile:
    """An HTTP(S) server on 127.0.0.1 whose every answer is `respond` writing raw bytes to the socket."""

    port: int = 0
    scheme: str = "http"
    respond: Respond = lambda handler: None
    connections: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/install.yaml"


@contextlib.contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[Hostile]:
    state = Hostile(scheme="https" if tls else "http")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.connections.append(time.monotonic())
            with contextlib.suppress(OSError):  # the client hung up on us: that is the point
                state.respond(self)
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    with serving() as state:
        yield state


@pytest.fixture
def hostile_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hostile]:
    """The same over TLS, with a self-signed certificate for 127.0.0.1 that the client trusts."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving(context) as state:
        yield state


def raw(payload: bytes) -> Respond:
    return lambda handler: handler.wfile.write(payload)


def drip(head: bytes, trickle: bytes, pause_s: float = 0.05, for_s: float = 4.0) -> Respond:
    """Send `head`, then `trickle` one byte at a time; stop after `for_s` (so the old code ends, too)."""
    def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.wfile.write(head)
        stop = time.monotonic() + for_s
        for byte in trickle:
            if time.monotonic() > stop:
                return
            handler.wfile.write(bytes([byte]))
            time.sleep(pause_s)
    return respond


def sources(tmp_path: Path, attempts: int = 2) -> Sources:
    return Sources(cache_dir=tmp_path / "cache", timeout_s=5, attempts=attempts, backoff_s=0)


@pytest.fixture
def cli_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sources:
    """What `argocd-mirror resolve` uses: no backoff, so a wrongly retried input error stays fast."""
    chosen = sources(tmp_path)
    monkeypatch.setattr(Sources, "from_env", classmethod(lambda cls: chosen))
    return chosen


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["resolve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err, err
    assert err.startswith("argocd-mirror resolve: could not resolve: "), err
    return err


# --------------------------------------------------------------------------------------------------
# 1. malformed URLs and protocol garbage
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://[::1",                         # ValueError: Invalid IPv6 URL
    "http://exa mple/x",                   # http.client.InvalidURL
    "http://127.0.0.1:abc/x",              # InvalidURL: nonnumeric port
    "http://127.0.0.1:99999/x",            # out of range (was a retried "connection refused")
    "http://" + "a" * 70 + ".com/x",       # UnicodeError: idna label too long
    "http:///x",                           # no host (was retried)
])
def test_a_malformed_url_is_bad_input_at_once(url: str, cli_sources: Sources,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    err = run_cli(capsys, url)
    assert "invalid URL" in err
    with pytest.raises(InputError, match="invalid URL"):
        upstream.http_get(url, cli_sources)


GARBAGE = {
    "bad status line": b"garbage\r\nsecond line\r\n\r\n",
    "bad chunked encoding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
    "header line too long": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    "over 100 headers": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n",
    "body cut short of Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nkind: List\n",
}


@pytest.mark.parametrize("payload", GARBAGE.values(), ids=GARBAGE.keys())
def test_protocol_garbage_is_a_retried_network_failure(payload: bytes, hostile: Hostile, tmp_path: Path) -> None:
    hostile.respond = raw(payload)
    with pytest.raises(FetchError, match=r"after 2 attempts .*invalid HTTP response") as caught:
        upstream.http_get(hostile.url, sources(tmp_path))
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 500
    assert len(hostile.connections) == 2


def test_a_bad_status_line_is_one_line_from_the_cli(hostile: Hostile, cli_sources: Sources,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    hostile.respond = raw(GARBAGE["bad status line"])
    assert "BadStatusLine: garbage" in run_cli(capsys, hostile.url)


# --------------------------------------------------------------------------------------------------
# 2. deadlines: a server dripping a byte at a time never trips a per-read socket timeout
# --------------------------------------------------------------------------------------------------


def test_a_dripping_body_fails_within_the_download_deadline(hostile: Hostile, cli_sources: Sources,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "DOWNLOAD_DEADLINE_S", 0.5)
    hostile.respond = drip(b"HTTP/1.0 200 OK\r\n\r\n", b"a: b\n" * 1000)  # no Content-Length: EOF ends it
    started = time.monotonic()
    err = run_cli(capsys, hostile.url)
    assert time.monotonic() - started < 2.0
    assert f"could not download {hostile.url} within 0.5 s" in err


def test_a_dripping_status_line_fails_within_the_deadline_too(hostile: Hostile, tmp_path: Path) -> None:
    hostile.respond = drip(b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"within 0.5 s$"):
        upstream.http_get(hostile.url, sources(tmp_path), deadline_s=0.5)
    assert time.monotonic() - started < 2.0 and len(hostile.connections) == 1


def test_a_dripping_tls_body_fails_within_the_deadline(hostile_tls: Hostile, tmp_path: Path) -> None:
    """The watchdog must still reach a socket that TLS wrapping has taken over."""
    hostile_tls.respond = drip(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"a" * 1000)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"within 0.5 s$"):
        upstream.http_get(hostile_tls.url, sources(tmp_path), deadline_s=0.5)
    assert time.monotonic() - started < 2.0
    hostile_tls.respond = raw(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nkind: List\n")
    assert upstream.http_get(hostile_tls.url, sources(tmp_path)) == b"kind: List\n"


def test_a_stalled_attempt_is_retried_within_the_overall_deadline(hostile: Hostile, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "ATTEMPT_DEADLINE_S", 0.3)
    hostile.respond = drip(b"HTTP/1.0 200 OK\r\n\r\n", b"a: b\n" * 1000)
    with pytest.raises(FetchError, match=r"after 2 attempts .*no complete response within 0.3 s"):
        upstream.http_get(hostile.url, sources(tmp_path), deadline_s=5)
    assert len(hostile.connections) == 2


# --------------------------------------------------------------------------------------------------
# 3. kubectl kustomize: bounded stdout, a meaningful error line
# --------------------------------------------------------------------------------------------------


def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """A kustomize directory, and a `kubectl` on PATH (alone) running `body` (Python, with sys and Path)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    kubectl = bindir / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\nimport sys\nfrom pathlib import Path\n{body}\n")
    kubectl.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    kdir = tmp_path / "overlay"
    kdir.mkdir()
    (kdir / "kustomization.yaml").write_text("resources: []\n")
    return kdir


def test_a_flood_from_kubectl_is_cut_at_the_limit_and_kubectl_killed(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    finished = tmp_path / "finished"
    kdir = fake_kubectl(tmp_path, monkeypatch, (
        "line = b'# ' + b'x' * 1022 + b'\\n'\n"
        "for _ in range(30 * 1024):\n"  # 30 MB
        "    sys.stdout.buffer.write(line)\n"
        f"Path({str(finished)!r}).touch()\n"))
    with pytest.raises(InputError, match=r"rendered output exceeds the 1048576-byte manifest limit"):
        resolve(str(kdir), sources=sources(tmp_path), limits=Limits(max_bytes=1024 * 1024))
    assert not finished.exists()  # killed, not read to the end


GO_PANIC = """panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1c2f3a4]

goroutine 1 [running]:
sigs.k8s.io/kustomize/api/krusty.(*Kustomizer).Run(0xc000123456, {0x2a1b2c0, 0xc000654321}, {0x7ffd1234, 0x7})
\tsigs.k8s.io/kustomize/api@v0.17.2/krusty/kustomizer.go:88 +0x3a5
k8s.io/klog/v2.(*loggingT).output(0x3b7e2a0, 0x3, 0x0, 0xc0001f2000, 0x1, {0x2c0f1b5?, 0x2?}, 0xc000100000?, 0x0)
\tk8s.io/klog/v2@v2.130.1/klog.go:1137 +0x167
"""
KLOG = ("W0101 12:00:00.000000 1234 warnings.go:70] a warning first\n"
        "Error: accumulating resources: accumulation err='accumulating resources from 'missing.yaml': "
        "open /x/missing.yaml: no such file or directory'\n" + GO_PANIC.split("\n", 3)[3])


@pytest.mark.parametrize(("stderr", "expected"), [
    (GO_PANIC, "failed: panic: runtime error: invalid memory address or nil pointer dereference"),
    (KLOG, "failed: Error: accumulating resources: accumulation err='accumulating resources from"),
    (GO_PANIC + "x" * 3_000_000, "failed: panic: runtime error"),  # a huge stderr neither stalls nor floods
], ids=["go panic", "Error: line amid noise", "huge stderr"])
def test_a_failing_kubectl_reports_the_meaningful_line(stderr: str, expected: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, cli_sources: Sources,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    kdir = fake_kubectl(tmp_path, monkeypatch, f"sys.stderr.write({stderr!r})\nsys.exit(2)")
    err = run_cli(capsys, str(kdir))
    assert f"kubectl kustomize {kdir} {expected}" in err and "klog.go" not in err
    assert len(err) < 500


def test_kubectl_output_and_timeout_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_candidate import MANIFEST

    kdir = fake_kubectl(tmp_path, monkeypatch, (
        "import time\n"
        f"if Path({str(tmp_path / 'slow')!r}).exists(): time.sleep(30)\n"
        f"sys.stdout.buffer.write({MANIFEST % b'v3.5.1'!r})\n"))
    bundle = resolve(str(kdir), sources=sources(tmp_path))
    assert bundle.provenance.source == "kustomize" and bundle.provenance.image_version == "v3.5.1"
    (tmp_path / "slow").touch()
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        resolve(str(kdir), sources=Sources(cache_dir=tmp_path, timeout_s=0.1))
    assert time.monotonic() - started < 2.0


KLOG_MULTILINE = (
    "E1208 01:02:03.456789   41212 run.go:72] \"command failed\" err=<\n"
    "\taccumulating resources: accumulation err='accumulating resources from 'https://github.com/argoproj/argo-cd/"
    "manifests/cluster-install?ref=v9.9.9': URL is a git repository': failed to run '/usr/bin/git fetch --depth=1 "
    "origin v9.9.9': fatal: couldn't find remote ref v9.9.9\n"
    "\t: exit status 128\n"
    " >\n")


@pytest.mark.parametrize(("stderr", "expected"), [
    (KLOG_MULTILINE, "failed: \"command failed\" err=accumulating resources: accumulation err='accumulating resources "
                     "from 'https://github.com/argoproj/argo-cd/manifests/cluster-install?ref=v9.9.9': URL is a git "
                     "repository': failed to run '/usr/bin/git fetch --depth=1 origin v9.9.9': fatal: couldn't find "
                     "remote ref v9.9.9 : exit status 128"),
    ("W1208 01:02:03.000000 1 warnings.go:70] a warning first\nerror: must build at directory: not a valid "
     "directory:\n    evalsymlink failure on '/x/base' : lstat /x/base: no such file or directory\nnext: unrelated\n",
     "failed: error: must build at directory: not a valid directory: evalsymlink failure on '/x/base' : lstat "
     "/x/base: no such file or directory"),
], ids=["klog err=<", "indented continuation"])
def test_a_multi_line_kustomize_error_is_kept_whole(stderr: str, expected: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, cli_sources: Sources,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """kubectl's `err=<` alone says nothing: the cause on the following lines is in the one-line error."""
    kdir = fake_kubectl(tmp_path, monkeypatch, f"sys.stderr.write({stderr!r})\nsys.exit(1)")
    err = run_cli(capsys, str(kdir))
    assert f"kubectl kustomize {kdir} {expected}" in err, err
    assert "next: unrelated" not in err and "run.go" not in err and " >" not in err


def test_a_long_multi_line_kustomize_error_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      cli_sources: Sources,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    stderr = "E1208 01:02:03.456789 1 run.go:72] \"command failed\" err=<\n" + "\tcause " * 5000 + "\n >\n"
    kdir = fake_kubectl(tmp_path, monkeypatch, f"sys.stderr.write({stderr!r})\nsys.exit(1)")
    err = run_cli(capsys, str(kdir))
    assert "err=cause cause" in err and len(err.splitlines()) == 1 and len(err) < 600 + 200 + len(str(kdir))
