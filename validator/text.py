"""Quoting input in what we print: a name or reason from a manifest, profile or path reaches the terminal, the
Markdown summary and CI logs, and must not move the cursor, clear the screen or forge a line such as "PASS"."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

QUOTE_CHARS = 200  # how much of an input an error line quotes


def clip(text: str, limit: int = QUOTE_CHARS) -> str:
    """TEXT cut to LIMIT characters, for quoting input in a one-line error that must stay readable."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def one_line(value: object, limit: int = QUOTE_CHARS) -> str:
    """str(VALUE) as a quotable line: whitespace collapsed, control characters escaped, clipped."""
    return clip(escape_controls(" ".join(str(value).split())), limit)


def escape_controls(text: str) -> str:
    """TEXT with every non-printable character (ESC, CR, NUL, newline, ...) shown as its Python escape."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def some(items: Iterable[str], limit: int, total: int | None = None) -> list[str]:
    """The first LIMIT items, then how many more there are (TOTAL: their number, so the rest is never built)."""
    iterator = iter(items)
    listed = list(itertools.islice(iterator, limit + (1 if total is None else 0)))
    count = len(listed) + sum(1 for _ in iterator) if total is None else total
    return listed[:limit] + ([f"{count - limit} more"] if count > limit else [])
