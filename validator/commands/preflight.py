"""`argocd-mirror preflight SPEC`: static checks of a candidate against a profile, no cluster needed.

Exit 0 when no finding is an error, 1 when any is (the candidate would fail), 2 when it could not be
checked (bad spec, profile or flag; raised as MirrorError and printed as one line by validator.cli).
"""

from __future__ import annotations

import argparse
from typing import Any

from validator.candidate import resolve
from validator.commands import (
    accepted_waivers,
    add_acceptance_arguments,
    add_candidate_arguments,
    add_output_arguments,
    emit_report,
    judged_findings,
)
from validator.errors import ExitCode
from validator.preflight import checks, has_error
from validator.preflight.output import RENDERERS, Report, summary_line
from validator.profiles import APPLY_MODES, default_profile_name, load_profile


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "preflight", help="static checks of a candidate before any cluster exists",
        description="Check a candidate statically against a profile: NetworkPolicy egress vs pods that need the "
                    "API, client-side apply annotation size, scheduling on the profile's nodes, schema and API "
                    "removals, references and images. Exit 0: no error; 1: an error; 2: could not check.",
    )
    add_candidate_arguments(parser, default=None)
    parser.add_argument("--profile", help="profile name or path (default: ha for --variant ha, else default)")
    parser.add_argument("--apply-mode", choices=APPLY_MODES, default=None,
                        help="how the candidate will be applied (default: the profile's applyMode)")
    add_output_arguments(parser, tuple(RENDERERS), legacy_format=True, legacy_file=True)
    parser.add_argument("--check", action="append", metavar="NAME", dest="checks",
                        help=f"run only this check (repeatable): {', '.join(checks())}")
    parser.add_argument("--baseline", metavar="SPEC",
                        help="the release production runs now: label every finding new or also in the baseline, and "
                             "check the candidate's Argo CD ConfigMaps against the upgrade (docs/compat.md)")
    add_acceptance_arguments(parser)
    parser.add_argument("--verbose", "-v", action="store_true", help="text: show info findings too")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile or default_profile_name(args.variant))
    apply_mode = args.apply_mode or profile.apply_mode
    namespace = args.namespace or profile.namespace
    bundle = resolve(args.spec, variant=args.variant, namespace=namespace)
    baseline = resolve(args.baseline, variant=args.variant, namespace=namespace) if args.baseline else None
    accepted = accepted_waivers(args)
    only = tuple(args.checks) if args.checks else None
    findings = judged_findings(bundle, baseline, profile, apply_mode, accepted, only)
    shown = Report(findings, bundle, profile, apply_mode, baseline, accepted, args.verbose)
    emit_report(args, RENDERERS[args.output_format](shown), f"preflight {summary_line(shown)}")
    return int(ExitCode.CANDIDATE_FAILED if has_error(findings) else ExitCode.PASS)
