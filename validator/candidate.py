"""Resolve a candidate spec to concrete manifest bytes with provenance.

A gate is only as good as its answer to "what exactly did you test?". `stable` is a moving tag, so it
is resolved at that moment to the release tag and commit it points to, and the manifest is fetched
*by commit*, so a tag moving mid-run cannot change what we test. Nothing ever falls back to another
version: if the spec cannot be resolved exactly, the run could not validate (exit 2). The network side
(git ls-remote, HTTP, the download cache) is validator.upstream, loaded only for remote specs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from validator.errors import EnvironmentNotReady, FetchError, InputError
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
from validator.releases import ARGOCD_IMAGE, MOVING_TAGS, RELEASE_TAG, VARIANTS, Sources
from validator.text import one_line

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


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


# --------------------------------------------------------------------------------------------------
# network edges (git ls-remote, HTTP), with retries
# --------------------------------------------------------------------------------------------------


def kustomize_build(directory: Path, sources: Sources, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Render a kustomize directory with `kubectl kustomize`, the renderer users apply with.

    stdout is streamed and cut at the manifest limit (holding all of it first let a huge render cost
    gigabytes); the deadline kills kubectl, which also ends a read blocked on its output.
    """
    import shutil  # only kustomize specs run a process: a file spec skips these imports
    import subprocess
    import threading
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise EnvironmentNotReady("kubectl is not installed: it is needed to render kustomize directories")
    proc = subprocess.Popen([kubectl, "kustomize", str(directory)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        proc.kill()

    stderr: list[bytes] = []
    drain = threading.Thread(target=_drain, args=(proc.stderr, stderr), daemon=True)
    timer = threading.Timer(sources.timeout_s * 4, expire)
    timer.daemon = True
    drain.start()
    timer.start()
    try:
        out = _read_upto(proc.stdout, limits.max_bytes + 1)
        if len(out) > limits.max_bytes:
            proc.kill()  # the rest is never read
    except BaseException:
        proc.kill()
        raise
    finally:
        proc.wait()
        timer.cancel()
        drain.join(timeout=1)
        proc.stdout.close()
    if timed_out.is_set():
        raise FetchError(f"kubectl kustomize {directory} timed out")
    if len(out) > limits.max_bytes:
        raise InputError(f"kubectl kustomize {directory}: rendered output exceeds the {limits.max_bytes}-byte "
                         "manifest limit")
    if proc.returncode != 0:
        raise InputError(f"kubectl kustomize {directory} failed: {_kubectl_error(b''.join(stderr))}")
    return out


def _read_upto(stream: IO[bytes], limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := stream.read(min(64 * 1024, limit - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _drain(stream: IO[bytes], keep: list[bytes], limit: int = 64 * 1024) -> None:
    """Read a pipe to its end, keeping its first `limit` bytes: a full stderr pipe would stall kubectl."""
    size = 0
    while chunk := stream.read(64 * 1024):
        if size < limit:
            keep.append(chunk[: limit - size])
            size += len(keep[-1])
    stream.close()


KUBECTL_ERROR_CHARS = 600  # kustomize's cause is often on the lines after the first: keep it, bounded
_KLOG_HEADER = re.compile(r"^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [^\]\s]+\] ")


def _kubectl_error(stderr: bytes) -> str:
    """What failed, whole but bounded (KUBECTL_ERROR_CHARS). Not the last line: after a panic that is a Go stack
    frame ("k8s.io/klog/v2@v2.130.1/klog.go:1137 +0x167"). The line named `error:` (else klog's error line, else
    the first), with what continues it: klog writes a multi-line error as `err=<`, then indented lines, then ` >`
    (`"command failed" err=<` alone says nothing; kustomize's cause is on the next line)."""
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return "no output"
    at = next((i for i, line in enumerate(lines) if line.lstrip().lower().startswith("error:")), None)
    if at is None:
        klog_error = [i for i, line in enumerate(lines) if line.startswith(("E", "F")) and _KLOG_HEADER.match(line)]
        at = next((i for i, line in enumerate(lines) if line.rstrip().endswith("=<")), klog_error[0] if klog_error
                  else 0)
    head = _KLOG_HEADER.sub("", lines[at]).rstrip()
    opened = head.endswith("=<")
    parts = [head[:-1] if opened else head]
    size = len(parts[0])
    for line in lines[at + 1:]:
        if opened and line.strip() == ">":
            break
        if not opened and not line[:1].isspace():  # only what is indented under it continues it
            break
        if not opened and line.lstrip().startswith(("goroutine ", "/", "k8s.io/", "sigs.k8s.io/")):
            break
        parts.append(line.strip())
        size += len(parts[-1]) + 1
        if size > KUBECTL_ERROR_CHARS:
            break
    text = parts[0] + ("" if opened else " ") + " ".join(parts[1:]) if len(parts) > 1 else parts[0]
    return one_line(text, KUBECTL_ERROR_CHARS)


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
    if source in ("stable", "tag", "url"):
        from validator import upstream  # the network edge loads late: local specs never pay for it

        if source == "url":
            url = spec
            data = upstream.http_get(url, sources, limits)
            version = _version_in_url(url)
        else:
            version, commit, url, data = upstream.fetch_release(spec, variant, sources, limits)
    elif source == "kustomize":
        directory = Path(spec)
        if not any((directory / name).is_file() for name in KUSTOMIZATION_FILES):
            raise InputError(f"{spec}: directory has no kustomization.yaml")
        path = str(directory.resolve())
        data = kustomize_build(directory, sources, limits)
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
