"""`argocd-mirror sweep`: only our prefix, only older than the threshold, never the user's kubeconfig."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import FakeTools, RecordingServer, fake_tools, production  # noqa: F401
from validator.cli import main
from validator.cluster.sweep import decide, parse_created, parse_duration
from validator.errors import InputError

SHARED_PREFIX = {"argocd-mirror-dev", "argocd-mirror-staging-2", "argocd-mirror-0123abcd9"}


def seed(fake: FakeTools) -> None:
    fake.add_cluster("argocd-mirror-01d01d01", age_s=3 * 3600)
    fake.add_cluster("argocd-mirror-01d01d02", age_s=2 * 3600 + 5, nodes=("control-plane", "worker"))
    fake.add_cluster("argocd-mirror-f2e5a001", age_s=10 * 60)
    fake.add_cluster("team-prod-mirror", age_s=30 * 86400)
    fake.add_cluster("argocd-mirrorx", age_s=30 * 86400)
    fake.add_cluster("argocd-mirror-dev", age_s=30 * 86400)  # a team's own clusters that share our prefix
    fake.add_cluster("argocd-mirror-staging-2", age_s=30 * 86400)
    fake.add_cluster("argocd-mirror-0123abcd9", age_s=30 * 86400)  # one hex digit too many
    fake.add_cluster("kind", age_s=30 * 86400)


def test_deletes_only_our_prefix_and_only_older(fake_tools: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(fake_tools)
    assert main(["sweep", "--older-than", "2h"]) == 0
    deleted = [c[c.index("--name") + 1] for c in fake_tools.calls("kind", "delete", "cluster")]
    assert deleted == ["argocd-mirror-01d01d01", "argocd-mirror-01d01d02"]
    assert set(fake_tools.clusters()) == {"argocd-mirror-f2e5a001", "team-prod-mirror", "argocd-mirrorx", "kind",
                                       *SHARED_PREFIX}
    out = capsys.readouterr().out
    assert "deleted argocd-mirror-01d01d01 (age 3h00m)" in out
    assert "kept argocd-mirror-f2e5a001 (age 10m < 2h)" in out
    assert "team-prod" not in out
    # ages come from the control-plane containers, asked of Docker by name
    inspected = [c[-1] for c in fake_tools.calls("docker", "inspect")]
    assert sorted(inspected) == ["argocd-mirror-01d01d01-control-plane", "argocd-mirror-01d01d02-control-plane",
                                 "argocd-mirror-f2e5a001-control-plane"]


def test_dry_run_deletes_nothing(fake_tools: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(fake_tools)
    assert main(["sweep", "--older-than", "1h", "--dry-run"]) == 0
    assert not fake_tools.calls("kind", "delete")
    assert len(fake_tools.clusters()) == 9
    assert capsys.readouterr().out.count("would delete") == 2


def test_zero_threshold_takes_all_of_ours(fake_tools: FakeTools) -> None:  # noqa: F811
    seed(fake_tools)
    assert main(["sweep", "--older-than", "0"]) == 0
    assert set(fake_tools.clusters()) == {"team-prod-mirror", "argocd-mirrorx", "kind", *SHARED_PREFIX}


def test_nothing_to_sweep(fake_tools: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["sweep"]) == 0
    assert "no argocd-mirror-<8 hex digits> clusters found" in capsys.readouterr().out


def test_docker_down_is_exit_2_with_remedy(fake_tools: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(fake_tools)
    fake_tools.fail("docker-down")
    assert main(["sweep"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("argocd-mirror sweep: could not sweep: Docker engine not reachable")
    assert "start the Docker engine" in err and len(err.strip().splitlines()) == 1
    assert not fake_tools.calls("kind", "delete")


def test_failed_delete_is_exit_2(fake_tools: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(fake_tools)
    fake_tools.fail("delete-error")
    assert main(["sweep"]) == 2
    assert "could not delete 2 cluster(s)" in capsys.readouterr().err


def test_bad_duration_is_one_line_exit_2(fake_tools: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["sweep", "--older-than", "soon"]) == 2
    assert "not a duration: 'soon'" in capsys.readouterr().err


def test_sweep_never_touches_ambient_kubeconfig(fake_tools: FakeTools, production: RecordingServer,  # noqa: F811
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KUBECONFIG and HOME point at "production": no request reaches it, no kind call may use it."""
    home = tmp_path / "home"
    ambient = production.kubeconfig(home / ".kube" / "config")
    monkeypatch.setenv("KUBECONFIG", str(ambient))
    monkeypatch.setenv("HOME", str(home))
    before = ambient.read_text()
    seed(fake_tools)
    assert main(["sweep", "--older-than", "0"]) == 0
    assert production.requests == []
    assert ambient.read_text() == before
    for argv in fake_tools.calls("kind", "delete"):
        kubeconfig = argv[argv.index("--kubeconfig") + 1]
        assert not kubeconfig.startswith(str(home))
    assert all(e["kubeconfig_env"] is None for e in fake_tools.entries())


@pytest.mark.parametrize("text, seconds", [("2h", 7200), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("0", 0),
                                           ("1d", 86400), ("0.5h", 1800)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "h2", "2 hours", "-1h", "2h and",
                                  "\u0665h", "\uff11h", "1h1h", "30m1h", "9" * 100_000 + "h"])  # were accepted
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_duration(text)


def test_parse_created_nanoseconds() -> None:
    assert parse_created('"2026-11-28T00:18:22.123456789Z"') == dt.datetime(2026, 11, 28, 0, 18, 22, 123456,
                                                                          tzinfo=dt.UTC)
    assert parse_created("2026-11-28T01:18:22+01:00") == dt.datetime(2026, 11, 28, 0, 18, 22, tzinfo=dt.UTC)


def test_decide_is_generated_name_and_age_only() -> None:
    decisions = decide({"argocd-mirror-0000000a": 7200.0, "argocd-mirror-0000000b": 7199.0,
                        "argocd-mirror-0000000c": None, "x-argocd-mirror-0000000d": 1e9, "argocd-mirror-dev": 1e9,
                        "argocd-mirror-0000000E": 1e9}, 7200)
    assert [(d.name, d.action) for d in decisions] == [
        ("argocd-mirror-0000000a", "delete"), ("argocd-mirror-0000000b", "keep"),
        ("argocd-mirror-0000000c", "unknown-age")]


def test_ctrl_c_stops_the_sweep_between_deletes_never_halfway(fake_tools: FakeTools, tmp_path: Path) -> None:  # noqa: F811
    """A terminal's Ctrl-C reaches the whole process group: `kind delete` must finish the cluster it is deleting
    (a half-deleted one is worse than either), and the sweep then stops as interrupted."""
    import os
    import signal
    import subprocess
    import sys
    import time

    fake_tools.add_cluster("argocd-mirror-01d01d01", age_s=3 * 3600)
    fake_tools.add_cluster("argocd-mirror-01d01d02", age_s=3 * 3600)
    fake_tools.setenv("FAKE_KIND_DELETE_SLEEP", "1")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "validator.cli", "sweep", "--older-than", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not fake_tools.calls("kind", "delete", "cluster") and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(fake_tools.calls("kind", "delete", "cluster")) == 1, out  # stopped after the first delete
    assert len(fake_tools.clusters()) == 1, out  # which finished: no half-deleted cluster
    assert proc.returncode == 2 and "interrupted" in out, out



# ---------------------------------------------------------------------------------------------------------
# --orphans: by owner marker (validator/cluster/owner.py), not by age
# ---------------------------------------------------------------------------------------------------------


def _marker(name: str, **fields: object) -> None:
    from validator.cluster import owner

    path = owner.marker_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cluster": name, **owner.me(), **fields}))


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_orphans_deletes_a_killed_runs_cluster_and_spares_a_live_one(
        fake_tools: FakeTools, capsys: pytest.CaptureFixture[str], dead_pid: int) -> None:  # noqa: F811
    from validator.cluster import owner

    fake_tools.add_cluster("argocd-mirror-dead0001", age_s=60)  # killed run: marker with a dead pid
    _marker("argocd-mirror-dead0001", pid=dead_pid)
    fake_tools.add_cluster("argocd-mirror-11fe0001", age_s=60)  # live run: this pytest process
    _marker("argocd-mirror-11fe0001", pid=os.getpid())
    fake_tools.add_cluster("argocd-mirror-e15e0001", age_s=60)  # another host's run: not ours to judge
    _marker("argocd-mirror-e15e0001", pid=dead_pid, host="some-other-host")
    fake_tools.add_cluster("argocd-mirror-0ced0001", age_s=30 * 86400)  # no marker (an older version's): left alone
    fake_tools.add_cluster("argocd-mirror-6e970001", age_s=60)  # kept on purpose by a run that has exited
    _marker("argocd-mirror-6e970001", pid=dead_pid, kept=True)
    fake_tools.add_cluster("argocd-mirror-dev", age_s=60)  # never touched, even with a dead owner's marker
    _marker("argocd-mirror-dev", pid=dead_pid)
    _marker("argocd-mirror-a0e00001", pid=dead_pid)  # no cluster any more, owner gone: the marker is forgotten
    _marker("argocd-mirror-c0ea0001", pid=os.getpid())  # no cluster yet, owner alive (still creating it): kept
    assert main(["sweep", "--orphans"]) == 0
    deleted = [c[c.index("--name") + 1] for c in fake_tools.calls("kind", "delete", "cluster")]
    assert deleted == ["argocd-mirror-dead0001"]
    assert not owner.marker_path("argocd-mirror-dead0001").exists()  # its marker goes with it
    assert owner.marker_path("argocd-mirror-11fe0001").exists()
    assert set(fake_tools.clusters()) == {"argocd-mirror-11fe0001", "argocd-mirror-e15e0001", "argocd-mirror-0ced0001",
                                          "argocd-mirror-6e970001", "argocd-mirror-dev"}
    out = capsys.readouterr().out
    assert f"deleted argocd-mirror-dead0001 (owner pid {dead_pid} is gone)" in out
    assert f"kept argocd-mirror-11fe0001 (owner pid {os.getpid()} is alive)" in out
    assert "kept argocd-mirror-e15e0001 (owned by a run on host 'some-other-host', not this one)" in out
    assert "kept argocd-mirror-0ced0001 (no owner marker: left to --older-than)" in out
    assert "kept argocd-mirror-6e970001 (kept on purpose" in out
    assert "argocd-mirror-dev" not in out
    assert "forgot 1 owner marker(s) of clusters already gone: argocd-mirror-a0e00001" in out
    assert not owner.marker_path("argocd-mirror-a0e00001").exists()
    assert owner.marker_path("argocd-mirror-c0ea0001").exists()
    assert not fake_tools.calls("docker", "inspect")  # age plays no part


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc to tell whose a live pid is")
def test_orphans_a_pid_reused_by_another_program_or_a_previous_boot_is_gone(
        fake_tools: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    from validator.cluster import owner

    stranger = subprocess.Popen(["sleep", "30"])  # alive, but not argocd-mirror nor pytest
    try:
        fake_tools.add_cluster("argocd-mirror-5ee00001", age_s=60)
        _marker("argocd-mirror-5ee00001", pid=stranger.pid)
        fake_tools.add_cluster("argocd-mirror-b0070001", age_s=60)  # our own pid, but recorded before a reboot
        _marker("argocd-mirror-b0070001", pid=os.getpid(), boot_id="00000000-0000-0000-0000-000000000000")
        assert main(["sweep", "--orphans", "--dry-run"]) == 0
    finally:
        stranger.kill()
        stranger.wait()
    assert not fake_tools.calls("kind", "delete")
    out = capsys.readouterr().out
    assert (f"would delete argocd-mirror-5ee00001 (owner pid {stranger.pid} is gone (the pid now belongs to another "
            "program))") in out
    if owner.boot_id():
        assert f"would delete argocd-mirror-b0070001 (owner pid {os.getpid()} ran before this host rebooted)" in out
