"""`argocd-mirror resolve SPEC`: what exactly a candidate spec is, right now."""

from __future__ import annotations

import argparse
import json
from typing import Any

from validator.candidate import resolve
from validator.commands import add_candidate_arguments, add_output_arguments, emit_report


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "resolve", help="resolve a candidate to a concrete version with provenance",
        description="Resolve SPEC to a concrete version: tag, commit, URL, sha256 and the objects it holds.",
    )
    add_candidate_arguments(parser, default=None)
    add_output_arguments(parser, ("text", "json"), legacy_json=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bundle = resolve(args.spec, variant=args.variant, namespace=args.namespace or "argocd")
    report = {**bundle.provenance.to_dict(), "objects": len(bundle), "kinds": bundle.kind_counts()}
    prov = bundle.provenance
    head = f"{prov.label}  sha256:{prov.sha256}  {len(bundle)} objects"
    if args.output_format == "json":
        text = json.dumps(report, indent=2)
    else:
        keys = ("source", "variant", "version", "commit", "url", "path", "image_version", "fetched_at")
        text = "\n".join([head, *(f"  {key:<14}{report[key]}" for key in keys if report.get(key))])
    emit_report(args, text, f"resolved {head}")
    return 0
