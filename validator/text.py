"""Quoting input in what we print: a name or reason from a manifest, profile or path reaches the terminal, the
Markdown summary and CI logs, and must not move the cursor, clear the screen or forge a line such as "PASS"."""

from __future__ import annotations

import itertools
import re
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


_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>|~#&])")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colour and cursor sequences loggers write to a terminal


def strip_ansi(text: str) -> str:
    """TEXT without ANSI escape sequences (a coloured log line reads as its words)."""
    return _ANSI.sub("", text)


def markdown_escape(text: str) -> str:
    """TEXT with Markdown's syntax characters backslash-escaped (a table's |, emphasis, links, HTML, code)."""
    return _MARKDOWN.sub(r"\\\1", text)


def markdown_text(value: object, limit: int = QUOTE_CHARS) -> str:
    """VALUE as inline Markdown (a table cell, a line): one_line, then markdown_escape, so a name or a log line renders
    as itself and cannot end a table cell, open a link or inject HTML."""
    return markdown_escape(one_line(value, limit))


def code_block(text: str, info: str = "text") -> list[str]:
    """TEXT as a fenced Markdown code block: control characters escaped line by line, and a fence longer than any
    run of backticks inside, so the text cannot close it."""
    lines = [escape_controls(strip_ansi(line)) for line in text.splitlines()]
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", *lines, fence]
