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
    code = cli.main(["preflight", str(manifest), "-o", "json", "--output-file", str(blocker / "out.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("argocd-mirror preflight: could not check: ") and err.count("\n") == 1
    assert "Traceback" not in err and "internal error" not in err and str(blocker) in err


def test_unexpected_errors_are_one_line_exit_2(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    def boom(_: object) -> int:
        raise RuntimeError("bug")

    monkeypatch.setattr("validator.commands.resolve.run", boom)
    assert cli.main(["resolve", "x"]) == 2
    assert capsys.readouterr().err.startswith(
        "argocd-mirror resolve: could not resolve: internal error: RuntimeError: bug")


def test_only_the_named_command_is_imported() -> None:
    code = ("import sys; from validator import cli; cli.build_parser(['preflight', 'x']); "
            "print('kubernetes' in sys.modules, 'validator.commands.validate' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert set(cli._modules_for(["--debug", "sweep"])) == {"validator.commands.sweep"}
    assert cli._modules_for(["--help"]) == cli.COMMAND_MODULES


@pytest.mark.parametrize(("argv", "expected"), [
    (["preflight", "x.yaml", "-o", "xml"],
     "argocd-mirror preflight: error: argument -o/--output: invalid choice: 'xml' (choose from text, json"),
    (["preflight", "x.yaml", "--format", "xml"],  # the deprecated spelling still checks its value
     "argocd-mirror preflight: error: argument --format: invalid choice: 'xml'"),
    (["resolve", "x.yaml", "-o", "sarif"], "argocd-mirror resolve: error: argument -o/--output: invalid choice"),
    (["validate", "--scenario", "nope"], "argocd-mirror validate: error: argument --scenario: invalid choice"),
    (["bogus"], "argocd-mirror: error: argument COMMAND: invalid choice: 'bogus'"),
    (["preflight"], "argocd-mirror preflight: error: the following arguments are required: SPEC"),
    (["preflight", "x.yaml", "--namespace", "A B/../x"], "argocd-mirror preflight: error: argument --namespace: "
                                                        "'A B/../x' is not a namespace name"),
    (["resolve", "x.yaml", "--namespace", ""], "argocd-mirror resolve: error: argument --namespace: '' is not"),
    # nan or inf made the wait's deadline unreachable
    *[(["validate", "--wait-timeout", bad], f"argocd-mirror validate: error: argument --wait-timeout: {bad!r} is not "
       "a positive number of seconds") for bad in ("nan", "inf", "-5", "1e999", "0", "soon")],
])
def test_usage_errors_are_one_line_exit_2(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    """argparse printed its whole usage block (8 lines for a bad --format): one line, pointing at --help."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith(expected) and err.rstrip().endswith("--help)")


def test_a_newline_in_a_file_name_does_not_split_the_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    assert cli.main(["preflight", str(manifest), "--output-file", f"{blocker}/a\nb/report.json"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "a\\nb" in err and "Not a directory" in err


def test_a_bad_raw_url_template_is_bad_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                             tmp_path) -> None:
    """ARGOCD_MIRROR_RAW_URL='{nope}' was an internal KeyError."""
    for template in ("{nope}", "{ref", "{0}"):
        monkeypatch.setenv("ARGOCD_MIRROR_RAW_URL", template)
        assert cli.main(["resolve", "v3.5.1"]) == 2
        err = capsys.readouterr().err
        assert f"ARGOCD_MIRROR_RAW_URL {template!r} is not a URL template with only {{ref}}" in err
        assert len(err.splitlines()) == 1
    # without {ref} every commit is one URL and one cache entry: `stable` recorded a new commit over the old bytes;
    # without {path}, --variant ha fetched install.yaml
    for template in ("file:///mirror/{path}", "https://m.example/{ref}/install.yaml", "https://m/{ref}/{path}/{ref}"):
        monkeypatch.setenv("ARGOCD_MIRROR_RAW_URL", template)
        assert cli.main(["resolve", "v3.5.1"]) == 2
        assert f"{template!r} is not a URL template with each of {{ref}} and {{path}} exactly once" in \
            capsys.readouterr().err
