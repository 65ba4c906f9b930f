"""Health assessment throughput: 10,000 mixed live objects. Target: >= 50,000 objects/s (assess), on 2 cores.

The mix is every §7 vector (all assessed kinds, healthy and not) plus the kinds a real install is mostly made of
(ConfigMaps, Secrets, RBAC: no health) and the pods of the v2.11.1 replay. Fail-fast observation is measured too
(it runs on every watch event), with no target of its own.

Run: `make bench` (or `.venv/bin/python -m pytest benchmarks/bench_health.py --benchmark-only`).
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

from tests.test_failfast_redis import broken_timeline
from tests.test_health_vectors import VECTORS
from validator.failfast import FailFast
from validator.health import assess, kstatus

N = 10_000
TARGET_PER_S = 50_000


def mixed_objects(n: int = N) -> list[dict[str, Any]]:
    plain = [{"apiVersion": "v1", "kind": k, "metadata": {"name": k.lower(), "namespace": "argocd"}}
             for k in ("ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding")]
    replay = [live for _, live in itertools.islice(broken_timeline(), 200)]
    pool = [v[1] for v in VECTORS] + plain + replay
    # Distinct dicts (deep copies), so no cache or identity trick can help: each assess reads a fresh object.
    return [copy.deepcopy(pool[i % len(pool)]) for i in range(n)]


def _rate(benchmark: Any, n: int) -> float:
    return n / benchmark.stats.stats.median


def test_assess_10k_mixed(benchmark) -> None:  # type: ignore[no-untyped-def]
    objects = mixed_objects()
    results = benchmark(lambda: [assess(o) for o in objects])
    assert len(results) == N
    assert {r.status for r in results} >= {None, *{v[2] for v in VECTORS}}
    rate = _rate(benchmark, N)
    benchmark.extra_info.update(objects=N, objects_per_s=round(rate))
    print(json.dumps(benchmark.extra_info))
    assert rate >= TARGET_PER_S


def test_assess_strict_10k_mixed(benchmark) -> None:  # type: ignore[no-untyped-def]
    objects = mixed_objects()
    benchmark(lambda: [assess(o, strict=True) for o in objects])
    benchmark.extra_info.update(objects=N, objects_per_s=round(_rate(benchmark, N)))
    print(json.dumps(benchmark.extra_info))
    assert _rate(benchmark, N) >= TARGET_PER_S


def test_failfast_observe_10k_events(benchmark) -> None:  # type: ignore[no-untyped-def]
    events = [(float(i), o) for i, o in enumerate(mixed_objects())]

    def feed() -> int:
        ff = FailFast()
        return sum(ff.observe(o, t) is not None for t, o in events)

    benchmark(feed)
    benchmark.extra_info.update(events=N, events_per_s=round(_rate(benchmark, N)))
    print(json.dumps(benchmark.extra_info))


def test_kstatus_10k_mixed(benchmark) -> None:  # type: ignore[no-untyped-def]
    objects = mixed_objects()
    benchmark(lambda: [kstatus(o, age_s=60) for o in objects])
    benchmark.extra_info.update(objects=N, objects_per_s=round(_rate(benchmark, N)))
    print(json.dumps(benchmark.extra_info))
