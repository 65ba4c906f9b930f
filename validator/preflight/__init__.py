"""Static preflight: catch install-breaking manifests before any cluster exists.

Every check is a pure function ``(bundle, profile, apply_mode) -> list[Finding]`` in its own module,
registered in CHECKS. Pure means: no cluster, no network, no files beyond read-only package data, so a
finding is reproducible from the manifest and the profile alone, and the whole pass is cheap enough to
run before every validation (an error here stops `validate` before it spends minutes on a cluster).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from validator.errors import InputError
from validator.manifests import Bundle
from validator.profiles import APPLY_MODES, Profile

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Finding:
    """One thing preflight saw: which check, how bad, on which objects, why (one line) and the evidence."""

    check: str
    severity: str  # "error" | "warning" | "info"
    objects: tuple[str, ...]
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity, "objects": list(self.objects),
                "reason": self.reason, "evidence": self.evidence}


Check = Callable[[Bundle, Profile, str], list[Finding]]


# One module per check, each with CHECK (its name) and check(bundle, profile, apply_mode); run in this order.
CHECK_MODULES = ("netpol", "annotation_size", "scheduling", "schema", "references")


def checks() -> dict[str, Check]:
    """Check name -> function, in the order they run and report."""
    registry: dict[str, Check] = {}
    for name in CHECK_MODULES:  # imported lazily: the modules import Finding from here
        module = importlib.import_module(f"validator.preflight.{name}")
        registry[module.CHECK] = module.check
    return registry


def run_preflight(bundle: Bundle, profile: Profile, apply_mode: str = "server-side",
                  only: tuple[str, ...] | None = None) -> list[Finding]:
    """Run every check (or the named ones) and return findings, worst first, stable within a severity."""
    if apply_mode not in APPLY_MODES:
        raise InputError(f"apply mode must be one of {', '.join(APPLY_MODES)}, not {apply_mode!r}")
    registry = checks()
    unknown = sorted(set(only or ()) - set(registry))
    if unknown:
        raise InputError(f"unknown check(s) {', '.join(unknown)}: choose from {', '.join(registry)}")
    findings: list[Finding] = []
    for name, check in registry.items():
        if only is None or name in only:
            findings.extend(check(bundle, profile, apply_mode))
    return sorted(findings, key=lambda f: SEVERITY_RANK[f.severity])


def counts(findings: list[Finding]) -> dict[str, int]:
    """{'error': n, 'warning': n, 'info': n}."""
    result = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        result[finding.severity] += 1
    return result


def has_error(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
