"""What Argo CD releases look like and where upstream publishes them: pure data, no I/O.

Shared by resolution (validator.candidate), the network edge (validator.upstream), the pin gate and
preflight's image checks, so the tag grammar and the manifest layout are defined once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

VARIANTS = {
    "install": "install.yaml",
    "ha": "ha/install.yaml",
    "namespace-install": "namespace-install.yaml",
    "core-install": "core-install.yaml",
}
MOVING_TAGS = ("stable", "latest")
RELEASE_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-rc(\d+))?$")
ARGOCD_IMAGE = "quay.io/argoproj/argocd"


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
        raw_url = env.get("ARGOCD_MIRROR_RAW_URL", defaults.raw_url)
        try:  # a typo in the template is bad input now, not a KeyError after the tag lookup
            probe = raw_url.format(ref="\0", path="\1")
        except (KeyError, IndexError, ValueError) as exc:
            problem: str | None = f"only {{ref}} and {{path}} ({type(exc).__name__}: {exc})"
        else:
            problem = None if probe.count("\0") == probe.count("\1") == 1 else "each of {ref} and {path} exactly once"
        if problem:  # without {ref} every commit is one URL (and one cache entry); without {path} every variant
            from validator.errors import InputError

            raise InputError(f"ARGOCD_MIRROR_RAW_URL {raw_url!r} is not a URL template with {problem}")
        return cls(
            git_url=env.get("ARGOCD_MIRROR_GIT_URL", defaults.git_url),
            raw_url=raw_url,
            cache_dir=Path(env.get("ARGOCD_MIRROR_CACHE", str(defaults.cache_dir))),
        )


def semver_key(tag: str) -> tuple[int, int, int, int]:
    """Order release tags; a final release sorts after its release candidates."""
    match = RELEASE_TAG.match(tag)
    if not match:
        return (-1, -1, -1, -1)
    major, minor, patch, rc = match.groups()
    return (int(major), int(minor), int(patch), int(rc) if rc else 1 << 30)
