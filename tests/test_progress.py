"""Progress on stderr: one block updated in place on a terminal, plain timestamped lines anywhere else, nothing with
--quiet (issue #15)."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path

import pytest
from rich.console import Console

from tests.apidouble.argocd import healthy_redis
from tests.test_e2e import closed_port, v2_11_1_file
from tests.test_watch import FAST, _installed, _slow_rollout, v2_11_2  # noqa: F401  (fixture)
from validator.cli import main
from validator.manifests import Bundle
from validator.progress import Progress
from validator.watch import wait_healthy

SUSPECT = ('Pod/argocd/argocd-redis-7d8f: init container secret-init failing (3 restarts): "dial tcp 10.96.0.1:443: '
           'i/o timeout"')
STATUS = {"counts": {"Degraded": 1, "Healthy": 51, "Missing": 1, "Progressing": 3}, "total": 56, "pending": 5,
          "slowest": "apps/Deployment/argocd/argocd-redis", "slowest_s": 41.6, "suspect": SUSPECT, "not_counted": [],
          "elapsed_s": 42.0, "timeout_s": 600.0,
          "line": "1 Degraded, 51 Healthy, 1 Missing, 3 Progressing; slowest: apps/Deployment/argocd/argocd-redis "
                  f"(42s); suspect: {SUSPECT}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120, color_system=None, highlight=False), out


def test_a_terminal_shows_one_block_with_counts_cause_and_deadline() -> None:
    console, out = terminal()
    clock = Clock()
    progress = Progress(console=console, clock=clock)
    assert progress.live and progress.status_every_s == 1.0
    progress("waiting for every object of v2.11.1 to be Healthy (timeout 600s)")
    progress.status({**STATUS, "elapsed_s": 5.0, "counts": {"Healthy": 10, "Missing": 46}})
    clock.now += 37
    progress.status(STATUS)
    progress.status({**STATUS, "final": True})
    progress.status(None)
    progress("FAIL: argocd-redis: init container secret-init failing")
    text = out.getvalue()
    frame = text[text.rindex("wait ended"):]  # the last frame stays on screen, the verdict line below it
    for shown in ("51 Healthy", "3 Progressing", "1 Degraded", "1 Missing", "apps/Deployment/argocd/argocd-redis (42s",
                  "cause so far", "init container secret-init failing", "42s of 600s, 558s left",
                  "5 of 56 objects not Healthy"):
        assert shown in " ".join(frame.split()), shown
    assert frame.index("51 Healthy") < frame.index("3 Progressing") < frame.index("1 Degraded")  # Argo CD's order
    assert "FAIL: argocd-redis" in frame.split("╯", 1)[1]
    assert "; suspect: " not in text  # the plain line is not printed on a terminal
    assert "\x1b[" in text  # drawn in place (cursor movement)


def test_elsewhere_each_status_is_todays_timestamped_line() -> None:
    out = io.StringIO()
    clock = Clock()
    progress = Progress(console=Console(file=out, width=500, highlight=False), clock=clock)
    assert not progress.live and progress.status_every_s is None
    clock.now += 42
    progress.status(STATUS)
    progress.status({**STATUS, "final": True})  # the verdict line follows: the final picture adds nothing
    progress.status(None)
    progress("FAIL: x")
    assert out.getvalue().splitlines() == [f"[   42s] {STATUS['line']}", "[   42s] FAIL: x"]
    assert "\x1b" not in out.getvalue()


def test_quiet_progress_says_nothing() -> None:
    console, out = terminal()
    progress = Progress(console=console, quiet=True)
    progress("resolving stable")
    progress.status(STATUS)
    progress.status(None)
    assert out.getvalue() == ""


def test_a_real_wait_prints_the_same_lines_through_progress(v2_11_2: Bundle) -> None:  # noqa: F811
    """Not a terminal: the lines of a wait with Progress are the summary lines of a plain callable, timestamped."""
    out = io.StringIO()
    progress = Progress(console=Console(file=out, width=2000, highlight=False))
    with _installed(v2_11_2, healthy_redis, partial(_slow_rollout, seconds=1.5)) as (_double, api):
        result = wait_healthy(api, v2_11_2, timeout_s=30, thresholds=FAST, progress=progress, progress_every_s=0.2)
    assert result.passed, result.root_cause
    lines = out.getvalue().splitlines()
    assert all(line.startswith("[") and "s] " in line for line in lines)
    assert any("Progressing; slowest: " in line for line in lines)
    assert lines[-1].split("] ", 1)[1].startswith("PASS: ")


def test_a_real_wait_on_a_terminal_draws_the_block(v2_11_2: Bundle) -> None:  # noqa: F811
    console, out = terminal()
    progress = Progress(console=console)
    with _installed(v2_11_2, healthy_redis, partial(_slow_rollout, seconds=1.5)) as (_double, api):
        result = wait_healthy(api, v2_11_2, timeout_s=30, thresholds=FAST, progress=progress, progress_every_s=5)
    assert result.passed, result.root_cause
    text = out.getvalue()
    assert "waiting: " in text and "Progressing" in text and "slowest" in text  # updated every second, not every 5
    final = text[text.rindex("wait ended: "):]
    assert f"all {len(v2_11_2)} objects Healthy" in final and f"{len(v2_11_2)} Healthy" in final
    assert final.split("╯", 1)[1].strip().split("] ", 1)[1].startswith("PASS: ")
    assert progress._live is None  # stopped: what follows is plain lines


@pytest.mark.parametrize("command", ["validate", "reproduce"])
def test_quiet_prints_only_the_verdict(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{closed_port()}")
    out = tmp_path / "out"
    assert main([command, str(v2_11_1_file(tmp_path)), "--artifacts", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    (line,) = captured.out.splitlines()
    assert line.startswith("FAIL ") and line == (out / "summary.md").read_text().splitlines()[0]
