"""Resolve a candidate spec to concrete manifest bytes with provenance.

A gate is only as good as its answer to "what exactly did you test?". `stable` is a moving tag, so it
is resolved at that moment to the release tag and commit it points to, and the manifest is fetched
*by commit*, so a tag moving mid-run cannot change what we test. Nothing ever falls back to another
version: if the spec cannot be resolved exactly, the run could not validate (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tenacity import RetryError, retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from validator.errors import EnvironmentNotReady, FetchError, InputError
from validator.files import atomic_write
from validator.manifests import (
    DEFAULT_LIMITS,
    Bundle,
    Limits,
    containers_of,
    load_bundle,
    pod_spec,
    read_bounded,
    split_image,
)

VARIANTS = {
    "install": "install.yaml",
    "ha": "ha/install.yaml",
    "namespace-install": "namespace-install.yaml",
    "core-install": "core-install.yaml",
}
MOVING_TAGS = ("stable", "latest")
RELEASE_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-rc(\d+))?$")
ARGOCD_IMAGE = "quay.io/argoproj/argocd"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True)
class Sources:
    """Where upstream lives. Overridable (env) for mirrors behind a firewall, and for tests."""

    git_url: str = "https://github.com/argoproj/argo-cd.git"
    raw_url: str = "https://raw.githubusercontent.com/argoproj/argo-cd/{ref}/manifests/{path}"
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "argocd-mirror")
    timeout_s: float = 30.0
    attempts: int = 4
    backoff_s: float = 0.5  # first retry delay; doubles each time, capped at 8 s

    @classmethod
    def from_env(cls) -> Sources:
        env = os.environ
        defaults = cls()
        return cls(
            git_url=env.get("ARGOCD_MIRROR_GIT_URL", defaults.git_url),
            raw_url=env.get("ARGOCD_MIRROR_RAW_URL", defaults.raw_url),
            cache_dir=Path(env.get("ARGOCD_MIRROR_CACHE", str(defaults.cache_dir))),
        )


@dataclass(frozen=True)
class Provenance:
    """What exactly was tested: enough to reproduce the run and to pin the result."""

    spec: str
    source: str  # stable | tag | url | file | kustomize
    variant: str
    version: str | None
    commit: str | None
    url: str | None
    path: str | None
    sha256: str
    size: int
    fetched_at: str
    image_version: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        """'stable=v3.5.1 (commit 109ca7c)' for verdict lines."""
        version = self.version or self.image_version or "unknown version"
        head = f"{self.spec}={version}" if self.spec != version else version
        return f"{head} (commit {self.commit[:7]})" if self.commit else head


def semver_key(tag: str) -> tuple[int, int, int, int]:
    """Order release tags; a final release sorts after its release candidates."""
    match = RELEASE_TAG.match(tag)
    if not match:
        return (-1, -1, -1, -1)
    major, minor, patch, rc = match.groups()
    return (int(major), int(minor), int(patch), int(rc) if rc else 1 << 30)


# --------------------------------------------------------------------------------------------------
# network edges (git ls-remote, HTTP), with retries
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# local edges
# --------------------------------------------------------------------------------------------------


def kustomize_build(directory: Path, sources: Sources) -> bytes:
    """Render a kustomize directory with `kubectl kustomize`, the renderer users apply with."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise EnvironmentNotReady("kubectl is not installed: it is needed to render kustomize directories")
    try:
        proc = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                              timeout=sources.timeout_s * 4, check=False)
    except subprocess.TimeoutExpired:
        raise FetchError(f"kubectl kustomize {directory} timed out") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"kubectl kustomize {directory} failed: {detail[-1] if detail else 'no output'}")
    return proc.stdout


def argocd_image_version(bundle: Bundle) -> str | None:
    """The tag of the Argo CD image the manifests run: what a local file or URL really installs."""
    tags: set[str] = set()
    for obj in bundle:
        spec = pod_spec(obj)
        for _, container in containers_of(spec or {}):
            repo, tag, _ = split_image(str(container.get("image", "")))
            if repo == ARGOCD_IMAGE and tag:
                tags.add(tag)
    return sorted(tags)[0] if len(tags) == 1 else (", ".join(sorted(tags)) or None)


# --------------------------------------------------------------------------------------------------
# the resolver
# --------------------------------------------------------------------------------------------------


def classify(spec: str) -> str:
    """Which kind of source a spec names: stable | tag | url | file | kustomize."""
    if spec in MOVING_TAGS:
        return "stable"
    if re.match(r"^https?://", spec):
        return "url"
    path = Path(spec)
    if path.is_dir():
        return "kustomize"
    if path.exists():
        return "file"
    if RELEASE_TAG.match(spec):
        return "tag"
    raise InputError(
        f"candidate {spec!r} is neither 'stable', a release tag like v2.11.2, an http(s) URL, "
        "nor an existing file or kustomize directory"
    )


def resolve(
    spec: str,
    variant: str = "install",
    namespace: str = "argocd",
    sources: Sources | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Bundle:
    """Resolve SPEC to a parsed bundle whose provenance says exactly what it is."""
    sources = sources or Sources.from_env()
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    source = classify(spec)
    version = commit = url = path = None
    if source in ("stable", "tag"):
        version, commit = resolve_ref(spec, sources)
        url = sources.raw_url.format(ref=commit, path=VARIANTS[variant])
        cache = BlobCache(sources.cache_dir)
        data = cache.lookup(url)
        if data is None:
            data = http_get(url, sources, limits)
            cache.store(url, data)
    elif source == "url":
        url = spec
        data = http_get(url, sources, limits)
        version = _version_in_url(url)
    elif source == "kustomize":
        directory = Path(spec)
        if not any((directory / name).is_file() for name in KUSTOMIZATION_FILES):
            raise InputError(f"{spec}: directory has no kustomization.yaml")
        path = str(directory.resolve())
        data = kustomize_build(directory, sources)
    else:
        path = str(Path(spec).resolve())
        data = read_bounded(Path(spec), limits)

    bundle = load_bundle(data, source=url or path or spec, namespace=namespace, limits=limits)
    bundle.provenance = Provenance(
        spec=spec, source=source, variant=variant, version=version, commit=commit, url=url, path=path,
        sha256=hashlib.sha256(data).hexdigest(), size=len(data),
        fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
        image_version=argocd_image_version(bundle),
    )
    return bundle


def _version_in_url(url: str) -> str | None:
    """Release tag named in a raw GitHub URL (…/argo-cd/v2.11.2/manifests/…), if any."""
    for part in re.split(r"[/?=&]", url):
        if RELEASE_TAG.match(part):
            return part
    return None
