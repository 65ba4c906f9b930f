"""Loading the real v3.5.1 install.yaml (1.9 MB, 59 objects). Targets: <= 0.3 s and <= 200 MB peak RSS on 2 cores.

Run: `make bench` (or `.venv/bin/python -m pytest benchmarks/bench_manifests.py --benchmark-only`).
"""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.conftest import real_manifest
from validator.manifests import load_objects

TARGET_SECONDS = 0.3
TARGET_PEAK_RSS_MB = 200

# VmHWM (peak RSS of this process image): unlike ru_maxrss it is not inherited from the forking parent.
_RSS_PROBE = """
import re, sys
def peak_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
from validator.manifests import load_objects
before = peak_kb()
objs = load_objects(open(sys.argv[1], 'rb').read(), sys.argv[1])
print(len(objs), before, peak_kb())
"""


def test_load_v3_5_1_install(benchmark) -> None:  # type: ignore[no-untyped-def]
    data = real_manifest("v3.5.1/install.yaml").read_bytes()
    objects = benchmark(load_objects, data, "install.yaml")
    assert len(objects) == 59
    assert benchmark.stats.stats.median <= TARGET_SECONDS


def test_pyyaml_c_loader_for_comparison(benchmark) -> None:  # type: ignore[no-untyped-def]
    data = real_manifest("v3.5.1/install.yaml").read_bytes()
    docs = benchmark.pedantic(lambda: list(yaml.load_all(data, Loader=yaml.CSafeLoader)), rounds=3)
    assert len([d for d in docs if d]) == 59


def test_peak_rss_in_a_fresh_process(benchmark) -> None:  # type: ignore[no-untyped-def]
    path = real_manifest("v3.5.1/install.yaml")

    def probe() -> list[int]:
        out = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path)], capture_output=True, text=True,
                             check=True).stdout.split()
        return [int(x) for x in out]

    count, before_kb, peak_kb = benchmark.pedantic(probe, rounds=1)
    benchmark.extra_info.update(peak_rss_mb=round(peak_kb / 1024, 1), rss_before_load_mb=round(before_kb / 1024, 1))
    print(json.dumps(benchmark.extra_info))
    assert count == 59 and peak_kb / 1024 <= TARGET_PEAK_RSS_MB
