"""`argocd-mirror validate [SPEC]` and `argocd-mirror reproduce SPEC`: the whole gate in one command.

resolve -> preflight (static; an error stops here, before minutes of cluster time) -> the chosen
scenarios through pytest in-process (JUnit into the artifacts dir) -> one verdict line on stdout,
then detail; exit 0 pass, 1 candidate failed, 2 could not validate. Progress goes to stderr and
pytest's own output to artifacts/pytest.log, so stdout starts with the verdict.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from validator.commands import (
    accepted_waivers,
    add_acceptance_arguments,
    add_candidate_arguments,
    judged_findings,
    seconds,
)
from validator.errors import CandidateFailed, EnvironmentNotReady, FetchError, InputError, MirrorError
from validator.progress import Progress
from validator.report import (
    INTERRUPTED,
    JUNIT_XML,
    Status,
    Verdict,
    decide,
    now_iso,
    render_console,
    start_run,
    verdict_line,
    write_verdict,
)
from validator.text import one_line

# scenario name -> (module in the shipped scenarios, validator.packaged.scenarios_dir(); needs --baseline)
SCENARIOS: dict[str, tuple[str, bool]] = {
    "fresh-install": ("test_fresh_install.py", False),
    "upgrade": ("test_upgrade.py", True),
    "rollback": ("test_rollback.py", True),
    "self-managed": ("test_self_managed.py", True),
    "app-smoke": ("test_app_smoke.py", False),
    "ha": ("test_ha.py", False),
}
DEFAULT_SCENARIOS = ("fresh-install", "app-smoke")
WITH_BASELINE = ("upgrade", "rollback", "self-managed")


def register(sub: Any) -> None:
    for name in ("validate", "reproduce"):
        reproduce = name == "reproduce"
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=("validate with the cluster kept, and print how to connect to it" if reproduce else
                  "validate a candidate on a throwaway mirror cluster (exit 0 pass, 1 failed, 2 could not validate)"),
            description=("Run validate, keep the cluster whatever happens, and print how to reach it." if reproduce
                         else "Resolve SPEC, run preflight, then the scenarios on a mirror cluster; print the verdict"),
        )
        add_candidate_arguments(parser, default=None if reproduce else "stable")
        parser.add_argument("--baseline", metavar="SPEC",
                            help="the version production runs now; adds the upgrade, rollback and self-managed "
                                 "scenarios")
        parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), metavar="NAME",
                            help=f"run only these scenarios (repeatable; {', '.join(SCENARIOS)}); default "
                                 f"{', '.join(DEFAULT_SCENARIOS)} (+ {', '.join(WITH_BASELINE)} with --baseline)")
        parser.add_argument("--provider", default="kind", choices=("kind", "existing"),
                            help="kind: a throwaway cluster (default); existing: a disposable cluster you give")
        parser.add_argument("--kubeconfig", type=Path, help="kubeconfig of the existing cluster (--provider existing)")
        parser.add_argument("--context", help="context in --kubeconfig (--provider existing)")
        parser.add_argument("--profile",
                            help="mirror profile, name or path (default: ha for --variant ha, else default)")
        if not reproduce:
            parser.add_argument("--keep-cluster", default="never", choices=("never", "on-failure", "always"),
                                help="keep the cluster after the run (default never)")
        parser.add_argument("--artifacts", type=Path, default=Path("artifacts"),
                            help="directory for verdict.json, summary.md, junit.xml, diagnostics (default artifacts)")
        parser.add_argument("--apply-mode", choices=("server-side", "client-side"),
                            help="how to install (default: the profile's)")
        parser.add_argument("--wait-timeout", type=seconds, default=600.0, metavar="SECONDS",
                            help="how long every object may take to become Healthy (default 600)")
        parser.add_argument("--skip-preflight-errors", action="store_true",
                            help="go on to the cluster even if preflight finds errors (they are still reported; "
                                 "the scenarios decide the verdict)")
        add_acceptance_arguments(parser)
        parser.add_argument("--smoke-repo", help="git repo for the app-smoke Application")
        parser.add_argument("--smoke-path", help="path in --smoke-repo")
        parser.add_argument("--smoke-revision", help="revision of --smoke-repo (default HEAD)")
        parser.add_argument("-q", "--quiet", action="store_true",
                            help="no progress on stderr; stdout is the verdict line only (and how to reach a kept "
                                 "cluster)")
        parser.set_defaults(func=run, keep_cluster="always" if reproduce else None, reproduce=reproduce)


def choose_scenarios(chosen: list[str] | None, baseline: str | None, spec: str = "stable") -> list[str]:
    """The scenarios to run, in checklist order; asking for one that needs --baseline without it is bad input.

    By default self-managed joins only for release candidates: Argo CD syncs itself from a git tag,
    which a local file or URL does not have.
    """
    from validator.candidate import classify

    extra = [n for n in WITH_BASELINE if n != "self-managed" or classify(spec) in ("stable", "tag")]
    names = sorted(set(chosen or [*DEFAULT_SCENARIOS, *(extra if baseline else ())]), key=list(SCENARIOS).index)
    missing = [n for n in names if SCENARIOS[n][1] and not baseline]
    if missing:
        raise InputError(f"scenario(s) {', '.join(missing)} need --baseline SPEC (the version production runs now)")
    return names


def pytest_args(args: argparse.Namespace, scenarios: list[str], out: Path) -> list[str]:
    """The in-process pytest command line: the shipped scenarios, our own configuration (gate.ini: no ini file or
    conftest.py around the installation counts), the plugin's --mirror-* options."""
    from validator.packaged import scenarios_dir

    here = scenarios_dir()
    argv = [str(here / SCENARIOS[name][0]) for name in scenarios]
    argv += ["-c", str(here / "gate.ini"), "--rootdir", str(here),
             "-p", "no:cacheprovider", "--capture=sys", "--color=no", "-rA",
             "--mirror-candidate", args.spec, "--mirror-variant", args.variant, "--mirror-profile", args.profile,
             "--mirror-keep-cluster", args.keep_cluster, "--mirror-artifacts", str(out),
             "--mirror-provider", args.provider, "--mirror-wait-timeout", str(args.wait_timeout)]
    for flag, value in (("--mirror-baseline", args.baseline), ("--mirror-kubeconfig", args.kubeconfig),
                        ("--mirror-context", args.context), ("--mirror-apply-mode", args.apply_mode),
                        ("--mirror-smoke-repo", args.smoke_repo), ("--mirror-smoke-path", args.smoke_path),
                        ("--mirror-smoke-revision", args.smoke_revision)):
        if value:
            argv += [flag, str(value)]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        argv += ["-p", "validator.pytest_plugin"]
    return argv


def run_scenarios(args: argparse.Namespace, scenarios: list[str], out: Path, driver: Any) -> int:
    """pytest.main in-process (the resolved bundles travel in the Driver), its output into pytest.log.

    The caller's PYTEST_ADDOPTS is held back meanwhile: pytest would honour it, and `-k`, `--deselect` or `-x`
    there would leave steps out (an upgrade that never applies the candidate). The verdict refuses such a
    run anyway (report.decide); this keeps the gate from producing one.
    """
    import pytest

    argv = pytest_args(args, scenarios, out)  # first: a broken installation (no scenarios) says so, exit 2
    addopts = os.environ.pop("PYTEST_ADDOPTS", None)
    note = None if addopts is None else (f"ignoring PYTEST_ADDOPTS={one_line(addopts)!r}: the gate runs every "
                                         "step of its scenarios with its own pytest options")
    if note and driver.progress:
        driver.progress(note)
    try:
        with open(out / "pytest.log", "w", encoding="utf-8") as log, contextlib.redirect_stdout(log), \
                contextlib.redirect_stderr(log):
            if note:
                print(note, flush=True)
            code = int(pytest.main(argv, plugins=[driver]))
    finally:
        if addopts is not None:
            os.environ["PYTEST_ADDOPTS"] = addopts
    return code


def _preflight(verdict: Verdict, bundle: Any, baseline: Any, profile: Any, apply_mode: str, accepted: tuple[str, ...],
               progress: Progress, out: Path | None = None) -> list[str]:
    """Preflight the candidate (labelled against the baseline when there is one): the errors that stop the run.
    With OUT, also OUT/preflight.sarif, for code scanning (action.yml uploads it)."""
    from validator.preflight import NEW, counts

    findings = judged_findings(bundle, baseline, profile, apply_mode, accepted)
    verdict.preflight = [f.to_dict() for f in findings]
    if out is not None:
        from validator.files import atomic_write
        from validator.preflight.output import Report, render_sarif

        sarif = render_sarif(Report(findings, bundle, profile, apply_mode, baseline, accepted))
        atomic_write(out / "preflight.sarif", (sarif + "\n").encode())
    summary = counts(findings)
    new = f" ({sum(f.severity == 'error' and f.baseline == NEW for f in findings)} new)" if baseline else ""
    progress(f"preflight: {summary['error']} error(s){new}, {summary['warning']} warning(s), {summary['info']} info")
    return [f"{f.check}: {f.reason}" for f in findings if f.severity == "error"]


def _missing_prerequisites(args: argparse.Namespace, profile: Any) -> str | None:
    """What else this machine lacks to host a kind mirror (None: nothing, or not kind's business)."""
    if args.provider != "kind":
        return None
    from validator.cluster.kind import prerequisites

    try:
        prerequisites(profile)
    except EnvironmentNotReady as exc:
        return exc.one_line()
    return None


def validate(args: argparse.Namespace, verdict: Verdict, out: Path, progress: Progress,
             connect: dict[str, str]) -> None:
    """Fill VERDICT (and CONNECT: how to reach each cluster); raises MirrorError for what stops the run early."""
    from validator.candidate import resolve
    from validator.profiles import load_profile
    from validator.pytest_plugin import Driver

    scenarios = choose_scenarios(args.scenario, args.baseline, args.spec)
    profile = load_profile(args.profile)
    if args.provider == "existing":  # which cluster, from which kubeconfig: input, checked before any fetch
        from validator.cluster.existing import locate

        _, server = locate(args.kubeconfig, args.context)
        progress(f"existing cluster: context {one_line(args.context)} at {one_line(server)}")
        if profile.api_server is None:
            progress("note: preflight judges egress NetworkPolicies against kind's usual API server addresses; "
                     "state this cluster's in the profile (apiServer: endpoints) to judge against its own (the "
                     "probes on the cluster read its kubernetes EndpointSlice either way)")
    # resolve and preflight need no cluster: a statically broken candidate is a FAIL with its provenance on any
    # machine, Docker or not; only then is the environment checked, every prerequisite in one message
    progress(f"resolving {args.spec}")
    namespace = args.namespace or profile.namespace
    try:
        candidate = resolve(args.spec, variant=args.variant, namespace=namespace)
        verdict.candidate = candidate.provenance.to_dict()
        progress(f"candidate {candidate.provenance.label} sha256:{candidate.provenance.sha256[:12]}")
        baseline = None
        if args.baseline:
            baseline = resolve(args.baseline, variant=args.variant, namespace=namespace)
            verdict.baseline = baseline.provenance.to_dict()
    except FetchError as exc:  # no network: name what else is missing too, one fix-up round for the user
        missing = _missing_prerequisites(args, profile)
        if missing is None:
            raise
        raise EnvironmentNotReady(f"{exc.one_line()}; also {missing}") from None
    errors = _preflight(verdict, candidate, baseline, profile, args.apply_mode or profile.apply_mode,
                        accepted_waivers(args), progress, out)
    if errors and not args.skip_preflight_errors:
        verdict.status, verdict.root_cause = decide([], preflight_errors=errors)
        return
    if args.provider == "kind":
        from validator.cluster.kind import prerequisites

        prerequisites(profile)
    progress(f"running scenarios: {', '.join(scenarios)} (pytest output: {out / 'pytest.log'})")
    driver = Driver(candidate=candidate, baseline=baseline, progress=progress, connect=connect)
    code = run_scenarios(args, scenarios, out, driver)
    verdict.scenarios = driver.results
    verdict.artifacts = {"junit": str(out / JUNIT_XML), "pytest log": str(out / "pytest.log")}
    error = {2: "interrupted", 3: "pytest internal error (see pytest.log)", 4: "pytest usage error (see pytest.log)",
             5: "no scenario was collected"}.get(code)
    verdict.status, verdict.root_cause = decide(driver.results, error=error, expected=scenarios)


def run(args: argparse.Namespace) -> int:
    if args.keep_cluster is None:
        args.keep_cluster = "never"
    if args.profile is None:
        from validator.profiles import default_profile_name

        args.profile = default_profile_name(args.variant)
    from validator.artifacts_lock import claim_artifacts

    with claim_artifacts(args.artifacts) as claim:  # held until the run's last file is written
        if claim.fell_back:  # said even with -q: verdict.json is not where the caller will look
            print(f"{args.artifacts}/ is in use by another run (pid {claim.holder}): this run writes to "
                  f"{claim.out}/", file=sys.stderr, flush=True)
        return _run(args, claim.out)


def _run(args: argparse.Namespace, out: Path) -> int:
    progress = Progress(quiet=args.quiet)
    verdict = start_run(out, args.spec, args.profile, args.provider)
    started = time.monotonic()
    connect: dict[str, str] = {}
    try:
        validate(args, verdict, out, progress, connect)
    except KeyboardInterrupt:
        verdict.status, verdict.root_cause = Status.ERROR, INTERRUPTED
    except MirrorError as exc:
        verdict.status = Status.FAIL if isinstance(exc, CandidateFailed) else Status.ERROR
        verdict.root_cause = exc.one_line()
    finally:
        progress.close()
    verdict.finished_at = now_iso()
    verdict.duration_s = round(time.monotonic() - started, 3)
    if verdict.status == Status.PASS and not verdict.scenarios:  # belt and braces: never a pass we did not see
        verdict.status, verdict.root_cause = Status.ERROR, "no scenario ran"
    verdict.artifacts.update({"verdict": str(out / "verdict.json"), "summary": str(out / "summary.md")})
    write_verdict(verdict, out)
    print(verdict_line(verdict) if args.quiet else render_console(verdict), flush=True)
    if args.quiet:  # the verdict only; a kept cluster is yours to delete, so its lines stay
        if connect:
            print("\n".join(f"  {name}: {command}" for name, command in connect.items()))
        return int(verdict.exit_code)
    if args.reproduce or connect:  # connect lists exactly the kept clusters (--keep-cluster, or reproduce)
        if connect:
            if any(name.startswith("delete ") for name in connect):
                print("The cluster is kept for you to explore; when done, run its delete line (`argocd-mirror sweep "
                      "--older-than 0` deletes every argocd-mirror cluster on this Docker engine):")
            else:
                print("What the run installed stays on the existing cluster for you to explore (nothing was torn "
                      "down):")
            print("\n".join(f"  {name}: {command}" for name, command in connect.items()))
        else:
            print("No cluster was created or kept, so there is nothing to connect to.")  # connect lists every kept one
    return int(verdict.exit_code)

