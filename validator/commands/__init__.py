"""Sub-commands of the argocd-mirror CLI, one module each (see validator.cli)."""

from __future__ import annotations

import argparse


def add_candidate_arguments(parser: argparse.ArgumentParser, *, default: str | None = "stable") -> None:
    """The candidate spec and how to read it, shared by every command that takes one."""
    if default is None:
        parser.add_argument("spec", metavar="SPEC",
                            help="stable, a release tag (v2.11.2), a URL, a local file or a kustomize directory")
    else:
        parser.add_argument("spec", metavar="SPEC", nargs="?", default=default,
                            help=f"stable, a tag (v2.11.2), a URL, a file or a kustomize dir (default {default})")
    parser.add_argument("--variant", default="install",
                        choices=["install", "ha", "namespace-install", "core-install"],
                        help="which upstream manifest of a release (default install)")
    parser.add_argument("--namespace", type=namespace_name,
                        help="namespace to install into (default: the profile's namespace, argocd unless it says; "
                             "resolve, which reads no profile: argocd)")


def add_acceptance_arguments(parser: argparse.ArgumentParser) -> None:
    """What a team may accept deliberately: the preflight errors it knows about and chose to live with."""
    parser.add_argument("--accept-image-version", action="append", metavar="VERSION", default=[],
                        help="accept a release whose manifests run Argo CD images of VERSION (e.g. v2.14.0's "
                             "v2.14.0-rc7): that error becomes a warning (repeatable)")


def accepted_waivers(args: argparse.Namespace) -> tuple[str, ...]:
    """The acceptances given on the command line, as the waivers findings carry."""
    from validator.preflight.references import IMAGE_VERSION_WAIVER

    return tuple(f"{IMAGE_VERSION_WAIVER}{version}" for version in args.accept_image_version)


def namespace_name(value: str) -> str:
    """--namespace as the API server will accept it: an RFC 1123 label, not a path or an empty string."""
    from validator.manifests import DNS_LABEL

    if not DNS_LABEL.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a namespace name (lower-case RFC 1123 label, e.g. argocd)")
    return value


def seconds(value: str) -> float:
    """A duration option: finite and positive (nan or inf would make a wait that never ends)."""
    import math

    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return number
