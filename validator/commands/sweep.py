"""`argocd-mirror sweep [--older-than 2h | --orphans] [--dry-run]`: delete leaked mirror clusters, and only those."""

from __future__ import annotations

import argparse
from typing import Any

from validator.cluster.kind import NAME_PREFIX
from validator.cluster.sweep import format_age, parse_duration, sweep
from validator.cluster.tools import stderr_progress
from validator.errors import EnvironmentNotReady


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "sweep", help="delete leaked mirror clusters (only names runs generate) older than a threshold",
        description=f"Delete kind clusters named {NAME_PREFIX}<8 hex digits> (the names runs generate) whose "
                    "control-plane container is older than --older-than (age from the Docker engine's creation "
                    "time). Other clusters, argocd-mirror-dev included, are never touched.",
    )
    parser.add_argument("--older-than", default="2h", metavar="DURATION",
                        help="only clusters at least this old (e.g. 2h, 90m, 1h30m, 0 for all; default 2h)")
    parser.add_argument("--orphans", action="store_true",
                        help="instead of by age: delete clusters whose owning run is gone on this host (killed, "
                             "crashed), spare those whose run is alive; clusters without an owner marker are left "
                             "to --older-than")
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    threshold = parse_duration(args.older_than)
    result = sweep(threshold, args.dry_run, stderr_progress, orphans=args.orphans)
    if not result.decisions:
        print(f"no {NAME_PREFIX}<8 hex digits> clusters found")
    for d in result.decisions:
        if args.orphans:
            verb = "kept" if d.action != "delete" else "would delete" if args.dry_run else (
                "deleted" if d.name in result.deleted else "FAILED to delete")
            print(f"{verb} {d.name} ({d.why})")
            continue
        age = format_age(d.age_s) if d.age_s is not None else "unknown age"
        if d.action == "delete":
            verb = "would delete" if args.dry_run else ("deleted" if d.name in result.deleted else "FAILED to delete")
            print(f"{verb} {d.name} (age {age})")
        elif d.action == "keep":
            print(f"kept {d.name} (age {age} < {args.older_than})")
        else:
            print(f"kept {d.name} ({age}: no control-plane container to date it)")
    if result.forgotten:
        print(f"forgot {len(result.forgotten)} owner marker(s) of clusters already gone: {', '.join(result.forgotten)}")
    if result.errors:
        raise EnvironmentNotReady(f"could not delete {len(result.errors)} cluster(s): {'; '.join(result.errors)}")
    return 0
