"""mirror_cluster(): a cluster for exactly one run, torn down on every exit path.

Paths covered: success, candidate failure, exception, Ctrl-C (KeyboardInterrupt), SIGTERM, SIGHUP (a closed
terminal) and SIGQUIT, which Python (and pytest) would otherwise let kill the process without running any
finalizer. They are turned into `Terminated` (a KeyboardInterrupt) while the cluster exists; during teardown they
are deferred, and its children run out of the terminal's reach, so a second Ctrl-C cannot leave a
half-deleted cluster behind; the deferred signal is delivered once the teardown is done.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from validator.cluster.base import Provider
from validator.cluster.existing import ExistingProvider
from validator.cluster.kind import KindProvider
from validator.cluster.model import Cluster
from validator.cluster.tools import Progress, own_session, stderr_progress
from validator.errors import EnvironmentNotReady, InputError
from validator.profiles import Profile

KEEP_MODES = ("never", "on-failure", "always")
PROVIDERS = ("kind", "existing")
KIND_ONLY_OPTIONS = {"preload_images", "image_cache", "wait", "create_timeout_s", "ready_interval_s"}


class Terminated(KeyboardInterrupt):
    """SIGTERM, SIGHUP or SIGQUIT, raised like Ctrl-C so every `finally` and context manager unwinds."""


# Signals that end a run by default, and what a user does to send them: `kill`/CI cancellation (SIGTERM), a closed
# terminal or dropped SSH session (SIGHUP), Ctrl-\ (SIGQUIT). Each would kill Python without running a finalizer,
# leaving the cluster behind; all take Ctrl-C's path instead (only those this platform has).
TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))


class TeardownIncomplete(EnvironmentNotReady):
    """The run is over but the cluster could not be cleaned up (exit 2: something leaked)."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def termination_raises() -> Iterator[None]:
    """While inside, SIGTERM, SIGHUP and SIGQUIT raise Terminated; the previous handlers are restored afterwards."""
    if not _in_main_thread():  # signal handlers can only be set from the main thread
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"received {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in TERMINATING}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def signals_deferred(progress: Progress) -> Iterator[list[int]]:
    """Hold SIGINT and the terminating signals off while tearing down; yields the signals received meanwhile.

    Deferred, not dropped: on leaving, the first one goes to the handler it was meant for (SIGINT:
    KeyboardInterrupt; SIGTERM, SIGHUP, SIGQUIT inside mirror_cluster: Terminated), so the run still stops.
    Children started inside get a session of their own, out of reach of the Ctrl-C a terminal sends to the whole
    group.
    """
    received: list[int] = []
    with own_session():
        if not _in_main_thread():
            yield received
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            received.append(signum)
            progress(f"{signal.Signals(signum).name} received: finishing teardown first")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, *TERMINATING)}
        try:
            yield received
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            if received:
                signal.raise_signal(received[0])


def make_provider(provider: str, profile: Profile, run_dir: Path, kubeconfig: Path | None, context: str | None,
                  progress: Progress, options: dict[str, Any], keep: str = "never") -> Provider:
    if provider == "kind":
        if kubeconfig is not None or context:
            raise InputError("--kubeconfig/--context only apply to --provider existing; the kind provider always "
                             "uses the kubeconfig it creates in the run directory")
        # keeping on failure: `kind create --retain`, so a failed create leaves its nodes to export logs from and keep
        return KindProvider(profile, run_dir, progress, retain=keep != "never", **options)
    if provider == "existing":
        kind_only = sorted(set(options) & KIND_ONLY_OPTIONS)
        if kind_only:
            raise InputError(f"{', '.join(kind_only)} only apply to the kind provider")
        return ExistingProvider(profile, kubeconfig, context, progress, **options)
    raise InputError(f"unknown cluster provider {provider!r}: choose one of {', '.join(PROVIDERS)}")


def should_keep(keep: str, outcome: str) -> bool:
    return keep == "always" or (keep == "on-failure" and outcome == "failed")


@contextmanager
def mirror_cluster(profile: Profile, run_dir: Path, keep: str = "never", provider: str = "kind",
                   kubeconfig: Path | None = None, context: str | None = None,
                   progress: Progress = stderr_progress, on_kept: Callable[[Cluster], None] | None = None,
                   **options: Any) -> Iterator[Cluster]:
    """Create (kind) or verify (existing) a cluster, yield it, tear it down on every exit path.

    The caller calls cluster.mark_failed() when the candidate failed, so keep="on-failure" and the
    `kind export logs` into run_dir/kind-logs/<cluster> happen for a failed verdict as well as for an exception.
    on_kept(cluster) is called for a cluster that is kept, also one kept after create() failed (when
    nothing was yielded), so the caller can tell the user how to reach and delete it.
    Extra keyword options go to the provider (timeouts, e.g. ready_timeout_s).
    """
    if keep not in KEEP_MODES:
        raise InputError(f"--keep-cluster must be one of {', '.join(KEEP_MODES)}, not {keep!r}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    impl = make_provider(provider, profile, run_dir, kubeconfig, context, progress, options, keep)
    with termination_raises():
        cluster = impl.prepare()
        outcome = "failed"
        error: BaseException | None = None
        try:
            impl.create(cluster)
            yield cluster
            outcome = "failed" if cluster.failed else "passed"
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: clean up, do not linger on diagnostics
            outcome, error = "interrupted", exc
            raise
        except BaseException as exc:
            cluster.failed, error = True, exc
            raise
        finally:
            with signals_deferred(progress) as received:
                problems = _finish(impl, cluster, keep, outcome, run_dir, progress, on_kept)
                if problems and error is None and not received:  # a deferred signal would replace it: warn
                    raise TeardownIncomplete("; ".join(problems))
                for problem in problems:
                    progress(f"warning: {problem}")


def _finish(impl: Provider, cluster: Cluster, keep: str, outcome: str, run_dir: Path, progress: Progress,
            on_kept: Callable[[Cluster], None] | None) -> list[str]:
    if not cluster.managed:
        return []
    if outcome == "failed":
        try:
            exported = impl.export_logs(cluster, run_dir / "kind-logs" / cluster.name)  # runs never mix logs
        except Exception as exc:  # diagnostics are best effort: never at the cost of the teardown
            progress(f"warning: cluster logs not exported: {exc}")
        else:
            if exported:
                progress(f"cluster logs exported to {exported}")
    if not should_keep(keep, outcome):
        return impl.teardown(cluster)
    if not impl.exists(cluster):
        progress(f"nothing to keep of cluster {cluster.name}: its failed create left no node")
        return []
    progress(f"keeping cluster {cluster.name} (--keep-cluster={keep})")
    for line in impl.keep_hint(cluster):
        progress(f"  {line}")
    if on_kept is not None:
        on_kept(cluster)
    return []
