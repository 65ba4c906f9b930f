"""Quoting input in what we print: a name or reason from a manifest, profile or path reaches the terminal, the
Markdown summary and CI logs, and must not move the cursor, clear the screen or forge a line such as "PASS"."""

from __future__ import annotations

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
