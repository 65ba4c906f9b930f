"""`argocd-mirror` command line: one dispatcher, one module per sub-command under validator/commands/.

Every failure leaves as a single line on stderr and a gate exit code (0 pass, 1 candidate failed,
2 could not validate); tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from validator import __version__
from validator.errors import ExitCode, MirrorError
from validator.text import escape_controls

# Each module defines register(subparsers) that adds its parser(s) and sets `func` (args -> exit code).
# Keyed by command name so a run imports only the module it needs: `preflight` must stay fast, and the
# kubernetes client alone costs ~0.2 s to import.
COMMANDS = {
    "resolve": "validator.commands.resolve",
    "preflight": "validator.commands.preflight",
    "validate": "validator.commands.validate",
    "reproduce": "validator.commands.validate",
    "pin": "validator.commands.pin",
    "sweep": "validator.commands.sweep",
    "compat": "validator.commands.compat",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


def _modules_for(argv: Sequence[str]) -> tuple[str, ...]:
    """Only the named command's module when argv names one; every module otherwise (for --help)."""
    for token in argv:
        if token in COMMANDS:
            return (COMMANDS[token],)
        if not token.startswith("-"):
            break
    return COMMAND_MODULES


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the standard for every failure here), pointing at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(int(ExitCode.COULD_NOT_VALIDATE),
                  f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="argocd-mirror",
        description="Validate an Argo CD release on a throwaway cluster that mirrors production.",
    )
    parser.add_argument("--version", action="version", version=f"argocd-mirror {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _modules_for(argv):
        importlib.import_module(name).register(sub)
    return parser


# What exit 2 means, in each command's own words: only validate and reproduce validate.
COULD_NOT = {"validate": "could not validate", "reproduce": "could not validate", "preflight": "could not check",
             "compat": "could not check", "resolve": "could not resolve", "pin": "could not pin",
             "sweep": "could not sweep"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    could_not = f"argocd-mirror {args.command}: {COULD_NOT.get(args.command, 'could not run')}"
    try:
        return int(args.func(args))
    except MirrorError as exc:
        label = f"argocd-mirror {args.command}: candidate failed" \
            if exc.exit_code == ExitCode.CANDIDATE_FAILED else could_not
        print(f"{label}: {exc.one_line()}", file=sys.stderr)
        return int(exc.exit_code)
    except OSError as exc:  # an unwritable artifacts dir, a full disk: the machine's problem, said plainly
        where = f"{escape_controls(str(exc.filename))}: " if exc.filename else ""  # a newline must not split it
        print(f"{could_not}: {where}{escape_controls(str(exc.strerror or exc))}", file=sys.stderr)
        return int(ExitCode.COULD_NOT_VALIDATE)
    except KeyboardInterrupt:
        print(f"{could_not}: interrupted", file=sys.stderr)
        return int(ExitCode.COULD_NOT_VALIDATE)
    except Exception as exc:  # a bug of ours: still one line and exit 2, never a pass
        if args.debug:
            raise
        print(f"{could_not}: internal error: {type(exc).__name__}: {exc} (re-run with --debug for a traceback)",
              file=sys.stderr)
        return int(ExitCode.COULD_NOT_VALIDATE)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
