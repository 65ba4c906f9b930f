"""Progress lines for long runs, on stderr so stdout stays the verdict (first line) and its detail."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape

ProgressFn = Callable[[str], None]


class Progress:
    """Callable that prints '[  12s] message' to stderr; pass it as `progress=` to the layers below."""

    def __init__(self, console: Console | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        # bound to the stderr of now: pytest's output may be redirected into a log later, progress is not
        self.console = console or Console(file=sys.stderr, highlight=False, soft_wrap=True)
        self.clock = clock
        self.started = clock()

    def __call__(self, message: str) -> None:
        elapsed = self.clock() - self.started
        self.console.print(f"[dim][{elapsed:5.0f}s][/dim] {escape(message)}", markup=True, emoji=False)


def silent(_message: str) -> None:
    """A progress callback that says nothing (tests, --quiet)."""
