"""The network edge of resolution: `git ls-remote` and HTTP GET with tenacity retries, plus a
content-addressed cache of what was fetched.

Imported only when a spec is remote (`stable`, a tag, a URL): urllib, ssl and tenacity cost about a
quarter of the start-up of `argocd-mirror preflight FILE`, the common CI call, which never needs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tenacity import RetryError, retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from validator.errors import EnvironmentNotReady, FetchError
from validator.files import atomic_write
from validator.manifests import DEFAULT_LIMITS, Limits
from validator.releases import RELEASE_TAG, VARIANTS, Sources, semver_key


class _Transient(Exception):
    """A failure worth retrying (connection, timeout, 5xx, 429)."""


def _retrying(sources: Sources):
    return retry(
        retry=retry_if_exception_type(_Transient),
        stop=stop_after_attempt(sources.attempts),
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


def http_get(url: str, sources: Sources, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """GET with retries on transient failures and a hard size bound; 4xx fails at once."""

    @_retrying(sources)
    def fetch() -> bytes:
        request = urllib.request.Request(url, headers={"User-Agent": "argocd-mirror"})
        try:
            with urllib.request.urlopen(request, timeout=sources.timeout_s) as response:
                data: bytes = response.read(limits.max_bytes + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
            raise FetchError(f"could not fetch {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Transient(str(reason)) from None
        if len(data) > limits.max_bytes:
            raise FetchError(f"{url}: over the {limits.max_bytes}-byte manifest limit")
        return data

    try:
        return fetch()
    except RetryError as exc:
        raise FetchError(
            f"could not fetch {url} after {sources.attempts} attempts (offline?): {exc.last_attempt.exception()}"
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


def fetch_release(spec: str, variant: str, sources: Sources,
                  limits: Limits = DEFAULT_LIMITS) -> tuple[str, str, str, bytes]:
    """`stable` or a tag -> (release tag, commit, commit-pinned URL, manifest bytes), cached by content."""
    version, commit = resolve_ref(spec, sources)
    url = sources.raw_url.format(ref=commit, path=VARIANTS[variant])
    cache = BlobCache(sources.cache_dir)
    data = cache.lookup(url)
    if data is None:
        data = http_get(url, sources, limits)
        cache.store(url, data)
    return version, commit, url, data
