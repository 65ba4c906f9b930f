"""Verdict model and writers: one verdict rendered the same way into JSON, Markdown and the console."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from validator.errors import InputError
from validator.progress import Progress
from validator.report import (
    INTERRUPTED,
    MAX_VERDICT_BYTES,
    ScenarioResult,
    Status,
    Verdict,
    decide,
    read_verdict,
    render_console,
    render_junit,
    render_markdown,
    scenario_status,
    start_run,
    step_summary_text,
    validate_document,
    verdict_line,
    write_verdict,
)

PROV = {
    "spec": "stable", "source": "stable", "variant": "install", "version": "v3.5.1",
    "commit": "109ca7c5e3b4c3f1c0f3e8b1c1a2b3c4d5e6f708", "url": "https://raw.githubusercontent.com/x",
    "path": None, "sha256": "a" * 64, "size": 10, "fetched_at": "2026-11-28T00:00:00+00:00",
    "image_version": "v3.5.1",
}


def passing() -> Verdict:
    return Verdict(status=Status.PASS, spec="stable", candidate=PROV, started_at="t0", finished_at="t1",
                   scenarios=[ScenarioResult("fresh-install", Status.PASS, 94.2)])


@pytest.mark.parametrize(("steps", "expected"), [
    ([Status.PASS, Status.PASS], Status.PASS),
    ([Status.PASS, Status.FAIL, Status.ERROR], Status.FAIL),
    ([Status.PASS, Status.ERROR], Status.ERROR),
    ([Status.SKIPPED, Status.SKIPPED], Status.SKIPPED),
    ([Status.PASS, Status.SKIPPED], Status.ERROR),  # half a checklist is not a pass
    ([], Status.SKIPPED),
])
def test_scenario_status_fails_closed(steps: list[Status], expected: Status) -> None:
    assert scenario_status(steps) == expected


def test_decide_pass_only_when_every_scenario_passed() -> None:
    ok = ScenarioResult("fresh-install", Status.PASS)
    assert decide([ok]) == (Status.PASS, None)
    assert decide([]) == (Status.ERROR, "no scenario ran")
    assert decide([ok, ScenarioResult("ha", Status.SKIPPED, root_cause="Docker engine not reachable")]) == (
        Status.ERROR, "ha: Docker engine not reachable")
    assert decide([ok], error="interrupted")[0] == Status.ERROR


def test_decide_refuses_an_incomplete_run() -> None:
    """Old: decide() judged only what ran, so `-k` (or a dropped scenario) left an upgrade minus its upgrade step
    that passed."""
    from validator.report import NOT_RUN

    ok = {"name": "test_baseline_is_healthy_first", "status": "pass", "duration_s": 1.0}
    unrun = [{"name": name, "status": "error", "duration_s": 0.0, "message": f"{NOT_RUN} (deselected)"}
             for name in ("test_candidate_applies", "test_healthy_after_upgrade")]
    assert decide([ScenarioResult("upgrade", Status.ERROR, steps=[ok, *unrun])]) == (
        Status.ERROR, "upgrade: steps test_candidate_applies, test_healthy_after_upgrade not run (deselected)")
    # whatever the scenario's own status claims, a step that did not pass is not a pass
    assert decide([ScenarioResult("upgrade", Status.PASS, steps=[ok, unrun[0]])]) == (
        Status.ERROR, "upgrade: step test_candidate_applies not run (deselected)")
    # a step that ran and erred names its own cause; an observed failure still beats everything
    erred = {"name": "test_candidate_applies", "status": "error", "duration_s": 1.0, "message": "no Docker"}
    assert decide([ScenarioResult("upgrade", Status.ERROR, root_cause="test_candidate_applies: no Docker",
                                  steps=[erred, unrun[1]])])[1] == "upgrade: test_candidate_applies: no Docker"
    bad = ScenarioResult("fresh-install", Status.FAIL, root_cause="redis down")
    assert decide([ScenarioResult("upgrade", Status.ERROR, steps=unrun), bad])[0] == Status.FAIL
    fresh = ScenarioResult("fresh-install", Status.PASS, steps=[ok])
    assert decide([fresh], expected=["fresh-install", "app-smoke"]) == (Status.ERROR, "app-smoke: not run")
    assert decide([fresh], expected=["fresh-install"]) == (Status.PASS, None)


@pytest.mark.parametrize(("status", "pytest_status", "expected"), [
    (Status.PASS, 0, 0),
    (Status.PASS, 1, 1),  # a team's own test failed beside passing scenarios: never hidden
    (Status.FAIL, 1, 1),
    (Status.FAIL, 0, 1),
    (Status.ERROR, 1, 2),
    (Status.ERROR, 2, 2),
])
def test_session_exit_status_is_never_better_than_pytests(status: Status, pytest_status: int, expected: int) -> None:
    from validator.report import session_exit_status

    assert session_exit_status(status, pytest_status) == expected


def test_observed_failure_beats_error() -> None:
    bad = ScenarioResult("upgrade", Status.FAIL, root_cause="argocd-redis: secret-init timed out")
    assert decide([ScenarioResult("x", Status.ERROR), bad], error="boom") == (
        Status.FAIL, "upgrade: argocd-redis: secret-init timed out")
    assert decide([], preflight_errors=["NetworkPolicy blocks the API"])[0] == Status.FAIL


def test_verdict_lines() -> None:
    assert verdict_line(passing()) == "PASS stable=v3.5.1 (commit 109ca7c) fresh-install 94s"
    failed = Verdict(status=Status.FAIL, spec="v2.11.1", candidate={**PROV, "spec": "v2.11.1", "version": "v2.11.1"},
                     root_cause="fresh-install: init container secret-init\n of argocd-redis: i/o timeout")
    assert verdict_line(failed) == (
        "FAIL v2.11.1 (commit 109ca7c): fresh-install: init container secret-init of argocd-redis: i/o timeout")
    error = Verdict(status=Status.ERROR, spec="stable", root_cause="Docker engine not reachable: no daemon")
    assert verdict_line(error) == "ERROR stable: could not validate: Docker engine not reachable: no daemon"
    assert error.exit_code == 2 and failed.exit_code == 1 and passing().exit_code == 0


def test_console_puts_the_verdict_first_then_detail() -> None:
    verdict = Verdict(status=Status.FAIL, spec="stable", candidate=PROV, root_cause="fresh-install: x",
                      scenarios=[ScenarioResult("fresh-install", Status.FAIL, 3, "x", evidence=["d/diagnosis.md"])])
    lines = render_console(verdict).splitlines()
    assert lines[0].startswith("FAIL stable=v3.5.1")
    assert "evidence: d/diagnosis.md" in lines[2]


def test_written_files_agree_and_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_verdict(passing(), tmp_path / "out")
    doc = read_verdict(tmp_path / "out" / "verdict.json")
    assert doc["status"] == "pass" and doc["schemaVersion"] == "1"
    first = (tmp_path / "out" / "summary.md").read_text().splitlines()[0]
    assert first == verdict_line(passing())
    assert summary.read_text().splitlines()[:2] == ["earlier step", first]  # appended, not overwritten
    assert not list((tmp_path / "out").glob(".*"))  # no temp files left behind


def test_step_summary_is_cut_at_a_line_with_a_note_and_carries_no_control_characters() -> None:
    text = "FAIL stable: x\n" + "".join(f"| row {i} | é |\n" for i in range(1000))
    cut = step_summary_text(text, limit=200)
    assert len(cut.encode()) <= 200 and cut.startswith("FAIL stable: x\n")
    assert cut.endswith("the whole text is in summary.md)\n") and "\n| row" in cut
    body = cut.splitlines()[:-1]  # all but the note
    assert body[-1] == "" and all(line in text.splitlines() for line in body if line)  # whole rows only
    assert step_summary_text(text) == text
    noisy = Verdict(status=Status.ERROR, spec="stable", started_at="t0", root_cause="kind said \x1b[31mno\x00")
    assert "\x1b" not in render_markdown(noisy) and "\x00" not in render_markdown(noisy)


def _junit(verdict: Verdict) -> dict[str, str]:
    """classname::name -> passed | failure | error, from render_junit (parsed back)."""
    root = ET.fromstring(render_junit(verdict))
    return {f"{c.get('classname')}::{c.get('name')}": next((x.tag for x in c), "passed") for c in root.iter("testcase")}


def test_junit_says_what_the_verdict_says() -> None:
    """Reporters read <failure> as "the code under test is broken" and <error> as "the test could not run"
    (testmoapp/junitxml); some read only <failure>. So: candidate broken -> failure; could not validate or
    skipped -> error; never the other way round, and never all green for a verdict that is not a pass."""
    steps = [{"name": "test_installs", "status": "pass", "duration_s": 1.0, "message": None},
             {"name": "test_healthy", "status": "fail", "duration_s": 2.0, "message": "argocd-redis: secret-init\x1b"},
             {"name": "test_smoke", "status": "skipped", "duration_s": 0.0, "message": "no cluster"}]
    failed = Verdict(status=Status.FAIL, spec="stable", scenarios=[ScenarioResult(
        "fresh-install", Status.FAIL, 3.0, "argocd-redis: secret-init", steps)], started_at="t0",
        root_cause="fresh-install: argocd-redis: secret-init")
    assert _junit(failed) == {"argocd-mirror.fresh-install::test_installs": "passed",
                              "argocd-mirror.fresh-install::test_healthy": "failure",
                              "argocd-mirror.fresh-install::test_smoke": "error"}
    root = ET.fromstring(render_junit(failed))  # \x1b cannot be in XML at all: written out, still parses
    assert root.find("testsuite").get("failures") == "1" and "secret-init\\x1b" in ET.tostring(root, "unicode")
    stopped = Verdict(status=Status.FAIL, spec="stable", started_at="t0", root_cause="preflight: redis egress")
    assert _junit(stopped) == {"argocd-mirror.run::verdict": "failure"}  # no scenario ran: still not green
    broken = Verdict(status=Status.ERROR, spec="stable", started_at="t0", root_cause=INTERRUPTED,
                     scenarios=[ScenarioResult("fresh-install", Status.PASS, 1.0, None, steps[:1])])
    assert _junit(broken)["argocd-mirror.run::verdict"] == "error"
    assert set(_junit(passing()).values()) == {"passed"}


def test_start_run_leaves_an_interrupted_error_until_replaced(tmp_path: Path) -> None:
    write_verdict(passing(), tmp_path)
    start_run(tmp_path, "stable")
    doc = json.loads((tmp_path / "verdict.json").read_text())
    assert doc["status"] == "error" and doc["root_cause"] == INTERRUPTED  # the old pass is gone
    assert (tmp_path / "summary.md").read_text().startswith("ERROR stable: could not validate: interrupted")
    (case,) = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")  # and from JUnit too
    assert case.find("error") is not None and INTERRUPTED in str(case.find("error").text)


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(status="maybe"),
    lambda d: d.update(schemaVersion="0"),
    lambda d: d.update(scenarios=[]),  # a pass needs at least one scenario
    lambda d: d["scenarios"][0].update(status="fail"),  # a pass cannot hold a failed scenario
    lambda d: d["candidate"].update(sha256="abc"),
    lambda d: d.update(candidate=None),
    lambda d: d.update(extra=1),
])
def test_schema_rejects_inconsistent_verdicts(mutate) -> None:  # type: ignore[no-untyped-def]
    doc = passing().to_dict()
    validate_document(doc)
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate_document(doc)


def test_error_verdict_needs_a_reason() -> None:
    doc = Verdict(status=Status.ERROR, spec="stable", root_cause="").to_dict()
    with pytest.raises(jsonschema.ValidationError):
        validate_document(doc)


@pytest.mark.parametrize("content", [b"{", b"[]", b'{"status": "pass"}'])
def test_read_verdict_one_line_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "verdict.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_verdict(path)
    assert "\n" not in info.value.one_line()
    with pytest.raises(InputError, match="cannot read"):
        read_verdict(tmp_path / "absent.json")


def test_progress_escapes_markup(capsys: pytest.CaptureFixture[str]) -> None:
    ticks = iter([0.0, 12.0])
    Progress(clock=lambda: next(ticks))("installing [bold]argocd[/bold]")
    assert "[   12s] installing [bold]argocd[/bold]" in capsys.readouterr().err


def test_read_verdict_reads_at_most_the_limit(tmp_path: Path) -> None:
    """Old: the whole file was read, then cut to 10 MB (/dev/zero: MemoryError; 300 MB sparse: 343 MB resident)."""
    path = tmp_path / "verdict.json"
    with path.open("wb") as fh:
        fh.truncate(MAX_VERDICT_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(InputError, match=f"over the {MAX_VERDICT_BYTES}-byte verdict limit"):
        read_verdict(path)


@pytest.mark.parametrize(("kind", "expected"), [("fifo", "is not JSON"), ("device", "over the 10000000-byte")])
def test_read_verdict_from_a_fifo_or_device_ends_at_once(tmp_path: Path, kind: str, expected: str) -> None:
    """Old: a FIFO nobody writes to blocked open() forever, and /dev/zero was read until memory ran out."""
    path = tmp_path / "verdict.json"
    if kind == "fifo":
        os.mkfifo(path)  # no writer: end of input at once (files.read_bounded)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(InputError, match=expected):
        read_verdict(path)


@pytest.mark.parametrize("content", [b"[" * 100_000, b'{"a": ' * 100_000])
def test_read_verdict_deep_json_is_one_line(tmp_path: Path, content: bytes) -> None:
    """Old: RecursionError (an internal error) from the JSON decoder."""
    path = tmp_path / "verdict.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match="JSON nested too deeply"):
        read_verdict(path)


def test_read_verdict_quotes_at_most_a_few_hundred_characters(tmp_path: Path) -> None:
    """Old: a verdict of the wrong type was quoted whole (up to 10 MB) in the one error line."""
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps(["x" * 1000] * 1000))
    with pytest.raises(InputError) as info:
        read_verdict(path)
    line = info.value.one_line()
    assert "does not match the verdict schema at top level: [" in line and "characters)" in line
    assert len(line) < 200 + len(str(path)) + 150


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_read_verdict_refuses_what_json_does_not_have(tmp_path: Path, constant: str) -> None:
    """`"duration_s": NaN` passed: Python's json reads it, no other JSON reader does."""
    path = tmp_path / "verdict.json"
    path.write_text(f'{{"duration_s": {constant}}}')
    with pytest.raises(InputError, match=f"is not JSON: {constant} is not JSON"):
        read_verdict(path)


# --------------------------------------------------------------------------------------------------
# summary.md's timeline: a Mermaid gantt block. No Mermaid parser runs offline (the PyPI ones wrap mermaid.js), so
# every line of the block is checked against gantt's grammar: a task is `name :tag, start, end`, its name without
# ':' (which ends it), '#' or ';' (which end the task data) and not one of gantt's keywords.
# --------------------------------------------------------------------------------------------------

GANTT_TASK = re.compile(r"^(?P<name>[^:#;\n]+?) :(?P<tag>(?:(?:active|done|crit|milestone), )*)"
                        r"(?:(?P<id>[A-Za-z][\w-]*), )?(?P<start>\d+), (?P<end>\d+)$")
GANTT_KEYWORDS = ("gantt", "title", "section", "dateformat", "axisformat", "tickinterval", "excludes", "includes",
                  "todaymarker", "weekday", "weekend", "inclusiveenddates", "topaxis", "acctitle", "accdescr", "click")


def gantt_tasks(markdown: str) -> list[tuple[str, str, str, int, int]]:
    """(section, name, tag, start, end) of each task of the one ```mermaid gantt block in MARKDOWN, after checking
    every line of it against the gantt grammar (seconds since the start: dateFormat X, axisFormat %s)."""
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", markdown, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, markdown
    lines = [line.strip() for line in blocks[0].splitlines()]
    assert lines[0] == "gantt" and {"dateFormat X", "axisFormat %s"} <= set(lines)
    section, tasks = None, []
    for line in lines[1:]:
        if line in ("dateFormat X", "axisFormat %s", "todayMarker off"):
            continue
        if line.startswith("title "):
            assert not re.search("[#;]", line), line
        elif line.startswith("section "):
            section = line.removeprefix("section ")
            assert section and not re.search("[:#;]", section), line
        else:
            match = GANTT_TASK.match(line)
            assert match and section is not None, line
            name = match["name"]
            assert name.split()[0].lower() not in GANTT_KEYWORDS and name == name.strip(), line
            start, end = int(match["start"]), int(match["end"])
            assert 0 <= start < end, line
            tasks.append((section, name, match["tag"].rstrip(", "), start, end))
    return tasks


def timeline_verdict(failed: bool) -> Verdict:
    """A fresh-install run as the plugin records it; failed: redis never became ready, three components waited."""
    phases = [{"name": "cluster create (main)", "start_s": 0.4, "end_s": 35.2, "state": "ok"},
              {"name": "policy proof (main)", "start_s": 35.2, "end_s": 41.0, "state": "ok"},
              {"name": "apply (candidate)", "start_s": 41.0, "end_s": 49.6, "state": "ok"},
              {"name": "policy proof (candidate)", "start_s": 43.0, "end_s": 46.5, "state": "ok"}]
    workloads = [{"name": "Deployment argocd-dex-server", "start_s": 49.7, "end_s": 52.1, "state": "ok"},
                 {"name": "Deployment argocd-redis", "start_s": 49.7, "end_s": 172.3 if failed else 58.0,
                  "state": "failed" if failed else "ok"},
                 {"name": f"Deployment argocd-server{' waits for Secret argocd-redis' if failed else ''}",
                  "start_s": 49.7, "end_s": 172.3 if failed else 80.2, "state": "waiting" if failed else "ok"},
                 {"name": "StatefulSet argocd-application-controller", "start_s": 49.7, "end_s": 0.2 + (
                     172.3 if failed else 75.0), "state": "waiting" if failed else "ok"}]
    teardown = [{"name": "teardown (main)", "start_s": 180.0, "end_s": 180.4, "state": "ok"}]
    scenario = ScenarioResult("fresh-install", Status.FAIL if failed else Status.PASS, 172.0,
                              "argocd-redis: init container secret-init failing" if failed else None,
                              timeline=phases + workloads + teardown)
    return Verdict(status=scenario.status, spec="v2.11.1", candidate=PROV, started_at="t0", finished_at="t1",
                   root_cause=f"fresh-install: {scenario.root_cause}" if failed else None, scenarios=[scenario])


@pytest.mark.parametrize("failed", [True, False])
def test_summary_draws_the_timeline(failed: bool, tmp_path: Path) -> None:
    verdict = timeline_verdict(failed)
    tasks = gantt_tasks(render_markdown(verdict))
    assert [t[1] for t in tasks] == [s["name"] for s in verdict.scenarios[0].timeline]
    assert {t[0] for t in tasks} == {"fresh-install"}
    by_name = {t[1]: t for t in tasks}
    assert by_name["cluster create (main)"][2:] == ("done", 0, 36)  # whole seconds that contain the span
    assert by_name["teardown (main)"][2:] == ("done", 180, 181)  # under a second: still a bar
    if failed:  # at a glance: redis never became ready, the components waited on it
        assert by_name["Deployment argocd-redis"][2:] == ("crit", 49, 173)
        assert by_name["Deployment argocd-server waits for Secret argocd-redis"][2] == "active"
    else:
        assert {t[2] for t in tasks} == {"done"}
    write_verdict(verdict, tmp_path, step_summary=False)  # the schema takes the timeline
    assert read_verdict(tmp_path / "verdict.json")["scenarios"][0]["timeline"] == verdict.scenarios[0].timeline


def test_timeline_names_cannot_break_the_chart() -> None:
    from validator.timeline import mermaid_name

    hostile = ["Deployment a:b", "x # comment", "y; z", "section fake", "title: x", "click me", "%% comment",
               "tab\there\x1b[31m", "", ":::", "a" * 300]
    verdict = timeline_verdict(True)
    verdict.scenarios[0].timeline = [{"name": n, "start_s": i, "end_s": i + 1, "state": "ok"}
                                     for i, n in enumerate(hostile)]
    verdict.scenarios[0].name = "fresh:install #1; x"
    tasks = gantt_tasks(render_markdown(verdict))
    assert len(tasks) == len(hostile)
    assert mermaid_name("section fake") == "- section fake" and mermaid_name(":::") == "unnamed"
    assert mermaid_name("Deployment a:b") == "Deployment a b"


def test_no_timeline_no_chart_and_a_bad_state_is_refused() -> None:
    assert "```mermaid" not in render_markdown(passing())
    doc = timeline_verdict(False).to_dict()
    doc["scenarios"][0]["timeline"][0]["state"] = "finished"
    with pytest.raises(jsonschema.ValidationError):
        validate_document(doc)
