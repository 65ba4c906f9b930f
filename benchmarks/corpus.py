"""Preflight precision on the real corpus: every Argo CD release since v2.0, every variant.

Not part of the test suite (CI has no network and no clone of argo-cd). Run it yourself with a local clone:

    git clone --bare https://github.com/argoproj/argo-cd.git /tmp/argo-cd.git
    .venv/bin/python benchmarks/corpus.py /tmp/argo-cd.git [--since v2.0.0] [--jobs 2] [--json out.json]

For each release tag (release candidates included) and each variant the tag ships (install, ha,
namespace-install, core-install), it reads the manifest from the clone by tag, gives it the provenance
`argocd-mirror preflight vX.Y.Z` would (so the image checks compare against the tag), runs every check with the
variant's profile (`ha` for the HA manifests, else `default`; plus the client-side apply check, the only one
the apply mode changes) and prints the ERROR findings grouped by
signature (check plus reason with names and versions blanked) with the tags they hit. Every ERROR signature
must then be read with the manifest in front of you: an ERROR claims the consequence is certain.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from validator.candidate import Provenance, argocd_image_version
from validator.manifests import load_bundle
from validator.preflight import run_preflight, signature
from validator.profiles import default_profile_name, load_profile
from validator.releases import RELEASE_TAG, VARIANTS, semver_key

CLIENT_SIDE_CHECK = "client-side-apply-size"


def release_tags(repo: Path, since: str) -> list[str]:
    """Release tags (vX.Y.Z and -rcN) at or after `since`, oldest first."""
    out = subprocess.run(["git", "-C", str(repo), "tag", "--list", "v*"], capture_output=True, text=True, check=True)
    floor = semver_key(since)
    tags = [t for t in out.stdout.split() if RELEASE_TAG.match(t) and semver_key(t)[:3] >= floor[:3]]
    return sorted(tags, key=semver_key)


def manifest_at(repo: Path, tag: str, path: str) -> bytes | None:
    done = subprocess.run(["git", "-C", str(repo), "show", f"{tag}:manifests/{path}"], capture_output=True)
    return done.stdout if done.returncode == 0 else None


def run_one(job: tuple[str, str, str, str]) -> dict[str, Any]:
    """Preflight of one tag's variant, as `argocd-mirror preflight TAG --variant V` would run it."""
    repo, tag, variant, profile_name = job
    data = manifest_at(Path(repo), tag, VARIANTS[variant])
    if data is None:
        return {"tag": tag, "variant": variant, "absent": True}
    profile = load_profile(profile_name)
    started = time.perf_counter()
    try:
        bundle = load_bundle(data, source=f"{tag}:manifests/{VARIANTS[variant]}", namespace=profile.namespace)
        bundle.provenance = Provenance(
            spec=tag, source="tag", variant=variant, version=tag, commit=None, url=None, path=None,
            sha256=hashlib.sha256(data).hexdigest(), size=len(data), fetched_at="", image_version=None)
        bundle.provenance = Provenance(**{**bundle.provenance.to_dict(), "image_version": argocd_image_version(bundle)})
        findings = run_preflight(bundle, profile, profile.apply_mode)
        # apply mode changes one check only: what a team that applies client-side would be told, too
        findings += run_preflight(bundle, profile, "client-side", only=(CLIENT_SIDE_CHECK,))
    except Exception as exc:  # a could-not-check is a result too: the corpus must show it
        return {"tag": tag, "variant": variant, "crash": f"{type(exc).__name__}: {exc}"}
    return {
        "tag": tag, "variant": variant, "seconds": time.perf_counter() - started,
        "findings": [{"check": f.check, "severity": f.severity, "reason": f.reason} for f in findings],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, help="a local clone of argoproj/argo-cd (bare is fine)")
    parser.add_argument("--since", default="v2.0.0")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--severity", default="error", choices=("error", "warning", "info"))
    parser.add_argument("--json", type=Path, help="write every result here")
    args = parser.parse_args(argv)
    tags = release_tags(args.repo, args.since)
    jobs = [(str(args.repo), tag, variant, default_profile_name(variant)) for tag in tags for variant in VARIANTS]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run_one, jobs, chunksize=8))
    ran = [r for r in results if not r.get("absent")]
    crashed = [r for r in ran if "crash" in r]
    hits: dict[str, list[str]] = defaultdict(list)
    for result in ran:
        for finding in result.get("findings", []):
            if finding["severity"] == args.severity:
                key = f"[{finding['check']}] {signature(finding['reason'])[:220]}"
                hits[key].append(f"{result['tag']}/{result['variant']}")
    total = sum(len(v) for v in hits.values())
    print(f"{len(tags)} tags, {len(ran)} preflight runs in {time.perf_counter() - started:.0f} s, "
          f"{len(crashed)} could not check, {total} {args.severity} finding(s) in {len(hits)} signature(s)")
    for sig, where in sorted(hits.items(), key=lambda kv: -len(kv[1])):
        print(f"\n{len(where):4d}  {sig}\n      {_span(where)}")
    for result in crashed:
        print(f"\nCOULD NOT CHECK {result['tag']}/{result['variant']}: {result['crash']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def _span(where: list[str]) -> str:
    """'v2.5.0-rc1/ha .. v2.11.0/ha (109)': first and last hit, and a few in between."""
    shown = where if len(where) <= 6 else [*where[:3], "…", *where[-2:]]
    return ", ".join(shown)


if __name__ == "__main__":
    raise SystemExit(main())
