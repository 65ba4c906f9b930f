"""`argocd-mirror pin` on hostile pin files and verdicts: every one ends fast, as one line and exit 2.

The refusals here all come before upstream is asked anything (no pin, another variant, a bad verdict), so no
test needs the network; sizes are kept just big enough to show the old failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from validator import gate
from validator.cli import main
from validator.errors import CandidateFailed, InputError
from validator.gate import MAX_FILE_BYTES, find_pins, leftovers, passing_release
from validator.report import ScenarioResult, Status, Verdict, read_verdict, write_verdict

PROV = {
    "spec": "stable", "source": "stable", "variant": "install", "version": "v3.5.1",
    "commit": "109ca7c5e3b4c3f1c0f3e8b1c1a2b3c4d5e6f708", "url": None, "path": None, "sha256": "a" * 64,
    "size": 10, "fetched_at": "2026-11-28T00:00:00+00:00", "image_version": "v3.5.1",
}
URL = "https://raw.githubusercontent.com/argoproj/argo-cd/v3.4.0/manifests/install.yaml"
# An Application for the ha variant: the install verdict below refuses it before anything is fetched.
HA_APPLICATION = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
spec:
  source:
    repoURL: https://github.com/argoproj/argo-cd
    targetRevision: v3.4.0
    path: manifests/ha/cluster-install
"""


def alias_bomb(levels: int) -> str:
    """Each level a list of nine aliases of the one before: 9**levels mappings once aliases are followed."""
    lines = ["a0: &a0 [" + ", ".join(["{repoURL: x, name: quay.io/argoproj/argocd, newTag: v1.0.0}"] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def passing_verdict(tmp_path: Path, status: Status = Status.PASS, root_cause: str | None = None,
                    **prov: str) -> Path:
    scenario = ScenarioResult("fresh-install", Status.PASS if status == Status.PASS else Status.FAIL, 1.0)
    verdict = Verdict(status=status, spec="stable", candidate={**PROV, **prov}, scenarios=[scenario],
                      root_cause=root_cause, started_at="t0", finished_at="t1")
    write_verdict(verdict, tmp_path / "run", step_summary=False)
    return tmp_path / "run" / "verdict.json"


def pin(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> str:
    """stderr of `pin` on TEXT with an install verdict, which must be exit 2 and a single line."""
    path = tmp_path / "pin.yaml"
    path.write_text(text)
    assert main(["pin", str(path), "--verdict", str(passing_verdict(tmp_path)), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_an_alias_is_walked_once() -> None:
    """Old: every alias re-walked its anchor's whole subtree (exponential); now each node is visited once."""
    (document,) = yaml.compose_all(alias_bomb(3), Loader=yaml.SafeLoader)
    assert len(list(gate._mapping_nodes(document))) == 1 + 9  # the top mapping and a0's nine, not 1 + 9**3


def test_an_alias_bomb_in_the_pin_file_ends_at_the_real_pin(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    err = pin(tmp_path, HA_APPLICATION + "---\n" + alias_bomb(12), capsys)  # 9**12 walks before: a hang
    assert "pin.yaml:6: it pins the ha manifests but the verdict validated the install variant" in err
    assert len(leftovers(alias_bomb(12), "v3.5.1")) == 1 + 9  # a0's line and its nine newTags, each once


def test_line_numbers_do_not_rescan_the_text_per_pin() -> None:
    """Old: each pin counted the newlines before it again, quadratic (58 s for a file of URLs)."""

    class Scanned(str):
        """A str that tallies the characters its count() scans."""

        scanned = 0

        def count(self, sub: str, start: int | None = None, end: int | None = None) -> int:  # type: ignore[override]
            Scanned.scanned += len(self[start:end])
            return super().count(sub, start, end)

    text = Scanned(f"{URL}\n" * 2000)
    sites = find_pins(text)
    assert [site.line for site in sites] == list(range(1, 2001))
    assert Scanned.scanned <= 2 * len(text)  # old: ~1000 times the text


def test_the_pin_file_limit_is_one_mib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Composing YAML costs ~120x its size: a pin file is small, so 1 MiB (old: 5 MiB, 44 s and ~1 GB)."""
    err = pin(tmp_path, HA_APPLICATION + "#" * (MAX_FILE_BYTES + 1 - len(HA_APPLICATION)), capsys)
    assert "over the 1048576-byte pin file limit" in err
    err = pin(tmp_path, HA_APPLICATION + "#" * (MAX_FILE_BYTES - len(HA_APPLICATION)), capsys)
    assert "it pins the ha manifests" in err  # exactly at the limit is still read


@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_deep_nesting_is_not_yaml_and_the_url_pins_still_count(loader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Old: RecursionError from the pure-Python composer; libyaml stops at 1000 levels by itself."""
    if loader == "python":
        monkeypatch.setattr(gate, "_Loader", yaml.SafeLoader)
    text = "x: " + "[" * 1_100 + f"\nurl: {URL}\n"  # past libyaml's 1000 levels and the recursion limit
    assert [(site.kind, site.line) for site in find_pins(text)] == [("raw-url", 2)]
    assert leftovers(text, "v3.4.0") == []


def test_deep_nesting_alone_is_no_pin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no Argo CD pin in" in pin(tmp_path, "[" * 100_000, capsys)


def test_a_byte_order_mark_keeps_the_application_pin_exact() -> None:
    """libyaml's marks do not count a BOM: the span must still be the token, or the pin would be skipped."""
    (site,) = find_pins("\ufeff" + HA_APPLICATION)
    assert (site.old, site.line, site.kind) == ("v3.4.0", 6, "application")


@pytest.mark.parametrize(("kind", "expected"), [("fifo", "pin.yaml: not a regular file; pin rewrites its FILE"),
                                              ("device", "pin.yaml: not a regular file; pin rewrites its FILE")])
def test_a_fifo_or_device_pin_file_ends_at_once(kind: str, expected: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Old: a FIFO blocked forever in open() (and, once read, in writing the pin back); /dev/zero was read."""
    path = tmp_path / "pin.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # no writer: end of input at once (files.read_bounded)
    else:
        path.symlink_to("/dev/zero")
    assert main(["pin", str(path), "--verdict", str(passing_verdict(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_quoted_input_is_clipped(tmp_path: Path) -> None:
    """A root cause or a line of the pin file is quoted in the one error line, never whole."""
    failed = read_verdict(passing_verdict(tmp_path, Status.FAIL, "x" * 100_000))
    with pytest.raises(CandidateFailed) as info:
        passing_release(failed, Path("verdict.json"))
    assert len(info.value.one_line()) < 400 and "(100000 characters)" in str(info.value)
    (line,) = leftovers(f"image: quay.io/argoproj/argocd:v3.4.0 {'y' * 100_000}\n", "v3.5.1")
    assert len(line) < 300


def test_a_release_with_a_trailing_newline_is_not_a_release(tmp_path: Path) -> None:
    """`$` matches before a final newline: the version would have been written into the pin file with it."""
    verdict = read_verdict(passing_verdict(tmp_path, version="v3.5.1\n"))
    with pytest.raises(InputError, match="only stable or tag candidates can be pinned"):
        passing_release(verdict, Path("verdict.json"))
