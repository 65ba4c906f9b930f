"""The verdict of one run and the files CI keeps: verdict.json, summary.md, junit.xml, the console lines.

A gate is read by machines (exit code, verdict.json, JUnit test reporters) and by people (the first line of
summary.md and of the console). All say the same thing because they are rendered from one Verdict. Every file
is written atomically, and a run starts by writing an "error: interrupted" verdict that only a
finished run replaces: a killed run never leaves a stale or partial pass behind.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from validator import __version__
from validator.errors import CandidateFailed, ExitCode, InputError
from validator.files import atomic_write, read_bounded
from validator.text import clip
from validator.timeline import gantt_lines

SCHEMA_VERSION = "1"
VERDICT_JSON = "verdict.json"
SUMMARY_MD = "summary.md"
JUNIT_XML = "junit.xml"
STEP_SUMMARY_LIMIT = 1024 * 1024 - 4096  # GitHub refuses step summaries over 1 MiB
INTERRUPTED = "interrupted: the run did not finish (killed, cancelled or still in progress)"
MAX_VERDICT_BYTES = 10_000_000  # a real verdict.json is kilobytes


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"  # only for scenarios; a run whose scenarios were skipped is an error


EXIT_CODES = {Status.PASS: ExitCode.PASS, Status.FAIL: ExitCode.CANDIDATE_FAILED,
              Status.ERROR: ExitCode.COULD_NOT_VALIDATE}
NOT_RUN = "not run"  # message prefix of a step that was collected but never ran (deselected, session stopped)


def session_exit_status(status: Status, pytest_status: int) -> int:
    """The exit status of a pytest session that wrote a verdict: the verdict's, but never better than pytest's own,
    so a pass of the scenarios does not hide another test of the same session that failed."""
    return int(pytest_status) if status == Status.PASS else int(EXIT_CODES[status])


class ScenarioFailed(CandidateFailed):
    """The candidate was observed broken in a scenario; carries the evidence files diagnose wrote."""


@dataclass
class ScenarioResult:
    """One scenario (a module of checklist steps) as the verdict reports it."""

    name: str
    status: Status
    duration_s: float = 0.0
    root_cause: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)  # {"name", "status", "duration_s", "message"}
    evidence: list[str] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)  # {"name", "start_s", "end_s", "state"} (timeline.py)


@dataclass
class Verdict:
    status: Status
    spec: str
    candidate: dict[str, Any] | None = None  # validator.candidate.Provenance.to_dict()
    baseline: dict[str, Any] | None = None
    scenarios: list[ScenarioResult] = field(default_factory=list)
    root_cause: str | None = None
    preflight: list[dict[str, Any]] = field(default_factory=list)
    profile: str | None = None
    provider: str | None = None
    started_at: str = ""
    finished_at: str | None = None
    duration_s: float = 0.0
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["status"] = self.status.value
        for scenario in body["scenarios"]:
            scenario["status"] = Status(scenario["status"]).value
        return {"schemaVersion": SCHEMA_VERSION, "tool": f"argocd-mirror {__version__}", **body}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------------
# deciding (pure)
# --------------------------------------------------------------------------------------------------


def scenario_status(step_statuses: list[Status]) -> Status:
    """A scenario passes only if every step passed; an observed failure beats an error."""
    if not step_statuses:
        return Status.SKIPPED
    for status in (Status.FAIL, Status.ERROR):
        if status in step_statuses:
            return status
    if all(s == Status.SKIPPED for s in step_statuses):
        return Status.SKIPPED
    return Status.ERROR if Status.SKIPPED in step_statuses else Status.PASS


def decide(scenarios: list[ScenarioResult], preflight_errors: Sequence[str] = (),
           error: str | None = None, expected: Sequence[str] = ()) -> tuple[Status, str | None]:
    """(status, root cause) of a run. Fail closed: only a run where every scenario was seen to pass passes.

    An observed failure (preflight error or failed scenario) is a FAIL even if something else errored,
    because the candidate is known to be broken; anything short of observing a pass is an ERROR. That
    includes an incomplete run: a scenario of EXPECTED that did not run, or a step that did not (-k,
    --deselect, -x), whatever the scenario's own status says, since an upgrade minus its upgrade step passes.
    """
    failed = [s for s in scenarios if s.status == Status.FAIL]
    if preflight_errors:
        return Status.FAIL, f"preflight: {preflight_errors[0]}"
    if failed:
        return Status.FAIL, f"{failed[0].name}: {failed[0].root_cause or 'failed'}"
    if error:
        return Status.ERROR, error
    if not scenarios:
        return Status.ERROR, "no scenario ran"
    absent = [name for name in expected if name not in {s.name for s in scenarios}]
    if absent:
        return Status.ERROR, f"{absent[0]}: {NOT_RUN}"
    for scenario in scenarios:
        why = _not_passed(scenario)
        if why is not None:
            return Status.ERROR, f"{scenario.name}: {why}"
    return Status.PASS, None


def _not_passed(scenario: ScenarioResult) -> str | None:
    """Why SCENARIO is not a pass (None if it is): its root cause, or which of its steps never ran."""
    bad = [step for step in scenario.steps if step.get("status") != Status.PASS]
    if scenario.status == Status.PASS and not bad:
        return None
    unrun = [step for step in bad if str(step.get("message") or "").startswith(NOT_RUN)]
    if unrun and len(unrun) == len(bad):  # nothing else went wrong: say what was left out
        names = ", ".join(str(step["name"]) for step in unrun)
        return f"step{'s' if len(unrun) > 1 else ''} {names} {unrun[0]['message']}"
    return scenario.root_cause or ("skipped" if scenario.status == Status.SKIPPED else "error")


def candidate_label(verdict: Verdict) -> str:
    """'stable=v3.5.1 (commit 109ca7c)', or the bare spec when resolution never happened."""
    prov = verdict.candidate
    if not prov:
        return verdict.spec
    version = prov.get("version") or prov.get("image_version") or "unknown version"
    head = f"{prov['spec']}={version}" if prov.get("spec") != version else str(version)
    if prov.get("variant") and prov["variant"] != "install":
        head += f" [{prov['variant']}]"
    return f"{head} (commit {prov['commit'][:7]})" if prov.get("commit") else head


def verdict_line(verdict: Verdict) -> str:
    """The one line that goes first everywhere: PASS/FAIL/ERROR, what was tested, and why."""
    label = candidate_label(verdict)
    cause = " ".join((verdict.root_cause or "").split())
    if verdict.status == Status.PASS:
        timings = ", ".join(f"{s.name} {s.duration_s:.0f}s" for s in verdict.scenarios)
        return f"PASS {label} {timings}".rstrip()
    if verdict.status == Status.FAIL:
        return f"FAIL {label}: {cause or 'candidate failed'}"
    return f"ERROR {label}: could not validate: {cause or 'unknown reason'}"


# --------------------------------------------------------------------------------------------------
# rendering (pure)
# --------------------------------------------------------------------------------------------------

_ICONS = {Status.PASS: "✅", Status.FAIL: "❌", Status.ERROR: "⚠️", Status.SKIPPED: "⏭️"}


def render_console(verdict: Verdict) -> str:
    """Verdict line first, then one line per scenario and where the evidence is."""
    lines = [verdict_line(verdict)]
    for s in verdict.scenarios:
        tail = f": {s.root_cause}" if s.root_cause and s.status != Status.PASS else ""
        lines.append(f"  {s.status.value.upper():<7} {s.name} ({s.duration_s:.0f}s){tail}")
        lines.extend(f"          evidence: {path}" for path in s.evidence)
    for finding in verdict.preflight:
        if finding.get("severity") == "error":
            lines.append(f"  PREFLIGHT {finding.get('check')}: {finding.get('reason')}")
    for name, path in sorted(verdict.artifacts.items()):
        lines.append(f"  {name}: {path}")
    return "\n".join(lines)


def _md_cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def render_markdown(verdict: Verdict) -> str:
    """summary.md (and the GitHub step summary): first line is the verdict line, as is."""
    out = [verdict_line(verdict), ""]
    prov = verdict.candidate or {}
    if prov:
        out += ["| candidate | |", "|---|---|"]
        for key in ("spec", "version", "commit", "variant", "url", "path", "sha256", "image_version", "fetched_at"):
            if prov.get(key):
                out.append(f"| {key} | `{_md_cell(str(prov[key]))}` |")
        if verdict.baseline:
            base = verdict.baseline.get("version") or verdict.baseline.get("spec")
            out.append(f"| baseline | `{_md_cell(str(base))}` |")
        out.append("")
    if verdict.scenarios:
        out += ["| scenario | result | time | root cause |", "|---|---|---|---|"]
        for s in verdict.scenarios:
            out.append(f"| {s.name} | {_ICONS[s.status]} {s.status.value} | {s.duration_s:.0f}s | "
                       f"{_md_cell(s.root_cause)} |")
        out.append("")
    gantt = gantt_lines([(s.name, s.timeline) for s in verdict.scenarios])  # the run at a glance: what waited
    out += [*gantt, ""] if gantt else []
    errors = [f for f in verdict.preflight if f.get("severity") in ("error", "warning")]
    if errors:
        out += ["| preflight | severity | reason |", "|---|---|---|"]
        out += [f"| {f.get('check')} | {f.get('severity')} | {_md_cell(str(f.get('reason')))} |" for f in errors]
        out.append("")
    evidence = [p for s in verdict.scenarios for p in s.evidence]
    if evidence or verdict.artifacts:
        out.append("Artifacts: " + ", ".join(f"`{p}`" for p in [*verdict.artifacts.values(), *evidence]))
    return _CONTROL.sub("", "\n".join(out).rstrip() + "\n")


# Control characters (a log's ESC or NUL): no business in Markdown, and most cannot be in XML 1.0 at all.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def step_summary_text(markdown: str, limit: int = STEP_SUMMARY_LIMIT) -> str:
    """MARKDOWN cut to whole lines within GitHub's step-summary limit, saying so when cut."""
    if len(markdown.encode()) <= limit:
        return markdown
    marker = f"\n... (cut to fit GitHub's step summary; the whole text is in {SUMMARY_MD})\n"
    kept, size = [], len(marker.encode())
    for line in markdown.splitlines(keepends=True):
        size += len(line.encode())
        if size > limit:
            break
        kept.append(line)
    return "".join(kept) + marker


# --------------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------------


def load_schema() -> dict[str, Any]:
    text = resources.files("validator").joinpath("verdict.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_document(doc: Any) -> None:
    """Raise jsonschema.ValidationError if DOC is not a verdict this version can read."""
    import jsonschema  # local: the pytest plugin imports this module in every pytest run, which rarely needs it

    jsonschema.validate(doc, load_schema())


# JUnit's vocabulary: a failure is a check that failed (the candidate), an error is a check that could not run
# (the mirror). A skipped step observed nothing, so for a gate it is an error too, never a quiet "skipped".
_JUNIT_OUTCOME = {Status.FAIL: "failure", Status.ERROR: "error", Status.SKIPPED: "error"}


def _xml_text(text: Any) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text or ""))


def render_junit(verdict: Verdict) -> bytes:
    """JUnit XML of the verdict's steps, one testcase each (classname argocd-mirror.<scenario>), so a test
    reporter shows what verdict.json says. A run that is not a pass always carries a non-passing testcase,
    even when no step did (a preflight stop, an interrupted or broken run)."""
    cases: list[tuple[str, str, float, Status, str | None]] = []
    for scenario in verdict.scenarios:
        for step in scenario.steps or [{"name": scenario.name, "status": scenario.status.value,
                                        "duration_s": scenario.duration_s, "message": scenario.root_cause}]:
            cases.append((scenario.name, str(step["name"]), float(step.get("duration_s") or 0),
                          Status(step["status"]), step.get("message")))
    if verdict.status != Status.PASS and all(case[3] == Status.PASS for case in cases):
        cases.append(("run", "verdict", 0.0, verdict.status, verdict.root_cause))
    outcomes = [_JUNIT_OUTCOME.get(case[3]) for case in cases]
    total = round(sum(case[2] for case in cases), 3)
    root = ET.Element("testsuites", name="argocd-mirror", tests=str(len(cases)), time=str(total),
                      failures=str(outcomes.count("failure")), errors=str(outcomes.count("error")))
    suite = ET.SubElement(root, "testsuite", name="argocd-mirror", tests=str(len(cases)), time=str(total),
                          failures=str(outcomes.count("failure")), errors=str(outcomes.count("error")), skipped="0",
                          timestamp=verdict.started_at or "")
    for (scenario_name, name, duration, status, message), outcome in zip(cases, outcomes, strict=True):
        case = ET.SubElement(suite, "testcase", classname=f"argocd-mirror.{scenario_name}", name=_xml_text(name),
                             time=str(round(duration, 3)))
        if outcome:
            text = _xml_text(message or status.value)
            ET.SubElement(case, outcome, message=text.splitlines()[0][:1000] if text else "",
                          type="CandidateFailed" if outcome == "failure" else "CouldNotValidate").text = text
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_verdict(verdict: Verdict, out_dir: Path, step_summary: bool = True) -> None:
    """verdict.json, summary.md and junit.xml, atomically; append the summary to $GITHUB_STEP_SUMMARY when set."""
    doc = verdict.to_dict()
    validate_document(doc)  # a verdict CI cannot parse is a bug: fail loudly rather than write it
    markdown = render_markdown(verdict)
    atomic_write(out_dir / VERDICT_JSON, (json.dumps(doc, indent=2) + "\n").encode())
    atomic_write(out_dir / SUMMARY_MD, markdown.encode())
    atomic_write(out_dir / JUNIT_XML, render_junit(verdict))
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary and target:
        with open(target, "ab") as fh:
            fh.write(step_summary_text(markdown).encode() + b"\n")


def start_run(out_dir: Path, spec: str, profile: str | None = None, provider: str | None = None) -> Verdict:
    """Mark the run as unfinished on disk before anything else, and clear outputs of an older run."""
    verdict = Verdict(status=Status.ERROR, spec=spec, root_cause=INTERRUPTED, profile=profile, provider=provider,
                      started_at=now_iso())
    write_verdict(verdict, out_dir, step_summary=False)
    return verdict


def _not_json(constant: str) -> Any:
    """NaN and Infinity: Python's json reads them, JSON (and every other reader of verdict.json) does not."""
    raise ValueError(f"{constant} is not JSON")


def read_verdict(path: Path) -> dict[str, Any]:
    """A verdict.json as a dict, schema-checked; errors are one line (InputError) quoting at most QUOTE_CHARS."""
    import jsonschema

    data = read_bounded(path, MAX_VERDICT_BYTES, "verdict")
    too_deep = f"verdict {path} is not a verdict: JSON nested too deeply"  # json and jsonschema both recurse
    try:
        doc = json.loads(data, parse_constant=_not_json)
    except ValueError as exc:  # also bad UTF-8, and integers too long to convert
        raise InputError(f"verdict {path} is not JSON: {clip(str(exc))}") from None
    except RecursionError:
        raise InputError(too_deep) from None
    try:
        validate_document(doc)
    except RecursionError:
        raise InputError(too_deep) from None
    except jsonschema.ValidationError as exc:
        where = clip("/".join(str(p) for p in exc.absolute_path)) or "top level"
        raise InputError(f"verdict {path} does not match the verdict schema at {where}: {clip(exc.message)}") \
            from None
    result: dict[str, Any] = doc
    return result
