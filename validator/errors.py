"""One error hierarchy so every entry point can map failures to the gate's exit codes.

Exit codes are the contract with CI: 0 pass, 1 the candidate failed, 2 we could not validate.
Anything that stops us from observing a verdict (bad input, no Docker, no network) is exit 2,
never a pass.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    PASS = 0
    CANDIDATE_FAILED = 1
    COULD_NOT_VALIDATE = 2


class MirrorError(Exception):
    """Base class: the run could not produce a verdict (exit 2)."""

    exit_code: ExitCode = ExitCode.COULD_NOT_VALIDATE

    def __init__(self, message: str = "", evidence: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.evidence = evidence  # files that show why (diagnosis.md, ...), listed with the step in the verdict

    def one_line(self) -> str:
        """The message as a single line, as printed by the CLI."""
        from validator.text import escape_controls

        return escape_controls(" ".join(str(self).split()))


class InputError(MirrorError):
    """The input (spec, manifest, profile, flag) is unusable."""


class FetchError(MirrorError):
    """A candidate could not be fetched or resolved (network, unknown tag)."""


class EnvironmentNotReady(MirrorError):
    """The machine cannot host a mirror (no Docker, kind missing or too old, ...)."""


class CandidateFailed(MirrorError):
    """The candidate was observed to be broken (exit 1)."""

    exit_code = ExitCode.CANDIDATE_FAILED
