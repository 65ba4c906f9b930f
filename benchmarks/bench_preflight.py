"""Benchmark: `argocd-mirror preflight` on Argo CD v3.5.1 install.yaml vs `kubernetes-validate` on the same file.

Run as a script (prints both figures side by side, measured in the same run):
    .venv/bin/python benchmarks/bench_preflight.py [--runs 5] [--manifest PATH]
or with pytest-benchmark:
    .venv/bin/pytest benchmarks/bench_preflight.py --benchmark-only

Targets: the CLI, all checks on, <= 0.3 s wall (issue #14; #3 asked <= 0.5 s and >= 20x kubernetes-validate).
Both tools are timed as fresh processes, so start-up and imports count, as they do for a user. Each
gets one untimed warm-up run with a bytecode cache, as an installed tool has: a development checkout
run with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

UPSTREAM = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "upstream" / "argo-cd"
MANIFEST = UPSTREAM / "v3.5.1" / "install.yaml"
BIN = Path(sys.executable).parent


def preflight_argv(manifest: Path) -> list[str]:
    return [sys.executable, "-m", "validator.cli", "preflight", str(manifest), "-o", "json"]


def kubernetes_validate_argv(manifest: Path) -> list[str]:
    tool = shutil.which("kubernetes-validate", path=str(BIN)) or shutil.which("kubernetes-validate")
    if tool is None:
        raise SystemExit("kubernetes-validate is not installed (pip install kubernetes-validate)")
    return [tool, "--kubernetes-version", "1.35", "--strict", "--quiet", str(manifest)]


# The least any PyYAML-based tool can do with the file: start Python, import PyYAML, run libyaml's
# event parser over it, build nothing. What it costs bounds the speed-up any such tool can reach.
_PYYAML_FLOOR = ("import sys; from yaml._yaml import CParser; "
                 "get = CParser(open(sys.argv[1], encoding='utf-8').read()).get_event\n"
                 "while get() is not None: pass")


def pyyaml_floor_argv(manifest: Path) -> list[str]:
    return [sys.executable, "-c", _PYYAML_FLOOR, str(manifest)]


_PYCACHE = tempfile.mkdtemp(prefix="argocd-mirror-bench-pyc-")


def installed_env() -> dict[str, str]:
    """The environment of an installed tool: bytecode is cached (here under a private prefix)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": _PYCACHE}


def wall(argv: list[str], runs: int, ok: tuple[int, ...] = (0,)) -> list[float]:
    """Wall seconds of `runs` fresh processes, after one untimed warm-up that fills the bytecode cache."""
    env = installed_env()
    times = []
    for attempt in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, timeout=600, check=False, env=env)
        if attempt:
            times.append(time.perf_counter() - start)
        if proc.returncode not in ok:
            raise SystemExit(f"{argv[0]} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return times


def synthetic_bundle(workloads: int) -> Any:
    """A bundle at the loader's document limit scale: per workload a ServiceAccount, Role, RoleBinding,
    ConfigMap, Deployment and egress NetworkPolicy (6 objects), so per-pod lookups must not be quadratic."""
    import yaml

    from validator.manifests import load_bundle

    docs: list[dict[str, Any]] = []
    rbac = "rbac.authorization.k8s.io"
    for i in range(workloads):
        docs += [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa{i}"}},
            {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": {"name": f"r{i}"},
             "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]},
            {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": {"name": f"rb{i}"},
             "roleRef": {"apiGroup": rbac, "kind": "Role", "name": f"r{i}"},
             "subjects": [{"kind": "ServiceAccount", "name": f"sa{i}"}]},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}"}, "data": {"a": "b"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"d{i}"},
             "spec": {"selector": {"matchLabels": {"app": f"d{i}"}}, "template": {
                 "metadata": {"labels": {"app": f"d{i}"}},
                 "spec": {"serviceAccountName": f"sa{i}", "volumes": [{"name": "c", "configMap": {"name": f"cm{i}"}}],
                          "containers": [{"name": "c", "image": "busybox:1.36"}]}}}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": f"np{i}"},
             "spec": {"podSelector": {"matchLabels": {"app": f"d{i}"}}, "policyTypes": ["Egress"],
                      "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}},
        ]
    return load_bundle(yaml.safe_dump_all(docs).encode())


def checks_on(bundle: Any) -> float:
    from validator.preflight import run_preflight
    from validator.profiles import load_profile

    start = time.perf_counter()
    run_preflight(bundle, load_profile("default"))
    return time.perf_counter() - start


def in_process(manifest: Path) -> dict[str, float]:
    """Where the preflight time goes, inside one process: imports, YAML loading, the checks (cold and warm)."""
    start = time.perf_counter()
    from validator.candidate import resolve
    from validator.preflight import run_preflight
    from validator.profiles import load_profile
    imported = time.perf_counter()
    bundle = resolve(str(manifest))
    loaded = time.perf_counter()
    profile = load_profile("default")
    run_preflight(bundle, profile)
    cold = time.perf_counter()
    run_preflight(bundle, profile)
    warm = time.perf_counter()
    return {"imports": imported - start, "load_yaml": loaded - imported, "checks_cold": cold - loaded,
            "checks_warm": warm - cold}


def breakdown(manifest: Path, module: str = "bench_preflight") -> dict[str, float]:
    """MODULE's in_process() in a fresh interpreter with the bytecode cache, as the timed CLI runs had."""
    code = (f"import json, sys; sys.path.insert(0, sys.argv[1]); from {module} import in_process; "
            "from pathlib import Path; print(json.dumps(in_process(Path(sys.argv[2]))))")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(manifest)],
                         capture_output=True, text=True, check=True, env=installed_env(), timeout=300)
    return {k: float(v) for k, v in json.loads(out.stdout).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    args = parser.parse_args(argv)
    if not args.manifest.is_file():
        print(f"manifest not found: {args.manifest}", file=sys.stderr)
        return 2
    ours = wall(preflight_argv(args.manifest), args.runs)
    theirs = wall(kubernetes_validate_argv(args.manifest), max(1, args.runs // 2 + 1))
    floor = statistics.median(wall(pyyaml_floor_argv(args.manifest), args.runs))
    parts = breakdown(args.manifest)
    ours_med, theirs_med = statistics.median(ours), statistics.median(theirs)
    print(f"manifest: {args.manifest} ({args.manifest.stat().st_size} bytes)")
    print(f"argocd-mirror preflight (CLI, all checks): median {ours_med:.3f} s  min {min(ours):.3f} s  "
          f"({len(ours)} runs; target <= 0.3 s)")
    print(f"kubernetes-validate --strict -k 1.35     : median {theirs_med:.3f} s  min {min(theirs):.3f} s  "
          f"({len(theirs)} runs)")
    print(f"speed-up vs kubernetes-validate: CLI {theirs_med / ours_med:.1f}x, checks alone (warm) "
          f"{theirs_med / parts['checks_warm']:.0f}x (target >= 20x)")
    print(f"PyYAML floor (start, import, libyaml events; nothing built): median {floor:.3f} s, "
          f"{theirs_med / floor:.1f}x faster than kubernetes-validate; ours takes "
          f"{1000 * (ours_med - floor):.0f} ms more")
    print("in-process breakdown: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in parts.items()))
    for workloads in (160, 1600):
        print(f"synthetic bundle, {workloads * 6} objects: checks {checks_on(synthetic_bundle(workloads)):.3f} s")
    return 0


# pytest-benchmark entry points (run explicitly: pytest benchmarks/bench_preflight.py)


def _manifest_or_skip() -> Path:
    import pytest

    if not MANIFEST.is_file():
        pytest.skip(f"real manifest not present: {MANIFEST}")
    return MANIFEST


def test_bench_preflight_cli(benchmark: Any) -> None:
    manifest = _manifest_or_skip()
    benchmark.pedantic(wall, args=(preflight_argv(manifest), 1), rounds=5, iterations=1)


def test_bench_preflight_checks_only(benchmark: Any) -> None:
    from validator.candidate import resolve
    from validator.preflight import run_preflight
    from validator.profiles import load_profile

    bundle = resolve(str(_manifest_or_skip()))
    benchmark(run_preflight, bundle, load_profile("default"))


def test_bench_preflight_checks_10k_objects(benchmark: Any) -> None:
    from validator.preflight import run_preflight
    from validator.profiles import load_profile

    bundle = synthetic_bundle(1600)
    benchmark.pedantic(run_preflight, args=(bundle, load_profile("default")), rounds=3, iterations=1)


def test_bench_kubernetes_validate_cli(benchmark: Any) -> None:
    manifest = _manifest_or_skip()
    benchmark.pedantic(wall, args=(kubernetes_validate_argv(manifest), 1), rounds=2, iterations=1)


if __name__ == "__main__":
    sys.exit(main())
