"""`argocd-mirror pin FILE --verdict verdict.json [--dry-run]`: move a pin to the version that passed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from validator.gate import PinPlan, apply_plan, plan_pin


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "pin", help="rewrite an Argo CD pin (Application, kustomization, install URL) to the validated version",
        description="Rewrite the Argo CD version pinned in FILE to the release a passing verdict.json validated. "
                    "Refuses unless the verdict passed and the tag still resolves to the exact sha256 tested.",
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="Application YAML, kustomization or any text file")
    parser.add_argument("--verdict", required=True, type=Path, help="verdict.json of a passing run")
    parser.add_argument("--dry-run", action="store_true", help="print the unified diff, change nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plan = plan_pin(args.file, args.verdict)
    where = ", ".join(f"line {s.line} ({s.kind}: {s.old})" for s in plan.sites)
    if not plan.changed:
        print(f"{args.file}: already pinned to {plan.version} ({where})")
        return 0
    if args.dry_run:
        print(f"{args.file}: would pin {plan.version} at {where}")
        print(plan.diff, end="")
        _note_untested_upgrades(plan)
        return 0
    apply_plan(plan)
    print(f"{args.file}: pinned {plan.version} at {where}")
    print(plan.diff, end="")
    _note_untested_upgrades(plan)
    return 0


def _note_untested_upgrades(plan: PinPlan) -> None:
    """A pass proves the fresh install; production upgrades from its pin, which only a --baseline run tests."""
    if plan.untested_upgrades:
        print(f"note: the verdict did not upgrade from {', '.join(plan.untested_upgrades)} (the pinned version it "
              f"replaces; its baseline was {plan.baseline or 'none'}): validate with --baseline to test that upgrade "
              "and the rollback", file=sys.stderr)
