"""argocd-mirror's pytest plugin (pytest11 entry point): options, fixtures, markers, the verdict.

It loads into every pytest run of the environment it is installed in, so it is a good citizen there: every option
is spelled --mirror-* (pytest-kind's --keep-cluster/--kubeconfig and pytest-profiling's --profile stay theirs),
its markers are `scenario` and `mirror_docker`, it uses pytest's public API only, and it does nothing (no import
of the heavy parts, no Docker ping, no file written) unless the run collects a scenario (an item marked
`scenario(...)`) or asks for one of its fixtures. Scenarios read like a checklist because the heavy lifting
(resolve, cluster, install, watch, diagnose) lives here and below; they ship as validator.scenarios
(`pytest --pyargs validator.scenarios --mirror-candidate stable`).

Outcome mapping, failing closed: a step passes only when pytest saw it pass; CandidateFailed and assertion
failures are FAIL (the candidate was observed broken, exit 1); anything else, including skips, is ERROR (could
not validate, exit 2). In pytest's own report a candidate seen broken while a fixture set up the cluster is a
FAILURE of the step that needed it, its message the root cause and the evidence files; could-not-validate is an
ERROR at setup with its one-line reason (no plugin traceback either way).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from validator.commands import seconds
from validator.errors import CandidateFailed, EnvironmentNotReady, MirrorError
from validator.report import ScenarioFailed, ScenarioResult, Status, scenario_status
from validator.timeline import DETAILS_KEY, Timeline, timeline_of

KEEP_CHOICES = ("never", "on-failure", "always")
DEFAULT_SMOKE_REPO = "https://github.com/argoproj/argocd-example-apps.git"
DOCKER_MARKER = "mirror_docker"

# (flag, dest, argparse keywords): one prefix for every flag and dest, so no other plugin's options collide
# (pytest-kind: --cluster-name --keep-cluster --kubeconfig --kind-image --kind-bin --kind-kubectl-bin;
# pytest-profiling: --profile --profile-svg --pstats-dir --element-number --strip-dirs).
_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--mirror-candidate", "mirror_candidate", {
        "default": "stable", "metavar": "SPEC",
        "help": "Argo CD release to validate: stable, a tag, URL, file or dir"}),
    ("--mirror-baseline", "mirror_baseline", {
        "default": None, "metavar": "SPEC",
        "help": "the version production runs now; without it the scenarios that need it (upgrade, rollback, "
                "self-managed) are deselected"}),
    ("--mirror-variant", "mirror_variant", {"default": "install",
                                            "help": "install | ha | namespace-install | core-install"}),
    ("--mirror-profile", "mirror_profile", {
        "default": None, "help": "mirror profile name or path (default: ha for --mirror-variant ha, else default)"}),
    ("--mirror-keep-cluster", "mirror_keep", {
        "default": "never", "nargs": "?", "const": "always", "choices": KEEP_CHOICES,
        "help": "never (default) | on-failure | always (bare flag: always)"}),
    ("--mirror-artifacts", "mirror_artifacts", {"default": "artifacts", "metavar": "DIR",
                                                "help": "where verdict.json, summary.md and diagnostics go"}),
    ("--mirror-provider", "mirror_provider", {
        "default": "kind", "choices": ("kind", "existing"),
        "help": "kind (throwaway cluster) or existing (disposable cluster)"}),
    ("--mirror-kubeconfig", "mirror_kubeconfig", {"default": None, "metavar": "FILE",
                                                  "help": "kubeconfig of an existing disposable cluster"}),
    ("--mirror-context", "mirror_context", {"default": None,
                                            "help": "context in --mirror-kubeconfig (existing provider)"}),
    ("--mirror-apply-mode", "mirror_apply_mode", {"default": None, "choices": ("server-side", "client-side"),
                                                  "help": "how to install (default: the profile's)"}),
    ("--mirror-wait-timeout", "mirror_wait_timeout", {"default": 600.0, "type": seconds, "metavar": "SECONDS",
                                                      "help": "how long objects may take to become Healthy"}),
    ("--mirror-smoke-repo", "mirror_smoke_repo", {"default": DEFAULT_SMOKE_REPO,
                                                  "help": "git repo of the app smoke test"}),
    ("--mirror-smoke-path", "mirror_smoke_path", {"default": "guestbook", "help": "path in --mirror-smoke-repo"}),
    ("--mirror-smoke-revision", "mirror_smoke_revision", {"default": "HEAD",
                                                          "help": "revision of --mirror-smoke-repo"}),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("argocd-mirror", "argocd-mirror: validate an Argo CD release on a mirror cluster")
    for flag, dest, kwargs in _OPTIONS:
        group.addoption(flag, dest=dest, **kwargs)


@dataclass(frozen=True)
class MirrorOptions:
    candidate: str = "stable"
    baseline: str | None = None
    variant: str = "install"
    profile: str = "default"
    keep: str = "never"
    artifacts: Path = Path("artifacts")
    provider: str = "kind"
    kubeconfig: Path | None = None
    context: str | None = None
    apply_mode: str | None = None
    wait_timeout_s: float = 600.0
    smoke_repo: str = DEFAULT_SMOKE_REPO
    smoke_path: str = "guestbook"
    smoke_revision: str = "HEAD"

    @classmethod
    def from_config(cls, config: pytest.Config) -> MirrorOptions:
        from validator.profiles import default_profile_name

        opt = config.option
        kubeconfig = getattr(opt, "mirror_kubeconfig", None)
        return cls(
            candidate=opt.mirror_candidate, baseline=opt.mirror_baseline, variant=opt.mirror_variant,
            profile=opt.mirror_profile or default_profile_name(opt.mirror_variant), keep=opt.mirror_keep,
            artifacts=Path(opt.mirror_artifacts),
            provider=opt.mirror_provider, kubeconfig=Path(kubeconfig) if kubeconfig else None,
            context=opt.mirror_context, apply_mode=opt.mirror_apply_mode, wait_timeout_s=opt.mirror_wait_timeout,
            smoke_repo=opt.mirror_smoke_repo, smoke_path=opt.mirror_smoke_path,
            smoke_revision=opt.mirror_smoke_revision,
        )


@dataclass(eq=False)  # pluggy keeps plugins in sets: identity hashing
class Driver:
    """Handed to pytest.main(plugins=[...]) by `argocd-mirror validate`: pre-resolved bundles in, results out.

    Resolving once, outside pytest, guarantees the scenarios test exactly the bytes preflight checked
    (a moving `stable` cannot change between the two).
    """

    candidate: Any = None  # validator.manifests.Bundle
    baseline: Any = None
    progress: Callable[[str], None] | None = None
    results: list[ScenarioResult] = field(default_factory=list)
    connect: dict[str, str] = field(default_factory=dict)  # "cluster main" -> kubectl command to reach it


def _driver(config: pytest.Config) -> Driver | None:
    """The Driver when `argocd-mirror validate` runs this session (the gate), None for a standalone run."""
    return next((p for p in config.pluginmanager.get_plugins() if isinstance(p, Driver)), None)


@dataclass
class Step:
    scenario: str
    name: str
    status: Status = Status.PASS
    duration_s: float = 0.0
    message: str | None = None
    evidence: tuple[str, ...] = ()


def classify_exception(exc: BaseException | None) -> tuple[Status, str | None, tuple[str, ...]]:
    """(status, one-line message, evidence) for what a test phase raised. Pure; fails closed."""
    if exc is None:
        return Status.PASS, None, ()
    if isinstance(exc, pytest.skip.Exception):
        return Status.SKIPPED, " ".join(str(exc.msg).split()), ()
    evidence = tuple(getattr(exc, "evidence", ()) or ())
    if isinstance(exc, MirrorError):
        status = Status.FAIL if isinstance(exc, CandidateFailed) else Status.ERROR
        return status, exc.one_line(), evidence
    if isinstance(exc, AssertionError):  # pytest appends the rewritten expression after the first line
        first = str(exc).strip().splitlines()
        return Status.FAIL, (first[0].strip() if first else "") or "assertion failed", evidence
    text = " ".join(str(exc).split())
    return Status.ERROR, f"internal error: {type(exc).__name__}: {text}", evidence


def failure_text(exc: MirrorError) -> str:
    """How pytest shows one of our errors: what it means for the verdict, the one-line reason, the evidence files."""
    label = "candidate failed" if isinstance(exc, CandidateFailed) else "could not validate"
    evidence = tuple(getattr(exc, "evidence", ()) or ())
    reason = exc.one_line()
    head = reason if reason.startswith(f"{label}: ") else f"{label}: {reason}"
    return head + (f"\nevidence: {', '.join(evidence)}" if evidence else "")


def _worse(a: Status, b: Status) -> bool:
    order = [Status.PASS, Status.SKIPPED, Status.ERROR, Status.FAIL]
    return order.index(b) > order.index(a)


class RunState:
    """Per-session state of the plugin (kept in config.stash, never in module globals), made on first use: a run
    without scenarios or our fixtures never makes one."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.options = MirrorOptions.from_config(config)
        self.driver = _driver(config)
        self.steps: dict[str, Step] = {}
        self.docker_checked = False
        self.docker_problem: str | None = None
        self.started: str | None = None
        self.timeline = Timeline()  # the run's phases, per scenario, for verdict.json and summary.md's chart

    def progress(self, message: str) -> None:
        if self.driver and self.driver.progress:
            self.driver.progress(message)
        else:
            from validator.cluster.tools import stderr_progress

            stderr_progress(message)

    def record(self, item: pytest.Item, scenario: str, duration: float, exc: BaseException | None) -> None:
        status, message, evidence = classify_exception(exc)
        step = self.steps.setdefault(item.nodeid, Step(scenario, item.name))
        step.duration_s += duration
        step.evidence += evidence
        if _worse(step.status, status):
            step.status, step.message = status, message

    def results(self) -> list[ScenarioResult]:
        """Steps grouped by scenario in the order they ran."""
        grouped: dict[str, list[Step]] = {}
        for step in self.steps.values():
            grouped.setdefault(step.scenario, []).append(step)
        out = []
        for name, steps in grouped.items():
            status = scenario_status([s.status for s in steps])
            cause = next((f"{s.name}: {s.message}" for s in steps if s.status == status and s.message), None)
            if cause is None:  # e.g. ERROR made of a pass and a skip: name the step that did not pass
                cause = next((f"{s.name}: {s.message or s.status.value}" for s in steps if s.status != Status.PASS),
                             None)
            if status == Status.FAIL:
                cause = next(s.message for s in steps if s.status == Status.FAIL)
            out.append(ScenarioResult(
                name=name, status=status, duration_s=round(sum(s.duration_s for s in steps), 3),
                root_cause=None if status == Status.PASS else cause,
                steps=[{"name": s.name, "status": s.status.value, "duration_s": round(s.duration_s, 3),
                        "message": s.message} for s in steps],
                evidence=sorted({e for s in steps for e in s.evidence}),
                timeline=self.timeline.for_scenario(name),
            ))
        return out


STATE = pytest.StashKey[RunState]()
VERDICT = pytest.StashKey[Any]()  # the standalone run's validator.report.Verdict, for the terminal summary
HELD = pytest.StashKey[CandidateFailed]()  # a candidate failure seen while the item's fixtures set up


def _state(config: pytest.Config) -> RunState:
    state = config.stash.get(STATE, None)
    if state is None:
        state = config.stash[STATE] = RunState(config)
    return state


def scenario_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("scenario")
    return str(marker.args[0]) if marker and marker.args else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario(name): an argocd-mirror validation scenario (one verdict row)")
    config.addinivalue_line("markers", f"{DOCKER_MARKER}: an argocd-mirror step that needs a Docker engine for its "
                                       "kind cluster (skipped with the reason otherwise; --mirror-provider kind)")


@dataclass
class Ledger:
    """What the hooks learn besides RunState: every scenario step collected, which of them were deselected, and
    the session's ClusterPools. A step that never ran is then reported (never a silent pass), and any failure
    keeps the clusters for --keep-cluster on-failure, not only a wait that timed out (observe_healthy)."""

    collected: dict[str, tuple[str, str]] = field(default_factory=dict)  # nodeid -> (scenario, step), in order
    deselected: set[str] = field(default_factory=set)
    pools: list[ClusterPool] = field(default_factory=list)
    left_out: dict[str, tuple[str, str]] = field(default_factory=dict)  # nodeid -> (scenario, why it cannot run)

    def note(self, item: pytest.Item) -> None:
        scenario = scenario_of(item)
        if scenario is not None:
            self.collected.setdefault(item.nodeid, (scenario, item.name))

    def mark_failed(self) -> None:
        for pool in self.pools:
            for cluster in pool.clusters.values():
                cluster.mark_failed()


LEDGER = pytest.StashKey[Ledger]()


def _ledger(config: pytest.Config) -> Ledger:
    return config.stash.setdefault(LEDGER, Ledger())


def _cannot_run(config: pytest.Config) -> dict[str, str]:
    """Fixture -> why a standalone run cannot give it: the scenarios asking for it are left out (see _leave_out)."""
    from validator.candidate import classify
    from validator.errors import InputError

    why: dict[str, str] = {}
    if not config.getoption("mirror_baseline"):
        why["baseline_bundle"] = "they need --mirror-baseline SPEC (the Argo CD version production runs now)"
    try:
        release = classify(config.getoption("mirror_candidate")) in ("stable", "tag")
    except InputError:
        release = True  # the candidate fixture reports the bad spec, as an error of every step
    if not release:
        why["self_managed_argocd"] = "they need a release candidate (stable or a tag): Argo CD syncs itself from git"
        if config.getoption("mirror_variant") != "ha":
            why["ha_bundle"] = "they need a release candidate (stable or a tag) or --mirror-variant ha"
    return why


def _leave_out(config: pytest.Config, items: list[pytest.Item], ledger: Ledger) -> None:
    """A standalone run deselects, whole, the scenarios it cannot run: those needing a baseline without
    --mirror-baseline (upgrade, rollback, self-managed: their fixtures ask for baseline_bundle), and those needing a
    release (self-managed, ha) for a file or URL candidate. So a plain `pytest --pyargs validator.scenarios` passes
    on what it can observe, as `argocd-mirror validate` chooses its default scenarios; the terminal summary says
    what was left out and why, and they never count as steps that did not run.

    The gate (`argocd-mirror validate`, a Driver) runs exactly the scenarios it chose, and any of their steps that
    does not run is an error there: nothing is left out for it.
    """
    if _driver(config) is not None:
        return
    why = _cannot_run(config)
    blocked: dict[str, str] = {}  # scenario -> why
    for item in items:
        scenario = scenario_of(item)
        needs = getattr(item, "fixturenames", ())
        reason = next((reason for fixture, reason in why.items() if fixture in needs), None)
        if scenario is not None and reason is not None:
            blocked.setdefault(scenario, reason)
    if not blocked:
        return
    dropped = [item for item in items if scenario_of(item) in blocked]
    ledger.left_out.update((item.nodeid, (str(scenario_of(item)), blocked[str(scenario_of(item))]))
                           for item in dropped)
    items[:] = [item for item in items if scenario_of(item) not in blocked]
    config.hook.pytest_deselected(items=dropped)


@pytest.hookimpl(tryfirst=True)  # before -k/-m/--deselect (pytest's own modifyitems) drop any step
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Name each step's scenario in JUnit (<property name="scenario">), so CI can group the checklist; note every
    step collected, so one that never runs is reported as such."""
    if not any(scenario_of(item) for item in items):
        return  # not our run
    ledger = _ledger(config)
    _leave_out(config, items, ledger)
    for item in items:
        ledger.note(item)
        name = scenario_of(item)
        if name is not None:
            item.user_properties.append(("scenario", name))


def pytest_deselected(items: list[pytest.Item]) -> None:
    """A deselected step observes nothing: remember it, so its scenario cannot pass without it."""
    for item in items:
        if scenario_of(item) is None:
            continue
        ledger = _ledger(item.config)
        if item.nodeid in ledger.left_out:
            continue  # a scenario left out whole (said in the summary), not a checklist with a hole
        ledger.note(item)
        ledger.deselected.add(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    """Remember each ClusterPool (mirror_clusters) as it is made, so a failed step can mark its clusters failed."""
    value = yield
    if isinstance(value, ClusterPool):
        _ledger(request.config).pools.append(value)
    return value


def pytest_collection_finish(session: pytest.Session) -> None:
    """A standalone scenario run marks its verdict unfinished before any cluster exists."""
    if not any(scenario_of(i) for i in session.items):
        return
    state = _state(session.config)
    if state.driver is None:
        from validator.report import now_iso, start_run

        state.options.artifacts.mkdir(parents=True, exist_ok=True)
        start_run(state.options.artifacts, state.options.candidate, state.options.profile, state.options.provider)
        state.started = now_iso()


def _docker_problem(state: RunState) -> str | None:
    if not state.docker_checked:
        from validator.cluster.tools import docker_ping

        state.docker_checked = True
        try:
            docker_ping()
        except EnvironmentNotReady as exc:
            state.docker_problem = exc.one_line()
    return state.docker_problem


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """Two jobs before a step runs.

    A step marked mirror_docker skips, with the reason, when the kind provider has no Docker engine to use (one
    ping per session, and only for such steps).

    A candidate seen broken while a scenario step's fixtures set up (an install the API server rejects, objects
    that never get Healthy) is held and raised as the step's own failure when it is called (pytest_runtest_call):
    in pytest's report and JUnit a FAILURE of that step whose message is the root cause, not an error at setup
    with the plugin's traceback. Every other setup error stays an error, and tests that are not scenario steps
    are left as pytest reports them.
    """
    if item.get_closest_marker(DOCKER_MARKER) is not None:
        state = _state(item.config)
        if state.options.provider == "kind" and (problem := _docker_problem(state)):
            pytest.skip(problem if problem.startswith("Docker engine not reachable") else
                        f"Docker engine not reachable: {problem}")
    if (scenario := scenario_of(item)) is not None:  # what its fixtures set up goes on this scenario's timeline
        _state(item.config).timeline.scenario = scenario
    try:
        return (yield)
    except CandidateFailed as exc:
        if scenario_of(item) is None or item.config.getoption("setuponly", False):  # --setup-only calls nothing
            raise
        item.stash[HELD] = exc
        return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """The held candidate failure (see pytest_runtest_setup), as this step's failure (its report reads as the root
    cause and the evidence: pytest_runtest_makereport)."""
    held = item.stash.get(HELD, None)
    if held is not None:
        pytest.fail(failure_text(held), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Record every phase (setup, call, teardown) of scenario steps; the worst phase is the step's status. In a
    step, our own errors read as one line with their evidence in pytest's report, not as the plugin's traceback."""
    report = yield
    held = item.stash.get(HELD, None) if call.when == "call" else None
    exc = held if held is not None else (call.excinfo.value if call.excinfo else None)
    scenario = scenario_of(item)
    if scenario is not None:
        _state(item.config).record(item, scenario, call.duration, exc)
    if report.failed and scenario is not None and isinstance(exc, MirrorError):
        report.longrepr = failure_text(exc)
    ledger = item.config.stash.get(LEDGER, None)  # none: no scenario collected, no cluster made
    if ledger is not None and (report.failed or (scenario is not None and
                                                 classify_exception(exc)[0] in (Status.FAIL, Status.ERROR))):
        ledger.mark_failed()  # an install rejection or a failed assertion keeps the cluster too
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or not state.steps:
        return
    from validator.report import NOT_RUN

    ledger = _ledger(session.config)
    for nodeid, (scenario, name) in ledger.collected.items():
        if nodeid not in state.steps:  # deselected, or the session stopped first (-x, --maxfail): not a pass
            why = "deselected" if nodeid in ledger.deselected else "the session stopped before it"
            state.steps[nodeid] = Step(scenario, name, Status.ERROR, message=f"{NOT_RUN} ({why})")
    results = state.results()
    if state.driver is not None:
        state.driver.results = results
        return
    # a standalone run (pytest --pyargs validator.scenarios): the plugin owns the verdict and maps pytest's exit
    # status to the gate's
    from validator.report import Verdict, decide, now_iso, session_exit_status, write_verdict

    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    status, cause = decide(results, error="interrupted" if interrupted else None)
    verdict = Verdict(status=status, spec=state.options.candidate, scenarios=results, root_cause=cause,
                      profile=state.options.profile, provider=state.options.provider,
                      started_at=state.started or now_iso(), finished_at=now_iso(),
                      duration_s=round(sum(r.duration_s for r in results), 3))
    pool = session.config.stash.get(PROVENANCE, {})
    verdict.candidate = pool.get("candidate")
    verdict.baseline = pool.get("baseline")
    if verdict.status == Status.PASS and verdict.candidate is None:  # a pass must say what passed
        verdict.status, verdict.root_cause = Status.ERROR, "no candidate was resolved, so nothing was validated"
    write_verdict(verdict, state.options.artifacts)
    session.config.stash[VERDICT] = verdict
    session.exitstatus = session_exit_status(verdict.status, exitstatus)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """The verdict line of a standalone run last on the terminal (PASS/FAIL/ERROR, what, why), where the files
    are, and which scenarios were left out and why."""
    ledger = config.stash.get(LEDGER, None)
    verdict = config.stash.get(VERDICT, None)
    left_out: dict[str, list[str]] = {}  # why -> scenarios, in collection order
    for scenario, why in dict.fromkeys((ledger.left_out if ledger is not None else {}).values()):
        left_out.setdefault(why, []).append(scenario)
    if verdict is None and not left_out:
        return
    terminalreporter.section("argocd-mirror")
    for why, scenarios in left_out.items():
        terminalreporter.write_line(f"left out: {', '.join(scenarios)}: {why}")
    if verdict is not None:
        from validator.report import SUMMARY_MD, VERDICT_JSON, verdict_line

        colour = {Status.PASS: "green", Status.FAIL: "red"}.get(verdict.status, "yellow")
        terminalreporter.write_line(verdict_line(verdict), **{colour: True, "bold": True})
        artifacts = config.stash[STATE].options.artifacts
        terminalreporter.write_line(f"verdict: {artifacts / VERDICT_JSON}, summary: {artifacts / SUMMARY_MD}")


PROVENANCE = pytest.StashKey[dict[str, Any]]()


# --------------------------------------------------------------------------------------------------
# fixtures: nothing below runs unless a test asks for it
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mirror_options(request: pytest.FixtureRequest) -> MirrorOptions:
    return _state(request.config).options


@pytest.fixture(scope="session")
def mirror_progress(request: pytest.FixtureRequest) -> Callable[[str], None]:
    return _state(request.config).progress


def _remember(config: pytest.Config, key: str, bundle: Any) -> Any:
    prov = getattr(bundle, "provenance", None)
    config.stash.setdefault(PROVENANCE, {})[key] = prov.to_dict() if prov is not None else None
    return bundle


@pytest.fixture(scope="session")
def candidate_bundle(request: pytest.FixtureRequest, mirror_options: MirrorOptions, mirror_profile: Any) -> Any:
    """The candidate, resolved once per session (or handed over by `argocd-mirror validate`), into the profile's
    namespace."""
    state = _state(request.config)
    if state.driver is not None and state.driver.candidate is not None:
        return _remember(request.config, "candidate", state.driver.candidate)
    from validator.candidate import resolve

    return _remember(request.config, "candidate", resolve(mirror_options.candidate, variant=mirror_options.variant,
                                                          namespace=mirror_profile.namespace))


@pytest.fixture(scope="session")
def baseline_bundle(request: pytest.FixtureRequest, mirror_options: MirrorOptions, mirror_profile: Any) -> Any:
    """The version production runs now; scenarios that need it skip (= could not validate) without it."""
    state = _state(request.config)
    if state.driver is not None and state.driver.baseline is not None:
        return _remember(request.config, "baseline", state.driver.baseline)
    if not mirror_options.baseline:
        pytest.skip("needs --baseline SPEC (the Argo CD version production runs now)")
    from validator.candidate import resolve

    return _remember(request.config, "baseline", resolve(mirror_options.baseline, variant=mirror_options.variant,
                                                         namespace=mirror_profile.namespace))


@pytest.fixture(scope="session")
def mirror_profile(mirror_options: MirrorOptions) -> Any:
    from validator.profiles import load_profile

    return load_profile(mirror_options.profile)


class ClusterPool:
    """Mirror clusters by purpose ("main", "upgrade", "ha"...), each created once, all torn down at the end.

    Every cluster proves NetworkPolicy enforcement before it is handed out: a pass on a cluster that
    does not enforce policy would be the v2.11.1 outage all over again.
    """

    def __init__(self, options: MirrorOptions, progress: Callable[[str], None],
                 connect: dict[str, str] | None = None, timeline: Timeline | None = None) -> None:
        self.options = options
        self.progress = progress
        self.stack = ExitStack()
        self.clusters: dict[str, Any] = {}
        self.connect = connect if connect is not None else {}
        self.timeline = timeline if timeline is not None else Timeline()

    def get(self, key: str, profile: Any) -> Any:
        if key not in self.clusters:
            from validator.cluster import mirror_cluster, prove_networkpolicy_enforced

            if self.options.provider == "existing" and self.clusters:
                raise EnvironmentNotReady(f"scenario needs a second cluster ({key}), but --provider existing gives "
                                          "one; run one scenario per invocation with --scenario")
            run_dir = self.options.artifacts / "clusters" / key
            cluster = self.stack.enter_context(self.timeline.timed(mirror_cluster(
                profile, run_dir, keep=self.options.keep, provider=self.options.provider,
                kubeconfig=self.options.kubeconfig, context=self.options.context, progress=self.progress,
                on_kept=lambda kept: self._kept(key, kept)), f"cluster create ({key})", f"teardown ({key})"))
            cluster.details[DETAILS_KEY] = self.timeline  # deploy() and observe_healthy() add their phases
            self.clusters[key] = cluster
            with self.timeline.phase(f"policy proof ({key})"):
                prove_networkpolicy_enforced(cluster, progress=self.progress)
        return self.clusters[key]

    def _kept(self, key: str, cluster: Any) -> None:
        """Record how to reach and delete a kept cluster; called by its teardown, so a cluster kept after a
        failed create (never handed out) is reported too."""
        self.connect[f"cluster {key}"] = cluster.kubectl_command("get", "pods", "-A")
        if (delete := cluster.delete_command()) is not None:
            self.connect[f"delete {key}"] = delete

    def close(self) -> None:
        self.stack.close()


@pytest.fixture(scope="session")
def mirror_clusters(request: pytest.FixtureRequest, mirror_options: MirrorOptions,
                    mirror_progress: Callable[[str], None]) -> Iterator[ClusterPool]:
    driver = _state(request.config).driver
    pool = ClusterPool(mirror_options, mirror_progress, driver.connect if driver else None,
                       _state(request.config).timeline)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def mirror_cluster(mirror_clusters: ClusterPool, mirror_profile: Any) -> Any:
    """The main mirror cluster (pytest-kind users: this is your `kind_cluster`), a validator.cluster.Cluster."""
    return mirror_clusters.get("main", mirror_profile)


@dataclass
class Deployed:
    """An Argo CD installed on a mirror cluster and observed Healthy."""

    cluster: Any
    api: Any
    bundle: Any
    install: Any
    wait: Any


def deploy(cluster: Any, bundle: Any, options: MirrorOptions, profile: Any, progress: Callable[[str], None],
           out_dir: Path, previous: Any = None, role: str = "candidate") -> Deployed:
    """Install BUNDLE (over PREVIOUS: upgrade/rollback) and wait until every object is Healthy.

    Between the bundle's NetworkPolicies and its first workload, new probe pods prove each egress policy
    is enforced (prove_candidate_policies), so the workloads start under policies already programmed, as in
    a long-running cluster; the generic per-cluster control (ClusterPool.get) alone would let kindnet's
    first-packet window hide a v2.11.1-style break.
    """
    from validator.cluster.netpol import prove_candidate_policies
    from validator.install import install

    def policies_enforced(api: Any) -> None:
        with timeline_of(cluster).phase(f"policy proof ({role})"):
            prove_candidate_policies(api, bundle, progress=progress, production=profile.api_server)

    from validator.install import cluster_claims

    taken = sorted(cluster_claims(bundle) & cluster.foreign)
    if taken:
        raise EnvironmentNotReady(
            f"refusing to install {_label(bundle, role)} on {cluster.context}: "
            f"{', '.join(f'{kind}/{name}' for kind, name in taken[:10])}{' ...' if len(taken) > 10 else ''} existed "
            "before the run, and teardown removes only what the run created, so they would be left changed (another "
            "Argo CD there?); pick a namespace that does not exist yet (--namespace, or the profile's namespace) "
            "and a cluster without them")
    api = cluster.api_client()
    mode = options.apply_mode or profile.apply_mode
    progress(f"installing {role} {_label(bundle, role)} ({mode} apply)")
    with timeline_of(cluster).phase(f"apply ({role})"):
        result = install(api, bundle, mode=mode, previous=previous, progress=progress,
                         before_workloads=policies_enforced)
    return observe_healthy(cluster, api, bundle, options, progress, out_dir, role, result, profile.fail_fast)


def _label(bundle: Any, role: str) -> str:
    return str(bundle.provenance.label) if getattr(bundle, "provenance", None) is not None else role


def observe_healthy(cluster: Any, api: Any, bundle: Any, options: MirrorOptions, progress: Callable[[str], None],
                    out_dir: Path, role: str, install_result: Any = None, thresholds: Any = None) -> Deployed:
    """Wait until every object of BUNDLE is Healthy; otherwise diagnose and raise.

    A candidate (or a rollback from it) that does not get Healthy is ScenarioFailed with diagnose's
    root cause and evidence; a baseline that does not is EnvironmentNotReady, because an upgrade
    from a broken start says nothing about the candidate. Neither does an image pull the runner's network or a
    registry failed (failfast marks the Terminal environmental): EnvironmentNotReady, whatever the role.
    """
    from validator.diagnose import diagnose
    from validator.failfast import Thresholds
    from validator.watch import wait_healthy

    label = _label(bundle, role)
    progress(f"waiting for every object of {label} to be Healthy (timeout {options.wait_timeout_s:.0f}s)")
    waited = wait_healthy(api, bundle, timeout_s=options.wait_timeout_s, thresholds=thresholds or Thresholds(),
                          progress=progress)
    timeline_of(cluster).add_wait(waited, prefix="" if role == "candidate" else f"{role} ")  # each workload's span
    if not waited.passed:
        cluster.mark_failed()
        diagnosis = diagnose(api, bundle, waited, out_dir)
        evidence = tuple(str(out_dir / n) for n in ("diagnosis.md", "diagnosis.json") if (out_dir / n).exists())
        if waited.terminal is not None and waited.terminal.environment:
            raise EnvironmentNotReady(f"{waited.terminal.root_cause}; could not validate {label}: the runner's "
                                      "network or the registry failed, not the candidate (retry, or mirror the images)",
                                      evidence)
        cause = diagnosis.root_cause or waited.root_cause or "objects did not become Healthy"
        if role == "baseline":
            raise EnvironmentNotReady(f"baseline {label} did not become Healthy, so nothing can be judged: {cause}",
                                      evidence)
        raise ScenarioFailed(f"rolling back to {label}: {cause}" if role == "rollback" else cause, evidence)
    progress(f"{label} is Healthy after {waited.elapsed_s:.0f}s")
    return Deployed(cluster, api, bundle, install_result, waited)


@pytest.fixture(scope="session")
def installed_argocd(mirror_cluster: Any, candidate_bundle: Any, mirror_options: MirrorOptions, mirror_profile: Any,
                     mirror_progress: Callable[[str], None]) -> Deployed:
    """The candidate installed from zero on the main mirror cluster, every object Healthy."""
    return deploy(mirror_cluster, candidate_bundle, mirror_options, mirror_profile, mirror_progress,
                  mirror_options.artifacts / "diagnostics" / "fresh-install")


@pytest.fixture(scope="session")
def baseline_installed(mirror_clusters: ClusterPool, baseline_bundle: Any, mirror_options: MirrorOptions,
                       mirror_profile: Any, mirror_progress: Callable[[str], None]) -> Deployed:
    """Upgrade path, step 1: production's current version, installed and Healthy on its own mirror."""
    cluster = mirror_clusters.get("upgrade", mirror_profile)
    return deploy(cluster, baseline_bundle, mirror_options, mirror_profile, mirror_progress,
                  mirror_options.artifacts / "diagnostics" / "upgrade-baseline", role="baseline")


@pytest.fixture(scope="session")
def upgraded_argocd(baseline_installed: Deployed, candidate_bundle: Any, mirror_options: MirrorOptions,
                    mirror_profile: Any, mirror_progress: Callable[[str], None]) -> Deployed:
    """Upgrade path, step 2: the candidate applied over the baseline (what it dropped pruned), all Healthy."""
    return deploy(baseline_installed.cluster, candidate_bundle, mirror_options, mirror_profile, mirror_progress,
                  mirror_options.artifacts / "diagnostics" / "upgrade", previous=baseline_installed.bundle)


@pytest.fixture(scope="session")
def rolled_back_argocd(upgraded_argocd: Deployed, baseline_bundle: Any, mirror_options: MirrorOptions,
                       mirror_profile: Any, mirror_progress: Callable[[str], None]) -> Deployed:
    """Upgrade path, step 3: back to the baseline (the manual `kubectl apply` of the previous release)."""
    return deploy(upgraded_argocd.cluster, baseline_bundle, mirror_options, mirror_profile, mirror_progress,
                  mirror_options.artifacts / "diagnostics" / "rollback", previous=upgraded_argocd.bundle,
                  role="rollback")


@pytest.fixture(scope="session")
def ha_bundle(candidate_bundle: Any) -> Any:
    """The candidate's ha/install.yaml: the same release (tag) as the candidate, or the candidate if it is one."""
    prov = candidate_bundle.provenance
    if prov is not None and prov.variant == "ha":
        return candidate_bundle
    if prov is None or prov.source not in ("stable", "tag") or not prov.version:
        pytest.skip("the HA scenario needs a release candidate (stable or a tag), or --variant ha with an HA manifest")
    from validator.candidate import resolve

    return resolve(prov.version, variant="ha", namespace=candidate_bundle.namespace)


@pytest.fixture(scope="session")
def ha_argocd(mirror_clusters: ClusterPool, ha_bundle: Any, mirror_options: MirrorOptions,
              mirror_progress: Callable[[str], None]) -> Deployed:
    """ha/install.yaml on the 3-worker `ha` profile, or on --profile when one other than `default` is given
    (redis-ha needs one node per replica)."""
    from validator.profiles import load_profile

    profile = load_profile(mirror_options.profile if mirror_options.profile != "default" else "ha")
    cluster = mirror_clusters.get("ha", profile)
    return deploy(cluster, ha_bundle, mirror_options, profile, mirror_progress,
                  mirror_options.artifacts / "diagnostics" / "ha")


# --------------------------------------------------------------------------------------------------
# Argo CD Applications (self-managed, app smoke): created and watched through the same kubeconfig
# --------------------------------------------------------------------------------------------------

APPLICATIONS = "/apis/argoproj.io/v1alpha1/namespaces/{namespace}/applications"


def application(name: str, namespace: str, repo: str, revision: str, path: str, dest_namespace: str,
                include: str | None = None, server_side: bool = False) -> dict[str, Any]:
    """An automated Application as teams write them (prune off: a smoke test must not delete anything)."""
    source: dict[str, Any] = {"repoURL": repo, "targetRevision": revision, "path": path}
    if include:
        source["directory"] = {"include": include}
    options = ["CreateNamespace=true", *(["ServerSideApply=true"] if server_side else [])]
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"project": "default", "source": source,
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_namespace},
                     "syncPolicy": {"automated": {"prune": False, "selfHeal": True}, "syncOptions": options}}}


def application_state(app: dict[str, Any]) -> tuple[bool, str | None]:
    """(Synced and Healthy?, why not when certainly stuck). Pure: reads the Application's status only."""
    status = app.get("status") or {}
    sync = (status.get("sync") or {}).get("status")
    health = (status.get("health") or {}).get("status")
    operation = status.get("operationState") or {}
    if sync == "Synced" and health == "Healthy" and operation.get("phase") in (None, "Succeeded"):
        return True, None
    if operation.get("phase") in ("Failed", "Error") and operation.get("retryCount", 0) >= 2:
        return False, f"sync {operation['phase'].lower()}: {operation.get('message', '')}".strip()
    return False, None


def describe_application(app: dict[str, Any]) -> str:
    """One line on where an Application is stuck: sync, health and the first error condition."""
    status = app.get("status") or {}
    parts = [f"sync {(status.get('sync') or {}).get('status', 'Unknown')}",
             f"health {(status.get('health') or {}).get('status', 'Unknown')}"]
    message = (status.get("health") or {}).get("message") or (status.get("operationState") or {}).get("message")
    conditions = [c.get("message", "") for c in status.get("conditions") or [] if "Error" in str(c.get("type"))]
    detail = conditions[0] if conditions else message
    return ", ".join(parts) + (f": {' '.join(str(detail).split())[:400]}" if detail else "")


def sync_application(api: Any, app: dict[str, Any], timeout_s: float, progress: Callable[[str], None],
                     sleep: Callable[[float], None] = time.sleep, poll_s: float = 2.0) -> dict[str, Any]:
    """Server-side apply APP, then wait until Argo CD reports it Synced and Healthy; ScenarioFailed otherwise.

    A source Argo CD cannot read says nothing about the candidate, so it is raised as soon as seen: a missing
    repo/path/revision is InputError; the repo host out of reach (DNS, TLS, rate limit, 5xx) EnvironmentNotReady.
    A timeout-like failure counts as the environment only if this runner cannot reach the host either; otherwise
    the candidate's NetworkPolicies may be what blocks it, so the wait goes on (and fails) as before.
    """
    import socket

    from validator.errors import InputError
    from validator.failfast import application_source_trouble
    from validator.health import quote
    from validator.kubeapi import Kube

    reached: set[tuple[str, int]] = set()

    def runner_reaches(endpoint: tuple[str, int]) -> bool:
        if endpoint not in reached:
            try:
                socket.create_connection(endpoint, timeout=5).close()
            except OSError:
                return False
            reached.add(endpoint)
            progress(f"Argo CD cannot reach {endpoint[0]} but this runner can: still waiting, as the candidate's "
                     "NetworkPolicies may block it")
        return endpoint in reached

    kube = Kube(api)
    meta = app["metadata"]
    path = APPLICATIONS.format(namespace=meta["namespace"]) + f"/{meta['name']}"
    kube.call("PATCH", path, body=app, query={"fieldManager": "argocd-mirror", "force": "true"},
              content_type="application/apply-patch+yaml")
    progress(f"Application {meta['name']} created; waiting for Argo CD to sync it (timeout {timeout_s:.0f}s)")
    deadline = time.monotonic() + timeout_s
    live: dict[str, Any] = {}
    delay = min(0.25, poll_s)  # quick first looks, then every poll_s: a sync takes seconds to minutes
    while True:
        live = kube.call("GET", path)
        done, stuck = application_state(live)
        if done:
            progress(f"Application {meta['name']} is Synced and Healthy")
            return live
        trouble = application_source_trouble(live)
        if trouble is not None and trouble.input:
            source = (live.get("spec") or app["spec"]).get("source") or {}
            raise InputError(f"Application {meta['name']}: source {source.get('repoURL')} path {source.get('path')} "
                             f"at {source.get('targetRevision')} cannot be found: {quote(trouble.message)}")
        if trouble is not None and trouble.endpoint and (not trouble.ambiguous or not runner_reaches(trouble.endpoint)):
            raise EnvironmentNotReady(f"{trouble.label} reaching {trouble.endpoint[0]}: Argo CD cannot read the source "
                                      f"of Application {meta['name']}: {quote(trouble.message)}; could not validate: "
                                      "the runner's network or the git host failed, not the candidate")
        if stuck or time.monotonic() >= deadline:
            why = stuck or f"not Synced and Healthy after {timeout_s:.0f}s"
            raise ScenarioFailed(f"Application {meta['name']}: {why} ({describe_application(live)})")
        sleep(delay)
        delay = min(delay * 2, poll_s)


@pytest.fixture(scope="session")
def self_managed_argocd(mirror_clusters: ClusterPool, baseline_bundle: Any, candidate_bundle: Any,
                        mirror_options: MirrorOptions, mirror_profile: Any,
                        mirror_progress: Callable[[str], None]) -> Deployed:
    """Baseline installed, then an Application `argocd` tracking the candidate's tag, synced by Argo CD itself.

    `install` holds the live Application; `wait` the watch over every object of the candidate.
    """
    from validator.releases import VARIANTS

    prov = candidate_bundle.provenance
    if prov is None or prov.source not in ("stable", "tag") or not prov.version:
        pytest.skip("self-managed needs a release candidate (stable or a tag): Argo CD syncs itself from git")
    cluster = mirror_clusters.get("self-managed", mirror_profile)
    base = deploy(cluster, baseline_bundle, mirror_options, mirror_profile, mirror_progress,
                  mirror_options.artifacts / "diagnostics" / "self-managed-baseline", role="baseline")
    directory, _, include = ("manifests/" + VARIANTS[prov.variant]).rpartition("/")
    namespace = candidate_bundle.namespace
    app = application("argocd", namespace, "https://github.com/argoproj/argo-cd.git", prov.version, directory,
                      namespace, include=include,
                      server_side=(mirror_options.apply_mode or mirror_profile.apply_mode) == "server-side")
    live = sync_application(base.api, app, mirror_options.wait_timeout_s, mirror_progress)
    return observe_healthy(cluster, base.api, candidate_bundle, mirror_options, mirror_progress,
                           mirror_options.artifacts / "diagnostics" / "self-managed", "candidate", live,
                           mirror_profile.fail_fast)
