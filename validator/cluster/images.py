"""The one pinned table: which kind release we drive and the node image digest per Kubernetes minor.

A node image tag is not tied to a kind release: each release's notes list the images built *for it*
and say to use the @sha256 digest (a tag-only image may predate kindnet's NetworkPolicy support or
need a newer containerd). So the kind binary and the digests are pinned together, here and nowhere else.

Source: kind v0.33.0 release notes, "Images pre-built for this release" (kubernetes-sigs/kind PR #4248);
each digest below was cross-checked against several independent public repositories that quote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from validator.errors import EnvironmentNotReady, InputError

KIND_RELEASE = "v0.33.0"
# kind enforces NetworkPolicy out of the box only from v0.24.0 (kindnetd + kube-network-policies).
MIN_KIND = (0, 24, 0)
# Images built for v0.32.0+ need kind >= v0.32.0 (containerd 2.x upgrade, v0.32.0 release notes).
MIN_KIND_FOR_PINNED_IMAGES = (0, 32, 0)

NODE_IMAGES: dict[str, str] = {
    "1.37": "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
    "1.36": "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
    "1.35": "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
    "1.34": "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
}

# Calico for the `calico` profile, installed as the tigera docs say since v3.30: the operator's CRDs first
# (tigera-operator.yaml no longer carries them, calico PR #9518), Established before anything uses them,
# then the operator, then the Installation and friends (custom-resources.yaml, podSubnet 192.168.0.0/16).
CALICO_VERSION = "v3.31.3"
_CALICO = f"https://raw.githubusercontent.com/projectcalico/calico/{CALICO_VERSION}/manifests/"
CALICO_CRDS = _CALICO + "operator-crds.yaml"
CALICO_MANIFESTS = (CALICO_CRDS, _CALICO + "tigera-operator.yaml", _CALICO + "custom-resources.yaml")

_VERSION = re.compile(r"\bv?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.+-]+))?")


@dataclass(frozen=True)
class KindVersion:
    major: int
    minor: int
    patch: int
    pre: str = ""

    @property
    def core(self) -> tuple[int, int, int]:
        return self.major, self.minor, self.patch

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}" + (f"-{self.pre}" if self.pre else "")


def parse_kind_version(output: str) -> KindVersion:
    """`kind version` prints 'kind v0.33.0 go1.25.1 linux/amd64' (or only the semver with -q)."""
    text = output.strip()
    match = _VERSION.search(text.split(" go", 1)[0] if text.startswith("kind ") else text)
    if not match:
        raise EnvironmentNotReady(f"could not understand `kind version` output {text[:80]!r}")
    return KindVersion(int(match[1]), int(match[2]), int(match[3]), match[4] or "")


def check_kind_version(version: KindVersion) -> None:
    """Refuse a kind that cannot reproduce the redis outage (no NetworkPolicy) or run the pinned images."""
    fmt = "v{}.{}.{}".format
    if version.core < MIN_KIND:
        raise EnvironmentNotReady(
            f"kind {version} is too old: kind enforces NetworkPolicy only from {fmt(*MIN_KIND)} "
            f"(kindnetd with kube-network-policies), so a candidate like Argo CD v2.11.1 whose NetworkPolicy "
            f"blocks its own init container would wrongly pass; install kind {KIND_RELEASE} "
            f"(https://github.com/kubernetes-sigs/kind/releases/tag/{KIND_RELEASE})")
    if version.core < MIN_KIND_FOR_PINNED_IMAGES or (version.core == MIN_KIND_FOR_PINNED_IMAGES and version.pre):
        raise EnvironmentNotReady(
            f"kind {version} cannot run the pinned node images (built for kind {KIND_RELEASE}, which need "
            f"kind >= {fmt(*MIN_KIND_FOR_PINNED_IMAGES)}); install kind {KIND_RELEASE}")


def node_image(kubernetes_version: str) -> str:
    """The digest-pinned node image for a profile's 'major.minor'."""
    minor = ".".join(kubernetes_version.split(".")[:2])
    try:
        return NODE_IMAGES[minor]
    except KeyError:
        raise InputError(
            f"no node image pinned for Kubernetes {kubernetes_version} with kind {KIND_RELEASE}: "
            f"choose one of {', '.join(sorted(NODE_IMAGES))}") from None
