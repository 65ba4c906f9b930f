"""Benchmark: API requests and watcher CPU while waiting on N objects receiving M status changes.

Run: .venv/bin/python benchmarks/bench_watch.py [--objects 500] [--changes 2000] [--seconds 4]
 or: make bench (pytest-benchmark: one round at 500 objects / 2000 changes over 10 s, targets asserted)

Drives the real wait_healthy() over HTTP against the API double (simulator off): the objects are applied with
install(), then a driver thread writes status changes straight into the double's store (not counted as
requests) spread over `--seconds`, the last change of each object making it Healthy. Reported: requests the
wait made (by verb), watch streams, CPU seconds of the watcher (main loop + one thread per kind, thread CPU
time), and that as a share of one core over the wall time of the wait. Targets (issue #7): requests do not grow
with the object count (one list+watch per kind plus reconnects) and CPU < 5 % of one core.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.apidouble import ApiDouble
from validator.install import install
from validator.manifests import Bundle, KubeObject
from validator.watch import wait_healthy


def make_bundle(n: int) -> Bundle:
    objects = []
    for i in range(n):
        kind = "StatefulSet" if i % 5 == 4 else "Deployment"
        name = f"w{i:04d}"
        objects.append(KubeObject({
            "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}},
            namespace="bench"))
    return Bundle(objects, namespace="bench")


def status_steps(kind: str, steps: int) -> list[dict[str, Any]]:
    """`steps` statuses, only the last Healthy (Argo CD rules for Deployment/StatefulSet)."""
    out: list[dict[str, Any]] = []
    for s in range(1, steps + 1):
        ready = 1 if s == steps else 0
        if kind == "Deployment":
            progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": f"{s}"}
            out.append({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": ready,
                        "availableReplicas": ready, "conditions": [progressing]})
        else:
            out.append({"observedGeneration": 1, "replicas": 1, "readyReplicas": ready, "currentReplicas": 1,
                        "updatedReplicas": 1, "currentRevision": "r1", "updateRevision": "r1",
                        "availableReplicas": ready, "collisionCount": s})
    return out


def run(objects: int, changes: int, seconds: float, chaos: bool = False) -> dict[str, Any]:
    bundle = make_bundle(objects)
    steps = max(1, changes // objects)
    with ApiDouble(simulate=False, namespaces=("default", "bench")) as double:
        api = double.api_client()
        install(api, bundle)
        double.reset_counts()
        store = double.store
        plan = [(obj, status) for s in range(steps) for obj in bundle.objects
                for status in [status_steps(obj.kind, steps)[s]]]

        def drive() -> None:
            time.sleep(0.3)  # let the watches start
            pause = seconds / len(plan)
            for i, (obj, status) in enumerate(plan):
                rt = store.type_of_kind("apps/v1", obj.kind)
                assert rt is not None
                with store.lock:
                    live = store.get(rt, "bench", obj.name)
                    assert live is not None
                    store.replace(rt, {**live, "status": status}, status_only=True)
                if i % 10 == 9:
                    time.sleep(pause * 10)

        driver = threading.Thread(target=drive, daemon=True)
        if chaos:  # two dropped streams and one compaction (410) mid-run: requests grow by the reconnects only
            now = double.elapsed()
            double.at(now + seconds * 0.3, lambda: double.drop_watches())
            double.at(now + seconds * 0.5, lambda: double.expire_watches())
            double.at(now + seconds * 0.7, lambda: double.drop_watches(abrupt=True))
        driver.start()
        result = wait_healthy(api, bundle, timeout_s=seconds + 60)
        driver.join()
        return {"objects": objects, "changes": len(plan), "chaos": chaos, "passed": result.passed,
                "wall_s": round(result.elapsed_s, 3), "cpu_s": round(result.cpu_s, 3),
                "cpu_share_of_one_core": f"{100 * result.cpu_s / result.elapsed_s:.2f} %",
                "requests": double.request_count(), "by_verb": {v: double.request_count(v) for v in ("list", "watch",
                                                                                                  "get")},
                "watch_streams": result.watches, "relists": result.relists, "verdict_after_last_change_s": round(
                    result.elapsed_s - (result.last_change_s or 0), 3)}


def test_watch_500_objects_2000_changes(benchmark: Any) -> None:
    """Targets: requests independent of the object count; watcher CPU < 5 % of one core (changes over 10 s)."""
    small = run(50, 200, 2.0)
    big = benchmark.pedantic(run, args=(500, 2000, 10.0), rounds=1, iterations=1)
    benchmark.extra_info.update(big)
    assert small["passed"] and big["passed"]
    assert big["requests"] == small["requests"] == 2 * 4  # one list + one watch per kind (4 kinds), no reconnects
    assert big["cpu_s"] / big["wall_s"] < 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--chaos", action="store_true", help="also run with dropped watches and a 410 mid-run")
    args = parser.parse_args()
    for chaos in (False, True) if args.chaos else (False,):
        for n in sorted({50, args.objects}):
            changes = args.changes if n == args.objects else args.changes * n // args.objects
            print(run(n, changes, args.seconds, chaos))


if __name__ == "__main__":
    main()
