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
from tests.test_cluster_kind import FAST, ready_node
from validator.cluster import mirror_cluster
from validator.cluster.lifecycle import Terminated, signals_deferred, termination_raises
from validator.cluster.tools import run
from validator.profiles import load_profile

RUNNER = """
import sys, time
from pathlib import Path
from validator.cluster import mirror_cluster
from validator.profiles import load_profile

try:
    with mirror_cluster(load_profile("default"), Path(sys.argv[1]), progress=lambda m: print(m, flush=True),
                        ready_timeout_s=10, ready_interval_s=0.05) as cluster:
        print("READY", cluster.name, flush=True)
        time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 60)
        if sys.argv[3:] == ["fail"]:  # the candidate failed: teardown exports the logs first
            cluster.mark_failed()
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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT],
                         ids=["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"])
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
    expected = "KeyboardInterrupt" if sig == signal.SIGINT else "Terminated"
    assert f"INTERRUPTED {expected}" in out
    deletes = fake_tools.calls("kind", "delete", "cluster")
    assert [d[d.index("--name") + 1] for d in deletes] == [name]
    assert name not in fake_tools.clusters()
    assert not fake_tools.calls("kind", "export")  # an interrupt is not a failure to diagnose


def test_sigterm_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with termination_raises():
        assert signal.getsignal(signal.SIGTERM) is not before
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is before


def test_signals_are_deferred_during_teardown_then_delivered() -> None:
    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt), signals_deferred(seen.append) as received:  # deferred, not dropped
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        seen.append("teardown finished")
    assert received == [signal.SIGINT] and "finishing teardown first" in seen[0]
    assert seen[-1] == "teardown finished"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(Terminated), termination_raises(), signals_deferred(seen.append):
        os.kill(os.getpid(), signal.SIGTERM)  # SIGTERM goes to the handler it was meant for: Terminated
        time.sleep(0.05)


def test_sigterm_while_a_failed_create_is_torn_down_stops_the_run(fake_tools: FakeTools,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """Not recorded and dropped: a session would go on to create its next cluster."""
    def progress(message: str) -> None:
        if message.startswith("deleting kind cluster"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)

    with ApiDouble(simulate=False) as double:
        double.create(ready_node("argocd-mirror-control-plane", ready=False))  # create() fails: nodes never Ready
        fake_tools.api_server(double.url)
        with pytest.raises(Terminated), mirror_cluster(load_profile("default"), tmp_path, progress=progress, **FAST):
            pytest.fail("create() should have failed")
    (name,) = [argv[argv.index("--name") + 1] for argv in fake_tools.calls("kind", "delete", "cluster")]
    assert name not in fake_tools.clusters()  # the teardown itself was finished first


def test_terminal_ctrl_c_during_kind_delete_cannot_half_delete(fake_tools: FakeTools, tmp_path: Path) -> None:  # noqa: F811
    """A terminal's Ctrl-C is SIGINT to the whole foreground process group, not just to us."""
    with ApiDouble(simulate=False) as double:
        double.create(ready_node("n"))
        fake_tools.api_server(double.url)
        fake_tools.setenv("FAKE_KIND_DELETE_SLEEP", "2")
        script = tmp_path / "runner.py"
        script.write_text(RUNNER)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run"), "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        try:
            wait_for(lambda: fake_tools.calls("kind", "delete", "cluster"))  # `kind delete` is running
            os.killpg(proc.pid, signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    name = fake_tools.calls("kind", "create")[0][3]
    assert name not in fake_tools.clusters(), out
    assert len(fake_tools.calls("kind", "delete", "cluster")) == 1
    assert "SIGINT received: finishing teardown first" in out
    assert proc.returncode == 130 and "INTERRUPTED KeyboardInterrupt" in out, out  # and then the run stops


def test_only_teardown_children_leave_our_process_group() -> None:
    argv = [sys.executable, "-c", "import os; print(os.getsid(0))"]
    with signals_deferred(lambda m: None):
        in_teardown = int(run(argv, timeout_s=30).stdout)
    assert in_teardown not in (os.getsid(0), 0)
    assert int(run(argv, timeout_s=30).stdout) == os.getsid(0)  # kind create: Ctrl-C must reach its children


# phase -> (the fake's sleep knob, the runner's arguments after run_dir); sleeps stay at 1 s
TEARDOWN_PHASES = {"during-kind-export-logs": ("FAKE_KIND_EXPORT_SLEEP", ["0", "fail"]),
                   "during-kind-delete": ("FAKE_KIND_DELETE_SLEEP", ["0"])}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["SIGTERM", "SIGINT", "SIGHUP"])
@pytest.mark.parametrize("phase", list(TEARDOWN_PHASES))
def test_signal_during_teardown_finishes_it_then_stops(fake_tools: FakeTools, tmp_path: Path, sig: int,  # noqa: F811
                                                        phase: str) -> None:
    """The fault table: a signal while `kind export logs` or `kind delete` runs is deferred, the teardown finishes
    (0 clusters left, the logs complete), then the run stops as interrupted (exit 130 from the runner)."""
    knob, args = TEARDOWN_PHASES[phase]
    with ApiDouble(simulate=False) as double:
        double.create(ready_node("n"))
        fake_tools.api_server(double.url)
        fake_tools.setenv(knob, "1")
        script = tmp_path / "runner.py"
        script.write_text(RUNNER)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run"), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        try:
            if phase == "during-kind-export-logs":
                wait_for(lambda: list(fake_tools.state.glob("export-started-*")))
            else:
                wait_for(lambda: fake_tools.calls("kind", "delete", "cluster"))
            proc.send_signal(sig)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    name = fake_tools.calls("kind", "create")[0][3]
    assert fake_tools.clusters() == {}, out  # 0 clusters left
    assert len(fake_tools.calls("kind", "delete", "cluster")) == 1
    assert f"{signal.Signals(sig).name} received: finishing teardown first" in out
    expected = "KeyboardInterrupt" if sig == signal.SIGINT else "Terminated"
    assert proc.returncode == 130 and f"INTERRUPTED {expected}" in out, out
    if phase == "during-kind-export-logs":  # the export was not cut short either
        assert f"cluster logs exported to {tmp_path / 'run' / 'kind-logs' / name}" in out
        assert (tmp_path / "run" / "kind-logs" / name / f"{name}-control-plane" / "journal.log").is_file()
