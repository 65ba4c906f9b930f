"""Benchmark: `argocd-mirror compat` on a typical team overlay, and on bare release tags with --config.

Run as a script (prints the figures of one run):
    .venv/bin/python benchmarks/bench_compat.py [--runs 5]
or with pytest-benchmark:
    .venv/bin/pytest benchmarks/bench_compat.py --benchmark-only

Target (issue #20): <= 0.3 s wall for the CLI on a typical overlay, offline. The overlay is v3.5.1's install.yaml with
the team's argocd-cm, argocd-cmd-params-cm and argocd-rbac-cm patched in, as `kubectl kustomize` renders it: the CLI
reads a rendered file exactly as it reads a kustomize directory's output, and kubectl's own rendering time (seconds
for a 1.9 MB base) is kubectl's, not ours. Timed as fresh processes with a bytecode cache, like bench_preflight.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_preflight import (  # the same process timing as the preflight benchmark
    breakdown,
    preflight_argv,
    pyyaml_floor_argv,
    wall,
)

UPSTREAM = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "upstream" / "argo-cd"
BASE = UPSTREAM / "v3.5.1" / "install.yaml"
TARGET_SECONDS = 0.3
TEAM = {
    "argocd-cm": {"url": "https://argocd.example.com", "application.resourceTrackingMethod": "annotation",
                  "dex.config": "connectors: []\n", "resource.customizations.health.example.com_Widget": "hs = {}\n"},
    "argocd-cmd-params-cm": {"server.insecure": "true", "controller.status.processors": "50",
                             "server.login.attempts.expiration": "12h"},
    "argocd-rbac-cm": {"policy.default": "role:readonly", "policy.csv": "g, my-org:platform, role:admin\n"},
}


def rendered_overlay(directory: Path) -> Path:
    """v3.5.1 install.yaml with the TEAM's data merged into its three ConfigMaps: what `kubectl kustomize` prints
    for an overlay that patches them (every other document unchanged)."""
    import yaml

    documents = BASE.read_text().split("\n---\n")
    for index, text in enumerate(documents):
        if "kind: ConfigMap" in text and (name := yaml.safe_load(text)["metadata"]["name"]) in TEAM:
            body = yaml.safe_load(text)
            body["data"] = {**(body.get("data") or {}), **TEAM[name]}
            documents[index] = yaml.safe_dump(body, sort_keys=True).rstrip("\n")
    path = directory / "rendered-overlay.yaml"
    path.write_text("\n---\n".join(documents))
    return path


def team_config(directory: Path) -> Path:
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
            for name, data in TEAM.items()]
    path = directory / "team.yaml"
    path.write_text("\n---\n".join(json.dumps(doc) for doc in docs))  # JSON is YAML
    return path


def overlay_argv(overlay: Path) -> list[str]:
    return [sys.executable, "-m", "validator.cli", "compat", "--baseline", "v3.4.7", str(overlay), "--format", "json"]


def tags_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "validator.cli", "compat", "--baseline", "v2.14.0", "v3.0.0", "--config",
            str(config), "--format", "json"]


def in_process(overlay: Path) -> dict[str, float]:
    """Where the time goes in one process: imports, resolving (YAML loading), the tables and the comparison."""
    start = time.perf_counter()
    from validator.candidate import resolve
    from validator.compat import compat_findings, load_rules, load_table
    imported = time.perf_counter()
    bundle = resolve(str(overlay))
    resolved = time.perf_counter()
    load_table()
    load_rules()
    tables = time.perf_counter()
    compat_findings(bundle, None, baseline_version="v3.4.7", strict=True)
    compared = time.perf_counter()
    return {"imports": imported - start, "resolve": resolved - imported, "tables": tables - resolved,
            "compare": compared - tables}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if not BASE.is_file():
        print(f"manifest not found: {BASE}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        overlay, config = rendered_overlay(Path(tmp)), team_config(Path(tmp))
        on_overlay = wall(overlay_argv(overlay), args.runs, ok=(0, 1))
        on_tags = wall(tags_argv(config), args.runs, ok=(0, 1))
        preflight = wall(preflight_argv(overlay), args.runs, ok=(0, 1))
        floor = wall(pyyaml_floor_argv(overlay), args.runs)
        parts = breakdown(overlay, "bench_compat")
    print(f"compat, rendered overlay (v3.5.1, {BASE.stat().st_size} bytes) vs v3.4.7: median "
          f"{statistics.median(on_overlay):.3f} s  min {min(on_overlay):.3f} s ({len(on_overlay)} runs; target <= "
          f"{TARGET_SECONDS} s)")
    print(f"compat, bare tags v2.14.0 -> v3.0.0 with --config: median {statistics.median(on_tags):.3f} s  "
          f"min {min(on_tags):.3f} s")
    print(f"same run, same file: preflight CLI median {statistics.median(preflight):.3f} s; PyYAML floor (start, "
          f"import, libyaml events) median {statistics.median(floor):.3f} s")
    print("in-process breakdown: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in parts.items()))
    return 0


# pytest-benchmark entry points (run explicitly: pytest benchmarks/bench_compat.py)


def _base_or_skip() -> None:
    import pytest

    if not BASE.is_file():
        pytest.skip(f"real manifest not present: {BASE}")


def test_bench_compat_cli_on_an_overlay(benchmark: Any, tmp_path: Path) -> None:
    _base_or_skip()
    argv = overlay_argv(rendered_overlay(tmp_path))
    benchmark.pedantic(wall, args=(argv, 1), kwargs={"ok": (0, 1)}, rounds=5, iterations=1)


def test_bench_compat_cli_on_tags(benchmark: Any, tmp_path: Path) -> None:
    benchmark.pedantic(wall, args=(tags_argv(team_config(tmp_path)), 1), kwargs={"ok": (0, 1)}, rounds=5,
                       iterations=1)


def test_bench_compat_comparison_only(benchmark: Any, tmp_path: Path) -> None:
    from validator.candidate import resolve
    from validator.compat import compat_findings

    _base_or_skip()
    bundle = resolve(str(rendered_overlay(tmp_path)))
    findings = benchmark(compat_findings, bundle, None, baseline_version="v3.4.7", strict=True)
    # v3.4.7 already ignored server.login.attempts.expiration (dropped in v3.1.0): neither release reads it
    assert [(f.severity, f.evidence.get("key")) for f in findings] == [("info", "server.login.attempts.expiration")]


if __name__ == "__main__":
    sys.exit(main())
