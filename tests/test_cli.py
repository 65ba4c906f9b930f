"""The dispatcher: one line and a gate exit code for every failure, and only the named command imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from validator import cli


def test_unwritable_artifacts_dir_is_could_not_validate(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    code = cli.main(["preflight", str(manifest), "--format", "json", "--output", str(blocker / "out.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("argocd-mirror: could not validate: ") and err.count("\n") == 1
    assert "Traceback" not in err and "internal error" not in err and str(blocker) in err


def test_unexpected_errors_are_one_line_exit_2(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    def boom(_: object) -> int:
        raise RuntimeError("bug")

    monkeypatch.setattr("validator.commands.resolve.run", boom)
    assert cli.main(["resolve", "x"]) == 2
    assert capsys.readouterr().err.startswith("argocd-mirror: could not validate: internal error: RuntimeError: bug")


def test_only_the_named_command_is_imported() -> None:
    code = ("import sys; from validator import cli; cli.build_parser(['preflight', 'x']); "
            "print('kubernetes' in sys.modules, 'validator.commands.validate' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert set(cli._modules_for(["--debug", "sweep"])) == {"validator.commands.sweep"}
    assert cli._modules_for(["--help"]) == cli.COMMAND_MODULES
