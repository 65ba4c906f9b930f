"""The timeline of a run: its phases (cluster create, policy proof, apply, each workload, teardown) as spans.

Recorded as the run goes (Timeline, on the monotonic clock; the plugin keeps one per session and attributes each
span to the scenario running when it started), carried per scenario into verdict.json (`timeline`) and drawn in
summary.md as a Mermaid `gantt` chart, so a reader sees at a glance which workload never became ready and which
ones waited on it. Pure and stdlib-only: the plugin loads it in every pytest run.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from validator.text import escape_controls, strip_ansi

OK = "ok"  # a phase that finished, a workload that became Healthy
FAILED = "failed"  # a phase that raised, the workload the run failed on
WAITING = "waiting"  # a workload still not Healthy when the wait ended (e.g. it waited on the failed one)
STATES = (OK, FAILED, WAITING)
MERMAID_TAG = {OK: "done", FAILED: "crit", WAITING: "active"}
DETAILS_KEY = "timeline"  # where a ClusterPool leaves its Timeline in cluster.details, for deploy() to find

T = TypeVar("T")


@dataclass(frozen=True)
class Span:
    """One bar of the chart: NAME from START_S to END_S (seconds since an origin), ending in STATE."""

    name: str
    start_s: float
    end_s: float
    state: str

    def to_dict(self) -> dict[str, Any]:
        start = max(0.0, self.start_s)
        return {"name": self.name, "start_s": round(start, 3), "end_s": round(max(self.end_s, start), 3),
                "state": self.state}


class Timeline:
    """Spans of one run on one clock, each attributed to the scenario current when it started."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.origin = clock()
        self.scenario: str | None = None  # set by the plugin as each scenario's steps start
        self._spans: list[tuple[str | None, Span]] = []

    def add(self, name: str, start: float, end: float, state: str, scenario: str | None = None) -> None:
        """A span between two readings of the clock (absolute), for SCENARIO (default: the current one)."""
        owner = scenario if scenario is not None else self.scenario
        self._spans.append((owner, Span(name, start - self.origin, end - self.origin, state)))

    @contextmanager
    def phase(self, name: str, scenario: str | None = None) -> Iterator[None]:
        """Time the body as phase NAME: ok when it returns, failed when it raises (the exception goes on)."""
        owner = scenario if scenario is not None else self.scenario
        start, state = self.clock(), FAILED
        try:
            yield
            state = OK
        finally:
            self.add(name, start, self.clock(), state, owner)

    def timed(self, manager: AbstractContextManager[T], enter: str, leave: str) -> AbstractContextManager[T]:
        """MANAGER with its entry timed as phase ENTER and its exit as LEAVE (a cluster's create and teardown),
        both for the scenario current at entry. The body's exception still reaches MANAGER's exit."""
        return _Timed(self, manager, enter, leave)

    def add_wait(self, waited: Any, prefix: str = "") -> None:
        """The workload spans of a watch.WaitResult (relative to its `started` clock reading)."""
        started = getattr(waited, "started", None)
        for span in getattr(waited, "timeline", None) or ():
            if started is None:
                continue
            self.add(f"{prefix}{span.name}", started + span.start_s, started + span.end_s, span.state)

    def for_scenario(self, scenario: str) -> list[dict[str, Any]]:
        """SCENARIO's spans, in the order they started, as verdict.json carries them."""
        spans = [span for owner, span in self._spans if owner == scenario]
        return [span.to_dict() for span in sorted(spans, key=lambda s: s.start_s)]


class _Timed(AbstractContextManager[T]):
    def __init__(self, timeline: Timeline, manager: AbstractContextManager[T], enter: str, leave: str) -> None:
        self.timeline, self.manager, self.enter, self.leave = timeline, manager, enter, leave
        self.scenario: str | None = None

    def __enter__(self) -> T:
        self.scenario = self.timeline.scenario
        with self.timeline.phase(self.enter, self.scenario):
            return self.manager.__enter__()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool | None:
        with self.timeline.phase(self.leave, self.scenario):
            return self.manager.__exit__(kind, exc, tb)


def timeline_of(cluster: Any) -> Timeline:
    """The Timeline a ClusterPool left on CLUSTER, or a throwaway one (a cluster made elsewhere, a test's None)."""
    details = getattr(cluster, "details", None)
    found = details.get(DETAILS_KEY) if isinstance(details, dict) else None
    return found if isinstance(found, Timeline) else Timeline()


# --------------------------------------------------------------------------------------------------
# Mermaid gantt (pure). Task lines are `name :tag, start, end`; with `dateFormat X` start and end are whole seconds
# (mermaid parses X strictly: "1.5" is not a date). A name must not hold ':' (it ends the name), '#' or ';' (they
# end the task data), and must not start with one of gantt's keywords.
# --------------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[:#;%`\[\]{}<>\"\\]+")
_KEYWORDS = ("gantt", "title", "section", "dateformat", "axisformat", "tickinterval", "excludes", "includes",
             "todaymarker", "weekday", "weekend", "inclusiveenddates", "topaxis", "acctitle", "accdescr", "click")
NAME_CHARS = 80


def mermaid_name(text: str) -> str:
    """TEXT as a gantt task or section name: one line, no ':', '#', ';' or other syntax, not a keyword."""
    words = _UNSAFE.sub(" ", escape_controls(strip_ansi(str(text))).replace("\\", " ")).split()
    name = " ".join(words)[:NAME_CHARS].strip()
    if not name:
        return "unnamed"
    return f"- {name}" if name.split()[0].lower() in _KEYWORDS else name


def gantt_lines(scenarios: Sequence[tuple[str, Iterable[Mapping[str, Any]]]],
                title: str = "Timeline, seconds since the scenarios started") -> list[str]:
    """A fenced ```mermaid gantt block: one section per scenario with spans, one task per span; [] when none."""
    body: list[str] = []
    for scenario, spans in scenarios:
        tasks = []
        for span in spans:
            start = max(0, math.floor(float(span.get("start_s") or 0)))
            end = max(start + 1, math.ceil(float(span.get("end_s") or 0)))  # a bar contains its span, never 0 wide
            tag = MERMAID_TAG.get(str(span.get("state")), "active")
            tasks.append(f"    {mermaid_name(str(span.get('name')))} :{tag}, {start}, {end}")
        if tasks:
            body += [f"    section {mermaid_name(scenario)}", *tasks]
    if not body:
        return []
    return ["```mermaid", "gantt", f"    title {mermaid_name(title)}", "    dateFormat X", "    axisFormat %s",
            "    todayMarker off", *body, "```"]
