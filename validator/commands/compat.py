"""`argocd-mirror compat --baseline V CANDIDATE [--config PATH]...`: will the team's own Argo CD configuration
survive the upgrade? Offline: the tables ship with argocd-mirror (validator.compat).

CANDIDATE and --baseline are release tags (read from the table, nothing is fetched) or anything `resolve`
accepts (a kustomize overlay, a file, a URL), whose version is its provenance's. Exit 0 when no finding is an
error, 1 when the team sets a key the candidate no longer reads (or a rule's error holds), 2 on bad input.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from validator.commands import add_candidate_arguments, add_output_arguments, emit_report
from validator.errors import ExitCode
from validator.manifests import Bundle
from validator.preflight import NEW, has_error
from validator.preflight.output import RENDERERS, Report, summary_line


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "compat", help="check the team's argocd-cm, argocd-cmd-params-cm and argocd-rbac-cm against an upgrade",
        description="Compare the team's Argo CD configuration (the ConfigMaps of the candidate overlay and/or "
                    "--config) with what the candidate release reads and defaults, and with the upgrade guides' "
                    "detection rules. Offline. Exit 0: no error; 1: a key the candidate no longer reads; "
                    "2: bad input.",
    )
    add_candidate_arguments(parser, default=None)
    parser.add_argument("--baseline", metavar="SPEC", required=True,
                        help="the release production runs now: a tag (v2.14.0) or anything resolve accepts")
    parser.add_argument("--config", action="append", type=Path, default=[], metavar="PATH",
                        help="a YAML file of ConfigMaps or a directory of them (repeatable); overrides the "
                             "candidate's ConfigMaps key by key")
    parser.add_argument("--candidate-version", metavar="TAG",
                        help="the candidate's release when its provenance does not say (an overlay with images "
                             "pinned by digest)")
    add_output_arguments(parser, tuple(RENDERERS), legacy_format=True, legacy_file=True)
    parser.add_argument("--verbose", "-v", action="store_true", help="text: show info findings too")
    parser.set_defaults(func=run)


class TableRelease:
    """The provenance of a version given as a bare tag: read from the table, no manifest behind it."""

    def __init__(self, version: str) -> None:
        self.version = version

    @property
    def label(self) -> str:
        return f"{self.version} (compatibility table)"


def _side(spec: str, args: argparse.Namespace) -> tuple[Bundle | None, str | None]:
    """A bundle to read (a path, URL or `stable`), or just the version a bare release tag names."""
    from validator.candidate import classify

    if classify(spec) == "tag":
        return None, spec
    from validator.candidate import resolve

    return resolve(spec, variant=args.variant, namespace=args.namespace or "argocd"), None


def run(args: argparse.Namespace) -> int:
    from validator.compat import compat_findings, team_config
    from validator.profiles import load_profile

    candidate, candidate_tag = _side(args.spec, args)
    baseline, baseline_tag = _side(args.baseline, args)
    config = team_config(candidate, args.config)
    findings = compat_findings(candidate, baseline, strict=True, config=config,
                               candidate_version=args.candidate_version or candidate_tag,
                               baseline_version=baseline_tag)
    # Every compat finding is about the step from the baseline: new by construction.
    findings = [replace(f, baseline=NEW) for f in findings]
    # The report's "candidate": its bundle plus the --config ConfigMaps (so findings point at the team's files).
    namespace = candidate.namespace if candidate is not None else (args.namespace or "argocd")
    shown = Bundle([*(candidate or ()), *config.objects], namespace=namespace)
    shown.provenance = candidate.provenance if candidate is not None else TableRelease(
        args.candidate_version or candidate_tag or "")
    against = baseline if baseline is not None else Bundle([], namespace=namespace)
    if baseline is None:
        against.provenance = TableRelease(baseline_tag or "")
    report = Report(findings, shown, load_profile("default"), "server-side", against, (), args.verbose)
    text = RENDERERS[args.output_format](report)
    if args.output_format == "text":  # the renderer's header speaks of preflight and the profile: say what this is
        _, _, rest = text.partition("\n")
        text = f"compat {report.label}: the team's Argo CD configuration, compared with {report.baseline_label}\n{rest}"
    emit_report(args, text, f"compat {summary_line(report)}")
    return int(ExitCode.CANDIDATE_FAILED if has_error(findings) else ExitCode.PASS)
