"""The network edge of resolution: `git ls-remote` and HTTP GET with tenacity retries, plus a
content-addressed cache of what was fetched.

Imported only when a spec is remote (`stable`, a tag, a URL): urllib, ssl and tenacity cost about a
quarter of the start-up of `argocd-mirror preflight FILE`, the common CI call, which never needs them.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tenacity import (
    RetryError,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from validator.errors import EnvironmentNotReady, FetchError, InputError
from validator.files import atomic_write
from validator.manifests import DEFAULT_LIMITS, Limits
from validator.releases import RELEASE_TAG, VARIANTS, Sources, semver_key
from validator.text import one_line


class _Transient(Exception):
    """A failure worth retrying (connection, timeout, 5xx, 429)."""


def _retrying(sources: Sources, deadline_s: float | None = None):
    stop = stop_after_attempt(sources.attempts)
    return retry(
        retry=retry_if_exception_type(_Transient),
        stop=stop if deadline_s is None else stop | stop_after_delay(deadline_s),
        wait=wait_exponential(multiplier=sources.backoff_s, max=8),
        reraise=False,
    )


def ls_remote_tags(sources: Sources) -> dict[str, str]:
    """Tag name -> commit (annotated tags peeled), from `git ls-remote --tags`."""
    git = shutil.which("git")
    if git is None:
        raise EnvironmentNotReady("git is not installed: it is needed to resolve tags (install git)")

    @_retrying(sources)
    def run() -> str:
        try:
            proc = subprocess.run(
                [git, "ls-remote", "--tags", sources.git_url],
                capture_output=True, text=True, timeout=sources.timeout_s * 2,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise _Transient(f"git ls-remote timed out after {exc.timeout:.0f}s") from None
        if proc.returncode != 0:
            raise _Transient(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "git ls-remote failed")
        return proc.stdout

    try:
        out = run()
    except RetryError as exc:
        raise FetchError(
            f"could not list tags of {sources.git_url} after {sources.attempts} attempts "
            f"(offline?): {exc.last_attempt.exception()}"
        ) from None
    direct: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            direct[name] = sha
    return {name: peeled.get(name, sha) for name, sha in direct.items()}


def resolve_ref(spec: str, sources: Sources) -> tuple[str, str]:
    """'stable' or 'v2.11.2' -> (release tag, commit), exactly, or FetchError."""
    tags = ls_remote_tags(sources)
    if spec not in tags:
        raise FetchError(f"tag {spec!r} does not exist in {sources.git_url}")
    commit = tags[spec]
    if RELEASE_TAG.match(spec):
        return spec, commit
    releases = sorted((t for t, c in tags.items() if c == commit and RELEASE_TAG.match(t)), key=semver_key)
    if not releases:
        raise FetchError(f"{spec!r} points to commit {commit[:12]}, which no release tag names; refusing to guess")
    return releases[-1], commit


# Socket timeouts are per read: a server dripping one byte at a time never trips them. So a download
# also has deadlines, per attempt (16 MB fits at ~140 kB/s) and for the whole retry sequence.
DOWNLOAD_DEADLINE_S = 300.0
ATTEMPT_DEADLINE_S = 120.0
_CHUNK = 64 * 1024


class _Watchdog:
    """Shuts a download's socket down at its deadline, so that a drip of the status line, the headers or
    the body ends in bounded time: a blocked read then sees end-of-file. It holds a dup of each socket,
    which TLS wrapping (it detaches the original socket object) leaves working."""

    def __init__(self, deadline: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                _shut(self._sockets[-1])

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the peer may be gone already
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedHTTP(http.client.HTTPConnection):
    watchdog: _Watchdog

    def connect(self) -> None:
        super().connect()  # for _WatchedHTTPS this is the TCP connect, before the TLS handshake
        self.watchdog.watch(self.sock)


class _WatchedHTTPS(http.client.HTTPSConnection, _WatchedHTTP):
    pass


class _WatchedHandler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    """urllib's http and https handlers, opening connections whose sockets are under a watchdog."""

    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def do_open(self, http_class: Any, req: urllib.request.Request, **http_conn_args: Any) -> Any:
        watched = _WatchedHTTPS if issubclass(http_class, http.client.HTTPSConnection) else _WatchedHTTP

        def connection(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            conn = watched(host, **kwargs)
            conn.watchdog = self.watchdog
            return conn

        return super().do_open(connection, req, **http_conn_args)


def _check_url(url: str) -> None:
    """A malformed URL is bad input (exit 2 at once), not a network failure worth retrying."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises on a non-numeric or out-of-range port
    except ValueError as exc:
        raise InputError(f"invalid URL {url!r}: {one_line(exc)}") from None
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise InputError(f"invalid URL {url!r}: no host")


def _read_bounded(response: Any, limit: int) -> bytes:
    """Up to limit + 1 bytes, a chunk at a time so that the watchdog's shutdown is seen between chunks."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = response.read1(min(_CHUNK, limit + 1 - size))
        if not chunk:
            if getattr(response, "length", None):  # read1 does not notice a body cut short of Content-Length
                raise http.client.IncompleteRead(b"".join(chunks), response.length)
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def http_get(url: str, sources: Sources, limits: Limits = DEFAULT_LIMITS, deadline_s: float | None = None) -> bytes:
    """GET with retries on transient failures, a hard size bound and a deadline for the whole sequence
    (DOWNLOAD_DEADLINE_S unless given); a 4xx or a malformed URL fails at once."""
    _check_url(url)
    total_s = DOWNLOAD_DEADLINE_S if deadline_s is None else deadline_s
    give_up_at = time.monotonic() + total_s
    time_up = FetchError(f"could not download {url} within {total_s:g} s")

    @_retrying(sources, total_s)
    def fetch() -> bytes:
        deadline = min(give_up_at, time.monotonic() + ATTEMPT_DEADLINE_S)
        if deadline <= time.monotonic():
            raise time_up
        with _Watchdog(deadline) as watchdog:
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "argocd-mirror"})
                opener = urllib.request.build_opener(_WatchedHandler(watchdog))
                with opener.open(request, timeout=min(sources.timeout_s, deadline - time.monotonic())) as response:
                    data = _read_bounded(response, limits.max_bytes)
                if watchdog.expired:  # without a Content-Length, the shutdown reads as the end of the body
                    raise TimeoutError("deadline")
            except urllib.error.HTTPError as exc:
                if exc.code == 429 or exc.code >= 500:
                    raise _Transient(f"HTTP {exc.code} {one_line(exc.reason)}") from None
                raise FetchError(f"could not fetch {url}: HTTP {exc.code} {one_line(exc.reason)}") from None
            except (http.client.InvalidURL, ValueError) as exc:  # "nonnumeric port", a space in the host, ...
                raise InputError(f"invalid URL {url!r}: {one_line(exc)}") from None
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                if watchdog.expired or time.monotonic() >= deadline:
                    if deadline >= give_up_at:
                        raise time_up from None
                    raise _Transient(f"no complete response within {ATTEMPT_DEADLINE_S:g} s") from None
                if isinstance(exc, http.client.HTTPException):  # garbage from the server: a network failure
                    raise _Transient(f"invalid HTTP response ({type(exc).__name__}: {one_line(exc)})") from None
                raise _Transient(one_line(getattr(exc, "reason", exc))) from None
        if len(data) > limits.max_bytes:
            raise FetchError(f"{url}: over the {limits.max_bytes}-byte manifest limit")
        return data

    try:
        return fetch()
    except RetryError as exc:
        last = exc.last_attempt
        if last.attempt_number < sources.attempts:  # stopped by the deadline, not by the attempt count
            raise FetchError(f"{time_up}: {last.exception()}") from None
        raise FetchError(
            f"could not fetch {url} after {sources.attempts} attempts (offline?): {last.exception()}"
        ) from None


class BlobCache:
    """Content-addressed cache of manifests, plus a map from immutable (commit-pinned) URLs to blobs."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _index_path(self) -> Path:
        return self.root / "urls.json"

    def _index(self) -> dict[str, str]:
        try:
            loaded = json.loads(self._index_path().read_text())
            return loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            return {}

    def lookup(self, url: str) -> bytes | None:
        digest = self._index().get(url)
        if not digest:
            return None
        try:
            data = (self.root / "blobs" / f"{digest}.yaml").read_bytes()
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == digest else None  # never trust a corrupt blob

    def store(self, url: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        try:
            atomic_write(self.root / "blobs" / f"{digest}.yaml", data)
            index = self._index()
            index[url] = digest
            atomic_write(self._index_path(), json.dumps(index, indent=1, sort_keys=True).encode())
        except OSError:
            pass  # a cache that cannot be written is only slower


def mirror_hint(sources: Sources) -> str | None:
    """What to say when only one of the two mirror overrides is set (tags and manifests come from two places, and
    a firewall that needs one override needs both), else None."""
    defaults = Sources()
    git, raw = sources.git_url != defaults.git_url, sources.raw_url != defaults.raw_url
    if git == raw:
        return None
    if git:
        return ("ARGOCD_MIRROR_GIT_URL is set but ARGOCD_MIRROR_RAW_URL is not, so the manifests are still "
                f"downloaded from {defaults.raw_url}: set ARGOCD_MIRROR_RAW_URL to your mirror's template too "
                "(e.g. file:///srv/argo-cd-raw/{ref}/manifests/{path}; see the README's mirror section)")
    return ("ARGOCD_MIRROR_RAW_URL is set but ARGOCD_MIRROR_GIT_URL is not, so tags are still listed from "
            f"{defaults.git_url}: set ARGOCD_MIRROR_GIT_URL to your mirror's clone too (e.g. /srv/argo-cd.git; "
            "see the README's mirror section)")


def fetch_release(spec: str, variant: str, sources: Sources,
                  limits: Limits = DEFAULT_LIMITS) -> tuple[str, str, str, bytes]:
    """`stable` or a tag -> (release tag, commit, commit-pinned URL, manifest bytes), cached by content."""
    try:
        version, commit = resolve_ref(spec, sources)
        url = sources.raw_url.format(ref=commit, path=VARIANTS[variant])  # checked by Sources.from_env
        cache = BlobCache(sources.cache_dir)
        data = cache.lookup(url)
        if data is None:
            data = http_get(url, sources, limits)
            cache.store(url, data)
    except FetchError as exc:
        hint = mirror_hint(sources)
        if hint is None:
            raise
        raise FetchError(f"{exc.one_line()} ({hint})", exc.evidence) from None
    return version, commit, url, data
