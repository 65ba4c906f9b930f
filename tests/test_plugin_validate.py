"""`argocd-mirror validate` pieces that need no cluster: scenario choice, the pytest command line, bad input."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import pytest

from tests.kubeconfigs import write_kubeconfig
from validator.cli import build_parser, main
from validator.commands.validate import SCENARIOS, choose_scenarios, pytest_args
from validator.errors import InputError
from validator.packaged import scenarios_dir


def test_every_scenario_module_exists() -> None:
    for module, _ in SCENARIOS.values():
        assert (scenarios_dir() / module).is_file()


def test_default_scenarios(tmp_path: Path) -> None:
    assert choose_scenarios(None, None) == ["fresh-install", "app-smoke"]
    assert choose_scenarios(None, "v3.4.2", "stable") == [
        "fresh-install", "upgrade", "rollback", "self-managed", "app-smoke"]
    local = tmp_path / "install.yaml"
    local.write_text("{}")
    assert "self-managed" not in choose_scenarios(None, "v3.4.2", str(local))  # no git tag to track
    assert choose_scenarios(["ha", "fresh-install", "ha"], None) == ["fresh-install", "ha"]


def test_baseline_scenarios_need_a_baseline() -> None:
    with pytest.raises(InputError, match="upgrade, rollback need --baseline"):
        choose_scenarios(["rollback", "upgrade"], None)


def test_pytest_args_use_the_clash_free_spelling(tmp_path: Path) -> None:
    args = build_parser().parse_args(["validate", "v3.5.1", "--baseline", "v3.4.2", "--provider", "existing",
                                      "--kubeconfig", "k", "--context", "c", "--scenario", "upgrade"])
    args.keep_cluster = args.keep_cluster or "never"
    argv = pytest_args(args, ["upgrade"], tmp_path)
    assert argv[0] == str(scenarios_dir() / "test_upgrade.py")
    assert (pairs := dict(itertools.pairwise(argv)))["-c"] == str(scenarios_dir() / "gate.ini")  # no outside ini
    assert "--junitxml" not in pairs  # junit.xml is rendered from the verdict (validator.report.render_junit)
    assert (pairs["--mirror-candidate"], pairs["--mirror-baseline"]) == ("v3.5.1", "v3.4.2")
    assert (pairs["--mirror-provider"], pairs["--mirror-kubeconfig"], pairs["--mirror-context"]) == (
        "existing", "k", "c")
    assert not any(a in argv for a in ("--candidate", "--kubeconfig", "--keep-cluster"))


def test_reproduce_keeps_the_cluster() -> None:
    args: argparse.Namespace = build_parser().parse_args(["reproduce", "v3.5.1"])
    assert (args.keep_cluster, args.reproduce) == ("always", True)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reproduce"])  # SPEC is required: reproduce what?


@pytest.mark.parametrize("argv, message", [
    (["validate", "--scenario", "upgrade"], "need --baseline"),
    (["validate", "--profile", "nope"], "unknown profile 'nope'"),
    (["validate", "--provider", "existing"], "needs both --kubeconfig FILE and --context NAME"),
    # checked before the candidate is fetched (`stable` would need the network) and preflighted
    (["validate", "--provider", "existing", "--kubeconfig", "/nonexistent/kubeconfig", "--context", "ci"],
     "/nonexistent/kubeconfig: cannot read kubeconfig"),
    (["validate", "--provider", "existing", "--kubeconfig", "{kubeconfig}", "--context", "prod"],
     "context 'prod' not found in"),
])
def test_bad_input_is_one_line_exit_2(argv: list[str], message: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:1", "ci-throwaway", "t")
    argv = [arg.format(kubeconfig=kubeconfig) for arg in argv]
    assert main([*argv, "--artifacts", str(tmp_path)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ERROR stable: could not validate: ") and message in out[0]
    assert "Traceback" not in "\n".join(out)
