"""Progress for long runs, on stderr so stdout stays the verdict (first line) and its detail.

Every message is a line '[  12s] message'. A wait (validator.watch.wait_healthy) reports its picture as data
through Progress.status: on a terminal that is one block updated in place (counts per health, the slowest object,
the cause so far, elapsed and deadline); anywhere else (CI, a pipe, a log) it is the same one summary line per
interval as always, so logs stay greppable and no escape codes reach them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

ProgressFn = Callable[[str], None]

# the order and colour of the health states in the block (Argo CD's, then ours); others follow, alphabetically
STATES = {"Healthy": "green", "Progressing": "yellow", "Suspended": "cyan", "Degraded": "red", "Missing": "magenta",
          "Unknown": "red", "Exempt": "dim", "Not counted": "dim"}


def status_block(status: Mapping[str, Any], elapsed_s: float | None = None) -> RenderableType:
    """The live block for one status of validator.watch (`_State.status` plus `timeout_s`)."""
    counts: Mapping[str, int] = status.get("counts") or {}
    order = [s for s in STATES if s in counts] + sorted(s for s in counts if s not in STATES)
    line = Text()
    for state in order:
        if line:
            line.append("  ")
        line.append(f"{counts[state]} ", style="bold")
        line.append(state, style=STATES.get(state, ""))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("objects", line)
    if status.get("slowest"):
        grid.add_row("slowest", f"{status['slowest']} ({float(status.get('slowest_s') or 0):.0f}s in its state)")
    if status.get("pending"):
        grid.add_row("cause so far", Text(str(status.get("suspect") or "none visible yet"),
                                          style="red" if status.get("suspect") else "dim"))
    if status.get("not_counted"):
        grid.add_row("not counted", ", ".join(status["not_counted"][:3]) + (
            f" and {len(status['not_counted']) - 3} more" if len(status["not_counted"]) > 3 else ""))
    elapsed = float(status.get("elapsed_s") or 0) if elapsed_s is None else elapsed_s
    timeout = status.get("timeout_s")
    clock = f"{elapsed:.0f}s" + (f" of {float(timeout):.0f}s, {max(0.0, float(timeout) - elapsed):.0f}s left"
                                 if timeout else "")
    done = status.get("final")
    title = (f"{status.get('pending', 0)} of {status.get('total', 0)} objects not Healthy" if status.get("pending")
             else f"all {status.get('total', 0)} objects Healthy")
    return Panel(Group(grid), title=f"waiting: {title}" if not done else f"wait ended: {title}",
                 subtitle=clock, title_align="left", subtitle_align="right", expand=False)


class _LiveStatus:
    """The renderable Live redraws: the last status, with the elapsed time ticking between updates."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.status: Mapping[str, Any] = {}
        self.at = clock()

    def update(self, status: Mapping[str, Any]) -> None:
        self.status, self.at = status, self.clock()

    def __rich__(self) -> RenderableType:
        elapsed = float(self.status.get("elapsed_s") or 0)
        if not self.status.get("final"):
            elapsed += self.clock() - self.at
        return status_block(self.status, elapsed)


class Progress:
    """Callable that prints '[  12s] message' to stderr; pass it as `progress=` to the layers below.

    `live`: show waits as a block updated in place (default: when stderr is an interactive terminal).
    `quiet`: say nothing at all (`validate --quiet`: only the verdict, on stdout).
    """

    def __init__(self, console: Console | None = None, clock: Callable[[], float] = time.monotonic,
                 live: bool | None = None, quiet: bool = False) -> None:
        # bound to the stderr of now: pytest's output may be redirected into a log later, progress is not
        self.console = console or Console(file=sys.stderr, highlight=False, soft_wrap=True)
        self.clock = clock
        self.started = clock()
        self.quiet = quiet
        self.live = (self.console.is_terminal and not self.console.is_dumb_terminal) if live is None else live
        # how often a wait should report its status: a block on a terminal can redraw every second; None leaves
        # the plain line at the wait's own interval
        self.status_every_s: float | None = 1.0 if self.live and not quiet else None
        self._live: Live | None = None
        self._block: _LiveStatus | None = None

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        elapsed = self.clock() - self.started
        with suppress(OSError, ValueError):  # a terminal that is gone must not stop the run or its teardown
            self.console.print(f"[dim][{elapsed:5.0f}s][/dim] {escape(message)}", markup=True, emoji=False)

    def status(self, update: Mapping[str, Any] | None) -> None:
        """A wait's picture (validator.watch: counts, slowest, suspect, elapsed_s, timeout_s, line, final), or None
        when the wait is over. Plain: `line` as a progress line (the final picture adds nothing: the verdict line
        follows). Live: the block, redrawn in place until None leaves its last frame on screen."""
        if self.quiet:
            return
        if not self.live:
            if update is not None and not update.get("final") and update.get("line"):
                self(str(update["line"]))
            return
        with suppress(OSError, ValueError):
            if update is None:
                self._stop()
                return
            if self._live is None:
                self._block = _LiveStatus(self.clock)
                self._block.update(update)
                # stdout/stderr are left alone: pytest redirects them into its log meanwhile
                self._live = Live(self._block, console=self.console, refresh_per_second=2, transient=False,
                                  redirect_stdout=False, redirect_stderr=False)
                self._live.start()
            else:
                assert self._block is not None
                self._block.update(update)
                self._live.refresh()

    def _stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.refresh()
            live.stop()

    def close(self) -> None:
        """Stop a block still drawn (an interrupted wait)."""
        with suppress(OSError, ValueError):
            self._stop()


def silent(_message: str) -> None:
    """A progress callback that says nothing (tests, --quiet)."""
