"""Sub-commands of the argocd-mirror CLI, one module each (see validator.cli)."""

from __future__ import annotations

import argparse
from typing import Any


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


def judged_findings(bundle: Any, baseline: Any, profile: Any, apply_mode: str, accepted: tuple[str, ...],
                    only: tuple[str, ...] | None = None) -> list[Any]:
    """Preflight's findings as preflight and validate report them: with a baseline, labelled new or also in the
    baseline, and joined by the team configuration's compat findings (new by nature; not with --check)."""
    from validator.preflight import compare_with_baseline, run_preflight

    findings = run_preflight(bundle, profile, apply_mode, only=only, accepted=accepted)
    if baseline is None:
        return findings
    from validator.compat import compat_findings

    compat = compat_findings(bundle, baseline) if only is None else []
    return compare_with_baseline(findings + compat, run_preflight(baseline, profile, apply_mode, only=only,
                                                                  accepted=accepted))


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


# -o/--output FORMAT and --output-file PATH, as kubectl spells them, for every command that renders a report.
# The old spellings still parse for one release, hidden from --help, each with a one-line note on stderr:
# --format X (-> -o X), --json (resolve; -> -o json), and --output/-o FILE when FILE is not a format name
# (-> --output-file FILE; only a value with a `/` or a `.` is taken for a file, a bare word is a bad format).
# A format name always means the format: write a file literally called `json` with --output-file json.
def deprecated(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    import sys

    sys.stderr.write(f"{parser.prog}: note: {old} is deprecated and will be removed in the next release; "
                     f"use {new}\n")


class _OutputFormat(argparse.Action):
    """-o/--output FORMAT; a value that is no format name is the old --output FILE (where that existed)."""

    def __init__(self, *args: Any, formats: tuple[str, ...] = (), legacy_file: bool = False, **kwargs: Any) -> None:
        self.formats, self.legacy_file = formats, legacy_file
        super().__init__(*args, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        value = str(values)
        formats = self.formats
        if value in formats:
            setattr(namespace, self.dest, value)
        elif self.legacy_file and ("/" in value or "." in value):  # looks like a path: the old --output FILE
            deprecated(parser, f"{option_string} FILE", f"--output-file {value}")
            namespace.output_file = value
        else:  # a bare word (`-o yaml`) is a mistyped format, never silently a file of that name
            hint = "; write a file with --output-file PATH" if self.legacy_file else ""
            parser.error(f"argument -o/--output: invalid choice: {value!r} (choose from {', '.join(formats)}){hint}")


class _DeprecatedFormat(argparse.Action):
    """--format X (hidden): -o X, with a note."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        deprecated(parser, f"{option_string} {values}", f"-o {values}")
        setattr(namespace, self.dest, values)


class _DeprecatedJson(argparse.Action):
    """--json (hidden, resolve): -o json, with a note."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        deprecated(parser, str(option_string), "-o json")
        setattr(namespace, self.dest, "json")


def add_output_arguments(parser: argparse.ArgumentParser, formats: tuple[str, ...], *,
                         legacy_format: bool = False, legacy_file: bool = False, legacy_json: bool = False) -> None:
    """-o/--output FORMAT (default text) into args.output_format, --output-file PATH into args.output_file."""
    parser.add_argument(
        "-o", "--output", dest="output_format", metavar="FORMAT", default="text", action=_OutputFormat,
        formats=formats, legacy_file=legacy_file, help=f"report format: {'|'.join(formats)} (default text)")
    parser.add_argument("--output-file", metavar="PATH", default=None,
                        help="write the report to PATH instead of stdout (the one-line PASS/FAIL summary still "
                             "goes to stderr)")
    if legacy_format:
        parser.add_argument("--format", dest="output_format", choices=formats, action=_DeprecatedFormat,
                            help=argparse.SUPPRESS)
    if legacy_json:
        parser.add_argument("--json", dest="output_format", nargs=0, action=_DeprecatedJson, help=argparse.SUPPRESS)


def emit_report(args: argparse.Namespace, report: str, summary: str) -> None:
    """The report to --output-file or stdout; the one-line summary to stderr unless a text report on stdout
    already ends with it."""
    import sys
    from pathlib import Path

    from validator.files import atomic_write

    if args.output_file:
        atomic_write(Path(args.output_file), (report.rstrip("\n") + "\n").encode())
    else:
        sys.stdout.write(report.rstrip("\n") + "\n")
    if args.output_file or args.output_format != "text":
        sys.stderr.write(summary.rstrip("\n") + "\n")
