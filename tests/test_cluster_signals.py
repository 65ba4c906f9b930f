"""Ctrl-C and SIGTERM mid-run (a real subprocess): the fake kind must record the delete of our cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.apidouble import ApiDouble
from tests.fakes import FakeTools, fake_tools  # noqa: F401
from validator.cluster.lifecycle import Terminated, signals_deferred, sigterm_raises

RUNNER = """
import sys, time
from pathlib import Path
from validator.cluster import mirror_cluster
from validator.profiles import load_profile

try:
    with mirror_cluster(load_profile("default"), Path(sys.argv[1]), progress=lambda m: print(m, flush=True),
                        ready_timeout_s=10, ready_interval_s=0.05) as cluster:
        print("READY", cluster.name, flush=True)
        time.sleep(60)
except KeyboardInterrupt as exc:
    print("INTERRUPTED", type(exc).__name__, flush=True)
    sys.exit(130)
"""


def wait_for(predicate: Any, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the subprocess")
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("when", ["during-kind-create", "while-in-use"])
def test_signal_mid_run_deletes_the_cluster(fake_tools: FakeTools, tmp_path: Path, sig: int, when: str) -> None:  # noqa: F811
    with ApiDouble(simulate=False) as double:
        double.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                       "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        fake_tools.api_server(double.url)
        if when == "during-kind-create":
            fake_tools.setenv("FAKE_KIND_CREATE_SLEEP", "30")
        script = tmp_path / "runner.py"
        script.write_text(RUNNER)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run")], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        try:
            if when == "during-kind-create":
                wait_for(lambda: list(fake_tools.state.glob("create-started-*")))
            else:
                assert proc.stdout is not None
                line = ""
                while not line.startswith("READY"):
                    line = proc.stdout.readline()
                    assert line, "runner ended before the cluster was ready"
            name = fake_tools.calls("kind", "create")[0][3]
            assert name in fake_tools.clusters()
            proc.send_signal(sig)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, out
    expected = "Terminated" if sig == signal.SIGTERM else "KeyboardInterrupt"
    assert f"INTERRUPTED {expected}" in out
    deletes = fake_tools.calls("kind", "delete", "cluster")
    assert [d[d.index("--name") + 1] for d in deletes] == [name]
    assert name not in fake_tools.clusters()
    assert not fake_tools.calls("kind", "export")  # an interrupt is not a failure to diagnose


def test_sigterm_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_raises():
        assert signal.getsignal(signal.SIGTERM) is not before
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is before


def test_signals_are_deferred_during_teardown() -> None:
    seen: list[str] = []
    with signals_deferred(seen.append) as received:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert received == [signal.SIGINT] and "finishing teardown first" in seen[0]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
