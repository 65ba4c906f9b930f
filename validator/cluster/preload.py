"""Optional image preload: pull once on the host, load into the kind nodes, cache the archives.

`docker save --platform` + `kind load image-archive` rather than `kind load docker-image`: with Docker's
containerd image store, a multi-arch image makes `kind load docker-image` fail with
"ctr: content digest sha256:...: not found" (kubernetes-sigs/kind#3795, #4224); a single-platform
archive avoids it. Archives of digest-pinned images are immutable, so they are cached across runs.
"""

from __future__ import annotations

import hashlib
import platform as host
from collections.abc import Sequence
from pathlib import Path

from validator.cluster.kind import kind_binary
from validator.cluster.model import Cluster
from validator.cluster.tools import DOCKER_REMEDY, Progress, find_tool, last_error, run

DEFAULT_CACHE = Path.home() / ".cache" / "argocd-mirror" / "images"


def host_platform() -> str:
    arch = host.machine().lower()
    return "linux/arm64" if arch in ("arm64", "aarch64") else "linux/amd64"


def archive_name(image: str, platform: str) -> str:
    return hashlib.sha256(f"{image}|{platform}".encode()).hexdigest()[:24] + ".tar"


def preload_images(cluster: Cluster, images: Sequence[str], progress: Progress, cache_dir: Path | None = None,
                   platform: str | None = None) -> list[str]:
    """Load `images` into every node; returns those loaded. Failures only warn: nodes can still pull."""
    if not images:
        return []
    docker = find_tool("docker", f"install Docker: {DOCKER_REMEDY}")
    kind = kind_binary()
    platform = platform or host_platform()
    cache = cache_dir or DEFAULT_CACHE
    cache.mkdir(parents=True, exist_ok=True)
    archives: list[str] = []
    loaded: list[str] = []
    for image in dict.fromkeys(images):
        archive = cache / archive_name(image, platform)
        if "@sha256:" in image and archive.is_file() and archive.stat().st_size > 0:
            progress(f"preload {image}: cached archive")
        else:
            if run([docker, "image", "inspect", image], timeout_s=60).returncode != 0:
                pulled = run([docker, "pull", "--platform", platform, image], timeout_s=900)
                if pulled.returncode != 0:
                    progress(f"warning: preload {image}: pull failed ({last_error(pulled)}); the nodes will pull it")
                    continue
            saved = run([docker, "save", "--platform", platform, "-o", str(archive), image], timeout_s=900)
            if saved.returncode != 0 and "--platform" in last_error(saved):
                # an engine older than API 1.48 (or an older CLI) cannot pick a platform when saving; the
                # pull above fetched only ours, so the plain archive still carries what the nodes need
                saved = run([docker, "save", "-o", str(archive), image], timeout_s=900)
            if saved.returncode != 0:
                archive.unlink(missing_ok=True)
                progress(f"warning: preload {image}: docker save failed ({last_error(saved)})")
                continue
        archives.append(str(archive))
        loaded.append(image)
    if archives:
        proc = run([kind, "load", "image-archive", *archives, "--name", cluster.name], timeout_s=1800)
        if proc.returncode != 0:
            progress(f"warning: kind load image-archive failed ({last_error(proc)}); the nodes will pull the images")
            return []
        progress(f"preloaded {len(loaded)} image(s) into {cluster.name}")
    return loaded
