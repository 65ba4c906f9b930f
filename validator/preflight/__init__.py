"""Static preflight: catch install-breaking manifests before any cluster exists.

Every check is a pure function ``(bundle, profile, apply_mode) -> list[Finding]`` in its own module,
registered in CHECKS. Pure means: no cluster, no network, no files beyond read-only package data, so a
finding is reproducible from the manifest and the profile alone, and the whole pass is cheap enough to
run before every validation (an error here stops `validate` before it spends minutes on a cluster).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from validator.errors import InputError, MirrorError
from validator.manifests import Bundle
from validator.profiles import APPLY_MODES, Profile

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Finding:
    """One thing preflight saw: which check, how bad, on which objects, why (one line) and the evidence.

    `origin` says whether the candidate or the profile causes it ("profile": e.g. a rollout that cannot finish on
    exactly the profile's node count, whatever the release). `waiver` names the acceptances (--accept-...) that
    together turn an error the team chose to live with into a warning. `baseline` is set when compared with the version
    production runs: "new" or "also-in-baseline".
    """

    check: str
    severity: str  # "error" | "warning" | "info"
    objects: tuple[str, ...]
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    origin: str = field(default="candidate", compare=False)
    waiver: tuple[str, ...] = field(default=(), compare=False)  # accepted when every one of these is
    baseline: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")
        if self.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, not {self.origin!r}")

    @property
    def identity(self) -> tuple[str, tuple[str, ...], str]:
        """What makes two findings the same defect in two releases: the check, the objects and the reason with
        versions, digests and numbers blanked (a CRD's annotation grows by some bytes from release to release)."""
        return self.check, self.objects, signature(self.reason)

    def to_dict(self) -> dict[str, Any]:
        out = {"check": self.check, "severity": self.severity, "objects": list(self.objects),
               "reason": self.reason, "evidence": self.evidence, "origin": self.origin}
        if self.waiver:
            out["waiver"] = list(self.waiver)
        if self.baseline:
            out["baseline"] = self.baseline
        return out


ORIGINS = ("candidate", "profile")
NEW, ALSO_IN_BASELINE = "new", "also-in-baseline"
_VERSION = re.compile(r"v\d+\.\d+\.\d+(?:-rc\d+)?")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_NUMBER = re.compile(r"\d+")


def signature(reason: str) -> str:
    """A reason with release versions, digests and numbers blanked: the same defect across releases."""
    return _NUMBER.sub("<n>", _DIGEST.sub("<digest>", _VERSION.sub("<version>", reason)))


Check = Callable[[Bundle, Profile, str], list[Finding]]


# One module per check, each with CHECK (its name) and check(bundle, profile, apply_mode); run in this order.
CHECK_MODULES = ("netpol", "credentials", "annotation_size", "scheduling", "schema", "podspec", "references")
SCHEMA_CHECK = "schema"


def checks() -> dict[str, Check]:
    """Check name -> function, in the order they run and report."""
    registry: dict[str, Check] = {}
    for name in CHECK_MODULES:  # imported lazily: the modules import Finding from here
        module = importlib.import_module(f"validator.preflight.{name}")
        registry[module.CHECK] = module.check
    return registry


def run_preflight(bundle: Bundle, profile: Profile, apply_mode: str = "server-side",
                  only: tuple[str, ...] | None = None, accepted: Collection[str] = ()) -> list[Finding]:
    """Run every check (or the named ones) and return findings, worst first, stable within a severity.

    ACCEPTED holds waivers the team chose (e.g. "image-version=v2.14.0-rc7"): an error carrying one of them is
    reported as a warning that says it was accepted, never dropped."""
    if apply_mode not in APPLY_MODES:
        raise InputError(f"apply mode must be one of {', '.join(APPLY_MODES)}, not {apply_mode!r}")
    registry = checks()
    unknown = sorted(set(only or ()) - set(registry))
    if unknown:
        raise InputError(f"unknown check(s) {', '.join(unknown)}: choose from {', '.join(registry)}")
    findings: list[Finding] = []
    crashed: list[tuple[str, Exception]] = []
    for name, check in registry.items():
        if only is None or name in only:
            try:
                findings.extend(check(bundle, profile, apply_mode))
            except _MALFORMED as exc:  # a shape the check did not expect (a string where a mapping belongs...)
                crashed.append((name, exc))
    if crashed:
        if SCHEMA_CHECK in {n for n, _ in crashed}:
            failure = next(error for name, error in crashed if name == SCHEMA_CHECK)
            raise MirrorError(f"preflight check {SCHEMA_CHECK} could not evaluate this bundle: "
                              f"{type(failure).__name__}: {failure}")
        schema_ran = only is None or SCHEMA_CHECK in only
        findings.extend(_explain_crashes(crashed, findings, schema_ran,
                                         lambda: registry[SCHEMA_CHECK](bundle, profile, apply_mode)))
    findings = [_accept(f) if f.waiver and set(f.waiver) <= set(accepted) and f.severity == "error" else f
                for f in findings]
    return sorted(findings, key=lambda f: SEVERITY_RANK[f.severity])


def _accept(finding: Finding) -> Finding:
    return replace(finding, severity="warning", reason=f"{finding.reason} (accepted: {', '.join(finding.waiver)})")


def compare_with_baseline(findings: list[Finding], baseline: list[Finding]) -> list[Finding]:
    """FINDINGS labelled "new" or "also-in-baseline" against the baseline's, new ones first (worst first within
    each): a release gate is about what got worse. Findings the profile causes are the same for both releases, so
    they get no label and come last."""
    seen = {f.identity for f in baseline}
    labelled = [f if f.origin == "profile" else replace(f, baseline=ALSO_IN_BASELINE if f.identity in seen else NEW)
                for f in findings]
    order = {NEW: 0, ALSO_IN_BASELINE: 1, None: 2}
    return sorted(labelled, key=lambda f: (order[f.baseline], SEVERITY_RANK[f.severity]))


_MALFORMED = (AttributeError, TypeError, KeyError, IndexError, ValueError)


def _explain_crashes(crashed: list[tuple[str, Exception]], findings: list[Finding], schema_ran: bool,
                     schema: Callable[[], list[Finding]]) -> list[Finding]:
    """A check that crashed on objects the schema rejects is an error of the candidate (exit 1); one that
    crashed on a schema-valid bundle is our failure to check it (exit 2), never a silent pass."""
    extra = [] if schema_ran else [f for f in schema() if f.severity == "error"]
    schema_errors = [f for f in findings + extra if f.check == SCHEMA_CHECK and f.severity == "error"]
    if not schema_errors:
        name, exc = crashed[0]
        raise MirrorError(f"preflight check {name} could not evaluate this bundle: {type(exc).__name__}: {exc}")
    return extra + [
        Finding(name, "error", schema_errors[0].objects,
                f"check {name} could not evaluate the bundle because of malformed objects (see the schema errors): "
                f"{type(exc).__name__}: {' '.join(str(exc).split())}", {"exception": type(exc).__name__})
        for name, exc in crashed
    ]


def counts(findings: list[Finding]) -> dict[str, int]:
    """{'error': n, 'warning': n, 'info': n}."""
    result = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        result[finding.severity] += 1
    return result


def has_error(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
